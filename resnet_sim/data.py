"""Image data sets: an IDX reader (MNIST, Fashion-MNIST) and the small MNIST sample shipped with the package.

The data folder is never assumed: pass ``folder=`` or set the environment variable ``RESNET_SIM_DATA``.
A folder may hold the four IDX files of a data set directly, or one sub-folder per data set
(``mnist/``, ``fashion-mnist/``); the files may be gzip-compressed (``.gz``) or plain.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

ENV_VAR = "RESNET_SIM_DATA"
DATASETS = ("mnist", "fashion-mnist")
SPLITS = {"train": "train", "test": "t10k"}
SAMPLE_PATH = Path(__file__).with_name("data") / "mnist_sample.npz"

# IDX type code -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or plain), with the file's dims and dtype.

    Raises ValueError naming the file when the magic number, the type code or the size is wrong.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dims declared)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX dims {dims} need {expected} bytes, file has {len(raw)}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def data_folder(folder=None) -> Path:
    """The data folder: ``folder`` if given, else ``$RESNET_SIM_DATA``; ValueError naming both otherwise."""
    if folder is None:
        folder = os.environ.get(ENV_VAR) or None
    if folder is None:
        raise ValueError(f"no data folder: pass folder= (--data on the command line) or set {ENV_VAR}")
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"data folder {folder} does not exist (from folder= or {ENV_VAR})")
    return folder


def _find(folder: Path, name: str, stem: str) -> Path:
    candidates = [d / (stem + ext) for d in (folder / name, folder) for ext in (".gz", "")]
    for path in candidates:
        if path.is_file():
            return path
    raise ValueError(f"{name}: none of {', '.join(str(p) for p in candidates)} exists")


def load_dataset(name: str = "mnist", split: str = "test", folder=None) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of MNIST or Fashion-MNIST.

    Returns ``(images, labels)``: images float32 in [0, 1] of shape (n, 784) (row-major 28x28 pixels),
    labels int64 of shape (n,). ``folder`` as in :func:`data_folder`.
    """
    image_file, label_file = dataset_files(name, split, folder)
    images, labels = load_idx(image_file), load_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{name} {split}: images {images.shape} and labels {labels.shape} do not match")
    return _as_float(images), labels.astype(np.int64)


def dataset_files(name: str = "mnist", split: str = "test", folder=None) -> tuple[Path, Path]:
    """The (images, labels) IDX files that :func:`load_dataset` reads; ValueError when one is missing."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    root, prefix = data_folder(folder), SPLITS[split]
    return _find(root, name, f"{prefix}-images-idx3-ubyte"), _find(root, name, f"{prefix}-labels-idx1-ubyte")


def load_sample(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The MNIST sample shipped with the package (same format as load_dataset): the first 500 test images
    and labels, or (``split="train"``) the first 2000 training ones."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    with np.load(SAMPLE_PATH) as f:
        return _as_float(f[f"{split}_images"]), f[f"{split}_labels"].astype(np.int64)


def _as_float(images: np.ndarray) -> np.ndarray:
    return (images.reshape(len(images), -1) / np.float32(255.0)).astype(np.float32)
