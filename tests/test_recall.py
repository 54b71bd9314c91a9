"""recall's zoology (MQAR) layout, and the default layout kept as it was."""

import numpy as np
import pytest

import tasks
from tasks import IGNORE


def test_block_layout_keeps_its_parameters_so_stored_records_keep_their_identity():
    assert tasks.create("recall", length=10, pairs=2).params == \
        {"length": 10, "pairs": 2, "queries": 2, "keys": 16, "values": 16, "noise": 8}


def test_mqar_matches_zoology_shapes_vocabulary_and_answers():
    task = tasks.create("recall", length=56, pairs=4, layout="mqar", vocab_size=8192)  # zoology: 64 tokens, 4 pairs
    sig = task.signature
    assert (sig.length, sig.input.vocab, sig.output.classes) == (64, 8192, 4096) and task.baseline == 1 / 4096
    x, y = task.generate("train", 400, seed=1)
    assert x.shape == y.shape == (400, 64) and ((y != IGNORE).sum(axis=1) == 4).all()
    keys, values = x[:, 0:8:2], x[:, 1:8:2]
    assert (keys >= 1).all() and (keys < 4096).all() and (values >= 4096).all()
    assert all(len(set(row)) == 4 for row in keys) and all(len(set(row)) == 4 for row in values)
    for i, j in np.argwhere(y != IGNORE):
        assert j >= 8 and (j - 8) % 2 == 0  # queries at even offsets after the pairs
        assert y[i, j] + 4096 == values[i][list(keys[i]).index(x[i, j])]


def test_mqar_power_law_puts_queries_soon_after_the_pairs_and_power_1_is_uniform():
    def offsets(power_a):
        _, y = tasks.create("recall", length=200, pairs=4, layout="mqar", vocab_size=512,
                            power_a=power_a).generate("train", 500)
        return np.argwhere(y != IGNORE)[:, 1] - 8

    assert np.median(offsets(0.01)) < 40 < np.median(offsets(1.0))


@pytest.mark.parametrize("params, word", [
    ({"layout": "mqar", "vocab_size": 7}, "vocab_size"), ({"layout": "mqar", "power_a": 0}, "power_a"),
    ({"layout": "nope"}, "layout"), ({"layout": "mqar", "length": 4, "pairs": 4}, "queries")])
def test_bad_mqar_parameters_name_themselves(params, word):
    with pytest.raises(tasks.TaskError, match=word):
        tasks.create("recall", **{"length": 56, "pairs": 4, **params})
