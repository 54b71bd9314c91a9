"""Bad input and faults: each ends in a one-line error with exit 2 before any training, or in a recorded status;
never a traceback. Plus Ctrl-C on a sweep, the sweep-folder lock and the reports' tolerance of odd records."""

import fcntl
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
from bench.runner import record

ROOT = Path(__file__).resolve().parents[1]
TINY = {"steps": 20, "eval_every": 10, "val_size": 32, "test_size": 32}
RUN = ["run", "--task", "adding", "--model", "lstm", "--length", "5", "--steps", "10", "--hp", "units=4"]

PLUGINS = {
    "sysexit.py": "import sys\nsys.exit(3)\n",
    "osexit.py": "import os\nos._exit(4)\n",
    "raises.py": "raise RuntimeError('plugin says no')\n",
    "build_faults.py": '''
import os, posix, signal, sys
from models.registry import register

@register("exits_sys_for_test")
def exits_sys(x, *, units: int = 4):
    """Its build calls sys.exit."""
    sys.exit(5)

@register("exits_os_for_test")
def exits_os(x, *, units: int = 4):
    """Its build calls os._exit."""
    os._exit(6)

@register("dies_quietly_for_test")
def dies_quietly(x, *, units: int = 4):
    """In a worker: framework-like noise on stderr, then the process ends past every guard."""
    if "BENCH_PARENT_PID" in os.environ:
        sys.stderr.write("E0000 cuda_platform.cc:52] failed call to cuInit\\n")
        sys.stderr.flush()
        posix._exit(9)
    raise RuntimeError("not in a worker")

@register("killed_for_test")
def killed(x, *, units: int = 4):
    """In a worker: SIGKILL, as if something outside killed it."""
    if "BENCH_PARENT_PID" in os.environ:
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError("not in a worker")
''',
}

BASE = {"tasks": {"adding": {"length": 5}}, "models": {"lstm": {"units": 4}}, "train": TINY}


def _yaml(**changes) -> str:
    data = {**BASE, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None})  # JSON is YAML


LEVELS = [f"&a [{', '.join(['1'] * 9)}]"] + [f"&{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]"
                                             for i in range(8)]
BOMB = f"[{', '.join(LEVELS)}]"  # a list of 9 levels, the last 9**9 ones deep: its repr would be gigabytes
SWEEP_FILES = [  # (sweep file text, words of the one-line error)
    (_yaml(seeds=-1), "seeds: each seed must be an integer >= 0"),
    (_yaml(seeds=[0.5]), "seeds: each seed must be an integer >= 0"),
    (_yaml(seeds=[]), "seeds: empty list"),
    (_yaml(seeds="a"), "seeds: each seed must be an integer"),
    (_yaml(name="../x"), "name: must be letters"),
    (_yaml(name=5), "name: must be letters"),
    (_yaml(name="x" * 10000), "File name too long"),
    (_yaml(description=[1]), "description: expected text"),
    (_yaml(extra=1), "unknown key 'extra'"),
    (_yaml(tasks=None), "tasks: expected a non-empty mapping"),
    (_yaml(models={}), "models: expected a non-empty mapping"),
    (_yaml(models=[1, 2]), "models: expected a non-empty mapping"),
    (_yaml(tasks={"nosuch": {}}), "unknown task 'nosuch'"),
    (_yaml(models={"nosuch": {}}), "unknown model 'nosuch'"),
    (_yaml(tasks={"adding": {"length": 0}}), "tasks.adding.length"),
    (_yaml(tasks={"adding": {"length": 1.5}}), "tasks.adding.length: expected an integer"),
    (_yaml(tasks={"adding": {"length": "x"}}), "tasks.adding.length: expected an integer"),
    (_yaml(tasks={"adding": {"length": []}}), "tasks.adding.length: empty list"),
    (_yaml(tasks={"adding": {"nope": 1}}), "tasks.adding.nope: no parameter 'nope'"),
    (_yaml(tasks={"recall": {"pairs": 0}}), "tasks.recall.pairs"),
    (_yaml(tasks={"adding": {"length": 10**12}}), "GiB"),  # cannot fit
    (_yaml(models={"lstm": {"units": 0}}), "models.lstm.units: units must be a positive integer"),
    (_yaml(models={"lstm": {"units": 2.5}}), "models.lstm.units: expected an integer"),
    (_yaml(models={"lstm": {"units": True}}), "models.lstm.units: expected an integer"),
    (_yaml(models={"lstm": {"nope": 1}}), "models.lstm.nope: no hyperparameter 'nope'"),
    (_yaml(models={"stacked_lstm": {"layers": 0}}), "models.stacked_lstm.layers"),
    (_yaml(models={"transformer": {"heads": 3}}), "must be divisible by heads"),
    (_yaml(models={"transformer": {"d_model": -4}}), "models.transformer.d_model"),
    ("train: {lr: .inf}\ntasks: {adding: {}}\nmodels: {lstm: {}}", "train.lr must be a number > 0, got inf"),
    ("train: {lr: .nan}\ntasks: {adding: {}}\nmodels: {lstm: {}}", "train.lr must be a number > 0, got nan"),
    (_yaml(train={"lr": -1}), "train.lr must be a number > 0"),
    (_yaml(train={"steps": 0}), "train.steps must be an integer >= 1"),
    (_yaml(train={"batch_size": 2.5}), "train.batch_size must be an integer >= 1"),
    (_yaml(train={"batch_size": 10**10}), "train.batch_size: 10000000000 sequences"),
    ("train: {clipnorm: .nan}\ntasks: {adding: {}}\nmodels: {lstm: {}}", "train.clipnorm must be a number > 0"),
    (_yaml(train={"max_seconds": -1}), "train.max_seconds must be a number > 0"),
    (_yaml(train={"jit_compile": "maybe"}), "train.jit_compile must be true, false or auto"),
    (_yaml(train={"nosuch": 1}), "train.nosuch: unknown training option"),
    (_yaml(train=[1]), "train: expected a non-empty mapping"),
    (_yaml(overrides={"gru": {"lr": 1}}), "overrides.gru: not a model of this sweep"),
    ("overrides: {lstm: {lr: .inf}}\ntasks: {adding: {}}\nmodels: {lstm: {}}", "overrides.lstm.lr must be"),
    (_yaml(tasks={"adding": {"length": list(range(2, 1002))}}, models={"lstm": {"units": list(range(1, 1001))}}),
     "the grid has 1,000,000 runs"),
    (f"tasks: {{adding: {{length: [{BOMB}]}}}}\nmodels: {{lstm: {{}}}}", "tasks.adding.length: expected an integer"),
    (f"seeds: [{BOMB}]\ntasks: {{adding: {{}}}}\nmodels: {{lstm: {{}}}}", "seeds: each seed must be an integer"),
    (f"name: {BOMB}\ntasks: {{adding: {{}}}}\nmodels: {{lstm: {{}}}}", "name: must be letters"),
    (f"description: {BOMB}\ntasks: {{adding: {{}}}}\nmodels: {{lstm: {{}}}}", "description: expected text"),
    (f"train: {{lr: {BOMB}}}\ntasks: {{adding: {{}}}}\nmodels: {{lstm: {{}}}}", "train.lr must be a number"),
    (f"tasks: {{adding: {{}}}}\nmodels: {{lstm: {{units: {BOMB}}}}}", "models.lstm.units: expected an integer"),
    ("tasks: {adding: {length: [5}\n", "not valid YAML"),
    ("- 1\n- 2\n", "a sweep must be a mapping"),
    ("", "a sweep must be a mapping"),
    ("\ttasks: 1\n", "not valid YAML"),
]


@pytest.mark.parametrize("text, words", SWEEP_FILES, ids=[f"sweep-{i}" for i in range(len(SWEEP_FILES))])
def test_bad_sweep_file_is_one_line_before_anything_runs(tmp_path, capsys, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    started = time.monotonic()
    code = cli.main(["sweep", str(path), "--results", str(tmp_path / "results")])
    _assert_one_line(capsys, code, words)
    assert time.monotonic() - started < 30 and not list(tmp_path.glob("**/*.json"))  # nothing ran


def test_binary_sweep_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    _assert_one_line(capsys, cli.main(["sweep", str(path), "--dry-run"]), "cannot read")


@pytest.fixture
def files(tmp_path):
    """Plugins, a plain file and a valid sweep file in tmp_path; the registry is restored afterwards."""
    for name, text in PLUGINS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "ok.yaml").write_text(_yaml(name="ok"))
    before = dict(models.registry._MODELS)
    yield tmp_path
    models.registry._MODELS.clear()
    models.registry._MODELS.update(before)


COMMANDS = [  # (argv with {tmp} for the test's folder, words of the one-line error)
    (["sweep", "{tmp}/ok.yaml", "--workers", "0"], "--workers must be >= 1"),
    (["sweep", "{tmp}/ok.yaml", "--timeout", "-1"], "--timeout must be a finite number"),
    (["sweep", "{tmp}/ok.yaml", "--timeout", "nan"], "--timeout must be a finite number"),
    (["sweep", "{tmp}/ok.yaml", "--timeout", "inf"], "--timeout must be a finite number"),
    (["sweep", "{tmp}/ok.yaml", "--scheduler", "tcp://x:1"], "--scheduler needs --executor dask"),
    (["sweep", "{tmp}/ok.yaml", "--executor", "dask", "--save-model"], "--save-model needs --executor local"),
    (["sweep", "{tmp}/ok.yaml", "--results", "{tmp}/afile"], "is a file, not a folder"),
    (["sweep", "{tmp}/ok.yaml", "--results", "{tmp}/afile/deeper"], "is a file, not a folder"),
    (["sweep", "{tmp}/ok.yaml", "--results", "/proc/no-such-results"], "cannot write there"),
    (["sweep", "{tmp}/ok.yaml", "--plugin", "{tmp}/missing.py"], "no such file"),
    (["sweep", "{tmp}/ok.yaml", "--plugin", "{tmp}/sysexit.py"], "import called sys.exit(3)"),
    (["sweep", "{tmp}/ok.yaml", "--plugin", "{tmp}/osexit.py"], "import called os._exit(4)"),
    (["sweep", "{tmp}/ok.yaml", "--plugin", "{tmp}/raises.py"], "RuntimeError: plugin says no"),
    (["sweep", "{tmp}/ok.yaml", "--plugin", "no_such_module_here"], "import failed"),
    (["sweep", "{tmp}/none.yaml"], "no sweep file or preset"),
    (["run", "--task", "nosuch", "--model", "lstm"], "unknown task 'nosuch'"),
    (["run", "--task", "adding", "--model", "nosuch"], "unknown model 'nosuch'"),
    ([*RUN, "--length", "0"], "length must be an integer >= 2"),
    ([*RUN, "--length", "-5"], "length must be an integer >= 2"),
    ([*RUN, "--length", str(10**12)], "GiB"),
    ([*RUN, "--hp", "units=0"], "--hp.units: units must be a positive integer"),
    ([*RUN, "--hp", "units=2.5"], "--hp.units: expected an integer"),
    ([*RUN, "--hp", "units=abc"], "--hp.units: expected an integer"),
    ([*RUN, "--hp", "units=[1, 2]"], "--hp.units: expected an integer"),
    ([*RUN, "--hp", "units=.nan"], "--hp.units: expected an integer"),
    ([*RUN, "--hp", "nosuch=1"], "no hyperparameter 'nosuch'"),
    ([*RUN, "--hp", "units"], "--hp expects KEY=VALUE"),
    (["run", "--task", "adding", "--model", "stacked_lstm", "--hp", "layers=0"], "--hp.layers"),
    (["run", "--task", "adding", "--model", "transformer", "--hp", "heads=3"], "must be divisible by heads"),
    (["run", "--task", "adding", "--model", "transformer", "--hp", "dropout=1.5"], "--hp.dropout"),
    ([*RUN, "--param", "nosuch=1"], "no parameter 'nosuch'"),
    (["run", "--task", "recall", "--model", "lstm", "--param", "pairs=0"], "--param.pairs"),
    ([*RUN, "--lr", "nan"], "train.lr must be a number > 0, got nan"),
    ([*RUN, "--lr", "inf"], "train.lr must be a number > 0, got inf"),
    ([*RUN, "--lr", "-1"], "train.lr must be a number > 0"),
    ([*RUN, "--steps", "0"], "train.steps must be an integer >= 1"),
    ([*RUN, "--batch-size", "0"], "train.batch_size must be an integer >= 1"),
    ([*RUN, "--batch-size", "1000000000"], "batch_size: 1000000000 sequences"),
    ([*RUN, "--eval-every", "0"], "train.eval_every must be an integer >= 1"),
    ([*RUN, "--max-seconds", "-1"], "train.max_seconds must be a number > 0"),
    ([*RUN, "--train", "clipnorm=.nan"], "train.clipnorm must be a number > 0"),
    ([*RUN, "--train", "jit_compile=maybe"], "train.jit_compile must be true, false or auto"),
    ([*RUN, "--train", "val_size=1e12"], "train.val_size must be an integer"),
    ([*RUN, "--seed", "-1"], "seed must be an integer >= 0"),
    ([*RUN, "--results", "{tmp}/afile"], "is a file, not a folder"),
    ([*RUN, "--results", "/proc/no-such-results"], "cannot write there"),
    ([*RUN, "--plugin", "{tmp}/sysexit.py"], "import called sys.exit(3)"),
    ([*RUN, "--plugin", "{tmp}/osexit.py"], "import called os._exit(4)"),
    (["results", "x", "--results", "{tmp}/empty"], "no run records"),
    (["results", "paper", "--out", "{tmp}"], "is a folder; give a file name"),
    (["results", "paper", "--out", "{tmp}/afile/out.csv"], "is a file, not a folder"),
    (["results", "paper", "--format", "parquet"], "--format parquet needs --out FILE"),
    (["report", "paper", "--out", "{tmp}/afile"], "is a file, not a folder"),
    (["report", "paper", "--out", "/proc/no-such-reports"], "cannot write there"),
    (["report", "nosuch", "--results", "{tmp}", "--out", "{tmp}/rep"], "no run records"),
    (["speed", "--timeout", "-1"], "--timeout must be a finite number"),
    (["speed", "--units", "0"], "--units expects comma-separated positive integers"),
    (["speed", "--jit", "maybe"], "--jit must be true, false or auto"),
    (["speed", "--models", "nosuch"], "unknown model 'nosuch'"),
]


@pytest.mark.parametrize("argv, words", COMMANDS, ids=[f"cmd-{i}" for i in range(len(COMMANDS))])
def test_bad_command_is_one_line_before_anything_runs(files, capsys, argv, words):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    _assert_one_line(capsys, cli.main(argv), words)
    assert not list(files.glob("**/*.json"))  # no record: nothing trained


def test_a_second_driver_on_a_locked_sweep_folder_is_refused(files, capsys):
    results = files / "results"
    results.mkdir()
    with open(results / ".ok.lock", "w") as held:
        held.write("12345")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running driver holds
        code = cli.main(["sweep", str(files / "ok.yaml"), "--results", str(results)])
    _assert_one_line(capsys, code, "in use by another bench sweep (pid 12345)")
    assert not list(results.glob("ok/*.json"))


# ---- faults that end as a recorded status (each trains a few steps at most) ----

def test_finite_blow_up_is_diverged(tmp_path, capsys):
    argv = [*RUN, "--model", "rnn", "--steps", "20", "--lr", "1e9", "--train", "clipnorm=null",
            "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rec = record.read(summary["record"])
    assert rec["status"] == "diverged" and "above 1e+06 x the memoryless baseline" in rec["error"]


@pytest.mark.parametrize("model, words", [("exits_sys_for_test", "called sys.exit(5)"),
                                          ("exits_os_for_test", "called os._exit(6)")])
def test_plugin_build_that_exits_is_a_failed_record_naming_the_plugin(files, capsys, model, words):
    argv = [*RUN, "--model", model, "--plugin", str(files / "build_faults.py"), "--results", str(files)]
    assert cli.main(argv) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rec = record.read(summary["record"])
    assert rec["status"] == "failed" and words in rec["error"] and "build_faults.py" in rec["error"]


def test_sweep_records_plugin_exits_quiet_deaths_and_kills(files, capsys):
    sweep = files / "faults.yaml"
    sweep.write_text(_yaml(name="faults", models={m: {} for m in (
        "exits_sys_for_test", "exits_os_for_test", "dies_quietly_for_test", "killed_for_test")}))
    argv = ["sweep", str(sweep), "--results", str(files), "--workers", "2", "--plugin", str(files / "build_faults.py")]
    assert cli.main(argv) == 1  # the driver validated the plan (building each model once) and survived
    records, skipped = record.load(files, "faults")
    errors = {r["model"]: (r["status"], r["error"]) for r in records}
    assert not skipped and len(errors) == 4, errors
    assert errors["exits_sys_for_test"][0] == "failed" and "called sys.exit(5)" in errors["exits_sys_for_test"][1]
    assert errors["exits_os_for_test"][0] == "failed" and "called os._exit(6)" in errors["exits_os_for_test"][1]
    status, error = errors["dies_quietly_for_test"]
    assert status == "failed" and "exited with code 9 without a record or a traceback" in error
    assert "cuInit" not in error
    status, error = errors["killed_for_test"]
    assert status in ("killed", "oom") and "SIGKILL" in error  # oom only with the cgroup's evidence


def test_worker_import_failure_is_a_failed_record(files):
    from bench.core.spec import RunSpec, TrainConfig
    from bench.sweep import executors

    spec = RunSpec("adding", "gru", {"length": 6}, {"units": 4}, TrainConfig(**TINY), 0, "t")
    rec = executors.run_in_subprocess(spec, plugins=[str(files / "osexit.py")])
    assert rec["status"] == "failed" and "import called os._exit(4)" in rec["error"]


# ---- Ctrl-C and SIGTERM ----

SLOW = {"tasks": {"adding": {"length": [6, 7, 8, 9, 10, 11]}}, "models": {"gru": {"units": 8}},
        "name": f"stop-{os.getpid()}",
        "train": {"steps": 400, "eval_every": 100, "val_size": 32, "test_size": 32, "early_stop": False,
                  "gradient_flow": False}}


def _sigint_default():
    """A shell that starts the suite in the background ignores SIGINT for it, and the driver would inherit that
    (Python installs no KeyboardInterrupt handler for an ignored SIGINT): give the driver a terminal's default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT])  # SIGTERM takes the same path (cli._interrupt)
def test_interrupted_sweep_stops_within_seconds_and_keeps_finished_records(tmp_path, signum):
    sweep, results = tmp_path / "stop.yaml", tmp_path / "results"
    sweep.write_text(json.dumps(SLOW))
    folder = results / SLOW["name"]
    driver = subprocess.Popen([sys.executable, "-m", "bench.cli", "sweep", str(sweep), "--results", str(results),
                               "--workers", "2"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                              preexec_fn=_sigint_default)
    deadline = time.monotonic() + 180
    while not list(folder.glob("*.json")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert driver.poll() is None, driver.communicate()
    os.killpg(driver.pid, signum)  # what a terminal's Ctrl-C does: the whole foreground group
    pressed = time.monotonic()
    out, err = driver.communicate(timeout=60)
    took = time.monotonic() - pressed
    kept = sorted(folder.glob("*.json"))
    assert took < 10, (took, err)
    assert driver.returncode == 130, err
    assert "resume with: bench sweep" in err and "Traceback" not in err, err
    assert 1 <= len(kept) < 6 and all(record.read(p)["status"] == "ok" for p in kept)
    assert f"{len(kept)} finished record(s) kept" in err
    time.sleep(1.5)
    assert subprocess.run(["pgrep", "-f", f"bench.sweep.worker.*{SLOW['name']}\""]).returncode == 1  # workers ended


def _assert_one_line(capsys, code, words):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, err, captured.out[-500:])
    assert len(err.splitlines()) == 1 and len(err) < 500 and "Traceback" not in err, err
    assert words in err, err
    return err


ODD = [lambda r: r.pop("dependency", None), lambda r: r.update(dependency="far"), lambda r: r.update(dependency=None),
       lambda r: r["metrics"].update(score="abc"), lambda r: r.update(metrics=None), lambda r: r.update(speed="fast"),
       lambda r: r.update(history=[{"step": "x", "val": None}]), lambda r: r.update(memory=[1]),
       lambda r: r.update(model_params=None), lambda r: r.update(task_params="x"), lambda r: r.update(status=None),
       lambda r: r.update(gradient_flow={"init": "x"})]


def test_report_tolerates_records_with_missing_or_non_numeric_fields(tmp_path, capsys):
    paper = sorted((ROOT / "results" / "paper").glob("*.json"))[:len(ODD)]
    (tmp_path / "odd").mkdir()
    for path, change in zip(paper, ODD):
        rec = json.loads(path.read_text())
        change(rec)
        (tmp_path / "odd" / path.name).write_text(json.dumps(rec))
    assert cli.main(["report", "odd", "--results", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "odd" / "index.md").is_file()
    assert cli.main(["results", "odd", "--results", str(tmp_path), "--format", "csv"]) == 0


def test_a_failed_run_records_the_exception_type_and_its_cause_not_a_line_of_keras_argument_dump():
    import keras
    import numpy as np

    class Broken(keras.layers.Layer):
        def call(self, x, training=None):
            raise ValueError("as_list() is not defined on an unknown TensorShape.")

    try:
        Broken()(np.zeros((1, 2), "float32"), training=True)
    except ValueError as e:
        error = e
    assert "training=True" in str(error)  # Keras appended its argument dump after the cause
    assert record.describe(error) == "ValueError in Broken.call(): as_list() is not defined on an unknown TensorShape."
    try:
        raise RuntimeError("run failed") from KeyError("width")
    except RuntimeError as e:
        assert record.describe(e) == "RuntimeError: run failed (caused by KeyError: 'width')"
