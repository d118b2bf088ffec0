"""resnet_sim against ngspice on the benchmark families: whole process, analysis alone, and the answers' gap.

Usage (the full run; ngspice alone takes about an hour)::

    python benchmarks/spice.py                       # all families, 3 runs of each tool
    python benchmarks/spice.py --families drn-xs,grid-100 --ngspice-runs 1 --runs 1   # a quick look
    python benchmarks/spice.py --phase ngspice       # only ngspice's side (start it early, it is the slow one)

ngspice's timings do not depend on our code, so its results are cached per circuit and simulator options in
benchmarks/results/tmp/ngspice-<key>.json (+ .npz voltages): re-running only adds the runs still missing.
Each ngspice run is capped at ``--timeout`` s (600) and recorded as "> 600 s"; a family that hits the cap is
not run again. Runs go one at a time, ngspice first pass over all families, then the repeats.

Outputs: benchmarks/results/spice.csv, benchmarks/results/spice.png (log-log time against elements) and
docs/benchmarks.md (table, plot, the command).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import resnet_sim as rs  # noqa: E402
from benchmarks.families import FAMILIES, grid_circuit, random_graph_circuit  # noqa: E402
from benchmarks.spice_report import write_report  # noqa: E402
from resnet_sim import spice  # noqa: E402
from resnet_sim.spice.compare import max_abs_dv, resnet_sim_command, time_process  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "tmp"
MEASURED = RESULTS / "spice.json"  # the rows the report is written from

# the shared families, random graphs spanning 1e3 .. 1.6e6 elements, a diode-free grid, and the 3-element
# divider of netlists/ (start-up costs alone)
BENCH_FAMILIES = {
    "divider": lambda: rs.read_netlist(ROOT / "netlists" / "divider.cir"),
    **FAMILIES,
    "rgrid-100": lambda: grid_circuit(100, diode_fraction=0.0),
    "random-3k": lambda: random_graph_circuit(3_000),
    "random-10k": lambda: random_graph_circuit(10_000),
    "random-800k": lambda: random_graph_circuit(800_000),
}
MAX_MEMORY = 8e9  # bytes of address space allowed to one ngspice run (the machine is shared)
# series whose larger members are not run once a smaller one hits the cap: ngspice's time on random graphs
# grows far faster than their size (measured: 0.5 s at 2e3 elements, 35 s at 6e3), so each would only
# spend the full cap to confirm "> cap"
SKIP_AFTER_CAP = ("random",)
DIODE_NS = (1e-2, 1e-4, 1e-6)  # emission coefficients of the diode-model gap table


def circuit_key(circuit, options: spice.SpiceOptions) -> str:
    """A digest of everything ngspice's answer depends on: elements, nodes, diode models, options."""
    h = hashlib.sha256()
    h.update("\n".join(circuit.node_names).encode())
    for kind, table in circuit.tables.items():
        h.update(kind.encode())
        h.update("\n".join(table.names.tolist()).encode())
        h.update(np.ascontiguousarray(table.nodes).tobytes())
        h.update(np.ascontiguousarray(table.value).tobytes())
        h.update("\n".join(table.models.tolist()).encode())
    h.update(repr(sorted(circuit.models.items())).encode())
    h.update(repr(options).encode())
    return h.hexdigest()[:16]


class Family:
    """One benchmark circuit, built once, with its ngspice cache record."""

    def __init__(self, name: str, options: spice.SpiceOptions):
        self.name = name
        self.options = options
        self.circuit = BENCH_FAMILIES[name]()
        self.n_elements = sum(self.circuit.n_elements().values())
        self.key = circuit_key(self.circuit, options)
        self.record_path = CACHE / f"ngspice-{self.key}.json"
        self.voltages_path = CACHE / f"ngspice-{self.key}.npz"
        self.record = json.loads(self.record_path.read_text()) if self.record_path.exists() else {
            "family": name, "n_elements": self.n_elements, "runs": [], "capped": False, "error": None,
            "skipped": None}

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.record, indent=1))
        tmp.replace(self.record_path)

    def ngspice_done(self, runs: int) -> bool:
        r = self.record
        return r["capped"] or r["error"] is not None or r.get("skipped") or len(r["runs"]) >= runs

    @property
    def series(self) -> str:
        return self.name.split("-")[0]


def ngspice_once(family: Family, timeout: float) -> dict:
    """One ngspice run of ``family``: {wall, cpu, stats, load, date}; the voltages are kept from the first
    successful run. Raises SpiceTimeout or SpiceError."""
    deck = spice.export(family.circuit, family.options)
    load = os.getloadavg()[0]
    result = spice.run(deck, timeout=timeout, max_memory=MAX_MEMORY)
    if not family.voltages_path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        names = list(result.voltages)
        np.savez(family.voltages_path, names=np.array(names), values=np.array([result.voltages[n] for n in names]))
    print(f"[ngspice] {family.name}: {result.wall:.2f} s (analysis {result.stats.get('total_analysis_time')} s)",
          flush=True)
    return {"wall": result.wall, "cpu": result.cpu, "stats": result.stats, "load": load,
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def run_ngspice(family: Family, timeout: float) -> None:
    """One timing run of ``family``, appended to its cache record."""
    print(f"[ngspice] {family.name}: {family.n_elements} elements, run {len(family.record['runs']) + 1}",
          flush=True)
    try:
        family.record["runs"].append(ngspice_once(family, timeout))
    except spice.SpiceTimeout:
        family.record["capped"] = True
        family.record["timeout"] = timeout
        print(f"[ngspice] {family.name}: > {timeout:g} s", flush=True)
    except spice.SpiceError as err:
        family.record["error"] = str(err).splitlines()[0]
        print(f"[ngspice] {family.name}: {err}", flush=True)
    family.save()


def run_uncapped(family: Family, timeout: float) -> None:
    """For a family that hit the cap: one run with the longer ``timeout``, for its answer (max |dV|) and an
    actual time, kept apart from the capped timing runs."""
    print(f"[ngspice] {family.name}: one run capped at {timeout:g} s instead", flush=True)
    try:
        family.record["uncapped"] = ngspice_once(family, timeout)
    except spice.SpiceTimeout:
        family.record["uncapped"] = {"capped": timeout}
    except spice.SpiceError as err:
        family.record["uncapped"] = {"error": str(err).splitlines()[0]}
    family.save()


def ngspice_phase(families: list[Family], runs: int, timeout: float) -> None:
    """Breadth first: every family's first run before any repeat, so each family has a figure early.
    ``families`` are sorted by size; see SKIP_AFTER_CAP."""
    for r in range(runs):
        capped = {}
        for family in families:
            if family.series in capped and family.series in SKIP_AFTER_CAP and not family.ngspice_done(1):
                family.record["skipped"] = f"not run: {capped[family.series]} already exceeded the cap"
                family.save()
            if not family.ngspice_done(r + 1):
                run_ngspice(family, timeout)
            if family.record["capped"]:
                capped.setdefault(family.series, family.name)


def our_voltages(op) -> dict[str, float]:
    """Node name -> our potential (volts) of an unbatched OperatingPoint."""
    return dict(zip(op.node_names, op.voltages[:, 0].tolist()))


def ours(family: Family, runs: int, timeout: float) -> dict:
    """Our figures: whole ``resnet-sim op FILE`` process (median of ``runs``, each capped at ``timeout`` s),
    in-process solve (median of ``runs`` after one warm-up), and max |dV| against ngspice's voltages.
    A first process run slower than a tenth of the cap is not repeated, and its solve is timed once, without
    a warm-up (the process run has already filled Numba's on-disk cache)."""
    path = CACHE / f"{family.name}.cir"
    path.write_text(rs.write_netlist(family.circuit))
    row = not_run(runs, "ok")
    row["ours_load"] = os.getloadavg()[0]
    command = [*resnet_sim_command(), "op", str(path)]
    try:
        process = time_process(command, 1, timeout)  # (wall, cpu) pairs
        slow = process[0][0] > timeout / 10
        if not slow:
            process += time_process(command, runs - 1, timeout)
    except subprocess.TimeoutExpired:
        row["ours_status"] = f"> {timeout:g} s"
        return row
    if not slow:
        rs.solve(family.circuit)  # warm-up: Numba compilation, colouring caches
    solve = []
    for _ in range(1 if slow else runs):
        start = time.perf_counter()
        op = rs.solve(family.circuit)
        solve.append(time.perf_counter() - start)
    row.update(ours_runs=len(process), ours_process_s=statistics.median(w for w, _ in process),
               ours_process_cpu_s=statistics.median(c for _, c in process), ours_solve_s=statistics.median(solve),
               ours_method=op.method, converged=op.converged)
    if family.voltages_path.exists():
        row["max_dv_V"], row["rel_dv"] = max_abs_dv(our_voltages(op), saved_voltages(family))
    return row


def not_run(runs: int, status: str) -> dict:
    """Our row before (or instead of) measuring: ``status`` says why there are no figures."""
    nan = float("nan")
    return {"ours_runs": runs, "ours_status": status, "ours_process_s": nan, "ours_process_cpu_s": nan,
            "ours_solve_s": nan, "ours_load": nan, "ours_method": "", "converged": False, "max_dv_V": nan, "rel_dv": nan}


def ours_phase(families: list[Family], runs: int, timeout: float) -> list[dict]:
    """Rows of both tools' figures; SKIP_AFTER_CAP applies to our side as to ngspice's."""
    rows, capped = [], {}
    for family in families:
        print(f"[ours] {family.name}", flush=True)
        if family.series in SKIP_AFTER_CAP and family.series in capped:
            row = not_run(runs, f"not run: {capped[family.series]} already exceeded the cap")
        else:
            row = ours(family, runs, timeout)
            if row["ours_status"].startswith(">"):
                capped.setdefault(family.series, family.name)
        rows.append({"family": family.name, "n_elements": family.n_elements, "n_diodes": len(family.circuit["D"]),
                     **ngspice_row(family, timeout), **row})
    return rows


def saved_voltages(family: Family) -> dict[str, float]:
    saved = np.load(family.voltages_path)
    return dict(zip(saved["names"].tolist(), saved["values"].tolist()))


def ngspice_row(family: Family, timeout: float) -> dict:
    """ngspice's medians and its status: ok, "> timeout s", an error, or why it was not run."""
    r = family.record
    walls = [run["wall"] for run in r["runs"]]
    analysis = [run["stats"].get("total_analysis_time", float("nan")) for run in r["runs"]]
    cpu = [run.get("cpu", float("nan")) for run in r["runs"]]
    load = [run["load"] for run in r["runs"]]
    cap = r.get("timeout", timeout)
    status = ("ok" if walls else "no run yet") if not (r["capped"] or r["error"] or r.get("skipped")) else (
        f"> {cap:g} s" if r["capped"] else r["error"] or r["skipped"])
    uncapped = r.get("uncapped", {})
    return {"ngspice_status": status, "ngspice_cap_s": cap, "ngspice_runs": len(walls),
            "ngspice_uncapped_s": uncapped.get("wall", float("nan")),
            "ngspice_uncapped_analysis_s": uncapped.get("stats", {}).get("total_analysis_time", float("nan")),
            "ngspice_uncapped_cpu_s": uncapped.get("cpu", float("nan")),
            "ngspice_uncapped_cap_s": uncapped.get("capped", float("nan")),  # that run was killed too
            "ngspice_process_s": statistics.median(walls) if walls else float("nan"),
            "ngspice_analysis_s": statistics.median(analysis) if analysis else float("nan"),
            "ngspice_cpu_s": statistics.median(cpu) if cpu else float("nan"),
            "ngspice_load": statistics.median(load) if load else float("nan")}


def diode_gap(name: str, ns) -> dict[float, float]:
    """Max |dV| (volts) between our ideal-diode answer and ngspice (run in the ngspice phase) with diode
    emission coefficient N, per N."""
    op = rs.solve(BENCH_FAMILIES[name]())
    gaps = {}
    for n in ns:
        family = Family(name, spice.SpiceOptions(diode_n=n))
        gaps[n] = max_abs_dv(our_voltages(op), saved_voltages(family))[0] if family.record["runs"] else float("nan")
    return gaps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(BENCH_FAMILIES),
                        help=f"comma-separated, from: {', '.join(BENCH_FAMILIES)}")
    parser.add_argument("--ngspice-runs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="runs of our side (medians)")
    parser.add_argument("--timeout", type=float, default=600.0, help="cap on one run of either tool, seconds")
    parser.add_argument("--phase", choices=["ngspice", "ours", "all", "report"], default="all",
                        help="report: rewrite the CSV, plot and docs from benchmarks/results/spice.json, "
                             "ngspice's figures refreshed from its cache")
    parser.add_argument("--diode-gap", default="drn-xs,grid-100",
                        help="families on which to measure the gap to the ideal answer for N = 1e-2, 1e-4, 1e-6")
    parser.add_argument("--uncapped", default="drn-1h,grid-200,grid-300",
                        help="families that, when they hit the cap, get one more ngspice run with --uncapped-timeout "
                             "(for their answer and an actual time)")
    parser.add_argument("--uncapped-timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    options = spice.SpiceOptions()
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCH_FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {sorted(BENCH_FAMILIES)}")
    families = sorted((Family(n, options) for n in names), key=lambda f: f.n_elements)
    gap_names = [n for n in args.diode_gap.split(",") if n]
    if args.phase == "report":  # ngspice's side refreshed from its cache, ours as measured
        measured = json.loads(MEASURED.read_text())
        for row in measured["rows"]:
            row.update(ngspice_row(Family(row["family"], options), measured["timeout"]))
        MEASURED.write_text(json.dumps(measured, indent=1))
        write_report(measured)
        return 0
    if args.phase in ("ngspice", "all"):
        ngspice_phase(families, args.ngspice_runs, args.timeout)
        for family in families:
            if family.name in args.uncapped.split(",") and family.record["capped"] and "uncapped" not in family.record:
                run_uncapped(family, args.uncapped_timeout)
        for name in gap_names:
            for n in DIODE_NS:
                family = Family(name, spice.SpiceOptions(diode_n=n))
                if not family.ngspice_done(1):
                    run_ngspice(family, args.timeout)
    if args.phase in ("ours", "all"):
        rows = ours_phase(families, args.runs, args.timeout)
        gaps = {name: diode_gap(name, DIODE_NS) for name in gap_names}
        measured = {"command": command_line(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "timeout": args.timeout, "uncapped_timeout": args.uncapped_timeout, "ngspice_runs": args.ngspice_runs, "runs": args.runs,
                    "rows": rows, "gaps": {name: list(g.items()) for name, g in gaps.items()}}
        MEASURED.write_text(json.dumps(measured, indent=1))
    if args.phase != "ngspice":
        write_report(json.loads(MEASURED.read_text()))
    return 0


def command_line() -> str:
    """This invocation as a shell command, relative to the repository root."""
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
