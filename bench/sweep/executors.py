"""Executors run specs of any kind (``bench.core.kinds``), each in a fresh process, and yield records as they finish.

An executor is a function ``(specs, *, workers, timeout, plugins, on_start, **options) -> Iterator[record]``.
It never writes to the results store: the driver (``bench.sweep.run_sweep``) does, so a killed worker can
never leave a half-written record.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator

from bench.core import backends, kinds
from bench.core.errors import SpecError
from bench.runner import record
from bench.runner import run as _train  # noqa: F401  (registers the train kind, which every sweep runs)
from bench.sweep.worker import READY

# Default runs at a time per GPU. Provisional: scripts/gpu-check.sh measures runs per hour at 1, 2 and 4 workers
# per GPU and prints the best; set this from its table.
WORKERS_PER_GPU = 4  # measured on one H100 (JAX, LSTM(64) adding): runs/hour 252, 514, 887 at 1, 2, 4 workers (reports/gpu-h100)


class Stopped(Exception):
    """The sweep is stopping (Ctrl-C, SIGTERM): a run cut short by it has no record."""


class Workers:
    """The worker processes in flight, so that a stopping driver can end them all at once."""

    def __init__(self):
        self.procs: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        _pools.append(self)

    def start(self, cmd: list[str], env: dict, **pipes) -> subprocess.Popen:
        """Start a worker (stdout discarded, stderr piped, unless ``pipes`` say otherwise)."""
        with self.lock:
            if self.stopping.is_set():
                raise Stopped()
            # a session of its own: a Ctrl-C at the terminal reaches the driver only, which ends the workers
            proc = subprocess.Popen(cmd, text=True, env=env, start_new_session=True,
                                    **{"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, **pipes})
            self.procs.add(proc)
            return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.procs.discard(proc)

    def stop(self, grace_s: float = 3.0) -> None:
        """End every worker: SIGTERM, then SIGKILL for any still alive after ``grace_s``."""
        with self.lock:
            self.stopping.set()
            procs = list(self.procs)
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait()


_pools: list[Workers] = []


def stop_all() -> None:
    """End every worker of this process's executors (the driver's Ctrl-C handler calls this)."""
    for pool in list(_pools):
        pool.stop()


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _one_run() -> Workers:
    workers = Workers()
    _pools.remove(workers)  # a lone run (a Dask task): nothing to stop from here
    return workers


def process_env(base: dict, backend: str | None) -> dict:
    """A worker's environment: ``base``, the backend its runs train on (where they have one) and the parent it
    watches (it exits when that process dies)."""
    return {**base, **({"KERAS_BACKEND": backend} if backend else {}), "BENCH_PARENT_PID": str(os.getpid())}


def run_in_subprocess(spec, timeout: float | None = None, env: dict | None = None,
                      plugins: Iterable[str] = (), workers: Workers | None = None,
                      save_model: str | None = None) -> dict:
    """Run one spec (of any kind) in a fresh Python process; a crash, kill or timeout still returns a record.

    With ``save_model`` (a path), the worker saves the trained model there. Raises Stopped if ``workers`` is
    stopping, before or during the run.
    """
    workers = workers or _one_run()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out, provisional = Path(tmp) / "record.json", Path(tmp) / "scored.json"
        cmd = [sys.executable, "-m", "bench.sweep.worker", kinds.entry(spec.kind).module, json.dumps(spec.to_dict()),
               str(out), *plugins]
        extra = {"BENCH_SAVE_MODEL": save_model} if save_model else {}
        extra[record.PROVISIONAL] = str(provisional)
        choice = backends.of(spec)  # the spec's backend, asked for or chosen by auto; a kind without one keeps ours
        started, kills = time.perf_counter(), oom_kills()
        proc = workers.start(cmd, process_env({**os.environ, **(env or {}), **extra}, choice.name if choice else None))
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.communicate()
            return _ended(spec, provisional, "timeout", f"run exceeded its timeout of {timeout:g} s", started)
        finally:
            workers.done(proc)
        if workers.stopping.is_set():
            raise Stopped()
        if proc.returncode == 0 and out.is_file():
            return with_worker_time(json.loads(out.read_text()), time.perf_counter() - started)
        return _exited(spec, provisional, proc.returncode, kills, stderr, plugins, started)


def _exited(spec, provisional: Path, code: int | None, kills: int | None, stderr: str, plugins, started: float) -> dict:
    """The record of a worker that exited with ``code`` and no record: killed by a signal (``oom`` only with
    evidence: the cgroup's kill count rose from ``kills``) or failed (its traceback's last line)."""
    if code is not None and code < 0:
        after = oom_kills()
        new_kills = after - kills if after is not None and kills is not None else None
        return _ended(spec, provisional, *killed(-code, new_kills), started)
    return _ended(spec, provisional, "failed", died(code, stderr, plugins), started)


def _ended(spec, provisional: Path, status: str, error: str, started: float) -> dict:
    """The record of a worker that ended without its final one: the record it left once scored, if it got that
    far (its score and status stand, ``post_error`` says how it ended), else an ``unfinished`` one."""
    return record.salvaged(provisional, error) or unfinished(spec, status, error, started)


def with_worker_time(rec: dict, seconds: float) -> dict:
    """A training record's split gains the worker process's whole wall time (start-up and imports included)."""
    if isinstance(rec.get("time_split"), dict):
        rec["time_split"]["worker_s"] = round(seconds, 3)
    return rec


def died(code: int, stderr: str, plugins) -> str:
    """Why a worker ended with no record: its traceback's last line, or, without one, that it just exited."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return f"worker exited with code {code}: {lines[-1][:300]}"
    named = f" (plugins: {', '.join(plugins)})" if plugins else ""
    return (f"worker exited with code {code} without a record or a traceback: code it ran called sys.exit or "
            f"os._exit, or the interpreter died{named}")


def oom_kills() -> int | None:
    """The out-of-memory killer's kill count in this process's memory cgroup, or None where none is readable:
    ``oom_kill`` in ``memory.events`` (cgroup v2) or ``memory.oom_control`` (v1)."""
    for path in _oom_files():
        try:
            for row in path.read_text().splitlines():
                key, _, value = row.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def _oom_files() -> list[Path]:
    root, files = Path("/sys/fs/cgroup"), []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, where = (line.split(":", 2) + ["", ""])[:3]
        where = where.lstrip("/")
        if controllers == "":
            files += [root / where / "memory.events", root / "memory.events"]
        elif "memory" in controllers.split(","):
            files += [root / "memory" / where / "memory.oom_control", root / "memory" / "memory.oom_control"]
    return files


def killed(signum: int, new_oom_kills: int | None = None) -> tuple[str, str]:
    """Status and error of a worker killed by a signal: ``oom`` only with evidence (the cgroup's oom_kill count
    rose during the run), else ``killed``."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGKILL and new_oom_kills:
        return "oom", f"worker killed by {name}; the out-of-memory killer killed {new_oom_kills} process(es) " \
                      f"in this cgroup meanwhile"
    if signum == signal.SIGKILL:
        return "killed", f"worker killed by {name} (no out-of-memory kill recorded in this cgroup)"
    return "failed", f"worker killed by {name}"


def unfinished(spec, status: str, error: str, started: float | None = None) -> dict:
    """The record of a run that produced none itself (timeout, killed worker, lost cluster task)."""
    wall = round(time.perf_counter() - started, 3) if started is not None else None
    return record.new(spec.fields(), status, error, finished_at=record.now(), wall_s=wall)


def default_workers() -> int:
    """Runs at a time by default: ``WORKERS_PER_GPU`` per GPU, else half the CPU cores."""
    return len(backends.gpu_ids()) * WORKERS_PER_GPU or max(1, (os.cpu_count() or 2) // 2)


def worker_env(slot: int, workers: int, gpus: list[str]) -> dict:
    """A worker's GPU pin (slot ``i`` → GPU ``i`` mod count) and how many workers share its GPU; JAX told not to
    preallocate most of the card, so several workers fit on one GPU and peak memory is the run's own."""
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "false")}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
        env["BENCH_WORKERS_PER_GPU"] = str(len(range(slot % len(gpus), workers, len(gpus))))
    return env


def local(specs: Iterable, *, workers: int = 1, timeout: float | None = None, plugins=(),
          on_start: Callable | None = None, gpus: list[str] | None = None,
          save_models: str | Path | None = None) -> Iterator[dict]:
    """Run specs on this machine, ``workers`` at a time, each slot a warm worker process (``Warm``)
    on the spec's backend, replaced after a crash, a timeout, a change of backend or its share of runs.

    Worker slot ``i`` is pinned to GPU ``gpus[i % len(gpus)]`` via CUDA_VISIBLE_DEVICES (default: ``backends.gpu_ids()``);
    a run takes whichever slot is free, so two runs never share a slot's GPU by accident. With ``save_models``
    (a folder), each run's model is saved there as ``<run_id>.keras``. Closing the iterator early (Ctrl-C in
    the driver) starts no further run and ends the running workers within seconds.
    """
    gpus = backends.gpu_ids() if gpus is None else gpus
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(workers):
        slots.put(slot)
    procs = Workers()
    most = runs_per_worker()
    warm = [Warm(procs, {**os.environ, **worker_env(slot, workers, gpus)}, plugins, most) for slot in range(workers)]

    def one(spec) -> dict:
        slot = slots.get()
        try:
            if procs.stopping.is_set():
                raise Stopped()
            if on_start:
                on_start(spec)
            model = str(Path(save_models) / f"{spec.run_id}.keras") if save_models else None
            choice = backends.of(spec)
            return warm[slot].run(spec, timeout, model, choice.name if choice else None)
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(one, spec) for spec in specs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        procs.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        for worker in warm:
            worker.close()
        _pools.remove(procs)


def dask(specs: Iterable, *, workers: int = 1, timeout: float | None = None, plugins=(),
         on_start: Callable | None = None, scheduler: str | None = None) -> Iterator[dict]:
    """Run specs as tasks on a Dask cluster, each in a fresh process on its worker; gather records here.

    ``scheduler`` is an existing cluster's address (``tcp://HOST:8786``); without one a LocalCluster of
    ``workers`` single-threaded processes is started and closed. Workers need lstm-bench (and any plugin
    module) installed; no shared filesystem is needed. The cluster reports no task starts: ``on_start``
    is unused.
    """
    from distributed import Client, LocalCluster
    from distributed import as_completed as completed

    cluster = None if scheduler else LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                                  dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with _client(Client, scheduler or cluster) as client:
            futures = {client.submit(run_in_subprocess, spec, timeout, None, list(plugins),
                                     key=f"bench-run-{spec.run_id}", pure=False, retries=0): spec
                       for spec in specs}
            for future in completed(futures):
                try:
                    yield future.result()
                except Exception as e:  # the task's worker died or the cluster lost it: still a record
                    yield unfinished(futures[future], "failed", f"dask: {record.describe(e)}")
    finally:
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------- warm workers

# One process runs many runs, so the frameworks are imported once: ``Warm`` starts ``python -m bench.sweep.worker
# --serve`` on one backend and hands it one spec at a time. Isolation is as with a fresh process per run: a crash,
# an out-of-memory kill or a timeout marks only the run in flight, and the next run starts a new process; so does
# a run of another backend, and every RUNS_PER_WORKER runs (``BENCH_RUNS_PER_WORKER``).
RUNS_PER_WORKER = 25  # then a fresh process: what one run leaks (memory, caches, threads) never piles up


def runs_per_worker() -> int:
    """``BENCH_RUNS_PER_WORKER``, else ``RUNS_PER_WORKER``: runs a warm worker serves before a fresh one (1: a fresh
    process per run, as before warm workers)."""
    text = os.environ.get("BENCH_RUNS_PER_WORKER", str(RUNS_PER_WORKER))
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"BENCH_RUNS_PER_WORKER must be a whole number of runs >= 1, got {text!r}")
    return int(text)


class Warm:
    """One slot's worker process, kept between runs (``run``) and replaced when it cannot be trusted."""

    def __init__(self, workers, env: dict, plugins=(), runs: int = RUNS_PER_WORKER):
        self.workers, self.env, self.plugins, self.most = workers, env, list(plugins), runs
        self.proc: subprocess.Popen | None = None
        self.backend: str | None = None
        self.runs = 0
        self.log = tempfile.TemporaryFile(mode="w+")  # the worker's stderr: a traceback's last line, if it dies

    def run(self, spec, timeout: float | None, save_model: str | None, backend: str | None) -> dict:
        if self.proc is not None and (self.backend != backend or self.runs >= self.most
                                      or self.proc.poll() is not None):
            self.close()
        if self.proc is None:
            self._start(backend)
        started, kills = time.perf_counter(), oom_kills()
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
            out, provisional = Path(tmp) / "record.json", Path(tmp) / "scored.json"
            job = {"spec": spec.to_dict(), "module": _module(spec), "out": str(out), "save_model": save_model,
                   "provisional": str(provisional)}
            try:
                self.proc.stdin.write(json.dumps(job) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it died between runs: its exit is read below
            answered = self._answer(timeout, started)
            if self.workers.stopping.is_set():
                self.close(kill=True)
                raise Stopped()
            if answered is None:  # past its timeout
                self.close(kill=True)
                return _ended(spec, provisional, "timeout", f"run exceeded its timeout of {timeout:g} s", started)
            if answered and out.is_file():
                self.runs += 1
                return with_worker_time(json.loads(out.read_text()), time.perf_counter() - started)
            return _exited(spec, provisional, self.close(), kills, self._stderr(), self.plugins, started)

    def _start(self, backend: str | None) -> None:
        self.log.seek(0)
        self.log.truncate()
        self.proc = self.workers.start([sys.executable, "-m", "bench.sweep.worker", "--serve", *self.plugins],
                                       process_env(self.env, backend),
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
        if kill:
            signal_group(proc, signal.SIGKILL)
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.wait()
        self.workers.done(proc)
        return proc.returncode


def _module(spec) -> str:
    return kinds.entry(spec.kind).module


def _client(client_class, address):
    """A Dask client of ``address``; one that cannot be reached within Dask's connect timeout
    (``distributed.comm.timeouts.connect``, 30 s) is a SpecError naming it."""
    try:
        return client_class(address)
    except (OSError, TimeoutError) as e:
        raise SpecError(f"--scheduler {address}: cannot reach the Dask scheduler ({record.describe(e)}); is it "
                        f"running, and is its address reachable from here?") from None


EXECUTORS = {"local": local, "dask": dask}
