"""Exact solver for the diode QP (see ``qp.py``): primal-dual active-set iterations with sparse factorisation.

For a working set W of diode rows held with equality, the equality-constrained QP is solved exactly:
rows of W merge their two ends (x_a = x_k + c, union-find with potential offsets, as for voltage sources),
rows with a fixed end fix their whole merged group, and the reduced Laplacian Pᵀ L P of the free groups
(symmetric positive definite) is factorised with SuperLU (or, on expander-like graphs where that fills in,
solved by Jacobi-preconditioned CG to rounding level). The diode currents of W then follow from
stationarity on a spanning forest of W (``kkt.least_squares_multipliers``). W is updated by the
primal-dual rule (Hintermüller, Ito & Kunisch 2002): keep rows whose current is > 0, add rows the new x
violates. A column stops when no row is violated and no current is negative; its KKT certificate decides
``converged``. If W repeats (the rule can cycle when rows are redundant), that column finishes with a
classical primal active-set method from a feasible point.

Cost: one factorisation per iteration and distinct working set (columns sharing W share it). From an
empty W the iterations grow slowly with size on meshes (about 6, 8, 9, 11 on 60², 100², 150², 300² grids
with diodes). So a cold solve with at least ADMM_MIN_N variables (factorised, not CG) first guesses W by
a few dozen ADMM iterations, which share one factorisation (``_admm_working_set``): the 300² grid then
needs 3 iterations (4 factorisations instead of 11). Warm-started from a nearby point (``cd``) it usually
needs 1–3.

Floating parts (``QP.floating``: variables with no resistive path to a fixed node) make the reduced
Laplacian singular wherever W leaves such a part, with the parts W joins to it, unmerged with any other
variable: a *loose* group of the reduced system. Each is solved with its potential fixed at one group
(its level is free: it keeps the mean of the start point) when the currents injected into it balance; when
they do not, the energy falls without bound as the group moves the way they push, so no x solves the
equality problem: the iteration instead adds to W every row that stops that move (as if violated at
infinity), or raises ``Unbounded`` when none does.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import numpy as np
import scipy.sparse as sp

from resnet_sim.graph import connected_components
from resnet_sim.solvers.jit import njit
from resnet_sim.solvers.kkt import (ACTIVE_RTOL, DENSE_MAX, certificate, converged_mask, least_squares_multipliers,
                                    nonnegative_multipliers, residual_scale, slack)
from resnet_sim.solvers.qp import QP, QPSolution, Unbounded

CACHE_SIZE = 8
"""Factorisations kept (least recently used dropped), keyed by the working set."""
EXPANDER_MIN_N = 10_000
"""Below this many variables the reduced system is always factorised."""
PDAS_MAX_ITER = 50
"""Primal-dual iterations before a column that has not settled switches to the primal fallback."""
CG_RTOL, CG_MAX_ITER = 1e-14, 20_000
"""Conjugate-gradient stopping rule (relative 2-norm residual) for expander-like graphs."""
SUPERLU_PANEL = 6
"""SuperLU's panel size (columns), see ``_factorise``."""
ADMM_MIN_N, ADMM_RHO, ADMM_RELAX, ADMM_MAX_ITER, ADMM_STABLE = 10_000, 0.01, 1.6, 30, 3
"""Cold-start working-set guess (``_admm_working_set``) on factorised systems with at least ADMM_MIN_N
variables: penalty ADMM_RHO × median diagonal of L (siemens), over-relaxation ADMM_RELAX, at most
ADMM_MAX_ITER iterations, fewer once the guess has not changed for ADMM_STABLE iterations."""


def solve_active_set(qp: QP, x0: np.ndarray | None = None, lam0: np.ndarray | None = None,
                     tol: float = 1e-12, max_iter: int = 500) -> QPSolution:
    """Solve every batch column of ``qp`` exactly by primal-dual active-set iterations.

    x0 (n, B) volts / lam0 (m, B) amperes warm-start the working set: rows with lam0 > 0 if lam0 is given,
    else rows with slack ≤ ``kkt.ACTIVE_RTOL`` · (1 + |c|) at x0, those carrying more current (recovered
    from x0) taking precedence where they close a loop (e.g. a ``cd`` result: this polishes it to machine
    precision); with neither, W starts empty (the unconstrained solve), or on a factorised system with at
    least ADMM_MIN_N variables as guessed by ``_admm_working_set``. Columns sharing a working set share
    one factorisation.

    ``tol`` is the KKT tolerance of ``kkt.converged_mask`` (with ``kkt.residual_scale``). Returns a
    QPSolution with x (n, B) volts, lam (m, B) amperes, iterations = the most active-set iterations of any
    column; info: "converged" (B,) bool, "residuals" (the certificate), "iterations" (B,) per column,
    "factorisations" (count), "linear_solver" (what solved the reduced systems, joined by "+": "dense" up
    to DENSE_MAX variables, "splu", or "cg" on expander-like graphs, see ``_Factors``; "" if none),
    "cg_failures", "cycled" (B,) bool (W revisited, or PDAS_MAX_ITER reached: the column then finished with
    ``_primal_active_set``), "admm_iterations" (0 unless the cold-start guess ran; its factorisation is
    counted in "factorisations").
    A column still changing W after max_iter is returned as it is, with converged False. Raises
    ``Unbounded`` when a loose group (see the module docstring) has no row to stop it.
    """
    n, m, B = qp.n, qp.m, qp.batch
    # candidate working set and its priority (lower first): rows merged in that order, later rows that
    # close a loop are left out (see _merge)
    factors = _Factors(qp.L, qp.floating)
    admm_iters = 0
    if lam0 is not None:
        lam0 = np.asarray(lam0, dtype=np.float64).reshape(m, B)
        W, prio = lam0 > 0, -lam0
    elif x0 is not None:
        x0 = np.asarray(x0, dtype=np.float64).reshape(n, B)
        W = slack(qp, x0) <= ACTIVE_RTOL * (1.0 + np.abs(qp.c))
        prio = -nonnegative_multipliers(qp, qp.L @ x0 - qp.b, W)
    elif m and n >= ADMM_MIN_N and not factors.iterative:
        W, prio, admm_iters, factors.position = _admm_working_set(qp)
        factors.count += 1
    else:
        W, prio = np.zeros((m, B), dtype=bool), np.zeros((m, B))
    X, lam = np.zeros((n, B)), np.zeros((m, B))
    iters, cycled, unfinished = np.zeros(B, np.int64), np.zeros(B, bool), np.zeros(B, bool)
    seen = [set() for _ in range(B)]
    pending = np.arange(B)
    for _ in range(max_iter):
        if not len(pending):
            break
        iters[pending] += 1
        X[:, pending], W[:, pending], ray = _equality_solve(qp, factors, pending, W[:, pending], prio[:, pending],
                                                            X[:, pending])
        Wp = W[:, pending]
        g = qp.L @ X[:, pending] - qp.b[:, pending]
        lam[:, pending] = least_squares_multipliers(qp, g, Wp)[0]
        s = slack(qp, X[:, pending], pending)
        noise = _noise(qp, X[:, pending], pending)
        violated = ~Wp & (s < -noise)
        dropped = Wp & (lam[:, pending] < -_current_noise(qp.b[:, pending], g))
        if ray is not None:  # loose groups moving off: the rows that stop them are violated, no row drops
            moving = qp.constraint_matrix() @ ray
            stops = ~Wp & (moving > 0)
            violated = np.where(moving != 0, stops, violated)
            s = np.where(moving < 0, np.inf, s)
            runs = np.abs(ray).any(axis=0)
            dropped[:, runs] = False
            free_run = np.flatnonzero(runs & ~stops.any(axis=0))
            if len(free_run):
                t = int(free_run[0])
                raise Unbounded(int(np.flatnonzero(ray[:, t])[0]), int(pending[t]))
        still = []
        for t, j in enumerate(pending):
            if not (violated[:, t].any() or dropped[:, t].any()):
                continue
            key = hash(W[:, j].tobytes())
            if key in seen[j] or iters[j] >= PDAS_MAX_ITER:  # cycling (or wandering): finish another way
                cycled[j] = True
                X[:, j], lam[:, j], used, unfinished[j] = _primal_active_set(qp, factors, j, X[:, j], lam[:, j],
                                                                             max_iter - iters[j])
                iters[j] += used
                continue
            seen[j].add(key)
            # rows met with equality but left out as implied come last: they take over from dropped rows
            tight = ~W[:, j] & ~violated[:, t] & (s[:, t] <= noise[:, t])
            new = (W[:, j] & ~dropped[:, t]) | violated[:, t] | tight
            # violated rows first (most violated first), then kept rows by decreasing current, then tight ones
            order = np.lexsort((np.where(violated[:, t], s[:, t], -lam[:, j]), tight, ~violated[:, t]))
            prio[order, j] = np.arange(m)
            W[:, j] = new
            still.append(j)
        pending = np.array(still, dtype=np.int64)
    lam = np.maximum(lam, 0.0)  # only the last solve's working-set rows are nonzero
    _, residuals = certificate(qp, X, lam)
    unfinished[pending] = True
    info = {"converged": converged_mask(residuals, tol, residual_scale(qp, X)) & ~unfinished,
            "residuals": residuals, "iterations": iters, "factorisations": factors.count, "cycled": cycled,
            "linear_solver": "+".join(sorted(factors.used)), "cg_failures": factors.cg_failures,
            "admm_iterations": admm_iters}
    return QPSolution(x=X, lam=lam, iterations=int(iters.max(initial=0)), method="active-set", info=info)


def _admm_working_set(qp: QP) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Guess the final working set of a cold solve: over-relaxed scaled-form ADMM (Boyd et al. 2011) on
    min ½xᵀLx − bᵀx + [z ≤ c] s.t. A x = z.

    One factorisation of L + ρ AᵀA (ρ = ADMM_RHO × median diagonal of L, siemens); each iteration is one
    solve with it and a clip, so ADMM_MAX_ITER iterations cost about one factorisation. The rows with a
    positive scaled current u = λ/ρ (volts) form the guess, larger u first in the merge order. On a 300²
    grid with diodes this leaves 50-80 of 9,300 working rows wrong, which the primal-dual iterations fix in
    about 3 iterations instead of 11 from an empty set. Returns W (m, B) bool, prio (m, B), iterations
    and the position (n,) of each variable in the fill-reducing order of this factorisation (L's pattern:
    the diode rows join neighbours), which the later factorisations reuse (``_Factors.position``).
    """
    A = qp.constraint_matrix()
    rho = ADMM_RHO * float(np.median(qp.L.diagonal()))
    lu = _factorise(qp.L + rho * (A.T @ A))
    z, u = np.zeros((qp.m, qp.batch)), np.zeros((qp.m, qp.batch))
    W, stable, it = u > 0, 0, 0
    for it in range(1, ADMM_MAX_ITER + 1):
        x = lu.solve(qp.b + rho * (A.T @ (z - u)))
        v = ADMM_RELAX * (A @ x) + (1.0 - ADMM_RELAX) * z
        z = np.minimum(v + u, qp.c)
        u += v - z
        stable = stable + 1 if np.array_equal(u > 0, W) else 0
        W = u > 0
        if stable >= ADMM_STABLE:
            break
    return W, -u, it, lu.perm_c


def _factorise(K: sp.spmatrix, ordered: bool = False):
    """SuperLU factorisation of the SPD matrix K (symmetric mode, no pivoting), ordered by minimum degree
    on Aᵀ+A, or as given when ``ordered`` (300² grid: 0.215 s instead of 0.27 s, the same fill, when the
    order is minimum degree's own).

    Panel size SUPERLU_PANEL: on 2D meshes about 15 % faster than SuperLU's default (300² grid: 0.30 s
    instead of 0.36 s, median), the same fill. (Do not pass ``relax``: scipy 1.17's SuperLU then corrupts
    memory on some small matrices.)"""
    import scipy.sparse.linalg as spla

    return spla.splu(K.tocsc(), permc_spec="NATURAL" if ordered else "MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                     panel_size=SUPERLU_PANEL, options={"SymmetricMode": True})


def _current_noise(b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(B',) rounding level of a recovered current (amperes), from b and g = L x − b (n, B'): a current
    within it of 0 (a redundant or degenerate row) may stay in the working set, breaking no KKT condition."""
    return 64 * np.finfo(float).eps * np.maximum(np.abs(b).max(axis=0, initial=0.0), np.abs(g).max(axis=0, initial=0.0))


def _noise(qp: QP, x: np.ndarray, cols) -> np.ndarray:
    """(m, B') rounding level of the slack (volts): below it a row counts as exactly met."""
    return 4 * np.finfo(float).eps * (1.0 + np.abs(qp.c[:, cols]) + np.abs(x).max(axis=0, initial=0.0))


def _equality_solve(qp: QP, factors: "_Factors", cols: np.ndarray, W: np.ndarray, prio: np.ndarray,
                    guess: np.ndarray):
    """x (n, B') minimising the energy of columns ``cols`` with the rows of W (m, B') held with equality,
    merged in increasing ``prio``; the returned W keeps the rows of a spanning forest (see ``_merge``).
    Also returns ray (n, B'): ±1 on the variables of each loose group whose injected currents do not balance
    (the way they push it; its x is then only a placeholder), 0 elsewhere; None when there is none."""
    n = qp.n
    W = W.copy()
    X, offs, roots, groups, ray = np.empty((n, len(cols))), np.empty((n, len(cols))), {}, {}, None
    for t, j in enumerate(cols):
        order = np.argsort(np.where(W[:, t], prio[:, t], np.inf), kind="stable")[:np.count_nonzero(W[:, t])]
        roots[t], offs[:, t], W[:, t] = _merge(n, qp.a, qp.k, qp.c[:, j], order)
        groups.setdefault(W[:, t].tobytes(), []).append(t)
    for key, ts in groups.items():
        P, solve, loose = factors.get(key, roots[ts[0]])
        base = offs[:, ts]
        X[:, ts] = base
        if P.shape[1]:
            y0 = (P.T @ (guess[:, ts] - base)) / np.asarray(P.sum(axis=0)).reshape(-1, 1)  # group means
            rhs = P.T @ (qp.b[:, cols[ts]] - qp.L @ base)
            y = solve(rhs, y0).reshape(P.shape[1], -1)
            if loose is not None:
                scale = P.T @ (np.abs(qp.b[:, cols[ts]]) + abs(qp.L) @ np.abs(base))
                push = _level_loose(loose, rhs, y, y0, scale)
                if push.any():
                    ray = np.zeros((n, len(cols))) if ray is None else ray
                    ray[:, ts] = P @ push
            X[:, ts] += P @ y
    return X, W, ray


def _level_loose(loose: np.ndarray, rhs: np.ndarray, y: np.ndarray, y0: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Loose groups (``loose`` (g,): the loose group of each reduced variable, -1 elsewhere) of a reduced
    solution y (g, k) volts, solved with one potential of each held at 0: shift each to the mean of y0, in
    place, and return push (g, k): the sign of its net injected current f (rhs (g, k) amperes summed over
    it) where |f| exceeds its rounding level, 64 ε times the sum of ``scale`` (g, k) amperes over it."""
    at = np.flatnonzero(loose >= 0)
    lab = loose[at]
    n_loose = int(lab.max()) + 1
    net, noise, lift = (np.zeros((n_loose, y.shape[1])) for _ in range(3))
    np.add.at(net, lab, rhs[at])
    np.add.at(noise, lab, scale[at])
    np.add.at(lift, lab, y0[at] - y[at])
    y[at] += lift[lab] / np.bincount(lab, minlength=n_loose)[lab, None]
    push = np.zeros_like(y)
    push[at] = np.where(np.abs(net) > 64 * np.finfo(float).eps * noise, np.sign(net), 0.0)[lab]
    return push


def _primal_active_set(qp: QP, factors: "_Factors", j: int, x: np.ndarray, lam: np.ndarray, max_iter: int):
    """Classical primal active-set method on column j, the fallback when the primal-dual rule cycles.

    Starts from the largest feasible point below x (Bellman-Ford on the difference constraints) with the
    rows active there (more current first); each iteration steps towards the equality-constrained minimiser
    until the first blocking row (added), or, at a full step, drops the row with the most negative current.
    The energy never increases and x stays feasible.
    Working rows stay independent (a blocking row never depends on them). A loose group that currents push
    (``_equality_solve``'s ray) moves that way until the first row blocks it (``Unbounded`` if none does).
    Returns x (n,), lam (m,) and the iterations used, and whether it ran out of them (or found no feasible
    point)."""
    cols = np.array([j])
    x, feasible = _feasible_below(qp.n, qp.a, qp.k, qp.c[:, j], x)
    if not feasible:
        return x, np.zeros(qp.m), 0, True
    x = x[:, None]
    prio = -lam[:, None]
    s = slack(qp, x, cols)
    W = s <= _noise(qp, x, cols)
    A = qp.constraint_matrix()
    lam_w = np.zeros((qp.m, 1))
    for it in range(1, max_iter + 1):
        xw, W, ray = _equality_solve(qp, factors, cols, W, prio, x)
        p = xw - x if ray is None else ray  # along a ray: as far as the first blocking row
        ap = (A @ p)[:, 0]
        blocking = ~W[:, 0] & (ap > _noise(qp, x, cols)[:, 0])  # a rounding-sized step blocks nothing
        alpha, r = (1.0 if ray is None else np.inf), -1
        if blocking.any():
            ratio = np.where(blocking, np.maximum(slack(qp, x, cols)[:, 0], 0.0) / np.where(blocking, ap, 1.0),
                             np.inf)
            r = int(np.argmin(ratio))
            alpha = min(alpha, ratio[r])
        elif ray is not None:
            raise Unbounded(int(np.flatnonzero(ray[:, 0])[0]), j)
        x = x + alpha * p
        if r >= 0 and (alpha < 1.0 or ray is not None):
            W[r, 0] = True
            continue
        g = qp.L @ x - qp.b[:, cols]
        lam_w = least_squares_multipliers(qp, g, W)[0]
        neg = W[:, 0] & (lam_w[:, 0] < -_current_noise(qp.b[:, cols], g)[0])
        if not neg.any():
            return x[:, 0], np.maximum(lam_w[:, 0], 0.0), it, False
        W[int(np.argmin(np.where(neg, lam_w[:, 0], np.inf))), 0] = False
        prio = -lam_w
    return x[:, 0], np.maximum(lam_w[:, 0], 0.0), max_iter, True


@njit(cache=True)
def _feasible_below(n, a, k, c, x):
    """Largest x' ≤ x (volts, up to a common shift fixing the fixed ends at 0 V) meeting every row
    x'[a] − x'[k] ≤ c + eps: Bellman-Ford relaxation started from x, lowering a node only by more than
    eps = 1e-12 · max(1 V, max|c|), so loops of exactly tight rows (zero weight up to rounding) settle.
    Returns (x', False) if it does not settle (a negative loop: no feasible point)."""
    d = np.empty(n + 1)
    d[:n] = x
    d[n] = 0.0
    eps = 1e-12 * max(1.0, np.abs(c).max()) if len(c) else 0.0
    for _ in range(n + 2):
        changed = False
        for r in range(len(a)):
            u = k[r] if k[r] >= 0 else n
            v = a[r] if a[r] >= 0 else n
            if d[u] + c[r] < d[v] - eps:
                d[v] = d[u] + c[r]
                changed = True
        if not changed:
            return d[:n] - d[n], True
    return d[:n] - d[n], False


class _Factors:
    """LRU cache of (P, solve) per working set: P (n, n_free) sparse 0/1 maps free groups to variables,
    solve(rhs (n_free, k), guess (n_free, k)) solves with K = Pᵀ L P.

    K is factorised (SuperLU, symmetric mode, minimum-degree ordering on Aᵀ+A) unless L's graph is
    expander-like (``expander_like``), where fill-in would make that far too slow: then each solve is
    Jacobi-preconditioned conjugate gradients to a relative residual of CG_RTOL (these graphs are well
    conditioned for it). ``count`` is the number of factorisations, ``cg_failures`` of CG solves that
    stopped short (the KKT certificate then tells). Once ``position`` holds a fill-reducing order of L
    (from the ADMM guess's factorisation), K is factorised in that order, each group of merged variables
    at the place of its last member, instead of computing a minimum-degree order each time (300² grid:
    12-14 % more fill than a fresh order, but each factorisation 0.35-0.37 s instead of 0.39-0.45 s, and
    a cold solve 2.36 → 2.06 s, medians of 4 in one process). K of at most DENSE_MAX rows is solved dense
    (numpy). With floating parts, the third item of each entry is ``loose`` (n_free,): the loose group
    (module docstring) of each reduced variable, -1 elsewhere, or None; K then has one diagonal entry of
    each loose group raised by the group's largest diagonal (1 S if 0), which fixes its level."""

    def __init__(self, L: sp.csr_matrix, floating: np.ndarray | None = None):
        self.L = L
        self.floating = floating
        self.cache: OrderedDict = OrderedDict()
        self.count = 0
        self.iterative = expander_like(L)
        self.cg_failures = 0
        self.position = None  # (n,) a variable's place in a fill-reducing order of L, when one is known
        self.used: set[str] = set()  # "dense", "splu", "cg"

    def get(self, key: bytes, root: np.ndarray):
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        n = len(root)
        free = np.flatnonzero(root < n)
        groups, col = np.unique(root[free], return_inverse=True)
        P = sp.csr_matrix((np.ones(len(free)), (free, col)), shape=(n, len(groups)))
        solve, loose = None, None
        if len(groups):
            K = (P.T @ self.L @ P).tocsr()
            if self.floating is not None:
                loose = _loose_groups(self.floating, root, col, len(groups))
                if loose is not None:
                    first = np.unique(loose[loose >= 0], return_index=True)[1]
                    top = np.zeros(len(first))
                    np.maximum.at(top, loose[loose >= 0], K.diagonal()[loose >= 0])
                    K = (K + sp.csr_matrix((np.where(top > 0, top, 1.0), (np.flatnonzero(loose >= 0)[first],) * 2),
                                           shape=K.shape)).tocsr()
            kind = "dense" if K.shape[0] <= DENSE_MAX else "cg" if self.iterative else "splu"
            self.used.add(kind)
            if kind == "dense":
                solve = partial(_dense_solve, K.toarray())
                self.count += 1
            elif kind == "cg":
                solve = partial(self._cg, K)
            elif self.position is None:
                solve = partial(_direct_solve, _factorise(K))
                self.count += 1
            else:  # groups in the order of their last member: no minimum-degree ordering per factorisation
                last = np.zeros(len(groups), np.int64)
                np.maximum.at(last, col, self.position[free])
                order = np.argsort(last, kind="stable")
                solve = partial(_permuted_solve, _factorise(K[order][:, order], ordered=True), order)
                self.count += 1
        self.cache[key] = (P, solve, loose)
        if len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return self.cache[key]

    def _cg(self, K: sp.csr_matrix, rhs: np.ndarray, guess: np.ndarray) -> np.ndarray:
        y, ok = jacobi_cg(K, rhs.reshape(K.shape[0], -1), CG_RTOL, CG_MAX_ITER, guess)
        self.cg_failures += int(np.count_nonzero(~ok))
        return y


def _loose_groups(floating: np.ndarray, root: np.ndarray, col: np.ndarray, n_groups: int) -> np.ndarray | None:
    """(n_groups,) the loose group 0, 1, ... of each reduced variable, -1 elsewhere, or None: reduced
    variables (``col`` of each variable with ``root`` < n) joined through floating parts (``floating``)
    and joined to no variable with a resistive path to a fixed node nor to the fixed node (root n)."""
    n = len(root)
    group = np.full(n, n_groups, np.int64)  # node n_groups: the fixed node and everything tied to it
    group[root < n] = col
    part = floating >= 0
    # nodes: reduced variables, the fixed node, then one per floating part
    lab = connected_components(n_groups + 1 + int(floating.max()) + 1, group,
                               np.where(part, n_groups + 1 + floating, n_groups))
    loose = lab[:n_groups] != lab[n_groups]
    if not loose.any():
        return None
    out = np.full(n_groups, -1, np.int64)
    out[loose] = np.unique(lab[:n_groups][loose], return_inverse=True)[1]
    return out


def _dense_solve(K: np.ndarray, rhs: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Solve the dense K y = rhs (LAPACK's LU; the guess is of no use)."""
    return np.linalg.solve(K, rhs.reshape(K.shape[0], -1))


def _direct_solve(lu, rhs: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Solve with a factorisation (exact: the guess is of no use)."""
    return lu.solve(rhs)


def _permuted_solve(lu, order: np.ndarray, rhs: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Solve K y = rhs with lu factorising K[order][:, order]."""
    y = np.empty_like(rhs, dtype=np.float64)
    y[order] = lu.solve(rhs[order])
    return y


def jacobi_cg(K: sp.csr_matrix, rhs: np.ndarray, rtol: float, max_iter: int,
              guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Solve K Y = rhs (p, k) for SPD K by Jacobi-preconditioned conjugate gradients, all k columns at once,
    starting from ``guess`` (p, k) (default 0).

    Each column stops when its residual 2-norm is ≤ rtol times its rhs 2-norm. Returns Y (p, k) and the
    (k,) bool "converged within max_iter"."""
    dinv = 1.0 / K.diagonal()[:, None]
    Y = np.zeros_like(rhs) if guess is None else guess.astype(np.float64, copy=True)
    R = rhs - K @ Y
    goal = rtol * np.linalg.norm(rhs, axis=0)
    Z = dinv * R
    D = Z.copy()
    rz = np.einsum("ik,ik->k", R, Z)
    for _ in range(max_iter):
        live = np.linalg.norm(R, axis=0) > goal
        if not live.any():
            break
        KD = K @ D
        dkd = np.einsum("ik,ik->k", D, KD)
        alpha = np.where(live, rz / np.where(dkd > 0, dkd, 1.0), 0.0)
        Y += alpha * D
        R -= alpha * KD
        Z = dinv * R
        rz_new = np.einsum("ik,ik->k", R, Z)
        D = Z + np.where(live, rz_new / np.where(rz > 0, rz, 1.0), 0.0) * D
        rz = rz_new
    return Y, np.linalg.norm(R, axis=0) <= goal


def expander_like(L: sp.csr_matrix) -> bool:
    """True when L (n, n) has at least EXPANDER_MIN_N variables and its graph's diameter d (a double-sweep
    BFS estimate, within one connected part) has d² < n, as random sparse graphs do (d ~ log n) and meshes
    do not (2D grid: d² ~ 4n).
    Such graphs have no small separators, so a sparse factorisation fills in almost completely."""
    n = L.shape[0]
    if n < EXPANDER_MIN_N:
        return False
    from scipy.sparse import csgraph

    graph = sp.csr_matrix((np.ones(L.nnz), L.indices, L.indptr), shape=L.shape)
    far = int(np.argmax(np.diff(L.indptr)))  # a best-connected node: in a large part, not an isolated one
    for _ in range(2):
        far = int(csgraph.breadth_first_order(graph, far, directed=False, return_predecessors=False)[-1])
    d = csgraph.dijkstra(graph, directed=False, unweighted=True, indices=far)
    return bool(d[np.isfinite(d)].max() ** 2 < n)


@njit(cache=True)
def _find(parent, off, i):
    """Root of i and x_i − x_root (volts), compressing the path."""
    r, o = i, 0.0
    while parent[r] != r:
        o += off[r]
        r = parent[r]
    j, oj = i, o
    while parent[j] != r and parent[j] != j:
        nxt, nof = parent[j], oj - off[j]
        parent[j], off[j] = r, oj
        j, oj = nxt, nof
    return r, o


@njit(cache=True)
def _merge(n, a, k, c, order):
    """Union-find of the working-set rows x_a − x_k = c, taken in ``order``, over nodes 0..n (n = the fixed
    ends, 0 V, always a root). Returns root (n,) (n = fixed), offset (n,) volts with x_i = x_root + offset
    (the potential itself when fixed), and the (m,) bool working set: the rows of ``order`` that join two
    groups, a spanning forest. A row closing a loop is left out: if consistent it holds anyway (with no
    current), else it contradicts rows before it (the next iteration sees it violated if it matters)."""
    parent = np.arange(n + 1)
    off = np.zeros(n + 1)
    size = np.ones(n + 1, np.int64)
    keep = np.zeros(len(a), np.bool_)
    for r in order:
        keep[r] = True
        ru, ou = _find(parent, off, a[r] if a[r] >= 0 else n)
        rv, ov = _find(parent, off, k[r] if k[r] >= 0 else n)
        d = c[r] + ov - ou  # x_ru − x_rv
        if ru == rv:  # implied by (or contradicting) earlier rows: not a working row
            keep[r] = False
        elif ru == n or (rv != n and size[ru] > size[rv]):
            parent[rv], off[rv] = ru, -d
            size[ru] += size[rv]
        else:
            parent[ru], off[ru] = rv, d
            size[rv] += size[ru]
    root = np.empty(n, np.int64)
    offset = np.empty(n)
    for i in range(n):
        root[i], offset[i] = _find(parent, off, i)
    return root, offset, keep
