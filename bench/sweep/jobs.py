"""The kinds of run a sweep holds, by the ``kind`` of their spec: ``train`` (a RunSpec: train and score) and
``speed`` (a SpeedSpec: time forward and backward steps). Each spec class has ``run_id``, ``to_dict``/``from_dict``,
``label()``, ``fields()`` (the record's description of it) and ``execute()`` (its record); executors, workers and
the store treat every kind alike."""

from __future__ import annotations

import importlib

KINDS = {"train": "bench.runner.spec:RunSpec", "speed": "bench.speed.timing:SpeedSpec"}


def spec_class(kind: str):
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def from_dict(data: dict):
    """The spec a ``to_dict()`` (or a record) describes, of its kind (records without one are training runs)."""
    return spec_class(data.get("kind", "train")).from_dict(data)
