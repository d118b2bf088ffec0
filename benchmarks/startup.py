"""Start-up (issue 20): the whole ``resnet-sim op FILE`` process against ngspice and against an earlier
revision of this repository, measured in the same run; which heavy modules each circuit loads; and the
small-stage threshold (``resnet_sim.solve.SMALL_WORK``).

Usage::

    python benchmarks/startup.py --baseline d623611,4ed2895   # divider, DRN-XS, DRN-1H, grid-300; 7 rounds
    python benchmarks/startup.py --families divider,drn-xs --runs 3 --no-threshold    # a quick look

- Whole process: ``python -m resnet_sim.cli op FILE`` (the ``resnet-sim`` console script runs the same
  ``main``), output discarded, wall clock, for this checkout and for each ``--baseline`` revision (a
  ``git worktree`` of it under benchmarks/results/tmp/, put first on PYTHONPATH), and ``ngspice -b -r OUT.raw``
  on the deck of ``resnet_sim.spice.export`` (as benchmarks/spice.py) where ngspice takes less than
  ``--ngspice-max`` seconds (DRN-1H takes about 240 s, grid-300 more than 1200 s). Each round runs every
  tool once on every circuit, in turn; figures are medians over the rounds. Before the rounds, one
  untimed run of each tree on each circuit fills its bytecode and Numba caches: every process here runs
  with bytecode caching on, as an installed package has its .pyc files (this sandbox sets
  PYTHONDONTWRITEBYTECODE=1, which makes every start compile the package's sources again).
- Modules: the heavy packages (numba, scipy.sparse.linalg, scipy.sparse.csgraph, networkx, cvxpy, h5py,
  matplotlib) present in ``sys.modules`` after ``main(["op", FILE])`` in a fresh process.
- Threshold: in-process solve times of DRN circuits (64 inputs, h hidden, 10 outputs; B samples) with the
  stage forced small (plain-Python kernels, dense active set) and forced not small (compiled kernels,
  warm), medians of 5; and the seconds a fresh process spends on its first compiled solve (importing Numba
  and loading the cached kernels).

Outputs: benchmarks/results/startup.json and benchmarks/results/startup.md, with the command, and the same
report as the start-up section of docs/benchmarks.md (benchmarks/spice.py keeps it when it rewrites the page).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import resnet_sim as rs  # noqa: E402
from benchmarks.solver import machine  # noqa: E402
from benchmarks.families import drn_circuit  # noqa: E402
from benchmarks.spice import BENCH_FAMILIES, CACHE, RESULTS, command_line  # noqa: E402
from benchmarks.spice_report import DOCS, SECTION, with_section  # noqa: E402
from resnet_sim import spice  # noqa: E402
from resnet_sim.spice.compare import time_process  # noqa: E402

HEAVY = ("numba", "scipy.sparse.linalg", "scipy.sparse.csgraph", "networkx", "cvxpy", "h5py", "matplotlib")
# issue 20's targets: whole-process seconds, speed-up over ngspice, and no slower than the baseline
DIVIDER_MAX_S = 0.3
DRN_XS_MIN_SPEEDUP = 3.0
NOT_SLOWER = ("drn-1h", "grid-300")
THRESHOLD_CASES = [(20, 1), (100, 1), (390, 1), (20, 8), (100, 6), (20, 32), (100, 16)]  # (hidden units, B)

_MODULES = """
import io, contextlib, json, sys
from resnet_sim.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["op", sys.argv[1]])
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""
_FIRST_COMPILED = """
import time, resnet_sim as rs
c = rs.read_netlist(r"{divider}")
start = time.perf_counter()
rs.solve(c, method="cd")
print(time.perf_counter() - start)
"""


@functools.lru_cache(maxsize=None)
def netlist(name: str) -> Path:
    """The file ``resnet-sim op`` reads: netlists/divider.cir, else the family written by write_netlist
    (once per run, under benchmarks/results/tmp/)."""
    if name == "divider":
        return ROOT / "netlists" / "divider.cir"
    path = CACHE / f"{name}.cir"
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(rs.write_netlist(BENCH_FAMILIES[name]()))
    return path


def short(rev: str) -> str:
    """The abbreviated commit id of ``rev``."""
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def worktree(rev: str) -> Path:
    """A git worktree of ``rev`` under benchmarks/results/tmp/ (made once)."""
    sha = short(rev)
    path = CACHE / f"baseline-{sha}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def python_env(tree: Path) -> None:
    """Point this process's environment and working directory (inherited by the timed children) at ``tree``:
    ``python -m`` puts the working directory first on sys.path, before PYTHONPATH. Bytecode caching on."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPATH"] = str(tree)
    os.chdir(tree)


def ours_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "resnet_sim.cli", "op", str(path)]


def whole_process(names: list[str], trees: dict[str, Path], runs: int, ngspice_max: float) -> dict:
    """Per circuit: {tool: [[wall, CPU] seconds per round]} for each tree and ngspice (where it is quick enough);
    CPU is user + system time, which a busy machine disturbs less than the wall clock."""
    decks = {}
    for name in names:
        for tree in trees.values():  # warm-up: bytecode and Numba caches
            python_env(tree)
            time_process(ours_command(netlist(name)), 1)
        deck = spice.export(rs.read_netlist(netlist(name)))
        try:
            print(f"[warm-up] {name}: ngspice {spice.run(deck, timeout=ngspice_max).wall:.3f} s", flush=True)
            decks[name] = deck
        except spice.SpiceTimeout:
            print(f"[warm-up] {name}: ngspice > {ngspice_max:g} s, not timed", flush=True)
            decks[name] = None
    times = {name: {tool: [] for tool in [*trees, "ngspice"]} for name in names}
    for r in range(runs):
        for name in names:
            if decks[name] is not None:
                run = spice.run(decks[name])
                times[name]["ngspice"].append([run.wall, run.cpu])
            for tool, tree in trees.items():
                python_env(tree)
                times[name][tool].append(list(time_process(ours_command(netlist(name)), 1)[0]))
        print(f"[round {r + 1}/{runs}] " + "; ".join(
            f"{n}: " + ", ".join(f"{t} {v[-1][0]:.3f}" for t, v in times[n].items() if v) for n in names), flush=True)
    return times


def loaded_modules(names: list[str]) -> dict[str, list[str]]:
    python_env(ROOT)
    out = {}
    for name in names:
        proc = subprocess.run([sys.executable, "-c", _MODULES.format(heavy=HEAVY), str(netlist(name))],
                              capture_output=True, text=True, check=True)
        out[name] = json.loads(proc.stdout)
    return out


def threshold() -> dict:
    """In-process solve times (ms) forced small and not small, and a fresh process's first compiled solve."""
    solve_module = sys.modules["resnet_sim.solve"]
    default = solve_module.SMALL_WORK
    rows = []
    for hidden, batch in THRESHOLD_CASES:
        p = rs.compile(drn_circuit([64, hidden, 10], seed=0))
        X = np.random.default_rng(0).uniform(-1, 1, (batch, 64))
        qp = p.qp(0, p.source_values(X))
        row = {"hidden": hidden, "B": batch, "n": qp.n, "m": qp.m, "work": batch * (qp.n + qp.m)}
        for mode, work in (("small", 10**12), ("compiled", -1)):
            solve_module.SMALL_WORK = work
            rs.solve(p, inputs=X)  # warm: kernels, colouring
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                op = rs.solve(p, inputs=X)
                samples.append(time.perf_counter() - start)
            row[f"{mode}_ms"], row[f"{mode}_method"] = 1e3 * statistics.median(samples), op.method
        rows.append(row)
        print(f"[threshold] {row}", flush=True)
    solve_module.SMALL_WORK = default
    python_env(ROOT)
    first = [float(subprocess.run([sys.executable, "-c", _FIRST_COMPILED.format(divider=netlist("divider"))],
                                  capture_output=True, text=True, check=True).stdout) for _ in range(3)]
    return {"small_work": default, "rows": rows, "first_compiled_solve_s": statistics.median(first)}


def markdown(result: dict) -> str:
    med = {n: {t: statistics.median(w for w, _ in v) for t, v in tools.items() if v} for n, tools in result["times"].items()}
    cpu = {n: {t: statistics.median(c for _, c in v) for t, v in tools.items() if v} for n, tools in result["times"].items()}
    bases = result["baselines"]
    lines = ["# Start-up benchmark (issue 20)", "", f"Command: `{result['command']}` ({result['date']})", "",
             f"Machine: {result['machine']['nproc']} CPUs, {result['machine']['cpu']}; Python "
             f"{result['machine']['python']}, numpy {result['machine']['numpy']}. Load average at start "
             f"{result['machine']['loadavg_start'][0]:.2f}, at end {result['loadavg_end'][0]:.2f} (1 min).", "",
             f"Whole process, wall seconds, median of {result['runs']} rounds (each round: every tool once on "
             f"every circuit); `ours` is this checkout ({result['revision']})"
             + "".join(f", `{b}` that revision" for b in bases) + "; all "
             "as `python -m resnet_sim.cli op FILE` (what the `resnet-sim` script runs) with bytecode caching on "
             "and warm caches (one untimed run each first); ngspice is `ngspice -b -r OUT.raw` on the deck of "
             "`resnet_sim.spice.export`. The circuits are netlists/divider.cir and benchmarks/families.py's, "
             "written by `write_netlist`. 'Heavy modules' lists which of "
             + ", ".join(HEAVY) + " a fresh `main(['op', FILE])` imported.", "",
             "| circuit | elements | ngspice -b | ours | " + "".join(f"{b} | ours / {b} | " for b in bases)
             + "ngspice / ours | heavy modules loaded by ours |",
             "|---|---|---|---|" + "---|---|" * len(bases) + "---|---|"]
    for name, m in med.items():
        cells = [name, f"{result['elements'][name]:,}", f"{m['ngspice']:.4g}" if "ngspice" in m else "not run",
                 f"{m['ours']:.4g}"]
        for b in bases:
            cells += [f"{m[b]:.4g}", f"{m['ours'] / m[b]:.3f}"]
        cells += [f"{m['ngspice'] / m['ours']:.3g}" if "ngspice" in m else "",
                  ", ".join(result["modules"][name]) or "none"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The same runs in CPU seconds (user + system, medians):", "",
              "| circuit | ngspice | ours | " + " | ".join(bases) + (" |" if bases else "|"),
              "|---|---|---|" + "---|" * len(bases)]
    for name, m in cpu.items():
        lines.append(f"| {name} | {m['ngspice']:.4g} | " if "ngspice" in m else f"| {name} | not run | ")
        lines[-1] += " | ".join(f"{m[t]:.4g}" for t in ["ours", *bases]) + " |"
    lines += ["", "Targets:", ""]
    for name, m in med.items():
        if name == "divider":
            lines.append(f"- divider whole process <= {DIVIDER_MAX_S} s: {m['ours']:.3f} s, "
                         f"{'met' if m['ours'] <= DIVIDER_MAX_S else 'missed'}")
        if name == "drn-xs" and "ngspice" in m:
            ratio = m["ngspice"] / m["ours"]
            lines.append(f"- drn-xs >= {DRN_XS_MIN_SPEEDUP:g}x faster than ngspice: {ratio:.2f}x, "
                         f"{'met' if ratio >= DRN_XS_MIN_SPEEDUP else 'missed'}")
        for b in bases if name in NOT_SLOWER else ():
            ours, theirs = ([w for w, _ in result["times"][name][t]] for t in ("ours", b))
            lines.append(f"- {name} not slower than {b}: {m['ours']:.3f} s against {m[b]:.3f} s (rounds "
                         f"{min(ours):.3f}-{max(ours):.3f} s against {min(theirs):.3f}-{max(theirs):.3f} s), "
                         f"{'met' if m['ours'] <= m[b] else 'missed'}")
    if result.get("threshold"):
        th = result["threshold"]
        lines += ["", f"Small stages (SMALL_WORK = {th['small_work']}: B × (variables + diode rows) at most that) "
                  "run plain-Python kernels and, under `auto`, the active-set solver. In-process solve, ms, median "
                  "of 5, DRN 64-h-10 with B samples:", "",
                  "| h | B | variables | diode rows | work | forced small | forced compiled (warm) |", "|---|---|---|---|---|---|---|"]
        for row in th["rows"]:
            lines.append(f"| {row['hidden']} | {row['B']} | {row['n']} | {row['m']} | {row['work']} | "
                         f"{row['small_ms']:.1f} ({row['small_method']}) | {row['compiled_ms']:.1f} ({row['compiled_method']}) |")
        lines += ["", f"A fresh process's first compiled solve (the divider with method=\"cd\": importing Numba and "
                  f"loading its cached kernels): {th['first_compiled_solve_s']:.3f} s, median of 3."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="divider,drn-xs,drn-1h,grid-300")
    parser.add_argument("--baseline", default="", help="git revisions to compare with, comma-separated (a worktree each)")
    parser.add_argument("--runs", type=int, default=7, help="rounds (figures are medians over them)")
    parser.add_argument("--ngspice-max", type=float, default=30.0, help="seconds; ngspice is skipped where slower")
    parser.add_argument("--no-threshold", action="store_true", help="skip the small-stage threshold measurements")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    trees = {"ours": ROOT}
    for rev in filter(None, args.baseline.split(",")):
        path = worktree(rev)
        trees[path.name.removeprefix("baseline-")] = path
    result = {"command": command_line(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": machine(), "runs": args.runs, "revision": short("HEAD"), "baselines": list(trees)[1:],
              "elements": {n: sum(rs.read_netlist(netlist(n)).n_elements().values()) for n in names}}
    result["times"] = whole_process(names, trees, args.runs, args.ngspice_max)
    result["modules"] = loaded_modules(names)
    result["threshold"] = None if args.no_threshold else threshold()
    result["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (RESULTS / "startup.md").write_text(text)
    page = DOCS.read_text() if DOCS.exists() else ""
    DOCS.write_text(with_section(page, "\n".join([SECTION[0], text.replace("# Start-up benchmark", "## Start-up"),
                                                  SECTION[1]])))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
