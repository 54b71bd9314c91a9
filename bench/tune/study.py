"""What one tuning study is: a registered model on a task, its search space (the learning rate, always, plus the
``space`` its registry entry declares) as a keras-tuner ``HyperModel`` (``RegistryHyperModel``), the objective
(the final validation score: 0 memoryless, 1 perfect), the keras-tuner oracle that proposes its trials, and the
studies of a sweep's ``tune:`` section or of ``bench tune --task … --model …``."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace

import keras_tuner

import models
import tasks
from bench.core.check import FLAGS, check
from bench.core.errors import SpecError
from bench.core.spec import RunSpec, TrainConfig
from bench.core.widths import BUDGET
from bench.sweep.grid import ALGORITHMS, LR_RANGE, check_lr_range
from bench.tune.stored import is_tuned

LR = "lr"  # the learning rate's name in every search space
OBJECTIVE = keras_tuner.Objective("val_score", direction="max")
GRID_STEP = 10 ** 0.5  # the grid's learning rates: two per decade (1e-3, 3.2e-3, 1e-2, ...)


@dataclass(frozen=True)
class Study:
    """What one search tunes: a model on a task, trained the same way in every trial."""

    task: str
    task_params: dict
    model: str
    train: TrainConfig
    fixed: dict  # model hyperparameters held fixed (not searched)
    seed: int = 0
    sweep: str = "tune"
    lr_range: tuple[float, float] = LR_RANGE
    search: tuple[str, ...] | None = None  # the model hyperparameters searched (None: its declared space)
    grid: bool = False  # learning rates on a grid (GRID_STEP apart) instead of a continuous range
    lrs: tuple[float, ...] | None = None  # the grid's learning rates as points (``tune.lrs``), tried in this order
    extend: bool = False  # with ``lrs``: a best at an edge tries one rate GRID_STEP beyond it (``trials.extension``)

    @property
    def name(self) -> str:
        """``<task>-<length>-<model>-<hash>``: readable, and distinct for every other setting of the study."""
        extra = [list(self.search) if self.search is not None else None, self.grid] \
            if self.search is not None or self.grid else []
        extra += [list(self.lrs), self.extend] if self.lrs else []  # names of studies without them: as before
        text = json.dumps([self.task, self.task_params, self.model, self.fixed, vars_of(self.train), self.seed,
                           list(self.lr_range), *extra], sort_keys=True, default=str)
        length = self.task_params.get("length", "")
        return f"{self.task}-{length}-{self.model}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def vars_of(train: TrainConfig) -> dict:
    return {k: getattr(train, k) for k in TrainConfig.keys()}


def search_space(model: str, fixed: dict | None = None, search: tuple[str, ...] | None = None) -> dict:
    """The model's declared space less the hyperparameters held fixed (and, if ``search`` names some, less those
    it does not name): ``{hp: [choices] | (low, high)}``."""
    entry = models.entry(model)
    if LR in entry.space:
        raise SpecError(f"model {model!r}: {LR!r} is the tuner's own learning rate, not a model hyperparameter")
    fixed = dict(fixed or {})
    if BUDGET in fixed:
        fixed[entry.width] = fixed[BUDGET]  # a parameter budget sets the width
    return {k: v for k, v in entry.space.items() if k not in fixed and (search is None or k in search)}


def declare(hp: keras_tuner.HyperParameters, name: str, domain) -> object:
    """One hyperparameter: a list is a choice, an int pair an integer range, a float pair a float range."""
    if isinstance(domain, list):
        value = hp.Choice(name, domain)
        return bool(value) if all(isinstance(v, bool) for v in domain) else value  # keras-tuner gives 1 for True
    low, high = domain
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return hp.Int(name, low, high)
    return hp.Float(name, float(low), float(high))


class RegistryHyperModel(keras_tuner.HyperModel):
    """A registered model as a keras-tuner HyperModel: ``values(hp)`` declares the space (or reads a trial's values),
    ``spec(hp)`` is the trial's training run. The harness builds and trains the model in a worker process, so
    ``build`` only declares the space (keras-tuner calls it to learn the space)."""

    def __init__(self, study: Study):
        super().__init__(name=study.model)
        self.study = study

    def values(self, hp: keras_tuner.HyperParameters) -> tuple[dict, float]:
        """Declare (first call) or read the trial's values: (model hyperparameters, learning rate)."""
        lr = hp.Choice(LR, list(self.study.lrs)) if self.study.lrs else \
            hp.Float(LR, *self.study.lr_range, sampling="log", step=GRID_STEP if self.study.grid else None)
        space = search_space(self.study.model, self.study.fixed, self.study.search)
        params = {k: declare(hp, k, v) for k, v in space.items()}
        return {**self.study.fixed, **params}, lr

    def spec(self, hp: keras_tuner.HyperParameters) -> RunSpec:
        params, lr = self.values(hp)
        s = self.study
        return RunSpec(s.task, s.model, s.task_params, params, replace(s.train, lr=lr), s.seed, s.sweep)

    def build(self, hp):
        self.values(hp)


def objective(rec: dict, task) -> float | None:
    """The final validation score of a trial's record, normalised by its ``task`` (0 memoryless, 1 perfect); a
    diverged run scores at most 0; None for a run that did not train (failed, killed)."""
    finite = [h["val"] for h in rec.get("history") or [] if h.get("val") is not None and math.isfinite(h["val"])]
    if rec["status"] == "diverged":
        return min(0.0, task.score(finite[-1])) if finite else 0.0
    if rec["status"] not in ("ok", "timeout") or not finite:
        return None
    return task.score(finite[-1])


def validate(study: Study) -> None:
    """Raise TaskError/ModelError/SpecError for a bad study before anything trains (its default trial resolves)."""
    unknown = sorted(set(study.search or ()) - set(models.entry(study.model).space) - {LR})
    if unknown:
        raise SpecError(f"model {study.model!r} does not declare {unknown[0]!r} in its search space; declared: "
                        f"{', '.join(models.entry(study.model).space) or 'nothing'} (and {LR}, always)")
    search_space(study.model, study.fixed, study.search)
    spec = RegistryHyperModel(study).spec(keras_tuner.HyperParameters())
    check([spec], FLAGS)
    spec.resolved()  # sizes a parameter budget's width: one that no width meets is an error now


def make_oracle(algorithm: str, trials: int, seed: int):
    """A fresh keras-tuner oracle: the same proposals, in the same order, every time it is made (keras-tuner draws a
    random seed for seed 0, so the study's seed is offset by one); a failed trial never ends the search."""
    if algorithm not in ALGORITHMS:
        raise SpecError(f"unknown tuning algorithm {algorithm!r}; valid: {', '.join(ALGORITHMS)}")
    cls = {"random": keras_tuner.oracles.RandomSearchOracle, "grid": keras_tuner.oracles.GridSearchOracle,
           "bayesian": keras_tuner.oracles.BayesianOptimizationOracle}[algorithm]
    oracle = cls(objective=OBJECTIVE, max_trials=trials, seed=seed + 1, max_consecutive_failed_trials=None)
    oracle.verbose = 0  # the driver prints one line per trial
    return oracle


def studies(sweep, options: dict) -> list[Study]:
    """A sweep's tuning (its ``tune`` section, ``options``): one study per (task, model point, training) of the
    sweep, at the section's length for that task (default: the task's shortest in the sweep); only the section's
    ``tasks`` and ``models`` where it names them."""
    train = {"steps": options["steps"], **({"eval_every": options["eval_every"]} if "eval_every" in options else {})}
    lengths = options.get("lengths") or {}
    out = {}
    for spec in sorted(sweep.specs, key=lambda s: s.task_params.get("length", 0)):
        if not is_tuned(options, spec):
            continue
        length = lengths.get(spec.task, spec.task_params.get("length"))
        task_params = {**spec.task_params, **({"length": length} if length is not None else {})}
        config = TrainConfig(**{k: v for k, v in {**spec.train, **train}.items() if k != LR})
        study = Study(spec.task, task_params, spec.model, config, dict(spec.model_params), options.get("seed", 0),
                      f"{sweep.name}-tune", tuple(options.get("lr_range", LR_RANGE)),
                      tuple(options["search"]) if "search" in options else None,
                      options.get("algorithm", "random") == "grid" and "lrs" not in options,
                      tuple(options["lrs"]) if "lrs" in options else None, options.get("extend", False))
        out.setdefault(study.name, study)
    return list(out.values())


def lr_range(text: str | None) -> tuple[float, float]:
    """``--lr-range LOW,HIGH`` (None: the default range)."""
    try:
        low, high = (float(v) for v in text.split(",")) if text else LR_RANGE
    except ValueError:
        raise SpecError(f"--lr-range expects LOW,HIGH, got {text!r}") from None
    return check_lr_range((low, high), "--lr-range")


def studies_of(task: str, task_params: dict, names: list[str], train: dict, fixed: dict, seed: int, sweep: str,
               lr: tuple[float, float], algorithm: str) -> list[Study]:
    """``bench tune --task … --model a,b``: one study per model, trained as ``train`` asks (lr is searched)."""
    if LR in train:
        raise SpecError(f"training option {LR!r} cannot be set here (lr is searched; --lr-range sets its range); "
                        f"valid: {', '.join(k for k in TrainConfig.keys() if k != LR)}")
    config = TrainConfig.of(train, "--train")
    return [Study(task, task_params, name, config, fixed, seed, sweep, lr, grid=algorithm == "grid") for name in names]
