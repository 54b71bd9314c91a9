"""Executors run RunSpecs, each in a fresh process, and yield records as they finish.

An executor is a function ``(specs, *, workers, timeout, plugins, on_start, **options) -> Iterator[record]``.
It never writes to the results store: the driver (``bench.sweep.run_sweep``) does, so a killed worker can
never leave a half-written record.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator

from bench.runner import record
from bench.runner.spec import RunSpec
from bench.sweep import jobs

# Default runs at a time per GPU. Provisional: scripts/gpu-check.sh measures runs per hour at 1, 2 and 4 workers
# per GPU and prints the best; set this from its table.
WORKERS_PER_GPU = 4  # measured on one H100 (JAX, LSTM(64) adding): runs/hour 252, 514, 887 at 1, 2, 4 workers (reports/gpu-h100)


def run_in_subprocess(spec_dict: dict, timeout: float | None = None, env: dict | None = None,
                      plugins: Iterable[str] = ()) -> dict:
    """Run one spec in a fresh Python process; a crash, kill or timeout still returns a record."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "record.json"
        cmd = [sys.executable, "-m", "bench.sweep.worker", json.dumps(spec_dict), str(out), *plugins]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, **(env or {}), "BENCH_PARENT_PID": str(os.getpid())})
        except subprocess.TimeoutExpired:
            return unfinished(spec_dict, "timeout", f"run exceeded its timeout of {timeout:g} s", started)
        if proc.returncode == 0 and out.is_file():
            return json.loads(out.read_text())
        if proc.returncode < 0:
            return unfinished(spec_dict, *_killed(-proc.returncode), started)
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or [""]
        return unfinished(spec_dict, "failed", f"worker exited with code {proc.returncode}: {tail[0]}", started)


def _killed(signum: int) -> tuple[str, str]:
    """Status and error of a worker killed by a signal: SIGKILL is what the out-of-memory killer sends."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGKILL:
        return "oom", f"worker killed by {name} (the out-of-memory killer's signal, or a kill -9)"
    return "failed", f"worker killed by {name}"


def unfinished(spec_dict: dict, status: str, error: str, started: float | None = None) -> dict:
    """The record of a run that produced none itself (timeout, killed worker, lost cluster task)."""
    wall = round(time.perf_counter() - started, 3) if started is not None else None
    return record.new(jobs.from_dict(spec_dict).fields(), status, error, finished_at=record.now(), wall_s=wall)


def gpu_ids() -> list[str]:
    """GPUs to pin workers to: those CUDA_VISIBLE_DEVICES lists, else those ``nvidia-smi -L`` finds."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


def worker_env(slot: int, workers: int, gpus: list[str]) -> dict:
    """A worker's GPU pin (slot ``i`` → GPU ``i`` mod count) and how many workers share its GPU; JAX told not to
    preallocate most of the card, so several workers fit on one GPU and peak memory is the run's own."""
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "false")}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
        env["BENCH_WORKERS_PER_GPU"] = str(len(range(slot % len(gpus), workers, len(gpus))))
    return env


def local(specs: Iterable[RunSpec], *, workers: int = 1, timeout: float | None = None, plugins=(),
          on_start: Callable[[RunSpec], None] | None = None, gpus: list[str] | None = None) -> Iterator[dict]:
    """Run specs on this machine, ``workers`` at a time, one fresh process per run.

    Worker slot ``i`` is pinned to GPU ``gpus[i % len(gpus)]`` via CUDA_VISIBLE_DEVICES (default: ``gpu_ids()``);
    a run takes whichever slot is free, so two runs never share a slot's GPU by accident.
    """
    gpus = gpu_ids() if gpus is None else gpus
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(workers):
        slots.put(slot)

    def one(spec: RunSpec) -> dict:
        slot = slots.get()
        try:
            if on_start:
                on_start(spec)
            return run_in_subprocess(spec.to_dict(), timeout, worker_env(slot, workers, gpus), plugins)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, spec) for spec in specs]
        for future in as_completed(futures):
            yield future.result()


def dask(specs: Iterable[RunSpec], *, workers: int = 1, timeout: float | None = None, plugins=(),
         on_start: Callable[[RunSpec], None] | None = None, scheduler: str | None = None) -> Iterator[dict]:
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
        with Client(scheduler or cluster) as client:
            futures = {client.submit(run_in_subprocess, spec.to_dict(), timeout, None, list(plugins),
                                     key=f"bench-run-{spec.run_id}", pure=False, retries=0): spec
                       for spec in specs}
            for future in completed(futures):
                try:
                    yield future.result()
                except Exception as e:  # the task's worker died or the cluster lost it: still a record
                    yield unfinished(futures[future].to_dict(), "failed", f"dask: {type(e).__name__}: {e}")
    finally:
        if cluster is not None:
            cluster.close()


EXECUTORS = {"local": local, "dask": dask}
