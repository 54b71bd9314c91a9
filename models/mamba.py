"""Mamba (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"): the selective SSM (S6)
in Mamba's block, trained with a parallel scan.

    x, z = W_in u;   x = SiLU(conv₄(x));   Δ, B, C = W_x x (Δ through a rank-R bottleneck);   Δ = softplus(W_Δ Δ + b_Δ)
    h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t x_t,   y_t = C_t · h_t + D ⊙ x_t,   out = W_out (y ⊙ SiLU(z))

A is diagonal (E × N, one row of N real modes per inner channel), Δ per channel, B and C per step (shared across
channels). Followed: state-spaces/mamba ``mamba_ssm/modules/mamba_simple.py`` (``Mamba``: expand 2, d_state 16,
d_conv 4, dt_rank ⌈d_model / 16⌉; inits: A_log = log(1…N) (S4D-Real), D = 1, Δ bias the inverse softplus of
Δ ~ exp(U(log 0.001, log 0.1)) floored at 1e-4, W_Δ ~ U(±R^−½), the other projections as PyTorch's ``Linear``
without bias) and ``mamba_ssm/ops/selective_scan_interface.py`` (``selective_scan_ref``, which ``selective_scan``
follows: a test checks them equal on random inputs). The scan composes ``(exp(ΔA), ΔBx)`` pairs with
``models.layers.linear_scan``: no cumulative sum of logs, so nothing overflows at any length.

What differs: the blocks are ``x + Mamba(LN(x))`` with Keras' LayerNorm (Mamba's language models default to RMSNorm
with a fused residual); the out-projection is not rescaled by 1/√layers (``rescale_prenorm_residual``); no weight
decay exemptions. The scan materialises the (B, T, E, N) state, which the CUDA kernel avoids.
"""

import math

import keras
from keras import ops

from models.layers import TORCH_LINEAR, CausalConv, linear_scan, residual_blocks
from models.registry import positive, register


def selective_scan(u, delta, a, b, c, d, z=None, delta_bias=None):
    """``selective_scan_ref`` with ``delta_softplus=True``, real A and per-step B, C, laid out time-major as the
    harness is: ``u``, ``delta``, ``z`` (B, T, E); ``a`` (E, N); ``b``, ``c`` (B, T, N); ``d``, ``delta_bias`` (E,).
    Returns (B, T, E)."""
    delta = ops.softplus(delta if delta_bias is None else delta + delta_bias)
    decay = ops.exp(delta[..., None] * a)  # (B, T, E, N)
    drive = (delta * u)[..., None] * b[:, :, None, :]
    h = linear_scan(decay, drive)
    y = ops.sum(h * c[:, :, None, :], axis=-1) + u * d
    return y if z is None else y * ops.silu(z)


@keras.saving.register_keras_serializable(package="lstm_bench")
class Mamba(keras.layers.Layer):
    """Mamba's mixer (``mamba_simple.Mamba``), ``(B, T, H) → (B, T, H)``, inner width ``expand``·H."""

    def __init__(self, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_min: float = 0.001,
                 dt_max: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.d_state, self.d_conv, self.expand, self.dt_min, self.dt_max = d_state, d_conv, expand, dt_min, dt_max

    def build(self, input_shape):
        h = input_shape[-1]
        e, n, rank = self.expand * h, self.d_state, dt_rank(h)
        self.rank = rank
        self.in_proj = self.add_weight((h, 2 * e), TORCH_LINEAR, name="in_proj")
        self.conv = CausalConv(self.d_conv, name="conv")
        self.conv.build((*input_shape[:-1], e))
        self.x_proj = self.add_weight((e, rank + 2 * n), TORCH_LINEAR, name="x_proj")
        self.dt_proj = self.add_weight((rank, e), keras.initializers.RandomUniform(-rank**-0.5, rank**-0.5),
                                       name="dt_proj")
        low, high = math.log(self.dt_min), math.log(self.dt_max)

        def dt_bias(shape, dtype=None):  # softplus(bias) = Δ ~ exp(U(log dt_min, log dt_max)), at least 1e-4
            dt = ops.maximum(ops.exp(keras.random.uniform(shape, low, high)), 1e-4)
            return ops.cast(dt + ops.log(-ops.expm1(-dt)), dtype or "float32")

        self.dt_bias = self.add_weight((e,), dt_bias, name="dt_bias")
        self.a_log = self.add_weight(  # S4D-Real: A = −(1, 2, …, N) in every row
            (e, n), lambda shape, dtype=None: ops.cast(ops.ones(shape) * ops.log(ops.arange(1, shape[1] + 1,
                                                                                         dtype="float32")),
                                                      dtype or "float32"), name="a_log")
        self.d = self.add_weight((e,), "ones", name="d")
        self.out_proj = self.add_weight((e, h), TORCH_LINEAR, name="out_proj")

    def call(self, u):
        x, z = ops.split(ops.matmul(u, self.in_proj), 2, axis=-1)
        x = ops.silu(self.conv(x))
        dt, b, c = ops.split(ops.matmul(x, self.x_proj), [self.rank, self.rank + self.d_state], axis=-1)
        y = selective_scan(x, ops.matmul(dt, self.dt_proj), -ops.exp(self.a_log), b, c, self.d, z, self.dt_bias)
        return ops.matmul(y, self.out_proj)

    def get_config(self):
        return {**super().get_config(), "d_state": self.d_state, "d_conv": self.d_conv, "expand": self.expand,
                "dt_min": self.dt_min, "dt_max": self.dt_max}


def dt_rank(units: int) -> int:
    """Mamba's ``dt_rank="auto"``: ⌈d_model / 16⌉."""
    return math.ceil(units / 16)


def flops(batch, length, width, *, units, d_state, expand, layers, **_):
    """Input projection 2·B·T·D·H; per layer (E = expand·H, R = dt rank, N = d_state, K = 4): in/out projections
    6·B·T·H·E, convolution 2·B·T·E·K, x_proj 2·B·T·E·(R + 2N), Δ projection 2·B·T·R·E, and the scan ~9·B·T·E·N
    (discretise Δ·A, exp, Δ·B·x, the state update, C·h)."""
    b, t, h = float(batch), float(length), float(units)
    e, r, n = expand * h, float(dt_rank(units)), float(d_state)
    per_layer = 6 * b * t * h * e + 8 * b * t * e + 2 * b * t * e * (r + 2 * n) + 2 * b * t * r * e + 9 * b * t * e * n
    return 2 * b * t * width * h + layers * per_layer, units


def state(length, *, units, d_state, expand, layers, **_):
    """Per layer the E×N SSM state and the convolution's last 3 inputs (E = expand·units)."""
    return layers * expand * units * (d_state + 3)


@register("mamba", family="scan", width="units", flops=flops, state=state,
          space={"units": [32, 64, 128], "d_state": [8, 16, 32], "layers": [1, 2, 4]})
def mamba(x, *, units: int = 64, d_state: int = 16, expand: int = 2, layers: int = 2):
    """Mamba (Gu & Dao 2023): selective SSM (S6) with input-dependent Δ, B, C, conv and SiLU gate; parallel scan."""
    positive(units=units, d_state=d_state, expand=expand, layers=layers)
    return residual_blocks(x, lambda: Mamba(d_state, expand=expand), units, layers)
