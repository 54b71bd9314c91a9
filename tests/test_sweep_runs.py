"""Sweeps that really train (tiny budgets): a driver killed and resumed, the Dask executor, failures as data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import models
from bench import cli
from bench.sweep import executors
from bench.runner import record
from bench.core.spec import RunSpec, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = {"steps": 20, "eval_every": 10, "val_size": 32, "test_size": 32}

RESUME = f"""
name: resume
train: {json.dumps(TINY)}
tasks:
  adding: {{length: [6, 12]}}
models:
  lstm: {{units: 8}}
  gru: {{units: 8}}
"""

PLUGIN = '''
from models.registry import register

@register("broken_for_test")
def broken(x, *, units: int = 8):
    """A model whose build always raises."""
    raise RuntimeError("first line\\nthe mixer refuses to build")
'''

FAILURES = f"""
name: failures
train: {json.dumps(TINY)}
tasks:
  adding: {{length: 8}}
models:
  rnn: {{units: 8}}
  broken_for_test: {{}}
overrides:
  rnn: {{lr: 1.0e+30, clipnorm: null}}
"""


def test_a_dry_run_of_a_stored_budgeted_sweep_sizes_no_width(tmp_path, monkeypatch, capsys):
    """A fresh clone has no width cache: planning the stored runs takes their widths from the records, and a
    ladder's rungs above where every climb stopped are not sized at all."""
    from bench.core import widths as spec

    sweep_file = tmp_path / "budget.yaml"
    sweep_file.write_text(f"name: budget\nladder: true\nparam_budget: 600\ntrain: {json.dumps(TINY)}\n"
                          "tasks:\n  adding: {length: [6, 12, 24]}\nmodels:\n  gru: {}\n")
    monkeypatch.setattr(spec, "WIDTHS", tmp_path / "cache" / "widths.json")
    argv = [str(sweep_file), "--results", str(tmp_path)]
    assert cli.main(["sweep", *argv, "--workers", "1"]) == 0  # gru cannot learn adding in 20 steps: the climb stops
    assert len(list((tmp_path / "budget").glob("*.json"))) == 2
    spec.WIDTHS.unlink()
    spec.sized.cache_clear()
    spec._STORED_WIDTHS.clear()
    assert cli.main(["sweep", *argv, "--dry-run"]) == 0
    assert "next round 0; 1 above a climb's stop" in capsys.readouterr().out
    assert not spec.WIDTHS.exists()  # nothing was sized: no model was built to count its parameters


def _sweep(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bench.cli", "sweep", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def test_driver_killed_with_sigkill_then_resumed_loses_nothing_and_runs_each_once(tmp_path):
    sweep_file, results = tmp_path / "resume.yaml", tmp_path / "results"
    sweep_file.write_text(RESUME)
    folder = results / "resume"
    driver = _sweep(str(sweep_file), "--results", str(results), "--workers", "2")
    deadline = time.monotonic() + 120
    while not list(folder.glob("*.json")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}
    assert 1 <= len(first) < 4, first  # killed after some records, before all
    stale = folder / f".{'0' * 16}.999999999.x.tmp"  # what a driver killed inside write() leaves
    stale.write_text('{"half')
    resumed = _sweep(str(sweep_file), "--results", str(results), "--workers", "2")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert f"4 runs, {len(first)} stored, {4 - len(first)} to run" in out.splitlines()[0]
    assert not stale.exists() and not list(folder.glob(".*"))
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    assert len(records) == 4 and len({r["run_id"] for r in records}) == 4
    assert {r["status"] for r in records} == {"ok"} and all(r["metrics"]["score"] is not None for r in records)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json") if p.name in first} == first  # untouched


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(PLUGIN)
    yield path
    models.registry._MODELS.pop("broken_for_test", None)  # the test process imported it too


def test_dask_sweep_with_plugin_records_diverged_and_failed(tmp_path, plugin, capsys):
    sweep_file = tmp_path / "failures.yaml"
    sweep_file.write_text(FAILURES)
    argv = ["sweep", str(sweep_file), "--results", str(tmp_path), "--executor", "dask", "--workers", "2",
            "--plugin", str(plugin)]
    assert cli.main(argv) == 1  # a failed run makes the sweep exit non-zero
    out = capsys.readouterr().out
    assert "(dask executor, 2 workers)" in out and "summary: ok 0, diverged 1, oom 0, timeout 0, failed 1" in out
    records, skipped = record.load(tmp_path, "failures")
    by_model = {r["model"]: r for r in records}
    assert not skipped and set(by_model) == {"rnn", "broken_for_test"}
    assert by_model["rnn"]["status"] == "diverged" and by_model["rnn"]["metrics"]["diverged_at"] >= 1
    assert by_model["broken_for_test"]["status"] == "failed"
    assert by_model["broken_for_test"]["error"] == "RuntimeError: first line the mixer refuses to build"


def test_timeout_and_killed_worker_are_recorded(tmp_path):
    spec = RunSpec("adding", "gru", {"length": 6}, {"units": 4}, TrainConfig(**TINY), 0, "t")
    rec = executors.run_in_subprocess(spec, timeout=0.5)
    assert rec["status"] == "timeout" and rec["run_id"] == spec.run_id and "0.5 s" in rec["error"]
    suicide = tmp_path / "suicide.py"
    suicide.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    rec = executors.run_in_subprocess(spec, plugins=[str(suicide)])
    assert rec["status"] == "failed" and rec["error"] == "worker killed by SIGTERM"
    assert record.read(record.write(rec, tmp_path))["status"] == "failed"
