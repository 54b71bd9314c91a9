import numpy as np
import pytest

import tasks
from tasks import IGNORE, Features, Final, PerStep, TaskError, Tokens
from tasks.base import Dataset, split_of
from tasks.registry import task_class

SYNTHETIC = [n for n in tasks.list_tasks() if not issubclass(task_class(n), Dataset)]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_shapes_match_signature_and_are_deterministic(name):
    task = tasks.create(name, length=30)
    sig = task.signature
    x, y = task.generate("val", 64, seed=3)
    assert x.shape[:2] == (64, sig.length)
    if isinstance(sig.input, Tokens):
        assert x.dtype == np.int32 and 0 <= x.min() and x.max() < sig.input.vocab
    else:
        assert x.shape[2] == sig.input.channels
    if isinstance(sig.output, PerStep):
        assert y.shape == (64, sig.length) and y.max() < sig.output.classes
    again = task.generate("val", 64, seed=3)
    np.testing.assert_array_equal(x, again[0])
    assert not np.array_equal(x, task.generate("val", 64, seed=4)[0])


@pytest.mark.parametrize("name", SYNTHETIC)
def test_splits_are_disjoint_by_construction(name):
    task = tasks.create(name, length=10)
    for split in ("train", "val", "test"):
        x, _ = task.generate(split, 200, seed=0)
        assert (split_of(x) == split).all()
    batch, _ = next(task.batches(128, seed=0))
    assert (split_of(batch) == "train").all()


def test_copy_layout_and_memoryless_baseline():
    task = tasks.create("copy", length=15)
    x, y = task.generate("test", 4000, seed=0)
    assert x.shape == (4000, 35)
    assert (x[:, 24] == 9).all() and (x[:, 10:24] == 0).all() and (x[:, 25:] == 0).all()
    np.testing.assert_array_equal(y[:, -10:], x[:, :10])
    assert (y[:, :-10] == 0).all()
    # a model with no memory can only guess a symbol: accuracy 1/8 on the recall positions
    guess = np.zeros(y.shape + (9,))
    guess[..., 1] = 1.0
    assert task.evaluate(y, guess) == pytest.approx(task.baseline, abs=0.01)
    # ... and its best cross-entropy over all positions is 10 ln 8 / (length + 20)
    logits = np.where(np.arange(9) == 0, 50.0, 0.0) * np.ones(y.shape + (9,))
    logits[:, -10:, 0], logits[:, -10:, 1:] = -50.0, 0.0
    ce = task.extra_metrics(y, logits)
    assert ce["cross_entropy"] == pytest.approx(ce["cross_entropy_baseline"], rel=1e-3)
    assert task.signature.dependency == 25


def test_copy_bai_fill_uses_delimiters_in_recall_phase():
    x, _ = tasks.create("copy", length=15, fill="delimiter").generate("val", 10)
    assert (x[:, 24:] == 9).all()


def test_adding_targets_and_baseline():
    task = tasks.create("adding", length=40)
    x, y = task.generate("test", 20000, seed=0)
    marks = x[..., 1]
    assert (marks.sum(axis=1) == 2).all()
    assert (marks[:, :20].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * marks).sum(axis=1), rtol=1e-6)
    assert isinstance(task.signature.output, Final) and isinstance(task.signature.input, Features)
    assert task.evaluate(y, np.ones_like(y)) == pytest.approx(task.baseline, rel=0.03)
    assert task.score(task.baseline) == 0.0 and task.score(0.0) == 1.0
    anywhere = tasks.create("adding", length=40, markers="anywhere").generate("val", 2000)[0][..., 1]
    assert (anywhere.sum(axis=1) == 2).all() and (anywhere[:, :20].sum(axis=1) != 1).any()


def test_recall_queries_are_answered_by_their_pairs():
    task = tasks.create("recall", length=12, pairs=3, queries=2)
    x, y = task.generate("train", 500, seed=1)
    assert x.shape == (500, 3 * 2 + 12 + 2)
    asked = y != IGNORE
    assert (asked.sum(axis=1) == 2).all() and asked[:, -2:].all()
    for row_x, row_y in zip(x, y):
        lookup = dict(zip(row_x[0:6:2], row_x[1:6:2]))
        for key, value in zip(row_x[-2:], row_y[-2:]):
            assert lookup[key] - 1 - task.keys == value
    chance = np.random.default_rng(0).random(y.shape + (task.values,))
    assert task.evaluate(y, chance) == pytest.approx(task.baseline, abs=0.02)


@pytest.mark.parametrize("name, params, words", [
    ("copy", {"length": 0}, "length"),
    ("adding", {"length": 1}, "length"),
    ("adding", {"markers": "middle"}, "halves"),
    ("recall", {"pairs": 40}, "pairs"),
    ("recall", {"queries": 9}, "queries"),
    ("copy", {"lenght": 10}, "valid: length, fill"),
    ("nope", {}, "valid: .*adding, .*copy, .*recall"),
    ("selective_copy", {"length": 4, "tokens": 8}, "tokens"),
    ("temporal_order", {"length": 5}, "length"),
    ("powerlaw_recall", {"alpha": 2.0}, "alpha"),
])
def test_bad_parameters_name_the_valid_values(name, params, words):
    with pytest.raises(TaskError, match=words):
        tasks.create(name, **params)


def test_bad_split():
    with pytest.raises(TaskError, match="train, val, test"):
        tasks.create("copy").generate("dev", 10)


def test_selective_copy_outputs_the_scattered_symbols_in_order():
    task = tasks.create("selective_copy", length=40, tokens=6, symbols=5)
    x, y = task.generate("train", 500, seed=0)
    body, asked = x[:, :40], y[:, 40:]
    assert (x[:, 40:] == 6).all() and (y[:, :40] == IGNORE).all()
    assert ((body > 0).sum(1) == 6).all()  # exactly `tokens` symbols among the blanks
    np.testing.assert_array_equal(body[body > 0].reshape(500, 6), asked)  # in order of appearance
    first = (body > 0).argmax(1)
    assert first.min() == 0 and len(np.unique(first)) > 10  # positions vary: no fixed delay solves it
    assert task.signature.dependency == 46
    chance = np.random.default_rng(0).random((500, 46, 6))
    chance[..., 0] = -1  # a memoryless model that knows a symbol is due guesses among the 5
    assert task.evaluate(y, chance) == pytest.approx(task.baseline, abs=0.03)


def test_temporal_order_labels_follow_the_two_relevant_symbols():
    task = tasks.create("temporal_order", length=100)
    x, y = task.generate("train", 2000, seed=0)
    (a0, a1), (b0, b1) = task.windows()
    assert (x[:, 0] == task.B).all() and (x[:, -1] == task.E).all()
    relevant = (x == task.X) | (x == task.Y)
    assert (relevant.sum(1) == 2).all()
    where = np.argwhere(relevant)[:, 1].reshape(-1, 2)
    assert (a0 <= where[:, 0]).all() and (where[:, 0] < a1).all() and (b0 <= where[:, 1]).all() and (where[:, 1] < b1).all()
    symbols = np.take_along_axis(x, where, axis=1) - task.X
    np.testing.assert_array_equal(symbols[:, 0] * 2 + symbols[:, 1], y)
    assert np.bincount(y, minlength=4).min() > 400  # balanced: chance is the memoryless baseline
    assert task.signature.dependency == 90 and task.baseline == 0.25


def test_noisy_recall_interleaves_noise_and_queries_every_key():
    task = tasks.create("noisy_recall", length=30, pairs=4)
    x, y = task.generate("train", 300, seed=0)
    body = x[:, :38]
    is_key = (body >= 1) & (body <= 16)
    assert (is_key.sum(1) == 4).all()
    keys_at = np.argwhere(is_key)[:, 1].reshape(-1, 4)
    values = np.take_along_axis(body, keys_at + 1, axis=1)
    assert ((values > 16) & (values <= 32)).all()  # a pair is never split
    assert (keys_at[:, 0] > 0).mean() > 0.5  # noise before the first fact, usually
    lookup = {(i, k): v - 17 for i in range(300) for k, v in zip(np.take_along_axis(body, keys_at, 1)[i], values[i])}
    for i in range(300):
        assert [lookup[(i, k)] for k in x[i, 38:]] == list(y[i, 38:])
    assert sorted(x[0, 38:]) == sorted(body[0][is_key[0]])


def test_powerlaw_recall_gaps_favour_short_distances():
    task = tasks.create("powerlaw_recall", length=64, pairs=4, alpha=0.1)
    x, y = task.generate("train", 2000, seed=0)
    asked = y[:, 8:] != IGNORE
    assert (asked.sum(1) == 4).all()
    gaps = np.argwhere(asked)[:, 1] + 1
    assert (gaps <= 8).mean() > 0.4 and gaps.max() > 32  # most queries soon, some far
    keys = x[:, 0:8:2]
    queried = np.sort(x[:, 8:][asked].reshape(-1, 4), axis=1)
    np.testing.assert_array_equal(queried, np.sort(keys, axis=1))  # each key asked once


def test_extrapolation_scores_the_trained_weights_at_longer_lengths():
    from bench.report.dataframe import extrapolation_frame, frame
    from bench.runner.run import run
    from bench.core.spec import RunSpec, SpecError, TrainConfig

    train = TrainConfig(steps=20, eval_every=10, test_size=128, gradient_flow=False, test_lengths=[40, 80])
    assert train.test_lengths == (40, 80)
    record = run(RunSpec("temporal_order", "gru", {"length": 20}, {"units": 16}, train))
    assert record["status"] == "ok", record["error"]
    rows = record["metrics"]["extrapolation"]
    assert [r["length"] for r in rows] == [40, 80] and [r["dependency"] for r in rows] == [36, 72]
    assert all(0 <= r["value"] <= 1 and r["score"] == pytest.approx((r["value"] - 0.25) / 0.75) for r in rows)
    ext = extrapolation_frame(frame([record]))
    assert list(ext.test_length) == [20, 40, 80] and (ext.trained == 20).all()
    assert RunSpec("adding", "lstm").run_id == RunSpec("adding", "lstm", train=TrainConfig(test_lengths=())).run_id
    with pytest.raises(SpecError, match="test_lengths"):
        TrainConfig(test_lengths=[0])
