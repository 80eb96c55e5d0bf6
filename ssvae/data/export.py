"""Write a data set's splits in the formats users bring (npz, an image folder), so the own-data
path can be checked against the built-in one on the same images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ssvae.data.datasets import SplitData
from ssvae.io import temp_file_beside


def write_npz(splits: SplitData, path: Path) -> Path:
    """x/y (training rows), x_val/y_val, x_test/y_test and class_names; atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path, suffix=".npz")
    os.close(fd)
    try:
        np.savez(
            tmp,
            x=splits.train.x.reshape(len(splits.train.x), *splits.shape),
            y=splits.train.y,
            x_val=splits.val.x.reshape(len(splits.val.x), *splits.shape),
            y_val=splits.val.y,
            x_test=splits.test.x.reshape(len(splits.test.x), *splits.shape),
            y_test=splits.test.y,
            class_names=np.array(splits.class_names),
        )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_image_folder(splits: SplitData, folder: Path) -> dict[str, Path]:
    """PNG files as ``folder/{train,val,test}/<class name>/<row>.png`` (grey, 8 bits per pixel:
    exact for data stored as bytes, such as MNIST)."""
    folder = Path(folder)
    height, width = splits.shape[-2:]
    out = {}
    for name, split in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        for row, (x, y) in enumerate(zip(split.x, split.y, strict=True)):
            target = folder / name / splits.class_names[y] / f"{row:06d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.rint(x.reshape(height, width) * 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(target)
        out[name] = folder / name
    return out
