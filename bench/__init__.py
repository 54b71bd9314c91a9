"""The harness: run a spec, sweep a grid, report the records.

>>> from bench import RunSpec, TrainConfig, run
>>> record = run(RunSpec("adding", "lstm", {"length": 50}, train=TrainConfig(steps=200)))
>>> record["metrics"]["score"]

Importing ``bench`` imports no backend: ``run`` (and Keras with it) loads on first use, so commands that
train nothing start fast.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

__all__ = ["RunSpec", "SpecError", "TrainConfig", "load_model", "run"]


def __getattr__(name):
    if name in ("run", "load_model"):
        from bench.runner import run
        return getattr(run, name)
    if name in ("RunSpec", "SpecError", "TrainConfig"):
        from bench.runner import spec
        return getattr(spec, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
