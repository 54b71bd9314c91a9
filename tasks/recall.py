"""Long-range associative recall ("I grew up in France … I speak fluent ___"), as zoology's MQAR."""

from __future__ import annotations

import numpy as np

from tasks.base import IGNORE, PerStep, Signature, Task, Tokens, require
from tasks.registry import register


@register("recall")
class Recall(Task):
    """Key→value pairs, then ``length`` distractor tokens, then queried keys whose values must be output.

    Sequence: ``k1 v1 … kP vP``, ``length`` tokens drawn from a separate noise vocabulary, then
    ``queries`` distinct keys of the pairs in random order; at each query the model outputs that
    key's value. Keys are distinct within a sample. The dependency is ``length + 2·pairs``: from the
    first fact to the first question. Metric: accuracy at query positions; memoryless baseline:
    chance, 1/values; solved at 0.95.
    """

    metric = "query_accuracy"
    higher_is_better = True
    solved_at = 0.95

    def __init__(self, length: int = 100, pairs: int = 4, queries: int | None = None,
                 keys: int = 16, values: int = 16, noise: int = 8):
        queries = pairs if queries is None else queries
        require(isinstance(length, int) and length >= 1, f"recall: length must be an integer >= 1, got {length!r}")
        require(1 <= pairs <= keys, f"recall: pairs must be in 1..keys ({keys}), got {pairs!r}")
        require(1 <= queries <= pairs, f"recall: queries must be in 1..pairs ({pairs}), got {queries!r}")
        require(values >= 2 and noise >= 1, f"recall: need values >= 2 and noise >= 1, got {values}, {noise}")
        self.length, self.pairs, self.queries = length, pairs, queries
        self.keys, self.values, self.noise = keys, values, noise

    @property
    def params(self):
        return {"length": self.length, "pairs": self.pairs, "queries": self.queries,
                "keys": self.keys, "values": self.values, "noise": self.noise}

    @property
    def signature(self):
        total = 2 * self.pairs + self.length + self.queries
        vocab = 1 + self.keys + self.values + self.noise
        return Signature(total, self.length + 2 * self.pairs, Tokens(vocab), PerStep(self.values))

    @property
    def baseline(self):
        return 1.0 / self.values

    def _sample(self, rng, n):
        p, q = self.pairs, self.queries
        keys = rng.random((n, self.keys)).argsort(axis=1)[:, :p]  # distinct keys, 0-based
        values = rng.integers(0, self.values, size=(n, p))
        asked = rng.random((n, p)).argsort(axis=1)[:, :q]  # which pairs are queried, in order
        x = np.empty((n, 2 * p + self.length + q), dtype=np.int32)
        x[:, 0 : 2 * p : 2] = 1 + keys
        x[:, 1 : 2 * p : 2] = 1 + self.keys + values
        noise_start = 1 + self.keys + self.values
        x[:, 2 * p : 2 * p + self.length] = rng.integers(noise_start, noise_start + self.noise, size=(n, self.length))
        x[:, -q:] = 1 + np.take_along_axis(keys, asked, axis=1)
        y = np.full(x.shape, IGNORE, dtype=np.int32)
        y[:, -q:] = np.take_along_axis(values, asked, axis=1)
        return x, y

    def evaluate(self, y, prediction):
        asked = y != IGNORE
        return float((prediction.argmax(-1)[asked] == y[asked]).mean())
