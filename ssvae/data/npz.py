"""``data=npz``: arrays in a NumPy ``.npz`` file.

Arrays: ``x`` (N, ...) and ``y`` (N,) integer labels, with ``data.unlabeled_label`` (-1) marking
rows without a label; optionally ``x_val``/``y_val`` and ``x_test``/``y_test`` (otherwise held
out of the labeled rows), and ``class_names``. Images stored as uint8 are scaled to [0, 1].
Everything is read into memory: the file's arrays must fit in RAM (a few GB is fine).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.data.datasets import UNLABELED, Split, SplitData
from ssvae.data.files import existing_path, file_identity
from ssvae.errors import DataError


class NpzData(SemiSupervisedDataModule):
    def __init__(
        self,
        path: str | None = None,
        name: str | None = None,
        unlabeled_label: int = -1,
        **settings,
    ) -> None:
        super().__init__(name=name or (Path(path).stem if path else "npz"), **settings)
        self.path = path
        self.unlabeled_label = unlabeled_label

    @property
    def source(self) -> str:
        return str(self.path)

    def cache_identity(self) -> dict[str, Any]:
        return file_identity(existing_path(self.path, "path"))

    def load(self) -> SplitData:
        path = existing_path(self.path, "path")
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single array, not an .npz archive of x and y")
        with archive:
            names = set(archive.files)
            for required in ("x", "y"):
                if required not in names:
                    raise DataError(f"{path}: no array {required!r}; it has {sorted(names)}")
            arrays = {name: archive[name] for name in names}
        class_names = arrays.get("class_names")
        train = self._split(path, arrays, "x", "y", allow_unlabeled=True)
        val = self._optional_split(path, arrays, "val")
        test = self._optional_split(path, arrays, "test")
        labels = [s.y for s in (train, val, test) if s is not None]
        top = max(int(y.max(initial=-1)) for y in labels)
        if class_names is not None:
            names_list = [str(n) for n in class_names.tolist()]
            if top >= len(names_list):
                raise DataError(
                    f"{path}: label {top} has no entry in class_names ({len(names_list)} names)"
                )
        else:
            names_list = [str(i) for i in range(top + 1)]
        return SplitData(
            train,
            val,
            test,
            names_list,
            shape=tuple(arrays["x"].shape[1:]),
            origin=file_identity(path),
        )

    def _optional_split(self, path: Path, arrays: dict, suffix: str) -> Split | None:
        x_key, y_key = f"x_{suffix}", f"y_{suffix}"
        if (x_key in arrays) != (y_key in arrays):
            raise DataError(f"{path}: has one of {x_key!r} and {y_key!r} but not the other")
        if x_key not in arrays:
            return None
        return self._split(path, arrays, x_key, y_key, allow_unlabeled=False)

    def _split(
        self, path: Path, arrays: dict, x_key: str, y_key: str, allow_unlabeled: bool
    ) -> Split:
        x, y = arrays[x_key], arrays[y_key]
        if len(x) != len(y):
            raise DataError(f"{path}: {x_key} has {len(x)} rows but {y_key} has {len(y)}")
        if y.ndim != 1:
            raise DataError(f"{path}: {y_key} must be one label per row, shape {y.shape}")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise DataError(f"{path}: {x_key} must hold real numbers, not {x.dtype}")
        if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
            raise DataError(f"{path}: {y_key} must hold integer labels, not {y.dtype}")
        if np.issubdtype(y.dtype, np.floating):
            bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
            if len(bad):
                raise DataError(
                    f"{path}: {y_key} must hold integer labels; row {bad[0]} is {y[bad[0]].item()}"
                )
        y = y.astype(np.int64)
        unlabeled = y == self.unlabeled_label
        if unlabeled.any() and not allow_unlabeled:
            raise DataError(f"{path}: every row of {y_key} needs a label")
        negative = np.flatnonzero((y < 0) & ~unlabeled)
        if len(negative):
            raise DataError(
                f"{path}: {y_key} row {negative[0]} is {y[negative[0]]}; labels are 0, 1, ... "
                f"and {self.unlabeled_label} (data.unlabeled_label) marks an unlabeled row"
            )
        y = np.where(unlabeled, UNLABELED, y)
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        flat = x.reshape(len(x), -1).astype(np.float32) / np.float32(scale)
        return Split(flat, y)
