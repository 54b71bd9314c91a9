"""LSTM (Hochreiter & Schmidhuber 1997) and its stacked form, from Keras' cuDNN-capable layer."""

import keras

from models.layers import recurrent_stack, xla_cpu
from models.registry import ModelError, fraction, positive, recurrent_flops, register


def flops(batch, length, width, *, units, layers, **_):
    """Four gates per layer: 2·B·T·4H·(D+H) forward."""
    return recurrent_flops(batch, length, width, units, layers, gates=4)


def state(length, *, units, layers, **_):
    """Hidden and cell state: 2H per layer."""
    return 2 * units * layers


def cudnn(hp):
    """Keras' LSTM takes cuDNN unless recurrent dropout is on."""
    return f"recurrent_dropout={hp['recurrent_dropout']} (cuDNN has none)" if hp["recurrent_dropout"] else None


@register("lstm", family="recurrent", width="units", cudnn=cudnn, flops=flops, state=state, gates=4, xla_cpu=xla_cpu,
          space={"units": [32, 64, 128], "layers": [1, 2], "unit_forget_bias": [True, False],
                 "dropout": [0.0, 0.1, 0.2]}, reference=True)
def lstm(x, *, units: int = 64, layers: int = 1, unit_forget_bias: bool = True,
         dropout: float = 0.0, recurrent_dropout: float = 0.0, per_step: bool = True):
    """Keras LSTM stack; forget-gate bias starts at 1 unless ``unit_forget_bias=False``.

    ``recurrent_dropout > 0`` leaves the cuDNN path.
    """
    positive(units=units, layers=layers)
    fraction(dropout=dropout, recurrent_dropout=recurrent_dropout)
    return recurrent_stack(x, lambda sequences: keras.layers.LSTM(
        units, return_sequences=sequences, unit_forget_bias=unit_forget_bias, dropout=dropout,
        recurrent_dropout=recurrent_dropout), layers, per_step)


@register("stacked_lstm", family="recurrent", width="units", cudnn=cudnn, flops=flops, state=state, gates=4,
          xla_cpu=xla_cpu, space={"units": [32, 64, 128], "layers": [2, 3], "unit_forget_bias": [True, False],
                                  "dropout": [0.0, 0.1, 0.2]})
def stacked_lstm(x, *, units: int = 64, layers: int = 2, unit_forget_bias: bool = True,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, per_step: bool = True):
    """Two or more LSTM layers, each feeding its sequence of states to the next."""
    if not isinstance(layers, int) or layers < 2:
        raise ModelError(f"stacked_lstm needs layers >= 2, got {layers!r}")
    return lstm(x, units=units, layers=layers, unit_forget_bias=unit_forget_bias,
                dropout=dropout, recurrent_dropout=recurrent_dropout, per_step=per_step)
