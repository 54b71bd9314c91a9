"""Tuning trials as one table (a row per trial record: its study, place in the search, learning rate, scores) and
the rule that picks a study's best trial (``best``). Light on purpose (pandas, no keras-tuner): the tuner stores the
best it picks, and the report shows the same pick, both from this table of records."""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.runner.table import frame as records_frame
from bench.tune.stored import TIE


def _order(trial) -> tuple:
    text = str(trial)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def row(r: dict) -> dict | None:
    """A trial record's columns (None for a record that is not a tuning trial: no ``tune`` field)."""
    info = r.get("tune")
    if not isinstance(info, dict):
        return None
    params = {k: v for k, v in (r.get("task_params") or {}).items() if k != "length"}
    panel = f"{r['task']} L={r.get('task_params', {}).get('length')}" + \
        ("".join(f", {k}={v}" for k, v in sorted(params.items())) if len(params) <= 2 else "")
    score = info.get("val_score")
    return {"study": info.get("study"), "panel": panel, "task": r["task"], "model": r["model"],
            "trial": info.get("trial"), "order": _order(info.get("trial")), "started": r.get("started_at"),
            "lr": (r.get("train") or {}).get("lr", math.nan), "status": r.get("status"),
            "val_score": math.nan if score is None else float(score),
            "test_score": (r.get("metrics") or {}).get("score", math.nan),
            "steps": (r.get("train") or {}).get("steps"), "extends": info.get("extends"),
            "to_solve": (r.get("metrics") or {}).get("steps_to_solve") or math.inf,
            "model_params": json.dumps(r.get("model_params") or {}, sort_keys=True)}


def frame(records: list[dict]) -> pd.DataFrame:
    """One row per tuning trial, in the order each study tried them (``n``: 1, 2 …), with the best validation score
    so far (``best``)."""
    df = records_frame(records, row)
    if df.empty:
        return df
    df = df.sort_values(["panel", "model", "order", "started"], kind="stable").reset_index(drop=True)
    df["n"] = df.groupby(["study"]).cumcount() + 1
    df["best"] = df.groupby(["study"])["val_score"].cummax()
    return df


def best(df: pd.DataFrame) -> pd.DataFrame:
    """The best trial of every study: the highest validation score, trials within ``TIE`` of it tying; of those
    the one that solved the task in fewest steps, then the higher score, then the one tried first. Every key is
    a property of the trial, so the pick never depends on the order trials are found in."""
    scored = df[df.val_score.notna()]
    ties = scored[scored.val_score >= scored.groupby("study").val_score.transform("max") - TIE]
    ranked = ties.sort_values(["to_solve", "val_score", "n"], ascending=[True, False, True], kind="stable")
    return ranked.groupby("study", sort=False).head(1)


def edges(df: pd.DataFrame) -> pd.DataFrame:
    """Per study, where its best learning rate lies among the rates it tried: ``edge`` for the grid before any
    extension (``low``, ``high``, or None inside), ``extended`` whether an extension trial ran, ``edge_after`` the
    same for all its trials (None where none was extended): how often the grid, not the model, set a rate."""
    rows = []
    for study, trials in df.groupby("study", sort=False):
        extended = bool(trials.extends.notna().any())
        rows.append({"study": study, "model": trials.model.iloc[0], "panel": trials.panel.iloc[0],
                     "edge": _edge(trials[trials.extends.isna()]), "extended": extended,
                     "edge_after": _edge(trials) if extended else None})
    return pd.DataFrame(rows, columns=["study", "model", "panel", "edge", "extended", "edge_after"])


def _edge(trials: pd.DataFrame) -> str | None:
    """``low`` or ``high`` where the best of ``trials`` has their lowest or highest learning rate, else None."""
    picked = best(trials)
    if picked.empty or trials.lr.nunique() < 2:
        return None
    lr = picked.iloc[0].lr
    return "low" if lr <= trials.lr.min() else "high" if lr >= trials.lr.max() else None
