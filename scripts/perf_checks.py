"""Two one-off checks of issue 4, printed as tables: data generation's share of the step time for every task,
and the gradient-flow ratio ‖∂L/∂x_1‖/‖∂L/∂x_T‖ at initialisation, rnn vs lstm, on adding.

    PYTHONPATH=$PWD python scripts/perf_checks.py datagen [--units 64]
    PYTHONPATH=$PWD python scripts/perf_checks.py flow [--length 100 --seeds 5]
"""

import argparse
import time

import numpy as np


def datagen(args):
    import keras

    import models
    import tasks
    from bench.core.spec import TrainConfig
    from bench.runner.train import compile_model

    for name in tasks.list_tasks():
        for length in (100, 1000):
            task = tasks.create(name, length=length)
            stream = task.batches(64)
            next(stream)
            start = time.perf_counter()
            for _ in range(20):
                x, y = next(stream)
            gen_ms = (time.perf_counter() - start) / 20 * 1000
            keras.utils.set_random_seed(0)
            model = models.create("lstm", task.signature, units=args.units)
            compile_model(model, task.signature, TrainConfig())
            model.train_on_batch(x, y)
            times = []
            for _ in range(5):
                start = time.perf_counter()
                float(np.asarray(model.train_on_batch(x, y)))
                times.append(time.perf_counter() - start)
            step_ms = float(np.median(times)) * 1000
            print(f"{name:8s} T={length:5d}: next(batches) {gen_ms:7.3f} ms, lstm({args.units}) step {step_ms:8.2f} ms, "
                  f"share {100 * gen_ms / step_ms:5.2f} %", flush=True)


def flow(args):
    import keras

    import models
    import tasks
    from bench.runner import measure

    task = tasks.create("adding", length=args.length)
    x, y = task.generate("val", measure.FLOW_BATCH)
    for name in ("rnn", "lstm", "gru"):
        ratios = []
        for seed in range(args.seeds):
            keras.utils.set_random_seed(seed)
            model = models.create(name, task.signature, units=args.units)
            ratios.append(measure.gradient_flow(model, measure.flow_loss(task.signature), x, y)["first_over_last"])
        print(f"{name:5s} T={args.length} units={args.units}: ‖∂L/∂x_1‖/‖∂L/∂x_T‖ at init, median over "
              f"{args.seeds} seeds {np.median(ratios):.3g} (range {min(ratios):.3g}–{max(ratios):.3g})", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("check", choices=["datagen", "flow"])
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args()
    {"datagen": datagen, "flow": flow}[a.check](a)
