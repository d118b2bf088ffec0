"""Coordinate descent (resnet_sim.solvers.cd) and the variable colouring, against closed forms,
scipy's sparse direct solve and cvxpy/Clarabel."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from resnet_sim.solvers.cd import solve_cd
from resnet_sim.solvers.colouring import colour_variables, conflict_graph
from resnet_sim.solvers.qp import QP


def laplacian(n, edges, g, to_ground):
    """(n, n) reduced Laplacian (siemens) of conductances g on edges (E, 2) plus to_ground (n,) to 0 V."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    W = sp.coo_matrix((g, (edges[:, 0], edges[:, 1])), shape=(n, n))
    W = (W + W.T).tocsr()
    return (sp.diags(np.asarray(W.sum(axis=1)).ravel() + to_ground) - W).tocsr()


def random_qp(rng, n, m_bound, m_coupled, B=1):
    """A feasible random diode QP: random graph, bounds and coupled rows that a random y satisfies."""
    i, j = rng.integers(0, n, (2, 3 * n))
    keep = i != j
    L = laplacian(n, np.stack([i[keep], j[keep]], 1), rng.uniform(0.1, 1.0, keep.sum()), rng.uniform(0.01, 0.5, n))
    ends = [(v, -1) if rng.random() < 0.5 else (-1, v) for v in rng.integers(0, n, m_bound)]
    ends += [tuple(rng.choice(n, 2, replace=False)) for _ in range(m_coupled)]
    a, k = (np.array(e, dtype=np.int64).reshape(-1) for e in zip(*ends)) if ends else (np.zeros(0, np.int64),) * 2
    y = np.vstack([rng.normal(size=(n, B)), np.zeros((1, B))])  # row n: the fixed end at 0 V
    c = y[a] - y[k] + rng.uniform(0, 0.5, (len(a), B)) * (rng.random((len(a), 1)) < 0.7)
    return QP(L, rng.normal(size=(n, B)), a, k, c)


def cvxpy_solution(qp):
    """x (n, B) of the reference solver (cvxpy + Clarabel at tight tolerances)."""
    pytest.importorskip("cvxpy")
    from resnet_sim.solvers.reference import solve_cvxpy

    return solve_cvxpy(qp).x


# ---- closed forms ---------------------------------------------------------------------------------
def test_divider():
    # 10 V -1k- x -3k- ground: x = 10 * 3k / 4k = 7.5 V
    qp = QP(sp.csr_matrix([[1 / 1e3 + 1 / 3e3]]), [10 / 1e3], [], [], np.zeros((0, 1)))
    sol = solve_cd(qp)
    assert sol.x[0, 0] == pytest.approx(7.5, abs=1e-12)
    assert sol.method == "cd" and sol.info["converged"] and sol.lam.shape == (0, 1)


def test_trap_coupled_diode_does_not_stall():
    # 10 V -1k- b -1k- ground, ideal diode b->c, c -1k- ground, from 0 V: node steps alone stay at 0 V
    qp = QP(sp.csr_matrix(np.diag([2e-3, 1e-3])), [10e-3, 0.0], [0], [1], [0.0])
    sol = solve_cd(qp)
    np.testing.assert_allclose(sol.x[:, 0], [10 / 3, 10 / 3], atol=1e-9)
    assert sol.info["converged"]
    assert sol.lam[0, 0] == pytest.approx(10 / 3 / 1e3, abs=1e-12)  # current into c through its 1k


def test_chain_of_two_active_diodes():
    # 10 V -1k- x0 -1k- ground, x1 -1k- ground, x2 -1k- ground, diodes x0->x1->x2: all at 10 V / 4 = 2.5 V
    qp = QP(sp.csr_matrix(np.diag([2e-3, 1e-3, 1e-3])), [10e-3, 0, 0], [0, 1], [1, 2], [0.0, 0.0])
    np.testing.assert_allclose(solve_cd(qp).x[:, 0], [2.5, 2.5, 2.5], atol=1e-9)


def test_chain_that_must_split():
    # diodes x0->x1->x2->x3 (x0 <= x1 <= x2 <= x3), unit conductances to sources b = (1, -3, 3, -1) V, started
    # all equal: every diode is on and no single node can move; only the middle diode opens.
    # Exact: x0 = x1 = (1 - 3) / 2 = -1 V and x2 = x3 = (3 - 1) / 2 = 1 V.
    qp = QP(sp.csr_matrix(np.eye(4)), [1.0, -3.0, 3.0, -1.0], [0, 1, 2], [1, 2, 3], [0.0, 0.0, 0.0])
    sol = solve_cd(qp, x0=np.zeros(4))
    np.testing.assert_allclose(sol.x[:, 0], [-1.0, -1.0, 1.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(sol.lam[:, 0], [2.0, 0.0, 2.0], atol=1e-9)


def test_batched_traps_bind_and_shift():
    """The two traps above with several right-hand sides at once (the batched kernel, where a variable
    with one coupled row and one with two take different code paths): closed forms per column."""
    # the trap (V -1k- b -1k- ground, diode b->c, c -1k- ground): on at 10 V and 6 V (b = c = V / 3), off at
    # -4 V (b = -2 V, c = 0 V); plus d: 10 V -1k- d -1k- ground, diode d -> 1 V source, so d sits at its
    # bound (1 V) and the global shift cannot lift b and c out of the trap: only the cluster shift can
    V = np.array([10.0, 6.0, -4.0])
    rhs = np.vstack([1e-3 * V, np.zeros(3), np.full(3, 10e-3)])
    for cols in (slice(None), slice(0, 1)):  # batched kernel, and the scalar one
        trap = solve_cd(QP(sp.csr_matrix(np.diag([2e-3, 1e-3, 2e-3])), rhs[:, cols], [0, 2], [1, -1],
                           np.array([[0.0] * 3, [1.0] * 3])[:, cols]))
        np.testing.assert_allclose(trap.x, np.array([[10 / 3, 2.0, -2.0], [10 / 3, 2.0, 0.0], [1.0] * 3])[:, cols],
                                   atol=1e-9)
        np.testing.assert_allclose(trap.lam, np.array([[10 / 3 / 1e3, 2 / 1e3, 0.0], [8e-3] * 3])[:, cols],
                                   atol=1e-12)
    # the chain x0 <= x1 <= x2 <= x3 with b scaled by 1, 2, -1: the monotone fit of b (pool the violators)
    scale = np.array([1.0, 2.0, -1.0])
    chain = solve_cd(QP(sp.csr_matrix(np.eye(4)), np.outer([1.0, -3.0, 3.0, -1.0], scale), [0, 1, 2], [1, 2, 3],
                        np.zeros((3, 3))), x0=np.zeros(4))
    np.testing.assert_allclose(chain.x, [[-1, -2, -1], [-1, -2, 0], [1, 2, 0], [1, 2, 1]], atol=1e-9)
    assert chain.info["converged"] and np.all(chain.lam >= -1e-12)


def test_clamps_to_fixed_sources():
    # 10 V -1k- x -1k- ground, diode x -> 1 V source: x = 1 V, diode current 9 mA - 1 mA = 8 mA;
    # the same node with a diode from a 6 V source instead (x >= 6 V) and pulled to 0 V through 2k.
    L = sp.csr_matrix([[2e-3]])
    up = solve_cd(QP(L, [10e-3], [0], [-1], [1.0]))
    assert up.x[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert up.lam[0, 0] == pytest.approx(8e-3, abs=1e-12)
    low = solve_cd(QP(sp.csr_matrix([[0.5e-3]]), [0.0], [-1], [0], [-6.0]))
    assert low.x[0, 0] == pytest.approx(6.0, abs=1e-12)
    assert low.lam[0, 0] == pytest.approx(3e-3, abs=1e-12)


# ---- against scipy and cvxpy ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_matches_sparse_direct_solve_without_diodes(seed):
    rng = np.random.default_rng(seed)
    qp = random_qp(rng, int(rng.integers(5, 200)), 0, 0, B=3)
    sol = solve_cd(qp, tol=1e-12)
    assert sol.info["converged"]
    np.testing.assert_allclose(sol.x, spla.spsolve(qp.L.tocsc(), qp.b), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_matches_cvxpy_with_diodes(seed):
    rng = np.random.default_rng(100 + seed)
    qp = random_qp(rng, int(rng.integers(3, 60)), int(rng.integers(0, 20)), int(rng.integers(1, 25)), B=2)
    sol = solve_cd(qp, tol=1e-12)
    assert sol.info["converged"]
    np.testing.assert_allclose(sol.x, cvxpy_solution(qp), rtol=0, atol=1e-8)
    assert np.all(sol.lam >= 0)


def test_batch_equals_column_by_column():
    qp = random_qp(np.random.default_rng(7), 40, 10, 12, B=4)
    batch = solve_cd(qp, tol=1e-12).x
    for col in range(qp.batch):
        one = QP(qp.L, qp.b[:, col], qp.a, qp.k, qp.c[:, col])
        np.testing.assert_allclose(batch[:, col], solve_cd(one, tol=1e-12).x[:, 0], rtol=0, atol=1e-10)


def test_block_width_rule():
    from resnet_sim.solvers import cd

    assert cd.block_width(100, 256) == 256  # 16 n B = 0.4 MB fits
    assert cd.block_width(1034, 256) == 256  # 4.2 MB fits
    assert cd.block_width(10_000, 256) == 64  # 41 MB does not; 64 columns take 10 MB, 128 would take 20
    assert cd.block_width(30_000, 256) == 32  # 32 columns take 15 MB
    assert cd.block_width(90_000, 88) == cd.OUT_OF_CACHE_BLOCK  # not even 32 columns fit
    assert cd.block_width(90_000, 40) == 40
    assert cd.block_width(90_000, 5) == 5


def test_aligned_storage():
    from resnet_sim.solvers import cd

    for rows, cols in ((1000, 32), (7, 3), (0, 5), (5, 0)):
        a = cd.aligned_empty(rows, cols)
        assert a.shape == (rows, cols) and a.dtype == np.float64 and a.flags.c_contiguous
        assert a.size == 0 or a.ctypes.data % 64 == 0
    src = np.arange(12.0).reshape(3, 4)[:, 1:]  # not contiguous
    np.testing.assert_array_equal(cd.aligned_copy(src), src)


def test_column_blocks_give_the_unblocked_answer(monkeypatch):
    """A batch wider than the cache budget is solved in column blocks (8, 8, 4 here): same x, and with a
    warm start at the answer the blocks stop after one sweep."""
    from resnet_sim.solvers import cd

    qp = random_qp(np.random.default_rng(11), 40, 10, 12, B=20)
    whole = solve_cd(qp, tol=1e-12)
    monkeypatch.setattr(cd, "BLOCK_BYTES", 16 * qp.n * 8)
    monkeypatch.setattr(cd, "MIN_BLOCK", 8)
    assert cd.block_width(qp.n, qp.batch) == 8
    blocked = solve_cd(qp, tol=1e-12)
    np.testing.assert_allclose(blocked.x, whole.x, rtol=0, atol=1e-10)
    np.testing.assert_allclose(blocked.x, cvxpy_solution(qp), rtol=0, atol=1e-7)
    assert blocked.info["converged"] and blocked.iterations <= whole.iterations
    again = solve_cd(qp, x0=blocked.x, tol=1e-11)
    assert again.iterations == 1


def test_prefetching_sweeps_give_the_same_answer(monkeypatch):
    """Sweeps over PREFETCH_BYTES prefetch (batched: neighbour and own rows; B = 1: the streams); the hints
    change timing only: the same iterates (bit for bit, same sweeps) as without them, and the cvxpy answer."""
    from resnet_sim.solvers import cd

    assert cd.prefetch_ahead(300_000, 26, 1_200_000) == cd.PREFETCH_AHEAD  # 62 MB of potentials
    assert cd.prefetch_ahead(1034, 64, 20_480) == 0  # 0.5 MB: in cache
    assert cd.prefetch_ahead(300_000, 1, 1_200_000) == cd.SCALAR_PREFETCH_AHEAD  # scalar sweep, 24 MB of arrays
    assert cd.prefetch_ahead(30_000, 1, 120_000) == 0  # 2.4 MB
    for B in (9, 1):  # the batched kernel and the scalar one
        qp = random_qp(np.random.default_rng(12), 60, 12, 15, B=B)
        plain = solve_cd(qp, tol=1e-12)
        with monkeypatch.context() as patch:
            patch.setattr(cd, "PREFETCH_BYTES", 0)
            assert cd.prefetch_ahead(qp.n, qp.batch, 1) == (cd.PREFETCH_AHEAD if B > 1 else cd.SCALAR_PREFETCH_AHEAD)
            hinted = solve_cd(qp, tol=1e-12)
        np.testing.assert_array_equal(hinted.x, plain.x)
        assert hinted.iterations == plain.iterations
        np.testing.assert_allclose(hinted.x, cvxpy_solution(qp), rtol=0, atol=1e-7)


def test_row_groups_give_the_ungrouped_answer(monkeypatch):
    """Rows with one neighbour list (a dense 20 x 40 bipartite layer, as in a DRN) are stepped in runs of
    up to GROUP_MAX when a block's potentials exceed GROUP_BYTES (forced here): the same x as row by row,
    with bounds and coupled rows on grouped rows, and the cvxpy answer."""
    from resnet_sim.solvers import cd

    rng = np.random.default_rng(21)
    n_a, n_b, B = 20, 40, 5
    n = n_a + n_b
    edges = [(i, n_a + j) for i in range(n_a) for j in range(n_b)]
    L = laplacian(n, edges, rng.uniform(0.1, 1.0, len(edges)), rng.uniform(0.01, 0.5, n))
    # bounds x_3 <= c and x_25 >= -c (one fixed end, index -1); coupled rows 7 -> 30 and 41 -> 12
    a, k = np.array([3, -1, 7, 41]), np.array([-1, 25, 30, 12])
    y = np.vstack([rng.normal(size=(n, B)), np.zeros((1, B))])  # row n: the fixed end at 0 V
    c = y[a] - y[k] + rng.uniform(0, 0.3, (len(a), B))
    qp = QP(L, rng.normal(size=(n, B)), a, k, c)
    group = cd.kernel_arrays(qp, colour_variables(qp)).group
    assert sorted(group[group > 1]) == [4, 8, 16, 16, 16]  # 20 rows: 16 + 4; 40 rows: 16 + 16 + 8
    plain = solve_cd(qp, tol=1e-12)
    monkeypatch.setattr(cd, "GROUP_BYTES", 0)
    grouped = solve_cd(qp, tol=1e-12)
    assert grouped.info["converged"]
    np.testing.assert_allclose(grouped.x, plain.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(grouped.x, cvxpy_solution(qp), rtol=0, atol=1e-7)


def test_warm_start_from_solution_takes_one_sweep():
    qp = random_qp(np.random.default_rng(3), 50, 10, 10, B=2)
    sol = solve_cd(qp, tol=1e-11)
    again = solve_cd(qp, x0=sol.x, tol=1e-11)
    assert again.iterations == 1 and again.info["max_step"] < 1e-11
    np.testing.assert_allclose(again.x, sol.x, rtol=0, atol=1e-11)


def test_over_relaxation_keeps_the_solution_and_cuts_sweeps_on_a_mesh():
    # 30x30 unit mesh grounded along one edge, a few diodes: Young's omega for a 2-colour ordering
    n = 30
    ids = np.arange(n * n).reshape(n, n)
    edges = np.concatenate([np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1),
                            np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)])
    to_ground = np.zeros(n * n)
    to_ground[ids[:, 0]] = 1.0
    L = laplacian(n * n, edges, np.ones(len(edges)), to_ground)
    qp = QP(L, np.full(n * n, 1e-3), [ids[5, 5], ids[9, 9], -1], [-1, ids[9, 10], ids[20, 20]], [0.2, 0.0, -0.3])
    rho = 1 - spla.eigsh(sp.diags(1 / np.sqrt(L.diagonal())) @ L @ sp.diags(1 / np.sqrt(L.diagonal())),
                         k=1, sigma=0, which="LM")[0][0]
    plain = solve_cd(qp, tol=1e-12)
    sor = solve_cd(qp, tol=1e-12, omega=2 / (1 + np.sqrt(1 - rho ** 2)))
    np.testing.assert_allclose(sor.x, plain.x, rtol=0, atol=1e-9)
    assert sor.iterations < plain.iterations / 4
    with pytest.raises(ValueError, match="omega"):
        solve_cd(qp, omega=2.0)


def test_weakly_grounded_network_converges_in_few_sweeps():
    # 300 nodes, a ring plus random chords of 1 S, tied to a 1 V source and to ground through 1 mS each:
    # the slow mode is the common potential, which the global shift settles at once (node steps alone
    # are still 0.26 V off after 200000 sweeps)
    rng = np.random.default_rng(0)
    n = 300
    edges = np.concatenate([np.stack([np.arange(n), np.roll(np.arange(n), -1)], 1), rng.integers(0, n, (n, 2))])
    edges = edges[edges[:, 0] != edges[:, 1]]
    to_fixed = np.zeros(n)
    to_fixed[[0, n // 2]] = 1e-3
    b = np.zeros(n)
    b[0] = 1e-3  # 1 mS to the 1 V source
    qp = QP(laplacian(n, edges, np.ones(len(edges)), to_fixed), b, [], [], np.zeros((0, 1)))
    sol = solve_cd(qp, tol=1e-12)
    np.testing.assert_allclose(sol.x[:, 0], spla.spsolve(qp.L.tocsc(), b), rtol=0, atol=1e-9)
    assert sol.iterations < 200


def test_unconverged_is_reported():
    qp = random_qp(np.random.default_rng(4), 100, 0, 0)
    sol = solve_cd(qp, tol=1e-14, max_sweeps=2)
    assert sol.iterations == 2 and not sol.info["converged"] and sol.info["max_step"] > 1e-14


def test_infeasible_rows_raise():
    # x0 <= -1 (diode to a -1 V source) and x0 >= 1 (diode from a +1 V source)
    qp = QP(sp.csr_matrix([[1.0]]), [0.0], [0, -1], [-1, 0], [-1.0, -1.0])
    with pytest.raises(ValueError, match="admit no x"):
        solve_cd(qp)


# ---- colouring ------------------------------------------------------------------------------------
def layered_qp(sizes, rng):
    """Free layers fully connected to the next (a DRN without its fixed input layer), diodes to fixed ends."""
    offsets = np.cumsum([0, *sizes])
    edges = [(offsets[l] + i, offsets[l + 1] + j) for l in range(len(sizes) - 1)
             for i in range(sizes[l]) for j in range(sizes[l + 1])]
    n = offsets[-1]
    L = laplacian(n, edges, rng.uniform(1e-5, 1e-3, len(edges)), rng.uniform(1e-3, 1e-2, n))
    a = np.concatenate([np.arange(n), -np.ones(n, np.int64)])
    k = np.concatenate([-np.ones(n, np.int64), np.arange(n)])
    return QP(L, rng.normal(size=(n, 1)) * 1e-3, a, k, np.r_[np.ones(n), np.zeros(n)])


def test_layered_network_is_two_coloured():
    rng = np.random.default_rng(0)
    qp = layered_qp([30, 20, 7, 10], rng)
    colours = colour_variables(qp)
    assert colours.max() + 1 == 2
    sol = solve_cd(qp, colours=colours, tol=1e-12)
    assert sol.info["n_colours"] == 2
    np.testing.assert_allclose(sol.x, cvxpy_solution(qp), rtol=0, atol=1e-8)


def test_greedy_colouring_is_valid_on_odd_cycles():
    rng = np.random.default_rng(1)
    qp = random_qp(rng, 500, 0, 30)
    colours = colour_variables(qp)
    g = conflict_graph(qp).tocoo()
    assert colours.max() + 1 > 2  # random graphs with triangles are not bipartite
    assert np.all(colours[g.row] != colours[g.col])


def test_grid_is_two_coloured_and_any_order_solves():
    n = 12
    ids = np.arange(n * n).reshape(n, n)
    edges = np.concatenate([np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1),
                            np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)])
    L = laplacian(n * n, edges, np.ones(len(edges)), np.full(n * n, 0.1))
    qp = QP(L, np.ones(n * n), [0], [1], [0.0])
    assert colour_variables(qp).max() + 1 == 2
    exact = solve_cd(qp, tol=1e-13).x
    # colours only fix the serial update order: one colour for all (plain Gauss-Seidel) agrees
    np.testing.assert_allclose(solve_cd(qp, colours=np.zeros(n * n, np.int64), tol=1e-13).x, exact, atol=1e-10)
    with pytest.raises(ValueError, match="colours must have shape"):
        solve_cd(qp, colours=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="x0 must be finite"):
        solve_cd(qp, x0=np.full(n * n, np.nan))
