"""Hardening, round 3 (issue 21): every wait has a bound, every bad input is one line and exit 2 (or a recorded
status), a score once earned is kept, and the smaller contract gaps. Fast: one test trains, a few steps."""

import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import models
import tasks
from bench import cli
from bench.core import check as checks
from bench.core.errors import SpecError, StoreError
from bench.core.spec import RunSpec, TrainConfig
from bench.runner import record
from bench.sweep import executors, grid
from test_faults import _assert_one_line as _one_line

ROOT = Path(__file__).resolve().parents[1]
TINY = {"steps": 5, "eval_every": 5, "val_size": 8, "test_size": 8, "gradient_flow": False}
RUN = ["run", "--task", "adding", "--model", "lstm", "--length", "5", "--steps", "2", "--hp", "units=4"]
PAPER = sorted((ROOT / "results" / "paper").glob("*.json"))


def _sweep_file(tmp_path, **changes) -> Path:
    data = {"name": "h", "tasks": {"adding": {"length": 5}}, "models": {"lstm": {"units": 4}}, "train": TINY,
            **changes}
    path = tmp_path / "h.yaml"
    path.write_text(json.dumps(data))
    return path


# ---- class 3: every wait has a bound ----

def test_a_huge_parameter_budget_is_refused_at_once(capsys):
    started = time.monotonic()
    err = _one_line(capsys, cli.main([*RUN[:-2], "--param-budget", str(10**12)]), "--param-budget")
    assert "GiB to train" in err and time.monotonic() - started < 30


def test_the_width_search_builds_a_bounded_number_of_models(monkeypatch):
    """A model whose parameters never reach the budget: the old walk built every width up to 65536, one at a time."""
    builds = []
    monkeypatch.setattr(models.registry, "count_params", lambda name, sig, **hp: builds.append(hp) or 1000)
    sig = tasks.create("adding", length=5).signature
    with pytest.raises(models.ModelError, match="no units up to 65536 reaches"):
        models.registry.width_for_budget("lstm", sig, 10**7)
    assert len(builds) < 40, len(builds)


def test_results_skip_a_fifo_named_json_and_say_so(tmp_path, capsys):
    folder = tmp_path / "fifo"
    folder.mkdir()
    shutil.copy(PAPER[0], folder)
    os.mkfifo(folder / "zz.json")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (cli.main(["results", "fifo", "--results", str(tmp_path)]), done.set()),
                              daemon=True)
    worker.start()
    worker.join(60)
    if not done.is_set():  # release the reader blocked on the FIFO before failing
        with open(folder / "zz.json", "w"):
            pass
    assert done.is_set(), "bench results blocked on a FIFO"
    assert "zz.json: not a regular file" in capsys.readouterr().err


# ---- class 5: one line, not a traceback ----

@pytest.mark.parametrize("value", [" jax", "nope", "tensorflow "])
def test_a_bad_keras_backend_variable_is_one_line(monkeypatch, capsys, value):
    monkeypatch.setenv("KERAS_BACKEND", value)
    _one_line(capsys, cli.main(["list"]), f"KERAS_BACKEND: unknown backend {value!r}")


def test_a_keras_backend_whose_module_is_missing_is_one_line(monkeypatch, capsys):
    from bench.core import backends

    monkeypatch.setattr(backends, "installed", lambda: ("tensorflow",))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    _one_line(capsys, cli.main(["list"]), "KERAS_BACKEND jax: jax is not installed")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_runs_per_worker_variable_is_one_line_before_any_run(monkeypatch, capsys, tmp_path, value):
    monkeypatch.setenv("BENCH_RUNS_PER_WORKER", value)
    _one_line(capsys, cli.main(["sweep", "smoke", "--results", str(tmp_path)]),
              f"BENCH_RUNS_PER_WORKER must be a whole number of runs >= 1, got {value!r}")
    assert not list(tmp_path.rglob("*.json"))


GOOD_TUNED = {"task": "adding", "task_params": {"length": 5}, "model": "lstm", "fixed": {}, "model_params": {},
              "train": {"lr": 0.01}, "steps": 5, "trials": 2}
TUNED = [  # (tuned file text, words of the one-line error)
    (json.dumps({k: v for k, v in GOOD_TUNED.items() if k != "model_params"}), "model_params: missing"),
    (json.dumps({**GOOD_TUNED, "model_params": None}), "model_params: None, not a mapping"),
    (json.dumps({**GOOD_TUNED, "train": None}), "train: None, not a mapping"),
    (json.dumps({**GOOD_TUNED, "train": {"lr": None}}), "train.lr must be a number > 0, got None"),
    (json.dumps({**GOOD_TUNED, "steps": None}), "steps: None, not an integer"),
    (json.dumps({**GOOD_TUNED, "model_params": {"layers": "abc"}}), "model_params.layers: expected an integer"),
    (json.dumps({**GOOD_TUNED, "model_params": {"layers": 0}}), "model_params.layers"),
    (json.dumps({**GOOD_TUNED, "task_params": {"length": 0}}), "task_params: adding: length"),
    ('{"task": "adding", "task_par', "not a readable JSON file"),
    ("[1, 2]", "not a mapping"),
]


@pytest.mark.parametrize("text, words", TUNED, ids=[f"tuned-{i}" for i in range(len(TUNED))])
def test_a_bad_tuned_file_is_one_line_naming_it(tmp_path, capsys, text, words):
    tuned = tmp_path / "results" / "h-tune" / "tuned" / "s.json"
    tuned.parent.mkdir(parents=True)
    tuned.write_text(text)
    argv = ["sweep", str(_sweep_file(tmp_path, hp="tuned")), "--results", str(tmp_path / "results"), "--dry-run"]
    err = _one_line(capsys, cli.main(argv), words)
    assert f"tuned file {tuned}" in err


def test_a_good_tuned_file_still_tunes(tmp_path, capsys):
    tuned = tmp_path / "results" / "h-tune" / "tuned" / "s.json"
    tuned.parent.mkdir(parents=True)
    tuned.write_text(json.dumps(GOOD_TUNED))
    argv = ["sweep", str(_sweep_file(tmp_path, hp="tuned")), "--results", str(tmp_path / "results"), "--dry-run"]
    assert cli.main(argv) == 0 and "no tuning stored" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    ([*RUN, "--train", "test_lengths=5"], "train.test_lengths must be a list of integers"),
    ([*RUN, "--train", f"test_lengths=[{10**10}]"], "test_lengths: 1024 sequences of length 10000000000"),
    (["tune", "--task", "adding", "--model", "gru", "--lr-range", "1e-3,inf", "--results", "{tmp}"],
     "--lr-range: expected [low, high]"),
    (["tune", "--task", "adding", "--model", "gru", "--results", "/proc/no-such-results"], "cannot write there"),
    (["tune", "--task", "adding", "--model", "gru", "--results", "{tmp}/" + "x" * 300], "File name too long"),
    (["tune", "--task", "adding", "--model", "gru", "--sweep", "../x", "--results", "{tmp}"], "sweep: must be letters"),
])
def test_bad_values_are_one_line_before_anything_trains(tmp_path, capsys, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    _one_line(capsys, cli.main(argv), words)
    assert not list(tmp_path.glob("**/*.json"))


def test_an_lr_range_reaching_inf_in_a_tune_section_is_refused():
    with pytest.raises(SpecError, match="tune.lr_range: expected"):
        grid.expand({"tasks": {"adding": {}}, "models": {"lstm": {}},
                     "tune": {"trials": 1, "steps": 1, "lr_range": [1e-3, float("inf")]}})


def test_a_full_disk_is_one_line_saying_what_was_kept(tmp_path, monkeypatch):
    rec = record.new(RunSpec("adding", "lstm", {"length": 5}, sweep="h").fields())
    record.write(rec, tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(record.os, "fsync", full)
    with pytest.raises(StoreError, match="No space left on device; 1 finished record"):
        record.write({**rec, "run_id": "other"}, tmp_path)
    assert [p.name for p in (tmp_path / "h").iterdir()] == [f"{rec['run_id']}.json"]  # no temp file left


def test_a_dask_scheduler_out_of_reach_is_one_line(tmp_path, capsys):
    import dask
    import distributed  # noqa: F401  (its defaults first: leaving set() would otherwise drop them all)

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = cli.main(["sweep", str(_sweep_file(tmp_path)), "--results", str(tmp_path), "--executor", "dask",
                         "--scheduler", "tcp://127.0.0.1:9"])
    _one_line(capsys, code, "--scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler")


def test_a_record_whose_metrics_is_not_a_mapping_is_skipped_and_named(tmp_path):
    (tmp_path / "odd").mkdir()
    odd = json.loads(PAPER[2].read_text())
    (tmp_path / "odd" / PAPER[2].name).write_text(json.dumps({**odd, "metrics": [1, 2]}))
    assert record.load(tmp_path, "odd") == ([], [f"{tmp_path / 'odd' / PAPER[2].name}: not a run record (metrics "
                                                 f"is list, not a mapping)"])


# ---- class 6: bad values refused, messages about what the user set ----

SPEED = ["speed", "--models", "gru", "--units", "4", "--batch", "2", "--lengths", "4"]


@pytest.mark.parametrize("extra, words", [
    (["--min-steps", "0"], "--min-steps must be an integer >= 1, got 0"),
    (["--input-width", "0"], "--input-width must be an integer >= 1, got 0"),
    (["--warmup", "-1"], "--warmup must be an integer >= 0, got -1"),
    (["--min-seconds", "-1"], "--min-seconds must be a finite number >= 0"),
    (["--models", ","], "nothing to measure: --models names no model"),
    (["--sweep", "../x"], "sweep: must be letters"),
    (["--plain", "--rounds", "0"], "--rounds must be an integer >= 1"),
])
def test_bad_speed_values_are_one_line_and_write_nothing(tmp_path, capsys, extra, words):
    results = tmp_path / "results"
    _one_line(capsys, cli.main([*SPEED, *extra, "--results", str(results)]), words)
    assert not list(tmp_path.glob("**/*.json"))


def test_a_record_is_never_written_outside_the_results_folder(tmp_path):
    with pytest.raises(SpecError, match="sweep"):
        record.path_for(tmp_path, "../x", "abc")


def test_heads_3_with_a_parameter_budget_finds_a_width_divisible_by_3():
    spec = RunSpec("adding", "transformer", {"length": 10}, {"heads": 3, "param_budget": 56000})
    checks.check([spec], checks.FLAGS)
    d_model = spec.resolved().model_params["d_model"]
    count = models.registry.count_params("transformer", tasks.create("adding", length=10).signature, heads=3,
                                         d_model=d_model)
    assert d_model % 3 == 0 and abs(count - 56000) <= 0.05 * 56000


def test_a_budget_error_does_not_quote_a_width_as_if_the_user_set_it(capsys):
    argv = ["run", "--task", "adding", "--model", "transformer", "--length", "10", "--hp", "heads=1000",
            "--param-budget", "56000"]
    err = _one_line(capsys, cli.main(argv), "no d_model from 8 to 71 builds")
    assert "the parameter budget sets d_model" in err


def test_a_sweep_named_by_its_file_says_file_not_name(tmp_path):
    path = tmp_path / "my sweep.yaml"
    path.write_text("tasks: {adding: {}}\nmodels: {lstm: {}}\n")
    with pytest.raises(SpecError, match=r"file: its name 'my sweep' names the sweep \(it sets no name:\)"):
        grid.load(str(path))


# ---- class 7: a score once earned is kept ----

def test_a_model_that_cannot_be_saved_keeps_its_score():
    from bench import run

    rec = run(RunSpec("adding", "lstm", {"length": 5}, {"units": 4}, {**TINY, "test_lengths": [6]}),
              save_model="/proc/no-such-folder/m.keras")
    assert rec["status"] == "ok" and rec["metrics"]["score"] is not None
    assert rec["post_error"].startswith("save_model: ") and "model_file" not in rec
    assert rec["metrics"]["extrapolation"][0]["length"] == 6  # the phase after the failed one still ran


SLOW_KIND = '''
import os, signal
from dataclasses import dataclass
from typing import ClassVar
from bench.core import kinds
from bench.runner import record

if "BENCH_PARENT_PID" in os.environ:  # in the worker only: no framework import for its environment
    record.environment = lambda: {}


@dataclass(frozen=True)
class Scored(kinds.Measurement):
    name: str = "x"
    sweep: str = "h"
    kind: ClassVar[str] = "scored_then_killed"

    def request(self):
        return {"name": self.name}

    def fields(self):
        return {"kind": self.kind, "run_id": self.run_id, "sweep": self.sweep, **self.request()}

    def label(self):
        return self.name


def run(spec, save_model=None):
    kill = lambda rec: os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a timeout would, mid-phase
    return record.capture(spec.fields(), lambda: {"metrics": {"score": 0.75}, "after": [("test_lengths", kill)]})


kinds.register("scored_then_killed", Scored, run)
'''


def test_a_worker_ended_after_its_score_keeps_the_score(tmp_path, monkeypatch):
    """Killed mid-phase in a warm worker (the local executor's); a fresh one (Dask's tasks) ends through the same
    ``executors._ended``."""
    (tmp_path / "scored_kind.py").write_text(SLOW_KIND)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    import scored_kind

    [rec] = list(executors.local([scored_kind.Scored()]))
    assert rec["status"] == "ok" and rec["metrics"] == {"score": 0.75}, rec
    assert rec["post_error"].startswith("after it was scored: worker killed by SIGKILL"), rec


def test_a_timeout_after_the_score_keeps_it(tmp_path):
    provisional = tmp_path / "scored.json"
    provisional.write_text(json.dumps({"status": "ok", "metrics": {"score": 0.5}}))
    rec = executors._ended(None, provisional, "timeout", "run exceeded its timeout of 9 s", time.perf_counter())
    assert rec == {"status": "ok", "metrics": {"score": 0.5},
                   "post_error": "after it was scored: run exceeded its timeout of 9 s"}


# ---- class 8: smaller contract gaps ----

def test_records_are_created_as_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        path = record.write(record.new(RunSpec("adding", "lstm", sweep="h").fields()), tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_report_says_what_it_skipped_left_out_and_what_names_another_sweep(tmp_path, capsys):
    """Records of another kind are left out, of another sweep kept; a record whose metrics is no mapping skipped:
    each said in one line (a note of the summary line, and in index.md)."""
    (tmp_path / "mixed").mkdir()
    for path in PAPER[:2]:
        shutil.copy(path, tmp_path / "mixed")
    shutil.copy(next((ROOT / "results" / "speed-cpu").glob("*.json")), tmp_path / "mixed")
    (tmp_path / "mixed" / PAPER[2].name).write_text(json.dumps({**json.loads(PAPER[2].read_text()), "metrics": 5}))
    assert cli.main(["report", "mixed", "--results", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert "2 records (ok 2)" in out and "1 record(s) of kind 'speed' left out" in out
    assert "2 record(s) say sweep 'paper', not 'mixed'" in out and "1 file(s) not read" in out
    assert "metrics is int, not a mapping" in (tmp_path / "reports" / "mixed" / "index.md").read_text()


@pytest.mark.parametrize("listed, found, warned", [("0", ["0"], False), ("7", [], True), ("0,3", ["0"], True),
                                                   ("GPU-ab", ["GPU-ab"], False), ("GPU-zz", [], True)])
def test_cuda_visible_devices_naming_absent_gpus_warns_and_pins_nothing_to_them(monkeypatch, capsys, listed, found,
                                                                               warned):
    from bench.core import backends

    listing = "GPU 0: NVIDIA H200 (UUID: GPU-ab12)\n"
    monkeypatch.setattr(backends.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, listing, ""))
    monkeypatch.setattr(backends, "_warned", set())
    backends._nvidia_smi_gpus.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    try:
        assert backends.gpu_ids() == found
    finally:
        backends._nvidia_smi_gpus.cache_clear()
    err = capsys.readouterr().err
    assert ("names GPU(s)" in err and len(err.splitlines()) == 1) if warned else not err


def test_a_sweep_stopped_by_a_full_disk_says_what_was_kept_and_how_to_resume(tmp_path, monkeypatch, capsys):
    def fake(specs, **_):
        for spec in specs:
            yield record.new(spec.fields())

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setitem(executors.EXECUTORS, "local", fake)
    monkeypatch.setattr(record.os, "fsync", full)
    code = cli.main(["sweep", str(_sweep_file(tmp_path)), "--results", str(tmp_path)])
    err = _one_line(capsys, code, "No space left on device; 0 finished record(s) kept")
    assert "resume with: bench " in err


def test_an_unwritable_bench_log_says_so_in_one_line(tmp_path):
    code = "from bench.core import quiet; quiet.native_stderr_to_log(); import os; os.write(2, b'noise')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={**os.environ, "BENCH_LOG": "/proc/no-such-folder/bench.log", "BENCH_VERBOSE": "0",
                              "TMPDIR": str(tmp_path)})
    assert out.stderr.strip().splitlines() == [f"bench: warning: cannot write the log /proc/no-such-folder/bench.log "
                                               f"(BENCH_LOG); framework messages go to {tmp_path}/lstm-bench-"
                                               f"{os.getuid()}.log"], out.stderr
    assert "noise" in next(tmp_path.glob("lstm-bench-*.log")).read_text()


@pytest.mark.parametrize("call, words", [
    (lambda: RunSpec("adding", 5), "RunSpec model must be a model's name, got 5"),
    (lambda: RunSpec("adding", "lstm", [1]), "RunSpec task_params must be a mapping"),
    (lambda: RunSpec("adding", "lstm", model_params=None), "RunSpec model_params must be a mapping"),
    (lambda: RunSpec("adding", "lstm", train=5), "RunSpec train must be a mapping of training options"),
    (lambda: RunSpec("adding", "lstm", seed="0"), "RunSpec seed must be an integer"),
    (lambda: checks.check([RunSpec("adding", "lstm", sweep="../x")]), "sweep: must be letters"),
    (lambda: __import__("bench").run("adding"), "expected a RunSpec"),
    (lambda: TrainConfig(test_lengths=5), "train.test_lengths must be a list"),
])
def test_python_api_misuse_raises_the_clis_spec_errors(call, words):
    with pytest.raises(SpecError, match=re.escape(words)):
        call()
