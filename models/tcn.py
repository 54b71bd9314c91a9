"""TCN (Bai et al. 2018): residual blocks of two dilated causal convolutions, dilation doubling per level, with
enough levels that the receptive field covers the whole input (unless ``levels`` is given)."""

import keras

from models.registry import ModelError, fraction, positive, register


def receptive_field(kernel_size: int, levels: int) -> int:
    """Steps one output sees: 1 + 2·(k−1)·(2^levels − 1) (two convolutions per level)."""
    return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


def levels_for(length: int, kernel_size: int) -> int:
    """The fewest levels whose receptive field covers ``length`` steps."""
    levels = 1
    while receptive_field(kernel_size, levels) < length:
        levels += 1
    return levels


def flops(batch, length, width, *, units, kernel_size, levels, **_):
    """Per level two convolutions 2·B·T·k·C_in·C; a 1×1 convolution where the width changes."""
    levels = levels or levels_for(length, kernel_size)
    b, t, c = float(batch), float(length), float(units)
    first = 2 * b * t * kernel_size * width * c + (2 * b * t * width * c if width != units else 0)
    return first + 2 * b * t * kernel_size * c * c * (2 * levels - 1), units


def state(length, *, units, kernel_size, levels, **_):
    """For step-by-step inference, each convolution keeps its last (k−1)·dilation inputs."""
    levels = levels or levels_for(length, kernel_size)
    return sum(2 * (kernel_size - 1) * 2**i * units for i in range(levels))


@register("tcn", family="convolution", width="units", flops=flops, state=state,
          space={"units": [32, 64, 128], "kernel_size": [3, 5, 7], "dropout": [0.0, 0.1]})
def tcn(x, *, units: int = 64, kernel_size: int = 3, levels: int | None = None, dropout: float = 0.0):
    """Temporal convolutional network: dilated causal convolutions whose receptive field covers the input."""
    positive(units=units, kernel_size=kernel_size)
    fraction(dropout=dropout)
    if levels is not None:
        positive(levels=levels)
    if kernel_size < 2:
        raise ModelError(f"kernel_size must be >= 2, got {kernel_size}")
    for level in range(levels or levels_for(x.shape[1], kernel_size)):
        h = x
        for _ in range(2):
            h = keras.layers.Conv1D(units, kernel_size, padding="causal", dilation_rate=2**level, activation="relu")(h)
            h = keras.layers.SpatialDropout1D(dropout)(h) if dropout else h
        skip = x if x.shape[-1] == units else keras.layers.Conv1D(units, 1)(x)
        x = keras.layers.ReLU()(h + skip)
    return x
