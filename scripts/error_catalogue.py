"""Trigger every bad input ssvae guards against and write the message each gets to docs/errors.md.

    .venv/bin/python scripts/error_catalogue.py [--out docs/errors.md]

Command-line cases run ``python -m ssvae.train`` for real and keep the last line of its error
output; data-file cases call the reader on damaged files made in a temporary folder.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ssvae.data.idx import check_images_and_labels, read_idx
from ssvae.data.sources import MNIST, load_idx_dataset
from ssvae.errors import SsvaeError

REPO = Path(__file__).resolve().parent.parent

CLI_CASES = [
    ("unknown data set", ["data=cifar"]),
    ("unknown model", ["model=m9"]),
    ("unknown launcher", ["-m", "hydra/launcher=kubernetes", "seed=0"]),
    ("label count 0", ["data.num_labels=0"]),
    ("label count above the training pool", ["data.num_labels=5000"]),
    ("label count not balanceable", ["data.num_labels=55"]),
    ("a class with too few images", ["data.num_labels=1250"]),
    ("both count and fraction", ["data.label_fraction=0.1"]),
    ("own data without a path", ["data=csv"]),
    ("own data file missing", ["data=npz", "data.path=/no/such.npz"]),
    ("unknown label selection", ["data.label_selection=random"]),
    ("unknown likelihood", ["data.likelihood=poisson"]),
    ("fraction outside (0, 1]", ["data.num_labels=null", "data.label_fraction=1.5"]),
    ("batch size 0", ["data.labeled_batch_size=0"]),
    ("unknown weighting", ["model.weighting=sometimes"]),
    ("unknown activation", ["model.activation=swish"]),
    ("data root missing", ["data=mnist", "data.root=/no/such/folder", "data.download=false"]),
    ("data root is a file", ["data=mnist", "data.root=/etc/hostname"]),
    ("unwritable output folder", ["hydra.run.dir=/etc/hostname/run"]),
    ("checkpoint that is not one", ["ckpt_path=/etc/hostname"]),
    ("checkpoint for a scikit-learn model", ["model=svm", "ckpt_path=last.ckpt"]),
    ("negative learning rate", ["model.optimizer.lr=-1"]),
    ("unknown precision", ["trainer.precision=fp8"]),
    ("VAE with no epochs", ["model=m1m2", "vae.max_epochs=0"]),
    ("cosine schedule with no length", ["model/scheduler=cosine", "trainer.max_epochs=-1"]),
    (
        "weight average with running batch-norm statistics",
        ["model=vat", "model.bn_stats=running", "weight_averaging=ema"],
    ),
]


def run_cli(args: list[str], cwd: Path) -> str:
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    result = subprocess.run(
        [sys.executable, "-m", "ssvae.train", *flags, "trainer.max_epochs=1", *overrides],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode == 0 or not lines:
        return f"(no error: exit {result.returncode})"
    # Hydra's own errors end with a hint line; keep its message and the options it lists.
    if lines[-1].startswith("Set the environment variable HYDRA_FULL_ERROR"):
        kept = []
        for line in lines[:-1]:
            if line.startswith("Config search path"):
                break
            kept.append(line.strip())
        return " ".join(kept)
    return lines[-1]


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def file_cases(folder: Path) -> list[tuple[str, str]]:
    good = idx_bytes(np.zeros((3, 28, 28)))
    damaged = {
        "IDX file truncated": good[:-10],
        "wrong magic number": b"\x01" + good[1:],
        "wrong number of dimensions": good[:3] + b"\x02" + good[4:],
        "unknown type code": good[:2] + b"\x42" + good[3:],
    }
    out = []
    for name, data in damaged.items():
        path = folder / "images-idx3-ubyte.gz"
        path.write_bytes(gzip.compress(data))
        out.append((name, _message(lambda p=path: read_idx(p))))
    packed = gzip.compress(good)
    (folder / "cut.gz").write_bytes(packed[: len(packed) // 2])
    out.append(("gzip stream cut short", _message(lambda: read_idx(folder / "cut.gz"))))
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    out.append(
        (
            "images and labels of different lengths",
            _message(lambda: check_images_and_labels(images, np.arange(2), 10, "train")),
        )
    )
    out.append(
        (
            "labels outside 0-9",
            _message(lambda: check_images_and_labels(images, np.array([0, 3, 12]), 10, "train")),
        )
    )
    out += own_data_cases(folder / "own")
    fake_root = folder / "root" / "mnist"
    fake_root.mkdir(parents=True)
    for remote in MNIST.files:
        (fake_root / remote.name).write_bytes(gzip.compress(good))
    out.append(
        (
            "MNIST file with the wrong digest (also a failed download)",
            _message(lambda: load_idx_dataset(MNIST, folder / "root", download=False)),
        )
    )
    return out


def own_data_cases(folder: Path) -> list[tuple[str, str]]:
    """Users' files (npz, CSV, image folders), each damaged in one way."""
    from PIL import Image

    from ssvae.data.image_folder import ImageFolderData
    from ssvae.data.npz import NpzData
    from ssvae.data.tabular import CsvData

    folder.mkdir(parents=True)
    x = np.zeros((6, 3), dtype=np.float32)

    names = iter(range(100))

    def npz(**arrays):
        path = folder / f"data{next(names)}.npz"  # each case its own file: they are read later
        np.savez(path, **arrays)
        return lambda: NpzData(path=str(path)).setup()

    def csv(text: str, **settings):
        path = folder / f"table{next(names)}.csv"
        path.write_text(text)
        return lambda: CsvData(path=str(path), **settings).setup()

    images = folder / "images"
    for cls, size in (("cat", (6, 6)), ("dog", (6, 6)), ("dog", (9, 9))):
        (images / cls).mkdir(parents=True, exist_ok=True)
        Image.new("L", size).save(images / cls / f"{cls}{size[0]}.png")
    broken = folder / "broken"
    for cls in ("cat", "dog"):
        (broken / cls).mkdir(parents=True)
        Image.new("L", (4, 4)).save(broken / cls / "ok.png")
    (broken / "dog" / "photo.jpg").write_bytes(b"not an image")
    cases = [
        ("npz without y", npz(x=x)),
        ("npz x and y of different lengths", npz(x=x, y=np.zeros(5, int))),
        ("npz with non-integer labels", npz(x=x, y=np.array([0, 1, 0.5, 1, 0, 1]))),
        ("fewer than two classes", npz(x=x, y=np.zeros(6, int))),
        ("a class with no labeled example", npz(x=x, y=np.array([0, 2] * 3))),
        ("NaN in the features", npz(x=np.full((6, 3), np.nan), y=np.array([0, 1] * 3))),
        ("CSV without the label column", csv("a,b\n1,x\n", label_column="kind")),
        ("CSV with a non-numeric feature", csv("a,b,label\n1,2,x\n2,oops,y\n")),
        ("CSV with an empty feature cell", csv("a,b,label\n1,2,x\n2,,y\n")),
        ("CSV with an infinite feature value", csv("a,b,label\n1,inf,x\n2,3,y\n")),
        ("CSV whose header repeats a name", csv("a,a,label\n1,2,x\n2,3,y\n")),
        ("images of different sizes", lambda: ImageFolderData(path=str(images)).setup()),
        ("an undecodable image", lambda: ImageFolderData(path=str(broken)).setup()),
    ]
    return [(name, _message(call).replace(str(folder), "…")) for name, call in cases]


def _message(call) -> str:
    try:
        call()
    except SsvaeError as exc:
        return f"{type(exc).__name__}: {exc}".replace(str(REPO), ".")
    return "(no error)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "errors.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cli in CLI_CASES:
            message = run_cli(cli, Path(tmp))
            rows.append((name, "`ssvae-train " + " ".join(cli) + "`", message))
            print(f"{name}: {message}", flush=True)
        for name, message in file_cases(Path(tmp)):
            rows.append((name, "reading the file", message.replace(tmp, "<tmp>")))
            print(f"{name}: {message}", flush=True)
    lines = [
        "# Bad inputs and the message each gets",
        "",
        "Written by `.venv/bin/python scripts/error_catalogue.py`, which triggers each case for "
        "real. Every case is also a test (tests/test_train.py, test_labels.py, test_idx.py, "
        "test_sources.py, test_resume.py, test_launchers.py, test_own_data.py). All fail before "
        "training starts.",
        "",
        "| bad input | how | message |",
        "| --- | --- | --- |",
    ]
    for name, how, message in rows:
        lines.append(f"| {name} | {how} | {message.replace('|', '/')} |")
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
