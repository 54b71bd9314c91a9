"""Selective copy (Gu & Dao 2023) and temporal order (Hochreiter & Schmidhuber 1997): find the few tokens that
matter among many that do not, and keep their order."""

from __future__ import annotations

import numpy as np

from tasks.base import IGNORE, Final, PerStep, Signature, Task, Tokens, require
from tasks.registry import register


@register("selective_copy")
class SelectiveCopy(Task):
    """``tokens`` symbols at random positions among ``length`` blanks, then ``tokens`` recall markers.

    Token 0 is blank, 1..``symbols`` the symbols, ``symbols + 1`` the recall marker. At the i-th marker
    the model outputs the i-th symbol in order of appearance; unlike copy, where the symbols sit is random,
    so a fixed delay cannot solve it. Dependency ``length + tokens``: from the first possible symbol to the
    last output. Metric: accuracy at the markers (baseline 1/symbols; solved at 0.99).
    """

    metric = "recall_accuracy"
    higher_is_better = True
    solved_at = 0.99

    def __init__(self, length: int = 100, tokens: int = 8, symbols: int = 8):
        require(isinstance(tokens, int) and tokens >= 1, f"selective_copy: tokens must be an integer >= 1, got {tokens!r}")
        require(isinstance(length, int) and length >= tokens,
                f"selective_copy: length must be an integer >= tokens ({tokens}), got {length!r}")
        require(isinstance(symbols, int) and symbols >= 2, f"selective_copy: symbols must be >= 2, got {symbols!r}")
        self.length, self.tokens, self.symbols = length, tokens, symbols

    @property
    def params(self):
        return {"length": self.length, "tokens": self.tokens, "symbols": self.symbols}

    @property
    def signature(self):
        return Signature(self.length + self.tokens, self.length + self.tokens, Tokens(self.symbols + 2),
                         PerStep(self.symbols + 1))

    @property
    def baseline(self):
        return 1.0 / self.symbols

    def _sample(self, rng, n):
        k = self.tokens
        where = np.sort(rng.random((n, self.length)).argsort(axis=1)[:, :k], axis=1)
        symbols = rng.integers(1, self.symbols + 1, size=(n, k), dtype=np.int32)
        x = np.zeros((n, self.length + k), dtype=np.int32)
        np.put_along_axis(x, where, symbols, axis=1)
        x[:, -k:] = self.symbols + 1
        y = np.full(x.shape, IGNORE, dtype=np.int32)
        y[:, -k:] = symbols
        return x, y

    def evaluate(self, y, prediction):
        asked = y != IGNORE
        return float((prediction.argmax(-1)[asked] == y[asked]).mean())


@register("temporal_order")
class TemporalOrder(Task):
    """Hochreiter & Schmidhuber's task 6a: which of X/Y came first and second among distractors (4 classes).

    Tokens: B (start) E (end) X Y and four distractors a–d. Position 0 is B, the last E; the first relevant
    symbol sits in [10 %, 20 %) of the sequence, the second in [50 %, 60 %), everything else is a
    distractor. Classes: XX, XY, YX, YY (balanced). Dependency: ``length - ⌊length/10⌋``, from the earliest
    first symbol to the answer. Metric: accuracy (baseline 1/4; solved at 0.95).
    """

    metric = "accuracy"
    higher_is_better = True
    solved_at = 0.95
    B, E, X, Y, DISTRACTORS = 0, 1, 2, 3, (4, 5, 6, 7)

    def __init__(self, length: int = 100):
        require(isinstance(length, int) and length >= 10, f"temporal_order: length must be an integer >= 10, got {length!r}")
        self.length = length

    @property
    def params(self):
        return {"length": self.length}

    @property
    def signature(self):
        return Signature(self.length, self.length - self.length // 10, Tokens(8), Final(4))

    @property
    def baseline(self):
        return 0.25

    def windows(self) -> tuple[tuple[int, int], tuple[int, int]]:
        t = self.length
        return (max(1, t // 10), t // 5), (t // 2, t * 3 // 5)

    def _sample(self, rng, n):
        (a0, a1), (b0, b1) = self.windows()
        x = rng.integers(self.DISTRACTORS[0], self.DISTRACTORS[-1] + 1, size=(n, self.length), dtype=np.int32)
        x[:, 0], x[:, -1] = self.B, self.E
        y = rng.integers(0, 4, size=n).astype(np.int32)  # bit 1: first symbol is Y; bit 0: second is Y
        rows = np.arange(n)
        x[rows, rng.integers(a0, a1, size=n)] = self.X + (y >> 1)
        x[rows, rng.integers(b0, b1, size=n)] = self.X + (y & 1)
        return x, y

    def evaluate(self, y, prediction):
        return float((np.asarray(prediction).argmax(-1) == y).mean())
