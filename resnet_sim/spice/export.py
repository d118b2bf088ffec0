"""Circuit -> ngspice deck: the ideal diode made near-ideal, simulator options, and the name maps back.

ngspice has no ideal diode. Each diode becomes an exponential diode ``.model ... D(IS=is N=n)``; a model's
series resistance ``rs`` becomes the SPICE parameter ``RS``; a forward drop ``vf`` becomes a ``vf`` volt
source in series (anode -> source -> internal node -> diode), whose branch current is the diode current.

The error this implies (Vt = kT/q = 25.85 mV at 27 C): at forward current I the diode drops
V = N Vt ln(1 + I/IS) instead of 0 (plus VF), i.e. N Vt = 2.6e-8 V per e-fold of current with the
default N = 1e-6: 5.4e-7 V at 1 mA, 3.6e-7 V at 1 uA; reverse biased it leaks IS = 1e-12 A (plus ngspice's
GMIN = 1e-12 S across the junction). Measured gaps to the ideal answer are in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..circuit import Circuit


@dataclass(frozen=True)
class SpiceOptions:
    """How a circuit is simulated in ngspice.

    ``diode_is`` saturation current (A) and ``diode_n`` emission coefficient of the near-ideal diode;
    ``reltol``, ``vntol`` (V), ``abstol`` (A) ngspice's convergence tolerances; ``acct`` asks ngspice for its
    own timing statistics (``.options acct``).
    """

    diode_is: float = 1e-12
    diode_n: float = 1e-6
    reltol: float = 1e-6
    vntol: float = 1e-9
    abstol: float = 1e-15
    acct: bool = True


@dataclass(frozen=True)
class SpiceDeck:
    """An ngspice deck and how to read its results back.

    ``text`` the deck; ``nodes`` ngspice node name -> our node name; ``branches`` ngspice element name ->
    our element name, for the elements whose current ngspice reports (V and E sources, and the series source
    of each diode with a forward drop, which reports that diode's current).
    """

    text: str
    nodes: dict[str, str]
    branches: dict[str, str]


def spice_name(kind: str, name: str) -> str:
    """Our element name as an ngspice card name: it must start with the kind letter, so ``x1.r3`` becomes
    ``r.x1.r3`` (ngspice's own spelling of flattened names)."""
    return name if name.startswith(kind.lower()) else f"{kind.lower()}.{name}"


def export(circuit: Circuit, options: SpiceOptions = SpiceOptions()) -> SpiceDeck:
    """The ngspice deck of ``circuit`` for a ``.op`` analysis (training annotations dropped)."""
    spice = _near_ideal(circuit)
    lines = [_title(circuit), *_cards(spice.circuit), *_models(circuit, options), *_option_lines(options),
             ".op", ".end", ""]
    nodes = {name: name for name in circuit.node_names[1:]}
    return SpiceDeck("\n".join(lines), nodes, spice.branches)


@dataclass
class _Split:
    circuit: Circuit
    branches: dict[str, str]


def _near_ideal(circuit: Circuit) -> _Split:
    """A copy of ``circuit`` with ngspice card names, diode models renamed to ours in ``_models``, and each
    forward drop moved into a series voltage source through a fresh internal node."""
    out = Circuit(circuit.title)
    out.nodes_of(circuit.node_names[1:])  # same ids as in ``circuit``
    branches = {}
    for kind, table in circuit.tables.items():
        if not len(table):
            continue
        names = [spice_name(kind, n) for n in table.names.tolist()]
        if kind in "VE":
            branches.update(zip(names, table.names.tolist()))
        if kind != "D":
            out.add_many(kind, names, table.nodes, table.value, table.models)
            continue
        nodes = table.nodes.copy()
        for row, model in enumerate(table.models.tolist()):
            vf = circuit.diode_model(model).vf
            if vf != 0.0:
                inner = _fresh_node(out, f"vf.{table.names[row]}")
                source = f"v.vf.{table.names[row]}"
                out.add("V", source, [int(nodes[row, 0]), inner], vf)
                branches[source] = str(table.names[row])
                nodes[row, 0] = out.node_id(inner)
        out.add_many("D", names, nodes, table.value, [_model_name(m) for m in table.models.tolist()])
    return _Split(out, branches)


def _fresh_node(circuit: Circuit, name: str) -> str:
    while circuit.has_node(name):
        name += "_"
    circuit.node(name)
    return name


def _model_name(model: str) -> str:
    return f"rs_{model}" if model else "rs_ideal"


def _models(circuit: Circuit, options: SpiceOptions) -> list[str]:
    """One ``.model`` card per diode model in use: IS and N from ``options``, RS from our model."""
    lines = []
    for model in sorted(set(circuit["D"].models.tolist())):
        rs = circuit.diode_model(model).rs
        extra = f" RS={rs!r}" if rs else ""
        lines.append(f".model {_model_name(model)} D(IS={options.diode_is!r} N={options.diode_n!r}{extra})")
    return lines


def _option_lines(options: SpiceOptions) -> list[str]:
    lines = [f".options reltol={options.reltol!r} vntol={options.vntol!r} abstol={options.abstol!r}"]
    return lines + [".options acct"] if options.acct else lines


def _title(circuit: Circuit) -> str:
    return circuit.title.splitlines()[0] if circuit.title.strip() else "resnet_sim circuit"


def _cards(circuit: Circuit) -> list[str]:
    """Element cards, one per element: ``name node... value`` (diodes: ``name a k model``)."""
    node_names = np.asarray(circuit.node_names, dtype=object)
    lines = []
    for kind, table in circuit.tables.items():
        if not len(table):
            continue
        nodes = [" ".join(row) for row in node_names[table.nodes].tolist()]
        tail = table.models.tolist() if kind == "D" else [repr(v) for v in table.value.tolist()]
        lines.extend(f"{n} {nd} {t}" for n, nd, t in zip(table.names.tolist(), nodes, tail))
    return lines
