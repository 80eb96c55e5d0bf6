"""The arrays a data module is built from, and the built-in data sets' fixed splits.

A data source returns ``SplitData``: flat float32 features per row, labels as class indices with
``UNLABELED`` (-1) for rows without one, and optional validation and test splits (the data module
holds them out of the labeled training rows when a source has none).

Built-in splits are fixed (independent of the run's seed) so that every run is tested on the same
images. MNIST and Fashion-MNIST follow the paper: the first 50,000 training images train, the last
10,000 validate, and the official 10,000 test images test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssvae.data.sources import get_idx_dataset, load_idx_dataset

# The label of a row without one (scikit-learn's convention for semi-supervised estimators).
UNLABELED = -1


@dataclass
class Split:
    x: np.ndarray  # (n, D) float32
    y: np.ndarray  # (n,) int64; UNLABELED (-1) where a training row has no label


@dataclass
class SplitData:
    train: Split
    val: Split | None
    test: Split | None
    class_names: list[str]
    # One row's shape before flattening, e.g. (1, 28, 28) for images; (D,) for a table.
    shape: tuple[int, ...] = ()
    # Column names of a table, for messages and predictions; None for images.
    feature_names: list[str] | None = None
    # Where the rows came from, recorded in the run (paths, sizes); empty for built-in sets.
    origin: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _flat(images: np.ndarray, scale: float) -> np.ndarray:
    return (images.reshape(len(images), -1).astype(np.float32) / scale).clip(0.0, 1.0)


def _digit_names() -> list[str]:
    return [str(i) for i in range(10)]


def load_digits_splits(val_size: int = 180, test_size: int = 360) -> SplitData:
    """scikit-learn's 8x8 digits (1,797 images, no download): stratified fixed split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = _flat(digits.images, 16.0), digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=0
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_size, stratify=y_rest, random_state=0
    )
    return SplitData(
        Split(x_train, y_train),
        Split(x_val, y_val),
        Split(x_test, y_test),
        _digit_names(),
        shape=(1, 8, 8),
    )


def load_idx_splits(name: str, root: Path, download: bool, num_val: int = 10_000) -> SplitData:
    dataset = get_idx_dataset(name)
    train_x, train_y, test_x, test_y = load_idx_dataset(dataset, root, download)
    x, x_test = _flat(train_x, 255.0), _flat(test_x, 255.0)
    cut = len(x) - num_val
    return SplitData(
        Split(x[:cut], train_y[:cut]),
        Split(x[cut:], train_y[cut:]),
        Split(x_test, test_y),
        [str(i) for i in range(dataset.num_classes)],
        shape=(1, *train_x.shape[1:]),
    )
