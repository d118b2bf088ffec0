"""Deep Hopfield networks and predictive coding networks: equilibria against their defining conditions and a
generic optimiser, EP against finite differences of the loss, inference learning's update, and a trained
PCN compiled to a circuit with compile_relu against the network on MNIST test images."""

import numpy as np
import pytest
from scipy.optimize import minimize

import resnet_sim as rs
from resnet_sim.cli import main
from resnet_sim.data import load_sample
from resnet_sim.models.pcn import PCNState
from resnet_sim.relu_compiler import compile_relu, forward, relative_error
from resnet_sim.train import checkpoint
from resnet_sim.train.datasets import training_data
from resnet_sim.train.estimators import DualPropagation, EquilibriumPropagation, InferenceLearning
from resnet_sim.train.trainer import TrainConfig, Trainer
from test_drn_cli import mnist_folder  # noqa: F401  (the fixture: an IDX folder of the shipped sample)


def batch(n_in, n_out, seed=0, B=4):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (B, n_in)), np.eye(n_out)[rng.integers(0, n_out, B)]


def loss_of(model, theta, X, Y):
    model.set_theta(theta)
    return 0.5 * np.mean(np.sum((model.outputs(model.free(X)) - Y) ** 2, axis=1))


def central_differences(model, X, Y, h=1e-6):
    theta = model.theta.copy()
    grad = np.zeros_like(theta)
    for i in range(len(theta)):
        t = theta.copy()
        t[i] += h
        up = loss_of(model, t, X, Y)
        t[i] -= 2 * h
        grad[i] = (up - loss_of(model, t, X, Y)) / (2 * h)
    model.set_theta(theta)
    return grad


def test_hopfield_equilibrium_is_a_fixed_point_of_the_clipped_updates():
    m = rs.models.hopfield((7, 5), n_inputs=6, n_outputs=3, weight_gain=1.5, seed=2)
    X, Y = batch(6, 3)
    for beta in (0.0, 0.3):
        s = m.free(X) if beta == 0 else m.nudged(X, Y, beta, m.free(X))
        h1, h2, out = s.layers
        W1, W2, W3 = (m.weight(l) for l in (1, 2, 3))
        b1, b2, b3 = (m.bias(l) for l in (1, 2, 3))
        assert np.abs(h1 - np.clip(X @ W1 + h2 @ W2.T + b1, 0, 1)).max() < 1e-8
        assert np.abs(h2 - np.clip(h1 @ W2 + out @ W3.T + b2, 0, 1)).max() < 1e-8
        assert np.abs(out - (h2 @ W3 + b3 + beta * Y) / (1 + beta)).max() < 1e-8
        assert ((h1 > 0) & (h1 < 1)).any() and ((h1 == 0) | (h1 == 1)).any()  # both regimes exercised


def test_hopfield_centered_ep_matches_finite_differences():
    m = rs.models.hopfield((6,), n_inputs=5, n_outputs=3, weight_gain=0.8, seed=1)
    m.bias(1)[:] = np.random.default_rng(3).normal(0, 0.3, 6)
    X, Y = batch(5, 3, seed=1)
    exact = central_differences(m, X, Y)
    ep = EquilibriumPropagation(1e-4)(m, X, Y)[0].copy()
    assert np.abs(ep - exact).max() <= 1e-4 * np.abs(exact).max()


def test_pcn_free_phase_is_the_relu_network_and_its_energy_is_zero():
    m = rs.models.pcn((8, 6), n_inputs=5, n_outputs=3, seed=1)
    X, _ = batch(5, 3)
    s = m.free(X)
    weights, biases = m.relu_network()
    assert np.abs(s.layers[-1] - forward(weights, biases, X)).max() < 1e-12
    assert np.abs(m.energy(s)).max() < 1e-25


@pytest.mark.parametrize("beta", [0.01, 0.2, 1.0, -0.3])
def test_pcn_relaxation_settles_where_no_coordinate_or_generic_optimiser_does_better(beta):
    # F + beta C is not convex (ReLU): coordinate descent from the free state reaches a local minimum (Powell
    # started there finds nothing lower); for a small nudge, the free state's neighbourhood holds the global one
    # (several random starts find nothing lower), while larger nudges can have a lower minimum elsewhere
    m = rs.models.pcn((5, 4), n_inputs=6, n_outputs=3, seed=1)
    X, Y = batch(6, 3)
    s = m.nudged(X, Y, beta, m.free(X))
    assert s.converged

    def objective(z, b):
        layers = [z[:5][None], z[5:9][None], z[9:][None]]
        st = PCNState(X[b:b + 1], layers, None, 0, True)
        return m.energy(st)[0] + 0.5 * beta * np.sum((z[9:] - Y[b]) ** 2)

    for b in range(len(X)):
        z = np.concatenate([layer[b] for layer in s.layers])
        local = minimize(objective, z, args=(b,), method="Powell", options=dict(xtol=1e-11, ftol=1e-15))
        assert local.fun >= objective(z, b) - 1e-12  # a local minimum: the optimiser started there finds nothing lower
        if beta == 0.01:
            rng = np.random.default_rng(b)
            best = min(minimize(objective, z + rng.normal(0, 0.5, len(z)), args=(b,), method="Powell",
                                options=dict(xtol=1e-11, ftol=1e-15)).fun for _ in range(8))
            assert objective(z, b) <= best + 1e-10


def test_pcn_ep_matches_the_gradient_and_inference_learning_is_the_clamped_energy_gradient():
    m = rs.models.pcn((6,), n_inputs=5, n_outputs=3, seed=4)
    X, Y = batch(5, 3, seed=2)
    exact = central_differences(m, X, Y)
    ep = EquilibriumPropagation(1e-4)(m, X, Y)[0].copy()
    assert np.abs(ep - exact).max() <= 1e-4 * np.abs(exact).max()
    il = InferenceLearning()(m, X, Y)[0].copy()
    clamped = m.clamped(X, Y, m.free(X))
    assert np.abs(clamped.layers[-1] - Y).max() == 0
    eps = clamped.errors[0]
    assert il[: m.w_off[1]].reshape(5, 6) == pytest.approx(-X.T @ eps / len(X), abs=1e-12)
    assert il @ exact > 0  # a descent direction of the loss


def test_a_trained_pcn_compiles_to_a_circuit_that_predicts_as_it_does():
    x, y = load_sample("train")
    xt, yt = load_sample("test")
    model = rs.models.pcn((32,), seed=0)
    data = training_data(dict(x_train=x, y_train=y, x_test=xt, y_test=yt), 784, 10)
    history = Trainer(model, data, TrainConfig(epochs=2, batch_size=32, lr=0.01, momentum=0.9, beta=0.1),
                      progress=False).run()
    assert history[-1]["test_error"] < 0.2
    weights, biases = model.relu_network()
    op = rs.solve(compile_relu(weights, biases), inputs=xt.astype(np.float64))
    predicted = model.outputs(model.free(xt))
    assert relative_error(op.outputs, predicted) <= 1e-7
    assert np.array_equal(np.argmax(op.outputs, axis=1), np.argmax(predicted, axis=1))


def test_dual_propagation_matches_the_gradient_on_a_pcn_and_is_refused_elsewhere():
    m = rs.models.pcn((6, 4), n_inputs=5, n_outputs=3, seed=4)
    X, Y = batch(5, 3, seed=2)
    exact = central_differences(m, X, Y)
    dp = DualPropagation(1e-3)(m, X, Y)[0].copy()
    assert np.abs(dp - exact).max() <= 1e-6 * np.abs(exact).max()  # exact where no unit sits at the ReLU kink
    with pytest.raises(ValueError, match="dual propagation needs a model whose free state is a feed-forward pass"):
        DualPropagation(0.1)(rs.models.hopfield((4,), n_inputs=5, n_outputs=3), X, Y)


def test_hopfield_circuit_reaches_the_model_equilibrium_and_ep_on_it_stops_at_its_amplifiers():
    m = rs.models.hopfield((6, 4), n_inputs=5, n_outputs=3, weight_gain=0.5, seed=1, tol=1e-13)
    X = np.random.default_rng(0).uniform(-1, 1, (7, 5))
    state = m.free(X)
    c = m.circuit(state.sweeps)
    op = rs.solve(c, inputs=X)
    assert op.converged and np.abs(op.outputs - m.outputs(state)).max() <= 1e-6
    few = rs.solve(m.circuit(2), inputs=X).outputs  # fewer sweeps than it takes: a measurable gap
    assert np.abs(few - m.outputs(state)).max() > 1e-4
    c.trainable = [rs.TrainableSpec(("r*",))]
    with pytest.raises(rs.CircuitError, match="output out0 is held by amplifier .* a nudge cannot move it"):
        rs.train.ep_gradient(rs.compile(c), X[:2], np.zeros((2, 3)), beta=1e-3)


def test_pcn_cli_writes_the_trained_free_phase_as_a_netlist(mnist_folder, tmp_path):
    run = tmp_path / "run"
    assert main(["pcn", "--arch", "1h", "--data", str(mnist_folder), "--train-subset", "200", "--epochs", "1",
                 "--dtype", "float64", "--netlist", "--out", str(run), "--quiet"]) == 0
    model = rs.models.pcn("1h", dtype=np.float64)
    model.set_theta(checkpoint.load(run / "checkpoint.h5")["theta"])
    images = load_sample("test")[0][:4].astype(np.float64)
    op = rs.solve(rs.read_netlist(run / "trained.cir"), inputs=images)
    assert op.converged and relative_error(op.outputs, model.outputs(model.free(images))) <= 1e-7


def test_a_trained_hopfield_network_is_written_unrolled_over_the_sweeps_asked_for(tmp_path, capsys):
    model = rs.models.hopfield((6,), n_inputs=5, n_outputs=3, weight_gain=0.5, seed=1)
    X, Y = batch(5, 3, seed=2, B=8)
    data = training_data(dict(x_train=X, y_train=np.argmax(Y, axis=1)), 5, 3)
    Trainer(model, data, TrainConfig(epochs=1, batch_size=4, lr=0.05, beta=0.1), out=tmp_path / "run",
            progress=False, netlist_options={"sweeps": 3}).run()
    op = rs.solve(rs.read_netlist(tmp_path / "run" / "trained.cir"), inputs=X)
    assert op.converged and relative_error(op.outputs, forward(*model.unrolled(3), X)) <= 1e-7
    assert main(["hopfield", "--arch", "1h", "--unroll", "0", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "--unroll must be >= 1 sweep, got 0" in capsys.readouterr().err
