"""Vanilla RNN: the baseline whose gradients vanish."""

import keras

from models.layers import recurrent_stack
from models.registry import fraction, positive, recurrent_flops, register


def flops(batch, length, width, *, units, layers, **_):
    """One tanh gate per layer: 2·B·T·H·(D+H)."""
    return recurrent_flops(batch, length, width, units, layers, gates=1)


def state(length, *, units, layers, **_):
    return units * layers


@register("rnn", family="recurrent", width="units", cudnn=False, flops=flops, state=state, gates=1,
          space={"units": [32, 64, 128], "layers": [1, 2], "dropout": [0.0, 0.1, 0.2]})
def rnn(x, *, units: int = 64, layers: int = 1, dropout: float = 0.0, per_step: bool = True):
    """Keras SimpleRNN stack (tanh); never takes the cuDNN path."""
    positive(units=units, layers=layers)
    fraction(dropout=dropout)
    return recurrent_stack(x, lambda sequences: keras.layers.SimpleRNN(
        units, return_sequences=sequences, dropout=dropout), layers, per_step)
