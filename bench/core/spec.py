"""A run, described as plain data: which task, which model, how to train, which seed."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import ClassVar

import models
import tasks
from bench.core import backends, identity
from bench.core.errors import SpecError, integer, positive
from bench.core.text import quote
from bench.core.choices import JIT, PRECISIONS
from bench.core.widths import BUDGET, sized


def asked(value) -> dict:
    """The fields of a dataclass set away from their defaults: what the user asked for (a run's identity)."""
    return {f.name: getattr(value, f.name) for f in fields(value) if getattr(value, f.name) != _default(f)}


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


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
            integer(getattr(self, name), f"train.{name}")
        positive(self.lr, "train.lr")
        for name in ("clipnorm", "max_seconds", "clipvalue"):
            positive(getattr(self, name), f"train.{name}", allow_none=True)
        if not isinstance(self.gradient_flow, bool):
            raise SpecError(f"train.gradient_flow must be true or false, got {quote(self.gradient_flow)}")
        if self.precision not in PRECISIONS:
            raise SpecError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {quote(self.precision)}")
        integer(self.tbptt, "train.tbptt", allow_none=True)
        if not isinstance(self.test_lengths, (list, tuple)):
            raise SpecError(f"train.test_lengths must be a list of integers >= 1, got {quote(self.test_lengths)}")
        object.__setattr__(self, "test_lengths", tuple(self.test_lengths))  # a YAML/JSON list becomes a tuple
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.test_lengths):
            raise SpecError(f"train.test_lengths must be integers >= 1, got {quote(list(self.test_lengths))}")
        if self.jit_compile not in JIT:
            raise SpecError(f"train.jit_compile must be true, false or auto, got {quote(self.jit_compile)}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def of(cls, options: dict, where: str = "train") -> TrainConfig:
        """The configuration of training ``options`` as asked (a dict), an unknown or impossible one named as
        set at ``where`` (``--train``, ``overrides.lstm``)."""
        unknown = sorted(set(options) - set(cls.keys()))
        if unknown:
            raise SpecError(f"{where}.{quote(unknown[0], 40).strip(chr(39))}: unknown training option; "
                            f"valid: {', '.join(cls.keys())}")
        try:
            return cls(**options)
        except SpecError as e:  # named as train.X: name where it was set
            raise SpecError(str(e).replace("train.", f"{where}.", 1)) from None


_FIELD_TYPES = (("task", str, "a task's name"), ("model", str, "a model's name"),
                ("task_params", dict, "a mapping of task parameters"),
                ("model_params", dict, "a mapping of hyperparameters"),
                ("train", (dict, TrainConfig), "a mapping of training options or a TrainConfig"),
                ("seed", int, "an integer >= 0"), ("sweep", str, "a sweep's name"))


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
    backend: str = field(default_factory=backends.asked)  # a Keras backend, or auto (bench.core.backends)
    kind: ClassVar[str] = "train"

    def __post_init__(self):
        """The types of what was asked (a value's own checks come in ``bench.core.check``): a Python caller's
        ``RunSpec("adding", 5)`` is the same one-line SpecError as a bad sweep file, not a TypeError later."""
        for name, kind, words in _FIELD_TYPES:
            if not isinstance(getattr(self, name), kind):
                raise SpecError(f"RunSpec {name} must be {words}, got {quote(getattr(self, name))}")
        if isinstance(self.train, TrainConfig):
            object.__setattr__(self, "train", asked(self.train))
        backends.check(self.backend)

    @property
    def config(self) -> TrainConfig:
        """The training configuration: the requested options over TrainConfig's defaults."""
        return TrainConfig.of(self.train)

    def request(self) -> dict:
        """What identifies the run (the sweep's name does not: the same run is the same run). The backend asked
        for counts too, unless it is ``auto`` or TensorFlow (``backends.identity``)."""
        return {"task": self.task, "task_params": self.task_params, "model": self.model,
                "model_params": self.model_params, "train": self.train, "seed": self.seed,
                **backends.identity(self.backend)}

    @property
    def run_id(self) -> str:
        return identity.digest(self.request())

    def resolved(self, size: bool = True) -> Resolved:
        """Every default written out; raises TaskError/ModelError/SpecError naming an impossible value. With
        ``size=False`` a parameter budget is not sized into a width (a check of everything else, building nothing)."""
        task = tasks.create(self.task, **self.task_params)
        entry = models.entry(self.model)
        asked = {k: v for k, v in self.model_params.items() if k != BUDGET}  # checked by bench.core.check
        integer(self.seed, "seed", minimum=0)
        budget = self.model_params.get(BUDGET)
        if budget is not None and size:
            asked = sized(self.model, self.task, json.dumps(self.task_params, sort_keys=True), budget,
                          json.dumps(asked, sort_keys=True))
        return Resolved(self, task.params, {**entry.defaults, **asked}, self.config, budget)

    def to_dict(self) -> dict:
        """The request as plain data, for a worker process or a record (``from_dict`` reads it back)."""
        return {"kind": self.kind, **self.request(), "backend": self.backend, "sweep": self.sweep}

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        """A spec from ``to_dict``'s output or from a record (its ``request``; a record without one, written
        before run identity was the request, counts its resolved values as asked; ``backends.read``)."""
        asked = data.get("request") or data
        backend = backends.read(data, asked)
        return cls(asked["task"], asked["model"], dict(asked.get("task_params", {})),
                   dict(asked.get("model_params", {})), dict(asked.get("train", {})), asked.get("seed", 0),
                   data.get("sweep", "adhoc"), backend)

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

    def sources(self) -> dict[str, str]:
        """Fingerprints of the code that defines the run's model and task: ``{file: sha256 prefix}``."""
        return identity.sources(self.model, self.task)


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
                "train": asdict(self.train), "seed": s.seed, "backend": {"asked": s.backend}, "source": s.sources(),
                "model_info": models.entry(s.model).describe(),
                **({BUDGET: self.param_budget} if self.param_budget is not None else {})}
