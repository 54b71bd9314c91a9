"""A sweep's records as a table to slice: filters, sort order, columns, and one row per evaluation.

The run table is ``store.flatten`` (every record field as a dotted column: ``metrics.score``,
``model_params.units``, ``train.lr``) with the report's ``variant`` beside ``model``. A column may be named by its
last part (``score``, ``units``, ``lr``): the shortest such path, in ``metrics``, ``model_params``, ``train`` …
before the others. From a notebook::

    from bench.report import query
    runs = query.runs("reference", where="model=lstm dependency>=50", sort="task,-score")
    curves = query.history("reference", where="task=adding model=lstm,gru")
"""

from __future__ import annotations

import difflib
import operator
import re
from pathlib import Path

import pandas as pd

from bench.report import dataframe
from bench.runner import record
from bench.sweep.store import flatten

ORDER = ["task", "model", "variant", "dependency", "seed", "run_id"]  # rows: a stable, readable order
SHOWN = ["task", "variant", "dependency", "seed", "status", "metrics.score", "metrics.solved", "steps",
         "speed.step_ms_median", "params", "wall_s", "run_id"]  # the columns shown when none are asked for
HISTORY = ["task", "variant", "dependency", "seed", "step", "seconds", "val", "loss", "grad_norm", "clipped_steps",
           "run_id"]
PREFERRED = ["metrics", "model_params", "train", "task_params", "speed"]  # a short name's sections, in order
OPERATORS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le, "=": operator.eq,
             ">": operator.gt, "<": operator.lt}  # two-character ones first: "a>=1" is not "a>" "=1"
CONDITION = re.compile(r"^([^=!<>]+)(" + "|".join(map(re.escape, OPERATORS)) + r")(.*)$")


class QueryError(ValueError):
    """A filter, sort key or column that the table cannot answer: one line naming what it can."""


def command(sweep: str, results: Path | str, fmt: str = "table", out: Path | str | None = None, where=(), sort="",
            columns="", history: bool = False) -> int:
    """``bench results``: the table printed (``fmt`` table or csv) or written to ``out`` (csv, parquet); each
    skipped file named on stderr."""
    import sys

    from bench.core.errors import SpecError
    from bench.sweep import store

    try:
        found, skipped = table(sweep, results, where=where, sort=sort, columns=columns, history=history)
    except QueryError as e:
        raise SpecError(str(e)) from None
    for line in skipped:
        print(f"bench results: skipped {line}", file=sys.stderr)
    text = store.export(found, fmt, out, found.columns if columns else default_columns(found, history))
    print(text if text is not None else f"{len(found)} runs x {len(found.columns)} columns written to {out}",
          file=sys.stdout if text is not None else sys.stderr)
    return 0


def runs(sweep: str, results: Path | str = "results", **query) -> pd.DataFrame:
    """One row per run of ``sweep``; ``where``, ``sort`` and ``columns`` as ``table`` takes them."""
    return table(sweep, results, **query)[0]


def history(sweep: str, results: Path | str = "results", **query) -> pd.DataFrame:
    """One row per evaluation (step, val, loss, grad_norm, clipped_steps …) beside its run's columns."""
    return table(sweep, results, history=True, **query)[0]


def table(sweep: str, results: Path | str = "results", *, where=(), sort=(), columns=(),
          history: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The sweep's table filtered, sorted and cut to ``columns``, and one line per skipped file.

    ``where``: conditions ``column OP value`` (OP one of = != > >= < <=; ``a,b`` after = or != is a set), as a
    list or one space-separated string; ``sort``: columns, ``-column`` for descending; ``columns``: those to
    keep (default: all). Both take a list or a comma-separated string.
    """
    conditions, keys, wanted = [_parse(c) for c in _words(where, " ")], _words(sort, ","), _words(columns, ",")
    records, skipped = record.load(results, sweep)
    if not records:
        raise FileNotFoundError(f"no run records in {Path(results) / sweep}")
    runs = run_table(records)
    out = _long(runs, records) if history else runs
    for name, op, value in conditions:
        out = out[_matches(out[_column(name, out, "--where")], op, value, name)]
    if keys:
        names = [_column(k.removeprefix("-"), out, "--sort") for k in keys]
        out = out.sort_values(names, ascending=[not k.startswith("-") for k in keys], kind="stable",
                              na_position="last")
    if wanted:
        out = out[[_column(c, out, "--columns") for c in wanted]]
    return out.reset_index(drop=True), skipped


def run_table(records: list[dict]) -> pd.DataFrame:
    """``flatten(records)`` with the report's variant after ``model``, rows in ``ORDER``."""
    flat = flatten(records)
    variants = dataframe.frame(records).set_index("run_id").variant
    flat.insert(list(flat.columns).index("model") + 1, "variant", flat.run_id.astype(str).map(variants))
    return flat.sort_values([c for c in ORDER if c in flat.columns], kind="stable", na_position="last",
                            ignore_index=True)


def _long(runs: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """One row per history entry of each run, after its run's columns (history fields win a name clash)."""
    curves = pd.DataFrame([{"run_id": str(r.get("run_id")), **e} for r in records for e in dataframe.history(r)])
    if curves.empty:
        return runs.iloc[:0]
    runs = runs.drop(columns=[c for c in curves.columns if c != "run_id" and c in runs.columns])
    return runs.merge(curves, on="run_id", how="inner").sort_values(
        [c for c in [*ORDER, "step"] if c in runs.columns or c == "step"], kind="stable", ignore_index=True)


def default_columns(table: pd.DataFrame, history: bool = False) -> list[str]:
    """The columns ``bench results`` shows on screen when none are asked for."""
    return [c for c in (HISTORY if history else SHOWN) if c in table.columns]


def _words(value, sep: str) -> list[str]:
    """A list as given, or a string split at ``sep`` (empty parts dropped)."""
    items = value.split(sep) if isinstance(value, str) else list(value or [])
    return [w.strip() for item in items for w in (item.split(sep) if sep == "," else [item]) if w.strip()]


def _parse(condition: str) -> tuple[str, str, str]:
    match = CONDITION.match(condition.strip())
    if not match or not match.group(1).strip():
        raise QueryError(f"--where {condition!r}: expected COLUMN OP VALUE, OP one of {' '.join(OPERATORS)} "
                         f"(e.g. model=lstm 'dependency>=20')")
    name, op, value = match.groups()
    return name.strip(), op, value.strip()


def _column(name: str, table: pd.DataFrame, flag: str) -> str:
    """The table's column ``name``, or the one whose dotted path ends in ``.name`` (the shortest path)."""
    if name in table.columns:
        return name
    ends = sorted((c for c in table.columns if c.endswith("." + name)), key=_rank)
    if ends and (len(ends) == 1 or _rank(ends[0])[:2] < _rank(ends[1])[:2]):
        return ends[0]
    if ends:
        raise QueryError(f"{flag} {name!r} is ambiguous: {', '.join(ends[:6])}")
    close = difflib.get_close_matches(name, list(table.columns), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    shown = ", ".join(c for c in SHOWN if c in table.columns)
    raise QueryError(f"{flag} {name!r}: no such column{hint}; columns include {shown}, hyperparameters as "
                     f"model_params.NAME, training options as train.NAME ({len(table.columns)} in all; "
                     f"--format csv shows every one)")


def _rank(column: str) -> tuple[int, int, str]:
    """Shorter paths first, then the record's main sections (``PREFERRED``) before the others."""
    head = column.split(".")[0]
    return column.count("."), PREFERRED.index(head) if head in PREFERRED else len(PREFERRED), column


def _matches(series: pd.Series, op: str, value: str, name: str) -> pd.Series:
    """Which rows satisfy ``series OP value``; ``value`` read as the column's kind (number, true/false, text)."""
    values = value.split(",") if op in ("=", "==", "!=") else [value]
    if pd.api.types.is_bool_dtype(series) or set(series.dropna().map(type)) == {bool}:
        read = [v.lower() in ("true", "1", "yes") for v in values]
    elif pd.api.types.is_numeric_dtype(series):
        try:
            read = [float(v) for v in values]
        except ValueError:
            raise QueryError(f"--where {name}{op}{value}: {name} is a number, {value!r} is not") from None
    else:
        if op not in ("=", "==", "!="):
            series = pd.to_numeric(series, errors="coerce")
            try:
                read = [float(value)]
            except ValueError:
                raise QueryError(f"--where {name}{op}{value}: {op} compares numbers; {value!r} is not one") from None
        else:
            series, read = series.astype(str), values
    if op in ("=", "==", "!="):
        hit = series.isin(read)
        return ~hit if op == "!=" else hit
    return OPERATORS[op](series, read[0]).fillna(False).astype(bool)
