"""Users' own data: npz arrays, CSV tables and image folders through the same data module."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ssvae.data.builtin import BuiltinData
from ssvae.data.datasets import UNLABELED, load_digits_splits
from ssvae.data.image_folder import ImageFolderData
from ssvae.data.labels import select_labeled, stratified_quota
from ssvae.data.npz import NpzData
from ssvae.data.tabular import CsvData
from ssvae.errors import ConfigError, DataError
from ssvae.train import train
from tests.conftest import SHARED_DATA, needs_mnist, run_train


def _setup(dm):
    dm.setup("fit")
    return dm


def _table(tmp_path, rows=60, name="t.csv", labels=None, seed=0):
    """A two-feature table: 'cat'/'dog' labels, the first 40 rows labeled, the rest blank."""
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = ["cat", "dog"] * 20 + [None] * (rows - 40)
    frame = pd.DataFrame(
        {
            "height": rng.normal(10, 3, rows),
            "weight": rng.normal(-5, 2, rows),
            "species": labels,
        }
    )
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path, frame


def test_csv_maps_string_labels_and_marks_blank_cells_unlabeled(tmp_path):
    path, frame = _table(tmp_path)
    dm = _setup(
        CsvData(path=str(path), label_column="species", val_fraction=0.2, test_fraction=0.2)
    )
    assert dm.class_names == ["cat", "dog"] and dm.likelihood == "gaussian"
    assert dm.splits.feature_names == ["height", "weight"]
    # 40 labeled rows: 8 test, 8 validation, 24 left to label; the 20 blank rows are unlabeled.
    assert len(dm.splits.test.y) == 8 and len(dm.splits.val.y) == 8
    assert dm.num_labeled == 24 and dm.num_unlabeled == 20
    assert np.bincount(dm._y_labeled.numpy()).tolist() == [12, 12]
    assert (dm.splits.train.y == UNLABELED).sum() == 20
    record = dm.record()
    assert record["class_names"] == ["cat", "dog"]
    held_out = record["split"]["test"] + record["split"]["val"]
    assert len(set(held_out)) == 16 and max(held_out) < 40  # labeled rows only


def test_numeric_labels_sort_as_numbers(tmp_path):
    labels = ["10", "2", "1"] * 10 + [None] * 6
    path, _ = _table(tmp_path, rows=36, labels=labels)
    dm = _setup(CsvData(path=str(path), label_column="species", label_selection="stratified"))
    assert dm.class_names == ["1", "2", "10"]


def test_held_out_split_is_disjoint_deterministic_and_independent_of_the_run_seed(tmp_path):
    path, _ = _table(tmp_path)
    a = _setup(CsvData(path=str(path), label_column="species", seed=0, num_labels=10))
    b = _setup(CsvData(path=str(path), label_column="species", seed=1, num_labels=10))
    assert a.record()["split"] == b.record()["split"]  # same validation and test rows
    split = a.record()["split"]
    assert not set(split["val"]) & set(split["test"])
    np.testing.assert_array_equal(a.splits.test.x, b.splits.test.x)
    assert not np.array_equal(a.labeled_idx, b.labeled_idx)  # the labeled subset follows seed
    c = _setup(CsvData(path=str(path), label_column="species", split_seed=5, num_labels=10))
    assert c.record()["split"]["test"] != split["test"]


def test_standardisation_uses_the_training_rows_only(tmp_path):
    path, frame = _table(tmp_path)
    dm = _setup(CsvData(path=str(path), label_column="species"))
    test_rows = dm.record()["split"]["test"]
    train_rows = np.setdiff1d(np.arange(60), test_rows + dm.record()["split"]["val"])
    raw = frame[["height", "weight"]].to_numpy(np.float32)
    mean, std = raw[train_rows].mean(0), raw[train_rows].std(0)
    np.testing.assert_allclose(dm.record()["standardization"]["mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(dm.splits.test.x, (raw[test_rows] - mean) / std, rtol=1e-4)
    np.testing.assert_allclose(dm.splits.train.x.mean(0), 0, atol=1e-5)


def test_npz_marks_unlabeled_rows_and_uses_given_splits(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 4, 4), dtype=np.uint8)
    y = np.repeat([0, 1], 25)
    y[::5] = 7  # the file's own "unlabeled" marker
    path = tmp_path / "images.npz"
    np.savez(
        path,
        x=x,
        y=y,
        x_val=x[:6],
        y_val=np.array([0, 1] * 3),
        x_test=x[:4],
        y_test=np.array([1, 0] * 2),
        class_names=np.array(["no", "yes"]),
    )
    dm = _setup(NpzData(path=str(path), unlabeled_label=7, num_labels=10))
    assert dm.name == "images" and dm.class_names == ["no", "yes"]
    assert dm.likelihood == "bernoulli" and dm.splits.shape == (4, 4)
    assert dm.x_dim == 16 and float(dm._x_labeled.max()) <= 1.0  # uint8 scaled to [0, 1]
    assert (dm.splits.train.y == UNLABELED).sum() == 10
    assert dm.num_unlabeled == 50 - 10  # the 10 unmarked + 30 labeled rows not chosen
    assert dm.record()["split"] == {"val": "given", "test": "given"}


def test_npz_of_digits_reads_exactly_like_the_built_in_digits(tmp_path):
    splits = load_digits_splits()
    path = tmp_path / "digits.npz"
    np.savez(
        path,
        x=splits.train.x,
        y=splits.train.y,
        x_val=splits.val.x,
        y_val=splits.val.y,
        x_test=splits.test.x,
        y_test=splits.test.y,
    )
    own = _setup(NpzData(path=str(path), num_labels=50, seed=3))
    builtin = _setup(BuiltinData(name="digits", num_labels=50, seed=3))
    np.testing.assert_array_equal(own._x_labeled.numpy(), builtin._x_labeled.numpy())
    np.testing.assert_array_equal(own._x_unlabeled.numpy(), builtin._x_unlabeled.numpy())
    assert own.model_facts() == builtin.model_facts()


def _png(path, size=(6, 5), value=128, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, color).save(path)


def _image_folder(root, per_class=6, unlabeled=4):
    for cls, value in (("circle", 40), ("square", 200)):
        for i in range(per_class):
            _png(root / cls / f"{i}.png", value=value + i)
    for i in range(unlabeled):
        _png(root / "unlabeled" / f"u{i}.png", value=100 + i)
    (root / "square" / ".DS_Store").write_bytes(b"\0")  # hidden files are skipped
    return root


def test_image_folder_reads_classes_from_folders_and_resizes(tmp_path):
    root = _image_folder(tmp_path / "imgs")
    dm = _setup(ImageFolderData(path=str(root), test_fraction=0.34, val_fraction=0.25))
    assert dm.class_names == ["circle", "square"]
    assert (dm.splits.train.y == UNLABELED).sum() == 4
    assert dm.x_dim == 30 and dm.splits.shape == (1, 5, 6)
    assert dm.likelihood == "bernoulli"
    np.testing.assert_allclose(dm.splits.test.x[dm.splits.test.y == 1].min(), 200 / 255, atol=0.03)
    rgb = _setup(ImageFolderData(path=str(root), image_size=[3, 4], channels=3))
    assert rgb.x_dim == 3 * 3 * 4 and rgb.splits.shape == (3, 3, 4)


def test_stratified_selection_follows_class_frequencies():
    assert stratified_quota([80, 15, 5], 20) == [16, 3, 1]
    assert stratified_quota([98, 1, 1], 5) == [3, 1, 1]  # at least one per class
    labels = np.array([0] * 80 + [1] * 15 + [2] * 5 + [UNLABELED] * 30)
    chosen = select_labeled(labels, 20, 3, seed=0, selection="stratified")
    assert np.bincount(labels[chosen]).tolist() == [16, 3, 1]
    with pytest.raises(ConfigError, match="data.label_selection=stratified"):
        select_labeled(labels, 30, 3, seed=0)  # 10 per class: class 2 has 5


def _bad_npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return NpzData(path=str(path))


X = np.zeros((6, 3), dtype=np.float32)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: NpzData(path=str(p / "none.npz")), r"none\.npz: no such file"),
        (lambda p: _write(p / "x.npz", b"garbage"), r"x\.npz: not a readable \.npz"),
        (lambda p: _bad_npz(p, x=X), r"bad\.npz: no array 'y'"),
        (lambda p: _bad_npz(p, x=X, y=np.zeros(5, int)), "x has 6 rows but y has 5"),
        (lambda p: _bad_npz(p, x=X, y=np.array([0, 1, 0.5, 1, 0, 1])), "row 2 is 0.5"),
        (lambda p: _bad_npz(p, x=X, y=np.zeros(6, int)), r"found 1 class \(\['0'\]\)"),
        (lambda p: _bad_npz(p, x=X, y=np.array([0, 2] * 3)), "class '1' has no labeled example"),
        (
            lambda p: _bad_npz(p, x=np.full((6, 3), np.nan), y=np.array([0, 1] * 3)),
            "train row 0 has a NaN",
        ),
    ],
)
def test_bad_npz_input_is_named_in_one_line(tmp_path, make, message):
    with pytest.raises((DataError, ConfigError), match=message):
        _setup(make(tmp_path))


def _write(path, data):
    path.write_bytes(data)
    return NpzData(path=str(path))


def _csv(tmp_path, text, **kwargs):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return CsvData(path=str(path), **kwargs)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,label\n1,x\n2,y\n", {"label_column": "kind"}, "no label column 'kind'.*'a', 'label'"),
        ("a,b,label\n1,2,x\n2,oops,y\n", {}, "column 'b' has the value 'oops' on line 3"),
        ("a,b,label\n1,inf,x\n2,3,y\n", {}, "column 'b' has the value inf on line 2"),
        ("a,a,label\n1,2,x\n2,3,y\n", {}, "names column 'a' twice \\(columns 1 and 2\\)"),
        ("a,b,label\n1,2,x\n2,,y\n", {}, "column 'b' has an empty cell on line 3"),
        ("a,label\n1,x\n2,x\n", {}, r"found 1 class \(\['x'\]\)"),
        ("a,label\n1,x\n2,y\n", {"feature_columns": ["c"]}, "no column 'c'"),
    ],
)
def test_bad_csv_input_is_named_in_one_line(tmp_path, text, kwargs, message):
    with pytest.raises(DataError, match=message):
        _setup(_csv(tmp_path, text, **kwargs))


def test_bad_image_folders_are_named(tmp_path):
    root = _image_folder(tmp_path / "imgs")
    _png(root / "circle" / "big.png", size=(9, 9))
    with pytest.raises(DataError, match=r"big\.png: 9x9 pixels, but .* is 5x6.*data.image_size"):
        _setup(ImageFolderData(path=str(root)))
    (root / "circle" / "big.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"big\.png: cannot decode it as an image"):
        _setup(ImageFolderData(path=str(root)))
    empty = _image_folder(tmp_path / "other")
    (empty / "triangle").mkdir()
    with pytest.raises(DataError, match="class 'triangle' has no labeled example"):
        _setup(ImageFolderData(path=str(empty)))
    with pytest.raises(ConfigError, match=r"data.channels=2"):
        ImageFolderData(path=str(root), channels=2)


def test_missing_path_fails_before_training(compose_cfg):
    with pytest.raises(ConfigError, match="data.path is not set"):
        train(compose_cfg("data=csv"))


def _cancer_csv(tmp_path: Path, named_classes: bool) -> Path:
    """scikit-learn's breast-cancer table as a CSV: 200 labeled rows, 369 unlabeled, the label
    column "diagnosis" as names (benign / malignant) or as the data set's 0 / 1."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "diagnosis"})
    if named_classes:
        frame["diagnosis"] = np.where(frame["diagnosis"] == 1, "benign", "malignant")
    frame.loc[frame.index[200:], "diagnosis"] = None
    path = tmp_path / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


def test_m2_trains_on_a_table_with_gaussian_likelihood_and_saves_the_classes(tmp_path, compose_cfg):
    path = _cancer_csv(tmp_path, named_classes=True)
    cfg = compose_cfg(
        "data=csv",
        f"data.path={path}",
        "data.label_column=diagnosis",
        "data.num_labels=20",
        "model.hidden_dims=[32]",
        "model.z_dim=4",
        "model.prior_y=labeled",
        "trainer.max_epochs=5",
    )
    record = train(cfg)
    assert record["status"] == "ok" and record["test_err"] < 0.25  # chance: 0.37 or worse
    assert record["data"] == {"likelihood": "gaussian", "class_names": ["benign", "malignant"]}
    saved = json.loads((tmp_path / "run" / "data.json").read_text())
    assert saved["class_names"] == ["benign", "malignant"] and len(saved["feature_names"]) == 30


def test_two_job_multirun_on_a_csv_writes_the_table(tmp_path):
    path, _ = _table(tmp_path, rows=120, labels=["a", "b"] * 40 + [None] * 40)
    sweep = tmp_path / "sweep"
    result = run_train(
        tmp_path,
        "-m",
        "data=csv",
        f"data.path={path}",
        "data.label_column=species",
        "data.num_labels=10,20",
        "model.hidden_dims=[16]",
        "model.z_dim=2",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((sweep / "results.json").read_text())
    assert [(r["dataset"], r["num_labels"], r["runs"]) for r in rows] == [
        ("t", 10, 1),
        ("t", 20, 1),
    ]
    # The file's path names neither the job folders (its "/" would nest them) nor a variant.
    assert len(list(sweep.glob("*/result.json"))) == 2 and "data.path" not in rows[0]["variant"]


@needs_mnist
def test_an_mnist_slice_reads_the_same_from_npz_and_png_folders(tmp_path):
    from ssvae.data.datasets import Split, SplitData, load_idx_splits
    from ssvae.data.export import write_image_folder, write_npz

    full = load_idx_splits("mnist", SHARED_DATA, download=False)
    splits = SplitData(
        Split(full.train.x[:300], full.train.y[:300]),
        Split(full.val.x[:100], full.val.y[:100]),
        Split(full.test.x[:100], full.test.y[:100]),
        full.class_names,
        shape=full.shape,
    )
    write_npz(splits, tmp_path / "slice.npz")
    folders = write_image_folder(splits, tmp_path / "png")
    npz = _setup(NpzData(path=str(tmp_path / "slice.npz"), num_labels=50))
    png = _setup(
        ImageFolderData(
            path=str(folders["train"]),
            val_path=str(folders["val"]),
            test_path=str(folders["test"]),
            num_labels=50,
        )
    )
    np.testing.assert_array_equal(npz.splits.train.x, splits.train.x)  # same rows, same order
    assert npz.class_names == png.class_names == [str(i) for i in range(10)]
    # The folder orders rows by class: the same pixels, exactly, in another order.
    order = np.argsort(splits.train.y, kind="stable")
    np.testing.assert_array_equal(png.splits.train.x, splits.train.x[order])
    np.testing.assert_array_equal(png.splits.test.y, np.sort(splits.test.y))
    assert png.model_facts() == npz.model_facts()


def test_uncompressed_npz_features_are_memory_mapped_and_read_in_chunks(tmp_path):
    from ssvae.data.npz import as_float_rows, memory_mapped

    x = np.random.default_rng(0).integers(0, 256, (50, 3, 4), dtype=np.uint8)
    np.savez(tmp_path / "plain.npz", x=x, y=np.arange(50) % 2)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=np.arange(50) % 2)
    mapped = memory_mapped(tmp_path / "plain.npz", "x")
    assert isinstance(mapped, np.memmap) and mapped.shape == (50, 3, 4)
    np.testing.assert_array_equal(mapped, x)
    assert memory_mapped(tmp_path / "packed.npz", "x") is None  # compressed: read as usual
    np.testing.assert_allclose(as_float_rows(mapped, chunk=7), x.reshape(50, 12) / 255.0)
    plain = _setup(NpzData(path=str(tmp_path / "plain.npz")))
    packed = _setup(NpzData(path=str(tmp_path / "packed.npz")))
    np.testing.assert_array_equal(plain._x_labeled.numpy(), packed._x_labeled.numpy())


@pytest.mark.parametrize(
    "model",
    [
        ["model=vat", "model.hidden_dims=[32,32]", "model.epsilon=1.0", "trainer.max_epochs=10"],
        # The input layer's cost is about 10x MNIST's on unit-variance features: MNIST's 1000
        # swamps the labels there (27.5 % test error against 10 % with these weights, measured).
        [
            "model=ladder",
            "model.hidden_dims=[32]",
            "model.denoising_weights=[10,1,0.1]",
            "trainer.max_epochs=50",
        ],
        ["model=mean_teacher", "model.hidden_dims=[32,32]", "trainer.max_epochs=10"],
    ],
    ids=["vat", "ladder", "mean_teacher"],
)
def test_consistency_models_train_on_standardised_table_features(tmp_path, compose_cfg, model):
    path = _cancer_csv(tmp_path, named_classes=False)
    cfg = compose_cfg(
        "data=csv",
        f"data.path={path}",
        "data.label_column=diagnosis",
        "data.num_labels=20",
        *model,
    )
    record = train(cfg)
    assert record["data"]["likelihood"] == "gaussian"  # standardised: noise in feature stds
    assert record["status"] == "ok" and record["test_err"] < 0.25  # chance: 0.37 or worse
