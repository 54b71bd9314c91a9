"""Reports: run records → one tidy DataFrame → figures (PNG + SVG) and Markdown tables under reports/<sweep>/.

``build(sweep)`` reads only records (it never trains), and writes the same bytes from the same records.
A sweep of ``bench speed`` records gets the speed report (``bench.report.speed``) instead.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bench.runner import record
from bench.report import figures, gates, literature, speed, tables, tune
from bench.report.findings import findings
from bench.report.dataframe import (best_hyperparameters, extrapolation_frame, frame, gradient_frame, history_frame,
                                    lookup, tuned_keys)

__all__ = ["build", "frame"]


def _environment(records: list[dict]) -> list[str]:
    """Device, backend and versions the records were measured with (each distinct value once)."""
    seen: dict[str, set] = {}
    for r in records:
        env = r.get("env") if isinstance(r.get("env"), dict) else {}
        for key in ("device", "backend", "python", "cpu_count", "git_commit"):
            if env.get(key) is not None:
                seen.setdefault(key, set()).add(str(env[key]))
        for name, version in (env.get("versions") or {}).items():
            seen.setdefault(name, set()).add(str(version))
    if not seen:
        return ["(no environment in the records)"]
    return [f"- {key}: {', '.join(sorted(values))}" for key, values in seen.items()]


def _budget_line(records: list[dict]) -> str:
    """What every run was given, from the records: steps, batch, parameter budget, seeds (each distinct value)."""
    def values(*path) -> str:
        seen = {v for r in records if (v := lookup(r, *path)) is not None}
        return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in sorted(seen, key=str))

    budget, cap, seeds = values("param_budget"), values("train", "max_seconds"), len({r.get("seed") for r in records})
    return (f"Budget per run: {values('train', 'steps') or '—'} optimizer steps of batch "
            f"{values('train', 'batch_size') or '—'}" + (f", {budget} trainable parameters" if budget else "")
            + (f"; training time capped at {cap} s" if cap else "") + f"; {seeds} seed(s).")


def _cost_line(records: list[dict], trials: list[dict]) -> str:
    """What the sweep cost: the runs' wall times summed, in worker-hours (and its tuning's, where it was tuned)."""
    def hours(rows) -> float:
        return sum(r.get("wall_s") or 0.0 for r in rows) / 3600

    tuning = f" and its tuning {hours(trials):.1f} in {len(trials)} trials" if trials else ""
    return f"Cost: the runs took {hours(records):.1f} worker-hours{tuning} (wall times summed)."


def _status_line(df: pd.DataFrame) -> str:
    counts = df.status.value_counts().sort_index()
    return f"{len(df)} runs; statuses: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def write(df: pd.DataFrame, records: list[dict], skipped: list[str], sweep: str, folder: Path,
          trials: list[dict] = ()) -> None:
    """Every figure and table of ``df`` into ``folder``, and index.md showing them; the tuning section also from
    ``trials`` (the records of ``bench tune --from SWEEP``, in ``<sweep>-tune``)."""
    tuned = [k.removeprefix("train.") for k in tuned_keys(df)]
    note = (f"Best {', '.join(tuned)} per (task, length, model) chosen on validation, scored on test."
            if tuned else "")
    best = best_hyperparameters(df)
    grad, hist = gradient_frame(best), history_frame(best)
    colours = figures.palette(df.variant)
    tasks = figures._tasks(best)
    with plt.rc_context(figures.STYLE):
        out = [f"# Sweep `{sweep}`", "", _status_line(df) + ".", "", _budget_line(records), "",
               _cost_line(records, trials), ""]
        out += ["## Findings", ""] + [f"- {line}" for line in findings(best, grad)] + [""]
        if note:
            out += [f"Protocol: {note}", ""]
        out += ["## Longest dependency solved", "",
                "The largest dependency length at which a model is solved in at least half of its seeds "
                "(— : none of the tested lengths). The suite's headline table.", "",
                tables.markdown(tables.longest_solved_table(best)), ""]
        real = tables.real_data_table(best)
        if not real.empty:
            out += ["Real datasets (no dependency to climb, nothing counts as solved): mean test metric ± 95 % "
                    "interval over seeds.", "", tables.markdown(real), ""]
        gaps = tables.untried(best)
        if gaps:
            out += ["Not tried (a difficulty ladder stops a model's climb after two failed lengths): "
                    + "; ".join(gaps) + ".", ""]
        out += _steps_section(best, colours, folder, note)
        out += literature.section(best, records)
        out += figures.section("1. Score versus dependency length", figures.score_vs_dependency(best, colours, folder),
                       ("Normalised test score (0 = memoryless baseline, dashed; 1 = perfect) against dependency "
                        "length, log axis.", "Lines: mean over seeds of finished runs; bands and ± : 95 % interval."),
                       tables.markdown(tables.score_table(best)), note)
        out += figures.section("2. Time to solve", figures.time_to_solve(best, colours, folder),
                       ("Training seconds until validation first reached the task's solved threshold (steps: the "
                        "figure under the headline table).", "Crosses: unsolved runs, drawn at the seconds they "
                        "spent. Table: median steps and seconds over the seeds that solved."),
                       tables.markdown(tables.time_to_solve_table(best)), note)
        out += figures.section("3. Training speed", figures.speed(best, colours, folder),
                       ("Median steady-state training step time (top) and training tokens/s (bottom) against "
                        "sequence length, log–log.", "Table: median step time in ms."),
                       tables.markdown(tables.median_table(best, "step_ms")))
        out += figures.section("4. Achieved GFLOP/s", figures.gflops(best, colours, folder),
                       ("Analytic FLOPs of a training step over its measured time, against sequence length.",
                        "Dashed: the machine's measured dense matmul throughput (roofline)."),
                       tables.markdown(tables.median_table(best, "achieved_gflops")))
        out += figures.section("5. Peak memory", figures.memory(best, colours, folder),
                       ("Peak memory of a run against sequence length, log–log (GPU allocator peak, or the "
                        "worker's RSS growth on the CPU).", "Crosses at the top: runs that ran out of memory (oom)."),
                       tables.markdown(tables.memory_table(best)))
        out += figures.section("6. Gradient flow", figures.gradient_flow(grad, tasks, colours, folder),
                       ("‖∂L/∂x_t‖ against distance from the loss, at initialisation (left) and after training "
                        "(right), on a fixed batch.", "The vanishing gradient, measured: a falling curve cannot "
                        "carry credit across the dependency. Table: farthest over nearest."),
                       tables.markdown(tables.gradient_table(grad)))
        points = figures.cost_points(best)
        out += figures.section("7. Accuracy versus cost", figures.accuracy_vs_cost(points, tasks, colours, folder),
                       ("Mean test score over all lengths and seeds against mean training seconds per run, a "
                        "point per model.", "Line: the Pareto front (no other model is both cheaper and better)."),
                       tables.markdown(tables.cost_table(points)), note)
        out += figures.section("8. Learning curves", figures.learning_curves(hist, best, colours, folder),
                       ("Validation score against training step, a line per seed, a panel per model, at the "
                        "dependency that separates models most (the widest spread of mean scores).",
                        "Curves end where runs stopped: solved, out of steps or of time; one still rising at the "
                        "panel's right edge was still learning at its budget. Table: every dependency."),
                       tables.markdown(tables.learning_table(hist)), note)
        ext = extrapolation_frame(best)
        out += figures.section("9. Length extrapolation", figures.extrapolation(ext, colours, folder),
                       ("Test score against test length for models trained at one length (dotted) and scored, "
                        "with the same weights, at the longer lengths of `train.test_lengths`.",
                        "Empty unless the sweep sets `test_lengths`; per task, the shortest trained length."),
                       tables.markdown(tables.extrapolation_table(ext), "(no run sets `test_lengths`)"), note)
    out += tune.section([*records, *trials], folder)
    for task, rec in _gate_examples(records).items():
        out += gates.gate_section(rec, folder, name=f"gates_{task}")
    out += ["## 10. Run status", "", "Runs per status and model, every run of the sweep (failures stay "
            "visible).", "", tables.markdown(tables.status_table(df)), ""]
    out += ["## 11. Ablations", "", "Mean test score per variant, for model families with variants.", ""]
    ablations = tables.ablation_tables(best)
    for family, table in ablations.items():
        out += [f"### {family}", "", tables.markdown(table), ""]
    if not ablations:
        out += ["(no model family with variants in this sweep)", ""]
    failed = df[df.status.isin(["failed", "oom", "timeout", "diverged"]) & df.error.notna()]
    if len(failed):
        out += ["## Errors", ""] + [f"- `{r.run_id}` {r.task} {r.variant} dependency {int(r.dependency) if r.dependency == r.dependency else '?'}"
                                    f" seed {int(r.seed) if r.seed == r.seed else '?'}: {r.status}: {r.error}"
                                    for r in failed.itertuples()] + [""]
    if skipped:
        out += ["## Skipped files", ""] + [f"- {s}" for s in skipped] + [""]
    out += ["## Environment", ""] + _environment(records) + [""]
    (folder / "index.md").write_text("\n".join(out))


STEPS_CAPTION = ("Optimizer steps until validation first reached the task's solved threshold, against dependency "
                 "length, log–log: the median over seeds (the lower one for an even count), a run that did not "
                 "solve counting at its step cap (`train.steps`).",
                 "Filled: solved in at least half the seeds (the headline's rule); open, on the dashed cap line: not. "
                 "Lines are offset slightly along x so that coinciding ones stay visible. Table: median steps "
                 "(> cap: not solved in half the seeds) · seeds solved.")


def _steps_section(best: pd.DataFrame, colours: dict, folder: Path, note: str) -> list[str]:
    """The headline's companion: steps to solve against dependency, for sweeps with difficulty ladders."""
    points = figures.solve_points(tables.ladder_runs(best))
    if points.empty:
        return []
    return figures.section("Steps to solve against dependency", figures.steps_to_solve(points, colours, folder),
                           STEPS_CAPTION, tables.markdown(tables.steps_to_solve_table(points)), note)


def _gate_examples(records: list[dict]) -> dict[str, dict]:
    """Per task, the finished run with gate traces that scored best (the longer dependency on a tie): what its
    cell learned to remember is worth drawing."""
    best: dict[str, dict] = {}
    for r in records:
        score = (r.get("metrics") or {}).get("score")
        if r.get("status") != "ok" or not r.get("gate_traces") or not isinstance(score, (int, float)):
            continue
        key = (score, r.get("dependency") or 0)
        task = str(r.get("task"))
        if task not in best or key > ((best[task]["metrics"]["score"]), best[task].get("dependency") or 0):
            best[task] = r
    return dict(sorted(best.items()))


def build(sweep: str, results: Path | str = "results", out: Path | str = "reports") -> Path:
    """Write reports/<sweep>/ from the records of the sweep; return the folder."""
    records, skipped = record.load(results, sweep)
    if not records:
        raise FileNotFoundError(f"no run records for sweep {sweep!r} under {Path(results) / sweep}")
    folder = Path(out) / sweep
    folder.mkdir(parents=True, exist_ok=True)
    records, notes = _of_one_kind(records, sweep)
    if not records:
        raise FileNotFoundError(f"no training or speed records for sweep {sweep!r} under {Path(results) / sweep}: "
                                + "; ".join(notes))
    records = sorted(records, key=lambda r: str(r.get("run_id")))
    skipped = [_relative(s, Path(results)) for s in skipped] + notes
    if records[0].get("kind") == "speed":
        speed.write(records, skipped, sweep, folder, _environment(records))
    else:
        trials = record.load(results, f"{sweep}-tune")[0] if (Path(results) / f"{sweep}-tune").is_dir() else []
        write(frame(records), records, skipped, sweep, folder, sorted(trials, key=lambda r: str(r.get("run_id"))))
    return folder


def _of_one_kind(records: list[dict], sweep: str) -> tuple[list[dict], list[str]]:
    """The records a report reads: those of the folder's most common kind (a speed report, or a training one), and
    one line for those of other kinds, left out, and for those that name another sweep (``record.foreign``)."""
    speeds = sum(r.get("kind") == "speed" for r in records)
    return record.foreign(records, sweep, ("speed",) if speeds > len(records) / 2 else ("train",))


def summary(folder: Path, results: Path | str, sweep: str) -> str:
    """One line on a built report: where it is, the records by status, the figures, and what it left out."""
    records, skipped = record.load(results, sweep)
    records, notes = _of_one_kind(records, sweep)
    statuses = Counter(str(r.get("status")) for r in records)
    notes += [f"{len(skipped)} file(s) not read, each named in index.md"] if skipped else []
    return (f"report written to {folder / 'index.md'}: {sum(statuses.values())} records ("
            + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            + f"), {len(list(folder.glob('*.png')))} figures" + "".join(f"; {note}" for note in notes))


def _relative(line: str, results: Path) -> str:
    """A skipped-file line with the results folder left out, so the report does not depend on where it ran."""
    return line.replace(str(results) + "/", "")
