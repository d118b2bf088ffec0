"""DRN-XS test error against the trainer's device models: quantised conductance levels and programming noise.

    python benchmarks/devices.py [--epochs 3] [--levels 4,8,16,32,64,128,256] [--noise 0,0.01,0.02,0.05,0.1]
                                 [--gmax 0.25 0.7] [--data ../shared/data]

Every point is one `resnet-sim drn --arch xs` run on MNIST (preset hyper-parameters, float32, seed 0) with
the device model on during training (docs/training.md section 5): quantised levels use stochastic rounding
between 0 and the per-layer gmax (a trained DRN-XS's largest conductances are about 0.23 S in the first
layer and 0.63 S in the second), programming noise multiplies each programmed conductance by (1 + σ ξ).
The reference point is the same run with ideal devices. Writes benchmarks/results/devices.{json,md} and
docs/figures/drn_devices.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(common: list[str], extra: list[str]) -> dict:
    """Final epoch record of one `resnet-sim drn` run with ``extra`` options, and its wall time."""
    from resnet_sim.cli import main

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        code = main(["drn", *common, "--out", out, *extra])
        if code:
            raise SystemExit(f"resnet-sim drn failed ({code}) with {extra}")
        record = json.loads((Path(out) / "metrics.json").read_text())["epochs"][-1]
    return {**record, "wall": time.perf_counter() - start, "options": extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--levels", default="4,8,16,32,64,128,256")
    parser.add_argument("--noise", default="0,0.01,0.02,0.05,0.1")
    parser.add_argument("--gmax", type=float, nargs=2, default=(0.25, 0.7))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    common = ["--arch", "xs", "--data", args.data, "--epochs", str(args.epochs), "--quiet"]
    gmax = ["--gmax", *map(str, args.gmax)]
    ideal = run(common, [])
    print("ideal", ideal, flush=True)
    levels = []
    for q in map(int, args.levels.split(",")):
        levels.append(run(common, gmax + ["--levels", str(q), "--stochastic-rounding"]))
        print("levels", q, levels[-1], flush=True)
    noise = []
    for sigma in map(float, args.noise.split(",")):
        noise.append(run(common, ["--program-noise", str(sigma)]))
        print("noise", sigma, noise[-1], flush=True)
    command = "python benchmarks/devices.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    (out / "devices.json").write_text(json.dumps({"command": command, "ideal": ideal, "levels": levels,
                                                  "noise": noise}, indent=1) + "\n")
    _figure(ideal, levels, noise, args, ROOT / "docs" / "figures" / "drn_devices.png")
    lines = ["# DRN-XS test error against device models", "", f"Command: `{command}`", "",
             f"DRN-XS on MNIST, {args.epochs} epochs each, preset hyper-parameters, float32, seed 0. Ideal devices: "
             f"{ideal['test_error']:.2%} test error.", "",
             "| device model | test error | train error | wall (s) |", "| --- | --- | --- | --- |"]
    for q, r in zip(args.levels.split(","), levels):
        lines.append(f"| {q} levels in [0, gmax = {args.gmax[0]:g} / {args.gmax[1]:g} S], stochastic rounding | "
                     f"{r['test_error']:.2%} | {r['train_error']:.2%} | {r['wall']:.0f} |")
    for s, r in zip(args.noise.split(","), noise):
        lines.append(f"| programming noise σ = {float(s):.0%} | {r['test_error']:.2%} | {r['train_error']:.2%} | "
                     f"{r['wall']:.0f} |")
    (out / "devices.md").write_text("\n".join(lines + ["", "Figure: docs/figures/drn_devices.png", ""]))
    print("\n".join(lines))


def _figure(ideal, levels, noise, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    q = [int(v) for v in args.levels.split(",")]
    a.plot(q, [100 * r["test_error"] for r in levels], "-o", label="quantised, stochastic rounding")
    a.axhline(100 * ideal["test_error"], color="gray", ls="--", label="ideal devices")
    a.set_xscale("log", base=2)
    a.set_xlabel("conductance levels")
    a.set_ylabel(f"test error (%) after {args.epochs} epochs")
    a.legend()
    s = [100 * float(v) for v in args.noise.split(",")]
    b.plot(s, [100 * r["test_error"] for r in noise], "-s", color="C1")
    b.axhline(100 * ideal["test_error"], color="gray", ls="--")
    b.set_xlabel("programming noise σ (%)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.suptitle("DRN-XS (1568-100-10) on MNIST, trained with EP and device models")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
