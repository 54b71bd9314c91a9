"""Fair hyperparameter tuning with keras-tuner: every model, the same trials, the same steps per trial.

A registered model becomes a keras-tuner ``HyperModel`` (``RegistryHyperModel``): its search space is the
learning rate (always, log-uniform) plus the ``space`` its registry entry declares. Each trial is one
ordinary run through the harness (``bench.runner.run.run``), written as a run record to
``<results>/<sweep>/`` with a ``tune`` field naming its study and trial; the objective is the final
validation score (normalised: 0 memoryless, 1 perfect). A study is one (task, task parameters, model):
its keras-tuner state lives in ``<results>/<sweep>/keras-tuner/<study>/`` (so a search resumes after an
interruption) and its best settings in ``<results>/<sweep>/tuned/<study>.json``, which ``tuned_params``
finds for a sweep that says ``hp: tuned``.

Distributed: start the same ``bench tune`` command in several processes with ``KERASTUNER_TUNER_ID``
(``chief`` for one, ``tuner0``, ``tuner1`` … for the others), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``; the chief serves the oracle, the workers run the trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import keras_tuner

import models
import tasks
from bench.core.check import FLAGS, check
from bench.core.errors import SpecError
from bench.core.spec import RunSpec, TrainConfig
from bench.core.widths import BUDGET
from bench.runner import record
from bench.sweep.grid import ALGORITHMS, LR_RANGE
from bench.tune.stored import TIE

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

    @property
    def name(self) -> str:
        """``<task>-<length>-<model>-<hash>``: readable, and distinct for every other setting of the study."""
        extra = [list(self.search) if self.search is not None else None, self.grid] \
            if self.search is not None or self.grid else []
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
        return hp.Choice(name, domain)
    low, high = domain
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return hp.Int(name, low, high)
    return hp.Float(name, float(low), float(high))


class RegistryHyperModel(keras_tuner.HyperModel):
    """A registered model as a keras-tuner HyperModel: ``build(hp)`` declares the space and builds the Keras
    model; ``fit(hp)`` trains it the harness' way (``run(spec)``) and returns the trial's record."""

    def __init__(self, study: Study):
        super().__init__(name=study.model)
        self.study = study

    def values(self, hp: keras_tuner.HyperParameters) -> tuple[dict, float]:
        """Declare (first call) or read the trial's values: (model hyperparameters, learning rate)."""
        lr = hp.Float(LR, *self.study.lr_range, sampling="log", step=GRID_STEP if self.study.grid else None)
        space = search_space(self.study.model, self.study.fixed, self.study.search)
        params = {k: declare(hp, k, v) for k, v in space.items()}
        return {**self.study.fixed, **params}, lr

    def spec(self, hp: keras_tuner.HyperParameters) -> RunSpec:
        params, lr = self.values(hp)
        s = self.study
        return RunSpec(s.task, s.model, s.task_params, params, replace(s.train, lr=lr), s.seed, s.sweep)

    def build(self, hp):
        r = self.spec(hp).resolved()
        return models.create(r.model, tasks.create(r.task, **r.task_params).signature, **r.model_params)

    def fit(self, hp, model=None, results: str | Path = "results", trial_id: str | None = None, **_):
        """Run the trial (or reuse its stored record: the same values make the same run) and store its record."""
        spec = self.spec(hp)
        path = record.path_for(results, spec.sweep, spec.run_id)
        if path.exists():
            rec = record.read(path)
        else:
            import keras

            from bench.runner.run import run

            keras.backend.clear_session()
            rec = run(spec)
        rec["tune"] = {"study": self.study.name, "trial": trial_id, "tuner": os.environ.get("KERASTUNER_TUNER_ID"),
                       "objective": OBJECTIVE.name,
                       "val_score": objective(rec, spec)}
        record.write(rec, results)
        return rec


def objective(rec: dict, spec: RunSpec) -> float | None:
    """The final validation score, normalised (0 memoryless, 1 perfect); a diverged run scores at most 0."""
    task = tasks.create(spec.task, **spec.task_params)
    finite = [h["val"] for h in rec.get("history") or [] if h.get("val") is not None and math.isfinite(h["val"])]
    if rec["status"] == "diverged":
        return min(0.0, task.score(finite[-1])) if finite else 0.0
    if rec["status"] not in ("ok", "timeout") or not finite:
        return None
    return task.score(finite[-1])


class RecordTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A keras-tuner tuner whose trials are harness runs: no model files are kept, the records are the output."""

    def __init__(self, study: Study, oracle, results: str | Path, **kwargs):
        self.results = Path(results)
        super().__init__(oracle, RegistryHyperModel(study), directory=str(self.results / study.sweep / "keras-tuner"),
                         project_name=study.name, overwrite=False, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        rec = self.hypermodel.fit(trial.hyperparameters, results=self.results, trial_id=trial.trial_id)
        score = rec["tune"]["val_score"]
        value = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in trial.hyperparameters.values.items())
        print(f"{self.hypermodel.study.name} trial {trial.trial_id}: {value}: {rec['status']}, val score "
              f"{'-' if score is None else f'{score:.3f}'}", flush=True)
        if score is None:
            raise keras_tuner.errors.FailedTrialError(f"run {rec['run_id']} {rec['status']}: {rec.get('error')}")
        return {OBJECTIVE.name: score}

    def save_model(self, trial_id, model, step=0):
        pass  # the record is the trial's output

    def load_model(self, trial):
        raise NotImplementedError("tuning trials keep records, not models: rebuild from the tuned settings")


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
    if algorithm not in ALGORITHMS:
        raise SpecError(f"unknown tuning algorithm {algorithm!r}; valid: {', '.join(ALGORITHMS)}")
    cls = {"random": keras_tuner.oracles.RandomSearchOracle, "grid": keras_tuner.oracles.GridSearchOracle,
           "bayesian": keras_tuner.oracles.BayesianOptimizationOracle}[algorithm]
    return cls(objective=OBJECTIVE, max_trials=trials, seed=seed, max_consecutive_failed_trials=trials)


def is_worker() -> bool:
    """A distributed worker (not the chief, not a lone process): it runs trials but writes no summary."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    return "KERASTUNER_ORACLE_IP" in os.environ and tuner_id not in (None, "chief")


def tune(study: Study, trials: int, results: str | Path = "results", algorithm: str = "random") -> dict | None:
    """Search ``trials`` settings for ``study`` (resuming a stored search); return and store the best, or
    None in a distributed worker (the chief stores it)."""
    if not isinstance(trials, int) or trials < 1:
        raise SpecError(f"trials must be an integer >= 1, got {trials!r}")
    validate(study)
    tuner = RecordTuner(study, make_oracle(algorithm, trials, study.seed), results)
    tuner.search(verbose=0)  # one line per trial instead (``run_trial``)
    if is_worker():
        return None
    return store_best(study, tuner.oracle, results)


def store_best(study: Study, oracle, results: str | Path) -> dict | None:
    """Write ``<results>/<sweep>/tuned/<study>.json``: the best trial's settings and how they were found.

    The best has the highest validation score; trials within ``TIE`` of it tie, and the one whose run solved
    the task in the fewest steps wins (a tie that nothing solved keeps keras-tuner's pick)."""
    done = [t for t in oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
    best = oracle.get_best_trials(1)
    if not best:
        return None
    hypermodel = RegistryHyperModel(study)
    ties = [t for t in done if t.score >= best[0].score - TIE]
    trial = min(ties, key=lambda t: (_steps_to_solve(hypermodel.spec(t.hyperparameters), results),
                                     t is not best[0]))
    asked = hypermodel.spec(trial.hyperparameters)
    spec = asked.resolved()
    out = {"task": spec.task, "task_params": spec.task_params, "model": spec.model,
           "model_params": asked.model_params, "resolved_params": spec.model_params, "fixed": study.fixed,
           "train": {"lr": spec.train.lr},
           "val_score": trial.score, "trial": trial.trial_id, "run_id": spec.run_id,
           "trials": len(done), "steps": study.train.steps, "budget": vars_of(study.train), "seed": study.seed,
           "study": study.name, "sweep": study.sweep,
           "space": {k: repr(v) for k, v in search_space(study.model, study.fixed, study.search).items()},
           "lr_range": list(study.lr_range), "lr_grid": study.grid}
    path = Path(results) / study.sweep / "tuned" / f"{study.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return out


def _steps_to_solve(spec: RunSpec, results: str | Path) -> float:
    path = record.path_for(results, spec.sweep, spec.run_id)
    try:
        steps = (record.read(path).get("metrics") or {}).get("steps_to_solve")
    except (OSError, ValueError):
        return math.inf
    return steps if isinstance(steps, (int, float)) else math.inf


def studies(sweep, options: dict) -> list[Study]:
    """A sweep's tuning (its ``tune`` section, ``options``): one study per (task, model point, training) of the
    sweep, at the section's length for that task (default: the task's shortest in the sweep)."""
    train = {"steps": options["steps"], **({"eval_every": options["eval_every"]} if "eval_every" in options else {})}
    lengths = options.get("lengths") or {}
    out = {}
    for spec in sorted(sweep.specs, key=lambda s: s.task_params.get("length", 0)):
        length = lengths.get(spec.task, spec.task_params.get("length"))
        task_params = {**spec.task_params, **({"length": length} if length is not None else {})}
        config = TrainConfig(**{k: v for k, v in {**spec.train, **train}.items() if k != LR})
        study = Study(spec.task, task_params, spec.model, config, dict(spec.model_params), options.get("seed", 0),
                      f"{sweep.name}-tune", tuple(options.get("lr_range", LR_RANGE)),
                      tuple(options["search"]) if "search" in options else None,
                      options.get("algorithm", "random") == "grid")
        out.setdefault(study.name, study)
    return list(out.values())


def lr_range(text: str | None) -> tuple[float, float]:
    """``--lr-range LOW,HIGH`` (None: the default range)."""
    try:
        low, high = (float(v) for v in text.split(",")) if text else LR_RANGE
    except ValueError:
        raise SpecError(f"--lr-range expects LOW,HIGH, got {text!r}") from None
    if not 0 < low < high:
        raise SpecError(f"--lr-range needs 0 < LOW < HIGH, got {text!r}")
    return low, high


def studies_of(task: str, task_params: dict, names: list[str], train: dict, fixed: dict, seed: int, sweep: str,
               lr: tuple[float, float], algorithm: str) -> list[Study]:
    """``bench tune --task … --model a,b``: one study per model, trained as ``train`` asks (lr is searched)."""
    if LR in train:
        raise SpecError(f"training option {LR!r} cannot be set here (lr is searched; --lr-range sets its range); "
                        f"valid: {', '.join(k for k in TrainConfig.keys() if k != LR)}")
    config = TrainConfig.of(train, "--train")
    return [Study(task, task_params, name, config, fixed, seed, sweep, lr, grid=algorithm == "grid") for name in names]


def run_studies(studies: list[Study], trials: int, results: str | Path, algorithm: str) -> int:
    """Tune each study in turn, every bad value reported before any trial trains; print each best as JSON."""
    for study in studies:
        validate(study)
    for study in studies:
        best = tune(study, trials, results, algorithm)
        if best is not None:
            print(json.dumps({k: best[k] for k in ("study", "model", "val_score", "trials", "model_params", "train")}),
                  flush=True)
    return 0


def from_sweep(sweep_ref: str, results: str | Path, workers: int, shard: str | None, command: list[str],
               resume: str) -> int:
    """``bench tune --from SWEEP``: every study of the sweep's ``tune:`` section, ``workers`` processes at a time,
    each ``command --shard i/N`` (one share of the studies)."""
    from bench.sweep import grid

    plan = grid.load(sweep_ref, results)
    if not plan.tune:
        raise SpecError(f"sweep {plan.name!r} has no tune: section (trials, steps, lengths ...) to tune from")
    options, every = plan.tune, studies(plan, plan.tune)
    algorithm = options.get("algorithm", "random")
    if shard:
        index, count = (int(v) for v in shard.split("/"))
        return run_studies(every[index::count], options["trials"], results, algorithm)
    for study in every:
        validate(study)
    workers = min(workers, len(every))
    print(f"bench tune: {len(every)} studies of sweep {plan.name} ({options['trials']} trials of "
          f"{options['steps']} steps each), {workers} worker{'s' * (workers != 1)}; results in "
          f"{Path(results) / (plan.name + '-tune')}", flush=True)
    if workers == 1:
        return run_studies(every, options["trials"], results, algorithm)
    children = [subprocess.Popen([*command, "--shard", f"{i}/{workers}"]) for i in range(workers)]
    try:
        return max(child.wait() for child in children)
    except KeyboardInterrupt:
        for child in children:
            child.terminate()
        print(f"bench tune: stopped; finished trials are kept; resume with: {resume}", file=sys.stderr)
        return 130
