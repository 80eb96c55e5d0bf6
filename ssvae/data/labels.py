"""Choosing the labeled subset: balanced (or stratified) across classes, deterministic for a seed.

``labels`` are the training rows' labels, with -1 for rows that have none; only labeled rows can
be chosen. Rows with a label that are not chosen join the unlabeled pool (their label hidden),
which is how a fully labeled data set simulates label scarcity (benchmark mode).
"""

from __future__ import annotations

import numpy as np

from ssvae.errors import ConfigError

SELECTIONS = ("balanced", "stratified")


def _check_selection(selection: str) -> None:
    if selection not in SELECTIONS:
        raise ConfigError(f"data.label_selection={selection!r} is not known; allowed: {SELECTIONS}")


def resolve_num_labels(
    num_labels: int | None,
    label_fraction: float | None,
    pool_size: int,
    num_classes: int,
    selection: str = "balanced",
    available: int | None = None,
) -> int:
    """Turn ``data.num_labels`` or ``data.label_fraction`` (at most one) into a label count.

    Neither set: every labeled training row (``available``, default ``pool_size``). A fraction is
    of the training split's ``pool_size`` rows; "balanced" rounds it to a multiple of the number
    of classes (at least one per class), and a count must already be such a multiple.
    """
    _check_selection(selection)
    available = pool_size if available is None else available
    if num_labels is not None and label_fraction is not None:
        raise ConfigError(
            "set at most one of data.num_labels (a count) and data.label_fraction (in (0, 1]); "
            f"got num_labels={num_labels}, label_fraction={label_fraction}"
        )
    if num_labels is None and label_fraction is None:
        return available
    if label_fraction is not None:
        if isinstance(label_fraction, bool) or not 0.0 < float(label_fraction) <= 1.0:
            raise ConfigError(f"data.label_fraction={label_fraction} must be in (0, 1]")
        if selection == "stratified":
            return min(max(num_classes, round(float(label_fraction) * pool_size)), available)
        per_class = max(1, round(float(label_fraction) * pool_size / num_classes))
        return min(per_class, available // num_classes) * num_classes
    if isinstance(num_labels, bool) or int(num_labels) != num_labels or num_labels <= 0:
        raise ConfigError(f"data.num_labels={num_labels} must be a positive integer")
    num_labels = int(num_labels)
    if num_labels > available:
        where = "images" if available == pool_size else "labeled rows"
        raise ConfigError(
            f"data.num_labels={num_labels} is above the {available} {where} of the training split"
        )
    if selection == "balanced" and num_labels % num_classes:
        raise ConfigError(
            f"data.num_labels={num_labels} cannot be balanced across {num_classes} classes; "
            f"use a multiple of {num_classes}, or data.label_selection=stratified"
        )
    if num_labels < num_classes:
        raise ConfigError(
            f"data.num_labels={num_labels} is below the {num_classes} classes: every class "
            "needs at least one labeled example"
        )
    return num_labels


def select_labeled(
    labels: np.ndarray,
    num_labels: int,
    num_classes: int,
    seed: int,
    selection: str = "balanced",
) -> np.ndarray:
    """Indices (sorted) of ``num_labels`` labeled rows, drawn per class with ``seed``.

    "balanced": ``num_labels / num_classes`` per class. "stratified": in proportion to each
    class's labeled rows (largest remainders, at least one per class). ``labels`` are the
    training split's only, so the subset can never touch validation or test rows.
    """
    _check_selection(selection)
    members = [np.flatnonzero(labels == cls) for cls in range(num_classes)]
    if selection == "balanced":
        quota = [num_labels // num_classes] * num_classes
    else:
        quota = stratified_quota([len(m) for m in members], num_labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, (rows, wanted) in enumerate(zip(members, quota, strict=True)):
        if len(rows) < wanted:
            hint = "" if selection == "stratified" else ", or use data.label_selection=stratified"
            raise ConfigError(
                f"data.num_labels={num_labels} needs {wanted} images of class {cls}, "
                f"but the training split has only {len(rows)}; lower data.num_labels{hint}"
            )
        chosen.append(rng.choice(rows, size=wanted, replace=False))
    return np.sort(np.concatenate(chosen))


def stratified_quota(class_sizes: list[int], total: int) -> list[int]:
    """``total`` split in proportion to ``class_sizes`` by largest remainders, at least one each
    (for classes that have rows), never more than a class has."""
    sizes = np.asarray(class_sizes, dtype=float)
    if total >= sizes.sum():
        return [int(s) for s in sizes]
    exact = sizes / sizes.sum() * total
    quota = np.minimum(np.maximum(np.floor(exact), (sizes > 0).astype(float)), sizes)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    i = 0
    while quota.sum() < total:  # hand out the rest by largest remainder, where room is left
        cls = order[i % len(order)]
        if quota[cls] < sizes[cls]:
            quota[cls] += 1
        i += 1
    while quota.sum() > total:  # the minimum of one each overshot: take from the largest
        cls = int(np.argmax(quota))
        quota[cls] -= 1
    return [int(q) for q in quota]
