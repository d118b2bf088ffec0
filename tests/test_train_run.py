"""The trainer end to end: `resnet-sim train` learns XOR and |x| from the shipped netlists, writes its four
files, resumes bit for bit (after a clean stop, a kill in the middle of a checkpoint write, and a SIGKILL at
an arbitrary moment), refuses bad input in one line with exit status 2 without writing anything, and the
trained XOR netlist classifies the same way in ngspice."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.cli import main
from resnet_sim.train import checkpoint

ROOT = Path(__file__).resolve().parents[1]
XOR, XOR_DATA = ROOT / "netlists" / "xor.cir", ROOT / "netlists" / "xor.npz"
ABS, ABS_DATA = ROOT / "netlists" / "abs.cir", ROOT / "netlists" / "abs.npz"
CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)


def train(*args):
    return main(["train", *map(str, args), "--quiet"])


def metrics(run):
    """The epoch records without their wall times."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((run / "metrics.json").read_text())["epochs"]]


def test_xor_learns_with_the_default_options_and_writes_its_four_files(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(XOR, "--data", XOR_DATA, "--out", run) == 0
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.h5", "curves.png", "metrics.json", "trained.cir"]
    history = metrics(run)
    assert [r["epoch"] for r in history] == list(range(1, 11))
    assert set(history[0]) == {"epoch", "train_loss", "train_error", "test_loss", "test_error", "sweeps_per_phase"}
    assert history[-1]["test_error"] == 0.0 and history[-1]["test_loss"] < 0.5 * history[0]["test_loss"]
    assert "epoch 10: train_loss" in capsys.readouterr().out
    # trained.cir runs on its own and classifies the four corners as XOR
    op = rs.solve(rs.read_netlist(run / "trained.cir"), inputs=CORNERS)
    assert op.converged and np.argmax(op.outputs, axis=1).tolist() == [0, 1, 1, 0]
    # its conductances are the checkpoint's theta
    theta = checkpoint.load(run / "checkpoint.h5")["theta"]
    assert rs.train.parameters(rs.compile(rs.read_netlist(run / "trained.cir"))) == pytest.approx(theta, rel=1e-15)


@pytest.mark.ngspice
def test_trained_xor_classifies_the_same_in_ngspice(ngspice, tmp_path):
    run = tmp_path / "run"
    assert train(XOR, "--data", XOR_DATA, "--out", run) == 0
    c = rs.read_netlist(run / "trained.cir")
    ours = rs.solve(c, inputs=CORNERS).outputs
    theirs = []
    inputs = [c["V"].names.tolist().index(name) for name in c.inputs]
    for x in CORNERS:
        values = c["V"].value.copy()
        values[inputs] = x
        c["V"].value = values
        result = rs.spice.simulate(c, ngspice=ngspice)
        theirs.append([result.voltages["o0"], result.voltages["o1"]])
    theirs = np.array(theirs)
    assert np.argmax(theirs, axis=1).tolist() == np.argmax(ours, axis=1).tolist() == [0, 1, 1, 0]
    assert np.abs(theirs - ours).max() < 1e-4  # the near-ideal diode's own error


def test_abs_regression_reaches_its_stated_rms_error(tmp_path):
    run = tmp_path / "run"
    assert train(ABS, "--data", ABS_DATA, "--out", run) == 0
    rms = np.sqrt(2 * metrics(run)[-1]["test_loss"])  # loss = mean of (y_hat - y)^2 / 2, one output
    assert rms <= 0.02
    c = rs.read_netlist(run / "trained.cir")
    x = np.linspace(-1, 1, 9)[:, None]
    assert np.abs(rs.solve(c, inputs=x).outputs - np.abs(x)).max() <= 0.05


DEVICE_OPTIONS = ("--momentum", "0.5", "--program-noise", "0.01", "--levels", "256", "--stochastic-rounding",
                  "--variability", "0.05", "--init-jitter", "0.3")
DEVICE_NETLIST = XOR.read_text().replace(".trainable r* ib*", ".trainable r* gmax=0.2\n.trainable ib*")


def test_resume_continues_bit_for_bit(tmp_path):
    netlist = tmp_path / "xor_devices.cir"
    netlist.write_text(DEVICE_NETLIST)
    common = (netlist, "--data", XOR_DATA, *DEVICE_OPTIONS)
    assert train(*common, "--out", tmp_path / "whole", "--epochs", 3) == 0
    assert train(*common, "--out", tmp_path / "parts", "--epochs", 1) == 0
    assert train(*common, "--out", tmp_path / "parts", "--epochs", 3, "--resume") == 0
    whole, parts = (checkpoint.load(tmp_path / r / "checkpoint.h5") for r in ("whole", "parts"))
    assert np.array_equal(whole["theta"], parts["theta"])
    assert np.array_equal(whole["theta_per_epoch"], parts["theta_per_epoch"]) and len(whole["theta_per_epoch"]) == 4
    assert whole["arrays"].keys() == parts["arrays"].keys()
    for key in whole["arrays"]:
        assert np.array_equal(whole["arrays"][key], parts["arrays"][key]), key
    assert metrics(tmp_path / "whole") == metrics(tmp_path / "parts")
    # the device models acted: 256 levels between per-device bounds, the first epoch's noise moved theta
    assert not np.array_equal(whole["theta_per_epoch"][1], whole["theta_per_epoch"][2])
    assert (tmp_path / "whole" / "trained.cir").read_text() == (tmp_path / "parts" / "trained.cir").read_text()
    # asking for fewer epochs than done changes nothing
    before = (tmp_path / "parts" / "checkpoint.h5").read_bytes()
    assert train(*common, "--out", tmp_path / "parts", "--epochs", 2, "--resume") == 0
    assert (tmp_path / "parts" / "checkpoint.h5").read_bytes() == before


KILL_DURING_CHECKPOINT = """
import os, signal, sys
from contextlib import contextmanager
import resnet_sim.train.checkpoint as ck
from resnet_sim.cli import main

original, writes = ck.atomic_path, []

@contextmanager
def dies_while_writing(path):
    with original(path) as tmp:
        yield tmp
        writes.append(path)
        if len(writes) == int(os.environ["KILL_AT"]):
            with open(tmp, "r+b") as f:
                f.truncate(os.path.getsize(tmp) // 2)  # the write is half done
            os.kill(os.getpid(), signal.SIGKILL)

ck.atomic_path = dies_while_writing
sys.exit(main(sys.argv[1:]))
"""


def test_a_kill_in_the_middle_of_a_checkpoint_write_loses_only_that_epoch(tmp_path):
    netlist = tmp_path / "xor_devices.cir"
    netlist.write_text(DEVICE_NETLIST)
    common = [str(netlist), "--data", str(XOR_DATA), *DEVICE_OPTIONS, "--quiet"]
    run = tmp_path / "run"
    script = tmp_path / "kill.py"
    script.write_text(KILL_DURING_CHECKPOINT)
    done = subprocess.run([sys.executable, str(script), "train", *common, "--out", str(run), "--epochs", "3"],
                          env={**os.environ, "KILL_AT": "2"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.h5.")
    assert len(checkpoint.load(run / "checkpoint.h5")["attrs"]["history"]) == 1  # epoch 1's, intact
    assert train(*common, "--out", run, "--epochs", 3, "--resume") == 0
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert train(*common, "--out", tmp_path / "whole", "--epochs", 3) == 0
    assert np.array_equal(checkpoint.load(run / "checkpoint.h5")["theta"],
                          checkpoint.load(tmp_path / "whole" / "checkpoint.h5")["theta"])
    assert metrics(run) == metrics(tmp_path / "whole")


def test_a_sigkill_at_any_moment_then_resume_matches_an_uninterrupted_run(tmp_path):
    common = [str(XOR), "--data", str(XOR_DATA), "--quiet", "--epochs", "4"]
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "resnet_sim.cli", "train", *common, "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "metrics.json").exists():
        time.sleep(0.01)
    time.sleep(0.2)  # somewhere in epoch 2 or later, possibly inside a write
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert train(*common, "--out", run, "--resume") == 0
    assert train(*common, "--out", tmp_path / "whole") == 0
    assert np.array_equal(checkpoint.load(run / "checkpoint.h5")["theta"],
                          checkpoint.load(tmp_path / "whole" / "checkpoint.h5")["theta"])
    assert metrics(run) == metrics(tmp_path / "whole")


def one_line_error(capsys, *args, expect):
    code = main(["train", *map(str, args), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err
    return err


def write_data(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    good = dict(x_train=CORNERS, y_train=np.array([0, 1, 1, 0]))
    bare = tmp_path / "bare.cir"
    bare.write_text("t\nv1 a 0 1\nr1 a b 1k\nr2 b 0 1k\n.inputs v1\n.outputs b\n")
    cases = [
        ((bare, "--data", XOR_DATA), "no element matches a .trainable card"),
        ((ROOT / "netlists" / "divider.cir", "--data", XOR_DATA), "the circuit has no .inputs and no .outputs"),
        ((XOR, "--data", write_data(tmp_path / "shape.npz", x_train=np.ones((4, 3)), y_train=good["y_train"])),
         "x_train must have shape (n, 2)"),
        ((XOR, "--data", write_data(tmp_path / "nan.npz", x_train=np.where(CORNERS > 0, np.nan, 0), y_train=good["y_train"])),
         "x_train holds NaN or inf"),
        ((XOR, "--data", write_data(tmp_path / "label.npz", x_train=CORNERS, y_train=np.array([0, 1, 2, 0]))),
         "y_train holds label 2, outside [0, 2)"),
        ((XOR, "--data", write_data(tmp_path / "targets.npz", x_train=CORNERS, y_train=np.ones((4, 3)))),
         "y_train must be integer labels (n,) or target voltages (n, 2)"),
        ((XOR, "--data", write_data(tmp_path / "nox.npz", y_train=good["y_train"])), "no 'x_train' array"),
        ((XOR, "--data", tmp_path / "missing.npz"), "missing.npz: no such file"),
        ((XOR, "--data", bare), "not a readable .npz archive"),
        ((XOR, "--data", XOR_DATA, "--lr", "0"), "learning rate must be a finite number > 0"),
        ((XOR, "--data", XOR_DATA, "--lr", "-1"), "learning rate must be a finite number > 0"),
        ((XOR, "--data", XOR_DATA, "--beta", "0"), "beta must be a finite conductance > 0"),
        ((XOR, "--data", XOR_DATA, "--beta", "-0.1"), "beta must be a finite conductance > 0"),
        ((XOR, "--data", XOR_DATA, "--variant", "sideways"), "unknown EP variant 'sideways'"),
        ((XOR, "--data", XOR_DATA, "--levels", "16"), "quantised levels: every .trainable card that matches resistors needs gmax="),
        ((XOR, "--data", XOR_DATA, "--epochs", "0"), "epochs must be >= 1"),
        ((XOR, "--data", XOR_DATA, "--beta", "1"), "beta = -1 S makes the nudged energy non-convex"),
    ]
    for args, expect in cases:
        one_line_error(capsys, *args, "--out", run, expect=expect)
        assert not run.exists(), expect


def test_resume_refuses_another_netlist_data_or_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(XOR, "--data", XOR_DATA, "--out", run, "--epochs", 1) == 0
    files = {p.name: p.read_bytes() for p in run.iterdir()}
    other = tmp_path / "other.cir"
    other.write_text(XOR.read_text().replace("VP p 0 1", "VP p 0 0.9"))
    data = write_data(tmp_path / "d.npz", x_train=CORNERS, y_train=np.array([0, 1, 1, 0]))
    one_line_error(capsys, XOR, "--data", XOR_DATA, "--out", run, expect="already holds a training run")
    one_line_error(capsys, other, "--data", XOR_DATA, "--out", run, "--resume",
                   expect="cannot resume: the checkpoint's run used another model (netlist)")
    one_line_error(capsys, XOR, "--data", data, "--out", run, "--resume", expect="used other data")
    one_line_error(capsys, XOR, "--data", XOR_DATA, "--out", run, "--resume", "--lr", "0.02",
                   expect="used other options (lr was 0.01, now 0.02)")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == files
    truncated = run / "checkpoint.h5"
    truncated.write_bytes(files["checkpoint.h5"][:1000])
    one_line_error(capsys, XOR, "--data", XOR_DATA, "--out", run, "--resume", expect="unreadable or truncated checkpoint")
    truncated.write_bytes(b"not hdf5 at all")
    one_line_error(capsys, XOR, "--data", XOR_DATA, "--out", run, "--resume", expect="unreadable or truncated checkpoint")
    one_line_error(capsys, XOR, "--data", XOR_DATA, "--out", tmp_path / "new", "--resume",
                   expect="no checkpoint to resume from")
