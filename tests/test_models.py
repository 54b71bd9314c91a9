import keras
import numpy as np
import pytest

import models
import tasks
from bench.core.spec import TrainConfig
from bench.runner.train import compile_model
from models.layers import SinusoidalPosition

SMALL = {"rnn": {"units": 8}, "lstm": {"units": 8}, "gru": {"units": 8}, "bilstm": {"units": 8},
         "stacked_lstm": {"units": 8}, "transformer": {"d_model": 8, "heads": 2, "layers": 1}}


def test_every_builtin_model_is_registered():
    assert set(models.list_models()) >= set(SMALL)


SYNTHETIC = [n for n in tasks.list_tasks() if not issubclass(tasks.registry.task_class(n), tasks.Dataset)]
MASKED = ["japanese_vowels", "rotten_tomatoes"]  # right-padded real data: masked features, masked tokens


@pytest.mark.parametrize("task_name", SYNTHETIC + MASKED)
@pytest.mark.parametrize("model_name", sorted(SMALL))
def test_model_builds_and_trains_on_task(model_name, task_name):
    task = tasks.create(task_name, length=12)
    model = models.create(model_name, task.signature, **SMALL[model_name])
    compile_model(model, task.signature, TrainConfig(), jit_compile=False)
    x, y = task.generate("train", 32, seed=0)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    out = np.asarray(model.predict_on_batch(x))
    sig = task.signature
    expected = (32, sig.length, sig.output.classes) if models.registry.heads.is_per_step(sig) else (32, sig.output.classes or 1)
    assert out.shape == expected


def test_transformer_is_causal_for_per_step_tasks():
    task = tasks.create("copy", length=6)
    model = models.create("transformer", task.signature, **SMALL["transformer"])
    x, _ = task.generate("val", 2)
    changed = x.copy()
    changed[:, -1] = (changed[:, -1] + 1) % 10
    a, b = np.asarray(model(x)), np.asarray(model(changed))
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], atol=1e-5)  # the past cannot see the future


def test_hyperparameter_errors():
    sig = tasks.create("adding", length=10).signature
    with pytest.raises(models.ModelError, match="valid: units"):
        models.create("lstm", sig, width=3)
    with pytest.raises(models.ModelError, match="units must be a positive integer"):
        models.create("gru", sig, units=0)
    with pytest.raises(models.ModelError, match="layers >= 2"):
        models.create("stacked_lstm", sig, layers=1)
    with pytest.raises(models.ModelError, match="divisible"):
        models.create("transformer", sig, d_model=10, heads=3)
    with pytest.raises(models.ModelError, match="valid: bilstm"):
        models.create("lstmm", sig)


def test_custom_layer_round_trips_through_config():
    layer = SinusoidalPosition(max_wavelength=500.0)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    x = np.zeros((1, 5, 6), dtype="float32")
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(clone(x)))
    assert clone.max_wavelength == 500.0


def test_model_saves_and_loads(tmp_path):
    task = tasks.create("recall", length=4)
    model = models.create("transformer", task.signature, **SMALL["transformer"])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x, _ = task.generate("val", 3)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), atol=1e-5)


def test_flops_and_state_formulas_are_told_whether_the_task_reads_every_step():
    """A mixer that computes only its last step when ``per_step`` is False can count only that."""
    told = []
    flops = lambda batch, length, width, *, units, per_step: (told.append(per_step) or (length if per_step else 1), units)  # noqa: E731
    state = lambda length, *, units, **hp: told.append(hp["per_step"]) or units  # noqa: E731
    models.register("per_step_probe", width="units", flops=flops, state=state)(lambda x, *, units=4: x)
    try:
        per_step, final = tasks.create("copy", length=5).signature, tasks.create("adding", length=5).signature
        readout = models.heads.readout_flops(per_step, 2, 4)
        assert models.forward_flops("per_step_probe", per_step, 2) == per_step.length + readout
        assert models.forward_flops("per_step_probe", final, 2) == 1 + models.heads.readout_flops(final, 2, 4)
        assert models.state_size("per_step_probe", final) == 4 and told == [True, False, False]
    finally:
        models.registry._MODELS.pop("per_step_probe")
