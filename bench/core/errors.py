"""Bad input: ``SpecError`` (one line, exit 2, before anything trains), and the checks of one value it comes from."""

from __future__ import annotations

import math
import re
import sys
import tempfile
from pathlib import Path

from bench.core.text import quote, short


MAX_LINE_CHARS = 400  # an error is one line a person reads, whatever value it quotes


class SpecError(ValueError):
    """A run or sweep was described with an impossible value."""


def one_line(error: BaseException) -> str | None:
    """The one line a command prints for ``error`` if it means bad input (a SpecError, TaskError, ModelError or
    OSError), else None (a bug: its traceback is worth more). Catching imports nothing: only the error types of
    modules already imported count (a command that trains nothing never loads Keras for it)."""
    loaded = [getattr(sys.modules[m], n) for m, n in (("models.registry", "ModelError"), ("tasks.base", "TaskError"))
              if m in sys.modules]
    if not isinstance(error, (SpecError, OSError, *loaded)):
        return None
    if isinstance(error, OSError) and error.strerror:
        text = f"{short(error.filename) + ': ' if error.filename else ''}{error.strerror}"
    else:
        text = " ".join(str(error).split())
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS - 3] + "..."


class StoreError(OSError):
    """The results store could not be written (a full disk, a folder made read-only): one line saying what was
    kept; the command line adds how to resume."""


SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # a sweep's name is its results folder: one path component


def sweep_name(value, where: str = "sweep") -> str:
    """A sweep's name (a folder under the results store, so one path component), else a SpecError naming ``where``."""
    if not isinstance(value, str) or not SWEEP_NAME.match(value):
        raise SpecError(f"{where}: must be letters, digits, '_', '.' or '-' (it names the results folder), "
                        f"got {quote(value)}")
    return value


def integer(value, where: str, minimum: int = 1, allow_none: bool = False) -> None:
    """An integer >= ``minimum`` (or None where allowed), else a SpecError naming ``where``."""
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(f"{where} must be an integer >= {minimum}{' or null' if allow_none else ''}, "
                        f"got {quote(value)}")


def positive(value, where: str, allow_none: bool = False, what: str = "a number") -> None:
    """A finite number > 0 (or None where allowed), else a SpecError naming ``where``."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{where} must be {what} > 0{' or null' if allow_none else ''}, got {quote(value)}")


def at_least(value, where: str, minimum: float = 0) -> None:
    """A finite number >= ``minimum``, else a SpecError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise SpecError(f"{where} must be a finite number >= {minimum:g}, got {quote(value)}")


def writable_folder(path: Path | str, flag: str) -> Path:
    """``path`` as a folder we can write in (created if missing), else a SpecError: checked before training."""
    path = Path(path)
    try:
        existing = next((p for p in [path, *path.parents] if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise SpecError(f"{flag} {short(path)}: {short(existing)} is a file, not a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise SpecError(f"{flag} {short(path)}: cannot write there ({e.strerror or e})") from None
    return path


def writable_file(path: Path | str, flag: str) -> Path:
    """``path`` as a file we can write (its folder must exist or be creatable), else a SpecError."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{flag} {short(path)}: is a folder; give a file name")
    writable_folder(path.parent, flag)
    return path
