"""Findings stated from the numbers: sentences computed from the run frame, never written by hand."""

from __future__ import annotations

import math

import pandas as pd

from bench.report import roles, tables


def _variant_of(df: pd.DataFrame, model: str) -> str | None:
    """The (first, sorted) variant of ``model`` in the frame, or None when the sweep has no such model."""
    names = sorted(df.variant[df.model == model].unique())
    return names[0] if names else None


def _names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def _score(value: float) -> str:
    """Two decimals, without a minus sign on a value that rounds to zero."""
    return f"{round(value, 2) + 0.0:.2f}"


def _length(value: float) -> str:
    return str(int(value))


def longest(df: pd.DataFrame) -> list[str]:
    """Per task: which model solves the longest dependency, and by what margin over the next model."""
    table = tables.longest_solved(df)
    out = []
    for task, row in table.iterrows():
        tested = sorted(df.dependency[df.task == task].dropna().unique())
        span = f"tested {_length(tested[0])}–{_length(tested[-1])}" if tested else "none tested"
        solved = row.dropna()
        if solved.empty:
            out.append(f"**{task}**: no model solved any tested dependency ({span}) in at least half its seeds.")
            continue
        top = solved.max()
        winners = sorted(solved.index[solved == top])
        rest = solved[solved < top]
        if rest.empty:
            others = sorted(set(row.index) - set(winners))
            margin = (f"; {', '.join(others)} solved none" if others else "") if len(winners) < len(row) else \
                "; every model reaches it"
        else:
            second = rest.max()
            margin = (f"; next: {', '.join(sorted(rest.index[rest == second]))} at {_length(second)} "
                      f"({top / second:.1f}× shorter)")
        limit = " (the longest tested)" if tested and top == tested[-1] else ""
        out.append(f"**{task}**: {_names(winners)} solve{'s' if len(winners) == 1 else ''} dependency "
                   f"{_length(top)}{limit}{margin} ({span}).")
    return out


def reference_vs_ungated(df: pd.DataFrame) -> list[str]:
    """The reference (LSTM) against each vanilla RNN: longest dependency solved, and mean score at the longest
    shared length."""
    names = df.model.unique()
    ref = roles.reference(names)
    if not ref:
        return []
    table = tables.longest_solved(df)
    out = []
    for other in roles.ungated(names):
        pair = (_variant_of(df, ref), _variant_of(df, other))
        for task in table.index:
            ok = df[(df.task == task) & (df.status == "ok")]
            shared = sorted(set(ok.dependency[ok.variant == pair[0]]) & set(ok.dependency[ok.variant == pair[1]]))
            if not shared:
                continue
            dep = shared[-1]
            scores = [ok.score[(ok.variant == v) & (ok.dependency == dep)].mean() for v in pair]
            solved = [table.loc[task].get(v) for v in pair]
            text = ["none" if s is None or math.isnan(s) else _length(s) for s in solved]
            out.append(f"**{task}**: longest dependency solved: {pair[0]} {text[0]}, {pair[1]} {text[1]}; at "
                       f"dependency {_length(dep)} mean test scores are {_score(scores[0])} ({pair[0]}) and "
                       f"{_score(scores[1])} ({pair[1]}).")
    return out


def real_data(df: pd.DataFrame) -> list[str]:
    """Per real dataset: the range of the models' mean test metric, and where the reference and the vanilla RNNs
    fall in it."""
    ok = df[(df.status == "ok") & df.task.isin(tables.real_tasks(df))]
    out = []
    for task, runs in ok.groupby("task", sort=True):
        means = runs.groupby("variant")["value"].mean().dropna().sort_values(kind="stable")
        if means.empty:
            continue
        metric, baseline = runs.metric.iloc[0], runs.baseline.median()
        names = runs.model.unique()
        shown = [v for v in [_variant_of(runs, m) for m in [roles.reference(names), *roles.ungated(names)] if m]
                 if v in means]
        compared = "; " + ", ".join(f"{v} {means[v]:.3f}" for v in shown) if shown else ""
        out.append(f"**{task}** (real data, {metric}; majority class {baseline:.3f}): model means from "
                   f"{means.iloc[0]:.3f} ({means.index[0]}) to {means.iloc[-1]:.3f} ({means.index[-1]}){compared}.")
    return out


def _ratio(df: pd.DataFrame, column: str, a: str, b: str) -> list[tuple[float, float]]:
    """(sequence length, median a / median b of ``column``) at every (task, length) both were measured."""
    have = df[df[column].notna() & df.variant.isin([a, b])]
    med = have.groupby(["task", "seq_length", "variant"])[column].median().unstack("variant")
    if a not in med or b not in med:
        return []
    ratio = (med[a] / med[b]).dropna()
    return sorted((length, r) for (_, length), r in ratio.items())


def attention_cost(df: pd.DataFrame) -> list[str]:
    """What each attention model's training step and memory cost relative to the reference's, at matched lengths."""
    ref = roles.reference(df.model.unique())
    if not ref:
        return []
    out = []
    for model in roles.of_family(df.model.unique(), "attention"):
        a, b = _variant_of(df, model), _variant_of(df, ref)
        for column, what in (("step_ms", "training step time"), ("peak_bytes", "peak memory")):
            pairs = _ratio(df, column, a, b)
            if not pairs:
                continue
            short, long_ = pairs[0], pairs[-1]
            longer = f", {long_[1]:.2f}× at length {_length(long_[0])}" if long_[0] != short[0] else ""
            out.append(f"{a} {what} relative to {b}: {short[1]:.2f}× at length {_length(short[0])}{longer} "
                       f"(median over runs).")
    return out


def gradients(grad: pd.DataFrame, near: int = 100) -> list[str]:
    """Per task, at the dependency nearest ``near``: how much gradient reaches the farthest input, per phase, for
    the vanilla RNNs, the reference and the other fused gated recurrent models (RNN, LSTM, GRU)."""
    table = tables.gradient_table(grad)
    if table.empty:
        return []
    names = {v.split("(")[0] for v in table.index.get_level_values("model")}
    models = roles.ungated(names) + [m for m in [roles.reference(names)] if m] + roles.other_gated(names)
    out = []
    for task in table.index.get_level_values("task").unique():
        rows = table.loc[task]
        rows = rows[[v.split("(")[0] in models for v in rows.index.get_level_values("model")]]
        if rows.empty:
            continue
        deps = rows.index.get_level_values("dependency").unique()
        dep = min(deps, key=lambda d: (abs(int(d) - near), -int(d)))
        at = rows.loc[dep]
        at = at.loc[sorted(at.index, key=lambda v: models.index(v.split("(")[0]))]
        phases = [f"{label} " + ", ".join(f"{model} {ratio}" for model, ratio in at[column].dropna().items())
                  for column, label in (("init: far / near", "at initialisation"),
                                        ("final: far / near", "after training")) if column in at]
        out.append(f"**{task}**, dependency {dep}: ‖∂L/∂x_t‖ at the farthest input over the nearest — "
                   + "; ".join(phases) + ".")
    return out


def findings(df: pd.DataFrame, grad: pd.DataFrame) -> list[str]:
    lines = longest(df) + real_data(df) + reference_vs_ungated(df) + attention_cost(df) + gradients(grad)
    return lines or ["No finished runs to draw findings from."]
