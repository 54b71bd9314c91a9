"""Reports of ``bench speed`` records: training step time, memory and GFLOP/s against sequence length.

A speed record becomes a row of the run frame's shape (``task`` = the panel, one per width and batch;
``variant`` = the model), so the training report's speed, GFLOP/s and memory figures draw it unchanged.
Findings compare every model with the reference (the LSTM: ``bench.report.roles``) at the same width and
batch: where its memory and step time rise above or fall below the reference's.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bench.report import figures, roles, tables
from bench.runner.table import frame as records_frame
from bench.speed.timing import ran_on


def variant(r: dict) -> str:
    """The model, marked when it ran with XLA or as the generic (non-cuDNN) kernel of the cuDNN comparison."""
    return r["model"] + (" XLA" if r.get("jit_compile") is True else "") + (" generic" if r.get("use_cudnn") is False else "")


def row(r: dict) -> dict:
    speed = r.get("speed") or {}
    train, forward = speed.get("train") or {}, speed.get("forward") or {}
    step = train.get("median_ms", math.nan)
    floor = r.get("matmul_floor") or {}
    return {
        "task": f"H={r['units']}, N={r['batch']}", "variant": variant(r), "model": r["model"], "units": r["units"],
        "batch": r["batch"], "seq_length": r["length"], "status": r["status"], "jit_compile": r.get("jit_compile"),
        "forward_ms": forward.get("median_ms", math.nan), "step_ms": step,
        "p10_ms": train.get("p10_ms", math.nan), "p90_ms": train.get("p90_ms", math.nan),
        "compile_s": train.get("compile_ms", math.nan) / 1000, "tokens_per_s": r["batch"] * r["length"] / step * 1000,
        "peak_bytes": (r.get("memory") or {}).get("peak_bytes", math.nan),
        "achieved_gflops": (r.get("gflops") or {}).get("train", math.nan),
        "deepbench_gflops": (r.get("gflops") or {}).get("deepbench_train", math.nan),
        "roofline_gflops": speed.get("roofline_gflops", math.nan), "floor_ms": floor.get("floor_ms", math.nan),
        "backend": ran_on(r),
    }


def speed_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record; where the records ran on several backends, each variant names its backend."""
    df = records_frame(records, row).astype({"peak_bytes": float, "achieved_gflops": float, "deepbench_gflops": float,
                                             "floor_ms": float})
    if df.backend[df.backend != "-"].nunique() > 1:  # "-": a record that never started a backend (an OOM kill)
        df["variant"] = df.variant + " · " + df.backend
    return df.sort_values(["units", "batch", "variant", "seq_length"], ignore_index=True)


def backend_table(df: pd.DataFrame) -> list[str]:
    """Per model and length: the training step on each backend, the fastest and its lead over TensorFlow (what
    ``backend: auto`` chooses from); nothing where one backend ran."""
    ok = df[df.status == "ok"]
    if ok.backend.nunique() < 2:
        return []
    steps = ok.pivot_table(index=["model", "seq_length"], columns="backend", values="step_ms", aggfunc="median")
    fastest = steps.idxmin(axis=1)
    shown = steps.apply(lambda col: col.map(lambda v: _fixed(v, 1)))
    shown["fastest"] = fastest
    if "tensorflow" in steps:
        shown["tensorflow / fastest"] = (steps["tensorflow"] / steps.min(axis=1)).map(lambda v: _fixed(v, 2))
    shown.index.names = ["model", "T"]
    wins = fastest.value_counts()
    return ["## Backends", "", "Training step (forward+backward, median ms) per backend; a blank: not measured or "
            "not finished (timeout, failure). Fastest: " + ", ".join(f"{b} {n}×" for b, n in wins.items()) + ".", "",
            tables.markdown(shown), ""]


def crossovers(df: pd.DataFrame, column: str, what: str) -> list[str]:
    """Per panel and model: where the model's ``column`` rises above or falls below the reference's, in words
    (the reference's first variant in the panel: ``lstm`` before ``lstm XLA``)."""
    ref_model = roles.reference(df.model.unique())
    lines = []
    for task, panel in df[df[column].notna()].groupby("task", sort=True):
        refs = sorted(panel.variant[panel.model == ref_model].unique())
        if not refs:
            continue
        theirs = panel[panel.variant == refs[0]].groupby("seq_length")[column].median()
        for model, runs in panel[panel.variant != refs[0]].groupby("variant", sort=True):
            ratio = (runs.groupby("seq_length")[column].median() / theirs).dropna()
            if ratio.empty:
                continue
            if len(ratio) == 1:
                lines.append(f"{task}: {model}'s {what} is {ratio.iloc[0]:.2g}× {refs[0]}'s at T={ratio.index[0]:g}.")
                continue
            span = f"T={ratio.index[0]:g}…{ratio.index[-1]:g}: {ratio.iloc[0]:.2g}× → {ratio.iloc[-1]:.2g}×"
            lines.append(f"{task}: {model}'s {what} {_verdict(ratio > 1, ratio.index, refs[0])} ({span}).")
    return lines


def _verdict(above: pd.Series, lengths, ref: str) -> str:
    """How a ratio to the reference's crosses 1 along the lengths, in words."""
    if above.all():
        return f"is above {ref}'s at every tested length"
    if not above.any():
        return f"is below {ref}'s at every tested length"
    flips = [i for i in range(1, len(above)) if above.iloc[i] != above.iloc[i - 1]]
    if len(flips) > 1:
        return f"crosses {ref}'s more than once"
    i = flips[0]
    verb = "rises above" if above.iloc[i] else "falls below"
    return f"{verb} {ref}'s between T={lengths[i - 1]:g} and T={lengths[i]:g}"


def oom_lines(df: pd.DataFrame) -> list[str]:
    oom = df[df.status == "oom"]
    return [f"{task}: {v} ran out of memory at T={', '.join(f'{t:g}' for t in sorted(g.seq_length))}."
            for (task, v), g in oom.groupby(["task", "variant"], sort=True)]


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals whatever its size (milliseconds and MiB run to thousands)."""
    return tables.NONE if value != value else f"{value:.{digits}f}"


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Every measured configuration, as ``bench speed`` prints it."""
    percent = 100 * df.achieved_gflops / df.roofline_gflops
    out = pd.DataFrame({
        "model": df.variant, "H": df.units, "N": df.batch, "T": df.seq_length,
        "fwd ms": df.forward_ms.map(lambda v: _fixed(v, 1)), "f+b ms": df.step_ms.map(lambda v: _fixed(v, 1)),
        "f+b p10–p90": [f"{_fixed(a, 1)}–{_fixed(b, 1)}" for a, b in zip(df.p10_ms, df.p90_ms)],
        "compile s": df.compile_s.map(lambda v: _fixed(v, 1)),
        "peak MiB": (df.peak_bytes / 2**20).map(lambda v: _fixed(v, 1)),
        "GFLOP/s": df.achieved_gflops.map(lambda v: _fixed(v, 1)),
        "GFLOP/s (DeepBench)": df.deepbench_gflops.map(lambda v: _fixed(v, 1)),
        "% roofline": percent.map(lambda v: _fixed(v, 0)), "status": df.status,
    })
    return out.set_index(["model", "H", "N", "T"])


def _figures(df: pd.DataFrame, folder: Path) -> list[str]:
    """Step time, GFLOP/s and memory against length, a panel per width and batch; the index.md lines."""
    colours = figures.palette(df.variant)
    with plt.rc_context(figures.STYLE):
        return (figures.section("1. Step time", figures.speed(df, colours, folder),
                                ("Median forward+backward step (top) and training tokens/s (bottom) against "
                                 "sequence length.", "A panel per width H and batch N."))
                + figures.section("2. Achieved GFLOP/s", figures.gflops(df, colours, folder),
                                  ("Analytic training FLOPs (3 × forward, full layer) over the median step time.",
                                   "Dashed: the measured matmul roofline."))
                + figures.section("3. Peak memory", figures.memory(df, colours, folder),
                                  ("Peak memory of the configuration's process against sequence length (GPU "
                                   "allocator peak, or RSS growth on the CPU).", "Crosses: out of memory (oom).")))


def write(records: list[dict], skipped: list[str], sweep: str, folder: Path, environment: list[str]) -> None:
    """Figures and tables of the speed records into ``folder``, and index.md showing them."""
    df = speed_frame(records)
    findings = (crossovers(df, "peak_bytes", "peak memory") + crossovers(df, "step_ms", "training step time")
                + oom_lines(df)) or ["(no model measured beside the reference at the same width and batch)"]
    out = [f"# Speed benchmark `{sweep}`", "", f"{len(df)} configurations, each timed in a fresh process "
           "(first call apart as compile time; median of synchronised steps).", "",
           "## Findings", ""] + [f"- {line}" for line in findings] + [""]
    if df.groupby("task").seq_length.nunique().max() < 2:
        out += ["(Every width and batch was measured at one sequence length: no figures against length; "
                "see the table.)", ""]
    else:
        out += _figures(df, folder)
    out += backend_table(df) + ["## Every configuration", "", tables.markdown(table(df)), ""]
    floors = df[df.floor_ms.notna()]
    if len(floors):
        out += ["## Matmul floor", "", "The step's matmuls timed alone (`--breakdown`); the rest of the step is "
                "gate arithmetic, loop control, memory traffic and the optimizer.", "",
                tables.markdown(pd.DataFrame({
                    "model": floors.variant, "H": floors.units, "N": floors.batch, "T": floors.seq_length,
                    "f+b ms": floors.step_ms.map(lambda v: _fixed(v, 1)),
                    "floor ms": floors.floor_ms.map(lambda v: _fixed(v, 1)),
                    "floor %": (100 * floors.floor_ms / floors.step_ms).map(lambda v: _fixed(v, 0)),
                }).set_index(["model", "H", "N", "T"])), ""]
    if skipped:
        out += ["## Skipped files", ""] + [f"- {s}" for s in skipped] + [""]
    out += ["## Environment", ""] + environment + [""]
    (folder / "index.md").write_text("\n".join(out))
