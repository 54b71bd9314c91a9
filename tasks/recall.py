"""Long-range associative recall ("I grew up in France … I speak fluent ___"), as zoology's MQAR."""

from __future__ import annotations

import numpy as np

from tasks.base import IGNORE, PerStep, Signature, Task, Tokens, require
from tasks.registry import register

LAYOUTS = ("block", "mqar")


@register("recall")
class Recall(Task):
    """Key→value pairs, then ``length`` more tokens holding the queried keys; output each queried key's value.

    ``layout="block"`` (the default): ``k1 v1 … kP vP``, ``length`` distractors from a separate noise
    vocabulary, then ``queries`` distinct keys of the pairs in random order. Keys are distinct within a
    sample; vocabularies: ``keys``, ``values``, ``noise`` (disjoint).

    ``layout="mqar"``: zoology's multi-query associative recall (Arora et al. 2023, ``multiquery_ar``):
    keys from the lower half of ``vocab_size`` tokens, values (distinct) from the upper half; the
    ``length`` tokens after the pairs are random tokens of the whole vocabulary, with each query placed at
    an even offset drawn from a power law of exponent ``power_a`` (0.01: mostly soon after the pairs;
    1: uniform). Zoology's ``input_seq_len`` is ``length + 2·pairs`` (64 tokens, 4 pairs: ``length=56``)
    and its ``num_kv_pairs`` is ``pairs``.

    The dependency is ``length + 2·pairs``: from the first fact to the end. Metric: accuracy at query
    positions (the only positions with a loss); memoryless baseline: chance, 1/values; solved at 0.95.
    """

    metric = "query_accuracy"
    higher_is_better = True
    solved_at = 0.95

    def __init__(self, length: int = 100, pairs: int = 4, queries: int | None = None,
                 keys: int = 16, values: int = 16, noise: int = 8, layout: str = "block",
                 vocab_size: int = 8192, power_a: float = 0.01):
        queries = pairs if queries is None else queries
        require(isinstance(length, int) and length >= 1, f"recall: length must be an integer >= 1, got {length!r}")
        require(layout in LAYOUTS, f"recall: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.length, self.pairs, self.queries, self.layout = length, pairs, queries, layout
        self.keys, self.values, self.noise = keys, values, noise
        self.vocab_size, self.power_a = vocab_size, power_a
        if layout == "mqar":
            require(isinstance(vocab_size, int) and vocab_size >= 4 and vocab_size % 2 == 0,
                    f"recall: vocab_size must be an even integer >= 4, got {vocab_size!r}")
            require(0 < power_a <= 1, f"recall: power_a must be in (0, 1], got {power_a!r}")
            self.keys, self.values = vocab_size // 2 - 1, vocab_size - vocab_size // 2  # key 0 is never used
            require(1 <= pairs <= self.keys, f"recall: pairs must be in 1..{self.keys} (vocab_size/2 - 1), "
                                             f"got {pairs!r}")
            require(1 <= queries <= min(pairs, length // 2), f"recall: queries must be in 1..min(pairs, length/2) "
                                                            f"({min(pairs, length // 2)}), got {queries!r}")
        else:
            require(1 <= pairs <= keys, f"recall: pairs must be in 1..keys ({keys}), got {pairs!r}")
            require(1 <= queries <= pairs, f"recall: queries must be in 1..pairs ({pairs}), got {queries!r}")
            require(values >= 2 and noise >= 1, f"recall: need values >= 2 and noise >= 1, got {values}, {noise}")

    @property
    def params(self):
        common = {"length": self.length, "pairs": self.pairs, "queries": self.queries}
        if self.layout == "block":  # as before the mqar layout existed: stored records keep their identity
            return {**common, "keys": self.keys, "values": self.values, "noise": self.noise}
        return {**common, "layout": self.layout, "vocab_size": self.vocab_size, "power_a": self.power_a}

    @property
    def signature(self):
        total = 2 * self.pairs + self.length + (self.queries if self.layout == "block" else 0)
        vocab = self.vocab_size if self.layout == "mqar" else 1 + self.keys + self.values + self.noise
        return Signature(total, self.length + 2 * self.pairs, Tokens(vocab), PerStep(self.values))

    @property
    def baseline(self):
        return 1.0 / self.values

    def _sample(self, rng, n):
        return self._mqar(rng, n) if self.layout == "mqar" else self._block(rng, n)

    def _block(self, rng, n):
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

    def _mqar(self, rng, n):
        """zoology's ``multiquery_ar`` (random_non_queries=True, one pass), vectorised."""
        p, q, half = self.pairs, self.queries, self.vocab_size // 2
        keys = 1 + rng.random((n, half - 1)).argsort(axis=1)[:, :p]  # distinct, in 1..half-1
        values = rng.random((n, self.values)).argsort(axis=1)[:, :p]  # distinct value classes
        x = rng.integers(0, self.vocab_size, size=(n, 2 * p + self.length)).astype(np.int32)
        x[:, 0 : 2 * p : 2] = keys
        x[:, 1 : 2 * p : 2] = half + values
        slots = self.length // 2
        law = self.power_a * np.arange(1, slots + 1) ** (self.power_a - 1)
        gumbel = -np.log(-np.log(rng.random((n, slots))))  # top-q of log p + Gumbel: q draws without replacement
        gaps = np.argsort(-(np.log(law / law.sum()) + gumbel), axis=1)[:, :q]
        asked = rng.random((n, p)).argsort(axis=1)[:, :q]
        where = 2 * p + 2 * gaps
        np.put_along_axis(x, where, np.take_along_axis(keys, asked, axis=1).astype(np.int32), axis=1)
        y = np.full(x.shape, IGNORE, dtype=np.int32)
        np.put_along_axis(y, where, np.take_along_axis(values, asked, axis=1).astype(np.int32), axis=1)
        return x, y

    def evaluate(self, y, prediction):
        asked = y != IGNORE
        return float((prediction.argmax(-1)[asked] == y[asked]).mean())
