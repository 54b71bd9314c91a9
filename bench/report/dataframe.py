"""Run records → one tidy DataFrame (a row per run), read defensively: a missing field is a missing value.

Each optional measurement has one small accessor, so when the record schema grows or a field changes
shape only that accessor changes. Curves (history, gradient flow) stay in object columns and are
unrolled into long frames by ``history_frame`` and ``gradient_frame``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.runner import table
from tasks.base import normalised

# Training options that are budgets, not hyperparameters: they never take part in best-value selection.
DEFAULT = "default"  # a variant's label for a value the run did not ask for
BUDGET_KEYS = {"steps", "max_seconds", "eval_every", "val_size", "test_size", "early_stop", "jit_compile"}
KEYS = ["task", "dependency", "variant", "seed", "run_id"]


def lookup(d, *path):
    """``d[path[0]][path[1]]…`` or None when any step is missing or not a mapping."""
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _number(value) -> float:
    """A finite float, or NaN for anything else (None, strings, lists, inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def step_ms(r: dict) -> float:
    return _number(lookup(r, "speed", "step_ms_median"))


def tokens_per_s(r: dict) -> float:
    return _number(lookup(r, "speed", "tokens_per_s"))


def infer_ms(r: dict) -> float:
    """Inference latency per batch in ms: the first ``speed`` key that names inference and a batch."""
    speed = r.get("speed") if isinstance(r.get("speed"), dict) else {}
    for key in sorted(speed):
        if key.startswith("infer") and "seq" not in key:
            return _number(speed[key])
    return math.nan


def peak_bytes(r: dict) -> float:
    return _number(lookup(r, "memory", "peak_bytes"))


def flops_per_step(r: dict) -> float:
    return _number(r.get("flops_per_step"))


def achieved_gflops(r: dict) -> float:
    value = _number(lookup(r, "speed", "achieved_gflops"))
    if math.isnan(value) and step_ms(r) > 0:  # derivable from the two fields it is defined by
        value = flops_per_step(r) / (step_ms(r) / 1000.0) / 1e9
    return value


def roofline_gflops(r: dict) -> float:
    return _number(lookup(r, "speed", "roofline_gflops"))


def state_size(r: dict) -> float:
    return _number(r.get("state_size"))


def grad_norm(r: dict) -> float:
    """A run's typical pre-clipping gradient norm: a number, or the median of a summary or of the history."""
    value = r.get("grad_norm")
    if isinstance(value, dict):
        value = next((value[k] for k in ("median", "mean", "last", "final") if k in value), None)
    if value is None:
        history = [_number(e.get("grad_norm")) for e in r.get("history") or [] if isinstance(e, dict)]
        history = [v for v in history if not math.isnan(v)]
        value = float(np.median(history)) if history else None
    return _number(value)


def cudnn(r: dict):
    """Whether the run used cuDNN (observed on a GPU) or could use it (on a CPU, where nothing is observed):
    True, False or None."""
    value = r.get("cudnn")
    if isinstance(value, dict):
        observed = value.get("used") is not None and value.get("observed") != "no GPU"
        value = value.get("used") if observed else value.get("eligible")
    return value if isinstance(value, bool) else None


def test_length(r: dict) -> float:
    """The length a model was tested at when it differs from training (length extrapolation)."""
    for value in (lookup(r, "task_params", "test_length"), lookup(r, "metrics", "test_length")):
        if value is not None:
            return _number(value)
    return math.nan


def extrapolation(r: dict) -> list[tuple[float, float]]:
    """(test length, test score) pairs of ``metrics.extrapolation`` (the trained model scored at longer lengths)."""
    points = lookup(r, "metrics", "extrapolation")
    pairs = [(_number(p.get("length")), _number(p.get("score"))) for p in points or [] if isinstance(p, dict)]
    return sorted((x, y) for x, y in pairs if not (math.isnan(x) or math.isnan(y)))


def curve(value) -> list[tuple[float, float]]:
    """A curve as sorted (x, y) pairs, from the shapes a record may hold:
    ``{"distance": [...], "norm": [...]}``, ``{"1": 0.3, ...}``, ``[[x, y], ...]`` or ``[y0, y1, ...]``."""
    if isinstance(value, dict):
        xs = next((value[k] for k in ("distance", "distances", "x", "t", "positions") if k in value), None)
        ys = next((value[k] for k in ("norm", "norms", "grad_norm", "y", "values") if k in value), None)
        if isinstance(xs, list) and isinstance(ys, list):
            pairs = zip(xs, ys)
        else:
            pairs = value.items()
    elif isinstance(value, list):
        pairs = (p if isinstance(p, (list, tuple)) and len(p) == 2 else (i, p) for i, p in enumerate(value))
    else:
        return []
    out = []
    for x, y in pairs:
        try:
            x = float(x)
        except (TypeError, ValueError):
            continue
        y = _number(y)
        if math.isfinite(x) and not math.isnan(y):
            out.append((x, y))
    return sorted(out)


def gradient_flow(r: dict) -> dict[str, list[tuple[float, float]]]:
    """``{"init": curve, "final": curve}`` of ‖∂L/∂x_t‖ against distance from the loss, whichever exist."""
    flow = r.get("gradient_flow")
    if not isinstance(flow, dict):
        return {}
    phases = {"init": ("init", "initial", "start"), "final": ("final", "end", "trained")}
    out = {}
    for phase, names in phases.items():
        points = curve(next((flow[n] for n in names if n in flow), None))
        if points:
            out[phase] = points
    return out


def history(r: dict) -> list[dict]:
    return [e for e in r.get("history") or [] if isinstance(e, dict)]


def _variant(model: str, params: dict, varying: list[str]) -> str:
    """``lstm`` or, when a sweep grids a model's hyperparameters, ``lstm(units=64)``."""
    shown = ", ".join(f"{k.removeprefix('train.')}={params.get(k, DEFAULT)}" for k in varying)
    return f"{model}({shown})" if shown else model


def _score(value: float, baseline: float, higher_is_better) -> float:
    """The task's normalisation (0 = memoryless, 1 = perfect), applied to a validation value."""
    if higher_is_better is None or math.isnan(value) or math.isnan(baseline):
        return math.nan
    return normalised(value, baseline, higher_is_better)


def row(r: dict) -> dict:
    """The scalar columns of one record."""
    m = r.get("metrics") if isinstance(r.get("metrics"), dict) else {}
    train = r.get("train") if isinstance(r.get("train"), dict) else {}
    baseline, higher = _number(m.get("baseline")), m.get("higher_is_better")
    task_length = lookup(r, "task_params", "length")
    return {
        "run_id": str(r.get("run_id")), "task": str(r.get("task")), "model": str(r.get("model")),
        "length": _number(task_length), "dependency": _number(r.get("dependency", task_length)),
        "seq_length": _number(r.get("length", task_length)), "seed": _number(r.get("seed")),
        "status": str(r.get("status")), "error": r.get("error"),
        "metric": m.get("metric"), "value": _number(m.get("value")), "baseline": baseline,
        "higher_is_better": higher, "score": _number(m.get("score")), "solved": m.get("solved") is True,
        "val": _number(m.get("val")), "val_score": _score(_number(m.get("val")), baseline, higher),
        "steps_to_solve": _number(m.get("steps_to_solve")), "seconds_to_solve": _number(m.get("seconds_to_solve")),
        "steps": _number(r.get("steps")), "step_cap": _number(train.get("steps")),
        "train_seconds": _number(r.get("train_seconds")),
        "wall_s": _number(r.get("wall_s")), "params": _number(r.get("params")),
        "step_ms": step_ms(r), "tokens_per_s": tokens_per_s(r), "infer_ms": infer_ms(r),
        "peak_bytes": peak_bytes(r), "flops_per_step": flops_per_step(r), "achieved_gflops": achieved_gflops(r),
        "roofline_gflops": roofline_gflops(r), "state_size": state_size(r), "grad_norm": grad_norm(r),
        "cudnn": cudnn(r), "test_length": test_length(r),
        **{f"train.{k}": v for k, v in sorted(train.items()) if k not in BUDGET_KEYS},
    }


def frame(records: list[dict]) -> pd.DataFrame:
    """One row per run (``row``, its variant and curves), sorted by task, dependency, model variant, seed and run
    id."""
    if not records:
        return table.frame([], columns=[*row({}), "variant", "history", "gradient_flow", "model_params",
                                        "extrapolation"])
    varying = _varying_model_params(records)

    def full(r: dict) -> dict:
        params = r.get("model_params") if isinstance(r.get("model_params"), dict) else {}
        return {**row(r), "variant": _variant(str(r.get("model")), shown_params(r), varying.get(r.get("model"), [])),
                "model_params": params, "history": history(r), "gradient_flow": gradient_flow(r),
                "extrapolation": extrapolation(r)}

    df = table.frame(records, full)
    df["solved"] = df["solved"].astype(bool)
    return df.sort_values(KEYS, ignore_index=True, na_position="last")


def asked_params(r: dict) -> dict:
    """The model hyperparameters the run asked for (its request; a record without one: its resolved values). A
    width sized from a parameter budget differs by task; the budget asked for does not."""
    request = r.get("request") if isinstance(r.get("request"), dict) else {}
    params = request.get("model_params", r.get("model_params"))
    return params if isinstance(params, dict) else {}


def ablated_train(r: dict) -> dict:
    """The training options the run asked for that make a variant (clipnorm, tbptt ...): not the learning rate
    (a sweep that grids it tunes it: ``best_hyperparameters``) nor the budget."""
    request = r.get("request") if isinstance(r.get("request"), dict) else {}
    train = request.get("train") if isinstance(request.get("train"), dict) else {}
    return {k: v for k, v in train.items() if k != "lr" and k not in BUDGET_KEYS}


def shown_params(r: dict) -> dict:
    """What tells a run's variant apart: the hyperparameters asked for, and the training options asked for
    (``ablated_train``, as ``train.<option>``)."""
    return {**asked_params(r), **{f"train.{k}": v for k, v in ablated_train(r).items()}}


def _varying_model_params(records: list[dict]) -> dict[str, list[str]]:
    """Per model, the keys of ``shown_params`` that take more than one value (not asked counts as a value)."""
    shown = [(str(r.get("model")), shown_params(r)) for r in records]
    keys: dict[str, set] = {}
    for model, params in shown:
        keys.setdefault(model, set()).update(params)
    return {m: sorted(k for k in ks if len({repr(p.get(k, DEFAULT)) for model, p in shown if model == m}) > 1)
            for m, ks in keys.items()}


def tuned_keys(df: pd.DataFrame) -> list[str]:
    """Training hyperparameters the sweep grids within one (task, length, model variant)."""
    keys = [c for c in df.columns if c.startswith("train.")]
    if df.empty:
        return []
    groups = df.groupby(["task", "dependency", "variant"], dropna=False)
    return [k for k in keys if (groups[k].agg(lambda s: s.astype(str).nunique()) > 1).any()]


def best_hyperparameters(df: pd.DataFrame) -> pd.DataFrame:
    """Keep, per (task, length, model variant), the runs of the tuned values with the best mean validation
    score over seeds (runs that did not finish count as 0, the memoryless baseline); test scores are kept."""
    keys = tuned_keys(df)
    if not keys:
        return df
    df = df.copy()
    df["_config"] = df[keys].astype(str).agg("|".join, axis=1)
    df["_val"] = df["val_score"].where(df.status == "ok", 0.0).fillna(0.0)
    mean = df.groupby(["task", "dependency", "variant", "_config"], dropna=False)["_val"].mean().reset_index()
    mean = mean.sort_values(["task", "dependency", "variant", "_val", "_config"], ascending=[True, True, True, False, True])
    best = mean.drop_duplicates(["task", "dependency", "variant"])[["task", "dependency", "variant", "_config"]]
    out = df.merge(best, on=["task", "dependency", "variant", "_config"])
    return out.drop(columns=["_config", "_val"]).sort_values(KEYS, ignore_index=True)


def history_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long frame of validation curves: task, dependency, variant, seed, step, seconds, val_score."""
    rows = []
    for r in df.itertuples():
        for e in r.history:
            val = _number(e.get("val"))
            rows.append({"task": r.task, "dependency": r.dependency, "variant": r.variant, "seed": r.seed,
                         "step": _number(e.get("step")), "seconds": _number(e.get("seconds")),
                         "val_score": _score(val, r.baseline, r.higher_is_better)})
    return pd.DataFrame(rows, columns=["task", "dependency", "variant", "seed", "step", "seconds", "val_score"])


def gradient_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long frame of gradient-flow curves: task, dependency, variant, seed, phase, distance, norm."""
    rows = [{"task": r.task, "dependency": r.dependency, "variant": r.variant, "seed": r.seed, "phase": phase,
             "distance": x, "norm": y}
            for r in df.itertuples() for phase, points in sorted(r.gradient_flow.items()) for x, y in points]
    return pd.DataFrame(rows, columns=["task", "dependency", "variant", "seed", "phase", "distance", "norm"])


def extrapolation_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long frame of length extrapolation: task, trained (length), variant, seed, test_length, score.

    A run with ``metrics.extrapolation`` gives its trained length (its own test score) and each longer one;
    a run whose task sets ``test_length`` gives that point. Per task only the shortest trained length that
    was extrapolated from is kept, so each panel shows one training length.
    """
    columns = ["task", "trained", "variant", "seed", "test_length", "score"]
    rows = []
    for r in df[df.status == "ok"].itertuples():
        points = list(getattr(r, "extrapolation", None) or [])
        if points:
            points = [(r.length, r.score), *points]
        elif not math.isnan(r.test_length):
            points = [(r.test_length, r.score)]
        rows += [dict(zip(columns, (r.task, r.length, r.variant, r.seed, x, y))) for x, y in points]
    out = pd.DataFrame(rows, columns=columns)
    if out.empty:
        return out
    shortest = out.groupby("task").trained.transform("min")
    return out[out.trained == shortest].reset_index(drop=True)
