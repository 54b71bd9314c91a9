"""The harness on each Keras backend (TensorFlow, JAX, PyTorch): a model of each kind (family, cuDNN or not)
trains through the harness on each backend and on every task type (one per backend, rotating), a run through the
command line is recorded with its backend, and the speed benchmark runs; each in a subprocess, since a process
has one backend. Every model's own layers are checked on every backend by the conformance tests (test_zoo.py).
Tiny shapes: PyTorch's generic recurrent loop is slow on the CPU."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

BACKEND_NAMES = ("tensorflow", "jax", "torch")
BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(name) is None,
                                                         reason=f"{name} is not installed"))
            for name in BACKEND_NAMES]
TASK_TYPES = ("copy", "adding", "recall")  # tokens in, a class per step · features in, one value · queries


def one_of_each_kind() -> list[str]:
    """The first model (by name) of each (family, cuDNN or not): the harness' code paths differ by these only."""
    import models

    kinds = {}
    for name in models.list_models():
        entry = models.entry(name)
        kinds.setdefault((entry.family, entry.cudnn is not False), name)
    return sorted(kinds.values())


def task_plan(backend: str) -> dict[str, str]:
    """The task type each model trains on with ``backend``, rotating: each kind of model trains on every backend and
    on every task type (each pair on one backend: a third of the cost of all of them)."""
    offset = BACKEND_NAMES.index(backend)
    return {m: TASK_TYPES[(i + offset) % len(TASK_TYPES)] for i, m in enumerate(one_of_each_kind())}


EVERY_MODEL_ON_ITS_TASK = """
import json, sys
import models
from bench.runner.run import run
from bench.core.spec import RunSpec, TrainConfig

train = TrainConfig(steps=2, eval_every=2, batch_size=4, val_size=8, test_size=8)
for model, task in json.loads(sys.argv[1]).items():
    width = models.entry(model).width
    r = run(RunSpec(task, model, {"length": 3}, {width: 8}, train))
    print(json.dumps({k: r.get(k) for k in ("model", "task", "status", "error", "env", "cudnn", "gradient_flow")}))
print(json.dumps({"tensorflow_loaded": "tensorflow" in sys.modules}))
"""


def in_backend(backend, *argv, timeout=600):
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_kind_of_model_trains_on_every_backend_and_task_type(backend):
    plan = task_plan(backend)
    *runs, last = [json.loads(line) for line in in_backend(backend, "-c", EVERY_MODEL_ON_ITS_TASK,
                                                           json.dumps(plan)).splitlines() if line.startswith("{")]
    assert {(r["model"], r["task"]) for r in runs} == set(plan.items())
    for r in runs:
        assert r["status"] == "ok", (r["model"], r["task"], r["error"])
        assert r["env"]["backend"] == backend and r["env"]["precision"]["name"] == "float32"
        assert r["cudnn"]["used"] is False and r["cudnn"]["observed"] == "no GPU"  # this CPU: observed, no GPU
        assert r["gradient_flow"]["final"]["grad_norm"]
    assert last == {"tensorflow_loaded": backend == "tensorflow"}  # no second framework in the process


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_through_the_command_line_records_its_backend(backend, tmp_path):
    """With dropout: on JAX its seed generator once leaked a tracer from the gradient-flow measurement."""
    out = in_backend("tensorflow", "-m", "bench.cli", "run", "--backend", backend, "--task", "recall", "--model",
                     "gru", "--length", "4", "--steps", "4", "--eval-every", "2", "--hp", "units=8", "--hp", "dropout=0.1",
                     "--results", str(tmp_path))
    record = json.loads(open(json.loads(out.strip().splitlines()[-1])["record"]).read())
    assert record["status"] == "ok" and record["env"]["backend"] == backend and len(record["history"]) == 2
    assert record["jit_compile"] == (backend == "jax")  # Keras' own choice there: JAX compiles, PyTorch does not
    assert record["cudnn"]["eligible"] and record["gradient_flow"]["init"]["wrt"] == "embedding"


def test_auto_is_the_default_and_its_choice_is_recorded(tmp_path):
    """Without ``--backend`` or ``KERAS_BACKEND`` a run asks for ``auto``: the table's fastest installed backend."""
    from bench.core import backends

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--task", "adding", "--model", "rnn", "--length",
                           "4", "--steps", "2", "--eval-every", "2", "--hp", "units=8", "--results", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(open(json.loads(proc.stdout.strip().splitlines()[-1])["record"]).read())
    expected = backends.choose("auto", "rnn", record["length"])
    assert record["backend"] == {"asked": "auto", "ran": expected.name, "why": expected.why}
    assert expected.why.startswith("auto: ") and record["env"]["backend"] == expected.name


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_speed_and_its_breakdown_run_on_another_backend(backend, tmp_path):
    in_backend(backend, "-m", "bench.cli", "speed", "--models", "gru,transformer", "--units", "8", "--batch", "2",
               "--lengths", "8", "--min-steps", "3", "--min-seconds", "0", "--warmup", "0", "--breakdown",
               "--results", str(tmp_path))
    records = [json.loads(p.read_text()) for p in (tmp_path / "speed").glob("*.json")]
    assert sorted(r["model"] for r in records) == ["gru", "transformer"]
    assert all(r["status"] == "ok" and r["env"]["backend"] == backend for r in records)
    assert [r["matmul_floor"]["floor_ms"] > 0 for r in records if r["model"] == "gru"] == [True]


def test_the_backend_cannot_change_once_keras_is_loaded(capsys):
    import keras

    from bench import cli
    other = "jax" if keras.backend.backend() != "jax" else "torch"
    assert cli.main(["run", "--backend", other, "--task", "adding", "--model", "lstm"]) == 2
    assert "already loaded" in capsys.readouterr().err


def test_mixed_bfloat16_trains_and_is_recorded(tmp_path):
    from bench.runner import precision
    from bench.runner.run import run
    from bench.core.spec import RunSpec, SpecError, TrainConfig
    try:
        r = run(RunSpec("adding", "lstm", {"length": 4}, {"units": 8},
                        TrainConfig(steps=2, eval_every=2, batch_size=4, val_size=8, test_size=8,
                                    precision="mixed_bfloat16")))
    finally:
        precision.apply("float32")
    assert r["status"] == "ok", r["error"]
    assert r["env"]["precision"] == {"name": "mixed_bfloat16", "policy": "mixed_bfloat16", "matmul": "tf32"}
    with pytest.raises(SpecError, match="precision"):
        TrainConfig(precision="fp8")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_scores_do_not_depend_on_the_backend_chosen():
    """What ``backend: auto`` relies on: the same (task, model, seeds) trained on TensorFlow and on JAX (warm
    workers, one per backend) score alike, the difference of the means within seed noise."""
    import numpy as np

    from bench.core.spec import RunSpec, TrainConfig
    from bench.sweep import executors

    train = TrainConfig(steps=150, eval_every=50, val_size=128, test_size=256, gradient_flow=False)
    specs = [RunSpec("adding", "gru", {"length": 8}, {"units": 16}, train, seed, "backends", backend)
             for backend in ("tensorflow", "jax") for seed in range(3)]
    records = list(executors.local(specs, workers=2, timeout=300))
    scores = {b: [r["metrics"]["score"] for r in records if r["backend"]["ran"] == b] for b in ("tensorflow", "jax")}
    assert all(r["status"] == "ok" and r["backend"]["asked"] == r["backend"]["ran"] for r in records), records
    assert [len(s) for s in scores.values()] == [3, 3]
    noise = np.sqrt((np.var(scores["tensorflow"], ddof=1) + np.var(scores["jax"], ddof=1)) / 2)  # within a backend
    assert abs(np.mean(scores["tensorflow"]) - np.mean(scores["jax"])) <= 3 * noise + 0.05, scores
    assert min(scores["tensorflow"] + scores["jax"]) > 0.2, scores  # learnt (0: memoryless): trained models compared


def test_a_partial_remeasure_keeps_the_table_s_other_rows(tmp_path):
    """``bench speed --preset backends --models m`` rewrites the table from the whole folder, not from m alone."""
    from bench.speed import backends as table

    folder = tmp_path / "backend-cpu"
    folder.mkdir()
    for i, (model, ran, ms) in enumerate([("rnn", "tensorflow", 5.0), ("rnn", "jax", 4.0), ("gru", "jax", 7.0)]):
        (folder / f"{i:016x}.json").write_text(json.dumps({
            "schema": 2, "run_id": f"{i:016x}", "kind": "speed", "status": "ok", "model": model, "length": 25, "batch": 64,
            "units": 8, "params": 100, "backend": {"ran": ran}, "speed": {"train": {"median_ms": ms}}}))
    path = table.refresh(tmp_path, "backend-cpu", tmp_path / "table.json")
    rows = {r["model"]: r["train_ms"] for r in json.loads(path.read_text())["rows"]}
    assert rows == {"gru": {"jax": 7.0}, "rnn": {"jax": 4.0, "tensorflow": 5.0}}


def test_auto_on_an_install_with_one_backend_says_it_is_the_only_one(monkeypatch):
    """The default install has TensorFlow alone: auto takes it and says why without a ratio of it to itself."""
    from bench.core import backends

    monkeypatch.setattr(backends, "installed", lambda: ("tensorflow",))
    choice = backends.choose("auto", "lstm", 25)
    assert choice.name == "tensorflow"
    assert choice.why.startswith("auto: tensorflow, the only measured backend installed here (") and " vs " not in choice.why
