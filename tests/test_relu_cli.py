"""``resnet-sim compile-relu`` then ``resnet-sim op --inputs --json``: the netlist computes the network."""

import json
import subprocess
import sys

import numpy as np
import pytest

from resnet_sim.cli import main
from resnet_sim.relu_compiler import forward, relative_error


def save_network(path, sizes, seed):
    rng = np.random.default_rng(seed)
    arrays = {}
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        arrays[f"W{k}"] = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_out, n_in))
        arrays[f"b{k}"] = rng.normal(0.0, 0.5, n_out)
    np.savez(path, **arrays)
    n = len(sizes) - 1
    return [arrays[f"W{k}"] for k in range(n)], [arrays[f"b{k}"] for k in range(n)]


def op_outputs(capsys, netlist, inputs):
    assert main(["op", str(netlist), "--inputs", str(inputs), "--json"]) == 0
    return np.array(json.loads(capsys.readouterr().out)["outputs"])


def test_round_trip_exact(tmp_path, capsys):
    weights, biases = save_network(tmp_path / "model.npz", [5, 16, 8, 3], seed=7)
    assert main(["compile-relu", str(tmp_path / "model.npz"), "-o", str(tmp_path / "net.cir")]) == 0
    report = capsys.readouterr().out
    assert "layer 0" in report and "layer 2" in report and "total" in report
    x = np.random.default_rng(0).normal(size=(20, 5))
    np.save(tmp_path / "x.npy", x)
    y = op_outputs(capsys, tmp_path / "net.cir", tmp_path / "x.npy")
    assert y.shape == (20, 3)
    assert relative_error(y, forward(weights, biases, x)) <= 1e-7


def test_round_trip_minimal_gain(tmp_path, capsys):
    weights, biases = save_network(tmp_path / "model.npz", [4, 8, 2], seed=8)
    x = np.random.default_rng(1).normal(size=(10, 4))
    np.save(tmp_path / "x.npy", x)
    errors = []
    for gain in ("10", "1000"):
        assert main(["compile-relu", str(tmp_path / "model.npz"), "-o", str(tmp_path / "net.cir"),
                     "--mode", "minimal", "--gain", gain]) == 0
        capsys.readouterr()
        errors.append(relative_error(op_outputs(capsys, tmp_path / "net.cir", tmp_path / "x.npy"),
                                     forward(weights, biases, x)))
    assert errors[1] < errors[0] / 10


def test_errors_one_line_exit_2(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", W0=np.ones((2, 3)), b0=np.ones(3))
    cases = [
        ([str(tmp_path / "missing.npz")], "missing.npz: no such file"),
        ([str(tmp_path / "bad.npz")], r"bad.npz: b0 must have shape (2,)"),
    ]
    save_network(tmp_path / "ok.npz", [2, 2], seed=0)
    cases.append(([str(tmp_path / "ok.npz"), "--gain", "5"], "ok.npz: gain applies only to mode='minimal'"))
    for args, message in cases:
        assert main(["compile-relu", *args, "-o", str(tmp_path / "net.cir")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


@pytest.mark.slow
def test_console_script(tmp_path):
    """The installed ``resnet-sim`` entry point, as a user runs it."""
    save_network(tmp_path / "model.npz", [3, 4, 2], seed=3)
    cmd = [sys.executable, "-m", "resnet_sim.cli", "compile-relu", str(tmp_path / "model.npz"),
           "-o", str(tmp_path / "net.cir"), "--mode", "minimal"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "wrote" in out and "total" in out
    assert (tmp_path / "net.cir").read_text().count("\n") > 10
