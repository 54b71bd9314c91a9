"""Figures of the run frame: one function each, a panel per task; a panel without data says "no data".

Reproducible output: fixed rcParams and SVG hash salt, sorted inputs, seeded bootstrap intervals,
and no timestamps or software versions in the files.
"""

from __future__ import annotations

import math

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

STYLE = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.8),
         "svg.hashsalt": "lstm-bench", "svg.fonttype": "path", "font.family": "DejaVu Sans",
         "figure.dpi": 100, "savefig.dpi": 110, "path.simplify": True, "legend.frameon": False}
CI = {"errorbar": ("ci", 95), "seed": 0, "n_boot": 1000}
PANEL = (3.4, 2.8)  # inches per panel


def palette(variants) -> dict[str, tuple]:
    """A fixed colour per model variant (sorted names → tab10 order), the same in every figure."""
    names = sorted(set(variants))
    colours = sns.color_palette("tab10", max(len(names), 1))
    return {n: colours[i % len(colours)] for i, n in enumerate(names)}


def save(fig, folder: Path, name: str) -> list[str]:
    """Write ``name``.png and ``name``.svg without dates, versions or random ids; return the file names."""
    fig.savefig(folder / f"{name}.png", metadata={"Software": None}, bbox_inches="tight")
    with plt.rc_context({"svg.hashsalt": STYLE["svg.hashsalt"]}):  # the SVG's ids, whatever style drew it
        fig.savefig(folder / f"{name}.svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    return [f"{name}.png", f"{name}.svg"]


def section(title: str, files: list[str], caption: tuple[str, str], table: str = "", note: str = "") -> list[str]:
    """The index.md lines of one figure: title, two-line caption (and ``note``), PNG, SVG link, its table."""
    png, svg = files
    return ([f"## {title}", "", caption[0] + "  ", caption[1] + (f" {note}" if note else ""), "",
             f"![{title}]({png})", "", f"[SVG]({svg})", ""] + ([table, ""] if table else []))


def grid(rows: list, cols: list):
    """A figure of len(rows) × len(cols) panels (at least one), axes as a 2-D array."""
    nr, nc = max(len(rows), 1), max(len(cols), 1)
    fig, axes = plt.subplots(nr, nc, figsize=(PANEL[0] * nc, PANEL[1] * nr), squeeze=False)
    return fig, axes


def no_data(ax, why: str = "no data") -> None:
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig, axes, colours: dict, variants) -> None:
    """One legend under the figure: every model of the figure's data, then the other marks drawn."""
    extra = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in colours:
                extra.setdefault(label, h)
        if ax.get_legend():
            ax.get_legend().remove()
    names = sorted(set(variants))
    handles = [Line2D([], [], color=colours[n], marker="o", markersize=4) for n in names] + list(extra.values())
    fig.tight_layout()
    if handles:
        fig.legend(handles, names + list(extra), loc="upper center", ncol=min(len(handles), 5),
                   bbox_to_anchor=(0.5, 0.0))


def log_axes(ax, x=True, y=False, ticks=None) -> None:
    """Log scales with plain numbers; the x ticks at the measured lengths when given."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if x:
        ax.set_xscale("log")
        if ticks is not None and 0 < len(ticks) <= 8:
            ax.set_xticks(sorted(ticks))
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if y:
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        narrow = low > 0 and high / low < 100  # under two decades: label 1, 2, 5 of each
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())


def _tasks(df: pd.DataFrame) -> list[str]:
    return sorted(df.task.dropna().unique()) or ["(no runs)"]


def _lines(ax, data: pd.DataFrame, x: str, y: str, colours: dict, **kw) -> bool:
    """Mean over seeds with a 95 % interval, a line per variant; False (and "no data") when empty."""
    data = data[data[x].notna() & data[y].notna()]
    if data.empty:
        no_data(ax)
        return False
    sns.lineplot(data=data, x=x, y=y, hue="variant", hue_order=sorted(data.variant.unique()), palette=colours,
                 marker="o", markersize=4, ax=ax, **CI, **kw)
    return True


def _ticks(data: pd.DataFrame, x: str) -> list[float]:
    return sorted(data[x].dropna().unique())


def score_vs_dependency(df, colours, folder) -> list[str]:
    tasks = _tasks(df)
    fig, axes = grid([0], tasks)
    for ax, task in zip(axes[0], tasks):
        ax.set_title(task)
        data = df[(df.task == task) & (df.status == "ok")]
        if _lines(ax, data, "dependency", "score", colours):
            ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1, label="memoryless baseline")
            ax.axhline(1.0, color="0.6", linestyle=":", linewidth=1)
            log_axes(ax, ticks=_ticks(data, "dependency"))
            ax.set_ylim(-0.15, 1.08)
            ax.set_xlabel("dependency length (steps)")
            ax.set_ylabel("normalised test score")
    _legend(fig, axes, colours, df.variant[df.status == "ok"])
    return save(fig, folder, "score_vs_dependency")


def time_to_solve(df, colours, folder) -> list[str]:
    """Training seconds until solved against dependency (steps: ``steps_to_solve``)."""
    tasks = _tasks(df)
    fig, axes = grid([0], tasks)
    for ax, task in zip(axes[0], tasks):
        runs = df[df.task == task]
        ax.set_title(task)
        unsolved = runs[~runs.solved & runs.train_seconds.notna() & runs.dependency.notna()]
        solved = runs[runs.solved & runs.seconds_to_solve.notna()]
        if solved.empty and unsolved.empty:
            no_data(ax)
            continue
        if len(solved):
            _lines(ax, solved, "dependency", "seconds_to_solve", colours)
        first = sorted(unsolved.variant.unique())[:1]
        for variant, g in unsolved.groupby("variant", sort=True):
            ax.scatter(g.dependency, g.train_seconds, marker="x", s=22, color=colours.get(variant, "0.5"),
                       label="unsolved (budget spent)" if [variant] == first else None)
        log_axes(ax, y=True, ticks=_ticks(runs, "dependency"))
        ax.set_xlabel("dependency length (steps)")
        ax.set_ylabel("seconds to solve")
    _legend(fig, axes, colours, df.variant)
    return save(fig, folder, "time_to_solve")


TRAINED = ("ok", "timeout", "diverged")  # statuses of runs that trained (failed and oom runs did not)
SOLVE_COLUMNS = ["task", "variant", "dependency", "steps", "cap", "solved", "seeds", "at_cap"]


def solve_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, variant, dependency) of the runs that trained: the median over seeds of the optimizer steps to
    solve, a run that did not solve counting at its step cap (``train.steps``). The lower median for an even
    number of seeds, so a point is solved (``at_cap`` False) exactly when at least half its seeds solved, as in
    the headline table."""
    runs = df[df.status.isin(TRAINED) & df.dependency.notna() & df.step_cap.notna()]
    if runs.empty:
        return pd.DataFrame(columns=SOLVE_COLUMNS)
    runs = runs.assign(y=runs.steps_to_solve.where(runs.solved & runs.steps_to_solve.notna(), runs.step_cap))
    rows = []
    for (task, variant, dep), g in runs.groupby(["task", "variant", "dependency"], sort=True):
        ys, solved = np.sort(g.y.to_numpy()), int(g.solved.sum())
        rows.append(dict(zip(SOLVE_COLUMNS, (task, variant, dep, float(ys[(len(ys) - 1) // 2]),
                                             float(g.step_cap.max()), solved, len(g), 2 * solved < len(g)))))
    return pd.DataFrame(rows, columns=SOLVE_COLUMNS)


DODGE = 1.012  # x offset factor between neighbouring models, so lines that coincide stay visible


def steps_to_solve(points, colours, folder) -> list[str]:
    """``solve_points`` against dependency, log–log, a line per model, a panel per task: filled markers where at
    least half the seeds solved, open ones on the step cap (drawn and labelled) where they did not."""
    tasks = _tasks(points)
    fig, axes = grid([0], tasks)
    for ax, task in zip(axes[0], tasks):
        ax.set_title(task)
        data = points[points.task == task]
        if data.empty:
            no_data(ax)
            continue
        variants = sorted(data.variant.unique())
        for i, variant in enumerate(variants):
            p = data[data.variant == variant].sort_values("dependency")
            x, colour = p.dependency * DODGE ** (i - (len(variants) - 1) / 2), colours.get(variant, "0.5")
            ax.plot(x, p.steps, color=colour, linewidth=1.2)
            ax.scatter(x[~p.at_cap], p.steps[~p.at_cap], s=18, color=colour, zorder=3)
            if p.at_cap.any():
                ax.scatter(x[p.at_cap], p.steps[p.at_cap], s=22, facecolors="white", edgecolors=[colour], zorder=3,
                           label="unsolved in half the seeds or more (at the cap)")
        top = blended_transform_factory(ax.transAxes, ax.transData)
        for cap in sorted(data.cap.unique()):
            ax.axhline(cap, color="0.3", linestyle="--", linewidth=1, label="step cap")
            ax.text(0.02, cap * 1.08, f"step cap {cap:,.0f}", transform=top, fontsize=7, color="0.3", va="bottom")
        ax.set_ylim(max(data.steps.min() / 2, 1), data.cap.max() * 2)
        log_axes(ax, y=True, ticks=_ticks(data, "dependency"))
        ax.set_xlabel("dependency length (steps)")
        ax.set_ylabel("optimizer steps to solve (median)")
    _legend(fig, axes, colours, points.variant)
    return save(fig, folder, "steps_to_solve")


def speed(df, colours, folder) -> list[str]:
    tasks = _tasks(df)
    fig, axes = grid(["step", "tokens"], tasks)
    for col, task in enumerate(tasks):
        runs = df[df.task == task]
        for row, (y, label) in enumerate([("step_ms", "training step (ms)"), ("tokens_per_s", "training tokens/s")]):
            ax = axes[row, col]
            ax.set_title(task if row == 0 else "")
            if _lines(ax, runs, "seq_length", y, colours):
                log_axes(ax, y=True, ticks=_ticks(runs[runs[y].notna()], "seq_length"))
                ax.set_xlabel("sequence length")
                ax.set_ylabel(label)
    _legend(fig, axes, colours, df.variant[df.step_ms.notna()])
    return save(fig, folder, "speed")


def gflops(df, colours, folder) -> list[str]:
    tasks = _tasks(df)
    fig, axes = grid([0], tasks)
    for ax, task in zip(axes[0], tasks):
        runs = df[df.task == task]
        ax.set_title(task)
        if _lines(ax, runs, "seq_length", "achieved_gflops", colours):
            roof = runs.roofline_gflops.dropna()
            if len(roof):
                ax.axhline(roof.median(), color="0.2", linestyle="--", linewidth=1,
                           label=f"roofline (matmul), {roof.median():.0f} GFLOP/s")
            log_axes(ax, y=True, ticks=_ticks(runs[runs.achieved_gflops.notna()], "seq_length"))
            ax.set_xlabel("sequence length")
            ax.set_ylabel("achieved GFLOP/s (training)")
    _legend(fig, axes, colours, df.variant[df.achieved_gflops.notna()])
    return save(fig, folder, "gflops")


def memory(df, colours, folder) -> list[str]:
    tasks = _tasks(df)
    fig, axes = grid([0], tasks)
    df = df.assign(peak_mib=df.peak_bytes / 2**20)
    for ax, task in zip(axes[0], tasks):
        runs = df[df.task == task]
        ax.set_title(task)
        oom = runs[(runs.status == "oom") & runs.seq_length.notna()]
        if runs.peak_mib.isna().all() and oom.empty:
            no_data(ax)
            continue
        if runs.peak_mib.notna().any():
            _lines(ax, runs, "seq_length", "peak_mib", colours)
        top = blended_transform_factory(ax.transData, ax.transAxes)
        first = sorted(oom.variant.unique())[:1]
        for variant, g in oom.groupby("variant", sort=True):
            ax.scatter(g.seq_length, np.full(len(g), 0.95), transform=top, marker="X", s=40,
                       color=colours.get(variant, "0.5"), label="oom" if [variant] == first else None)
        log_axes(ax, y=runs.peak_mib.notna().any(), ticks=_ticks(runs, "seq_length"))
        ax.set_xlabel("sequence length")
        ax.set_ylabel("peak memory (MiB)")
    _legend(fig, axes, colours, df.variant[df.peak_mib.notna() | (df.status == "oom")])
    return save(fig, folder, "memory")


def gradient_points(grad: pd.DataFrame) -> pd.DataFrame:
    """Per task, the gradient curves at the dependency with the most models measured (the longest on ties)."""
    if grad.empty:
        return grad
    counts = grad.groupby(["task", "dependency"])["variant"].nunique().reset_index()
    counts = counts.sort_values(["task", "variant", "dependency"]).groupby("task").tail(1)
    return grad.merge(counts[["task", "dependency"]], on=["task", "dependency"])


def gradient_flow(grad, tasks, colours, folder) -> list[str]:
    chosen = gradient_points(grad)
    fig, axes = grid(tasks, ["init", "final"])
    for row, task in enumerate(tasks):
        for col, phase in enumerate(["init", "final"]):
            ax = axes[row, col]
            data = chosen[(chosen.task == task) & (chosen.phase == phase)] if len(chosen) else chosen
            dep = f", dependency {_whole(data.dependency.iloc[0])}" if len(data) else ""
            ax.set_title(f"{task}: {'at initialisation' if phase == 'init' else 'after training'}{dep}")
            if _lines(ax, data, "distance", "norm", colours):
                log_axes(ax, x=data.distance.min() > 0, y=True)
                ax.set_xlabel("distance from the loss (steps)")
                ax.set_ylabel("‖∂L/∂x_t‖")
    _legend(fig, axes, colours, chosen.variant if len(chosen) else [])
    return save(fig, folder, "gradient_flow")


def pareto(points: pd.DataFrame) -> pd.Series:
    """True for points no other point of the same task beats on both score (higher) and seconds (lower)."""
    flags = pd.Series(False, index=points.index)
    for _, g in points.groupby("task"):
        best = -np.inf
        for i in g.sort_values(["seconds", "score"], ascending=[True, False]).index:
            if points.score[i] > best:
                flags[i], best = True, points.score[i]
    return flags


def cost_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, variant): mean test score over all lengths and seeds against mean training seconds per run."""
    ok = df[(df.status == "ok") & df.score.notna() & df.train_seconds.notna()]
    if ok.empty:
        return pd.DataFrame(columns=["task", "variant", "score", "seconds", "params", "pareto"])
    points = ok.groupby(["task", "variant"]).agg(score=("score", "mean"), seconds=("train_seconds", "mean"),
                                                 params=("params", "median")).reset_index()
    return points.assign(pareto=pareto(points))


def accuracy_vs_cost(points, tasks, colours, folder) -> list[str]:
    fig, axes = grid([0], tasks)
    for ax, task in zip(axes[0], tasks):
        ax.set_title(task)
        p = points[points.task == task]
        if p.empty:
            no_data(ax)
            continue
        for r in p.sort_values("variant").itertuples():
            ax.scatter(r.seconds, r.score, color=colours.get(r.variant, "0.5"), s=36, zorder=3)
        front = p[p.pareto].sort_values("seconds")
        ax.step(front.seconds, front.score, where="post", color="0.2", linewidth=1, label="Pareto front")
        log_axes(ax)
        ax.set_xlabel("training seconds per run (mean)")
        ax.set_ylabel("mean test score")
    _legend(fig, axes, colours, points.variant)
    return save(fig, folder, "accuracy_vs_cost")


def separating(best: pd.DataFrame) -> pd.DataFrame:
    """Per task, the dependency that separates models most: the widest spread (standard deviation) of the
    models' mean test scores, among dependencies with two models or more (the longest on a tie); one model
    alone: its shortest dependency. Columns task, dependency."""
    ok = best[(best.status == "ok") & best.score.notna() & best.dependency.notna()]
    if ok.empty:
        return pd.DataFrame(columns=["task", "dependency"])
    means = ok.groupby(["task", "dependency", "variant"])["score"].mean().reset_index()
    spread = means.groupby(["task", "dependency"])["score"].agg(lambda s: s.std(ddof=0) if len(s) > 1 else -1.0)
    spread = spread.rename("spread").reset_index()
    chosen = spread.sort_values(["task", "spread", "dependency"]).groupby("task").tail(1)
    shortest = chosen.task.map(spread.groupby("task").dependency.min())
    chosen["dependency"] = chosen.dependency.where(chosen.spread >= 0, shortest)  # one model only: the shortest
    return chosen[["task", "dependency"]].reset_index(drop=True)


CURVE_COLUMNS = 8  # learning-curve panels per row
SEED_STYLES = ["-", "--", ":", "-."]


def learning_curves(hist, best, colours, folder) -> list[str]:
    """Validation score against step, a line per seed, a panel per model, at each task's ``separating``
    dependency: a curve still rising at its right end was still learning when its budget ran out."""
    chosen = hist.merge(separating(best), on=["task", "dependency"]) if len(hist) else hist
    rows = []  # each task starts a row of panels
    for task in sorted(chosen.task.unique()) if len(chosen) else []:
        variants = sorted(chosen.variant[chosen.task == task].unique())
        rows += [[(task, v) for v in variants[i:i + CURVE_COLUMNS]] for i in range(0, len(variants), CURVE_COLUMNS)]
    columns = CURVE_COLUMNS if rows else 1
    fig, axes = plt.subplots(max(len(rows), 1), columns, squeeze=False, sharey=True,
                             figsize=(2.3 * columns, 1.9 * max(len(rows), 1)))
    for ax in axes.flat:
        ax.set_visible(not rows)
    if not rows:
        no_data(axes[0, 0])
    for ax, (task, variant) in ((axes[i, j], panel) for i, row in enumerate(rows) for j, panel in enumerate(row)):
        data = chosen[(chosen.task == task) & (chosen.variant == variant)]
        ax.set_visible(True)
        ax.set_title(f"{task} {_whole(data.dependency.iloc[0])}: {variant}", fontsize=8)
        for i, (seed, curve) in enumerate(data.sort_values("step").groupby("seed", sort=True)):
            ax.plot(curve.step, curve.val_score.clip(-0.5, 1.05), color=colours.get(variant, "0.5"), linewidth=1.2,
                    marker="o", markersize=2.5, linestyle=SEED_STYLES[i % len(SEED_STYLES)], label=f"seed {_whole(seed)}")
        ax.axhline(0.0, color="0.3", linestyle="--", linewidth=0.8)
        last = chosen.step[chosen.task == task].max()
        if last == last and 0 < last < float("inf"):  # a record without steps leaves the axis to matplotlib
            ax.set_xlim(0, last)
        ax.set_ylim(-0.55, 1.1)
        ax.tick_params(labelsize=7)
    _legend(fig, axes, colours, [])
    return save(fig, folder, "learning_curves")


def extrapolation(ext, colours, folder) -> list[str]:
    """Test score against test length (``dataframe.extrapolation_frame``); dotted: the trained length."""
    tasks = _tasks(ext)
    fig, axes = grid([0], tasks)
    for ax, task in zip(axes[0], tasks):
        data = ext[ext.task == task]
        trained = data.trained.min() if len(data) else math.nan
        ax.set_title(task if math.isnan(trained) else f"{task}, trained at length {int(trained)}")
        if _lines(ax, data, "test_length", "score", colours):
            ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
            ax.axvline(trained, color="0.6", linestyle=":", linewidth=1)
            log_axes(ax, ticks=_ticks(data, "test_length"))
            ax.set_xlabel("test length")
            ax.set_ylabel("test score")
    _legend(fig, axes, colours, ext.variant)
    return save(fig, folder, "extrapolation")


def _whole(value) -> str:
    """A dependency as a whole number, or "?" where a record lacks it (NaN, None, text)."""
    try:
        return str(int(value))
    except (TypeError, ValueError, OverflowError):
        return "?"
