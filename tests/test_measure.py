"""Per-run measurements: FLOPs formulas, state sizes, memory, cuDNN reasons, gradient norms and flow."""

import keras
import numpy as np
import pytest

import models
import tasks
from bench.runner.optim import NormAdam
from bench.runner import measure
from bench.runner.run import run
from bench.core.spec import RunSpec, TrainConfig
from models.heads import EMBED_DIM

B = 32


def _readout(sig, width):
    return 2 * B * (sig.length if sig.output.__class__.__name__ == "PerStep" else 1) * width * (sig.output.classes or 1)


def test_recurrent_flops_match_the_textbook_formulas():
    sig = tasks.create("adding", length=50).signature  # D = 2 features, one output
    T, D, H = 50, 2, 24
    assert models.forward_flops("lstm", sig, B, units=H) == 2 * B * T * 4 * H * (D + H) + _readout(sig, H)
    assert models.forward_flops("gru", sig, B, units=H) == 2 * B * T * 3 * H * (D + H) + _readout(sig, H)
    assert models.forward_flops("rnn", sig, B, units=H) == 2 * B * T * H * (D + H) + _readout(sig, H)
    stacked = 2 * B * T * 4 * H * (D + H) + 2 * B * T * 4 * H * (H + H) + _readout(sig, H)
    assert models.forward_flops("stacked_lstm", sig, B, units=H, layers=2) == stacked
    assert models.forward_flops("bilstm", sig, B, units=H) == 2 * 2 * B * T * 4 * H * (D + H) + _readout(sig, 2 * H)


def test_transformer_flops_and_kv_cache():
    sig = tasks.create("copy", length=12).signature  # tokens: the mixer reads the embedding
    T, d, L = sig.length, 16, 2
    block = 8 * B * T * d * d + 4 * B * T * T * d + 4 * B * T * d * 4 * d
    expected = 2 * B * T * EMBED_DIM * d + L * block + _readout(sig, d)
    assert models.forward_flops("transformer", sig, B, d_model=d, heads=2, layers=L) == expected
    assert models.state_size("transformer", sig, d_model=d, layers=L) == 2 * L * T * d


def test_state_sizes_of_recurrent_models():
    sig = tasks.create("adding", length=10).signature
    assert models.state_size("lstm", sig, units=8) == 16
    assert models.state_size("stacked_lstm", sig, units=8, layers=3) == 48
    assert models.state_size("gru", sig, units=8) == models.state_size("rnn", sig, units=8) == 8
    assert models.state_size("bilstm", sig, units=8) == 32
    assert all(models.entry(m).flops and models.entry(m).state for m in models.list_models())


def test_memory_probe_sees_an_allocation():
    probe = measure.MemoryProbe().start()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    result = probe.result()
    del block
    assert result["kind"] == "process_rss" and result["peak_bytes"] >= 48 * 2**20


def test_cudnn_eligibility_comes_from_the_registry_and_use_is_observed_not_assumed():
    sig = tasks.create("adding", length=6).signature
    model = models.create("lstm", sig, units=4)
    x, _ = tasks.create("adding", length=6).generate("test", 2, seed=0)
    assert measure.cudnn_status("lstm", {"units": 4}, model, x) == {
        "eligible": True, "why_not": None, "used": False, "observed": "no GPU", "ops": []}  # this CPU has no GPU
    dropped = measure.cudnn_status("lstm", {"recurrent_dropout": 0.1})
    assert not dropped["eligible"] and "recurrent_dropout=0.1" in dropped["why_not"]
    assert not measure.cudnn_status("rnn", {})["eligible"] and not measure.cudnn_status("transformer", {})["eligible"]
    assert measure.cudnn_status("bilstm", {})["eligible"]


def test_the_mixer_input_is_found_from_the_graph_not_from_a_layer_name():
    from models import heads
    tokens = tasks.create("copy", length=4).signature
    model = models.create("gru", tokens, units=4)
    assert heads.mixer_input(model) is next(la for la in model.layers if isinstance(la, keras.layers.Embedding)).output
    assert heads.mixer_input(models.create("gru", tasks.create("adding", length=4).signature, units=4)) is None


def test_clipping_applies_and_the_pre_clip_norm_is_recorded():
    weight = keras.Variable(np.zeros(3, dtype="float32"))
    optimizer = NormAdam(0.1, clipnorm=1.0)
    optimizer.apply([keras.ops.convert_to_tensor([30.0, 40.0, 0.0])], [weight])
    norms = optimizer.read_norms()
    assert norms["grad_norm"] == pytest.approx(50.0) and norms["clipped_steps"] == 1
    momentum = np.asarray(optimizer._momentums[0])  # (1 - beta_1) · clipped gradient
    np.testing.assert_allclose(momentum, 0.1 * np.array([0.6, 0.8, 0.0]), rtol=1e-5)
    optimizer.apply([keras.ops.convert_to_tensor([0.3, 0.4, 0.0])], [weight])  # norm 0.5: not clipped
    assert optimizer.read_norms()["clipped_steps"] == 1


def test_grad_norm_is_logged_under_xla_with_big_gradients():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(NormAdam(1e-3, clipnorm=1.0), "mse", jit_compile=True)
    x = np.ones((64, 4), dtype="float32")
    model.fit(x, np.full((64, 1), 1000.0, dtype="float32"), batch_size=32, epochs=1, verbose=0)
    norms = model.optimizer.read_norms()
    assert norms["grad_norm"] > 1 and norms["grad_norm_max"] >= norms["grad_norm"] and norms["clipped_steps"] == 2


def test_answer_mask_marks_the_positions_that_carry_information():
    _, y = tasks.create("copy", length=20).generate("val", 64)
    np.testing.assert_array_equal(np.flatnonzero(measure.answer_mask(y)[0]), np.arange(30, 40))
    _, y = tasks.create("recall", length=20, pairs=3).generate("val", 64)
    np.testing.assert_array_equal(np.flatnonzero(measure.answer_mask(y)[0]), [26, 27, 28])


@pytest.mark.parametrize("task_name,length,points", [("adding", 100, 64), ("copy", 8, 28)])
def test_gradient_flow_is_binned_and_finite(task_name, length, points):
    task = tasks.create(task_name, length=length)
    model = models.create("lstm", task.signature, units=8)
    x, y = task.generate("val", 16)
    flow = measure.gradient_flow(model, measure.flow_loss(task.signature), x, y)
    assert len(flow["position"]) == len(flow["distance"]) == len(flow["grad_norm"]) == points
    assert np.all(np.isfinite(flow["grad_norm"])) and np.isfinite(flow["first_over_last"])
    assert flow["distance"][-1] == pytest.approx((task.signature.length - 1) - flow["position"][-1])


def test_run_record_carries_every_measurement():
    rec = run(RunSpec("adding", "gru", {"length": 8}, {"units": 8},
                      TrainConfig(steps=30, eval_every=15, val_size=32, test_size=32, gradient_flow=False)))
    assert rec["status"] == "ok" and rec["gradient_flow"] is None
    assert rec["memory"]["peak_bytes"] >= 0 and rec["memory"]["kind"] == "process_rss"  # 0 possible in a reused process
    assert rec["flops_per_step"] == 3 * models.forward_flops("gru", tasks.create("adding", length=8).signature,
                                                             64, units=8)
    assert rec["state_size"] == 8 and rec["cudnn"]["eligible"] and "intra_op" in rec["threads"]
    speed = rec["speed"]
    for key in ("first_step_ms", "step_ms_median", "step_ms_iqr", "tokens_per_s", "achieved_gflops",
                "roofline_gflops", "infer_ms_per_batch", "infer_ms_per_sequence"):
        assert speed[key] > 0, key
    assert speed["timed_steps"] >= 20
    assert {"grad_norm", "grad_norm_max", "clipped_steps"} <= set(rec["history"][-1])


def test_auto_xla_on_the_cpu_only_where_measured_faster(monkeypatch):
    from bench.runner.train import resolve_jit
    final = tasks.create("adding", length=6).signature
    per_step = tasks.create("copy", length=6).signature
    assert resolve_jit("auto", "lstm", {"units": 256}, final) is True
    assert resolve_jit("auto", "gru", {"units": 256}, final) is True
    assert resolve_jit("auto", "lstm", {"units": 128}, final) is False
    assert resolve_jit("auto", "lstm", {"units": 256}, per_step) is False  # returns every state
    assert resolve_jit("auto", "stacked_lstm", {"units": 256}, final) is False
    assert resolve_jit("auto", "rnn", {"units": 256}, final) is False
    assert resolve_jit("auto", "transformer", {"d_model": 256, "heads": 4}, final) is False
    assert resolve_jit(True) is True and resolve_jit(False, "lstm", {"units": 256}, final) is False
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")  # the rule was measured on TensorFlow only
    assert resolve_jit("auto", "lstm", {"units": 64}, final) == "auto"


def test_final_output_recurrent_models_return_only_the_last_state():
    final = tasks.create("adding", length=6).signature
    for name in ("rnn", "lstm", "gru", "bilstm", "stacked_lstm"):
        recurrent = [layer for layer in measure.all_layers(models.create(name, final, units=4))
                     if isinstance(layer, keras.layers.RNN)]
        assert not recurrent[-1].return_sequences, name
    stacked = models.create("stacked_lstm", final, units=4)
    assert [layer.return_sequences for layer in stacked.layers if isinstance(layer, keras.layers.LSTM)] == [True, False]


def test_speed_benchmark_records_one_tiny_configuration(tmp_path, capsys):
    from bench import cli
    from bench.runner import record
    argv = ["speed", "--models", "lstm", "--units", "8", "--batch", "4", "--lengths", "16", "--min-steps", "3",
            "--min-seconds", "0", "--warmup", "0", "--results", str(tmp_path), "--sweep", "tiny"]
    assert cli.main(argv) == 0
    (rec,), skipped = record.load(tmp_path, "tiny")
    assert rec["status"] == "ok" and rec["speed"]["forward"]["steps"] == rec["speed"]["train"]["steps"] == 3
    timed = rec["speed"]["train"]
    assert timed["p10_ms"] <= timed["median_ms"] <= timed["p90_ms"]
    assert rec["flops"]["deepbench_forward"] == 2 * 4 * 16 * 4 * 8**2 and rec["gflops"]["train"] > 0
    assert rec["kind"] == "speed" and rec["schema"] == record.SCHEMA and rec["model_info"]["family"] == "recurrent"
    assert cli.main(argv) == 0  # resumes: the stored configuration is not measured again
    assert "1 runs, 1 stored, 0 to run" in capsys.readouterr().out and len(record.load(tmp_path, "tiny")[0]) == 1
    assert cli.main(["speed", "--models", "lstmm"]) == 2


def test_speed_breakdown_splits_a_recurrent_step_into_its_matmuls_and_the_rest(tmp_path, capsys):
    from bench import cli
    from bench.runner import record
    argv = ["speed", "--models", "gru,transformer", "--units", "8", "--batch", "4", "--lengths", "16", "--min-steps",
            "3", "--min-seconds", "0", "--warmup", "0", "--breakdown", "--results", str(tmp_path), "--sweep", "bd"]
    assert cli.main(argv) == 0
    records, _ = record.load(tmp_path, "bd")
    by_model = {r["model"]: r for r in records}
    assert "matmul_floor" not in by_model["transformer"]  # only for one-layer recurrent models
    b = by_model["gru"]["matmul_floor"]
    groups = [k for k in b if k.startswith(("recurrent_", "input_"))]
    assert len(groups) == 3 and all(b[k] > 0 for k in groups)
    assert b["floor_ms"] == pytest.approx(sum(b[k] for k in groups), abs=1e-2)
    assert b["train_ms"] == by_model["gru"]["speed"]["train"]["median_ms"]
    assert b["rest_ms"] == pytest.approx(b["train_ms"] - b["floor_ms"], abs=1e-2)
    assert "matmul floor" in capsys.readouterr().out
    assert cli.main(["report", "bd", "--results", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0
    assert "## Matmul floor" in (tmp_path / "reports" / "bd" / "index.md").read_text()
