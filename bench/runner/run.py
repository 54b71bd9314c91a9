"""Run one spec end to end: build, train, score, measure; return its record (never raises for a bad run)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import keras

import models
import tasks
from bench.core import backends, kinds, plugins
from bench.core.spec import Resolved, RunSpec
from bench.runner import measure
from bench.runner import precision
from bench.runner import record
from bench.runner.train import compile_model, fit, predict, resolve_jit, set_seed


def run(spec: RunSpec, save_model: str | Path | None = None) -> dict:
    """Train and score ``spec``; return its record (not written: ``record.write`` stores it). Never raises for a
    bad run: the record's ``status`` says how it ended (ok, diverged, oom, failed). With ``save_model``, the
    trained model is saved there as a ``.keras`` file (``load_model`` reads it back)."""
    resolved = spec.resolved()
    backend = backends.ran(spec, keras.backend.backend())

    def guarded(step):
        def call(*args):
            try:
                with plugins.guarded():
                    return step(*args)
            except (SystemExit, plugins.PluginExit) as e:  # plugin code tried to end the process
                raise RunAborted(_exit_line(resolved, e)) from None
        return call

    def train():
        measured = guarded(_train_and_score)(resolved, save_model)
        measured[record.AFTER] = [(name, guarded(phase)) for name, phase in measured.get(record.AFTER, ())]
        return measured

    rec = {**record.capture(resolved.fields(), train), "backend": backend}
    split = rec.get("time_split")
    if split and rec.get("wall_s"):  # compilation, validations, measurements, scoring: the wall time not in steps
        split["outside_steps"] = round(1 - split["steps_s"] / rec["wall_s"], 4)
    return rec


kinds.register("train", RunSpec, run)


class RunAborted(Exception):
    """A run's code tried to end the process; the message names the model's file."""


class _Phases:
    """Wall seconds per phase of a run: ``with phases("build"): ...``; a phase entered twice adds up."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def split(self, result) -> dict:
        """The record's ``time_split``: seconds per phase, training split into its first step (tracing and
        compilation), the other steps and the validations between them."""
        steps = result.step_seconds
        out = {f"{k}_s": round(v, 3) for k, v in self.seconds.items() if k != "training"}
        out.update(first_step_s=round(steps[0], 3) if steps else 0.0, steps_s=round(sum(steps[1:]), 3),
                   validation_s=round(result.validation_seconds, 3))
        return out


def _train_and_score(spec: Resolved, save_model=None) -> dict:
    phases = _Phases()
    with phases("build"):
        set_seed(spec.seed)
        task = tasks.create(spec.task, **spec.task_params)
        signature, train = task.signature, spec.train
        precision.apply(train.precision)
        memory = measure.MemoryProbe().start()
        model = models.create(spec.model, signature, tbptt=train.tbptt, **spec.model_params)
        compile_model(model, signature, train, resolve_jit(train.jit_compile, spec.model, spec.model_params, signature))
    with phases("gradient_flow"):
        flow_batch = task.generate("val", measure.FLOW_BATCH, seed=spec.seed) if train.gradient_flow else None
        flow = {"init": _flow(model, signature, flow_batch)} if flow_batch else None
    with phases("training"):
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
        "jit_compile": model.jit_compile,  # the effective value Keras compiled with
        "threads": measure.threads(),
        "history": [vars(e) for e in result.history],
        "speed": measure.speed(result.step_seconds, train.batch_size, signature.length, flops_per_step),
        "stop": result.stop,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
    }
    diverged = result.stop == "diverged"
    with phases("measurement"):
        out["speed"]["roofline_gflops"] = round(measure.roofline_gflops(), 1)
        x, _ = task.generate("test", train.batch_size, seed=spec.seed)
        out["cudnn"] = _masked(measure.cudnn_status(spec.model, spec.model_params, model, x[:8]), signature)
        if not diverged:
            out["speed"].update(measure.inference_latency(model, x))
        if models.entry(spec.model).family == "recurrent" and not diverged:
            from models.introspect import gate_traces
            out["gate_traces"] = gate_traces(model, task.generate("test", 2, seed=spec.seed)[0])  # None: no LSTM cell
    with phases("gradient_flow"):
        if flow is not None and not diverged:
            flow["final"] = _flow(model, signature, flow_batch)
        out["gradient_flow"] = flow
    out["memory"] = memory.result()
    if diverged:
        out["status"] = "diverged"
        out["error"] = f"loss became {result.diverged_why or 'NaN or infinite'} by step {result.diverged_at}"
        out["metrics"] = {"diverged_at": result.diverged_at}
        out["time_split"] = phases.split(result)
        return out
    with phases("scoring"):
        out["metrics"] = _metrics(task, model, spec, result)
    if result.stop == "time":  # scored, but the step budget was cut short by the wall-clock safety net
        out["status"], out["error"] = "timeout", f"max_seconds {train.max_seconds:g} s reached at step {result.steps}"
    out["time_split"] = phases.split(result)

    def later(name: str, work):  # once scored: what fails (or runs out of time) here is the record's post_error
        def phase(rec):
            try:
                with phases(name):
                    work(rec)
            finally:
                rec["time_split"] = phases.split(result)
        return phase

    out[record.AFTER] = [
        *([("save_model", later("save", lambda rec: rec.update(model_file=_save(model, Path(save_model)))))]
          if save_model else []),
        *([("test_lengths", later("extrapolation", lambda rec: rec["metrics"].update(
            extrapolation=_extrapolation(task, model, spec))))] if train.test_lengths else [])]
    return out


def load_model(path: str | Path, plugins=()):
    """A model saved by ``bench run --save-model`` (or a sweep's), compiled as it trained: the optimizer and every
    built-in layer are registered here, and ``plugins`` (files or modules, as ``--plugin`` takes them) are imported
    first so that their layers are too."""
    import keras

    from bench.core import plugins as loader
    from bench.runner import optim  # noqa: F401  (registers the optimizer the model was saved with)

    loader.load(plugins)
    return keras.saving.load_model(path)


def _save(model, path: Path) -> str:
    """Save atomically (a reader never sees half a file); return the file's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.name


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


def _masked(status: dict, signature) -> dict:
    """The cuDNN status, explained where an eligible model fell back to the generic loop on masked input (Keras'
    PyTorch RNNs do: 10-80x slower on an H100; its JAX ones were measured not to)."""
    if signature.masked and status.get("fallback"):
        status = {**status, "why_not": "masked input: this backend's Keras RNN leaves cuDNN for a mask"}
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
            row["error"] = record.describe(e)
        out.append(row)
    return out


def _flow(model, signature, batch) -> dict:
    x, y = batch
    return measure.gradient_flow(model, measure.flow_loss(signature), x, y)


def _exit_line(spec: Resolved, error: BaseException) -> str:
    """The error of a run whose code tried to end the process (``sys.exit``, ``os._exit``), naming the model's file."""
    source = models.entry(spec.model).source or "its plugin"
    what = f"called sys.exit({str(error.code)[:100]})" if isinstance(error, SystemExit) else str(error)
    return f"model {spec.model!r} ({source}) {what} while building or training"
