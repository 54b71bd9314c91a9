"""Tables of the run frame, as Markdown with fixed number formats (identical text from identical records)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bench.report import roles
from bench.runner.record import STATUSES

NONE = "—"


def markdown(table: pd.DataFrame, empty: str = "(no data)") -> str:
    """A DataFrame of strings as a Markdown table; ``empty`` when there is nothing to show."""
    if table is None or table.empty:
        return empty
    table = table.fillna(NONE).astype(str)
    return table.reset_index().to_markdown(index=False) if any(table.index.names) else table.to_markdown()


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    return f"{value:.{digits}g}" if abs(value) >= 1000 or digits < 0 else f"{value:.{digits}f}"


def _int(value: float) -> str:
    return NONE if value is None or math.isnan(value) else f"{int(round(value))}"


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % Student-t interval over seeds (NaN half-width for one seed)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def _mean_ci_text(values) -> str:
    mean, half = mean_ci(values)
    if math.isnan(mean):
        return NONE
    return f"{mean:.3f}" + ("" if math.isnan(half) else f" ± {half:.3f}")


def _pivot(df: pd.DataFrame, index: list[str], cell) -> pd.DataFrame:
    """``cell(group)`` → string for every (index…, variant) group, variants as columns in sorted order."""
    if df.empty:
        return pd.DataFrame()
    cells = {key: cell(group) for key, group in df.groupby([*index, "variant"], dropna=False, sort=True)}
    table = pd.Series(cells).unstack(-1)
    table.index.names, table.columns.name = index, None
    return table.reindex(columns=sorted(table.columns))


def _dep_index(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(dependency=df.dependency.map(_int))  # 10, not 10.0, in the table's index


def _sorted_dep(df: pd.DataFrame) -> pd.DataFrame:
    """Order rows by task, then numeric dependency (after the index became text)."""
    if df.empty:
        return df
    order = sorted(df.index, key=lambda k: (k[0], float(k[1]) if k[1] != NONE else math.inf))
    return df.reindex(order)


def score_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean normalised test score ± 95 % interval over seeds, per (task, dependency) and model."""
    ok = df[df.status == "ok"]
    return _sorted_dep(_pivot(_dep_index(ok), ["task", "dependency"], lambda g: _mean_ci_text(g.score)))


def real_tasks(df: pd.DataFrame) -> set[str]:
    """The frame's tasks that are real datasets: no dependency to climb, no threshold that means "solved"."""
    return {task for task in df.task.unique() if roles.real_data(task)}


def ladder_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The runs of the synthetic tasks, whose dependency length is the question."""
    return df[~df.task.isin(real_tasks(df))]


def real_data_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per real dataset (its metric, its majority-class baseline): mean test metric ± 95 % interval per model."""
    ok = df[(df.status == "ok") & df.task.isin(real_tasks(df))]
    if ok.empty:
        return pd.DataFrame()
    table = _pivot(ok, ["task", "metric"], lambda g: _mean_ci_text(g.value))
    baseline = ok.groupby(["task", "metric"])["baseline"].median().map(_num)
    table.insert(0, "majority class", baseline.reindex(table.index))
    return table


def solved_at_half(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, variant, dependency): whether at least half of the seeds (any status) solved it."""
    if df.empty:
        return pd.DataFrame(columns=["task", "variant", "dependency", "solved"])
    frac = df.groupby(["task", "variant", "dependency"])["solved"].mean().reset_index()
    return frac.assign(solved=frac.solved >= 0.5)


def longest_solved(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric (task × variant): the largest dependency solved in at least half of its seeds; NaN if none."""
    half = solved_at_half(ladder_runs(df))
    if half.empty:
        return pd.DataFrame()
    best = half[half.solved].groupby(["task", "variant"])["dependency"].max()
    tried = half.groupby(["task", "variant"])["dependency"].max()
    return best.reindex(tried.index).unstack("variant").sort_index().reindex(columns=sorted(tried.index.unique(1)))


def longest_solved_table(df: pd.DataFrame) -> pd.DataFrame:
    table = longest_solved(df)
    if table.empty:
        return table
    lengths = df.groupby("task")["dependency"].agg(lambda s: ", ".join(_int(v) for v in sorted(s.dropna().unique())))
    out = table.apply(lambda col: col.map(_int))
    out.insert(0, "tested dependencies", lengths.reindex(out.index))
    return out


def untried(df: pd.DataFrame) -> list[str]:
    """Per task and model, the tested dependencies it has no run at (a difficulty ladder stopped below them)."""
    out = []
    for task, runs in df.groupby("task", sort=True):
        every = set(runs.dependency.dropna())
        for variant, mine in runs.groupby("variant", sort=True):
            missing = sorted(every - set(mine.dependency.dropna()))
            if missing:
                out.append(f"{task}: {variant} not tried at {', '.join(_int(d) for d in missing)}")
    return out


def time_to_solve_table(df: pd.DataFrame) -> pd.DataFrame:
    """Median steps and seconds to solve over the seeds that solved, and how many did."""
    def cell(g):
        done = g[g.solved & g.steps_to_solve.notna()]
        if done.empty:
            return f"unsolved (0/{len(g)})"
        return f"{_int(done.steps_to_solve.median())} steps · {_num(done.seconds_to_solve.median(), 1)} s ({len(done)}/{len(g)})"
    return _sorted_dep(_pivot(_dep_index(df), ["task", "dependency"], cell))


def steps_to_solve_table(points: pd.DataFrame) -> pd.DataFrame:
    """``figures.solve_points`` as text: the median steps to solve (``> cap`` where at least half the seeds did not
    solve within the cap) and how many seeds solved."""
    if points.empty:
        return pd.DataFrame()
    def cell(g):
        p = g.iloc[0]
        steps = f"> {p.cap:,.0f}" if p.at_cap else f"{p.steps:,.0f}"
        return f"{steps} · {p.solved}/{p.seeds}"
    return _sorted_dep(_pivot(_dep_index(points), ["task", "dependency"], cell))


def median_table(df: pd.DataFrame, column: str, scale: float = 1.0, digits: int = 1,
                 index: str = "seq_length") -> pd.DataFrame:
    """Median of ``column`` (× ``scale``) over the runs of each (task, length) and model."""
    have = df[df[column].notna()]
    if have.empty:
        return pd.DataFrame()
    have = have.assign(**{index: have[index].map(_int)})
    table = _pivot(have, ["task", index], lambda g: _num(g[column].median() * scale, digits))
    return _sorted_dep(table)


def memory_table(df: pd.DataFrame) -> pd.DataFrame:
    """Median peak memory in MiB; ``oom`` where every run of the point ran out of memory."""
    rows = df[df.peak_bytes.notna() | (df.status == "oom")]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(seq_length=rows.seq_length.map(_int))

    def cell(g):
        have = g.peak_bytes.dropna()
        return _num(have.median() / 2**20, 1) if len(have) else "oom"
    return _sorted_dep(_pivot(rows, ["task", "seq_length"], cell))


def gradient_table(grad: pd.DataFrame) -> pd.DataFrame:
    """Per (task, dependency, variant): ‖∂L/∂x‖ at the farthest distance over that at the nearest, per phase."""
    if grad.empty:
        return pd.DataFrame()
    rows = {}
    for (task, dep, variant, phase), g in grad.groupby(["task", "dependency", "variant", "phase"]):
        curve = g.groupby("distance")["norm"].mean().sort_index()
        if curve.iloc[0] > 0:  # padded sequences (real data) can carry no gradient at the nearest step
            rows.setdefault((task, _int(dep), variant), {})[f"{phase}: far / near"] = \
                f"{curve.iloc[-1] / curve.iloc[0]:.2e}"
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    table.index.names = ["task", "dependency", "model"]
    return table


def cost_table(points: pd.DataFrame) -> pd.DataFrame:
    """The accuracy-versus-cost points: mean score, seconds per run, parameters, on the Pareto front."""
    if points.empty:
        return pd.DataFrame()
    out = pd.DataFrame({
        "task": points.task, "model": points.variant, "mean score": points.score.map(lambda v: _num(v, 3)),
        "train s per run": points.seconds.map(lambda v: _num(v, 1)), "params": points.params.map(_int),
        "Pareto": points.pareto.map(lambda p: "yes" if p else ""),
    })
    return out.set_index(["task", "model"]).sort_index()


CLIMBING = 0.05  # a rise in validation score over the last fifth of a run's steps that counts as still learning


def climbing(curve: pd.DataFrame, budget: float) -> bool:
    """Whether one seed's curve (step, val_score) ran to ``budget`` steps and rose by more than ``CLIMBING``
    over its last fifth: more steps would likely have helped."""
    curve = curve.dropna(subset=["val_score"]).sort_values("step")
    if curve.empty or curve.step.iloc[-1] < budget:
        return False
    before = curve[curve.step <= 0.8 * curve.step.iloc[-1]]
    return bool(len(before) and curve.val_score.iloc[-1] - before.val_score.iloc[-1] > CLIMBING)


def learning_table(hist: pd.DataFrame) -> pd.DataFrame:
    """Per (task, dependency, variant): mean validation score at the last evaluation, steps trained, and how many
    seeds were still climbing when the point's longest run ended (``climbing``)."""
    if hist.empty:
        return pd.DataFrame()
    last = hist.sort_values("step").groupby(["task", "dependency", "variant", "seed"]).tail(1)
    budgets = hist.groupby(["task", "dependency"]).step.max()
    rows = {}
    for (task, dep, variant), g in last.groupby(["task", "dependency", "variant"]):
        curves = hist[(hist.task == task) & (hist.dependency == dep) & (hist.variant == variant)]
        rising = sum(climbing(c, budgets[task, dep]) for _, c in curves.groupby("seed"))
        rows[(task, _int(dep), variant)] = {"final val score": _mean_ci_text(g.val_score),
                                            "steps (median)": _int(g.step.median()),
                                            "still climbing": f"{rising}/{len(g)}"}
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    table.index.names = ["task", "dependency", "model"]
    return table


def extrapolation_table(ext: pd.DataFrame) -> pd.DataFrame:
    """Mean test score ± 95 % interval per (task, test length) and model, from ``extrapolation_frame``."""
    if ext.empty:
        return pd.DataFrame()
    have = ext.assign(test_length=ext.test_length.map(_int))
    return _sorted_dep(_pivot(have, ["task", "test_length"], lambda g: _mean_ci_text(g.score)))


def status_table(df: pd.DataFrame) -> pd.DataFrame:
    """Runs per status and model, so failures stay visible."""
    if df.empty:
        return pd.DataFrame()
    counts = pd.crosstab(df.variant, df.status)
    extra = sorted(set(counts.columns) - set(STATUSES))
    counts = counts.reindex(columns=[*STATUSES, *extra], fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.index.name, counts.columns.name = "model", None
    return counts.sort_index().astype(str)


def ablation_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per model family with variants (gridded hyperparameters, or models named ``<family>_<variant>``):
    mean test score per (task, dependency) and variant."""
    families: dict[str, list[str]] = {}
    models = set(df.model)
    for model, variant in sorted(set(zip(df.model, df.variant))):
        head = model.split("_")[0]
        families.setdefault(head if head in models else model, []).append(variant)
    out = {}
    for family, variants in sorted(families.items()):
        if len(variants) > 1:
            out[family] = score_table(df[df.variant.isin(variants)])
    return out
