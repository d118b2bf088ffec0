"""Gradients on the general path: the exact gradient against central finite differences of the loss, EP
against the exact gradient (cosine, and the O(beta^2) / O(beta) slopes of its variants), EP's refusal where
an amplifier keeps the nudge from a parameter, and what each gradient returns where a diode switches.

Random circuits: tests/test_solve_random.py's generator (resistor tree plus chords, grounded and floating
voltage sources, current sources, diodes to fixed nodes and between free nodes, with forward drops and
series resistances; optionally a second stage driven by amplifiers reading the first). Here every resistor
and current source is trainable, two grounded sources are inputs and two free nodes of the last stage are
outputs.
"""

import warnings

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.errors import CircuitError
from test_solve_random import random_circuit

SOLVE = dict(method="active-set", tol=1e-12)


def trainable(seed, two_stages=False):
    """(Problem, X, Y) of a random trainable circuit, or None when it has no finite operating point or
    fewer than two inputs / outputs to choose from."""
    c, blocks = random_circuit(seed, two_stages)
    last = blocks[-1]
    grounded = [card[1] for card in blocks[0] if card[0] == "V" and card[2][1] == "0"]
    rng = np.random.default_rng(seed + 1000)
    try:
        p = rs.compile(c)
    except CircuitError:
        return None
    free = [n for n in sorted({n for card in last for n in card[2][:2]} - {"0"}) if p.var[c.node_id(n)] >= 0]
    if len(free) < 2 or not grounded:
        return None
    c.inputs = grounded[:2]
    c.outputs = list(rng.choice(free, 2, replace=False))
    c.trainable = [rs.TrainableSpec(("r*",)), rs.TrainableSpec(("i*",))]
    p = rs.compile(c)
    X = rng.uniform(-2, 2, (3, len(c.inputs)))
    try:
        op = rs.solve(p, inputs=X, **SOLVE)
    except CircuitError:
        return None
    Y = op.outputs + rng.normal(0, 0.3, op.outputs.shape)
    return p, X, Y


def active_set(p, X):
    op = rs.solve(p, inputs=X, **SOLVE)
    return op.diode_states()


def central_differences(p, X, Y, rel=1e-6):
    """d loss/dtheta by central differences, and whether every diode kept its state at every step."""
    theta = rs.train.parameters(p)
    base = active_set(p, X)
    grad, same = np.zeros_like(theta), True
    for i in range(len(theta)):
        h = rel * max(abs(theta[i]), 1e-6)
        value = []
        for sign in (1, -1):
            t = theta.copy()
            t[i] += sign * h
            q = rs.train.with_parameters(p, t)
            value.append(rs.train.loss(q, X, Y, **SOLVE))
            same &= bool(np.array_equal(active_set(q, X), base))
        grad[i] = (value[0] - value[1]) / (2 * h)
    return grad, same


def cases(two_stages, want):
    found = []
    for seed in range(200):
        case = trainable(seed, two_stages)
        if case is not None:
            found.append((seed, case))
        if len(found) == want:
            return found
    raise AssertionError("the generator gave too few trainable circuits")


@pytest.mark.parametrize("two_stages", [False, True])
def test_exact_gradient_matches_central_differences(two_stages):
    checked = 0
    diodes_on = 0
    for seed, (p, X, Y) in cases(two_stages, 12):
        with warnings.catch_warnings():
            warnings.simplefilter("error", rs.solve.__globals__["ConvergenceWarning"])
            exact = rs.train.exact_gradient(p, X, Y, **SOLVE)
            fd, same = central_differences(p, X, Y)
        if not same:  # a diode switches within the step: the loss has a kink there
            continue
        scale = np.abs(fd).max()
        assert np.abs(exact - fd).max() <= 1e-5 * scale, (seed, exact, fd)
        checked += 1
        diodes_on += int(active_set(p, X).any())
    assert checked >= 10 and diodes_on >= 5


def ep_errors(p, X, Y, exact, betas, variant):
    return [np.linalg.norm(rs.train.ep_gradient(p, X, Y, beta=b, variant=variant, **SOLVE) - exact)
            for b in betas]


def test_ep_agrees_with_the_exact_gradient_and_its_variants_converge_at_their_orders():
    slopes = {"centered": [], "positive": [], "negative": []}
    for seed, (p, X, Y) in cases(False, 8):
        exact = rs.train.exact_gradient(p, X, Y, **SOLVE)
        limit = min(p.max_negative_beta(t)[0] for t, st in enumerate(p.stages) if len(st.outputs))
        small = 1e-4 * limit
        ep = rs.train.ep_gradient(p, X, Y, beta=small, **SOLVE)
        cosine = ep @ exact / (np.linalg.norm(ep) * np.linalg.norm(exact))
        assert cosine >= 0.999, (seed, cosine)
        betas = limit * np.array([4e-2, 2e-2, 1e-2, 5e-3])
        states = [active_set(p, X)]
        for b in (betas[0], -betas[0]):
            states.append(rs.solve(p, inputs=X, beta=b, targets=Y, **SOLVE).diode_states())
        if not all(np.array_equal(s, states[0]) for s in states):
            continue  # a diode switches inside the nudge: no smooth expansion in beta
        for variant in slopes:
            errors = ep_errors(p, X, Y, exact, betas, variant)
            slopes[variant].append(np.polyfit(np.log(betas), np.log(errors), 1)[0])
    assert len(slopes["centered"]) >= 4
    assert all(1.8 <= s <= 2.2 for s in slopes["centered"]), slopes
    assert all(0.9 <= s <= 1.1 for s in slopes["positive"] + slopes["negative"]), slopes


def test_ep_refuses_parameters_behind_an_amplifier():
    # stage 1: vin - r1 - a - r2 - 0; amplifier e1 copies a (gain 2) to b; stage 2: b - r3 - out - r4 - 0
    c = rs.read_netlist("t\nvin in 0 1\nr1 in a 1k\nr2 a 0 1k\ne1 b 0 a 0 2\nr3 b out 1k\nr4 out 0 1k\n"
                        "*@ .inputs vin\n*@ .outputs out\n*@ .trainable r*\n")
    p = rs.compile(c)
    X, Y = [[1.0]], [[0.2]]
    with pytest.raises(CircuitError, match=r"2 trainable elements \(r1, \.\.\.\) sit in an amplifier stage other "
                                           r"than the outputs'.*use exact_gradient"):
        rs.train.ep_gradient(p, X, Y)
    # the exact gradient reaches them: out = 2 a / 2 = g1 / (g1 + g2) volts, loss = (out - 0.2)^2 / 2
    exact = rs.train.exact_gradient(p, X, Y)
    g1 = g2 = 1e-3
    assert exact[0] == pytest.approx((0.5 - 0.2) * g2 / (g1 + g2) ** 2, rel=1e-9)
    c.trainable = [rs.TrainableSpec(("r3", "r4"))]  # only the outputs' stage: EP applies
    p = rs.compile(c)
    assert rs.train.ep_gradient(p, X, Y, beta=1e-7) == pytest.approx(rs.train.exact_gradient(p, X, Y), rel=1e-4)


def test_ep_refuses_an_output_held_by_an_amplifier():
    c = rs.read_netlist("t\nvin in 0 1\nr1 in a 1k\nr2 a 0 1k\ne1 out 0 a 0 2\nr3 out 0 1k\n"
                        "*@ .inputs vin\n*@ .outputs out\n*@ .trainable r1 r2\n")
    with pytest.raises(CircuitError, match="output out is held by amplifier e1's output port"):
        rs.train.ep_gradient(rs.compile(c), [[1.0]], [[0.0]])
    # out = 2 g1 / (g1 + g2): d loss / d g1 = (out - y) * 2 g2 / (g1 + g2)^2
    assert rs.train.exact_gradient(rs.compile(c), [[1.0]], [[0.0]])[0] == pytest.approx(1.0 * 2 * 1e-3 / 4e-6, rel=1e-9)


def test_gradients_at_a_diode_switching_point_are_one_sided():
    # vin = 2 V - r1 - out - r2 - 0 with 1 kohm each: out = 1 V, exactly where diode d (out -> clamp at 1 V)
    # starts to conduct. Raising g1 or lowering g2 would raise out: the diode holds it, d out = 0. Lowering g1 or
    # raising g2 lowers out with the diode off: d out / d g1 = vin g2 / (g1 + g2)^2 = 500 V/S = -d out / d g2.
    c = rs.read_netlist("t\nvin in 0 2\nvc clamp 0 1\nr1 in out 1k\nr2 out 0 1k\nd out clamp\n"
                        "*@ .inputs vin\n*@ .outputs out\n*@ .trainable r*\n")
    p = rs.compile(c)
    X, y = [[2.0]], 0.5
    off = (1.0 - y) * np.array([500.0, -500.0])  # gradient of the branch where the diode stays off
    exact = rs.train.exact_gradient(p, X, [[y]])
    assert exact == pytest.approx(off, rel=1e-9)
    # it is the one-sided difference quotient from the side where the diode stays off
    h = 1e-9
    left = (rs.train.loss(p, X, [[y]]) - rs.train.loss(rs.train.with_parameters(p, [1e-3 - h, 1e-3]), X, [[y]])) / h
    right = (rs.train.loss(rs.train.with_parameters(p, [1e-3, 1e-3 + h]), X, [[y]]) - rs.train.loss(p, X, [[y]])) / h
    assert (left, right) == pytest.approx(tuple(off), rel=1e-4)
    # EP: the +beta nudge pulls out down towards 0.5 V (diode off), the -beta nudge pushes it up into the diode
    # (held at 1 V). Positive EP follows the off branch, negative the on branch (0), centered their mean.
    beta = 1e-8
    assert rs.train.ep_gradient(p, X, [[y]], beta=beta, variant="positive") == pytest.approx(off, rel=1e-4)
    assert rs.train.ep_gradient(p, X, [[y]], beta=beta, variant="negative") == pytest.approx([0, 0], abs=1e-6)
    assert rs.train.ep_gradient(p, X, [[y]], beta=beta, variant="centered") == pytest.approx(off / 2, rel=1e-4)
