"""A study's trials, from its records: keras-tuner's oracle proposes them, the records answer them (``known``); the
best is picked from those records and stored for ``hp: tuned`` (``store_best``).

The records are a search's only state. The oracle is made afresh every time and asked for its proposals in order;
each proposal whose run is stored is answered with its record's score before the next is asked for, so the oracle
reaches the state it had when it proposed that run. keras-tuner's own files go to a temporary folder and are
thrown away: an interrupted search resumes where its records end (every grid point once, the same best), and a
search asked for more trials later continues the same sequence of proposals.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import keras_tuner

import tasks
from bench.core.spec import RunSpec
from bench.tune import table
from bench.tune.study import GRID_STEP, OBJECTIVE, RegistryHyperModel, Study, objective, make_oracle, search_space, \
    vars_of

PROPOSER = "bench"  # the tuner id the trials are proposed for (keras-tuner keeps one trial per id in flight)
SHOWN = ("study", "model", "val_score", "trials", "model_params", "train")  # of a best, in its summary


@dataclass(frozen=True)
class Trial:
    """One trial of a study: its place in the search (0, 1 …), its training run, and its stored record and score
    (None: not run yet, or it did not train)."""

    study: Study
    index: int
    spec: RunSpec
    record: dict | None = None
    score: float | None = None
    extends: str | None = None  # an extension trial: the grid's edge (``low``, ``high``) it goes beyond

    def tune_field(self, rec: dict) -> dict:
        """The ``tune`` field of the trial's record ``rec``: its study, place and objective (and the edge an
        extension trial extends)."""
        score = objective(rec, tasks.create(self.spec.task, **self.spec.task_params))
        return {"study": self.study.name, "trial": str(self.index), "tuner": os.environ.get("KERASTUNER_TUNER_ID"),
                "objective": OBJECTIVE.name, "val_score": score, **({"extends": self.extends} if self.extends else {})}


def known(study: Study, count: int, algorithm: str, stored: dict[str, dict]) -> list[Trial]:
    """The first ``count`` trials of ``study`` as far as ``stored`` (records by run id) lets them be known.

    Grid and random proposals do not depend on scores, so all ``count`` are known at once (a trial not run yet
    counts as failed to the oracle, which only needs it ended to propose the next); a Bayesian search is known up
    to its first trial not run yet."""
    hypermodel = RegistryHyperModel(study)
    task = tasks.create(study.task, **study.task_params)
    out: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
        oracle = make_oracle(algorithm, count, study.seed)
        oracle._set_project_dir(folder, study.name)  # keras-tuner's files (BaseTuner sets this): thrown away
        space = keras_tuner.HyperParameters()
        hypermodel.values(space)
        oracle.update_space(space)
        while len(out) < count:
            proposal = oracle.create_trial(PROPOSER)
            if proposal.status != "RUNNING":  # the space is exhausted
                break
            spec = hypermodel.spec(proposal.hyperparameters)
            rec = stored.get(spec.run_id)
            out.append(Trial(study, len(out), spec, rec, objective(rec, task) if rec else None))
            if rec is None and algorithm == "bayesian":
                break
            if out[-1].score is not None:
                oracle.update_trial(proposal.trial_id, {OBJECTIVE.name: out[-1].score})
            proposal.status = "COMPLETED" if out[-1].score is not None else "FAILED"
            oracle.end_trial(proposal)
    more = extension(study, out, stored)
    return out + ([more] if more else [])


def extension(study: Study, grid: list[Trial], stored: dict[str, dict]) -> Trial | None:
    """A study with ``extend``, once every point of its ``lrs`` is stored and the best of them is the lowest or
    highest: one more trial, the best's settings at a rate half a decade (``GRID_STEP``) beyond that edge. Once
    only: a best still at the edge after it is recorded (``store_best``), not chased further."""
    if not (study.extend and study.lrs) or len(grid) < len(study.lrs) or any(t.record is None for t in grid):
        return None
    df = table.frame(_rows(study, grid))
    edge = table.edges(df).edge.iloc[0] if not df.empty else None
    if edge is None:
        return None
    best = _best(df, grid)
    lr = study.lrs[0] / GRID_STEP if edge == "low" else study.lrs[-1] * GRID_STEP
    spec = replace(best.spec, train={**best.spec.train, "lr": lr})
    rec = stored.get(spec.run_id)
    task = tasks.create(study.task, **study.task_params)
    return Trial(study, len(grid), spec, rec, objective(rec, task) if rec else None, edge)


def _rows(study: Study, found: list[Trial]) -> list[dict]:
    """The stored trials' records with their place in the study, as ``table.frame`` reads them."""
    return [{**t.record, "tune": {"study": study.name, "trial": str(t.index), "val_score": t.score,
                                  **({"extends": t.extends} if t.extends else {})}}
            for t in found if t.record is not None]


def _best(df, found: list[Trial]) -> Trial:
    return {t.index: t for t in found}[int(table.best(df).iloc[0].trial)]


def store_best(study: Study, found: list[Trial], results: str | Path) -> dict | None:
    """Write ``<results>/<sweep>/tuned/<study>.json``: the best of the trials ``found`` (``bench.tune.table.best``),
    as its record says it trained, and how it was found; None if no trial scored. It is written only where it
    changes: the same records give the same file, whatever changed in the code since."""
    df = table.frame(_rows(study, found))
    if df.empty or df.val_score.isna().all():
        return None
    trial = _best(df, found)
    ran = trial.record if "model_params" in trial.record else trial.spec.resolved().fields()  # what it trained
    out = {"task": study.task, "task_params": ran["task_params"], "model": study.model,
           "model_params": trial.spec.model_params, "resolved_params": ran["model_params"], "fixed": study.fixed,
           "train": {"lr": ran["train"]["lr"]},
           "val_score": trial.score, "trial": str(trial.index), "run_id": trial.spec.run_id,
           "trials": sum(t.score is not None for t in found), "steps": study.train.steps,
           "budget": vars_of(study.train), "seed": study.seed, "study": study.name, "sweep": study.sweep,
           "space": {k: repr(v) for k, v in search_space(study.model, study.fixed, study.search).items()},
           "lr_range": list(study.lr_range), "lr_grid": study.grid}
    if study.lrs:  # where the grid's best lay, before and after its extension (``table.edges``)
        where = table.edges(df).iloc[0]
        out.update({"lrs": list(study.lrs), "extend": study.extend, "edge_before_extension": where.edge,
                    "extended_to": next((t.spec.train["lr"] for t in found if t.extends), None),
                    "edge_after_extension": where.edge_after})
    text = json.dumps(out, indent=1, sort_keys=True, default=str) + "\n"
    path = Path(results) / study.sweep / "tuned" / f"{study.name}.json"
    if not (path.is_file() and path.read_text() == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return out


def summary(best: dict) -> str:
    """A stored best in one line of JSON: its study, model, score, trials and settings."""
    return json.dumps({k: best[k] for k in SHOWN})
