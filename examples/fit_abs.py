"""Fit y = |x| with the diode network netlists/abs.cir (regression with equilibrium propagation).

    python examples/fit_abs.py [--epochs N]

Prints the test RMS error (volts) per epoch and a few points of the fitted curve.
"""

import argparse
from pathlib import Path

import numpy as np

import resnet_sim as rs

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    circuit = rs.read_netlist(ROOT / "netlists" / "abs.cir")
    trained, history = rs.train.fit(circuit, ROOT / "netlists" / "abs.npz", epochs=args.epochs)
    for record in history:  # loss = mean of (y_hat - y)^2 / 2 over the test points
        print(f"epoch {record['epoch']:2d}: test RMS error {np.sqrt(2 * record['test_loss']):.4f} V")
    x = np.linspace(-1, 1, 5)[:, None]
    for xi, yi in zip(x[:, 0], rs.solve(trained, inputs=x).outputs[:, 0]):
        print(f"x = {xi:+.2f} V: y = {yi:.4f} V (|x| = {abs(xi):.2f} V)")
    return trained, history


if __name__ == "__main__":
    main()
