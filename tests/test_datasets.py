"""Real datasets: shapes, balance, fixed splits, no leakage, offline loading, a short real training run."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tasks
from bench.runner.run import run
from bench.core.spec import RunSpec, TrainConfig
from tasks import data
from tasks.base import Dataset
from tasks.registry import task_class

REAL = {  # name: (a short length, classes or None, train+val, test)
    "smnist": (98, 10, 4000, 1000), "pmnist": (196, 10, 4000, 1000), "sdigits": (16, 10, 1438, 359),
    "japanese_vowels": (29, 9, 270, 370), "basic_motions": (50, 4, 40, 40), "osuleaf": (100, 6, 200, 242),
    "acsf1": (146, 10, 100, 100), "rotten_tomatoes": (24, 2, 10109, 2699), "co2": (52, None, 1763, 457),
}


def test_every_real_dataset_is_registered_and_finite():
    registered = [n for n in tasks.list_tasks() if issubclass(task_class(n), Dataset)]
    assert sorted(registered) == sorted(REAL)


@pytest.mark.parametrize("name", sorted(REAL))
def test_shapes_sizes_and_balance(name):
    length, classes, train_size, test_size = REAL[name]
    task = tasks.create(name, length=length)
    sig = task.signature
    assert sig.length == sig.dependency == length
    sizes = task.sizes(seed=0)
    assert sizes["train"] + sizes["val"] == train_size and sizes["test"] == test_size
    x, y = task.generate("train", 10**6, seed=0)
    assert x.shape[:2] == (sizes["train"], length)
    if isinstance(sig.input, tasks.Features):
        assert x.shape[2] == sig.input.channels and x.dtype == np.float32 and np.isfinite(x).all()
    else:
        assert x.dtype == np.int32 and 0 <= x.min() and x.max() < sig.input.vocab
    if classes is None:
        assert y.shape == (sizes["train"], 1)
        return
    _, test_y = task.generate("test", 10**6)
    assert sig.output.classes == classes and set(np.unique(y)) == set(np.unique(test_y)) == set(range(classes))
    counts = np.bincount(task.arrays[1])
    assert counts.min() / counts.max() > 0.25  # no class is a rarity in training
    majority = np.mean(test_y == counts.argmax())
    assert task.baseline == pytest.approx(majority) and 0 < task.baseline < 0.6


@pytest.mark.parametrize("name", sorted(REAL))
def test_splits_are_fixed_disjoint_and_validation_comes_from_train(name):
    length = REAL[name][0]
    task, again = tasks.create(name, length=length), tasks.create(name, length=length)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(task.generate(split, 10**6, seed=1)[0], again.generate(split, 10**6, seed=1)[0])
    assert not np.array_equal(task.generate("val", 10**6, seed=1)[0], task.generate("val", 10**6, seed=2)[0])
    np.testing.assert_array_equal(np.sort(task.generate("test", 10**6, seed=1)[1]),
                                  np.sort(task.generate("test", 10**6, seed=2)[1]))  # test ignores the seed
    rows = {split: {r.tobytes() for r in task.generate(split, 10**6, seed=1)[0]} for split in ("train", "val", "test")}
    if name != "rotten_tomatoes":  # some snippets repeat verbatim; that split is by movie (next test)
        assert not rows["train"] & rows["val"]
        assert not (rows["train"] | rows["val"]) & rows["test"]
    official = {r.tobytes() for r in task.arrays[0]}
    assert rows["train"] | rows["val"] == official


def test_rotten_tomatoes_no_movie_in_train_and_test():
    from tasks.sentiment import in_test
    texts, labels, movies = data.rotten_tomatoes()
    assert len(texts) == 12808 and labels.sum() == 7403
    test = {m for m in movies if in_test(m)}
    assert 0.1 < len(test) / len(set(movies)) < 0.3


def test_batches_cover_an_epoch_without_repeats():
    task = tasks.create("sdigits", length=8)
    x, _ = task.generate("train", 10**6, seed=0)
    stream = task.batches(100, seed=0)
    epoch = [next(stream)[0] for _ in range(len(x) // 100)]
    seen = [r.tobytes() for b in epoch for r in b]
    assert len(seen) == len(set(seen)) == len(x) // 100 * 100
    assert next(stream)[0].shape == (100, 8, 8)  # the next epoch starts, reshuffled
    assert next(tasks.create("basic_motions").batches(64))[0].shape[0] == 36  # clamped to the training part


def test_length_axis_keeps_the_whole_image_or_series():
    short, full = tasks.create("smnist", length=98), tasks.create("smnist", length=784)
    np.testing.assert_array_equal(short.arrays[0].reshape(4000, -1), full.arrays[0].reshape(4000, -1))
    permuted = tasks.create("pmnist", length=784).arrays[0]
    np.testing.assert_allclose(np.sort(permuted, axis=1), np.sort(full.arrays[0], axis=1))
    assert not np.array_equal(permuted, full.arrays[0])
    osu = tasks.create("osuleaf", length=427).arrays[0]
    np.testing.assert_array_equal(tasks.create("osuleaf", length=100).arrays[0][:, -1], osu[:, -1])


def test_variable_length_series_are_right_padded_and_masked():
    task = tasks.create("japanese_vowels")
    cases, _ = data.ucr("JapaneseVowels", "TRAIN")
    x = task.arrays[0]
    for case, row in zip(cases[:20], x[:20]):
        np.testing.assert_array_equal(row[: len(case)], case)
        assert not row[len(case):].any()
    assert task.signature.masked and not tasks.create("osuleaf").signature.masked


def test_parse_ts_reads_channels_labels_and_missing_values():
    text = io.StringIO("# comment\n@problemName X\n@classLabel true a b\n@data\n1,2,3:4,5,6:b\n7,?,9:1,1,1:a\n")
    cases, labels, classes = data.parse_ts(text)
    assert classes == ["a", "b"] and labels == ["b", "a"] and cases[0].shape == (3, 2)
    assert cases[0][2, 1] == 6 and np.isnan(cases[1][1, 0])


def test_missing_package_names_the_extra():
    with pytest.raises(tasks.TaskError, match=r"pip install -e '\.\[data\]'"):
        data.package_file("no-such-distribution", "x.csv")


def test_co2_persistence_baseline_and_chronological_test():
    task = tasks.create("co2", length=52, horizon=13)
    x, y = task.generate("test", 10**6)
    assert task.baseline == pytest.approx(np.mean((x[:, -1] - y) ** 2))
    assert task.score(task.baseline) == 0 and task.score(0.0) == 1


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_every_dataset_loads_with_the_network_cut():
    code = ("import tasks, json; print(json.dumps({n: tasks.create(n, length=l).sizes() for n, l in %r}))"
            % [(n, v[0]) for n, v in sorted(REAL.items())])
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode and "unshare" in done.stderr and "Operation not permitted" in done.stderr:
        pytest.skip("unshare -n is not permitted here")
    assert done.returncode == 0, done.stderr[-500:]
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    assert {n: s["test"] for n, s in sizes.items()} == {n: v[3] for n, v in REAL.items()}


@pytest.mark.parametrize("name, length, model", [("sdigits", 16, "gru"), ("japanese_vowels", 29, "lstm")])
def test_a_short_real_training_run_beats_the_majority_class(name, length, model):
    spec = RunSpec(name, model, {"length": length}, {"units": 32},
                   TrainConfig(steps=60, eval_every=30, test_size=10**6, gradient_flow=False))
    record = run(spec)
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert m["test_samples"] == REAL[name][3] and m["metric"] == "accuracy"
    assert m["score"] > 0.2 and m["value"] > m["baseline"]
    assert record["masked"] is tasks.create(name, length=length).signature.masked
