"""The registry of run kinds and the one validation pass: every kind reads back from its record, keeps the identity
of its committed records, and bad input of any entry point is refused before anything runs."""

import json
from pathlib import Path

import pytest

from bench import cli
from bench.core import kinds
from bench.speed.overhead import OverheadSpec
from bench.speed.plain import PlainSpec
from bench.speed.timing import SpeedSpec
from bench.sweep import grid

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_a_committed_plain_loop_record_keeps_its_identity_as_a_kind():
    path = next((RESULTS / "gpu-h100" / "gpu-check-plain-jax").glob("*.json"))
    rec = json.loads(path.read_text())
    spec = kinds.from_dict(rec)
    assert isinstance(spec, PlainSpec) and spec.run_id == rec["run_id"] == path.stem
    assert spec.fields() == {k: rec[k] for k in spec.fields()}


@pytest.mark.parametrize("spec", [SpeedSpec("lstm", 8, 2, 4, warmup=0), PlainSpec(units=8, length=6, sweep="p"),
                                  OverheadSpec(units=8, rounds=2, sweep="o")])
def test_every_kind_reads_back_from_its_dict_and_its_record_with_the_same_identity(spec):
    assert kinds.from_dict(spec.to_dict()) == spec
    assert kinds.from_dict(json.loads(json.dumps(spec.fields()))).run_id == spec.run_id
    assert kinds.entry(spec.kind).module == type(spec).__module__  # the worker imports it to run the spec


def test_a_sweep_file_asking_truncated_bptt_of_a_model_that_cannot_is_refused_at_load():
    with pytest.raises(ValueError, match="cannot truncate backpropagation"):
        grid.expand({"tasks": {"adding": {"length": 6}}, "models": {"lstm": {}}, "train": {"tbptt": 3}})


def test_speed_plain_and_overhead_refuse_an_unknown_model_before_anything_runs(tmp_path, capsys):
    for mode in ("--plain", "--overhead"):
        assert cli.main(["speed", mode, "--models", "nosuch", "--results", str(tmp_path)]) == 2
        assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert not list(tmp_path.glob("**/*.json"))
