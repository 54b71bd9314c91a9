"""Harness vs plain loop: the harness's training step against a bare framework loop training the same Keras model
on the same task, shape and data, no harness: ``bench speed --plain``, runs of kind ``plain_loop`` (``PlainSpec``;
records: sweep ``plain-loop``).

The plain loop is what one would write by hand on each backend: PyTorch, a ``torch.optim.Adam`` loop over the
Keras model's weights; JAX, one ``jax.jit``-compiled step of ``stateless_call``, its gradient and Adam;
TensorFlow, a ``tf.function`` step with a ``GradientTape``. All clip each gradient tensor to ``clipnorm`` as the
harness does, and read batches from the same generator. Both sides are timed as the wall time of ``steps``
steps after a warm-up, ending with the result on the host; rounds alternate which side goes first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np

from bench.core import kinds

TARGET_RATIO = 1.3  # issue 11: the harness's step within 1.3x of the plain loop's
WARMUP_STEPS = 5


def plain_loop(model, signature, config):
    """A function ``(batches, steps) -> seconds`` that trains ``model`` with the backend's own loop."""
    import keras

    from models import heads

    loss_fn = heads.loss(signature)
    return _LOOPS[keras.backend.backend()](model, loss_fn, config)


def _torch_loop(model, loss_fn, config):
    import torch
    from keras import ops

    params = [v.value for v in model.trainable_variables]
    optimizer = torch.optim.Adam(params, lr=config.lr)

    def train(batches, steps):
        start = time.perf_counter()
        for _ in range(steps):
            x, y = next(batches)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(ops.convert_to_tensor(y), model(ops.convert_to_tensor(x), training=True))
            loss.backward()
            if config.clipnorm:
                for p in params:
                    torch.nn.utils.clip_grad_norm_(p, config.clipnorm)
            optimizer.step()
        ops.convert_to_numpy(loss)
        return time.perf_counter() - start

    return train


def _jax_loop(model, loss_fn, config):
    import jax
    import jax.numpy as jnp

    b1, b2, eps = 0.9, 0.999, 1e-7  # Keras' Adam defaults
    state = {"trainable": [v.value for v in model.trainable_variables],
             "other": [v.value for v in model.non_trainable_variables]}
    state["m"] = [jnp.zeros_like(p) for p in state["trainable"]]
    state["v"] = [jnp.zeros_like(p) for p in state["trainable"]]
    state["t"] = jnp.zeros((), "float32")

    def loss_of(trainable, other, x, y):
        prediction, other = model.stateless_call(trainable, other, x, training=True)
        return loss_fn(y, prediction), other

    @jax.jit
    def step(state, x, y):
        (loss, other), grads = jax.value_and_grad(loss_of, has_aux=True)(state["trainable"], state["other"], x, y)
        if config.clipnorm:
            grads = [g * jnp.minimum(1.0, config.clipnorm / (jnp.linalg.norm(g) + 1e-12)) for g in grads]
        t = state["t"] + 1
        m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
        v = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], grads)]
        lr = config.lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        trainable = [p - lr * m_ / (jnp.sqrt(v_) + eps) for p, m_, v_ in zip(state["trainable"], m, v)]
        return {"trainable": trainable, "other": other, "m": m, "v": v, "t": t}, loss

    def train(batches, steps):
        start = time.perf_counter()
        for _ in range(steps):
            x, y = next(batches)
            new, loss = step(state, x, y)
            state.update(new)
        np.asarray(jax.device_get(loss))
        return time.perf_counter() - start

    return train


def _tensorflow_loop(model, loss_fn, config):
    import keras
    import tensorflow as tf

    weights = model.trainable_variables
    optimizer = keras.optimizers.Adam(config.lr, clipnorm=config.clipnorm)
    optimizer.build(weights)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, weights), weights)
        return loss

    def train(batches, steps):
        start = time.perf_counter()
        for _ in range(steps):
            loss = step(*next(batches))
        float(loss)
        return time.perf_counter() - start

    return train


_LOOPS = {"torch": _torch_loop, "jax": _jax_loop, "tensorflow": _tensorflow_loop}


def harness_loop(model, task, config):
    """The same ``(batches, steps) -> seconds`` contract for the harness's ``fit`` (its own batches, seed 1)."""
    from bench.runner.train import fit

    def train(_batches, steps):
        return fit(model, task, replace(config, steps=steps, eval_every=steps), seed=1).seconds

    return train


def compare(task_name: str, model_name: str, units: int, batch: int, length: int, steps: int = 100,
            rounds: int = 3, precision_name: str = "float32") -> dict:
    """Median ms per training step of the plain loop and of the harness, and their ratio, for one configuration."""
    import keras

    import models
    import tasks
    from bench.runner import measure, precision
    from bench.core.spec import TrainConfig
    from bench.runner.train import compile_model, resolve_jit, set_seed

    precision.apply(precision_name)
    task = tasks.create(task_name, length=length)
    width = models.entry(model_name).width
    hp = {width: units} if width else {}
    config = TrainConfig(steps=steps, batch_size=batch, val_size=batch, gradient_flow=False, early_stop=False,
                         precision=precision_name)

    def build():
        set_seed(0)
        return models.create(model_name, task.signature, **hp)

    plain_model, harness_model = build(), build()
    compile_model(harness_model, task.signature, config, resolve_jit("auto", model_name, hp, task.signature))
    sides = {"plain": plain_loop(plain_model, task.signature, config),
             "harness": harness_loop(harness_model, task, config)}
    batches = task.batches(batch, seed=1)
    for train in sides.values():
        train(batches, WARMUP_STEPS)  # compile, caches
    times = {name: [] for name in sides}
    for i in range(rounds):
        for name in (("plain", "harness") if i % 2 == 0 else ("harness", "plain")):
            times[name].append(sides[name](batches, steps) / steps * 1000.0)
    plain_ms, harness_ms = float(np.median(times["plain"])), float(np.median(times["harness"]))
    x, _ = task.generate("test", batch, seed=0)
    return {"plain_ms": [round(t, 4) for t in times["plain"]], "harness_ms": [round(t, 4) for t in times["harness"]],
            "plain_ms_median": round(plain_ms, 4), "harness_ms_median": round(harness_ms, 4),
            "ratio": round(harness_ms / plain_ms, 4), "target_ratio": TARGET_RATIO,
            "within_target": harness_ms / plain_ms <= TARGET_RATIO, "jit_compile": harness_model.jit_compile,
            "cudnn": measure.cudnn_status(model_name, hp, harness_model, x[:8]), "backend": keras.backend.backend()}


@dataclass(frozen=True)
class PlainSpec(kinds.Measurement):
    """One harness-vs-plain-loop comparison, a run of kind ``plain_loop``: run by the sweep executors in a fresh
    process, its record resumed like any other. Its identity hashes every field (the sweep's name aside)."""

    task_name: str = "adding"
    model_name: str = "lstm"
    units: int = 64
    batch: int = 64
    length: int = 100
    steps: int = 100  # steps per timed round
    rounds: int = 3
    precision_name: str = "float32"
    sweep: str = "plain-loop"
    kind: ClassVar[str] = "plain_loop"

    def request(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sweep"}


    def fields(self) -> dict:
        return {"kind": self.kind, "run_id": self.run_id, "sweep": self.sweep, **self.request()}

    def label(self) -> str:
        return f"plain loop {self.model_name} {self.task_name} T={self.length} H={self.units} N={self.batch}"

    AT_LEAST: ClassVar[dict] = {"units": 1, "batch": 1, "length": 1, "steps": 1, "rounds": 1}

    def checks(self):
        import models
        import tasks
        yield ("model", self.model_name), lambda: models.entry(self.model_name)
        yield ("task", self.task_name), lambda: tasks.defaults(self.task_name)
        yield from self.bounds()


def run_one(spec: PlainSpec, save_model: str | None = None) -> dict:
    """``compare`` as a record (status ``failed`` with the error if it raised)."""
    from bench.runner import record

    return record.capture(spec.fields(), lambda: compare(**spec.request()))


kinds.register("plain_loop", PlainSpec, run_one)


def configurations(names: list[str], units: list[int], batches: list[int], lengths: list[int], sweep: str,
                   **options) -> list[PlainSpec]:
    """``bench speed --plain``: one comparison per model, width, batch and length."""
    return [PlainSpec(model_name=m, units=u, batch=b, length=t, sweep=sweep, **options)
            for m in names for u in units for b in batches for t in lengths]


def line(rec: dict) -> str:
    """One line: configuration, plain and harness ms per step, ratio against the target."""
    head = (f"{rec.get('env', {}).get('backend', '?'):10s} {rec['model_name']:12s} {rec['task_name']} "
            f"T={rec['length']} H={rec['units']} N={rec['batch']} {rec['precision_name']}")
    if rec["status"] != "ok":
        return f"{head}: {rec['status']}: {rec['error']}"
    return (f"{head}: plain {rec['plain_ms_median']:.2f} ms/step, harness {rec['harness_ms_median']:.2f} ms/step, "
            f"ratio {rec['ratio']:.2f} (target <= {TARGET_RATIO})")
