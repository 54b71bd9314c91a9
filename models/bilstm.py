"""Bidirectional LSTM: one LSTM reads forwards, another backwards; their states are concatenated."""

import keras

from models.layers import recurrent_stack, xla_cpu
from models.registry import fraction, positive, recurrent_flops, register


def flops(batch, length, width, *, units, **_):
    """Two LSTMs, each 2·B·T·4H·(D+H); outputs 2H wide."""
    one, _ = recurrent_flops(batch, length, width, units, 1, gates=4)
    return 2 * one, 2 * units


def state(length, *, units, **_):
    return 4 * units


@register("bilstm", family="recurrent", width="units", cudnn=True, flops=flops, state=state, gates=4, xla_cpu=xla_cpu,
          space={"units": [32, 64, 128], "dropout": [0.0, 0.1, 0.2]})
def bilstm(x, *, units: int = 64, dropout: float = 0.0, per_step: bool = True):
    """Keras Bidirectional(LSTM). For a final output it reads each direction's last state."""
    positive(units=units)
    fraction(dropout=dropout)
    return recurrent_stack(x, lambda sequences: keras.layers.Bidirectional(
        keras.layers.LSTM(units, return_sequences=sequences, dropout=dropout)), 1, per_step)
