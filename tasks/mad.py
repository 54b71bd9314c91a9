"""Recall variants: MAD's noisy recall (Poli et al. 2024) and zoology's MQAR with power-law gaps (Arora et al. 2023).

Both use the token layout of ``recall``: 0 is blank, then ``keys`` key tokens, ``values`` value tokens and
``noise`` noise tokens; the model outputs a value at each query position (IGNORE elsewhere).
"""

from __future__ import annotations

import numpy as np

from tasks.base import IGNORE, PerStep, Signature, Task, Tokens, require
from tasks.registry import register


class _Recall(Task):
    metric = "query_accuracy"
    higher_is_better = True
    solved_at = 0.95

    def __init__(self, length, pairs, keys, values, noise):
        require(isinstance(length, int) and length >= pairs,
                f"{self.name}: length must be an integer >= pairs ({pairs}), got {length!r}")
        require(isinstance(pairs, int) and 1 <= pairs <= keys, f"{self.name}: pairs must be in 1..keys ({keys}), got {pairs!r}")
        require(values >= 2, f"{self.name}: values must be >= 2, got {values!r}")
        self.length, self.pairs, self.keys, self.values, self.noise = length, pairs, keys, values, noise

    @property
    def params(self):
        return {"length": self.length, "pairs": self.pairs, "keys": self.keys, "values": self.values}

    @property
    def vocab(self) -> int:
        return 1 + self.keys + self.values + self.noise

    @property
    def baseline(self):
        return 1.0 / self.values

    def _facts(self, rng, n):
        """Distinct keys (tokens) and their values (0-based classes), ``(n, pairs)`` each."""
        keys = 1 + rng.random((n, self.keys)).argsort(axis=1)[:, : self.pairs]
        return keys, rng.integers(0, self.values, size=(n, self.pairs))

    def _noise(self, rng, shape):
        start = 1 + self.keys + self.values
        return rng.integers(start, start + self.noise, size=shape)

    def evaluate(self, y, prediction):
        asked = y != IGNORE
        return float((prediction.argmax(-1)[asked] == y[asked]).mean())


@register("noisy_recall")
class NoisyRecall(_Recall):
    """MAD's noisy in-context recall: ``pairs`` key→value pairs with ``length`` noise tokens scattered between
    and after them (a pair is never split), then every key once as a query, in random order.

    Unlike ``recall`` the noise interleaves with the facts, so a model must skip it while storing.
    Dependency ``length + 2·pairs``: the most a fact can precede the first query. Metric: query accuracy
    (baseline 1/values; solved at 0.95).
    """

    def __init__(self, length: int = 100, pairs: int = 4, keys: int = 16, values: int = 16, noise: int = 8):
        require(isinstance(noise, int) and noise >= 1, f"noisy_recall: noise must be an integer >= 1, got {noise!r}")
        super().__init__(length, pairs, keys, values, noise)

    @property
    def params(self):
        return {**super().params, "noise": self.noise}

    @property
    def signature(self):
        return Signature(2 * self.pairs + self.length + self.pairs, self.length + 2 * self.pairs,
                         Tokens(self.vocab), PerStep(self.values))

    def _sample(self, rng, n):
        p, body = self.pairs, 2 * self.pairs + self.length
        keys, values = self._facts(rng, n)
        # pair i starts after i earlier pairs and a sorted random count of noise tokens
        before = np.sort(rng.integers(0, self.length + 1, size=(n, p)), axis=1)
        starts = before + 2 * np.arange(p)
        x = np.empty((n, body + p), dtype=np.int32)
        x[:, :body] = self._noise(rng, (n, body))
        np.put_along_axis(x, starts, keys, axis=1)
        np.put_along_axis(x, starts + 1, 1 + self.keys + values, axis=1)
        order = rng.random((n, p)).argsort(axis=1)
        x[:, body:] = np.take_along_axis(keys, order, axis=1)
        y = np.full(x.shape, IGNORE, dtype=np.int32)
        y[:, body:] = np.take_along_axis(values, order, axis=1)
        return x, y


@register("powerlaw_recall")
class PowerLawRecall(_Recall):
    """zoology's MQAR: ``pairs`` key→value pairs, then ``length`` blank steps where each key reappears once as
    a query, at a gap g after the facts drawn (without replacement) with P(g) ∝ g^(alpha-1): most queries come
    soon, a few late. Dependency ``length + 2·pairs`` (the longest possible gap; most are far shorter).
    Metric: query accuracy (baseline 1/values; solved at 0.95).
    """

    def __init__(self, length: int = 100, pairs: int = 4, alpha: float = 0.1, keys: int = 16, values: int = 16):
        require(isinstance(alpha, (int, float)) and 0 < alpha <= 1, f"powerlaw_recall: alpha must be in (0, 1], got {alpha!r}")
        super().__init__(length, pairs, keys, values, noise=0)  # blanks (token 0) between the queries
        self.alpha = alpha

    @property
    def params(self):
        return {**super().params, "alpha": self.alpha}

    @property
    def signature(self):
        return Signature(2 * self.pairs + self.length, self.length + 2 * self.pairs, Tokens(self.vocab),
                         PerStep(self.values))

    def gap_probabilities(self) -> np.ndarray:
        weights = np.arange(1, self.length + 1, dtype=np.float64) ** (self.alpha - 1)
        return weights / weights.sum()

    def _sample(self, rng, n):
        p = self.pairs
        keys, values = self._facts(rng, n)
        x = np.zeros((n, 2 * p + self.length), dtype=np.int32)
        x[:, 0 : 2 * p : 2], x[:, 1 : 2 * p : 2] = keys, 1 + self.keys + values
        probabilities = self.gap_probabilities()
        gaps = np.stack([rng.choice(self.length, size=p, replace=False, p=probabilities) for _ in range(n)])
        where = 2 * p + gaps  # gap g (1-based) is column 2p + g - 1
        np.put_along_axis(x, where, keys, axis=1)
        y = np.full(x.shape, IGNORE, dtype=np.int32)
        np.put_along_axis(y, where, values, axis=1)
        return x, y
