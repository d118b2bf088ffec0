"""Training checkpoints in HDF5, written atomically.

A checkpoint holds everything a run needs to continue bit for bit: θ (float64), the optimiser's and the
device models' state, the random generator's state, the epoch reached and the metrics so far; plus, for the
record, θ after each epoch (``theta_per_epoch``, float32, row 0 the start) while that stays under
``PER_EPOCH_MAX_BYTES`` (beyond it, rows stop being added and the attribute ``per_epoch_complete`` is
false), and as attributes the package version, the run's identity (netlist text or model description, data
fingerprint, hyper-parameters as JSON).

Writes go through ``files.atomic_path`` (a temporary file in the same folder, flushed to disk, then renamed
over the old checkpoint): a run killed at any moment leaves the previous checkpoint or the new one, never a
partial file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..files import atomic_path

__all__ = ["CheckpointError", "save", "load", "PER_EPOCH_MAX_BYTES"]

PER_EPOCH_MAX_BYTES = 64 * 2**20
FORMAT = "resnet_sim training checkpoint 1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (missing, truncated, not ours)."""


def save(path, *, theta: np.ndarray, arrays: dict[str, np.ndarray], attrs: dict, theta_per_epoch: np.ndarray,
         per_epoch_complete: bool) -> None:
    """Write the checkpoint atomically. ``arrays``: named state arrays (optimiser, devices); ``attrs``:
    JSON-serialisable values (stored as JSON text)."""
    import h5py

    from .. import __version__

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["version"] = __version__
        f.attrs["per_epoch_complete"] = per_epoch_complete
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value)
        f["theta"] = theta
        f["theta_per_epoch"] = theta_per_epoch
        for key, value in arrays.items():
            f[f"state/{key}"] = value


def load(path) -> dict:
    """{"theta", "theta_per_epoch", "per_epoch_complete", "arrays": {...}, "attrs": {...}}; CheckpointError
    naming the file when it is missing, unreadable or not a complete checkpoint."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a resnet_sim training checkpoint")
            out = {
                "theta": np.asarray(f["theta"], dtype=np.float64),
                "theta_per_epoch": np.asarray(f["theta_per_epoch"]),
                "per_epoch_complete": bool(f.attrs["per_epoch_complete"]),
                "arrays": {key: np.asarray(value) for key, value in f["state"].items()} if "state" in f else {},
                "attrs": {key: json.loads(value) for key, value in f.attrs.items()
                          if key not in ("format", "version", "per_epoch_complete")},
                "version": str(f.attrs["version"]),
            }
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({err})") from None
    return out


