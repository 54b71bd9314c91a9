import json
import os

import pytest

from bench import cli


@pytest.mark.parametrize("argv, words", [
    (["run", "--task", "addin", "--model", "lstm"], "unknown task 'addin'; valid: acsf1, adding, basic_motions"),
    (["run", "--task", "smnist", "--model", "lstm", "--length", "100"], "--length: smnist: length must divide 784"),
    (["run", "--task", "japanese_vowels", "--model", "gru", "--length", "1000"], "--length: japanese_vowels: length"),
    (["run", "--task", "copy", "--model", "lstm", "--train", "test_lengths=[0]"], "train.test_lengths must be integers"),
    (["run", "--task", "adding", "--model", "lsm"], "unknown model 'lsm'; valid:"),
    (["run", "--task", "adding", "--model", "lstm", "--length", "0"], "length must be an integer >= 2"),
    (["run", "--task", "copy", "--model", "lstm", "--steps", "0"], "train.steps must be an integer >= 1"),
    (["run", "--task", "copy", "--model", "lstm", "--hp", "width=3"], "no hyperparameter 'width'"),
    (["run", "--task", "copy", "--model", "lstm", "--param", "pairs"], "expects KEY=VALUE"),
    (["run", "--task", "copy", "--model", "lstm", "--train", "optimizer=sgd"], "unknown training option"),
    (["sweep", "no-such-sweep"], "no sweep file or preset 'no-such-sweep'; presets:"),
    (["report", "no-such-sweep", "--results", "/nonexistent"], "no run records"),
    (["results", "no-such", "--results", "/none"], "no run records in /none/no-such; make them with: bench sweep no-such --results /none"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_list_shows_tasks_models_and_defaults(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("copy", "adding", "recall", "rnn", "lstm", "gru", "bilstm", "stacked_lstm", "transformer"):
        assert f"  {name} " in out
    assert "units=64" in out and "smoke" in out


def test_run_writes_a_complete_record(tmp_path, capsys):
    argv = ["run", "--task", "adding", "--model", "gru", "--length", "8", "--steps", "40", "--eval-every", "20",
            "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads(open(summary["record"]).read())
    for key in ("schema", "run_id", "sweep", "task", "task_params", "dependency", "model", "model_params", "train",
                "seed", "status", "metrics", "speed", "params", "history", "env", "started_at", "finished_at"):
        assert key in record, key
    assert record["sweep"] == "adhoc" and record["status"] == "ok" and record["dependency"] == 8
    assert record["metrics"]["baseline"] == pytest.approx(1 / 6)
    assert record["speed"]["step_ms_median"] > 0 and record["params"] > 0
    assert len(record["history"]) == 2 and record["env"]["backend"] == os.environ["KERAS_BACKEND"]
    assert summary["record"].endswith(f"adhoc/{record['run_id']}.json")


def test_run_without_length_trains_a_real_dataset_at_its_own_length(tmp_path, capsys):
    argv = ["run", "--task", "japanese_vowels", "--model", "gru", "--hp", "units=8", "--steps", "4",
            "--eval-every", "2", "--train", "gradient_flow=false", "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads(open(summary["record"]).read())
    assert record["status"] == "ok" and record["task_params"]["length"] == 29 and "length" not in record["request"]["task_params"]


def test_example_plugin_adds_a_model_without_touching_our_code(tmp_path, capsys):
    argv = ["run", "--plugin", "examples/lstm_no_forget_bias.py", "--task", "adding", "--model",
            "lstm_no_forget_bias", "--length", "6", "--steps", "20", "--eval-every", "10", "--hp", "units=8",
            "--results", str(tmp_path)]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = json.loads(open(summary["record"]).read())
    assert record["status"] == "ok" and record["model"] == "lstm_no_forget_bias"
    assert record["state_size"] == 16 and record["flops_per_step"] > 0


def test_save_model_writes_a_keras_file_that_reloads_to_the_same_predictions(tmp_path, capsys):
    import keras
    import numpy as np

    import tasks
    from bench.runner import optim  # noqa: F401  (registers NormAdam, the saved optimizer)

    argv = ["run", "--task", "adding", "--model", "lstm", "--length", "6", "--steps", "4", "--eval-every", "2",
            "--hp", "units=4", "--train", "gradient_flow=false", "--results", str(tmp_path), "--save-model"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rec = json.loads(open(summary["record"]).read())
    assert rec["status"] == "ok" and rec["model_file"] == f"{rec['run_id']}.keras"
    model = keras.saving.load_model(tmp_path / "adhoc" / rec["model_file"])
    task = tasks.create("adding", length=6)
    x, y = task.generate("test", rec["train"]["test_size"], seed=0)  # the test set the record was scored on
    value = task.evaluate(y, keras.ops.convert_to_numpy(model.predict_on_batch(x)))
    np.testing.assert_allclose(value, rec["metrics"]["value"], rtol=1e-4)


def test_the_model_catalogue_that_bench_list_reads_is_current():
    from bench import listing

    assert listing.read_catalogue() == listing.registry_lines(with_plugins=False), \
        "models/catalog.json does not describe today's model files: run python -m bench.listing"
