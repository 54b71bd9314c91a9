"""Where a recurrent training step's time goes: its matmuls timed alone, against the whole step.

A gated recurrent layer's training step (g gates, width H, input D, batch B, length T) is, in FLOPs, almost
all matmuls: per step the recurrent ``h @ U`` forward and ``dz @ Uᵀ``, ``hᵀ @ dz`` backward (B×H×gH each),
plus the input projection ``X @ W`` and its two gradients, which can run as single large matmuls over all
B·T rows. ``matmul_floor`` times exactly those matmuls, alone, with the model's ``jit_compile``: the forward
recurrent one in a compiled loop of T dependent steps, the two backward ones in another (as backprop runs
them), and the input projection with its gradients as three large calls (hoisted out of the loop, as an
ideal kernel would). ``f+b step − floor`` is then what the gate nonlinearities, the loop's
control, memory traffic and the optimizer cost — the part no faster matmul can remove.
"""

from __future__ import annotations

import time

import numpy as np

def matmul_floor(gates: int, units: int, batch: int, length: int, width: int, jit_compile,
                 seconds: float = 1.0) -> dict:
    """Median ms of each matmul group of one training step of one recurrent layer with ``gates`` gated
    matmuls (LSTM 4, GRU 3, RNN 1), and their sum."""
    import keras
    from keras import ops

    rng = np.random.default_rng(0)

    def tensor(*shape):
        return ops.convert_to_tensor(rng.standard_normal(shape, dtype=np.float32))

    h, u, dz = tensor(batch, units), tensor(units, gates * units), tensor(batch, gates * units)
    ht, ut = ops.transpose(h), ops.transpose(u)
    x, w, dzs = tensor(batch * length, width), tensor(width, gates * units), tensor(batch * length, gates * units)

    def recurrent_forward(h, u):  # h_{t-1} @ U, each step fed by the previous one as in a recurrence
        step = lambda _, acc: acc + ops.matmul(h + acc[:1, :units] * 0.0, u)  # noqa: E731
        return ops.fori_loop(0, length, step, ops.zeros_like(dz))

    def recurrent_backward(dz, ut):  # dh_{t-1} = dz_t @ Uᵀ and dU += h_{t-1}ᵀ @ dz_t, one loop as backprop runs it
        def step(_, carry):
            dh, du = carry
            dz_t = dz + dh[:1, :1] * 0.0
            return dh + ops.matmul(dz_t, ut), du + ops.matmul(ht, dz_t)
        return ops.fori_loop(0, length, step, (ops.zeros_like(h), ops.zeros_like(u)))[1]

    # the input projection X @ W and its gradients dZ @ Wᵀ, Xᵀ @ dZ, each one large call over all B·T rows
    groups = {"recurrent_forward": [(recurrent_forward, h, u)],
              "recurrent_backward": [(recurrent_backward, dz, ut)],
              "input_projection": [(ops.matmul, x, w), (ops.matmul, dzs, ops.transpose(w)),
                                   (ops.matmul, ops.transpose(x), dzs)]}
    out = {name: round(sum(_median_ms(_compiled(fn, jit_compile, keras), a, b, seconds) for fn, a, b in calls), 3)
           for name, calls in groups.items()}
    out["floor_ms"] = round(sum(out.values()), 3)
    return out


def _compiled(fn, jit_compile, keras):
    """``fn`` compiled as the backend compiles a train step: ``tf.function`` (XLA if asked), ``jax.jit``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.function(fn, jit_compile=None if jit_compile == "auto" else bool(jit_compile))
    if backend == "jax":
        import jax
        return jax.jit(fn)
    return fn


def _median_ms(fn, a, b, seconds: float) -> float:
    from keras import ops

    ops.convert_to_numpy(fn(a, b))  # compile
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        start = time.perf_counter()
        ops.convert_to_numpy(fn(a, b))
        times.append((time.perf_counter() - start) * 1000)
    return round(float(np.median(times)), 3)


def explain(config, gates: int, train_ms: float, jit_compile) -> dict:
    """The matmul floor of a speed configuration against its measured training step."""
    floor = matmul_floor(gates, config.units, config.batch, config.length, config.input_width, jit_compile)
    rest = train_ms - floor["floor_ms"]
    return {**floor, "train_ms": train_ms, "rest_ms": round(rest, 3),
            "floor_share": round(floor["floor_ms"] / train_ms, 3)}


def table(records: list[dict]) -> str:
    """One line per record with a breakdown: the matmul groups, their sum, and the rest of the step."""
    head = (f"{'model':6s} {'H':>5s} {'N':>4s} {'T':>5s} {'xla':>5s} {'rec fwd':>8s} {'rec bwd':>8s} {'input':>7s} "
            f"{'floor':>8s} {'f+b ms':>8s} {'rest':>8s} {'floor %':>7s}")
    lines = [head]
    for r in records:
        b = r.get("matmul_floor")
        if b:
            lines.append(f"{r['model']:6s} {r['units']:5d} {r['batch']:4d} {r['length']:5d} "
                         f"{str(r['jit_compile']):>5s} "
                         f"{b['recurrent_forward']:8.1f} {b['recurrent_backward']:8.1f} {b['input_projection']:7.1f} "
                         f"{b['floor_ms']:8.1f} {b['train_ms']:8.1f} {b['rest_ms']:8.1f} {100 * b['floor_share']:7.0f}")
    return "\n".join(lines)
