"""Bidirectional LSTM: one LSTM reads forwards, another backwards; their states are concatenated."""

import keras

from models.registry import fraction, positive, register


@register("bilstm", cudnn=True)
def bilstm(x, *, units: int = 64, dropout: float = 0.0, per_step: bool = True):
    """Keras Bidirectional(LSTM). For a final output it reads each direction's last state."""
    positive(units=units)
    fraction(dropout=dropout)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=per_step, dropout=dropout))
    x = layer(x)
    return x if per_step else keras.layers.Reshape((1, 2 * units))(x)
