"""A parameter budget sized into a width: the width whose trainable parameters come within 5 % of the budget
(``models.registry.width_for_budget``, several builds), kept per process, on disk (``WIDTHS``) and taken from
stored records, keyed by the model's and task's source fingerprints."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import models
import tasks
from bench.core.identity import digest, fingerprint, sources

BUDGET = "param_budget"  # in a request's model_params: size the model's width to this many trainable parameters


@functools.lru_cache(maxsize=4096)
def sized(model: str, task: str, task_params: str, budget, asked: str) -> dict:
    """The hyperparameters ``asked`` (JSON) with the model's width set for ``budget`` trainable parameters on the
    task (JSON parameters): ``models.registry.width_for_budget``, which builds the model several times, so its
    answers are kept on disk too (``WIDTHS``), keyed by the model's and task's source fingerprints."""
    hp = json.loads(asked)  # the budget and the width set beside it are checked once, by bench.core.check
    key = _width_key(model, task, task_params, budget, asked)
    if key in _STORED_WIDTHS:
        return _STORED_WIDTHS[key]
    cache = _read_widths()
    if key not in cache:
        signature = tasks.create(task, **json.loads(task_params)).signature
        cache[key] = models.registry.width_for_budget(model, signature, budget, **hp)
        _write_widths(cache)
    return cache[key]


def _width_key(model: str, task: str, task_params: str, budget, asked: str) -> str:
    return digest([model, task, task_params, budget, asked, fingerprint(models.entry(model).source),
                   fingerprint(tasks.source(task))])


_STORED_WIDTHS: dict[str, dict] = {}  # sized() answers taken from stored records (``remember_widths``)


def remember_widths(records: list[dict]) -> None:
    """Take the widths that stored records of budgeted runs were sized to as ``sized``'s answers, so that planning
    a stored sweep builds no model to size it (a fresh clone has no width cache). A record counts only while its
    model's and task's source fingerprints are today's: then sizing it again would give the same width."""
    for rec in records:
        asked = rec.get("request") if isinstance(rec.get("request"), dict) else {}
        hp, params = asked.get("model_params"), asked.get("task_params", {})
        if not (isinstance(hp, dict) and BUDGET in hp and isinstance(params, dict)):
            continue
        try:
            entry, width = models.entry(asked["model"]), None
            width = (rec.get("model_params") or {}).get(entry.width)
            if not isinstance(width, int) or rec.get("source") != sources(asked["model"], asked["task"]):
                continue
            rest = {k: v for k, v in hp.items() if k != BUDGET}
            key = _width_key(asked["model"], asked["task"], json.dumps(params, sort_keys=True), hp[BUDGET],
                             json.dumps(rest, sort_keys=True))
        except (KeyError, TypeError, ValueError):  # a record of a model or task that no longer exists
            continue
        _STORED_WIDTHS[key] = {**rest, entry.width: width}


WIDTHS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstm-bench" / "widths.json"


def _read_widths() -> dict:
    try:
        return json.loads(WIDTHS.read_text())
    except (OSError, ValueError):
        return {}


def _write_widths(cache: dict) -> None:
    """Best effort: a cache that cannot be written only costs the next process the builds again."""
    try:
        WIDTHS.parent.mkdir(parents=True, exist_ok=True)
        tmp = WIDTHS.with_name(f"{WIDTHS.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**_read_widths(), **cache}))
        tmp.replace(WIDTHS)
    except OSError:
        pass
