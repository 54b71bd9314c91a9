"""Difficulty ladders: a climb runs rung by rung and stops after two rungs a majority of seeds failed."""

import pytest

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


def test_an_also_grid_adds_a_budget_and_longer_rungs_for_some_models_to_the_same_climbs():
    sweep = grid.expand({**SWEEP, "param_budget": 2000, "also": [
        {"tasks": {"adding": {"length": [160]}}, "models": {"gru": {}}},  # gru alone climbs one rung further
        {"param_budget": 8000, "tasks": {"adding": {"length": [5]}}, "models": {"lstm": {}}, "seeds": [0]}]})
    rows = [driver.Planned(spec, None) for spec in sweep.specs]
    climbs = {(r[0][1][0].spec.model, r[0][1][0].spec.model_params["param_budget"]): [n for n, _ in r]
              for r in ladder.rungs(rows).values()}
    assert climbs == {("lstm", 2000): [5, 10, 20, 40, 80], ("gru", 2000): [5, 10, 20, 40, 80, 160],
                      ("lstm", 8000): [5]}
    assert len(sweep.specs) == 2 * 5 * 3 + 3 + 1


def test_a_bad_also_grid_is_one_error_naming_it():
    import pytest

    for also, words in [({"tasks": {}}, "also: expected a non-empty list"), ([{"models": {"gru": {}}}],
                        r"also\[0\].tasks: required"), ([{"tasks": {"adding": {}}, "models": {"gru": {}}, "hp": 1}],
                        r"also\[0\].hp: unknown key")]:
        with pytest.raises(grid.SpecError, match=words):
            grid.expand({**SWEEP, "also": also})


def test_the_dry_run_estimates_worker_hours_every_run_to_its_cap_and_a_ladder_between_two_bounds():
    from bench.sweep import estimate

    sweep = grid.expand({**SWEEP, "param_budget": 25000, "train": {"steps": 1000}})
    rows = [driver.Planned(spec, None) for spec in sweep.specs]
    one = {s.task_params["length"]: estimate.run_seconds(s) for s in sweep.specs if s.model == "lstm"}
    assert all(one[a] < one[b] for a, b in zip([5, 10, 20, 40], [10, 20, 40, 80]))  # longer costs more
    assert estimate.run_seconds(sweep.specs[0], 0) == estimate.OVERHEAD_S
    cost = estimate.sweep_seconds(rows, {}, True)["adding"]
    first_two = sum(estimate.run_seconds(s) for s in sweep.specs if s.task_params["length"] in (5, 10))
    assert cost["floor"] == pytest.approx(first_two) and cost["ceiling"] > cost["floor"] and cost["runs"] == 30
    stored = [driver.Planned(r.spec, "ok") for r in rows]  # every rung stored: nothing left to pay
    assert estimate.sweep_seconds(stored, {}, True)["adding"]["ceiling"] == 0
    text = "\n".join(estimate.lines({"adding": cost}))
    assert "worker-hours" in text and f"{cost['floor'] / 3600:.1f}–{cost['ceiling'] / 3600:.1f}" in text
