"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?"): gates that read only the input, so the
recurrence ``h_t = a_t ⊙ h_{t-1} + b_t`` is linear in h and trains with a parallel scan over time.

    minGRU:  z = σ(W_z x),  h̃ = W_h x,  h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h̃
    minLSTM: f = σ(W_f x),  i = σ(W_i x),  h̃ = W_h x,  f' = f / (f + i),  i' = i / (f + i),  h_t = f' ⊙ h_{t-1} + i' ⊙ h̃

The paper's sequential (non-log-space) form, run by ``models.layers.linear_scan``; ``parallel=False`` runs the
same recurrence step by step (a test checks both agree). Layers stack as pre-norm residual blocks.
"""

import keras
from keras import ops

from models.layers import linear_scan, residual_blocks
from models.registry import ModelError, positive, register

KINDS = {"gru": 2, "lstm": 3}  # input-only projections per kind: (z, h̃) or (f, i, h̃)


@keras.saving.register_keras_serializable(package="lstm_bench")
class MinRNN(keras.layers.Layer):
    """One minGRU (``kind="gru"``) or minLSTM (``kind="lstm"``) layer: ``(B, T, D) → (B, T, units)``."""

    def __init__(self, units: int, kind: str = "gru", parallel: bool = True, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ModelError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.units, self.kind, self.parallel = units, kind, parallel

    def build(self, input_shape):
        n = KINDS[self.kind] * self.units
        self.kernel = self.add_weight((input_shape[-1], n), "glorot_uniform", name="kernel")
        self.bias = self.add_weight((n,), "zeros", name="bias")

    def coefficients(self, x):
        """``(a, b)`` of ``h_t = a_t ⊙ h_{t-1} + b_t``."""
        parts = ops.split(ops.matmul(x, self.kernel) + self.bias, KINDS[self.kind], axis=-1)
        if self.kind == "gru":
            z, candidate = ops.sigmoid(parts[0]), parts[1]
            return 1 - z, z * candidate
        f, i, candidate = ops.sigmoid(parts[0]), ops.sigmoid(parts[1]), parts[2]
        return f / (f + i), i / (f + i) * candidate

    def call(self, x):
        a, b = self.coefficients(x)
        if self.parallel:
            return linear_scan(a, b)
        h, out = ops.zeros_like(b[:, 0]), []
        for t in range(b.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return ops.stack(out, axis=1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "kind": self.kind, "parallel": self.parallel}


def _flops(kind):
    def flops(batch, length, width, *, units, layers, **_):
        """Input projection 2·B·T·D·H, then per layer 2·B·T·H·(G·H), G = 2 (minGRU) or 3 (minLSTM); the scan is
        elementwise, ignored."""
        return 2.0 * batch * length * units * (width + layers * KINDS[kind] * units), units
    return flops


def state(length, *, units, layers, **_):
    """One H-wide state per layer."""
    return units * layers


SPACE = {"units": [32, 64, 128, 256], "layers": [1, 2, 3, 4]}


def _stack(x, kind, units, layers):
    positive(units=units, layers=layers)
    return residual_blocks(x, lambda: MinRNN(units, kind), units, layers)


@register("mingru", family="scan", width="units", flops=_flops("gru"), state=state, space=SPACE)
def mingru(x, *, units: int = 64, layers: int = 2):
    """minGRU (Feng et al. 2024): input-only gates, trained with a parallel scan; pre-norm residual layers."""
    return _stack(x, "gru", units, layers)


@register("minlstm", family="scan", width="units", flops=_flops("lstm"), state=state, space=SPACE)
def minlstm(x, *, units: int = 64, layers: int = 2):
    """minLSTM (Feng et al. 2024): normalised input-only forget/input gates, parallel scan; residual layers."""
    return _stack(x, "lstm", units, layers)

