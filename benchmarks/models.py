"""The three model families side by side: seconds per epoch and examples/s, and their circuit mappings.

    python benchmarks/models.py speed [--families drn:1h,hopfield:1h,pcn:1h,pcn:1h:il,pcn:1h:dp] [--runs 1]
                                      [--train-subset 20000]
    python benchmarks/models.py mapping --pcn RUNDIR --hopfield RUNDIR [--images 1000] [--sweeps 1,2,5,10,20]

speed: each entry family:arch[:estimator] trains one epoch in a fresh process (float32, the preset's batch
size, both cores; the Numba kernels compiled on a few batches first, untimed) on the MNIST training set or a
seeded subset (extrapolated to 60,000 images, and labelled so) plus the 10,000 test images.
mapping: a trained PCN (a RUNDIR of `resnet-sim pcn`) compiled with compile_relu (exact mode) against its own
predictions on MNIST test images (largest relative output error, argmax agreement); a trained Hopfield
network (a RUNDIR of `resnet-sim hopfield`) unrolled into K block sweeps: the gap between the unrolled
network's outputs and the model's equilibrium, for several K, and one circuit solve confirming that the
circuit computes the unrolled network.
Writes models_speed.json / models_mapping.json and models.md under --out.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def child(family: str, arch: str, estimator: str, data: str, subset: int | None) -> dict:
    """One timed epoch of a preset in this process (float32, the preset's batch size and rates, the Numba
    kernels compiled first on 64 images, untimed), as `resnet-sim FAMILY` trains it; also benchmarks/drn.py's."""
    import numpy as np

    from resnet_sim.cli import FAMILIES
    from resnet_sim.data import load_dataset
    from resnet_sim.models.presets import preset
    from resnet_sim.train.datasets import training_data
    from resnet_sim.train.trainer import TrainConfig, Trainer

    builder = getattr(importlib.import_module(FAMILIES[family][1]), FAMILIES[family][2])
    p = preset(family, arch)
    x, y = load_dataset("mnist", "train", data)
    xt, yt = load_dataset("mnist", "test", data)
    full = len(x)
    if subset:
        keep = np.sort(np.random.default_rng(0).choice(len(x), subset, replace=False))
        x, y = x[keep], y[keep]
    L = len(p.hidden) + 1
    config = TrainConfig(epochs=1, batch_size=p.batch_size, lr=p.lr_weights[0], beta=p.beta, momentum=p.momentum,
                         estimator=estimator, group_lr=tuple({**dict(enumerate(p.lr_weights)),
                                                              **{L + l: r for l, r in enumerate(p.lr_biases)}}.items()))
    warm = training_data(dict(x_train=x[:64], y_train=y[:64], x_test=xt[:64], y_test=yt[:64]), 784, 10)
    Trainer(builder(arch, seed=1, dtype=np.float32), warm, config, progress=False).run()
    data_ = training_data(dict(x_train=x, y_train=y, x_test=xt, y_test=yt), 784, 10)
    trainer = Trainer(builder(arch, dtype=np.float32), data_, config, progress=False)
    start = time.perf_counter()
    trainer.run()
    total = time.perf_counter() - start
    t0 = time.perf_counter()
    trainer.evaluate(data_.test)
    test = time.perf_counter() - t0
    train = total - test
    record = trainer.history[-1]
    return {"family": family, "arch": arch, "estimator": estimator, "batch_size": p.batch_size,
            "train_images": len(x), "extrapolated": len(x) != full, "train_seconds": train,
            "epoch_seconds": train * full / len(x) + test, "examples_per_s": len(x) / train, "test_seconds": test,
            "sweeps_per_phase": record.get("sweeps_per_phase"), "test_error_after_one_epoch": record["test_error"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load_average": os.getloadavg()[0]}


def speed(args) -> tuple[dict, list[str]]:
    results = []
    for entry in args.families.split(","):
        family, arch, *rest = entry.split(":")
        estimator = rest[0] if rest else "ep"
        runs = []
        for _ in range(args.runs):
            cmd = [sys.executable, __file__, "child", family, arch, estimator, "--data", args.data]
            if args.train_subset:
                cmd += ["--train-subset", str(args.train_subset)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(entry, runs[-1], flush=True)
        results.append(runs)
    lines = ["## Seconds per epoch", "", "| model | estimator | batch | s / epoch | train examples/s | sweeps / phase | "
             "load avg |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for runs in results:
        r = runs[0]
        med = {k: statistics.median(x[k] for x in runs) for k in ("epoch_seconds", "examples_per_s", "load_average")}
        note = f" (from {r['train_images']} images)" if r["extrapolated"] else ""
        lines.append(f"| {r['family']}-{r['arch']} | {r['estimator']} | {r['batch_size']} | {med['epoch_seconds']:.1f}"
                     f"{note} | {med['examples_per_s']:.0f} | {r['sweeps_per_phase']:.2f} | {med['load_average']:.2f} |")
    return {"runs": results}, lines


def mapping(args) -> tuple[dict, list[str]]:
    import numpy as np

    import resnet_sim as rs
    from resnet_sim.data import load_dataset
    from resnet_sim.relu_compiler import compile_relu, forward, relative_error
    from resnet_sim.train import checkpoint

    xt, _ = load_dataset("mnist", "test", args.data)
    images = xt[:args.images].astype(np.float64)
    out, lines = {}, ["## Circuit mappings", ""]
    if args.pcn:
        state = checkpoint.load(Path(args.pcn) / "checkpoint.h5")
        sizes = state["attrs"]["model"]["pcn"]["sizes"]
        m = rs.models.pcn(tuple(sizes[1:-1]), n_inputs=sizes[0], n_outputs=sizes[-1])
        m.set_theta(state["theta"])
        weights, biases = m.relu_network()
        start = time.perf_counter()
        c = compile_relu(weights, biases)
        op = rs.solve(c, inputs=images)
        seconds = time.perf_counter() - start
        predicted = m.outputs(m.free(images))
        err = relative_error(op.outputs, predicted)
        agree = float(np.mean(np.argmax(op.outputs, 1) == np.argmax(predicted, 1)))
        out["pcn"] = {"sizes": sizes, "images": len(images), "relative_error": err, "argmax_agreement": agree,
                      "elements": c.n_elements(), "compile_and_solve_seconds": seconds, "converged": op.converged}
        lines += [f"PCN {'-'.join(map(str, sizes))} ({args.pcn}) compiled by compile_relu (exact mode, "
                  f"{sum(c.n_elements().values())} elements): on {len(images)} MNIST test images the circuit's outputs "
                  f"are within {err:.2e} (relative) of the network's predictions, argmax agreement {agree:.2%} "
                  f"(compile and solve {seconds:.1f} s).", ""]
    if args.hopfield:
        state = checkpoint.load(Path(args.hopfield) / "checkpoint.h5")
        sizes = state["attrs"]["model"]["hopfield"]["sizes"]
        m = rs.models.hopfield(tuple(sizes[1:-1]), n_inputs=sizes[0], n_outputs=sizes[-1], tol=1e-12)
        m.set_theta(state["theta"])
        eq = m.free(images)
        rows = []
        for k in map(int, args.sweeps.split(",")):
            w, b = m.unrolled(k)
            y = forward(w, b, images)
            rows.append({"sweeps": k, "max_abs_gap": float(np.abs(y - m.outputs(eq)).max()),
                         "argmax_agreement": float(np.mean(np.argmax(y, 1) == np.argmax(m.outputs(eq), 1)))})
        k_small = int(args.sweeps.split(",")[0])
        c = m.circuit(k_small)
        op = rs.solve(c, inputs=images[:3])
        w, b = m.unrolled(k_small)
        circuit_vs_network = relative_error(op.outputs, forward(w, b, images[:3]))
        out["hopfield"] = {"sizes": sizes, "images": len(images), "equilibrium_sweeps": eq.sweeps, "gaps": rows,
                           "circuit_vs_unrolled": circuit_vs_network, "circuit_elements_at_k": c.n_elements()}
        lines += [f"Hopfield {'-'.join(map(str, sizes))} ({args.hopfield}), equilibrium to 1e-12 in {eq.sweeps} block "
                  f"sweeps; the unrolled network after K sweeps against it, on {len(images)} MNIST test images:", "",
                  "| K sweeps | largest output gap | argmax agreement |", "| --- | --- | --- |"]
        lines += [f"| {r['sweeps']} | {r['max_abs_gap']:.2e} | {r['argmax_agreement']:.2%} |" for r in rows]
        lines += ["", f"The circuit of K = {k_small} ({sum(c.n_elements().values())} elements) computes the unrolled "
                  f"network to {circuit_vs_network:.1e} (relative, 3 images).", ""]
    return out, lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        a = argparse.ArgumentParser()
        a.add_argument("cmd")
        a.add_argument("family")
        a.add_argument("arch")
        a.add_argument("estimator")
        a.add_argument("--data", default=str(DATA))
        a.add_argument("--train-subset", type=int, default=None)
        args = a.parse_args()
        print(json.dumps(child(args.family, args.arch, args.estimator, args.data, args.train_subset)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--families", default="drn:1h,hopfield:1h,pcn:1h,pcn:1h:il,pcn:1h:dp")
    s.add_argument("--runs", type=int, default=1)
    s.add_argument("--train-subset", type=int, default=20000)
    m = sub.add_parser("mapping")
    m.add_argument("--pcn", default=None)
    m.add_argument("--hopfield", default=None)
    m.add_argument("--images", type=int, default=1000)
    m.add_argument("--sweeps", default="1,2,5,10,20")
    for p in (s, m):
        p.add_argument("--data", default=str(DATA))
        p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    result, lines = (speed if args.cmd == "speed" else mapping)(args)
    command = "python benchmarks/models.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"models_{args.cmd}.json").write_text(json.dumps({"command": command, **result}, indent=1) + "\n")
    report = out / "models.md"
    sections = report.read_text().split("\n<!-- ") if report.exists() else ["# Model families: speed and mappings\n"]
    keep = [sec for sec in sections[1:] if not sec.startswith(args.cmd)]
    body = f"{args.cmd} -->\n" + "\n".join([f"Command: `{command}`", "", *lines]) + "\n"
    report.write_text("\n<!-- ".join([sections[0], *keep, body]))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
