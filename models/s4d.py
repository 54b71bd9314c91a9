"""S4D (Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space Models"): a diagonal
state-space model per channel, discretised by zero-order hold with a learned step Δ, trained in convolution mode.

    x'(t) = A x(t) + B u(t),  y(t) = C x(t) + D u(t),   A = diag(−exp(a) + i·b),  Ā = exp(ΔA),  B̄ = (Ā − 1)/A · B
    kernel K_l = 2·Re(Σ_n C̃_n Ā_n^l)  (C̃ = C·B̄, B folded into C),   y = K ∗ u + D u   (causal, by FFT)

Followed: state-spaces/s4 ``models/s4/s4d.py`` (``S4DKernel``, ``S4D``): log Δ ~ U(log 0.001, log 0.1) per channel,
C complex Gaussian (each part N(0, ½)), S4D-Lin init (real part −½, imaginary π·n), N/2 complex modes for
``d_state`` N (conjugate pairs, hence the 2·Re), the FFT convolution at length 2L, D ~ N(0, 1), then GELU and a
position-wise GLU (``Conv1d(H, 2H, 1)``); the layers are residual, ``x + S4D(LN(x))``. S4D rather than S5: its
convolution mode needs no complex scan, and the file names it. Complex numbers are held as real and imaginary parts.

What differs: s4's example trains the SSM parameters (Δ, A, C) at learning rate 0.001 without weight decay; here one
learning rate for all. Pre-norm (s4's example defaults to post-norm), no dropout.
"""

import math

import keras
from keras import ops

from models.layers import residual_blocks
from models.registry import ModelError, positive, register


@keras.saving.register_keras_serializable(package="lstm_bench")
class S4D(keras.layers.Layer):
    """One S4D layer, ``(B, T, H) → (B, T, H)``: SSM convolution, skip D, GELU, GLU. ``recurrent=True`` runs the
    same discretised SSM as a recurrence instead of the convolution (a test checks both agree)."""

    def __init__(self, d_state: int = 64, dt_min: float = 0.001, dt_max: float = 0.1, recurrent: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.d_state, self.dt_min, self.dt_max, self.recurrent = d_state, dt_min, dt_max, recurrent

    def build(self, input_shape):
        h, n = input_shape[-1], self.d_state // 2
        self.log_dt = self.add_weight((h,), keras.initializers.RandomUniform(math.log(self.dt_min),
                                                                            math.log(self.dt_max)), name="log_dt")
        self.c = self.add_weight((h, n, 2), keras.initializers.RandomNormal(0.0, 0.5**0.5), name="c")
        self.log_a_real = self.add_weight((h, n), keras.initializers.Constant(math.log(0.5)), name="log_a_real")
        self.a_imag = self.add_weight(
            (h, n), lambda shape, dtype=None: ops.cast(ops.ones(shape) * math.pi * ops.arange(shape[1], dtype="float32"),
                                                      dtype or "float32"), name="a_imag")
        self.d = self.add_weight((h,), keras.initializers.RandomNormal(0.0, 1.0), name="d")
        self.glu = keras.layers.Dense(2 * h, name="glu")
        self.glu.build((*input_shape[:-1], h))

    def discretised(self):
        """``(Ā_re, Ā_im, C̃_re, C̃_im)``, each (H, N/2): the ZOH-discretised diagonal and C·(Ā − 1)/A."""
        dt = ops.exp(self.log_dt)[:, None]
        a_re, a_im = -ops.exp(self.log_a_real), self.a_imag
        decay = ops.exp(a_re * dt)
        bar_re, bar_im = decay * ops.cos(a_im * dt), decay * ops.sin(a_im * dt)
        # (Ā − 1) / A = ((Ā_re − 1) + i Ā_im)(a_re − i a_im) / |A|²
        modulus = a_re * a_re + a_im * a_im
        q_re, q_im = ((bar_re - 1) * a_re + bar_im * a_im) / modulus, (bar_im * a_re - (bar_re - 1) * a_im) / modulus
        c_re, c_im = self.c[..., 0], self.c[..., 1]
        return bar_re, bar_im, c_re * q_re - c_im * q_im, c_re * q_im + c_im * q_re

    def kernel(self, length: int):
        """The SSM convolution kernel K, (H, L): ``2·Re(Σ_n C̃_n Ā_n^l)`` via ``Ā^l = exp(l·ΔA)``."""
        dt = ops.exp(self.log_dt)[:, None, None]
        l = ops.cast(ops.arange(length), self.compute_dtype)
        a_re, a_im = -ops.exp(self.log_a_real)[..., None], self.a_imag[..., None]
        modulus, phase = ops.exp(a_re * dt * l), a_im * dt * l  # (H, N/2, L)
        power_re, power_im = modulus * ops.cos(phase), modulus * ops.sin(phase)
        _, _, c_re, c_im = self.discretised()
        return 2 * ops.sum(c_re[..., None] * power_re - c_im[..., None] * power_im, axis=1)

    def call(self, u):
        t = u.shape[1]
        if self.recurrent:
            y = self._recurrence(u)
        else:
            k_re, k_im = ops.rfft(self.kernel(t), 2 * t)  # (H, t + 1)
            u_re, u_im = ops.rfft(ops.transpose(u, (0, 2, 1)), 2 * t)  # (B, H, t + 1)
            y = ops.irfft((u_re * k_re - u_im * k_im, u_re * k_im + u_im * k_re), 2 * t)[..., :t]
            y = ops.transpose(y, (0, 2, 1))
        y = keras.activations.gelu(y + u * self.d)
        value, gate = ops.split(self.glu(y), 2, axis=-1)
        return value * ops.sigmoid(gate)

    def _recurrence(self, u):
        """The same SSM step by step: ``x_l = Ā x_{l−1} + u_l``, ``y_l = 2·Re(C̃ · x_l)``."""
        bar_re, bar_im, c_re, c_im = self.discretised()
        x_re = x_im = ops.zeros((ops.shape(u)[0], *bar_re.shape), dtype=u.dtype)
        out = []
        for l in range(u.shape[1]):
            x_re, x_im = bar_re * x_re - bar_im * x_im + u[:, l, :, None], bar_re * x_im + bar_im * x_re
            out.append(2 * ops.sum(c_re * x_re - c_im * x_im, axis=-1))
        return ops.stack(out, axis=1)

    def get_config(self):
        return {**super().get_config(), "d_state": self.d_state, "dt_min": self.dt_min, "dt_max": self.dt_max,
                "recurrent": self.recurrent}


def flops(batch, length, width, *, units, d_state, layers, **_):
    """Input projection 2·B·T·D·H; per layer the kernel (once per batch) ~10·H·(N/2)·T, the FFT convolution: two
    forward real FFTs and an inverse of size 2T per channel, ~2.5·2T·log₂(2T) each, plus the complex product
    6·(T + 1), for the input and the inverse B·H times, for the kernel H times; the GLU 4·B·T·H²."""
    b, t, h = float(batch), float(length), float(units)
    fft = 2.5 * 2 * t * math.log2(2 * t)
    per_layer = 5 * h * d_state * t + (b + 1) * h * fft + b * h * (fft + 6 * (t + 1)) + 4 * b * t * h * h
    return 2 * b * t * width * h + layers * per_layer, units


@register("s4d", family="scan", width="units", flops=flops,
          state=lambda length, *, units, d_state, layers, **_: layers * units * d_state,
          space={"units": [32, 64, 128], "d_state": [16, 64], "layers": [1, 2, 4]})
def s4d(x, *, units: int = 64, d_state: int = 64, layers: int = 2):
    """S4D (Gu et al. 2022): diagonal SSM, ZOH with learned Δ, trained as an FFT convolution; residual layers."""
    positive(units=units, d_state=d_state, layers=layers)
    if d_state % 2:
        raise ModelError(f"d_state ({d_state}) must be even: S4D keeps d_state / 2 complex conjugate pairs")
    return residual_blocks(x, lambda: S4D(d_state), units, layers)
