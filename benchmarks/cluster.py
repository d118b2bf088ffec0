"""`resnet-sim sweep` and `resnet-sim mc` on a LocalCluster of 1 and of 2 worker processes: wall time and speed-up.

    python benchmarks/cluster.py [--data ../shared/data] [--repeat 3] [--points 8] [--train-subset 5000]
                                 [--draws 1000] [--inputs 200]

(1) a sweep of ``--points`` short DRN-XS runs (MNIST, ``--train-subset`` images, 1 epoch, one seed per point,
gmax 0.25 / 0.7 S, trained.cir written); (2) a ``--draws``-draw Monte-Carlo run of the first point's trained
DRN-XS on the first ``--inputs`` MNIST test images (programming noise 5 %, device-to-device variability 10 %,
64 levels with stochastic rounding). Each command is timed whole (`time` of the process: Python start,
LocalCluster start and close, the work, the files), ``--repeat`` times per worker count, alternating; medians.
The Monte-Carlo draws are also run in this process without Dask (``monte_carlo(client=None)``) for the cost
of the cluster. Checks that 1 and 2 workers give identical parameters and outputs, and measures what a task
sends and returns. Writes benchmarks/results/cluster.{json,md} and docs/figures/mc_drn_xs.png.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MC_OPTIONS = ["--program-noise", "0.05", "--variability", "0.1", "--levels", "64", "--stochastic-rounding"]


def timed(argv: list[str]) -> dict:
    """Run ``resnet-sim argv`` as a process; its wall time (s), the CPU time (s, user + system) of it and of
    every process it started (the LocalCluster's workers), and the load averages before and after."""
    before, usage = os.getloadavg(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "resnet_sim.cli", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"resnet-sim {' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return {"wall": wall, "cpu": cpu, "load_before": before[0], "load_after": os.getloadavg()[0]}


def mb(n: int) -> float:
    return round(n / 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    import h5py
    import numpy as np

    import resnet_sim as rs
    from resnet_sim.cluster.montecarlo import monte_carlo
    from resnet_sim.cluster.sweep import load_spec
    from resnet_sim.train import checkpoint
    from resnet_sim.train.devices import DeviceConfig

    command = "python benchmarks/cluster.py " + " ".join(sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="resnet_sim_cluster_bench_"))
    spec = work / "drn_xs.toml"
    spec.write_text(f'command = "drn"\nthreads = 1\n[options]\narch = "xs"\ndata = "{Path(args.data).resolve()}"\n'
                    f"train-subset = {args.train_subset}\nepochs = 1\ngmax = [0.25, 0.7]\nnetlist = true\n"
                    f"[grid]\nseed = {list(range(args.points))}\n")
    record = {"command": command, "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
              "python": platform.python_version(), "spec": spec.read_text(), "sweep": {}, "mc": {}}
    try:
        # ---------------------------------------------------------------- sweep
        outs = {}
        for r in range(args.repeat):
            for workers in (1, 2):
                out = work / f"sweep-{workers}-{r}"
                run = timed(["sweep", str(spec), "--out", str(out), "--workers", str(workers), "--quiet"])
                record["sweep"].setdefault(str(workers), []).append(run)
                outs[workers] = out
                print(f"sweep, {workers} worker(s): {run['wall']:.1f} s, CPU {run['cpu']:.1f} s (load "
                      f"{run['load_before']:.1f})", flush=True)
        names = [p.name for p in load_spec(spec).points]
        record["sweep_identical"] = all(
            np.array_equal(checkpoint.load(outs[1] / n / "checkpoint.h5")["theta"],
                           checkpoint.load(outs[2] / n / "checkpoint.h5")["theta"]) for n in names)
        run_dir = outs[1] / names[0]
        files = {p.name: p.stat().st_size for p in run_dir.iterdir() if p.name != "point.json"}
        epoch_seconds = [json.loads((outs[1] / n / "metrics.json").read_text())["epochs"][0]["seconds"] for n in names]
        bundles = load_spec(spec).bundles
        record["sweep_payload"] = {
            "inputs_sent_once_per_worker_MB": mb(sum(len(b) for bundle in bundles.values() for b in bundle.values())),
            "task_arguments_bytes": len(pickle.dumps(load_spec(spec).points[0].argv)),
            "task_result_MB": {k: mb(v) for k, v in sorted(files.items())},
            "per_epoch_message_MB": mb(sum(v for k, v in files.items() if k != "trained.cir")),
        }
        record["sweep_epoch_seconds_median"] = statistics.median(epoch_seconds)
        record["test_error"] = json.loads((run_dir / "metrics.json").read_text())["epochs"][-1]["test_error"]

        # ---------------------------------------------------------------- Monte Carlo
        netlist = run_dir / "trained.cir"
        images, labels = rs.data.load_dataset("mnist", "test", args.data)
        X = rs.models.drn("xs").source_values(images[: args.inputs]).astype(np.float64)
        y = labels[: args.inputs]
        np.save(work / "x.npy", X)
        np.save(work / "y.npy", y)
        results = {}
        for r in range(args.repeat):
            for workers in (1, 2):
                out = work / f"mc-{workers}-{r}.h5"
                run = timed(["mc", str(netlist), "--inputs", str(work / "x.npy"), "--labels", str(work / "y.npy"),
                             "--draws", str(args.draws), *MC_OPTIONS, "--workers", str(workers), "--out", str(out),
                             "--quiet"])
                record["mc"].setdefault(str(workers), []).append(run)
                with h5py.File(out, "r") as f:
                    results[workers, r] = f["outputs"][...]
                print(f"mc, {workers} worker(s): {run['wall']:.1f} s, CPU {run['cpu']:.1f} s (load "
                      f"{run['load_before']:.1f})", flush=True)
        circuit = rs.read_netlist(netlist)
        devices = DeviceConfig(levels=64, stochastic_rounding=True, program_noise=0.05, variability=0.1)
        serial = []
        for r in range(args.repeat):
            before, cpu = os.getloadavg()[0], time.process_time()
            start = time.perf_counter()
            mc = monte_carlo(circuit, X, args.draws, devices, labels=y)
            serial.append({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                           "load_before": before, "load_after": os.getloadavg()[0]})
            print(f"mc in this process, no Dask: {serial[-1]['wall']:.1f} s", flush=True)
        record["mc"]["in-process"] = serial
        first = results[1, 0]
        record["mc_identical"] = all(np.array_equal(out, first) for out in results.values())
        # this process runs OpenBLAS on every core, Dask's workers on one (the nanny's OPENBLAS_NUM_THREADS=1)
        record["mc_in_process_max_difference_V"] = float(np.abs(mc.outputs - first).max())
        record["mc_accuracy"] = {"mean": float(mc.accuracy.mean()), "sd": float(mc.accuracy.std()),
                                 "nominal": mc.nominal_accuracy}
        chunk = -(-args.draws // 4)  # the default on 1 worker: 4 chunks
        record["mc_payload"] = {
            "netlist_file_MB": mb(netlist.stat().st_size),
            "circuit_sent_once_per_worker_MB": mb(len(pickle.dumps(circuit, protocol=5))),
            "inputs_sent_once_per_worker_MB": mb(X.nbytes),
            "task_arguments_bytes": len(pickle.dumps((devices, 0, 0, chunk, "auto", 1e-9), protocol=5)),
            "task_result_MB_per_draw": mb(mc.outputs[0].nbytes + 1),
        }
        shutil.copy(work / f"mc-1-{args.repeat - 1}.png", ROOT / "docs" / "figures" / "mc_drn_xs.png")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(record, args, Path(args.out))


def write(record: dict, args, out: Path) -> None:
    """cluster.json (every measurement) and cluster.md (medians, speed-ups)."""
    med = {kind: {k: statistics.median(r["wall"] for r in runs) for k, runs in record[kind].items()}
           for kind in ("sweep", "mc")}
    cores = {kind: {k: statistics.median(r["cpu"] / r["wall"] for r in runs) for k, runs in record[kind].items()}
             for kind in ("sweep", "mc")}
    record["medians_s"], record["median_cores_used"] = med, cores
    record["speedup"] = {kind: med[kind]["1"] / med[kind]["2"] for kind in ("sweep", "mc")}
    (out / "cluster.json").write_text(json.dumps(record, indent=1) + "\n")
    loads = [r[k] for kind in ("sweep", "mc") for runs in record[kind].values() for r in runs
             for k in ("load_before", "load_after")]
    sp, mp = record["sweep_payload"], record["mc_payload"]

    def cell(kind, key):
        return f"{med[kind][key]:.1f} s ({cores[kind][key]:.2f} cores)"
    lines = [
        "# Sweeps and Monte-Carlo runs on Dask: 1 worker against 2 (issue 19)", "",
        f"Command: `{record['command']}`", "",
        f"Machine: {record['machine']}, Python {record['python']}; 1-minute load "
        f"average {min(loads):.1f} to {max(loads):.1f} during the runs (2 cores). Wall times are whole commands "
        f"(Python start, LocalCluster start and close, the work, the files), medians of {args.repeat}, 1 and 2 "
        "workers alternating.", "",
        "| command | 1 worker | 2 workers | speed-up | in this process, no Dask |", "| --- | --- | --- | --- | --- |",
        f"| `resnet-sim sweep drn_xs.toml --out DIR --workers W`: {args.points} DRN-XS runs (1 epoch of "
        f"{args.train_subset} MNIST images each, test on 10,000) | {cell('sweep', '1')} | {cell('sweep', '2')} "
        f"| {record['speedup']['sweep']:.2f}x | |",
        f"| `resnet-sim mc DIR/seed=0/trained.cir --inputs X.npy --labels Y.npy --draws {args.draws} "
        f"{' '.join(MC_OPTIONS)} --workers W --out R.h5` ({args.inputs} test images) | {cell('mc', '1')} | "
        f"{cell('mc', '2')} | {record['speedup']['mc']:.2f}x | {cell('mc', 'in-process')} |", "",
        "Cells: median wall time (median cores used: CPU time of the command and its workers / wall time). Where "
        "2 workers used little more than one core, the machine's other jobs held the other one: that is the "
        "ceiling of the speed-up in that run, not Dask's.", "",
        "SPEC (drn_xs.toml):", "", "```toml", record["spec"].strip(), "```", "",
        f"1 and 2 workers give identical results: parameters of every point {record['sweep_identical']}, Monte-Carlo "
        f"outputs of every run {record['mc_identical']}; the in-process run's outputs differ from them by at most "
        f"{record['mc_in_process_max_difference_V']:.1g} V (OpenBLAS on 2 threads here, on 1 in a Dask worker: the "
        "order of a few sums changes). One training epoch takes a median "
        f"{record['sweep_epoch_seconds_median']:.1f} s of each point (test error after it "
        f"{record['test_error']:.2%}); the rest of a point is loading MNIST, writing trained.cir and curves.png. "
        f"Monte-Carlo accuracy over the draws: {100 * record['mc_accuracy']['mean']:.2f} % mean, "
        f"{100 * record['mc_accuracy']['sd']:.2f} % sd (nominal circuit {100 * record['mc_accuracy']['nominal']:.2f} %).",
        "",
        "What travels (MB = 10^6 bytes):", "",
        f"- sweep: the MNIST IDX files, {sp['inputs_sent_once_per_worker_MB']} MB, scattered once to every worker; "
        f"a task's arguments {sp['task_arguments_bytes']} bytes (plus a resumed point's checkpoint, metrics and "
        f"curves); its result, the RUNDIR: " + ", ".join(f"{k} {v} MB" for k, v in sp["task_result_MB"].items()) +
        f"; after each epoch, checkpoint + metrics + curves, {sp['per_epoch_message_MB']} MB, fetched by the client "
        "from the worker.",
        f"- mc: the circuit (pickled Circuit, {mp['circuit_sent_once_per_worker_MB']} MB; netlist file "
        f"{mp['netlist_file_MB']} MB) and the inputs ({mp['inputs_sent_once_per_worker_MB']} MB), scattered once "
        f"to every worker; a task's arguments {mp['task_arguments_bytes']} bytes; its result "
        f"{mp['task_result_MB_per_draw']} MB per draw (outputs, float64).", "",
        "Histograms of the Monte-Carlo run: docs/figures/mc_drn_xs.png.", ""]
    (out / "cluster.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
