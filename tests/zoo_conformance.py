"""The conformance check every model passes, built-in or plugin: it builds for every task signature, its output has
the head's shape, it trains 3 steps (finite loss, weights change), and it saves to ``.keras`` and reloads to
identical predictions (training and saving on one task, ``copy``, to keep it quick). ``tests/test_zoo.py`` runs it for every registered model on each backend.

    KERAS_BACKEND=jax python tests/zoo_conformance.py [--plugin FILE] [--tasks copy,adding] NAME...   # JSON lines
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

TASKS = ("copy", "adding", "recall")


def tiny(name: str) -> dict:
    """Hyperparameters of the smallest useful model: its width at 8."""
    import models

    width = models.entry(name).width
    return {width: 8} if width else {}


def expected_shape(signature, batch: int) -> tuple:
    from models import heads

    classes = signature.output.classes or 1
    return (batch, signature.length, classes) if heads.is_per_step(signature) else (batch, classes)


def check(name: str, task_names=TASKS, length: int = 6, batch: int = 8, steps: int = 3, train_on: str = "copy") -> dict:
    """Build for every task in ``task_names`` and check the output shape; on ``train_on`` also train ``steps`` steps
    and save and reload. Raise AssertionError naming what failed; return parameter counts and the last loss."""
    import keras

    import models
    import tasks
    from bench.core.spec import TrainConfig
    from bench.runner.train import compile_model, resolve_jit

    hp, out = tiny(name), {}
    for task_name in task_names:
        keras.utils.set_random_seed(0)
        task = tasks.create(task_name, length=length)
        sig = task.signature
        model = models.create(name, sig, **hp)
        x, y = task.generate("train", batch, seed=0)
        shape = tuple(np.shape(model(x)))
        assert shape == expected_shape(sig, batch), f"{name} on {task_name}: output {shape}"
        out[task_name] = {"params": int(model.count_params())}
        if task_name != train_on:
            continue
        compile_model(model, sig, TrainConfig(), resolve_jit("auto", name, hp, sig))
        before = [np.array(w) for w in model.get_weights()]
        losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
        assert all(np.isfinite(losses)), f"{name} on {task_name}: losses {losses}"
        assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights())), f"{name}: weights unchanged"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            model.save(path)
            loaded = keras.saving.load_model(path)
        a, b = np.asarray(model.predict_on_batch(x)), np.asarray(loaded.predict_on_batch(x))
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"{name} on {task_name}: reloaded predictions differ")
        out[task_name]["loss"] = losses[-1]
    return out


def main(argv: list[str]) -> int:
    from bench.core import plugins

    flags = {"--plugin", "--tasks"}
    plugin = [argv[i + 1] for i, a in enumerate(argv) if a == "--plugin"]
    task_names = next((argv[i + 1].split(",") for i, a in enumerate(argv) if a == "--tasks"), TASKS)
    names = [a for i, a in enumerate(argv) if a not in flags and (i == 0 or argv[i - 1] not in flags)]
    plugins.load(plugin)
    failed = 0
    for name in names:
        try:
            result = {"model": name, "ok": True, "tasks": check(name, task_names)}
        except Exception as e:  # one line per model, so the caller sees every failure
            result, failed = {"model": name, "ok": False, "error": f"{type(e).__name__}: {e}"[:500]}, failed + 1
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
