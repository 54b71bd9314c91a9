"""Warm workers: one Python process runs many runs, so the frameworks are imported once, not once per run.

The driver's side (``Warm``) starts ``python -m bench.sweep.warm PLUGIN ...`` on one backend and hands it one
spec at a time on its stdin; the worker runs it like a fresh one would (``bench.sweep.worker``), clears Keras'
state, writes the record to the file named with the spec and answers on its own channel. Isolation is as with a
fresh process per run: a crash, an out-of-memory kill or a timeout marks only the run in flight, and the next run
starts a new process; so does a run of another backend, and every ``RUNS_PER_WORKER`` runs.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS_PER_WORKER = 25  # then a fresh process: what one run leaks (memory, caches, threads) never piles up
READY = "done"


class Warm:
    """One slot's worker process, kept between runs (``run``) and replaced when it cannot be trusted."""

    def __init__(self, workers, env: dict, plugins=()):
        self.workers, self.env, self.plugins = workers, env, list(plugins)
        self.proc: subprocess.Popen | None = None
        self.backend: str | None = None
        self.runs = 0
        self.log = tempfile.TemporaryFile(mode="w+")  # the worker's stderr: a traceback's last line, if it dies

    def run(self, spec, timeout: float | None, save_model: str | None, backend: str | None) -> dict:
        from bench.sweep import executors

        if self.proc is not None and (self.backend != backend or self.runs >= RUNS_PER_WORKER
                                      or self.proc.poll() is not None):
            self.close()
        if self.proc is None:
            self._start(backend)
        started, kills = time.perf_counter(), executors.oom_kills()
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
            out = Path(tmp) / "record.json"
            job = {"spec": spec.to_dict(), "module": _module(spec), "out": str(out), "save_model": save_model}
            try:
                self.proc.stdin.write(json.dumps(job) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it died between runs: its exit is read below
            answered = self._answer(timeout, started)
            if self.workers.stopping.is_set():
                self.close(kill=True)
                raise executors.Stopped()
            if answered is None:  # past its timeout
                self.close(kill=True)
                return executors.unfinished(spec, "timeout", f"run exceeded its timeout of {timeout:g} s", started)
            if answered and out.is_file():
                self.runs += 1
                return executors.with_worker_time(json.loads(out.read_text()), time.perf_counter() - started)
        code = self.close()
        if code is not None and code < 0:
            after = executors.oom_kills()
            new_kills = after - kills if after is not None and kills is not None else None
            return executors.unfinished(spec, *executors.killed(-code, new_kills), started)
        return executors.unfinished(spec, "failed", executors.died(code, self._stderr(), self.plugins), started)

    def _start(self, backend: str | None) -> None:
        self.log.seek(0)
        self.log.truncate()
        env = {**self.env, **({"KERAS_BACKEND": backend} if backend else {}), "BENCH_PARENT_PID": str(os.getpid())}
        self.proc = self.workers.start([sys.executable, "-m", "bench.sweep.warm", *self.plugins], env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.backend, self.runs = backend, 0

    def _answer(self, timeout: float | None, started: float) -> bool | None:
        """True when the worker reports the run done, False when it died first, None past ``timeout``."""
        while True:
            left = None if timeout is None else timeout - (time.perf_counter() - started)
            if left is not None and left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            line = self.proc.stdout.readline()
            if not line:
                return False
            if line.strip() == READY:
                return True

    def _stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-20000:]

    def close(self, kill: bool = False) -> int | None:
        """End the worker (if any): between runs by closing its input, mid-run (``kill``) at once; its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        from bench.sweep import executors

        if kill:
            executors.signal_group(proc, signal.SIGKILL)
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            executors.signal_group(proc, signal.SIGKILL)
            proc.wait()
        self.workers.done(proc)
        return proc.returncode


def _module(spec) -> str:
    from bench.core import kinds
    return kinds.entry(spec.kind).module


def serve(plugin_refs: list[str]) -> int:
    """The worker's loop: one job per stdin line, one ``done`` per finished run on the answer channel."""
    from bench.sweep.worker import exit_with_parent

    exit_with_parent(int(os.environ.get("BENCH_PARENT_PID", os.getppid())))
    answers = os.fdopen(os.dup(1), "w")  # the channel; what a run prints goes to the log with stderr
    os.dup2(2, 1)
    from bench.core import quiet

    quiet.native_stderr_to_log()
    from bench.core import kinds, plugins
    from bench.core.errors import SpecError
    from bench.runner import record

    try:
        plugins.load(plugin_refs)
        failure = None
    except SpecError as e:  # the plugin failed to import here (it imported in the driver): failed records
        failure = str(e)
    for line in sys.stdin:
        job = json.loads(line)
        spec = kinds.from_dict(job["spec"], job["module"])
        if failure is not None:
            from bench.sweep.executors import unfinished
            result = unfinished(spec, "failed", failure)
        else:
            result = kinds.run(spec, job["save_model"])
            _clear()
        Path(job["out"]).write_text(record.hand_off(result))
        answers.write(READY + "\n")
        answers.flush()
    return 0


def _clear() -> None:
    """Keras' global state back to a fresh process's, as far as Keras can: names, graphs, caches."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
