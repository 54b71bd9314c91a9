import dataclasses
import inspect
import shutil
from pathlib import Path

import pytest

import models
from bench import cli
from bench.core import spec as spec_module
from bench.core.errors import SpecError
from bench.core import identity
from bench.core.identity import stale
from bench.core.spec import RunSpec, TrainConfig
from bench.sweep import driver, grid

PAPER = Path(__file__).resolve().parents[1] / "results" / "paper"


def test_run_id_hashes_what_was_asked():
    a = RunSpec("adding", "lstm", {"length": 50})
    assert a.run_id == RunSpec("adding", "lstm", {"length": 50}, train=TrainConfig(), sweep="other").run_id
    assert len(a.run_id) == 16
    assert a.run_id != RunSpec("adding", "lstm", {"length": 51}).run_id
    assert a.run_id != RunSpec("adding", "lstm", {"length": 50}, seed=1).run_id
    assert a.run_id != RunSpec("adding", "gru", {"length": 50}).run_id
    assert RunSpec("adding", "lstm", {"length": 50}, train=TrainConfig(steps=7)).train == {"steps": 7}


def test_round_trip_through_dict_and_record():
    spec = RunSpec("recall", "transformer", {"length": 9, "pairs": 2}, {"layers": 1}, {"steps": 7, "lr": 0.01}, 2, "s")
    assert RunSpec.from_dict(spec.to_dict()) == spec
    fields = spec.resolved().fields()
    assert RunSpec.from_dict(fields) == spec and fields["model_params"]["d_model"] == 64
    assert fields["source"] == {"models/transformer.py": fields["source"]["models/transformer.py"],
                                "tasks/recall.py": fields["source"]["tasks/recall.py"]}


@pytest.mark.parametrize("bad, words", [
    ({"steps": 0}, "train.steps"), ({"batch_size": 1.5}, "train.batch_size"), ({"lr": -1}, "train.lr"),
    ({"clipnorm": 0}, "train.clipnorm"), ({"jit_compile": "yes"}, "jit_compile"),
])
def test_train_config_rejects_impossible_values(bad, words):
    with pytest.raises(SpecError, match=words):
        TrainConfig(**bad)


def test_negative_seed_is_rejected():
    with pytest.raises(SpecError, match="seed"):
        RunSpec("copy", "lstm", {"length": 5}, seed=-1).resolved()


def _paper_plan(tmp_path):
    """The committed paper records (copied) planned against the paper preset as the code stands now."""
    shutil.copytree(PAPER, tmp_path / "paper")
    return driver.plan(grid.load("paper"), tmp_path)


def _lstm_with(monkeypatch, **defaults):
    """Re-register ``lstm`` as the same mixer with ``defaults`` added or changed (as an edit of models/lstm.py)."""
    entry = models.entry("lstm")
    params = [p.replace(default=defaults.pop(p.name)) if p.name in defaults else p
              for p in inspect.signature(entry.mixer).parameters.values()]
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in defaults.items()]

    def mixer(x, **hp):
        return entry.mixer(x, **{k: v for k, v in hp.items() if k not in extra_names})

    extra_names = {p.name for p in extra}
    mixer.__signature__ = inspect.Signature(params[:-1] + extra + params[-1:])
    monkeypatch.setitem(models.registry._MODELS, "lstm", dataclasses.replace(entry, mixer=mixer))


def test_paper_records_still_match_after_a_defaulted_hyperparameter_and_training_option(tmp_path, monkeypatch):
    _lstm_with(monkeypatch, layer_norm=False)

    @dataclasses.dataclass(frozen=True)
    class Grown(TrainConfig):
        warmup_steps: int = 0

    monkeypatch.setattr(spec_module, "TrainConfig", Grown)
    rows = _paper_plan(tmp_path)
    assert len(rows) == 270 and driver.pending(rows) == []
    assert not any(row.stale for row in rows)
    assert "warmup_steps" in rows[0].spec.resolved().fields()["train"]


def test_a_changed_default_makes_records_stale_not_new(tmp_path, monkeypatch):
    _lstm_with(monkeypatch, dropout=0.1)
    rows = _paper_plan(tmp_path)
    stale_rows = [row for row in rows if row.stale]
    assert len(stale_rows) == 45 and {row.spec.model for row in stale_rows} == {"lstm"}
    assert stale_rows[0].stale == ("lstm: default dropout 0.0 → 0.1",)
    assert driver.pending(rows) == [] and len(driver.pending(rows, rerun_stale=True)) == 45


PLUGIN = '''
import keras
from models import register

@register("{name}", family="recurrent", width="units", cudnn=True)
def {name}(x, *, units: int = 4):
    """A plugin GRU."""
    return keras.layers.GRU(units, return_sequences=True)(x)
'''


def test_a_changed_plugin_makes_its_records_stale(tmp_path, capsys):
    plugin = tmp_path / "my_gru.py"
    plugin.write_text(PLUGIN.format(name="edited_gru"))
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\ntrain: {steps: 2, eval_every: 2, val_size: 8, test_size: 8, gradient_flow: false}\n"
                     "tasks: {adding: {length: 4}}\nmodels: {edited_gru: {}}\n")
    argv = ["sweep", str(sweep), "--results", str(tmp_path), "--plugin", str(plugin), "--workers", "1"]
    assert cli.main(argv) == 0
    assert cli.main(argv + ["--dry-run"]) == 0
    assert "stale" not in capsys.readouterr().out
    plugin.write_text(plugin.read_text().replace("A plugin GRU.", "A plugin GRU, edited."))
    identity.fingerprint.cache_clear()
    assert cli.main(argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0 to run, 1 stale" in out and "stale: plugin my_gru.py changed" in out
    assert cli.main(argv) == 0 and "1 stale (kept;" in capsys.readouterr().out
    assert cli.main(argv + ["--rerun-stale"]) == 0
    assert cli.main(argv + ["--dry-run"]) == 0 and "stale" not in capsys.readouterr().out.split("\n", 1)[1]
