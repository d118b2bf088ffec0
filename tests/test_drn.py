"""The DRN fast path against the general path on the same circuit (DRN.circuit()): free and nudged
equilibria, EP updates, the convexity limit of negative nudges, the parameter layout; and the fast path's
equilibrium against the KKT certificate."""

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.models import dense
from resnet_sim.solvers.kkt import certificate, converged_mask, residual_scale

SHAPES = [((6,), 5, 3), ((8, 6), 5, 3), ((4, 6, 4), 4, 2)]


def case(hidden, n_pixels, n_out, seed=1, B=5):
    m = rs.models.drn(hidden, n_pixels=n_pixels, n_outputs=n_out, input_gain=3.0, seed=seed)
    rng = np.random.default_rng(seed)
    for l in range(1, m.n_layers + 1):  # a node with every resistor open has no unique potential: keep one
        W = m.weight(l)
        for j in np.flatnonzero(W.sum(axis=0) == 0):
            W[rng.integers(W.shape[0]), j] = 0.1
    m.set_theta(m.theta)
    m.bias(1)[:] = rng.normal(0, 0.05, m.sizes[1])  # some bias currents, so they are tested too
    m.bias(m.n_layers)[:] = rng.normal(0, 0.05, n_out)
    X = rng.uniform(0, 1, (B, n_pixels))
    Y = np.eye(n_out)[rng.integers(0, n_out, B)]
    return m, X, Y


def general_potentials(p, m, op):
    """(B, n_l) per layer 1..L of an OperatingPoint of m.circuit(), by node name."""
    c = p.circuit
    names = [[f"h{l}_{j}" for j in range(m.sizes[l])] for l in range(1, m.n_layers)] + \
        [[f"out{j}" for j in range(m.n_outputs)]]
    return [op.potentials[[c.node_id(n) for n in layer]].T for layer in names]


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("hidden, n_pixels, n_out", SHAPES)
def test_fast_path_equals_the_general_path(hidden, n_pixels, n_out, parallel, monkeypatch):
    if parallel:  # every product split over the cores (by default only from dense.PARALLEL_MIN_WORK up)
        monkeypatch.setattr(dense, "PARALLEL_MIN_WORK", 0)
    m, X, Y = case(hidden, n_pixels, n_out)
    p = rs.compile(m.circuit())
    assert rs.train.parameters(p) == pytest.approx(m.theta, rel=1e-15)  # 1 / (1 / g)
    assert rs.train.layout(p).group.tolist() == m.layout.group.tolist()
    assert np.count_nonzero(m.theta[: m.layout.n_conductances] == 0) > 0  # open resistors in both
    sources = m.source_values(X)
    free = m.free(X)
    ref = rs.solve(p, inputs=sources, method="active-set", tol=1e-13)
    limit = m.max_negative_beta()
    assert limit == pytest.approx(min(p.max_negative_beta(t)[0] for t in range(len(p.stages))), rel=1e-9)
    beta = 0.3 * limit
    states = {0.0: (free, ref)}
    for b in (-beta, beta):
        states[b] = (m.nudged(X, Y, b, free),
                     rs.solve(p, inputs=sources, beta=b, targets=Y, warm_start=ref, method="active-set", tol=1e-13))
    for b, (fast, op) in states.items():
        assert fast.converged and op.converged
        for got, want in zip(fast.layers, general_potentials(p, m, op)):
            assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max(), b
    fast_update = m.energy_gradient_difference(states[beta][0], states[-beta][0], scale=1 / (2 * beta * len(X)))
    general = rs.train.ep_gradient(p, sources, Y, beta=beta, method="active-set", tol=1e-13)
    assert np.abs(fast_update - general).max() <= 1e-6 * np.abs(general).max()


@pytest.mark.parametrize("hidden, n_pixels, n_out", SHAPES)
def test_fast_equilibrium_meets_the_kkt_certificate(hidden, n_pixels, n_out):
    m, X, Y = case(hidden, n_pixels, n_out, seed=2)
    p = rs.compile(m.circuit())
    fast = m.free(X)
    x = np.zeros((p.n_free, len(X)))
    c = p.circuit
    names = [f"h{l}_{j}" for l in range(1, m.n_layers) for j in range(m.sizes[l])] + \
        [f"out{j}" for j in range(m.n_outputs)]
    x[p.var[[c.node_id(n) for n in names]]] = np.concatenate(fast.layers, axis=1).T
    qp = p.qp(0, p.source_values(m.source_values(X)))
    lam, residuals = certificate(qp, x)
    assert converged_mask(residuals, 1e-8, residual_scale(qp, x)).all(), residuals
    assert (lam > 0).any()  # some diodes conduct: the clipping was exercised


def test_a_negative_nudge_beyond_convexity_is_refused_by_name():
    m, X, Y = case((6,), 5, 3)
    free = m.free(X)
    limit = m.max_negative_beta()
    m.nudged(X, Y, -0.99 * limit, free)
    with pytest.raises(ValueError, match=r"beta = -.* makes the nudged energy non-convex .*need \|beta\| < "):
        m.nudged(X, Y, -1.01 * limit, free)


def test_float32_fast_path_follows_float64():
    m64, X, Y = case((8, 6), 5, 3)
    m32 = rs.models.drn((8, 6), n_pixels=5, n_outputs=3, input_gain=3.0, seed=1, dtype=np.float32)
    m32.set_theta(m64.theta.astype(np.float32))
    a, b = m64.free(X), m32.free(X)
    assert b.layers[-1].dtype == np.float32
    # float32 stops when a sweep moves no potential by more than 1e-5 of the largest one
    assert np.abs(a.layers[-1] - b.layers[-1]).max() <= 1e-3 * np.abs(a.layers[-1]).max()


def test_presets_and_the_circuit_of_a_preset():
    m = rs.models.drn("xs")
    assert m.sizes == (1568, 100, 10) and m.input_gain == 100.0
    assert rs.models.preset("drn", "1h", "fashion-mnist").batch_size == 32
    with pytest.raises(ValueError, match="unknown drn architecture 'xxl'"):
        rs.models.drn("xxl")
    zero = np.mean(m.theta[: m.layout.n_conductances] == 0)
    assert 0.45 < zero < 0.55  # half the initial conductances are exactly 0 S
    c = m.circuit()
    assert len(c["R"]) == 1568 * 100 + 100 * 10 and len(c["D"]) == 100 and len(c["I"]) == 110
    assert rs.read_netlist(rs.write_netlist(c)) == c
