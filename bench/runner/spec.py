"""A run, described as plain data: which task, which model, how to train, which seed."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import models
import tasks
from bench.runner.precision import PRECISIONS


DEFAULT_BACKEND = "tensorflow"
BUDGET = "param_budget"  # in a request's model_params: size the model's width to this many trainable parameters


class SpecError(ValueError):
    """A run or sweep was described with an impossible value."""


def _finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _quote(value) -> str:
    from bench.runner.validate import quote  # validate imports this module
    return quote(value)


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains: Adam on fresh batches, validated every ``eval_every`` steps, test scored at the end."""

    steps: int = 1000  # most optimiser steps
    batch_size: int = 64
    lr: float = 3e-3  # 3e-3 lets an LSTM solve adding at T>=50, 1e-3 does not (README: defaults)
    clipnorm: float | None = 1.0  # Keras clipnorm: each gradient tensor clipped to this norm; None: off
    eval_every: int = 100  # steps between validations
    val_size: int = 512
    test_size: int = 1024
    max_seconds: float | None = None  # wall-clock budget for training
    early_stop: bool = True  # stop once the validation metric reaches the task's solved threshold
    jit_compile: bool | str = "auto"  # "auto": the harness picks per backend and device
    gradient_flow: bool = True  # measure ‖∂L/∂x_t‖ over t at initialisation and after training
    precision: str = "float32"  # float32 (strict IEEE fp32), tf32 (TF32 matmuls on GPUs) or mixed_bfloat16
    tbptt: int | None = None  # truncated BPTT: gradients reach back at most this many steps (models that take it)
    clipvalue: float | None = None  # clip each gradient element to [-clipvalue, clipvalue] (before clipnorm)
    test_lengths: tuple[int, ...] = ()  # also score the trained model at these task lengths (extrapolation)

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "val_size", "test_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"train.{name} must be an integer >= 1, got {_quote(value)}")
        if not _finite_positive(self.lr):
            raise SpecError(f"train.lr must be a number > 0, got {_quote(self.lr)}")
        for name in ("clipnorm", "max_seconds", "clipvalue"):
            value = getattr(self, name)
            if value is not None and not _finite_positive(value):
                raise SpecError(f"train.{name} must be a number > 0 or null, got {_quote(value)}")
        if not isinstance(self.gradient_flow, bool):
            raise SpecError(f"train.gradient_flow must be true or false, got {_quote(self.gradient_flow)}")
        if self.precision not in PRECISIONS:
            raise SpecError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {_quote(self.precision)}")
        if self.tbptt is not None and (not isinstance(self.tbptt, int) or isinstance(self.tbptt, bool)
                                       or self.tbptt < 1):
            raise SpecError(f"train.tbptt must be an integer >= 1 or null, got {_quote(self.tbptt)}")
        object.__setattr__(self, "test_lengths", tuple(self.test_lengths))  # a YAML/JSON list becomes a tuple
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.test_lengths):
            raise SpecError(f"train.test_lengths must be integers >= 1, got {_quote(list(self.test_lengths))}")
        if self.jit_compile not in (True, False, "auto"):
            raise SpecError(f"train.jit_compile must be true, false or auto, got {_quote(self.jit_compile)}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class RunSpec:
    """One (task, parameters, model, hyperparameters, training, seed) point: what the user asked for.

    Only the values the user set are part of the spec; the code's defaults fill in the rest at ``resolved()``.
    So the run's identity (``run_id``) hashes what was asked, not what the code defaults to: a new option whose
    default keeps the old behaviour leaves every stored record matching, and a changed default shows up as a
    difference between a stored record's resolved values and today's (``stale``), not as a new run.
    ``train`` takes a dict of training options or a ``TrainConfig`` (whose non-default fields are the request).
    """

    task: str
    model: str
    task_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)
    train: dict | TrainConfig = field(default_factory=dict)
    seed: int = 0
    sweep: str = "adhoc"
    kind: ClassVar[str] = "train"

    def __post_init__(self):
        if isinstance(self.train, TrainConfig):
            default = TrainConfig()
            asked = {k: v for k, v in asdict(self.train).items() if v != getattr(default, k)}
            object.__setattr__(self, "train", asked)

    @property
    def config(self) -> TrainConfig:
        """The training configuration: the requested options over TrainConfig's defaults."""
        unknown = sorted(set(self.train) - set(TrainConfig.keys()))
        if unknown:
            raise SpecError(f"unknown training option {unknown[0]!r}; valid: {', '.join(TrainConfig.keys())}")
        return TrainConfig(**self.train)

    def request(self) -> dict:
        """What identifies the run (the sweep's name does not: the same run is the same run). The Keras backend
        it runs on counts too, where it is not the default TensorFlow: a JAX run is another measurement."""
        backend = os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)
        return {"task": self.task, "task_params": self.task_params, "model": self.model,
                "model_params": self.model_params, "train": self.train, "seed": self.seed,
                **({"backend": backend} if backend != DEFAULT_BACKEND else {})}

    @property
    def run_id(self) -> str:
        return digest(self.request())

    def resolved(self, size: bool = True) -> Resolved:
        """Every default written out; raises TaskError/ModelError/SpecError naming an impossible value. With
        ``size=False`` a parameter budget is not sized into a width (a check of everything else, building nothing)."""
        task = tasks.create(self.task, **self.task_params)
        entry = models.entry(self.model)
        asked = {k: v for k, v in self.model_params.items() if k != BUDGET}
        unknown = sorted(set(asked) - set(entry.defaults))
        if unknown:
            raise models.ModelError(
                f"model {self.model!r} has no hyperparameter {unknown[0]!r}; valid: {', '.join(entry.defaults)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise SpecError(f"seed must be an integer >= 0, got {_quote(self.seed)}")
        budget = self.model_params.get(BUDGET)
        if budget is not None and size:
            asked = sized(self.model, self.task, json.dumps(self.task_params, sort_keys=True), budget,
                          json.dumps(asked, sort_keys=True))
        return Resolved(self, task.params, {**entry.defaults, **asked}, self.config, budget)

    def to_dict(self) -> dict:
        """The request as plain data, for a worker process or a record (``from_dict`` reads it back)."""
        return {"kind": self.kind, **self.request(), "sweep": self.sweep}

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        """A spec from ``to_dict``'s output or from a record (its ``request``; a record without one, written
        before run identity was the request, counts its resolved values as asked)."""
        asked = data.get("request") or data
        return cls(asked["task"], asked["model"], dict(asked.get("task_params", {})),
                   dict(asked.get("model_params", {})), dict(asked.get("train", {})), asked.get("seed", 0),
                   data.get("sweep", "adhoc"))

    def label(self) -> str:
        """A short label: the task with its parameters, the model with the hyperparameters asked for."""
        task = ",".join(f"{k}={v}" for k, v in self.task_params.items())
        hp = ",".join(f"{k}={v}" for k, v in self.model_params.items())
        return f"{self.task}({task}) {self.model}{f'({hp})' if hp else ''} seed {self.seed}"

    def fields(self) -> dict:
        """The record's description of the run: resolved when possible, else (a spec that no longer resolves,
        e.g. a plugin model not loaded) the request alone."""
        try:
            return self.resolved().fields()
        except ValueError:
            return {"kind": self.kind, "run_id": self.run_id, "request": self.request(), **self.to_dict()}

    def execute(self, save_model: str | None = None) -> dict:
        from bench.runner.run import run
        return run(self, save_model)

    def sources(self) -> dict[str, str]:
        """Fingerprints of the code that defines the run's model and task: ``{file: sha256 prefix}``."""
        return {**fingerprint(models.entry(self.model).source), **fingerprint(tasks.source(self.task))}


@dataclass(frozen=True)
class Resolved:
    """A spec with every default written out: what a run actually trains, and what its record stores."""

    spec: RunSpec
    task_params: dict
    model_params: dict
    train: TrainConfig
    param_budget: int | None = None  # the budget the width was sized to, if the request gave one

    task = property(lambda self: self.spec.task)
    model = property(lambda self: self.spec.model)
    seed = property(lambda self: self.spec.seed)
    sweep = property(lambda self: self.spec.sweep)
    run_id = property(lambda self: self.spec.run_id)

    def fields(self) -> dict:
        """The record's description of the run: identity, request, and the fully resolved values."""
        s = self.spec
        return {"kind": s.kind, "run_id": s.run_id, "request": s.request(), "sweep": s.sweep, "task": s.task,
                "task_params": self.task_params, "model": s.model, "model_params": self.model_params,
                "train": asdict(self.train), "seed": s.seed, "source": s.sources(),
                "model_info": models.entry(s.model).describe(),
                **({BUDGET: self.param_budget} if self.param_budget is not None else {})}


@functools.lru_cache(maxsize=4096)
def sized(model: str, task: str, task_params: str, budget, asked: str) -> dict:
    """The hyperparameters ``asked`` (JSON) with the model's width set for ``budget`` trainable parameters on the
    task (JSON parameters): ``models.registry.width_for_budget``, which builds the model several times, so its
    answers are kept on disk too (``WIDTHS``), keyed by the model's and task's source fingerprints."""
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise SpecError(f"{BUDGET} must be an integer >= 1, got {_quote(budget)}")
    hp, width = json.loads(asked), models.entry(model).width
    if width in hp:
        raise SpecError(f"{BUDGET} sets {model}'s {width}; do not set {width} as well")
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
            if not isinstance(width, int) or rec.get("source") != {**fingerprint(entry.source),
                                                                  **fingerprint(tasks.source(asked["task"]))}:
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


def stale(spec, stored: dict) -> list[str]:
    """Why a stored record of ``spec`` (a spec of any kind) no longer describes what ``spec`` would run today;
    empty if it still does.

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
