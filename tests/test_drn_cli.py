"""`resnet-sim drn` and `resnet-sim demo`: a short run on a data folder made from the shipped sample, its
files and resumption, and bad input (one line, exit status 2, nothing written over)."""

import json

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim.cli import main
from resnet_sim.data import load_sample
from resnet_sim.train import checkpoint
from test_data import write_idx


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """An IDX folder (mnist/) of the shipped sample: 2000 training and 500 test images."""
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = load_sample(split)
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte", np.rint(x * 255).astype(np.uint8).reshape(-1, 28, 28))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8))
    return root


def drn(*args):
    return main(["drn", *map(str, args), "--quiet"])


def test_a_short_drn_run_writes_its_files_and_resumes(mnist_folder, tmp_path, capsys):
    common = ("--arch", "xs", "--data", mnist_folder, "--train-subset", 400, "--dtype", "float64")
    assert drn(*common, "--out", tmp_path / "whole", "--epochs", 2, "--netlist") == 0
    out = capsys.readouterr().out
    assert "epoch 2: train_loss" in out and "sweeps_per_phase" in out
    run = tmp_path / "whole"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.h5", "curves.png", "metrics.json", "trained.cir"]
    history = json.loads((run / "metrics.json").read_text())["epochs"]
    assert history[-1]["test_error"] < 0.5  # 800 examples seen: well above chance (0.9)
    assert drn(*common, "--out", tmp_path / "parts", "--epochs", 1) == 0
    assert drn(*common, "--out", tmp_path / "parts", "--epochs", 2, "--resume") == 0
    whole, parts = (checkpoint.load(tmp_path / r / "checkpoint.h5") for r in ("whole", "parts"))
    assert np.array_equal(whole["theta"], parts["theta"])
    # the written netlist holds the trained parameters, and the general path agrees with the fast path
    c = rs.read_netlist(run / "trained.cir")
    p = rs.compile(c)
    assert rs.train.parameters(p) == pytest.approx(whole["theta"], rel=1e-15)
    model = rs.models.drn("xs")
    model.set_theta(whole["theta"])
    images = load_sample("test")[0][:3]
    op = rs.solve(p, inputs=model.source_values(images))
    assert np.abs(op.outputs - model.outputs(model.free(images))).max() < 1e-6


def test_the_demo_prints_the_accuracy_it_reached(tmp_path, capsys):
    assert main(["demo", "--epochs", "1", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("test accuracy after 1 epochs: ")
    assert float(line.split(": ")[1].rstrip("%")) > 70  # one epoch of 2000 images


def one_line_error(capsys, *args, expect):
    code = main(["drn", *map(str, args), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err


def test_bad_input_is_one_line_exit_2(mnist_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RESNET_SIM_DATA", raising=False)
    run = tmp_path / "run"
    one_line_error(capsys, "--arch", "xs", "--out", run, expect="no data folder: pass folder= (--data on the command")
    one_line_error(capsys, "--arch", "xs", "--data", tmp_path / "nowhere", "--out", run, expect="does not exist")
    one_line_error(capsys, "--arch", "xxs", "--data", mnist_folder, "--out", run, expect="invalid choice: 'xxs'")
    one_line_error(capsys, "--arch", "xs", "--dataset", "cifar", "--data", mnist_folder, "--out", run,
                   expect="invalid choice: 'cifar'")
    one_line_error(capsys, "--arch", "xs", "--data", mnist_folder, "--out", run, "--train-subset", 2001,
                   expect="--train-subset must be in [1, 2000]")
    corrupt = tmp_path / "corrupt"
    (corrupt / "mnist").mkdir(parents=True)
    for f in (mnist_folder / "mnist").iterdir():
        (corrupt / "mnist" / f.name).write_bytes(f.read_bytes()[:-7])
    one_line_error(capsys, "--arch", "xs", "--data", corrupt, "--out", run, expect="need")
    one_line_error(capsys, "--arch", "xs", "--dataset", "fashion-mnist", "--data", mnist_folder, "--out", run,
                   expect="fashion-mnist: none of")
    assert not run.exists()
    assert drn("--arch", "xs", "--data", mnist_folder, "--train-subset", 40, "--out", run, "--epochs", 1) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    one_line_error(capsys, "--arch", "1h", "--data", mnist_folder, "--train-subset", 40, "--out", run, "--epochs", 2,
                   "--resume", expect="cannot resume: the checkpoint's run used another model")
    one_line_error(capsys, "--arch", "xs", "--data", mnist_folder, "--train-subset", 40, "--out", run, "--epochs", 2,
                   expect="already holds a training run")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("family, extra", [("hopfield", ()), ("pcn", ()), ("pcn", ("--estimator", "il"))])
def test_hopfield_and_pcn_commands_train_and_resume(mnist_folder, tmp_path, family, extra):
    common = [family, "--arch", "1h", "--data", str(mnist_folder), "--train-subset", "300", "--quiet", *extra]
    assert main([*common, "--out", str(tmp_path / "a"), "--epochs", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--epochs", "1"]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--epochs", "2", "--resume"]) == 0
    a, b = (checkpoint.load(tmp_path / r / "checkpoint.h5") for r in ("a", "b"))
    assert np.array_equal(a["theta"], b["theta"])
    history = json.loads((tmp_path / "a" / "metrics.json").read_text())["epochs"]
    assert history[-1]["test_error"] < 0.6


def test_inference_learning_needs_a_clamped_phase(mnist_folder, tmp_path, capsys):
    one_line_error(capsys, "--arch", "xs", "--data", mnist_folder, "--train-subset", 40, "--out", tmp_path / "r",
                   "--estimator", "il", "--epochs", 1,
                   expect="inference learning needs a model with a clamped phase (a PCN), not a DRN")
    assert not (tmp_path / "r").exists()
