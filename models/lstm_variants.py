"""LSTM variants of the background notes, from one custom cell (``models.cells.LSTMCell``), and a deep LSTM stack
with residual connections and layer norm.

``lstm_cell`` is the custom cell with every option off: the same maths as ``lstm`` (a test checks it to 1e-5),
so a comparison against ``peephole``, ``cifg`` or ``ln_lstm`` changes one thing only. None of these take cuDNN.
They accept ``train.tbptt`` (truncated backpropagation through time).
"""

import keras

from models.cells import LSTMCell
from models.layers import recurrent_stack
from models.registry import fraction, positive, recurrent_flops, register

SPACE = {"units": [32, 64, 128, 256], "layers": [1, 2], "dropout": [0.0, 0.1]}


def flops(batch, length, width, *, units, layers, coupled=False, **_):
    """2·B·T·G·H·(D+H) per layer, G = 4 gates (3 when coupled); peepholes and norms are elementwise, ignored."""
    return recurrent_flops(batch, length, width, units, layers, gates=3 if coupled else 4)


def state(length, *, units, layers, **_):
    """Hidden and cell state: 2H per layer."""
    return 2 * units * layers


def _cell_stack(x, units, layers, dropout, per_step, tbptt, **options):
    """``layers`` RNN layers of ``LSTMCell(**options)``; ``dropout`` on every layer's input, one mask per sequence
    (as Keras' LSTM applies its ``dropout``)."""
    positive(units=units, layers=layers)
    fraction(dropout=dropout)
    if tbptt is not None:
        positive(tbptt=tbptt)

    def layer(sequences):
        rnn = keras.layers.RNN(LSTMCell(units, tbptt=tbptt, **options), return_sequences=sequences)
        return lambda h: rnn(keras.layers.SpatialDropout1D(dropout)(h) if dropout else h)

    return recurrent_stack(x, layer, layers, per_step)


def _variant(name, doc, **options):
    """Register one LSTM-cell variant whose cell options are fixed to ``options``."""

    def mixer(x, *, units: int = 64, layers: int = 1, unit_forget_bias: bool = True, dropout: float = 0.0,
              per_step: bool = True, tbptt: int | None = None):
        return _cell_stack(x, units, layers, dropout, per_step, tbptt, unit_forget_bias=unit_forget_bias, **options)

    mixer.__doc__ = doc
    return register(name, family="recurrent", width="units", flops=lambda *a, **hp: flops(*a, **hp, **options),
                    state=state, gates=3 if options.get("coupled") else 4, space=SPACE)(mixer)


lstm_cell = _variant("lstm_cell", "LSTM from the custom keras.ops cell (no cuDNN): the reference for its variants.")
peephole = _variant("peephole", "Peephole LSTM: gates see the cell (V⊙C_{t-1} for i and f, V⊙C_t for o).",
                    peephole=True)
cifg = _variant("cifg", "Coupled input-forget gate LSTM (CIFG): i_t = 1 - f_t, one gate fewer.", coupled=True)
ln_lstm = _variant("ln_lstm", "Layer-normalised LSTM (Ba et al. 2016): LN on gate pre-activations and on the cell.",
                   layer_norm=True)


@register("deep_lstm", family="recurrent", width="units", cudnn=True, state=state, gates=4,
          flops=lambda batch, length, width, *, units, layers, residual, **_: (
              recurrent_flops(batch, length, units if residual else width, units, layers, 4)[0]
              + (2.0 * batch * length * width * units if residual else 0), units),
          space={"units": [32, 64, 128], "layers": [1, 2, 4, 8], "residual": [False, True],
                 "layer_norm": [False, True]})
def deep_lstm(x, *, units: int = 64, layers: int = 4, residual: bool = True, layer_norm: bool = True,
              dropout: float = 0.0, per_step: bool = True):
    """Keras LSTM stack (cuDNN) of 1-8+ layers, optionally pre-norm residual: x + LSTM(LN(x)) per layer."""
    positive(units=units, layers=layers)
    fraction(dropout=dropout)
    if residual:
        x = keras.layers.Dense(units)(x)  # the residual stream is ``units`` wide
    for _ in range(layers):
        h = keras.layers.LayerNormalization(epsilon=1e-5)(x) if layer_norm else x
        h = keras.layers.LSTM(units, return_sequences=True, dropout=dropout)(h)
        x = x + h if residual else h
    return keras.layers.LayerNormalization(epsilon=1e-5)(x) if layer_norm else x

