"""Tuned settings on disk: what ``bench tune`` stored, found again for a sweep that says ``hp: tuned``.
Light on purpose (no keras-tuner import): sweeps read it while planning."""

from __future__ import annotations

import json
from pathlib import Path

import tasks

TIE = 0.005  # trials within this validation score of a search's best tie; the one that solved in fewest steps wins


def tuned_params(results: str | Path, task: str, task_params: dict, model: str,
                 model_params: dict | None = None) -> dict | None:
    """The best stored settings for (task, task parameters, model), from any ``<results>/*/tuned/*.json``
    whose fixed hyperparameters agree with ``model_params`` (those both set):
    ``{"model_params": {...}, "train": {"lr": ...}, "val_score", "steps", "trials", "path"}``, or None.

    Where several searches match, the one with the largest budget (steps, then trials) wins, then the newest.
    """
    wanted = tasks.create(task, **task_params).params
    found = []
    for path in Path(results).glob("*/tuned/*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("task") != task or data.get("model") != model:
            continue
        fixed = data.get("fixed") or {}
        if any(fixed[k] != v for k, v in (model_params or {}).items() if k in fixed):
            continue
        try:
            if tasks.create(task, **data["task_params"]).params != wanted:
                continue
        except (tasks.TaskError, TypeError, KeyError):
            continue
        found.append(((data.get("steps", 0), data.get("trials", 0), path.stat().st_mtime), path, data))
    if not found:
        return None
    _, path, data = max(found, key=lambda item: item[0])
    return {"model_params": data["model_params"], "train": data["train"], "val_score": data.get("val_score"),
            "steps": data.get("steps"), "trials": data.get("trials"), "path": str(path)}
