"""Sweep progress: one line per finished run, plus a live status line when the output is a terminal."""

from __future__ import annotations

import shutil
import sys
import threading
import time

from bench.core.text import clock


class Progress:
    """Runs done / total, the runs in flight, elapsed time and an estimate of the time left.

    ``started(label)`` and ``finished(label, line)`` may be called from any thread. Off a terminal only the
    finished lines are printed (CI logs stay readable); on one a live line under them shows what runs now.
    """

    def __init__(self, total: int, stream=None, live: bool | None = None):
        self.total, self.done, self.stream = total, 0, stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.running: dict[str, str] = {}
        self.start = time.perf_counter()
        self.lock = threading.Lock()

    def status(self) -> str:
        elapsed = time.perf_counter() - self.start
        eta = clock(elapsed / self.done * (self.total - self.done)) if self.done else "?"
        return f"{self.done}/{self.total} done, {clock(elapsed)} elapsed, eta {eta}"

    def started(self, key: str, label: str) -> None:
        with self.lock:
            self.running[key] = label
            self._draw()

    def finished(self, key: str, line: str) -> None:
        with self.lock:
            self.done += 1
            self.running.pop(key, None)
            self._clear()
            print(f"[{self.status()}] {line}", file=self.stream, flush=True)
            self._draw()

    def close(self) -> None:
        with self.lock:
            self._clear()

    def _draw(self) -> None:
        if self.live:
            now = ", ".join(self.running.values())
            text = f"{self.status()}" + (f" | running: {now}" if now else "")
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width])
            self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
