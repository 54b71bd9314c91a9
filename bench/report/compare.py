"""Two sweeps side by side: their headline tables, and per (task, model, dependency) in both the difference in
mean test score with a 95 % Welch interval over seeds, and which differences exceed seed noise.

``build(a, b)`` writes ``reports/compare-<a>-vs-<b>/index.md`` from the records alone, like any report.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
from scipy import stats

from bench.report import tables
from bench.report.dataframe import best_hyperparameters, frame
from bench.runner import record

POINT = ["task", "dependency", "variant"]


def build(a: str, b: str, results: Path | str = "results", out: Path | str = "reports") -> tuple[Path, str]:
    """Write the comparison of sweeps ``a`` and ``b``; return its folder and its one-line summary."""
    runs = {}
    for name in (a, b):
        records, _ = record.load(results, name)
        if not records:
            raise FileNotFoundError(f"no run records for sweep {name!r} under {Path(results) / name}")
        runs[name] = best_hyperparameters(frame(records))
    diff = differences(runs[a], runs[b])
    summary = _summary(diff, a, b)
    lines = [f"# Compare `{a}` and `{b}`", "", f"`{a}`: {len(runs[a])} runs; `{b}`: {len(runs[b])} runs. {summary}", ""]
    for name in (a, b):
        lines += [f"## Longest dependency solved: `{name}`", "", tables.markdown(tables.longest_solved_table(runs[name])),
                  ""]
    lines += [f"## Difference in mean test score (`{b}` − `{a}`)", "",
              "Per (task, dependency, model) that both sweeps ran: the mean normalised test score over the seeds of "
              "finished runs in each (n seeds), their difference with a 95 % Welch t interval, and whether that "
              "interval excludes 0 (the difference exceeds seed noise; — : fewer than two seeds on a side, or no spread).", "",
              tables.markdown(_table(diff, a, b), "(no point in common)"), ""]
    folder = Path(out) / f"compare-{a}-vs-{b}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.md").write_text("\n".join(lines))
    return folder, summary


def differences(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per shared point: seeds and mean score on each side, ``b`` − ``a``, its 95 % interval, and ``beyond``
    (True, False, or None where the interval is undefined)."""
    scores = [df[(df.status == "ok") & df.score.notna()].groupby(POINT, dropna=False).score.apply(list)
              for df in (a, b)]
    rows = []
    for point in sorted(set(scores[0].index) & set(scores[1].index)):
        x, y = scores[0][point], scores[1][point]
        low, high = welch(y, x)
        rows.append({**dict(zip(POINT, point)), "n_a": len(x), "n_b": len(y), "mean_a": sum(x) / len(x),
                     "mean_b": sum(y) / len(y), "diff": sum(y) / len(y) - sum(x) / len(x), "low": low, "high": high,
                     "beyond": None if math.isnan(low) else bool(low > 0 or high < 0)})
    return pd.DataFrame(rows, columns=[*POINT, "n_a", "n_b", "mean_a", "mean_b", "diff", "low", "high", "beyond"])


def welch(y: list[float], x: list[float]) -> tuple[float, float]:
    """The 95 % Welch t interval of mean(y) − mean(x); NaN where a side has under two seeds or neither varies."""
    if min(len(x), len(y)) < 2 or (len(set(x)) == 1 and len(set(y)) == 1):
        return math.nan, math.nan
    with warnings.catch_warnings():  # nearly equal seeds: scipy warns of lost precision, the interval stands
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.ttest_ind(y, x, equal_var=False).confidence_interval(0.95)
    return float(interval.low), float(interval.high)


def _table(diff: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    if diff.empty:
        return pd.DataFrame()
    out = pd.DataFrame({
        "task": diff.task, "dependency": diff.dependency.map(lambda v: f"{v:.0f}"), "model": diff.variant,
        f"{a} (n)": [f"{m:.3f} ({n})" for m, n in zip(diff.mean_a, diff.n_a)],
        f"{b} (n)": [f"{m:.3f} ({n})" for m, n in zip(diff.mean_b, diff.n_b)],
        f"{b} − {a} [95 % interval]": [f"{d:+.3f}" + ("" if math.isnan(lo) else f" [{lo:+.3f}, {hi:+.3f}]")
                                       for d, lo, hi in zip(diff["diff"], diff.low, diff.high)],
        "beyond seed noise": diff.beyond.map(lambda v: tables.NONE if v is None else "yes" if v else "no"),
    })
    return out.set_index(["task", "dependency", "model"])


def _summary(diff: pd.DataFrame, a: str, b: str) -> str:
    beyond = diff[diff.beyond == True]  # noqa: E712 (None means undefined, not False)
    better = int((beyond["diff"] > 0).sum())
    return (f"{len(diff)} points in common; {len(beyond)} differ beyond seed noise ({better} higher in `{b}`, "
            f"{len(beyond) - better} higher in `{a}`); {int(diff.beyond.isna().sum())} undecided (under two seeds, or no spread).")
