"""Export the built-in MNIST splits as an .npz file and/or a PNG image folder, to run the own-data
path on the same images as ``data=mnist``:

    python scripts/export_mnist.py --root ../shared/data --npz outputs/export/mnist.npz \
        --image-folder outputs/export/mnist_png
    ssvae-train data=npz data.path=outputs/export/mnist.npz data.num_labels=100 ...
    ssvae-train data=image_folder data.path=outputs/export/mnist_png/train \
        data.val_path=outputs/export/mnist_png/val data.test_path=outputs/export/mnist_png/test ...

The npz keeps the built-in row order, so a run on it equals ``data=mnist`` exactly; the image
folder orders rows by class and file name, so its labeled subset for a seed differs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ssvae.data.datasets import load_idx_splits
from ssvae.data.export import write_image_folder, write_npz
from ssvae.data.sources import resolve_data_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="data root holding mnist/ (data.root)")
    parser.add_argument("--name", default="mnist", choices=["mnist", "fashion_mnist"])
    parser.add_argument("--npz", type=Path)
    parser.add_argument("--image-folder", type=Path)
    args = parser.parse_args()
    splits = load_idx_splits(args.name, resolve_data_root(args.root), download=False)
    if args.npz:
        print("wrote", write_npz(splits, args.npz))
    if args.image_folder:
        print("wrote", *write_image_folder(splits, args.image_folder).values())


if __name__ == "__main__":
    main()
