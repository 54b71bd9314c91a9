"""What a run measures besides its score: speed, memory, FLOPs, threads, cuDNN, gradient norms and flow.

Everything here is cheap enough to run in every record. GPU branches (allocator peaks, cuDNN use) are
coded for TensorFlow, torch and JAX but were only tested on the CPU.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from models import heads
from tasks import IGNORE

WARMUP_STEPS = 10  # steps left out of the steady-state step time (tracing, compilation, caches)
FLOW_POINTS = 64  # most points of a gradient-flow curve
FLOW_BATCH = 64  # samples of the fixed batch the gradient flow is measured on


def gpu_present() -> bool:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch
        return torch.cuda.is_available()
    if backend == "jax":
        import jax
        return any(d.platform == "gpu" for d in jax.devices())
    return False


# ---------------------------------------------------------------- speed


def speed(step_seconds, batch_size: int, length: int, flops_per_step: float | None) -> dict:
    """First step apart; median and IQR of the steps after warm-up; tokens/s; achieved GFLOP/s."""
    steps = np.asarray(step_seconds) * 1000.0
    if len(steps) == 0:
        return {}
    steady = steps[min(WARMUP_STEPS, len(steps) - 1):] if len(steps) > 1 else steps
    median = float(np.median(steady))
    q1, q3 = np.percentile(steady, [25, 75])
    out = {
        "first_step_ms": round(float(steps[0]), 3),
        "step_ms_median": round(median, 4), "step_ms_iqr": round(float(q3 - q1), 4),
        "timed_steps": int(len(steady)),
        "tokens_per_s": round(batch_size * length / (median / 1000.0), 1),
    }
    if flops_per_step:
        out["achieved_gflops"] = round(flops_per_step / (median / 1000.0) / 1e9, 3)
    return out


def inference_latency(model: keras.Model, x: np.ndarray, repeats: int = 7) -> dict:
    """Median wall time of ``predict_on_batch`` on ``x`` after one warm-up call, per batch and per sequence."""
    model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(model.predict_on_batch(x))
        times.append(time.perf_counter() - start)
    batch_ms = float(np.median(times)) * 1000.0
    return {"infer_batch": len(x), "infer_ms_per_batch": round(batch_ms, 4),
            "infer_ms_per_sequence": round(batch_ms / len(x), 5)}


def roofline_gflops(n: int = 4096, seconds: float = 2.0, refresh: bool = False) -> float:
    """The machine's dense fp32 ``n``×``n`` matmul throughput through ``keras.ops`` (best of repeats for
    ``seconds``), cached per host, backend and device; ``refresh`` (or a cache taken at another ``n``)
    measures again. ``n`` = 4096 reaches the peak: on the quiet 2-core CPU 1024² gave 192 GFLOP/s,
    2048² 220 and 4096² 224, the plateau. On a shared machine the figure is
    as noisy as the load when it was taken (the cache file keeps the load average)."""
    backend = keras.backend.backend()
    device = "gpu" if gpu_present() else "cpu"
    path = _cache_dir() / f"roofline-{socket.gethostname()}-{backend}-{device}.json"
    try:
        cached = json.loads(path.read_text())
        if not refresh and cached.get("n") == n:
            return float(cached["gflops"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    a = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    np.asarray(ops.matmul(a, a))  # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        np.asarray(ops.sum(ops.matmul(a, a)))
        best = max(best, 2.0 * n**3 / (time.perf_counter() - start) / 1e9)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"gflops": best, "n": n, "measured_at": time.time(),
                                    "load_average": os.getloadavg()[0]}))
    except OSError:
        pass
    return best


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstm-bench"


# ---------------------------------------------------------------- memory


class MemoryProbe:
    """Peak memory of this process from ``start()`` on: the GPU allocator's peak, or on the CPU peak RSS
    minus the RSS at ``start()`` (the peak counter is reset there where Linux allows it)."""

    def start(self) -> MemoryProbe:
        self.gpu = gpu_present()
        if self.gpu:
            _reset_gpu_peak()
        else:
            _reset_rss_peak()
            self.rss_before = _proc_status("VmRSS")
        return self

    def result(self) -> dict:
        if self.gpu:
            peak, kind = _gpu_peak()
            return {"peak_bytes": peak, "kind": kind}
        peak = _proc_status("VmHWM")
        if peak is None or self.rss_before is None:
            import resource
            return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                    "kind": "process_maxrss_total"}
        return {"peak_bytes": max(0, peak - self.rss_before), "kind": "process_rss",
                "rss_before_bytes": self.rss_before}


def _proc_status(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status, in bytes (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_rss_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def _reset_gpu_peak() -> None:  # untested: no GPU where this was written
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.reset_memory_stats("GPU:0")
    elif backend == "torch":
        import torch
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak() -> tuple[int | None, str]:  # untested: no GPU where this was written
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"]), "tf_allocator_peak"
    if backend == "torch":
        import torch
        return int(torch.cuda.max_memory_allocated()), "torch_max_memory_allocated"
    if backend == "jax":
        import jax
        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use"), "jax_peak_bytes_in_use"
    return None, "unknown"


# ---------------------------------------------------------------- threads and cuDNN


def threads() -> dict:
    """Intra- and inter-op thread settings of the backend (0 = the backend's own default, one per core)."""
    backend = keras.backend.backend()
    out = {"cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    if backend == "tensorflow":
        import tensorflow as tf
        out.update(intra_op=tf.config.threading.get_intra_op_parallelism_threads(),
                   inter_op=tf.config.threading.get_inter_op_parallelism_threads())
    elif backend == "torch":
        import torch
        out.update(intra_op=torch.get_num_threads(), inter_op=torch.get_num_interop_threads())
    else:  # JAX: XLA's own thread pool, set only through XLA_FLAGS
        out.update(intra_op=0, inter_op=0, xla_flags=os.environ.get("XLA_FLAGS"))
    return out


def all_layers(model):
    """Every layer of ``model``, wrappers opened (Bidirectional's two directions)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        yield layer


def cudnn_status(model: keras.Model) -> dict:
    """Whether the model's recurrent layers can take (and, on a GPU, take) the cuDNN path, and why not.

    Read from the built layers' configurations, the conditions Keras checks before calling cuDNN:
    tanh/sigmoid activations, no recurrent dropout, not unrolled, with bias, GRU ``reset_after``.
    """
    reasons, recurrent = [], 0
    for layer in all_layers(model):
        kind = type(layer).__name__
        if kind == "SimpleRNN":
            reasons.append(f"{layer.name}: SimpleRNN has no cuDNN kernel")
        elif kind in ("LSTM", "GRU"):
            recurrent += 1
            reasons += [f"{layer.name}: {why}" for why in _cudnn_blockers(layer)]
        elif kind == "MultiHeadAttention":
            reasons.append(f"{layer.name}: attention, not a recurrent layer (no cuDNN RNN kernel)")
    eligible = recurrent > 0 and not reasons
    used = None
    if gpu_present():  # untested: no GPU where this was written
        jax_gru = keras.backend.backend() == "jax" and any(type(la).__name__ == "GRU" for la in all_layers(model))
        used = eligible and not jax_gru
    why = None if eligible else ("; ".join(dict.fromkeys(reasons)) or "no recurrent layers")
    return {"eligible": eligible, "used": used, "why_not": why}


def _cudnn_blockers(layer) -> list[str]:
    cell, out = layer.cell, []
    if getattr(layer, "use_cudnn", "auto") is False:
        out.append("use_cudnn=False")
    if keras.activations.serialize(cell.activation) != "tanh":
        out.append(f"activation {keras.activations.serialize(cell.activation)} (cuDNN needs tanh)")
    if keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
        out.append(f"recurrent_activation {keras.activations.serialize(cell.recurrent_activation)} "
                   "(cuDNN needs sigmoid)")
    if cell.recurrent_dropout > 0:
        out.append(f"recurrent_dropout={cell.recurrent_dropout}")
    if layer.unroll:
        out.append("unroll=True")
    if not cell.use_bias:
        out.append("use_bias=False")
    if type(layer).__name__ == "GRU" and not cell.reset_after:
        out.append("reset_after=False")
    return out


# ---------------------------------------------------------------- gradient flow


def gradient_flow(model: keras.Model, loss_fn, x: np.ndarray, y: np.ndarray, points: int = FLOW_POINTS) -> dict:
    """‖∂L/∂x_t‖ for every input position t of the mixer's input, binned to at most ``points`` points.

    x_t is the embedding output for token tasks and the raw features otherwise. L is the loss at the
    task's answer positions only (``answer_mask``), so the curve shows how far back an answer's error
    reaches. ``distance`` is the number of steps from position t to the last answer position.
    """
    mixer_in, head = _split_at_mixer(model)
    inputs = np.asarray(mixer_in(x)) if mixer_in is not None else np.asarray(x, dtype="float32")
    weights = answer_mask(y)
    grads = _input_gradient(head, loss_fn, inputs, y, weights)  # (B, T, D)
    norms = np.sqrt((grads.astype(np.float64) ** 2).sum(axis=(0, 2)))
    length = len(norms)
    answers = np.flatnonzero(weights.reshape(len(weights), -1).any(axis=0)) if weights.ndim > 1 else [length - 1]
    last = int(answers[-1]) if len(answers) else length - 1
    edges = np.linspace(0, length, min(points, length) + 1).astype(int)
    binned = [float(norms[a:b].mean()) for a, b in zip(edges[:-1], edges[1:])]
    centres = [float((a + b - 1) / 2) for a, b in zip(edges[:-1], edges[1:])]
    return {
        "position": centres, "distance": [last - c for c in centres], "grad_norm": binned,
        "first_over_last": float(norms[0] / norms[last]) if norms[last] > 0 else None,
        "wrt": "embedding" if mixer_in is not None else "input", "batch": int(len(x)),
    }


def answer_mask(y: np.ndarray) -> np.ndarray:
    """Weights 1 at the positions whose target carries information: not IGNORE and not the same in every
    sample (copy's blanks are constant, recall's non-query positions are IGNORE); per-sequence targets
    are all answers."""
    y = np.asarray(y)
    if y.ndim < 2 or y.shape[1] == 1:
        return np.ones(len(y), dtype="float32")
    varies = (y != y[:1]).any(axis=0) & (y != IGNORE).any(axis=0)
    return np.broadcast_to(varies & (y != IGNORE), y.shape).astype("float32")


def flow_loss(signature):
    """The loss gradient flow is taken of: unreduced, so answer positions can be weighted."""
    return heads.loss(signature, reduction="sum")


def _split_at_mixer(model):
    """(embedding sub-model or None, model from the mixer's input to the output)."""
    try:
        embed = model.get_layer("embed")
    except ValueError:
        return None, model
    return keras.Model(model.input, embed.output), keras.Model(embed.output, model.output)


def _input_gradient(head, loss_fn, inputs, y, weights) -> np.ndarray:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        v = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = loss_fn(y, head(v), sample_weight=weights)
        return tape.gradient(loss, v).numpy()
    if backend == "jax":  # untested
        import jax
        return np.asarray(jax.grad(lambda v: loss_fn(y, head(v), sample_weight=weights))(inputs))
    if backend == "torch":  # untested
        import torch
        v = torch.tensor(inputs, requires_grad=True, device=keras.src.backend.get_device())
        loss_fn(y, head(v), sample_weight=weights).backward()
        return v.grad.detach().cpu().numpy()
    raise NotImplementedError(f"gradient flow for backend {backend!r}")
