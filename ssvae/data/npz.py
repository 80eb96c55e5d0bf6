"""``data=npz``: arrays in a NumPy ``.npz`` file.

Arrays: ``x`` (N, ...) and ``y`` (N,) integer labels, with ``data.unlabeled_label`` (-1) marking
rows without a label; optionally ``x_val``/``y_val`` and ``x_test``/``y_test`` (otherwise held
out of the labeled rows), and ``class_names``. Images stored as uint8 are scaled to [0, 1].
Features become float32 in memory (N x D x 4 bytes). Arrays stored uncompressed (np.savez) are
memory-mapped and converted in chunks, so the float32 copy is all that is held; compressed ones
(np.savez_compressed) are decompressed into memory first.
"""

from __future__ import annotations

import struct
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
            # Feature arrays stored uncompressed (np.savez) are memory-mapped, not read whole.
            arrays = {
                name: (memory_mapped(path, name) if name.startswith("x") else None)
                for name in names
            }
            arrays = {n: a if a is not None else archive[n] for n, a in arrays.items()}
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
        return Split(as_float_rows(x), y)


def as_float_rows(x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """(N, D) float32 in chunks (uint8 scaled to [0, 1]): a memory-mapped x is read piece by
    piece, so the float32 copy is all that is ever held in memory."""
    scale = np.float32(255.0 if x.dtype == np.uint8 else 1.0)
    out = np.empty((len(x), int(np.prod(x.shape[1:], dtype=np.int64))), dtype=np.float32)
    for start in range(0, len(x), chunk):
        part = np.asarray(x[start : start + chunk])
        out[start : start + len(part)] = part.reshape(len(part), -1) / scale
    return out


def memory_mapped(path: Path, name: str) -> np.ndarray | None:
    """Member ``name`` of an .npz as a read-only memory map, or None when it is compressed
    (np.savez_compressed) or not a plain array; then it is read as usual."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)  # the zip local file header: its name and extra field follow
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        offset = handle.tell()
    if dtype.hasobject:
        return None
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, order=order, offset=offset)
