"""The training examples run as a user copies them and learn what they claim."""

import runpy
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name, *argv):
    return runpy.run_path(str(EXAMPLES / name))["main"](list(argv))


def test_train_xor_example_learns_xor(capsys):
    trained, history = run("train_xor.py")
    assert history[-1]["test_error"] == 0.0
    assert "x = [1, 1]" in capsys.readouterr().out


def test_fit_abs_example_reaches_its_rms_error(capsys):
    trained, history = run("fit_abs.py", "--epochs", "10")
    assert np.sqrt(2 * history[-1]["test_loss"]) <= 0.02
    assert "test RMS error" in capsys.readouterr().out
