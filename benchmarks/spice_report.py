"""The SPICE benchmark's outputs: benchmarks/results/spice.csv, benchmarks/results/spice.png, docs/benchmarks.md.

``rows`` are dicts, one per family, built by benchmarks/spice.py (times in seconds, dV in volts).
"""

from __future__ import annotations

import csv
import math
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"

# issue 4, item 6: (family, which time, required speed-up)
TARGETS = [("drn-xs", "process", 10), ("drn-1h", "process", 50), ("grid-300", "process", 100),
           ("drn-1h", "analysis", 1000)]
DV_TARGET = 1e-5  # volts, against the near-ideal diode model
REL_TARGET = 1e-9  # max |dV| / max |V| on diode-free circuits

COLUMNS = ["family", "n_elements", "n_diodes", "ngspice_status", "ngspice_runs", "ngspice_process_s",
           "ngspice_analysis_s", "ngspice_cpu_s", "ngspice_load", "ours_status", "ours_runs", "ours_process_s", "ours_solve_s",
           "ours_process_cpu_s", "ours_load", "speedup_process", "speedup_analysis", "speedup_cpu", "max_dv_V", "rel_dv",
           "ours_method", "converged"]


# which time -> (ngspice's column, its column for the single run past the cap, our column)
PAIRS = {"process": ("ngspice_process_s", "ngspice_uncapped_s", "ours_process_s"),
         "analysis": ("ngspice_analysis_s", "ngspice_uncapped_analysis_s", "ours_solve_s"),
         "cpu": ("ngspice_cpu_s", "ngspice_uncapped_cpu_s", "ours_process_cpu_s")}


def speedup(row: dict, which: str) -> tuple[float, bool]:
    """(ngspice time / our time, whether it is only a lower bound because ngspice hit the cap)."""
    theirs, _, ours = PAIRS[which]
    if row["ours_status"] != "ok":
        return math.nan, False
    if row["ngspice_status"].startswith(">"):
        return (row["ngspice_cap_s"] if which == "process" else math.nan) / row[ours], True
    return row[theirs] / row[ours], False


def single_speedup(row: dict, which: str) -> float:
    """ngspice's single run past the cap (nan when there is none) over our time."""
    _, single, ours = PAIRS[which]
    return row.get(single, math.nan) / row[ours] if row["ours_status"] == "ok" else math.nan


def _fmt_speedup(value: float, bound: bool) -> str:
    return "" if math.isnan(value) else (f"> {value:.0f}" if bound else f"{value:.3g}")


def _speedup_cell(row: dict, which: str) -> str:
    single = single_speedup(row, which)
    return _fmt_speedup(*speedup(row, which)) + ("" if math.isnan(single) else f" (one run: {single:.3g})")


def _fmt_time(row: dict, key: str) -> str:
    """A time cell: the value, or the status (e.g. "> 600 s") in the whole-process column when there is none,
    followed by ngspice's single run past the cap if there is one."""
    status = row["ngspice_status" if key.startswith("ngspice") else "ours_status"]
    single = next((one for theirs, one, _ in PAIRS.values() if theirs == key), None)
    extra = "" if single is None or math.isnan(row.get(single, math.nan)) else f" (one run: {row[single]:.4g})"
    if key == "ngspice_process_s" and not math.isnan(row.get("ngspice_uncapped_cap_s", math.nan)):
        extra = f" (one run: > {row['ngspice_uncapped_cap_s']:g} s)"
    if status != "ok":
        return (status if key in ("ngspice_process_s", "ours_process_s") else "") + extra
    return f"{row[key]:.4g}"


def write_report(measured: dict) -> None:
    """CSV, plot and docs page from ``measured`` (benchmarks/results/spice.json: command, date, timeout,
    ngspice_runs, runs, rows, gaps as {family: [[N, max |dV|], ...]})."""
    rows = measured["rows"]
    write_csv(rows, RESULTS / "spice.csv")
    write_plot(rows, measured["timeout"], RESULTS / "spice.png")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(with_section(markdown(measured), section(DOCS.read_text()) if DOCS.exists() else None))
    print(f"wrote {RESULTS / 'spice.csv'}, {RESULTS / 'spice.png'}, {DOCS}")


# docs/benchmarks.md also holds benchmarks/startup.py's report, between these lines; each script keeps the other's
SECTION = ("<!-- written by benchmarks/startup.py -->", "<!-- end of benchmarks/startup.py -->")


def section(page: str) -> str | None:
    """The start-up section of ``page`` (markers included), or None."""
    begin, end = page.find(SECTION[0]), page.find(SECTION[1])
    return page[begin:end + len(SECTION[1])] if begin >= 0 and end > begin else None


def with_section(page: str, text: str | None) -> str:
    """``page`` with its start-up section replaced by ``text`` (markers included; appended when the page has
    none; the page as it is when ``text`` is None)."""
    if text is None:
        return page
    old = section(page)
    return page.replace(old, text) if old else page.rstrip("\n") + "\n\n" + text + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for row in rows:
            out = {k: row.get(k, "") for k in COLUMNS}
            for which in PAIRS:
                out[f"speedup_{which}"] = _fmt_speedup(*speedup(row, which))
            for tool, column in (("ngspice", "ngspice_process_s"), ("ours", "ours_process_s")):
                if row[f"{tool}_status"].startswith(">"):
                    out[column] = row[f"{tool}_status"].rstrip(" s")
            writer.writerow(out)


def write_plot(rows: list[dict], timeout: float, path: Path) -> None:
    """Log-log time against elements: one colour per tool and time, one marker per circuit series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    tools = [("ngspice -b, whole process", "ngspice_process_s", "-", "tab:red"),
             ("ngspice analysis time (.options acct)", "ngspice_analysis_s", ":", "tab:orange"),
             ("resnet-sim op, whole process", "ours_process_s", "-", "tab:blue"),
             ("resnet_sim.solve, in process", "ours_solve_s", ":", "tab:cyan")]
    markers = dict(zip(sorted({r["family"].split("-")[0] for r in rows}), "osD^v"))
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for series, marker in markers.items():
        members = sorted((r for r in rows if r["family"].split("-")[0] == series), key=lambda r: r["n_elements"])
        for _, key, style, colour in tools:
            status = "ngspice_status" if key.startswith("ngspice") else "ours_status"
            pts = [(r["n_elements"], r[key]) for r in members if r[status] == "ok"]
            if pts:
                ax.plot(*zip(*pts), linestyle=style, marker=marker, color=colour, markersize=5)
        single = [(r["n_elements"], r["ngspice_uncapped_s"]) for r in members
                  if not math.isnan(r.get("ngspice_uncapped_s", math.nan))]
        if single:
            ax.plot(*zip(*single), linestyle="none", marker="*", color="tab:red", markersize=11)
        for status, colour in (("ngspice_status", "tab:red"), ("ours_status", "tab:blue")):
            capped = [r["n_elements"] for r in members if r[status].startswith(">")]
            ax.plot(capped, [timeout] * len(capped), linestyle="none", marker=marker, color=colour,
                    markerfacecolor="none", markersize=9)
    ax.axhline(timeout, color="grey", linewidth=0.6, alpha=0.5)
    ax.text(0.99, timeout * 1.1, f"cap {timeout:g} s (hollow markers: killed there)", fontsize=7, color="grey",
            ha="right", transform=ax.get_yaxis_transform())
    handles = [Line2D([], [], color=c, linestyle=st, label=label) for label, _, st, c in tools]
    handles += [Line2D([], [], color="tab:red", marker="*", markersize=11, linestyle="none",
                       label="ngspice -b, one run past the cap")]
    handles += [Line2D([], [], color="grey", marker=m, linestyle="none", label=s) for s, m in markers.items()]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("elements in the circuit")
    ax.set_ylabel("time, seconds (median)")
    ax.set_title("DC operating point: resnet_sim against ngspice 39")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(["ngspice", "--version"], capture_output=True, text=True).stdout
    ngspice = next((line.strip("* ").split(":")[0].strip() for line in version.splitlines() if "ngspice-" in line), "ngspice")
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Linux {platform.release()}; {ngspice}; "
            f"Python {platform.python_version()}, numpy {np.__version__}")


def _table(rows: list[dict]) -> list[str]:
    head = ["family", "elements", "diodes", "ngspice -b (s)", "resnet-sim op (s)", "speed-up",
            "ngspice analysis (s)", "our solve (s)", "speed-up", "max abs dV (V)", "runs ngspice/ours"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        dv = "" if math.isnan(r["max_dv_V"]) else f"{r['max_dv_V']:.2e}"
        cells = [r["family"], f"{r['n_elements']:,}", f"{r['n_diodes']:,}", _fmt_time(r, "ngspice_process_s"),
                 _fmt_time(r, "ours_process_s"), _speedup_cell(r, "process"),
                 _fmt_time(r, "ngspice_analysis_s"), _fmt_time(r, "ours_solve_s"),
                 _speedup_cell(r, "analysis"), dv, f"{r['ngspice_runs']}/{r['ours_runs']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cpu_table(rows: list[dict]) -> list[str]:
    lines = ["| family | ngspice CPU (s) | resnet-sim op CPU (s) | ratio | load average at ngspice's runs |",
             "|---|---|---|---|---|"]
    for r in rows:
        theirs = f"{r['ngspice_cpu_s']:.4g}" if r["ngspice_status"] == "ok" else r["ngspice_status"]
        if not math.isnan(r.get("ngspice_uncapped_cpu_s", math.nan)):
            theirs += f" (one run: {r['ngspice_uncapped_cpu_s']:.4g})"
        ours = f"{r['ours_process_cpu_s']:.3g}" if r["ours_status"] == "ok" else r["ours_status"]
        load = "" if math.isnan(r["ngspice_load"]) else f"{r['ngspice_load']:.1f}"
        lines.append(f"| {r['family']} | {theirs} | {ours} | {_speedup_cell(r, 'cpu')} | {load} |")
    return lines


def _claims(rows: list[dict]) -> list[str]:
    """The issue's targets against this run's figures, each marked met or missed."""
    by_name = {r["family"]: r for r in rows}
    lines = ["| target | required | measured | |", "|---|---|---|---|"]
    for family, which, required in TARGETS:
        if family not in by_name:
            continue
        value, bound = speedup(by_name[family], which)
        label = "whole process" if which == "process" else "solve alone vs ngspice's analysis time"
        single = single_speedup(by_name[family], which)
        if bound or math.isnan(value):
            if not math.isnan(single):  # ngspice's one run past the cap measures what the capped runs bound
                value, bound = single, False
                label += f" (ngspice's one run past the {by_name[family]['ngspice_cap_s']:g} s cap)"
        if math.isnan(value):
            verdict = "not measured: ngspice was killed at the cap before reporting its analysis time"
        elif value >= required:
            verdict = "met"
        else:
            verdict = "not shown: ngspice was killed at the cap" if bound else "**missed**"
        lines.append(f"| {family}, {label} | {required}x | {_fmt_speedup(value, bound)}x | {verdict} |")
    for r in rows:
        if math.isnan(r["max_dv_V"]):
            continue
        if r["n_diodes"]:
            verdict = "met" if r["max_dv_V"] <= DV_TARGET else "**missed**"
            lines.append(f"| {r['family']}, max abs dV | <= {DV_TARGET:g} V | {r['max_dv_V']:.2e} V | {verdict} |")
        else:
            verdict = "met" if r["rel_dv"] <= REL_TARGET else "**missed**"
            lines.append(f"| {r['family']} (no diodes), max abs dV / max abs V | <= {REL_TARGET:g} "
                         f"| {r['rel_dv']:.2e} | {verdict} |")
    return lines


def _gaps(gaps: dict[str, dict[float, float]]) -> list[str]:
    if not gaps:
        return []
    ns = sorted({n for per in gaps.values() for n in per}, reverse=True)
    lines = ["| family | " + " | ".join(f"N = {n:g}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for name, per in gaps.items():
        lines.append(f"| {name} | " + " | ".join(f"{per.get(n, math.nan):.2e} V" for n in ns) + " |")
    return lines


def _notes(rows: list[dict]) -> list[str]:
    """Figures that explain the table: our fixed start-up cost, from the divider row."""
    by_name = {r["family"]: r for r in rows}
    notes = []
    faster = [r for r in rows if r.get("ngspice_uncapped_s", math.nan) < r["ngspice_cap_s"]]
    if faster:
        notes.append("- " + ", ".join(f"{r['family']} took {r['ngspice_uncapped_s']:.0f} s" for r in faster)
                     + " in ngspice's single later run, yet its timing run hit the cap: the timing run was made "
                       "earlier, while the shared machine was busier.")
    killed = [r for r in rows if not math.isnan(r.get("ngspice_uncapped_cap_s", math.nan))]
    if killed:
        notes.append("- " + ", ".join(f"{r['family']}" for r in killed) + ": the one ngspice run with the longer cap "
                     "(" + ", ".join(f"{r['ngspice_uncapped_cap_s']:g} s" for r in killed) + ") was killed too, so "
                     "ngspice needs more than that here; the speed-up given is over the capped timing runs, a "
                     "lower bound.")
    div = by_name.get("divider")
    if div is None or div["ours_status"] != "ok" or div["ngspice_status"] != "ok":
        return notes
    return notes + [f"- Start-up: `resnet-sim op` on the 3-element divider takes {div['ours_process_s']:.2f} s "
            f"({div['ours_process_cpu_s']:.2f} s CPU) where ngspice takes {div['ngspice_process_s']:.3f} s: "
            "starting Python, importing numpy, scipy and Numba, and loading the cached Numba kernels. That fixed "
            "cost dominates our whole-process time up to about 1e5 elements, so a 10x whole-process lead needs "
            f"circuits on which ngspice takes over {10 * div['ours_process_s']:.0f} s."]


def markdown(measured: dict) -> str:
    rows = measured["rows"]
    loads = [r[k] for r in rows for k in ("ngspice_load", "ours_load") if not math.isnan(r[k])]
    gaps = {name: dict(pairs) for name, pairs in measured["gaps"].items()}
    return TEMPLATE.format(
        date=measured["date"], command=measured["command"], machine=_machine(),
        phases=("\n(ngspice's side ran first, as the same command with `--phase ngspice` in place of `--phase ours`; "
                "the report was then rewritten with `--phase report`.)\n") if "--phase ours" in measured["command"] else "",
        loads=f"{min(loads):.1f} to {max(loads):.1f}" if loads else "unknown",
        timeout=f"{measured['timeout']:g}", uncapped=f"{measured.get('uncapped_timeout', math.nan):g} s", ngspice_runs=measured["ngspice_runs"], runs=measured["runs"],
        table="\n".join(_table(rows)), cpu_table="\n".join(_cpu_table(rows)), claims="\n".join(_claims(rows)),
        notes="\n".join(_notes(rows)),
        gaps="\n".join(_gaps(gaps)))


TEMPLATE = """# Benchmarks: resnet_sim against ngspice

Generated by `benchmarks/spice.py` on {date}:

```
{command}
```
{phases}
Machine: {machine}.

For one netlist of your own, `resnet-sim spice FILE --repeat 3` prints the same comparison (in Python:
`resnet_sim.spice.compare(circuit, repeat=3)`).

1-minute load averages at the start of the runs were {loads} (the machine has 2 CPUs; while ngspice
ran, development work used the other one, which slows both tools' wall times somewhat through the shared
cache and memory); the CPU-time table below is less disturbed. Each figure is a median of up to {ngspice_runs} ngspice runs and {runs} of ours (the
counts are in the last column; a run of ours longer than a tenth of the cap is not repeated).

## What is measured

- **Whole process**: `resnet-sim op FILE` (the circuit written by `resnet_sim.write_netlist`; the process
  reads, compiles, solves and prints its table: every node voltage, the currents of sources, diodes and
  amplifiers and the diode states; resistor currents too up to 1000 resistors) against `ngspice -b -r
  OUT.raw FILE` (the deck from `resnet_sim.spice.export`; it writes every node voltage and source current
  to a binary raw file), both as subprocesses, wall clock.
- **Analysis**: ngspice's own "Total analysis time" (`.options acct`) against `resnet_sim.solve(circuit)`
  in-process (after one warm-up solve, which compiles the Numba kernels; that compilation is part of the
  whole-process figure).
- **max abs dV**: the largest difference of any node voltage between the two answers. ngspice has no ideal
  diode: it simulates `.model D(IS=1e-12 N=1e-6)` with `.options reltol=1e-6 vntol=1e-9 abstol=1e-15`
  (the defaults of `resnet_sim.spice.SpiceOptions`), so a gap of order 1e-7..1e-6 V is the model's, not
  either solver's (see below).
- Every run of either tool is capped at {timeout} s and then reported as "> {timeout} s" (a speed-up over a
  capped ngspice run is a lower bound). On random graphs ngspice's time grows far faster than their size,
  so once a random graph hits the cap the larger ones are not run ("not run" below), for either tool.
  The largest DRN and grids that hit the cap got one more ngspice run with a longer cap ({uncapped}), for
  their answer (max abs dV) and an actual time; those figures are marked "one run" and are single runs,
  not medians. ngspice results are cached per circuit and options in `benchmarks/results/tmp/`, so the ngspice
  side (an hour of runs) was measured by the same script in an earlier `--phase ngspice` invocation; each
  cached run records its date and the load average.

## Results

{table}

![time against circuit size](../benchmarks/results/spice.png)

The same runs in CPU seconds (user + system of the whole process, from the kernel's accounting), which a
busy machine disturbs less than wall time:

{cpu_table}

Raw numbers: [benchmarks/results/spice.csv](../benchmarks/results/spice.csv).

## The claims (issue 4, item 6), from this run

{claims}

{notes}

## The near-ideal diode model's error

An exponential diode with saturation current IS and emission coefficient N carrying a forward current I
drops V = N Vt ln(1 + I/IS) (Vt = kT/q = 25.85 mV at ngspice's 27 C), where the ideal diode drops 0:
with N = 1e-6 that is 2.6e-8 V per e-fold of current, 5.4e-7 V at 1 mA and 3.6e-7 V at 1 uA (checked to
0.1 % in tests/test_spice.py for N = 1e-2, 1e-4, 1e-6). Reverse biased it leaks IS = 1e-12 A plus
ngspice's GMIN = 1e-12 S across the junction (7.5e-7 V on a 0.5 V node behind 500 kohm). The gap is
proportional to N; measured max abs dV between our ideal answer and ngspice, per emission coefficient:

{gaps}
"""
