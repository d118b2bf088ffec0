"""KKT certificate and infeasibility check for the array-level diode QP (see ``qp.py``).

For a batch of B columns, x (n, B) volts and diode currents lam (m, B) amperes, the KKT conditions are

    stationarity     L x − b + Aᵀ lam = 0       (amperes, per variable)
    feasibility      A x ≤ c                    (volts, per row)
    dual             lam ≥ 0                    (amperes, per row)
    complementarity  lam · (c − A x) = 0        (watts, per row)

``certificate`` reports the worst violation of each per column; ``converged_mask`` turns them into a
verdict; ``infeasible_rows`` decides whether any x satisfies A x ≤ c at all (a negative cycle of the
difference constraints).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from resnet_sim.graph import connected_components
from resnet_sim.solvers.jit import njit
from resnet_sim.solvers.qp import QP

ACTIVE_RTOL = 1e-6
"""A row counts as active (for recovering lam from x) when its slack c − A x ≤ ACTIVE_RTOL · (1 + |c|) volts.
Generous on purpose, so an x accurate to ~1e-9 V (a ``cd`` result) gets its currents back: a current given
to a row with slack s shows up as complementarity lam · s, so the choice never hides anything."""

NNLS_MAX_BLOCKS = 2000
"""At most this many blocks per call are refitted by non-negative least squares; the rest are clipped at 0
(their residual, reported as it is, may then be larger than the best split would give)."""
NNLS_DENSE_ROWS = 2000
"""Blocks with more active rows than this use sparse bounded least squares instead of dense NNLS."""
DENSE_MAX = 100
"""Matrices of at most this many rows are inverted or factorised dense (numpy's LAPACK), not by
scipy.sparse.linalg (0.05-0.1 s to import). OpenBLAS factorises such a matrix on one thread (it starts
threads from m n = 10000): a 110 x 110 np.linalg.solve took 0.2 ms on an idle 2-CPU machine and 110-225 ms
with the other CPU busy."""


def slack(qp: QP, x: np.ndarray, cols=slice(None)) -> np.ndarray:
    """(m, B') slack c − A x volts (negative = violated) of x (n, B'), the batch columns ``cols`` of qp."""
    c = qp.c[:, cols]
    x = np.asarray(x, dtype=np.float64).reshape(qp.n, c.shape[1])
    xe = np.vstack([x, np.zeros((1, x.shape[1]))])  # index -1 reads the fixed end, 0 V
    return c - (xe[qp.a] - xe[qp.k])


def certificate(qp: QP, x: np.ndarray, lam: np.ndarray | None = None,
                active_rtol: float = ACTIVE_RTOL) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """KKT residuals of x (n, B) volts, with diode currents lam (m, B) amperes or recovered from x.

    Returns ``(lam, residuals)``; residuals maps "stationarity" (A, max_i |L x − b + Aᵀ lam|),
    "feasibility" (V, max_r positive part of A x − c), "dual" (A, max_r negative part of lam) and
    "complementarity" (W, max_r |lam · (c − A x)|) to (B,) arrays.

    When lam is None it is recovered from x: rows with slack ≤ active_rtol · (1 + |c|) volts are active;
    on each connected block of active rows lam solves min ‖Aᵀ lam + (L x − b)‖₂ (exact on a spanning
    forest), then, where that leaves a current below −1e-9 of the column's current scale, non-negative least
    squares on that block (blocks: rows joined through free variables; at most NNLS_MAX_BLOCKS per call);
    the remaining negatives are clipped to 0. Inactive rows carry 0. Parallel active rows share
    a non-unique current: one valid split is returned, and the residuals are those of the returned lam.
    """
    x = np.asarray(x, dtype=np.float64).reshape(qp.n, qp.batch)
    A = qp.constraint_matrix()
    s = slack(qp, x)
    g = qp.L @ x - qp.b
    if lam is None:
        active = s <= active_rtol * (1.0 + np.abs(qp.c))
        lam = nonnegative_multipliers(qp, g, active, A)
    lam = np.asarray(lam, dtype=np.float64).reshape(qp.m, x.shape[1])
    B = x.shape[1]
    zero = np.zeros(B)
    residuals = {
        "stationarity": np.abs(g + A.T @ lam).max(axis=0) if qp.n else zero,
        "feasibility": np.maximum(-s, 0.0).max(axis=0) if qp.m else zero,
        "dual": np.maximum(-lam, 0.0).max(axis=0) if qp.m else zero,
        "complementarity": np.abs(lam * s).max(axis=0) if qp.m else zero,
    }
    return lam, residuals


def residual_scale(qp: QP, x: np.ndarray) -> dict[str, np.ndarray]:
    """(B,) scales for ``converged_mask``: V = max(1 V, ‖x‖∞), I = max(‖b‖∞, ‖L‖∞ · V) amperes.

    "feasibility" → 1 (volts are absolute), "stationarity" and "dual" → I, "complementarity" → I · V watts.
    I is the largest current a 1 V (or ‖x‖∞) error could drive, so tol · I is tol volts' worth of current.
    """
    x = np.asarray(x, dtype=np.float64).reshape(qp.n, qp.batch)
    v = np.maximum(1.0, np.abs(x).max(axis=0)) if qp.n else np.ones(x.shape[1])
    lnorm = abs(qp.L).sum(axis=1).max() if qp.n else 0.0
    i = np.maximum(np.abs(qp.b).max(axis=0) if qp.n else 0.0, lnorm * v)
    return {"stationarity": i, "feasibility": np.ones_like(v), "dual": i, "complementarity": i * v}


def converged_mask(residuals: dict[str, np.ndarray], tol: float,
                   scale: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B,) bool: every residual ≤ tol · scale[key].

    Pass ``scale=residual_scale(qp, x)`` (recommended): feasibility then within tol volts, stationarity and
    dual within tol · I amperes, complementarity within tol · I · V watts (see ``residual_scale``). With
    scale=None every scale is 1, i.e. tol is absolute in volts, amperes and watts alike.
    """
    keys = ("stationarity", "feasibility", "dual", "complementarity")
    ok = np.ones_like(np.asarray(residuals["feasibility"]), dtype=bool)
    for key in keys:
        ok &= np.asarray(residuals[key]) <= tol * (1.0 if scale is None else scale[key])
    return ok


def error_amplification_bound(L: sp.csr_matrix) -> np.ndarray:
    """(n,) K_i ≥ ‖L_c⁻¹ D_c‖∞ for the connected block c of L holding variable i (D = diag L, so K is
    dimensionless), for a nonsingular symmetric M-matrix L (positive diagonal, L_ij ≤ 0 off it: every stage
    QP's reduced Laplacian, nudged or not); inf where none was found (everywhere if L is not an M-matrix).
    Then L e = r implies ‖e_c‖∞ ≤ K_c · max_{j in c} |r_j| / L_jj: the residual measured node by node in
    volts (its Jacobi step), and per block, so that a weak part's large inverse does not multiply the
    residual of a strong part, or of a part it does not touch.

    L⁻¹ ≥ 0 entrywise, so any z > 0 with L z ≥ δ D 1 on a block, δ > 0, gives L_c⁻¹ D_c 1 ≤ z / δ there:
    K_c = max z / δ. z ≈ L⁻¹ D 1 comes from Jacobi-preconditioned conjugate gradients (relative residual
    1e-3, then 1e-6 and 1e-10 while some block has no such supersolution); each (L z)_i is lowered by a
    bound on its rounding error, (row length + 2) ε (|L| z)_i, so the result is a bound up to that. For
    x − x* with L (x − x*) = r (no diode row active) it bounds the error; rows that pin a variable keep it
    a bound (the rest is a principal submatrix, whose inverse is entrywise smaller); through active coupled
    rows it is an estimate.

    Up to DENSE_MAX variables K is computed from the inverse itself, K_j = max ‖row i of L⁻¹ D‖₁ over the
    rows i that j's residual reaches (L⁻¹_ij ≠ 0: j's block), with numpy (up to the inverse's rounding).
    """
    n = L.shape[0]
    if n == 0:
        return np.zeros(0)
    L = sp.csr_matrix(L)
    diag = L.diagonal()
    off = (L - sp.diags(diag)).tocoo()
    if not (np.all(diag > 0) and (off.nnz == 0 or off.data.max() <= 0.0)):
        return np.full(n, np.inf)
    if n <= DENSE_MAX:
        try:
            inverse = np.linalg.inv(L.toarray())
        except np.linalg.LinAlgError:
            return np.full(n, np.inf)
        return np.where(inverse != 0, (np.abs(inverse) @ diag)[:, None], 0.0).max(axis=0)
    from scipy.sparse.linalg import LinearOperator, cg  # lazy, like scipy.optimize above

    _, block = np.unique(connected_components(n, off.row, off.col), return_inverse=True)
    n_blocks = int(block.max()) + 1
    absL = abs(L)
    slop = (np.diff(L.indptr) + 2) * np.finfo(float).eps
    jacobi = LinearOperator((n, n), matvec=lambda v: np.ravel(v) / diag, dtype=np.float64)
    K = np.full(n_blocks, np.inf)
    z = np.ones(n)
    for rtol in (1e-3, 1e-6, 1e-10):
        z, _ = cg(L, diag, x0=z, rtol=rtol, maxiter=10 * n + 100, M=jacobi)
        delta = np.where(z > 0, (L @ z - slop * (absL @ z)) / diag, -np.inf)
        low = np.full(n_blocks, np.inf)
        np.minimum.at(low, block, delta)
        high = np.zeros(n_blocks)
        np.maximum.at(high, block, z)
        found = low > 0
        K[found] = np.minimum(K[found], high[found] / low[found])
        if np.isfinite(K).all():
            break
    return K[block]


def least_squares_multipliers(qp: QP, g: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed lam (m, B) minimising ‖Aᵀ lam + g‖₂ over the active rows (others 0), g = L x − b amperes.

    Exact on a spanning forest of the active rows (a virtual node joins the fixed ends); other rows of a
    cycle get 0. Also returns the (m, B) int32 block label of each active row (−1 inactive): rows joined
    through free variables share one, unique within a column. Used by the active-set solver, where the equality-constrained x makes the system consistent.
    """
    g = np.ascontiguousarray(g, dtype=np.float64).reshape(qp.n, np.shape(g)[-1])
    active = np.ascontiguousarray(active, dtype=np.bool_).reshape(qp.m, g.shape[1])
    return _forest_multipliers(qp.n, qp.a, qp.k, active, g)


def nonnegative_multipliers(qp: QP, g: np.ndarray, active: np.ndarray,
                            A: sp.csr_matrix | None = None) -> np.ndarray:
    """lam (m, B) ≥ 0 on the active rows minimising ‖Aᵀ lam + g‖₂ per block (see ``certificate``)."""
    lam, block = least_squares_multipliers(qp, g, active)
    if not lam.size:
        return lam
    A = qp.constraint_matrix() if A is None else A
    floor = 1e-9 * np.maximum(np.abs(g).max(axis=0, initial=0.0), np.abs(lam).max(axis=0))
    budget = NNLS_MAX_BLOCKS
    for j in np.flatnonzero((lam < -floor).any(axis=0)):
        size = np.bincount(block[:, j][block[:, j] >= 0])
        bad = np.unique(block[lam[:, j] < -floor[j], j])
        for blk in bad[size[bad] > 1][:budget]:  # a one-row block's refit is its clipped value
            budget -= 1
            rows = np.flatnonzero(block[:, j] == blk)
            sub = A[rows]
            cols = np.unique(sub.indices)
            lam[rows, j] = _nonnegative_least_squares(sub[:, cols].T, -g[cols, j])
    np.maximum(lam, 0.0, out=lam)
    return lam


def _nonnegative_least_squares(M: sp.spmatrix, rhs: np.ndarray) -> np.ndarray:
    """argmin ‖M z − rhs‖₂ over z ≥ 0: dense NNLS for up to NNLS_DENSE_ROWS unknowns, else (or if NNLS does
    not settle) bounded sparse least squares."""
    from scipy.optimize import lsq_linear, nnls  # lazy: scipy.optimize costs ~0.3 s of start-up

    if M.shape[1] <= NNLS_DENSE_ROWS:
        try:
            return nnls(M.toarray(), rhs, maxiter=50 * M.shape[1])[0]
        except RuntimeError:  # "Maximum number of iterations reached"
            pass
    return lsq_linear(M.tocsr(), rhs, bounds=(0.0, np.inf), lsmr_tol="auto", tol=1e-12).x


@njit(cache=True)
def _forest_multipliers(n, a, k, active, g):
    """Per column: BFS spanning forest of the active rows over nodes 0..n (n = the fixed ends), then peel
    leaves so each tree row carries what its child subtree needs. Floating blocks (no fixed end) first lose
    their mean, the part of g no current between their nodes can cancel (the least-squares residual)."""
    m, B = active.shape
    lam = np.zeros((m, B))
    block = np.full((m, B), -1, np.int32)
    deg = np.zeros(n + 2, np.int64)
    start = np.zeros(n + 2, np.int64)
    adj = np.empty(2 * m, np.int64)
    comp = np.full(n + 1, -1, np.int64)
    parent = np.full(n + 1, -1, np.int64)
    order = np.empty(n + 1, np.int64)
    d = np.zeros(n + 1)
    acc = np.zeros(n + 1)
    for j in range(B):
        deg[:] = 0
        for r in range(m):
            if active[r, j]:
                deg[(a[r] if a[r] >= 0 else n) + 1] += 1
                deg[(k[r] if k[r] >= 0 else n) + 1] += 1
        for v in range(n + 1):
            start[v + 1] = start[v] + deg[v + 1]
        fill = start[:n + 1].copy()
        for r in range(m):
            if active[r, j]:
                u = a[r] if a[r] >= 0 else n
                w = k[r] if k[r] >= 0 else n
                adj[fill[u]] = r
                fill[u] += 1
                adj[fill[w]] = r
                fill[w] += 1
        comp[:] = -1
        head = 0
        ncomp = 0
        for s0 in range(n, -1, -1):  # the fixed node n first: its block is grounded
            if comp[s0] >= 0 or start[s0 + 1] == start[s0]:
                continue
            first = head
            comp[s0] = ncomp
            parent[s0] = -1
            order[head] = s0
            head += 1
            tail = first
            while tail < head:
                u = order[tail]
                tail += 1
                for e in range(start[u], start[u + 1]):
                    r = adj[e]
                    w = (k[r] if k[r] >= 0 else n) if (a[r] if a[r] >= 0 else n) == u else (a[r] if a[r] >= 0 else n)
                    if comp[w] < 0:
                        comp[w] = ncomp
                        parent[w] = r
                        order[head] = w
                        head += 1
            total = 0.0
            for t in range(first, head):
                v = order[t]
                d[v] = -g[v, j] if v < n else 0.0
                acc[v] = 0.0
                total += d[v]
            if s0 != n:  # floating block: remove the mean
                mean = total / (head - first)
                for t in range(first, head):
                    d[order[t]] -= mean
            for t in range(head - 1, first, -1):
                v = order[t]
                r = parent[v]
                sgn = 1.0 if a[r] == v else -1.0
                val = sgn * (d[v] - acc[v])
                lam[r, j] = val
                u = (k[r] if k[r] >= 0 else n) if sgn > 0 else (a[r] if a[r] >= 0 else n)
                acc[u] -= sgn * val
            ncomp += 1
        # blocks of the non-negative refit: rows joined through free variables (the fixed node n has no
        # equation, so it couples nothing)
        comp[:] = -1
        nblk = 0
        for s0 in range(n):
            if comp[s0] >= 0 or start[s0 + 1] == start[s0]:
                continue
            comp[s0] = nblk
            order[0] = s0
            head, tail = 1, 0
            while tail < head:
                u = order[tail]
                tail += 1
                for e in range(start[u], start[u + 1]):
                    r = adj[e]
                    block[r, j] = nblk
                    w = (k[r] if k[r] >= 0 else n) if a[r] == u else (a[r] if a[r] >= 0 else n)
                    if w < n and comp[w] < 0:
                        comp[w] = nblk
                        order[head] = w
                        head += 1
            nblk += 1
    return lam, block


def infeasible_rows(qp: QP) -> "InfeasibleRows | None":
    """Rows of a negative cycle of the diode rows, or None when every column admits some x.

    Row r says x[a_r] − x[k_r] ≤ c_r: an edge k_r → a_r of weight c_r in the constraint graph, with −1 ends
    at a virtual node fixed at 0 V. A column is infeasible iff that graph has a cycle of weight
    < −1e-12 · max(1 V, max|c|) (a zero-weight cycle is an exact tie, feasible). Plain bounds (lo > hi on one
    variable) are checked first, vectorised; then Bellman-Ford with early exit (Numba) per column.
    Returns an ``InfeasibleRows`` (a list of row indices in cycle order, with ``.column`` the first infeasible
    batch column) or None.
    """
    for j in range(qp.batch):
        c = np.ascontiguousarray(qp.c[:, j])
        eps = 1e-12 * max(1.0, np.abs(c).max(initial=0.0))
        rows = _bound_conflict(qp.n, qp.a, qp.k, c, eps)
        if rows is None:
            cyc = _negative_cycle(qp.n, qp.a, qp.k, c, eps)
            rows = list(cyc) if len(cyc) else None
        if rows is not None:
            return InfeasibleRows(rows, column=j)
    return None


class InfeasibleRows(list):
    """Row indices (ints) of a negative cycle of diode rows; ``column`` is the batch column concerned."""

    def __init__(self, rows, column: int):
        super().__init__(int(r) for r in rows)
        self.column = column


def _bound_conflict(n, a, k, c, eps):
    """[upper row, lower row] of the first variable whose bounds cross by more than eps volts, or None."""
    up, lo = (a >= 0) & (k < 0), (a < 0) & (k >= 0)
    hi = np.full(n, np.inf)
    np.minimum.at(hi, a[up], c[up])
    low = np.full(n, -np.inf)
    np.maximum.at(low, k[lo], -c[lo])
    bad = np.flatnonzero(low > hi + eps)
    if not len(bad):
        return None
    i = bad[0]
    r_up = np.flatnonzero(up & (a == i))
    r_lo = np.flatnonzero(lo & (k == i))
    return [int(r_up[np.argmin(c[r_up])]), int(r_lo[np.argmin(c[r_lo])])]


@njit(cache=True)
def _negative_cycle(n, a, k, c, eps):
    """Bellman-Ford over edges k_r → a_r (weight c_r, −1 = node n) from a virtual source at distance 0 to
    every node; relax only on improvements > eps. After each pass the predecessor graph is searched for a
    cycle (any such cycle is negative); returns its rows in cycle order, or an empty array if none."""
    m = len(a)
    N = n + 1
    dist = np.zeros(N)
    pred = np.full(N, -1, np.int64)  # row that last lowered the node
    mark = np.zeros(N, np.int64)
    for sweep in range(N + 1):
        changed = False
        for r in range(m):
            u = k[r] if k[r] >= 0 else n
            v = a[r] if a[r] >= 0 else n
            nd = dist[u] + c[r]
            if nd < dist[v] - eps:
                dist[v] = nd
                pred[v] = r
                changed = True
        if not changed:
            return np.empty(0, np.int64)
        # cycle search in the predecessor graph: walk from each node, marking with its start id
        mark[:] = -1
        for s0 in range(N):
            v = s0
            while v >= 0 and mark[v] < 0:
                mark[v] = s0
                r = pred[v]
                v = (k[r] if k[r] >= 0 else n) if r >= 0 else -1
            if v >= 0 and mark[v] == s0:  # closed a loop started in this walk
                cyc = []
                w = v
                while True:
                    r = pred[w]
                    cyc.append(r)
                    w = k[r] if k[r] >= 0 else n
                    if w == v:
                        break
                out = np.empty(len(cyc), np.int64)
                for t in range(len(cyc)):
                    out[t] = cyc[len(cyc) - 1 - t]
                return out
    return np.empty(0, np.int64)
