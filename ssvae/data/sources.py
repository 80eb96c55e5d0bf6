"""Where the data sets come from: canonical files, digests, download with verification, loading.

Every file is checked against a known MD5 before use. MNIST's digests are of the *decompressed*
bytes (mirrors re-gzip the same content differently); Fashion-MNIST's are of the official ``.gz``.
Downloads go to a temporary file beside the target and are renamed into place only after they
verify, so an interrupted or corrupt download never leaves a file behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssvae.data.idx import check_images_and_labels, parse_idx, read_bytes
from ssvae.errors import ConfigError, DataError
from ssvae.io import temp_file_beside

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "SSVAE_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("~/.cache/ssvae/data")


@dataclass(frozen=True)
class RemoteFile:
    name: str
    md5: str
    digest_of: str = "raw"  # "raw": md5 of the decompressed bytes; "gz": md5 of the file itself


@dataclass(frozen=True)
class IdxDataset:
    """A data set published as four IDX.gz files (train/test images and labels)."""

    name: str
    mirrors: tuple[str, ...]
    train_images: RemoteFile
    train_labels: RemoteFile
    test_images: RemoteFile
    test_labels: RemoteFile
    num_classes: int = 10

    @property
    def files(self) -> tuple[RemoteFile, ...]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


MNIST = IdxDataset(
    name="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    train_images=RemoteFile("train-images-idx3-ubyte.gz", "6bbc9ace898e44ae57da46a324031adb"),
    train_labels=RemoteFile("train-labels-idx1-ubyte.gz", "a25bea736e30d166cdddb491f175f624"),
    test_images=RemoteFile("t10k-images-idx3-ubyte.gz", "2646ac647ad5339dbf082846283269ea"),
    test_labels=RemoteFile("t10k-labels-idx1-ubyte.gz", "27ae3e4e09519cfbb04c329615203637"),
)

FASHION_MNIST = IdxDataset(
    name="fashion_mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    train_images=RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "gz"),
    train_labels=RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", "gz"),
    test_images=RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", "gz"),
    test_labels=RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", "gz"),
)

IDX_DATASETS = {d.name: d for d in (MNIST, FASHION_MNIST)}


def resolve_data_root(root: str | os.PathLike | None) -> Path:
    """The data root: the explicit value, else $SSVAE_DATA_ROOT, else ~/.cache/ssvae/data."""
    chosen = root if root not in (None, "") else os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return Path(chosen).expanduser()


def verify_file(path: Path, remote: RemoteFile) -> bytes:
    """The file's decompressed bytes; DataError unless its digest is the expected one."""
    content = read_bytes(path)
    hashed = path.read_bytes() if remote.digest_of == "gz" else content
    digest = hashlib.md5(hashed).hexdigest()
    if digest != remote.md5:
        raise DataError(
            f"{path}: md5 {digest} does not match the expected {remote.md5} "
            f"({'file' if remote.digest_of == 'gz' else 'decompressed content'}); "
            "the file is corrupt, partial or a different version: delete it and download again"
        )
    return content


def download_file(url: str, target: Path, remote: RemoteFile, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` atomically, verifying the digest before the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = temp_file_beside(target, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        verify_file(tmp, remote)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _candidate_dirs(root: Path, dataset: IdxDataset) -> list[Path]:
    # Accept both <root>/<name>/file (our layout) and <root>/file (a folder holding the files).
    return [root / dataset.name, root]


def find_or_download(dataset: IdxDataset, root: Path, download: bool = True) -> dict[str, Path]:
    """Return local paths of the data set's files, downloading (and verifying) the missing ones."""
    if root.exists() and not root.is_dir():
        raise DataError(f"data root {root} is not a folder (set data.root or ${DATA_ROOT_ENV})")
    paths: dict[str, Path] = {}
    for remote in dataset.files:
        candidates = [d / remote.name for d in _candidate_dirs(root, dataset)]
        found = next((path for path in candidates if path.is_file()), None)
        if found is not None:
            paths[remote.name] = found  # verified when loaded
            continue
        if not download:
            raise DataError(
                f"{remote.name} not found under {root} (looked in "
                f"{', '.join(str(d) for d in _candidate_dirs(root, dataset))}) and data.download "
                f"is false; point data.root or ${DATA_ROOT_ENV} at a folder holding the files"
            )
        paths[remote.name] = _download_from_mirrors(dataset, remote, root / dataset.name)
    return paths


def _download_from_mirrors(dataset: IdxDataset, remote: RemoteFile, folder: Path) -> Path:
    errors = []
    for mirror in dataset.mirrors:
        url = mirror + remote.name
        log.info("downloading %s", url)
        try:
            return download_file(url, folder / remote.name, remote)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {exc}")
        except DataError as exc:
            errors.append(str(exc))
    raise DataError(
        f"could not download {remote.name} from any mirror of {dataset.name}:\n  "
        + "\n  ".join(errors)
        + f"\nPlace the file under {folder} or set data.root / ${DATA_ROOT_ENV}."
    )


def load_idx_dataset(
    dataset: IdxDataset, root: Path, download: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) as uint8 images (n, rows, cols) and int64 labels."""
    if not download and not root.is_dir():
        raise DataError(f"data root {root} does not exist (set data.root or ${DATA_ROOT_ENV})")
    paths = find_or_download(dataset, root, download)
    arrays = {}
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        remote = getattr(dataset, key)
        path = paths[remote.name]
        arrays[key] = parse_idx(verify_file(path, remote), source=str(path))
    for split in ("train", "test"):
        check_images_and_labels(
            arrays[f"{split}_images"], arrays[f"{split}_labels"], dataset.num_classes, split
        )
    return (
        arrays["train_images"],
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"],
        arrays["test_labels"].astype(np.int64),
    )


def get_idx_dataset(name: str) -> IdxDataset:
    if name not in IDX_DATASETS:
        raise ConfigError(f"data.name={name!r} is not known; allowed: {sorted(IDX_DATASETS)}")
    return IDX_DATASETS[name]
