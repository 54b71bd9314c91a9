"""Difficulty ladders: a climb runs rung by rung and stops after two rungs a majority of seeds failed."""

from bench import cli
from bench.runner import record
from bench.sweep import driver, grid, ladder

SWEEP = {"ladder": True, "seeds": [0, 1, 2], "tasks": {"adding": {"length": [5, 10, 20, 40, 80]}},
         "models": {"lstm": {}, "gru": {}}}


def _solved(rows, solved_up_to: dict) -> dict:
    """Records of ``rows``: solved in every seed up to ``solved_up_to[model]``, else in seed 0 only."""
    return {r.spec.run_id: {"metrics": {"solved": r.spec.task_params["length"] <= solved_up_to[r.spec.model]
                                        or r.spec.seed == 0}}
            for r in rows}


def test_a_climb_goes_rung_by_rung_and_stops_after_two_failed_rungs():
    sweep = grid.expand(SWEEP)
    rows = [driver.Planned(spec, None) for spec in sweep.specs]
    todo, above = ladder.climb(rows, {})
    assert {(s.model, s.task_params["length"]) for s in todo} == {("lstm", 5), ("gru", 5)} and len(todo) == 6
    assert above == []
    records = _solved(rows, {"lstm": 10, "gru": 80})  # lstm: a majority fails from 20 on
    stored = [driver.Planned(r.spec, "ok") for r in rows]
    todo, above = ladder.climb(stored, records)
    assert todo == [] and {(r.spec.model, r.spec.task_params["length"]) for r in above} == {("lstm", 80)}
    partial = [driver.Planned(r.spec, None if r.spec.task_params["length"] == 40 else "ok") for r in rows]
    todo, above = ladder.climb(partial, records)
    assert {(s.model, s.task_params["length"]) for s in todo} == {("lstm", 40), ("gru", 40)} and above == []
    assert ladder.climb(partial, records, done=frozenset(s.run_id for s in todo))[0] == []


def test_a_ladder_sweep_trains_only_until_the_climb_stops(tmp_path, capsys):
    path = tmp_path / "ladder.yaml"
    path.write_text("name: ladder\nladder: true\nseeds: [0]\n"
                    "train: {steps: 2, eval_every: 2, val_size: 8, test_size: 8, gradient_flow: false}\n"
                    "tasks: {adding: {length: [4, 8, 16, 32]}}\nmodels: {rnn: {units: 4}}\n")
    argv = [str(path), "--results", str(tmp_path), "--workers", "1"]
    assert cli.main(["sweep", *argv, "--dry-run"]) == 0
    assert "ladder: each task's lengths are climbed per model, 4 runs at most; next round 1" in capsys.readouterr().out
    assert cli.main(["sweep", *argv]) == 0
    runs, _ = record.load(tmp_path, "ladder")
    assert sorted(r["task_params"]["length"] for r in runs) == [4, 8]  # two unsolved rungs end the climb
    assert cli.main(["sweep", *argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 above a climb's stop (not tried)" in out and out.count("not tried (ladder)") == 2
    assert cli.main(["report", "ladder", "--results", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0
