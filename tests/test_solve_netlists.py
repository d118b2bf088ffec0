"""Every example netlist in netlists/ solved by every method, against answers derived by hand here
(nodal analysis in mA, kohm, V; the derivation is in each comment)."""

from pathlib import Path

import numpy as np
import pytest

import resnet_sim as rs

NETLISTS = Path(__file__).resolve().parent.parent / "netlists"

# trainable.cir: h1 clamped at 0 by DLO1 (its pull at 0 V is 0.5/4 - 0.3 + out/3 < 0), then
# out: (h0 - out)/3 - out/3 = out/10  ->  out = 10 h0 / 23
# h0: (0.5 - h0)/2 + (-0.3 - h0)/5 + (out - h0)/3 = 0  ->  h0 (31 - 100/23) = 5.7
_H0 = 5.7 / (31 - 100 / 23)
_OUT = 10 * _H0 / 23

EXPECTED = {
    # a = 1/2; E1: b = 4a = 2; c = b/2 = 1; E2: out = -2.5 c. R3+R4 draw 1 mA out of b (i(E1) = -1 mA);
    # RL pushes 0.25 mA into out's source (i(E2) = +0.25 mA)
    "amplifier.cir": ({"a": 0.5, "b": 2.0, "c": 1.0, "out": -2.5},
                      {"e1": -1e-3, "e2": 0.25e-3, "v1": -0.05e-3}),
    # a: 12 - a = a + (a - b)/2 ; b: 12 - b + (a - b)/2 = b/3  ->  a = 84/13, b = 108/13
    "bridge.cir": ({"a": 84 / 13, "b": 108 / 13}, {"rl": (84 - 108) / 13 / 2 * 1e-3}),
    # D1 on: b = c, (10 - b) = 2b
    "cd_trap.cir": ({"b": 10 / 3, "c": 10 / 3}, {"d1": 10 / 3 * 1e-3}),
    # a: 2 = a + (a - b)/2 ; b: (a - b)/2 - 1 = b/3  ->  b = -1/2, a = 7/6
    "current_sources.cir": ({"a": 7 / 6, "b": -0.5}, {"i1": 2e-3, "i2": 1e-3, "r3": -0.5 / 3 * 1e-3}),
    # out = 2; D1 = (10 - 2)/1 - 2/1 = 6 mA, flowing into the clamp source's + terminal
    "diode_clamp.cir": ({"out": 2.0}, {"d1": 6e-3, "vclamp": 6e-3, "v1": -8e-3}),
    # D1 on: a = k, 10 - a = 2a; D2 off: k2 = -5/2 < k
    "diode_free.cir": ({"a": 10 / 3, "k": 10 / 3, "k2": -2.5}, {"d1": 10 / 3 * 1e-3, "d2": 0.0}),
    # (10 - 0.7) over 1k + 100
    "diode_model.cir": ({"out": 9.3 / 1.1}, {"d1": 9.3 / 1.1 * 1e-3}),
    "divider.cir": ({"out": 5.0}, {"v1": -5e-3}),
    # p - n = 3: (10 - p) = p/4 + (p - 3)/2  ->  p = 46/7; V2 carries R2's current n/2
    "floating_source.cir": ({"p": 46 / 7, "n": 25 / 7}, {"v2": 25 / 14 * 1e-3}),
    # R-2R: every tap halves 16 V
    "ladder.cir": ({"n1": 8.0, "n2": 4.0, "n3": 2.0, "n4": 1.0}, {}),
    # L1 shorts a-b, C open: b = 5/2; c sits at clk = 0
    "spice_compat.cir": ({"a": 2.5, "b": 2.5, "c": 0.0}, {"l1": 2.5e-3, "c1": 0.0}),
    # X1: 9 * 1/3; X2: mid: (9 - m)/2 = m + m/2, b = m/2
    "subckt_params.cir": ({"a": 3.0, "x2.mid": 2.25, "b": 1.125}, {}),
    "trainable.cir": ({"h0": _H0, "h1": 0.0, "out": _OUT}, {"dlo1": (0.175 - _OUT / 3) * 1e-3, "dhi0": 0.0}),
}


# training examples: a random start of 8 hidden diode nodes has no answer by hand; at zero inputs the
# amplifiers' outputs are 0 V by hand, and every method must agree with cvxpy (Clarabel) on the rest
TRAINING = {"xor.cir": {"px1": 0.0, "px2": 0.0, "nx1": 0.0, "nx2": 0.0, "p": 1.0, "n": -1.0},
            "abs.cir": {"px": 0.0, "nx": 0.0, "p": 1.0, "n": -1.0}}


def test_every_netlist_has_an_expected_answer():
    assert sorted(p.name for p in NETLISTS.glob("*.cir")) == sorted([*EXPECTED, *TRAINING])


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_training_netlists_agree_with_the_reference_by_every_method(name):
    c = rs.read_netlist(NETLISTS / name)
    reference = rs.solve(c, method="cvxpy", tol=1e-10)
    for node, v in TRAINING[name].items():
        assert reference.voltage(node) == pytest.approx(v, abs=1e-12)
    for method in ("auto", "cd", "active-set"):
        op = rs.solve(c, method=method, tol=1e-10)
        assert op.converged
        assert np.abs(op.voltages - reference.voltages).max() < 1e-7, method
        assert op.power == pytest.approx(op.source_power, rel=1e-9)
    assert (op.diode_states().any(), (~op.diode_states()).any()) == (True, True)  # both states present


@pytest.mark.parametrize("method", ["auto", "cd", "active-set", "cvxpy"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_netlist(name, method):
    volts, amps = EXPECTED[name]
    op = rs.solve(rs.read_netlist(NETLISTS / name), method=method, tol=1e-10)
    assert op.converged
    tol = 1e-7 if method == "cvxpy" else 1e-9
    for node, v in volts.items():
        assert op.voltage(node) == pytest.approx(v, abs=tol), node
    for element, i in amps.items():
        assert op.current(element) == pytest.approx(i, abs=tol * 1e-3), element
    assert op.power == pytest.approx(op.source_power, rel=1e-9, abs=1e-15)


def test_trainable_outputs_over_a_batch():
    c = rs.read_netlist(NETLISTS / "trainable.cir")
    X = np.array([[0.5, -0.3], [0.0, 0.0], [-1.0, -1.0]])
    op = rs.solve(c, inputs=X)
    assert op.outputs.shape == (3, 1)
    # sample 0 is the netlist's own values; zero inputs give zero everywhere; all-negative inputs
    # clamp both hidden nodes at 0
    np.testing.assert_allclose(op.outputs[:, 0], [_OUT, 0.0, 0.0], atol=1e-9)
    assert op.diode_on("dlo0").tolist() == [False, True, True]
