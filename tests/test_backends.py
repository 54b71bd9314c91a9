"""The harness on Keras' other backends: a real run and a speed measurement in a subprocess per backend."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(module) is None,
                                                         reason=f"{module} is not installed"))
            for name, module in (("jax", "jax"), ("torch", "torch"))]


def bench(backend, *argv):
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_trains_and_is_recorded_on_another_backend(backend, tmp_path):
    out = bench(backend, "run", "--task", "copy", "--model", "lstm", "--length", "4", "--steps", "20",
                "--eval-every", "10", "--results", str(tmp_path))
    record = json.loads(open(json.loads(out.strip().splitlines()[-1])["record"]).read())
    assert record["status"] == "ok" and record["env"]["backend"] == backend and len(record["history"]) == 2
    assert record["jit_compile"] == (backend == "jax")  # Keras' own choice there: JAX compiles, PyTorch does not
    assert record["gradient_flow"]["final"]["grad_norm"] and record["speed"]["step_ms_median"] > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_speed_and_its_breakdown_run_on_another_backend(backend, tmp_path):
    bench(backend, "speed", "--models", "gru,transformer", "--units", "8", "--batch", "2", "--lengths", "8",
          "--min-steps", "3", "--min-seconds", "0", "--warmup", "0", "--breakdown", "--results", str(tmp_path))
    records = [json.loads(p.read_text()) for p in (tmp_path / "speed").glob("*.json")]
    assert sorted(r["model"] for r in records) == ["gru", "transformer"]
    assert all(r["status"] == "ok" and r["env"]["backend"] == backend for r in records)
    assert [r["matmul_floor"]["floor_ms"] > 0 for r in records if r["model"] == "gru"] == [True]
