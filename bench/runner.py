"""Run one spec end to end: build, train, score, measure; return its record (never raises for a bad run)."""

from __future__ import annotations

import time
import traceback

import keras
import numpy as np

import models
import tasks
from bench import record
from bench.spec import RunSpec
from bench.train import compile_model, fit, predict, resolve_jit

WARMUP_STEPS = 10  # steps left out of the steady-state step time (tracing, compilation, caches)


def run(spec: RunSpec) -> dict:
    """Train and score ``spec``; the record's ``status`` says how it ended (ok, diverged, oom, failed)."""
    spec = spec.resolved()
    started, clock = record.now(), time.perf_counter()
    rec = {
        "schema": record.SCHEMA, "run_id": spec.run_id, **spec.to_dict(), "status": "ok", "error": None,
        "started_at": started,
    }
    try:
        rec.update(_train_and_score(spec))
    except Exception as e:  # a failed run is data: its record says why
        rec["status"] = "oom" if _is_oom(e) else "failed"
        rec["error"] = _last_line(e)
        rec["traceback"] = traceback.format_exc(limit=8)
    rec["env"] = record.environment()
    rec["finished_at"], rec["wall_s"] = record.now(), round(time.perf_counter() - clock, 3)
    return rec


def _train_and_score(spec: RunSpec) -> dict:
    keras.utils.set_random_seed(spec.seed)
    task = tasks.create(spec.task, **spec.task_params)
    signature = task.signature
    model = models.create(spec.model, signature, **spec.model_params)
    compile_model(model, signature, spec.train)
    result = fit(model, task, spec.train, spec.seed)
    out = {
        "dependency": signature.dependency,
        "length": signature.length,
        "params": int(model.count_params()),
        "cudnn": {"eligible": models.entry(spec.model).cudnn},
        "jit_compile": resolve_jit(spec.train.jit_compile),
        "history": [vars(e) for e in result.history],
        "speed": _speed(result, spec.train.batch_size, signature.length),
        "stop": result.stop,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
    }
    if result.stop == "diverged":
        out["status"] = "diverged"
        out["error"] = f"loss became NaN or infinite by step {result.diverged_at}"
        out["metrics"] = {"diverged_at": result.diverged_at}
        return out
    out["metrics"] = _metrics(task, model, spec, result)
    return out


def _metrics(task, model, spec, result) -> dict:
    x, y = task.generate("test", spec.train.test_size, seed=spec.seed)
    prediction = predict(model, x)
    value = task.evaluate(y, prediction)
    first_solved = next((e for e in result.history if task.solved(e.val)), None)
    extra = task.extra_metrics(y, prediction) if hasattr(task, "extra_metrics") else {}
    return {
        "metric": task.metric, "value": value, "baseline": task.baseline, "score": task.score(value),
        "higher_is_better": task.higher_is_better, "solved_at": task.solved_at, "solved": task.solved(value),
        "val": result.history[-1].val if result.history else None,
        "steps_to_solve": first_solved.step if first_solved else None,
        "seconds_to_solve": round(first_solved.seconds, 3) if first_solved else None,
        **extra,
    }


def _speed(result, batch_size: int, length: int) -> dict:
    steps = np.asarray(result.step_seconds) * 1000.0
    if len(steps) == 0:
        return {}
    steady = steps[min(WARMUP_STEPS, len(steps) - 1) :] if len(steps) > 1 else steps
    median = float(np.median(steady))
    q1, q3 = np.percentile(steady, [25, 75])
    return {
        "first_step_ms": round(float(steps[0]), 3),
        "step_ms_median": round(median, 4), "step_ms_iqr": round(float(q3 - q1), 4),
        "timed_steps": int(len(steady)),
        "tokens_per_s": round(batch_size * length / (median / 1000.0), 1),
    }


def _is_oom(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, MemoryError) or "resourceexhausted" in text or "out of memory" in text


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".strip()
