"""The Circuit: a node table, element arrays per kind, diode models and training annotations.

Elements are stored column-wise (one numpy array per field and kind), never one Python object per
element, so that a netlist with millions of resistors loads in seconds. Names (elements and nodes)
are lower case. Node 0 is ground; ``gnd`` is an alias of it.

Element kinds and their columns (node columns are int64 node ids, values float64):

=====  =========================  ==========================================================
kind   node columns               value
=====  =========================  ==========================================================
R      a, b                       resistance, ohms (> 0; ``inf`` is an open resistor, 0 S)
V      p, n                       voltage v_p - v_n, volts
I      p, n                       current, amperes, SPICE sign: flows from p through the source to n
D      a (anode), k (cathode)     -- (the ``model`` column names a DiodeModel, "" for the ideal one)
E      p, n, cp, cn               gain A: v_p - v_n = A (v_cp - v_cn)
C      a, b                       capacitance, farads (open at DC)
L      a, b                       inductance, henries (short at DC)
=====  =========================  ==========================================================
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np

GROUND = "0"
GROUND_ALIASES = frozenset({"0", "gnd"})

# kind -> names of its node columns
NODE_COLUMNS = {
    "R": ("a", "b"),
    "V": ("p", "n"),
    "I": ("p", "n"),
    "D": ("a", "k"),
    "E": ("p", "n", "cp", "cn"),
    "C": ("a", "b"),
    "L": ("a", "b"),
}
KINDS = tuple(NODE_COLUMNS)


@dataclass(frozen=True)
class DiodeModel:
    """Ideal diode with forward drop ``vf`` (volts) and series resistance ``rs`` (ohms, 0 = none).

    ``params`` keeps the other SPICE parameters as given (they do not change the ideal model).
    """

    vf: float = 0.0
    rs: float = 0.0
    params: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class TrainableSpec:
    """A ``.trainable`` card: glob patterns over resistor and current-source names, with optional bounds on the
    resistors' conductances (siemens; a current source's value, amperes, is not bounded)."""

    patterns: tuple[str, ...]
    gmin: float | None = None
    gmax: float | None = None


class ElementTable:
    """Column arrays of one element kind. Appends are buffered; the arrays are built on first read."""

    def __init__(self, kind: str):
        self.kind = kind
        self.node_columns = NODE_COLUMNS[kind]
        self._chunks: list[tuple] = []  # (names, nodes (k, ncols), values, models)
        self._cache: tuple | None = None

    def append(self, names, nodes, values, models=None) -> None:
        """Append elements: names (m,) str, nodes (m, n_node_columns) int, values (m,) float, models (m,) str."""
        names = np.asarray(names, dtype=str).reshape(-1)
        nodes = np.asarray(nodes, dtype=np.int64).reshape(len(names), len(self.node_columns))
        values = np.asarray(values, dtype=np.float64).reshape(len(names))
        if models is None:
            models = np.full(len(names), "", dtype=str)
        models = np.asarray(models, dtype=str).reshape(len(names))
        if self._cache is not None:
            self._chunks = [self._cache]
            self._cache = None
        self._chunks.append((names, nodes, values, models))

    def _arrays(self) -> tuple:
        if self._cache is None:
            if not self._chunks:
                k = len(self.node_columns)
                self._cache = (np.array([], dtype=str), np.zeros((0, k), np.int64), np.zeros(0), np.array([], dtype=str))
            elif len(self._chunks) == 1:
                self._cache = self._chunks[0]
            else:
                self._cache = tuple(np.concatenate(parts) for parts in zip(*self._chunks))
            self._chunks = []
        return self._cache

    def __len__(self) -> int:
        return len(self._arrays()[0])

    @property
    def names(self) -> np.ndarray:
        """(m,) element names, lower case."""
        return self._arrays()[0]

    @property
    def nodes(self) -> np.ndarray:
        """(m, n_node_columns) node ids, columns in the order of ``node_columns``."""
        return self._arrays()[1]

    @property
    def value(self) -> np.ndarray:
        """(m,) element values in SI units (see the module docstring)."""
        return self._arrays()[2]

    @value.setter
    def value(self, new) -> None:
        names, nodes, _, models = self._arrays()
        new = np.asarray(new, dtype=np.float64)
        if new.shape != names.shape:
            raise ValueError(f"{self.kind} values must have shape {names.shape}, got {new.shape}")
        self._cache = (names, nodes, new.copy(), models)

    @property
    def models(self) -> np.ndarray:
        """(m,) model names (diodes; "" elsewhere)."""
        return self._arrays()[3]

    def column(self, name: str) -> np.ndarray:
        """Node ids of one node column, e.g. ``column("a")``."""
        return self.nodes[:, self.node_columns.index(name)]


class Circuit:
    """A DC circuit: nodes, elements of kinds R V I D E C L, diode models, and annotations.

    Attributes: ``title``; ``models`` (name -> DiodeModel); ``inputs`` (source names set per sample, in
    order); ``outputs`` (read-out node names, in order); ``trainable`` (list of TrainableSpec);
    ``warnings`` (things the reader accepted but ignored; not part of equality).
    """

    def __init__(self, title: str = ""):
        self.title = title
        self.node_names: list[str] = [GROUND]
        self._node_index: dict[str, int] = {GROUND: 0}
        self.tables = {kind: ElementTable(kind) for kind in KINDS}
        self.models: dict[str, DiodeModel] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.trainable: list[TrainableSpec] = []
        self.warnings: list[str] = []
        self._element_index: dict[str, tuple[str, int]] | None = None

    # ---- nodes -------------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """Number of nodes, ground included (id 0)."""
        return len(self.node_names)

    def node(self, name: str) -> int:
        """Id of node ``name`` (lower-cased; ``gnd`` is ground), created if new."""
        name = str(name).lower()
        if name in GROUND_ALIASES:
            return 0
        idx = self._node_index.get(name)
        if idx is None:
            idx = len(self.node_names)
            self.node_names.append(name)
            self._node_index[name] = idx
        return idx

    def nodes_of(self, names) -> np.ndarray:
        """Ids of many node names at once (created if new), as an int64 array."""
        return np.fromiter((self.node(n) for n in names), dtype=np.int64)

    def node_id(self, name: str) -> int:
        """Id of an existing node; KeyError naming it otherwise."""
        name = str(name).lower()
        if name in GROUND_ALIASES:
            return 0
        try:
            return self._node_index[name]
        except KeyError:
            raise KeyError(f"no node named {name!r}") from None

    def has_node(self, name: str) -> bool:
        name = str(name).lower()
        return name in GROUND_ALIASES or name in self._node_index

    # ---- elements ----------------------------------------------------------------------------------
    def add(self, kind: str, name: str, nodes, value: float = 0.0, model: str = "") -> None:
        """Add one element: ``nodes`` are node names or ids in the kind's column order."""
        ids = [n if isinstance(n, (int, np.integer)) else self.node(n) for n in nodes]
        self.add_many(kind, [str(name).lower()], [ids], [value], [model])

    def add_many(self, kind: str, names, nodes, values, models=None, lower: bool = True) -> None:
        """Add many elements of one kind from arrays (node ids already resolved); names are lower-cased
        like ``add``'s (``lower=False``: the caller's names already are, e.g. the reader's)."""
        if lower:
            names = np.char.lower(np.asarray(names, dtype=str))
        self.tables[kind].append(names, nodes, values, models)
        self._element_index = None

    def __getitem__(self, kind: str) -> ElementTable:
        return self.tables[kind]

    def element(self, name: str) -> tuple[str, int]:
        """(kind, row) of the element called ``name``; KeyError naming it when there is none, ValueError
        when several elements carry it (``add`` does not check: the reader refuses duplicates)."""
        if self._element_index is None:
            index: dict[str, tuple[str, int]] = {}
            for kind, table in self.tables.items():
                index.update(zip(table.names.tolist(), ((kind, i) for i in range(len(table)))))
            total = sum(len(t) for t in self.tables.values())
            shared = set()
            if len(index) < total:
                names, counts = np.unique(np.concatenate([t.names for t in self.tables.values()]), return_counts=True)
                shared = set(names[counts > 1].tolist())
            self._element_index, self._shared_names = index, shared
        key = str(name).lower()
        if key in self._shared_names:
            raise ValueError(f"element name {name!r} is used by several elements: ambiguous")
        try:
            return self._element_index[key]
        except KeyError:
            raise KeyError(f"no element named {name!r}") from None

    def n_elements(self) -> dict[str, int]:
        """Element count per kind."""
        return {kind: len(t) for kind, t in self.tables.items()}

    def diode_model(self, model_name: str) -> DiodeModel:
        """The DiodeModel of a diode's ``model`` column ("" is the ideal diode)."""
        return self.models[model_name] if model_name else DiodeModel()

    # ---- annotations -------------------------------------------------------------------------------
    def trainable_card(self, kind: str) -> np.ndarray:
        """(n_elements of ``kind``,) int64: index in ``trainable`` of the first card whose patterns match each
        element's name, -1 where none does."""
        names = self.tables[kind].names.tolist()
        card = np.full(len(names), -1, np.int64)
        for index in range(len(self.trainable) - 1, -1, -1):
            for pattern in self.trainable[index].patterns:
                hit = np.fromiter((fnmatch.fnmatchcase(n, pattern.lower()) for n in names), bool, len(names))
                card[hit] = index
        return card

    def trainable_mask(self) -> np.ndarray:
        """(n_resistors,) bool: resistors matched by any ``.trainable`` pattern."""
        return self.trainable_card("R") >= 0

    # ---- views -------------------------------------------------------------------------------------
    def graph(self):
        """A networkx MultiGraph: nodes by name; one edge per two-terminal element (E: its output port),
        with attributes ``kind``, ``name``, ``value``."""
        import networkx as nx

        g = nx.MultiGraph()
        g.add_nodes_from(self.node_names)
        for kind, table in self.tables.items():
            names = table.nodes
            for name, ids, value in zip(table.names.tolist(), names.tolist(), table.value.tolist()):
                g.add_edge(self.node_names[ids[0]], self.node_names[ids[1]], key=name, kind=kind, name=name, value=value)
        return g

    def _canonical(self, kind: str):
        table = self.tables[kind]
        order = np.argsort(table.names, kind="stable")
        node_names = np.asarray(self.node_names, dtype=str)
        return (
            table.names[order],
            node_names[table.nodes[order]] if len(table) else np.zeros((0, len(table.node_columns)), dtype=str),
            table.value[order],
            table.models[order],
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, Circuit):
            return NotImplemented
        if (self.title, self.models, self.inputs, self.outputs, self.trainable) != (
            other.title, other.models, other.inputs, other.outputs, other.trainable
        ):
            return False
        for kind in KINDS:
            mine, theirs = self._canonical(kind), other._canonical(kind)
            if any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(mine, theirs)):
                return False
        return True

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        counts = " ".join(f"{k}={n}" for k, n in self.n_elements().items() if n)
        return f"<Circuit {self.title!r}: {self.n_nodes} nodes, {counts or 'no elements'}>"
