"""Solve one circuit with resnet_sim and with ngspice: the gap between the answers and both tools' timings."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..circuit import Circuit
from .export import SpiceOptions, export
from .run import SpiceError, children_cpu, run


@dataclass
class Comparison:
    """resnet_sim against ngspice on one circuit (times in seconds, medians over ``repeat`` runs).

    ``dv`` node -> V_ours - V_ngspice (volts); ``max_dv`` its largest magnitude and ``worst_node`` where;
    ``rel_dv`` = max_dv / max |V_ngspice| (the figure for diode-free circuits). Timings: ``spice_process``
    whole ngspice process, ``spice_analysis`` ngspice's own reported analysis time (to the millisecond),
    ``ours_solve`` ``resnet_sim.solve`` alone and ``ours_read_solve`` reading the netlist text and solving,
    both in this process after one untimed warm-up solve, ``ours_process`` a whole ``resnet-sim op FILE``
    process.
    """

    title: str
    n_elements: int
    n_diodes: int
    repeat: int
    options: SpiceOptions
    dv: dict[str, float]
    max_dv: float
    rel_dv: float
    worst_node: str
    spice_process: float
    spice_analysis: float
    ours_solve: float
    ours_read_solve: float
    ours_process: float

    def table(self) -> str:
        """The comparison as a plain-text table."""
        o = self.options
        diodes = f"{self.n_diodes} diode{'s' if self.n_diodes != 1 else ''}"
        model = (f"diodes IS={o.diode_is:g} A N={o.diode_n:g}; " if self.n_diodes else "") + \
            f"reltol={o.reltol:g} vntol={o.vntol:g} V abstol={o.abstol:g} A"
        lines = [f"circuit   {self.title} ({self.n_elements} elements, {diodes})",
                 f"ngspice   {model}",
                 f"max |dV|  {self.max_dv:.3e} V at node {self.worst_node} (relative {self.rel_dv:.3e})",
                 "",
                 f"{'seconds, median of ' + str(self.repeat):<24}{'ngspice':>12}{'resnet_sim':>12}{'ratio':>10}"]
        rows = [("whole process", self.spice_process, self.ours_process),
                ("analysis / solve", self.spice_analysis, self.ours_solve),
                ("read + solve", math.nan, self.ours_read_solve)]
        for label, theirs, ours in rows:
            ratio = f"{theirs / ours:.3g}" if theirs > 0 and ours > 0 else "-"
            lines.append(f"{label:<24}{_seconds(theirs):>12}{_seconds(ours):>12}{ratio:>10}")
        lines.append("(ngspice reports its analysis time to the millisecond; ratio = ngspice / resnet_sim)")
        return "\n".join(lines)

    __str__ = table


def _seconds(t: float) -> str:
    return "-" if math.isnan(t) else ("< 0.001" if t == 0 else f"{t:.4g}")


def compare(circuit: Circuit, repeat: int = 1, timeout: float = 600.0, ngspice: str = "ngspice",
            **options) -> Comparison:
    """Solve ``circuit`` with ``resnet_sim.solve`` and ngspice ``repeat`` times each; ``options`` are
    SpiceOptions fields. Raises SpiceError when ngspice fails or the circuit has names or values a deck
    cannot hold (before ngspice runs)."""
    from .. import read_netlist, solve, write_netlist

    options = SpiceOptions(**options)
    try:
        text = write_netlist(circuit)
    except ValueError as err:
        raise SpiceError(f"cannot hand this circuit to ngspice: {err}") from None
    deck = export(circuit, options)
    spice_runs = [run(deck, timeout=timeout, ngspice=ngspice) for _ in range(repeat)]
    theirs = spice_runs[0].voltages

    solve(circuit)  # warm-up, not timed: Numba compilation and caches (the whole-process figure includes them)
    ours_solve, ours_read_solve = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        op = solve(circuit)
        middle = time.perf_counter()
        solve(read_netlist(text))
        ours_solve.append(middle - start)
        ours_read_solve.append(time.perf_counter() - middle)
    with tempfile.TemporaryDirectory(prefix="resnet_sim_compare_") as tmp:
        path = Path(tmp, "circuit.cir")
        path.write_text(text)
        ours_process = [wall for wall, _ in time_process([*resnet_sim_command(), "op", str(path)], repeat)]

    ours = {name: op.voltage(name) for name in theirs}
    dv = {name: ours[name] - v for name, v in theirs.items()}
    max_dv, rel_dv = max_abs_dv(ours, theirs)
    worst = max(dv, key=lambda n: abs(dv[n])) if dv else ""
    med = statistics.median
    return Comparison(circuit.title, sum(circuit.n_elements().values()), len(circuit["D"]), repeat, options,
                      dv, max_dv, rel_dv, worst, med(r.wall for r in spice_runs),
                      med(r.stats.get("total_analysis_time", float("nan")) for r in spice_runs),
                      med(ours_solve), med(ours_read_solve), med(ours_process))


def max_abs_dv(ours: dict[str, float], theirs: dict[str, float]) -> tuple[float, float]:
    """(max |V_ours - V_theirs| in volts, that over max |V_theirs|) over the nodes of ``theirs``."""
    if not theirs:
        return 0.0, 0.0
    gap = max(abs(ours[n] - v) for n, v in theirs.items())
    scale = max(abs(v) for v in theirs.values())
    return gap, gap / scale if scale > 0 else gap


def resnet_sim_command() -> list[str]:
    """The ``resnet-sim`` console script of this interpreter's environment (or of PATH)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("resnet-sim", path=search)
    if found is None:
        raise FileNotFoundError("the resnet-sim command is not installed (pip install -e .)")
    return [found]


def time_process(command: list[str], repeat: int, timeout: float | None = None) -> list[tuple[float, float]]:
    """(wall, user + system CPU) seconds of ``repeat`` runs of ``command`` (output discarded); RuntimeError
    naming the command and its stderr when it fails, subprocess.TimeoutExpired after ``timeout`` s."""
    times = []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), children_cpu()
        proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
        times.append((time.perf_counter() - start, children_cpu() - cpu_start))
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with status {proc.returncode}: {proc.stderr.strip()}")
    return times
