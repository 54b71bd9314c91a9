"""GRU (Cho et al. 2014): two gates and no separate cell state."""

import keras

from models.layers import recurrent_stack, xla_cpu
from models.registry import fraction, positive, recurrent_flops, register


def flops(batch, length, width, *, units, layers, **_):
    """Three gates per layer (update, reset, candidate): 2·B·T·3H·(D+H)."""
    return recurrent_flops(batch, length, width, units, layers, gates=3)


def state(length, *, units, layers, **_):
    return units * layers


@register("gru", family="recurrent", width="units", cudnn=True, flops=flops, state=state, gates=3, xla_cpu=xla_cpu,
          space={"units": [32, 64, 128], "layers": [1, 2], "dropout": [0.0, 0.1, 0.2]})
def gru(x, *, units: int = 64, layers: int = 1, dropout: float = 0.0, per_step: bool = True):
    """Keras GRU stack with ``reset_after=True``, the cuDNN-compatible form."""
    positive(units=units, layers=layers)
    fraction(dropout=dropout)
    return recurrent_stack(x, lambda sequences: keras.layers.GRU(units, return_sequences=sequences, dropout=dropout),
                           layers, per_step)
