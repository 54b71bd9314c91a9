"""The model registry: ``@register`` a sequence mixer, then ``create`` a full model by name.

A mixer maps ``(batch, time, features)`` to ``(batch, time, units)``. ``create`` wraps it with the
task's input head and output head (``models.heads``), so every model meets every task the same way
and a comparison measures the mixer alone. A mixer that takes a keyword ``per_step`` is told
whether the task wants an output at every step: a Transformer then masks the future, and a recurrent
stack may return only its last state (``time`` = 1), since the head reads only that one.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import keras

from models import heads


class ModelError(ValueError):
    """A model was asked for by an unknown name or with impossible hyperparameters."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    mixer: Callable
    cudnn: bool  # built from Keras layers that can take the cuDNN path
    doc: str
    flops: Callable | None = None  # (batch, length, width, **hp) -> (forward FLOPs of the mixer, output width)
    state: Callable | None = None  # (length, **hp) -> floats of recurrent state (or KV cache) per sequence

    @property
    def defaults(self) -> dict:
        params = inspect.signature(self.mixer).parameters
        return {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "per_step"}


_MODELS: dict[str, ModelEntry] = {}


def register(name: str, *, cudnn: bool = False, flops: Callable | None = None, state: Callable | None = None):
    """Decorator: make mixer ``fn(x, *, **hp) -> x`` available as ``models.create(name, ...)``.

    ``flops(batch, length, width, **hp)`` returns the mixer's analytic forward FLOPs for an input of
    ``width`` features and its output width; ``state(length, **hp)`` the floats of state it carries
    per sequence. Both are optional: a model without them records null.
    """

    def add(fn: Callable) -> Callable:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        doc = (inspect.getdoc(fn) or "").split("\n")[0]
        _MODELS[name] = ModelEntry(name, fn, cudnn, doc, flops, state)
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
