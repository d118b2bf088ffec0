"""Train netlists/xor.cir to compute XOR with equilibrium propagation, from Python, and check the trained
netlist on its own.

    python examples/train_xor.py [--out RUNDIR]

Prints the test error per epoch and the trained circuit's outputs on the four corners.
"""

import argparse
from pathlib import Path

import numpy as np

import resnet_sim as rs

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write the run's files (metrics.json, ...) here")
    args = parser.parse_args(argv)
    circuit = rs.read_netlist(ROOT / "netlists" / "xor.cir")
    trained, history = rs.train.fit(circuit, ROOT / "netlists" / "xor.npz", epochs=10, out=args.out)
    for record in history:
        print(f"epoch {record['epoch']:2d}: test error {record['test_error']:.0%}, test loss {record['test_loss']:.4f} V^2")
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    op = rs.solve(trained, inputs=corners)
    for x, v in zip(corners, op.outputs):
        print(f"x = {x.astype(int).tolist()}: o0 = {v[0]:+.3f} V, o1 = {v[1]:+.3f} V -> class {int(np.argmax(v))}")
    return trained, history


if __name__ == "__main__":
    main()
