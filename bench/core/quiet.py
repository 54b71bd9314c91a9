"""Keep framework start-up noise (TensorFlow's and absl's native log lines) out of what a user reads.

Native code writes straight to file descriptor 2, whatever ``TF_CPP_MIN_LOG_LEVEL`` says (absl's "All log
messages before absl::InitializeLog()", "failed call to cuInit" on a CPU machine). ``native_stderr_to_log``
points descriptor 2 at a log file and keeps Python's ``sys.stderr`` (our messages, warnings, tracebacks) on the
terminal. BENCH_VERBOSE=1 leaves everything as it was.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

MAX_LOG_BYTES = 20 * 2**20  # a log larger than this starts afresh


def default_log() -> Path:
    return Path(tempfile.gettempdir()) / f"lstm-bench-{os.getuid()}.log"


def _open_log(path: Path) -> int | None:
    """A descriptor appending to ``path`` (started afresh past MAX_LOG_BYTES), or None where it cannot be written."""
    try:
        if path.is_file() and path.stat().st_size > MAX_LOG_BYTES:
            path.unlink()
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return None


def native_stderr_to_log(path: Path | str | None = None) -> Path | None:
    """Send descriptor 2 to ``path`` (default: BENCH_LOG, else a file in the temp folder); return the log's path.

    Children inherit BENCH_LOG and the descriptor, so worker processes log to the same file.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("BENCH_VERBOSE", "0") not in ("", "0"):
        return None
    path = Path(path or os.environ.get("BENCH_LOG") or default_log())
    log = _open_log(path)
    if log is None and path != default_log():  # an unwritable BENCH_LOG: say so, and log to the default instead
        fallback = default_log()
        log = _open_log(fallback)
        print(f"bench: warning: cannot write the log {path} (BENCH_LOG); framework messages go to "
              f"{fallback if log is not None else 'the terminal'}", file=sys.stderr, flush=True)
        path = fallback
    if log is None:
        return None
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = io.TextIOWrapper(io.FileIO(terminal, "w"), encoding=sys.stderr.encoding or "utf-8",
                                  errors="backslashreplace", line_buffering=True)
    os.environ["BENCH_LOG"] = str(path)
    return path
