"""Vanilla RNN: the baseline whose gradients vanish."""

import keras

from models.registry import fraction, positive, register


@register("rnn")
def rnn(x, *, units: int = 64, layers: int = 1, dropout: float = 0.0):
    """Keras SimpleRNN stack (tanh); never takes the cuDNN path."""
    positive(units=units, layers=layers)
    fraction(dropout=dropout)
    for _ in range(layers):
        x = keras.layers.SimpleRNN(units, return_sequences=True, dropout=dropout)(x)
    return x
