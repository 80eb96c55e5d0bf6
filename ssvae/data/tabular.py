"""``data=csv``: a table of numeric features and a label column, read with pandas.

An empty label cell marks an unlabeled row. Labels may be numbers or strings; they are mapped to
class indices (numbers in numeric order, else text order) and the mapping is saved with the run
(its data.json). Features are ``data.feature_columns``, or every column but the label.
Optional ``data.val_path`` / ``data.test_path`` are tables with the same columns, every row
labeled; otherwise validation and test rows are held out of the labeled rows.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.data.datasets import Split, SplitData
from ssvae.data.files import encode_labels, existing_path, file_identity
from ssvae.errors import ConfigError, DataError


def read_table(path: Path, label_column: str) -> pd.DataFrame:
    """The CSV with its label column as text (so "01" stays "01"), empty cells as missing."""
    try:
        header = pd.read_csv(path, nrows=0)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    _check_unique_header(path)
    if label_column not in header.columns:
        raise DataError(
            f"{path}: no label column {label_column!r} (data.label_column); the columns are "
            f"{list(header.columns)}"
        )
    try:
        return pd.read_csv(path, dtype={label_column: "string"})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None


def _check_unique_header(path: Path) -> None:
    """pandas renames a repeated column name ("a", "a" -> "a", "a.1") without a word: refuse it."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        names = next(csv.reader(handle), [])
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"{path}: the header names column {name!r} twice (columns {seen[name]} and {i}); "
                "give every column its own name"
            )
        seen[name] = i


def label_cells(column: pd.Series) -> list[str | None]:
    """Each label as text, None for an empty cell (an unlabeled row)."""
    return [None if pd.isna(v) else str(v).strip() or None for v in column]


def numeric_features(frame: pd.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    """The feature columns as float32; names the column and row of the first bad value."""
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)))
        if len(bad):
            raw = frame[column].iloc[bad[0]]
            # str(): numpy scalars' repr is np.float64(inf); a text cell keeps its quotes.
            what = (
                "an empty cell"
                if pd.isna(raw)
                else f"the value {raw!r}"
                if isinstance(raw, str)
                else f"the value {raw}"
            )
            # Line numbers as an editor shows them: the header is line 1.
            raise DataError(
                f"{path}: column {column!r} has {what} on line {bad[0] + 2} (row {bad[0]}); "
                "features must be finite numbers"
            )
        out[:, j] = values.to_numpy(dtype=np.float32)
    return out


class CsvData(SemiSupervisedDataModule):
    def __init__(
        self,
        path: str | None = None,
        label_column: str = "label",
        feature_columns: list[str] | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        name: str | None = None,
        **settings,
    ) -> None:
        super().__init__(name=name or (Path(path).stem if path else "csv"), **settings)
        self.path = path
        self.label_column = label_column
        self.feature_columns = list(feature_columns) if feature_columns else None
        self.val_path = val_path
        self.test_path = test_path

    @property
    def source(self) -> str:
        return str(self.path)

    def cache_identity(self) -> dict[str, Any]:
        return {
            **file_identity(existing_path(self.path, "path")),
            "features": self.feature_columns,
            "label": self.label_column,
        }

    def load(self) -> SplitData:
        path = existing_path(self.path, "path")
        frame = read_table(path, self.label_column)
        columns = self._columns(frame, path)
        labels = label_cells(frame[self.label_column])
        y, class_names = encode_labels(labels, str(path))
        train = Split(numeric_features(frame, columns, path), y)
        val = self._labeled_table(self.val_path, "val_path", columns, class_names)
        test = self._labeled_table(self.test_path, "test_path", columns, class_names)
        return SplitData(
            train,
            val,
            test,
            class_names,
            shape=(len(columns),),
            feature_names=columns,
            origin=file_identity(path),
        )

    def _columns(self, frame: pd.DataFrame, path: Path) -> list[str]:
        if self.feature_columns is None:
            columns = [c for c in frame.columns if c != self.label_column]
        else:
            columns = self.feature_columns
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise DataError(
                    f"{path}: no column {missing[0]!r} (data.feature_columns); the columns are "
                    f"{list(frame.columns)}"
                )
            if self.label_column in columns:
                raise ConfigError(
                    f"data.feature_columns includes the label column {self.label_column!r}"
                )
        if not columns:
            raise DataError(f"{path}: no feature columns besides the label {self.label_column!r}")
        return columns

    def _labeled_table(
        self, path: str | None, field: str, columns: list[str], class_names: list[str]
    ) -> Split | None:
        if path is None:
            return None
        resolved = existing_path(path, field)
        frame = read_table(resolved, self.label_column)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{resolved}: no column {missing[0]!r}, which the training table has")
        labels = label_cells(frame[self.label_column])
        if None in labels:
            raise DataError(
                f"{resolved}: line {labels.index(None) + 2} has no label; every row of "
                f"data.{field} needs one"
            )
        y, _ = encode_labels(labels, str(resolved), known=class_names)
        return Split(numeric_features(frame, columns, resolved), y)
