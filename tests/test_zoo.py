"""The model zoo: every registered model passes the conformance check on each backend; the custom cells compute what
they claim (against Keras' LSTM, sequential vs parallel scan, mLSTM's two forms)."""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import models
import tasks
from models.cells import LSTMCell
from models.minrnn import MinRNN
from models.xlstm import MLSTM
from bench.runner.conformance import checks, on_backend

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "lstm_no_forget_bias.py"



def builtin() -> list[str]:
    """The models this repository's models/ folder registers."""
    folder = (ROOT / "models").resolve()
    return [name for name in models.list_models() if Path(models.entry(name).source).resolve().parent == folder]


def test_the_zoo_has_at_least_16_models():
    assert len(models.list_models()) >= 16
    assert {"peephole", "cifg", "ln_lstm", "slstm", "mlstm", "minlstm", "mingru", "tcn"} <= set(models.list_models())


@pytest.mark.parametrize("name", models.list_models())
def test_conformance_on_tensorflow(name):
    lines = list(checks(name))
    assert sum(line.startswith("build for ") for line in lines) == 3 and any("reload" in line for line in lines)


@pytest.mark.parametrize("backend", [
    pytest.param(b, marks=pytest.mark.skipif(importlib.util.find_spec(b) is None, reason=f"{b} is not installed"))
    for b in ("jax", "torch")])
def test_conformance_on_other_backends(backend):
    """Every model and the example plugin, in one subprocess per backend, on one task (copy, length 6: the other
    signatures are checked on TensorFlow; JAX compiles every model and PyTorch's CPU loop is slow)."""
    names = builtin()  # not the plugins other tests registered in this process
    results = list(on_backend(backend, [*names, "lstm_no_forget_bias"], [str(PLUGIN)], ("copy",)))
    assert [r["model"] for r in results if "ok" in r] == names + ["lstm_no_forget_bias"], results[-3:]
    assert [r for r in results if "error" in r] == []


def _keras_lstm_and_cell(units=6, features=3, **options):
    """A Keras LSTM and our cell holding the same kernel, recurrent kernel and bias (random, not the init)."""
    rng = np.random.default_rng(0)
    reference = keras.layers.LSTM(units, return_sequences=True)
    ours = keras.layers.RNN(LSTMCell(units, **options), return_sequences=True)
    x = rng.standard_normal((4, 7, features)).astype("float32")
    reference(x), ours(x)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in reference.get_weights()]
    reference.set_weights(weights)
    ours.set_weights(weights + [np.zeros(w.shape, "float32") for w in ours.get_weights()[3:]])
    return reference, ours, x


def test_custom_cell_with_peepholes_at_zero_and_coupling_off_matches_keras_lstm():
    reference, ours, x = _keras_lstm_and_cell(peephole=True)
    assert ours.get_weights()[3].shape == (3, 6)  # the peephole weights, set to zero
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(reference(x)), atol=1e-5)


def test_peepholes_and_coupling_change_the_output():
    reference, ours, x = _keras_lstm_and_cell(peephole=True)
    ours.set_weights(ours.get_weights()[:3] + [np.full((3, 6), 0.5, "float32")])
    assert np.abs(np.asarray(ours(x)) - np.asarray(reference(x))).max() > 1e-3
    cifg = models.create("cifg", tasks.create("adding", length=5).signature, units=6)
    lstm = models.create("lstm_cell", tasks.create("adding", length=5).signature, units=6)
    assert lstm.count_params() - cifg.count_params() == (2 + 6 + 1) * 6  # the input gate's kernel, U and bias


def test_truncated_bptt_keeps_the_forward_pass_and_cuts_old_gradients():
    x = np.random.default_rng(1).standard_normal((2, 12, 3)).astype("float32")
    full = keras.layers.RNN(LSTMCell(5))
    cut = keras.layers.RNN(LSTMCell(5, tbptt=4))
    full(x), cut(x)
    cut.set_weights(full.get_weights())
    np.testing.assert_allclose(np.asarray(cut(x)), np.asarray(full(x)), atol=1e-6)
    grads = [_input_gradient(layer, x) for layer in (full, cut)]
    assert np.abs(grads[0][:, :8]).max() > 1e-4  # the full gradient reaches the start
    assert np.abs(grads[1][:, :8]).max() == 0 and np.abs(grads[1][:, 8:]).max() > 1e-4  # the last chunk only


def _input_gradient(layer, x):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keras.ops.sum(layer(x))
    return tape.gradient(y, x).numpy()


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_min_rnn_parallel_scan_matches_the_sequential_recurrence(kind):
    x = np.random.default_rng(2).standard_normal((3, 200, 4)).astype("float32")  # past T=130, where a cumulative sum of log gates overflows float32
    parallel, sequential = MinRNN(8, kind), MinRNN(8, kind, parallel=False)
    parallel(x), sequential(x)
    sequential.set_weights(parallel.get_weights())
    a, b = np.asarray(parallel(x)), np.asarray(sequential(x))
    assert a.shape == (3, 200, 8) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_mlstm_parallel_form_matches_its_recurrent_form():
    x = np.random.default_rng(3).standard_normal((2, 40, 8)).astype("float32")
    parallel, recurrent = MLSTM(8, heads=2), MLSTM(8, heads=2, parallel=False)
    parallel(x), recurrent(x)
    weights = [w + np.random.default_rng(4).normal(0, 0.3, w.shape).astype("float32") for w in parallel.get_weights()]
    parallel.set_weights(weights)
    recurrent.set_weights(weights)
    np.testing.assert_allclose(np.asarray(parallel(x)), np.asarray(recurrent(x)), atol=1e-4)


def test_mlstm_is_causal():
    layer = MLSTM(8, heads=2)
    x = np.random.default_rng(5).standard_normal((1, 10, 8)).astype("float32")
    changed = x.copy()
    changed[:, -1] += 1.0
    np.testing.assert_allclose(np.asarray(layer(x))[:, :-1], np.asarray(layer(changed))[:, :-1], atol=1e-6)


def test_tcn_receptive_field_covers_the_input():
    from models.tcn import levels_for, receptive_field

    for length in (5, 60, 1000):
        levels = levels_for(length, 3)
        assert receptive_field(3, levels) >= length > receptive_field(3, levels - 1) or levels == 1


def test_width_for_a_parameter_budget_is_within_5_percent():
    from models.registry import count_params, width_for_budget

    sig = tasks.create("adding", length=20).signature
    for name, budget, hp in (("lstm", 5000, {}), ("transformer", 5000, {"heads": 1}), ("tcn", 5000, {})):
        hp = width_for_budget(name, sig, budget, **hp)
        assert abs(count_params(name, sig, **hp) - budget) <= 0.05 * budget, (name, hp)
    with pytest.raises(models.ModelError, match="within 5 %"):
        width_for_budget("lstm", sig, 3)


def test_gate_traces_of_keras_lstm_replay_its_gates():
    from models.introspect import gate_traces

    task = tasks.create("copy", length=5)
    model = models.create("lstm", task.signature, units=6)
    x, _ = task.generate("val", 3, seed=0)
    traces = gate_traces(model, x, samples=2)
    assert traces["units"] == 6 and len(traces["samples"]) == 2
    sample = traces["samples"][0]
    assert len(sample["forget_mean"]) == task.signature.length and len(sample["forget"]) == 6
    # the replayed hidden state (through LSTMCell with Keras' weights) equals the layer's own output
    layer = next(layer for layer in model.layers if isinstance(layer, keras.layers.LSTM))
    sequence = keras.Model(model.input, layer.input)(x)
    cell = keras.layers.RNN(LSTMCell(6, unit_forget_bias=False), return_sequences=True)
    cell(sequence)
    cell.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(cell(sequence)), np.asarray(layer(sequence)), atol=1e-5)
    assert 0 < min(min(u) for u in sample["input"]) and max(max(u) for u in sample["forget"]) < 1


def test_gate_traces_of_custom_cells_and_none_without_one():
    from models.introspect import gate_traces

    task = tasks.create("adding", length=5)
    x, _ = task.generate("val", 2, seed=0)
    for name in ("cifg", "slstm"):
        sample = gate_traces(models.create(name, task.signature, units=8), x)["samples"][0]
        assert len(sample["input_mean"]) == 5
    cifg = gate_traces(models.create("cifg", task.signature, units=8), x)["samples"][0]
    np.testing.assert_allclose(np.add(cifg["input_mean"], cifg["forget_mean"]), 1.0, atol=1e-3)  # i = 1 - f
    assert gate_traces(models.create("gru", task.signature, units=8), x) is None


def test_bench_list_shows_plugin_models_beside_builtins(capsys):
    from bench import cli

    assert cli.main(["list", "--plugin", str(PLUGIN)]) == 0
    out = capsys.readouterr().out
    assert "lstm_no_forget_bias" in out and "plugin: " in out and "  mlstm " in out


def test_bench_run_with_a_parameter_budget_records_budget_and_count(tmp_path, capsys):
    from bench import cli

    argv = ["run", "--task", "adding", "--model", "cifg", "--length", "6", "--steps", "10", "--eval-every", "10",
            "--param-budget", "3000", "--train", "tbptt=3", "--train", "clipvalue=0.5", "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    record = json.loads(open(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["record"]).read())
    assert record["status"] == "ok" and record["param_budget"] == 3000
    assert abs(record["params"] - 3000) <= 150 and record["train"]["tbptt"] == 3
    assert record["gate_traces"]["units"] == record["model_params"]["units"]


@pytest.mark.parametrize("argv, words", [
    (["--model", "lstm", "--train", "tbptt=5"], "cannot truncate backpropagation"),
    (["--model", "lstm", "--param-budget", "3000", "--hp", "units=8"], "do not give --hp units"),
    (["--model", "lstm", "--param-budget", "2"], "within 5 %"),
])
def test_zoo_options_reject_bad_input_in_one_line(argv, words, capsys):
    from bench import cli

    assert cli.main(["run", "--task", "adding", "--length", "6", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_a_sweeps_parameter_budget_sizes_each_model_per_task_and_keeps_the_budget_as_identity():
    from bench.sweep import driver, grid, ladder

    sweep = grid.expand({"param_budget": 5000, "tasks": {"adding": {"length": [6, 12]}, "copy": {"length": 4}},
                         "models": {"lstm": {}, "tcn": {}}})
    for spec in sweep.specs:
        r = spec.resolved()
        assert spec.model_params["param_budget"] == 5000 and r.param_budget == 5000
        width = models.entry(spec.model).width
        count = models.registry.count_params(spec.model, tasks.create(spec.task, **spec.task_params).signature,
                                             **r.model_params)
        assert width not in spec.model_params and abs(count - 5000) <= 250, (spec.label(), count)
    adding = [s for s in sweep.specs if s.task == "adding" and s.model == "lstm"]
    assert len({ladder.group_key(s) for s in adding}) == 1  # one ladder across lengths
    with pytest.raises(grid.SpecError, match="param_budget sets units"):
        grid.expand({"param_budget": 3000, "tasks": {"adding": {}}, "models": {"lstm": {"units": 8}}})
    impossible = grid.expand({"param_budget": 3, "tasks": {"adding": {}}, "models": {"lstm": {}}})
    with pytest.raises(ValueError, match="within 5 %"):  # sized before what runs next trains: one line, exit 2
        driver.check_sizes(impossible.specs)
