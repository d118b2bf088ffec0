"""compile(): the reduced problem's structure, its inverse data, and the CircuitErrors naming culprits."""

import numpy as np
import pytest
import scipy.sparse as sp

import resnet_sim as rs
from resnet_sim.circuit import Circuit
from resnet_sim.errors import CircuitError


def build(cards, inputs=(), outputs=()):
    c = Circuit("t")
    for card in cards:
        c.add(*card)
    c.inputs, c.outputs = list(inputs), list(outputs)
    return c


def raises_naming(circuit, *names, match=None, **kw):
    with pytest.raises(CircuitError, match=match) as err:
        rs.solve(circuit, **kw)
    for name in names:
        assert name in str(err.value), (name, str(err.value))
    return str(err.value)


# ------------------------------------------------------------------ structure
def test_floating_source_makes_one_super_node():
    c = build([("V", "v1", ["in", "0"], 10.0), ("R", "r1", ["in", "a"], 1e3), ("V", "vf", ["a", "b"], 2.0),
               ("R", "r2", ["b", "0"], 1e3)])
    p = rs.compile(c)
    assert p.n_free == 1
    a, b = c.node_id("a"), c.node_id("b")
    assert p.var[a] == p.var[b] >= 0 and p.var[c.node_id("in")] == -1
    # offsets: v_a - v_b = vf whichever end is the root
    s = p.source_values()
    v = p.node_voltages(np.array([[0.0]]), s)
    assert v[a, 0] - v[b, 0] == pytest.approx(2.0)
    assert v[c.node_id("in"), 0] == pytest.approx(10.0)


def test_laplacian_and_rhs_of_divider_with_current_source():
    # nodes a (var), fixed in = 10 V: L = [1/1k + 1/2k], b = 10/1k + 1 mA injected into a
    c = build([("V", "v1", ["in", "0"], 10.0), ("R", "r1", ["in", "a"], 1e3), ("R", "r2", ["a", "0"], 2e3),
               ("I", "i1", ["0", "a"], 1e-3)])
    p = rs.compile(c)
    qp = p.qp(0, p.source_values())
    assert qp.L.toarray() == pytest.approx(np.array([[1.5e-3]]))
    assert qp.b[:, 0] == pytest.approx([10e-3 + 1e-3])


def test_diode_rows_bounds_and_coupled():
    c = build([("V", "v1", ["in", "0"], 3.0), ("R", "r1", ["in", "a"], 1e3), ("R", "r2", ["b", "0"], 1e3),
               ("D", "dup", ["a", "in"]), ("D", "dlo", ["0", "a"]), ("D", "dab", ["a", "b"])])
    p = rs.compile(c)
    qp = p.qp(0, p.source_values())
    va, vb = p.var[c.node_id("a")], p.var[c.node_id("b")]
    rows = {name: r for r, name in enumerate(p.diode_names_of_rows(np.arange(qp.m)))}
    assert (qp.a[rows["dup"]], qp.k[rows["dup"]], qp.c[rows["dup"], 0]) == (va, -1, 3.0)  # x_a <= 3
    assert (qp.a[rows["dlo"]], qp.k[rows["dlo"]], qp.c[rows["dlo"], 0]) == (-1, va, 0.0)  # -x_a <= 0
    assert (qp.a[rows["dab"]], qp.k[rows["dab"]], qp.c[rows["dab"], 0]) == (va, vb, 0.0)


def test_inputs_replace_source_values():
    c = build([("V", "v1", ["a", "0"], 1.0), ("I", "i1", ["0", "a"], 0.0), ("R", "r", ["a", "b"], 1.0),
               ("R", "r2", ["b", "0"], 1.0)], inputs=["i1", "v1"])
    p = rs.compile(c)
    s = p.source_values(np.array([[1e-3, 5.0], [2e-3, 6.0]]))
    assert s.shape == (p.n_sources, 2)
    assert s[p.input_slots].T.tolist() == [[1e-3, 5.0], [2e-3, 6.0]]
    with pytest.raises(ValueError, match="v1"):
        p.source_values(np.zeros((2, 3)))


def test_vcvs_stages_in_dependency_order():
    c = build([("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "a"], 1e3), ("R", "r2", ["a", "0"], 1e3),
               ("E", "e1", ["o1", "0", "a", "0"], 2.0), ("R", "r3", ["o1", "b"], 1e3), ("R", "r4", ["b", "0"], 1e3),
               ("E", "e2", ["o2", "0", "b", "0"], 3.0), ("R", "r5", ["o2", "d"], 1e3), ("R", "r6", ["d", "0"], 1e3),
               ("R", "r7", ["in", "x"], 1e3), ("R", "r8", ["x", "0"], 1e3)])
    p = rs.compile(c)
    stage_of = {name: next(t for t, st in enumerate(p.stages) if p.var[c.node_id(name)] in st.variables)
                for name in ("a", "b", "d", "x")}
    assert stage_of == {"a": 0, "b": 1, "d": 2, "x": 0}
    op = rs.solve(p)
    # a = 0.5, o1 = 1, b = 0.5, o2 = 1.5, d = 0.75
    assert op.voltage("d") == pytest.approx(0.75)


def test_nothing_free():
    c = build([("V", "v1", ["a", "0"], 2.0), ("R", "r", ["a", "0"], 1e3), ("R", "self", ["a", "a"], 5.0),
               ("D", "d", ["0", "0"])])
    op = rs.solve(c)
    assert (op.method, op.converged, op.voltage("a")) == ("none", True, 2.0)
    assert op.current("v1") == pytest.approx(-2e-3) and op.current("self") == 0.0
    assert op.power == pytest.approx(4e-3)


def test_vcvs_chain_between_fixed_nodes():
    # no free variable is involved: e2 reads e1's output, both fixed
    c = build([("V", "v1", ["in", "0"], 1.5), ("E", "e1", ["o1", "0", "in", "0"], 2.0),
               ("E", "e2", ["o2", "0", "o1", "0"], -1.0), ("R", "r", ["o2", "0"], 1e3)])
    op = rs.solve(c)
    assert op.voltage("o2") == pytest.approx(-3.0)
    assert op.current("e2") == pytest.approx(3e-3)  # R draws -3 mA from o2: 3 mA flows into e2's + terminal


def test_with_conductances_is_fast_and_shares_structure():
    c = rs.models.DRN(32, (32,), 4, seed=1).circuit(np.linspace(0, 1, 32)[None, :])
    p = rs.compile(c)
    g = p.conductances * 1.5
    q = p.with_conductances(g)
    assert q.stages[0].cache is p.stages[0].cache
    c["R"].value = 1.0 / g
    fresh = rs.compile(c)
    assert abs(q.stages[0].L - fresh.stages[0].L).max() < 1e-15
    np.testing.assert_allclose(np.asarray(q.stages[0].K.todense() if sp.issparse(q.stages[0].K) else q.stages[0].K),
                               np.asarray(fresh.stages[0].K.todense() if sp.issparse(fresh.stages[0].K) else fresh.stages[0].K))


def test_nudged_qp():
    c = build([("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "o"], 1.0), ("R", "r2", ["o", "0"], 1.0)],
              outputs=["o"])
    p = rs.compile(c)
    qp = p.qp(0, p.source_values(), beta=0.5, targets=[[3.0]])
    assert qp.L.toarray() == pytest.approx(np.array([[2.5]]))
    assert qp.b[:, 0] == pytest.approx([1.0 + 0.5 * 3.0])


def test_gmin_grounds_floating_part():
    c = build([("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "0"], 1e3), ("R", "r2", ["x", "y"], 1e3),
               ("I", "i1", ["0", "x"], 0.0)])
    raises_naming(c, "x", "y", match="gmin")
    op = rs.solve(c, gmin=1e-12)
    assert op.voltage("x") == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ errors naming culprits
def test_inconsistent_source_loop():
    c = build([("V", "v1", ["a", "0"], 1.0), ("V", "v2", ["b", "a"], 1.0), ("V", "v3", ["b", "0"], 3.0),
               ("R", "r", ["a", "b"], 1e3)])
    raises_naming(c, "v1", "v2", "v3", match="inconsistent")


def test_consistent_source_loop_is_allowed():
    c = build([("V", "v1", ["a", "0"], 1.0), ("V", "v2", ["b", "a"], 1.0), ("V", "v3", ["b", "0"], 2.0),
               ("R", "r", ["b", "0"], 1e3)])
    op = rs.solve(c)
    assert op.voltage("b") == pytest.approx(2.0)
    total = op.current("v3") + op.current("v1")  # both paths to ground; the loop closer carries 0 A
    assert total == pytest.approx(-2e-3)


def test_loop_with_input_or_amplifier_is_an_error():
    cards = [("V", "v1", ["a", "0"], 1.0), ("V", "v2", ["a", "0"], 1.0), ("R", "r", ["a", "0"], 1e3)]
    raises_naming(build(cards, inputs=["v1"]), "v1", "v2", match="input")
    amp = build([("V", "v1", ["a", "0"], 1.0), ("E", "e1", ["a", "0", "a", "0"], 1.0), ("R", "r", ["a", "0"], 1e3)])
    raises_naming(amp, "v1", "e1")


def test_inductor_shorts_a_source():
    c = build([("V", "v1", ["a", "0"], 1.0), ("L", "l1", ["a", "0"], 1e-3), ("R", "r", ["a", "0"], 1e3)])
    raises_naming(c, "v1", "l1", match="inconsistent")


def test_floating_parts_are_named():
    c = build([("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "0"], 1e3), ("V", "vf", ["x", "y"], 1.0),
               ("R", "r2", ["x", "y"], 1e3)])
    raises_naming(c, "x", "y", match="no resistive path")
    only_c = build([("V", "v1", ["in", "0"], 1.0), ("R", "r1", ["in", "z"], 1e3), ("C", "c1", ["z", "w"], 1e-6)])
    raises_naming(only_c, "w")


def test_amplifier_cycles_are_named():
    one = build([("V", "v1", ["in", "0"], 1.0), ("R", "r0", ["in", "b"], 1e3), ("E", "e1", ["out", "0", "b", "0"], 2.0),
                 ("R", "r1", ["out", "b"], 1e3), ("R", "r2", ["b", "0"], 1e3)])
    raises_naming(one, "e1", match="feedback")
    two = build([("V", "v1", ["in", "0"], 1.0), ("E", "e1", ["o1", "0", "o2", "0"], 1.0),
                 ("E", "e2", ["o2", "0", "o1", "0"], 1.0), ("R", "r1", ["o1", "0"], 1e3), ("R", "r2", ["o2", "0"], 1e3)])
    raises_naming(two, "e1", "e2", match="feedback")


def test_diode_shorted_by_a_source():
    c = build([("V", "v1", ["a", "0"], 1.0), ("R", "r", ["a", "0"], 1e3), ("D", "d1", ["a", "0"])])
    raises_naming(c, "d1", match="infinite current")
    reverse = build([("V", "v1", ["a", "0"], 1.0), ("R", "r", ["a", "0"], 1e3), ("D", "d1", ["0", "a"])])
    assert rs.solve(reverse).current("d1") == 0.0


def test_diode_chain_between_sources():
    c = build([("V", "v1", ["a", "0"], 1.0), ("D", "d1", ["a", "m"]), ("D", "d2", ["m", "0"]), ("R", "r", ["m", "0"], 1e3)])
    raises_naming(c, "d1", "d2", match="infinite current")


def test_diode_cycle_across_floating_sources():
    # x1 - y1 = 1 and x2 - y2 = 1 (floating); diodes x1 -> y2 and x2 -> y1 would need 2 <= 0
    c = build([("V", "va", ["x1", "y1"], 1.0), ("V", "vb", ["x2", "y2"], 1.0), ("R", "r1", ["y1", "0"], 1e3),
               ("R", "r2", ["y2", "0"], 1e3), ("D", "d1", ["x1", "y2"]), ("D", "d2", ["x2", "y1"])])
    raises_naming(c, "d1", "d2", match="infinite current")


def test_per_sample_infeasibility():
    c = build([("V", "v1", ["a", "0"], -1.0), ("R", "r", ["a", "0"], 1e3), ("D", "d1", ["a", "0"])], inputs=["v1"])
    assert rs.solve(c).converged
    raises_naming(c, "d1", "(sample 1)", inputs=np.array([[-1.0], [0.5]]))
    chain = build([("V", "v1", ["a", "0"], -1.0), ("D", "d1", ["a", "m"]), ("D", "d2", ["m", "0"]),
                   ("R", "r", ["m", "0"], 1e3)], inputs=["v1"])
    raises_naming(chain, "d1", "d2", "(sample 2)", inputs=np.array([[-1.0], [-2.0], [0.5]]))


def test_bad_elements_and_annotations():
    raises_naming(build([("V", "v1", ["a", "0"], 1.0), ("R", "r9", ["a", "0"], -5.0)]), "r9")
    raises_naming(build([("V", "v1", ["a", "0"], 1.0), ("R", "r", ["a", "0"], 1.0)], inputs=["r"]), "r", match="inputs")
    raises_naming(build([("V", "v1", ["a", "0"], 1.0), ("R", "r", ["a", "0"], 1.0)], inputs=["nope"]), "nope")
    raises_naming(build([("V", "v1", ["a", "0"], 1.0), ("R", "r", ["a", "0"], 1.0)], outputs=["zz"]), "zz")
