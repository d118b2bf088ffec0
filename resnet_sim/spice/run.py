"""Run ngspice in batch mode on a deck and read its operating point back, keyed by our names.

ngspice can exit 0 with wrong numbers (after "singular matrix", failed gmin or source stepping, ...), so
its output is scanned for those messages too. Every failure is a ``SpiceError`` carrying ngspice's lines.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .export import SpiceDeck
from .raw import RawFileError, read_raw

# messages after which ngspice's numbers cannot be trusted, even with exit status 0
_FAILURE = re.compile(
    r"singular matrix|gmin stepping failed|source stepping failed|timestep too small|\berror\b|no such"
    r"|can't find|unknown (parameter|device|subckt|model)",
    re.IGNORECASE,
)
_GMIN = re.compile(r"gmin stepping failed", re.IGNORECASE)
_ACCT = re.compile(r"^\s*([A-Za-z][A-Za-z .()]*?)\s*(?:\(([a-z]+)\))?\s*=\s*([-+0-9.eE]+)\s*(MB\.?)?\s*$")


class SpiceError(RuntimeError):
    """ngspice failed or reported a failure; ``lines`` are ngspice's own message lines."""

    def __init__(self, message: str, lines=()):
        self.lines = list(lines)
        detail = "".join(f"\n  {line}" for line in self.lines)
        super().__init__(message + detail)


class SpiceTimeout(SpiceError):
    """ngspice ran past its time limit and was killed."""


@dataclass
class SpiceResult:
    """An ngspice operating point in our names.

    ``voltages`` node -> V (volts); ``currents`` element -> A (amperes, SPICE sign: the current entering the
    source's + terminal and flowing through it); ``wall`` seconds of the whole ngspice process and ``cpu``
    its user + system CPU seconds;
    ``stats`` ngspice's ``.options acct`` figures (keys like ``total_analysis_time`` in seconds,
    ``maximum_ngspice_program_size`` in MB, counts such as ``total_iterations``); ``log`` its stdout+stderr.
    """

    voltages: dict[str, float]
    currents: dict[str, float]
    wall: float
    cpu: float
    stats: dict[str, float] = field(default_factory=dict)
    log: str = ""


def ngspice_binary(path: str = "ngspice") -> str:
    """Absolute path of the ngspice executable; SpiceError with the install hint when there is none."""
    found = shutil.which(path)
    if found is None:
        raise SpiceError(f"ngspice not found ({path!r}); install it, e.g. `apt-get install ngspice`")
    return found


def run(deck: SpiceDeck, timeout: float = 600.0, ngspice: str = "ngspice",
        max_memory: float | None = None) -> SpiceResult:
    """Simulate ``deck`` with ``ngspice -b -r OUT.raw`` in a temporary directory, killed after ``timeout`` s;
    ``max_memory`` (bytes) caps ngspice's address space (it then fails instead of exhausting the machine)."""
    binary = ngspice_binary(ngspice)
    limit = None if max_memory is None else (lambda: _limit_memory(int(max_memory)))
    with tempfile.TemporaryDirectory(prefix="resnet_sim_spice_") as tmp:
        deck_path, raw_path = Path(tmp, "deck.cir"), Path(tmp, "out.raw")
        deck_path.write_text(deck.text)
        start, cpu_start = time.perf_counter(), children_cpu()
        try:
            proc = subprocess.run([binary, "-b", "-r", str(raw_path), str(deck_path)], cwd=tmp,
                                  capture_output=True, text=True, errors="replace", timeout=timeout,
                                  preexec_fn=limit)
        except subprocess.TimeoutExpired:
            raise SpiceTimeout(f"ngspice timed out after {timeout:g} s") from None
        wall, cpu = time.perf_counter() - start, children_cpu() - cpu_start
        log = proc.stdout + proc.stderr
        check(proc.returncode, log, raw_path)
        try:
            point = read_raw(raw_path)[0].point()
        except RawFileError as err:
            raise SpiceError(f"ngspice wrote an unreadable raw file: {err}", _tail(log)) from None
    voltages, currents = to_our_names(point, deck)
    return SpiceResult(voltages, currents, wall, cpu, parse_acct(log), log)


def children_cpu() -> float:
    """User + system CPU seconds of this process's finished (waited-for) child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _limit_memory(n_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (n_bytes, n_bytes))


def check(returncode: int, log: str, raw_path: Path) -> None:
    """Raise SpiceError on a non-zero exit, a failure message in ``log``, or a missing raw file.

    A failed gmin stepping is no failure when every source stepping ngspice then started completed (ngspice
    tries source stepping next and reports its own failure as "source stepping failed")."""
    lower = log.lower()
    stepped = 0 < lower.count("starting source stepping") <= lower.count("source stepping completed")
    failures = [line.strip() for line in log.splitlines()
                if _FAILURE.search(line) and not (stepped and _GMIN.search(line))]
    if returncode != 0:
        raise SpiceError(f"ngspice exited with status {returncode}", failures or _tail(log))
    if failures:
        raise SpiceError("ngspice reported a failure (its numbers cannot be trusted)", failures)
    if not raw_path.exists():
        raise SpiceError("ngspice wrote no raw file", _tail(log))


def _tail(log: str, n: int = 10) -> list[str]:
    return [line for line in log.splitlines() if line.strip()][-n:]


def to_our_names(point: dict[str, float], deck: SpiceDeck) -> tuple[dict[str, float], dict[str, float]]:
    """Split a raw-file point into node voltages and branch currents under our names.

    ngspice spells them ``v(node)`` and ``i(vname)`` (older forms: ``node`` and ``vname#branch``); names it
    made up (internal nodes) are left out.
    """
    voltages, currents = {}, {}
    for name, value in point.items():
        if name.startswith("i(") and name.endswith(")"):
            branch = deck.branches.get(name[2:-1])
        elif name.endswith("#branch"):
            branch = deck.branches.get(name[: -len("#branch")])
        else:
            node = deck.nodes.get(name[2:-1] if name.startswith("v(") and name.endswith(")") else name)
            if node is not None:
                voltages[node] = float(value)
            continue
        if branch is not None:
            currents[branch] = float(value)
    return voltages, currents


def parse_acct(log: str) -> dict[str, float]:
    """ngspice's ``name = number`` statistics (``.options acct``) as ``snake_case_name -> float``.

    Times are seconds (ngspice prints them to the millisecond), sizes MB, the rest counts; ngspice prints
    some figures twice (e.g. per analysis), the last one wins.
    """
    stats = {}
    for line in log.splitlines():
        match = _ACCT.match(line)
        if match:
            key = re.sub(r"[^a-z0-9]+", "_", match.group(1).lower()).strip("_")
            stats[key] = float(match.group(3))
    return stats
