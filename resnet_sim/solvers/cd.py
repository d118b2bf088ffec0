"""Exact coordinate descent (Numba), colour-blocked and batched over B right-hand sides.

Minimises E(x) = ½ xᵀLx − bᵀx subject to the diode rows x[a] − x[k] ≤ c (see ``qp.py``) by
two kinds of exact steps, repeated in sweeps:

1. Node step, for every variable i in colour order (a colour shares no resistor and no coupled diode,
   so one colour is an exact block step):
       x_i ← clip((b_i − Σ_{j≠i} L_ij x_j) / L_ii, lo_i, hi_i)
   lo/hi are the static bounds (rows with one fixed end: x[a] ≤ c is an upper bound on a, x[k] ≥ −c a
   lower bound on k), tightened by the coupled rows at the neighbour's current value (i anode:
   x_i ≤ x_k + c; i cathode: x_i ≥ x_a − c).
2. Cluster shift, after each sweep of node steps: the coupled rows that are active (x_a − x_k ≥ c − tol)
   join their end variables into clusters; each cluster C is moved rigidly, x_C ← x_C + t, by the exact
   minimiser t = −Σ_C (Lx − b)_i / (1_Cᵀ L 1_C), clipped so that every bound and every coupled row
   leaving C stays satisfied. Active rows inside C keep their slack, so the point stays feasible.

Why step 2: node steps alone stall at a wrong point when a conducting diode joins a node pulled up to a
node pulled down (10 V −1k− b −1k− ground, diode b→c, c −1k− ground, started at 0 V: b is capped at c
and c is floored at b, so both stay at 0 V, while the optimum is b = c = 10/3 V). For one active diode
the cluster shift is the exact 2-variable step along the line x_a = x_k + c; the unconstrained 2×2
minimiser is not needed, since when it lies on the open side of the row the node steps reach it.
Chains of active diodes move as one cluster. What node steps and whole-cluster shifts cannot do is
split a cluster whose two halves are pulled apart while its ends are pinned: such fixed points are
reported by the KKT certificate, and the active-set solver polishes them.

Every step keeps the iterate feasible and never raises the energy; the start point (x0, or 0 V) is
first made feasible (clip to the static bounds, then the least raise and greatest lowering that satisfy
the coupled rows). Sweeps stop when the largest change of a sweep is below ``tol`` volts (a step
criterion: on slowly converging, mesh-like circuits the error can be larger than the last step).

Data layout: variables renumbered by colour; the off-diagonal part of L as CSR (int32 column indices)
in that order; X is (n, B) C-order, so the inner loop over the batch is contiguous.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from .colouring import colour_variables
from .qp import QP, QPSolution

MAX_SPLIT = 32  # clusters of active diodes up to this many variables also try to split (cost ~ size³)


# ---- kernels ---------------------------------------------------------------------------------------
@njit(cache=True)
def _violated(xa, xk, c):
    """xa − xk > c beyond rounding (1e-14 relative), so that x_a = x_k + c counts as satisfied."""
    return xa - xk - c > 1e-14 * (abs(xa) + abs(xk) + abs(c))


@njit(cache=True)
def _relax(X, b, ca, ck, cc, move_cathode):
    """Label-correcting passes over the coupled rows of column b: each violated row moves its cathode
    up (move_cathode) or its anode down onto x_a = x_k + c. False if still changing after m + 1 passes
    (a cycle of rows with negative total c: no x exists)."""
    m = len(ca)
    for sweep in range(m + 2):
        changed = False
        for r in range(m):
            if _violated(X[ca[r], b], X[ck[r], b], cc[r, b]):
                if move_cathode:
                    X[ck[r], b] = X[ca[r], b] - cc[r, b]
                else:
                    X[ca[r], b] = X[ck[r], b] + cc[r, b]
                changed = True
        if not changed:
            return True
    return False


@njit(cache=True)
def _make_feasible(X, lo, hi, ca, ck, cc):
    """Make X (n, B) satisfy lo ≤ X ≤ hi and X[ca] − X[ck] ≤ cc in place; False when no x exists.

    Clip to [lo, hi]; raise cathodes (the least raise satisfying the coupled rows); cap at hi and lower
    anodes (the greatest lowering). When some x is feasible, the result then also respects lo.
    """
    n, B = X.shape
    for i in range(n):
        for b in range(B):
            if lo[i, b] > hi[i, b]:
                return False
            X[i, b] = min(max(X[i, b], lo[i, b]), hi[i, b])
    for b in range(B):
        if not _relax(X, b, ca, ck, cc, True):
            return False
        for i in range(n):
            X[i, b] = min(X[i, b], hi[i, b])
        if not _relax(X, b, ca, ck, cc, False):
            return False
    for i in range(n):
        for b in range(B):
            if _violated(lo[i, b], X[i, b], 0.0):
                return False
            X[i, b] = max(X[i, b], lo[i, b])
    return True


@njit(cache=True)
def _node_sweep(indptr, indices, data, inv_diag, rhs, lo, hi, cptr, cother, crow, cside, cc, X, acc):
    """One sweep of node steps over all variables (in colour order); returns the largest change (V)."""
    n, B = X.shape
    step = 0.0
    for i in range(n):
        for b in range(B):
            acc[b] = rhs[i, b]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p]
            for b in range(B):
                acc[b] -= v * X[j, b]
        d = inv_diag[i]
        q0, q1 = cptr[i], cptr[i + 1]
        for b in range(B):
            low = lo[i, b]
            high = hi[i, b]
            for q in range(q0, q1):
                if cside[q] > 0:
                    high = min(high, X[cother[q], b] + cc[crow[q], b])
                else:
                    low = max(low, X[cother[q], b] - cc[crow[q], b])
            xn = min(max(acc[b] * d, low), high)
            s = abs(xn - X[i, b])
            if s > step:
                step = s
            X[i, b] = xn
    return step


@njit(cache=True)
def _find(parent, u):
    while parent[u] != u:
        parent[u] = parent[parent[u]]
        u = parent[u]
    return u


@njit(cache=True)
def _shift_set(S, ns, mark, stamp, b, indptr, indices, data, diag, rhs, lo, hi, cptr, cother, crow, cside, cc, X):
    """Move the variables S[:ns] (marked ``mark[i] == stamp``) of column b by the same exact step t.

    t minimises the energy along 1_S, clipped so that the bounds of S and every coupled row leaving S
    stay satisfied. Returns |t| (V).
    """
    grad = 0.0
    curv = 0.0
    tlo = -np.inf
    thi = np.inf
    for s in range(ns):
        i = S[s]
        g = diag[i] * X[i, b] - rhs[i, b]
        curv += diag[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            g += data[p] * X[j, b]
            if mark[j] == stamp:
                curv += data[p]
        grad += g
        tlo = max(tlo, lo[i, b] - X[i, b])
        thi = min(thi, hi[i, b] - X[i, b])
        for q in range(cptr[i], cptr[i + 1]):
            j = cother[q]
            if mark[j] == stamp:
                continue
            if cside[q] > 0:
                thi = min(thi, X[j, b] + cc[crow[q], b] - X[i, b])
            else:
                tlo = max(tlo, X[j, b] - cc[crow[q], b] - X[i, b])
    if curv <= 0.0 or tlo > thi:
        return 0.0
    t = min(max(-grad / curv, tlo), thi)
    for s in range(ns):
        X[S[s], b] += t
    return abs(t)


@njit(cache=True)
def _cluster_shift(indptr, indices, data, diag, rhs, lo, hi, cptr, cother, crow, cside, cc,
                   ca, ck, cnode, compact, eps, max_split, X, work):
    """Rigid exact shifts of the clusters of active coupled rows (step 2 of the module docstring).

    For every column: union-find over the active rows (x_a − x_k ≥ c − eps) gives the clusters and a
    spanning tree of each; each cluster is shifted as a whole, and, for clusters of 3..max_split
    variables, so is each side of each tree row (that row opens), so that a cluster whose halves
    are pulled apart splits. ``cnode`` (nc,) lists the variables touching a coupled row and ``compact``
    (n,) numbers them (−1 elsewhere); ``work`` is scratch allocated by ``_descend``. Returns the largest
    shift (V).
    """
    n, B = X.shape
    parent, root, members, start, fill, tree, tstart, tfill, mark, S, side, last_stamp = work
    nc = len(cnode)
    m = len(ca)
    stamp = last_stamp[0]
    step = 0.0
    for b in range(B):
        for u in range(nc):
            parent[u] = u
        ntree = 0
        for r in range(m):
            if X[ca[r], b] - X[ck[r], b] >= cc[r, b] - eps:
                ru = _find(parent, compact[ca[r]])
                rv = _find(parent, compact[ck[r]])
                if ru != rv:
                    parent[ru] = rv
                    tree[ntree] = r
                    ntree += 1
        if ntree == 0:
            continue
        # group variables and tree rows by cluster root (counting sort)
        start[:] = 0
        tstart[:] = 0
        for u in range(nc):
            root[u] = _find(parent, u)
            start[root[u] + 1] += 1
        for e in range(ntree):
            tstart[root[compact[ca[tree[e]]]] + 1] += 1
        for u in range(nc):
            start[u + 1] += start[u]
            tstart[u + 1] += tstart[u]
        fill[:] = start[:nc]
        for u in range(nc):
            members[fill[root[u]]] = cnode[u]
            fill[root[u]] += 1
        tfill[:] = tstart[:nc]
        for e in range(ntree):
            r0 = root[compact[ca[tree[e]]]]
            tree[ntree + tfill[r0]] = tree[e]
            tfill[r0] += 1
        for r0 in range(nc):
            size = start[r0 + 1] - start[r0]
            if size < 2:
                continue
            mem = members[start[r0]:start[r0 + 1]]
            stamp += 1
            for s in range(size):
                mark[mem[s]] = stamp
            step = max(step, _shift_set(mem, size, mark, stamp, b, indptr, indices, data, diag, rhs, lo, hi,
                                        cptr, cother, crow, cside, cc, X))
            if size < 3 or size > max_split:
                continue
            rows = tree[ntree + tstart[r0]:ntree + tstart[r0 + 1]]
            for e in range(len(rows)):
                # side[v] for v in mem: reachable from the anode of rows[e] without crossing it
                for s in range(size):
                    side[mem[s]] = False
                side[ca[rows[e]]] = True
                grown = True
                while grown:
                    grown = False
                    for f in range(len(rows)):
                        if f != e and side[ca[rows[f]]] != side[ck[rows[f]]]:
                            side[ca[rows[f]]] = True
                            side[ck[rows[f]]] = True
                            grown = True
                for part in (True, False):
                    stamp += 1
                    ns = 0
                    for s in range(size):
                        if side[mem[s]] == part:
                            S[ns] = mem[s]
                            mark[mem[s]] = stamp
                            ns += 1
                    step = max(step, _shift_set(S, ns, mark, stamp, b, indptr, indices, data, diag, rhs, lo, hi,
                                                cptr, cother, crow, cside, cc, X))
    last_stamp[0] = stamp
    return step


@njit(cache=True)
def _descend(indptr, indices, data, diag, rhs, lo, hi, cptr, cother, crow, cside, cc,
             ca, ck, cnode, compact, tol, max_split, max_sweeps, X):
    """Sweeps of node steps and cluster shifts until the largest change is below tol; (sweeps, last change)."""
    n, B = X.shape
    inv_diag = 1.0 / diag
    acc = np.empty(B)
    nc = len(cnode)
    work = (np.empty(nc, np.int64), np.empty(nc, np.int64), np.empty(nc, np.int64), np.empty(nc + 1, np.int64),
            np.empty(nc, np.int64), np.empty(2 * nc, np.int64), np.empty(nc + 1, np.int64),
            np.empty(nc, np.int64), np.zeros(n, np.int64), np.empty(nc, np.int64), np.zeros(n, np.bool_),
            np.zeros(1, np.int64))
    step = np.inf
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        step = _node_sweep(indptr, indices, data, inv_diag, rhs, lo, hi, cptr, cother, crow, cside, cc, X, acc)
        if len(ca):
            shift = _cluster_shift(indptr, indices, data, diag, rhs, lo, hi, cptr, cother, crow, cside, cc,
                                   ca, ck, cnode, compact, tol, max_split, X, work)
            step = max(step, shift)
        if step < tol:
            break
    return sweeps, step


# ---- Python layer: validate, renumber, allocate, dispatch ------------------------------------------
def _check_colours(qp: QP, colours) -> np.ndarray:
    """Validate a colouring (shape, and no conflict across an off-diagonal of L or a coupled row)."""
    from .colouring import conflict_graph

    colours = np.asarray(colours, dtype=np.int64)
    if colours.shape != (qp.n,):
        raise ValueError(f"colours must have shape ({qp.n},), got {colours.shape}")
    g = conflict_graph(qp).tocoo()
    clash = np.flatnonzero(colours[g.row] == colours[g.col])
    if len(clash):
        i, j = g.row[clash[0]], g.col[clash[0]]
        raise ValueError(f"colours is not a valid colouring: variables {i} and {j} are coupled and share colour {colours[i]}")
    return colours


def _static_bounds(qp: QP) -> tuple[np.ndarray, np.ndarray]:
    """(n, B) lower and upper bounds (V) from the diode rows with one fixed end; ±inf where none."""
    lo = np.full((qp.n, qp.batch), -np.inf)
    hi = np.full((qp.n, qp.batch), np.inf)
    upper = np.flatnonzero(qp.k < 0)
    lower = np.flatnonzero(qp.a < 0)
    np.minimum.at(hi, qp.a[upper], qp.c[upper])
    np.maximum.at(lo, qp.k[lower], -qp.c[lower])
    return lo, hi


def _coupled_adjacency(n: int, ca: np.ndarray, ck: np.ndarray):
    """Per-variable lists of coupled rows as CSR: (ptr, other end, row, side +1 anode / −1 cathode)."""
    m = len(ca)
    owner = np.concatenate([ca, ck])
    order = np.argsort(owner, kind="stable")
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=ptr[1:])
    other = np.concatenate([ck, ca])[order]
    row = np.concatenate([np.arange(m), np.arange(m)])[order]
    side = np.concatenate([np.ones(m, np.int64), -np.ones(m, np.int64)])[order]
    return ptr, other.astype(np.int64), row.astype(np.int64), side


def solve_cd(qp: QP, x0=None, tol: float = 1e-9, max_sweeps: int = 100_000, colours=None) -> QPSolution:
    """Solve ``qp`` by exact colour-blocked coordinate descent (see the module docstring).

    x0: (n,) or (n, B) warm start in volts (made feasible first); default 0 V. tol: step criterion in
    volts. colours: a cached ``colour_variables(qp)``. Returns a QPSolution with x (n, B) volts, lam (m, B)
    diode currents in amperes (from the KKT certificate), ``iterations`` = sweeps and info keys
    ``max_step`` (V, the last sweep's largest change), ``converged`` (step criterion met before
    ``max_sweeps``), ``n_colours``, ``residuals`` (the certificate's).
    """
    n, B = qp.n, qp.batch
    if not (tol > 0):
        raise ValueError(f"tol must be positive, got {tol}")
    if not (np.all(np.isfinite(qp.b)) and np.all(np.isfinite(qp.c))):
        raise ValueError("qp.b and qp.c must be finite")
    diag = qp.L.diagonal()
    if n and not np.all(diag > 0):
        raise ValueError(f"L must have a positive diagonal; variable {int(np.argmin(diag))} has L_ii = {diag.min()}")
    colours = colour_variables(qp) if colours is None else _check_colours(qp, colours)

    perm = np.argsort(colours, kind="stable")  # new index -> old
    rank = np.empty(n, np.int64)
    rank[perm] = np.arange(n)
    Lp = qp.L[perm][:, perm].tocsr()
    off = (Lp - sp.diags(Lp.diagonal())).tocsr()
    off.eliminate_zeros()
    off.sort_indices()

    lo, hi = (np.ascontiguousarray(z[perm]) for z in _static_bounds(qp))
    coupled = np.flatnonzero((qp.a >= 0) & (qp.k >= 0))
    ca, ck = rank[qp.a[coupled]], rank[qp.k[coupled]]
    cc = np.ascontiguousarray(qp.c[coupled])
    cptr, cother, crow, cside = _coupled_adjacency(n, ca, ck)
    cnode = np.unique(np.concatenate([ca, ck]))
    compact = np.full(n, -1, np.int64)
    compact[cnode] = np.arange(len(cnode))

    if x0 is None:
        X = np.zeros((n, B))
    else:
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.ndim == 1:
            x0 = x0[:, None]
        if x0.shape not in ((n, 1), (n, B)):
            raise ValueError(f"x0 must have shape ({n},), ({n}, 1) or ({n}, {B}), got {x0.shape}")
        X = np.array(np.broadcast_to(x0[perm], (n, B)), dtype=np.float64, order="C")
    if not _make_feasible(X, lo, hi, ca, ck, cc):
        raise ValueError("the diode rows admit no x (conflicting bounds or a cycle of coupled rows); "
                         "resnet_sim.solvers.kkt.infeasible_rows names them")

    rhs = np.ascontiguousarray(qp.b[perm])
    sweeps, step = _descend(off.indptr.astype(np.int64), off.indices.astype(np.int32), off.data,
                            np.ascontiguousarray(Lp.diagonal()), rhs, lo, hi, cptr, cother, crow, cside, cc,
                            ca, ck, cnode, compact, float(tol), MAX_SPLIT, int(max_sweeps), X)
    x = X[rank]
    lam, residuals = _diode_currents(qp, x)
    info = {"max_step": float(step), "converged": bool(step < tol), "n_colours": int(colours.max(initial=-1) + 1),
            "residuals": residuals}
    return QPSolution(x=x, lam=lam, iterations=int(sweeps), method="cd", info=info)


def _diode_currents(qp: QP, x: np.ndarray):
    """Diode currents (m, B) amperes and KKT residuals from H4's certificate (resnet_sim.solvers.kkt)."""
    from .kkt import certificate

    return certificate(qp, x)
