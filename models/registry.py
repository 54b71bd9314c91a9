"""The model registry: ``@register`` a sequence mixer, then ``create`` a full model by name.

A mixer maps ``(batch, time, features)`` to ``(batch, time, units)``. ``create`` wraps it with the
task's input head and output head (``models.heads``), so every model meets every task the same way
and a comparison measures the mixer alone. A mixer that takes a keyword ``per_step`` is told
whether the task wants an output at every step: a Transformer then masks the future, and a recurrent
stack may return only its last state (``time`` = 1), since the head reads only that one.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import keras

from models import heads


class ModelError(ValueError):
    """A model was asked for by an unknown name or with impossible hyperparameters."""


FAMILIES = ("recurrent", "attention", "convolution", "scan", "other")
# keywords the harness passes to a mixer that accepts them; not hyperparameters: ``per_step`` (does the task want an
# output at every step) and ``tbptt`` (truncated backpropagation through time, from ``train.tbptt``)
HARNESS_KEYWORDS = ("per_step", "tbptt")


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
    - ``reference``: the model the reports measure the others against (the suite's subject: the LSTM); a report
      of a sweep without it states no comparisons with it.
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
    reference: bool = False

    @property
    def defaults(self) -> dict:
        params = inspect.signature(self.mixer).parameters
        return {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k not in HARNESS_KEYWORDS}

    def accepts(self, keyword: str) -> bool:
        """Whether the mixer takes ``keyword`` (one of ``HARNESS_KEYWORDS``)."""
        return keyword in inspect.signature(self.mixer).parameters

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
             xla_cpu: Callable | None = None, space: dict | None = None, reference: bool = False):
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
                           inspect.getsourcefile(fn), reference)
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


def create(name: str, signature, *, tbptt: int | None = None, **hp) -> keras.Model:
    """An uncompiled ``keras.Model`` of mixer ``name`` with heads for the task ``signature``; ``tbptt=K`` truncates
    backpropagation through time to K steps (only for models whose mixer takes ``tbptt``)."""
    model = entry(name)
    unknown = sorted(set(hp) - set(model.defaults))
    if unknown:
        raise ModelError(f"model {name!r} has no hyperparameter {unknown[0]!r}; valid: {', '.join(model.defaults)}")
    check_tbptt(name, tbptt)
    if model.accepts("per_step"):
        hp = {**hp, "per_step": heads.is_per_step(signature)}
    if tbptt is not None:
        hp = {**hp, "tbptt": tbptt}
    inputs = heads.model_input(signature)
    x = model.mixer(heads.embed(inputs, signature), **hp)
    return keras.Model(inputs, heads.readout(x, signature), name=name)


def check_tbptt(name: str, tbptt: int | None) -> None:
    """Raise a ModelError unless model ``name`` can train with truncated backpropagation of ``tbptt`` steps."""
    if tbptt is None:
        return
    if not entry(name).accepts("tbptt"):
        able = [n for n in list_models() if _MODELS[n].accepts("tbptt")]
        raise ModelError(f"model {name!r} cannot truncate backpropagation (train.tbptt); models that can: "
                         f"{', '.join(able)}")
    positive(tbptt=tbptt)


def forward_flops(name: str, signature, batch: int, **hp) -> float | None:
    """Analytic FLOPs of one forward pass of the whole model, summed over batch and time: mixer plus readout (the
    embedding is a lookup). The entry's ``flops`` gets every hyperparameter and, if it takes it, ``per_step``."""
    declared = mixer_flops(name, signature, batch, **hp)
    if declared is None:
        return None
    mixer, width = declared
    return float(mixer + heads.readout_flops(signature, batch, width))


def mixer_flops(name: str, signature, batch: int, **hp) -> tuple[float, int] | None:
    """The entry's ``flops`` formula for this task: (forward FLOPs of the mixer, its output width), or None."""
    model = entry(name)
    if model.flops is None:
        return None
    return model.flops(batch, signature.length, heads.mixer_width(signature),
                       **_formula_keywords(model.flops, {**model.defaults, **hp}, signature))


def state_size(name: str, signature, **hp) -> int | None:
    """Floats of state the model carries per sequence at the signature's length (null if not declared)."""
    model = entry(name)
    if model.state is None:
        return None
    return int(model.state(signature.length, **_formula_keywords(model.state, {**model.defaults, **hp}, signature)))


def _formula_keywords(formula: Callable, hp: dict, signature) -> dict:
    """``hp``, plus ``per_step`` (whether the task reads every step's output) where ``formula`` accepts it: a
    mixer that computes only its last step when ``per_step`` is False can count only that."""
    parameters = inspect.signature(formula).parameters
    if "per_step" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return {**hp, "per_step": heads.is_per_step(signature)}
    return hp


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


BUDGET_TOLERANCE = 0.05  # a width is accepted when its parameter count is within 5 % of the budget


def count_params(name: str, signature, **hp) -> int:
    """Trainable parameters of model ``name`` for ``signature`` (built symbolically; nothing runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a masked signature makes layers that ignore masks warn at every build
        model = create(name, signature, **hp)
    return int(sum(int(math.prod(w.shape)) for w in model.trainable_weights))


MAX_WIDTH = 2**16  # the widest a parameter budget sizes a model to
WIDTH_SCAN = 64  # widths tried in a row for one that builds (a ``d_model`` not divisible by ``heads`` does not)


class _Widths:
    """A model's trainable parameter count per width, each width built once; ``valid`` finds one that builds."""

    def __init__(self, name: str, signature, hp: dict):
        self.name, self.signature, self.hp, self.key = name, signature, hp, entry(name).width
        self.counts: dict[int, int | None] = {}
        self.last_error: ModelError | None = None

    def count(self, width: int) -> int | None:  # None: the model rejects this width
        if width not in self.counts:
            try:
                self.counts[width] = count_params(self.name, self.signature, **{**self.hp, self.key: width})
            except ModelError as e:
                self.counts[width], self.last_error = None, e
        return self.counts[width]

    def valid(self, width: int, step: int) -> int | None:
        """The first width from ``width`` in direction ``step`` (within WIDTH_SCAN, 1 to MAX_WIDTH) that builds."""
        for w in range(width, width + WIDTH_SCAN * step, step):
            if w < 1 or w > MAX_WIDTH:
                return None
            if self.count(w) is not None:
                return w
        return None


def buildable_width(name: str, signature, start: int = 8, **hp) -> int:
    """The first width from ``start`` at which model ``name`` builds with ``hp`` (its width left to a parameter
    budget); a ModelError with the model's own reason if none of WIDTH_SCAN widths does."""
    widths = _Widths(name, signature, hp)
    width = widths.valid(start, 1)
    if width is None:
        raise ModelError(f"model {name!r}: no {widths.key} from {start} to {start + WIDTH_SCAN - 1} builds with "
                         f"these hyperparameters (the parameter budget sets {widths.key}): {widths.last_error}")
    return width


def width_for_budget(name: str, signature, budget: int, **hp) -> dict:
    """The hyperparameters ``hp`` plus the width (the entry's ``width``) whose trainable parameter count is closest
    to ``budget`` for this task; raises ModelError if none comes within 5 %.

    Parameters grow with the width, about quadratically: three probes fit the curve, its solution is the first
    guess; steps doubling from it bracket the budget between two valid widths (a ``d_model`` not divisible by
    ``heads`` is skipped), and bisection narrows the bracket to neighbouring valid widths: a few builds, at most
    about 2·log2(MAX_WIDTH), whatever the budget.
    """
    model = entry(name)
    if model.width is None:
        raise ModelError(f"model {name!r} declares no width hyperparameter, so a parameter budget cannot size it")
    positive(param_budget=budget)
    widths = _Widths(name, signature, hp)
    probes = [w for w in (widths.valid(8, 1), widths.valid(32, 1), widths.valid(128, 1)) if w is not None]
    if not probes:
        raise ModelError(f"model {name!r}: no {model.width} from 8 to 190 builds, so a budget cannot size it"
                         + (f" ({widths.last_error})" if widths.last_error else ""))
    start = widths.valid(_solve_quadratic([(w, widths.counts[w]) for w in probes], budget), 1) or probes[-1]
    below, above = _bisect(widths, *_bracket(widths, start, budget), budget)
    counts = widths.counts
    best = min((w for w in (below, above) if w is not None), key=lambda w: abs(counts[w] - budget))
    if above is None and counts[best] < budget * (1 - BUDGET_TOLERANCE):
        raise ModelError(f"model {name!r}: no {model.width} up to {MAX_WIDTH} reaches {budget} parameters (the "
                         f"widest that builds, {model.width}={best}, has {counts[best]}); give a smaller budget")
    if abs(counts[best] - budget) > BUDGET_TOLERANCE * budget:
        raise ModelError(f"model {name!r}: no {model.width} gives {budget} parameters within 5 % "
                         f"(closest: {model.width}={best}, {counts[best]} parameters); try another budget"
                         + (" or fewer heads" if "heads" in model.defaults else ""))
    return {**hp, model.width: best}


def _bracket(widths: _Widths, start: int, budget: int) -> tuple[int | None, int | None]:
    """Valid widths ``(below, above)`` with fewer than ``budget`` parameters and with at least that many, found in
    steps doubling from ``start``; None where the widths run out (below 1, above MAX_WIDTH)."""
    below = above = None
    if widths.counts[start] >= budget:
        above, step = start, 1
        while below is None and (w := widths.valid(above - step, -1)) is not None:
            below, above = (w, above) if widths.counts[w] < budget else (None, w)
            step *= 2
    else:
        below, step = start, 1
        while above is None and below < MAX_WIDTH and (w := widths.valid(min(below + step, MAX_WIDTH), 1)) is not None:
            below, above = (below, w) if widths.counts[w] >= budget else (w, None)
            step *= 2
    return below, above


def _bisect(widths: _Widths, below: int | None, above: int | None, budget: int) -> tuple[int | None, int | None]:
    """Narrow the bracket to neighbouring valid widths: ``below`` the largest with fewer than ``budget`` parameters,
    ``above`` the smallest with at least that many (None stays None where the bracket is open)."""
    while above is not None:
        low = below or 0
        w = widths.valid((low + above) // 2, 1)
        if w is None or not low < w < above:
            w = widths.valid((low + above) // 2, -1)
            if w is None or w <= low:
                break
        below, above = (below, w) if widths.counts[w] >= budget else (w, above)
    return below, above


def _solve_quadratic(points: list[tuple[int, int]], budget: int) -> int:
    """The width (>= 1) where the curve through ``points`` (width, parameters) reaches ``budget``: a quadratic
    through three points, a line through two; the nearest probe's width if the curve never gets there."""
    import numpy as np

    ws, ps = np.array(points, dtype=float).T
    coefficients = np.polyfit(ws, ps, min(2, len(ws) - 1)) if len(ws) > 1 else np.array([ps[0]])
    coefficients[-1] -= budget
    roots = [r.real for r in np.roots(coefficients) if abs(r.imag) < 1e-9 and r.real > 0] if len(ws) > 1 else []
    if not roots:
        return int(min(points, key=lambda p: abs(p[1] - budget))[0])
    return max(1, int(round(min(roots))))
