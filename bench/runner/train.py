"""Train one model on one task with ``keras.Model.fit``, within a budget, and score it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np

import models
from bench.runner.measure import gpu_present
from models import heads
from bench.runner.optim import NormAdam
from bench.runner.spec import TrainConfig
from tasks import IGNORE, Final


@dataclass
class Evaluation:
    step: int
    seconds: float
    loss: float
    val: float
    grad_norm: float | None = None  # global gradient norm before clipping, at the last step
    grad_norm_max: float | None = None  # largest since the previous evaluation
    clipped_steps: int | None = None  # steps so far at which clipping changed the gradient


@dataclass
class TrainResult:
    history: list[Evaluation] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)  # wall time of every training step, in order
    steps: int = 0
    seconds: float = 0.0
    stop: str = "steps"  # steps | solved | time | diverged
    diverged_at: int | None = None


def loss_for(signature):
    if isinstance(signature.output, Final) and signature.output.classes is None:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)


def resolve_jit(jit_compile: bool | str, model: str | None = None, hp: dict | None = None,
                signature=None) -> bool | str:
    """``auto``: Keras' choice on a GPU or another backend; on TensorFlow on the CPU, XLA only where the model's
    registry entry says it was measured faster (``xla_cpu``), off elsewhere (Transformers included)."""
    if jit_compile != "auto":
        return bool(jit_compile)
    if keras.backend.backend() != "tensorflow" or gpu_present():
        return "auto"  # Keras' choice: JAX compiles, PyTorch runs eagerly (the rule below was measured on TF)
    entry = models.entry(model)
    return bool(entry.xla_cpu and entry.xla_cpu({**entry.defaults, **(hp or {})}, heads.is_per_step(signature)))


def compile_model(model: keras.Model, signature, config: TrainConfig, jit_compile: bool | str) -> None:
    """Compile with the run's optimizer and loss; ``jit_compile`` as ``resolve_jit`` decided it."""
    optimizer = NormAdam(config.lr, clipnorm=config.clipnorm, value_clip=config.clipvalue)
    model.compile(optimizer=optimizer, loss=loss_for(signature), jit_compile=jit_compile)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.concatenate([np.asarray(model.predict_on_batch(x[i : i + batch_size]))
                           for i in range(0, len(x), batch_size)])


class _Monitor(keras.callbacks.Callback):
    """Times every step, validates every epoch (= ``eval_every`` steps), stops on solved, NaN or time."""

    def __init__(self, task, val, config: TrainConfig, result: TrainResult):
        super().__init__()
        self.task, self.val, self.config, self.result = task, val, config, result

    def on_train_begin(self, logs=None):
        self.start = self.last = time.perf_counter()

    def on_train_end(self, logs=None):
        self.end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.result.step_seconds.append(now - self.last)
        self.last = now
        self.result.steps += 1
        budget = self.config.max_seconds
        if budget is not None and now - self.start > budget:
            self.result.stop = "time"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", math.nan))
        step = self.result.steps
        if not math.isfinite(loss):
            self.result.stop, self.result.diverged_at = "diverged", step
            self.model.stop_training = True
            return
        x, y = self.val
        val = self.task.evaluate(y, predict(self.model, x))
        elapsed = time.perf_counter() - self.start
        norms = self.model.optimizer.read_norms() if isinstance(self.model.optimizer, NormAdam) else {}
        self.result.history.append(Evaluation(step, elapsed, loss, val, **norms))
        if not math.isfinite(val):
            self.result.stop, self.result.diverged_at = "diverged", step
            self.model.stop_training = True
        elif self.config.early_stop and self.task.solved(val):
            self.result.stop = "solved"
            self.model.stop_training = True
        self.last = time.perf_counter()  # validation time is not a training step's time


def fit(model: keras.Model, task, config: TrainConfig, seed: int) -> TrainResult:
    """Train on fresh batches until the step budget, the time budget, or the task is solved."""
    result = TrainResult()
    val = task.generate("val", config.val_size, seed=seed)
    epochs = math.ceil(config.steps / config.eval_every)
    monitor = _Monitor(task, val, config, result)
    start = time.perf_counter()
    model.fit(task.batches(config.batch_size, seed=seed), steps_per_epoch=config.eval_every, epochs=epochs,
              shuffle=False, verbose=0, callbacks=[monitor])
    result.seconds = monitor.end - start  # not Keras' teardown after training (0.5-1.2 s in some calls)
    return result
