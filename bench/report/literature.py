"""The "vs literature" section: each published number of ``literature.yaml`` beside ours, at the same setting where
the sweep has it, else at our nearest setting, with every difference listed (setting, metric, parameters, batch,
steps, optimizer). ``section(best, records)`` returns the index.md lines; [] when no anchor's task is in the sweep.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.report import tables

ANCHORS = Path(__file__).with_name("literature.yaml")
REQUIRED = ("task", "setting", "model", "paper_model", "metric", "our_metric", "value", "params", "batch", "steps",
            "optimizer", "source", "checked", "notes")


@functools.lru_cache(maxsize=4)
def anchors(path: Path | str = ANCHORS) -> tuple[dict, ...]:
    """The published numbers, each entry checked for every field (a missing one is a ValueError naming it)."""
    entries = yaml.safe_load(Path(path).read_text()) or []
    for i, entry in enumerate(entries):
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            raise ValueError(f"{path}: entry {i + 1} ({entry.get('task')}, {entry.get('model')}) lacks "
                             f"{', '.join(missing)}")
    return tuple(entries)


def _defaults(task: str) -> dict:
    """The task's parameters' defaults, for a record that leaves one out (recall's block layout omits ``layout``)."""
    import tasks

    if task not in tasks.list_tasks():
        return {}
    return {k: v for k, v in tasks.defaults(task).items() if v is not inspect.Parameter.empty}


def _setting(params: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items()) or "as the task defines it"


def _number(value) -> str:
    return tables.NONE if value is None or value != value else f"{value:.3g}"


def _count(value: float) -> str:
    return tables.NONE if value != value else f"{int(round(value)):,}"


def metric(record: dict, name: str | None) -> float:
    """The record's value of metric ``name``: its headline value when that is the task's metric, else the
    ``metrics`` key of that name; NaN where the record has neither."""
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    value = metrics.get("value") if name is not None and metrics.get("metric") == name else metrics.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _groups(best: pd.DataFrame, records: dict[str, dict], anchor: dict) -> dict[str, list[list[dict]]]:
    """Per variant of the anchor's model, the records of its finished runs on the anchor's task, grouped by task
    parameters."""
    runs = best[(best.task == anchor["task"]) & (best.model == anchor["model"]) & (best.status == "ok")]
    out: dict[str, dict[str, list[dict]]] = {}
    for row in runs.itertuples():
        r = records.get(row.run_id)
        if r is not None:
            key = json.dumps(r.get("task_params") or {}, sort_keys=True, default=str)
            out.setdefault(row.variant, {}).setdefault(key, []).append(r)
    return {variant: list(groups.values()) for variant, groups in sorted(out.items())}


def _mismatch(anchor: dict, params: dict) -> dict[str, tuple]:
    """The anchor's setting keys whose value our ``params`` (defaults filled in) do not share: key → (paper, ours)."""
    ours = {**_defaults(anchor["task"]), **params}
    return {k: (v, ours.get(k)) for k, v in anchor["setting"].items() if ours.get(k) != v}


def nearest(anchor: dict, groups: list[list[dict]]) -> list[dict]:
    """The group of runs at the anchor's setting, else the nearest: fewest differing parameters other than the
    length, then the closest length (log ratio), then the longer."""
    want = anchor["setting"].get("length")

    def rank(group):
        params = group[0].get("task_params") or {}
        length = params.get("length")
        off = [k for k in _mismatch(anchor, params) if k != "length"]
        far = abs(math.log(length / want)) if isinstance(length, (int, float)) and want and length else 0.0
        return len(off), far, -(length or 0)
    return min(groups, key=rank)


def _median(records: list[dict], *path) -> float:
    values = []
    for r in records:
        value = r
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(float(value))
    return float(np.median(values)) if values else math.nan


def differences(anchor: dict, runs: list[dict]) -> list[str]:
    """Every way our runs differ from the paper's: setting, metric, parameters, batch, steps, optimizer, notes."""
    params = runs[0].get("task_params") or {}
    out = [f"{k}: {paper} vs ours {ours}" for k, (paper, ours) in _mismatch(anchor, params).items()]
    headline = (runs[0].get("metrics") or {}).get("metric")
    if all(math.isnan(metric(r, anchor["our_metric"])) for r in runs):
        out.append(f"metric: paper {anchor['metric']}, ours {headline} (not the same measure)")
    elif anchor["our_metric"] != headline:
        out.append(f"metric: the same measure ({anchor['our_metric']}), not our headline {headline}")
    ours = _median(runs, "params")
    if anchor["params"] is None:
        out.append(f"parameters: paper not stated, ours {_count(ours)}")
    elif not math.isnan(ours) and abs(ours / anchor["params"] - 1) > 0.1:
        out.append(f"parameters: paper ≈{anchor['params']:,}, ours {int(ours):,}")
    batch = _median(runs, "train", "batch_size")
    if anchor["batch"] != batch:
        out.append(f"batch: paper {anchor['batch'] or 'not stated'}, ours {_count(batch)}")
    cap, spent = _median(runs, "train", "steps"), _median(runs, "steps")
    out.append(f"steps: paper {anchor['steps']}; ours at most {_count(cap)} (median {_count(spent)} run, "
               "stopping once solved)")
    lr, clip = _median(runs, "train", "lr"), _median(runs, "train", "clipnorm")
    out.append(f"optimizer: paper {anchor['optimizer']}; ours Adam, lr {lr:.2g}"
               + (f", clipnorm {clip:g}" if not math.isnan(clip) else ", no clipping"))
    return out + list(anchor["notes"])


def rows(best: pd.DataFrame, records: list[dict], entries=None) -> list[dict]:
    """One row per (anchor whose task the sweep ran, variant of its model): the paper's number and ours, and how
    they differ. An anchor without a model here gets one row; one whose model the sweep did not run, none."""
    by_id = {str(r.get("run_id")): r for r in records}
    tasks = set(best.task)
    out = []
    for anchor in anchors() if entries is None else entries:
        if anchor["task"] not in tasks:
            continue
        paper = anchor.get("claim") if anchor["value"] is None else _number(anchor["value"])
        row = {"task": anchor["task"], "paper model": anchor["paper_model"], "paper setting": _setting(anchor["setting"]),
               "paper": paper, "source": anchor["source"] + (f"; code: {anchor['code']}" if anchor.get("code") else ""),
               "checked": anchor["checked"]}
        if anchor["model"] is None:
            out.append({**row, "our model": "(none here)", "our setting": tables.NONE, "ours": tables.NONE,
                        "differences": []})
            continue
        for variant, groups in _groups(best, by_id, anchor).items():
            runs = nearest(anchor, groups)
            params = runs[0].get("task_params") or {}
            same = not _mismatch(anchor, params)
            values = [v for v in (metric(r, anchor["our_metric"]) for r in runs) if not math.isnan(v)]
            if not values:
                values = [metric(r, (r.get("metrics") or {}).get("metric")) for r in runs]
            solved = sum((r.get("metrics") or {}).get("solved") is True for r in runs)
            ours = f"{_number(float(np.mean(values)))} ({len(runs)} seeds, {solved} solved)" if values else tables.NONE
            out.append({**row, "our model": variant, "ours": ours, "differences": differences(anchor, runs),
                        "our setting": ("same: " if same else "nearest: ") + _setting(
                            {k: params.get(k) for k in [*anchor["setting"], "length"] if k in params})})
    return out


def section(best: pd.DataFrame, records: list[dict], entries=None) -> list[str]:
    """index.md lines of the "vs literature" section: a table, then each row's differences; [] without anchors."""
    found = rows(best, records, entries)
    if not found:
        return []
    columns = ["task", "paper model", "paper setting", "paper", "our model", "our setting", "ours", "source", "checked"]
    table = pd.DataFrame([{k: r[k] for k in columns} for r in found], index=pd.RangeIndex(1, len(found) + 1, name="#"))
    lines = ["## Versus the literature", "",
             "Published numbers (`bench/report/literature.yaml`) beside ours: at the paper's setting where this sweep "
             "ran it, else at our nearest (the same task, fewest other differences, the closest length, the longer "
             "on a tie). Ours: the mean over seeds of the finished runs at the chosen learning rate, in the paper's "
             "metric where the records hold it. Accuracies are fractions; \"not verified\": a number or claim not "
             "checked against a source readable when this table was written.", "", tables.markdown(table), "",
             "Differences, per row:", ""]
    for i, r in enumerate(found, 1):
        if r["differences"]:
            lines.append(f"- {i} ({r['task']}, {r['our model']}): " + "; ".join(r["differences"]) + ".")
    return lines + [""]
