"""The exact gradient of the loss on the general path, by implicit differentiation of the free state.

At the free state each stage QP holds its active set: a conducting diode (current above the certificate's
tolerance) keeps its row at equality, every other row is slack. Differentiating the stage's KKT system
on that set, the adjoint (μ, ν) of a stage whose potentials the cost weighs by x̄ (∂C/∂x) solves

    [L  Aᵀ] [μ]   [x̄]
    [A  0 ] [ν] = [0 ]          (A: the active rows)

and then dC = −μᵀ (dL x − db) + νᵀ dc. Rather than factorise that indefinite matrix, the active rows
are used to merge variables (a conducting diode between free nodes ties them, one to a fixed potential pins
its node): with Z the 0/1 map from merged to original variables, μ = Z (Zᵀ L Z)⁻¹ Zᵀ x̄, and ν solves
Aᵀ ν = x̄ − L μ exactly on a spanning forest of the active rows (``kkt.least_squares_multipliers``).
Samples with the same active set share one factorisation.

Amplifier stages are differentiated in reverse order: a stage's b = K s and c = c0 + C s depend on the
amplifier slots of s, so the stage passes s̄ += Kᵀ μ + Cᵀ ν upstream, and each amplifier slot
s_e = A (v_cp − v_cn) passes its s̄_e on to the potentials it reads. With every stage's μ known,
∂C/∂g_r = −Σ_b (v_a − v_b)(μ_a − μ_b) and ∂C/∂I_j = Σ_b (μ_n − μ_p), μ taken as 0 at fixed nodes.

One-sided at a switching point: a diode at its limit with no current (its row active but its current 0)
counts as off, so the result is the derivative along the branch where it stays off.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse.linalg import splu

__all__ = ["exact_gradient_of"]


def exact_gradient_of(model, X, Y, state=None) -> tuple[np.ndarray, object]:
    """(n_θ,) d loss / dθ for a :class:`~resnet_sim.train.circuit_model.CircuitModel` on the batch X (B,
    n_inputs), Y (B, n_outputs) volts, loss = mean ½‖y_hat − y‖² (V²); and the free state (an
    OperatingPoint; ``state`` when given, else solved here)."""
    from ..solvers.kkt import residual_scale

    p = model.problem
    op = model.free(X) if state is None else state
    v, s, B = op.potentials, op.s, op.batch
    Y = np.asarray(Y, dtype=np.float64).reshape(B, len(p.outputs))
    xbar = np.zeros((p.n_free, B))
    sbar = np.zeros((p.n_sources, B))
    _to_nodes(p, p.outputs, (v[p.outputs] - Y.T) / B, xbar, sbar)
    mu = np.zeros((p.n_free, B))
    for t in range(len(p.stages), -1, -1):
        if t < len(p.stages):
            st = p.stages[t]
            qp = p.qp(t, s)
            x, lam = op.x[st.variables], op.lam[st.rows]
            active = lam > op.tol * residual_scale(qp, x)["dual"]
            mu_t, nu_t = stage_adjoint(qp, active, xbar[st.variables])
            mu[st.variables] = mu_t
            sbar += np.asarray(st.K.T @ mu_t) + np.asarray(st.C.T @ nu_t)
        for e in reversed(p._vcvs_at.get(t, ())):
            slot, cp, cn, gain = p._vcvs[e]
            _to_nodes(p, np.array([cp, cn]), np.stack([gain * sbar[slot], -gain * sbar[slot]]), xbar, sbar)
    mu_nodes = np.zeros_like(v)
    free = p.var >= 0
    mu_nodes[free] = mu[p.var[free]]
    drop = v[model._r_a] - v[model._r_b]
    dg = -np.einsum("rb,rb->r", drop, mu_nodes[model._r_a] - mu_nodes[model._r_b])
    di = (mu_nodes[model._i_n] - mu_nodes[model._i_p]).sum(axis=1)
    return np.concatenate([dg, di]), op


def _to_nodes(p, nodes: np.ndarray, vbar: np.ndarray, xbar: np.ndarray, sbar: np.ndarray) -> None:
    """Add the adjoint ``vbar`` (len(nodes), B) of node potentials v = x[var] + P s to x̄ and s̄ (in place)."""
    var = p.var[nodes]
    free = var >= 0
    np.add.at(xbar, var[free], vbar[free])
    sbar += np.asarray(p.P[nodes].T @ vbar)


def stage_adjoint(qp, active: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(μ (n, B), ν (m, B)) solving [L Aᵀ; A 0][μ; ν] = [rhs; 0] per column, A the rows ``active`` (m, B)
    marks in that column (see the module docstring); one factorisation per distinct active set."""
    from ..solvers.kkt import least_squares_multipliers

    n, B = rhs.shape
    mu = np.zeros((n, B))
    nu = np.zeros((qp.m, B))
    if not n:
        return mu, nu
    if qp.m:
        patterns, which = np.unique(np.packbits(active, axis=0), axis=1, return_inverse=True)
        which, n_patterns = which.reshape(-1), patterns.shape[1]
    else:
        which, n_patterns = np.zeros(B, np.int64), 1
    for j in range(n_patterns):
        cols = np.flatnonzero(which == j)
        rows = active[:, cols[0]]
        Z = _merge_map(n, qp.a[rows], qp.k[rows])
        if Z.shape[1]:
            lu = splu((Z.T @ qp.L @ Z).tocsc())
            mu[:, cols] = Z @ lu.solve(np.asarray(Z.T @ rhs[:, cols]))
        if rows.any():
            residual = rhs[:, cols] - qp.L @ mu[:, cols]
            nu[:, cols] = least_squares_multipliers(qp, -residual, np.repeat(rows[:, None], len(cols), 1))[0]
    return mu, nu


def _merge_map(n: int, a: np.ndarray, k: np.ndarray) -> sp.csr_matrix:
    """(n, n_merged) 0/1 map: variables tied by the rows (a, k) (two free ends) merge; a row with a fixed
    end (-1) pins its variable, and everything merged with it, to a fixed potential (a zero row of Z)."""
    fixed = n
    u = np.where(a >= 0, a, fixed)
    w = np.where(k >= 0, k, fixed)
    graph = sp.csr_matrix((np.ones(len(u)), (u, w)), shape=(n + 1, n + 1))
    _, labels = csgraph.connected_components(graph, directed=False)
    free = labels[:n] != labels[fixed]
    kept, column = np.unique(labels[:n][free], return_inverse=True)
    return sp.csr_matrix((np.ones(np.count_nonzero(free)), (np.flatnonzero(free), column)), shape=(n, len(kept)))
