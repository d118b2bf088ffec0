"""Monte-Carlo evaluation of a trained circuit under device-variability draws, chunked over Dask workers.

Draw k writes the circuit's ``.trainable`` conductances (its trained values) into a fresh set of devices,
modelled by the trainer's device models (:mod:`resnet_sim.train.devices`): with device-to-device
variability σ_d each device gets its own bounds gmin·exp(σ_d ζ), gmax·exp(σ_d ζ'); programming noise σ
ends each device at g (1 + σ ξ); then the value is projected onto the device's bounds and, with Q levels,
rounded to one of the Q levels of its own range (nearest, or stochastically). Bias currents are unchanged.
The circuit is then solved for every input row. Draw k draws its numbers from
``numpy.random.default_rng([seed, k])`` and nothing else, so the result does not depend on how the draws
are chunked or on how many workers solve them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np

from ..train.devices import DeviceConfig, Devices

__all__ = ["MonteCarlo", "check", "monte_carlo", "draw_outputs", "write_result", "FORMAT"]

FORMAT = "resnet_sim monte-carlo 1"
TASKS_PER_WORKER = 4  # default chunking: about this many chunks per worker (load balance against task overhead)


@dataclass
class MonteCarlo:
    """The result: ``outputs`` (K, B, n_out) V of each draw and input row, ``nominal`` (B, n_out) V of the
    circuit as written, ``converged`` (K,) bool per draw (every solve's certificate within tolerance);
    with labels, ``accuracy`` (K,) fractions and ``nominal_accuracy``."""

    outputs: np.ndarray
    nominal: np.ndarray
    converged: np.ndarray
    seed: int
    devices: DeviceConfig
    output_names: tuple
    labels: np.ndarray | None = None

    @property
    def accuracy(self) -> np.ndarray | None:
        if self.labels is None:
            return None
        return np.mean(np.argmax(self.outputs, axis=2) == self.labels, axis=1)

    @property
    def nominal_accuracy(self) -> float | None:
        if self.labels is None:
            return None
        return float(np.mean(np.argmax(self.nominal, axis=1) == self.labels))


_COMPILED: list = []  # [(circuit, problem)]: the last circuit this process compiled (a worker gets the same object)


def _problem(circuit):
    from ..compile import compile

    if not _COMPILED or _COMPILED[0][0] is not circuit:
        _COMPILED[:] = [(circuit, compile(circuit))]
    return _COMPILED[0][1]


def draw_outputs(circuit, X: np.ndarray, devices: DeviceConfig, seed: int, start: int, stop: int,
                 method: str = "auto", tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (stop − start, B, n_out) V and converged flags of draws start..stop−1 of ``circuit`` for the
    inputs X (B, n_inputs); ``start == stop == -1``: the nominal circuit (no draw), (1, B, n_out)."""
    from ..solve import solve
    from ..train.parameters import layout, parameters, with_parameters

    problem = _problem(circuit)
    lay = layout(problem)
    n_g = lay.n_conductances
    theta0 = parameters(problem)
    ks = [None] if start == -1 else range(start, stop)
    outputs = np.empty((len(ks), len(X), len(problem.outputs)))
    converged = np.empty(len(ks), dtype=bool)
    for i, k in enumerate(ks):
        p = problem
        if k is not None:
            rng = np.random.default_rng([seed, k])
            chip = Devices(devices, lay.lower[:n_g], lay.upper[:n_g], rng)
            theta = theta0.copy()
            chip.program(theta[:n_g], np.zeros(n_g), rng)  # the trained values written into fresh devices
            p = with_parameters(problem, theta)
        op = solve(p, inputs=X, method=method, tol=tol)
        outputs[i], converged[i] = op.outputs, op.converged
    return outputs, converged


def check(circuit, X, draws: int, devices: DeviceConfig, seed: int = 0, labels=None, chunk: int | None = None):
    """Validate the arguments of :func:`monte_carlo` (ValueError naming the problem; messages about the labels
    start with "labels"); returns X as float64 and the labels as an array (or None)."""
    from ..train.parameters import layout

    X = np.ascontiguousarray(X, dtype=np.float64)
    if not len(circuit.outputs) or not len(circuit.inputs):
        raise ValueError("the circuit needs .inputs and .outputs cards")
    lay = layout(circuit)
    if not lay.n_conductances:
        raise ValueError("no resistor matches a .trainable card: nothing for the device models to act on")
    if X.ndim != 2 or X.shape[1] != len(circuit.inputs):
        raise ValueError(f"inputs must be (B, {len(circuit.inputs)}), got {X.shape}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if devices.soft_bounds or devices.table is not None:
        raise ValueError("soft bounds and update tables model training steps: a Monte-Carlo draw writes each "
                         "value once (variability, programming noise, levels)")
    Devices(devices, lay.lower[: lay.n_conductances], lay.upper[: lay.n_conductances],
            np.random.default_rng(0), label=lambda i: f"card {lay.group_names[lay.group[i]]!r}")  # checks gmax
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(X),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be ({len(X)},) integers (one class per input row), got {labels.dtype} "
                             f"of shape {labels.shape}")
        if labels.min() < 0 or labels.max() >= len(circuit.outputs):
            raise ValueError(f"labels must be class indices in [0, {len(circuit.outputs)}) (one per output)")
    return X, labels


def monte_carlo(circuit, X, draws: int, devices: DeviceConfig, seed: int = 0, labels=None, client=None,
                chunk: int | None = None, method: str = "auto", tol: float = 1e-9, progress=None) -> MonteCarlo:
    """Solve ``circuit`` (with ``.inputs``, ``.outputs``, ``.trainable``) for the inputs X (B, n_inputs) under
    ``draws`` device draws (see the module docstring); ``labels`` (B,) class indices give accuracies. With a
    Dask ``client``, chunks of ``chunk`` draws (default: about TASKS_PER_WORKER chunks per worker) are tasks,
    the circuit and X are scattered to the workers once; without one, the chunks run here. ``progress(n)``
    is called with the number of draws each finished chunk adds. ValueError for bad arguments."""
    X, labels = check(circuit, X, draws, devices, seed, labels, chunk)
    if chunk is None:
        workers = 1 if client is None else max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
        chunk = max(1, math.ceil(draws / (TASKS_PER_WORKER * workers)))
    spans = [(lo, min(draws, lo + chunk)) for lo in range(0, draws, chunk)]
    outputs = np.empty((draws, len(X), len(circuit.outputs)))
    converged = np.empty(draws, dtype=bool)
    args = (devices, seed)
    if client is None:
        nominal = draw_outputs(circuit, X, *args, -1, -1, method, tol)[0][0]
        for lo, hi in spans:
            outputs[lo:hi], converged[lo:hi] = draw_outputs(circuit, X, *args, lo, hi, method, tol)
            if progress is not None:
                progress(hi - lo)
    else:
        from distributed import as_completed

        shared_circuit, shared_X = client.scatter([circuit, X], broadcast=True, hash=False)
        futures = {client.submit(draw_outputs, shared_circuit, shared_X, *args, lo, hi, method, tol, pure=False):
                   (lo, hi) for lo, hi in [(-1, -1), *spans]}
        nominal = None
        for future in as_completed(futures):
            lo, hi = futures[future]
            out, conv = future.result()
            future.release()
            if lo == -1:
                nominal = out[0]
                continue
            outputs[lo:hi], converged[lo:hi] = out, conv
            if progress is not None:
                progress(hi - lo)
    return MonteCarlo(outputs, nominal, converged, seed, devices, tuple(circuit.outputs), labels)


def write_result(result: MonteCarlo, path, attrs: dict) -> None:
    """Write ``result`` to HDF5 at ``path`` atomically: datasets outputs (K, B, n_out) V, nominal (B, n_out) V,
    converged (K,), and with labels labels (B,), accuracy (K,); attributes: format, version, seed, draws,
    devices (JSON), output node names (JSON), nominal_accuracy, seeding, and ``attrs`` (JSON-encoded when not
    a string or number)."""
    import h5py

    from .. import __version__
    from ..files import atomic_path

    config = dataclasses.asdict(result.devices)
    config.pop("table")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({"format": FORMAT, "version": __version__, "seed": result.seed, "draws": len(result.outputs),
                        "devices": json.dumps(config), "output_names": json.dumps(list(result.output_names)),
                        "seeding": "draw k: numpy.random.default_rng([seed, k])"})
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        f["outputs"] = result.outputs
        f["nominal"] = result.nominal
        f["converged"] = result.converged
        if result.labels is not None:
            f["labels"] = result.labels
            f["accuracy"] = result.accuracy
            f.attrs["nominal_accuracy"] = result.nominal_accuracy
