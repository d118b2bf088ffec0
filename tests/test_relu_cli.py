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


def test_models_beyond_double_precision_or_ambiguous_are_refused_in_one_line(tmp_path, capsys):
    import h5py

    W0, b0, W1, b1 = np.array([[1.0, -2], [-1, 1]]), np.array([0.5, -1]), np.array([[2.0, -3]]), np.array([0.25])
    np.savez(tmp_path / "tiny.npz", W0=np.array([[1e-310]]), b0=np.zeros(1))  # 1 / (1e-3 * 1e-310) = inf ohm
    np.savez(tmp_path / "huge.npz", W0=np.array([[1e308, 1e308]]), b0=np.zeros(1), W1=np.ones((1, 1)), b1=np.zeros(1))
    np.savez(tmp_path / "zeros.npz", W0=W0, b0=b0, W01=W1, b1=b1)
    np.savez(tmp_path / "complex.npz", W0=W0 + 1j, b0=b0, W1=W1, b1=b1)
    np.savez(tmp_path / "deep.npz", **{f"{a}{k}": np.ones((1, 1)) if a == "W" else np.zeros(1)
                                       for k in range(3) for a in "Wb"})
    with h5py.File(tmp_path / "null.h5", "w") as f:
        f["W0"] = np.ones((1, 2))
        f.create_dataset("b0", dtype="f8")  # a null dataspace
    cases = [(["tiny.npz"], "tiny.npz: the weights at unit 0.001 S need a resistance of inf"),
             (["huge.npz"], "huge.npz: the weights at unit 0.001 S need an amplifier gain of inf"),
             (["zeros.npz"], "zeros.npz: array W01: layers are numbered without leading zeros"),
             (["complex.npz"], "complex.npz: W0 and b0 must be real numeric arrays"),
             (["deep.npz", "--mode", "minimal", "--gain", "1e160"], "deep.npz: gain 1e+160 over 3 layers"),
             (["null.h5"], "null.h5: b0 must have shape (1,)")]
    (tmp_path / "net.cir").write_text("kept\n")
    for args, message in cases:
        assert main(["compile-relu", str(tmp_path / args[0]), *args[1:], "-o", str(tmp_path / "net.cir")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert (tmp_path / "net.cir").read_text() == "kept\n"  # a refused model leaves the output alone


def test_hdf5_model_with_a_dangling_link_compiles(tmp_path, capsys):
    import h5py

    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["W0"], f["b0"] = np.array([[1.0, -2.0]]), np.array([0.5])
        f["lnk"] = h5py.SoftLink("/nothing")
    assert main(["compile-relu", str(tmp_path / "link.h5"), "-o", str(tmp_path / "net.cir")]) == 0
    capsys.readouterr()
    np.save(tmp_path / "x.npy", np.array([[1.0, -1.0]]))
    assert op_outputs(capsys, tmp_path / "net.cir", tmp_path / "x.npy")[0, 0] == pytest.approx(1.0 + 2.0 + 0.5)  # W0 x + b0
