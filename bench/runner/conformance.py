"""The conformance check every model passes, built-in or plugin (``bench check``): it builds for every task
signature and its output has the head's shape; its declared FLOPs and state are sane; on one task it trains a few
steps in graph mode (finite loss, weights change) and saves to ``.keras`` and reloads to identical predictions.
Each backend runs in a process of its own (``python -m bench.runner.conformance``, JSON lines)::

    KERAS_BACKEND=jax python -m bench.runner.conformance [--plugin FILE] [--tasks copy,adding] NAME...
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

TASKS = ("copy", "adding", "recall")  # tokens → every step, features → a value, tokens → queried steps
BACKENDS = ("tensorflow", "jax", "torch")


class CheckFailed(AssertionError):
    """A conformance check failed; the message says which and why."""


def tiny(name: str) -> dict:
    """Hyperparameters of the smallest useful model: its width at 8."""
    import models

    width = models.entry(name).width
    return {width: 8} if width else {}


def expected_shape(signature, batch: int) -> tuple:
    from models import heads

    classes = signature.output.classes or 1
    return (batch, signature.length, classes) if heads.is_per_step(signature) else (batch, classes)


def checks(name: str, task_names=TASKS, length: int = 6, batch: int = 8, steps: int = 3,
           train_on: str = "copy") -> Iterator[str]:
    """Run every check of model ``name`` on this process's backend, yielding one line per passed check; raise
    CheckFailed naming the first that fails."""
    import keras

    import models
    import tasks
    from bench.core.spec import TrainConfig
    from bench.runner.train import compile_model, resolve_jit

    hp = tiny(name)
    for task_name in task_names:
        keras.utils.set_random_seed(0)
        task = tasks.create(task_name, length=length)
        sig = task.signature
        model = _guard(f"build for {task_name}", lambda: models.create(name, sig, **hp))
        x, y = task.generate("train", batch, seed=0)
        shape = tuple(np.shape(model(x)))
        _expect(shape == expected_shape(sig, batch), f"output on {task_name}", f"shape {shape}, the head expects "
                f"{expected_shape(sig, batch)}")
        yield f"build for {task_name}: output {shape}, {model.count_params():,} parameters"
        yield _costs(name, sig, model, hp, batch)
        if task_name != train_on:
            continue
        compile_model(model, sig, TrainConfig(), resolve_jit("auto", name, hp, sig))
        before = [np.array(w) for w in model.get_weights()]
        losses = [float(_guard("train", lambda: model.train_on_batch(x, y))) for _ in range(steps)]
        _expect(all(np.isfinite(losses)), f"train on {task_name}", f"losses {losses}")
        _expect(any(not np.allclose(a, b) for a, b in zip(before, model.get_weights())), f"train on {task_name}",
                "no weight changed")
        yield f"train {steps} steps on {task_name} (graph mode): loss {losses[0]:.4g} → {losses[-1]:.4g}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            _guard("save", lambda: model.save(path))
            loaded = _guard("reload", lambda: keras.saving.load_model(path))
        a, b = np.asarray(model.predict_on_batch(x)), np.asarray(loaded.predict_on_batch(x))
        _expect(np.allclose(a, b, atol=1e-5), "save and reload", f"predictions differ by {np.abs(a - b).max():.3g}")
        yield "save to .keras and reload: the same predictions"


def _costs(name: str, signature, model, hp: dict, batch: int) -> str:
    """The declared FLOPs (forward, summed over batch and time: linear in the batch, output width as built) and
    state (a count of floats >= 0) of the model, where it declares them."""
    import models

    entry = models.entry(name)
    parts = []
    if entry.flops is not None:
        one, two = (models.forward_flops(name, signature, n, **hp) for n in (batch, 2 * batch))
        _expect(math.isfinite(one) and one > 0, "flops", f"{one!r} for batch {batch}, {signature.length} steps: expected > 0")
        _expect(1.5 * one <= two <= 2 * one * (1 + 1e-6), "flops", f"{one:g} at batch {batch}, {two:g} at "
                f"{2 * batch}: flops must be summed over the batch (a cost shared by the batch, such as a "
                f"convolution kernel computed once, may be counted once)")
        width = models.registry.mixer_flops(name, signature, batch, **hp)[1]
        built = model.get_layer("readout").input.shape[-1]
        _expect(width == built, "flops", f"declares output width {width}; the mixer returns {built}")
        parts.append(f"{one:,.0f} forward FLOPs at batch {batch}")
    if entry.state is not None:
        state = models.state_size(name, signature, **hp)
        _expect(isinstance(state, int) and state >= 0, "state", f"{state!r}: expected floats per sequence >= 0")
        parts.append(f"state {state:,} floats")
    return "declared costs: " + (", ".join(parts) if parts else "none (records will say null)")


def _expect(ok: bool, check: str, why: str) -> None:
    if not ok:
        raise CheckFailed(f"{check}: {why}")


def _guard(check: str, call):
    try:
        return call()
    except CheckFailed:
        raise
    except Exception as e:  # the model's own error is the cause the user needs
        from bench.runner.record import describe
        raise CheckFailed(f"{check}: {describe(e)}") from None


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def on_backend(backend: str, names: list[str], plugins=(), task_names=TASKS) -> Iterator[dict]:
    """Check ``names`` in a fresh process on ``backend``: one dict per line (``model``, ``line`` or ``error``)."""
    command = [sys.executable, "-m", "bench.runner.conformance", "--tasks", ",".join(task_names),
               *(a for p in plugins for a in ("--plugin", p)), *names]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        for line in proc.stdout:
            if line.startswith("{"):
                yield json.loads(line)
        err = proc.stderr.read()
    if proc.returncode not in (0, 1):
        last = [line for line in err.splitlines() if line.strip()][-1:] or ["no output"]
        yield {"model": None, "error": f"the {backend} process ended with code {proc.returncode}: {last[0][:300]}"}


def check_plugin(plugin_refs: list[str], names: list[str] | None = None) -> int:
    """``bench check``: the conformance check of the built-in models, on every installed backend, for a plugin's
    models (or ``names``): one line per check, exit 2 at the first failure, with its cause."""
    import models
    from bench.core import plugins
    from bench.core.errors import SpecError

    builtin = set(models.list_models())
    plugins.load(plugin_refs)
    names = names or sorted(set(models.list_models()) - builtin)
    if not names:
        raise SpecError("bench check needs --plugin FILE (its models are checked) or --model NAME")
    for name in names:
        models.entry(name)  # an unknown name is one line, before any check
    backends = installed_backends()
    for backend in backends:
        for result in on_backend(backend, names, plugins.resolve(plugin_refs)):
            if "error" in result:
                print(f"FAIL {backend:10s} {result['model'] or ''}: {result['error']}", flush=True)
                return 2
            if "line" in result:
                print(f"ok   {backend:10s} {result['model']}: {result['line']}", flush=True)
    print(f"{len(names)} model(s) pass every check on {', '.join(backends)}")
    return 0


def main(argv: list[str]) -> int:
    """JSON lines, one per passed check and one for a model's first failure; exit 1 if any model failed."""
    from bench.core import plugins

    flags = {"--plugin", "--tasks"}
    plugin = [argv[i + 1] for i, a in enumerate(argv) if a == "--plugin"]
    task_names = next((argv[i + 1].split(",") for i, a in enumerate(argv) if a == "--tasks"), TASKS)
    names = [a for i, a in enumerate(argv) if a not in flags and (i == 0 or argv[i - 1] not in flags)]
    plugins.load(plugin)
    failed = 0
    for name in names:
        try:
            for line in checks(name, task_names):
                print(json.dumps({"model": name, "line": line}), flush=True)
            print(json.dumps({"model": name, "ok": True}), flush=True)
        except Exception as e:  # one failure per model, so the caller sees every model's
            failed += 1
            print(json.dumps({"model": name, "error": str(e)[:500] if isinstance(e, CheckFailed)
                              else f"{type(e).__name__}: {e}"[:500]}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
