"""Netlist parse benchmark: our reader against ngspice's own parse of the same file.

Writes the DRN circuit ``families.drn_circuit(SIZES)`` (the published model's, rs.models.DRN) with ``write_netlist`` to benchmarks/results/tmp/, then

- times ``read_netlist`` in a fresh Python process: the first call (Numba kernels loaded from the disk
  cache, or compiled when the cache is empty) and the median of ``--repeats`` further calls (wall and
  CPU time: on a shared machine the wall time includes waiting for a CPU), with the process's peak
  RSS, and checks the circuit read equals the one written;
- times ngspice on the same file with ``.op`` replaced by ``.control / rusage everything / quit /
  .endc``: it loads and parses the netlist, prints its own accounting ("Netlist loading time",
  "Netlist parsing time", ...) and stops before any analysis (an ``.op`` on DRN-1H runs for minutes);
  wall and CPU time and peak RSS from ``/usr/bin/time -v``.

Results go to benchmarks/results/parse.json and parse.md, with the command that made them.

    python benchmarks/parse.py                      # DRN-1H: sizes 1568 1024 10 (about 1.6M resistors)
    python benchmarks/parse.py --sizes 100 50 10    # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# run in a child process so that its peak RSS is the reader's alone
_CHILD = r"""
import json, resource, statistics, sys, time

def peak_rss_mb():
    # VmHWM: this process's own peak (ru_maxrss would include the parent's memory at fork)
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

t0 = time.perf_counter()
from resnet_sim.netlist import read_netlist
t_import = time.perf_counter() - t0
path, repeats, check = sys.argv[1], int(sys.argv[2]), sys.argv[4] == "1"
sizes = [int(s) for s in sys.argv[3].split(",")]
t0, p0 = time.perf_counter(), time.process_time(); c = read_netlist(path)
first, first_cpu = time.perf_counter() - t0, time.process_time() - p0
rss_first = peak_rss_mb()
times, cpu = [], []
for _ in range(repeats):
    del c
    t0, p0 = time.perf_counter(), time.process_time(); c = read_netlist(path)
    times.append(time.perf_counter() - t0); cpu.append(time.process_time() - p0)
rss = peak_rss_mb()
equal = None
if check:
    from families import drn_circuit
    equal = bool(c == drn_circuit(sizes))
print(json.dumps({"import_s": t_import, "first_s": first, "first_cpu_s": first_cpu, "times_s": times,
                  "median_s": statistics.median(times), "cpu_s": cpu, "median_cpu_s": statistics.median(cpu),
                  "peak_rss_first_read_mb": rss_first, "peak_rss_mb": rss, "equal_to_written": equal,
                  "counts": c.n_elements(), "n_nodes": c.n_nodes}))
"""


def time_reader(path: Path, repeats: int, sizes: list[int], check: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(repeats), ",".join(map(str, sizes)),
                           "1" if check else "0"], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _time_v(cmd: list[str], timeout: float) -> tuple[str, float, float, float]:
    """(stdout+stderr of cmd, wall seconds, CPU seconds (user + system), peak RSS MB) via /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *cmd], capture_output=True, text=True,
                              timeout=timeout)
        wall = time.perf_counter() - t0
        stats = report.read()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stats)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", stats))
    return proc.stdout + proc.stderr, wall, cpu, int(rss.group(1)) / 1024 if rss else float("nan")


def time_ngspice(path: Path, timeout: float) -> dict:
    """ngspice -b on a copy of ``path`` whose ``.op`` is replaced by a ``.control`` block that prints
    ngspice's accounting (``rusage everything``) and quits: it loads and parses the netlist, no analysis."""
    deck = path.with_name(path.stem + "_ngspice.cir")
    deck.write_text(path.read_text().replace("\n.op\n", "\n.control\nrusage everything\nquit\n.endc\n"))
    out, wall, cpu, rss = _time_v(["ngspice", "-b", str(deck)], timeout)
    result = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss, "deck": str(deck.relative_to(ROOT)),
              "loaded": "Circuit:" in out}
    for key, label in [("loading_s", "Netlist loading time"), ("expansion_s", "Subckt and Param expansion time"),
                       ("parsing_s", "Netlist parsing time"), ("elapsed_s", "Total elapsed time \\(seconds\\)")]:
        m = re.search(label + r"\s*=\s*([\d.eE+-]+)", out)
        if m:
            result[key] = float(m.group(1))
    deck.unlink()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1568, 1024, 10], help="DRN layer sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed reads after the first (median reported)")
    parser.add_argument("--no-ngspice", action="store_true", help="skip ngspice")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed to each ngspice run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from families import drn_circuit
    from resnet_sim.netlist import write_netlist

    tmp = RESULTS / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    name = "drn_" + "-".join(map(str, args.sizes))
    path = tmp / f"{name}.cir"
    circuit = drn_circuit(args.sizes)
    t0 = time.perf_counter()
    text = write_netlist(circuit)
    write_s = time.perf_counter() - t0
    path.write_text(text)
    result = {
        "command": " ".join(["python benchmarks/parse.py", *(sys.argv[1:] if argv is None else argv)]),
        "circuit": f"drn_circuit({args.sizes})", "file": str(path.relative_to(ROOT)),
        "bytes": len(text.encode()), "lines": text.count("\n"), "counts": circuit.n_elements(),
        "write_netlist_s": write_s,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg()},
    }
    del text, circuit  # the reader's process starts small
    print(f"wrote {path} ({result['bytes'] / 1e6:.1f} MB, {result['lines']} lines) in {write_s:.2f} s", flush=True)
    result["ours"] = time_reader(path, args.repeats, args.sizes, check=True)
    print("ours:", json.dumps(result["ours"]), flush=True)
    if not args.no_ngspice and shutil.which("ngspice"):
        result["ngspice"] = time_ngspice(path, timeout=args.timeout)
        print("ngspice:", json.dumps(result["ngspice"]), flush=True)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parse.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "parse.md").write_text(report(result))
    print(f"saved {args.out / 'parse.json'} and {args.out / 'parse.md'}")
    return 0


def report(r: dict) -> str:
    ours = r["ours"]
    lines = [
        "# Netlist parse benchmark",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Circuit: `{r['circuit']}` written by `write_netlist` to `{r['file']}`: {r['bytes'] / 1e6:.1f} MB, "
        f"{r['lines']:,} lines, {r['counts']['R']:,} resistors, {r['counts']['D']:,} diodes, "
        f"{r['counts']['V']:,} sources. Writing took {r['write_netlist_s']:.2f} s.",
        "",
        f"Machine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, {r['machine']['platform']}; "
        f"load average {r['machine']['load_average_at_start'][0]:.1f} at the start, "
        f"{r['machine']['load_average_at_end'][0]:.1f} at the end (shared machine: wall times include "
        "waiting for a CPU).",
        "",
        "| reader | wall time (s) | CPU time (s) | peak RSS (MB) |",
        "| --- | --- | --- | --- |",
        f"| `read_netlist`, median of {len(ours['times_s'])} reads (warm) | {ours['median_s']:.2f} | "
        f"{ours['median_cpu_s']:.2f} | {ours['peak_rss_mb']:.0f} (process, after all reads) |",
        f"| `read_netlist`, first read in a fresh process (Numba kernels from the disk cache) | "
        f"{ours['first_s']:.2f} | {ours['first_cpu_s']:.2f} | {ours['peak_rss_first_read_mb']:.0f} (process) |",
        f"| `import resnet_sim.netlist` | {ours['import_s']:.2f} | | |",
    ]
    if "ngspice" in r:
        ng = r["ngspice"]
        own = ", ".join(f"{label} {ng[key]:.2f} s" for key, label in
                        [("loading_s", "netlist loading"), ("expansion_s", "subckt and param expansion"),
                         ("parsing_s", "netlist parsing"), ("elapsed_s", "total elapsed")] if key in ng)
        lines.append(f"| ngspice 39 `-b`: load and parse, no analysis (its own accounting, phases as it prints "
                     f"them, they overlap: {own}) | {ng['wall_s']:.2f} | {ng['cpu_s']:.2f} | "
                     f"{ng['peak_rss_mb']:.0f} |")
    lines += [
        "",
        f"All reads give the written circuit back: `read_netlist(path) == drn_circuit(...)` is "
        f"{ours['equal_to_written']}. Individual warm reads (s): "
        + ", ".join(f"{t:.2f}" for t in ours["times_s"]) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
