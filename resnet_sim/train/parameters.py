"""The trainable parameters θ of a compiled circuit: which elements, in which order, their groups and bounds.

θ (DESIGN.md section 5) lists the conductances (siemens) of the resistors that a ``.trainable`` card
matches, in netlist order, then the values (amperes) of the current sources it matches (biases), in netlist
order. Each parameter belongs to the group of the first card that matches it; a group's conductances are
bounded by the card's ``gmin`` (default 0 S: an open resistor) and ``gmax`` (default none). Current sources
are not bounded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..circuit import Circuit
from ..compile import Problem

__all__ = ["ParameterLayout", "layout", "parameters", "with_parameters", "circuit_with_parameters"]


@dataclass(frozen=True)
class ParameterLayout:
    """Where θ lives in a circuit.

    ``resistors`` (n_g,) and ``currents`` (n_i,) rows of the circuit's R and I tables; per parameter (n_θ,):
    ``group`` (index of its ``.trainable`` card), ``lower`` and ``upper`` bounds (S for conductances, ±inf for
    currents), ``names`` (element names); ``group_names`` (one per card: its patterns).
    """

    resistors: np.ndarray
    currents: np.ndarray
    group: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    names: np.ndarray
    group_names: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.group)

    @property
    def n_conductances(self) -> int:
        return len(self.resistors)

    @property
    def is_conductance(self) -> np.ndarray:
        """(n_θ,) bool: the parameter is a conductance (else a current)."""
        return np.arange(self.size) < self.n_conductances


def layout(circuit_or_problem) -> ParameterLayout:
    """The :class:`ParameterLayout` of a Circuit or Problem (cached in ``Problem.cache``)."""
    if isinstance(circuit_or_problem, Problem):
        cache = circuit_or_problem.cache
        if "parameter_layout" not in cache:
            cache["parameter_layout"] = _layout(circuit_or_problem.circuit)
        return cache["parameter_layout"]
    return _layout(circuit_or_problem)


def _layout(c: Circuit) -> ParameterLayout:
    r_card, i_card = c.trainable_card("R"), c.trainable_card("I")
    resistors, currents = np.flatnonzero(r_card >= 0), np.flatnonzero(i_card >= 0)
    group = np.concatenate([r_card[resistors], i_card[currents]])
    gmin = np.array([0.0 if s.gmin is None else s.gmin for s in c.trainable])
    gmax = np.array([np.inf if s.gmax is None else s.gmax for s in c.trainable])
    n_i = len(currents)
    lower = np.concatenate([gmin[r_card[resistors]], np.full(n_i, -np.inf)])
    upper = np.concatenate([gmax[r_card[resistors]], np.full(n_i, np.inf)])
    names = np.concatenate([c["R"].names[resistors], c["I"].names[currents]])
    return ParameterLayout(resistors, currents, group, lower, upper, names,
                           tuple(" ".join(s.patterns) for s in c.trainable))


def parameters(problem: Problem) -> np.ndarray:
    """(n_θ,) θ of ``problem``: trainable conductances (S), then trainable current-source values (A)."""
    lay = layout(problem)
    return np.concatenate([problem.g[lay.resistors], problem.s_default[problem.i_slots[lay.currents]]])


def with_parameters(problem: Problem, theta) -> Problem:
    """A new Problem with θ set (conductances >= 0 S, finite currents); the structure is shared."""
    lay = layout(problem)
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (lay.size,):
        raise ValueError(f"theta must have shape ({lay.size},), got {theta.shape}")
    new = problem
    if lay.n_conductances:
        g = problem.conductances
        g[lay.resistors] = theta[: lay.n_conductances]
        new = new.with_conductances(g)
    if len(lay.currents):
        values = problem.s_default[problem.i_slots].copy()
        values[lay.currents] = theta[lay.n_conductances:]
        new = new.with_currents(values)
    return new


def circuit_with_parameters(circuit: Circuit, theta) -> Circuit:
    """A copy of ``circuit`` with θ written into its elements: resistances 1/g ohms (inf for 0 S, an open
    resistor) and current-source values (A)."""
    lay = layout(circuit)
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (lay.size,):
        raise ValueError(f"theta must have shape ({lay.size},), got {theta.shape}")
    out = copy.deepcopy(circuit)
    resistance = out["R"].value.copy()
    with np.errstate(divide="ignore"):
        resistance[lay.resistors] = 1.0 / theta[: lay.n_conductances]
    out["R"].value = resistance
    currents = out["I"].value.copy()
    currents[lay.currents] = theta[lay.n_conductances:]
    out["I"].value = currents
    return out
