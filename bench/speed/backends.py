"""The backend table: every model's training step timed on each installed Keras backend at the reference's shapes,
written where ``backend: auto`` reads it (``bench.core.backends``).

``bench speed --preset backends`` measures it: each model at the width that gives it ``BUDGET`` trainable
parameters on the benchmark's input, batch ``BATCH``, the lengths ``LENGTHS``, every backend in a fresh process
(configurations of one model and length run back to back, so the ratio between backends is measured under the
same load); then ``write`` turns the records into the table that ships with the package.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from bench.core import backends

BUDGET = 25_000  # trainable parameters, as in the reference sweeps
BATCH = 64
LENGTHS = (25, 100, 400)  # the reference ladders' range
INPUT_WIDTH = 16
REFERENCE = Path(__file__).parents[1] / "sweep" / "presets" / "reference.yaml"  # the models' hyperparameters there


def plan(names: list[str], lengths=LENGTHS, batch: int = BATCH, on=None, **options) -> list:
    """The table's configurations: each model at its budget's width × ``lengths`` × each backend of ``on``
    (default: every one installed)."""
    from bench.speed.timing import SpeedSpec

    chosen = list(on or backends.installed())
    specs = []
    for name in names:
        hp = reference_hp(name)
        units = width(name, hp)
        for length in lengths:
            base = SpeedSpec(name, units, batch, length, input_width=INPUT_WIDTH, hp=hp, **options)
            specs += [replace(base, backend=b) for b in chosen]
    return specs


def reference_hp(name: str) -> dict:
    """The hyperparameters the reference sweep gives ``name`` (none for a model it does not run)."""
    import yaml

    return dict((yaml.safe_load(REFERENCE.read_text()).get("models") or {}).get(name) or {})


def width(name: str, hp: dict) -> int:
    """The model's width at ``BUDGET`` parameters on the benchmark's input (``timing.signature``)."""
    import models
    from bench.speed.timing import SpeedSpec, signature

    sig = signature(SpeedSpec(name, 1, BATCH, LENGTHS[0], input_width=INPUT_WIDTH))
    return models.registry.width_for_budget(name, sig, BUDGET, **hp)[models.entry(name).width]


def refresh(results, sweep: str, path: Path | None = None) -> Path:
    """The table rewritten from every record of the sweep folder: a partial re-measure (``--models``,
    ``--backends``) updates its own rows and keeps the others."""
    from bench.runner import record

    return write(record.load(results, sweep)[0], path)


def write(records: list[dict], path: Path | None = None) -> Path:
    """The table of ``records`` (speed records, any backends) as ``backends.table`` reads it; returns its path."""
    from bench.speed.timing import ran_on

    rows = {}
    for r in records:
        train = ((r.get("speed") or {}).get("train") or {}).get("median_ms")
        if r.get("status") != "ok" or not isinstance(train, (int, float)) or not math.isfinite(train):
            continue
        ran = ran_on(r)
        row = rows.setdefault((r["model"], r["length"], r["batch"]), {
            "model": r["model"], "length": r["length"], "batch": r["batch"], "units": r["units"],
            "params": r.get("params"), "train_ms": {}})
        row["train_ms"][ran] = round(train, 3)
    env = next((r.get("env") for r in records if r.get("env")), {})
    table = {
        "about": f"training step (forward+backward, median ms) per backend at {BUDGET:,} parameters, batch {BATCH}, "
                 f"input width {INPUT_WIDTH}: written by `bench speed --preset backends`",
        "device": env.get("device"), "cpu_count": env.get("cpu_count"), "versions": env.get("versions"),
        "rows": sorted(rows.values(), key=lambda r: (r["model"], r["length"], r["batch"])),
    }
    path = path or backends.table_path(backends.device())
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return path
