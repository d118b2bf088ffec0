"""``solve``: compile if needed, solve the stage QPs in order, certify, and build the OperatingPoint.

Methods (``method=``):

- ``"cd"``: exact colour-blocked coordinate descent (:mod:`resnet_sim.solvers.cd`), alone.
- ``"active-set"``: primal-dual active set with sparse factorisations (:mod:`resnet_sim.solvers.active_set`).
- ``"cvxpy"``: the cvxpy/Clarabel reference (tests and benchmarks).
- ``"auto"`` (default), per stage: coordinate descent when the stage is *shallow* -- every free
  variable lies within ``AUTO_MAX_DEPTH`` resistor hops of a variable with a resistor to a fixed node
  (layered, DRN-like circuits, where a sweep moves information across the whole network) -- otherwise the
  active-set solver (mesh-like circuits: grids, long chains, where coordinate descent needs a number of
  sweeps that grows with the diameter). After coordinate descent, the active-set solver polishes,
  warm-started, when a coupled diode row (both ends free) is active or the certificate or cd's error
  estimate is not met. *Small* stages (``SMALL_WORK``) and stages with floating parts take the
  active-set solver directly.
  ``op.method`` records what ran, e.g. ``"cd"``, ``"active-set"``, ``"cd+active-set"`` (stages that
  chose differently: joined by commas; ``"none"`` when no node is free).

Every result carries the KKT certificate (:mod:`resnet_sim.solvers.kkt`); ``converged`` is true only
when all four residuals are under ``tol`` for every sample and the error estimate ``_error_estimate``
(``kkt.error_amplification_bound`` times the stationarity residual and its rounding floor, node by node in
volts) is within tol · max(1 V, ‖x‖∞) for
every stage coordinate descent finished and every active-set column with no active diode row (docs/solver.md
section 6): cd's stopping test is a step size, and on a weakly tied cluster of strongly coupled nodes (1 ohm
inside, tens of kilohms out) steps of 1e-10 V can leave errors of 1e-6 V whose currents are within the
ampere tolerance; where conductances span 1e15, no double-precision solve is within 1e-9 V. ("auto"
polishes cd's result with the active-set solver when its estimate misses.) Otherwise a :class:`ConvergenceWarning` is
issued, or with ``strict=True`` a :class:`ConvergenceError` raised. Infeasible problems (ideal diodes
that would carry infinite current) raise :class:`~resnet_sim.errors.CircuitError`, and so do nodes held
only by diodes (floating parts, docs/solver.md section 3a) whose potential the solution leaves free
(``_check_unique``) or that current sources drive to infinity (``Unbounded``).

Small stages run their kernels as plain Python (:func:`resnet_sim.solvers.jit.interpreted`): a process that
solves only small circuits never imports Numba.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from .compile import Problem, compile, listing
from .errors import CircuitError
from .graph import connected_components
from .operating_point import OperatingPoint
from .solvers.jit import interpreted
from .solvers.qp import Unbounded

__all__ = ["solve", "ConvergenceWarning", "ConvergenceError", "METHODS", "AUTO_MAX_DEPTH"]

METHODS = ("auto", "cd", "active-set", "cvxpy")
# "auto" uses coordinate descent when every variable is within this many hops of a grounded variable.
AUTO_MAX_DEPTH = 4
# a stage is *small* when B * (variables + diode rows) is at most this: its kernels run as plain Python (no
# Numba to load) and "auto" takes the active-set solver (benchmarks/startup.py measures the trade)
SMALL_WORK = 2000
# sweeps coordinate descent gets under "auto" before the active-set solver takes over
AUTO_CD_SWEEPS = 2000
# the room (relative to 1 + max |x|) that makes a floating part not unique in Clarabel's answer (interior
# point: on a degenerate part its potentials are off by microvolts); the exact methods use kkt.ACTIVE_RTOL
CVXPY_ROOM_RTOL = 1e-4
# times coordinate descent tightens its step tolerance to meet its error estimate (see ``_cd``)
CD_TIGHTEN_ROUNDS = 4


class ConvergenceWarning(UserWarning):
    """A solve stopped before its KKT certificate met the tolerance."""


class ConvergenceError(RuntimeError):
    """``strict=True`` and the KKT certificate did not meet the tolerance."""


def solve(circuit_or_problem, method: str = "auto", tol: float = 1e-9, inputs=None, warm_start=None,
          strict: bool = False, gmin: float | None = None, beta: float = 0.0, targets=None,
          max_sweeps: int = 100_000, repeated: bool = False) -> OperatingPoint:
    """DC operating point of a Circuit (compiled here, with ``gmin``) or of a compiled Problem.

    ``inputs``: (B, n_inputs) values of the ``.inputs`` sources (volts or amperes), or (n_inputs,) for one
    sample. ``warm_start``: an OperatingPoint of the same Problem (same B, or B = 1) or an (n_free, B)
    array of free-variable potentials (volts). ``beta`` (siemens) and ``targets`` (B, n_outputs)
    volts nudge the outputs (equilibrium propagation); a negative beta must keep the nudged energy convex
    (``Problem.max_negative_beta``), else CircuitError. ``tol``: the KKT tolerance, relative as in
    ``kkt.converged_mask`` with ``kkt.residual_scale`` (feasibility within tol volts; stationarity and
    diode currents within tol times the stage's current scale, amperes), the bound on coordinate
    descent's error (volts, relative to max(1 V, ‖x‖∞); see the module docstring) and its first step
    tolerance (volts). ``max_sweeps``: coordinate-descent sweep limit. ``repeated``: the caller solves this
    Problem many times (a training loop): no stage is treated as small (SMALL_WORK), since loading Numba once
    costs less than running its kernels as plain Python thousands of times.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol}")
    if not np.isfinite(beta):
        raise ValueError(f"beta must be a finite conductance (siemens), got {beta}")
    if isinstance(circuit_or_problem, Problem):
        problem = circuit_or_problem
        if gmin is not None and gmin != problem.gmin:
            raise ValueError("gmin is fixed at compile time: compile(circuit, gmin=...) again")
    else:
        problem = compile(circuit_or_problem, gmin=gmin)

    from .solvers.kkt import certificate, converged_mask, infeasible_rows, residual_scale

    s = problem.source_values(inputs)
    batched = inputs is not None and np.ndim(inputs) == 2
    B = s.shape[1]
    x0, lam0 = _warm(problem, warm_start, B)
    x = np.zeros((problem.n_free, B))
    lam = np.zeros((len(problem.c0), B))
    used, sweeps, residuals, ok, worst_error = [], 0, [], np.ones(B, bool), 0.0
    problem.check_static_diodes(s, x, tol, amplified=False)  # before any stage can fail otherwise
    for t, stage in enumerate(problem.stages):
        problem.update_vcvs(s, x, t)
        qp = problem.qp(t, s, beta=beta, targets=targets)
        small = not repeated and _small(qp)
        with interpreted(small):
            bad = infeasible_rows(qp) if qp.m else None
            if bad is not None:
                names = list(dict.fromkeys(problem.diode_names_of_rows(stage.rows[np.asarray(bad, dtype=np.int64)])))
                where = f" (sample {bad.column})" if B > 1 and hasattr(bad, "column") else ""
                raise CircuitError(f"ideal diode{'s' if len(names) > 1 else ''} {', '.join(names)} "
                                   f"{'are' if len(names) > 1 else 'is'} forward-biased between sources{where}: "
                                   f"infinite current would flow, so no finite operating point exists")
            sx0 = None if x0 is None else x0[stage.variables]
            slam0 = None if lam0 is None else lam0[stage.rows]
            try:
                sol, name = _solve_stage(qp, stage, method, tol, sx0, slam0, max_sweeps, beta, small)
            except Unbounded as err:
                raise CircuitError(_unbounded_message(problem, stage, qp, err)) from None
            lam_t, res = certificate(qp, sol.x, sol.lam)
            scale = residual_scale(qp, sol.x)
            met = converged_mask(res, tol, scale)
            if qp.floating is not None:  # at KKT points only: an unconverged column is reported as such
                _check_unique(problem, stage, qp, s, sol.x, lam_t, tol * scale["dual"], np.flatnonzero(met),
                              CVXPY_ROOM_RTOL if name == "cvxpy" else None)
            x[stage.variables] = sol.x
            lam[stage.rows] = lam_t
            used.append(name)
            sweeps += sol.iterations
            residuals.append(res)
            ok &= met
            if name != "cvxpy":
                if name == "cd":
                    error = sol.info["error_estimate"]
                else:  # active set: only columns with no active diode row, where the bound holds as it is
                    # a diode current within the stationarity tolerance is rounding, not conduction
                    free = ~(lam_t > tol * scale["dual"]).any(axis=0)
                    error = np.zeros(B)
                    if free.any():
                        error[free] = _error_estimate(qp, stage, beta, sol.x, lam_t)[0][free]
                worst_error = max(worst_error, float(np.max(error, initial=0.0)))
                ok &= error <= tol * _volt_scale(sol.x)
    problem.update_vcvs(s, x, len(problem.stages))
    problem.check_static_diodes(s, x, tol)

    keys = ("stationarity", "feasibility", "dual", "complementarity")
    worst = {k: np.max([r[k] for r in residuals], axis=0) if residuals else np.zeros(B) for k in keys}
    op = OperatingPoint(problem, x, lam, s, batched=batched, method=_method_label(used), sweeps=sweeps,
                        residuals=worst, converged=ok, tol=tol, beta=beta, targets=targets)
    if not op.converged:
        worst_txt = ", ".join(f"{k} {np.max(v):.3g}" for k, v in worst.items())
        if worst_error:
            worst_txt += f"; error estimate {worst_error:.3g} V"
        msg = (f"{problem.circuit.title!r}: {op.method} stopped before the KKT certificate met tol={tol:g} ({worst_txt}; "
               f"{int(np.count_nonzero(~np.asarray(ok)))} of {B} samples)")
        if strict:
            raise ConvergenceError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    return op


def _method_label(used: list[str]) -> str:
    """The solver of every stage, distinct names joined by ','; "none" when nothing was free."""
    return ",".join(dict.fromkeys(used)) or "none"


def _warm(problem: Problem, warm_start, B: int):
    """(x0 (n_free, B) or None, lam0 (n_rows, B) or None) from an OperatingPoint or an array."""
    if warm_start is None:
        return None, None
    if isinstance(warm_start, OperatingPoint):
        x0, lam0 = warm_start.x, warm_start.lam
    else:
        x0, lam0 = np.asarray(warm_start, dtype=np.float64), None
        if x0.ndim == 1:
            x0 = x0[:, None]
    if x0.shape[0] != problem.n_free or x0.shape[1] not in (1, B):
        shapes = f"({problem.n_free}, {B})" + ("" if B == 1 else f" or ({problem.n_free}, 1)")
        raise ValueError(f"warm_start must have shape {shapes}, got {x0.shape}")
    if lam0 is not None and lam0.shape[0] != len(problem.c0):
        raise ValueError(f"warm_start is an OperatingPoint of a circuit with {lam0.shape[0]} diode rows, this one "
                         f"has {len(problem.c0)}: pass its potentials (op.x) instead")
    if not np.all(np.isfinite(x0)):
        raise ValueError("warm_start must be finite (volts)")
    x0 = np.broadcast_to(x0, (problem.n_free, B)).copy()
    if lam0 is not None:
        lam0 = np.broadcast_to(lam0, (lam0.shape[0], B)).copy()
    return x0, lam0


def _small(qp) -> bool:
    """Whether a stage QP is small (see SMALL_WORK): solved with plain-Python kernels."""
    return qp.batch * (qp.n + qp.m) <= SMALL_WORK


def _solve_stage(qp, stage, method, tol, x0, lam0, max_sweeps, beta, small):
    """Solve one stage QP with ``method``; returns (QPSolution, the label of what ran); the solution's
    ``iterations`` count cd sweeps plus active-set iterations. "auto" takes the active-set solver for
    ``small`` stages, stages with floating parts and deep ones."""
    if method == "cvxpy":
        from .solvers.reference import solve_cvxpy

        return solve_cvxpy(qp), "cvxpy"
    if method == "active-set":
        return _active_set(qp, tol, x0, lam0), "active-set"
    if method == "cd":
        return _cd(qp, stage, tol, x0, max_sweeps, beta), "cd"
    # auto
    if small or qp.floating is not None or not _shallow(qp, stage):
        return _active_set(qp, tol, x0, lam0), "active-set"
    sol = _cd(qp, stage, tol, x0, min(max_sweeps, AUTO_CD_SWEEPS), beta)
    if _needs_polish(qp, sol, tol):
        polished = _active_set(qp, tol, sol.x, None)
        polished.iterations += sol.iterations
        return polished, "cd+active-set"
    return sol, "cd"


def _cd(qp, stage, tol, x0, max_sweeps, beta):
    """Coordinate descent until its error estimate (``_error_estimate``) is within tol · max(1 V, ‖x‖∞)
    for every column: the step tolerance starts at tol and, while the estimate misses, shrinks in
    proportion (warm-started, at most CD_TIGHTEN_ROUNDS times, within max_sweeps in all; not where the
    rounding floor alone misses). The solution's info gains "error_estimate" (B,) volts."""
    from .solvers.cd import solve_cd
    from .solvers.colouring import colour_variables

    if "colours" not in stage.cache:
        stage.cache["colours"] = colour_variables(qp)
    step_tol, sweeps = tol, 0
    for _ in range(CD_TIGHTEN_ROUNDS + 1):
        sol = solve_cd(qp, x0=x0, tol=step_tol, max_sweeps=max_sweeps - sweeps, colours=stage.cache["colours"])
        sweeps += sol.iterations
        error, floor = _error_estimate(qp, stage, beta, sol.x, sol.lam)
        target = tol * _volt_scale(sol.x)
        missed = error > target
        # stop when met, out of sweeps, or where rounding alone misses (smaller steps cannot help)
        if not missed.any() or not sol.info["converged"] or sweeps >= max_sweeps or np.any(floor[missed] > target[missed]):
            break
        x0 = sol.x
        step_tol = step_tol * max(float(np.min(target[missed] / error[missed])) / 4, 1e-6)
    sol.iterations = sweeps
    sol.info["error_estimate"] = error
    return sol


def _active_set(qp, tol, x0, lam0):
    from .solvers.active_set import solve_active_set

    return solve_active_set(qp, x0=x0, lam0=lam0, tol=tol)


def _needs_polish(qp, sol, tol) -> bool:
    """After ``_cd``: polish when cd did not converge, its certificate or error estimate misses tol, or an
    active coupled diode row may hold it back."""
    from .solvers.kkt import converged_mask, residual_scale

    if not sol.info["converged"]:
        return True
    if not (converged_mask(sol.info["residuals"], tol, residual_scale(qp, sol.x)).all()
            and np.all(sol.info["error_estimate"] <= tol * _volt_scale(sol.x))):
        return True
    coupled = (qp.a >= 0) & (qp.k >= 0)
    if not coupled.any():
        return False
    x = sol.x
    slack = qp.c[coupled] - (x[qp.a[coupled]] - x[qp.k[coupled]])
    return bool((slack <= tol).any())


def _volt_scale(x: np.ndarray) -> np.ndarray:
    """(B,) max(1 V, ‖x[:, j]‖∞): the scale of cd's error estimate."""
    return np.maximum(1.0, np.abs(x).max(axis=0, initial=0.0))


def _error_estimate(qp, stage, beta, x, lam) -> tuple[np.ndarray, np.ndarray]:
    """((B,), (B,)) volts: the error estimate max_j K_j (|r_j| + f_j) / L_jj of x (n, B) volts with diode
    currents lam (m, B), with K the stage's ``kkt.error_amplification_bound`` (cached per conductances and
    beta), r = L x − b + Aᵀ lam the stationarity residual (amperes) and f = ε (|L| |x| + |b|) its rounding floor (a residual below that is noise of its
    own evaluation: on a pair held by gmin alone, an x 1e-8 V off has residual 0.0); and the floor's part.
    With floating parts (L singular), the same with the active rows merged (``_pinned_error_estimate``)."""
    from .solvers.kkt import error_amplification_bound

    if qp.floating is not None:
        return _pinned_error_estimate(qp, x, lam)
    key = ("amplification", float(beta))
    if key not in stage.value_cache:
        stage.value_cache[key] = (error_amplification_bound(qp.L)[:, None], abs(qp.L).tocsr(), qp.L.diagonal()[:, None])
    K, absL, diag = stage.value_cache[key]
    floor = np.finfo(float).eps * (absL @ np.abs(x) + np.abs(qp.b)) / diag
    residual = qp.L @ x - qp.b + (qp.constraint_matrix().T @ lam if qp.m else 0.0)
    steps = np.abs(residual) / diag
    with np.errstate(invalid="ignore"):  # inf * 0: an exact x with no bound found
        error = np.nan_to_num(K * (steps + floor), nan=0.0).max(axis=0, initial=0.0)
        rounding = np.nan_to_num(K * floor, nan=0.0).max(axis=0, initial=0.0)
    return error, rounding


def _pinned_error_estimate(qp, x, lam) -> tuple[np.ndarray, np.ndarray]:
    """``_error_estimate`` for a stage with floating parts, where L alone is singular: per column, the
    active rows (slack <= kkt.ACTIVE_RTOL (1 + |c|), more current first, a spanning forest) merge their ends
    (x_a = x_k + c) and the estimate is taken on the merged Laplacian K = Pᵀ L P at the point x̂ nearest x
    that meets them (each merged group at its mean), plus max |x − x̂|. Infinite where the active rows leave
    a floating part loose (K singular). An estimate, not a bound: it takes the active set to be right."""
    from .solvers.active_set import _loose_groups, _merge
    from .solvers.kkt import ACTIVE_RTOL, error_amplification_bound, slack

    n, B = x.shape
    eps = np.finfo(float).eps
    active = slack(qp, x) <= ACTIVE_RTOL * (1.0 + np.abs(qp.c))
    A, absL = qp.constraint_matrix(), abs(qp.L)
    error, rounding, merged = np.zeros(B), np.zeros(B), {}
    for j in range(B):
        rows = np.flatnonzero(active[:, j])
        root, offset, _ = _merge(n, qp.a, qp.k, qp.c[:, j], rows[np.argsort(-lam[rows, j], kind="stable")])
        key = active[:, j].tobytes()
        if key not in merged:
            free = np.flatnonzero(root < n)
            groups, col = np.unique(root[free], return_inverse=True)
            P = sp.csr_matrix((np.ones(len(free)), (free, col)), shape=(n, len(groups)))
            K = (P.T @ qp.L @ P).tocsr()
            loose = _loose_groups(qp.floating, root, col, len(groups)) if len(groups) else None
            bound = np.full(len(groups), np.inf) if loose is not None else error_amplification_bound(K)
            merged[key] = (P, bound, K.diagonal(), np.asarray(P.sum(axis=0)).ravel())
        P, bound, diag, size = merged[key]
        xh = offset.copy()
        if P.shape[1]:
            xh += P @ ((P.T @ (x[:, j] - offset)) / size)
        residual = P.T @ (qp.L @ xh - qp.b[:, j] + (A.T @ lam[:, j] if qp.m else 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):  # a loose group may have diagonal 0
            floor = eps * (P.T @ (absL @ np.abs(xh) + np.abs(qp.b[:, j]))) / diag
            error[j] = np.nan_to_num(bound * (np.abs(residual) / diag + floor), nan=0.0).max(initial=0.0)
            rounding[j] = np.nan_to_num(bound * floor, nan=0.0).max(initial=0.0)
        error[j] += np.abs(x[:, j] - xh).max(initial=0.0)
    return error, rounding


def _shallow(qp, stage) -> bool:
    """The "auto" rule: every variable within AUTO_MAX_DEPTH hops of a grounded variable (cached)."""
    if "depth" not in stage.cache:
        stage.cache["depth"] = _depth_from_ground(qp.L)
    return stage.cache["depth"] <= AUTO_MAX_DEPTH


def _depth_from_ground(L: sp.csr_matrix) -> float:
    """Largest number of resistor hops from a variable to the nearest grounded one (row sum above 1e-12 of
    its diagonal); inf when some variable reaches none (only rounding-level ties, e.g. gmin next to 1 ohm)."""
    from scipy.sparse import csgraph

    n = L.shape[0]
    grounded = np.flatnonzero(np.asarray(L.sum(axis=1)).ravel() > 1e-12 * np.abs(L.diagonal()))
    adj = sp.csr_matrix((np.ones(L.nnz), L.indices, L.indptr), shape=(n, n))
    root = sp.csr_matrix((np.ones(len(grounded)), (np.full(len(grounded), n), grounded)), shape=(n + 1, n + 1))
    g = sp.bmat([[adj, None], [None, sp.csr_matrix((1, 1))]]).tocsr() + root
    dist = csgraph.shortest_path(g, method="D", unweighted=True, directed=False, indices=n)
    if n and not np.isfinite(dist[:n]).all():  # tied to fixed nodes only by rounding-level conductances (gmin)
        return np.inf
    return int(np.max(dist[:n])) - 1 if n else 0


def _check_unique(problem: Problem, stage, qp, s: np.ndarray, x: np.ndarray, lam: np.ndarray,
                  conducts: float | np.ndarray, columns: np.ndarray, room_rtol: float | None = None) -> None:
    """CircuitError naming the nodes of a floating part (``QP.floating``) whose potential the solution
    x (n, B) volts, lam (m, B) amperes (sources s (n_s, B)) leaves free, in any of the samples ``columns``.

    The minimiser is unique iff no rigid shift d of the floating parts keeps the active rows feasible
    (A F d <= 0) at no cost (I·d = 0). For such d, I·d = λᵀ A F d (stationarity summed over each part,
    λ >= 0), so I·d = 0 iff the conducting rows (lam above ``conducts`` amperes, (B,) or scalar) keep
    their slack: their ends move together, and each other active row says t_a <= t_k. A part that does
    not reach the rest of the circuit along a -> k edges can move up, with every part it reaches, until
    an inactive row closes (likewise down along k -> a): not unique if that room exceeds ``room_rtol``
    (default: the activity tolerance kkt.ACTIVE_RTOL) times (1 + max |x|)."""
    from .solvers.kkt import ACTIVE_RTOL, slack

    room_rtol = ACTIVE_RTOL if room_rtol is None else room_rtol

    p = qp.n_parts
    ends = np.stack([qp.a, qp.k])
    node = np.where(ends >= 0, qp.floating[np.maximum(ends, 0)], -1)
    node = np.where(node >= 0, node, p)  # the rest of the circuit: node p
    gap = slack(qp, x)
    active = gap <= ACTIVE_RTOL * (1.0 + np.abs(qp.c))
    conducting = active & (lam > conducts)
    for j in columns:
        lab = connected_components(p + 1, node[0, conducting[:, j]], node[1, conducting[:, j]])
        la, lk = lab[node[0]], lab[node[1]]
        weak = active[:, j] & ~conducting[:, j]
        room = {}
        for group in np.unique(lab[:p]):
            for sign, src, dst in ((1.0, la, lk), (-1.0, lk, la)):
                moved = _reached(p + 1, src[weak], dst[weak], group)
                if not moved[lab[p]]:
                    room[sign] = gap[moved[src] & ~moved[dst], j].min(initial=np.inf)
            if max(room.values(), default=0.0) > room_rtol * (1.0 + np.abs(x[:, j]).max()):
                members = np.flatnonzero(np.isin(qp.floating, np.flatnonzero(lab[:p] == group)))
                touching = np.flatnonzero((la == group) != (lk == group))
                _not_unique(problem, stage, s, x, j, members, stage.rows[touching], -room.get(-1.0, 0.0),
                            room.get(1.0, 0.0))
            room.clear()


def _not_unique(problem: Problem, stage, s, x, j, members, rows, down, up):
    """Raise the CircuitError of ``_check_unique``: the nodes of stage variables ``members``, the diodes of
    global ``rows``, and the range of potentials (volts) of the first node: its own plus down..up."""
    names = problem.variable_nodes(stage.variables[members])
    node_id = problem.node_names.index(names[0])
    v = x[np.searchsorted(stage.variables, problem.var[node_id]), j] + (problem.P[node_id] @ s[:, j]).item()
    diodes = list(dict.fromkeys(problem.diode_names_of_rows(rows)))
    where = f" in sample {j}" if x.shape[1] > 1 else ""
    raise CircuitError(
        f"{listing('node', names)} {'are' if len(names) > 1 else 'is'} held only by "
        f"{listing('diode', diodes)}, {'none of which conducts' if len(diodes) > 1 else 'which does not conduct'}"
        f"{where}: the operating point is not unique (v({names[0]}) could be anywhere from {v + down:.6g} V "
        f"to {v + up:.6g} V; pass gmin= to add a small conductance to ground, as SPICE does)")


def _reached(n: int, src: np.ndarray, dst: np.ndarray, start: int) -> np.ndarray:
    """(n,) bool: the nodes reachable from ``start`` along the directed edges src -> dst."""
    seen = np.zeros(n, bool)
    seen[start] = True
    while True:
        new = seen[src] & ~seen[dst]
        if not new.any():
            return seen
        seen[dst[new]] = True


def _unbounded_message(problem: Problem, stage, qp, err: Unbounded) -> str:
    """The CircuitError text for a stage whose energy has no minimum (``Unbounded``): the floating part that
    runs off (every floating node when the solver cannot tell)."""
    part = qp.floating[err.variable] if err.variable >= 0 else -1
    members = np.flatnonzero(qp.floating == part) if part >= 0 else np.flatnonzero(qp.floating >= 0)
    names = problem.variable_nodes(stage.variables[members])
    where = f" (sample {err.column})" if qp.batch > 1 else ""
    return (f"{listing('node', names)} {'are' if len(names) > 1 else 'is'} held only by diodes, and current "
            f"sources drive {'them' if len(names) > 1 else 'it'} where no diode stops "
            f"{'them' if len(names) > 1 else 'it'}{where}: the potential grows without bound, so no finite "
            "operating point exists")
