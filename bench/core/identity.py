"""Run identity and staleness: a run's id hashes what was asked; its record keeps fingerprints of the model's and
task's source, and a record whose resolved values or sources differ from today's is stale."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import models
import tasks

def sources(model: str, task: str | None = None) -> dict[str, str]:
    """Fingerprints of the code that defines a model (and a task): ``{file: sha256 prefix}``."""
    return {**fingerprint(models.entry(model).source), **(fingerprint(tasks.source(task)) if task else {})}


def stale(spec, stored: dict) -> list[str]:
    """Why a stored record of ``spec`` (a spec of any kind: its ``fields()``) no longer describes what ``spec``
    would run today; empty if it still does.

    A resolved value that differs from the stored one can only be a changed default (the request is the same);
    a value the record lacks is an option added since, whose default keeps the old behaviour. A changed source
    file of the model or task (built-in or plugin) makes the record stale too; a record without fingerprints
    (written before they existed) is judged by its values alone.
    """
    now = json.loads(json.dumps(spec.fields(), default=str))  # as a record stores it: tuples are lists
    reasons = []
    for group, owner in (("task_params", now.get("task")), ("model_params", now.get("model")), ("train", "train")):
        before, after = stored.get(group), now.get(group)
        if not (isinstance(before, dict) and isinstance(after, dict)):
            continue
        reasons += [f"{owner}: default {key} {before[key]!r} → {value!r}"
                    for key, value in after.items() if key in before and before[key] != value]
        reasons += [f"{owner}: {key} no longer exists" for key in before if key not in after]
    for name, sha in (stored.get("source") or {}).items():
        if (now.get("source") or {}).get(name) != sha:
            reasons.append(f"{name} changed")
    return reasons


def digest(value) -> str:
    """A 16-hex-digit hash of a JSON-able value, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_ROOT = Path(__file__).resolve().parents[2]  # the checkout or install root holding models/ and tasks/


@functools.lru_cache(maxsize=None)
def fingerprint(path: str | None) -> dict[str, str]:
    """``{name: hash}`` of a source file: built-in files by their path in the project, plugins as ``plugin NAME``."""
    if not path:
        return {}
    file = Path(path).resolve()
    try:
        name = file.relative_to(_ROOT).as_posix()
    except ValueError:
        name = f"plugin {file.name}"
    try:
        return {name: hashlib.sha256(file.read_bytes()).hexdigest()[:12]}
    except OSError:
        return {}
