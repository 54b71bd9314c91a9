"""What every task shares: its signature, its splits, its metric and its memoryless baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import functools

import numpy as np

SPLITS = ("train", "val", "test")
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1, "test": 2}
IGNORE = -1  # target label of positions that carry no loss (per-step tasks)


@dataclass(frozen=True)
class Tokens:
    """Integer token inputs in ``[0, vocab)``."""

    vocab: int


@dataclass(frozen=True)
class Features:
    """Real-valued inputs with ``channels`` features per step."""

    channels: int


@dataclass(frozen=True)
class PerStep:
    """A class per time step; targets equal to ``IGNORE`` carry no loss."""

    classes: int


@dataclass(frozen=True)
class Final:
    """One output per sequence: ``classes`` classes, or a real value when ``classes`` is None."""

    classes: int | None = None


@dataclass(frozen=True)
class Signature:
    """How a task meets a model: shapes in, shapes out, and the distance that matters."""

    length: int  # time steps fed to the model
    dependency: int  # distance the answer depends on (the x axis of the reports)
    input: Tokens | Features
    output: PerStep | Final
    masked: bool = False  # right-padded variable-length inputs; padding (token 0, all-zero features) is masked


class TaskError(ValueError):
    """A task was asked for with impossible parameters."""


class Task:
    """Base class: subclasses set the class attributes and implement ``_sample``.

    ``generate(split, n, seed)`` is deterministic in (parameters, split, n, seed). A sample belongs to
    exactly one split, decided by a hash of its input, so validation and test sets can never leak
    into training, whatever the seed.
    """

    name: ClassVar[str]
    metric: ClassVar[str]  # name of the headline metric
    higher_is_better: ClassVar[bool]
    solved_at: ClassVar[float]  # the metric value at or beyond which the task counts as solved

    @property
    def params(self) -> dict:
        """The task's parameters, as accepted by its constructor."""
        raise NotImplementedError

    @property
    def signature(self) -> Signature:
        raise NotImplementedError

    @property
    def baseline(self) -> float:
        """The metric a model with no memory achieves."""
        raise NotImplementedError

    def _sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def evaluate(self, y: np.ndarray, prediction: np.ndarray) -> float:
        """The headline metric of ``prediction`` (the model's raw output) against targets ``y``."""
        raise NotImplementedError

    def generate(self, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples ``(x, y)`` of ``split`` (train, val or test), deterministic in ``seed``."""
        if split not in SPLITS:
            raise TaskError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if n < 1:
            raise TaskError(f"n must be >= 1, got {n}")
        rng = np.random.default_rng([seed, _SPLIT_SEED_OFFSET[split], 0x5EED])
        return self._draw(rng, split, n)

    def batches(self, batch_size: int, seed: int = 0):
        """An endless stream of fresh training batches."""
        rng = np.random.default_rng([seed, _SPLIT_SEED_OFFSET["train"], 0xBA7C])
        while True:
            yield self._draw(rng, "train", batch_size)

    def _draw(self, rng, split, n):
        xs, ys, have = [], [], 0
        while have < n:
            x, y = self._sample(rng, max(n - have, 16) * 5 // 4 + 8)
            keep = split_of(x) == split
            xs.append(x[keep])
            ys.append(y[keep])
            have += int(keep.sum())
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n]

    def score(self, value: float) -> float:
        """Normalise a metric value: 0 is the memoryless baseline, 1 is perfect."""
        return normalised(value, self.baseline, self.higher_is_better)

    def solved(self, value: float) -> bool:
        return bool(value >= self.solved_at if self.higher_is_better else value <= self.solved_at)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def normalised(value: float, baseline: float, higher_is_better: bool) -> float:
    """A metric value on the scale 0 = the memoryless ``baseline``, 1 = perfect (1 for accuracy-like metrics,
    0 for errors); NaN where it is undefined."""
    perfect = 1.0 if higher_is_better else 0.0
    if perfect == baseline:
        return float("nan")
    return float((value - baseline) / (perfect - baseline))


class Dataset(Task):
    """A finite real dataset: the official train/test split, validation carved from train by the seed.

    Subclasses implement ``_load() -> (x_train, y_train, x_test, y_test)`` at the task's ``length`` (its
    dependency: a real sequence's answer may depend on any step). ``generate(split, n, seed)`` returns the
    first ``n`` samples of the fixed split (all of it when ``n`` is larger; the test split in one fixed
    shuffled order, so set ``test_size`` at least its size to score all of it); ``batches`` reshuffles the
    training part every epoch and yields each sample at most once per epoch; an epoch's last partial batch
    is dropped, so every batch has one shape (a batch larger than the training part is clamped to it).
    """

    val_fraction: ClassVar[float] = 0.1

    def _load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    @functools.cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x_train, y_train, x_test, y_test)`` of the official split, loaded once per task."""
        return self._load()

    def split(self, split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The whole of ``split``: train less the seed's validation part, that part, or the official test."""
        if split not in SPLITS:
            raise TaskError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        x_train, y_train, x_test, y_test = self.arrays
        if split == "test":  # one fixed order, so a prefix (the harness's test_size) is a random sample
            order = np.random.default_rng(0x7E57).permutation(len(x_test))
            return x_test[order], y_test[order]
        order = np.random.default_rng([seed, 0xDA7A]).permutation(len(x_train))
        n_val = max(1, round(self.val_fraction * len(x_train)))
        take = order[:n_val] if split == "val" else np.sort(order[n_val:])
        return x_train[take], y_train[take]

    def sizes(self, seed: int = 0) -> dict[str, int]:
        return {s: len(self.split(s, seed)[1]) for s in SPLITS}

    def generate(self, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        if n < 1:
            raise TaskError(f"n must be >= 1, got {n}")
        x, y = self.split(split, seed)
        return x[:n], y[:n]

    def batches(self, batch_size: int, seed: int = 0):
        """Endless epochs over the training part, each a fresh permutation: no sample twice within an epoch."""
        x, y = self.split("train", seed)
        batch_size = min(batch_size, len(x))
        rng = np.random.default_rng([seed, _SPLIT_SEED_OFFSET["train"], 0xBA7C])
        while True:
            order = rng.permutation(len(x))
            for start in range(0, len(x) - batch_size + 1, batch_size):
                take = order[start : start + batch_size]
                yield x[take], y[take]


class Classification(Dataset):
    """Whole-sequence classification: accuracy, against always answering the training split's majority class."""

    metric = "accuracy"
    higher_is_better = True
    solved_at = 1.0  # real data has no "solved": only a perfect validation score stops training early

    @property
    def baseline(self) -> float:
        _, y_train, _, y_test = self.arrays
        return float(np.mean(y_test == np.bincount(y_train).argmax()))

    def evaluate(self, y, prediction):
        return float((np.asarray(prediction).argmax(-1) == y).mean())


_HASH_WEIGHTS = np.random.default_rng(20161).integers(1, 2**62, size=1 << 16, dtype=np.uint64) | np.uint64(1)


def split_of(x: np.ndarray) -> np.ndarray:
    """The split each sample belongs to, from a hash of its input: 5 % val, 5 % test, 90 % train."""
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    words = flat.view(np.uint32) if flat.dtype.itemsize == 4 else flat.astype(np.int64).view(np.uint64)
    words = words.astype(np.uint64)
    weights = _HASH_WEIGHTS[np.arange(words.shape[1]) % len(_HASH_WEIGHTS)]
    with np.errstate(over="ignore"):
        h = (words * weights).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    bucket = h % np.uint64(20)
    return np.where(bucket == 0, "val", np.where(bucket == 1, "test", "train"))


def require(condition: bool, message: str) -> None:
    if not condition:
        raise TaskError(message)
