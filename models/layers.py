"""Layers and layer helpers shared by model files, written with ``keras.ops`` so every backend runs them."""

import math
from typing import Callable

import keras
from keras import ops


XLA_MIN_UNITS = 256  # on the CPU, XLA made LSTM/GRU layers at least this wide faster (see xla_cpu)


def xla_cpu(hp: dict, per_step: bool) -> bool:
    """Whether XLA makes this LSTM/GRU stack faster on the CPU (TensorFlow): one layer returning its last state,
    at least ``XLA_MIN_UNITS`` wide.

    Measured on the quiet 2-core CPU, ``train_on_batch`` alternated in one process, B=64 (ms/step,
    without → with XLA): LSTM(256) T=256 D=64 435 → 346 and GRU(256) 275 → 242 when the layer returns
    only its last state; but 495 → 914 and 283 → 650 when it returns every state, SimpleRNN(256) 79 → 122,
    LSTM(128) T=100 41 → 54, LSTM(64) 21 → 27.
    """
    return not per_step and hp.get("layers", 1) == 1 and hp["units"] >= XLA_MIN_UNITS


def recurrent_stack(x, make_layer: Callable, layers: int, per_step: bool):
    """``layers`` recurrent layers from ``make_layer(return_sequences)``, each reading the previous one's states.

    For a final output (``per_step=False``) the last layer returns only its last state, kept as a length-1
    sequence so every mixer's output is ``(batch, time, units)``. Returning every state there costs time for
    nothing, and under XLA on the CPU it made an LSTM(256) step 2.6x slower (914 vs 346 ms, B=64, T=256).
    """
    for i in range(layers):
        x = make_layer(per_step or i < layers - 1)(x)
    return x if per_step else keras.layers.Reshape((1, -1))(x)


@keras.saving.register_keras_serializable(package="lstm_bench")
class SinusoidalPosition(keras.layers.Layer):
    """Adds the fixed sine/cosine position code of Vaswani et al. (2017) to ``(batch, time, width)``.

    >>> SinusoidalPosition()(keras.ops.zeros((2, 10, 16))).shape
    (2, 10, 16)
    """

    def __init__(self, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, x):
        length, width = ops.shape(x)[1], ops.shape(x)[2]
        position = ops.cast(ops.arange(length), self.compute_dtype)[:, None]
        index = ops.cast(ops.arange(width) // 2 * 2, self.compute_dtype)[None, :]
        angle = position * ops.exp(-math.log(self.max_wavelength) * index / ops.cast(width, self.compute_dtype))
        even = ops.cast(ops.arange(width) % 2 == 0, self.compute_dtype)[None, :]
        code = even * ops.sin(angle) + (1 - even) * ops.cos(angle)
        return x + ops.cast(code, x.dtype)[None]

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}


def residual_blocks(x, make_block: Callable, units: int, layers: int, feedforward: Callable | None = None):
    """A pre-norm residual stack: project to ``units``, then ``x + block(LN(x))`` per layer, then a final LN.

    The shape of xLSTM's, the state-space models' and minGRU/minLSTM's stacks (and of our Transformer): the mixer
    inside each block changes. ``feedforward()``, if given, adds ``x + ff(LN(x))`` after each block (as xLSTM's
    sLSTM blocks do).
    """
    x = keras.layers.Dense(units)(x)
    for _ in range(layers):
        x = x + make_block()(keras.layers.LayerNormalization(epsilon=1e-5)(x))
        if feedforward is not None:
            x = x + feedforward()(keras.layers.LayerNormalization(epsilon=1e-5)(x))
    return keras.layers.LayerNormalization(epsilon=1e-5)(x)


def linear_scan(a, b):
    """``h_t = a_t ⊙ h_{t-1} + b_t`` from ``h_0 = 0`` over axis 1 of ``(batch, time, width)``, as a parallel scan.

    Pairs compose as ``(a1, b1) then (a2, b2) = (a1·a2, a2·b1 + b2)``: O(log T) depth, no cumulative sum of logs
    (which overflows float32 near T=130). On TensorFlow the scan loses the static shape; it is restored here.
    """

    def combine(first, second):
        (a1, b1), (a2, b2) = first, second
        return a1 * a2, a2 * b1 + b2

    _, h = ops.associative_scan(combine, (a, b), axis=1)
    return ops.reshape(h, (-1, *b.shape[1:]))


def complex_linear_scan(a_re, a_im, b_re, b_im):
    """``linear_scan`` for complex ``a`` and ``b`` held as real and imaginary parts (so every backend runs it): the
    same pairs, composed with complex products. Returns ``(h_re, h_im)``, each ``(batch, time, width)``."""

    def combine(first, second):
        (ar1, ai1, br1, bi1), (ar2, ai2, br2, bi2) = first, second
        return (ar1 * ar2 - ai1 * ai2, ar1 * ai2 + ai1 * ar2,
                ar2 * br1 - ai2 * bi1 + br2, ar2 * bi1 + ai2 * br1 + bi2)

    _, _, h_re, h_im = ops.associative_scan(combine, (a_re, a_im, b_re, b_im), axis=1)
    return ops.reshape(h_re, (-1, *b_re.shape[1:])), ops.reshape(h_im, (-1, *b_im.shape[1:]))


TORCH_LINEAR = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")  # PyTorch's default: U(±1/√fan_in)


@keras.saving.register_keras_serializable(package="lstm_bench")
class CausalConv(keras.layers.Layer):
    """Depthwise causal convolution over time, ``(B, T, C) → (B, T, C)``: ``y_t = b + Σ_j w_j ⊙ x_{t−K+1+j}``, the
    past zero-padded; the short convolution of xLSTM's layers and Mamba. Weights and bias start as PyTorch's
    ``Conv1d`` starts them, U(±1/√K), as the authors' code leaves them.

    >>> CausalConv(4)(keras.ops.zeros((2, 10, 3))).shape
    (2, 10, 3)
    """

    def __init__(self, kernel_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size

    def build(self, input_shape):
        init = keras.initializers.RandomUniform(-self.kernel_size**-0.5, self.kernel_size**-0.5)
        self.kernel = self.add_weight((self.kernel_size, input_shape[-1]), init, name="kernel")
        self.bias = self.add_weight((input_shape[-1],), init, name="bias")

    def call(self, x):
        t, k = x.shape[1], self.kernel_size
        padded = ops.pad(x, [[0, 0], [k - 1, 0], [0, 0]])
        return sum(padded[:, j:j + t] * self.kernel[j] for j in range(k)) + self.bias

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}
