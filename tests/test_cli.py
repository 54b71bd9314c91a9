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


PLUGIN_WITH_A_LAYER = '''
import keras
from models import register


@keras.saving.register_keras_serializable(package="test_plugin")
class Scale(keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


@register("scaled_gru", family="recurrent", width="units")
def scaled_gru(x, *, units: int = 4):
    """A GRU whose outputs pass through a custom layer of the plugin's."""
    return Scale()(keras.layers.GRU(units, return_sequences=True)(x))
'''

LOAD = """
import json, sys
import keras, tasks
import bench
model = bench.load_model(sys.argv[1], plugins=[sys.argv[2]])
task = tasks.create("adding", length=6)
x, y = task.generate("test", int(sys.argv[3]), seed=0)
print(json.dumps(task.evaluate(y, keras.ops.convert_to_numpy(model.predict_on_batch(x)))))
"""


def test_a_saved_plugin_model_reloads_with_one_call_in_a_fresh_process(tmp_path, capsys):
    import subprocess
    import sys

    plugin = tmp_path / "scaled.py"
    plugin.write_text(PLUGIN_WITH_A_LAYER)
    argv = ["run", "--plugin", str(plugin), "--task", "adding", "--model", "scaled_gru", "--length", "6", "--steps",
            "4", "--eval-every", "2", "--train", "gradient_flow=false", "--results", str(tmp_path), "--save-model"]
    try:
        assert cli.main(argv) == 0
    finally:
        import models
        models.registry._MODELS.pop("scaled_gru", None)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rec = json.loads(open(summary["record"]).read())
    assert rec["status"] == "ok" and summary["model_file"].endswith(".keras")
    done = subprocess.run([sys.executable, "-c", LOAD, summary["model_file"], str(plugin), str(rec["train"]["test_size"])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == pytest.approx(rec["metrics"]["value"], rel=1e-4)


def test_the_model_catalogue_that_bench_list_reads_is_current():
    from bench import listing

    assert listing.read_catalogue() == listing.registry_lines(with_plugins=False), \
        "models/catalog.json does not describe today's model files: run python -m bench.listing"


WRONG_WIDTH = '''
import keras
from models import register


@register("wrong_width", family="recurrent", width="units", flops=lambda batch, length, width, *, units, **_: (
    2.0 * batch * length * 3 * units * (width + units), 2 * units))
def wrong_width(x, *, units: int = 8):
    """Declares an output width of 2·units, returns units."""
    return keras.layers.GRU(units, return_sequences=True)(x)
'''


def test_bench_check_stops_at_a_plugins_first_failing_check_with_its_cause(tmp_path, capsys):
    plugin = tmp_path / "wrong.py"
    plugin.write_text(WRONG_WIDTH)
    try:
        assert cli.main(["check", "--plugin", str(plugin)]) == 2
    finally:
        import models
        models.registry._MODELS.pop("wrong_width", None)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("ok   tensorflow wrong_width: build for copy: output (8, 26, 9)")
    assert out[-1] == "FAIL tensorflow wrong_width: flops: declares output width 16; the mixer returns 8"
