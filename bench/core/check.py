"""The one validation pass: ``check(specs)``, which every entry point (``bench run``, sweep files, ``bench tune``,
``bench speed``, the Python API) calls before anything trains. ``bench run`` is a one-point sweep to it.

Everything here fails before any training, as a SpecError naming where the bad value was given (``--hp units``
or ``models.lstm.units``); quoted values are cut short (``quote``), so a hostile YAML file makes a short error.
Each check runs once per distinct value it checks: a model's hyperparameters are built once, not once per run.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import models
import tasks
from bench.core.errors import SpecError, integer, sweep_name
from bench.core.spec import RunSpec
from bench.core.text import quote
from bench.core.widths import BUDGET

MAX_RUNS = 100_000  # a sweep larger than this is refused: its plan alone would take minutes and gigabytes
MAX_BATCH_SHARE = 0.25  # an input batch (train, validation or test) may use at most this share of the RAM
BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two moments: a budget's training state


@dataclass(frozen=True)
class Where:
    """How an error names where a value was given: a sweep file's keys (``tasks.copy``, ``models.lstm``) or the
    flags of ``bench run`` (``--param``, ``--hp``)."""

    task: str = "tasks.{task}"
    model: str = "models.{model}"
    budget: str | None = None  # default: the model's place, ``.param_budget``
    train: str = "{model}.train"
    flags: dict = field(default_factory=dict)  # task parameters given by a flag of their own: {"length": "--length"}


SWEEP = Where()
FLAGS = Where("--param", "--hp", "--param-budget", "--train", {"length": "--length"})


def check(specs, where: Where = SWEEP) -> None:
    """Raise a SpecError (or TaskError, ModelError) naming the first impossible value of ``specs``, of any kind,
    before anything trains. A kind other than training runs gives its own ``checks()``."""
    done = set()
    for spec in specs:
        if not (isinstance(spec, RunSpec) or callable(getattr(spec, "checks", None))):
            raise SpecError(f"expected a RunSpec (or a spec of another run kind), got {quote(spec)}")
        sweep_name(spec.sweep, "sweep")
        for key, test in (_checks(spec, where) if isinstance(spec, RunSpec) else spec.checks()):
            if key not in done:
                done.add(key)
                test()


def _checks(spec: RunSpec, where: Where):
    """A training run's checks as ``(key, test)``: its task point, model point (one build for the first task that
    asks for it), training options, truncated BPTT, batch sizes against memory, and the rest of the spec."""
    task, model = spec.task, spec.model
    task_at, model_at = where.task.format(task=task), where.model.format(model=model)
    params, hp = id(spec.task_params), id(spec.model_params)  # a sweep's specs share their points' dicts; a hostile
    config = spec.config  # value is refused by its check before anything reads it whole
    yield ("task", task, params), lambda: task_point(task, spec.task_params, task_at, where.flags)
    signature = lambda: tasks.create(task, **spec.task_params).signature  # noqa: E731
    yield ("model", model, hp), lambda: model_point(model, spec.model_params, model_at, signature(), where.budget)
    yield ("tbptt", model, config.tbptt), lambda: models.registry.check_tbptt(model, config.tbptt)
    yield ("fits", task, params, config.batch_size, config.val_size, config.test_size), \
        lambda: fits(signature(), config, where.train.format(model=model))
    yield ("fits longer", task, params, config.test_size, config.test_lengths), \
        lambda: fits_longer(task, spec.task_params, config, where.train.format(model=model))
    yield ("spec", id(spec)), lambda: spec.resolved(size=False)


def task_point(task: str, point: dict, where: str, flags: dict | None = None):
    """Check a task's parameters (names, types, the task's own checks); return the task. ``flags`` names the
    parameters given by a flag of their own (``{"length": "--length"}``), so an error quotes what was typed."""
    _check_keys(point, _defaults(tasks.defaults, task, where), where, "parameter")
    return _naming_key(lambda: tasks.create(task, **point), point, where, flags)


def model_point(model: str, point: dict, where: str, signature, budget_flag: str | None = None) -> None:
    """Check a model's hyperparameters by building it once for ``signature``: a bad value fails now. With a
    parameter budget the width is the budget's to set, so the build is at the first width the model takes
    (``heads=3`` is no error: the budget will pick a ``d_model`` divisible by 3).

    Other errors of the build (a bug in a plugin's model, no memory, a plugin calling ``sys.exit``) are left
    to the run, which records them.
    """
    from bench.core import plugins

    defaults = _defaults(lambda m: models.entry(m).defaults, model, where)
    budgeted = BUDGET in point
    if budgeted:
        _check_budget(model, point, where, budget_flag or f"{where}.{BUDGET}")
        point = {k: v for k, v in point.items() if k != BUDGET}  # the width is sized per task, at resolved()
    _check_keys(point, defaults, where, "hyperparameter")
    build = (lambda: models.registry.buildable_width(model, signature, **point)) if budgeted else \
        (lambda: models.create(model, signature, **point))
    try:
        with plugins.guarded():
            _naming_key(build, point, where)
    except SpecError:
        raise
    except (Exception, SystemExit):  # noqa: BLE001 - recorded as the run's status instead
        pass


def _check_budget(model: str, point: dict, where: str, flag: str) -> None:
    """A parameter budget (given as ``flag``) is a positive integer, for a model with a width set nowhere else, and
    one whose training state fits in memory (sizing it builds models of about that size)."""
    budget, width = point[BUDGET], models.entry(model).width
    integer(budget, flag)
    if width is None:
        raise SpecError(f"{flag}: model {model!r} declares no width, so a parameter budget cannot size it")
    if width in point:
        raise SpecError(f"{flag} sets {width}; do not give {where} {width}=... as well")
    ram = _ram_bytes()
    if ram is not None and budget * BYTES_PER_PARAMETER > MAX_BATCH_SHARE * ram:
        raise SpecError(f"{flag}: {budget:,} trainable parameters take {budget * BYTES_PER_PARAMETER / 2**30:.1f} GiB "
                        f"to train ({BYTES_PER_PARAMETER} bytes each: weights, gradients, Adam's two moments), more "
                        f"than {MAX_BATCH_SHARE:.0%} of this machine's {ram / 2**30:.1f} GiB")


def fits(signature, train, where: str = "train", names=("batch_size", "val_size", "test_size"),
         option: str | None = None) -> None:
    """Refuse a run whose input batches alone cannot fit in this machine's memory (``option`` names the training
    option that sets the length, when it is not the task's own)."""
    ram = _ram_bytes()
    if ram is None:
        return
    channels = getattr(signature.input, "channels", 1)
    per_sample = signature.length * channels * 4
    for name in names:
        size = getattr(train, name) * per_sample
        if size > MAX_BATCH_SHARE * ram:
            raise SpecError(f"{where}.{option or name}: {getattr(train, name)} sequences of length "
                            f"{signature.length} take {size / 2**30:.1f} GiB, more than {MAX_BATCH_SHARE:.0%} of "
                            f"this machine's {ram / 2**30:.1f} GiB")


def fits_longer(task: str, params: dict, train, where: str = "train") -> None:
    """The extrapolation lengths (``test_lengths``) score ``test_size`` sequences at each: the longest is refused
    as ``fits`` refuses training batches. A length the task refuses is left to the run, which records it."""
    if not train.test_lengths:
        return
    try:
        signature = tasks.create(task, **{**params, "length": max(train.test_lengths)}).signature
    except (ValueError, TypeError):
        return
    fits(signature, train, where, ("test_size",), "test_lengths")


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
