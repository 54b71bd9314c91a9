"""Transformer variants for diagnosing recall (a plugin: ``bench run --plugin scripts/recall_variants.py``).

- ``transformer_scaled``: the suite's Transformer with the projected token embedding multiplied by sqrt(d_model)
  (Vaswani et al. 2017, section 3.4), so content is not drowned by the sine/cosine position code at initialisation.
- ``transformer_conv``: zoology's attention block: no position code, a causal depthwise convolution of width 3
  before each attention layer (zoology's BaseConv "short conv"), which hands each token its predecessor.
"""

import keras

from models.layers import SinusoidalPosition
from models.registry import register


def _blocks(x, d_model, heads, layers, ff_mult, conv):
    for _ in range(layers):
        if conv:
            h = keras.layers.LayerNormalization(epsilon=1e-5)(x)
            x = x + keras.layers.Conv1D(d_model, 3, padding="causal", groups=d_model)(h)
        h = keras.layers.LayerNormalization(epsilon=1e-5)(x)
        x = x + keras.layers.MultiHeadAttention(heads, d_model // heads)(h, h, use_causal_mask=True)
        h = keras.layers.LayerNormalization(epsilon=1e-5)(x)
        x = x + keras.layers.Dense(d_model)(keras.layers.Dense(ff_mult * d_model, activation="gelu")(h))
    return keras.layers.LayerNormalization(epsilon=1e-5)(x)


@register("transformer_scaled", family="attention", width="d_model")
def transformer_scaled(x, *, d_model: int = 64, heads: int = 4, layers: int = 2, ff_mult: int = 4,
                       per_step: bool = True):
    """The suite's Transformer, embedding scaled by sqrt(d_model) before the position code is added."""
    x = SinusoidalPosition()(keras.layers.Rescaling(d_model ** 0.5)(keras.layers.Dense(d_model)(x)))
    return _blocks(x, d_model, heads, layers, ff_mult, conv=False)


@register("transformer_conv", family="attention", width="d_model")
def transformer_conv(x, *, d_model: int = 64, heads: int = 4, layers: int = 2, ff_mult: int = 4,
                     per_step: bool = True):
    """zoology's attention: a causal short convolution before each attention layer, no position code."""
    return _blocks(keras.layers.Dense(d_model)(x), d_model, heads, layers, ff_mult, conv=True)
