"""Recurrent cells written with ``keras.ops``, in the style of Keras' own ``LSTMCell``: the LSTM with the variants of
the background notes as options (peepholes, coupled gates, layer norm, truncated backpropagation), and xLSTM's sLSTM.

Wrap a cell in ``keras.layers.RNN`` to run it over time; ``cell.trace(x)`` replays a sequence step by step and
returns the gate activations (``models.introspect`` draws on it).

>>> layer = keras.layers.RNN(LSTMCell(16, peephole=True), return_sequences=True)
>>> layer(keras.ops.zeros((2, 5, 3))).shape
(2, 5, 16)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _layer_norm(x, gamma, beta=None, epsilon=1e-5):
    """Normalise the last axis to zero mean and unit variance, then scale (and shift)."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
    x = (x - mean) * ops.rsqrt(variance + epsilon) * gamma
    return x if beta is None else x + beta


def _truncate(states, counter, every: int):
    """Truncated BPTT: every ``every`` steps the incoming state keeps its value but passes no gradient back."""
    cut = ops.cast(ops.equal(ops.mod(counter, every), 0), states[0].dtype)
    return [cut * ops.stop_gradient(s) + (1 - cut) * s for s in states]


@keras.saving.register_keras_serializable(package="lstm_bench")
class LSTMCell(keras.layers.Layer):
    """An LSTM cell; with every option off it computes exactly what ``keras.layers.LSTM`` computes.

    Weights as Keras lays them out: ``kernel`` (D, G·H), ``recurrent_kernel`` (H, G·H), ``bias`` (G·H), gates in the
    order input, forget, candidate, output (G = 4). Options:

    - ``peephole``: the gates see the cell (Gers & Schmidhuber 2000): ``+ V_i⊙C_{t-1}`` and ``+ V_f⊙C_{t-1}``
      for input and forget, ``+ V_o⊙C_t`` for output. ``V`` starts at zero, so training starts from a plain LSTM.
    - ``coupled`` (CIFG, Greff et al. 2017): no input gate, ``i_t = 1 − f_t`` (G = 3: forget, candidate, output).
    - ``layer_norm`` (Ba et al. 2016): ``LN(W x) + LN(U h) + b`` for the gate pre-activations, ``h = o⊙tanh(LN(C))``.
    - ``tbptt``: truncated backpropagation through time: the state entering every ``tbptt``-th step passes no
      gradient, so the loss at step t trains the weights on at most the last ``tbptt`` steps. The forward pass is
      unchanged (the state carries over, as with stateful chunks).
    """

    def __init__(self, units: int, peephole: bool = False, coupled: bool = False, layer_norm: bool = False,
                 unit_forget_bias: bool = True, tbptt: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.peephole, self.coupled, self.layer_norm = units, peephole, coupled, layer_norm
        self.unit_forget_bias, self.tbptt = unit_forget_bias, tbptt
        self.gates = 3 if coupled else 4
        self.state_size = [units, units] + ([1] if tbptt else [])
        self.output_size = units

    def build(self, input_shape):
        h, g = self.units, self.gates
        self.kernel = self.add_weight((input_shape[-1], g * h), "glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight((h, g * h), "orthogonal", name="recurrent_kernel")
        forget = 0 if self.coupled else 1  # index of the forget gate's block

        def bias_init(shape, dtype=None):
            value = np.zeros(shape, dtype="float32")
            if self.unit_forget_bias:
                value[forget * h:(forget + 1) * h] = 1.0
            return ops.convert_to_tensor(value, dtype=dtype)

        self.bias = self.add_weight((g * h,), bias_init, name="bias")
        if self.peephole:  # one row per gate that peeks: (input,) forget, output
            self.peephole_kernel = self.add_weight((g - 1, h), "zeros", name="peephole_kernel")
        if self.layer_norm:
            self.gamma_x = self.add_weight((g * h,), "ones", name="gamma_x")
            self.gamma_h = self.add_weight((g * h,), "ones", name="gamma_h")
            self.gamma_c = self.add_weight((h,), "ones", name="gamma_c")
            self.beta_c = self.add_weight((h,), "zeros", name="beta_c")

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def step(self, x, h, c):
        """One step from input ``x`` and state ``(h, c)``: the new ``(h, c)`` and the gates ``{"input", "forget"}``."""
        xw, hu = ops.matmul(x, self.kernel), ops.matmul(h, self.recurrent_kernel)
        if self.layer_norm:
            xw, hu = _layer_norm(xw, self.gamma_x), _layer_norm(hu, self.gamma_h)
        z = ops.split(xw + hu + self.bias, self.gates, axis=-1)
        peek = [self.peephole_kernel[j] for j in range(self.gates - 1)] if self.peephole else None
        if self.coupled:
            zf, zc, zo = z
            f = ops.sigmoid(zf + (peek[0] * c if peek else 0))
            i = 1 - f
        else:
            zi, zf, zc, zo = z
            i = ops.sigmoid(zi + (peek[0] * c if peek else 0))
            f = ops.sigmoid(zf + (peek[1] * c if peek else 0))
        c = f * c + i * ops.tanh(zc)
        o = ops.sigmoid(zo + (peek[-1] * c if peek else 0))
        h = o * ops.tanh(_layer_norm(c, self.gamma_c, self.beta_c) if self.layer_norm else c)
        return h, c, {"input": i, "forget": f}

    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        if self.tbptt:
            h, c = _truncate([h, c], states[2], self.tbptt)
        h, c, _ = self.step(inputs, h, c)
        return h, [h, c] + ([states[2] + 1] if self.tbptt else [])

    def trace(self, x) -> dict:
        """Gate activations over a whole sequence ``x`` (B, T, D): ``{"input": (B, T, H), "forget": (B, T, H)}``."""
        h = c = ops.zeros((ops.shape(x)[0], self.units), dtype=x.dtype)
        out = {"input": [], "forget": []}
        for t in range(x.shape[1]):
            h, c, gates = self.step(x[:, t], h, c)
            for k in out:
                out[k].append(ops.convert_to_numpy(gates[k]))
        return {k: np.stack(v, axis=1) for k, v in out.items()}

    def get_config(self):
        return {**super().get_config(), "units": self.units, "peephole": self.peephole, "coupled": self.coupled,
                "layer_norm": self.layer_norm, "unit_forget_bias": self.unit_forget_bias, "tbptt": self.tbptt}


@keras.saving.register_keras_serializable(package="lstm_bench")
class SLSTMCell(keras.layers.Layer):
    """xLSTM's sLSTM cell (Beck et al. 2024, eqs. 8-17): exponential input gate, normaliser and stabiliser states.

    Checked against NX-AI/xlstm ``blocks/slstm/src/vanilla/slstm.py`` (``slstm_forward_pointwise``)::

        m_t = max(log σ(f̃) + m_{t-1}, ĩ)            (the first step: m_1 = ĩ)
        i_t = exp(ĩ − m_t),  f_t = exp(log σ(f̃) + m_{t-1} − m_t)
        c_t = f_t c_{t-1} + i_t tanh(z̃),  n_t = f_t n_{t-1} + i_t,  h_t = σ(õ) ⊙ c_t / n_t

    Recurrent weights are block-diagonal over ``heads`` (the paper's heads: memory mixing within a head only).
    Gate pre-activations are laid out input, forget, cell, output; the forget bias starts at 3…6 across units
    (a linspace, as NX-AI initialises mLSTM's forget gate), so the cell remembers by default.

    ``projected=True`` is the cell of NX-AI's sLSTM layer (``blocks/slstm/cell.py``): its input is already the 4·H
    gate pre-activations (the layer's head-wise projections made them), so it has no input kernel; the recurrent
    kernel starts at zero and the forget bias per head at ``5 − 12·(j / (d − 1))^(0.3 + 1.3·block_index / (blocks
    − 1))`` over the head's units j (``powerlaw_blockdependent``: from 5 down to −7, a spread of memory lengths).
    """

    def __init__(self, units: int, heads: int = 4, projected: bool = False, block_index: int = 0, blocks: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.units, self.heads = units, heads
        self.projected, self.block_index, self.blocks = projected, block_index, blocks
        self.state_size = [units] * 4  # h, c, n, m
        self.output_size = units

    def build(self, input_shape):
        h, nh = self.units, self.heads
        dh = h // nh
        if not self.projected:
            self.kernel = self.add_weight((input_shape[-1], 4 * h), "glorot_uniform", name="kernel")
        recurrent_init = "zeros" if self.projected else keras.initializers.RandomNormal(0, dh**-0.5)
        self.recurrent_kernel = self.add_weight((nh, dh, 4, dh), recurrent_init, name="recurrent_kernel")

        def bias_init(shape, dtype=None):
            value = np.zeros(shape, dtype="float32")
            value[h:2 * h] = np.tile(self._powerlaw(dh), nh) if self.projected else np.linspace(3.0, 6.0, h)
            return ops.convert_to_tensor(value, dtype=dtype)

        self.bias = self.add_weight((4 * h,), bias_init, name="bias")

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in range(4)]

    def step(self, x, h, c, n, m):
        """One step: the new ``(h, c, n, m)`` and the stabilised gates ``{"input", "forget"}``."""
        batch = ops.shape(x)[0]
        heads = ops.reshape(h, (batch, self.heads, self.units // self.heads))
        recurrent = ops.reshape(ops.einsum("bhd,hdge->bghe", heads, self.recurrent_kernel), (batch, 4 * self.units))
        projection = x if self.projected else ops.matmul(x, self.kernel)
        zi, zf, zz, zo = ops.split(projection + recurrent + self.bias, 4, axis=-1)
        log_f_plus_m = ops.log_sigmoid(zf) + m
        m_new = ops.where(ops.equal(n, 0), zi, ops.maximum(zi, log_f_plus_m))
        i, f = ops.exp(zi - m_new), ops.exp(log_f_plus_m - m_new)
        c = f * c + i * ops.tanh(zz)
        n = f * n + i
        h = ops.sigmoid(zo) * c / n
        return h, c, n, m_new, {"input": i, "forget": f}

    def call(self, inputs, states, training=False):
        h, c, n, m, _ = self.step(inputs, *states)
        return h, [h, c, n, m]

    def trace(self, x) -> dict:
        """Stabilised gate activations over a sequence ``x`` (B, T, D)."""
        state = [ops.zeros((ops.shape(x)[0], self.units), dtype=x.dtype)] * 4
        out = {"input": [], "forget": []}
        for t in range(x.shape[1]):
            *state, gates = self.step(x[:, t], *state)
            for k in out:
                out[k].append(ops.convert_to_numpy(gates[k]))
        return {k: np.stack(v, axis=1) for k, v in out.items()}

    def get_config(self):
        return {**super().get_config(), "units": self.units, "heads": self.heads, "projected": self.projected,
                "block_index": self.block_index, "blocks": self.blocks}

    def _powerlaw(self, dh: int) -> np.ndarray:
        """NX-AI's ``powerlaw_blockdependent`` forget-gate bias of one head of ``dh`` units."""
        ratio = self.block_index / (self.blocks - 1) if self.blocks > 1 else 0.0
        position = np.arange(dh) / (dh - 1) if dh > 1 else np.zeros(1)
        return 5.0 - 12.0 * position ** (0.3 + 1.3 * ratio)
