"""Tuned settings on disk: what ``bench tune`` stored, found again for a sweep that says ``hp: tuned`` (``with_tuned``).
Light on purpose (no keras-tuner import): ``bench sweep`` reads it while planning."""

from __future__ import annotations

import functools
import glob
import math
from dataclasses import replace
from pathlib import Path

import tasks
from bench.core.errors import SpecError
from bench.core.text import quote

TIE = 0.005  # trials within this validation score of a search's best tie; the one that solved in fewest steps wins


def is_tuned(options: dict, spec) -> bool:
    """Whether a sweep's ``tune:`` section (``options``) tunes ``spec``'s task and model (all, unless it names
    ``tasks`` or ``models``; never a task it lets ``borrow`` another's tuning)."""
    return spec.task not in (options.get("borrow") or {}) and all(options.get(key) is None or name in options[key]
               for key, name in (("tasks", spec.task), ("models", spec.model)))


def tuned_params(results: str | Path, task: str, task_params: dict, model: str,
                 model_params: dict | None = None, folder: str = "*") -> dict | None:
    """The best stored settings for (task, task parameters, model), from any ``<results>/<folder>/tuned/*.json``
    (``folder`` a glob: any by default) whose fixed hyperparameters agree with ``model_params`` (those both set):
    ``{"model_params": {...}, "train": {"lr": ...}, "val_score", "steps", "trials", "path"}``, or None.

    Where several searches match, the one with the largest budget (steps, then trials) wins, then the newest.
    """
    wanted = tasks.create(task, **task_params).params
    found = []
    for path in Path(results).glob(f"{folder}/tuned/*.json"):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        data, params = _tuned_file(str(path), mtime)
        if params is None or data.get("task") != task or data.get("model") != model or params != wanted:
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


REQUIRED = {"task": str, "task_params": dict, "model": str, "model_params": dict, "train": dict}
OPTIONAL = {"fixed": dict, "steps": int, "trials": int}  # absent is fine; present, of this type


@functools.lru_cache(maxsize=1024)
def _tuned_file(path: str, mtime: float) -> tuple[dict, dict | None]:
    """A tuned file and its task's resolved parameters (None for a task not registered here: it tunes no run of
    this sweep), read once per version (a sweep of N runs asks N times). A file that is not a tuned file (not JSON,
    a key missing, null or of the wrong type) is a SpecError naming it: read as "no tuning", it would silently
    train with the defaults."""
    from bench.runner.record import read_json

    try:
        data = read_json(path)
    except ValueError as e:
        raise _bad(path, str(e).removeprefix(f"{path}: ")) from None
    if not isinstance(data, dict):
        raise _bad(path, f"not a tuned file (a JSON {type(data).__name__}, not a mapping)")
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if (key in REQUIRED or key in data) and (not isinstance(data.get(key), kind) or isinstance(data[key], bool)):
            what = "missing" if key not in data else f"{quote(data[key])}, not {_WORDS[kind]}"
            raise _bad(path, f"not a tuned file ({key}: {what})")
    lr = data["train"].get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise _bad(path, f"train.lr must be a number > 0, got {quote(lr)}")
    if data["task"] not in tasks.list_tasks():
        return data, None
    try:
        return data, tasks.create(data["task"], **data["task_params"]).params
    except (TypeError, ValueError) as e:
        raise _bad(path, f"task_params: {e}") from None


_WORDS = {str: "text", dict: "a mapping", int: "an integer"}


def _bad(path, what: str) -> SpecError:
    """The error of a bad tuned file: its name, what is wrong, how to mend it."""
    return SpecError(f"tuned file {path}: {what}; fix or delete it (bench tune writes it again)")


def with_tuned(sweep, results: str | Path) -> tuple[object, list[str]]:
    """``hp: tuned``: each spec with the model hyperparameters and learning rate of the best stored tuning of its
    (task, parameters, model), values the sweep file sets itself kept; and one warning per (task, parameters,
    model) that has no tuning stored, whose specs keep the defaults. A sweep whose ``tune`` section gives a task's
    length takes, for every length of that task, the settings tuned at that length (one per ladder). A sweep with a
    ``tune`` section takes only its own tuning (``<name>-tune``, what ``bench tune --from`` it writes), so another
    sweep's search of the same point, longer or newer, never changes its runs. A task the section lets ``borrow``
    another's tuning takes the settings tuned for that task with the same model and model settings."""
    specs, warnings, tuned, merged, borrowers = {}, {}, {}, {}, {}
    options = sweep.tune or {}
    lengths, borrow = options.get("lengths") or {}, options.get("borrow") or {}
    folder = glob.escape(f"{sweep.name}-tune") if sweep.tune else "*"
    for spec in sweep.specs:
        source = _tuned_as(sweep, spec, borrow.get(spec.task))
        if source is None:
            label = spec.label().rsplit(" seed ", 1)[0]
            warnings[label] = (f"hp: tuned: {label} borrows {borrow[spec.task]}'s tuning, but this sweep has no "
                               f"{borrow[spec.task]} point of that model; its runs use the defaults")
        if source is None or not is_tuned(options, source):  # left out: the defaults, no warning
            specs.setdefault(spec.run_id, spec)
            continue
        at = {**source.task_params, "length": lengths[source.task]} if source.task in lengths else source.task_params
        best = tuned_params(results, source.task, at, spec.model, spec.model_params, folder)
        if best is None:
            label = replace(source, task_params=at).label().rsplit(" seed ", 1)[0]
            every = f" (tuned there for every {source.task} length)" if source.task in lengths else ""
            borrowers.setdefault(label, set()).update({spec.task} - {source.task})
            also = "".join(f" and {t}'s" for t in sorted(borrowers[label]))
            warnings[label] = f"hp: tuned: no tuning stored for {label}{every}; its runs{also} use the defaults " \
                              f"(bench tune)"
        else:  # specs of one point and one tuned file share their hyperparameters' dict: checked once
            hp = merged.setdefault((best["path"], id(spec.model_params)), {**best["model_params"], **spec.model_params})
            spec = replace(spec, model_params=hp, train={"lr": best["train"]["lr"], **spec.train})
            tuned.setdefault(best["path"], []).append(spec)
        specs.setdefault(spec.run_id, spec)
    for path, group in tuned.items():
        _check_tuned(group, path)
    return replace(sweep, specs=list(specs.values())), list(warnings.values())


def _tuned_as(sweep, spec, source_task: str | None):
    """The spec whose tuning ``spec`` takes: itself, or where its task borrows ``source_task``'s tuning, a spec of
    that task with the same model and model settings (None where the sweep has none)."""
    if source_task is None:
        return spec
    return next((s for s in sweep.specs if s.task == source_task and s.model == spec.model
                 and s.model_params == spec.model_params), None)


def _check_tuned(specs: list, path: str) -> None:
    """Specs with the settings of one tuned file, checked as a sweep's are (``bench.core.check``): a bad value the
    file gave is one SpecError naming the file and its key, not failed runs."""
    from bench.core.check import Where, check

    try:
        check(specs, Where(model="model_params", train="train"))
    except ValueError as e:  # SpecError, TaskError, ModelError
        raise _bad(path, str(e)) from None
