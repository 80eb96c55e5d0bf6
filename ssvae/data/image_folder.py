"""``data=image_folder``: ``DIR/<class name>/*`` labeled images and ``DIR/unlabeled/*`` (or
``data.unlabeled_path``) the rest, decoded with Pillow.

Images become grey (``channels: 1``) or RGB (``channels: 3``) pixels in [0, 1], resized to
``data.image_size`` ([height, width]) when set; without it every image must have the same size.
Class names are the folder names, in sorted order. Optional ``data.val_path`` / ``data.test_path``
are folders of the same class layout; otherwise validation and test images are held out of the
labeled ones. Every image is held in memory (60,000 28x28 grey images: 188 MB).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.data.datasets import UNLABELED, Split, SplitData
from ssvae.data.files import existing_path
from ssvae.errors import ConfigError, DataError

log = logging.getLogger(__name__)

UNLABELED_FOLDER = "unlabeled"


def image_files(folder: Path) -> list[Path]:
    """The visible files in ``folder``, sorted (hidden files such as .DS_Store are skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


class ImageFolderData(SemiSupervisedDataModule):
    def __init__(
        self,
        path: str | None = None,
        unlabeled_path: str | None = None,
        image_size: list[int] | None = None,
        channels: int = 1,
        val_path: str | None = None,
        test_path: str | None = None,
        name: str | None = None,
        **settings,
    ) -> None:
        super().__init__(name=name or (Path(path).name if path else "images"), **settings)
        if channels not in (1, 3):
            raise ConfigError(f"data.channels={channels} is not allowed; use 1 (grey) or 3 (RGB)")
        if image_size is not None and (
            len(image_size) != 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in image_size)
        ):
            raise ConfigError(
                f"data.image_size={image_size} must be [height, width] in pixels, or null"
            )
        self.path = path
        self.unlabeled_path = unlabeled_path
        self.image_size = tuple(image_size) if image_size is not None else None
        self.channels = channels
        self.val_path = val_path
        self.test_path = test_path
        self._first_size: tuple[Path, tuple[int, int]] | None = None

    @property
    def source(self) -> str:
        return str(self.path)

    def cache_identity(self) -> dict[str, Any]:
        folders = [existing_path(self.path, "path", folder=True)]
        if self.unlabeled_path:
            folders.append(existing_path(self.unlabeled_path, "unlabeled_path", folder=True))
        files = [p for f in folders for p in f.rglob("*") if p.is_file()]
        return {
            "folders": [str(f) for f in folders],
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "newest_mtime_ns": max((p.stat().st_mtime_ns for p in files), default=0),
            "image_size": self.image_size,
            "channels": self.channels,
        }

    def load(self) -> SplitData:
        root = existing_path(self.path, "path", folder=True)
        class_names = sorted(
            d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        class_names = [c for c in class_names if c != UNLABELED_FOLDER]
        if self.unlabeled_path is not None:
            unlabeled_dir = existing_path(self.unlabeled_path, "unlabeled_path", folder=True)
        else:
            unlabeled_dir = root / UNLABELED_FOLDER
        xs, ys = [], []
        for index, name in enumerate(class_names):
            files = image_files(root / name)
            xs += [self._decode(f) for f in files]
            ys += [index] * len(files)
        if unlabeled_dir.is_dir():
            files = image_files(unlabeled_dir)
            xs += [self._decode(f) for f in files]
            ys += [UNLABELED] * len(files)
        if not xs:
            raise DataError(f"{root}: no images (expected {root}/<class name>/* files)")
        log.info("%s: decoded %d images of %d classes", root, len(xs), len(class_names))
        train = Split(np.stack(xs), np.asarray(ys, dtype=np.int64))
        val = self._labeled_folder(self.val_path, "val_path", class_names)
        test = self._labeled_folder(self.test_path, "test_path", class_names)
        height, width = self._first_size[1] if self.image_size is None else self.image_size
        return SplitData(
            train,
            val,
            test,
            class_names,
            shape=(self.channels, height, width),
            origin={"path": str(root), "images": len(xs)},
        )

    def _labeled_folder(self, path: str | None, field: str, class_names: list[str]) -> Split | None:
        if path is None:
            return None
        folder = existing_path(path, field, folder=True)
        xs, ys = [], []
        for sub in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
            if sub.name not in class_names:
                raise DataError(
                    f"{sub}: class {sub.name!r} is not one of the training classes {class_names}"
                )
            files = image_files(sub)
            xs += [self._decode(f) for f in files]
            ys += [class_names.index(sub.name)] * len(files)
        if not xs:
            raise DataError(f"{folder}: no images (data.{field} needs <class name>/* files)")
        return Split(np.stack(xs), np.asarray(ys, dtype=np.int64))

    def _decode(self, path: Path) -> np.ndarray:
        """One image as flat float32 pixels in [0, 1], channels first."""
        try:
            with Image.open(path) as image:
                image = image.convert("L" if self.channels == 1 else "RGB")
                if self.image_size is not None:
                    height, width = self.image_size
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot decode it as an image ({exc})") from None
        size = pixels.shape[:2]
        if self._first_size is None:
            self._first_size = (path, size)
        elif self.image_size is None and size != self._first_size[1]:
            first, first_size = self._first_size
            raise DataError(
                f"{path}: {size[0]}x{size[1]} pixels, but {first} is "
                f"{first_size[0]}x{first_size[1]}; set data.image_size=[height,width] to resize"
            )
        if pixels.ndim == 3:
            pixels = pixels.transpose(2, 0, 1)  # (C, H, W)
        return pixels.reshape(-1)
