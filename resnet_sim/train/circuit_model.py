"""The general path as an energy model: any compiled circuit with ``.inputs``, ``.outputs`` and ``.trainable``.

An energy model (DESIGN.md section 5) holds θ and answers, for a batch: its free equilibrium, its nudged
equilibrium for (β, targets) started from a given state, and ∂E/∂θ at a state, summed over the batch. Here
the states are :class:`~resnet_sim.OperatingPoint` objects from :func:`resnet_sim.solve`, and

    E = Σ_r ½ g_r (v_a − v_b)² − Σ_j I_j (v_n − v_p)     (watts; v in volts)

so ∂E/∂g_r = ½ (v_a − v_b)² (V²) for a resistor and ∂E/∂I_j = v_p − v_n (V) for a current source (it
injects I_j into its n node). Amplifier stages are solved one after the other, each minimising its own
energy: see :meth:`CircuitModel.check_ep_reach` for what that means for EP.
"""

from __future__ import annotations

import numpy as np

from ..compile import Problem
from ..errors import CircuitError
from ..solve import solve
from .parameters import circuit_with_parameters, layout, parameters, with_parameters

__all__ = ["CircuitModel"]


class CircuitModel:
    """A compiled circuit and its parameters θ, solved by :func:`resnet_sim.solve` (``method``, ``tol``)."""

    def __init__(self, problem: Problem, method: str = "auto", tol: float = 1e-9):
        if not len(problem.circuit.inputs) or not len(problem.outputs):
            missing = [card for card, have in ((".inputs", problem.circuit.inputs), (".outputs", problem.outputs))
                       if not len(have)]
            raise CircuitError(f"the circuit has no {' and no '.join(missing)}: nothing to train")
        self.problem, self.method, self.tol = problem, method, tol
        self._phases = self._sweeps = 0
        self.layout = layout(problem)
        if not self.layout.size:
            raise CircuitError("no element matches a .trainable card: nothing to train")
        ends = problem.circuit["R"].nodes[self.layout.resistors]
        self._r_a, self._r_b = ends[:, 0], ends[:, 1]
        ends = problem.circuit["I"].nodes[self.layout.currents]
        self._i_p, self._i_n = ends[:, 0], ends[:, 1]

    # ---------------------------------------------------------------- parameters
    @property
    def theta(self) -> np.ndarray:
        """(n_θ,) a copy of θ: conductances (S), then currents (A)."""
        return parameters(self.problem)

    def set_theta(self, theta) -> None:
        self.problem = with_parameters(self.problem, theta)

    def circuit(self):
        """The circuit with the current θ written in (see ``circuit_with_parameters``)."""
        return circuit_with_parameters(self.problem.circuit, self.theta)

    @property
    def n_inputs(self) -> int:
        return len(self.problem.input_slots)

    @property
    def n_outputs(self) -> int:
        return len(self.problem.outputs)

    def max_negative_beta(self) -> float:
        """The largest |beta| (S) a negative nudge may take while the nudged energy stays convex."""
        p = self.problem
        return min(p.max_negative_beta(t)[0] for t, st in enumerate(p.stages) if len(st.outputs))

    # ---------------------------------------------------------------- equilibria
    def free(self, X):
        """Free equilibrium (an OperatingPoint) of the batch X (B, n_inputs)."""
        return self._count(solve(self.problem, inputs=np.atleast_2d(X), method=self.method, tol=self.tol,
                                 repeated=True))

    def nudged(self, X, Y, beta: float, start):
        """Equilibrium with the outputs nudged by ``beta`` (S) towards Y (B, n_outputs) V, warm-started
        from the state ``start``."""
        return self._count(solve(self.problem, inputs=np.atleast_2d(X), beta=beta, targets=Y, warm_start=start,
                                 method=self.method, tol=self.tol, repeated=True))

    def _count(self, op):
        self._phases, self._sweeps = self._phases + 1, self._sweeps + op.sweeps
        return op

    def pop_stats(self) -> dict:
        """{"sweeps_per_phase": mean solver sweeps (cd) or iterations (active set) per equilibrium} since the
        last call (then reset)."""
        stats = {"sweeps_per_phase": self._sweeps / self._phases} if self._phases else {}
        self._phases = self._sweeps = 0
        return stats

    @staticmethod
    def outputs(state) -> np.ndarray:
        """(B, n_outputs) output voltages of a state."""
        return state.outputs

    def energy_gradient(self, state) -> np.ndarray:
        """(n_θ,) ∂E/∂θ at ``state`` summed over its batch: ½ Σ_b ΔV² (V²) per conductance, Σ_b (v_p − v_n)
        (V) per current."""
        v = state.potentials
        drop = np.take(v, self._r_a, axis=0) - np.take(v, self._r_b, axis=0)  # take: 40x faster than v[idx] here
        return np.concatenate([0.5 * np.einsum("rb,rb->r", drop, drop), (v[self._i_p] - v[self._i_n]).sum(axis=1)])

    def energy_gradient_difference(self, state_2, state_1, scale: float = 1.0) -> np.ndarray:
        """(n_θ,) scale · (∂E/∂θ(state_2) − ∂E/∂θ(state_1)), batch-summed."""
        return scale * (self.energy_gradient(state_2) - self.energy_gradient(state_1))

    def exact_gradient(self, X, Y) -> tuple[np.ndarray, object]:
        """(d loss/dθ (n_θ,), the free state) by implicit differentiation (``resnet_sim.train.implicit``)."""
        from .implicit import exact_gradient_of

        return exact_gradient_of(self, X, Y)

    # ---------------------------------------------------------------- what EP can reach
    def check_ep_reach(self) -> None:
        """CircuitError unless EP estimates every parameter's gradient.

        A nudge moves only the amplifier stage that holds the outputs: an amplifier is one-way, so stages
        upstream of it (whose parameters change the outputs through the amplifier) never feel the nudge,
        and stages downstream of it are moved by it without affecting the cost. EP therefore needs all
        outputs in one stage and every trainable element in that stage (or between fixed nodes, where its
        gradient is 0), and no output held by an amplifier's output port (a nudge cannot move it).
        """
        reason = self.ep_unreachable()
        if reason is not None:
            raise CircuitError(reason)

    def ep_unreachable(self) -> str | None:
        """Why EP cannot estimate some parameter's gradient (see ``check_ep_reach``), or None; cached per
        structure."""
        p = self.problem
        if "ep_reach" in p.cache:
            return p.cache["ep_reach"]
        message = None
        names = p.circuit.outputs
        amp_names = p.circuit["E"].names
        out_var = p.var[p.outputs]
        if len(p.e_slots):
            held = (out_var < 0) & (abs(p.P[p.outputs][:, p.e_slots]).sum(axis=1).A.ravel() > 0)
            if held.any():
                o = int(np.flatnonzero(held)[0])
                amp = amp_names[p.P[p.outputs[o]][:, p.e_slots].indices[0]]
                message = (f"output {names[o]} is held by amplifier {amp}'s output port: a nudge cannot move it, so "
                           "EP has no estimate of the gradient (use exact_gradient)")
        stage_of = np.full(p.n_free, -1, np.int64)
        for t, st in enumerate(p.stages):
            stage_of[st.variables] = t
        nudged = [t for t, st in enumerate(p.stages) if len(st.outputs)]
        if message is None and len(nudged) > 1:
            a, b = (names[int(p.stages[t].outputs[0])] for t in nudged[:2])
            message = (f"outputs {a} and {b} sit in different amplifier stages: the nudge of one reaches the "
                       "other's stage through an amplifier, one way, so EP's estimate is not the gradient "
                       "(use exact_gradient)")
        if message is None and len(p.stages) > 1:
            target = nudged[0] if nudged else -1
            ends = [np.stack([self._r_a, self._r_b], 1), np.stack([self._i_p, self._i_n], 1)]
            stage = stage_of[np.maximum(p.var[np.concatenate(ends)], 0)]
            stage = np.where(p.var[np.concatenate(ends)] >= 0, stage, -1).max(axis=1)
            bad = np.flatnonzero((stage >= 0) & (stage != target))
            if len(bad):
                message = (f"{len(bad)} trainable element{'s' if len(bad) > 1 else ''} ({self.layout.names[bad[0]]}"
                           f"{', ...' if len(bad) > 1 else ''}) sit{'' if len(bad) > 1 else 's'} in an amplifier stage "
                           "other than the outputs': amplifiers are one-way, so the nudge does not reach "
                           f"{'them' if len(bad) > 1 else 'it'} and EP has no estimate of "
                           f"{'their' if len(bad) > 1 else 'its'} gradient (use exact_gradient, or leave "
                           f"{'them' if len(bad) > 1 else 'it'} out of .trainable)")
        p.cache["ep_reach"] = message
        return message
