"""Validation and test rows for data that comes without them: a seeded, stratified hold-out of
the labeled training rows, recorded so that a run can say which rows it tested on."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from ssvae.data.datasets import Split
from ssvae.errors import ConfigError


def _fraction(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"data.{field}={value} must be a number in (0, 1)")
    return float(value)


def hold_out(
    train: Split,
    val: Split | None,
    test: Split | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[Split, Split, Split, dict]:
    """Take the missing validation and/or test split from the labeled training rows.

    Fractions are of the labeled rows; the test rows are drawn first, then the validation rows
    from what is left. Returns the three splits and a record: for each split, "given" or the
    held-out rows' indices into the source's training rows (so the run can be reproduced).
    """
    record: dict = {"split_seed": seed}
    rows = np.arange(len(train.y))
    num_labeled = int((train.y >= 0).sum())
    num_classes = len(np.unique(train.y[train.y >= 0]))
    for name, given, fraction in (("test", test, test_fraction), ("val", val, val_fraction)):
        if given is not None:
            record[name] = "given"
            continue
        # A fraction of all the labeled rows, also for the split drawn second.
        # At least one row per class: stratification needs it, and so does a meaningful score.
        size = max(num_classes, round(_fraction(fraction, f"{name}_fraction") * num_labeled))
        labeled = rows[train.y[rows] >= 0]
        try:
            _, taken = train_test_split(
                labeled, test_size=size, stratify=train.y[labeled], random_state=seed
            )
        except ValueError as exc:
            raise ConfigError(
                f"cannot hold out a stratified {name} split of {size} rows "
                f"(data.{name}_fraction={fraction}) from {len(labeled)} labeled rows ({exc}); "
                f"give a {name} set (data.{name}_path, or x_{name}/y_{name} in an npz) or change "
                "the fraction"
            ) from None
        taken = np.sort(taken)
        record[name] = taken.tolist()
        rows = np.setdiff1d(rows, taken)
        if name == "test":
            test = Split(train.x[taken], train.y[taken])
        else:
            val = Split(train.x[taken], train.y[taken])
    return Split(train.x[rows], train.y[rows]), val, test, record
