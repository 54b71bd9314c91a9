"""Tuning: registry models as keras-tuner HyperModels, trials as run records, resume, chief + workers."""

import json
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
from bench import cli, tune
from bench.report import tune as report_tune
from bench.runner import record
from bench.core.spec import TrainConfig
from bench.tune.stored import tuned_params, with_tuned

TINY = TrainConfig(steps=10, eval_every=5, val_size=32, test_size=32, gradient_flow=False, early_stop=False)
BUILTIN = ("rnn", "lstm", "gru", "bilstm", "stacked_lstm", "transformer")


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


def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    argv = tune_argv(tmp_path, 3)
    proc = _bench(argv)
    deadline = time.time() + 120
    while not trial_records(tmp_path) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {r["run_id"] for r in trial_records(tmp_path)}
    assert 1 <= len(first) < 3
    out = _bench(argv).communicate(timeout=300)[0]
    assert "Reloading Tuner" in out
    trials = trial_records(tmp_path)
    assert len(trials) == 3 and first <= {r["run_id"] for r in trials}
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


def test_a_sweeps_tune_section_tunes_each_model_once_and_every_length_takes_it(tmp_path, capsys):
    import yaml

    from bench.sweep import grid

    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(TUNED_SWEEP))
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


def test_ties_go_to_the_trial_that_solved_in_fewest_steps(tmp_path):
    study = tune.Study("adding", {"length": 6}, "gru", TINY, {"units": 8}, sweep="s", grid=True,
                       lr_range=(1e-3, 1e-2), search=())
    oracle = tune.make_oracle("grid", 3, 0)
    oracle._set_project_dir(str(tmp_path / "kt"), "p")
    hypermodel = tune.RegistryHyperModel(study)
    steps = {}
    for solved_at in (None, 400, 200):
        trial = oracle.create_trial("t")
        hypermodel.values(trial.hyperparameters)
        spec = hypermodel.spec(trial.hyperparameters)
        rec = {"schema": 2, "run_id": spec.run_id, "sweep": "s", "status": "ok", "metrics": {"steps_to_solve": solved_at}}
        (tmp_path / "s").mkdir(exist_ok=True)
        (tmp_path / "s" / f"{spec.run_id}.json").write_text(json.dumps(rec))
        oracle.update_trial(trial.trial_id, {"val_score": 1.0 - (solved_at or 0) * 1e-6})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        steps[trial.trial_id] = solved_at
    best = tune.store_best(study, oracle, tmp_path)
    assert steps[best["trial"]] == 200


@pytest.mark.parametrize("section, words", [
    ({"steps": 10}, "tune.trials: required"),
    ({"trials": 2, "steps": 10, "lengths": {"copy": 5}}, "tune.lengths.copy: not a task"),
    ({"trials": 2, "steps": 10, "algorithm": "hyperband"}, "tune.algorithm"),
    ({"trials": 2, "steps": 10, "lr_range": [0.1, 0.01]}, "tune.lr_range"),
    ({"trials": 0, "steps": 10}, "tune.trials: expected an integer >= 1"),
    ({"trials": 2, "steps": 10, "budget": 3}, "tune.budget: unknown key"),
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
