"""Reference solver: the diode QP (see ``qp.py``) handed to cvxpy and an interior-point solver (Clarabel).

For tests and benchmarks only; cvxpy is imported inside ``solve_cvxpy`` so ``import resnet_sim`` stays light.
"""

from __future__ import annotations

import time

import numpy as np

from resnet_sim.solvers.kkt import certificate, converged_mask, residual_scale
from resnet_sim.solvers.qp import QP, QPSolution, Unbounded

TIGHT = {"CLARABEL": {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}}
"""Default solver options, tighter than Clarabel's own (1e-8) so the reference is good to ~1e-9 V."""
RELAXED = {"CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-8}}
"""Retried with when the TIGHT options make the solver fail (it may then stall short of them)."""


def solve_cvxpy(qp: QP, solver: str = "CLARABEL", scale: bool = True, tight: bool = True, tol: float = 1e-8,
                **opts) -> QPSolution:
    """Solve each batch column of ``qp`` with cvxpy: min ½ xᵀ L x − bᵀ x subject to A x ≤ c.

    The objective is the reduced Laplacian form ``0.5 * quad_form(x, psd_wrap(L)) - b @ x`` (one term, not
    one per resistor); b and c are cvxpy Parameters, so the problem is built once and re-solved per column.
    With ``scale`` the objective is divided by max diag(L) (siemens) so it is O(volts²) for the solver;
    x is unchanged and lam is scaled back to amperes. ``opts`` go to ``problem.solve``; without them and with
    ``tight`` ``TIGHT`` is used, then ``RELAXED`` if the solver fails (info["relaxed"] (B,) says where);
    ``tight=False`` keeps the solver's own defaults (for timing it as users would run it).

    Returns a QPSolution: x (n, B) volts, lam (m, B) amperes (the constraint duals), iterations = the most
    solver iterations over columns; info["solve_time"] and info["wall_time"] are (B,) seconds: the solver's
    own time (``solver_stats.solve_time``) and the whole ``problem.solve`` call per column, and
    info["setup_time"] the one-off problem construction; info["residuals"] the KKT residuals
    (``kkt.certificate``) and info["converged"] their verdict at ``tol`` (``kkt.converged_mask`` with
    ``kkt.residual_scale``; an "optimal_inaccurate" status is kept for the certificate to judge, as on a
    minimiser that is not unique). Raises ValueError if a column is infeasible, ``qp.Unbounded`` if its
    energy has no minimum, and RuntimeError for any other status than optimal, naming the column and the
    status.
    """
    import cvxpy as cp

    t0 = time.perf_counter()
    n, m, B = qp.n, qp.m, qp.batch
    s = float(qp.L.diagonal().max(initial=0.0)) if scale else 0.0
    s = s if s > 0 else 1.0  # no conductance at all: variables held only by diodes
    x = cp.Variable(n)
    b = cp.Parameter(n)
    objective = 0.5 * cp.quad_form(x, cp.psd_wrap(qp.L / s)) - b @ x
    constraints = []
    if m:
        c = cp.Parameter(m)
        constraints = [qp.constraint_matrix() @ x <= c]
    problem = cp.Problem(cp.Minimize(objective), constraints)
    setup = time.perf_counter() - t0
    attempts = [opts] if (opts or not tight) else [TIGHT.get(solver.upper(), {}), RELAXED.get(solver.upper(), {})]

    X, lam = np.empty((n, B)), np.zeros((m, B))
    solve_time, wall_time, relaxed, iters = np.empty(B), np.empty(B), np.zeros(B, bool), 0
    for j in range(B):
        b.value = qp.b[:, j] / s
        if m:
            c.value = qp.c[:, j]
        t = time.perf_counter()
        for attempt, options in enumerate(attempts):
            try:
                problem.solve(solver=solver, **options)
                break
            except cp.error.SolverError as err:
                if attempt == len(attempts) - 1:
                    raise RuntimeError(f"{solver} failed on QP column {j}: {err}") from err
        relaxed[j] = attempt > 0
        wall_time[j] = time.perf_counter() - t
        if problem.status in ("infeasible", "infeasible_inaccurate"):
            raise ValueError(f"QP column {j} is infeasible: no x satisfies the diode rows A x <= c "
                             f"({solver} status {problem.status!r})")
        if problem.status in ("unbounded", "unbounded_inaccurate"):
            raise Unbounded(-1, j)
        if problem.status not in ("optimal", "optimal_inaccurate"):  # inaccurate: the certificate judges it
            raise RuntimeError(f"{solver} did not solve QP column {j}: status {problem.status!r}")
        X[:, j] = x.value
        if m:
            lam[:, j] = constraints[0].dual_value * s
        solve_time[j] = problem.solver_stats.solve_time or np.nan
        iters = max(iters, problem.solver_stats.num_iters or 0)
    _, residuals = certificate(qp, X, lam)
    info = {"solve_time": solve_time, "wall_time": wall_time, "setup_time": setup, "solver": solver,
            "relaxed": relaxed, "residuals": residuals,
            "converged": converged_mask(residuals, tol, residual_scale(qp, X))}
    return QPSolution(x=X, lam=lam, iterations=iters, method="cvxpy", info=info)
