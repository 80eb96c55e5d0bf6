import numpy as np
import pytest

from ssvae.data.builtin import BuiltinData
from ssvae.data.labels import resolve_num_labels, select_labeled
from ssvae.errors import ConfigError
from tests.conftest import SHARED_DATA, needs_mnist

LABELS = np.repeat(np.arange(10), 50)[np.random.default_rng(1).permutation(500)]


def test_selection_is_balanced_and_deterministic():
    chosen = select_labeled(LABELS, 40, 10, seed=3)
    assert len(chosen) == len(set(chosen)) == 40
    assert np.bincount(LABELS[chosen], minlength=10).tolist() == [4] * 10
    np.testing.assert_array_equal(chosen, select_labeled(LABELS, 40, 10, seed=3))
    assert not np.array_equal(chosen, select_labeled(LABELS, 40, 10, seed=4))


def test_a_class_with_too_few_images_is_named():
    labels = np.concatenate([LABELS, np.zeros(3, dtype=int)])[LABELS.argsort()][3:]
    with pytest.raises(ConfigError, match="class 0"):
        select_labeled(labels, 500, 10, seed=0)


@pytest.mark.parametrize(
    ("count", "fraction", "message"),
    [
        (100, 0.1, "at most one"),
        (0, None, "positive"),
        (-10, None, "positive"),
        (510, None, "above the 500"),
        (55, None, "cannot be balanced"),
        (None, 0.0, r"\(0, 1\]"),
        (None, 1.5, r"\(0, 1\]"),
    ],
)
def test_bad_label_requests(count, fraction, message):
    with pytest.raises(ConfigError, match=message):
        resolve_num_labels(count, fraction, pool_size=500, num_classes=10)


def test_fraction_rounds_to_a_balanced_count():
    assert resolve_num_labels(None, 0.01, pool_size=50_000, num_classes=10) == 500
    assert resolve_num_labels(None, 0.1, pool_size=1257, num_classes=10) == 130
    assert resolve_num_labels(None, 0.0001, pool_size=1257, num_classes=10) == 10
    assert resolve_num_labels(None, 1.0, pool_size=1257, num_classes=10) == 1250


def _datamodule(**kwargs):
    dm = BuiltinData(name="digits", **kwargs)
    dm.setup("fit")
    return dm


def test_labeled_subset_comes_from_the_training_split_only():
    dm = _datamodule(num_labels=50, seed=0)
    train = dm.splits.train
    assert dm.labeled_idx.max() < len(train.y)
    np.testing.assert_array_equal(dm._x_labeled.numpy(), train.x[dm.labeled_idx])
    # Splits are fixed: the same validation and test images for every seed.
    other = _datamodule(num_labels=50, seed=1)
    np.testing.assert_array_equal(dm.splits.test.x, other.splits.test.x)
    assert not np.array_equal(dm.labeled_idx, other.labeled_idx)


def test_unlabeled_pool_excludes_the_labeled_images_by_default():
    dm = _datamodule(num_labels=100, seed=0)
    assert dm.num_labeled == 100 and dm.num_unlabeled == len(dm.splits.train.y) - 100
    dm_all = _datamodule(num_labels=100, seed=0, unlabeled_includes_labeled=True)
    assert dm_all.num_unlabeled == len(dm.splits.train.y)


def test_train_batches_combine_labeled_and_unlabeled():
    dm = _datamodule(num_labels=30, seed=0, labeled_batch_size=20, unlabeled_batch_size=100)
    loader = dm.train_dataloader()
    batches = list(iter(loader))
    assert len(batches) == -(-dm.num_unlabeled // 100)  # one pass over the unlabeled pool
    batch, _, _ = batches[0]
    x_l, y_l = batch["labeled"]
    assert x_l.shape == (20, 64) and y_l.shape == (20,) and batch["unlabeled"].shape == (100, 64)
    seen = np.concatenate([b[0]["labeled"][1].numpy() for b in batches])
    assert len(seen) > 5 * dm.num_labeled  # the labeled loader cycles, reshuffled
    assert np.bincount(seen, minlength=10).min() > 0


@needs_mnist
def test_mnist_labeled_subset_is_drawn_from_the_first_50k_only():
    dm = BuiltinData(name="mnist", root=str(SHARED_DATA), download=False, num_labels=100)
    dm.setup("fit")
    assert len(dm.splits.train.y) == 50_000 and dm.labeled_idx.max() < 50_000
    assert np.bincount(dm.splits.train.y[dm.labeled_idx]).tolist() == [10] * 10
    assert dm.num_unlabeled == 49_900


def test_batches_cover_every_image_once_per_epoch_and_reshuffle():
    import torch

    from ssvae.data.batches import TensorBatches

    x = torch.arange(23)
    batches = TensorBatches(x, batch_size=5, shuffle=True, seed=7)
    first, second = torch.cat(list(batches)), torch.cat(list(batches))
    assert len(batches) == 5 and sorted(first.tolist()) == list(range(23))
    assert sorted(second.tolist()) == list(range(23)) and not torch.equal(first, second)
    again = TensorBatches(x, batch_size=5, shuffle=True, seed=7)
    assert torch.equal(torch.cat(list(again)), first)  # same seed, same order


def test_even_shards_give_every_process_the_same_number_of_steps(monkeypatch):
    import torch

    from ssvae.data import batches as module

    x = torch.arange(23)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(module, "_rank_and_world", lambda rank=rank: (rank, 2))
        shard = module.TensorBatches(x, batch_size=4, even_shards=True)
        seen.append((len(shard), torch.cat(list(shard)).tolist()))
    assert seen[0][0] == seen[1][0] == 3
    assert sorted(set(seen[0][1]) | set(seen[1][1])) == list(range(23))
    monkeypatch.setattr(module, "_rank_and_world", lambda: (1, 2))
    assert len(torch.cat(list(module.TensorBatches(x, batch_size=4)))) == 11  # eval: no repeats


def test_no_label_count_takes_every_labeled_row_even_when_classes_are_unequal(tmp_path):
    from ssvae.data.npz import NpzData

    y = np.array([0] * 30 + [1] * 12 + [-1] * 20)
    x = np.random.default_rng(0).random((len(y), 4)).astype(np.float32)
    path = tmp_path / "unequal.npz"
    np.savez(
        path,
        x=x,
        y=y,
        x_val=x[:4],
        y_val=np.array([0, 1, 0, 1]),
        x_test=x[:4],
        y_test=np.array([0, 1, 0, 1]),
    )
    data = NpzData(path=str(path))  # data.num_labels=null, label_selection=balanced
    data.setup("fit")
    assert data.num_labeled == 42 and data.labeled_class_counts == [30, 12]
