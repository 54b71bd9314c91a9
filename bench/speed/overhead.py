"""Harness overhead: the harness's training step time against a plain ``model.fit`` on the same model, batch
and data, alternated in one process. ``python -m bench.speed.timing overhead`` or ``bench speed --overhead``."""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speed.timing overhead")
    p.add_argument("--task", default="adding")
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--model", default="lstm")
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    import models
    import tasks
    from bench.runner.spec import TrainConfig

    task = tasks.create(args.task, length=args.length)
    config = TrainConfig(batch_size=64, val_size=64, gradient_flow=False)

    def build():
        keras.utils.set_random_seed(0)
        return models.create(args.model, task.signature, units=args.units)

    from bench.runner.train import resolve_jit
    jit = resolve_jit(config.jit_compile, args.model, {"units": args.units}, task.signature)
    ratios = []
    for i in range(args.rounds):
        plain, harness = one_round(task, build, config, args.steps, bool(i % 2), jit)
        ratios.append(harness / plain)
        print(f"round {i}: plain fit {plain * 1000:.2f} ms/step, harness {harness * 1000:.2f} ms/step, "
              f"ratio {harness / plain:.3f}", flush=True)
    print(f"median harness/plain ratio over {args.rounds} rounds: {np.median(ratios):.3f} "
          f"({args.model}({args.units}), {args.task} T={args.length}, B=64, {args.steps} steps per round)")
    return 0
