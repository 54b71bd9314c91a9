"""Train one model on one task with ``keras.Model.fit``, within a budget, and score it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from bench.measure import NormAdam, all_layers, gpu_present
from bench.spec import TrainConfig
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


XLA_MIN_UNITS = 256  # on the CPU, ``auto`` turns XLA on for LSTM/GRU layers at least this wide (see resolve_jit)


def resolve_jit(jit_compile: bool | str, model: keras.Model | None = None) -> bool | str:
    """``auto``: Keras' choice on a GPU or another backend; on TensorFlow on the CPU, XLA only where measured faster.

    Measured on the quiet 2-core CPU, ``train_on_batch`` alternated in one process, B=64 (ms/step,
    without → with XLA): LSTM(256) T=256 D=64 435 → 346 and GRU(256) 275 → 242 when the layer returns
    only its last state; but 495 → 914 and 283 → 650 when it returns every state, SimpleRNN(256) 79 → 122,
    LSTM(128) T=100 41 → 54, LSTM(64) 21 → 27. So XLA is on only for models whose recurrent layers are
    all LSTM/GRU, none returning sequences, and at least ``XLA_MIN_UNITS`` wide; off otherwise
    (Transformers included: not measured faster).
    """
    if jit_compile != "auto":
        return bool(jit_compile)
    if keras.backend.backend() != "tensorflow" or gpu_present():
        return "auto"  # Keras' choice: JAX compiles, PyTorch runs eagerly (the rule below was measured on TF)
    layers = recurrent_layers(model) if model is not None else []
    return bool(layers) and all(isinstance(layer, (keras.layers.LSTM, keras.layers.GRU))
                                and not layer.return_sequences and layer.units >= XLA_MIN_UNITS
                                for layer in layers)


def recurrent_layers(model: keras.Model) -> list:
    """Every recurrent layer of ``model``, wrapped ones (``Bidirectional``) included."""
    return [layer for layer in all_layers(model) if isinstance(layer, keras.layers.RNN)]


def compile_model(model: keras.Model, signature, config: TrainConfig) -> None:
    optimizer = NormAdam(config.lr, clipnorm=config.clipnorm)
    model.compile(optimizer=optimizer, loss=loss_for(signature), jit_compile=resolve_jit(config.jit_compile, model))


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
