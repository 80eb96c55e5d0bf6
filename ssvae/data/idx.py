"""Reading IDX files (the MNIST format), validating every header field against the payload.

Format: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order. Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ssvae.errors import DataError

# IDX type code -> numpy dtype (big-endian where it matters).
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: str | Path) -> bytes:
    """Return the file's (decompressed, for ``.gz``) bytes; a damaged gzip raises DataError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file (truncated or corrupt): {exc}") from exc


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, raising DataError on any inconsistency."""
    if len(data) < 4:
        raise DataError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{source}: bad IDX magic number {data[:4].hex()} (must start with 0000)")
    type_code, ndim = data[2], data[3]
    if type_code not in _DTYPES:
        allowed = ", ".join(f"0x{c:02x}" for c in _DTYPES)
        raise DataError(f"{source}: unknown IDX type code 0x{type_code:02x} (allowed: {allowed})")
    if ndim == 0:
        raise DataError(f"{source}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{source}: truncated IDX header ({len(data)} of {header_len} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{source}: IDX payload {what}: header shape {shape} needs {expected} bytes, "
            f"found {actual}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX or IDX.gz file into a native-endian numpy array."""
    return parse_idx(read_bytes(path), source=str(path))


def check_images_and_labels(
    images: np.ndarray, labels: np.ndarray, num_classes: int, source: str
) -> None:
    """Check that an image file and a label file belong together."""
    if images.ndim != 3:
        raise DataError(f"{source}: images must be 3-D (n, rows, cols), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{source}: labels must be 1-D, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{source}: {len(images)} images but {len(labels)} labels (the files must match)"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{source}: labels outside 0-{num_classes - 1} "
            f"(found {int(labels.min())}..{int(labels.max())})"
        )
