"""Run records → TensorBoard event files: one TensorBoard run per record, written from the records alone.

Each run holds its history as scalars against the optimizer step (``val/…``, ``train/…``), its final metrics
(``final/…``, at the last step) and its hyperparameters and training options through the hparams plugin, so
runs can be filtered and compared in TensorBoard's HPARAMS tab. ``tensorboard --logdir OUT/SWEEP`` shows them.
"""

from __future__ import annotations

import json
import math
import numbers
from datetime import datetime
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from bench.report.query import run_table
from bench.runner import record
from tasks.base import normalised

HISTORY = {"val": "val/metric", "val_score": "val/score", "loss": "train/loss", "grad_norm": "train/grad_norm",
           "grad_norm_max": "train/grad_norm_max", "clipped_steps": "train/clipped_steps"}  # history field → tag
FINAL = {"metrics.score": "final/score", "metrics.value": "final/test_metric", "metrics.val": "final/val_metric",
         "metrics.solved": "final/solved", "metrics.steps_to_solve": "final/steps_to_solve",
         "train_seconds": "final/train_seconds", "speed.step_ms_median": "final/step_ms", "params": "final/params"}
IDENTITY = ["task", "model", "variant", "dependency", "seed", "status", "env.backend", "env.precision"]
HPARAM_SECTIONS = ("model_params.", "train.", "task_params.")


def export(sweep: str, results: Path | str = "results", out: Path | str = "tensorboard") -> tuple[Path, int]:
    """Write ``<out>/<sweep>/<task>/<variant>/<dependency>/seed<N>_<run_id>/`` per record; return the folder
    and how many runs it holds. Exporting again replaces the event files of each run."""
    records, _ = record.load(results, sweep)
    if not records:
        raise FileNotFoundError(f"no run records in {Path(results) / sweep}")
    folder = Path(out) / sweep
    rows = run_table(records).set_index("run_id", drop=False)
    params = {str(r.get("run_id")): hparams(rows.loc[str(r.get("run_id"))]) for r in records}
    seen = {k for p in params.values() for k in p}
    names = [k for k in IDENTITY if k in seen] + sorted(seen - set(IDENTITY))  # TensorBoard shows the first ones
    _write(folder, [_event(summary=hp.hparams_config_pb([hp.HParam(n) for n in names],
                                                         [hp.Metric(tag) for tag in FINAL.values()]))])
    for r in records:
        run_id = str(r.get("run_id"))
        name = run_name(rows.loc[run_id])
        _write(folder / name, [_event(summary=hp.hparams_pb(params[run_id], trial_id=name)), *scalars(r, rows.loc[run_id])])
    return folder, len(records)


def run_name(row) -> str:
    """``adding/lstm/100/seed0_<run_id>``: TensorBoard's run selector filters on any part."""
    dependency = row.get("dependency")
    dependency = int(dependency) if _finite(dependency) else "none"
    seed = int(row.seed) if _finite(row.get("seed")) else "none"
    return f"{row.task}/{row.variant}/{dependency}/seed{seed}_{row.run_id}".replace(" ", "")


def hparams(row) -> dict:
    """The run's identity, hyperparameters and training options as TensorBoard hparams (str, float or bool)."""
    out = {}
    for key, value in row.items():
        if key in IDENTITY or key.startswith(HPARAM_SECTIONS):
            value = _plain(value)
            if isinstance(value, (list, tuple, dict)):
                value = json.dumps(value)
            if isinstance(value, (bool, str)) or _finite(value):
                out[key] = value
    return out


def scalars(r: dict, row) -> list[event_pb2.Event]:
    """History scalars at each evaluation's step, then the final metrics at the last step."""
    start = _start(r)
    events, last = [], 0
    for e in r.get("history") or []:
        if not isinstance(e, dict) or not _finite(e.get("step")):
            continue
        last = int(e["step"])
        seconds = e.get("seconds") if _finite(e.get("seconds")) else 0.0
        values = {**e, "val_score": _score(e.get("val"), r)}
        events.append(_event(last, start + seconds, {tag: values.get(key) for key, tag in HISTORY.items()}))
    final = {tag: _plain(row.get(key)) for key, tag in FINAL.items()}
    step = int(r["steps"]) if _finite(r.get("steps")) else last
    events.append(_event(step, start + (r.get("train_seconds") or 0.0), final))
    return events


def _event(step: int = 0, wall_time: float = 0.0, values: dict | None = None, summary=None) -> event_pb2.Event:
    """An event of ``summary``, or of the finite ``values`` as simple scalars (booleans as 0/1)."""
    if summary is None:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(v))
                                             for tag, v in (values or {}).items() if _finite(v)])
    return event_pb2.Event(step=step, wall_time=wall_time, summary=summary)


def _write(run: Path, events: list[event_pb2.Event]) -> None:
    """``events`` as the one event file of ``run`` (an earlier export's files there are replaced)."""
    run.mkdir(parents=True, exist_ok=True)
    for old in run.glob("events.out.tfevents.*"):
        old.unlink()
    writer = EventFileWriter(str(run))
    for event in events:
        writer.add_event(event)
    writer.close()


def _score(val, r: dict) -> float | None:
    """A validation value normalised like the test score (0 = memoryless baseline, 1 = perfect)."""
    metrics = r.get("metrics") if isinstance(r.get("metrics"), dict) else {}
    baseline, higher = metrics.get("baseline"), metrics.get("higher_is_better")
    if not (_finite(val) and _finite(baseline) and isinstance(higher, bool)):
        return None
    return normalised(val, baseline, higher)


def _plain(value):
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)) else value


def _start(r: dict) -> float:
    """The run's start as a Unix time (0 when unknown), so TensorBoard's time axes read training seconds."""
    try:
        return datetime.fromisoformat(str(r.get("started_at"))).timestamp()
    except ValueError:
        return 0.0


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)
