"""The tuning section of a report: from the trial records ``bench tune`` wrote (records with a ``tune`` field).

Three parts, each from records alone: best validation score against trials per model (is the search
budget enough, and equal?), validation score against learning rate (where each model trains at all), and
the settings chosen per (task, task parameters, model). Call ``section(records, folder)`` and append the
lines it returns to index.md; it returns [] when no record is a tuning trial.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bench.report import figures, tables
from bench.tune import table as trials
from bench.tune.stored import TIE

CAPTION_TRIALS = ("Best validation score so far against trials, per model (0: memoryless baseline, 1: perfect).",
                  "Every model gets the same trials and steps per trial; a curve still rising wants more trials.")
CAPTION_LR = ("Validation score of every trial against its learning rate (log), per model.",
              "The learning rate alone can decide whether a model solves a task (the README's defaults: a plain "
              "Keras LSTM on adding at 1e-3 against 3e-3).")


def best_vs_trials(df: pd.DataFrame, colours: dict, folder: Path) -> list[str]:
    panels = sorted(df.panel.unique())
    fig, axes = figures.grid([0], panels)
    for ax, panel in zip(axes[0], panels):
        data = df[df.panel == panel]
        for model, group in data.groupby("model", sort=True):
            ax.plot(group.n, group.best, marker="o", ms=3, color=colours[model], label=model)
        ax.set(title=panel, xlabel="trials", ylabel="best validation score")
        ax.legend(fontsize=7)
    return figures.save(fig, folder, "tune_best_vs_trials")


def score_vs_lr(df: pd.DataFrame, colours: dict, folder: Path) -> list[str]:
    panels = sorted(df.panel.unique())
    fig, axes = figures.grid([0], panels)
    for ax, panel in zip(axes[0], panels):
        data = df[(df.panel == panel) & df.val_score.notna()]
        if data.empty:
            figures.no_data(ax)
            continue
        for model, group in data.groupby("model", sort=True):
            ax.scatter(group.lr, group.val_score, s=14, color=colours[model], label=model)
        ax.set_xscale("log")
        ax.set(title=panel, xlabel="learning rate", ylabel="validation score")
        ax.legend(fontsize=7)
    return figures.save(fig, folder, "tune_score_vs_lr")


def edge_line(df: pd.DataFrame) -> str:
    """How often a grid edge won (``bench.tune.table.edges``): before any extension, and after it."""
    at = trials.edges(df)
    before = at.edge.fillna("")
    line = (f"The best learning rate was at an edge of the grid in {int((before != '').sum())} of {len(at)} searches "
            f"(the lowest in {int((before == 'low').sum())}, the highest in {int((before == 'high').sum())})")
    if not at.extended.any():
        return line + ": an edge that wins says the best rate may lie beyond the grid."
    return (line + f"; {int(at.extended.sum())} were extended half a decade past it, after which the new edge won in "
                   f"{int(at.edge_after.notna().sum())}.")


def chosen(df: pd.DataFrame) -> pd.DataFrame:
    """The best trial of every study (``bench tune``'s rule: the best validation score, trials within ``TIE`` of it
    tying, the one that solved in fewest steps winning): its settings, validation score, and test score."""
    best = trials.best(df)
    counts = df.groupby("study").size()
    table = pd.DataFrame({
        "task": best.panel, "model": best.model, "trials": [int(counts[s]) for s in best.study],
        "steps/trial": best.steps.astype(str), "lr": [f"{v:.2g}" for v in best.lr],
        "lr at an edge": list(trials.edges(df).set_index("study").edge.reindex(best.study).fillna("")),
        "hyperparameters": best.model_params, "val score": [f"{v:.3f}" for v in best.val_score],
        "test score": [tables.NONE if v is None or math.isnan(v) else f"{v:.3f}" for v in best.test_score]})
    return table.sort_values(["task", "model"], kind="stable").set_index(["task", "model"])


def section(records: list[dict], folder: Path | str) -> list[str]:
    """index.md lines of the tuning section (figures written to ``folder``); [] without tuning trials."""
    df = trials.frame(records)
    if df.empty:
        return []
    folder = Path(folder)
    colours = figures.palette(df.model)
    lines = ["# Tuning", "", f"{len(df)} trials in {df.study.nunique()} searches (keras-tuner; the learning rate, "
             "and the model's declared hyperparameters where the search included them).", ""]
    with plt.rc_context(figures.STYLE):
        lines += figures.section("Best score against trials", best_vs_trials(df, colours, folder), CAPTION_TRIALS)
        lines += figures.section("Score against learning rate", score_vs_lr(df, colours, folder), CAPTION_LR)
    lines += ["## Chosen settings", "", f"The trial with the best validation score per search (trials within {TIE} "
              "of it tie; the one that solved the task in fewest steps wins); its test score.", "",
              edge_line(df), "", tables.markdown(chosen(df)), ""]
    return lines
