"""Choosing the labeled subset: balanced across classes, deterministic for a seed."""

from __future__ import annotations

import numpy as np

from ssvae.errors import ConfigError


def resolve_num_labels(
    num_labels: int | None, label_fraction: float | None, pool_size: int, num_classes: int
) -> int:
    """Turn ``data.num_labels`` or ``data.label_fraction`` (exactly one) into a balanced count.

    A fraction is rounded to the nearest multiple of the number of classes (at least one per
    class), so that it can be balanced; a count must already be such a multiple.
    """
    if (num_labels is None) == (label_fraction is None):
        raise ConfigError(
            "set exactly one of data.num_labels (a count) and data.label_fraction (in (0, 1]); "
            f"got num_labels={num_labels}, label_fraction={label_fraction}"
        )
    if label_fraction is not None:
        if isinstance(label_fraction, bool) or not 0.0 < float(label_fraction) <= 1.0:
            raise ConfigError(f"data.label_fraction={label_fraction} must be in (0, 1]")
        per_class = max(1, round(float(label_fraction) * pool_size / num_classes))
        return min(per_class, pool_size // num_classes) * num_classes
    if isinstance(num_labels, bool) or int(num_labels) != num_labels or num_labels <= 0:
        raise ConfigError(f"data.num_labels={num_labels} must be a positive integer")
    num_labels = int(num_labels)
    if num_labels > pool_size:
        raise ConfigError(
            f"data.num_labels={num_labels} is above the {pool_size} images of the training split"
        )
    if num_labels % num_classes:
        raise ConfigError(
            f"data.num_labels={num_labels} cannot be balanced across {num_classes} classes; "
            f"use a multiple of {num_classes}"
        )
    return num_labels


def select_labeled(labels: np.ndarray, num_labels: int, num_classes: int, seed: int) -> np.ndarray:
    """Indices (sorted) of ``num_labels / num_classes`` images per class, drawn with ``seed``.

    ``labels`` are the training split's labels only, so the subset can never touch validation or
    test images.
    """
    per_class = num_labels // num_classes
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in range(num_classes):
        members = np.flatnonzero(labels == cls)
        if len(members) < per_class:
            raise ConfigError(
                f"data.num_labels={num_labels} needs {per_class} images of class {cls}, "
                f"but the training split has only {len(members)}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))
