"""A run, described as plain data: which task, which model, how to train, which seed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

import models
import tasks


class SpecError(ValueError):
    """A run or sweep was described with an impossible value."""


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains: Adam on fresh batches, validated every ``eval_every`` steps, test scored at the end."""

    steps: int = 1000  # most optimiser steps
    batch_size: int = 64
    lr: float = 3e-3  # FACTS.md: 3e-3 lets an LSTM solve adding at T>=50, 1e-3 does not
    clipnorm: float | None = 1.0  # Keras clipnorm: each gradient tensor clipped to this norm; None: off
    eval_every: int = 100  # steps between validations
    val_size: int = 512
    test_size: int = 1024
    max_seconds: float | None = None  # wall-clock budget for training
    early_stop: bool = True  # stop once the validation metric reaches the task's solved threshold
    jit_compile: bool | str = "auto"  # "auto": the harness picks per backend and device
    gradient_flow: bool = True  # measure ‖∂L/∂x_t‖ over t at initialisation and after training
    test_lengths: tuple[int, ...] = ()  # also score the trained model at these task lengths (extrapolation)

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "val_size", "test_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"train.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise SpecError(f"train.lr must be a number > 0, got {self.lr!r}")
        for name in ("clipnorm", "max_seconds"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value <= 0):
                raise SpecError(f"train.{name} must be a number > 0 or null, got {value!r}")
        if not isinstance(self.gradient_flow, bool):
            raise SpecError(f"train.gradient_flow must be true or false, got {self.gradient_flow!r}")
        object.__setattr__(self, "test_lengths", tuple(self.test_lengths))  # a YAML/JSON list becomes a tuple
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.test_lengths):
            raise SpecError(f"train.test_lengths must be integers >= 1, got {list(self.test_lengths)!r}")
        if self.jit_compile not in (True, False, "auto"):
            raise SpecError(f"train.jit_compile must be true, false or auto, got {self.jit_compile!r}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class RunSpec:
    """One (task, parameters, model, hyperparameters, training, seed) point of a sweep."""

    task: str
    model: str
    task_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    sweep: str = "adhoc"

    def resolved(self) -> RunSpec:
        """The same spec with every default written out; raises TaskError/ModelError/SpecError if invalid."""
        task = tasks.create(self.task, **self.task_params)
        entry = models.entry(self.model)
        unknown = sorted(set(self.model_params) - set(entry.defaults))
        if unknown:
            raise models.ModelError(
                f"model {self.model!r} has no hyperparameter {unknown[0]!r}; valid: {', '.join(entry.defaults)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise SpecError(f"seed must be an integer >= 0, got {self.seed!r}")
        return RunSpec(self.task, self.model, task.params, {**entry.defaults, **self.model_params},
                       self.train, self.seed, self.sweep)

    def canonical(self) -> dict:
        """What identifies the run (the sweep's name does not: the same run is the same run)."""
        spec = self.resolved()
        train = {k: v for k, v in asdict(spec.train).items() if k != "test_lengths" or v}  # new option: old ids hold
        return {"task": spec.task, "task_params": spec.task_params, "model": spec.model,
                "model_params": spec.model_params, "train": train, "seed": spec.seed}

    @property
    def run_id(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {**self.canonical(), "sweep": self.sweep}

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return cls(data["task"], data["model"], dict(data.get("task_params", {})),
                   dict(data.get("model_params", {})), TrainConfig(**data.get("train", {})),
                   data.get("seed", 0), data.get("sweep", "adhoc"))
