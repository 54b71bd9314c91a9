"""The results store as a table: a sweep's records flattened to one tidy row per run (``bench.runner.table``):
nested dicts become dotted columns (``metrics.score``, ``task_params.length``, ``env.versions.keras``), lists
(``history``) are dropped, and a field that an older record lacks is NaN, so records of every schema version load
together.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.runner import record
from bench.runner.table import frame

FIRST = ["run_id", "sweep", "task", "model", "seed", "status", "error"]  # leading columns, when present
SHOWN = ["run_id", "task", "task_params.length", "model", "seed", "status", "metrics.score", "metrics.solved",
         "speed.step_ms_median", "params", "wall_s"]  # the columns of --format table


def flatten(records: list[dict]) -> pd.DataFrame:
    """One row per record (``bench.runner.table.flat``), the leading columns first, then the rest by name."""
    table = frame(records)
    first = [c for c in FIRST if c in table.columns]
    return table[first + sorted(c for c in table.columns if c not in first)]


def table(results: Path | str, sweep: str) -> tuple[pd.DataFrame, list[str]]:
    """The sweep's records as one table, and one line per skipped file naming it and why."""
    records, skipped = record.load(results, sweep)
    return flatten(records), skipped


def export(frame: pd.DataFrame, fmt: str, out: Path | str | None = None, shown=SHOWN) -> str | None:
    """Write ``frame`` as csv or parquet to ``out``; without ``out`` return csv, or the table's ``shown`` columns."""
    if fmt == "parquet":
        frame.to_parquet(out, index=False)
        return None
    if fmt == "csv":
        text = frame.to_csv(index=False)
    else:
        text = frame[[c for c in shown if c in frame.columns]].to_string(index=False)
    if out is None:
        return text
    Path(out).write_text(text)
    return None
