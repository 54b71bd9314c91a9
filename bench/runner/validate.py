"""One validation of a run's task parameters, hyperparameters and size, used by ``bench run`` and by sweeps.

Everything here fails before any training, as a SpecError naming where the bad value was given (``--hp units``
or ``models.lstm.units``); quoted values are cut short (``quote``), so a hostile YAML file makes a short error.
"""

from __future__ import annotations

import math
import os
import re
import reprlib

import models
import tasks
from bench.runner.spec import SpecError

MAX_RUNS = 100_000  # a sweep larger than this is refused: its plan alone would take minutes and gigabytes
MAX_BATCH_SHARE = 0.25  # an input batch (train, validation or test) may use at most this share of the RAM

_quoting = reprlib.Repr()
_quoting.maxlevel, _quoting.maxstring, _quoting.maxother, _quoting.maxlist, _quoting.maxdict = 3, 40, 40, 6, 6


def quote(value, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, nested containers elided (never builds a huge string)."""
    text = _quoting.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def task_point(task: str, point: dict, where: str, flags: dict | None = None):
    """Check a task's parameters (names, types, the task's own checks); return the task. ``flags`` names the
    parameters given by a flag of their own (``{"length": "--length"}``), so an error quotes what was typed."""
    _check_keys(point, _defaults(tasks.defaults, task, where), where, "parameter")
    return _naming_key(lambda: tasks.create(task, **point), point, where, flags)


def model_point(model: str, point: dict, where: str, signature, budget_flag: str | None = None) -> None:
    """Check a model's hyperparameters by building it once for ``signature``: a bad value fails now.

    Other errors of the build (a bug in a plugin's model, no memory, a plugin calling ``sys.exit``) are left
    to the run, which records them.
    """
    from bench import plugins

    from bench.runner.spec import BUDGET

    defaults = _defaults(lambda m: models.entry(m).defaults, model, where)
    if BUDGET in point:
        _check_budget(model, point, where, budget_flag or f"{where}.{BUDGET}")
        point = {k: v for k, v in point.items() if k != BUDGET}  # the width is sized per task, at resolved()
    _check_keys(point, defaults, where, "hyperparameter")
    try:
        with plugins.guarded():
            _naming_key(lambda: models.create(model, signature, **point), point, where)
    except SpecError:
        raise
    except (Exception, SystemExit):  # noqa: BLE001 - recorded as the run's status instead
        pass


def _check_budget(model: str, point: dict, where: str, flag: str) -> None:
    """A parameter budget (given as ``flag``) is a positive integer, for a model with a width set nowhere else."""
    from bench.runner.spec import BUDGET

    budget, width = point[BUDGET], models.entry(model).width
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise SpecError(f"{flag} must be an integer >= 1, got {quote(budget)}")
    if width is None:
        raise SpecError(f"{flag}: model {model!r} declares no width, so a parameter budget cannot size it")
    if width in point:
        raise SpecError(f"{flag} sets {width}; do not give {where} {width}=... as well")


def fits(signature, train, where: str = "train") -> None:
    """Refuse a run whose input batches alone cannot fit in this machine's memory."""
    ram = _ram_bytes()
    if ram is None:
        return
    channels = getattr(signature.input, "channels", 1)
    per_sample = signature.length * channels * 4
    for name in ("batch_size", "val_size", "test_size"):
        size = getattr(train, name) * per_sample
        if size > MAX_BATCH_SHARE * ram:
            raise SpecError(f"{where}.{name}: {getattr(train, name)} sequences of length {signature.length} take "
                            f"{size / 2**30:.1f} GiB, more than {MAX_BATCH_SHARE:.0%} of this machine's "
                            f"{ram / 2**30:.1f} GiB")


def grid_size(task_grid: dict, model_grid: dict, seeds: list, train_points: int = 1) -> int:
    """Runs in a sweep grid, counted without expanding it; refuse one above MAX_RUNS."""
    def points(params) -> int:
        count = 1
        for value in (params or {}).values() if isinstance(params, dict) else ():
            count *= len(value) if isinstance(value, list) else 1
        return count

    total = (sum(points(p) for p in task_grid.values()) * sum(points(p) for p in model_grid.values()) * len(seeds)
             * train_points)
    if total > MAX_RUNS:
        raise SpecError(f"the grid has {total:,} runs (tasks × models × seeds), more than the cap of {MAX_RUNS:,}; "
                        f"split it into several sweeps")
    return total


def finite_positive(value, flag: str, allow_none: bool = True) -> None:
    """A number > 0 and finite (or None where allowed), else a SpecError naming ``flag``."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{flag} must be a finite number > 0{' or omitted' if allow_none else ''}, "
                        f"got {quote(value)}")


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _naming_key(build, point: dict, where: str, flags: dict | None = None):
    """Call ``build``; its error, which names the bad parameter, is prefixed with that parameter's key (or the flag
    that gave it)."""
    try:
        return build()
    except (ValueError, TypeError) as e:
        text = str(e)[:300]
        key = next((k for k in point if re.search(rf"\b{re.escape(k)}\b", text)), None)
        prefix = (flags or {}).get(key) or f"{where}{'.' + key if key else ''}"
        raise SpecError(f"{prefix}: {text}") from None


def _defaults(lookup, name: str, where: str) -> dict:
    try:
        return lookup(name)
    except ValueError as e:  # unknown task or model: the registry's message names the valid ones
        raise SpecError(f"{where}: {e}") from None


def _check_keys(point: dict, defaults: dict, where: str, kind: str) -> None:
    """Each key must be a parameter, and each value must have its default's type."""
    for key, value in point.items():
        if key not in defaults:
            raise SpecError(f"{where}.{quote(key, 40).strip(chr(39))}: no {kind} {quote(key, 40)}; "
                            f"valid: {', '.join(defaults)}")
        _same_type(value, defaults[key], f"{where}.{key}")


_KINDS = ((bool, (bool,), "true or false"), (int, (int,), "an integer"), (float, (int, float), "a number"),
          (str, (str,), "text"))


def _same_type(value, default, where: str) -> None:
    """A value must have the type of the parameter's default (an int where 64 is, a number where 0.1 is)."""
    for kind, accepted, words in _KINDS:
        if type(default) is kind:
            if not isinstance(value, accepted) or (kind is not bool and isinstance(value, bool)):
                raise SpecError(f"{where}: expected {words} (default {default!r}), got {quote(value)}")
            if kind is float and not math.isfinite(value):
                raise SpecError(f"{where}: expected a finite number (default {default!r}), got {quote(value)}")
            return
