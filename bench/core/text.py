"""Values in one line a person reads: a quoted value cut short, a long path shortened, a duration as a clock."""

from __future__ import annotations

import reprlib
from pathlib import Path

_quoting = reprlib.Repr()
_quoting.maxlevel, _quoting.maxstring, _quoting.maxother, _quoting.maxlist, _quoting.maxdict = 3, 40, 40, 6, 6


def quote(value, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, nested containers elided (never builds a huge string)."""
    text = _quoting.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(path: Path | str, limit: int = 120) -> str:
    """A path, its middle elided when longer than ``limit`` characters."""
    text = str(path)
    return text if len(text) <= limit else text[: limit // 2] + "..." + text[-limit // 2:]


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"
