"""Sweep files, dry-run plans and the results table: no training, so these run in seconds."""

import json

import pandas as pd
import pytest

from bench import cli
from bench.runner import record
from bench.sweep import store
from bench.sweep import driver
from bench.sweep import grid as sweep

VALID = """
name: files
seeds: [0, 1]
train: {steps: 10}
tasks:
  copy: {length: [5, 10]}
models:
  lstm: {units: 8}
"""


@pytest.mark.parametrize("text, words", [
    ("sedes: [0]\ntasks: {copy: {}}\nmodels: {lstm: {}}", "unknown key 'sedes'; valid: name, description, seeds"),
    ("train: {stpes: 10}\ntasks: {copy: {}}\nmodels: {lstm: {}}", "train.stpes: unknown training option; valid: steps"),
    ("train: {lr: -1}\ntasks: {copy: {}}\nmodels: {lstm: {}}", "train.lr must be a number > 0, got -1"),
    ("tasks: {cpy: {length: 5}}\nmodels: {lstm: {}}", "tasks.cpy: unknown task 'cpy'; valid: acsf1, adding, basic_motions"),
    ("tasks: {copy: {}}\nmodels: {lsm: {}}", "models.lsm: unknown model 'lsm'; valid: "),
    ("tasks: {copy: {lenght: 5}}\nmodels: {lstm: {}}", "tasks.copy.lenght: no parameter 'lenght'; valid: length, fill"),
    ("tasks: {copy: {}}\nmodels: {lstm: {unit: 8}}", "models.lstm.unit: no hyperparameter 'unit'; valid: units,"),
    ("tasks: {copy: {}}\nmodels: {lstm: {units: eight}}", "models.lstm.units: expected an integer (default 64), got 'eight'"),
    ("tasks: {copy: {}}\nmodels: {lstm: {units: [8, true]}}", "models.lstm.units: expected an integer (default 64), got True"),
    ("tasks: {copy: {length: 0}}\nmodels: {lstm: {}}", "tasks.copy.length: copy: length must be an integer >= 1, got 0"),
    ("tasks: {copy: {fill: zeros}}\nmodels: {lstm: {}}", "tasks.copy.fill: copy: unknown fill 'zeros'; valid: "),
    ("tasks: {copy: {}}\nmodels: {transformer: {d_model: 10, heads: 3}}", "models.transformer.d_model: d_model (10) must be divisible by heads (3)"),
    ("tasks: {copy: {length: []}}\nmodels: {lstm: {}}", "tasks.copy.length: empty list"),
    ("seeds: []\ntasks: {copy: {}}\nmodels: {lstm: {}}", "seeds: empty list"),
    ("seeds: [0, -1]\ntasks: {copy: {}}\nmodels: {lstm: {}}", "seeds: each seed must be an integer >= 0, got -1"),
    ("tasks: {copy: {}}\nmodels: [lstm, gru]", "models: expected a non-empty mapping of "),
    ("tasks: {}\nmodels: {lstm: {}}", "tasks: expected a non-empty mapping of acsf1, adding, basic_motions"),
    ("tasks: copy\nmodels: {lstm: {}}", "tasks: expected a non-empty mapping"),
    ("tasks: {copy: {}}\nmodels: {lstm: {}}\noverrides: {gru: {lr: 0.1}}", "overrides.gru: not a model of this sweep; models: lstm"),
    ("tasks: {copy: {}}\nmodels: {lstm: {}}\noverrides: {lstm: {steps: 0}}", "overrides.lstm.steps must be an integer >= 1"),
    ("name: a/b\ntasks: {copy: {}}\nmodels: {lstm: {}}", "name: must be letters, digits"),
    ("tasks: {copy: [\nmodels: {lstm: {}}", "not valid YAML (line "),
    ("models: {lstm: {}}\ntasks: {copy: {}}\nmodels: {gru: {}}", "line 3, column 1: duplicate key 'models'"),
    ("tasks: {copy: {length: 5, length: 6}}\nmodels: {lstm: {}}", "duplicate key 'length'"),
    ("- copy\n- lstm", "a sweep must be a mapping with keys name, description"),
    ("", "a sweep must be a mapping with keys"),
])
def test_each_invalid_sweep_file_gives_one_line_naming_file_and_key(tmp_path, capsys, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli.main(["sweep", str(path), "--dry-run", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{path}: " in err and words in err, err


def test_a_missing_preset_names_the_presets(capsys):
    assert cli.main(["sweep", "no-such-preset", "--dry-run"]) == 2
    assert "no sweep file or preset 'no-such-preset'; presets: " in capsys.readouterr().err


def test_a_python_object_tag_is_refused_not_run(tmp_path, capsys):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo owned']\ntasks: {copy: {}}\nmodels: {lstm: {}}")
    assert cli.main(["sweep", str(path), "--dry-run"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def _fake(spec, status):
    return record.new(spec.resolved().fields(), status)


def test_dry_run_plan_shows_stored_and_retried_runs(tmp_path, capsys):
    path = tmp_path / "files.yaml"
    path.write_text(VALID)
    plan = sweep.load(str(path))
    assert len(plan.specs) == 4 and len({s.run_id for s in plan.specs}) == 4
    record.write(_fake(plan.specs[0], "ok"), tmp_path)
    record.write(_fake(plan.specs[1], "failed"), tmp_path)
    record.write(_fake(plan.specs[2], "timeout"), tmp_path)
    assert cli.main(["sweep", str(path), "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sweep files: 4 runs, 3 stored, 1 to run (dry run")
    assert [line.split()[0] for line in out[1:5]] == ["stored", "stored", "stored", "to"]
    assert out[5].startswith("estimate (worker-hours") and out[-1].startswith("  total ")  # the cost, last
    assert cli.main(["sweep", str(path), "--dry-run", "--retry-failed", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sweep files: 4 runs, 1 stored, 3 to run")
    assert "rerun (failed)" in out[2] and "rerun (timeout)" in out[3] and plan.specs[1].run_id in out[2]
    assert driver.pending(driver.plan(plan, tmp_path), retry_failed=True) == sorted(plan.specs[1:], key=lambda s: s.seed)


def test_results_table_flattens_old_new_and_skips_foreign_files(tmp_path, capsys):
    folder = tmp_path / "mix"
    folder.mkdir()
    new = {"schema": 1, "run_id": "a1", "sweep": "mix", "task": "copy", "task_params": {"length": 5},
           "model": "lstm", "seed": 0, "status": "ok", "metrics": {"score": 0.5, "extra": {"x": 1}},
           "history": [{"step": 1}], "speed": {"step_ms_median": 2.0}}
    old = {"schema": 0, "run_id": "b2", "task": "adding", "model": "gru", "status": "diverged"}
    (folder / "a1.json").write_text(json.dumps(new))
    (folder / "b2.json").write_text(json.dumps(old))
    (folder / "junk.json").write_text("{half")
    (folder / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (folder / ".a1.123.x.tmp").write_text("{half")
    out = tmp_path / "mix.csv"
    assert cli.main(["results", "mix", "--results", str(tmp_path), "--format", "csv", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "junk.json" in err and "foreign.json" in err and ".tmp" not in err
    table = pd.read_csv(out)
    assert list(table.run_id) == ["b2", "a1"] and "history" not in table.columns  # ordered by task: adding, copy
    assert table["metrics.extra.x"].tolist()[1] == 1 and pd.isna(table["metrics.score"][0])
    assert table["task_params.length"].tolist()[1] == 5 and pd.isna(table["task_params.length"][0])
    frame, skipped = store.table(tmp_path, "mix")
    assert len(frame) == len(table) and set(table.columns) <= set(frame.columns) | {"variant"} and len(skipped) == 2
    parquet = tmp_path / "mix.parquet"
    assert cli.main(["results", "mix", "--results", str(tmp_path), "--format", "parquet", "--out", str(parquet)]) == 0
    assert pd.read_parquet(parquet).shape == table.shape
    assert cli.main(["results", "mix", "--results", str(tmp_path)]) == 0
    assert "metrics.score" in capsys.readouterr().out
    assert cli.main(["results", "none", "--results", str(tmp_path)]) == 2
    assert "no run records in" in capsys.readouterr().err


def test_stale_temp_files_are_cleaned_and_live_ones_kept(tmp_path):
    import os

    folder = tmp_path / "s"
    folder.mkdir()
    dead = folder / ".abc.999999999.x1.tmp"
    live = folder / f".abc.{os.getpid()}.x2.tmp"
    dead.write_text("{")
    live.write_text("{")
    assert record.clean_stale(tmp_path, "s") == [dead]
    assert live.exists() and not dead.exists()


def test_progress_is_plain_lines_off_a_terminal_and_a_live_line_on_one():
    import io

    from bench.sweep.progress import Progress

    for live in (False, True):
        out = io.StringIO()
        progress = Progress(2, out, live=live)
        progress.started("a", "copy(length=5) lstm seed 0")
        progress.finished("a", "ok copy lstm")
        progress.close()
        text = out.getvalue()
        assert "[1/2 done, 0:00 elapsed, eta 0:00] ok copy lstm\n" in text
        assert ("running: copy(length=5) lstm seed 0" in text and "\r" in text) == live


def test_listed_training_options_are_a_grid_and_name_the_report_variants():
    from bench.report.dataframe import frame

    plan = sweep.expand({"train": {"clipnorm": [1.0, None], "steps": 5, "test_lengths": [8, 12]},
                         "tasks": {"adding": {"length": 6}}, "models": {"lstm": {"units": 8}}})
    assert sorted(str(s.train.get("clipnorm")) for s in plan.specs) == ["1.0", "None"]
    assert all(s.train["test_lengths"] == [8, 12] for s in plan.specs)  # a list-valued option is one value
    lengths = sweep.expand({"train": {"test_lengths": [[8], [12]]}, "tasks": {"adding": {"length": 6}},
                            "models": {"lstm": {}}})
    assert sorted(s.train["test_lengths"][0] for s in lengths.specs) == [8, 12]
    with pytest.raises(sweep.SpecError, match="train.clipnorm must be a number > 0"):
        sweep.expand({"train": {"clipnorm": [1.0, -1]}, "tasks": {"adding": {}}, "models": {"lstm": {}}})
    records = [{"run_id": s.run_id, "model": s.model, "task": s.task, "status": "ok", "request": s.request()}
               for s in plan.specs]
    records.append({"run_id": "tuned", "model": "gru", "task": "adding", "status": "ok",
                    "request": {"model_params": {}, "train": {"lr": 0.01}}})
    records.append({"run_id": "other", "model": "gru", "task": "adding", "status": "ok",
                    "request": {"model_params": {}, "train": {"lr": 0.001}}})
    variants = set(frame(records).variant)
    assert variants == {"lstm(clipnorm=1.0)", "lstm(clipnorm=None)", "gru"}  # a learning rate is tuned, not a variant
