"""Custom Keras layers shared by model files, written with ``keras.ops`` so every backend runs them."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstm_bench")
class SinusoidalPosition(keras.layers.Layer):
    """Adds the fixed sine/cosine position code of Vaswani et al. (2017) to ``(batch, time, width)``.

    >>> SinusoidalPosition()(keras.ops.zeros((2, 10, 16))).shape
    (2, 10, 16)
    """

    def __init__(self, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def call(self, x):
        length, width = ops.shape(x)[1], ops.shape(x)[2]
        position = ops.cast(ops.arange(length), self.compute_dtype)[:, None]
        index = ops.cast(ops.arange(width) // 2 * 2, self.compute_dtype)[None, :]
        angle = position * ops.exp(-math.log(self.max_wavelength) * index / ops.cast(width, self.compute_dtype))
        even = ops.cast(ops.arange(width) % 2 == 0, self.compute_dtype)[None, :]
        code = even * ops.sin(angle) + (1 - even) * ops.cos(angle)
        return x + ops.cast(code, x.dtype)[None]

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}
