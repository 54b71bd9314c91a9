"""What a run measures besides its score: speed, memory, FLOPs, threads, cuDNN, gradient norms and flow.

Everything here is cheap enough to run in every record. Tensors become numpy through
``keras.ops.convert_to_numpy`` only (a torch tensor may live on the GPU or require grad). GPU branches
(allocator peaks, cuDNN observation) are coded for TensorFlow, torch and JAX; those for TensorFlow were
never run on a GPU (the lent GPU machine has no TensorFlow).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

import models
from bench.runner import precision
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
        ops.convert_to_numpy(model.predict_on_batch(x))
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
    path = _cache_dir() / f"roofline-{socket.gethostname()}-{backend}-{device}-{precision.current()['matmul']}.json"
    try:
        cached = json.loads(path.read_text())
        if not refresh and cached.get("n") == n:
            return float(cached["gflops"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    a = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    ops.convert_to_numpy(ops.matmul(a, a))  # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        ops.convert_to_numpy(ops.sum(ops.matmul(a, a)))
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


def cudnn_status(name: str, hp: dict, model: keras.Model | None = None, x=None) -> dict:
    """Whether the model may take cuDNN (its registry entry says, for these hyperparameters) and whether it did.

    ``used`` is observed, never inferred: on a GPU one forward call of ``model`` on ``x`` is inspected (PyTorch:
    the profiler's ``_cudnn_rnn`` ops; JAX: the lowered program's cuDNN RNN custom call; TensorFlow: the traced
    graph's ``CudnnRNN`` ops). Without a GPU ``used`` is False ("no GPU"); where nothing could be observed it is
    None and ``observed`` says why. ``fallback`` marks an eligible model that ran the generic kernel on a GPU
    (Keras falls back silently, e.g. when cuDNN rejects a dtype).
    """
    blocker = models.entry(name).cudnn_blocker(hp)
    out = {"eligible": blocker is None, "why_not": blocker}
    if not gpu_present():
        return {**out, "used": False, "observed": "no GPU", "ops": []}
    if model is None or x is None:
        return {**out, "used": None, "observed": "not observed (no model call to inspect)", "ops": []}
    try:
        found, how = _CUDNN_OBSERVERS[keras.backend.backend()](model, x)
    except Exception as e:  # an observation that fails must not cost the run
        return {**out, "used": None, "observed": f"not observed: {type(e).__name__}: {e}"[:300], "ops": []}
    used = bool(found)
    return {**out, "used": used, "observed": how, "ops": sorted(found),
            "fallback": out["eligible"] and not used}


_CUDNN_OP = re.compile(r"cudnn_?rnn|CudnnRNN|dnn_rnn", re.IGNORECASE)


def _cudnn_ops_torch(model, x) -> tuple[set, str]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(ops.convert_to_tensor(x), training=False)
    return {e.key for e in prof.key_averages() if _CUDNN_OP.search(e.key)}, "torch.profiler ops of one forward call"


def _cudnn_ops_jax(model, x) -> tuple[set, str]:
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    call = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
    text = call.lower(trainable, non_trainable, ops.convert_to_tensor(x)).as_text()
    return set(re.findall(r"\w*dnn_rnn\w*", text)), "custom calls in the lowered JAX program"


def _cudnn_ops_tensorflow(model, x) -> tuple[set, str]:  # untested: the lent GPU machine has no TensorFlow
    import tensorflow as tf

    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.constant(x)).graph
    kinds = {op.type for op in graph.get_operations()}
    kinds |= {node.op for f in graph.as_graph_def().library.function for node in f.node_def}
    return {k for k in kinds if _CUDNN_OP.search(k)}, "ops of the traced TensorFlow graph"


_CUDNN_OBSERVERS = {"torch": _cudnn_ops_torch, "jax": _cudnn_ops_jax, "tensorflow": _cudnn_ops_tensorflow}


# ---------------------------------------------------------------- gradient flow


def gradient_flow(model: keras.Model, loss_fn, x: np.ndarray, y: np.ndarray, points: int = FLOW_POINTS) -> dict:
    """‖∂L/∂x_t‖ for every input position t of the mixer's input, binned to at most ``points`` points.

    x_t is the input head's output for token tasks (``heads.mixer_input``) and the raw features otherwise. L is the loss at the
    task's answer positions only (``answer_mask``), so the curve shows how far back an answer's error
    reaches. ``distance`` is the number of steps from position t to the last answer position.
    """
    mixer_in, head = _split_at_mixer(model)
    inputs = ops.convert_to_numpy(mixer_in(x)) if mixer_in is not None else np.asarray(x, dtype="float32")
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
    """(input-head sub-model or None, model from the mixer's input to the output)."""
    tensor = heads.mixer_input(model)
    if tensor is None:
        return None, model
    return keras.Model(model.inputs[0], tensor), keras.Model(tensor, model.outputs[0])


def _input_gradient(head, loss_fn, inputs, y, weights) -> np.ndarray:
    """∂(weighted loss)/∂inputs, through the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        v = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = loss_fn(y, head(v, training=False), sample_weight=weights)
        return ops.convert_to_numpy(tape.gradient(loss, v))
    if backend == "jax":
        import jax
        trainable = [w.value for w in head.trainable_variables]
        non_trainable = [w.value for w in head.non_trainable_variables]

        def loss(v):  # stateless: a dropout layer's seed generator must not keep a tracer
            out, _ = head.stateless_call(trainable, non_trainable, v, training=False)
            return loss_fn(y, out, sample_weight=weights)
        return ops.convert_to_numpy(jax.jit(jax.grad(loss))(inputs))
    if backend == "torch":
        v = ops.convert_to_tensor(inputs).detach().requires_grad_(True)  # on the backend's device
        loss_fn(y, head(v, training=False), sample_weight=weights).backward()
        return ops.convert_to_numpy(v.grad)
    raise NotImplementedError(f"gradient flow for backend {backend!r}")
