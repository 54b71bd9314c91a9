"""Shared input and output heads: adapt a task's signature to a mixer's ``(batch, time, width)``."""

from __future__ import annotations

import keras

from tasks.base import IGNORE, Features, Final, PerStep, Tokens

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


def loss(signature, reduction: str = "sum_over_batch_size"):
    """The loss of the readout's output: MSE for a value, cross-entropy on logits for classes (targets equal to
    ``IGNORE`` carry none). Training uses the mean; the gradient flow the sum, to weight answer positions."""
    if isinstance(signature.output, Final) and signature.output.classes is None:
        return keras.losses.MeanSquaredError(reduction=reduction)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE, reduction=reduction)


def mixer_input(model: keras.Model):
    """The tensor the mixer of a ``models.create`` model reads: the input head's output (the token embedding),
    or None where the mixer reads the model's input as it is (real features). Found from the graph, not from
    a layer name: the input head is the one layer that consumes integer token inputs."""
    (inputs,) = model.inputs
    if not str(inputs.dtype).startswith("int"):
        return None
    consumers = [layer for layer in model.layers
                 if not isinstance(layer, keras.layers.InputLayer) and _reads(layer, inputs)]
    if len(consumers) != 1:
        raise ValueError(f"model {model.name!r}: expected one input head after the token input, "
                         f"found {len(consumers)}")
    return consumers[0].output


def _reads(layer, tensor) -> bool:
    return any(t is tensor for t in keras.tree.flatten(layer.input))
