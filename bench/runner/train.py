"""Train one model on one task with ``keras.Model.fit``, within a budget, and score it."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import keras
import numpy as np

import models
from bench.runner.measure import gpu_present
from bench.runner.optim import NormAdam
from bench.core.spec import TrainConfig
from bench.core.text import clock
from models import heads
from tasks import Final


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
    diverged_why: str | None = None  # "NaN or infinite", or how far above the baseline loss it went
    validation_seconds: float = 0.0  # wall time of the validations between steps


BLOWUP = 1e6  # a loss this many times the memoryless baseline's has diverged, though still finite


def baseline_loss(task) -> float:
    """The loss of a memoryless prediction: the task's baseline MSE, or the cross-entropy of a uniform guess."""
    output = task.signature.output
    if isinstance(output, Final) and output.classes is None:
        return float(task.baseline)
    return math.log(output.classes)


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
    model.compile(optimizer=optimizer, loss=heads.loss(signature), jit_compile=jit_compile)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.concatenate([keras.ops.convert_to_numpy(model.predict_on_batch(x[i : i + batch_size]))
                           for i in range(0, len(x), batch_size)]).astype("float32")


def set_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``, without importing TensorFlow on another backend (it seeds TensorFlow too
    when it is installed: seconds of import per run, and a second framework in the process)."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    sys.modules["tensorflow"] = None  # makes `import tensorflow` fail, so Keras skips it
    try:
        keras.utils.set_random_seed(seed)
    finally:
        del sys.modules["tensorflow"]


class _Monitor(keras.callbacks.Callback):
    """Times every step, validates every epoch (= ``eval_every`` steps, the last one shorter so exactly
    ``steps`` steps run), stops on the step budget, solved, NaN or time (the wall-clock safety net)."""

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
        if self.result.steps >= self.config.steps:
            self.model.stop_training = True  # Keras still calls on_epoch_end: the last validation is at `steps`
        elif budget is not None and now - self.start > budget:
            self.result.stop = "time"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        began = time.perf_counter()
        try:
            self._validate(logs)
        finally:
            self.last = time.perf_counter()  # validation time is not a training step's time
            self.result.validation_seconds += self.last - began

    def _validate(self, logs) -> None:
        loss = float((logs or {}).get("loss", math.nan))
        step = self.result.steps
        limit = BLOWUP * baseline_loss(self.task)
        if not math.isfinite(loss) or loss > limit:
            self.result.stop, self.result.diverged_at = "diverged", step
            self.result.diverged_why = "NaN or infinite" if not math.isfinite(loss) else \
                f"{loss:.3g}, above {BLOWUP:.0e} x the memoryless baseline's loss"
            self.model.stop_training = True
            return
        x, y = self.val
        val = self.task.evaluate(y, predict(self.model, x))
        elapsed = time.perf_counter() - self.start
        norms = self.model.optimizer.read_norms() if isinstance(self.model.optimizer, NormAdam) else {}
        self.result.history.append(Evaluation(step, elapsed, loss, val, **norms))
        if not math.isfinite(val):
            self.result.stop, self.result.diverged_at, self.result.diverged_why = "diverged", step, "NaN or infinite"
            self.model.stop_training = True
        elif self.config.early_stop and self.task.solved(val):
            self.result.stop = "solved"
            self.model.stop_training = True


def fit(model: keras.Model, task, config: TrainConfig, seed: int) -> TrainResult:
    """Train on fresh batches for exactly ``config.steps`` steps, unless the task is solved first, the loss
    diverges, or the wall-clock safety net ``max_seconds`` stops it (``stop == "time"``)."""
    result = TrainResult()
    val = task.generate("val", config.val_size, seed=seed)
    epochs = math.ceil(config.steps / config.eval_every)
    monitor = _Monitor(task, val, config, result)
    callbacks = [monitor] + ([_Progress(config, result)] if _progress_wanted() else [])
    start = time.perf_counter()
    model.fit(task.batches(config.batch_size, seed=seed), steps_per_epoch=config.eval_every, epochs=epochs,
              shuffle=False, verbose=0, callbacks=callbacks)
    result.seconds = monitor.end - start  # not Keras' teardown after training (0.5-1.2 s in some calls)
    return result


def _progress_wanted() -> bool:
    """Progress on a terminal only (a sweep's workers and CI logs stay quiet); BENCH_PROGRESS=0 turns it off."""
    return os.environ.get("BENCH_PROGRESS", "1") != "0" and sys.stderr.isatty()


class _Progress(keras.callbacks.Callback):
    """One live line on stderr: steps done of the budget, the latest validation metric, loss, elapsed, ETA."""

    def __init__(self, config: TrainConfig, result: TrainResult, every_s: float = 0.5):
        super().__init__()
        self.config, self.result, self.every_s = config, result, every_s

    def on_train_begin(self, logs=None):
        self.start = self.shown = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.shown >= self.every_s:
            self.shown = now
            self._draw(now, (logs or {}).get("loss"))

    def on_train_end(self, logs=None):
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    def _draw(self, now: float, loss) -> None:
        done, total, elapsed = self.result.steps, self.config.steps, now - self.start
        left = elapsed / done * (total - done) if done else None
        if self.config.max_seconds is not None:
            left = min(left if left is not None else math.inf, max(0.0, self.config.max_seconds - elapsed))
        val = self.result.history[-1].val if self.result.history else None
        parts = [f"step {done}/{total}", f"val {val:.4g}" if val is not None else "val -",
                 f"loss {float(loss):.4g}" if loss is not None else "", f"{clock(elapsed)} elapsed",
                 f"eta {clock(left)}" if left is not None and math.isfinite(left) else "eta ?"]
        sys.stderr.write("\r\033[K" + " · ".join(p for p in parts if p))
        sys.stderr.flush()
