"""The adding problem (Hochreiter & Schmidhuber 1997): add the two marked numbers of a long sequence."""

from __future__ import annotations

import numpy as np

from tasks.base import Features, Final, Signature, Task, require
from tasks.registry import register

MARKERS = ("halves", "anywhere")


@register("adding")
class Adding(Task):
    """Inputs ``(length, 2)``: values U(0,1) and a marker channel with exactly two ones.

    The target is the sum of the two marked values. With ``markers="halves"`` (default) one marker
    lies in each half, so the first is up to ``length`` steps from the answer (the dependency);
    ``markers="anywhere"`` draws both anywhere, as Bai et al.'s TCN code does. Metric: MSE;
    memoryless baseline: always predicting 1.0, MSE = 1/6 ≈ 0.1667; solved at MSE <= 0.01.
    """

    metric = "mse"
    higher_is_better = False
    solved_at = 0.01

    def __init__(self, length: int = 100, markers: str = "halves"):
        require(isinstance(length, int) and length >= 2, f"adding: length must be an integer >= 2, got {length!r}")
        require(markers in MARKERS, f"adding: unknown markers {markers!r}; valid: {', '.join(MARKERS)}")
        self.length, self.markers = length, markers

    @property
    def params(self):
        return {"length": self.length, "markers": self.markers}

    @property
    def signature(self):
        return Signature(self.length, self.length, Features(2), Final(None))

    @property
    def baseline(self):
        return 1.0 / 6.0

    def _sample(self, rng, n):
        values = rng.random((n, self.length), dtype=np.float32)
        rows = np.arange(n)
        if self.markers == "halves":
            half = self.length // 2
            first = rng.integers(0, half, size=n)
            second = rng.integers(half, self.length, size=n)
        else:
            order = rng.random((n, self.length)).argsort(axis=1)
            first, second = order[:, 0], order[:, 1]
        marks = np.zeros((n, self.length), dtype=np.float32)
        marks[rows, first] = marks[rows, second] = 1.0
        y = (values[rows, first] + values[rows, second])[:, None]
        return np.stack([values, marks], axis=-1), y.astype(np.float32)

    def evaluate(self, y, prediction):
        return float(np.mean((np.asarray(prediction).reshape(y.shape) - y) ** 2))
