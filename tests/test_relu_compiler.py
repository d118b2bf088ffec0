"""ReLU compiler: circuits solved by rs.solve against the numpy forward pass of the network."""

from pathlib import Path

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.relu_compiler import (compile_relu, element_report, format_report, forward, load_model,
                                      relative_error)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODEL = Path(__file__).with_name("data") / "mnist_mlp.npz"


def random_network(sizes, seed, zero_rows=0, sparsity=0.0):
    """Signed Gaussian weights and biases; ``zero_rows`` hidden/output neurons with all-zero weights and bias,
    a fraction ``sparsity`` of zero weights."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_out, n_in)) * (rng.random((n_out, n_in)) >= sparsity)
        b = rng.normal(0.0, 0.5, n_out)
        dead = rng.choice(n_out, min(zero_rows, n_out), replace=False)
        w[dead], b[dead] = 0.0, 0.0
        weights.append(w)
        biases.append(b)
    return weights, biases


def solve_outputs(circuit, x):
    return rs.solve(circuit, inputs=x).outputs


@pytest.mark.parametrize("sizes,zero_rows,sparsity", [
    ([1, 1], 0, 0.0),
    ([5, 3], 1, 0.0),
    ([4, 8, 3], 0, 0.0),
    ([6, 16, 16, 4], 2, 0.3),
    ([12, 64, 64, 64, 10], 3, 0.1),
    ([64, 64, 64, 64, 64], 0, 0.5),
])
def test_exact_mode_matches_network(sizes, zero_rows, sparsity):
    weights, biases = random_network(sizes, seed=sum(sizes), zero_rows=zero_rows, sparsity=sparsity)
    x = np.random.default_rng(1).normal(0.0, 1.0, (32, sizes[0]))
    y_net = forward(weights, biases, x)
    c = compile_relu(weights, biases)
    assert c.inputs == [f"vin{j}" for j in range(sizes[0])]
    assert c.outputs == [f"out{i}" for i in range(sizes[-1])]
    y = solve_outputs(c, x)
    assert y.shape == y_net.shape
    assert relative_error(y, y_net) <= 1e-7
    if len(sizes) > 2:  # some hidden neurons are off for some samples, so the diodes matter
        z = x @ weights[0].T + biases[0]
        assert (z < 0).any() and (z > 0).any()


def test_hidden_rails_carry_activations():
    weights, biases = random_network([3, 5, 2], seed=4)
    weights[1][:, 1] = [0.7, -1.2]  # neuron 1 feeds the next layer with both signs: both rails
    weights[1][:, 2] = np.abs(weights[1][:, 2])  # neuron 2 used only positively: no negative rail
    x = np.random.default_rng(2).normal(size=(10, 3))
    op = rs.solve(compile_relu(weights, biases), inputs=x)
    h = np.maximum(x @ weights[0].T + biases[0], 0.0)
    np.testing.assert_allclose(op.voltage("l0_p1"), h[:, 1], atol=1e-9)
    np.testing.assert_allclose(op.voltage("l0_n1"), -h[:, 1], atol=1e-9)
    assert not compile_relu(weights, biases).has_node("l0_n2")


def test_zero_row_has_defined_state():
    w0 = np.array([[1.0, -2.0], [0.0, 0.0], [0.5, 0.5]])
    b0 = np.array([0.1, 0.0, -0.2])
    w1 = np.array([[1.0, 3.0, -1.0], [0.0, 0.0, 0.0]])
    b1 = np.array([0.0, 0.0])
    c = compile_relu([w0, w1], [b0, b1])
    x = np.array([[1.0, 0.2], [-1.0, 0.5], [0.3, -0.3]])
    op = rs.solve(c, inputs=x)
    np.testing.assert_allclose(op.voltage("l0_z1"), 0.0, atol=1e-12)  # solver tolerance, volts
    np.testing.assert_allclose(op.outputs[:, 1], 0.0, atol=1e-12)
    expected = np.maximum(x @ w0.T + b0, 0) @ w1.T + b1
    np.testing.assert_allclose(op.outputs, expected, atol=1e-9)


def test_worked_example_voltages():
    """The 2-2-1 example of docs/relu_compiler.md, by hand: z = (1*0.5 - 2*(-1) + 0.5)/(1+2+0.5) at its node."""
    w0 = np.array([[1.0, -2.0], [-1.0, 1.0]])
    b0 = np.array([0.5, -1.0])
    w1 = np.array([[2.0, -3.0]])
    b1 = np.array([0.25])
    c = compile_relu([w0, w1], [b0, b1])
    op = rs.solve(c, inputs=np.array([[0.5, -1.0]]))
    np.testing.assert_allclose(op.voltage("l0_z0"), 3.0 / 3.5, rtol=1e-12)  # z0 = 3, G0 = 3.5
    np.testing.assert_allclose(op.voltage("l0_z1"), 0.0, atol=1e-12)  # z1 = -2.5: diode on, clamped at 0 V
    np.testing.assert_allclose(op.outputs, [[2.0 * 3.0 + 0.25]], rtol=1e-12)
    # R = 1 / (1 mS * |w|): the resistor from input 1's negative rail to neuron 0 is 500 ohms
    kind, row = c.element("rl0_z0_1")
    assert c["R"].value[row] == pytest.approx(500.0)
    assert c.node_names[c["R"].nodes[row, 1]] == "in_n1"


def test_element_counts_closed_form():
    sizes = [7, 9, 5, 3]
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    for w in weights:  # every column has both signs: both rails of every neuron are needed
        w[0], w[1] = np.abs(w[0]), -np.abs(w[1])
    biases = [np.where(np.arange(n) % 2, 1.0, -1.0) for n in sizes[1:]]
    exact = element_report(compile_relu(weights, biases))
    n_w = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    hidden = sum(sizes[1:-1])
    assert exact["total"] == {"R": n_w + sum(sizes[1:]), "D": hidden, "E": sizes[0] + 2 * hidden + sizes[-1], "V": 9}
    assert exact["inputs"] == {"R": 0, "D": 0, "E": 7, "V": 9}
    assert exact["layer 0"] == {"R": 7 * 9 + 9, "D": 9, "E": 18, "V": 0}
    assert exact["layer 2"] == {"R": 5 * 3 + 3, "D": 0, "E": 3, "V": 0}
    minimal = element_report(compile_relu(weights, biases, "minimal"))
    assert minimal["total"]["E"] == sizes[0] + sizes[-1]
    assert minimal["total"]["D"] == 2 * hidden
    assert minimal["layer 1"]["R"] == 2 * (9 * 5 + 5)
    assert format_report(exact).splitlines()[0].split() == ["group", "R", "D", "E", "V"]


@pytest.mark.parametrize("sizes", [[6, 12, 12, 3], [40, 6, 3]])  # inverted inputs; split first layer
def test_minimal_mode_error_shrinks_with_gain(sizes):
    weights, biases = random_network(sizes, seed=11)
    x = np.random.default_rng(3).normal(size=(50, sizes[0]))
    y_net = forward(weights, biases, x)
    gains = [10.0, 100.0, 1e3, 1e4]
    errors = [relative_error(solve_outputs(compile_relu(weights, biases, "minimal", gain=g), x), y_net)
              for g in gains]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    # first order in 1/gain: error * gain roughly constant once the gain is large
    assert 0.3 < (errors[-1] * gains[-1]) / (errors[-2] * gains[-2]) < 3.0, errors
    assert errors[-1] < 1e-2


def test_minimal_mode_amplifier_counts():
    """Inverting 40 inputs would cost 40 VCVS; splitting the first layer costs one per copy of a hidden neuron
    that the output layer uses: a positive copy where its column has a weight > 0, a negative one where < 0."""
    weights, biases = random_network([40, 6, 3], seed=11)
    report = element_report(compile_relu(weights, biases, "minimal"))
    copies = np.count_nonzero((weights[1] > 0).any(axis=0)) + np.count_nonzero((weights[1] < 0).any(axis=0))
    assert 6 < copies <= 12
    assert report["inputs"]["E"] == 0
    assert report["layer 0"]["E"] == copies and report["layer 1"]["E"] == 3
    weights, biases = random_network([3, 40, 3], seed=11)  # few inputs: invert them
    report = element_report(compile_relu(weights, biases, "minimal"))
    assert report["inputs"]["E"] == 3 and report["total"]["E"] == 6
    weights, biases = random_network([30, 4], seed=1)  # one layer: the output VCVS is differential
    c = compile_relu(weights, biases, "minimal")
    assert element_report(c)["total"]["E"] == 4
    x = np.random.default_rng(0).normal(size=(5, 30))
    assert relative_error(solve_outputs(c, x), forward(weights, biases, x)) <= 1e-7


@pytest.mark.parametrize("seed", range(8))
def test_minimal_mode_sparse_sign_patterns(seed):
    """Sparse weights: a negative copy draws on the opposite rails, so rails must follow the copies in use."""
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 10, size=4)]
    weights, biases = random_network(sizes, seed=seed, zero_rows=1, sparsity=0.5)
    x = rng.normal(size=(20, sizes[0]))
    y = solve_outputs(compile_relu(weights, biases, "minimal", gain=1e6), x)
    assert relative_error(y, forward(weights, biases, x)) < 1e-4


def test_compile_errors():
    w, b = random_network([2, 2], seed=0)
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        compile_relu(w, b, mode="fast")
    with pytest.raises(ValueError, match="gain applies only"):
        compile_relu(w, b, gain=10.0)
    with pytest.raises(ValueError, match="gain must be"):
        compile_relu(w, b, "minimal", gain=0.5)
    with pytest.raises(ValueError, match="unit must be"):
        compile_relu(w, b, unit=0.0)
    with pytest.raises(ValueError, match=r"W1 takes 3 inputs but layer 0 has 2 outputs"):
        compile_relu([np.ones((2, 2)), np.ones((1, 3))], [np.ones(2), np.ones(1)])
    with pytest.raises(ValueError, match=r"b0 must have shape \(2,\)"):
        compile_relu([np.ones((2, 2))], [np.ones(3)])
    with pytest.raises(ValueError, match=r"W0 has non-finite values at \[1, 0\]"):
        compile_relu([np.array([[1.0, 1.0], [np.nan, 1.0]])], [np.ones(2)])
    with pytest.raises(ValueError, match="W0 and b0 must be numeric arrays"):
        compile_relu([np.array([["a", "b"]])], [np.ones(1)])
    with pytest.raises(ValueError, match="no layers"):
        compile_relu([], [])


def test_load_model_npz_and_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    weights, biases = random_network([3, 4, 2], seed=5)
    arrays = {f"{p}{k}": a for k, (w, b) in enumerate(zip(weights, biases)) for p, a in (("W", w), ("b", b))}
    np.savez(tmp_path / "m.npz", **arrays, accuracy=np.array(0.9))
    with h5py.File(tmp_path / "m.h5", "w") as f:
        for k, a in arrays.items():
            f[k] = a
    for path in (tmp_path / "m.npz", tmp_path / "m.h5"):
        w2, b2 = load_model(path)
        assert len(w2) == 2
        for a, a2 in zip(weights + biases, w2 + b2):
            np.testing.assert_array_equal(a, a2)


@pytest.mark.parametrize("arrays,message", [
    ({"W0": np.ones((2, 3)), "b0": np.ones(2), "W2": np.ones((1, 2)), "b2": np.ones(1)}, "array W1 missing"),
    ({"W0": np.ones((2, 3))}, "array b0 missing"),
    ({"b0": np.ones(2)}, "array W0 missing"),
    ({"W0": np.ones((2, 3)), "b0": np.ones(3)}, r"b0 must have shape \(2,\)"),
    ({"W0": np.ones(3), "b0": np.ones(3)}, "W0 must be a non-empty 2-D array"),
    ({"W0": np.array([[np.inf]]), "b0": np.ones(1)}, "W0 has non-finite values"),
])
def test_load_model_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=rf"bad\.npz: {message}"):
        load_model(path)


def test_load_model_not_a_model(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"x\.txt: not a \.npz or HDF5 model file"):
        load_model(tmp_path / "x.txt")
    with pytest.raises(ValueError, match=r"nope\.npz: cannot read model"):
        load_model(tmp_path / "nope.npz")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared data folder ../shared/data absent")
def test_trained_mnist_network_on_all_test_images():
    from resnet_sim.data import load_dataset

    weights, biases = load_model(MODEL)
    x, labels = load_dataset("mnist", "test", folder=SHARED)
    x = x.astype(np.float64)
    y_net = forward(weights, biases, x)
    c = compile_relu(weights, biases)
    y = np.concatenate([solve_outputs(c, x[s:s + 2500]) for s in range(0, len(x), 2500)])
    assert y.shape == (10000, 10)
    assert relative_error(y, y_net) <= 1e-7
    np.testing.assert_array_equal(y.argmax(axis=1), y_net.argmax(axis=1))
    assert np.mean(y_net.argmax(axis=1) == labels) > 0.95  # it is a trained network


def test_minimal_chain_is_certified_where_scales_differ_by_the_gain():
    # four 1x1 layers, weight 1, bias 0.1: output 1 + 4 * 0.1 = 1.4. Conductances fall by the gain per layer;
    # an error estimate that multiplied the last layer's inverse by the first layer's rounding called this
    # exact answer unconverged
    weights, biases = [np.array([[1.0]])] * 4, [np.array([0.1])] * 4
    op = rs.solve(rs.compile_relu(weights, biases, "minimal"), inputs=[[1.0]])
    assert op.converged and op.outputs[0, 0] == pytest.approx(1.4, rel=1e-12)
