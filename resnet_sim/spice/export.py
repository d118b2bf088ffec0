"""Circuit -> ngspice deck: the ideal diode made near-ideal, simulator options, and the name maps back.

The cards are ``write_netlist``'s (flattened names such as ``x1.r3`` become ``r.x1.r3``, ngspice's own
spelling); its ``.model`` cards and training comments are replaced by the ones below. ngspice has no ideal
diode. Each diode becomes an exponential diode ``.model ... D(IS=is N=n)``; a model's
series resistance ``rs`` becomes the SPICE parameter ``RS``; a forward drop ``vf`` becomes a ``vf`` volt
source in series (anode -> source -> internal node -> diode), whose branch current is the diode current.

The error this implies (Vt = kT/q = 25.85 mV at 27 C): at forward current I the diode drops
V = N Vt ln(1 + I/IS) instead of 0 (plus VF), i.e. N Vt = 2.6e-8 V per e-fold of current with the
default N = 1e-6: 5.4e-7 V at 1 mA, 3.6e-7 V at 1 uA; reverse biased it leaks IS = 1e-12 A (plus ngspice's
GMIN = 1e-12 S across the junction). Measured gaps to the ideal answer are in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..circuit import Circuit
from ..netlist import write_netlist
from ..netlist.elements import IDEAL_MODEL
from ..netlist.writer import _element_names


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


# lines of write_netlist's text replaced here: its diode models, training cards (comments), analysis, end
_REPLACED = (".model", "*@", ".op", ".end")


def export(circuit: Circuit, options: SpiceOptions = SpiceOptions(), analysis=(".op",)) -> SpiceDeck:
    """The ngspice deck of ``circuit``: ``write_netlist``'s cards with the diode models and options of
    ``options`` (training annotations dropped), then the lines of ``analysis`` (``.op`` by default; e.g. more
    cards and a ``.dc`` card, or a ``.control`` block) and ``.end``."""
    split, branches = _near_ideal(circuit)
    lines = write_netlist(split).rstrip("\n").split("\n")
    lines = [lines[0], *(line for line in lines[1:] if not line.startswith(_REPLACED)),
             *_models(circuit, options), *_option_lines(options), *analysis, ".end", ""]
    nodes = {name: name for name in circuit.node_names[1:]}
    return SpiceDeck("\n".join(lines), nodes, branches)


def _near_ideal(circuit: Circuit) -> tuple[Circuit, dict[str, str]]:
    """A copy of ``circuit`` in which each diode's forward drop is a series voltage source through a fresh
    internal node, and the map ngspice element name -> our element name of the branches ngspice reports."""
    out = Circuit(circuit.title)
    out.nodes_of(circuit.node_names[1:])  # same ids as in ``circuit``
    out.models = dict(circuit.models)
    branches = {}
    for kind, table in circuit.tables.items():
        if not len(table):
            continue
        names = table.names.tolist()
        if kind in "VE":
            branches.update(zip(_element_names(kind, names), names))
        nodes = table.nodes
        if kind == "D":
            nodes = nodes.copy()
            for row, model in enumerate(table.models.tolist()):
                vf = circuit.diode_model(model).vf
                if vf != 0.0:
                    inner = _fresh_node(out, f"vf.{names[row]}")
                    out.add("V", inner, [int(nodes[row, 0]), inner], vf)
                    branches.update(zip(_element_names("V", [inner]), [names[row]]))
                    nodes[row, 0] = out.node_id(inner)
        out.add_many(kind, table.names, nodes, table.value, table.models, lower=False)
    return out, branches


def _fresh_node(circuit: Circuit, name: str) -> str:
    while circuit.has_node(name):
        name += "_"
    circuit.node(name)
    return name


def _models(circuit: Circuit, options: SpiceOptions) -> list[str]:
    """One ``.model`` card per diode model in use: IS and N from ``options``, RS from our model."""
    lines = []
    for model in sorted(set(circuit["D"].models.tolist())):
        rs = circuit.diode_model(model).rs
        extra = f" RS={rs!r}" if rs else ""
        lines.append(f".model {model or IDEAL_MODEL} D(IS={options.diode_is!r} N={options.diode_n!r}{extra})")
    return lines


def _option_lines(options: SpiceOptions) -> list[str]:
    lines = [f".options reltol={options.reltol!r} vntol={options.vntol!r} abstol={options.abstol!r}"]
    return lines + [".options acct"] if options.acct else lines
