"""Executors run RunSpecs, each in a fresh process, and yield records as they finish.

An executor never writes to the results store: the driver (``bench.sweep_runner``) does, so a killed
worker can never leave a half-written record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Iterable, Iterator

from bench import record
from bench.spec import RunSpec


def run_in_subprocess(spec_dict: dict, timeout: float | None = None, env: dict | None = None) -> dict:
    """Run one spec in a fresh Python process; a crash, kill or timeout still returns a record."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "record.json"
        cmd = [sys.executable, "-m", "bench.worker", json.dumps(spec_dict), str(out)]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, **(env or {})})
        except subprocess.TimeoutExpired:
            return _unfinished(spec_dict, "timeout", f"run exceeded its timeout of {timeout:g} s", started)
        if proc.returncode == 0 and out.is_file():
            return json.loads(out.read_text())
        status = "oom" if proc.returncode in (-9, 137) else "failed"
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or [""]
        return _unfinished(spec_dict, status, f"worker exited with code {proc.returncode}: {tail[0]}", started)


def _unfinished(spec_dict: dict, status: str, error: str, started: float) -> dict:
    spec = RunSpec.from_dict(spec_dict)
    return {"schema": record.SCHEMA, "run_id": spec.run_id, **spec.to_dict(), "status": status, "error": error,
            "finished_at": record.now(), "wall_s": round(time.perf_counter() - started, 3)}


def local(specs: Iterable[RunSpec], workers: int = 1, timeout: float | None = None) -> Iterator[dict]:
    """Run specs on this machine, ``workers`` at a time, one fresh process per run.

    With GPUs visible (CUDA_VISIBLE_DEVICES lists them), worker slot i is pinned to GPU i mod count.
    """
    gpus = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for i, spec in enumerate(specs):
            env = {"CUDA_VISIBLE_DEVICES": gpus[i % workers % len(gpus)]} if gpus else None
            futures.append(pool.submit(run_in_subprocess, spec.to_dict(), timeout, env))
        for future in as_completed(futures):
            yield future.result()
