"""Copy memory (Arjovsky et al. 2016; Bai et al. 2018): see ten symbols, wait, then write them back."""

from __future__ import annotations

import numpy as np

from tasks.base import PerStep, Signature, Task, Tokens, require
from tasks.registry import register

SYMBOLS = 8  # symbols are tokens 1..8; 0 is blank
RECALL = 10  # how many symbols to remember
DELIMITER = 9
FILLS = ("blank", "delimiter")


@register("copy")
class Copy(Task):
    """``length + 20`` tokens: 10 symbols, ``length`` blanks whose last is the delimiter, 10 recall steps.

    The model must output the 10 symbols during the last 10 steps and blank everywhere else; each
    symbol is exactly ``length + 10`` steps before its recall (the task's dependency). The metric is
    accuracy on the 10 recall positions only (memoryless baseline 1/8; solved at 0.99): accuracy
    over all positions would credit a model that outputs blanks with (length+10)/(length+20).
    ``fill="delimiter"`` fills the recall phase with delimiters, as Bai et al.'s TCN code does.
    """

    metric = "recall_accuracy"
    higher_is_better = True
    solved_at = 0.99

    def __init__(self, length: int = 100, fill: str = "blank"):
        require(isinstance(length, int) and length >= 1, f"copy: length must be an integer >= 1, got {length!r}")
        require(fill in FILLS, f"copy: unknown fill {fill!r}; valid: {', '.join(FILLS)}")
        self.length, self.fill = length, fill

    @property
    def params(self):
        return {"length": self.length, "fill": self.fill}

    @property
    def signature(self):
        return Signature(self.length + 2 * RECALL, self.length + RECALL, Tokens(DELIMITER + 1), PerStep(SYMBOLS + 1))

    @property
    def baseline(self):
        return 1.0 / SYMBOLS

    @property
    def cross_entropy_baseline(self) -> float:
        """Mean cross-entropy over all positions of the best memoryless model: 10·ln 8 / (length+20)."""
        return RECALL * np.log(SYMBOLS) / (self.length + 2 * RECALL)

    def _sample(self, rng, n):
        total = self.length + 2 * RECALL
        symbols = rng.integers(1, SYMBOLS + 1, size=(n, RECALL), dtype=np.int32)
        x = np.zeros((n, total), dtype=np.int32)
        x[:, :RECALL] = symbols
        x[:, self.length + RECALL - 1] = DELIMITER
        if self.fill == "delimiter":
            x[:, self.length + RECALL :] = DELIMITER
        y = np.zeros((n, total), dtype=np.int32)
        y[:, -RECALL:] = symbols
        return x, y

    def evaluate(self, y, prediction):
        return float((prediction[:, -RECALL:].argmax(-1) == y[:, -RECALL:]).mean())

    def extra_metrics(self, y, prediction):
        logits = prediction - prediction.max(-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        ce = -np.take_along_axis(log_probs, y[..., None], axis=-1).mean()
        return {"cross_entropy": float(ce), "cross_entropy_baseline": float(self.cross_entropy_baseline)}
