import os
import stat

import pytest

from ssvae.io import write_json_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_leaves_the_complete_file_and_no_temporary(tmp_path):
    write_json_atomic(tmp_path / "result.json", {"test_err": 0.1})
    write_json_atomic(tmp_path / "result.json", {"test_err": 0.2})
    assert (tmp_path / "result.json").read_text() == '{\n  "test_err": 0.2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_write_gives_a_new_file_the_usual_permissions(tmp_path, umask_022):
    # Temporary files are owner-only; results renamed from them must stay readable by others.
    path = write_json_atomic(tmp_path / "result.json", {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
