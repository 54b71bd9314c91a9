"""xLSTM (Beck et al. 2024): sLSTM (scalar memory, exponential gating, memory mixing) and mLSTM (matrix memory,
covariance update, parallel over time), each as a stack of pre-norm residual blocks.

Checked against NX-AI/xlstm: ``blocks/slstm/src/vanilla/slstm.py`` for the sLSTM cell (``models.cells.SLSTMCell``)
and ``blocks/mlstm/backends.py`` (``parallel_stabilized_simple``, ``recurrent_step_stabilized_simple``) for mLSTM.
Simplified blocks: the paper's causal convolution, group norm and up-projections are left out; each block is
``x + cell(LN(x))``, so the comparison measures the cells.
"""

import math

import keras
import numpy as np
from keras import ops

from models.cells import SLSTMCell
from models.layers import residual_blocks
from models.registry import ModelError, positive, register


@keras.saving.register_keras_serializable(package="lstm_bench")
class MLSTM(keras.layers.Layer):
    """The mLSTM cell over a whole sequence, ``(B, T, units) → (B, T, units)``, in parallel (default) or step by step.

    Per head (``d = units / heads``): ``q, k, v = W_q x, W_k x / √d, W_v x``; scalar gates ``ĩ, f̃`` per head;
    ``C_t = f_t C_{t-1} + i_t v_t k_tᵀ``, ``n_t = f_t n_{t-1} + i_t k_t``, ``h̃_t = C_t q_t / max(|n_tᵀ q_t|, 1)``
    with ``i = exp(ĩ)``, ``f = σ(f̃)``, stabilised in log space. Output: ``W_out (σ(W_o x) ⊙ h̃)``.

    The parallel form builds the T×T gate matrix ``D[t, s] = exp(Σ_{s<r≤t} log f_r + ĩ_s − m_t)`` (causal), like
    attention with decay: O(T²) time and memory. Differences of a cumulative sum of log f enter only inside
    ``exp(· − max)``, so nothing overflows. ``parallel=False`` runs the recurrent form (same outputs, a test checks).
    """

    def __init__(self, units: int, heads: int = 4, parallel: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.heads, self.parallel = units, heads, parallel

    def build(self, input_shape):
        d, h, nh = input_shape[-1], self.units, self.heads
        self.qkv = self.add_weight((d, 3 * h), "glorot_uniform", name="qkv_kernel")
        self.gate_kernel = self.add_weight((d, 2 * nh), "zeros", name="gate_kernel")

        def gate_bias(shape, dtype=None):  # input gate ~ N(0, 0.1); forget gate linspace 3..6 (NX-AI's init)
            value = np.concatenate([np.random.default_rng(0).normal(0, 0.1, nh), np.linspace(3.0, 6.0, nh)])
            return ops.convert_to_tensor(value.astype("float32"), dtype=dtype)

        self.gate_bias = self.add_weight((2 * nh,), gate_bias, name="gate_bias")
        self.output_gate = keras.layers.Dense(h, activation="sigmoid", name="output_gate")
        self.out = keras.layers.Dense(h, name="out")
        self.output_gate.build(input_shape)
        self.out.build((*input_shape[:-1], h))

    def _heads(self, x):
        """(B, T, units) → (B, heads, T, d)."""
        b, t = ops.shape(x)[0], x.shape[1]
        return ops.transpose(ops.reshape(x, (b, t, self.heads, self.units // self.heads)), (0, 2, 1, 3))

    def call(self, x):
        q, k, v = (self._heads(p) for p in ops.split(ops.matmul(x, self.qkv), 3, axis=-1))
        k = k / math.sqrt(self.units // self.heads)
        gates = ops.transpose(ops.matmul(x, self.gate_kernel) + self.gate_bias, (0, 2, 1))  # (B, 2·heads, T)
        i_pre, f_pre = gates[:, : self.heads], gates[:, self.heads:]
        h = (self._parallel if self.parallel else self._recurrent)(q, k, v, i_pre, f_pre)
        h = ops.reshape(ops.transpose(h, (0, 2, 1, 3)), (-1, x.shape[1], self.units))
        return self.out(self.output_gate(x) * h)

    @staticmethod
    def _parallel(q, k, v, i_pre, f_pre, eps=1e-6):
        t = q.shape[2]
        log_f = ops.cumsum(ops.log_sigmoid(f_pre), axis=-1)  # (B, H, T)
        causal = ops.tril(ops.ones((t, t), dtype="bool"))
        log_d = log_f[..., :, None] - log_f[..., None, :] + i_pre[..., None, :]  # (B, H, T, T): [t, s]
        log_d = ops.where(causal, log_d, -1e30)
        m = ops.max(log_d, axis=-1, keepdims=True)
        c = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * ops.exp(log_d - m)
        normaliser = ops.maximum(ops.abs(ops.sum(c, axis=-1, keepdims=True)), ops.exp(-m))
        return ops.matmul(c / (normaliser + eps), v)

    @staticmethod
    def _recurrent(q, k, v, i_pre, f_pre, eps=1e-6):
        batch, heads, t, d = ops.shape(q)[0], q.shape[1], q.shape[2], q.shape[3]
        c = ops.zeros((batch, heads, d, d), dtype=q.dtype)
        n = ops.zeros((batch, heads, d), dtype=q.dtype)
        m = ops.zeros((batch, heads), dtype=q.dtype)
        out = []
        for s in range(t):
            log_f = ops.log_sigmoid(f_pre[..., s])
            m_new = ops.maximum(log_f + m, i_pre[..., s])
            f, i = ops.exp(log_f + m - m_new)[..., None], ops.exp(i_pre[..., s] - m_new)[..., None]
            c = f[..., None] * c + i[..., None] * (k[:, :, s, :, None] * v[:, :, s, None, :])  # C = k vᵀ
            n = f * n + i * k[:, :, s]
            qs = q[:, :, s]
            numerator = ops.einsum("bhd,bhde->bhe", qs, c)
            denominator = ops.maximum(ops.abs(ops.sum(qs * n, axis=-1)), ops.exp(-m_new))[..., None] + eps
            out.append(numerator / denominator)
            m = m_new
        return ops.stack(out, axis=2)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "heads": self.heads, "parallel": self.parallel}


def _check(units, heads, layers):
    positive(units=units, heads=heads, layers=layers)
    if units % heads:
        raise ModelError(f"units ({units}) must be divisible by heads ({heads})")


def slstm_flops(batch, length, width, *, units, heads, layers, **_):
    """Input projection 2·B·T·D·H; per layer the input matmul 2·B·T·H·4H and the block-diagonal recurrent one
    2·B·T·4H·(H/heads)."""
    b, t, h = float(batch), float(length), float(units)
    return 2 * b * t * width * h + layers * (8 * b * t * h * h + 8 * b * t * h * h / heads), units


def mlstm_flops(batch, length, width, *, units, heads, layers, **_):
    """Input projection 2·B·T·D·H; per layer q, k, v, output gate and out projection 10·B·T·H², gates 4·B·T·H·heads,
    and the parallel form's T×T products 4·B·T²·H (like attention's)."""
    b, t, h = float(batch), float(length), float(units)
    return 2 * b * t * width * h + layers * (10 * b * t * h * h + 4 * b * t * h * heads + 4 * b * t * t * h), units


@register("slstm", family="recurrent", width="units", flops=slstm_flops, gates=4,
          state=lambda length, *, units, layers, **_: 4 * units * layers,
          space={"units": [32, 64, 128, 256], "heads": [1, 4], "layers": [1, 2]})
def slstm(x, *, units: int = 64, heads: int = 4, layers: int = 1, per_step: bool = True):
    """xLSTM's sLSTM: exponential input gate with normaliser and stabiliser, heads; pre-norm residual blocks."""
    _check(units, heads, layers)
    return residual_blocks(x, lambda: keras.layers.RNN(SLSTMCell(units, heads), return_sequences=True), units, layers)


@register("mlstm", family="scan", width="units", flops=mlstm_flops,
          state=lambda length, *, units, heads, layers, **_: layers * (units * units // heads + units + heads),
          space={"units": [32, 64, 128, 256], "heads": [1, 4], "layers": [1, 2, 4]})
def mlstm(x, *, units: int = 64, heads: int = 4, layers: int = 2):
    """xLSTM's mLSTM: matrix memory with covariance update, trained in parallel over time; residual blocks."""
    _check(units, heads, layers)
    return residual_blocks(x, lambda: MLSTM(units, heads), units, layers)
