"""An example plugin: a user's model in one file, used without touching lstm-bench's code.

    bench run --plugin examples/lstm_no_forget_bias.py --task adding --model lstm_no_forget_bias --length 50

This one is the forget-bias ablation of the background notes: a Keras LSTM whose forget gate starts at
0 instead of 1, so early in training it forgets by default.
"""

import keras

from models import register
from models.registry import positive, recurrent_flops


def flops(batch, length, width, *, units, **_):
    return recurrent_flops(batch, length, width, units, layers=1, gates=4)


@register("lstm_no_forget_bias", family="recurrent", width="units", cudnn=True, gates=4, flops=flops, state=lambda length, *, units, **_: 2 * units)
def lstm_no_forget_bias(x, *, units: int = 64):
    """LSTM with its forget-gate bias initialised to 0 (Keras' unit_forget_bias=False)."""
    positive(units=units)
    return keras.layers.LSTM(units, return_sequences=True, unit_forget_bias=False)(x)
