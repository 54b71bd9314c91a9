"""The harness: run a spec, sweep a grid, report the records.

>>> from bench import RunSpec, TrainConfig, run
>>> record = run(RunSpec("adding", "lstm", {"length": 50}, train=TrainConfig(steps=200)))
>>> record["metrics"]["score"]

Importing ``bench`` imports no backend: ``run`` (and Keras with it) loads on first use, so commands that
train nothing start fast. ``run`` checks the spec first (``check``, the pass every entry point makes).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

__all__ = ["RunSpec", "SpecError", "TrainConfig", "check", "load_model", "run"]


def run(spec, save_model=None) -> dict:
    """Check ``spec`` (a SpecError names an impossible value), then train and score it: its record."""
    from bench.core.check import check
    from bench.runner.run import run as train

    check([spec])
    return train(spec, save_model)


def __getattr__(name):
    if name == "load_model":
        from bench.runner.run import load_model
        return load_model
    if name == "check":
        from bench.core.check import check
        return check
    if name in ("RunSpec", "TrainConfig"):
        from bench.core import spec
        return getattr(spec, name)
    if name == "SpecError":
        from bench.core.errors import SpecError
        return SpecError
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
