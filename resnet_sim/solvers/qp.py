"""The array-level problem every solver takes: a batch of convex QPs sharing one Laplacian.

    minimise over x (n,)   ½ xᵀ L x − bᵀ x
    subject to             x[a_r] − x[k_r] ≤ c_r      for each diode row r = 0..m-1

``a_r = -1`` (or ``k_r = -1``) means that end of the diode is at a fixed potential already folded into
``c_r``: the row is then a plain upper bound ``x[a_r] ≤ c_r`` (or lower bound ``x[k_r] ≥ -c_r``).
A batch of B problems shares L, a, k and differs in b and c (columns).

L is a Laplacian restricted to the free variables: positive definite on the variables with a path of
resistors to a fixed node. The others (``floating``) form *floating parts*: sets of variables joined by
resistors to each other and to nothing else, so L is singular along each part's rigid shift (1 on its
variables) and the energy is linear along it (−(net current injected into the part) × shift). Only diode
rows hold such a part: the minimiser is unique when they pin it, and there may be none when they do not
stop a part that current sources push (``Unbounded``).

Units: x in volts, L in siemens, b in amperes, c in volts. The multiplier of row r is the current
(amperes, ≥ 0) through the diode from anode to cathode.

Kernels and solvers know nothing of circuits: they see only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class QP:
    """A batch of B diode-constrained Laplacian QPs (see the module docstring)."""

    L: sp.csr_matrix  # (n, n) symmetric, siemens: positive definite off the floating parts
    b: np.ndarray  # (n, B) amperes
    a: np.ndarray  # (m,) int64 anode variable, -1 = fixed
    k: np.ndarray  # (m,) int64 cathode variable, -1 = fixed
    c: np.ndarray  # (m, B) volts
    floating: np.ndarray | None = None  # (n,) floating part of each variable (renumbered 0..p-1), -1 elsewhere

    def __post_init__(self):
        self.L = sp.csr_matrix(self.L, dtype=np.float64)
        n = self.L.shape[0]
        self.b = np.asarray(self.b, dtype=np.float64)
        if self.b.ndim == 1:
            self.b = self.b[:, None]
        self.a = np.asarray(self.a, dtype=np.int64).reshape(-1)
        self.k = np.asarray(self.k, dtype=np.int64).reshape(-1)
        m, B = len(self.a), self.b.shape[1]
        self.c = np.asarray(self.c, dtype=np.float64)
        if self.c.ndim == 1:
            self.c = np.repeat(self.c[:, None], B, axis=1) if m else np.zeros((0, B))
        if self.L.shape != (n, n) or self.b.shape[0] != n:
            raise ValueError(f"L must be (n, n) and b (n, B); got L {self.L.shape}, b {self.b.shape}")
        if self.k.shape != (m,) or self.c.shape != (m, B):
            raise ValueError(f"a, k must be (m,) and c (m, B); got a {self.a.shape}, k {self.k.shape}, c {self.c.shape}")
        if m and (min(self.a.min(), self.k.min()) < -1 or max(self.a.max(), self.k.max()) >= n):
            raise ValueError("diode row variables must lie in [-1, n)")
        if m and np.any((self.a < 0) & (self.k < 0)):
            raise ValueError("a diode row needs at least one free end")
        if self.floating is not None:
            part = np.asarray(self.floating, dtype=np.int64).reshape(-1)
            if part.shape != (n,):
                raise ValueError(f"floating must have shape ({n},), got {part.shape}")
            self.floating = None
            if (part >= 0).any():
                self.floating = np.full(n, -1, np.int64)
                self.floating[part >= 0] = np.unique(part[part >= 0], return_inverse=True)[1]

    @property
    def n_parts(self) -> int:
        """Number of floating parts."""
        return 0 if self.floating is None else int(self.floating.max()) + 1

    @property
    def n(self) -> int:
        return self.L.shape[0]

    @property
    def m(self) -> int:
        return len(self.a)

    @property
    def batch(self) -> int:
        return self.b.shape[1]

    def constraint_matrix(self) -> sp.csr_matrix:
        """(m, n) sparse A with rows e_a − e_k (fixed ends dropped), so the constraints read A x ≤ c."""
        rows = np.concatenate([np.flatnonzero(self.a >= 0), np.flatnonzero(self.k >= 0)])
        cols = np.concatenate([self.a[self.a >= 0], self.k[self.k >= 0]])
        vals = np.concatenate([np.ones(np.count_nonzero(self.a >= 0)), -np.ones(np.count_nonzero(self.k >= 0))])
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.m, self.n))

    def energy(self, x: np.ndarray) -> np.ndarray:
        """(B,) energy ½ xᵀLx − bᵀx of each column of x (n, B), watts."""
        return 0.5 * np.einsum("ib,ib->b", x, self.L @ x) - np.einsum("ib,ib->b", self.b, x)


class Unbounded(ValueError):
    """The energy has no minimum: current sources push a floating part (``QP.floating``) and no diode row
    stops it. ``variable``: one of its variables (-1 when the solver cannot tell), ``column``: the batch
    column."""

    def __init__(self, variable: int, column: int):
        self.variable, self.column = int(variable), int(column)
        super().__init__(f"QP column {column} is unbounded below: a floating part (variable {variable}) "
                         "runs off to infinity")


@dataclass
class QPSolution:
    """What a solver returns: the state, the diode currents, and how it got there."""

    x: np.ndarray  # (n, B) volts
    lam: np.ndarray  # (m, B) amperes, diode currents (multipliers), ≥ 0
    iterations: int  # sweeps (cd) or active-set iterations
    method: str
    info: dict = field(default_factory=dict)
