"""Training data files: ``.npz`` or ``.h5`` with ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``.

``x`` (n, n_inputs): the ``.inputs`` source values per sample (volts or amperes). ``y`` is either targets in
volts (n, n_outputs), or integer class labels (n,) in [0, n_outputs), turned into one-hot targets: ``high``
volts on the labelled output, ``low`` on the others (default 1 V and 0 V).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Split", "TrainingData", "load_training_data", "training_data"]


@dataclass(frozen=True)
class Split:
    """One split: ``x`` (n, n_inputs) (float32 kept as it is, else float64), ``targets`` (n, n_outputs) volts,
    ``labels`` (n,) int or None."""

    x: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class TrainingData:
    """The train split, the test split (or None), and a fingerprint (sha256 hex) of the arrays as given."""

    train: Split
    test: Split | None
    fingerprint: str

    @property
    def classification(self) -> bool:
        return self.train.labels is not None


def load_training_data(path, n_inputs: int, n_outputs: int, levels=(0.0, 1.0)) -> TrainingData:
    """Read ``path`` (.npz or .h5/.hdf5) and check it against a model with ``n_inputs`` inputs and
    ``n_outputs`` outputs; ValueError naming the file and the problem otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        arrays = _read(path)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    try:
        return training_data(arrays, n_inputs, n_outputs, levels)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _read(path: Path) -> dict[str, np.ndarray]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return {k: np.asarray(f[k]) for k in keys if k in f}
        except (OSError, TypeError) as err:
            raise ValueError(f"not a readable HDF5 file ({err})") from None
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single .npy array: expected an .npz archive with x_train and y_train")
            return {k: f[k] for k in keys if k in f.files}
    except (OSError, EOFError) as err:
        raise ValueError(f"not a readable .npz archive ({err})") from None
    except ValueError as err:
        raise ValueError(f"not a readable .npz archive ({err})") from None


def training_data(arrays: dict, n_inputs: int, n_outputs: int, levels=(0.0, 1.0)) -> TrainingData:
    """TrainingData from a dict of arrays (keys as in the module docstring), checked as ``load_training_data``."""
    low, high = (float(v) for v in levels)
    if not (np.isfinite(low) and np.isfinite(high)) or low == high:
        raise ValueError(f"target levels must be two different finite voltages, got {levels}")
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise ValueError(f"no {key!r} array")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError("x_test and y_test go together: one is missing")
    digest = hashlib.sha256()
    splits = []
    for name in ("train", "test"):
        if f"x_{name}" not in arrays:
            splits.append(None)
            continue
        x, y = np.asarray(arrays[f"x_{name}"]), np.asarray(arrays[f"y_{name}"])
        for a in (x, y):
            digest.update(repr((a.dtype.str, a.shape)).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
        splits.append(_split(name, x, y, n_inputs, n_outputs, low, high))
    train, test = splits
    if len(train) == 0:
        raise ValueError("x_train holds no samples")
    if test is not None and (test.labels is None) != (train.labels is None):
        raise ValueError("y_train and y_test must both be labels or both be target voltages")
    return TrainingData(train, test, digest.hexdigest())


def _split(name, x, y, n_inputs, n_outputs, low, high) -> Split:
    if not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
        raise ValueError(f"x_{name} must be real numbers, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != n_inputs:
        raise ValueError(f"x_{name} must have shape (n, {n_inputs}) (one column per .inputs source), got {x.shape}")
    if len(y) != len(x):
        raise ValueError(f"x_{name} has {len(x)} samples but y_{name} has {len(y)}")
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"x_{name} holds NaN or inf")
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        if len(y) and (y.min() < 0 or y.max() >= n_outputs):
            bad = int(y[(y < 0) | (y >= n_outputs)][0])
            raise ValueError(f"y_{name} holds label {bad}, outside [0, {n_outputs}) (one class per output)")
        targets = np.full((len(y), n_outputs), low)
        targets[np.arange(len(y)), y] = high
        return Split(x, targets, y.astype(np.int64))
    if not (np.issubdtype(y.dtype, np.number) and not np.iscomplexobj(y)):
        raise ValueError(f"y_{name} must be integer labels or real target voltages, got {y.dtype}")
    if y.ndim == 1 and n_outputs == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ValueError(f"y_{name} must be integer labels (n,) or target voltages (n, {n_outputs}), got {y.dtype} "
                         f"of shape {y.shape}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"y_{name} holds NaN or inf")
    return Split(x, y, None)
