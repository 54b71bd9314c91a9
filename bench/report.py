"""Reports: run records → one tidy DataFrame → seaborn figures and Markdown tables under reports/<sweep>/."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench import record  # noqa: E402

COLUMNS = ["run_id", "task", "length", "dependency", "model", "seed", "status", "metric", "value",
           "baseline", "score", "solved", "steps_to_solve", "seconds_to_solve", "step_ms", "params"]


def frame(records: list[dict]) -> pd.DataFrame:
    """One row per run, sorted, with the columns the figures read."""
    rows = []
    for r in records:
        metrics, speed = r.get("metrics") or {}, r.get("speed") or {}
        rows.append({
            "run_id": r["run_id"], "task": r.get("task"), "length": (r.get("task_params") or {}).get("length"),
            "dependency": r.get("dependency"), "model": r.get("model"), "seed": r.get("seed"),
            "status": r["status"], "metric": metrics.get("metric"), "value": metrics.get("value"),
            "baseline": metrics.get("baseline"), "score": metrics.get("score"), "solved": metrics.get("solved"),
            "steps_to_solve": metrics.get("steps_to_solve"), "seconds_to_solve": metrics.get("seconds_to_solve"),
            "step_ms": speed.get("step_ms_median"), "params": r.get("params"),
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values(["task", "dependency", "model", "seed", "run_id"], ignore_index=True)


def score_vs_dependency(df: pd.DataFrame, path: Path) -> None:
    """Normalised score (0 = memoryless baseline, 1 = perfect) against dependency length, a panel per task."""
    ok = df[df.status == "ok"]
    grid = sns.relplot(data=ok, x="dependency", y="score", hue="model", col="task", kind="line", marker="o",
                       errorbar=("ci", 95), facet_kws={"sharex": False}, height=3.2, aspect=1.1,
                       hue_order=sorted(ok.model.unique()))
    for ax in grid.axes.flat:
        ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_ylim(-0.1, 1.05)
    grid.set_axis_labels("dependency length (steps)", "score (0 = memoryless, 1 = perfect)")
    grid.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(grid.figure)


def score_table(df: pd.DataFrame) -> str:
    """Mean normalised score per task, dependency and model, as Markdown."""
    table = df[df.status == "ok"].pivot_table(index=["task", "dependency"], columns="model", values="score",
                                              aggfunc="mean")
    return table.round(3).to_markdown() if not table.empty else "(no finished runs)"


def build(sweep: str, results: Path | str = "results", out: Path | str = "reports") -> Path:
    """Write reports/<sweep>/ from the records of the sweep; return the folder."""
    records, skipped = record.load(results, sweep)
    if not records:
        raise FileNotFoundError(f"no run records for sweep {sweep!r} under {Path(results) / sweep}")
    folder = Path(out) / sweep
    folder.mkdir(parents=True, exist_ok=True)
    df = frame(records)
    score_vs_dependency(df, folder / "score_vs_dependency.png")
    table = score_table(df)
    lines = [f"# Sweep `{sweep}`", "", f"{len(df)} runs; statuses: "
             + ", ".join(f"{k} {v}" for k, v in df.status.value_counts().sort_index().items()), ""]
    lines += ["## Score versus dependency length", "",
              "Normalised test score (0 = memoryless baseline, 1 = perfect), mean over seeds.", "",
              "![score versus dependency](score_vs_dependency.png)", "", table, ""]
    if skipped:
        lines += ["## Skipped files", ""] + [f"- {s}" for s in skipped] + [""]
    (folder / "index.md").write_text("\n".join(lines))
    return folder
