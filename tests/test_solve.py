"""rs.solve on small circuits against closed-form answers (derived by hand in the comments), every method.

Also: KCL at every node, power balance, batches, warm starts, nudging, conductance changes, convergence
reporting.
"""

import warnings

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.circuit import Circuit, DiodeModel
from resnet_sim.solve import ConvergenceError, ConvergenceWarning

METHODS = ["auto", "cd", "active-set", "cvxpy"]
TOL = 1e-8  # volts / amperes compared to closed forms


def build(title, cards, models=None, inputs=(), outputs=()):
    """A Circuit from (kind, name, nodes, value[, model]) tuples."""
    c = Circuit(title)
    for card in cards:
        c.add(*card)
    c.models.update(models or {})
    c.inputs, c.outputs = list(inputs), list(outputs)
    return c


def divider():
    return build("divider", [("V", "v1", ["in", "0"], 10.0), ("R", "r1", ["in", "out"], 1e3),
                             ("R", "r2", ["out", "0"], 1e3)])


def bridge():
    # nodal: 5a - 2b = 20, 2a - 5b = -10  ->  a = 40/7, b = 30/7
    return build("bridge", [("V", "v1", ["top", "0"], 10.0), ("R", "r1", ["top", "a"], 1e3),
                            ("R", "r2", ["a", "0"], 2e3), ("R", "r3", ["top", "b"], 2e3),
                            ("R", "r4", ["b", "0"], 1e3), ("R", "r5", ["a", "b"], 1e3)])


def floating_source():
    # (10 - a)/1k = b/1k with a - b = 2  ->  a = 6, b = 4, 4 mA through everything
    return build("floating", [("V", "v1", ["in", "0"], 10.0), ("R", "r1", ["in", "a"], 1e3),
                              ("V", "vf", ["a", "b"], 2.0), ("R", "r2", ["b", "0"], 1e3)])


def current_sources():
    # I1 injects 1 mA into a; I2 moves 0.5 mA from a to b: a = 0.5 mA * 1k, b = 0.5 mA * 4k
    return build("isources", [("I", "i1", ["0", "a"], 1e-3), ("R", "r1", ["a", "0"], 1e3),
                              ("I", "i2", ["a", "b"], 0.5e-3), ("R", "r2", ["b", "0"], 4e3)])


def clamp(model=None):
    # out would sit at 2.5 V; the diode to the 2 V clamp caps it at 2 V + VF
    return build("clamp", [("V", "v1", ["in", "0"], 5.0), ("R", "r1", ["in", "out"], 1e3),
                           ("R", "r2", ["out", "0"], 1e3), ("D", "d1", ["out", "clamp"], 0.0, model or ""),
                           ("V", "vc", ["clamp", "0"], 2.0)], models={model: DiodeModel(**MODELS[model])} if model else None)


MODELS = {"dvf": dict(vf=0.3), "drs": dict(rs=1e3), "dbig": dict(vf=0.7)}


def trap():
    # 10 V -1k- b -1k- 0, diode b->c, c -1k- 0: on, b = c, (10 - b) = 2b  ->  b = c = 10/3
    return build("trap", [("V", "v1", ["top", "0"], 10.0), ("R", "r1", ["top", "b"], 1e3),
                          ("R", "r2", ["b", "0"], 1e3), ("D", "d1", ["b", "c"], 0.0), ("R", "r3", ["c", "0"], 1e3)])


def vcvs_stages():
    # a = 0.5; E1: out = 4a = 2; b = out * 3k/4k = 1.5; E2: o2 = -b = -1.5; E3 floating: f1 - f2 = 2a = 1,
    # f1 = -f2 (equal resistors to ground) -> f1 = 0.5, f2 = -0.5; diode o2 -> dn off (o2 < 0), dn = 0
    return build("vcvs", [("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "a"], 1e3), ("R", "r2", ["a", "0"], 1e3),
                          ("E", "e1", ["out", "0", "a", "0"], 4.0), ("R", "r3", ["out", "b"], 1e3),
                          ("R", "r4", ["b", "0"], 3e3), ("E", "e2", ["o2", "0", "b", "0"], -1.0),
                          ("R", "r5", ["o2", "0"], 1e3), ("D", "d1", ["o2", "dn"], 0.0),
                          ("R", "r8", ["dn", "0"], 1e3),
                          ("E", "e3", ["f1", "f2", "a", "0"], 2.0), ("R", "r6", ["f1", "0"], 1e3),
                          ("R", "r7", ["f2", "0"], 1e3)])


CASES = [
    (divider, {"in": 10, "out": 5}, {"r1": 5e-3, "r2": 5e-3, "v1": -5e-3}),
    (bridge, {"a": 40 / 7, "b": 30 / 7}, {"r5": (40 / 7 - 30 / 7) / 1e3, "v1": -((10 - 40 / 7) / 1e3 + (10 - 30 / 7) / 2e3)}),
    (floating_source, {"a": 6, "b": 4}, {"vf": 4e-3, "v1": -4e-3, "r2": 4e-3}),
    (current_sources, {"a": 0.5, "b": 2.0}, {"i1": 1e-3, "i2": 0.5e-3, "r1": 0.5e-3, "r2": 0.5e-3}),
    (clamp, {"out": 2.0}, {"d1": 1e-3, "r1": 3e-3, "r2": 2e-3, "vc": 1e-3, "v1": -3e-3}),
    (lambda: clamp("dvf"), {"out": 2.3}, {"d1": 0.4e-3, "r1": 2.7e-3}),
    (lambda: clamp("dbig"), {"out": 2.5}, {"d1": 0.0, "vc": 0.0}),
    # RS = 1k: on, (5 - out) = out + (out - 2)  ->  out = 7/3, diode current (out - 2)/1k
    (lambda: clamp("drs"), {"out": 7 / 3}, {"d1": 1 / 3 * 1e-3}),
    (trap, {"b": 10 / 3, "c": 10 / 3}, {"d1": 10 / 3 * 1e-3, "v1": -20 / 3 * 1e-3}),
    (vcvs_stages, {"a": 0.5, "out": 2.0, "b": 1.5, "o2": -1.5, "f1": 0.5, "f2": -0.5, "dn": 0.0},
     {"e1": -0.5e-3, "e2": 1.5e-3, "e3": -0.5e-3, "d1": 0.0}),
]


def kcl_residual(op):
    """Largest |sum of currents leaving a node| over user nodes, from element currents (SPICE signs)."""
    c = op.circuit
    leave = np.zeros((c.n_nodes, op.batch))
    for kind, cols in (("R", (0, 1)), ("V", (0, 1)), ("L", (0, 1)), ("E", (0, 1)), ("I", (0, 1)), ("D", (0, 1))):
        t = c[kind]
        for row, name in enumerate(t.names):
            i = np.atleast_1d(op.current(name))
            np.add.at(leave, t.nodes[row, cols[0]], i)
            np.add.at(leave, t.nodes[row, cols[1]], -i)
    return np.abs(leave[1:]).max(initial=0.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("make, volts, amps", CASES, ids=[c[0].__name__ if c[0].__name__ != "<lambda>" else f"case{i}"
                                                        for i, c in enumerate(CASES)])
def test_closed_form(make, volts, amps, method):
    op = rs.solve(make(), method=method, tol=1e-10)
    assert op.converged
    for node, v in volts.items():
        assert op.voltage(node) == pytest.approx(v, abs=TOL), node
    for name, i in amps.items():
        assert op.current(name) == pytest.approx(i, abs=1e-10), name
    assert kcl_residual(op) < 1e-9
    assert op.power == pytest.approx(op.source_power, rel=1e-9, abs=1e-12)


def test_divider_power_and_states():
    op = rs.solve(divider())
    assert op.power == pytest.approx(10 * 5e-3)
    assert isinstance(op.voltage("out"), float)
    op = rs.solve(clamp())
    assert op.diode_on("d1") is True
    assert rs.solve(clamp("dbig")).diode_on("d1") is False


def test_auto_reports_method():
    op = rs.solve(trap())
    assert op.method in ("cd", "cd+active-set", "active-set")
    assert rs.solve(divider(), method="cvxpy").method == "cvxpy"


def test_batch_matches_single_solves():
    c = clamp()
    c.inputs = ["v1", "vc"]
    X = np.array([[5.0, 2.0], [1.0, 2.0], [4.0, 0.5], [-3.0, -1.0]])
    op = rs.solve(c, inputs=X)
    assert op.voltage("out").shape == (4,)
    # closed form: out = min(v1 / 2, vc)
    np.testing.assert_allclose(op.voltage("out"), np.minimum(X[:, 0] / 2, X[:, 1]), atol=TOL)
    np.testing.assert_allclose(op.current("d1"), np.maximum(X[:, 0] / 2 - X[:, 1], 0) * 2e-3, atol=1e-10)
    for j, x in enumerate(X):
        single = rs.solve(c, inputs=x)
        assert single.voltage("out") == pytest.approx(op.voltage("out")[j], abs=TOL)
    assert op.diode_on("d1").tolist() == [True, False, True, False]


@pytest.mark.parametrize("batch", [3, 12])  # both ways of summing resistor currents (bincount, full L)
def test_bridge_source_current_and_power_over_a_batch(batch):
    c = bridge()
    c.inputs = ["v1"]
    v = np.linspace(-5.0, 20.0, batch)
    op = rs.solve(c, inputs=v[:, None])
    # scaled closed form: a = 4/7 v, b = 3/7 v; the source delivers (v - a)/1k + (v - b)/2k
    delivered = (v - 4 * v / 7) / 1e3 + (v - 3 * v / 7) / 2e3
    np.testing.assert_allclose(op.current("v1"), -delivered, rtol=1e-9, atol=1e-15)  # SPICE: into +
    np.testing.assert_allclose(op.power, v * delivered, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(op.source_power, v * delivered, rtol=1e-9, atol=1e-15)


def test_warm_start_and_problem_reuse():
    p = rs.compile(trap())
    cold = rs.solve(p, method="cd")
    warm = rs.solve(p, method="cd", warm_start=cold)
    assert warm.voltage("b") == pytest.approx(10 / 3, abs=TOL)
    assert warm.sweeps <= cold.sweeps
    with pytest.raises(ValueError):
        rs.solve(p, warm_start=np.zeros(p.n_free + 1))
    with pytest.raises(ValueError, match="finite"):
        rs.solve(p, warm_start=np.full(p.n_free, np.inf))


def test_with_conductances_matches_recompile():
    c = bridge()
    p = rs.compile(c)
    g = p.conductances * np.array([1, 2, 3, 4, 5])
    c2 = bridge()
    c2["R"].value = 1.0 / g
    a = rs.solve(p.with_conductances(g))
    b = rs.solve(c2)
    np.testing.assert_allclose(a.voltages, b.voltages, atol=1e-12)
    names, currents = a.currents()
    assert names == b.currents()[0]
    np.testing.assert_allclose(currents, b.currents()[1], rtol=1e-12, atol=1e-15)  # resistors at their new g
    assert rs.solve(p).voltage("a") == pytest.approx(40 / 7)  # the original is unchanged


def test_nudging_pulls_output_toward_target():
    # divider, output nudged by beta toward y: out = (10 g1 + beta y) / (g1 + g2 + beta)
    c = divider()
    c.outputs = ["out"]
    g1 = g2 = 1e-3
    for beta in (1e-4, 1e-3):
        op = rs.solve(c, beta=beta, targets=np.array([[8.0]]))
        assert op.voltage("out") == pytest.approx((10 * g1 + beta * 8.0) / (g1 + g2 + beta), abs=TOL)
        assert op.outputs.shape == (1, 1)
        assert kcl_residual(op) > 1e-6  # the nudge current is not a circuit element
    # the EP pattern: free phase, then a nudged phase warm-started from it, on one compiled Problem
    p = rs.compile(c)
    free = rs.solve(p, inputs=None)
    nudged = rs.solve(p, beta=1e-3, targets=[[8.0]], warm_start=free)
    r1 = c["R"].nodes[0]
    drop = nudged.potentials[r1[0]] - nudged.potentials[r1[1]]
    assert drop[0] == pytest.approx(10 - (10 * g1 + 1e-3 * 8.0) / (g1 + g2 + 1e-3))


def test_unconverged_warns_and_strict_raises():
    c = bridge()
    with pytest.warns(ConvergenceWarning):
        op = rs.solve(c, method="cd", max_sweeps=1, tol=1e-14)
    assert not op.converged
    with pytest.raises(ConvergenceError):
        rs.solve(c, method="cd", max_sweeps=1, tol=1e-14, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rs.solve(c).converged


def test_json_schema():
    import json

    c = clamp()
    d = json.loads(rs.solve(c).to_json())
    assert set(d) == {"nodes", "currents", "diodes", "converged", "sweeps", "residuals", "method"}
    assert d["nodes"]["out"] == pytest.approx(2.0)
    assert d["diodes"] == {"d1": "on"}
    assert set(d["residuals"]) == {"stationarity", "feasibility", "dual", "complementarity"}
    c.inputs, c.outputs = ["v1"], ["out"]
    d = json.loads(rs.solve(c, inputs=[[5.0], [2.0]]).to_json())
    assert d["nodes"]["out"] == pytest.approx([2.0, 1.0])
    np.testing.assert_allclose(d["outputs"], [[2.0], [1.0]], atol=TOL)


def test_hdf5_roundtrip(tmp_path):
    h5py = pytest.importorskip("h5py")
    op = rs.solve(floating_source())
    path = tmp_path / "op.h5"
    op.to_hdf5(path)
    with h5py.File(path) as f:
        names = [n.decode() for n in f["node_names"][()]]
        v = dict(zip(names, f["voltages"][:, 0]))
        assert v["a"] == pytest.approx(6) and v["b"] == pytest.approx(4)
        assert f.attrs["converged"] and f.attrs["method"] == op.method
        assert f["currents"].shape == (4, 1)
    assert list(tmp_path.iterdir()) == [path]


# a 1-ohm pair (n1, n2) tied to the rest by tens of kilohms and megohms: coordinate descent's steps fall below
# 1e-10 V within 20 sweeps while n1 is still 1.2e-6 V (40 %) off, and the currents of that error are within
# the ampere tolerance (1e-9 * ||L|| * 1 V); only the error estimate ||L^-1|| * residual sees it
WEAK_CLUSTER = [("R", "r1", ["n1", "0"], 35e6), ("R", "r2", ["n2", "n1"], 1.0), ("R", "r3", ["n3", "n1"], 47e3),
                ("R", "r4", ["n4", "n1"], 33e3), ("R", "r5", ["n5", "n3"], 36e6), ("R", "r6", ["n6", "n4"], 55.0),
                ("R", "r7", ["n7", "0"], 28.0), ("R", "r8", ["n6", "n3"], 64.0), ("R", "r9", ["n7", "n3"], 73.0),
                ("R", "r10", ["n2", "n6"], 78e6), ("V", "v1", ["n5", "0"], 1.0)]


def nodal_voltages(cards, source_node, source_volts):
    """Node voltages by dense nodal analysis (resistors only, one grounded source), written out here."""
    nodes = sorted({n for _, _, pair, _ in cards for n in pair} - {"0", source_node})
    index = {n: i for i, n in enumerate(nodes)}
    G, rhs = np.zeros((len(nodes), len(nodes))), np.zeros(len(nodes))
    for kind, _, (a, b), value in cards:
        if kind != "R":
            continue
        for p, q in ((a, b), (b, a)):
            if p in index:
                G[index[p], index[p]] += 1 / value
                if q in index:
                    G[index[p], index[q]] -= 1 / value
                elif q == source_node:
                    rhs[index[p]] += source_volts / value
    return dict(zip(nodes, np.linalg.solve(G, rhs)))


def test_weakly_tied_cluster_is_not_reported_converged_early():
    c = build("weak cluster", WEAK_CLUSTER)
    exact = nodal_voltages(WEAK_CLUSTER, "n5", 1.0)
    assert exact["n1"] == pytest.approx(2.80398e-6, rel=1e-5)
    for method in ("auto", "cd"):
        op = rs.solve(c, method=method, tol=1e-10)
        assert op.converged
        for node, v in exact.items():
            assert op.voltage(node) == pytest.approx(v, abs=1e-10)
    with pytest.warns(ConvergenceWarning, match="error estimate"):
        op = rs.solve(c, method="cd", tol=1e-10, max_sweeps=100)
    assert not op.converged
    assert abs(op.voltage("n1") - exact["n1"]) > 1e-10  # the answer it would have called converged


def test_auto_with_only_rounding_level_ties_to_ground():
    # a 0.1-ohm pair held by gmin alone: no variable counts as grounded (the depth is infinite; "auto"
    # crashed converting it). The 1 mA source drops 0.1 mV across the pair, split evenly by symmetry. With
    # gmin = 1e-12 S the symmetric mode has eigenvalue 2e-12 S against 20 S: double precision cannot hold
    # it to 1e-9 V (the active set's answer is 1.1e-8 V off with residual 0.0), which must be reported
    c = build("gmin pair", [("I", "i1", ["x", "y"], 1e-3), ("R", "r1", ["x", "y"], 0.1)])
    with pytest.warns(ConvergenceWarning, match="error estimate"):
        op = rs.solve(c, gmin=1e-12)
    assert not op.converged and op.voltage("y") == pytest.approx(5e-5, abs=1e-7)
    op = rs.solve(c, gmin=1e-6)  # antisymmetric: (2 / 0.1 + gmin) v_y = 1 mA
    assert op.converged
    # a direct solve (auto: the active-set solver on this small circuit) answers for L as stored, whose
    # entries 10.000001 S are rounded: condition 2e7 times eps times 5e-5 V allows 1.1e-13 V (9.1e-15 V off)
    assert op.voltage("y") == pytest.approx(1e-3 / (20 + 1e-6), abs=1.1e-13) == -op.voltage("x")


@pytest.mark.parametrize("method", ["auto", "cd", "active-set"])
def test_a_diode_window_closed_by_rounding_is_a_tie(method):
    # 0.1 + 0.2 <= v_x <= 0.3 in floating point: the window is empty by 5.6e-17 V, a tie (infeasible_rows
    # accepts it); cd used to refuse it with a ValueError. v_x = 0.3 V (pulled to ground, held by d2)
    c = build("tie", [("V", "vh", ["h", "0"], 0.3), ("V", "va", ["m", "0"], 0.1), ("V", "vb", ["l", "m"], 0.2),
                      ("R", "r", ["x", "0"], 1e3), ("D", "d1", ["x", "h"], 0.0), ("D", "d2", ["l", "x"], 0.0)])
    op = rs.solve(c, method=method)
    assert op.converged and op.voltage("x") == pytest.approx(0.3, abs=1e-15)


@pytest.mark.parametrize("beta", [np.inf, np.nan, -np.inf])
def test_beta_must_be_a_finite_conductance(beta):
    c = divider()
    c.outputs = ["out"]
    with pytest.raises(ValueError, match="beta must be a finite conductance"):
        rs.solve(c, beta=beta, targets=[[0.0]])


@pytest.mark.parametrize("method", ["auto", "cd", "active-set", "cvxpy"])
def test_a_negative_nudge_is_a_negative_conductance_to_the_target(method):
    # out is held by 2 mS (two 1 kohm) and fed 10 mA; a nudge adds beta (v - y): v = (10 mA + beta y) / (2 mS + beta)
    c = divider()
    c.outputs = ["out"]
    for beta in (-1.5e-3, -1e-4, 1e-3):
        op = rs.solve(c, beta=beta, targets=[[1.0]], method=method)
        assert op.converged
        assert op.voltage("out") == pytest.approx((10e-3 + beta * 1.0) / (2e-3 + beta), rel=1e-7)


def test_a_negative_nudge_beyond_convexity_names_beta_and_the_output():
    # two outputs: a held by 2 mS alone, b by 1 kohm to a and 1 Mohm to ground (driving point ~0.67 mS)
    c = build("two outputs", [("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "a"], 1e3),
                              ("R", "r2", ["a", "0"], 1e3), ("R", "r3", ["a", "b"], 1e3), ("R", "r4", ["b", "0"], 1e6)])
    c.outputs = ["a", "b"]
    p = rs.compile(c)
    limit, weakest = p.max_negative_beta(0)
    L = np.array([[3e-3, -1e-3], [-1e-3, 1e-3 + 1e-6]])
    assert limit == pytest.approx(np.linalg.eigvalsh(L)[0], rel=1e-9) and c.outputs[weakest] == "b"
    rs.solve(p, beta=-0.99 * limit, targets=[[0.0, 0.0]], strict=True)
    with pytest.raises(rs.CircuitError, match=r"beta = -0\.001 S makes the nudged energy non-convex.*output b"):
        rs.solve(p, beta=-1e-3, targets=[[0.0, 0.0]])


def test_warm_start_from_a_circuit_with_other_diode_rows():
    def clamp(n_diodes):
        cards = [("V", "v1", ["in", "0"], 5.0), ("R", "r1", ["in", "out"], 1e3), ("R", "r2", ["out", "0"], 1e3),
                 ("V", "vc", ["c", "0"], 1.0)]
        return build("clamp", cards + [("D", f"d{i}", ["out", "c"], 0.0) for i in range(n_diodes)])
    first = rs.solve(clamp(1))
    with pytest.raises(ValueError, match="1 diode rows, this one has 3"):
        rs.solve(clamp(3), warm_start=first)
    assert rs.solve(clamp(3), warm_start=first.x).voltage("out") == pytest.approx(1.0)


def test_add_many_lower_cases_names_like_add():
    c = Circuit("case")
    ids = c.nodes_of(["in", "out"])
    c.add_many("V", ["V1"], [[ids[0], 0]], [10.0])
    c.add_many("R", ["R1", "R2"], [[ids[0], ids[1]], [ids[1], 0]], [1e3, 1e3])
    c.inputs = ["V1"]
    op = rs.solve(c, inputs=[4.0])
    assert op.current("R1") == pytest.approx(2e-3) and op.current("r2") == pytest.approx(2e-3)


@pytest.mark.parametrize("method", ["auto", "cd", "active-set"])
def test_conductances_beyond_double_precision_are_not_reported_converged(method):
    # 1 V -1G- a -1u- b -1G- ground: v_a = v_b = 0.5 V by symmetry, but the a-b link is 1e15 times the
    # others, so no double-precision solve gets 1e-9 V (the active set returned 0.452 V as converged)
    c = build("stiff", [("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "a"], 1e9), ("R", "r2", ["a", "b"], 1e-6),
                        ("R", "r3", ["b", "0"], 1e9)])
    with pytest.warns(ConvergenceWarning):
        op = rs.solve(c, method=method)
    assert not op.converged
    # the same chain at ratio 1e3 is within reach
    c["R"].value = np.array([1e3, 1.0, 1e3])
    op = rs.solve(c, method=method)
    assert op.converged and op.voltage("a") == pytest.approx((1e3 + 1) / (2e3 + 1), abs=1e-12)  # v_a = V (r2 + r3) / sum


@pytest.mark.parametrize("bad", [-1e-3, np.nan, np.inf])
def test_with_conductances_refuses_conductances_that_are_negative_or_not_finite(bad):
    p = rs.compile(bridge())
    g = p.conductances
    g[2] = bad
    with pytest.raises(ValueError, match=r"g\[2\]"):
        p.with_conductances(g)


def test_a_zero_conductance_is_an_open_resistor():
    # bridge with r5 (a-b) open: a = 10 * 2/3, b = 10 * 1/3 (two independent dividers)
    p = rs.compile(bridge())
    g = p.conductances
    names = p.circuit["R"].names.tolist()
    g[names.index("r5")] = 0.0
    op = rs.solve(p.with_conductances(g), strict=True)
    assert op.voltage("a") == pytest.approx(20 / 3, rel=1e-12) and op.voltage("b") == pytest.approx(10 / 3, rel=1e-12)
    assert op.current("r5") == 0.0
    c = bridge()
    c["R"].value = np.where(np.array(names) == "r5", np.inf, c["R"].value)  # the same, as an infinite resistance
    assert rs.solve(c).voltage("a") == pytest.approx(20 / 3, rel=1e-12)
    g[names.index("r2")] = 0.0
    g[names.index("r1")] = 0.0  # a is left with no conductance at all
    with pytest.raises(rs.CircuitError, match="node a has no resistive path"):
        p.with_conductances(g)


@pytest.mark.parametrize("rm_first", [True, False])
def test_nudged_output_on_an_amplifier_waits_for_the_amplifier(rm_first):
    # out = m + 2 v_a, v_a = 0.5 V (divider; the control draws nothing). Nudged by beta = 1 mS to 0 V, the
    # super-node {m, out} balances (m - 0)/1k + beta (m + 1 - 0) = 0: m = -0.5 V, out = 0.5 V. With rm before
    # the E card the super-node was scheduled in the amplifier's own stage and nudged with its slot at 0 V
    cards = [("V", "v1", ["s", "0"], 1.0), ("R", "r1", ["s", "a"], 1e3), ("R", "r2", ["a", "0"], 1e3)]
    e, rm = ("E", "e1", ["out", "m", "a", "0"], 2.0), ("R", "rm", ["m", "0"], 1e3)
    c = build("nudged amplifier", cards + ([rm, e] if rm_first else [e, rm]), outputs=["out"])
    for method in ("cd", "active-set"):
        op = rs.solve(c, method=method, beta=1e-3, targets=[[0.0]])
        assert op.converged and op.voltage("out") == pytest.approx(0.5, abs=1e-9)


def test_nudging_an_output_inside_its_amplifiers_loop_is_refused():
    # the amplifier's control a shares a component with m, its output's reference: a nudge at out would move
    # a, hence the amplifier, within one stage (a feedback loop the staged energy cannot hold)
    c = build("loop", [("V", "v1", ["s", "0"], 1.0), ("R", "r1", ["s", "a"], 1e3), ("R", "r2", ["a", "m"], 1e3),
                       ("R", "rm", ["m", "0"], 1e3), ("E", "e1", ["out", "m", "a", "0"], 2.0)], outputs=["out"])
    assert rs.solve(c).voltage("out") == pytest.approx(1 / 3 + 2 * 2 / 3)  # a = 2/3 V, m = 1/3 V unnudged
    with pytest.raises(rs.CircuitError, match="output out cannot be nudged"):
        rs.solve(c, beta=1e-3, targets=[[0.0]])


def test_a_name_shared_by_two_elements_is_ambiguous_not_the_last_one():
    c = build("dup", [("V", "v1", ["a", "0"], 1.0), ("R", "r1", ["a", "b"], 1e3), ("R", "r1", ["b", "0"], 3e3)])
    op = rs.solve(c)
    with pytest.raises(ValueError, match="'r1' is used by several elements"):
        op.current("r1")
    assert op.current("v1") == pytest.approx(-1 / 4e3)  # SPICE sign: 0.25 mA flows out of the + terminal
