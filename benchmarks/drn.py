"""Seconds per DRN training epoch on this machine: the fast path, the preset's batch size, float32.

    python benchmarks/drn.py [--archs xs,1h] [--runs 3] [--data ../shared/data] [--out benchmarks/results]
    python benchmarks/drn.py --archs xl --runs 1 --train-subset 6000     # XL: time a slice, extrapolate

Each run is a fresh process (so its peak memory is its own) that builds the preset's DRN, compiles the Numba
kernels on a few batches (untimed), then trains one epoch on the MNIST training set (or a seeded subset,
extrapolated to 60,000 images and labelled so) and evaluates the 10,000 test images, as `resnet-sim drn` does.
Reported: the median over runs of seconds per epoch (training + test evaluation), examples/s, block sweeps
per equilibrium, peak resident memory, and the load average while it ran (the machine is shared). For scale,
the published A100 runs took 180 s (XS), 187 s (1H) and 376 s (XL) per epoch.
Writes drn.json and drn.md under --out (architectures measured by earlier commands are kept, with theirs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_A100 = {"xs": 180.0, "1h": 187.0, "xl": 376.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="xs,1h")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from models import child  # benchmarks/models.py: one timed epoch of a preset, in this process

        print(json.dumps(child("drn", args.child, "ep", args.data, args.train_subset)))
        return
    command = "python benchmarks/drn.py " + " ".join(sys.argv[1:])
    results = {}
    for arch in args.archs.split(","):
        runs = []
        for _ in range(args.runs):
            cmd = [sys.executable, __file__, "--child", arch, "--data", args.data]
            if args.train_subset:
                cmd += ["--train-subset", str(args.train_subset)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(arch, json.dumps(runs[-1]), flush=True)
        results[arch] = runs
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "drn.json"
    kept = json.loads(path.read_text()) if path.exists() else {"commands": {}, "runs": {}}
    kept.setdefault("commands", {}).update({arch: command for arch in results})
    kept["runs"].update(results)  # architectures measured before (by another command) stay
    kept["cpu"] = _cpu()
    path.write_text(json.dumps(kept, indent=1) + "\n")
    (out / "drn.md").write_text(_report(kept["runs"], kept["commands"]))
    print((out / "drn.md").read_text())


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


def _report(results: dict, commands: dict) -> str:
    lines = ["# DRN training epochs on this machine", "",
             *(f"{arch.upper()}: `{cmd}`  " for arch, cmd in commands.items()), f"Machine: {_cpu()}", "",
             "Medians over fresh processes; one epoch = training on 60,000 MNIST images at the preset's batch size "
             "plus evaluating the 10,000 test images, float32, both cores.", "",
             "| DRN | runs | s / epoch | train examples/s | test eval (s) | sweeps / phase | peak memory (MB) | "
             "load avg | published A100 (s / epoch) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arch, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in
               ("epoch_seconds", "examples_per_s", "test_seconds", "sweeps_per_phase", "peak_rss_mb", "load_average")}
        note = " (extrapolated from %d images)" % runs[0]["train_images"] if runs[0]["extrapolated"] else ""
        a100 = f"{PUBLISHED_A100[arch]:.0f}" if arch in PUBLISHED_A100 else "-"
        lines.append(f"| {arch.upper()} | {len(runs)} | {med['epoch_seconds']:.1f}{note} | {med['examples_per_s']:.0f} | "
                     f"{med['test_seconds']:.1f} | {med['sweeps_per_phase']:.2f} | {med['peak_rss_mb']:.0f} | "
                     f"{med['load_average']:.2f} | {a100} |")
    lines += ["", "Each run: " + "; ".join(f"{a.upper()} " + ", ".join(f"{r['epoch_seconds']:.1f} s" for r in runs)
                                          for a, runs in results.items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
