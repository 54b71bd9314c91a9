import pytest

from bench.runner.spec import RunSpec, SpecError, TrainConfig


def test_run_id_is_stable_and_ignores_how_defaults_were_written():
    a = RunSpec("adding", "lstm", {"length": 50})
    b = RunSpec("adding", "lstm", {"length": 50, "markers": "halves"}, {"units": 64}, TrainConfig(), 0, "other")
    assert a.run_id == b.run_id and len(a.run_id) == 16
    assert a.run_id != RunSpec("adding", "lstm", {"length": 51}).run_id
    assert a.run_id != RunSpec("adding", "lstm", {"length": 50}, seed=1).run_id
    assert a.run_id != RunSpec("adding", "gru", {"length": 50}).run_id


def test_round_trip_through_dict():
    spec = RunSpec("recall", "transformer", {"length": 9, "pairs": 2}, {"layers": 1},
                   TrainConfig(steps=7, lr=0.01), 2, "s").resolved()
    assert RunSpec.from_dict(spec.to_dict()) == spec


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
