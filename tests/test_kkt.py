"""KKT certificate, diode-current recovery and the negative-cycle infeasibility check (resnet_sim.solvers.kkt)."""

import time

import numpy as np
import pytest
import scipy.sparse as sp

from resnet_sim.solvers import kkt
from resnet_sim.solvers.kkt import certificate, converged_mask, infeasible_rows, residual_scale
from resnet_sim.solvers.qp import QP


def random_qp(rng, n, m, B=1, tie_fraction=0.2):
    """A grounded random resistor graph (siemens) with random bound and coupled diode rows.

    The rows are feasible by construction: c = A x_ref + margin with margin ≥ 0 (exactly 0 for a
    ``tie_fraction`` of them, so several rows can be tight at once).
    """
    e = rng.integers(0, n, (3 * n, 2))
    e = e[e[:, 0] != e[:, 1]]
    g = rng.uniform(0.1, 10.0, len(e)) * 1e-3
    L = sp.coo_matrix((np.r_[-g, -g], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)).tocsr()
    ground = rng.uniform(0.1, 1.0, n) * 1e-3 * (rng.random(n) < 0.3) + 1e-4
    L = L - sp.diags(np.asarray(L.sum(axis=1)).ravel()) + sp.diags(ground)
    b = rng.normal(size=(n, B)) * 1e-3
    a, k = rng.integers(-1, n, m), rng.integers(-1, n, m)
    k[(a < 0) & (k < 0)] = 0
    k[a == k] = -1
    x_ref = np.vstack([rng.normal(size=(n, B)), np.zeros((1, B))])
    margin = np.abs(rng.normal(size=(m, B))) * 0.3 * (rng.random((m, B)) > tie_fraction)
    return QP(L, b, a, k, x_ref[a] - x_ref[k] + margin)


def trap_qp():
    """The coordinate-descent trap: 10 V -1k- b -1k- ground, diode b->c, c -1k- ground (variables b, c).

    Exact answer: the diode conducts, b = c = 10/3 V and the diode current is 10/3 mA."""
    return QP(sp.diags([2e-3, 1e-3]), np.array([10e-3, 0.0]), a=[0], k=[1], c=[0.0])


def test_certificate_accepts_the_exact_trap_answer():
    qp = trap_qp()
    x = np.full((2, 1), 10 / 3)
    lam, res = certificate(qp, x)
    assert lam[0, 0] == pytest.approx(10 / 3 * 1e-3, rel=1e-12)
    assert all(v[0] < 1e-15 for v in res.values())
    assert converged_mask(res, 1e-12, residual_scale(qp, x))[0]


def test_certificate_flags_the_stalled_coordinate_descent_point():
    qp = trap_qp()
    x = np.array([[5.0], [0.0]])  # b alone at its divider value, c at 0: the diode is forward-biased by 5 V
    _, res = certificate(qp, x)
    assert res["feasibility"][0] == pytest.approx(5.0)
    assert not converged_mask(res, 1e-9, residual_scale(qp, x))[0]


def test_given_currents_give_the_residuals_by_hand():
    qp = trap_qp()
    x = np.full((2, 1), 10 / 3)
    _, res = certificate(qp, x, lam=np.array([[1e-3]]))  # too little current: 7/3 mA unbalanced at both ends
    assert res["stationarity"][0] == pytest.approx(7 / 3 * 1e-3, rel=1e-9)
    _, res = certificate(qp, x, lam=np.array([[-1e-3]]))
    assert res["dual"][0] == pytest.approx(1e-3)
    x = np.array([[3.0], [4.0]])  # diode off with 1 V reverse bias, but carrying 1 mA
    _, res = certificate(qp, x, lam=np.array([[1e-3]]))
    assert res["complementarity"][0] == pytest.approx(1e-3)
    assert res["feasibility"][0] == 0.0


def test_parallel_diodes_share_the_current_and_a_chain_carries_it_through():
    # two identical clamps x0 <= 1 V in parallel; 1 S to a 3 V node: 2 A must flow into the clamps
    qp = QP(sp.diags([1.0]), [3.0], a=[0, 0], k=[-1, -1], c=[1.0, 1.0])
    lam, res = certificate(qp, np.array([[1.0]]))
    assert lam.sum() == pytest.approx(2.0) and (lam >= 0).all()
    assert res["stationarity"][0] < 1e-15
    # chain: 1 A injected into x0, diode x0 -> x1, diode x1 -> fixed 0 V, x1 also 1 S to ground
    L = sp.diags([1.0, 1.0])
    qp = QP(L, [1.0, 0.0], a=[0, 1], k=[1, -1], c=[0.0, 0.0])
    x = np.zeros((2, 1))  # both clamped to 0 V: all of the 1 A goes x0 -> x1 -> fixed end
    lam, res = certificate(qp, x)
    np.testing.assert_allclose(lam[:, 0], [1.0, 1.0], rtol=1e-12)
    assert res["stationarity"][0] < 1e-15


def test_floating_block_leaves_its_mean_as_the_residual():
    # x0 - x1 <= 0 tight between two free nodes whose gradients do not balance: least squares splits it
    qp = QP(sp.diags([1.0, 1.0]), [1.0, 0.0], a=[0], k=[1], c=[0.0])
    lam, res = certificate(qp, np.array([[0.2], [0.2]]))  # g = L x - b = (-0.8, 0.2)
    assert lam[0, 0] == pytest.approx(0.5)  # best split: 0.5 A, residual 0.3 A at both ends
    assert res["stationarity"][0] == pytest.approx(0.3)


def test_negative_least_squares_current_falls_back_to_nnls():
    # a diode that would need a negative current (pushing the anode up) carries none
    qp = QP(sp.diags([1.0]), [-1.0], a=[0], k=[-1], c=[0.0])
    lam, res = certificate(qp, np.array([[0.0]]))  # slack 0 but g = +1: the diode should be off
    assert lam[0, 0] == 0.0
    assert res["stationarity"][0] == pytest.approx(1.0)


def test_certificate_batch_equals_per_column():
    rng = np.random.default_rng(3)
    qp = random_qp(rng, 30, 40, B=4)
    x = rng.normal(size=(30, 4))
    lam, res = certificate(qp, x)
    for j in range(4):
        one = QP(qp.L, qp.b[:, j], qp.a, qp.k, qp.c[:, [j]])
        lam_j, res_j = certificate(one, x[:, [j]])
        np.testing.assert_array_equal(lam[:, j], lam_j[:, 0])
        for key in res:
            assert res[key][j] == res_j[key][0]


def test_scaled_tolerance_rule():
    qp = QP(sp.diags([1e-3]), [1e-3], a=[0], k=[-1], c=[2.0])
    x = np.array([[1.0 + 1e-10]])  # 0.1 nV off the exact 1 V
    _, res = certificate(qp, x)
    scale = residual_scale(qp, x)
    assert scale["stationarity"][0] == pytest.approx(1e-3 * (1 + 1e-10))
    assert converged_mask(res, 1e-9, scale)[0]
    assert not converged_mask(res, 1e-11, scale)[0]


def test_bound_conflict_is_infeasible():
    qp = QP(sp.diags([1.0]), [0.0], a=[-1, 0], k=[0, -1], c=[-5.0, 0.0])  # x0 >= 5 and x0 <= 0
    rows = infeasible_rows(qp)
    assert sorted(rows) == [0, 1] and rows.column == 0


def cycle_weight(qp, rows, j):
    """Sum of c over rows listed in cycle order (row r is an edge k_r -> a_r; -1 the fixed end), after
    checking that each row's head is the next row's tail. A negative total proves infeasibility."""
    heads = [int(qp.a[r]) for r in rows]
    tails = [int(qp.k[r]) for r in rows]
    assert heads == tails[1:] + tails[:1]
    return qp.c[rows, j].sum()


def test_forward_biased_chain_between_fixed_potentials_is_infeasible():
    # x0 >= 5, diode x0 -> x1 (x0 <= x1), diode x1 -> fixed 0 V (x1 <= 0): 5 V forward across two diodes
    qp = QP(sp.diags([1.0, 1.0]), [0.0, 0.0], a=[-1, 0, 1], k=[0, 1, -1], c=[-5.0, 0.0, 0.0])
    rows = infeasible_rows(qp)
    assert sorted(rows) == [0, 1, 2]
    assert cycle_weight(qp, rows, 0) == pytest.approx(-5.0)


def test_ties_and_feasible_chains_are_feasible():
    tie = QP(sp.diags([1.0, 1.0]), [0.0, 0.0], a=[-1, 0, 1], k=[0, 1, -1], c=[-5.0, 0.0, 5.0])
    assert infeasible_rows(tie) is None
    loose = QP(sp.diags([1.0, 1.0]), [0.0, 0.0], a=[-1, 0, 1], k=[0, 1, -1], c=[-5.0, 0.0, 6.0])
    assert infeasible_rows(loose) is None
    # a loop 1e-14 V short of a tie (rounding-sized) is within the 1e-12 V tolerance: a tie
    ring = QP(sp.eye(3), np.zeros(3), a=[1, 2, 0], k=[0, 1, 2], c=[0.1, 0.2, -0.3 - 1e-14])
    assert infeasible_rows(ring) is None


def test_negative_cycle_of_coupled_rows_only_in_one_column():
    # x0 - x1 <= c0 and x1 - x0 <= c1: infeasible iff c0 + c1 < 0; column 1 only
    qp = QP(sp.eye(2), np.zeros((2, 3)), a=[0, 1], k=[1, 0], c=np.array([[1.0, 1.0, 1.0], [0.0, -2.0, -1.0]]))
    rows = infeasible_rows(qp)
    assert rows.column == 1 and sorted(rows) == [0, 1]


def test_infeasible_rows_agrees_with_the_reference_solver():
    pytest.importorskip("cvxpy")
    from resnet_sim.solvers.reference import solve_cvxpy

    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(30):
        n = int(rng.integers(2, 8))
        qp = random_qp(rng, n, int(rng.integers(1, 12)), tie_fraction=0.0)
        qp.c += rng.normal(size=qp.c.shape) * 1.5  # often breaks feasibility
        rows = infeasible_rows(qp)
        seen.add(rows is None)
        if rows is None:
            solve_cvxpy(qp)
        else:
            assert cycle_weight(qp, list(rows), 0) < 0
            with pytest.raises(ValueError, match="infeasible"):
                solve_cvxpy(qp)
    assert seen == {True, False}


def test_infeasible_rows_is_fast_on_a_large_problem():
    rng = np.random.default_rng(0)
    n, m = 100_000, 100_000
    a = rng.integers(-1, n, m)
    k = np.where(a >= 0, -1, rng.integers(0, n, m))  # mostly bounds ...
    pairs = rng.choice(m, m // 10, replace=False)
    a[pairs], k[pairs] = rng.integers(0, n, len(pairs)), rng.integers(0, n, len(pairs))  # ... some coupled
    k[a == k] = -1
    x_ref = np.append(rng.normal(size=n), 0.0)
    qp = QP(sp.eye(n, format="csr"), np.zeros(n), a, k, x_ref[a] - x_ref[k] + 0.01)
    infeasible_rows(qp)  # compile
    t = time.perf_counter()
    assert infeasible_rows(qp) is None
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("dense_rows", [2000, 0])  # dense NNLS, and the sparse bounded least-squares path
def test_a_loop_of_active_rows_gets_a_nonnegative_split(monkeypatch, dense_rows):
    # x0 pulled to 3 V, x1 to -0.5 V (1 S each); rows x0 <= 1, x0 - x1 <= 0, x1 <= 1. Exact answer:
    # x0 = x1 = 1 V with row currents (2 - t, t, t - 1.5) for any t in [1.5, 2]; a spanning forest through
    # the two bounds alone would give the x1 bound -1.5 A.
    monkeypatch.setattr(kkt, "NNLS_DENSE_ROWS", dense_rows)
    qp = QP(sp.eye(2), [3.0, -0.5], a=[0, 0, 1], k=[-1, 1, -1], c=[1.0, 0.0, 1.0])
    lam, res = certificate(qp, np.ones((2, 1)))
    assert (lam >= 0).all() and 1.5 - 1e-9 <= lam[1, 0] <= 2 + 1e-9
    assert res["stationarity"][0] < 1e-9


@pytest.mark.parametrize("seed", range(20))
def test_error_amplification_bound_holds_and_is_close(seed):
    # random reduced Laplacians: a connected graph with conductances over six decades, a few nodes tied
    # to fixed ones; the bound must cover the exact ‖L⁻¹ diag(L)‖∞ (dense inverse) and be within 2x of it
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    edges = [(i, int(rng.integers(0, i))) for i in range(1, n)]
    edges += [tuple(rng.choice(n, 2, replace=False)) for _ in range(int(rng.integers(0, 2 * n)))]
    g = 10.0 ** rng.uniform(-6, 0, len(edges))
    rows = [i for i, j in edges] + [j for i, j in edges]
    cols = [j for i, j in edges] + [i for i, j in edges]
    A = sp.csr_matrix((np.concatenate([g, g]), (rows, cols)), shape=(n, n))
    tie = np.zeros(n)
    tie[rng.choice(n, int(rng.integers(1, 3)), replace=False)] = 10.0 ** rng.uniform(-6, 0)
    L = (sp.diags(np.asarray(A.sum(axis=1)).ravel() + tie) - A).tocsr()
    exact = np.abs(np.linalg.inv(L.toarray()) * L.diagonal()).sum(axis=1).max()
    bound = kkt.error_amplification_bound(L)  # one connected block: one value
    assert np.ptp(bound) == 0 and exact * (1 - 1e-9) <= bound[0] <= 2 * exact


def test_error_amplification_bound_is_per_block():
    # a strong pair (1 mohm, 10 Mohm to ground) and an unrelated weak node: each block gets its own bound
    L = sp.csr_matrix(np.array([[1e3, -1e3, 0.0], [-1e3, 1e3 + 1e-7, 0.0], [0.0, 0.0, 2e-6]]))
    bound = kkt.error_amplification_bound(L)
    inverse = np.linalg.inv(L.toarray()) * L.diagonal()
    assert bound[2] == pytest.approx(1.0)
    assert np.abs(inverse[:2, :2]).sum(axis=1).max() <= bound[0] == bound[1] <= 2 * np.abs(inverse[:2]).sum(axis=1).max()


def test_error_amplification_bound_refuses_a_matrix_that_is_not_an_m_matrix():
    assert np.all(kkt.error_amplification_bound(sp.csr_matrix(np.array([[2.0, 1.0], [1.0, 2.0]]))) == np.inf)
    assert kkt.error_amplification_bound(sp.csr_matrix((0, 0))).shape == (0,)
