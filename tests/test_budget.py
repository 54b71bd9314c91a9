"""Budgets are optimizer steps: ``--steps`` runs exactly that many; a wall-clock cap is a recorded safety net."""

import json

from bench import cli
from bench.runner.run import run
from bench.core.spec import RunSpec, TrainConfig


def test_steps_not_a_multiple_of_eval_every_runs_exactly_steps(tmp_path, capsys):
    argv = ["run", "--task", "adding", "--model", "gru", "--length", "6", "--hp", "units=8", "--steps", "150",
            "--eval-every", "100", "--train", "early_stop=false", "--train", "val_size=32",
            "--train", "test_size=32", "--train", "gradient_flow=false", "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    record = json.loads(open(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["record"]).read())
    assert record["status"] == "ok" and record["stop"] == "steps"
    assert record["steps"] == 150
    assert [h["step"] for h in record["history"]] == [100, 150]  # the last validation is at the budget


def test_wall_clock_cap_is_recorded_as_timeout():
    rec = run(RunSpec("adding", "gru", {"length": 6}, {"units": 8},
                      TrainConfig(steps=100_000, eval_every=50, max_seconds=0.5, early_stop=False, val_size=32,
                                  test_size=32, gradient_flow=False)))
    assert rec["status"] == "timeout" and rec["stop"] == "time" and "max_seconds" in rec["error"]
    assert 0 < rec["steps"] < 100_000 and rec["metrics"]["score"] is not None
