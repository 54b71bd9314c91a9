"""The harness: run a spec, sweep a grid, report the records.

>>> from bench import RunSpec, TrainConfig, run
>>> record = run(RunSpec("adding", "lstm", {"length": 50}, train=TrainConfig(steps=200)))
>>> record["metrics"]["score"]
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from bench.runner import run  # noqa: E402
from bench.spec import RunSpec, SpecError, TrainConfig  # noqa: E402

__all__ = ["RunSpec", "SpecError", "TrainConfig", "run"]
