"""SPICE in the training loop: an energy model (DESIGN.md section 5) whose equilibria come from ngspice.

θ, its layout and ∂E/∂θ are the general path's (:class:`~resnet_sim.train.circuit_model.CircuitModel`);
only the equilibria differ. ``free`` and ``nudged`` return pending states: the first time a state's
voltages are read, every phase asked for on its batch so far is solved in one ngspice process
(``batch.run_batch``, the circuit written with the current θ). So rs.train's EP estimator, optimiser and
trainer drive it unchanged, and one EP step (free, −β, +β) is one ngspice process.

ngspice does not start from the state passed to ``nudged``: in ``"dc"`` mode each point starts from the
previous point of the batch, in ``"op"`` mode from ngspice's own initial guess.
"""

from __future__ import annotations

import time

import numpy as np

from .batch import batch_deck, run_batch
from .export import SpiceOptions

__all__ = ["SpiceModel", "SpiceState"]


class _Batch:
    """The inputs X (B, n_inputs), targets Y (B, n_outputs) V and states asked for on one batch."""

    def __init__(self, X):
        self.X, self.Y, self.states = X, None, []


class SpiceState:
    """An equilibrium of a batch at nudging strength ``beta`` (S); ``potentials`` (n_nodes, B) V by node id
    and ``outputs`` (B, n_outputs) V are solved by ngspice on first access."""

    def __init__(self, model: "SpiceModel", batch: _Batch, beta: float):
        self.model, self.batch, self.beta, self._potentials = model, batch, float(beta), None
        batch.states.append(self)

    @property
    def potentials(self) -> np.ndarray:
        if self._potentials is None:
            self.model._solve(self.batch)
        return self._potentials

    @property
    def outputs(self) -> np.ndarray:
        return self.potentials[self.model.output_ids].T.copy()


class SpiceModel:
    """An energy model for a compiled circuit ``problem`` solved by ngspice in ``mode`` (``batch.MODES``) with
    ``options`` (SpiceOptions), each process killed after ``timeout`` s.

    ``records``: one dict per ngspice process: ``samples``, ``phases``, ``deck`` (s, writing the deck text
    here, θ included), ``wall`` and ``cpu`` (s, the ngspice process), ``read`` (s, reading its raw file),
    ``raw_bytes`` and ngspice's ``stats``.
    """

    def __init__(self, problem, mode: str = "dc", options: SpiceOptions = SpiceOptions(), timeout: float = 600.0,
                 ngspice: str = "ngspice"):
        from ..train.circuit_model import CircuitModel

        self.reference = CircuitModel(problem)
        self.mode, self.options, self.timeout, self.ngspice = mode, options, timeout, ngspice
        circuit = problem.circuit
        self.output_ids = np.array([circuit.node_id(n) for n in circuit.outputs], dtype=np.int64)
        self.records: list[dict] = []
        self._popped = 0

    # ---------------------------------------------------------------- θ: the general path's
    @property
    def layout(self):
        return self.reference.layout

    @property
    def theta(self) -> np.ndarray:
        return self.reference.theta

    def set_theta(self, theta) -> None:
        self.reference.set_theta(theta)

    def circuit(self):
        return self.reference.circuit()

    @property
    def n_inputs(self) -> int:
        return self.reference.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.reference.n_outputs

    def max_negative_beta(self) -> float:
        return self.reference.max_negative_beta()

    def check_ep_reach(self) -> None:
        self.reference.check_ep_reach()

    # ---------------------------------------------------------------- equilibria: ngspice's
    def free(self, X) -> SpiceState:
        """The (pending) free equilibrium of the batch X (B, n_inputs)."""
        return SpiceState(self, _Batch(np.atleast_2d(np.asarray(X, dtype=np.float64))), 0.0)

    def nudged(self, X, Y, beta: float, start) -> SpiceState:
        """The (pending) equilibrium nudged by ``beta`` (S) towards Y (B, n_outputs) V, solved in the same
        ngspice process as ``start`` when ``start`` is a pending state of the same batch."""
        X, Y = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (X, Y))
        pending = isinstance(start, SpiceState) and start.model is self and start._potentials is None
        batch = start.batch if pending else None
        if batch is None or not np.array_equal(batch.X, X) or (batch.Y is not None and not np.array_equal(batch.Y, Y)):
            batch = _Batch(X)
        batch.Y = Y
        return SpiceState(self, batch, beta)

    def _solve(self, batch: _Batch) -> None:
        pending = [s for s in batch.states if s._potentials is None]
        start = time.perf_counter()
        deck = batch_deck(self.circuit(), batch.X, [s.beta for s in pending], batch.Y, self.mode, self.options)
        written = time.perf_counter() - start
        result = run_batch(deck, self.timeout, self.ngspice)
        for state, potentials in zip(pending, result.potentials):
            state._potentials = potentials
        self.records.append({"samples": deck.n_samples, "phases": deck.n_phases, "deck": written, "wall": result.wall,
                             "cpu": result.cpu, "read": result.read, "raw_bytes": result.raw_bytes,
                             "stats": result.stats})

    @staticmethod
    def outputs(state: SpiceState) -> np.ndarray:
        """(B, n_outputs) output voltages of a state (V)."""
        return state.outputs

    def energy_gradient_difference(self, state_2, state_1, scale: float = 1.0) -> np.ndarray:
        """(n_θ,) scale · (∂E/∂θ(state_2) − ∂E/∂θ(state_1)), batch-summed (the general path's)."""
        return self.reference.energy_gradient_difference(state_2, state_1, scale)

    def pop_stats(self) -> dict:
        """{"ngspice_processes": n, "ngspice_seconds": their wall time} since the last call (``records`` keeps
        them all)."""
        records, self._popped = self.records[self._popped:], len(self.records)
        return {"ngspice_processes": len(records), "ngspice_seconds": sum(r["wall"] for r in records)}
