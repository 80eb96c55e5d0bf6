import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssvae.data.idx import check_images_and_labels, parse_idx, read_idx
from ssvae.errors import DataError
from tests.conftest import idx_bytes, write_idx_gz


def test_reads_plain_and_gzipped_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "plain").write_bytes(idx_bytes(images))
    write_idx_gz(tmp_path / "packed.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.gz"), images)


def test_reads_big_endian_int32():
    values = np.array([1, -2, 70000], dtype=">i4")
    header = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big")
    np.testing.assert_array_equal(parse_idx(header + values.tobytes()), [1, -2, 70000])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x42" + b[3:], "type code"),
        (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
        (lambda b: b[:3] + b"\x02" + b[4:], "trailing bytes"),  # wrong number of dimensions
        (lambda b: b"", "too short"),
    ],
)
def test_damaged_idx_is_rejected(mutate, message):
    good = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))
    with pytest.raises(DataError, match=message):
        parse_idx(mutate(good))


def test_corrupt_and_truncated_gzip_are_rejected(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "bad.gz").write_bytes(packed[:10] + b"\xff" * 20 + packed[30:])
    for name in ("cut.gz", "bad.gz"):
        with pytest.raises(DataError):
            read_idx(tmp_path / name)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "absent.gz")


def test_images_and_labels_must_match():
    images = np.zeros((3, 2, 2), dtype=np.uint8)
    with pytest.raises(DataError, match="3 images but 2 labels"):
        check_images_and_labels(images, np.array([0, 1]), 10, "train")
    with pytest.raises(DataError, match="labels outside 0-9"):
        check_images_and_labels(images, np.array([0, 1, 10]), 10, "train")
    with pytest.raises(DataError, match="3-D"):
        check_images_and_labels(images.reshape(3, 4), np.array([0, 1, 2]), 10, "train")
    check_images_and_labels(images, np.array([0, 9, 3]), 10, "train")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_give_an_array_or_a_data_error(data):
    try:
        array = parse_idx(data)
    except DataError:
        return
    assert isinstance(array, np.ndarray)
    assert array.ndim == data[3]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4, max_size=48))
def test_random_payload_after_a_valid_prefix(payload):
    data = bytes([0, 0, 0x08, 2]) + payload
    try:
        array = parse_idx(data)
    except DataError:
        return
    assert array.dtype == np.uint8 and array.ndim == 2
