"""OperatingPoint: the DC state of a circuit, mapped back from the stage solutions in one place.

Sign conventions (SPICE's, as ngspice prints them):

- node voltages are potentials relative to ground (volts);
- ``current(R)`` flows from the resistor's first node to its second: (v_a - v_b) / R;
- ``current(V)``, ``current(E)`` (output port), ``current(L)``: the current flowing from the circuit
  into the source's + (first) terminal, through the source, out of its - terminal, i.e. ngspice's
  ``i(v1)``; it is positive when the source absorbs power (a battery being charged) and negative when
  it delivers power;
- ``current(I)``: its set value (it flows from p through the source to n);
- ``current(D)``: anode to cathode, >= 0 (the multiplier of its row);
- ``current(C)``: 0.

Source currents come from Kirchhoff's current law over the spanning forest of each super-node
(leaf-to-root accumulation of the currents leaving each node through resistors, diodes and current
sources). When sources form a (consistent) loop, the source that closes the loop carries 0 A and the
forest sources carry the rest: the split around a loop of ideal sources is not determined by the circuit.

Batches: ``voltage()``, ``current()``, ``power`` return a float for an unbatched solve and a (B,) array
for a batch (``inputs`` of shape (B, n_inputs)).
"""

from __future__ import annotations

import json

import numpy as np

from .circuit import KINDS

__all__ = ["OperatingPoint"]


class OperatingPoint:
    """The solved state. Built by :func:`resnet_sim.solve`; read with the methods below.

    ``method`` (the solver(s) used, e.g. ``"cd+active-set"``), ``sweeps`` (cd sweeps or active-set
    iterations, summed over stages), ``residuals`` (dict of the four KKT residuals: stationarity A,
    feasibility V, dual A, complementarity W; floats, or (B,) arrays for a batch), ``converged`` (all four
    under ``tol`` for every sample), ``x`` (n_free, B) free variables and ``lam`` (n_rows, B) row currents
    (usable as a warm start), ``s`` (n_s, B) source values, ``problem``.
    """

    def __init__(self, problem, x, lam, s, *, batched, method, sweeps, residuals, converged, tol,
                 beta=0.0, targets=None):
        self.problem = problem
        self.circuit = problem.circuit
        self.x, self.lam, self.s = x, lam, s
        self.batched = batched
        self.method, self.sweeps, self.tol = method, int(sweeps), tol
        self.converged = bool(np.all(converged))
        self.converged_mask = np.asarray(converged, dtype=bool).reshape(-1)
        self.residuals = {k: self._out(np.asarray(v, dtype=np.float64)) for k, v in residuals.items()}
        self.beta, self.targets = beta, targets
        self._v = problem.node_voltages(x, s)  # (n_all, B)
        self._source_currents = None
        self._user_nodes = np.arange(1, self.circuit.n_nodes)
        self.node_names = problem.node_names[1:self.circuit.n_nodes]

    @property
    def batch(self) -> int:
        return self.s.shape[1]

    def _out(self, row: np.ndarray):
        """A (B,) row as float (unbatched) or array (batched)."""
        return row if self.batched else float(row.reshape(-1)[0])

    # ------------------------------------------------------------------ voltages
    def voltage(self, node: str):
        """Potential of ``node`` relative to ground, volts."""
        name = str(node).lower()
        try:
            idx = self.circuit.node_id(name) if "#" not in name else self.problem.node_names.index(name)
        except (KeyError, ValueError):
            raise KeyError(f"no node named {node!r}") from None
        return self._out(self._v[idx])

    @property
    def potentials(self) -> np.ndarray:
        """(n_all_nodes, B) potentials (volts) indexed by node id: the circuit's ids (ground 0 first), then
        internal nodes (``problem.node_names``). Resistor drops for EP: ``pot[a] - pot[b]``."""
        return self._v

    @property
    def voltages(self) -> np.ndarray:
        """(n_nodes, B) potentials (volts) of ``node_names`` (every node but ground and internal ones)."""
        return self._v[self._user_nodes]

    @property
    def outputs(self):
        """(B, n_outputs) voltages of the ``.outputs`` nodes (volts), or None when there are none."""
        if not len(self.problem.outputs):
            return None
        return self._v[self.problem.outputs].T.copy()

    # ------------------------------------------------------------------ currents
    def current(self, element: str):
        """Current through ``element`` in amperes (sign conventions: module docstring)."""
        kind, row = self.circuit.element(element)
        return self._out(self._kind_currents(kind, np.array([row]))[0])

    def currents(self, skip: tuple[str, ...] = ()) -> tuple[list[str], np.ndarray]:
        """Element names (kinds in order R V I D E C L, less the kinds in ``skip``) and their currents,
        (n_elements, B) amperes."""
        names, rows = [], []
        for kind in KINDS:
            if kind in skip:
                continue
            table = self.circuit[kind]
            if len(table):
                names.extend(table.names.tolist())
                rows.append(self._kind_currents(kind, np.arange(len(table))))
        return names, np.concatenate(rows) if rows else np.zeros((0, self.batch))

    def _kind_currents(self, kind: str, rows: np.ndarray) -> np.ndarray:
        p, c = self.problem, self.circuit
        if kind == "R":
            ab = c["R"].nodes[rows]
            # the Problem's conductances, not the circuit's resistances: with_conductances changes only the former
            return (self._v[ab[:, 0]] - self._v[ab[:, 1]]) * p.g[rows, None]
        if kind == "I":
            return self.s[p.i_slots[rows]]
        if kind == "D":
            return self._diode_currents()[rows]
        if kind == "C":
            return np.zeros((len(rows), self.batch))
        # V, L, E: source edges
        offset = {"V": 0, "L": len(c["V"]), "E": len(c["V"]) + len(c["L"])}[kind]
        return self._edge_currents()[offset + rows]

    def _diode_currents(self) -> np.ndarray:
        """(n_D, B) anode-to-cathode currents; diodes without a row (shorted by sources) carry 0 A."""
        p = self.problem
        out = np.zeros((len(p.diode_row), self.batch))
        has = p.diode_row >= 0
        out[has] = self.lam[p.diode_row[has]]
        return out

    def _edge_currents(self) -> np.ndarray:
        """(n_source_edges, B) currents of V, L, E outputs (SPICE sign) by KCL over the source forest."""
        if self._source_currents is None:
            p = self.problem
            tree = p.tree
            out = np.zeros((len(p.src_nodes), self.batch))
            if len(tree.child):
                # current leaving each node through resistors, diodes, current sources (and the nudge)
                leave = np.zeros_like(self._v)
                leave[tree.child] = p.resistor_outflow(self._v)[tree.child]
                lam = self._diode_currents()
                np.add.at(leave, p.diode_a, lam)
                np.add.at(leave, p.diode_k, -lam)
                ip, in_ = self.circuit["I"].column("p"), self.circuit["I"].column("n")
                np.add.at(leave, ip, self.s[p.i_slots])
                np.add.at(leave, in_, -self.s[p.i_slots])
                if self.beta and len(p.outputs):
                    y = np.asarray(self.targets, dtype=np.float64).reshape(-1, len(p.outputs)).T
                    np.add.at(leave, p.outputs, self.beta * (self._v[p.outputs] - y))
                subtree = np.zeros_like(self._v)
                subtree[tree.child] = leave[tree.child]
                for d in range(int(tree.depth.max()), 0, -1):
                    at = tree.depth == d
                    np.add.at(subtree, tree.parent[at], subtree[tree.child[at]])
                out[tree.edge] = -tree.sign[:, None] * subtree[tree.child]
            self._source_currents = out
        return self._source_currents

    # ------------------------------------------------------------------ diodes and power
    def diode_states(self) -> np.ndarray:
        """(n_D, B) bool: a diode is on when it carries more than ``tol`` amperes or sits at its forward
        drop (v_a - v_k >= VF - tol volts), i.e. its constraint is active."""
        p = self.problem
        slack = p.diode_slack(self.s, self.x)
        return (self._diode_currents() > self.tol) | (slack <= self.tol)

    def diode_on(self, name: str):
        """Whether diode ``name`` conducts (see :meth:`diode_states`); bool, or (B,) bool array."""
        kind, row = self.circuit.element(name)
        if kind != "D":
            raise KeyError(f"{name!r} is a {kind} element, not a diode")
        state = self.diode_states()[row]
        return state if self.batched else bool(state[0])

    @property
    def power(self):
        """Power absorbed by the dissipative elements, watts: every resistor (series resistances and
        gmin included) plus each diode's forward drop times its current. At the operating point it
        equals :attr:`source_power`."""
        v = self._v
        resistors = np.einsum("ib,ib->b", v, self.problem.resistor_outflow(v))
        diodes = self.problem.diode_vf @ self._diode_currents()
        return self._out(resistors + diodes)

    @property
    def source_power(self):
        """Power delivered by the V, I, E and L sources, watts (nudging conductances excluded)."""
        p, c = self.problem, self.circuit
        edge = self._edge_currents()
        across = self._v[p.src_nodes[:, 0]] - self._v[p.src_nodes[:, 1]]
        ip, in_ = c["I"].column("p"), c["I"].column("n")
        delivered = -np.einsum("ib,ib->b", across, edge)
        delivered -= np.einsum("ib,ib->b", self._v[ip] - self._v[in_], self.s[p.i_slots])
        return self._out(delivered)

    # ------------------------------------------------------------------ export
    def as_dict(self) -> dict:
        """The DESIGN.md section 6 schema: nodes, currents, diodes ("on"/"off"), converged, sweeps,
        residuals, method (+ outputs when the circuit has .outputs). Per-sample values are lists for a batch."""
        def val(row):
            return row.tolist() if self.batched else float(row[0])

        names, cur = self.currents()
        states = self.diode_states()
        out = {
            "nodes": {n: val(r) for n, r in zip(self.node_names, self.voltages)},
            "currents": {n: val(r) for n, r in zip(names, cur)},
            "diodes": {n: ([("on" if s else "off") for s in r] if self.batched else ("on" if r[0] else "off"))
                       for n, r in zip(self.circuit["D"].names.tolist(), states)},
            "converged": self.converged,
            "sweeps": self.sweeps,
            "residuals": {k: (v.tolist() if self.batched else v) for k, v in self.residuals.items()},
            "method": self.method,
        }
        if self.outputs is not None:
            out["outputs"] = self.outputs.tolist()
        return out

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`as_dict` as JSON text."""
        d = self.as_dict()
        try:
            return json.dumps(d, indent=indent, allow_nan=False)
        except ValueError:
            raise ValueError("a voltage or current overflows double precision (inf or NaN is not JSON)") from None

    def to_hdf5(self, path) -> None:
        """Write datasets ``voltages`` (n_nodes, B), ``currents`` (n_elements, B), ``node_names``,
        ``element_names``, ``diode_on`` (n_D, B) and (with .outputs) ``outputs`` (B, n_outputs), with
        attributes version, method, converged, sweeps, tol and the residuals. Written to a temporary
        file in the same folder (the symlink's target's, for a symlink), then renamed into place with the
        permissions a new file gets (umask) or the old file had. OSError naming ``path`` if it cannot be
        written, or exists and is not a regular file (a device, a folder: never replaced)."""
        import h5py

        from . import __version__
        from .files import atomic_path

        names, cur = self.currents()
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f["voltages"] = self.voltages
            f["currents"] = cur
            f["node_names"] = np.array(self.node_names, dtype=h5py.string_dtype())
            f["element_names"] = np.array(names, dtype=h5py.string_dtype())
            f["diode_on"] = self.diode_states()
            if self.outputs is not None:
                f["outputs"] = self.outputs
            f.attrs.update(version=__version__, method=self.method, converged=self.converged,
                           sweeps=self.sweeps, tol=self.tol)
            for k, v in self.residuals.items():
                f.attrs[f"residual_{k}"] = v

    def __repr__(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        return f"<OperatingPoint {self.circuit.title!r}: B={self.batch}, {self.method}, {state}>"
