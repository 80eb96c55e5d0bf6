import functools
import hashlib
import http.server
import os
import stat
import threading

import numpy as np
import pytest

from ssvae.data.datasets import load_idx_splits
from ssvae.data.sources import (
    DATA_ROOT_ENV,
    IdxDataset,
    RemoteFile,
    download_file,
    find_or_download,
    load_idx_dataset,
    resolve_data_root,
)
from ssvae.errors import DataError
from tests.conftest import SHARED_DATA, needs_mnist, write_idx_gz


@pytest.fixture
def http_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _tiny_dataset(folder, mirrors, n_train=20, n_test=10, corrupt=None):
    """Write a tiny IDX data set into ``folder`` and describe it (digests of the raw bytes)."""
    rng = np.random.default_rng(0)
    arrays = {
        "tr-img.gz": rng.integers(0, 256, (n_train, 4, 4)),
        "tr-lbl.gz": np.arange(n_train) % 10,
        "te-img.gz": rng.integers(0, 256, (n_test, 4, 4)),
        "te-lbl.gz": np.arange(n_test) % 10,
    }
    files = []
    for name, array in arrays.items():
        raw = write_idx_gz(folder / name, array)
        digest = hashlib.md5(raw).hexdigest()
        files.append(RemoteFile(name, "0" * 32 if name == corrupt else digest))
    return IdxDataset("tiny", tuple(mirrors), *files)


def test_download_verifies_and_renames(http_folder, tmp_path):
    served, url = http_folder
    dataset = _tiny_dataset(served, [url])
    root = tmp_path / "root"
    paths = find_or_download(dataset, root)
    assert sorted(p.name for p in paths.values()) == sorted(f.name for f in dataset.files)
    assert all(p.parent == root / "tiny" for p in paths.values())
    train_x, train_y, test_x, test_y = load_idx_dataset(dataset, root)
    assert train_x.shape == (20, 4, 4) and test_y.shape == (10,)
    assert sorted(p.name for p in (root / "tiny").iterdir()) == sorted(paths)  # no temp files
    # Readable beyond the owner as the umask allows (a shared data root), not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in paths.values())


def test_digest_mismatch_raises_and_leaves_nothing(http_folder, tmp_path):
    served, url = http_folder
    dataset = _tiny_dataset(served, [url], corrupt="tr-lbl.gz")
    target = tmp_path / "root" / "tiny" / "tr-lbl.gz"
    with pytest.raises(DataError, match="does not match"):
        download_file(url + "tr-lbl.gz", target, dataset.train_labels)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_all_mirrors_failing_names_each_and_keeps_nothing(http_folder, tmp_path):
    served, url = http_folder
    dataset = _tiny_dataset(served, [url + "missing/", url], corrupt="tr-img.gz")
    root = tmp_path / "root"
    with pytest.raises(DataError, match="could not download tr-img.gz") as info:
        find_or_download(dataset, root)
    assert "404" in str(info.value) and "does not match" in str(info.value)
    assert not any(p.name.startswith(".") or p.name == "tr-img.gz" for p in root.rglob("*"))


def test_falls_back_to_the_next_mirror(http_folder, tmp_path):
    served, url = http_folder
    dataset = _tiny_dataset(served, [url + "missing/", url])
    paths = find_or_download(dataset, tmp_path / "root")
    assert len(paths) == 4


def test_corrupt_local_file_is_detected(http_folder, tmp_path):
    served, url = http_folder
    dataset = _tiny_dataset(served, [url])
    root = tmp_path / "root"
    find_or_download(dataset, root)
    victim = root / "tiny" / "te-img.gz"
    write_idx_gz(victim, np.zeros((10, 4, 4)))  # valid IDX, wrong content
    with pytest.raises(DataError, match="te-img.gz: md5"):
        load_idx_dataset(dataset, root)


def test_missing_files_without_download(tmp_path):
    dataset = _tiny_dataset(tmp_path, ["http://127.0.0.1:9/"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="not found under"):
        load_idx_dataset(dataset, empty, download=False)
    with pytest.raises(DataError, match="does not exist"):
        load_idx_dataset(dataset, tmp_path / "nowhere", download=False)


def test_data_root_from_argument_env_or_default(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    assert resolve_data_root("/elsewhere") == resolve_data_root("/elsewhere")
    monkeypatch.delenv(DATA_ROOT_ENV)
    assert resolve_data_root(None).name == "data"


@needs_mnist
@pytest.mark.parametrize("root", [SHARED_DATA, SHARED_DATA / "mnist"])
def test_mnist_splits_from_the_shared_folder(root):
    splits = load_idx_splits("mnist", root, download=False)
    assert splits.train.x.shape == (50_000, 784)
    assert splits.val.x.shape == (10_000, 784) and splits.test.x.shape == (10_000, 784)
    assert splits.train.x.min() >= 0.0 and splits.train.x.max() <= 1.0
    assert set(np.unique(splits.test.y)) == set(range(10))
