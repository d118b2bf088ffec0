"""The exact active-set solver (resnet_sim.solvers.active_set) against closed forms and cvxpy/Clarabel."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_kkt import random_qp, trap_qp

from resnet_sim.solvers.active_set import expander_like, jacobi_cg, solve_active_set
from resnet_sim.solvers.kkt import certificate, converged_mask, residual_scale
from resnet_sim.solvers.qp import QP

cvxpy_ref = pytest.importorskip("resnet_sim.solvers.reference")


def assert_certified(qp, sol, tol=1e-13):
    """The solution claims convergence and its own KKT residuals are at rounding level."""
    assert sol.info["converged"].all()
    _, res = certificate(qp, sol.x, sol.lam)
    current = np.abs(qp.b).max() + abs(qp.L).sum(axis=1).max() * max(1.0, np.abs(sol.x).max())
    assert res["feasibility"].max() < tol * max(1.0, np.abs(sol.x).max())
    assert res["stationarity"].max() < tol * current
    assert res["dual"].max() == 0.0
    assert res["complementarity"].max() < tol * current * max(1.0, np.abs(sol.x).max())


def test_coordinate_descent_trap_closed_form():
    qp = trap_qp()
    sol = solve_active_set(qp)
    np.testing.assert_allclose(sol.x[:, 0], [10 / 3, 10 / 3], rtol=1e-14)
    assert sol.lam[0, 0] == pytest.approx(10 / 3 * 1e-3, rel=1e-13)
    assert sol.method == "active-set" and sol.iterations == 2  # unconstrained, then with the diode on
    assert_certified(qp, sol)


def test_divider_with_clamp_and_reverse_diode():
    # x0: 1 mA into 1 kohm to ground (1 V alone), clamped x0 <= 0.4 V; x1: 2 mA into 1 kohm (2 V alone),
    # diode x1 -> x0 forward-biased, so x1 = x0 = 0.4 V. The diode carries 2 - 0.4 = 1.6 mA and the clamp
    # 1 + 1.6 - 0.4 = 2.2 mA.
    qp = QP(sp.diags([1e-3, 1e-3]), [1e-3, 2e-3], a=[0, 1], k=[-1, 0], c=[0.4, 0.0])
    sol = solve_active_set(qp)
    np.testing.assert_allclose(sol.x[:, 0], [0.4, 0.4], rtol=1e-14)
    np.testing.assert_allclose(sol.lam[:, 0], [2.2e-3, 1.6e-3], rtol=1e-12)


def test_unconstrained_problem_is_one_sparse_solve():
    rng = np.random.default_rng(1)
    qp = random_qp(rng, 50, 0, B=3)
    sol = solve_active_set(qp)
    np.testing.assert_allclose(sol.x, spla.spsolve(qp.L.tocsc(), qp.b), rtol=1e-12, atol=1e-15)
    assert sol.iterations == 1 and sol.lam.shape == (0, 3)


@pytest.mark.parametrize("seed", range(12))
def test_random_problems_match_cvxpy(seed):
    rng = np.random.default_rng(seed)
    qp = random_qp(rng, int(rng.integers(5, 60)), int(rng.integers(1, 60)), B=2)
    sol = solve_active_set(qp)
    ref = cvxpy_ref.solve_cvxpy(qp)
    np.testing.assert_allclose(sol.x, ref.x, atol=1e-8)
    assert_certified(qp, sol)
    assert np.all(qp.energy(sol.x) <= qp.energy(ref.x) + 1e-15)


def grid_qp(n, seed=0, B=1):
    """n x n grid of 1 kohm..10 kohm resistors, left column tied to 1 V and right to 0 V through 100 ohm; a
    tenth of the nodes clamped at <= 0.5 V and a tenth of the horizontal pairs joined by a diode."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n * n).reshape(n, n)
    edges = np.concatenate([np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1),
                            np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)])
    g = 1.0 / rng.uniform(1e3, 1e4, len(edges))
    L = sp.coo_matrix((np.r_[-g, -g], (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
                      shape=(n * n, n * n)).tocsr()
    edge_g = np.zeros(n * n)
    edge_g[ids[:, 0]] += 1e-2
    edge_g[ids[:, -1]] += 1e-2
    L = L - sp.diags(np.asarray(L.sum(axis=1)).ravel()) + sp.diags(edge_g)
    b = np.zeros((n * n, B))
    b[ids[:, 0]] = 1e-2 * rng.uniform(0.5, 1.0, (n, B))
    clamp = rng.choice(n * n, n * n // 10, replace=False)
    pairs = rng.choice(n * (n - 1), n * n // 10, replace=False)
    a = np.r_[clamp, ids[:, :-1].ravel()[pairs]]
    k = np.r_[np.full(len(clamp), -1), ids[:, 1:].ravel()[pairs]]
    c = np.r_[np.full(len(clamp), 0.5), np.zeros(len(pairs))]
    return QP(L, b, a, k, c)


def test_grid_matches_cvxpy_and_batch_equals_per_column():
    qp = grid_qp(15, B=3)
    sol = solve_active_set(qp)
    assert_certified(qp, sol)
    ref = cvxpy_ref.solve_cvxpy(qp)
    np.testing.assert_allclose(sol.x, ref.x, atol=1e-8)
    for j in range(3):
        one = solve_active_set(QP(qp.L, qp.b[:, j], qp.a, qp.k, qp.c[:, [j]]))
        np.testing.assert_allclose(one.x[:, 0], sol.x[:, j], rtol=0, atol=1e-14)
        np.testing.assert_allclose(one.lam[:, 0], sol.lam[:, j], rtol=0, atol=1e-16)


def test_admm_guess_for_cold_solves_needs_fewer_iterations_and_gives_the_same_answer(monkeypatch):
    import resnet_sim.solvers.active_set as active_set

    qp = grid_qp(25, seed=3, B=2)
    monkeypatch.setattr(active_set, "ADMM_MIN_N", 10**9)
    plain = solve_active_set(qp)
    monkeypatch.setattr(active_set, "ADMM_MIN_N", 0)
    guessed = solve_active_set(qp)
    assert plain.info["admm_iterations"] == 0 and guessed.info["admm_iterations"] > 0
    assert guessed.iterations < plain.iterations
    assert_certified(qp, guessed)
    ref = cvxpy_ref.solve_cvxpy(qp)  # Clarabel: about 1e-7 V on this grid
    np.testing.assert_allclose(guessed.x, ref.x, atol=1e-6)
    assert np.all(qp.energy(guessed.x) <= qp.energy(ref.x) + 1e-15)
    np.testing.assert_allclose(guessed.x, plain.x, rtol=0, atol=1e-13)  # one minimiser: L is SPD


def test_columns_sharing_a_working_set_share_a_factorisation():
    qp = grid_qp(12)
    qp = QP(qp.L, np.repeat(qp.b, 4, axis=1) * [1.0, 1.0 + 1e-9, 1.0 - 1e-9, 1.0], qp.a, qp.k, qp.c[:, [0] * 4])
    sol = solve_active_set(qp)
    assert_certified(qp, sol)
    assert sol.info["factorisations"] == sol.iterations  # one per iteration, not one per column


def test_warm_start_from_the_answer_or_its_currents_takes_one_iteration():
    qp = grid_qp(15, seed=2)
    exact = solve_active_set(qp)
    assert exact.iterations > 2
    from_x = solve_active_set(qp, x0=exact.x)
    from_lam = solve_active_set(qp, lam0=exact.lam)
    for sol in (from_x, from_lam):
        assert sol.iterations == 1
        np.testing.assert_allclose(sol.x, exact.x, rtol=0, atol=1e-14)
    # a coordinate-descent-like result, 1e-9 V off: polished in a couple of iterations
    rough = exact.x + 1e-9 * np.random.default_rng(0).standard_normal(exact.x.shape)
    polished = solve_active_set(qp, x0=rough)
    assert polished.iterations <= 3
    np.testing.assert_allclose(polished.x, exact.x, rtol=0, atol=1e-14)


def test_many_redundant_rows_still_converge_exactly():
    # more rows than variables: the primal-dual rule tends to cycle, the primal fallback must finish
    cycled = 0
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        qp = random_qp(rng, int(rng.integers(2, 6)), 40, B=1)
        sol = solve_active_set(qp)
        assert_certified(qp, sol)
        np.testing.assert_allclose(sol.x, cvxpy_ref.solve_cvxpy(qp).x, atol=1e-8)
        cycled += sol.info["cycled"][0]
    assert cycled  # the fallback was exercised


def test_never_claims_convergence_it_did_not_reach():
    qp = grid_qp(10)
    sol = solve_active_set(qp, max_iter=1)  # only the unconstrained solve
    assert not sol.info["converged"][0]
    infeasible = QP(sp.diags([1.0]), [0.0], a=[-1, 0], k=[0, -1], c=[-5.0, 0.0])  # x0 >= 5 and x0 <= 0
    assert not solve_active_set(infeasible).info["converged"][0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(seed=938099157, n=3, m=16, tie=0.5)  # degenerate vertex: the primal fallback once looped on it
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), m=st.integers(0, 16),
       tie=st.sampled_from([0.0, 0.5]))
def test_property_active_set_equals_cvxpy(seed, n, m, tie):
    rng = np.random.default_rng(seed)
    qp = random_qp(rng, n, m, tie_fraction=tie)
    sol = solve_active_set(qp)
    assert_certified(qp, sol)
    np.testing.assert_allclose(sol.x, cvxpy_ref.solve_cvxpy(qp).x, atol=1e-8)


def test_expander_like_graphs_switch_to_conjugate_gradients():
    rng = np.random.default_rng(5)
    n = 12_000
    qp = random_qp(rng, n, 400)
    assert expander_like(qp.L) and not expander_like(grid_qp(110).L)
    sol = solve_active_set(qp)
    assert sol.info["linear_solver"] == "cg" and sol.info["factorisations"] == 0
    assert_certified(qp, sol)  # KKT at rounding level: the unique minimiser (L is SPD)


def test_block_jacobi_cg_matches_a_direct_solve():
    rng = np.random.default_rng(6)
    K = random_qp(rng, 300, 0).L
    rhs = rng.normal(size=(300, 3))
    rhs[:, 1] = 0.0
    Y, ok = jacobi_cg(K, rhs, 1e-14, 5000)
    assert ok.all()
    np.testing.assert_allclose(Y, spla.spsolve(K.tocsc(), rhs), rtol=1e-10, atol=1e-12)


def test_certificate_accepts_a_nanovolt_accurate_point_and_rejects_it_at_rounding_level():
    qp = grid_qp(40, seed=4)
    exact = solve_active_set(qp)
    x = exact.x + 1e-10 * np.random.default_rng(1).standard_normal(exact.x.shape)
    _, res = certificate(qp, x)  # currents recovered from x alone
    scale = residual_scale(qp, x)
    assert converged_mask(res, 1e-9, scale)[0]
    assert not converged_mask(res, 1e-13, scale)[0]


@pytest.mark.parametrize("n, m, tie", [(170, 296, 0.3), (20, 113, 0.3), (40, 180, 0.8)])
def test_over_constrained_batches_with_ties_converge(n, m, tie):
    # several rows per variable and many exactly tight ones: where the primal-dual rule wanders or cycles,
    # the primal fallback must still finish every column
    qp = random_qp(np.random.default_rng(n + m), n, m, B=4, tie_fraction=tie)
    sol = solve_active_set(qp)
    assert_certified(qp, sol)
    np.testing.assert_allclose(sol.x, cvxpy_ref.solve_cvxpy(qp).x, atol=1e-8)
