"""xLSTM (Beck et al. 2024): sLSTM (scalar memory, exponential gating, memory mixing) and mLSTM (matrix memory,
covariance update, parallel over time), each as a stack of pre-norm residual blocks ``x + layer(LN(x))``.

By default the blocks are NX-AI/xlstm's (``blocks/mlstm/layer.py``, ``blocks/slstm/layer.py``,
``blocks/xlstm_block.py``, ``components/``), checked against that code:

- **mLSTM block** (``MLSTMBlock``): up-projection to 2·units (two halves: the mLSTM branch x and the gate z), a
  kernel-4 causal depthwise convolution + SiLU feeding q and k (v reads x before the convolution), q, k, v as
  block-diagonal projections of 4×4 blocks, the cell (``MLSTM._parallel``: NX-AI's ``parallel_stabilized_simple``)
  with gates reading [q, k, v], a per-head group norm of its output, the learnable skip ``h + s ⊙ conv(x)``, the
  output gate ``⊙ SiLU(z)`` and the down-projection. Inits as NX-AI's: small init N(0, √(2/5D)) for the up and q, k,
  v projections, Wang init N(0, 2/(blocks·√D)) for the down-projection, gate weights 0, forget bias linspace 3…6,
  input bias N(0, 0.1), skip 1, group-norm scale 1.
- **sLSTM block**: a kernel-4 causal convolution + SiLU feeding the input and forget gates (cell and output gates
  read the block's input), head-wise (block-diagonal) gate projections without bias, the sLSTM cell
  (``models.cells.SLSTMCell`` with ``projected=True``: NX-AI's ``slstm_forward_pointwise``, recurrent kernel 0,
  ``powerlaw_blockdependent`` forget bias), a per-head group norm, then a second residual ``x + FFN(LN(x))``: the
  gated feed-forward ``W_down (GELU(W_gate x) ⊙ W_up x)`` of width ⌈1.3·units⌉ (NX-AI's ``proj_factor`` 1.3, the
  paper's 4/3).

What still differs from NX-AI's code: their up-projection widths are rounded up to a multiple of 64 (2·units and
⌈1.3·units⌉ here, so a parameter budget can size the width finely); their LayerNorms have no bias (Keras'
LayerNormalization here, centred) and the stack's input is our shared Dense projection; no dropout; the mLSTM's
parallel form is the "simple" one (no chunking), the sLSTM runs step by step through ``keras.layers.RNN``.

``block="cell"`` keeps the earlier simplified blocks (``x + cell(LN(x))``: no convolution, group norm,
up-projection or feed-forward) for the ablation.
"""

import math

import keras
import numpy as np
from keras import ops

from models.cells import SLSTMCell
from models.layers import CausalConv, residual_blocks
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

    def call(self, x):
        q, k, v = (_heads(p, self.heads) for p in ops.split(ops.matmul(x, self.qkv), 3, axis=-1))
        k = k / math.sqrt(self.units // self.heads)
        gates = ops.transpose(ops.matmul(x, self.gate_kernel) + self.gate_bias, (0, 2, 1))  # (B, 2·heads, T)
        i_pre, f_pre = gates[:, : self.heads], gates[:, self.heads:]
        h = (self._parallel if self.parallel else self._recurrent)(q, k, v, i_pre, f_pre)
        return self.out(self.output_gate(x) * _merge_heads(h))

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


def _heads(x, heads: int):
    """(B, T, width) → (B, heads, T, width / heads)."""
    b, t = ops.shape(x)[0], x.shape[1]
    return ops.transpose(ops.reshape(x, (b, t, heads, x.shape[-1] // heads)), (0, 2, 1, 3))


def _merge_heads(x):
    """(B, heads, T, d) → (B, T, heads · d)."""
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (-1, x.shape[2], x.shape[1] * x.shape[3]))


def _small_init(dim: int):
    """NX-AI's ``small_init_init_`` (Nguyen & Salazar 2019): N(0, √(2 / 5·dim))."""
    return keras.initializers.RandomNormal(0.0, math.sqrt(2 / (5 * dim)))


def _linspace(start: float, stop: float):
    """An initializer: values evenly spaced from ``start`` to ``stop`` (NX-AI's ``bias_linspace_init_``)."""
    return lambda shape, dtype=None: ops.cast(ops.linspace(start, stop, shape[0]), dtype or "float32")


def _wang_init(dim: int, blocks: int):
    """NX-AI's ``wang_init_`` for output projections: N(0, 2 / (blocks·√dim))."""
    return keras.initializers.RandomNormal(0.0, 2 / blocks / math.sqrt(dim))


@keras.saving.register_keras_serializable(package="lstm_bench")
class HeadwiseDense(keras.layers.Layer):
    """NX-AI's ``LinearHeadwiseExpand`` (factor 1, no bias): a block-diagonal projection, ``heads`` blocks of
    ``width / heads`` features each projected on their own; weights N(0, ``stddev``)."""

    def __init__(self, heads: int, stddev: float, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.stddev = heads, stddev

    def build(self, input_shape):
        d = input_shape[-1] // self.heads
        self.kernel = self.add_weight((self.heads, d, d), keras.initializers.RandomNormal(0.0, self.stddev),
                                      name="kernel")

    def call(self, x):
        shape = (-1, *x.shape[1:-1], self.heads, x.shape[-1] // self.heads)
        return ops.reshape(ops.einsum("...hd,hde->...he", ops.reshape(x, shape), self.kernel), (-1, *x.shape[1:]))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="lstm_bench")
class HeadNorm(keras.layers.Layer):
    """NX-AI's ``MultiHeadLayerNorm``: each head's features normalised on their own (a group norm with one group per
    head, per time step), scaled by ``1 + w`` (``w`` from 0), no bias."""

    def __init__(self, heads: int, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.epsilon = heads, epsilon

    def build(self, input_shape):
        self.weight = self.add_weight((input_shape[-1],), "zeros", name="weight")

    def call(self, x):
        shape = (-1, *x.shape[1:-1], self.heads, x.shape[-1] // self.heads)
        h = ops.reshape(x, shape)
        mean = ops.mean(h, axis=-1, keepdims=True)
        h = (h - mean) * ops.rsqrt(ops.mean(ops.square(h - mean), axis=-1, keepdims=True) + self.epsilon)
        return ops.reshape(h, (-1, *x.shape[1:])) * (1.0 + self.weight)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "epsilon": self.epsilon}


QKV_BLOCK = 4  # NX-AI's qkv_proj_blocksize: q, k and v are block-diagonal projections of 4×4 blocks
CONV_KERNEL = 4  # NX-AI's conv1d_kernel_size, for both blocks


@keras.saving.register_keras_serializable(package="lstm_bench")
class MLSTMBlock(keras.layers.Layer):
    """NX-AI's mLSTM layer, ``(B, T, units) → (B, T, units)`` (the module docstring lists its parts); ``blocks`` is
    the stack's depth (the down-projection's init), ``parallel=False`` runs the cell's recurrent form."""

    def __init__(self, heads: int = 4, factor: int = 2, blocks: int = 1, parallel: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.factor, self.blocks, self.parallel = heads, factor, blocks, parallel

    def build(self, input_shape):
        d = input_shape[-1]
        inner, nh = self.factor * d, self.heads
        self.up = self.add_weight((d, 2 * inner), _small_init(d), name="up_kernel")
        self.conv = CausalConv(CONV_KERNEL, name="conv")
        self.conv.build((*input_shape[:-1], inner))
        self.q, self.k, self.v = (HeadwiseDense(inner // QKV_BLOCK, math.sqrt(2 / (5 * d)), name=n) for n in "qkv")
        for p in (self.q, self.k, self.v):
            p.build((*input_shape[:-1], inner))
        self.gate_kernel = self.add_weight((3 * inner, 2 * nh), "zeros", name="gate_kernel")
        self.input_bias = self.add_weight((nh,), keras.initializers.RandomNormal(0.0, 0.1), name="input_bias")
        self.forget_bias = self.add_weight((nh,), _linspace(3.0, 6.0), name="forget_bias")
        self.norm = HeadNorm(nh, name="norm")
        self.norm.build((*input_shape[:-1], inner))
        self.skip = self.add_weight((inner,), "ones", name="skip")
        self.down = self.add_weight((inner, d), _wang_init(d, self.blocks), name="down_kernel")

    def call(self, x):
        branch, z = ops.split(ops.matmul(x, self.up), 2, axis=-1)
        conv = ops.silu(self.conv(branch))
        q, k, v = self.q(conv), self.k(conv), self.v(branch)
        bias = ops.concatenate([self.input_bias, self.forget_bias])
        gates = ops.matmul(ops.concatenate([q, k, v], axis=-1), self.gate_kernel) + bias
        gates = ops.transpose(gates, (0, 2, 1))  # (B, 2·heads, T)
        q, k, v = (_heads(p, self.heads) for p in (q, k, v))
        k = k / math.sqrt(q.shape[-1])
        cell = MLSTM._parallel if self.parallel else MLSTM._recurrent
        h = self.norm(_merge_heads(cell(q, k, v, gates[:, : self.heads], gates[:, self.heads:])))
        return ops.matmul((h + self.skip * conv) * ops.silu(z), self.down)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "factor": self.factor, "blocks": self.blocks,
                "parallel": self.parallel}


FF_FACTOR = 1.3  # NX-AI's FeedForwardConfig.proj_factor (the paper's 4/3)


def gated_feedforward(units: int, blocks: int):
    """NX-AI's ``GatedFeedForward``: ``W_down (GELU(W_gate x) ⊙ W_up x)``, inner width ⌈1.3·units⌉, no biases."""
    inner = math.ceil(FF_FACTOR * units)
    up = keras.layers.Dense(2 * inner, use_bias=False, kernel_initializer=_small_init(units))
    down = keras.layers.Dense(units, use_bias=False, kernel_initializer=_wang_init(units, blocks))

    def apply(x):
        gate, value = ops.split(up(x), 2, axis=-1)
        return down(keras.layers.Activation("gelu")(gate) * value)

    return apply


def slstm_layer(units: int, heads: int, block_index: int, blocks: int):
    """NX-AI's sLSTM layer as graph layers (so ``models.introspect`` finds its cell): conv → SiLU feeding the input
    and forget gates, head-wise gate projections, the projected sLSTM cell, per-head group norm."""
    conv = CausalConv(CONV_KERNEL)
    gates = [HeadwiseDense(heads, math.sqrt(2 / (5 * units))) for _ in range(4)]  # input, forget, cell, output
    cell = keras.layers.RNN(SLSTMCell(units, heads, projected=True, block_index=block_index, blocks=blocks),
                            return_sequences=True)
    norm = HeadNorm(heads)

    def apply(x):
        shifted = keras.layers.Activation("silu")(conv(x))
        pre = [gates[0](shifted), gates[1](shifted), gates[2](x), gates[3](x)]
        return norm(cell(keras.layers.Concatenate()(pre)))

    return apply


def _check(units, heads, layers, block):
    positive(units=units, heads=heads, layers=layers)
    if block not in BLOCKS:
        raise ModelError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
    if units % heads:
        raise ModelError(f"units ({units}) must be divisible by heads ({heads})")


BLOCKS = ("xlstm", "cell")  # NX-AI's blocks, or the bare cell in x + cell(LN(x))


def slstm_flops(batch, length, width, *, units, heads, layers, block, **_):
    """Input projection 2·B·T·D·H; per layer the recurrent block-diagonal matmul 2·B·T·4H·(H/heads) and the input
    matmul, dense 2·B·T·H·4H for the cell, head-wise 2·B·T·4H·(H/heads) in the block, which adds the convolution
    2·B·T·H·K and the feed-forward 6·B·T·H·F (F = ⌈1.3·H⌉)."""
    b, t, h = float(batch), float(length), float(units)
    recurrent = 8 * b * t * h * h / heads
    if block == "cell":
        per_layer = 8 * b * t * h * h + recurrent
    else:
        per_layer = 2 * recurrent + 2 * b * t * h * CONV_KERNEL + 6 * b * t * h * math.ceil(FF_FACTOR * units)
    return 2 * b * t * width * h + layers * per_layer, units


def mlstm_flops(batch, length, width, *, units, heads, layers, block, **_):
    """Input projection 2·B·T·D·H. The cell: per layer q, k, v, output gate and out projection 10·B·T·H², gates
    4·B·T·H·heads, the parallel form's T×T products 4·B·T²·H (like attention's). The block (inner width I = 2H):
    up- and down-projection 6·B·T·H·I, convolution 2·B·T·I·K, block-diagonal q, k, v 6·B·T·I·4, gates
    4·B·T·3I·heads, T×T products 4·B·T²·I."""
    b, t, h = float(batch), float(length), float(units)
    if block == "cell":
        per_layer = 10 * b * t * h * h + 4 * b * t * h * heads + 4 * b * t * t * h
    else:
        i = 2 * h
        per_layer = (6 * b * t * h * i + 2 * b * t * i * CONV_KERNEL + 6 * b * t * i * QKV_BLOCK
                     + 12 * b * t * i * heads + 4 * b * t * t * i)
    return 2 * b * t * width * h + layers * per_layer, units


def slstm_state(length, *, units, layers, block, **_):
    """Per layer h, c, n, m (4H), and in the block the convolution's last K − 1 inputs."""
    return layers * (4 * units + (0 if block == "cell" else (CONV_KERNEL - 1) * units))


def mlstm_state(length, *, units, heads, layers, block, **_):
    """Per layer and head the d×d memory, the normaliser and the stabiliser (d = width / heads; the block's width is
    2·units), and in the block the convolution's last K − 1 inputs."""
    w = units if block == "cell" else 2 * units
    return layers * (w * w // heads + w + heads + (0 if block == "cell" else (CONV_KERNEL - 1) * w))


def _depth():
    """The next block's index each call (0, 1, …): sLSTM's forget-gate init depends on the block's depth."""
    count = iter(range(1 << 30))
    return lambda: next(count)


def xla_faster(hp: dict, per_step: bool) -> bool:
    """XLA makes both blocks faster on the CPU (TensorFlow), either head. Measured on the quiet 2-core CPU,
    ``train_on_batch`` alternated in one process, B=64, input 16, 2 heads (ms/step, without → with XLA; final
    head / per-step head): sLSTM(54) T=25 62 → 29 / 66 → 30, T=100 246 → 110 / 245 → 110; mLSTM(40) T=25
    84 → 26 / 72 → 23, T=100 294 → 97 / 289 → 94."""
    return True


@register("slstm", family="recurrent", width="units", flops=slstm_flops, gates=4, state=slstm_state, xla_cpu=xla_faster,
          space={"units": [32, 64, 128, 256], "heads": [1, 4], "layers": [1, 2]})
def slstm(x, *, units: int = 64, heads: int = 4, layers: int = 1, block: str = "xlstm", per_step: bool = True):
    """xLSTM's sLSTM: exponential input gate with normaliser and stabiliser, heads; NX-AI's sLSTM blocks."""
    _check(units, heads, layers, block)
    if block == "cell":
        return residual_blocks(x, lambda: keras.layers.RNN(SLSTMCell(units, heads), return_sequences=True),
                               units, layers)
    index = _depth()
    return residual_blocks(x, lambda: slstm_layer(units, heads, index(), layers), units, layers,
                           feedforward=lambda: gated_feedforward(units, layers))


@register("mlstm", family="scan", width="units", flops=mlstm_flops, state=mlstm_state, xla_cpu=xla_faster,
          space={"units": [32, 64, 128, 256], "heads": [1, 4], "layers": [1, 2, 4]})
def mlstm(x, *, units: int = 64, heads: int = 4, layers: int = 2, block: str = "xlstm"):
    """xLSTM's mLSTM: matrix memory with covariance update, trained in parallel over time; NX-AI's mLSTM blocks."""
    _check(units, heads, layers, block)
    if block == "cell":
        return residual_blocks(x, lambda: MLSTM(units, heads), units, layers)
    if (2 * units) % QKV_BLOCK:
        raise ModelError(f"units ({units}) must be even: the block's q, k, v are 4×4 blocks of 2·units features")
    return residual_blocks(x, lambda: MLSTMBlock(heads, blocks=layers), units, layers)
