"""The model registry: ``@register`` a sequence mixer, then ``create`` a full model by name.

A mixer maps ``(batch, time, features)`` to ``(batch, time, units)``. ``create`` wraps it with the
task's input head and output head (``models.heads``), so every model meets every task the same way
and a comparison measures the mixer alone. A mixer that takes a keyword ``per_step`` is told
whether the task wants an output at every step: a Transformer then masks the future, and a recurrent
stack may return only its last state (``time`` = 1), since the head reads only that one.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import keras

from models import heads


class ModelError(ValueError):
    """A model was asked for by an unknown name or with impossible hyperparameters."""


FAMILIES = ("recurrent", "attention", "convolution", "scan", "other")


@dataclass(frozen=True)
class ModelEntry:
    """What the harness knows about a model: everything is declared here, nothing is guessed from layer classes.

    - ``family``: recurrent, attention, convolution, scan (a recurrence trained with a parallel scan) or other.
    - ``width``: the hyperparameter that sets the model's width (``units``, ``d_model`` …), which a parameter
      budget or a speed benchmark sets; None if the model has none.
    - ``cudnn``: whether it can run as a fused cuDNN kernel: False (never), True (always), or a function of the
      resolved hyperparameters returning None when it can and otherwise the reason it cannot.
    - ``flops(batch, length, width, **hp) -> (forward FLOPs of the mixer, output width)`` and
      ``state(length, **hp) -> floats of recurrent state (or KV cache) per sequence``: optional formulas.
    - ``gates``: gated recurrent matmuls per step (LSTM 4, GRU 3, RNN 1), for DeepBench's FLOP count and the
      matmul breakdown of ``bench speed``; None where it does not apply.
    - ``xla_cpu(hp, per_step) -> bool``: where XLA was measured faster on the CPU (TensorFlow) for this model;
      None: XLA stays off there.
    - ``space``: the tuning search space beside the learning rate, ``{hp: [choices]}`` or ``{hp: (low, high)}``.
    """

    name: str
    mixer: Callable
    doc: str
    family: str = "other"
    width: str | None = None
    cudnn: bool | Callable = False
    flops: Callable | None = None
    state: Callable | None = None
    gates: int | None = None
    xla_cpu: Callable | None = None
    space: dict = field(default_factory=dict)
    source: str | None = None  # the file that defines the model (its fingerprint marks records stale)

    @property
    def defaults(self) -> dict:
        params = inspect.signature(self.mixer).parameters
        return {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "per_step"}

    def cudnn_blocker(self, hp: dict) -> str | None:
        """None if these hyperparameters can take the fused cuDNN kernel, else why not."""
        if self.cudnn is True:
            return None
        if self.cudnn is False:
            return f"{self.name}: no fused cuDNN kernel for this model ({self.family})"
        return self.cudnn({**self.defaults, **hp})

    def describe(self) -> dict:
        """The entry as plain data, for records and ``bench list``."""
        return {"family": self.family, "width": self.width, "gates": self.gates,
                "cudnn": self.cudnn if isinstance(self.cudnn, bool) else "conditional"}


_MODELS: dict[str, ModelEntry] = {}


def register(name: str, *, family: str = "other", width: str | None = None, cudnn: bool | Callable = False,
             flops: Callable | None = None, state: Callable | None = None, gates: int | None = None,
             xla_cpu: Callable | None = None, space: dict | None = None):
    """Decorator: make mixer ``fn(x, *, **hp) -> x`` available as ``models.create(name, ...)``.

    Every keyword describes the model to the harness (see ``ModelEntry``); all are optional, and a model that
    declares nothing still runs: its records then say "other" and carry null FLOPs and state.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")

    def add(fn: Callable) -> Callable:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        doc = (inspect.getdoc(fn) or "").split("\n")[0]
        entry = ModelEntry(name, fn, doc, family, width, cudnn, flops, state, gates, xla_cpu, dict(space or {}),
                           inspect.getsourcefile(fn))
        if width is not None and width not in entry.defaults:
            raise ValueError(f"model {name!r}: width {width!r} is not one of its hyperparameters")
        _MODELS[name] = entry
        return fn

    return add


def list_models() -> list[str]:
    return sorted(_MODELS)


def entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise ModelError(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    return _MODELS[name]


def create(name: str, signature, **hp) -> keras.Model:
    """An uncompiled ``keras.Model`` of mixer ``name`` with heads for the task ``signature``."""
    model = entry(name)
    unknown = sorted(set(hp) - set(model.defaults))
    if unknown:
        raise ModelError(f"model {name!r} has no hyperparameter {unknown[0]!r}; valid: {', '.join(model.defaults)}")
    if "per_step" in inspect.signature(model.mixer).parameters:
        hp = {**hp, "per_step": heads.is_per_step(signature)}
    inputs = heads.model_input(signature)
    x = model.mixer(heads.embed(inputs, signature), **hp)
    return keras.Model(inputs, heads.readout(x, signature), name=name)


def forward_flops(name: str, signature, batch: int, **hp) -> float | None:
    """Analytic FLOPs of one forward pass of the whole model: mixer plus readout (the embedding is a lookup)."""
    model = entry(name)
    if model.flops is None:
        return None
    mixer, width = model.flops(batch, signature.length, heads.mixer_width(signature), **{**model.defaults, **hp})
    return float(mixer + heads.readout_flops(signature, batch, width))


def state_size(name: str, signature, **hp) -> int | None:
    """Floats of state the model carries per sequence at the signature's length (null if not declared)."""
    model = entry(name)
    return None if model.state is None else int(model.state(signature.length, **{**model.defaults, **hp}))


def recurrent_flops(batch: int, length: int, width: int, units: int, layers: int, gates: int) -> tuple[float, int]:
    """Forward FLOPs of a stack of gated recurrent layers: 2·B·T·gates·H·(D+H) per layer (D = H after the first)."""
    total, d = 0.0, width
    for _ in range(layers):
        total += 2.0 * batch * length * gates * units * (d + units)
        d = units
    return total, units


def positive(**values) -> None:
    """Raise a ModelError naming the first value that is not a positive integer."""
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelError(f"{key} must be a positive integer, got {value!r}")


def fraction(**values) -> None:
    """Raise a ModelError naming the first value outside [0, 1)."""
    for key, value in values.items():
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ModelError(f"{key} must be in [0, 1), got {value!r}")
