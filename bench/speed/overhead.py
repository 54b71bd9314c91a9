"""Harness overhead: the harness's training step time against a plain ``model.fit`` on the same model, batch
and data, alternated in one process: ``bench speed --overhead``, runs of kind ``overhead`` (``OverheadSpec``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import keras
import numpy as np

from bench.core import kinds
from bench.core.spec import asked


def one_round(task, build, config, steps: int, harness_first: bool, jit) -> tuple[float, float]:
    """Wall seconds per step of (plain fit, harness fit) on freshly compiled copies of the same model.

    Both are the wall time of a ``model.fit`` call over ``steps`` steps, after a compiling call, to the end of
    training, so the harness's share includes its callback, its optimizer's norm bookkeeping and one validation.
    """
    from bench.runner.train import compile_model, fit
    from models import heads

    plain = build()
    plain.compile(keras.optimizers.Adam(config.lr, clipnorm=config.clipnorm),
                  heads.loss(task.signature), jit_compile=jit)
    plain.fit(task.batches(config.batch_size), steps_per_epoch=3, epochs=1, verbose=0)  # compile
    harness = build()
    compile_model(harness, task.signature, config, jit)
    fit(harness, task, _replace(config, steps=3, eval_every=3), seed=0)  # compile

    def time_plain():
        clock = EndClock()
        start = time.perf_counter()
        plain.fit(task.batches(config.batch_size, seed=1), steps_per_epoch=steps, epochs=1, verbose=0,
                  callbacks=[clock])
        return (clock.end - start) / steps

    def time_harness():
        return fit(harness, task, _replace(config, steps=steps, eval_every=steps), seed=1).seconds / steps

    if harness_first:
        h = time_harness()
        return time_plain(), h
    return time_plain(), time_harness()


class EndClock(keras.callbacks.Callback):
    """Notes when training ended: both sides are timed from the ``fit`` call to the end of training, leaving out
    Keras' teardown after it (0.5-1.2 s in some calls, at random, on this CPU)."""

    def on_train_end(self, logs=None):
        self.end = time.perf_counter()


def _replace(config, **changes):
    from dataclasses import replace
    return replace(config, **changes)


@dataclass(frozen=True)
class OverheadSpec(kinds.Measurement):
    """One harness-vs-``model.fit`` comparison, a run of kind ``overhead``: run by the sweep executors in a fresh
    process, its record resumed like any other. Its identity hashes the fields set away from their defaults."""

    model: str = "lstm"
    units: int = 64
    batch: int = 64
    length: int = 100
    task: str = "adding"
    steps: int = 150  # steps per timed round
    rounds: int = 10
    sweep: str = "overhead"
    kind: ClassVar[str] = "overhead"

    def request(self) -> dict:
        return {k: v for k, v in asked(self).items() if k != "sweep"}


    def fields(self) -> dict:
        return {"kind": self.kind, "run_id": self.run_id, "request": self.request(), **asdict(self)}

    def label(self) -> str:
        return f"overhead {self.model}({self.units}) {self.task} T={self.length} N={self.batch}"

    AT_LEAST: ClassVar[dict] = {"units": 1, "batch": 1, "length": 1, "steps": 1, "rounds": 1}

    def checks(self):
        import models
        yield ("model", self.model), lambda: models.entry(self.model)
        yield from self.bounds()


def measure(spec: OverheadSpec, save_model: str | None = None) -> dict:
    """The record of ``rounds`` alternating rounds: each round's ms per step on both sides, and the median ratio."""
    from bench.runner import record

    return record.capture(spec.fields(), lambda: _rounds(spec))


kinds.register("overhead", OverheadSpec, measure)


def _rounds(spec: OverheadSpec) -> dict:
    import models
    import tasks
    from bench.core.spec import TrainConfig
    from bench.runner.train import resolve_jit

    task = tasks.create(spec.task, length=spec.length)
    config = TrainConfig(batch_size=spec.batch, val_size=spec.batch, gradient_flow=False)
    hp = {models.entry(spec.model).width: spec.units}

    def build():
        keras.utils.set_random_seed(0)
        return models.create(spec.model, task.signature, **hp)

    jit = resolve_jit(config.jit_compile, spec.model, hp, task.signature)
    rounds = [one_round(task, build, config, spec.steps, bool(i % 2), jit) for i in range(spec.rounds)]
    ratios = [harness / plain for plain, harness in rounds]
    return {"plain_ms": [round(p * 1000, 4) for p, _ in rounds], "harness_ms": [round(h * 1000, 4) for _, h in rounds],
            "ratios": [round(r, 4) for r in ratios], "ratio_median": round(float(np.median(ratios)), 4),
            "backend": keras.backend.backend()}


def configurations(names: list[str], units: list[int], batches: list[int], lengths: list[int], sweep: str,
                   **options) -> list[OverheadSpec]:
    """``bench speed --overhead``: one comparison per model, width, batch and length."""
    return [OverheadSpec(m, u, b, t, sweep=sweep, **options) for m in names for u in units for b in batches
            for t in lengths]


def line(rec: dict) -> str:
    """One line: the configuration and its median harness/plain ratio over the rounds."""
    if rec["status"] != "ok":
        return f"{rec['status']}: {rec['error']}"
    return (f"median harness/plain ratio over {rec['rounds']} rounds: {rec['ratio_median']:.3f} "
            f"({rec['model']}({rec['units']}), {rec['task']} T={rec['length']}, B={rec['batch']}, "
            f"{rec['steps']} steps per round)")
