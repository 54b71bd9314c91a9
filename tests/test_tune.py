"""Tuning: registry models as keras-tuner HyperModels, trials as run records through the sweep executors, resume
from the records alone, stable ties, one driver per folder, chief + workers."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner
import pytest

import models
from bench import cli
from bench.core.spec import TrainConfig
from bench.report import tune as report_tune
from bench.runner import record
from bench.sweep import executors
from bench.tune import study as tune, table, trials as found
from bench.tune.stored import tuned_params, with_tuned

TINY = TrainConfig(steps=10, eval_every=5, val_size=32, test_size=32, gradient_flow=False, early_stop=False)
BUILTIN = ("rnn", "lstm", "gru", "bilstm", "stacked_lstm", "transformer")


def fake_record(spec, val: float = 0.0, steps_to_solve: int | None = 10) -> dict:
    """The record of a trial as a worker would return it, without training: ``val`` its last validation metric."""
    return record.new(spec.fields(), "ok", history=[{"step": 10, "val": val}], started_at=record.now(),
                      metrics={"score": 1.0, "steps_to_solve": steps_to_solve})


def fake_executor(calls: list, val=lambda spec: 0.0, stop_after: int | None = None):
    """An executor that records what it was asked to run (``calls``) and returns ``fake_record``s; after
    ``stop_after`` records it stops as Ctrl-C would."""
    def local(specs, **_):
        for spec in specs:
            if stop_after is not None and len(calls) >= stop_after:
                raise KeyboardInterrupt
            calls.append(spec.run_id)
            yield fake_record(spec, val(spec))
    return local


def tune_argv(results, trials, *extra):
    return ["tune", "--task", "adding", "--length", "6", "--model", "gru", "--trials", str(trials), "--steps", "10",
            "--eval-every", "5", "--hp", "units=8", "--train", "val_size=32", "--train", "test_size=32",
            "--train", "gradient_flow=false", "--results", str(results), *extra]


def trial_records(results, sweep="tune"):
    records, skipped = record.load(results, sweep)
    assert not skipped
    return [r for r in records if "tune" in r]


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_model_declares_a_search_space_of_its_own_hyperparameters(name):
    entry = models.entry(name)
    assert entry.space and set(entry.space) <= set(entry.defaults) and tune.LR not in entry.space
    hp = keras_tuner.HyperParameters()
    params, lr = tune.RegistryHyperModel(tune.Study("adding", {"length": 6}, name, TINY, {})).values(hp)
    assert set(params) == set(entry.space)
    lr_hp = hp.get_config()["space"][0]["config"]
    assert lr_hp["name"] == "lr" and lr_hp["sampling"] == "log" and (lr_hp["min_value"], lr_hp["max_value"]) == \
        tune.LR_RANGE


def test_fixed_hyperparameters_leave_the_search_and_ranges_become_int_or_float():
    assert "units" not in tune.search_space("lstm", {"units": 16})
    hp = keras_tuner.HyperParameters()
    assert isinstance(tune.declare(hp, "layers", (1, 3)), int) and isinstance(tune.declare(hp, "p", (0.0, 0.5)), float)
    assert tune.declare(hp, "act", ["tanh", "relu"]) == "tanh"


def test_trials_are_run_records_and_the_best_is_stored_for_hp_tuned(tmp_path, capsys):
    assert cli.main(tune_argv(tmp_path, 2)) == 0
    trials = trial_records(tmp_path)
    assert len(trials) == 2 and {r["status"] for r in trials} == {"ok"}
    assert all(r["steps"] == 10 and r["model_params"]["units"] == 8 for r in trials)
    assert len({r["train"]["lr"] for r in trials}) == 2  # the learning rate is searched
    best = max(trials, key=lambda r: r["tune"]["val_score"])
    found = tuned_params(tmp_path, "adding", {"length": 6}, "gru")
    assert found["train"]["lr"] == best["train"]["lr"] and found["model_params"] == best["model_params"]
    assert found["trials"] == 2 and found["steps"] == 10
    assert tuned_params(tmp_path, "adding", {"length": 7}, "gru") is None
    assert tuned_params(tmp_path, "adding", {"length": 6}, "lstm") is None
    lines = report_tune.section(trials, tmp_path)  # the report section reads these records
    assert "# Tuning" in lines and (tmp_path / "tune_score_vs_lr.png").stat().st_size > 1000
    assert f"{best['train']['lr']:.2g}" in "\n".join(lines)


def test_bad_input_is_one_line_before_training(tmp_path, capsys):
    assert cli.main(tune_argv(tmp_path, 2, "--train", "lr=0.1")) == 2
    assert cli.main(tune_argv(tmp_path, 2, "--hp", "nope=1")) == 2
    assert cli.main(tune_argv(tmp_path, 2, "--lr-range", "0.1,0.01")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("bench tune: error:") for line in err)
    assert not (tmp_path / "tune").exists()


def _bench(argv, **env):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *argv], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_stopped_search_ends_within_seconds_says_how_to_resume_and_resumes_where_it_stopped(tmp_path):
    argv = tune_argv(tmp_path, 3)
    proc = _bench(argv)
    deadline = time.time() + 240
    while not trial_records(tmp_path) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # what `kill` does; Ctrl-C takes the same path
    stopped = time.time()
    out = proc.communicate(timeout=60)[0]
    assert time.time() - stopped < 15 and proc.returncode == 130, out
    assert "resume with: bench tune" in out and "Traceback" not in out, out
    first = {r["run_id"]: r["finished_at"] for r in trial_records(tmp_path)}
    assert 1 <= len(first) < 3
    out = _bench(argv).communicate(timeout=300)[0]
    assert f"3 trials known, {len(first)} stored, {3 - len(first)} to run" in out, out
    trials = trial_records(tmp_path)
    assert len(trials) == 3 and all(r["finished_at"] == first[r["run_id"]] for r in trials if r["run_id"] in first)
    assert json.loads(next((tmp_path / "tune" / "tuned").glob("*.json")).read_text())["trials"] == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_on_localhost_share_one_search(tmp_path):
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    argv = tune_argv(tmp_path, 4)
    chief = _bench(argv, KERASTUNER_TUNER_ID="chief", **env)
    workers = [_bench(argv, KERASTUNER_TUNER_ID=f"tuner{i}", **env) for i in range(2)]
    outputs = [p.communicate(timeout=400)[0] for p in [*workers, chief]]
    assert [p.returncode for p in [*workers, chief]] == [0, 0, 0], outputs
    trials = trial_records(tmp_path)
    assert len(trials) == 4 and len({r["tune"]["trial"] for r in trials}) == 4
    assert {r["tune"]["tuner"] for r in trials} == {"tuner0", "tuner1"}  # both workers ran trials
    stored = json.loads(next(Path(tmp_path, "tune", "tuned").glob("*.json")).read_text())
    assert stored["trials"] == 4 and stored["val_score"] == max(r["tune"]["val_score"] for r in trials)


def test_a_sweep_with_hp_tuned_takes_the_stored_settings_and_warns_where_none(tmp_path):
    from bench.sweep import grid

    tuned = tmp_path / "t" / "tuned" / "adding-10-lstm-x.json"
    tuned.parent.mkdir(parents=True)
    tuned.write_text(json.dumps({"task": "adding", "task_params": {"length": 10}, "model": "lstm",
                                 "model_params": {"units": 32, "layers": 1}, "train": {"lr": 0.002},
                                 "steps": 100, "trials": 4}))
    sweep = grid.expand({"hp": "tuned", "tasks": {"adding": {"length": [10, 20]}}, "models": {"lstm": {}}})
    assert sweep.tuned
    planned, warnings = with_tuned(sweep, tmp_path)
    by_length = {s.task_params["length"]: s for s in planned.specs}
    assert by_length[10].model_params == {"units": 32, "layers": 1} and by_length[10].train == {"lr": 0.002}
    assert by_length[20].model_params == {} and by_length[20].train == {}
    assert warnings == ["hp: tuned: no tuning stored for adding(length=20) lstm; its runs use the defaults (bench tune)"]
    with pytest.raises(grid.SpecError, match="hp: expected defaults or tuned"):
        grid.expand({"hp": "best", "tasks": {"adding": {}}, "models": {"lstm": {}}})


TUNED_SWEEP = {
    "name": "mini", "seeds": [0], "hp": "tuned", "ladder": True, "param_budget": 2000,
    "train": {"steps": 10, "eval_every": 5, "val_size": 32, "test_size": 32, "gradient_flow": False},
    "tune": {"trials": 3, "steps": 10, "eval_every": 5, "algorithm": "grid", "lr_range": [0.001, 0.01],
             "search": [], "lengths": {"adding": 6}},
    "tasks": {"adding": {"length": [4, 6, 8]}}, "models": {"gru": {}},
}


def test_a_sweeps_tune_section_tunes_each_model_once_and_every_length_takes_it(tmp_path, capsys, monkeypatch):
    import yaml

    from bench.sweep import grid

    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(TUNED_SWEEP))
    monkeypatch.setitem(executors.EXECUTORS, "local", fake_executor([]))
    assert cli.main(["tune", "--from", str(path), "--results", str(tmp_path)]) == 0
    trials = trial_records(tmp_path, "mini-tune")
    assert sorted(r["train"]["lr"] for r in trials) == pytest.approx([0.001, 10 ** -2.5, 0.01])  # the grid
    assert {r["task_params"]["length"] for r in trials} == {6} and {r["param_budget"] for r in trials} == {2000}
    stored = json.loads(next((tmp_path / "mini-tune" / "tuned").glob("*.json")).read_text())
    assert stored["model_params"] == {"param_budget": 2000}  # the request, not the resolved width
    sweep, warnings = with_tuned(grid.load(str(path)), tmp_path)
    assert not warnings and {s.train["lr"] for s in sweep.specs} == {stored["train"]["lr"]}
    assert {s.task_params["length"] for s in sweep.specs} == {4, 6, 8}  # one learning rate for the whole ladder
    resolved = sweep.specs[0].resolved()
    assert resolved.model_params["units"] == stored["resolved_params"]["units"]
    assert resolved.fields()["param_budget"] == 2000


def test_a_task_that_borrows_takes_the_tuning_of_the_same_model_on_the_task_it_names(tmp_path):
    from bench.sweep import grid

    tuned = tmp_path / "s-tune" / "tuned" / "copy-5-gru-x.json"
    tuned.parent.mkdir(parents=True)
    tuned.write_text(json.dumps({"task": "copy", "task_params": {"length": 5}, "model": "gru",
                                 "model_params": {"param_budget": 2000}, "fixed": {"param_budget": 2000},
                                 "train": {"lr": 0.002}, "steps": 10, "trials": 3}))
    section = {"trials": 3, "steps": 10, "algorithm": "grid", "lr_range": [0.001, 0.01], "search": [],
               "tasks": ["copy"], "lengths": {"copy": 5}, "borrow": {"adding": "copy"}}
    sweep = grid.expand({**TUNED_SWEEP, "name": "s", "tune": section, "models": {"gru": {}, "lstm": {}},
                         "tasks": {"adding": {"length": [4, 8]}, "copy": {"length": [5, 10]}}})
    assert {s.task for s in tune.studies(sweep, sweep.tune)} == {"copy"}  # a borrowing task is never tuned
    planned, warnings = with_tuned(sweep, tmp_path)
    lrs = {(s.task, s.model): s.train.get("lr") for s in planned.specs}
    assert lrs == {("adding", "gru"): 0.002, ("copy", "gru"): 0.002, ("adding", "lstm"): None,
                   ("copy", "lstm"): None}
    assert warnings == ["hp: tuned: no tuning stored for copy(length=5) lstm(param_budget=2000) (tuned there for "
                        "every copy length); its runs and adding's use the defaults (bench tune)"]


def test_ties_go_to_the_trial_that_solved_in_fewest_steps_then_the_best_score_then_the_first(tmp_path):
    study = tune.Study("adding", {"length": 6}, "gru", TINY, {"units": 8}, sweep="s", grid=True,
                       lr_range=(1e-3, 1e-1), search=())
    proposed = found.known(study, 5, "grid", {})
    outcomes = [(0.999, None), (0.998, 400), (0.998, 200), (1.0, 200), (1.0, 200)]  # (val score, steps to solve)
    trials = [found.Trial(study, t.index, t.spec, {**fake_record(t.spec), "metrics": {"steps_to_solve": steps}}, score)
              for t, (score, steps) in zip(proposed, outcomes)]
    assert found.store_best(study, trials, tmp_path)["trial"] == "3"  # 3 and 4 tie exactly: the first tried wins
    assert found.store_best(study, trials[::-1], tmp_path)["trial"] == "3"  # whatever order they are found in
    assert found.store_best(study, trials[:3], tmp_path)["trial"] == "2"  # fewest steps among those within TIE


@pytest.mark.parametrize("section, words", [
    ({"steps": 10}, "tune.trials: required"),
    ({"trials": 2, "steps": 10, "lengths": {"copy": 5}}, "tune.lengths.copy: not a task"),
    ({"trials": 2, "steps": 10, "algorithm": "hyperband"}, "tune.algorithm"),
    ({"trials": 2, "steps": 10, "lr_range": [0.1, 0.01]}, "tune.lr_range"),
    ({"trials": 0, "steps": 10}, "tune.trials: expected an integer >= 1"),
    ({"trials": 2, "steps": 10, "budget": 3}, "tune.budget: unknown key"),
    ({"trials": 2, "steps": 10, "borrow": {"copy": "adding"}}, "tune.borrow.copy: not a task"),
    ({"trials": 2, "steps": 10, "borrow": {"adding": "adding"}}, "tune.borrow.adding: 'adding' is not a tuned"),
])
def test_a_bad_tune_section_is_one_error_naming_the_key(section, words):
    from bench.sweep import grid

    with pytest.raises(grid.SpecError, match=words):
        grid.expand({**TUNED_SWEEP, "tune": section})


def test_tuning_from_a_sweep_without_a_tune_section_is_one_line(capsys):
    assert cli.main(["tune", "--from", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no tune: section" in err and len(err.splitlines()) == 1
    assert cli.main(["tune", "--trials", "2"]) == 2
    assert "needs --task and --model, or --from SWEEP" in capsys.readouterr().err


FIXTURE = {  # a committed-style sweep: tuned per model on a grid, then run with the tuned settings
    "name": "fixture", "seeds": [0], "hp": "tuned",
    "train": {"steps": 10, "eval_every": 5, "val_size": 32, "test_size": 32, "gradient_flow": False},
    "tune": {"trials": 3, "steps": 10, "algorithm": "grid", "lr_range": [0.001, 0.01], "search": []},
    "tasks": {"adding": {"length": 6}}, "models": {"gru": {"units": 8}, "lstm": {"units": 8}},
}


def _files(folder: Path) -> dict:
    """Every file's bytes and time of writing (the drivers' lock files aside)."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def test_tuning_a_finished_study_again_changes_nothing_and_its_sweep_stays_stored(tmp_path, capsys, monkeypatch):
    """Issue 21, class 1: every trial ties exactly (same score, same steps), so only a stable rule picks the same."""
    path = tmp_path / "fixture.yaml"
    path.write_text(json.dumps(FIXTURE))
    results = tmp_path / "results"
    calls = []
    monkeypatch.setitem(executors.EXECUTORS, "local", fake_executor(calls))
    assert cli.main(["tune", "--from", str(path), "--results", str(results), "--workers", "2"]) == 0
    assert cli.main(["sweep", str(path), "--results", str(results)]) == 0
    assert len(calls) == 3 * 2 + 2
    chosen = {json.loads(p.read_text())["trial"] for p in (results / "fixture-tune" / "tuned").glob("*.json")}
    assert chosen == {"0"}  # exact ties: the first tried
    before = _files(results)
    load = record.load
    monkeypatch.setattr(record, "load", lambda *a: (lambda found: (found[0][::-1], found[1]))(load(*a)))
    assert cli.main(["tune", "--from", str(path), "--results", str(results), "--workers", "2"]) == 0  # found reversed
    assert len(calls) == 8 and _files(results) == before  # nothing trained, no file rewritten
    capsys.readouterr()
    assert cli.main(["sweep", str(path), "--results", str(results), "--dry-run"]) == 0
    assert "2 runs, 2 stored, 0 to run" in capsys.readouterr().out


def test_an_interrupted_grid_search_runs_every_point_once_and_more_trials_continue_it(tmp_path, capsys, monkeypatch):
    """Issue 21, class 2: the records are the search's state, so a resumed grid misses no point and repeats none."""
    def argv(results, trials):
        return ["tune", "--task", "adding", "--length", "6", "--model", "gru", "--hp", "units=8", "--hp", "layers=1",
                "--hp", "dropout=0", "--algorithm", "grid", "--lr-range", "0.001,0.1", "--trials", str(trials),
                "--steps", "10", "--results", str(results)]

    val = lambda spec: abs(math.log10(spec.train["lr"]) + 2) / 10  # best at lr 1e-2, the third grid point
    calls = []
    monkeypatch.setitem(executors.EXECUTORS, "local", fake_executor(calls, val, stop_after=1))
    assert cli.main(argv(tmp_path / "a", 4)) == 130
    assert "resume with: bench tune" in capsys.readouterr().err and len(trial_records(tmp_path / "a")) == 1
    monkeypatch.setitem(executors.EXECUTORS, "local", fake_executor(calls, val))
    assert cli.main(argv(tmp_path / "a", 4)) == 0
    assert cli.main(argv(tmp_path / "b", 4)) == 0  # the same search, never interrupted
    tuned = lambda results: json.loads(next((results / "tune" / "tuned").glob("*.json")).read_text())
    assert len(calls) == 8 and len(set(calls)) == 4  # each of the 4 points once in each folder
    assert sorted(r["train"]["lr"] for r in trial_records(tmp_path / "a")) == pytest.approx(
        [1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5])
    assert tuned(tmp_path / "a") == tuned(tmp_path / "b")
    assert tuned(tmp_path / "a")["train"]["lr"] == pytest.approx(1e-2)
    assert cli.main(argv(tmp_path / "a", 6)) == 0  # more trials: the grid's fifth and last point, nothing again
    assert len(calls) == 9 and len(set(calls)) == 5 and tuned(tmp_path / "a")["trials"] == 5


KILLED = """
import os, signal

import keras

from models.registry import register


@register("killed_in_worker_for_test")
def killed(x, *, units: int = 4):
    \"\"\"In a worker: SIGKILL, as if something outside killed it.\"\"\"
    if "BENCH_PARENT_PID" in os.environ:
        os.kill(os.getpid(), signal.SIGKILL)
    return keras.layers.Dense(units)(x)
"""


def test_a_trial_whose_worker_is_killed_is_recorded_and_the_exit_names_it(tmp_path, capsys):
    plugin = tmp_path / "killed.py"
    plugin.write_text(KILLED)
    argv = [a if a != "gru" else "killed_in_worker_for_test" for a in tune_argv(tmp_path, 1)]
    assert cli.main([*argv, "--plugin", str(plugin)]) == 1
    (rec,) = trial_records(tmp_path)
    assert rec["status"] in ("killed", "oom") and rec["tune"]["val_score"] is None
    assert f"trial 0 of {rec['tune']['study']} {rec['status']}: worker killed by SIGKILL" in capsys.readouterr().out


def test_one_driver_per_folder_for_tune_and_speed(tmp_path, capsys):
    """Issue 21, class 4: the sweep's lock, for every command that drives a folder."""
    import fcntl

    speed = ["speed", "--models", "lstm", "--units", "8", "--batch", "4", "--lengths", "16", "--results", str(tmp_path)]
    for argv, name, holder in [(tune_argv(tmp_path, 2), "tune", "bench tune"), (speed, "speed", "bench speed")]:
        with open(tmp_path / f".{name}.lock", "w") as held:
            held.write(f"12345 {holder}")
            held.flush()
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running driver holds
            assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("then run this again") and f"in use by another {holder} (pid 12345)" in err
        assert len(err.splitlines()) == 1 and not list(tmp_path.glob(f"{name}/*.json"))


@pytest.mark.parametrize("shard", ["x", "2/2", "-1/2", "1/0", "1/"])
def test_a_bad_hidden_flag_is_one_line(tmp_path, capsys, shard):
    path = tmp_path / "mini.yaml"
    path.write_text(json.dumps(TUNED_SWEEP))
    assert cli.main(["tune", "--from", str(path), "--results", str(tmp_path), f"--shard={shard}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bench tune: error: --shard expects I/N with 0 <= I < N, got {shard!r}"


def test_a_worker_whose_chief_never_answers_gives_up_with_one_line(tmp_path, capsys, monkeypatch):
    """Issue 21, class 3: every wait for the chief has a bound."""
    for name, value in [("KERASTUNER_ORACLE_IP", "127.0.0.1"), ("KERASTUNER_ORACLE_PORT", str(_free_port())),
                        ("KERASTUNER_TUNER_ID", "tuner0"), ("BENCH_CHIEF_WAIT_S", "nope")]:
        monkeypatch.setenv(name, value)
    assert cli.main(tune_argv(tmp_path, 2)) == 2
    assert "BENCH_CHIEF_WAIT_S must be a finite number of seconds > 0, got 'nope'" in capsys.readouterr().err
    monkeypatch.setenv("BENCH_CHIEF_WAIT_S", "1")
    started = time.time()
    assert cli.main(tune_argv(tmp_path, 2)) == 1
    err = capsys.readouterr().err.strip()
    assert time.time() - started < 60 and len(err.splitlines()) == 1, err
    assert "the tuning chief at 127.0.0.1:" in err and "did not answer within 1 s" in err
    assert not trial_records(tmp_path)


EDGES = {**FIXTURE, "name": "edges", "models": {"gru": {"units": 8}},
         "tune": {"steps": 10, "lrs": [1e-3, 1e-2, 1e-1], "extend": True, "search": []}}


@pytest.mark.parametrize("peak, edge, extended, after", [(1e-2, None, None, None), (1.0, "high", 10 ** -0.5, "high"),
                                                         (1e-4, "low", 10 ** -3.5, "low"),
                                                         (0.12, "high", 10 ** -0.5, None)])
def test_a_best_at_an_edge_of_the_lrs_extends_the_grid_once_and_the_best_records_it(tmp_path, monkeypatch, peak, edge,
                                                                                    extended, after):
    path = tmp_path / "edges.yaml"
    path.write_text(json.dumps(EDGES))
    calls = []
    val = lambda spec: abs(math.log10(spec.train["lr"] / peak)) / 10  # adding's MSE: least at the rate nearest peak
    monkeypatch.setitem(executors.EXECUTORS, "local", fake_executor(calls, val))
    assert cli.main(["tune", "--from", str(path), "--results", str(tmp_path)]) == 0
    lrs = sorted(r["train"]["lr"] for r in trial_records(tmp_path, "edges-tune"))
    assert lrs == pytest.approx(sorted([1e-3, 1e-2, 1e-1] + ([extended] if extended else [])))
    best = json.loads(next((tmp_path / "edges-tune" / "tuned").glob("*.json")).read_text())
    assert best["edge_before_extension"] == edge and best["lrs"] == [1e-3, 1e-2, 1e-1]
    assert best["extended_to"] == (pytest.approx(extended) if extended else None)
    assert best["edge_after_extension"] == after  # at the new edge where the peak lies beyond the extension too
    df = table.frame(trial_records(tmp_path, "edges-tune"))
    assert table.edges(df).to_dict("records")[0] | {"study": None} == {
        "study": None, "model": "gru", "panel": "adding L=6, markers=halves", "edge": edge,
        "extended": bool(edge), "edge_after": after}
    assert cli.main(["tune", "--from", str(path), "--results", str(tmp_path)]) == 0
    assert len(calls) == len(lrs)  # resumed: nothing runs again


def test_extension_trains_for_real_and_a_best_inside_the_grid_after_it_says_so(tmp_path):
    """Two rates: the best is always at an edge, so one more trial runs (a real run of 10 steps)."""
    path = tmp_path / "edges.yaml"
    path.write_text(json.dumps({**EDGES, "tune": {**EDGES["tune"], "lrs": [1e-3, 3e-3]}}))
    assert cli.main(["tune", "--from", str(path), "--results", str(tmp_path)]) == 0
    trials = trial_records(tmp_path, "edges-tune")
    extension = [r for r in trials if r["tune"].get("extends")]
    assert len(trials) == 3 and len(extension) == 1 and extension[0]["status"] == "ok"
    best = json.loads(next((tmp_path / "edges-tune" / "tuned").glob("*.json")).read_text())
    side = extension[0]["tune"]["extends"]
    assert best["edge_before_extension"] == side
    assert extension[0]["train"]["lr"] == pytest.approx(1e-3 / 10 ** 0.5 if side == "low" else 3e-3 * 10 ** 0.5)
    inside = best["train"]["lr"] != pytest.approx(extension[0]["train"]["lr"])
    assert best["edge_after_extension"] == (None if inside else side) and best["trials"] == 3


@pytest.mark.parametrize("section, words", [
    ({"steps": 10, "lrs": [1e-2, 1e-3]}, "tune.lrs: expected two or more increasing"),
    ({"steps": 10, "lrs": [1e-3]}, "tune.lrs: expected two or more"),
    ({"steps": 10, "lrs": [1e-3, 1e-2], "trials": 3}, "tune.trials: 3 with 2 tune.lrs"),
    ({"steps": 10, "lrs": [1e-3, 1e-2], "lr_range": [1e-3, 1e-2]}, "tune.lr_range: not with tune.lrs"),
    ({"steps": 10, "lrs": [1e-3, 1e-2], "algorithm": "random"}, "tune.algorithm: not with tune.lrs"),
    ({"trials": 2, "steps": 10, "extend": True}, "tune.extend: needs tune.lrs"),
    ({"steps": 10, "lrs": [1e-3, 1e-2], "extend": 1}, "tune.extend: expected bool"),
])
def test_a_bad_lr_grid_is_one_error_naming_the_key(section, words):
    from bench.sweep import grid

    with pytest.raises(grid.SpecError, match=words):
        grid.expand({**TUNED_SWEEP, "tune": section})


def test_a_sweep_with_a_tune_section_takes_only_its_own_tuning(tmp_path, monkeypatch):
    from bench.sweep import grid

    path = tmp_path / "fixture.yaml"
    path.write_text(json.dumps(FIXTURE))
    monkeypatch.setitem(executors.EXECUTORS, "local", fake_executor([]))
    assert cli.main(["tune", "--from", str(path), "--results", str(tmp_path)]) == 0
    (tmp_path / "fixture-tune").rename(tmp_path / "other-tune")  # another sweep's search of the same points
    assert len(with_tuned(grid.load(str(path)), tmp_path)[1]) == 2  # none of its own: defaults, with warnings
    plain = {k: v for k, v in FIXTURE.items() if k != "tune"}
    assert not with_tuned(grid.expand(plain), tmp_path)[1]  # no tune section: any folder's tuning
