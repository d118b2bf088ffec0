"""Compile a Circuit to its Problem: the reduced convex QPs plus the inverse data that maps back.

The reduction (docs/solver.md has the maths):

- **Sources.** Every independent value lives in one source vector ``s`` (n_s, B): V values, I values,
  then one slot per VCVS whose value is computed from upstream stages at solve time. Inductors are 0 V
  sources without a slot.
- **Super-nodes.** Voltage-source edges (V, L, VCVS output ports) merge nodes: a spanning forest of the
  source graph gives every node ``v = x[var] + P s`` (``var = -1`` for the super-node of ground, whose
  potential is fixed). A loop of sources must be consistent and contain no input source and no VCVS.
- **Resistors** give the Laplacian ``L`` over the free variables and ``b = K s`` (fixed-node coupling and
  current sources: one sparse or dense product per batch).
- **Diodes** (series resistance RS becomes an internal node ``<diode>#rs`` and a resistor) give rows
  ``x[a] - x[k] <= c`` with ``c = c0 + C s``; a diode with both ends in one super-node is checked at solve
  time instead.
- **VCVS stages.** Free variables joined by resistors or diodes form components; a VCVS reads its
  controlling port from upstream components and drives downstream ones through its output-port slot.
  Components are grouped into stages by depth in that DAG; a cycle through amplifiers is an error.

The result is a :class:`Problem`. It never changes after compilation except through
:meth:`Problem.with_conductances`, which returns a new Problem sharing the structure.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .circuit import Circuit
from .errors import CircuitError
from .graph import connected_components
from .solvers.qp import QP

__all__ = ["compile", "Problem", "Stage"]

# A dense K (b = K s) beats a sparse one above this fill ratio (BLAS vs scipy's single-threaded csr).
_DENSE_FILL = 0.25
# resistor_outflow: batches up to this size accumulate per column (bincount) instead of building L_full
_OUTFLOW_BINCOUNT_MAX_B = 8
# A consistent loop of sources may disagree by this much (volts) through rounding.
_LOOP_TOL = 1e-9


@dataclass
class Stage:
    """One QP of the stage sequence: the free variables solved together and their diode rows.

    ``variables`` (n,) global free-variable ids; ``rows`` (m,) global diode-row ids; ``a``/``k`` (m,) local
    variable ids (-1 = fixed end); ``outputs`` (indices into ``Problem.outputs``) whose variable is here,
    ``out_var`` their local variable ids. ``cache`` holds per-structure data (e.g. the cd colouring), shared by the
    Problems ``with_conductances`` makes; ``value_cache`` data that depend on the conductances (emptied there).
    """

    variables: np.ndarray
    rows: np.ndarray
    a: np.ndarray
    k: np.ndarray
    outputs: np.ndarray
    out_var: np.ndarray
    C: sp.csr_matrix = None  # (m, n_s): c = c0 + C s (volts)
    c0: np.ndarray = None  # (m,) forward drops, volts
    L: sp.csr_matrix = None
    K: object = None  # (n, n_s) sparse or dense: b = K s (amperes per volt or ampere)
    cache: dict = field(default_factory=dict)
    value_cache: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.variables)


class Problem:
    """A compiled circuit: stage QPs and the inverse data back to nodes and elements.

    Attributes users may read: ``circuit``; ``node_names`` (all nodes, internal ones included; internal
    names contain ``#``); ``n_free`` free variables; ``stages`` (list of :class:`Stage`, solved in order);
    ``n_sources`` (len of ``s``); ``input_slots`` (n_inputs,) slots of ``circuit.inputs``; ``outputs``
    (node ids of ``circuit.outputs``); ``gmin`` (siemens or None); ``cache`` (data derived from the
    structure alone, e.g. the trainable-parameter layout, shared by the Problems ``with_conductances`` makes).
    """

    # ---------------------------------------------------------------- values of s
    def source_values(self, inputs=None) -> np.ndarray:
        """(n_s, B) source vector: circuit values, inputs (B, n_inputs) or (n_inputs,) replacing the
        ``.inputs`` sources per sample (volts or amperes), VCVS slots zero until solved."""
        if inputs is None:
            return self.s_default[:, None].copy()
        inputs = np.asarray(inputs, dtype=np.float64)
        if inputs.ndim == 1:
            inputs = inputs[None, :]
        n_in = len(self.input_slots)
        if inputs.ndim != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"inputs must have shape (B, {n_in}) (one column per .inputs source: "
                             f"{', '.join(self.circuit.inputs) or 'none'}), got {inputs.shape}")
        if not np.isfinite(inputs).all():
            raise ValueError("inputs must be finite (no NaN or inf)")
        s = np.repeat(self.s_default[:, None], inputs.shape[0], axis=1)
        s[self.input_slots] = inputs.T
        return s

    # ---------------------------------------------------------------- stage QPs
    def qp(self, stage: int, s: np.ndarray, beta: float = 0.0, targets=None) -> QP:
        """The array-level QP of stage ``stage`` for source values ``s`` (n_s, B).

        ``beta`` (siemens) with ``targets`` (B, n_outputs) volts adds ``beta/2 * ||v_out - y||^2`` to the
        energy: a conductance ``beta`` from each output node to a source at its target. A negative ``beta``
        (a negative conductance) is allowed while the nudged energy stays strictly convex; beyond that
        (``max_negative_beta``) it is a CircuitError naming beta and the weakest-held output.
        """
        st = self.stages[stage]
        b = _matmul(st.K, s)
        c = st.c0[:, None] + _matmul(st.C, s)
        L = st.L
        floating = self.stage_floating(stage)
        if beta and len(st.outputs):
            if targets is None:
                raise ValueError("nudging (beta != 0) needs targets of shape (B, n_outputs)")
            if beta < 0:
                limit, weakest = self.max_negative_beta(stage)
                if limit == 0:
                    raise CircuitError(
                        f"beta = {beta:g} S makes the nudged energy non-convex: output "
                        f"{self.circuit.outputs[weakest]} is held only by diodes (no resistive path to a fixed "
                        "node), so nothing outweighs a negative conductance at it (negative nudges need outputs "
                        "with a resistive path to ground)")
                if -beta >= limit:
                    raise CircuitError(
                        f"beta = {beta:g} S makes the nudged energy non-convex: a negative conductance of "
                        f"{-beta:g} S at the outputs exceeds the {limit:.6g} S that holds output "
                        f"{self.circuit.outputs[weakest]} (negative nudges need |beta| < {limit:.6g} S)")
            elif floating is not None:  # a nudged output holds its floating part
                held = np.isin(floating, floating[st.out_var])
                floating = np.where(held, -1, floating)
            y = np.asarray(targets, dtype=np.float64).reshape(-1, len(self.outputs)).T  # (n_out, B)
            if y.shape[1] not in (1, s.shape[1]):
                raise ValueError(f"targets must have {s.shape[1]} rows, got {y.shape[1]}")
            out_nodes = self.outputs[st.outputs]
            if len(self._vcvs):
                self._check_nudgeable(stage, st.outputs)
            pull = beta * (y[st.outputs] - _matmul(self.P[out_nodes], s))
            b = b.copy()
            np.add.at(b, st.out_var, pull)
            L = L + sp.csr_matrix((np.full(len(st.out_var), float(beta)), (st.out_var, st.out_var)), shape=L.shape)
        return QP(L, b, st.a, st.k, c, floating)

    def stage_floating(self, stage: int) -> np.ndarray | None:
        """(n,) the floating part of each variable of stage ``stage`` (``compile``: no resistive path to a
        fixed node; parts numbered as in ``Problem.floating``), -1 for the others; None when there is none."""
        floating = self.floating[self.stages[stage].variables]
        return floating if (floating >= 0).any() else None

    def max_negative_beta(self, stage: int) -> tuple[float, int]:
        """(limit in siemens, index into ``circuit.outputs``): the nudged energy of ``stage`` stays strictly
        convex for beta > -limit. With S = (L^-1) restricted to the stage's output variables (the outputs'
        driving-point resistances, ohms), L + beta E_out E_outᵀ is positive definite iff -beta < 1 / λmax(S);
        the output returned has the largest diagonal of S (the weakest-held one); L is positive definite there,
        off the floating parts (``stage_floating``). An output in a floating part has nothing but diodes to
        hold it: limit 0 S, that output. Cached per conductances."""
        st = self.stages[stage]
        if "negative_beta" not in st.value_cache:
            var = np.unique(st.out_var)
            floating = self.stage_floating(stage)
            if floating is not None and (floating[var] >= 0).any():  # an output held only by diodes: limit 0
                limit, weakest_var = 0.0, var[int(np.argmax(floating[var] >= 0))]
            else:
                import scipy.sparse.linalg as spla

                keep = np.arange(st.n) if floating is None else np.flatnonzero(floating < 0)  # L is SPD there
                at = np.searchsorted(keep, var)
                rhs = np.zeros((len(keep), len(var)))
                rhs[at, np.arange(len(var))] = 1.0
                S = spla.splu(st.L[keep][:, keep].tocsc()).solve(rhs)[at]
                S = 0.5 * (S + S.T)
                limit, weakest_var = 1.0 / float(np.linalg.eigvalsh(S)[-1]), var[int(np.argmax(np.diag(S)))]
            weakest = int(st.outputs[np.flatnonzero(st.out_var == weakest_var)[0]])
            st.value_cache["negative_beta"] = (limit, weakest)
        return st.value_cache["negative_beta"]

    def _check_nudgeable(self, stage: int, outputs: np.ndarray) -> None:
        """CircuitError naming an output of ``stage`` whose potential involves a VCVS slot set only after it
        (the amplifier is controlled from the output's own stage: nudging it would need a feedback loop)."""
        deps = sp.csr_matrix(self.P[self.outputs[outputs]][:, self.e_slots])
        for row, o in enumerate(outputs):
            late = [j for j in deps[row].indices if self._vcvs_level[j] > stage]
            if late:
                raise CircuitError(f"output {self.circuit.outputs[o]} cannot be nudged: it sits on the output of "
                                   f"amplifier {self.circuit['E'].names[late[0]]}, which is controlled from the "
                                   "nodes the nudge would move (a feedback loop through the amplifier)")

    def update_vcvs(self, s: np.ndarray, x: np.ndarray, ready: int) -> None:
        """Set in ``s`` (in place) the VCVS slots that become known before stage ``ready`` (after all
        stages when ``ready == len(stages)``), from free variables ``x`` (n_free, B) solved so far."""
        for e in self._vcvs_at.get(ready, ()):
            slot, cp, cn, gain = self._vcvs[e]
            s[slot] = gain * (self.node_voltages(x, s, [cp])[0] - self.node_voltages(x, s, [cn])[0])

    def node_voltages(self, x: np.ndarray, s: np.ndarray, nodes=None) -> np.ndarray:
        """(n_nodes, B) node potentials (volts) ``x[var] + P s`` for all nodes or the given node ids."""
        nodes = np.arange(len(self.var)) if nodes is None else np.asarray(nodes, dtype=np.int64)
        var = self.var[nodes]
        v = _matmul(self.P[nodes], s)
        free = var >= 0
        v[free] += x[var[free]]
        return v

    def diode_slack(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(n_diodes, B) forward-drop margin ``VF - (v_a - v_k)`` (volts) of every circuit diode."""
        v = self.node_voltages(x, s, np.concatenate([self.diode_a, self.diode_k]))
        n = len(self.diode_a)
        return self.diode_vf[:, None] - (v[:n] - v[n:])

    def check_static_diodes(self, s: np.ndarray, x: np.ndarray, tol: float, amplified: bool = True) -> None:
        """Raise CircuitError when a diode with both ends fixed relative to each other (both in one
        super-node, or both fixed) is forward-biased beyond its drop by more than ``tol`` volts. With
        ``amplified`` False, only the diodes whose drop no amplifier output sets (known before solving)."""
        static = self.static_diodes
        if not amplified and len(self.e_slots) and len(static):
            ends = abs(self.P[np.concatenate([self.diode_a[static], self.diode_k[static]])][:, self.e_slots])
            static = static[np.asarray(ends.sum(axis=1)).ravel().reshape(2, -1).sum(axis=0) == 0]
        if not len(static):
            return
        slack = self.diode_slack(s, x)[static]
        bad = np.flatnonzero((slack < -tol).any(axis=1))
        if len(bad):
            names = self.circuit["D"].names[static[bad]]
            sample = int(np.flatnonzero(slack[bad[0]] < -tol)[0])
            where = f" (sample {sample})" if s.shape[1] > 1 else ""
            raise CircuitError(
                f"diode{'s' if len(bad) > 1 else ''} {', '.join(names[:8])} forward-biased by voltage sources "
                f"beyond {'their' if len(bad) > 1 else 'its'} forward drop{where}: infinite current would flow")

    def variable_nodes(self, variables) -> list[str]:
        """The nodes (circuit names) whose potential is one of the free ``variables``; internal nodes (names
        with ``#``) only when there is no other."""
        members = np.flatnonzero(np.isin(self.var, np.asarray(variables, dtype=np.int64)))
        names = [self.node_names[i] for i in members]
        return [n for n in names if "#" not in n] or names

    def diode_names_of_rows(self, rows) -> list[str]:
        """Circuit names of global diode rows."""
        return self.circuit["D"].names[self.row_diode[np.asarray(rows, dtype=np.int64)]].tolist()

    # ---------------------------------------------------------------- conductances
    @property
    def conductances(self) -> np.ndarray:
        """(n_R,) conductances (siemens) of the circuit's resistors, in circuit order."""
        return self.g[: self.n_user_resistors].copy()

    def with_conductances(self, g) -> "Problem":
        """A new Problem with the circuit's resistors set to conductances ``g`` (n_R,) siemens (>= 0; 0 S is
        an open resistor), sharing all structure (node maps, stages, colourings); only L and K are rebuilt.
        CircuitError (as ``compile``) when open resistors leave a part with no resistive path to a fixed node."""
        g = np.asarray(g, dtype=np.float64)
        if g.shape != (self.n_user_resistors,):
            raise ValueError(f"g must have shape ({self.n_user_resistors},), got {g.shape}")
        if not np.all(np.isfinite(g) & (g >= 0)):
            bad = int(np.flatnonzero(~(np.isfinite(g) & (g >= 0)))[0])
            raise ValueError(f"conductances must be finite and >= 0 siemens; g[{bad}] = {g[bad]!r}")
        new = copy.copy(self)
        new.g = self.g.copy()
        new.g[: self.n_user_resistors] = g
        if not np.array_equal(g == 0, self.g[: self.n_user_resistors] == 0):
            _check_grounded(new)
        new._full_laplacian = None
        new._assemble(repeated=True)
        return new

    def with_currents(self, values) -> "Problem":
        """A new Problem with the circuit's current sources set to ``values`` (n_I,) amperes (their default
        values; ``.inputs`` sources are still set per sample), sharing everything else."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(self.i_slots),):
            raise ValueError(f"current values must have shape ({len(self.i_slots)},), got {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("current-source values must be finite (amperes)")
        new = copy.copy(self)
        new.s_default = self.s_default.copy()
        new.s_default[self.i_slots] = values
        return new

    def _assemble(self, repeated: bool = False) -> None:
        """(Re)build L, K and the per-stage slices from the conductances ``self.g``; ``repeated``: for
        ``with_conductances`` (see ``_KTerms``)."""
        g = self.g[self._r_active]
        data = np.bincount(self._l_pos, weights=self._l_sign * g[self._l_res], minlength=len(self._l_indices))
        L = sp.csr_matrix((data, self._l_indices, self._l_indptr), shape=(self.n_free, self.n_free))
        K = self._k_terms.matrix(g, self.n_free, self.n_sources, repeated)
        if K.shape[0] and K.nnz > _DENSE_FILL * K.shape[0] * K.shape[1]:
            K = K.toarray()
        self.L, self.K = L, K
        self.stages = [copy.copy(st) for st in self.stages]
        for st in self.stages:
            st.value_cache = {}
            if len(self.stages) == 1:
                st.L, st.K = L, K
            else:
                st.L = L[st.variables][:, st.variables].tocsr()
                st.K = K[st.variables]

    def resistor_outflow(self, v: np.ndarray) -> np.ndarray:
        """(n_nodes, B) current leaving each node through the resistors (internal ones included), amperes,
        for node potentials v (n_nodes, B) volts: L_full v. Per column by bincount for small B (no
        matrix built); by the full Laplacian, built once, for larger B."""
        if v.shape[1] > _OUTFLOW_BINCOUNT_MAX_B and self._full_laplacian is None:
            self._full_laplacian = self._build_full_laplacian()
        if self._full_laplacian is not None:
            return np.asarray(self._full_laplacian @ v)
        n = len(self.var)
        ra, rb = self.r_nodes[:, 0], self.r_nodes[:, 1]
        out = np.empty((n, v.shape[1]))
        for b in range(v.shape[1]):
            i = self.g * (v[ra, b] - v[rb, b])
            out[:, b] = np.bincount(ra, i, n) - np.bincount(rb, i, n)
        return out

    def _build_full_laplacian(self) -> sp.csr_matrix:
        """(n_nodes, n_nodes) Laplacian of every resistor over all nodes, siemens."""
        n = len(self.var)
        ra, rb, g = self.r_nodes[:, 0], self.r_nodes[:, 1], self.g
        return sp.csr_matrix(
            (np.concatenate([g, g, -g, -g]), (np.concatenate([ra, rb, ra, rb]), np.concatenate([ra, rb, rb, ra]))),
            shape=(n, n))

    def __repr__(self) -> str:
        return (f"<Problem {self.circuit.title!r}: {self.n_free} free variables, {len(self.c0)} diode rows, "
                f"{len(self.stages)} stage(s), {self.n_sources} sources>")


def _matmul(M, s: np.ndarray) -> np.ndarray:
    """Dense (rows, B) product of a sparse or dense matrix with s (cols, B)."""
    out = M @ s
    return np.asarray(out, dtype=np.float64)


# ==================================================================== compilation
def compile(circuit: Circuit, gmin: float | None = None) -> Problem:
    """Reduce ``circuit`` to its :class:`Problem` (see the module docstring).

    ``gmin`` (siemens): when given, a conductance ``gmin`` from every node that is not held by a source
    to ground, as SPICE's ``gmin``/``rshunt``; without it, a part with no resistive path to a fixed node
    is a CircuitError. Raises CircuitError naming the culprits for inconsistent source loops, loops with
    inputs or amplifiers, floating parts, amplifier cycles and diodes shorted by sources.
    """
    if gmin is not None and not (np.isfinite(gmin) and gmin > 0):
        raise ValueError(f"gmin must be a positive conductance in siemens, got {gmin}")
    p = Problem()
    p.circuit, p.gmin, p._full_laplacian, p.cache = circuit, gmin, None, {}
    _validate(circuit)
    _sources(p, circuit)
    _diode_nodes(p, circuit)
    _super_nodes(p)
    _resistors(p, circuit, gmin)
    _diode_rows(p, circuit)
    _outputs(p, circuit)
    _stages(p)
    p._assemble()
    return p


def _validate(c: Circuit) -> None:
    r = c["R"]
    with np.errstate(divide="ignore", over="ignore"):
        bad = ~((r.value > 0) & np.isfinite(1.0 / r.value))
    if bad.any():
        raise CircuitError(f"resistor {r.names[bad][0]} has resistance {r.value[bad][0]:g} ohm; it must be > 0 "
                           "with a finite conductance (inf: an open resistor)")
    for kind in "VIE":
        t = c[kind]
        bad = ~np.isfinite(t.value)
        if bad.any():
            raise CircuitError(f"{t.names[bad][0]} has a non-finite value")
    for m in np.unique(c["D"].models):
        if m and m not in c.models:
            d = c["D"].names[c["D"].models == m][0]
            raise CircuitError(f"diode {d} uses model {m!r}, which no .model card defines")
        model = c.diode_model(m)
        if not (np.isfinite(model.vf) and np.isfinite(model.rs) and model.rs >= 0):
            raise CircuitError(f"diode model {m!r} needs finite vf and rs >= 0")


def _sources(p: Problem, c: Circuit) -> None:
    """Slot layout of s, source edges (V, L, E outputs), inputs and the VCVS table."""
    nv, ni, ne = len(c["V"]), len(c["I"]), len(c["E"])
    p.n_sources = nv + ni + ne
    p.s_default = np.concatenate([c["V"].value, c["I"].value, np.zeros(ne)])
    p.i_slots = nv + np.arange(ni)
    p.e_slots = nv + ni + np.arange(ne)
    # source edges: (p, n, slot) for V, L (slot -1) and E output ports
    p.src_nodes = np.concatenate([c["V"].nodes, c["L"].nodes, c["E"].nodes[:, :2]]).astype(np.int64).reshape(-1, 2)
    p.src_slot = np.concatenate([np.arange(nv), np.full(len(c["L"]), -1), p.e_slots]).astype(np.int64)
    p.src_names = np.concatenate([c["V"].names, c["L"].names, c["E"].names]).astype(str)

    # slot of each source by name (not c.element: its index over every element is slow for 1e6 resistors)
    slot_of = dict(zip(c["V"].names.tolist(), range(nv)))
    slot_of.update(zip(c["I"].names.tolist(), range(nv, nv + ni)))
    slots = []
    for name in c.inputs:
        if name.lower() not in slot_of:
            try:
                kind = c.element(name)[0]
            except KeyError:
                raise CircuitError(f".inputs names {name!r}, which is not an element of the circuit") from None
            raise CircuitError(f".inputs names {name!r}, a {kind} element; inputs must be V or I sources")
        slots.append(slot_of[name.lower()])
    p.input_slots = np.asarray(slots, dtype=np.int64)
    e = c["E"]
    p._vcvs = [(int(p.e_slots[j]), int(e.nodes[j, 2]), int(e.nodes[j, 3]), float(e.value[j])) for j in range(ne)]


def _diode_nodes(p: Problem, c: Circuit) -> None:
    """Node table with internal nodes for diode series resistances; ideal-diode ends per diode."""
    d = c["D"]
    models = {m: c.diode_model(m) for m in np.unique(d.models)}
    vf = np.array([models[m].vf for m in d.models]) if len(d) else np.zeros(0)
    rs = np.array([models[m].rs for m in d.models]) if len(d) else np.zeros(0)
    with_rs = np.flatnonzero(rs > 0)
    p.node_names = list(c.node_names) + [f"{name}#rs" for name in d.names[with_rs]]
    internal = c.n_nodes + np.arange(len(with_rs))
    p.diode_a = d.column("a").copy()
    p.diode_k = d.column("k").copy()
    p.diode_vf = vf
    # anode -- RS -- internal node -- ideal diode -- cathode
    p.rs_nodes = np.stack([p.diode_a[with_rs], internal], 1) if len(with_rs) else np.zeros((0, 2), np.int64)
    p.rs_g = 1.0 / rs[with_rs]
    p.diode_a[with_rs] = internal


def _super_nodes(p: Problem) -> None:
    """Union of source edges: var, offsets P (n_nodes, n_s), the spanning forest; source-loop checks."""
    n = len(p.node_names)
    ep, en, slot = p.src_nodes[:, 0], p.src_nodes[:, 1], p.src_slot
    m = len(ep)
    labels = connected_components(n, ep, en)  # the smallest node id of each super-node: ground's is 0
    child, parent, edge, depth = _spanning_forest(n, ep, en, np.unique(labels[np.concatenate([ep, en])]))
    sign = np.where(ep[edge] == child, 1.0, -1.0)  # v_child = v_parent + sign * s[slot]
    has_slot = slot[edge] >= 0
    D = sp.csr_matrix((sign[has_slot], (child[has_slot], slot[edge][has_slot])), shape=(n, p.n_sources))
    T = sp.csr_matrix((np.ones(len(child)), (child, parent)), shape=(n, n))
    P, term = D.copy(), D
    while term.nnz:
        term = T @ term
        P = P + term
    P.eliminate_zeros()
    p.P = P.tocsr()
    anc = np.full(n, n, np.int64)  # parent in the forest, n for roots and untouched nodes
    anc[child] = parent
    p.tree = _Tree(child, parent, edge, sign, depth)
    free = labels != 0
    free_labels = np.unique(labels[free])
    var = np.full(n, -1, np.int64)
    var[free] = np.searchsorted(free_labels, labels[free])
    p.var, p.n_free = var, len(free_labels)

    loop = np.ones(m, bool)
    loop[edge] = False
    _check_loops(p, np.flatnonzero(loop), anc)


@dataclass
class _Tree:
    """Spanning forest of the source graph: each non-root node, its parent, the joining source edge,
    the orientation (+1: the node is the edge's p end) and its depth below its super-node's root."""

    child: np.ndarray
    parent: np.ndarray
    edge: np.ndarray
    sign: np.ndarray
    depth: np.ndarray


def _spanning_forest(n: int, ep: np.ndarray, en: np.ndarray, roots: np.ndarray):
    """Breadth-first spanning forest of the graph with edges (ep, en) over nodes 0..n-1 from ``roots``, one
    level at a time: (child, parent, edge, depth) arrays, parents before their children; a child joins by
    the first edge (in edge order) that reaches it from the level above."""
    seen = np.zeros(n, bool)
    seen[roots] = True
    depth_of = np.zeros(n, np.int64)
    levels = []
    edges = np.arange(len(ep))
    while True:
        edges = edges[~(seen[ep[edges]] & seen[en[edges]])]  # edges with both ends in the forest are done
        down, up = seen[ep[edges]], seen[en[edges]]  # down: the p end is the parent
        step = edges[down != up]
        if not len(step):
            break
        kid, first = np.unique(np.where(down[down != up], en[step], ep[step]), return_index=True)
        e = step[first]
        par = np.where(seen[ep[e]], ep[e], en[e])
        seen[kid] = True
        depth_of[kid] = depth_of[par] + 1
        levels.append((kid, par, e))
    if not levels:
        return (np.zeros(0, np.int64),) * 4
    child, parent, edge = (np.concatenate(a) for a in zip(*levels))
    return child, parent, edge, depth_of[child]


def _check_loops(p: Problem, loop_edges: np.ndarray, anc: np.ndarray) -> None:
    """Every non-tree source edge closes a loop: it must hold for the default values and contain no
    input source and no VCVS (whose values change per sample)."""
    if not len(loop_edges):
        return
    ep, en = p.src_nodes[loop_edges, 0], p.src_nodes[loop_edges, 1]
    own = p.src_slot[loop_edges]
    own_value = np.where(own >= 0, p.s_default[np.maximum(own, 0)], 0.0)  # inductors: 0 V
    residual = (p.P[ep] - p.P[en]) @ p.s_default - own_value
    variable = set(p.input_slots.tolist()) | set(p.e_slots.tolist())
    edge_of = {int(c): int(e) for c, e in zip(p.tree.child, p.tree.edge)}
    n = len(p.node_names)
    for j, e in enumerate(loop_edges):
        members = [int(e)] + _path_edges(int(ep[j]), int(en[j]), anc, edge_of, n)
        names = ", ".join(p.src_names[members])
        if any(p.src_slot[mm] in variable for mm in members):
            raise CircuitError(f"loop of voltage sources {names} contains an input source or an amplifier "
                               f"output, so its voltages cannot all hold")
        scale = 1.0 + np.abs(p.s_default).max(initial=0.0)
        if abs(residual[j]) > _LOOP_TOL * scale:
            raise CircuitError(f"inconsistent loop of voltage sources {names}: their voltages around the "
                               f"loop sum to {residual[j]:.6g} V, not 0")


def _path_edges(u: int, w: int, anc: np.ndarray, edge_of: dict, n: int) -> list[int]:
    """Source edges on the forest path between u and w (same super-node)."""
    def up(x):
        chain = [x]
        while anc[x] != n:
            x = int(anc[x])
            chain.append(x)
        return chain
    cu, cw = up(u), up(w)
    common = set(cu) & set(cw)
    edges = [edge_of[x] for x in cu if x not in common] + [edge_of[x] for x in cw if x not in common]
    return edges


def _resistors(p: Problem, c: Circuit, gmin: float | None) -> None:
    """All resistors (circuit ones, then RS, then gmin), L's sparsity map and the pieces of K."""
    r = c["R"]
    nodes = [r.nodes, p.rs_nodes]
    g = [1.0 / r.value, p.rs_g]
    if gmin is not None:
        free_nodes = np.flatnonzero(p.var >= 0)
        nodes.append(np.stack([free_nodes, np.zeros(len(free_nodes), np.int64)], 1))
        g.append(np.full(len(free_nodes), float(gmin)))
    p.r_nodes = np.concatenate(nodes).astype(np.int64).reshape(-1, 2)
    p.g = np.concatenate(g)
    p.n_user_resistors = len(r)
    ra, rb = p.r_nodes[:, 0], p.r_nodes[:, 1]
    u, w = p.var[ra], p.var[rb]
    active = ((u >= 0) | (w >= 0)) & (u != w)
    p._r_active = np.flatnonzero(active)
    u, w = u[active], w[active]
    _check_grounded(p)
    nf = p.n_free
    # L's structure: diagonal of every variable, and both orientations of free-free resistors
    ff = np.flatnonzero((u >= 0) & (w >= 0))
    keys = np.concatenate([np.arange(nf) * (nf + 1), u[ff] * nf + w[ff], w[ff] * nf + u[ff]])
    uniq, inv = np.unique(keys, return_inverse=True)
    p._l_indices = (uniq % max(nf, 1)).astype(np.int64)
    p._l_indptr = np.concatenate([[0], np.cumsum(np.bincount(uniq // max(nf, 1), minlength=nf))]).astype(np.int64)
    diag_pos = inv[:nf]
    # each entry of L's data: position, active-resistor index, sign (g on free diagonals, -g off them)
    fu, fw = np.flatnonzero(u >= 0), np.flatnonzero(w >= 0)
    p._l_pos = np.concatenate([diag_pos[u[fu]], diag_pos[w[fw]], inv[nf:]])
    p._l_res = np.concatenate([fu, fw, ff, ff])
    p._l_sign = np.concatenate([np.ones(len(fu) + len(fw)), -np.ones(2 * len(ff))])
    # K pieces: b_R = -Inc^T diag(g) (P_a - P_b) s ; Inc[r, u] = 1, Inc[r, w] = -1 (free ends only)
    inc_rows = np.concatenate([np.flatnonzero(u >= 0), np.flatnonzero(w >= 0)])
    inc_cols = np.concatenate([u[u >= 0], w[w >= 0]])
    inc_vals = np.concatenate([-np.ones(np.count_nonzero(u >= 0)), np.ones(np.count_nonzero(w >= 0))])
    delta = (p.P[ra[active]] - p.P[rb[active]]).tocsr()
    delta.eliminate_zeros()
    # current sources: +I into n, -I out of p
    ip, in_ = c["I"].column("p"), c["I"].column("n")
    vi_p, vi_n = p.var[ip], p.var[in_]
    rows_i = np.concatenate([vi_n[vi_n >= 0], vi_p[vi_p >= 0]])
    cols_i = np.concatenate([p.i_slots[vi_n >= 0], p.i_slots[vi_p >= 0]])
    vals_i = np.concatenate([np.ones(np.count_nonzero(vi_n >= 0)), -np.ones(np.count_nonzero(vi_p >= 0))])
    p._k_terms = _KTerms(inc_rows, inc_cols, inc_vals, delta, rows_i, cols_i, vals_i)


class _KTerms:
    """K = Incᵀ diag(g) delta + (the current sources' ±1), K (n_free, n_sources): Inc[r, i] = -1 at active
    resistor r's first free end i, +1 at its second (``inc_*``: rows r, columns i, values), delta
    (n_active, n_sources) CSR, the sources' (rows, slots, ±1). Shared by a Problem's copies. A one-off
    compile forms K by a sparse product; repeated rebuilds (``with_conductances``, a training loop) list K's
    terms once, (entry, resistor, coefficient), K being linear in g, and fill K's data with one bincount:
    cheaper per rebuild, but listing them would add 0.4 s to a one-off compile of DRN-1H."""

    def __init__(self, inc_rows, inc_cols, inc_vals, delta, rows_i, cols_i, vals_i):
        self.inc, self.delta, self.sources = (inc_rows, inc_cols, inc_vals), delta, (rows_i, cols_i, vals_i)
        self.listed = None

    def matrix(self, g: np.ndarray, n_free: int, n_sources: int, repeated: bool) -> sp.csr_matrix:
        """K for the active resistors' conductances ``g`` (siemens)."""
        (inc_rows, inc_cols, inc_vals), (rows_i, cols_i, vals_i) = self.inc, self.sources
        if self.listed is None and not repeated:
            inc_t = sp.csr_matrix((inc_vals * g[inc_rows], (inc_cols, inc_rows)), shape=(n_free, len(g)))
            k_i = sp.csr_matrix((vals_i, (rows_i, cols_i)), shape=(n_free, n_sources))
            return (inc_t @ self.delta).tocsr() + k_i
        if self.listed is None:
            self.listed = self._list(n_free, n_sources)
        indices, indptr, pos, res, coef, const = self.listed
        data = const + np.bincount(pos, weights=coef * g[res], minlength=len(indices))
        return sp.csr_matrix((data, indices, indptr), shape=(n_free, n_sources))

    def _list(self, n_free: int, n_sources: int) -> tuple:
        (inc_rows, inc_cols, inc_vals), (rows_i, cols_i, vals_i), delta = self.inc, self.sources, self.delta
        per_row = np.diff(delta.indptr)[inc_rows]
        term_r = np.repeat(inc_rows, per_row)
        term_i = np.repeat(inc_cols, per_row)
        starts = np.repeat(delta.indptr[inc_rows], per_row)
        within = np.arange(len(term_r)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        term_j = delta.indices[starts + within]
        term_c = np.repeat(inc_vals, per_row) * delta.data[starts + within]
        keys = np.concatenate([term_i * n_sources + term_j, rows_i * n_sources + cols_i])
        uniq, pos = np.unique(keys, return_inverse=True)
        width = max(n_sources, 1)
        indices = (uniq % width).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(uniq // width, minlength=n_free))]).astype(np.int64)
        const = np.bincount(pos[len(term_r):], weights=vals_i, minlength=len(uniq))
        return indices, indptr, pos[:len(term_r)], term_r, term_c, const


def _check_grounded(p: Problem) -> None:
    """Set ``p.floating`` (n_free,) int64: the floating part (0, 1, ...) of each free variable with no path of
    resistors (of conductance > 0) to a fixed node, -1 for the others. A floating part is held only by the
    diodes joining it to the rest, so whether its state is unique depends on which of them conduct
    (decided after solving); a part that no chain of resistors and diodes joins to a fixed node is never
    unique: CircuitError naming its nodes."""
    nf = p.n_free
    p.floating = np.full(nf, -1, np.int64)
    if not nf:
        return
    conducting = p._r_active[p.g[p._r_active] > 0]
    u, w = p.var[p.r_nodes[conducting, 0]], p.var[p.r_nodes[conducting, 1]]
    # graph: free-free resistors, and one edge to the root nf from each variable with a resistor to a
    # fixed node (marked, not repeated per resistor: a DRN has 1.6 M of those and 1024 such variables)
    both = (u >= 0) & (w >= 0)
    to_fixed = np.zeros(nf + 1, bool)
    to_fixed[u[w < 0]] = True
    to_fixed[w[u < 0]] = True
    tied = np.flatnonzero(to_fixed[:nf])
    uu = np.concatenate([u[both], tied])
    ww = np.concatenate([w[both], np.full(len(tied), nf)])
    lab = connected_components(nf + 1, uu, ww)
    floating = lab[:nf] != lab[nf]
    if not floating.any():
        return
    _, p.floating[floating] = np.unique(lab[:nf][floating], return_inverse=True)
    da, dk = p.var[p.diode_a], p.var[p.diode_k]
    row = (da != dk) & ((da >= 0) | (dk >= 0))
    held = connected_components(nf + 1, np.concatenate([uu, np.where(da[row] >= 0, da[row], nf)]),
                                np.concatenate([ww, np.where(dk[row] >= 0, dk[row], nf)]))
    loose = np.flatnonzero(held[:nf] != held[nf])
    if len(loose):
        names = p.variable_nodes(loose[held[loose] == held[loose[0]]])
        raise CircuitError(f"{listing('node', names)} {'have' if len(names) > 1 else 'has'} no resistive path "
                           f"to ground or a grounded source, nor diodes to one, so the operating point is not "
                           f"unique (pass gmin= to add a small conductance to ground, as SPICE does)")


def listing(noun: str, names: list[str], most: int = 8) -> str:
    """'node a', 'nodes a, b and 3 more': ``noun`` (plural with s) and at most ``most`` of ``names``."""
    shown = ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
    return f"{noun}{'s' if len(names) > 1 else ''} {shown}"


def _diode_rows(p: Problem, c: Circuit) -> None:
    """Rows x[a] - x[k] <= c0 + C s for diodes across super-nodes; the others are checked per solve."""
    a, k = p.diode_a, p.diode_k
    ua, uk = p.var[a], p.var[k]
    is_row = ua != uk
    rows = np.flatnonzero(is_row)
    p.static_diodes = np.flatnonzero(~is_row)
    p.row_diode = rows
    p.row_a, p.row_k = ua[rows], uk[rows]
    p.c0 = p.diode_vf[rows]
    p.C = (p.P[k[rows]] - p.P[a[rows]]).tocsr()
    p.diode_row = np.full(len(a), -1, np.int64)
    p.diode_row[rows] = np.arange(len(rows))


def _outputs(p: Problem, c: Circuit) -> None:
    missing = [name for name in c.outputs if not c.has_node(name)]
    if missing:
        raise CircuitError(f".outputs names node{'s' if len(missing) > 1 else ''} {', '.join(missing)}, "
                           f"which no element uses")
    p.outputs = np.array([c.node_id(name) for name in c.outputs], dtype=np.int64)


def _stages(p: Problem) -> None:
    """Group free variables into stages (VCVS dependency depth) and build each stage's index maps."""
    nf, ne = p.n_free, len(p._vcvs)
    stage_of_var = np.zeros(nf, np.int64)
    p._vcvs_at = {}
    p._vcvs_level = np.zeros(ne, np.int64)  # the stage before which each VCVS slot is set
    if ne:
        stage_of_var = _vcvs_schedule(p)
    n_stages = int(stage_of_var.max()) + 1 if nf else 0
    row_var = np.where(p.row_a >= 0, p.row_a, p.row_k)
    out_var = p.var[p.outputs]
    p.stages = []
    for t in range(n_stages):
        variables = np.flatnonzero(stage_of_var == t) if n_stages > 1 else np.arange(nf)
        local = np.full(nf, -1, np.int64)
        local[variables] = np.arange(len(variables))
        rows = np.flatnonzero(stage_of_var[row_var] == t) if n_stages > 1 else np.arange(len(row_var))
        a, k = p.row_a[rows], p.row_k[rows]
        outs = np.flatnonzero((out_var >= 0) & (stage_of_var[np.maximum(out_var, 0)] == t))
        p.stages.append(Stage(variables, rows, np.where(a >= 0, local[np.maximum(a, 0)], -1),
                              np.where(k >= 0, local[np.maximum(k, 0)], -1), outs, local[out_var[outs]],
                              C=p.C[rows].tocsr(), c0=p.c0[rows]))


def _vcvs_schedule(p: Problem) -> np.ndarray:
    """Order components and VCVSs by dependency; set ``p._vcvs_at`` (ready stage -> VCVS indices in
    evaluation order) and return the stage of each free variable. A cycle through amplifiers raises."""
    import networkx as nx

    nf, ne = p.n_free, len(p._vcvs)
    names = p.circuit["E"].names
    # components: free variables joined by resistors or coupled diode rows
    ra, rb = p.r_nodes[p._r_active, 0], p.r_nodes[p._r_active, 1]
    coupled = (p.row_a >= 0) & (p.row_k >= 0)
    eu = np.concatenate([p.var[ra], p.row_a[coupled]])
    ew = np.concatenate([p.var[rb], p.row_k[coupled]])
    both = (eu >= 0) & (ew >= 0)
    _, comp = np.unique(connected_components(nf, eu[both], ew[both]), return_inverse=True)
    # which VCVS slots each node's potential depends on
    Q = (p.P[:, p.e_slots] != 0).astype(np.int64).tocsr()
    # component -> the nodes its energy touches (both ends of every element with a free end in it)
    ia = np.concatenate([ra, p.diode_a[p.row_diode]])
    ib = np.concatenate([rb, p.diode_k[p.row_diode]])
    owner = np.concatenate([np.where(p.var[ia] >= 0, p.var[ia], p.var[ib]),
                            np.where(p.var[ib] >= 0, p.var[ib], p.var[ia])])
    touch = sp.csr_matrix((np.ones(2 * len(owner)),
                           (np.concatenate([comp[owner], comp[owner]]), np.concatenate([ia, ib, ib, ia]))),
                          shape=(comp.max() + 1 if nf else 0, len(p.var)))
    dag = nx.DiGraph()
    dag.add_nodes_from(("E", j) for j in range(ne))
    dep = (touch @ Q).tocoo()
    dag.add_edges_from((("E", int(j)), ("C", int(ci))) for ci, j in zip(dep.row, dep.col))
    for j, (_, cp, cn, _) in enumerate(p._vcvs):
        for node in (cp, cn):
            if p.var[node] >= 0:
                dag.add_edge(("C", int(comp[p.var[node]])), ("E", j))
            for jj in Q[node].indices:
                dag.add_edge(("E", int(jj)), ("E", j))
    # a nudged output pulls its component towards a target through v_out = x + P s: the amplifier slots in
    # P[out] must be known before that component's stage. Scheduled so when that leaves no loop; otherwise
    # (an output whose amplifier is controlled from its own component) nudging it is refused (``qp``)
    nudge = [(("E", int(jj)), ("C", int(comp[p.var[o]]))) for o in p.outputs if p.var[o] >= 0 for jj in Q[o].indices]
    dag.add_edges_from(nudge)
    if not nx.is_directed_acyclic_graph(dag):
        dag.remove_edges_from(nudge)
    try:
        order = list(nx.topological_sort(dag))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dag)
        amps = sorted({names[v[1]] for edge in cycle for v in edge[:2] if v[0] == "E"})
        raise CircuitError(f"amplifier{'s' if len(amps) > 1 else ''} {', '.join(amps)} form a feedback loop "
                           f"(their outputs drive their own inputs): no energy function exists") from None
    level = {}
    for v in order:
        preds = [level[u] + (1 if u[0] == "C" else 0) for u in dag.predecessors(v)]
        level[v] = max(preds, default=0)
    stage_of_comp = np.zeros(comp.max() + 1 if nf else 0, np.int64)
    for v in order:
        if v[0] == "C":
            stage_of_comp[v[1]] = level[v]
        else:
            p._vcvs_at.setdefault(level[v], []).append(v[1])
            p._vcvs_level[v[1]] = level[v]
    return stage_of_comp[comp] if nf else np.zeros(0, np.int64)
