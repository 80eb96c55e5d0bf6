"""What the file-based sources share: checking a path, and the identity of a file's contents."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ssvae.data.datasets import UNLABELED
from ssvae.errors import ConfigError, DataError


def existing_path(path: str | os.PathLike | None, field: str, folder: bool = False) -> Path:
    """``path`` resolved, or one line saying that ``data.<field>`` is unset or missing."""
    if path is None or str(path) in ("", "???"):
        kind = "folder" if folder else "file"
        raise ConfigError(f"data.{field} is not set; give the {kind} to read, e.g. data.{field}=…")
    resolved = Path(path).expanduser().resolve()
    if folder and not resolved.is_dir():
        raise DataError(f"{resolved}: no such folder (data.{field})")
    if not folder and not resolved.is_file():
        raise DataError(f"{resolved}: no such file (data.{field})")
    return resolved


def file_identity(path: Path) -> dict[str, Any]:
    """Path, size and modification time: a changed file gets a new M1 VAE, not a stale one."""
    stat = path.stat()
    return {"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def encode_labels(
    values: list[str | None], source: str, known: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Class indices for label strings (None: unlabeled) and the class names in index order.

    Names sort numerically when every label is a number (so "2" < "10"), else as text. With
    ``known`` (the training classes), a label outside them is an error.
    """
    present = sorted({v for v in values if v is not None})
    if known is None:
        with contextlib.suppress(ValueError):  # not all numbers: keep the text order
            present.sort(key=float)
        known = present
    index = {name: i for i, name in enumerate(known)}
    unknown = [v for v in present if v not in index]
    if unknown:
        raise DataError(
            f"{source}: label {unknown[0]!r} is not one of the training classes {known}"
        )
    codes = np.array([UNLABELED if v is None else index[v] for v in values], dtype=np.int64)
    return codes, known
