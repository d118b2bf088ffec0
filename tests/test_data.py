"""IDX reader and data-set loading: sanity figures of the shared MNIST copy, folder handling, errors."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from resnet_sim.data import ENV_VAR, load_dataset, load_idx, load_sample

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared data folder ../shared/data absent")

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def write_idx(path, array, code=0x08, compress=False):
    """An IDX file written by hand from the format description (magic 0 0 code ndim, big-endian dims)."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_round_trip(tmp_path, compress):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    got = load_idx(write_idx(tmp_path / "a.idx", a, compress=compress))
    assert got.shape == (2, 3, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, a)


def test_load_idx_other_dtype(tmp_path):
    a = np.array([-1.5, 2.25, 1e10], dtype=np.float64)
    np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "f.idx", a, code=0x0E)), a)


def test_load_idx_errors(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match=r"bad\.idx.*magic"):
        load_idx(bad)
    bad.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="type code 0x07"):
        load_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x00")
    with pytest.raises(ValueError, match="need 13 bytes, file has 9"):
        load_idx(bad)


def fake_dataset(folder, n=5, sub="mnist"):
    d = Path(folder) / sub if sub else Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    images = (np.arange(n * 784) % 256).astype(np.uint8).reshape(n, 28, 28)
    labels = (np.arange(n) % 10).astype(np.uint8)
    write_idx(d / "t10k-images-idx3-ubyte.gz", images, compress=True)
    write_idx(d / "t10k-labels-idx1-ubyte", labels)
    return images, labels


@pytest.mark.parametrize("sub", ["mnist", None])
def test_folder_argument_and_layout(tmp_path, sub):
    images, labels = fake_dataset(tmp_path, sub=sub)
    x, y = load_dataset("mnist", "test", folder=tmp_path)
    assert x.shape == (5, 784) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x, images.reshape(5, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_environment_variable(tmp_path, monkeypatch):
    fake_dataset(tmp_path, n=3)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    x, y = load_dataset("mnist", "test")
    assert x.shape == (3, 784)
    other = tmp_path / "elsewhere"
    fake_dataset(other, n=4)
    assert load_dataset("mnist", "test", folder=other)[0].shape == (4, 784)  # argument wins


def test_no_folder_error_names_both(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ValueError, match=rf"folder=.*{ENV_VAR}"):
        load_dataset("mnist")


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset("mnist", folder=tmp_path / "nope")
    with pytest.raises(ValueError, match=r"fashion-mnist: none of .*t10k-images-idx3-ubyte\.gz"):
        load_dataset("fashion-mnist", folder=tmp_path)
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_dataset("cifar", folder=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("mnist", "val", folder=tmp_path)


def test_shipped_sample():
    x, y = load_sample()
    assert x.shape == (500, 784) and y.shape == (500,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert list(y[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first MNIST test labels
    x, y = load_sample("train")
    assert x.shape == (2000, 784) and list(y[:5]) == [5, 0, 4, 1, 9]  # and the first training labels
    assert (Path(__file__).resolve().parents[1] / "resnet_sim" / "data" / "mnist_sample.npz").stat().st_size < 500_000


@needs_shared
def test_shared_mnist_sanity_figures():
    x, y = load_dataset("mnist", "train", folder=SHARED)
    assert x.shape == (60000, 784)
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert abs(float(x.mean(dtype=np.float64)) - 0.1307) < 5e-5
    xt, yt = load_dataset("mnist", "test", folder=SHARED)
    assert xt.shape == (10000, 784) and yt.shape == (10000,)
    sample_x, sample_y = load_sample()
    np.testing.assert_array_equal(sample_x, xt[:500])
    np.testing.assert_array_equal(sample_y, yt[:500])
    sample_x, sample_y = load_sample("train")
    np.testing.assert_array_equal(sample_x, x[:2000])
    np.testing.assert_array_equal(sample_y, y[:2000])


@needs_shared
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_shared_checksums(name):
    sums = (SHARED / name / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        digest, fname = line.split()
        fname = fname.lstrip("*")
        assert hashlib.sha256((SHARED / name / fname).read_bytes()).hexdigest() == digest, fname


@needs_shared
def test_shared_fashion_mnist():
    x, y = load_dataset("fashion-mnist", "test", folder=SHARED)
    assert x.shape == (10000, 784)
    assert np.bincount(y).tolist() == [1000] * 10
