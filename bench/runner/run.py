"""Run one spec end to end: build, train, score, measure; return its record (never raises for a bad run)."""

from __future__ import annotations

import time
import traceback

import keras

import models
import tasks
from bench.runner import measure
from bench.runner import record
from bench.runner.spec import RunSpec
from bench.runner.train import compile_model, fit, predict, resolve_jit


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
    signature, train = task.signature, spec.train
    memory = measure.MemoryProbe().start()
    model = models.create(spec.model, signature, **spec.model_params)
    compile_model(model, signature, train, resolve_jit(train.jit_compile, spec.model, spec.model_params, signature))
    flow_batch = task.generate("val", measure.FLOW_BATCH, seed=spec.seed) if train.gradient_flow else None
    flow = {"init": _flow(model, signature, flow_batch)} if flow_batch else None
    result = fit(model, task, train, spec.seed)
    flops = models.forward_flops(spec.model, signature, train.batch_size, **spec.model_params)
    flops_per_step = 3 * flops if flops else None
    out = {
        "dependency": signature.dependency,
        "length": signature.length,
        "masked": signature.masked,  # right-padded inputs with a mask (Keras' PyTorch and JAX then skip cuDNN)
        "params": int(model.count_params()),
        "state_size": models.state_size(spec.model, signature, **spec.model_params),
        "flops_per_step": flops_per_step,
        "cudnn": _cudnn(model, signature),
        "jit_compile": model.jit_compile,  # the effective value Keras compiled with
        "threads": measure.threads(),
        "history": [vars(e) for e in result.history],
        "speed": measure.speed(result.step_seconds, train.batch_size, signature.length, flops_per_step),
        "stop": result.stop,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
    }
    out["speed"]["roofline_gflops"] = round(measure.roofline_gflops(), 1)
    if result.stop != "diverged":
        x, _ = task.generate("test", train.batch_size, seed=spec.seed)
        out["speed"].update(measure.inference_latency(model, x))
    if flow is not None and result.stop != "diverged":
        flow["final"] = _flow(model, signature, flow_batch)
    out["gradient_flow"] = flow
    out["memory"] = memory.result()
    if result.stop == "diverged":
        out["status"] = "diverged"
        out["error"] = f"loss became NaN or infinite by step {result.diverged_at}"
        out["metrics"] = {"diverged_at": result.diverged_at}
        return out
    out["metrics"] = _metrics(task, model, spec, result)
    if train.test_lengths:
        out["metrics"]["extrapolation"] = _extrapolation(task, model, spec)
    return out


def _metrics(task, model, spec, result) -> dict:
    x, y = task.generate("test", spec.train.test_size, seed=spec.seed)
    prediction = predict(model, x)
    value = task.evaluate(y, prediction)
    first_solved = next((e for e in result.history if task.solved(e.val)), None)
    extra = task.extra_metrics(y, prediction) if hasattr(task, "extra_metrics") else {}
    return {
        "metric": task.metric, "value": value, "test_samples": len(y), "baseline": task.baseline, "score": task.score(value),
        "higher_is_better": task.higher_is_better, "solved_at": task.solved_at, "solved": task.solved(value),
        "val": result.history[-1].val if result.history else None,
        "steps_to_solve": first_solved.step if first_solved else None,
        "seconds_to_solve": round(first_solved.seconds, 3) if first_solved else None,
        **extra,
    }


def _cudnn(model, signature) -> dict:
    """The cuDNN status, less ``used`` where a mask sends Keras' PyTorch and JAX RNNs to their generic loop."""
    status = measure.cudnn_status(model)
    if signature.masked and status["used"] and keras.backend.backend() in ("torch", "jax"):
        status = {**status, "used": False, "why_not": "masked input: Keras' PyTorch and JAX RNNs skip cuDNN"}
    return status


def _extrapolation(task, model, spec) -> list[dict]:
    """Score the trained weights at each of ``train.test_lengths``: the model rebuilt at that length, weights copied."""
    out = []
    for length in spec.train.test_lengths:
        row = {"length": length}
        try:
            longer = tasks.create(spec.task, **{**spec.task_params, "length": length})
            clone = models.create(spec.model, longer.signature, **spec.model_params)
            clone.set_weights(model.get_weights())
            x, y = longer.generate("test", spec.train.test_size, seed=spec.seed)
            value = longer.evaluate(y, predict(clone, x))
            row.update(dependency=longer.signature.dependency, value=value, score=longer.score(value))
        except Exception as e:  # a model whose weights depend on the length cannot be moved: say why
            row["error"] = _last_line(e)
        out.append(row)
    return out


def _flow(model, signature, batch) -> dict:
    x, y = batch
    return measure.gradient_flow(model, measure.flow_loss(signature), x, y)


def _is_oom(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, MemoryError) or "resourceexhausted" in text or "out of memory" in text


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".strip()
