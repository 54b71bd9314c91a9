"""UCR/UEA time-series classification on their official TRAIN/TEST splits (files committed in tasks/data/files).

``length`` resamples each series to that many steps (evenly spaced steps of the original, nearest index),
so one dataset gives a score-against-length panel. JapaneseVowels' series vary in length (7–29 steps):
they are right-padded with zeros and masked, and a shorter ``length`` crops each to its first steps.
"""

from __future__ import annotations

import numpy as np

from tasks import data
from tasks.base import Classification, Features, Final, Signature, require
from tasks.registry import register


class UCR(Classification):
    """One UCR/UEA archive problem; ``length`` (default: the native length) is also the dependency."""

    archive_name: str
    native_length: int
    channels: int
    classes: int
    variable_length = False

    def __init__(self, length: int | None = None):
        length = self.native_length if length is None else length
        require(isinstance(length, int) and 1 <= length <= self.native_length,
                f"{self.name}: length must be an integer in 1..{self.native_length}, got {length!r}")
        self.length = length

    @property
    def params(self):
        return {"length": self.length}

    @property
    def signature(self):
        return Signature(self.length, self.length, Features(self.channels), Final(self.classes),
                         masked=self.variable_length)

    def _fit_length(self, case: np.ndarray) -> np.ndarray:
        if self.variable_length:  # crop, then right-pad with zeros (masked by the model's input head)
            case = case[: self.length]
            return np.pad(case, ((0, self.length - len(case)), (0, 0)))
        return case[np.linspace(0, len(case) - 1, self.length).round().astype(int)]

    def _load(self):
        out = []
        for split in ("TRAIN", "TEST"):
            cases, labels = data.ucr(self.archive_name, split)
            out += [np.stack([self._fit_length(c) for c in cases]).astype(np.float32), labels]
        return tuple(out)


@register("japanese_vowels")
class JapaneseVowels(UCR):
    """Nine speakers saying "ae": 12 LPC channels, 7–29 steps (right-padded, masked); 270 train, 370 test."""

    archive_name, native_length, channels, classes, variable_length = "JapaneseVowels", 29, 12, 9, True


@register("basic_motions")
class BasicMotions(UCR):
    """Smart-watch accelerometer and gyroscope (6 channels × 100 steps), 4 activities; 40 train, 40 test."""

    archive_name, native_length, channels, classes = "BasicMotions", 100, 6, 4


@register("osuleaf")
class OSULeaf(UCR):
    """Leaf outlines as one-channel series of 427 steps, 6 species; 200 train, 242 test."""

    archive_name, native_length, channels, classes = "OSULeaf", 427, 1, 6


@register("acsf1")
class ACSF1(UCR):
    """Power consumption of home appliances, 1,460 steps (one day), 10 appliance types; 100 train, 100 test."""

    archive_name, native_length, channels, classes = "ACSF1", 1460, 1, 10
