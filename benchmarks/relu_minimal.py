"""Minimal-mode ReLU circuits: approximation error as a function of the gain (layer conductance ratio).

    python benchmarks/relu_minimal.py            # full run (about 5 s here)
    python benchmarks/relu_minimal.py --quick    # three gains, small networks
    python benchmarks/relu_minimal.py --mnist-test ../shared/data   # also all 10,000 MNIST test images

For random networks of depth 2-4 (64 wide, inputs N(0, 1)) and the trained MNIST network of
tests/data/mnist_mlp.npz on the 200 MNIST images shipped with the package, each gain's minimal-mode circuit
is solved with ``rs.solve`` and compared with the numpy forward pass:
relative error = max |y_circuit - y_network| / max(1, max |y_network|), plus the argmax agreement.
Writes benchmarks/results/relu_minimal.csv and docs/figures/relu_minimal_error.png, and prints the amplifier
(VCVS) counts of both modes.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

import resnet_sim as rs
from resnet_sim.data import load_sample
from resnet_sim.relu_compiler import compile_relu, element_report, forward, load_model, relative_error

ROOT = Path(__file__).resolve().parents[1]
CSV_PATH = ROOT / "benchmarks" / "results" / "relu_minimal.csv"
PNG_PATH = ROOT / "docs" / "figures" / "relu_minimal_error.png"


def random_case(sizes, seed, n_samples=200):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.0, 1.0 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0.0, 0.5, b) for b in sizes[1:]]
    return weights, biases, rng.normal(size=(n_samples, sizes[0]))


def cases(quick: bool):
    width = 16 if quick else 64
    for depth in (2, 3, 4):
        sizes = [16] + [width] * (depth - 1) + [4]
        yield "random " + "-".join(map(str, sizes)), *random_case(sizes, seed=depth)
    if not quick:
        weights, biases = load_model(ROOT / "tests" / "data" / "mnist_mlp.npz")
        yield "MNIST 784-64-10 (200 images)", weights, biases, load_sample()[0][:200].astype(np.float64)


def measure(gains, quick):
    rows, counts = [], []
    for name, weights, biases, x in cases(quick):
        y_net = forward(weights, biases, x)
        amps = {m: element_report(compile_relu(weights, biases, m))["total"]["E"] for m in ("exact", "minimal")}
        counts.append((name, amps["exact"], amps["minimal"]))
        for gain in gains:
            op = rs.solve(compile_relu(weights, biases, "minimal", gain=gain), inputs=x)
            err = relative_error(op.outputs, y_net)
            agree = float(np.mean(op.outputs.argmax(axis=1) == y_net.argmax(axis=1)))
            rows.append({"network": name, "gain": gain, "relative_error": err, "argmax_agreement": agree,
                         "converged": bool(op.converged)})
            print(f"{name:32s} gain {gain:8.0e}  error {err:.3e}  argmax agreement {agree:.3f}", flush=True)
    return rows, counts


def mnist_test(folder, gains=(1e2, 1e3, 1e4), batch=2500):
    """The trained MNIST network's minimal-mode circuit on all 10,000 MNIST test images (IDX files under
    ``folder``): relative error and argmax agreement per gain, printed."""
    from resnet_sim.data import load_dataset

    weights, biases = load_model(ROOT / "tests" / "data" / "mnist_mlp.npz")
    x = load_dataset("mnist", "test", folder=folder)[0].astype(np.float64)
    y_net = forward(weights, biases, x)
    for gain in gains:
        problem = rs.compile(compile_relu(weights, biases, "minimal", gain=gain))
        y = np.concatenate([rs.solve(problem, inputs=x[s:s + batch]).outputs for s in range(0, len(x), batch)])
        agree = float(np.mean(y.argmax(axis=1) == y_net.argmax(axis=1)))
        print(f"MNIST 784-64-10, {len(x)} test images  gain {gain:8.0e}  error {relative_error(y, y_net):.3e}  "
              f"argmax agreement {agree:.4%}", flush=True)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["network"] for r in rows):
        sel = [r for r in rows if r["network"] == name]
        g = [r["gain"] for r in sel]
        ax1.loglog(g, [r["relative_error"] for r in sel], "o-", label=name)
        ax2.semilogx(g, [r["argmax_agreement"] for r in sel], "o-", label=name)
    g = np.array(sorted({r["gain"] for r in rows}))
    ax1.loglog(g, 1.0 / g, "k--", lw=0.8, label="1 / gain")
    ax1.set(xlabel="gain (conductance ratio between layers)", ylabel="max relative error",
            title="minimal mode: error vs gain")
    ax2.set(xlabel="gain", ylabel="argmax agreement with the network", title="same argmax as the network")
    ax1.legend(fontsize=7)
    ax1.grid(True, which="major", alpha=0.3)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="three gains, 16-wide networks, no MNIST")
    ap.add_argument("--csv", type=Path, default=CSV_PATH)
    ap.add_argument("--png", type=Path, default=PNG_PATH)
    ap.add_argument("--mnist-test", type=Path, metavar="DATA",
                    help="folder with the MNIST IDX files: also solve all 10,000 test images at gains 1e2, 1e3, 1e4")
    args = ap.parse_args(argv)
    gains = [10.0, 1e3, 1e5] if args.quick else [10.0**k for k in np.arange(0, 6.5, 0.5)]
    rows, counts = measure(gains, args.quick)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.png)
    print("\namplifiers (VCVS): network, exact mode, minimal mode")
    for name, exact, minimal in counts:
        print(f"  {name:32s} {exact:6d} {minimal:6d}")
    print(f"wrote {args.csv} and {args.png}")
    if args.mnist_test:
        mnist_test(args.mnist_test)


if __name__ == "__main__":
    main()
