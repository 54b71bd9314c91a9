"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences"): a
diagonal complex linear recurrence trained with a parallel scan, in the paper's residual block.

    λ = exp(−exp(ν) + i·exp(θ)),   h_t = λ ⊙ h_{t−1} + γ ⊙ (B x_t),   y_t = Re(C h_t) + D ⊙ x_t,   γ = √(1 − |λ|²)

Followed: the paper's appendix A code (as in its reference port, NicolasZucchet/minimal-LRU ``lru/model.py``): the
exponential parameterisation (``nu_log``, ``theta_log``), the ring initialisation (|λ|² uniform on [r_min², r_max²],
phase uniform on [0, max_phase]), the γ normalisation as a learned ``gamma_log`` starting at log √(1 − |λ|²), B and C
complex Gaussians with variance 1/(2·H) and 1/N per part, D ~ N(0, 1); the block ``x + GLU(GELU(LRU(LN(x))))`` with
GLU ``W₁ y ⊙ σ(W₂ y)``. Complex numbers are held as real and imaginary parts (float32 tensors), so every backend
runs it.

What differs: one learning rate for every parameter (the paper lowers it by half for ν, θ, γ and excludes them from
weight decay); layer norm, pre-norm (the paper tries batch and layer norm); no dropout. Defaults r_min 0.9,
r_max 0.999, max_phase 2π are the paper's for most of its tasks (it narrows the phase to π/10 on the longest).
"""

import math

import keras
from keras import ops

from models.layers import complex_linear_scan, residual_blocks
from models.registry import ModelError, positive, register


def _uniform(low: float, high: float, transform):
    """An initializer: ``transform(u)`` of u ~ U(low, high)."""
    return lambda shape, dtype=None: ops.cast(transform(keras.random.uniform(shape, low, high)), dtype or "float32")


@keras.saving.register_keras_serializable(package="lstm_bench")
class LRU(keras.layers.Layer):
    """One LRU, ``(B, T, H) → (B, T, H)`` with ``d_state`` complex modes; ``parallel=False`` runs the same recurrence
    step by step (a test checks both agree)."""

    def __init__(self, d_state: int = 64, r_min: float = 0.9, r_max: float = 0.999, max_phase: float = 2 * math.pi,
                 parallel: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.d_state, self.r_min, self.r_max, self.max_phase, self.parallel = d_state, r_min, r_max, max_phase, parallel

    def build(self, input_shape):
        h, n = input_shape[-1], self.d_state
        r2 = (self.r_min**2, self.r_max**2)  # |λ|² = u (r_max² − r_min²) + r_min², ν = log(−½ log |λ|²)
        self.nu_log = self.add_weight((n,), _uniform(*r2, lambda u: ops.log(-0.5 * ops.log(u))), name="nu_log")
        self.theta_log = self.add_weight((n,), _uniform(0.0, self.max_phase, ops.log), name="theta_log")

        def gamma_init(shape, dtype=None):  # log √(1 − |λ|²) at the initial λ
            return ops.cast(0.5 * ops.log(1 - ops.exp(-2 * ops.exp(self.nu_log))), dtype or "float32")

        self.gamma_log = self.add_weight((n,), gamma_init, name="gamma_log")
        b_init, c_init = (keras.initializers.RandomNormal(0.0, s) for s in ((2 * h) ** -0.5, n**-0.5))
        self.b_re, self.b_im = (self.add_weight((h, n), b_init, name=f"b_{p}") for p in ("re", "im"))
        self.c_re, self.c_im = (self.add_weight((n, h), c_init, name=f"c_{p}") for p in ("re", "im"))
        self.d = self.add_weight((h,), keras.initializers.RandomNormal(0.0, 1.0), name="d")

    def decay(self):
        """λ as ``(real, imaginary)`` parts, each ``(d_state,)``."""
        modulus, phase = ops.exp(-ops.exp(self.nu_log)), ops.exp(self.theta_log)
        return modulus * ops.cos(phase), modulus * ops.sin(phase)

    def call(self, x):
        gamma = ops.exp(self.gamma_log)
        bu_re, bu_im = ops.matmul(x, self.b_re) * gamma, ops.matmul(x, self.b_im) * gamma  # (B, T, N)
        l_re, l_im = self.decay()
        if self.parallel:
            h_re, h_im = complex_linear_scan(ops.broadcast_to(l_re, ops.shape(bu_re)),
                                             ops.broadcast_to(l_im, ops.shape(bu_im)), bu_re, bu_im)
        else:
            h_re, h_im = self._sequential(l_re, l_im, bu_re, bu_im)
        return ops.matmul(h_re, self.c_re) - ops.matmul(h_im, self.c_im) + self.d * x  # Re(C h) + D x

    @staticmethod
    def _sequential(l_re, l_im, bu_re, bu_im):
        h_re, h_im, out_re, out_im = ops.zeros_like(bu_re[:, 0]), ops.zeros_like(bu_im[:, 0]), [], []
        for t in range(bu_re.shape[1]):
            h_re, h_im = l_re * h_re - l_im * h_im + bu_re[:, t], l_re * h_im + l_im * h_re + bu_im[:, t]
            out_re.append(h_re)
            out_im.append(h_im)
        return ops.stack(out_re, axis=1), ops.stack(out_im, axis=1)

    def get_config(self):
        return {**super().get_config(), "d_state": self.d_state, "r_min": self.r_min, "r_max": self.r_max,
                "max_phase": self.max_phase, "parallel": self.parallel}


def lru_block(units: int, **options):
    """The paper's block body after the norm: LRU → GELU → GLU (``W₁ y ⊙ σ(W₂ y)``)."""
    lru = LRU(**options)
    value, gate = keras.layers.Dense(units), keras.layers.Dense(units, activation="sigmoid")

    def apply(x):
        y = keras.layers.Activation("gelu")(lru(x))
        return value(y) * gate(y)

    return apply


def flops(batch, length, width, *, units, d_state, layers, **_):
    """Input projection 2·B·T·D·H; per layer B x (real and imaginary) 4·B·T·H·N, Re(C h) 4·B·T·N·H, the GLU
    4·B·T·H²; the scan is elementwise, ignored."""
    b, t, h, n = float(batch), float(length), float(units), float(d_state)
    return 2 * b * t * width * h + layers * (8 * b * t * h * n + 4 * b * t * h * h), units


@register("lru", family="scan", width="units", flops=flops,
          state=lambda length, *, d_state, layers, **_: 2 * d_state * layers,
          space={"units": [32, 64, 128], "d_state": [32, 64, 128], "layers": [1, 2, 4], "r_min": [0.0, 0.5, 0.9]})
def lru(x, *, units: int = 64, d_state: int = 64, layers: int = 2, r_min: float = 0.9, r_max: float = 0.999,
        max_phase: float = 2 * math.pi):
    """LRU (Orvieto et al. 2023): diagonal complex linear recurrence, ring init, γ-normalised, parallel scan."""
    positive(units=units, d_state=d_state, layers=layers)
    if not 0 <= r_min < r_max <= 1 or max_phase <= 0:
        raise ModelError(f"need 0 <= r_min < r_max <= 1 and max_phase > 0, got r_min={r_min!r}, r_max={r_max!r}, "
                         f"max_phase={max_phase!r}")
    options = {"d_state": d_state, "r_min": r_min, "r_max": r_max, "max_phase": max_phase}
    return residual_blocks(x, lambda: lru_block(units, **options), units, layers)
