"""The ``resnet-sim sweep`` and ``resnet-sim mc`` sub-commands: their arguments and run functions, registered
in :data:`resnet_sim.cli.COMMANDS`. Dask and the heavy modules are imported only when a command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import UsageError


def _cluster_arguments(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("cluster (docs/scaling.md)")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="a running Dask scheduler (tcp://host:8786); default: a LocalCluster on this machine")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"LocalCluster: N worker processes (default: one per core{what}); with --scheduler: wait "
                        "for N workers to join before starting")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _connect(args, default_workers: int | None):
    """The Dask client context of ``args`` (--scheduler, --workers; ``default_workers`` for a LocalCluster)."""
    from .client import connect

    return connect(args.scheduler, args.workers if args.workers is not None or args.scheduler else default_workers)


# ---------------------------------------------------------------------------------------------- sweep
def sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC.toml", help="the base command, its options and the grid (docs/scaling.md)")
    p.add_argument("--out", metavar="DIR", required=True, help="one RUNDIR per point, summary.csv, summary.png")
    _cluster_arguments(p, " / the SPEC's threads")


def sweep(args) -> int:
    from .client import ClusterError, local_cores
    from .sweep import SUMMARY, load_spec, pending, run_sweep

    spec = load_spec(args.spec)
    if not pending(spec, args.out):  # nothing to run: no cluster to start
        rows = run_sweep(spec, args.out, None, progress=not args.quiet)
    else:
        try:
            with _connect(args, max(1, local_cores() // spec.threads)) as client:
                rows = run_sweep(spec, args.out, client, progress=not args.quiet)
        except ClusterError as err:
            raise UsageError(f"resnet-sim {args.command}", str(err)) from None
    counts = {s: sum(r["status"] == s for r in rows) for s in ("finished", "skipped", "failed")}
    print(f"wrote {Path(args.out) / SUMMARY}, summary.png: {len(rows)} points, {counts['finished']} run, "
          f"{counts['skipped']} finished before, {counts['failed']} failed")
    for row in rows:
        if row["status"] == "failed":
            print(f"{Path(args.out) / row['point']}: {row['error']}", file=sys.stderr)
    return 1 if counts["failed"] else 0


# ---------------------------------------------------------------------------------------------- mc
def mc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("netlist", metavar="NETLIST", help="a trained netlist (.inputs, .outputs, .trainable), e.g. "
                                                      "a run's trained.cir")
    p.add_argument("--inputs", metavar="X.npy", required=True, help="(B, n_inputs) values of the .inputs sources")
    p.add_argument("--labels", metavar="Y.npy", default=None, help="(B,) class indices: accuracy per draw")
    p.add_argument("--draws", type=int, required=True, metavar="K", help="device draws")
    p.add_argument("--out", metavar="RESULT.h5", required=True, help="HDF5 result (its histograms: RESULT.png)")
    p.add_argument("--seed", type=int, default=0, help="draw k uses numpy default_rng([SEED, k]) (default 0)")
    p.add_argument("--chunk", type=int, default=None, metavar="C",
                   help="draws per task (default: about 4 tasks per worker)")
    p.add_argument("--method", default="auto", help="solver: auto, cd, active-set or cvxpy (default auto)")
    p.add_argument("--tol", type=float, default=1e-9, help="solver tolerance (default 1e-9)")
    d = p.add_argument_group("device models (docs/training.md; need gmax= on the .trainable cards except noise)")
    d.add_argument("--variability", type=float, default=0.0, metavar="SIGMA",
                   help="device-to-device spread of gmin, gmax: exp(SIGMA zeta) per device and draw")
    d.add_argument("--program-noise", type=float, default=0.0, metavar="SIGMA",
                   help="each conductance written as g (1 + SIGMA xi)")
    d.add_argument("--levels", type=int, default=None, help="quantised levels between each device's bounds")
    d.add_argument("--stochastic-rounding", action="store_true", help="round to a level stochastically")
    _cluster_arguments(p, "")


def mc(args) -> int:
    import hashlib

    import numpy as np
    from tqdm import tqdm

    from ..cli import _load_npy, _read_inputs, _read_solver_netlist
    from ..errors import CircuitError
    from ..train.devices import DeviceConfig
    from .client import ClusterError
    from .montecarlo import check, monte_carlo, write_result

    circuit = _read_solver_netlist(args)
    if not Path(args.out).resolve().parent.is_dir():
        raise UsageError(args.out, "its folder does not exist")
    X = _read_inputs(args.inputs, len(circuit.inputs))
    labels = None if args.labels is None else _load_npy(args.labels)
    try:
        devices = DeviceConfig(levels=args.levels, stochastic_rounding=args.stochastic_rounding,
                               program_noise=args.program_noise, variability=args.variability)
        X, labels = check(circuit, X, args.draws, devices, args.seed, labels, args.chunk)
    except ValueError as err:
        raise UsageError(args.labels if str(err).startswith("labels") else args.netlist, str(err)) from None
    try:
        with _connect(args, None) as client, \
                tqdm(total=args.draws, desc="draws", unit="draw", disable=args.quiet or None, mininterval=0.5) as bar:
            result = monte_carlo(circuit, X, args.draws, devices, seed=args.seed, labels=labels, client=client,
                                 chunk=args.chunk, method=args.method, tol=args.tol, progress=bar.update)
    except ClusterError as err:
        raise UsageError(f"resnet-sim {args.command}", str(err)) from None
    except CircuitError as err:
        raise CircuitError(f"{args.netlist}: {err}") from None
    figure = Path(args.out).with_suffix(".png")

    def digest(path):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    write_result(result, args.out, {"netlist": str(args.netlist), "netlist_sha256": digest(args.netlist),
                                    "inputs": str(args.inputs), "inputs_sha256": digest(args.inputs),
                                    "method": args.method, "tol": args.tol})
    from ..plots import monte_carlo_histogram

    monte_carlo_histogram(result.accuracy, result.nominal_accuracy, result.outputs - result.nominal, figure)
    B = len(X)
    line = f"{args.draws} draws of {B} input{'s' * (B != 1)}"
    if labels is not None:
        acc = 100 * result.accuracy
        line += (f": accuracy {acc.mean():.2f} % mean, {acc.std():.2f} % sd, {acc.min():.1f}-{acc.max():.1f} % "
                 f"(nominal {100 * result.nominal_accuracy:.2f} %)")
    spread = np.abs(result.outputs - result.nominal)
    line += f"; outputs off nominal by {1e3 * spread.mean():.3g} mV mean, {1e3 * spread.max():.3g} mV max"
    unconverged = int(np.count_nonzero(~result.converged))
    print(line + (f"; {unconverged} draws NOT converged" if unconverged else ""))
    print(f"wrote {args.out}, {figure}")
    return 0
