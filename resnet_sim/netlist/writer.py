"""``write_netlist``: Circuit -> SPICE text that ngspice runs and read_netlist reads back to an equal Circuit.

Layout: title line, a comment, ``.model`` cards, elements by kind (R V I D E C L), the training cards as
``*@`` comments (ngspice skips them, read_netlist reads them), ``.op`` and ``.end``. An open resistor
(resistance ``inf``, 0 S: a trained conductance at 0) is written with ``OPEN_RESISTANCE`` ohms, which ngspice
simulates, and named on a ``*@ .open`` card, which read_netlist turns back into ``inf``. Values are written
with ``repr`` so they round-trip bit for bit. An element whose name does not start with its kind letter,
or contains ``.`` (flattened names such as ``x1.r3``), is written ``<letter>.<name>`` (``r.x1.r3``),
ngspice's own style for flattened names; the reader strips that prefix again. Ideal diodes (model "")
name the stand-in model ``resnet_ideal``, a sharp ngspice diode that the reader maps back to "".
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..circuit import KINDS, Circuit
from .elements import IDEAL_MODEL

# what ngspice simulates for an ideal diode: emission coefficient 0.01 gives a 0.26 mV thermal voltage
IDEAL_MODEL_CARD = f".model {IDEAL_MODEL} D(IS=1e-14 N=0.01)"
# an open resistor (0 S, resistance inf) is written with this resistance, for ngspice, and named on a
# '*@ .open' card, which read_netlist reads back as inf; names per such card:
OPEN_RESISTANCE = 1e300
OPEN_NAMES_PER_CARD = 32
# characters the reader (and ngspice) would not keep in a name; "$" starts a comment only at a token's start
# (ngspice 39 reads node a$b and element R$2 as names)
_BAD_NAME = re.compile(r"[\s{}'\"=(),;]|(?:^|\x00)\$")


def _check_names(what: str, names: list[str]) -> None:
    if not names:
        return
    if min(map(len, names)) == 0:
        raise ValueError(f"cannot write an empty {what} name")
    bad = _BAD_NAME.search("\x00".join(names))
    if bad is not None:
        culprit = next(n for n in names if _BAD_NAME.search(n))
        raise ValueError(f"cannot write {what} name {culprit!r}: it contains {bad.group().strip(chr(0))!r}"
                         f"{' at its start' if bad.group().endswith('$') else ''}")


def _element_names(kind: str, names: list[str]) -> list[str]:
    letter = kind.lower()
    return [n if n[:1] == letter and "." not in n else f"{letter}.{n}" for n in names]


def _values(kind: str, values: np.ndarray) -> list[str]:
    if kind == "R":
        if np.any(values <= 0) or np.any(np.isnan(values)):
            raise ValueError("cannot write resistances <= 0 ohms")
        values = np.where(np.isinf(values), OPEN_RESISTANCE, values)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"cannot write non-finite {kind} values")
    return list(map(repr, values.tolist()))


def _model_card(name: str, model) -> str:
    params = ([("VF", model.vf)] if model.vf != 0 else []) + ([("RS", model.rs)] if model.rs != 0 else [])
    params += [(key.upper(), value) for key, value in model.params]
    for key, value in params:
        if not math.isfinite(value):
            raise ValueError(f"cannot write model {name!r}: {key} is not finite")
    return f".model {name} D" + (f"({' '.join(f'{k}={v!r}' for k, v in params)})" if params else "")


def write_netlist(circuit: Circuit) -> str:
    """SPICE text of ``circuit`` (see the module docstring); ValueError if a name or value cannot be written."""
    c = circuit
    if "\n" in c.title or "\r" in c.title:
        raise ValueError("cannot write a title that spans several lines")
    node_names = list(c.node_names)
    _check_names("node", node_names)
    out = [c.title, "* written by resnet_sim (training cards follow '*@')"]
    diodes = c["D"]
    if len(diodes) and np.any(diodes.models == ""):
        out.append(IDEAL_MODEL_CARD)
    _check_names("model", list(c.models))
    for name, model in c.models.items():
        if name == IDEAL_MODEL:
            raise ValueError(f"model name {IDEAL_MODEL!r} is reserved for ideal diodes")
        out.append(_model_card(name, model))
    unknown = set(diodes.models.tolist()) - set(c.models) - {""}
    if unknown:
        raise ValueError(f"diodes use undefined models: {', '.join(sorted(unknown))}")
    nodes_obj = np.asarray(node_names, dtype=object)
    for kind in KINDS:
        table = c[kind]
        if not len(table):
            continue
        names = table.names.tolist()
        _check_names(f"{kind} element", names)
        columns = [_element_names(kind, names)]
        columns += [nodes_obj[table.nodes[:, j]].tolist() for j in range(table.nodes.shape[1])]
        if kind == "D":
            columns.append([m or IDEAL_MODEL for m in table.models.tolist()])
        else:
            columns.append(_values(kind, table.value))
        out.append("\n".join(map(" ".join, zip(*columns))))
    if c.inputs:
        out.append("*@ .inputs " + " ".join(c.inputs))
    if c.outputs:
        out.append("*@ .outputs " + " ".join(c.outputs))
    for spec in c.trainable:
        bounds = "".join(f" {key}={value!r}" for key, value in (("gmin", spec.gmin), ("gmax", spec.gmax))
                         if value is not None)
        out.append("*@ .trainable " + " ".join(spec.patterns) + bounds)
    open_names = c["R"].names[np.isinf(c["R"].value)].tolist()
    for start in range(0, len(open_names), OPEN_NAMES_PER_CARD):
        out.append("*@ .open " + " ".join(open_names[start:start + OPEN_NAMES_PER_CARD]))
    out += [".op", ".end", ""]
    return "\n".join(out)
