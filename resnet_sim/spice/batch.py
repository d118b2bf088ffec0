"""Many operating points from one ngspice process: a batch of samples, each at several nudging strengths.

A batch is B samples (values of the ``.inputs`` sources, volts or amperes) times P phases (nudging strengths
β_p, siemens; 0 is the free phase) with targets y (B, n_outputs) volts: phase p pulls each output o_j towards
y_j through a conductance β_p (the β·C term of DESIGN.md section 5). Two set-ups:

``"dc"`` (the faster): one ``.dc`` sweep of a source over the point index k = 0 .. B·P − 1 (sample k // P,
phase k % P). Each input source whose value differs between samples becomes a behavioural source
(``b.<name>``, ``v=`` or ``i=``) whose value is a ``pwl(v(k), ...)`` table, flat on [k − ¼, k + ¼]; each
output gets a behavioural current source β(k)·(v(o_j) − y_j(k)), also from tables. ngspice sets the circuit
up and orders its matrix once per batch and starts each point's Newton iteration from the previous point's
solution (free, −β, +β, the next sample's free, ...), falling back on its full operating-point search
where that fails.

``"op"``: a ``.control`` block that per sample sets the input sources with ``alter`` (those that changed)
and per phase sets a resistor 1/β_p from o_j to a source at y_j (``OPEN_RESISTANCE`` for β = 0; negative for
β < 0, which ngspice accepts), then runs ``op`` and appends the operating point to a binary raw file. At
every ``op`` ngspice sets the circuit up again, orders its matrix again and searches from scratch.

Both read the node voltages back at full precision (binary raw files).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..circuit import Circuit
from ..netlist.writer import OPEN_RESISTANCE, _element_names
from .export import SpiceOptions, export
from .raw import RawFileError, read_raw
from .run import SpiceError, SpiceTimeout, _tail, check, children_cpu, ngspice_binary, parse_acct

__all__ = ["MODES", "BatchDeck", "BatchResult", "batch_deck", "run_batch", "simulate_batch"]

MODES = ("dc", "op")
_RAW = "points.raw"
_LINE = 200  # characters per line of a behavioural source's table (ngspice '+' continuation lines)


@dataclass(frozen=True)
class BatchDeck:
    """An ngspice deck for a batch: ``text``, ``mode`` (of :data:`MODES`), ``n_samples`` B, ``n_phases`` P,
    ``n_nodes`` the circuit's node count (ground, id 0, included) and ``node_ids`` ngspice node name -> our
    node id."""

    text: str
    mode: str
    n_samples: int
    n_phases: int
    n_nodes: int
    node_ids: dict[str, int]


@dataclass
class BatchResult:
    """The operating points of a batch.

    ``potentials`` (P, n_nodes, B) volts indexed by phase, node id (row 0: ground) and sample, laid out like
    :attr:`OperatingPoint.potentials` per phase; ``wall`` seconds of the ngspice process and ``cpu`` its user +
    system CPU seconds; ``read`` seconds spent reading its raw file here and ``raw_bytes`` that file's size;
    ``stats`` ngspice's own figures (see ``parse_acct``: ``total_analysis_time``, ``netlist_loading_time``,
    ``total_iterations``, ...); ``log`` its stdout + stderr.
    """

    potentials: np.ndarray
    wall: float
    cpu: float
    read: float
    raw_bytes: int
    stats: dict[str, float] = field(default_factory=dict)
    log: str = ""


def batch_deck(circuit: Circuit, inputs, betas=(0.0,), targets=None, mode: str = "dc",
               options: SpiceOptions = SpiceOptions()) -> BatchDeck:
    """The deck that solves ``circuit`` for each row of ``inputs`` (B, n_inputs) at each nudging strength of
    ``betas`` (P values, siemens) towards ``targets`` (B, n_outputs) volts (needed when a beta is not 0), in
    the set-up ``mode`` (module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown batch mode {mode!r}; choose one of {', '.join(MODES)}")
    inputs = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    betas = [float(b) for b in np.atleast_1d(betas)]
    n_out = len(circuit.outputs)
    if inputs.ndim != 2 or inputs.shape[1] != len(circuit.inputs) or not len(inputs):
        raise ValueError(f"inputs must have shape (B, {len(circuit.inputs)}), got {inputs.shape}")
    nudged = any(b != 0.0 for b in betas)
    if nudged and not n_out:
        raise ValueError("nudged phases need .outputs")
    if targets is None:
        if nudged:
            raise ValueError("nudged phases need targets")
        targets = np.zeros((len(inputs), n_out))
    targets = np.asarray(targets, dtype=np.float64).reshape(len(inputs), n_out)
    if not (np.all(np.isfinite(inputs)) and np.all(np.isfinite(targets)) and np.all(np.isfinite(betas)) and betas):
        raise ValueError("inputs, targets and betas must be finite (and betas not empty)")
    sources = []  # (deck name, 'v' or 'i') per input
    for name in circuit.inputs:
        kind = circuit.element(name)[0]
        if kind not in "VI":
            raise ValueError(f"input {name} is not a voltage or current source")
        sources.append((_element_names(kind, [name])[0], kind.lower()))
    taken = {n.lower() for n in circuit.node_names}
    for kind, table in circuit.tables.items():
        taken.update(n.lower() for n in _element_names(kind, table.names.tolist()))
    build = _dc_cards if mode == "dc" else _op_cards
    replace, analysis = build(circuit, sources, inputs, betas, targets, taken)
    lines = export(circuit, options, analysis=analysis).text.split("\n")
    for i in range(1, len(lines)):  # line 0 is the title
        card = replace.get(lines[i].split(" ", 1)[0])
        if card is not None:
            fields = lines[i].split()
            lines[i] = f"{card[0]} {fields[1]} {fields[2]} {card[1]}"
    node_ids = {name: i for i, name in enumerate(circuit.node_names) if i}
    return BatchDeck("\n".join(lines), mode, len(inputs), len(betas), circuit.n_nodes, node_ids)


def _fresh(base: str, taken: set) -> str:
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _pwl(index: str, values) -> str:
    """A ``pwl`` of ``v(index)`` equal to values[k] on [k − ¼, k + ¼], broken into '+' continuation lines."""
    points = [f"{k - 0.25!r},{v!r},{k + 0.25!r},{v!r}" for k, v in enumerate(values)]
    lines, line = [], f"pwl(v({index})"
    for point in points:
        if len(line) > _LINE:
            lines.append(line + ",")
            line = "+ " + point
        else:
            line += "," + point
    return "\n".join(lines + [line + ")"])


def _dc_cards(circuit, sources, inputs, betas, targets, taken):
    """(input cards to replace: deck name -> (its new name, its value), the lines before .end)."""
    P = len(betas)
    index, sweep = _fresh("k", taken), _fresh("v.k", taken)
    replace = {}
    for (name, letter), column in zip(sources, inputs.T):
        if np.any(column != column[0]):
            replace[name] = (f"b.{name}", f"{letter}=" + _pwl(index, np.repeat(column, P).tolist()))
        else:  # the same in every sample: the plain source, at that value
            replace[name] = (name, repr(float(column[0])))
    cards = []
    if any(betas):
        beta = _pwl(index, np.tile(betas, len(inputs)).tolist())
        for j, node in enumerate(circuit.outputs):
            target = _pwl(index, np.repeat(targets[:, j], P).tolist())
            cards.append(f"{_fresh(f'b.nudge.{j}', taken)} {node} 0 i=({beta})*(v({node})-({target}))")
    return replace, [*cards, f"{sweep} {index} 0 0", f".dc {sweep} 0 {len(inputs) * P - 1} 1"]


def _op_cards(circuit, sources, inputs, betas, targets, taken):
    """(input cards to replace, the nudging elements and the .control block)."""
    replace = {name: (name, repr(value)) for (name, _), value in zip(sources, inputs[0].tolist())}
    cards, nudges = [], []
    if any(betas):
        for j, node in enumerate(circuit.outputs):
            r, v, mid = _fresh(f"r.nudge.{j}", taken), _fresh(f"v.nudge.{j}", taken), _fresh(f"nudge.{j}", taken)
            cards += [f"{r} {node} {mid} {OPEN_RESISTANCE!r}", f"{v} {mid} 0 0.0"]
            nudges.append((r, v))
    control = [".control", "set appendwrite"]
    previous, resistance, target = inputs[0], OPEN_RESISTANCE, np.zeros(len(nudges))
    for b, row in enumerate(inputs):
        control += [f"alter {name} = {value!r}" for (name, _), value, old in zip(sources, row.tolist(), previous)
                    if b and value != old]
        previous = row
        for beta in betas:
            if nudges and (1.0 / beta if beta else OPEN_RESISTANCE) != resistance:
                resistance = 1.0 / beta if beta else OPEN_RESISTANCE
                control += [f"alter {r} = {resistance!r}" for r, _ in nudges]
            if nudges and np.any(targets[b] != target):
                target = targets[b]
                control += [f"alter {v} = {y!r}" for (_, v), y in zip(nudges, target.tolist())]
            control += ["op", f"write {_RAW}", "destroy all"]
    return replace, [*cards, *control, "rusage everything", "quit", ".endc"]


def run_batch(deck: BatchDeck, timeout: float = 600.0, ngspice: str = "ngspice") -> BatchResult:
    """Run ``deck`` with ngspice in a temporary directory (killed after ``timeout`` s) and read its points;
    SpiceError when ngspice fails, reports a failure or writes fewer points than the batch has."""
    binary = ngspice_binary(ngspice)
    with tempfile.TemporaryDirectory(prefix="resnet_sim_batch_") as tmp:
        deck_path, raw_path = Path(tmp, "deck.cir"), Path(tmp, _RAW)
        deck_path.write_text(deck.text)
        command = [binary, "-b", *(["-r", _RAW] if deck.mode == "dc" else []), "deck.cir"]
        start, cpu_start = time.perf_counter(), children_cpu()
        try:
            proc = subprocess.run(command, cwd=tmp, capture_output=True, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SpiceTimeout(f"ngspice timed out after {timeout:g} s") from None
        wall, cpu = time.perf_counter() - start, children_cpu() - cpu_start
        log = proc.stdout + proc.stderr
        check(proc.returncode, log, raw_path)
        start = time.perf_counter()
        try:
            plots = read_raw(raw_path)
        except RawFileError as err:
            raise SpiceError(f"ngspice wrote an unreadable raw file: {err}", _tail(log)) from None
        potentials = _potentials(deck, plots, log)
        read, raw_bytes = time.perf_counter() - start, raw_path.stat().st_size
    return BatchResult(potentials, wall, cpu, read, raw_bytes, parse_acct(log), log)


def _potentials(deck: BatchDeck, plots, log: str) -> np.ndarray:
    names = plots[0].names
    if any(p.names != names for p in plots):
        raise SpiceError("ngspice wrote points with different variables", _tail(log))
    values = np.concatenate([p.values for p in plots])
    B, P = deck.n_samples, deck.n_phases
    if values.shape[0] != B * P or np.iscomplexobj(values):
        raise SpiceError(f"ngspice wrote {values.shape[0]} points for a batch of {B} samples x {P} phases", _tail(log))
    potentials = np.full((P, deck.n_nodes, B), np.nan)
    potentials[:, 0] = 0.0
    values = values.reshape(B, P, -1)
    for column, name in enumerate(names):
        node = deck.node_ids.get(name[2:-1] if name.startswith("v(") and name.endswith(")") else name)
        if node is not None:
            potentials[:, node] = values[:, :, column].T
    return potentials


def simulate_batch(circuit: Circuit, inputs, betas=(0.0,), targets=None, mode: str = "dc", timeout: float = 600.0,
                   ngspice: str = "ngspice", **options) -> BatchResult:
    """ngspice's operating points of ``circuit`` for a batch (see ``batch_deck``); ``options`` are SpiceOptions
    fields."""
    return run_batch(batch_deck(circuit, inputs, betas, targets, mode, SpiceOptions(**options)), timeout, ngspice)
