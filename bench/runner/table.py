"""Records → a pandas DataFrame with one row per record: ``frame``, the one function that makes a table of records.
The store's table (every field as a dotted column), the report's run table and its speed and tuning tables each
give it their own ``row``."""

from __future__ import annotations

from typing import Callable, Iterable

import pandas as pd


def flat(record: dict, prefix: str = "") -> dict:
    """Every field of a record as a column, nested mappings as dotted names (``metrics.score``,
    ``env.versions.keras``); list-valued fields (``history``) left out."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        elif not isinstance(value, (list, tuple)):
            out[f"{prefix}{key}"] = value
    return out


def frame(records: Iterable[dict], row: Callable[[dict], dict | None] = flat, columns=None) -> pd.DataFrame:
    """One row per record, ``row(record)`` its columns (a record it maps to None has no row); ``columns`` names
    the columns of a table without rows."""
    rows = [r for r in map(row, records) if r is not None]
    return pd.DataFrame(rows, columns=columns) if rows or columns is not None else pd.DataFrame()
