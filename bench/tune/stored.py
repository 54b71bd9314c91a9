"""Tuned settings on disk: what ``bench tune`` stored, found again for a sweep that says ``hp: tuned``.
Light on purpose (no keras-tuner import): sweeps read it while planning."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import tasks

TIE = 0.005  # trials within this validation score of a search's best tie; the one that solved in fewest steps wins
LR_RANGE = (1e-4, 3e-2)  # log-uniform; 1e-3 vs 3e-3 decides LSTM adding (README: defaults)
ALGORITHMS = ("random", "bayesian", "grid")


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
            mtime = path.stat().st_mtime
        except OSError:
            continue
        data, params = _tuned_file(str(path), mtime)
        if data is None or data.get("task") != task or data.get("model") != model or params != wanted:
            continue
        fixed = data.get("fixed") or {}
        if any(fixed[k] != v for k, v in (model_params or {}).items() if k in fixed):
            continue
        found.append(((data.get("steps", 0), data.get("trials", 0), mtime), path, data))
    if not found:
        return None
    _, path, data = max(found, key=lambda item: item[0])
    return {"model_params": data["model_params"], "train": data["train"], "val_score": data.get("val_score"),
            "steps": data.get("steps"), "trials": data.get("trials"), "path": str(path)}


@functools.lru_cache(maxsize=1024)
def _tuned_file(path: str, mtime: float) -> tuple[dict | None, dict | None]:
    """A tuned file and its task's resolved parameters, read once per version (a sweep of N runs asks N times);
    (None, None) for a file that is not one."""
    try:
        data = json.loads(Path(path).read_text())
        return data, tasks.create(data["task"], **data["task_params"]).params
    except (OSError, ValueError, TypeError, KeyError, AttributeError, tasks.TaskError):
        return None, None
