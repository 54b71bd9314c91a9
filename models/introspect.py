"""Look inside a trained model: the gate activations of its first LSTM-family layer over time.

Works for Keras' ``LSTM`` (its gates recomputed from its weights by ``models.cells.LSTMCell``, which computes the
same function, a test checks) and for the custom cells (``LSTMCell`` and its variants, ``SLSTMCell``).
"""

from __future__ import annotations

import keras
import numpy as np

from models.cells import LSTMCell, SLSTMCell

UNITS_KEPT = 8  # units per sample kept in a record: the ones whose forget gate moves most over time


def traceable_cell(layer):
    """The cell that can replay ``layer``'s gates, or None: Keras' LSTM as an equal ``LSTMCell``, custom cells as
    they are."""
    if isinstance(layer, keras.layers.LSTM) and not isinstance(layer, keras.layers.Bidirectional):
        cell = LSTMCell(layer.units, unit_forget_bias=False)
        cell.build((None, layer.cell.kernel.shape[0]))
        cell.set_weights([keras.ops.convert_to_numpy(w) for w in
                          (layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)])
        return cell
    if isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, (LSTMCell, SLSTMCell)):
        return layer.cell
    return None


def gate_traces(model: keras.Model, x, samples: int = 2) -> dict | None:
    """Input and forget gate activations over time of the model's first LSTM-family layer on ``x[:samples]``.

    Returns ``{"layer", "units", "samples": [{"input_mean", "forget_mean", "units", "input", "forget"}]}``: per sample,
    the mean over all units at every step and the full traces of the ``UNITS_KEPT`` units whose forget gate varies
    most (values rounded to 4 decimals), or None when the model has no such layer.
    """
    found = next(((layer, cell) for layer in model.layers  # graph layers: a wrapper's inner layers have no input
                  if (cell := traceable_cell(layer)) is not None), None)
    if found is None:
        return None
    layer, cell = found
    sequence = keras.Model(model.input, layer.input)(x[:samples])
    if isinstance(sequence, (list, tuple)):  # a masked input arrives with its mask
        sequence = sequence[0]
    gates = cell.trace(keras.ops.convert_to_tensor(sequence))
    out = []
    for s in range(gates["forget"].shape[0]):
        keep = np.sort(np.argsort(-gates["forget"][s].std(axis=0))[:UNITS_KEPT])
        out.append({"units": keep.tolist(),
                    **{f"{g}_mean": _round(gates[g][s].mean(axis=1)) for g in ("input", "forget")},
                    **{g: _round(gates[g][s][:, keep].T) for g in ("input", "forget")}})
    return {"layer": layer.name, "units": int(gates["forget"].shape[-1]), "samples": out}


def _round(values) -> list:
    return np.round(np.asarray(values, dtype=np.float64), 4).tolist()
