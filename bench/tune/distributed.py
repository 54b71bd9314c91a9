"""Distributed tuning, keras-tuner's way: start the same ``bench tune`` command in several processes with
``KERASTUNER_TUNER_ID`` (``chief`` for one, ``tuner0``, ``tuner1`` … for the others), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``, all on one results folder. The chief serves a fresh oracle (its keras-tuner files in a
temporary folder) and stores each study's best when the search ends; each worker asks it for trials and runs each
through the sweep executors (a fresh worker process, as every run), writing its record, or answers with the stored
record where the trial was run before: the oracle, fresh, proposes the same trials again, so a search resumes from
its records here too.

A worker waits at most ``BENCH_CHIEF_WAIT_S`` seconds (default ``CHIEF_WAIT_S``) for any answer of the chief, so a
chief that died or never started ends the worker with one line instead of a wait without end.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

import keras_tuner

import tasks
from bench.core.errors import SpecError
from bench.runner import record
from bench.sweep import executors
from bench.tune.study import OBJECTIVE, RegistryHyperModel, Study, make_oracle, objective
from bench.tune.trials import Trial, store_best, summary

CHIEF_WAIT_S = 300.0  # keras-tuner's chief may take minutes to start (its own client waits an hour)


def active() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ


def is_chief() -> bool:
    return os.environ.get("KERASTUNER_TUNER_ID") == "chief"


def chief_wait() -> float:
    """``BENCH_CHIEF_WAIT_S``, else ``CHIEF_WAIT_S``: seconds a worker waits for any answer of the chief."""
    text = os.environ.get("BENCH_CHIEF_WAIT_S", str(CHIEF_WAIT_S))
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SpecError(f"BENCH_CHIEF_WAIT_S must be a finite number of seconds > 0, got {text!r}")
    return value


class RecordTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A keras-tuner tuner whose trials are harness runs, each in a fresh worker process; the records are the
    output (no model files are kept)."""

    def __init__(self, study: Study, oracle, results: str | Path, folder: str, plugins=()):
        self.results, self.plugins = Path(results), list(plugins)
        self.task = tasks.create(study.task, **study.task_params)
        super().__init__(oracle, RegistryHyperModel(study), directory=folder, project_name=study.name)

    def run_trial(self, trial, *args, **kwargs):
        spec = self.hypermodel.spec(trial.hyperparameters)
        path = record.path_for(self.results, spec.sweep, spec.run_id)
        if path.exists():
            rec = record.read(path)
        else:
            rec = next(executors.local([spec], workers=1, plugins=self.plugins))
            rec = {**rec, "tune": Trial(self.hypermodel.study, int(trial.trial_id), spec).tune_field(rec)}
            record.write(rec, self.results)
        score = objective(rec, self.task)
        print(f"{self.hypermodel.study.name} trial {int(trial.trial_id)}: {rec['status']}, val score "
              f"{'-' if score is None else f'{score:.3f}'}", flush=True)
        if score is None:
            raise keras_tuner.errors.FailedTrialError(f"run {rec['run_id']} {rec['status']}: {rec.get('error')}")
        return {OBJECTIVE.name: score}

    def save_model(self, trial_id, model, step=0):
        pass  # the record is the trial's output

    def load_model(self, trial):
        raise NotImplementedError("tuning trials keep records, not models: rebuild from the tuned settings")


def search(every: list[Study], count: int, results: str | Path, algorithm: str, plugins=()) -> int:
    """This process's part of a distributed search of every study in turn: the chief serves and stores each best,
    a worker runs trials; 1 (one line) if the chief does not answer within ``chief_wait()``."""
    import grpc
    from keras_tuner.src.distribute import oracle_client  # its wait for the chief: bounded here

    oracle_client.TIMEOUT = wait = chief_wait()
    for study in every:
        with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
            tuner = RecordTuner(study, make_oracle(algorithm, count, study.seed), results, folder, plugins)
            try:
                tuner.search(verbose=0)
            except grpc.RpcError as e:
                where = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
                print(f"bench tune: error: the tuning chief at {where} did not answer within {wait:g} s "
                      f"({type(e).__name__}); start it with KERASTUNER_TUNER_ID=chief (finished trials are kept)",
                      file=sys.stderr)
                return 1
            best = store_best(study, served(study, tuner.oracle, results), results) if is_chief() else None
            if best is not None:
                print(summary(best), flush=True)
    return 0


def served(study: Study, oracle, results: str | Path) -> list[Trial]:
    """The chief's trials in order: each with its record where this folder holds it, else with the score a
    worker reported (a worker on another filesystem)."""
    hypermodel, out = RegistryHyperModel(study), []
    for trial in sorted(oracle.trials.values(), key=lambda t: int(t.trial_id)):
        spec = hypermodel.spec(trial.hyperparameters)
        path = record.path_for(results, spec.sweep, spec.run_id)
        reported = {"task": spec.task, "task_params": spec.task_params, "model": spec.model, "status": "ok",
                    "train": {"lr": spec.train.get("lr")}, "metrics": {}}
        rec = record.read(path) if path.exists() else reported if trial.score is not None else None
        out.append(Trial(study, int(trial.trial_id), spec, rec, trial.score))
    return out
