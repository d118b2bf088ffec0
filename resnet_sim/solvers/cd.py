"""Exact coordinate descent (Numba), colour-blocked and batched over B right-hand sides.

Minimises E(x) = ½ xᵀLx − bᵀx subject to the diode rows x[a] − x[k] ≤ c (see ``qp.py``) by
three kinds of exact steps, repeated in sweeps:

1. Node step, for every variable i in colour order (a colour shares no resistor and no coupled diode,
   so one colour is an exact block step):
       x_i ← clip((b_i − Σ_{j≠i} L_ij x_j) / L_ii, lo_i, hi_i)
   lo/hi are the static bounds (rows with one fixed end: x[a] ≤ c is an upper bound on a, x[k] ≥ −c a
   lower bound on k), tightened by the coupled rows at the neighbour's current value (i anode:
   x_i ≤ x_k + c; i cathode: x_i ≥ x_a − c). A coupled row that cuts a node step short is *binding*.
2. Cluster shift, after a sweep of node steps (every sweep at first, then every CLUSTER_EVERY-th and
   whenever the node steps fall below tol): the coupled rows that are active (slack < tol) or
   were binding in that sweep join their end variables into clusters; each cluster C that holds a
   binding row is moved rigidly, x_C ← x_C + t, by the exact minimiser
   t = −Σ_C (Lx − b)_i / (1_Cᵀ L 1_C), clipped so that every bound and every coupled row leaving C stays
   satisfied. Rows inside C keep their slack, so the point stays feasible. Clusters of 3..MAX_SPLIT
   variables also shift each side of each row of a spanning tree of their rows (that row opens), so a
   cluster whose halves are pulled apart splits.
3. Global shift, after a sweep of node steps (every sweep while it moves by ≥ tol, else as step 2):
   all variables of a column move by the same exact step, clipped to the bounds (coupled rows keep
   their slack). A one-aggregate coarse correction: it removes the slowest mode of a network tied to
   its fixed nodes by few resistors (1ᵀL1 small), which node steps alone take thousands of sweeps to
   settle (random graphs: 3831 → 326 sweeps on random-1k).

4. Part shift, on every sweep, when the QP has floating parts (``QP.floating``: variables with no
   resistive path to a fixed node): each group of whole parts joined by active rows has no curvature, so
   its energy is linear along its rigid shift and it moves to the limit its injected current pushes it
   towards (``_part_shifts``). A variable with no resistor at all takes that step as its node step (its
   rhs is ±inf or 0 by the sign of its current). A part that nothing stops runs off to ±inf: the sweeps
   stop and ``solve_cd`` raises ``Unbounded``.

Why step 2: node steps alone stall at a wrong point when a conducting diode joins a node pulled up to a
node pulled down (10 V −1k− b −1k− ground, diode b→c, c −1k− ground, started at 0 V: b is capped at c
and c is floored at b, so both stay at 0 V, while the optimum is b = c = 10/3 V). For one diode the
cluster shift is the exact 2-variable step along the line x_a = x_k + c; the unconstrained 2×2
minimiser is not needed, because when it lies on the open side of the row the node steps reach it.
Chains of conducting diodes move as one cluster. Stalls can remain where several rows must open at
once (dense tangles of diodes with cycles); the KKT certificate reports them, and the active-set solver
polishes them.

Every step keeps the iterate feasible and never raises the energy; the start point (x0, or 0 V) is
first made feasible (clip to the static bounds, then the least raise and greatest lowering that satisfy
the coupled rows). Sweeps stop when the largest change of a sweep is below ``tol`` volts (a step
criterion: on slowly converging, mesh-like circuits the error can be larger than the last step).
Node steps can be over-relaxed (``omega``); ω = 1 is exact coordinate descent.

Data layout: variables renumbered by colour; within a colour, for B = 1, the unconstrained ones first,
then those with static bounds only, then those with coupled rows, each group by number of neighbours
(so the branches on bounds and the length of the inner loop change rarely), then in their original
order (neighbours stay close in memory); for B > 1 by number of neighbours, then in their original
order (see ``kernel_arrays``); coupled rows in the order the sweep first meets them; the
off-diagonal part of L as CSR (int32 column indices) in that order with each row divided by L_ii (so a
node step is one dot product, b/L_ii likewise); bounds and coupled-row lists only for the variables that
have any (``bref`` maps a variable to them); X is (n, B) C-order, so the inner loop over the batch is
contiguous (B = 1: a scalar loop over 1-D views). Columns are solved in blocks of ``block_width``
columns, each to its own convergence, so that a block's potentials stay in cache across sweeps. In
large blocks, runs of rows with one neighbour list (dense layers) form their sums together
(``row_groups``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .colouring import colour_variables
from .prefetch import prefetch, prefetch_row
from .qp import QP, QPSolution, Unbounded

# contraction (FMA) only: bounds use ±inf, so no "ninf"/"nnan" assumptions. No "reassoc" (nor "arcp"): with
# it, a kernel's bits depended on whether its callees were compiled in the same process or loaded from
# Numba's cache (LLVM optimises across what it can inline), so a resumed run or a Dask worker differed from
# an uninterrupted run in the last bit; dropping it cost nothing measurable (DRN-1H, 30k random graph,
# 100x100 grid, medians of 5), while dropping "contract" too cost 10-40 %.
_FASTMATH = {"contract", "nsz"}
MAX_SPLIT = 32  # clusters up to this many variables also try to split (cost ~ size³ per sweep)
CLUSTER_EVERY = 4  # cluster shifts on the first sweeps, then every this many (and whenever node steps < tol)
# hot-loop subscripts are cast to unsigned: Numba then omits the negative-index wraparound test, which
# more than doubles the speed of the node-step loop (measured on a 300×300 grid, B = 1, bounds left
# out: 0.5 → 1.3 G edge updates/s)
_U = np.uint64


# batched sweeps step runs of rows with one neighbour list together (``row_groups``; dense layers)
GROUP_ROW0 = 4  # scratch rows 0-3: acc, step, low, high; then one per row of a group
GROUP_MAX = 16  # rows per group (their sums, 16 × B doubles, stay in L1 for B up to about 256)
GROUP_MIN_TERMS = 16  # rows with fewer neighbours are not grouped
# only blocks whose potentials exceed this (about L2) are grouped: then neighbour rows come from L3 and one
# read per run saves time; closer to the core the grouped loops cost more than they save. Measured
# (edge updates/s of a sweep, medians of 5-6, alternating): DRN-1H, B = 256 (2.1 MB): 10.2-10.4 ->
# 12.7-13.8 G grouped; DRN-XS, B = 256 (0.2 MB): 15.0 -> 13.0 G grouped
GROUP_BYTES = 1e6


# ---- kernels ---------------------------------------------------------------------------------------
def aligned_empty(rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float64, C order, uninitialised, starting on a 64-byte boundary (a cache line). numpy's
    large arrays start 16 bytes past one, so that a row of 32 doubles spans five lines, not four: aligned
    potentials and right-hand sides (and the kernels' scratch) made batched sweeps faster, edge updates/s,
    medians of 5 in rounds: DRN-1H, B = 256: 13.5-15.1 -> 19.2-19.6 G; 100x100 grid, B = 256: 4.5-4.8 ->
    5.4-5.9 G; random graph of 30k nodes, B = 256 (blocks of 32): 2.7-2.9 -> 3.2 G; DRN-XS 14.8 -> 16.5
    G. Allocated by numpy, not in a Numba function: numpy asks the kernel for transparent huge pages on
    arrays of 4 MB or more, Numba's allocator does not, and out of cache the TLB misses cost (medians of
    5 in rounds against Numba-allocated blocks: random graph of 300k nodes, B = 26: 1.67 -> 1.83 G;
    300x300 grid, B = 88: 3.27 -> 3.38 G; in-cache configurations unchanged)."""
    buf = np.empty(rows * cols + 8)
    start = ((-buf.ctypes.data) % 64) // 8
    return buf[start:start + rows * cols].reshape((rows, cols))


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A copy of the 2-D float64 array a in ``aligned_empty`` storage."""
    out = aligned_empty(*a.shape)
    out[...] = a
    return out


@njit(cache=True)
def _violated(xa, xk, c):
    """xa − xk > c beyond rounding: by more than 1e-12 · max(1, |xa| + |xk| + |c|) volts, the tie tolerance
    of ``kkt.infeasible_rows`` (so a window that rounding closes, 0.1 + 0.2 ≤ x ≤ 0.3, stays feasible)."""
    return xa - xk - c > 1e-12 * max(1.0, abs(xa) + abs(xk) + abs(c))


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
def _make_feasible(X, cnode, blo, bhi, ca, ck, cc):
    """Make X (n, B) satisfy the bounds blo ≤ X[cnode] ≤ bhi and X[ca] − X[ck] ≤ cc in place; False when
    no x exists. Clip to the bounds; raise cathodes (the least raise satisfying the coupled rows); cap at
    bhi and lower anodes (the greatest lowering). When some x is feasible, the result respects blo."""
    B = X.shape[1]
    for t in range(len(cnode)):
        for b in range(B):
            if _violated(blo[t, b], bhi[t, b], 0.0):
                return False
            X[cnode[t], b] = min(max(X[cnode[t], b], blo[t, b]), bhi[t, b])
    for b in range(B):
        if not _relax(X, b, ca, ck, cc, True):
            return False
        for t in range(len(cnode)):
            X[cnode[t], b] = min(X[cnode[t], b], bhi[t, b])
        if not _relax(X, b, ca, ck, cc, False):
            return False
    for t in range(len(cnode)):
        for b in range(B):
            if _violated(blo[t, b], X[cnode[t], b], 0.0):
                return False
            X[cnode[t], b] = max(X[cnode[t], b], blo[t, b])
    return True


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _clip_coupled(u, t, b, blo, bhi, cptr, cother, crow, cside, cc, X, bind, sweep):
    """u (V) clipped to the static bounds of constrained variable t in column b, tightened by its coupled
    rows at the neighbours' values X[j, b]; a coupled row that cuts u short gets bind[row, b] = sweep."""
    low, high = blo[t, b], bhi[t, b]
    for q in range(cptr[t], cptr[t + 1]):
        if cside[q] > 0:
            high = min(high, X[cother[q], b] + cc[crow[q], b])
        else:
            low = max(low, X[cother[q], b] - cc[crow[q], b])
    above, below = u > high, u < low
    for q in range(cptr[t], cptr[t + 1]):  # selects, not branches: whether a row binds is unpredictable
        r = crow[q]
        if cside[q] > 0:
            bind[r, b] = sweep if above and X[cother[q], b] + cc[r, b] <= high else bind[r, b]
        else:
            bind[r, b] = sweep if below and X[cother[q], b] - cc[r, b] >= low else bind[r, b]
    return min(max(u, low), high)


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _constrain(acc, t, blo, bhi, cptr, cother, crow, cside, cc, X, low, high, bind, sweep):
    """``_clip_coupled`` for every column of acc (B,) at once, in place; low, high: (B,) scratch."""
    B = len(acc)
    for b in range(B):
        low[b] = blo[t, b]
        high[b] = bhi[t, b]
    for q in range(cptr[t], cptr[t + 1]):
        j, r = cother[q], crow[q]
        if cside[q] > 0:
            for b in range(B):
                high[b] = min(high[b], X[j, b] + cc[r, b])
        else:
            for b in range(B):
                low[b] = max(low[b], X[j, b] - cc[r, b])
    for q in range(cptr[t], cptr[t + 1]):
        j, r = cother[q], crow[q]
        if cside[q] > 0:
            for b in range(B):
                bind[r, b] = sweep if acc[b] > high[b] and X[j, b] + cc[r, b] <= high[b] else bind[r, b]
        else:
            for b in range(B):
                bind[r, b] = sweep if acc[b] < low[b] and X[j, b] - cc[r, b] >= low[b] else bind[r, b]
    for b in range(B):
        acc[b] = min(max(acc[b], low[b]), high[b])


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _one_coupled_row(acc, t, q, blo, bhi, cother, crow, cside, cc, X, bind, sweep):
    """``_constrain`` for a variable with exactly one coupled row (entry q of its list), in one pass over
    the batch (measured 1.16x faster on a 300x300 grid, B = 88, than the general form's five passes).
    With one row, the row binds when it cuts acc short and is at least as tight as the static bound."""
    j, r = _U(cother[q]), _U(crow[q])
    if cside[q] > 0:
        for b in range(len(acc)):
            limit = X[j, b] + cc[r, b]
            high = min(bhi[t, b], limit)
            bind[r, b] = sweep if acc[b] > high and limit <= bhi[t, b] else bind[r, b]
            acc[b] = min(max(acc[b], blo[t, b]), high)
    else:
        for b in range(len(acc)):
            limit = X[j, b] - cc[r, b]
            low = max(blo[t, b], limit)
            bind[r, b] = sweep if acc[b] < low and limit >= blo[t, b] else bind[r, b]
            acc[b] = min(max(acc[b], low), bhi[t, b])


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _row_residual(indptr, indices, data, x, i, u):
    """u − Σ_p data[p] x[indices[p]] over row i (B = 1); rows of 8 or more terms use four partial sums,
    so the adds do not wait on each other (measured: DRN rows about 1.5× faster). Subscripts are
    unsigned (``_U``)."""
    p0, p1 = _U(indptr[i]), _U(indptr[i + 1])
    if p1 - p0 < _U(8):
        for p in range(p0, p1):
            u -= data[p] * x[_U(indices[p])]
        return u
    u1 = u2 = u3 = 0.0
    p = p0
    while p + _U(3) < p1:
        u -= data[p] * x[_U(indices[p])]
        u1 -= data[p + _U(1)] * x[_U(indices[p + _U(1)])]
        u2 -= data[p + _U(2)] * x[_U(indices[p + _U(2)])]
        u3 -= data[p + _U(3)] * x[_U(indices[p + _U(3)])]
        p += _U(4)
    for q in range(p, p1):
        u -= data[q] * x[_U(indices[q])]
    return (u + u1) + (u2 + u3)


@njit(cache=True, fastmath=_FASTMATH)
def _scalar_sweep(indptr, indices, data, rhs, bref, blo, bhi, cptr, cother, crow, cside, cc, x, X, bind, sweep,
                  omega, ahead):
    """``_node_sweep`` for B = 1 (x, rhs: (n,) contiguous views of X (n, 1) and of the right-hand sides),
    in scalar form. ahead > 0: prefetch the streams ``ahead`` rows ahead (that row's matrix entries, and
    once per 64-byte line its rhs, x, bref and indptr); the neighbour values x_j are not prefetched (that
    was 12-21 % slower on a 300k-node random graph)."""
    step = 0.0
    n = len(x)
    for i in range(n):
        if ahead > 0:
            future = min(i + ahead, n - 1)
            prefetch(data, _U(indptr[future]))
            prefetch(indices, _U(indptr[future]))
            if i % 8 == 0:
                prefetch(rhs, _U(future))
                prefetch(x, _U(future))
                prefetch(bref, _U(future))
                prefetch(indptr, _U(future))
        u = _row_residual(indptr, indices, data, x, i, rhs[i])
        if omega != 1.0:
            u = x[i] + omega * (u - x[i])
        t = bref[i]
        if t >= 0:
            if cptr[t] == cptr[t + 1]:  # static bounds only
                u = min(max(u, blo[t, 0]), bhi[t, 0])
            elif cptr[t + 1] - cptr[t] == 1:
                # one coupled row: ``_one_coupled_row`` in scalar form, without the loops of _clip_coupled
                # (1.15x on a 300x300 grid, 1.34x on a 100x100 grid; one inlined helper shared with the
                # batched kernel, returning from each branch, ran 2-5x slower in both)
                q = cptr[t]
                j, r = _U(cother[q]), _U(crow[q])
                if cside[q] > 0:
                    limit = x[j] + cc[r, 0]
                    high = min(bhi[t, 0], limit)
                    bind[r, 0] = sweep if u > high and limit <= bhi[t, 0] else bind[r, 0]
                    u = min(max(u, blo[t, 0]), high)
                else:
                    limit = x[j] - cc[r, 0]
                    low = max(blo[t, 0], limit)
                    bind[r, 0] = sweep if u < low and limit >= blo[t, 0] else bind[r, 0]
                    u = min(max(u, low), bhi[t, 0])
            else:
                u = _clip_coupled(u, t, 0, blo, bhi, cptr, cother, crow, cside, cc, X, bind, sweep)
        step = max(step, abs(u - x[i]))
        x[i] = u
    return step


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _padded_term(indices, data, p, p1, i):
    """(column, weight) of nonzero p if p < p1 (still in the row), else (i, 0.0): a term that adds nothing
    and reads x_i's row, which the step reads anyway. Subscripts unsigned (``_U``)."""
    if p < p1:
        return _U(indices[p]), data[p]
    return i, 0.0


@njit(cache=True, fastmath=_FASTMATH)
def _node_sweep(indptr, indices, data, rhs, bref, blo, bhi, cptr, cother, crow, cside, cc, group, X, scratch,
                bind, sweep, omega, ahead):
    """One sweep of node steps over all variables (in colour order); returns the largest change (V).

    data and rhs are scaled by 1/L_ii; scratch is (GROUP_ROW0 + GROUP_MAX, B); group: ``row_groups`` (all 1:
    every row on its own). Every inner loop runs over the contiguous batch axis (SIMD); B = 1 takes
    ``_scalar_sweep``. A coupled row that cuts a step short gets bind[row, column] = sweep. ahead > 0:
    prefetch the neighbour rows of variable i + ahead, its own rows of X and rhs and, if it is
    constrained, its rows of blo, bhi, cc and bind, while variable i is stepped (B = 1: see
    ``_scalar_sweep``; distances: ``prefetch_ahead``); 0: no prefetch.
    """
    n, B = X.shape
    if B == 1:
        return _scalar_sweep(indptr, indices, data, rhs.reshape(n), bref, blo, bhi, cptr, cother, crow, cside, cc,
                             X.reshape(n), X, bind, sweep, omega, ahead)
    acc, stepv, low, high = scratch[0], scratch[1], scratch[2], scratch[3]
    flat, rhs_flat = X.reshape(X.size), rhs.reshape(rhs.size)
    blo_flat, bhi_flat, cc_flat, bind_flat = blo.reshape(blo.size), bhi.reshape(bhi.size), cc.reshape(cc.size), \
        bind.reshape(bind.size)
    stepv[:] = 0.0
    for i in range(n):
        ii = _U(i)
        if ahead > 0:  # its neighbour rows, then its own rows of X and of b (two more streams)
            future = min(i + ahead, n - 1)
            for p in range(_U(indptr[future]), _U(indptr[future + 1])):
                prefetch_row(flat, _U(indices[p]) * _U(B), B)
            row = _U(future) * _U(B)
            for b in range(0, B, 8):  # own rows are consecutive: the next variable's hints cover the tail
                prefetch(flat, row + _U(b))
                prefetch(rhs_flat, row + _U(b))
            tf = bref[future]
            if tf >= 0:  # and its rows of the bounds, of the coupled rows' offsets and of their bind marks
                prefetch_row(blo_flat, _U(tf) * _U(B), B)
                prefetch_row(bhi_flat, _U(tf) * _U(B), B)
                for q in range(cptr[tf], cptr[tf + 1]):
                    prefetch_row(cc_flat, _U(crow[q]) * _U(B), B)
                    prefetch_row(bind_flat, _U(crow[q]) * _U(B), B)
        g = group[i]
        if g != 1:  # in a group of rows with the same neighbours (``row_groups``): all its sums at its head
            if g > 1:
                _group_sums(indptr, indices, data, rhs, X, scratch, i, g)
            # copied into acc, so that the one finishing pass below serves both paths (finishing through an
            # inlined helper, or through an array variable set in either branch, ran 3x slower on grids)
            sums_row = GROUP_ROW0 + (0 if g > 1 else -g)
            for b in range(B):
                acc[b] = scratch[sums_row, b]
        else:
            p, p1 = _U(indptr[i]), _U(indptr[i + 1])
            # the first four terms (missing ones: weight 0 on x_i) in the pass that loads b_i, then four terms
            # per pass, so acc is loaded and stored once per four (measured on DRNs, grids and random graphs,
            # B = 256: 1.1-1.2x faster than a separate pass for b_i; four terms per pass 1.2-1.7x faster than one;
            # the padded last pass instead of one pass per leftover term: 1.04-1.06x on random graphs and DRN-1H)
            j0, v0 = _padded_term(indices, data, p, p1, ii)
            j1, v1 = _padded_term(indices, data, p + _U(1), p1, ii)
            j2, v2 = _padded_term(indices, data, p + _U(2), p1, ii)
            j3, v3 = _padded_term(indices, data, p + _U(3), p1, ii)
            for b in range(B):
                acc[b] = rhs[ii, b] - ((v0 * X[j0, b] + v1 * X[j1, b]) + (v2 * X[j2, b] + v3 * X[j3, b]))
            p += _U(4)
            while p + _U(3) < p1:
                j0, j1, j2, j3 = _U(indices[p]), _U(indices[p + _U(1)]), _U(indices[p + _U(2)]), _U(indices[p + _U(3)])
                v0, v1, v2, v3 = data[p], data[p + _U(1)], data[p + _U(2)], data[p + _U(3)]
                for b in range(B):
                    acc[b] -= (v0 * X[j0, b] + v1 * X[j1, b]) + (v2 * X[j2, b] + v3 * X[j3, b])
                p += _U(4)
            if p < p1:  # the last 1-3 terms in one pass, padded like the first four
                j0, v0 = _U(indices[p]), data[p]
                j1, v1 = _padded_term(indices, data, p + _U(1), p1, ii)
                j2, v2 = _padded_term(indices, data, p + _U(2), p1, ii)
                for b in range(B):
                    acc[b] -= (v0 * X[j0, b] + v1 * X[j1, b]) + v2 * X[j2, b]
        if omega != 1.0:
            for b in range(B):
                acc[b] = X[ii, b] + omega * (acc[b] - X[ii, b])
        t = bref[i]
        if t < 0:
            for b in range(B):
                stepv[b] = max(stepv[b], abs(acc[b] - X[ii, b]))
                X[ii, b] = acc[b]
        elif cptr[t] == cptr[t + 1]:  # static bounds only: clip in the storing pass
            for b in range(B):
                u = min(max(acc[b], blo[t, b]), bhi[t, b])
                stepv[b] = max(stepv[b], abs(u - X[ii, b]))
                X[ii, b] = u
        else:
            if cptr[t + 1] - cptr[t] == 1:
                _one_coupled_row(acc, t, cptr[t], blo, bhi, cother, crow, cside, cc, X, bind, sweep)
            else:
                _constrain(acc, t, blo, bhi, cptr, cother, crow, cside, cc, X, low, high, bind, sweep)
            for b in range(B):
                stepv[b] = max(stepv[b], abs(acc[b] - X[ii, b]))
                X[ii, b] = acc[b]
    return stepv.max()


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _group_sums(indptr, indices, data, rhs, X, scratch, i, g):
    """b_r − Σ_j L_rj x_j into scratch[GROUP_ROW0 + r] for the g rows r = i, i + 1, … of a group (one
    neighbour list, that of row i), four terms per pass and rows innermost, so that each neighbour row of X
    is read from memory once for the whole group."""
    B = X.shape[1]
    head = _U(i)
    p0, p1 = _U(indptr[i]), _U(indptr[i + 1])
    for c in range(_U(0), p1 - p0, _U(4)):
        j0, _ = _padded_term(indices, data, p0 + c, p1, head)
        j1, _ = _padded_term(indices, data, p0 + c + _U(1), p1, head)
        j2, _ = _padded_term(indices, data, p0 + c + _U(2), p1, head)
        j3, _ = _padded_term(indices, data, p0 + c + _U(3), p1, head)
        for r in range(g):
            q0, q1 = _U(indptr[i + r]), _U(indptr[i + r + 1])
            _, v0 = _padded_term(indices, data, q0 + c, q1, head)
            _, v1 = _padded_term(indices, data, q0 + c + _U(1), q1, head)
            _, v2 = _padded_term(indices, data, q0 + c + _U(2), q1, head)
            _, v3 = _padded_term(indices, data, q0 + c + _U(3), q1, head)
            a = GROUP_ROW0 + r
            if c == 0:
                for b in range(B):
                    scratch[a, b] = rhs[i + r, b] - ((v0 * X[j0, b] + v1 * X[j1, b]) + (v2 * X[j2, b] + v3 * X[j3, b]))
            else:
                for b in range(B):
                    scratch[a, b] -= (v0 * X[j0, b] + v1 * X[j1, b]) + (v2 * X[j2, b] + v3 * X[j3, b])


@njit(cache=True)
def _find(parent, u):
    while parent[u] != u:
        parent[u] = parent[parent[u]]
        u = parent[u]
    return u


@njit(cache=True, inline="always")
def _rigid_limits(S, ns, mark, stamp, b, bref, blo, bhi, cptr, cother, crow, cside, cc, X):
    """(tlo, thi, rlo, rhi): the range of steps t (V) by which the variables S[:ns] (marked ``mark[i] ==
    stamp``) of column b can move together while their static bounds and every coupled row leaving S hold,
    and the coupled rows that set each end (-1: a static bound, or none)."""
    tlo, thi, rlo, rhi = -np.inf, np.inf, -1, -1
    for s in range(ns):
        i = S[s]
        t = bref[i]
        if t < 0:
            continue
        tlo = max(tlo, blo[t, b] - X[i, b])
        thi = min(thi, bhi[t, b] - X[i, b])
        for q in range(cptr[t], cptr[t + 1]):
            j = cother[q]
            if mark[j] == stamp:
                continue
            if cside[q] > 0:
                limit = X[j, b] + cc[crow[q], b] - X[i, b]
                if limit < thi:
                    thi, rhi = limit, crow[q]
            else:
                limit = X[j, b] - cc[crow[q], b] - X[i, b]
                if limit > tlo:
                    tlo, rlo = limit, crow[q]
    return tlo, thi, rlo, rhi


@njit(cache=True)
def _shift_set(S, ns, mark, stamp, b, indptr, indices, data, diag, rhs, bref, blo, bhi,
               cptr, cother, crow, cside, cc, part_of, pb, X):
    """Move the variables S[:ns] (all constrained, marked ``mark[i] == stamp``) of column b by the same
    exact step t: the energy minimiser along 1_S, clipped so that the bounds of S and every coupled row
    leaving S stay satisfied. Where S has no curvature (floating variables only: L 1_S = 0), the energy is
    linear along 1_S and t is the limit it falls towards (±inf when nothing stops it). Returns |t| (V)."""
    grad = 0.0
    curv = 0.0
    for s in range(ns):
        i = S[s]
        if diag[i] == 0.0:  # a variable with no resistor: (L x − b)_i = −b_i, its part's injected current
            grad -= pb[part_of[i], b]
            continue
        u = rhs[i, b]
        inner = 1.0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            u -= data[p] * X[j, b]
            if mark[j] == stamp:
                inner += data[p]
        grad += diag[i] * (X[i, b] - u)  # (L x − b)_i
        curv += diag[i] * inner  # Σ_{j ∈ S} L_ij
    tlo, thi, _, _ = _rigid_limits(S, ns, mark, stamp, b, bref, blo, bhi, cptr, cother, crow, cside, cc, X)
    if tlo > thi:
        return 0.0
    if curv > 0.0:
        step = min(max(-grad / curv, tlo), thi)
    elif grad != 0.0:
        step = thi if grad < 0.0 else tlo
    else:
        return 0.0
    for s in range(ns):
        X[S[s], b] += step
    return abs(step)


@njit(cache=True)
def _part_shifts(pptr, pmem, pb, part_of, ca, ck, cc, eps, mark, stamp, bref, blo, bhi, cptr, cother, crow, cside,
                 X, bind, sweep):
    """Rigid shifts of floating parts (members pmem[pptr[p]:pptr[p + 1]]), per column joined into groups
    by the coupled rows between them that are active (slack < eps) or cut a node step short in this sweep
    (bind == sweep: parts ratcheting past each other, one row binding at a time). A group of whole parts
    has no curvature, so its energy is linear along its rigid shift, falling the way its injected current (the sum of pb[p, b],
    amperes) pushes; each group moves to the limit there: exact descent along that direction. A coupled row
    that stops it gets bind = sweep. A lone one-variable part is left to its node step (the same move).
    ``mark``/``stamp``: scratch as in ``_cluster_shift``; returns (largest |step| (V; inf when nothing
    stops a group), stamp)."""
    n_parts = len(pptr) - 1
    parent = np.empty(n_parts, np.int64)
    S = np.empty(len(pmem), np.int64)
    step = 0.0
    for b in range(X.shape[1]):
        for p in range(n_parts):
            parent[p] = p
        for r in range(len(ca)):
            pa, pk = part_of[ca[r]], part_of[ck[r]]
            if pa >= 0 and pk >= 0 and (bind[r, b] == sweep or X[ca[r], b] - X[ck[r], b] >= cc[r, b] - eps):
                parent[_find(parent, pa)] = _find(parent, pk)
        roots = np.empty(n_parts, np.int64)
        for p in range(n_parts):
            roots[p] = _find(parent, p)
        order = np.argsort(roots, kind="mergesort")
        first = 0
        while first < n_parts:
            last = first
            while last + 1 < n_parts and roots[order[last + 1]] == roots[order[first]]:
                last += 1
            ns, force = 0, 0.0
            for q in range(first, last + 1):
                p = order[q]
                force += pb[p, b]
                for e in range(pptr[p], pptr[p + 1]):
                    S[ns] = pmem[e]
                    ns += 1
            first = last + 1
            if ns < 2 or force == 0.0:
                continue
            stamp += 1
            for e in range(ns):
                mark[S[e]] = stamp
            tlo, thi, rlo, rhi = _rigid_limits(S, ns, mark, stamp, b, bref, blo, bhi, cptr, cother, crow, cside,
                                               cc, X)
            t, r = (thi, rhi) if force > 0.0 else (tlo, rlo)
            if tlo > thi or t == 0.0:
                continue
            if r >= 0:
                bind[r, b] = sweep
            for e in range(ns):
                X[S[e], b] += t
            step = max(step, abs(t))
    return step, stamp


@njit(cache=True)
def _cluster_shift(indptr, indices, data, diag, rhs, bref, blo, bhi, cptr, cother, crow, cside, cc,
                   ca, ck, cnode, part_of, pb, bind, sweep, eps, max_split, X, work):
    """Rigid exact shifts of the clusters of rows binding in this sweep (step 2 of the module docstring).

    Per column: union-find over the active rows (slack < eps) and the rows binding in this sweep
    (bind[r, b] == sweep) gives the clusters and a spanning tree of each. Each cluster holding a binding
    row is shifted as a whole and, with 3..max_split variables, so is each side of each tree row (a
    cluster without one needs no shift: no node step in it was cut short). ``cnode`` (nc,) lists the constrained variables (``bref`` numbers them); ``work`` is
    scratch allocated by ``_descend``. Returns the largest shift (V).
    """
    B = X.shape[1]
    parent, root, members, start, fill, tree, tstart, tfill, mark, S, side, hot_root, last_stamp = work
    nc = len(cnode)
    stamp = last_stamp[0]
    step = 0.0
    for b in range(B):
        hot = False
        for r in range(len(ca)):
            if bind[r, b] == sweep:
                hot = True
                break
        if not hot:
            continue
        for u in range(nc):
            parent[u] = u
        ntree = 0
        for r in range(len(ca)):
            if bind[r, b] == sweep or X[ca[r], b] - X[ck[r], b] >= cc[r, b] - eps:
                ru = _find(parent, bref[ca[r]])
                rv = _find(parent, bref[ck[r]])
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
            tstart[root[bref[ca[tree[e]]]] + 1] += 1
        for u in range(nc):
            start[u + 1] += start[u]
            tstart[u + 1] += tstart[u]
        for u in range(nc):
            hot_root[u] = False
        for r in range(len(ca)):
            if bind[r, b] == sweep:
                hot_root[root[bref[ca[r]]]] = True
        fill[:] = start[:nc]
        for u in range(nc):
            members[fill[root[u]]] = cnode[u]
            fill[root[u]] += 1
        tfill[:] = tstart[:nc]
        for e in range(ntree):
            r0 = root[bref[ca[tree[e]]]]
            tree[ntree + tfill[r0]] = tree[e]
            tfill[r0] += 1
        for r0 in range(nc):
            size = start[r0 + 1] - start[r0]
            if size < 2 or not hot_root[r0]:
                continue
            mem = members[start[r0]:start[r0 + 1]]
            stamp += 1
            for s in range(size):
                mark[mem[s]] = stamp
            step = max(step, _shift_set(mem, size, mark, stamp, b, indptr, indices, data, diag, rhs, bref,
                                        blo, bhi, cptr, cother, crow, cside, cc, part_of, pb, X))
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
                    step = max(step, _shift_set(S, ns, mark, stamp, b, indptr, indices, data, diag, rhs, bref,
                                                blo, bhi, cptr, cother, crow, cside, cc, part_of, pb, X))
    last_stamp[0] = stamp
    return step


@njit(cache=True, fastmath=_FASTMATH)
def _global_shift(gnode, gval, gsum, bsum, cnode, blo, bhi, X):
    """Move all variables of every column by the same exact step t (step 3 of the module docstring):
    t = −1ᵀ(Lx − b) / 1ᵀL1 with 1ᵀL = gval on gnode (the row sums of L, i.e. the conductance to fixed
    nodes) and gsum = Σ gval, bsum (B,) = Σ_i b_i; clipped to the bounds. Returns the largest |t| (V)."""
    B = X.shape[1]
    step = 0.0
    for b in range(B):
        grad = -bsum[b]
        for s in range(len(gnode)):
            grad += gval[s] * X[gnode[s], b]
        tlo = -np.inf
        thi = np.inf
        for t in range(len(cnode)):
            tlo = max(tlo, blo[t, b] - X[cnode[t], b])
            thi = min(thi, bhi[t, b] - X[cnode[t], b])
        if tlo > thi:
            continue
        shift = min(max(-grad / gsum, tlo), thi)
        if shift != 0.0:
            for i in range(X.shape[0]):
                X[i, b] += shift
            step = max(step, abs(shift))
    return step


@njit(cache=True)
def _descend(indptr, indices, data, diag, rhs, bref, blo, bhi, cptr, cother, crow, cside, cc,
             ca, ck, cnode, gnode, gval, bsum, group, part_of, pptr, pmem, pb, tol, omega, ahead, max_split,
             max_sweeps, X, scratch):
    """Sweeps of node steps, part shifts and cluster shifts until the largest change is below tol.

    omega over-relaxes the node steps (see ``solve_cd``); ahead: ``prefetch_ahead``; scratch: (GROUP_ROW0 + GROUP_MAX, B),
    ``aligned_empty``. Part shifts (floating parts of two or more variables) run on every sweep; cluster shifts on the first CLUSTER_EVERY
    sweeps, then on every CLUSTER_EVERY-th sweep and on any sweep whose node steps are below tol (so the stopping test always
    includes them). Stops at once when a floating variable runs off to infinity (nothing stops it): the
    last change is then inf. Returns (sweeps, last change).
    """
    n, B = X.shape
    nc = len(cnode)
    bind = np.zeros((len(ca), B), np.int64)
    gsum = gval.sum()
    global_moved = True
    work = (np.empty(nc, np.int64), np.empty(nc, np.int64), np.empty(nc, np.int64), np.empty(nc + 1, np.int64),
            np.empty(nc, np.int64), np.empty(2 * nc, np.int64), np.empty(nc + 1, np.int64),
            np.empty(nc, np.int64), np.zeros(n, np.int64), np.empty(nc, np.int64), np.zeros(n, np.bool_),
            np.zeros(nc, np.bool_), np.zeros(1, np.int64))
    step = np.inf
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        step = _node_sweep(indptr, indices, data, rhs, bref, blo, bhi, cptr, cother, crow, cside, cc, group, X, scratch,
                           bind, sweeps, omega, ahead)
        if step == np.inf:
            break
        if len(pptr) > 1:  # floating parts
            shift, work[12][0] = _part_shifts(pptr, pmem, pb, part_of, ca, ck, cc, tol, work[8], work[12][0], bref,
                                              blo, bhi, cptr, cother, crow, cside, X, bind, sweeps)
            step = max(step, shift)
            if step == np.inf:
                break
        if gsum > 0.0 and (global_moved or sweeps % CLUSTER_EVERY == 0 or step < tol):
            shift = _global_shift(gnode, gval, gsum, bsum, cnode, blo, bhi, X)
            global_moved = shift >= tol
            step = max(step, shift)
        if len(ca) and (sweeps <= CLUSTER_EVERY or sweeps % CLUSTER_EVERY == 0 or step < tol):
            shift = _cluster_shift(indptr, indices, data, diag, rhs, bref, blo, bhi, cptr, cother, crow, cside,
                                   cc, ca, ck, cnode, part_of, pb, bind, sweeps, tol, max_split, X, work)
            step = max(step, shift)
        if step < tol or step == np.inf:
            break
    return sweeps, step


# ---- Python layer: validate, renumber, allocate, dispatch ------------------------------------------
@njit(cache=True)
def _permute_scaled(indptr, indices, data, perm, rank):
    """Rows and columns of CSR L renumbered (new i = rank[old]), diagonal split off, each row divided by
    its diagonal: (indptr int64, indices int32, data, diag) of the new order."""
    n = len(perm)
    diag = np.zeros(n)
    out_ptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        i = perm[r]
        count = 0
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] == i:
                diag[r] += data[p]
            elif data[p] != 0.0:
                count += 1
        out_ptr[r + 1] = out_ptr[r] + count
    out_idx = np.empty(out_ptr[n], np.int32)
    out_val = np.empty(out_ptr[n])
    for r in range(n):
        i = perm[r]
        q = out_ptr[r]
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] != i and data[p] != 0.0:
                out_idx[q] = rank[indices[p]]
                out_val[q] = data[p] / diag[r]
                q += 1
    return out_ptr, out_idx, out_val, diag


@njit(cache=True)
def row_groups(indptr, indices, colours, min_terms, max_size):
    """group (n,) int64: runs of consecutive rows of one colour with the same neighbour list (at least
    min_terms terms, at most max_size rows), such as the output units of a dense layer: g at a run's first
    row (g rows), -r at its r-th row after that, 1 elsewhere. A batched sweep computes a run's sums at its
    first row, rows innermost, so each neighbour row of X is read once per run (``_group_sums``); rows of
    one colour do not neighbour each other, so the later rows' sums are the same then as at their turn."""
    n = len(indptr) - 1
    group = np.ones(n, np.int64)
    i = 0
    while i < n:
        d = indptr[i + 1] - indptr[i]
        g = 1
        if d >= min_terms:
            while i + g < n and g < max_size:
                k = i + g
                if colours[k] != colours[i] or indptr[k + 1] - indptr[k] != d:
                    break
                same = True
                for p in range(d):
                    if indices[indptr[k] + p] != indices[indptr[i] + p]:
                        same = False
                        break
                if not same:
                    break
                g += 1
        if g > 1:
            group[i] = g
            for r in range(1, g):
                group[i + r] = -r
        i += g
    return group


def _static_bounds(qp: QP, variables: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(len(variables), B) lower and upper bounds (V) from the diode rows with one fixed end, for the
    variables that have any (index: qp's variable -> row of the result); ±inf where none."""
    lo = np.full((len(variables), qp.batch), -np.inf)
    hi = np.full((len(variables), qp.batch), np.inf)
    upper = np.flatnonzero(qp.k < 0)
    lower = np.flatnonzero(qp.a < 0)
    np.minimum.at(hi, index[qp.a[upper]], qp.c[upper])
    np.maximum.at(lo, index[qp.k[lower]], -qp.c[lower])
    return lo, hi


def _coupled_adjacency(nc: int, ta: np.ndarray, tk: np.ndarray, ca: np.ndarray, ck: np.ndarray):
    """Coupled rows per constrained variable (ta, tk: its numbers of the ends) as CSR:
    (ptr (nc + 1,), other end's variable, row, side +1 anode / −1 cathode)."""
    m = len(ta)
    owner = np.concatenate([ta, tk])
    order = np.argsort(owner, kind="stable")
    ptr = np.zeros(nc + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=nc), out=ptr[1:])
    other = np.concatenate([ck, ca])[order]
    row = np.tile(np.arange(m, dtype=np.int64), 2)[order]
    side = np.repeat(np.array([1, -1], np.int64), m)[order]
    return ptr, other.astype(np.int64), row, side


class KernelArrays(NamedTuple):
    """What the kernels see, in the colour order (new variable i is qp's ``perm[i]``; ``rank`` inverts).

    indptr, indices, data: off-diagonal L as CSR, rows divided by ``diag``; rhs (n, B) = b / diag;
    cnode (nc,) the constrained variables (a bound or a coupled row), ``bref`` (n,) their numbers (−1
    elsewhere), blo/bhi (nc, B) their static bounds, cptr/cother/crow/cside their coupled rows; ca, ck (mc,)
    and cc (mc, B) the coupled rows; gnode/gval the nonzero row sums of L, bsum (B,) = Σ_i b_i; group (n,)
    the ``row_groups`` for B > 1 (all 1 for B = 1, and in blocks that ``column_blocks`` leaves ungrouped);
    part_of (n,) the floating part of each variable (``QP.floating``, -1 elsewhere), pptr/pmem its members
    as CSR, pb (n_parts, B) the current injected into each part (amperes). A variable with no resistor
    (diag 0) keeps rhs = ±inf or 0 by the sign of b_i: its node step goes to the bound its current pushes
    it to, the exact minimiser of its linear energy.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    diag: np.ndarray
    rhs: np.ndarray
    bref: np.ndarray
    blo: np.ndarray
    bhi: np.ndarray
    cptr: np.ndarray
    cother: np.ndarray
    crow: np.ndarray
    cside: np.ndarray
    cc: np.ndarray
    ca: np.ndarray
    ck: np.ndarray
    cnode: np.ndarray
    gnode: np.ndarray
    gval: np.ndarray
    bsum: np.ndarray
    group: np.ndarray
    part_of: np.ndarray
    pptr: np.ndarray
    pmem: np.ndarray
    pb: np.ndarray
    perm: np.ndarray
    rank: np.ndarray


def kernel_arrays(qp: QP, colours: np.ndarray) -> KernelArrays:
    """Renumber ``qp`` by colour (stable) and lay it out for the kernels (see the module docstring)."""
    n = qp.n
    # within a colour, for B = 1: unconstrained variables first, then those with static bounds only, then
    # those with coupled rows (predictable branches on bref and cptr), then by number of neighbours (a
    # predictable inner-loop length), then the circuit's own order, which keeps neighbours close in memory.
    # For B > 1 a mispredicted branch is shared by the whole batch, so the kinds stay mixed and the
    # circuit's order is broken only by the number of neighbours: on a 300x300 grid, B = 88, the sorted
    # kinds made three passes over the grid per colour, each reading the neighbour rows afresh (1.19x
    # faster unsorted; random graph of 30k nodes, B = 256, and DRN-1H: no change)
    degree = np.diff(qp.L.indptr)
    free_a, free_k = qp.a >= 0, qp.k >= 0
    coupled = np.flatnonzero(free_a & free_k)
    kind = np.zeros(n, np.int64)  # in qp's numbering: 0 no row, 1 static bounds only, 2 a coupled row
    kind[qp.a[free_a]] = 1
    kind[qp.k[free_k]] = 1
    kind[qp.a[coupled]] = 2
    kind[qp.k[coupled]] = 2
    perm = np.lexsort((degree, kind, colours) if qp.batch == 1 else (degree, colours)).astype(np.int64)  # new -> old
    rank = np.empty(n, np.int64)
    rank[perm] = np.arange(n)
    L = qp.L
    indptr, indices, data, dp = _permute_scaled(L.indptr.astype(np.int64), L.indices.astype(np.int64),
                                                L.data, perm, rank)
    part_of = np.full(n, -1, np.int64) if qp.floating is None else qp.floating[perm]
    if n and not np.all((dp > 0) | ((dp == 0) & (part_of >= 0))):
        bad = int(perm[np.argmin(np.where(part_of >= 0, np.inf, dp))])
        raise ValueError(f"L must have a positive diagonal off the floating parts; variable {bad} has "
                         f"L_ii = {L[bad, bad]}")
    rowsum = np.asarray(L.sum(axis=1)).ravel()[perm]  # 1ᵀL: conductance to fixed nodes for a Laplacian
    rowsum[part_of >= 0] = 0.0  # exactly: floating parts have none (rounding may leave 1e-20)
    gnode = np.flatnonzero(rowsum).astype(np.int64)
    pmem = np.argsort(part_of, kind="stable")[np.count_nonzero(part_of < 0):].astype(np.int64)
    pptr = np.concatenate([[0], np.cumsum(np.bincount(part_of[pmem], minlength=qp.n_parts))]).astype(np.int64)
    pb = np.zeros((qp.n_parts, qp.batch))
    np.add.at(pb, part_of[pmem], qp.b[perm][pmem])
    b = qp.b[perm]
    rhs = np.where(dp[:, None] > 0, b / np.where(dp > 0, dp, 1.0)[:, None], np.where(b > 0, np.inf, np.where(b < 0, -np.inf, 0.0)))

    # coupled rows in the order the sweep first meets them, so that their rows of cc and bind are read
    # nearly in sequence (on a 300x300 grid, B = 88, in the circuit's order they were random reads: 1.17x)
    coupled = coupled[np.argsort(np.minimum(rank[qp.a[coupled]], rank[qp.k[coupled]]), kind="stable")]
    ca, ck = rank[qp.a[coupled]], rank[qp.k[coupled]]
    cnode = np.flatnonzero(kind[perm] > 0).astype(np.int64)
    bref = np.full(n, -1, np.int64)
    bref[cnode] = np.arange(len(cnode))
    blo, bhi = _static_bounds(qp, cnode, bref[rank])
    cptr, cother, crow, cside = _coupled_adjacency(len(cnode), bref[ca], bref[ck], ca, ck)
    group = (row_groups(indptr, indices, colours[perm], GROUP_MIN_TERMS, GROUP_MAX) if qp.batch > 1
             else np.ones(n, np.int64))
    return KernelArrays(indptr, indices, data, dp, np.ascontiguousarray(rhs), bref, blo, bhi,
                        cptr, cother, crow, cside, np.ascontiguousarray(qp.c[coupled]), ca, ck, cnode,
                        gnode, rowsum[gnode], qp.b.sum(axis=0), group, part_of, pptr, pmem, pb, perm, rank)


# KernelArrays fields with one column per right-hand side (sliced into column blocks)
_COLUMN_FIELDS = ("rhs", "blo", "bhi", "cc", "bsum", "pb")
BLOCK_BYTES = 16e6  # a column block's potentials and right-hand sides should fit in this much cache (~L3 / 2)
MIN_BLOCK = 32  # but a block has at least this many columns: narrower SIMD loops over the batch run slower
OUT_OF_CACHE_BLOCK = 48  # when not even MIN_BLOCK columns fit: out of cache at any width (see block_width)


def column_blocks(k: KernelArrays):
    """(column slice, KernelArrays of those columns, contiguous and aligned) for each block of ``block_width``
    columns. Blocks whose potentials (8 n w bytes) fit in GROUP_BYTES run without row groups
    (``row_groups``)."""
    n, B = k.rhs.shape
    width = block_width(n, B)
    for j0 in range(0, B, width):
        cols = slice(j0, min(j0 + width, B))
        fields = {f: getattr(k, f)[..., cols] for f in _COLUMN_FIELDS}
        fields = {f: aligned_copy(a) if a.ndim == 2 else np.ascontiguousarray(a) for f, a in fields.items()}
        if 8 * n * (cols.stop - cols.start) <= GROUP_BYTES:
            fields["group"] = np.ones(n, np.int64)
        yield cols, k._replace(**fields)


def block_width(n: int, B: int) -> int:
    """Columns solved together: all B when their (n, B) potentials and right-hand sides (16 n B bytes) fit
    in BLOCK_BYTES, else the largest power of two, at least MIN_BLOCK, that fits, else (nothing fits)
    OUT_OF_CACHE_BLOCK. Columns are independent problems, so a block runs its sweeps alone, its working
    set in cache. Measured on an AVX-512 machine
    (Zen 5, 1 MB L2, 32 MB L3; edge updates/s of a sweep, medians of 3 at each width): DRN-1H, B = 256:
    6.2 / 8.8 / 10.0 / 9.5 / 12.5 G in blocks of 16 / 32 / 64 / 128 / 256; 100×100 grid: 1.6 / 2.5 /
    3.1-3.3 / 2.3 / 1.9 G in blocks of 16 / 32 / 64 / 128 / 256; random graph of 30k nodes: 2.6 / 2.5 /
    2.0 / 1.8 G in blocks of 32 / 64 / 128 / 256 (with prefetching, which only blocks of 64 had then:
    2.8 G in blocks of 32, 2.3 G in blocks of 64). Out of cache at any width (after the prefetch of the
    constraint rows; medians of 3): 300×300 grid, B = 88: 2.6 / 3.1 / 2.7 / 2.3 G in blocks of 32 / 48
    / 64 / 88, B = 256: 2.9 / 3.1 / 2.5 / 2.3 G in blocks of 32 / 48 / 64 / 128; random graph of 300k
    nodes, B = 256: 1.9 / 1.7 / 1.4 G in blocks of 32 / 48 / 64. On an AVX2 machine with a smaller cache an earlier
    version preferred 2 MB blocks (DRN-1H: 4.7 G unblocked, 5.7 G in blocks of 64)."""
    if 16 * n * B <= BLOCK_BYTES:
        return max(B, 1)
    if 16 * n * MIN_BLOCK > BLOCK_BYTES:
        return min(OUT_OF_CACHE_BLOCK, B)
    width = MIN_BLOCK
    while 16 * n * 2 * width <= BLOCK_BYTES:
        width *= 2
    return min(width, B)


PREFETCH_BYTES = 6e6  # column blocks whose potentials (8 n w bytes) exceed this prefetch neighbour rows
PREFETCH_AHEAD = 8  # that many variables ahead
SCALAR_PREFETCH_AHEAD = 128  # B = 1: rows ahead for the streams of a sweep whose arrays exceed PREFETCH_BYTES


def prefetch_ahead(n: int, width: int, nnz: int) -> int:
    """How many variables ahead a node sweep of an (n, width) block, nnz off-diagonal nonzeros, prefetches
    (0: none). width 1 (the scalar sweep): SCALAR_PREFETCH_AHEAD when its arrays (12 nnz + 32 n bytes:
    indices, data, indptr, rhs, bref, x) exceed PREFETCH_BYTES, for their streams (medians of 4,
    alternating: 300k-node random graph, 26 MB: 540-620 -> 750-810 M edge updates/s; 300x300 grid,
    7.2 MB: 1.05-1.07 -> 1.17 G; 128 or 256 rows ahead alike, 64 less; below the threshold: random graph
    of 30k nodes, 2.4 MB, -4 %, 100x100 grid +6 %, DRN-1H no change).

    Blocks of several columns prefetch when their potentials exceed PREFETCH_BYTES: there neighbour rows
    come from L3 or memory and the hints let those loads overlap, while closer to the core they only
    cost issue slots. Measured (edge updates/s of a sweep, medians of 3-5, alternating with and
    without): random graph of 300k nodes, B = 26 (62 MB of potentials): 0.49 -> 1.1 G; 30k nodes,
    blocks of 64 (15 MB): 2.3 -> 2.7 G, blocks of 32 (7.7 MB): 2.2 -> 2.8 G; 300x300 grid, blocks of
    64 (46 MB): 1.37 -> 1.55 G; 100x100 grid, blocks of 64 (5.1 MB): 3.5-3.9 -> 3.2-3.7 G; random graph
    of 1k nodes, B = 256 (2 MB): 5.1 -> 4.7 G; DRN-1H, blocks of 64 (0.5 MB): 9.6 -> 7.6 G. The
    threshold sits between the 5.1 MB grid (in order: its neighbour rows stream) and the 7.7 MB
    random graph (its neighbour rows are scattered); a rule that looked at the graph's locality, not
    only at the size, could do better. Prefetching the variable's own rows of X and rhs as well (two runs,
    medians of 5): a further +7-11 % on the 300x300 grid, +22-24 % on 300k nodes, -6 % / +17 % on 30k.
    With the rows of the bounds and coupled rows too, all hints against none (medians of 3): 300k nodes,
    B = 26: 0.60 -> 1.86 G; 300x300 grid, B = 88 (blocks of 48): 2.3 -> 3.4 G."""
    if width == 1:
        return SCALAR_PREFETCH_AHEAD if 12 * nnz + 32 * n > PREFETCH_BYTES else 0
    return PREFETCH_AHEAD if 8 * n * width > PREFETCH_BYTES else 0


def solve_cd(qp: QP, x0=None, tol: float = 1e-9, max_sweeps: int = 100_000, colours=None,
             omega: float = 1.0) -> QPSolution:
    """Solve ``qp`` by exact colour-blocked coordinate descent (see the module docstring).

    x0: (n,) or (n, B) warm start in volts (made feasible first); default 0 V. tol: step criterion in
    volts. colours: (n,) ints, a cached ``colour_variables(qp)``; they fix the update order (any
    colouring gives a correct serial sweep). omega: over-relaxation of the node steps, in (0, 2):
    x_i ← clip(x_i + ω (u_i − x_i)) keeps every step feasible and energy-decreasing and has the same
    fixed points (ω = 1: exact coordinate descent; for an N×N mesh, Young's ω = 2 / (1 + √(1 − ρ_J²))
    turns O(N²) sweeps into O(N), ρ_J the Jacobi spectral radius). Returns a QPSolution with x (n, B)
    volts, lam (m, B) diode currents in amperes (from the KKT certificate), ``iterations`` = sweeps (the
    most of any column block, see ``block_width``) and info keys ``max_step`` (V, the last sweep's largest change), ``converged`` (step criterion met
    before ``max_sweeps``), ``n_colours``, ``omega``, ``residuals`` (the certificate's). Raises
    ValueError when the diode rows admit no x, ``Unbounded`` when a floating part (``QP.floating``) runs off
    to infinity.
    """
    n, B = qp.n, qp.batch
    if not (tol > 0):
        raise ValueError(f"tol must be positive, got {tol}")
    if not (0.0 < omega < 2.0):
        raise ValueError(f"omega must be in (0, 2), got {omega!r}")
    if not (np.all(np.isfinite(qp.b)) and np.all(np.isfinite(qp.c))):
        raise ValueError("qp.b and qp.c must be finite")
    if colours is None:
        colours = colour_variables(qp)
    colours = np.asarray(colours, dtype=np.int64)
    if colours.shape != (n,):
        raise ValueError(f"colours must have shape ({n},), got {colours.shape}")
    k = kernel_arrays(qp, colours)

    if x0 is None:
        X = np.zeros((n, B))
    else:
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.ndim == 1:
            x0 = x0[:, None]
        if x0.shape not in ((n, 1), (n, B)):
            raise ValueError(f"x0 must have shape ({n},), ({n}, 1) or ({n}, {B}), got {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise ValueError("x0 must be finite (volts)")
        X = np.array(np.broadcast_to(x0[k.perm], (n, B)), dtype=np.float64, order="C")
    if not _make_feasible(X, k.cnode, k.blo, k.bhi, k.ca, k.ck, k.cc):
        raise ValueError("the diode rows admit no x (conflicting bounds or a cycle of coupled rows); "
                         "resnet_sim.solvers.kkt.infeasible_rows names them")

    sweeps, step = 0, 0.0
    for cols, block in column_blocks(k):
        Xb = aligned_copy(X[:, cols])
        ahead = prefetch_ahead(n, Xb.shape[1], len(k.indices))
        scratch = aligned_empty(GROUP_ROW0 + GROUP_MAX, Xb.shape[1])
        sweeps_b, step_b = _descend(*block[:-2], float(tol), float(omega), ahead, MAX_SPLIT, int(max_sweeps), Xb,
                                    scratch)
        X[:, cols] = Xb
        sweeps, step = max(sweeps, sweeps_b), max(step, step_b)
    x = X[k.rank]
    if step == np.inf:  # a floating variable ran off: name one (a floating one, not one it dragged along)
        off = ~np.isfinite(x)
        col = int(np.flatnonzero(off.any(axis=0))[0])
        culprits = np.flatnonzero(off[:, col])
        floating = culprits[qp.floating[culprits] >= 0] if qp.floating is not None else culprits[:0]
        raise Unbounded(int(floating[0] if len(floating) else culprits[0]), col)
    lam, residuals = _diode_currents(qp, x)
    info = {"max_step": float(step), "converged": bool(step < tol), "n_colours": int(colours.max(initial=-1) + 1),
            "omega": float(omega), "residuals": residuals}
    return QPSolution(x=x, lam=lam, iterations=int(sweeps), method="cd", info=info)


def _diode_currents(qp: QP, x: np.ndarray):
    """Diode currents (m, B) amperes and KKT residuals from the certificate (resnet_sim.solvers.kkt)."""
    from .kkt import certificate

    return certificate(qp, x)
