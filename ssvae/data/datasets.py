"""Loading each data set into train/validation/test arrays of flat float32 pixels in [0, 1].

Splits are fixed (independent of the run's seed) so that every run is tested on the same images.
MNIST and Fashion-MNIST follow the paper: the first 50,000 training images train, the last 10,000
validate, and the official 10,000 test images test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssvae.data.sources import get_idx_dataset, load_idx_dataset
from ssvae.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion_mnist")


@dataclass
class Split:
    x: np.ndarray  # (n, D) float32 in [0, 1]
    y: np.ndarray  # (n,) int64


@dataclass
class SplitData:
    train: Split
    val: Split
    test: Split
    num_classes: int


def _flat(images: np.ndarray, scale: float) -> np.ndarray:
    return (images.reshape(len(images), -1).astype(np.float32) / scale).clip(0.0, 1.0)


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
    return SplitData(Split(x_train, y_train), Split(x_val, y_val), Split(x_test, y_test), 10)


def load_idx_splits(name: str, root: Path, download: bool, num_val: int = 10_000) -> SplitData:
    dataset = get_idx_dataset(name)
    train_x, train_y, test_x, test_y = load_idx_dataset(dataset, root, download)
    x, x_test = _flat(train_x, 255.0), _flat(test_x, 255.0)
    cut = len(x) - num_val
    return SplitData(
        Split(x[:cut], train_y[:cut]),
        Split(x[cut:], train_y[cut:]),
        Split(x_test, test_y),
        dataset.num_classes,
    )


def load_splits(name: str, root: Path, download: bool = True) -> SplitData:
    if name == "digits":
        return load_digits_splits()
    if name in ("mnist", "fashion_mnist"):
        return load_idx_splits(name, root, download)
    raise ConfigError(f"data.name={name!r} is not known; allowed: {list(DATASETS)}")
