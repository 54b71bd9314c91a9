"""Shared input and output heads: adapt a task's signature to a mixer's ``(batch, time, width)``."""

from __future__ import annotations

import keras

from tasks.base import Features, Final, PerStep, Tokens

EMBED_DIM = 64  # width of the token embedding every model reads


def model_input(signature) -> keras.KerasTensor:
    if isinstance(signature.input, Tokens):
        return keras.Input((signature.length,), dtype="int32", name="tokens")
    return keras.Input((signature.length, signature.input.channels), name="features")


def embed(inputs, signature):
    """Tokens get a learned embedding; real features go to the mixer as they are. A masked signature
    (right-padded variable length) masks token 0 or all-zero feature steps, so recurrent layers skip them."""
    if isinstance(signature.input, Tokens):
        return keras.layers.Embedding(signature.input.vocab, EMBED_DIM, mask_zero=signature.masked, name="embed")(inputs)
    assert isinstance(signature.input, Features)
    return keras.layers.Masking(0.0, name="mask")(inputs) if signature.masked else inputs


def mixer_width(signature) -> int:
    """Features per step the mixer reads: the embedding width for tokens, the channels otherwise."""
    return EMBED_DIM if isinstance(signature.input, Tokens) else signature.input.channels


def readout_flops(signature, batch: int, width: int) -> float:
    """FLOPs of the readout Dense: 2·B·(T or 1)·width·outputs."""
    steps = signature.length if is_per_step(signature) else 1
    return 2.0 * batch * steps * width * (signature.output.classes or 1)


def is_per_step(signature) -> bool:
    return isinstance(signature.output, PerStep)


def readout(x, signature):
    """Logits per step, or the last step's logits (or value, for regression)."""
    if isinstance(signature.output, Final):
        x = x[:, -1, :]
    classes = signature.output.classes
    return keras.layers.Dense(classes or 1, name="readout")(x)
