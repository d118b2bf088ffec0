"""Random circuits (hypothesis) against an independent cvxpy formulation written here from the element
list: node potentials as variables, one energy term per resistor and current source, source equalities,
diode inequalities, VCVS stages solved one after the other. It shares no code with compile().

Circuits: a resistor tree to ground plus chords (so every node has a resistive path to ground),
grounded and floating voltage sources (no source loops), current sources, diodes between any nodes
(ideal, with a forward drop, with a series resistance), and optionally a second stage driven by VCVSs
reading the first. When the reference finds no feasible point, rs.solve must raise CircuitError.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resnet_sim as rs
from resnet_sim.circuit import Circuit, DiodeModel
from resnet_sim.errors import CircuitError
from test_solve import kcl_residual

MODELS = {"": DiodeModel(), "dvf": DiodeModel(vf=0.3), "drs": DiodeModel(rs=500.0), "dboth": DiodeModel(vf=0.2, rs=2e3)}
VOLT_TOL = 1e-8
# method="cvxpy" (Clarabel through cvxpy, interior point) is good to ~1e-8 V, but only ~1e-5 V where a
# diode sits at its knee with zero current (a degenerate QP)
CVXPY_METHOD_TOL = 1e-5


class _Sets:
    """Union-find over node names, to place voltage sources without loops."""

    def __init__(self):
        self.parent = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            x = self.parent[x]
        return x

    def union(self, x, y):
        self.parent[self.find(x)] = self.find(y)


def random_block(rng, prefix, n, sets, drivers=()):
    """Element tuples (kind, name, nodes, value, model) of one block of n nodes ``{prefix}{i}``.

    ``drivers``: (name, controlling node pair, gain) of VCVSs whose output ports land in this block.
    """
    nodes = [f"{prefix}{i}" for i in range(n)]
    cards = []
    for i, node in enumerate(nodes):  # resistor tree to ground
        parent = "0" if i == 0 or rng.random() < 0.3 else nodes[rng.integers(0, i)]
        cards.append(("R", f"r{prefix}t{i}", [node, parent], rng.uniform(100, 1e4), ""))
    for j in range(n // 2):
        a, b = rng.choice(nodes + ["0"], 2, replace=False)
        cards.append(("R", f"r{prefix}x{j}", [a, b], rng.uniform(100, 1e4), ""))

    def source_pair(grounded):
        for _ in range(20):
            a = nodes[rng.integers(n)]
            b = "0" if grounded else nodes[rng.integers(n)]
            if a != b and sets.find(a) != sets.find(b):
                sets.union(a, b)
                return [a, b]
        return None

    for j in range(rng.integers(0, 3)):
        if (pair := source_pair(True)) is not None:
            cards.append(("V", f"v{prefix}g{j}", pair, rng.uniform(-5, 5), ""))
    for j in range(rng.integers(0, 3)):
        if (pair := source_pair(False)) is not None:
            cards.append(("V", f"v{prefix}f{j}", pair, rng.uniform(-2, 2), ""))
    for j, (name, ctrl, gain) in enumerate(drivers):
        if (pair := source_pair(rng.random() < 0.5)) is not None:
            cards.append(("E", name, pair + list(ctrl), gain, ""))
    for j in range(rng.integers(0, 3)):
        a, b = rng.choice(nodes + ["0"], 2, replace=False)
        cards.append(("I", f"i{prefix}{j}", [a, b], rng.uniform(-2e-3, 2e-3), ""))
    for j in range(rng.integers(0, 5)):
        a, b = rng.choice(nodes + ["0"], 2, replace=False)
        cards.append(("D", f"d{prefix}{j}", [a, b], 0.0, str(rng.choice(list(MODELS)))))
    return cards


def random_circuit(seed, two_stages):
    rng = np.random.default_rng(seed)
    sets = _Sets()
    blocks = [random_block(rng, "a", int(rng.integers(2, 9)), sets)]
    if two_stages:
        first = sorted({n for card in blocks[0] for n in card[2]} - {"0"})
        drivers = [(f"e{j}", [str(rng.choice(first)), str(rng.choice(first + ["0"]))], rng.uniform(-3, 3))
                   for j in range(rng.integers(1, 3))]
        blocks.append(random_block(rng, "b", int(rng.integers(2, 7)), sets, drivers))
    c = Circuit(f"random {seed}")
    c.models.update({k: v for k, v in MODELS.items() if k})
    for card in (card for block in blocks for card in block):
        c.add(*card)
    return c, blocks


class ReferenceBlock:
    """One block by cvxpy: ``volts`` (dict; None when infeasible), and ``energy(volts)`` /
    ``violation(volts)`` of any candidate potentials in the same formulation (internal ``#rs`` nodes
    included). ``fixed``: potentials from earlier blocks (VCVS controlling nodes); E cards then act
    as V sources."""

    def __init__(self, cards, fixed):
        import cvxpy as cp

        names = sorted({n for card in cards for n in card[2][:2]} | {"0"})
        internal = [f"{card[1]}#rs" for card in cards if card[0] == "D" and MODELS[card[4]].rs > 0]
        self.index = {n: i for i, n in enumerate(names + internal)}
        v = self.v = cp.Variable(len(self.index))
        index = self.index
        ra, rb, g, inj, cons = [], [], [], np.zeros(len(index)), [v[index["0"]] == 0]
        for kind, name, nodes, value, model in cards:
            a, b = index[nodes[0]], index[nodes[1]]
            if kind == "R":
                ra, rb, g = ra + [a], rb + [b], g + [1e3 / value]  # scaled by 1 kohm: O(1) numbers
            elif kind == "I":  # flows from a through the source to b: injects into b
                inj[b] += 1e3 * value
                inj[a] -= 1e3 * value
            elif kind == "V":
                cons.append(v[a] - v[b] == value)
            elif kind == "E":
                cons.append(v[a] - v[b] == value * (fixed[nodes[2]] - fixed[nodes[3]]))
            elif kind == "D":
                m = MODELS[model]
                if m.rs > 0:
                    mid = index[f"{name}#rs"]
                    ra, rb, g = ra + [a], rb + [mid], g + [1e3 / m.rs]
                    a = mid
                cons.append(v[a] - v[b] <= m.vf)
        drop = v[np.array(ra)] - v[np.array(rb)]
        energy = 0.5 * cp.sum_squares(cp.multiply(np.sqrt(g), drop)) - inj @ v
        self.objective, self.constraints = energy, cons
        prob = cp.Problem(cp.Minimize(energy), cons)
        with warnings.catch_warnings():  # "may be inaccurate": assert_matches_reference allows for it
            warnings.simplefilter("ignore", UserWarning)
            # Clarabel at tight tolerances; on the few instances where it gives up or stops at its iteration
            # limit, Clarabel at its default tolerances, then OSQP with its polish step
            attempts = [dict(solver="CLARABEL", tol_gap_abs=1e-13, tol_gap_rel=1e-13, tol_feas=1e-13, tol_ktratio=1e-11),
                        dict(solver="CLARABEL", max_iter=2000),
                        dict(solver="OSQP", eps_abs=1e-13, eps_rel=1e-13, polishing=True, max_iter=200_000),
                        dict(solver="OSQP", eps_abs=1e-9, eps_rel=1e-9, polishing=True, max_iter=200_000)]
            for options in attempts:
                try:
                    prob.solve(**options)
                except cp.error.SolverError:
                    continue
                if prob.status in ("optimal", "optimal_inaccurate", "infeasible", "infeasible_inaccurate", "unbounded",
                                   "unbounded_inaccurate"):
                    break
        self.status = prob.status
        if prob.status in ("infeasible", "infeasible_inaccurate", "unbounded", "unbounded_inaccurate"):
            self.volts = None
            return
        assert prob.status in ("optimal", "optimal_inaccurate"), prob.status
        self.volts = {n: float(v.value[i]) for n, i in index.items()}
        self.best = float(energy.value)

    def _set(self, volts):
        self.v.value = np.array([volts[n] for n in self.index])

    def energy(self, volts) -> float:
        self._set(volts)
        return float(self.objective.value)

    def violation(self, volts) -> float:
        self._set(volts)
        return max([float(np.max(c.violation())) for c in self.constraints])


def reference(blocks):
    """Potentials of every node, block after block (None when a block is infeasible)."""
    volts = {"0": 0.0}
    for cards in blocks:
        part = ReferenceBlock(cards, volts).volts
        if part is None:
            return None
        volts.update(part)
    return volts


def assert_matches_reference(op, blocks, tol=VOLT_TOL):
    """Every node of ``op`` within ``tol`` volts of the reference, block by block (later blocks see
    ``op``'s own potentials at their VCVS controlling nodes). Where an interior-point reference is
    loose (a diode at its knee with zero current is degenerate; Clarabel then converges to ~1e-6 V),
    ``op`` must instead be feasible and have an energy no higher than the reference's: for this
    strongly convex energy that bounds the distance to the true optimum by the reference's own gap."""
    ours = {"0": 0.0}
    for cards in blocks:
        ref = ReferenceBlock(cards, ours)
        assert ref.volts is not None
        mine = {n: float(np.atleast_1d(op.voltage(n))[0]) for n in ref.volts}
        err = max(abs(mine[n] - ref.volts[n]) for n in ref.volts)
        if err > tol:
            assert ref.violation(mine) <= 1e-9
            assert ref.energy(mine) <= ref.best + 1e-12 * (1 + abs(ref.best)), (ref.energy(mine), ref.best)
        ours.update(mine)


def check_against_reference(c, blocks, methods):
    ref = reference(blocks)
    solved = {}
    for method in methods:
        if ref is None:
            with pytest.raises(CircuitError, match="infinite current"):
                rs.solve(c, method=method)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            op = rs.solve(c, method=method, tol=1e-10)
        assert op.converged
        if method != "cvxpy":
            assert_matches_reference(op, blocks)
        assert op.power == pytest.approx(op.source_power, rel=1e-8, abs=1e-12)
        assert kcl_residual(op) < 1e-9
        solved[method] = op.voltages
    # the methods agree with each other (cvxpy/Clarabel is an interior-point method: looser)
    for method, volts in solved.items():
        np.testing.assert_allclose(volts, solved[methods[0]], atol=CVXPY_METHOD_TOL if method == "cvxpy" else VOLT_TOL)
    return ref


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), two_stages=st.booleans())
def test_random_circuits_match_reference(seed, two_stages):
    c, blocks = random_circuit(seed, two_stages)
    check_against_reference(c, blocks, ["auto", "cd", "active-set", "cvxpy"])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_batches_match_single_solves(seed):
    c, blocks = random_circuit(seed, two_stages=False)
    sources = [card for card in blocks[0] if card[0] in "VI"]
    if not sources:
        return
    c.inputs = [card[1] for card in sources]
    rng = np.random.default_rng(seed)
    X = np.array([[card[3] for card in sources]]) * rng.uniform(-1.5, 1.5, (3, len(sources)))
    single = [reference([[(k, n, nodes, x[c.inputs.index(n)] if n in c.inputs else val, m)
                          for k, n, nodes, val, m in blocks[0]]]) for x in X]
    if any(r is None for r in single):
        with pytest.raises(CircuitError):
            rs.solve(c, inputs=X)
        return
    op = rs.solve(c, inputs=X, tol=1e-10)
    assert op.converged
    for j in range(len(X)):
        one = rs.solve(c, inputs=X[j], tol=1e-10)
        np.testing.assert_allclose(op.voltages[:, j], one.voltages[:, 0], atol=VOLT_TOL)
        assert_matches_reference(one, [[(k, n, nodes, X[j][c.inputs.index(n)] if n in c.inputs else val, m)
                                        for k, n, nodes, val, m in blocks[0]]])


@pytest.mark.parametrize("seed", range(3))
def test_forward_diode_paths_between_sources_raise(seed):
    # random resistive block plus a chain of forward diodes from a high source to a low one
    rng = np.random.default_rng(seed)
    c, blocks = random_circuit(seed, two_stages=False)
    if reference(blocks) is None:
        pytest.skip("the random block is infeasible by itself")
    c.add("V", "vhigh", ["hi", "0"], rng.uniform(1, 5))
    c.add("V", "vlow", ["lo", "0"], rng.uniform(-5, 0))
    chain = ["hi"] + [f"a{i}" for i in rng.choice(2, size=int(rng.integers(0, 3)), replace=False)] + ["lo"]
    for j, (a, k) in enumerate(zip(chain[:-1], chain[1:])):
        c.add("D", f"dchain{j}", [a, k])
    with pytest.raises(CircuitError, match="dchain"):
        rs.solve(c)
