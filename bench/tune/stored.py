"""Tuned settings on disk: what ``bench tune`` stored, found again for a sweep that says ``hp: tuned`` (``with_tuned``).
Light on purpose (no keras-tuner import): ``bench sweep`` reads it while planning."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
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


def with_tuned(sweep, results: str | Path) -> tuple[object, list[str]]:
    """``hp: tuned``: each spec with the model hyperparameters and learning rate of the best stored tuning of its
    (task, parameters, model), values the sweep file sets itself kept; and one warning per (task, parameters,
    model) that has no tuning stored, whose specs keep the defaults. A sweep whose ``tune`` section gives a task's
    length takes, for every length of that task, the settings tuned at that length (one per ladder)."""
    specs, warnings = {}, {}
    lengths = (sweep.tune or {}).get("lengths") or {}
    for spec in sweep.specs:
        at = {**spec.task_params, "length": lengths[spec.task]} if spec.task in lengths else spec.task_params
        best = tuned_params(results, spec.task, at, spec.model, spec.model_params)
        if best is None:
            label = replace(spec, task_params=at).label().rsplit(" seed ", 1)[0]
            every = f" (tuned there for every {spec.task} length)" if spec.task in lengths else ""
            warnings[label] = f"hp: tuned: no tuning stored for {label}{every}; its runs use the defaults (bench tune)"
        else:
            spec = replace(spec, model_params={**best["model_params"], **spec.model_params},
                           train={"lr": best["train"]["lr"], **spec.train})
        specs.setdefault(spec.run_id, spec)
    return replace(sweep, specs=list(specs.values())), list(warnings.values())
