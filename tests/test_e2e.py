"""End to end: real training on tiny budgets, through the sweep driver's worker processes and the report."""

import json

import numpy as np

from bench import cli
from bench.runner import record
from bench.runner.run import run
from bench.core.spec import RunSpec, TrainConfig

TINY = """
name: tiny
seeds: [0]
train: {steps: 30, eval_every: 15, val_size: 64, test_size: 64}
tasks:
  adding: {length: [6, 12]}
models:
  lstm: {units: 8}
  transformer: {d_model: 8, heads: 2, layers: 1}
"""


def test_lstm_learns_short_adding_problem():
    rec = run(RunSpec("adding", "lstm", {"length": 10}, {"units": 32},
                      TrainConfig(steps=600, eval_every=100, lr=0.01), seed=0))
    assert rec["status"] == "ok"
    assert rec["metrics"]["score"] > 0.5, rec["metrics"]  # well beyond the memoryless baseline


def test_diverging_run_is_recorded_as_diverged():
    rec = run(RunSpec("adding", "rnn", {"length": 10}, {"units": 16},
                      TrainConfig(steps=100, eval_every=20, lr=1e20, clipnorm=None), seed=0))
    assert rec["status"] == "diverged" and "NaN" in rec["error"]


def test_sweep_then_resume_then_report(tmp_path, capsys):
    sweep_file = tmp_path / "tiny.yaml"
    sweep_file.write_text(TINY)
    results, reports = tmp_path / "results", tmp_path / "reports"
    assert cli.main(["sweep", str(sweep_file), "--results", str(results), "--workers", "2"]) == 0
    records, skipped = record.load(results, "tiny")
    assert len(records) == 4 and not skipped and {r["status"] for r in records} == {"ok"}
    assert len({r["run_id"] for r in records}) == 4
    capsys.readouterr()
    assert cli.main(["sweep", str(sweep_file), "--results", str(results)]) == 0
    assert "4 stored, 0 to run" in capsys.readouterr().out
    (results / "tiny" / "junk.json").write_text("{not json")
    assert cli.main(["report", "tiny", "--results", str(results), "--out", str(reports)]) == 0
    index = (reports / "tiny" / "index.md").read_text()
    assert "score_vs_dependency.png" in index and "junk.json" in index
    assert (reports / "tiny" / "score_vs_dependency.png").stat().st_size > 1000
