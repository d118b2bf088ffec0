"""Parameters, the optimiser and the device models, each against its equation (docs/training.md)."""

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.train.devices import DeviceConfig, Devices, UpdateTable
from resnet_sim.train.optim import KERNEL_MIN_LENGTH, SGD, Schedule

NETLIST = """theta order
v1 a 0 1
r2 a b 2
i1 0 b 0.1
r1 b 0 1
rx b c 4
i2 0 c -0.2
rc c 0 8
*@ .inputs v1
*@ .outputs c
*@ .trainable rx i2
*@ .trainable r* gmin=0.01 gmax=2
"""


def test_theta_is_conductances_in_netlist_order_then_currents_grouped_by_first_card():
    p = rs.compile(rs.read_netlist(NETLIST))
    lay = rs.train.layout(p)
    assert lay.names.tolist() == ["r2", "r1", "rx", "rc", "i2"]
    assert rs.train.parameters(p).tolist() == [0.5, 1.0, 0.25, 0.125, -0.2]
    assert lay.group.tolist() == [1, 1, 0, 1, 0]
    assert lay.lower.tolist() == [0.01, 0.01, 0.0, 0.01, -np.inf] and lay.upper.tolist() == [2, 2, np.inf, 2, np.inf]
    q = rs.train.with_parameters(p, [0.5, 1.0, 0.0, 0.125, 0.3])  # rx open, i2 = 0.3 A into c
    op = rs.solve(q)
    assert op.voltage("c") == pytest.approx(0.3 * 8, rel=1e-12) and op.current("rx") == 0.0
    c = rs.train.circuit_with_parameters(p.circuit, [0.5, 1.0, 0.0, 0.125, 0.3])
    assert np.isinf(c["R"].value[2]) and c["I"].value.tolist() == [0.1, 0.3]
    assert rs.read_netlist(rs.write_netlist(c)) == c


@pytest.mark.parametrize("kind, factors", [("constant", [1, 1, 1]), ("exponential", [1, 0.9, 0.81]),
                                           ("cosine", [1, 0.5, 0])])
def test_schedules(kind, factors):
    s = Schedule(kind, gamma=0.9, epochs=2)
    assert [s.factor(e) for e in range(3)] == pytest.approx(factors, abs=1e-15)


@pytest.mark.parametrize("n", [3, KERNEL_MIN_LENGTH + 3])  # numpy, and the Numba kernel for long vectors
def test_sgd_with_momentum_weight_decay_and_group_rates(n):
    group = np.arange(n) % 2
    opt = SGD(group, lr=0.1, group_lr={1: 0.01}, momentum=0.5, weight_decay=0.2)
    theta = np.linspace(1.0, 2.0, n)
    lr = np.where(group == 1, 0.01, 0.1)
    g1, g2 = np.full(n, 1.0), np.full(n, -2.0)
    v = g1 + 0.2 * theta
    expected = theta - lr * v
    opt.step(theta, g1.copy(), epoch=0)
    assert theta == pytest.approx(expected, rel=1e-15)
    v = 0.5 * v + (g2 + 0.2 * expected)
    expected = expected - 0.5 * lr * v  # epoch 1 of an exponential schedule, gamma 0.5
    opt.schedule = Schedule("exponential", gamma=0.5)
    opt.step(theta, g2.copy(), epoch=1)
    assert theta == pytest.approx(expected, rel=1e-14)


def test_sgd_refuses_bad_settings():
    with pytest.raises(ValueError, match="lr must be a finite learning rate > 0"):
        SGD([0, 0], lr=0.0)
    with pytest.raises(ValueError, match="group 1 lr must be"):
        SGD([0, 1], group_lr={1: -1.0})
    with pytest.raises(ValueError, match=r"names group \[3\], which holds no parameter"):
        SGD([0, 1], group_lr={3: 0.1})
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD([0], momentum=1.0)


def devices(config, lower=0.0, upper=1.0, n=4, seed=0):
    return Devices(config, np.full(n, lower), np.full(n, upper), np.random.default_rng(seed))


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_the_update_kernels_against_numpy(parallel, monkeypatch):
    from resnet_sim.train import kernels

    if parallel:  # split over the cores (by default only from dense.PARALLEL_MIN_WORK elements up)
        monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(0)
    y, x = rng.normal(size=KERNEL_MIN_LENGTH + 3), rng.normal(size=KERNEL_MIN_LENGTH + 3)
    want = y - 0.3 * x
    kernels.add_scaled(y, -0.3, x)
    assert np.array_equal(y, want)
    kernels.clip_below(y, 0.1)
    assert np.array_equal(y, np.maximum(want, 0.1))


def test_ideal_devices_project_onto_the_bounds():
    d = devices(DeviceConfig(), 0.1, 0.9)
    g = np.array([-1.0, 0.5, 0.95, 0.1])
    d.program(g, None, np.random.default_rng(0))
    assert g.tolist() == [0.1, 0.5, 0.9, 0.1]


def test_quantised_levels_deterministic_and_stochastic():
    d = devices(DeviceConfig(levels=5), 0.0, 1.0)  # levels 0, 0.25, 0.5, 0.75, 1
    g = np.array([0.1, 0.13, 0.6, 2.0])
    d.program(g, np.zeros(4), np.random.default_rng(0))
    assert g.tolist() == [0.0, 0.25, 0.5, 1.0]
    d = devices(DeviceConfig(levels=5, stochastic_rounding=True), 0.0, 1.0, n=200_000)
    g = np.full(200_000, 0.3)  # between 0.25 and 0.5, 20 % of the way: up with probability 0.2
    d.program(g, np.zeros(len(g)), np.random.default_rng(1))
    assert set(np.unique(g).tolist()) == {0.25, 0.5}
    assert g.mean() == pytest.approx(0.3, abs=4 * 0.25 * np.sqrt(0.16 / len(g)))  # unbiased, 4 sigma


def test_a_models_initial_weights_round_without_bias():
    # the model draws its weights from default_rng(seed), the trainer its device draws from another stream:
    # were they the same, every weight drawn high would meet a high rounding draw and round down (all to 0)
    from resnet_sim.train.datasets import training_data
    from resnet_sim.train.trainer import TrainConfig, Trainer

    gmax = 3.0 / np.sqrt(784)  # 4 levels: 0, 1/√784, ... ; initial weights are uniform in [0, 1/√784]
    model = rs.models.drn((200,), seed=0, input_gain=1.0, gmax=(gmax, 1.0))
    first = slice(0, 2 * 784 * 200)
    before = model.theta[first].astype(np.float64)
    data = training_data(dict(x_train=np.zeros((4, 784)), y_train=np.arange(4)), 784, 10)
    config = TrainConfig(epochs=1, seed=0, devices=DeviceConfig(levels=4, stochastic_rounding=True))
    Trainer(model, data, config, progress=False)._start(resume=False)
    after = model.theta[first].astype(np.float64)
    assert set(np.unique(after).round(12)) == {0.0, round(gmax / 3, 12)}
    sigma = np.sqrt(np.sum((before / (gmax / 3)) * (1 - before / (gmax / 3)))) * gmax / 3  # of the sum
    assert abs(after.sum() - before.sum()) <= 4 * sigma


def test_soft_bounds_shrink_steps_towards_the_bound_they_approach():
    d = devices(DeviceConfig(soft_bounds=True), 0.0, 1.0)
    old = np.array([0.9, 0.9, 0.1, 0.1])
    g = old + np.array([0.1, -0.1, 0.1, -0.1])
    d.program(g, old, np.random.default_rng(0))
    # up: 0.1 (1 - g); down: 0.1 g
    assert (g - old).tolist() == pytest.approx([0.1 * 0.1, -0.1 * 0.9, 0.1 * 0.9, -0.1 * 0.1], rel=1e-12)


def test_programming_noise_is_multiplicative_and_only_on_programmed_devices():
    n = 100_000
    d = devices(DeviceConfig(program_noise=0.05), 0.0, 10.0, n=n)
    old = np.full(n, 1.0)
    g = old.copy()
    g[: n // 2] = 2.0  # the first half is programmed to 2, the rest asked to stay
    d.program(g, old, np.random.default_rng(3))
    assert np.all(g[n // 2:] == 1.0)
    ratio = g[: n // 2] / 2.0 - 1.0
    assert abs(ratio.mean()) < 4 * 0.05 / np.sqrt(n / 2) and ratio.std() == pytest.approx(0.05, rel=0.02)


def test_device_to_device_bounds_are_drawn_once_and_kept():
    rng = np.random.default_rng(5)
    d = Devices(DeviceConfig(variability=0.2), np.full(1000, 0.1), np.full(1000, 1.0), rng)
    assert np.std(np.log(d.upper)) == pytest.approx(0.2, rel=0.1) and np.all(d.upper >= d.lower)
    g = np.full(1000, 5.0)
    d.program(g, None, rng)
    assert np.array_equal(g, d.upper)
    again = Devices(DeviceConfig(variability=0.2), np.full(1000, 0.1), np.full(1000, 1.0), np.random.default_rng(9))
    again.load_state(d.state())
    assert np.array_equal(again.upper, d.upper) and np.array_equal(again.lower, d.lower)


def test_measured_update_table(tmp_path):
    csv = tmp_path / "pulses.csv"
    csv.write_text("conductance,up,down\n0.0,0.1,-0.05\n1.0,0.02,-0.2\n")
    table = UpdateTable.from_csv(csv)
    d = devices(DeviceConfig(table=table), 0.0, 1.0, n=3)
    old = np.array([0.0, 0.5, 0.5])
    g = old + np.array([0.25, -0.3, 0.01])
    d.program(g, old, np.random.default_rng(0))
    # device 0: asks +0.25 at a 0.1 S step: 2 pulses, 0 -> 0.1 (step 0.1) -> 0.192 (step 0.1 - 0.08 * 0.1)
    # device 1: asks -0.3 at a -0.125 S step: 2 pulses, 0.5 -> 0.375 -> 0.375 - (0.05 + 0.15 * 0.375)
    # device 2: +0.01 is less than half a 0.06 S pulse: none
    assert g.tolist() == pytest.approx([0.192, 0.375 - (0.05 + 0.15 * 0.375), 0.5], rel=1e-12)
    bad = tmp_path / "bad.csv"
    bad.write_text("g,up,down\n0.0,0.1,0.05\n1.0,0.1,-0.1\n")
    with pytest.raises(ValueError, match="bad.csv: an update table's potentiating steps must be > 0 and its depressing"):
        UpdateTable.from_csv(bad)
    bad.write_text("g,up\n0.0,0.1\n")
    with pytest.raises(ValueError, match="needs three columns"):
        UpdateTable.from_csv(bad)


def test_models_that_need_gmax_say_which_card_has_none():
    with pytest.raises(ValueError, match=r"soft bounds: every .trainable card that matches resistors needs gmax= "
                                         r"\(card 'r\*' has none\)"):
        Devices(DeviceConfig(soft_bounds=True), np.zeros(2), np.array([1.0, np.inf]), np.random.default_rng(0),
                label=lambda i: "card 'r*'")
