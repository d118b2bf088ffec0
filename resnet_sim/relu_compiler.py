"""Compile a ReLU multilayer perceptron into a circuit of sources, resistors, ideal diodes and VCVS.

The network: ``h_0 = x``, ``z_k = W_k h_k + b_k``, ``h_{k+1} = relu(z_k)`` between layers, ``y = z_last``
(no ReLU after the last layer); ``W_k`` has shape (n_out, n_in). See docs/relu_compiler.md.

Building block (both modes). A neuron is a node joined by a conductance ``u |w_ij|`` (siemens; ``u`` is
the conductance unit, default 1 mS per unit weight) to the *positive* rail of input ``j`` when
``w_ij > 0`` and to its *negative* rail (the same signal, sign flipped) when ``w_ij < 0``, plus ``u |b_i|``
to a +1 V or -1 V bias source. With no other current into the node, Kirchhoff's current law puts it at
``z_i / G_i`` volts, where ``G_i = sum_j |w_ij| + |b_i|`` (weight units). An ideal diode from ground to the
node (anode at ground) clamps it at >= 0 V: the node then sits at ``relu(z_i) / G_i``. A neuron with
``G_i = 0`` (all-zero row and bias) would float: it gets one unit conductance ``u`` to ground instead
(G_i = 1), so it sits at 0 V and passes 0 on.

``mode="exact"``: every input with a negative weight gets an inverter (VCVS of gain -1); every hidden
neuron drives the next layer through VCVS buffers of gain ``+G_i`` and ``-G_i`` (only those the next layer
uses), so its node carries no load and the rails carry the exact activations ``+h`` and ``-h``; the outputs
are VCVS of gain ``G_i`` on the last layer's nodes. The circuit computes the network exactly (up to the
solver's tolerance).

``mode="minimal"``: amplifiers only where a passive network cannot do the job -- sign inversion at the
input and restoring the scale at the outputs. Hidden neurons are built as a positive copy (node at
``+relu(z)/G``, clamped >= 0) and/or a negative copy (node at ``-relu(z)/G``, fed from swapped rails,
clamped <= 0), which serve directly as the next layer's rails; only the copies in use are built. The 1/G
attenuation of each neuron is folded into the next layer's weights (``w'_mi = w_mi G_i``), and layer ``k``
uses the conductance unit ``u / gain**k``, so a layer loads the previous one by a fraction ~1/gain of its
drive: the error shrinks as ~1/gain. The inputs' signs come from whichever costs fewer VCVS: inverting the
inputs that need it (one each), or a *split* first layer -- each neuron's positive and negative parts
summed at two nodes ``sp``/``sn`` with equal totals (topped up to ground), ``v(sp) - v(sn) = z/G``, and one
differential VCVS of gain +-1 per copy, driving the copy node through a conductance ``G u`` (for a one-layer
network the differential VCVS is the output amplifier itself). One output VCVS per network output.

Names: layer ``k`` elements start with their kind letter followed by ``l{k}_`` (``rl0_z3_5`` is the
resistor from input 5 to neuron 3 of layer 0, ``rl0_z3_b`` its bias resistor, ``dl0_z3`` its diode,
``el0_p3``/``el0_n3`` its buffers; minimal mode: copies ``l0_p3``/``l0_n3``, split summing nodes
``l0_sp3``/``l0_sn3``); inputs are ``vin{j}`` on node ``in{j}`` with inverters ``ein_n{j}``
(node ``in_n{j}``); bias sources ``vbias_p``/``vbias_n``; outputs are nodes ``out{i}``.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np

from .circuit import Circuit

UNIT = 1e-3  # default conductance per unit weight, siemens
MINIMAL_GAIN = 1e3  # default layer-to-layer conductance ratio of minimal mode
MODES = ("exact", "minimal")
REPORT_KINDS = ("R", "D", "E", "V")


# ---- model files -----------------------------------------------------------------------------------
def check_network(weights, biases) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate a network and return its arrays as float64: ``W_k`` (n_out, n_in), ``b_k`` (n_out,).

    Raises ValueError naming the culprit array (``W1``, ``b0``, ...).
    """
    weights, biases = list(weights), list(biases)
    if not weights:
        raise ValueError("the network has no layers (expected W0, b0, ...)")
    if len(weights) != len(biases):
        raise ValueError(f"{len(weights)} weight matrices but {len(biases)} bias vectors")
    out_w, out_b = [], []
    for k, (w, b) in enumerate(zip(weights, biases)):
        if np.iscomplexobj(w) or np.iscomplexobj(b):  # float64 would drop the imaginary part
            raise ValueError(f"W{k} and b{k} must be real numeric arrays")
        try:
            w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"W{k} and b{k} must be numeric arrays") from None
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"W{k} must be a non-empty 2-D array (n_out, n_in), got shape {w.shape}")
        if b.shape != (w.shape[0],):
            raise ValueError(f"b{k} must have shape ({w.shape[0]},) to match W{k} {w.shape}, got {b.shape}")
        if k and w.shape[1] != out_w[-1].shape[0]:
            raise ValueError(f"W{k} takes {w.shape[1]} inputs but layer {k - 1} has {out_w[-1].shape[0]} outputs")
        for name, a in ((f"W{k}", w), (f"b{k}", b)):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} has non-finite values at {np.argwhere(~np.isfinite(a))[0].tolist()}")
        out_w.append(w)
        out_b.append(b)
    return out_w, out_b


def load_model(path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(weights, biases)`` from MODEL.npz (arrays W0, b0, W1, b1, ...) or an HDF5 file with those datasets.

    Other arrays in the file are ignored. Raises ValueError naming the file and the culprit.
    """
    name = str(path)  # as given, in messages
    try:
        arrays = _read_arrays(path)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{name}: cannot read model ({getattr(e, 'strerror', None) or e})") from None
    if arrays is None:
        raise ValueError(f"{name}: not a .npz or HDF5 model file")
    if odd := [k for k in arrays if re.fullmatch(r"[Wb]0\d+", k)]:
        raise ValueError(f"{name}: array {odd[0]}: layers are numbered without leading zeros (W0, b0, W1, ...)")
    layers = sorted(int(m[1]) for m in map(re.compile(r"W(\d+)$").match, arrays) if m)
    if layers != list(range(len(layers))) or not layers:
        missing = next((f"W{k}" for k in range(len(layers) + 1) if k not in layers), "W0")
        raise ValueError(f"{name}: array {missing} missing (found {sorted(arrays)})")
    if missing := [f"b{k}" for k in layers if f"b{k}" not in arrays]:
        raise ValueError(f"{name}: array {missing[0]} missing (found {sorted(arrays)})")
    try:
        return check_network([arrays[f"W{k}"] for k in layers], [arrays[f"b{k}"] for k in layers])
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _read_arrays(path) -> dict[str, np.ndarray] | None:
    """All arrays of an .npz file or all top-level datasets of an HDF5 file; None for other files."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        import h5py

        with h5py.File(path, "r") as f:
            entries = {k: f.get(k) for k in f}  # None: a dangling link
            # a dataset with a null dataspace holds nothing: an empty array, refused by name if it is W or b
            return {k: np.empty(0) if d.shape is None else np.asarray(d) for k, d in entries.items()
                    if isinstance(d, h5py.Dataset)}
    if magic.startswith(b"PK"):
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    return None


def forward(weights, biases, x) -> np.ndarray:
    """The network's outputs (B, n_out) for inputs ``x`` (B, n_in)."""
    h = np.asarray(x, dtype=np.float64)
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w.T + b
        if k < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h


def relative_error(y_circuit, y_network) -> float:
    """``max |y_circuit - y_network| / max(1, max |y_network|)`` over all samples and outputs."""
    y_network = np.asarray(y_network)
    return float(np.max(np.abs(np.asarray(y_circuit) - y_network)) / max(1.0, float(np.max(np.abs(y_network)))))


# ---- circuit construction --------------------------------------------------------------------------
class _Builder:
    """Adds elements to a Circuit, array-wise; node and element names as in the module docstring."""

    def __init__(self, circuit: Circuit):
        self.c = circuit
        self._bias: dict[int, int] = {}

    def bias_node(self, sign: int) -> int:
        """The node of the +1 V (sign > 0) or -1 V bias source, created on first use."""
        if sign not in self._bias:
            tag = "p" if sign > 0 else "n"
            self.c.add("V", f"vbias_{tag}", [f"bias_{tag}", "0"], float(sign))
            self._bias[sign] = self.c.node_id(f"bias_{tag}")
        return self._bias[sign]

    def vcvs(self, names, out_nodes, ctrl_nodes, gains, ctrl_minus=None) -> None:
        """VCVS from ground to ``out_nodes``: v_out = gain * (v_ctrl - v_ctrl_minus), ``ctrl_minus`` default ground."""
        zero = np.zeros(len(out_nodes), np.int64)
        minus = zero if ctrl_minus is None else ctrl_minus
        self.c.add_many("E", names, np.stack([out_nodes, zero, ctrl_nodes, minus], 1), gains)

    def diodes(self, names, nodes, clamp_below: bool) -> None:
        """Ideal diodes holding ``nodes`` >= 0 V (clamp_below) or <= 0 V."""
        zero = np.zeros(len(nodes), np.int64)
        pair = [zero, nodes] if clamp_below else [nodes, zero]
        self.c.add_many("D", names, np.stack(pair, 1), np.zeros(len(nodes)))

    def neurons(self, prefix: str, w, b, pos, neg, unit: float, rows=None, total=None) -> tuple[np.ndarray, np.ndarray]:
        """Neuron nodes ``{prefix}{i}`` (i in ``rows``, default all) at ``(w @ v + b) / G`` volts, fed from rails
        ``pos``/``neg`` (node ids, -1 = absent) and the bias sources; ``unit`` siemens per unit weight.

        ``G`` is ``total`` (weight units, per row; default ``sum |w| + |b|``), reached by a conductance
        ``G - sum |w| - |b|`` to ground where positive; a row whose G would be 0 gets G = 1 (so it sits at 0 V).
        Returns (node ids, G) of those rows."""
        rows = np.arange(len(w)) if rows is None else np.asarray(rows, dtype=np.int64)
        w, b = w[rows], b[rows]
        names = [f"{prefix}{i}" for i in rows]
        ids = self.c.nodes_of(names)
        i, j = np.nonzero(w)
        wij = w[i, j]
        src = np.where(wij > 0, pos[j], neg[j])
        assert np.all(src >= 0), "a rail the weights need was not built"
        stem = np.char.add("r", np.asarray(names, dtype=str)[i])
        self.c.add_many("R", np.char.add(np.char.add(stem, "_"), j.astype(str)),
                        np.stack([ids[i], src], 1), 1.0 / (unit * np.abs(wij)))
        ib = np.nonzero(b)[0]
        if len(ib):
            bias = np.array([self.bias_node(1 if v > 0 else -1) for v in b[ib]], np.int64)
            self.c.add_many("R", [f"r{names[k]}_b" for k in ib], np.stack([ids[ib], bias], 1),
                            1.0 / (unit * np.abs(b[ib])))
        g = np.abs(w).sum(axis=1) + np.abs(b)
        total = g if total is None else np.asarray(total, dtype=np.float64)
        total = np.where(total > 0, total, 1.0)
        top = np.nonzero(total > g)[0]
        if len(top):
            self.c.add_many("R", [f"r{names[k]}_g" for k in top], np.stack([ids[top], np.zeros(len(top), np.int64)], 1),
                            1.0 / (unit * (total[top] - g[top])))
        return ids, total

    def inputs(self, n_in: int, invert) -> tuple[np.ndarray, np.ndarray]:
        """Input sources ``vin{j}`` and inverters for the inputs where the bool mask ``invert`` (n_in,) is set."""
        names = [f"in{j}" for j in range(n_in)]
        pos = self.c.nodes_of(names)
        self.c.add_many("V", [f"v{n}" for n in names], np.stack([pos, np.zeros(n_in, np.int64)], 1), np.zeros(n_in))
        self.c.inputs = [f"v{n}" for n in names]
        neg = np.full(n_in, -1, np.int64)
        need = np.nonzero(invert)[0]
        neg[need] = self.c.nodes_of([f"in_n{j}" for j in need])
        self.vcvs([f"ein_n{j}" for j in need], neg[need], pos[need], np.full(len(need), -1.0))
        return pos, neg

    def outputs(self, k: int, z_ids, g, minus_ids=None) -> None:
        """Output nodes ``out{i}`` = G_i * (v(z_i) - v(minus_i)) through VCVS ``el{k}_o{i}``."""
        n = len(z_ids)
        self.vcvs([f"el{k}_o{i}" for i in range(n)], self.c.nodes_of([f"out{i}" for i in range(n)]), z_ids, g,
                  minus_ids)
        self.c.outputs = [f"out{i}" for i in range(n)]

    def split_neurons(self, k: int, w, b, pos, unit: float, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neurons ``rows`` of layer ``k`` as two summing nodes fed from positive rails only: ``l{k}_sp{i}``
        (weights and bias > 0) and ``l{k}_sn{i}`` (|weights and bias| < 0), topped up to the same total
        ``G_i``, so that ``v(sp_i) - v(sn_i) = z_i / G_i``. Returns (sp ids, sn ids, G)."""
        wp, wn, bp, bn = np.maximum(w, 0), np.maximum(-w, 0), np.maximum(b, 0), np.maximum(-b, 0)
        total = np.maximum(wp.sum(axis=1) + bp, wn.sum(axis=1) + bn)[rows]
        sp, g = self.neurons(f"l{k}_sp", wp, bp, pos, pos, unit, rows, total)
        sn, _ = self.neurons(f"l{k}_sn", wn, bn, pos, pos, unit, rows, total)
        return sp, sn, g


def compile_relu(weights, biases, mode: str = "exact", *, unit: float = UNIT, gain: float | None = None,
                 title: str | None = None) -> Circuit:
    """A Circuit computing the ReLU network ``(weights, biases)``: ``.inputs`` one source per input feature
    (volts), ``.outputs`` one node per network output (volts), in order.

    ``unit``: conductance per unit weight (siemens, default 1e-3). ``gain`` (minimal mode only, default 1e3):
    the conductance ratio between consecutive layers; larger is more accurate.
    """
    weights, biases = check_network(weights, biases)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if not (np.isfinite(unit) and unit > 0):
        raise ValueError(f"unit must be a positive conductance in siemens, got {unit}")
    if mode == "exact" and gain is not None:
        raise ValueError("gain applies only to mode='minimal'")
    gain = MINIMAL_GAIN if gain is None else float(gain)
    if not (np.isfinite(gain) and gain >= 1):
        raise ValueError(f"gain must be a finite number >= 1, got {gain}")
    if mode == "minimal" and (len(weights) - 1) * np.log10(gain) > 300:
        raise ValueError(f"gain {gain:g} over {len(weights)} layers needs conductances of unit / gain^"
                         f"{len(weights) - 1}, below what double precision holds")
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    c = Circuit(title or f"ReLU network {'-'.join(map(str, sizes))} ({mode})")
    build = _Builder(c)
    with np.errstate(over="ignore", divide="ignore"):  # values beyond double precision are refused below
        if mode == "exact":
            _exact_layers(build, weights, biases, *build.inputs(sizes[0], (weights[0] < 0).any(axis=0)), unit)
        else:
            _minimal_layers(build, weights, biases, unit, gain)
    for kind, what in (("R", "a resistance"), ("E", "an amplifier gain")):
        values = c[kind].value
        bad = ~np.isfinite(values) | ((values <= 0) if kind == "R" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"the weights at unit {unit:g} S need {what} of {values[i]:g} for {c[kind].names[i]}, "
                             "beyond double precision: scale the weights or the unit")
    return c


def _rails_needed(w_next) -> tuple[np.ndarray, np.ndarray]:
    """Which neurons (columns of the next layer's weights) need a positive / a negative rail."""
    return np.nonzero((w_next > 0).any(axis=0))[0], np.nonzero((w_next < 0).any(axis=0))[0]


def _exact_layers(build: _Builder, weights, biases, pos, neg, unit: float) -> None:
    last = len(weights) - 1
    for k, (w, b) in enumerate(zip(weights, biases)):
        ids, g = build.neurons(f"l{k}_z", w, b, pos, neg, unit)
        if k == last:
            build.outputs(k, ids, g)
            return
        build.diodes([f"dl{k}_z{i}" for i in range(len(ids))], ids, clamp_below=True)
        pos, neg = np.full(len(ids), -1, np.int64), np.full(len(ids), -1, np.int64)
        for rail, sign, need in zip((pos, neg), (1.0, -1.0), _rails_needed(weights[k + 1])):
            tag = "p" if sign > 0 else "n"
            rail[need] = build.c.nodes_of([f"l{k}_{tag}{i}" for i in need])
            build.vcvs([f"el{k}_{tag}{i}" for i in need], rail[need], ids[need], sign * g[need])


def _copies_needed(weights) -> list[tuple[np.ndarray, np.ndarray]]:
    """Minimal mode: for the rails feeding each layer k (k = 0: the inputs), bool masks of the neurons whose
    positive / negative copy is used. Worked backwards from the outputs (positive use only): a positive copy
    of neuron i draws on the rails of the signs of its weights, a negative copy on the opposite ones."""
    use_p, use_n = np.ones(len(weights[-1]), bool), np.zeros(len(weights[-1]), bool)
    needs = []
    for w in reversed(weights):
        wp, wn = w > 0, w < 0
        use_p, use_n = ((wp & use_p[:, None]) | (wn & use_n[:, None])).any(axis=0), \
            ((wn & use_p[:, None]) | (wp & use_n[:, None])).any(axis=0)
        needs.append((use_p, use_n))
    return needs[::-1]


def _minimal_layers(build: _Builder, weights, biases, unit: float, gain: float) -> None:
    n_in, last = weights[0].shape[1], len(weights) - 1
    needs = _copies_needed(weights)
    # a split (differential) first layer costs one VCVS per copy it feeds (none when it is the output layer);
    # inverting the inputs costs one per inverted input: take the cheaper
    split_cost = sum(map(np.count_nonzero, needs[1])) if last else 0
    split = split_cost < np.count_nonzero(needs[0][1])
    pos, neg = build.inputs(n_in, np.zeros(n_in, bool) if split else needs[0][1])
    scale = np.ones(n_in)  # G of the previous layer's neurons (inputs: 1)
    for k, (w, b) in enumerate(zip(weights, biases)):
        w = w * scale[None, :]
        u = unit / gain**k
        if k == last:
            if split and k == 0:
                sp, sn, g = build.split_neurons(k, w, b, pos, u, np.arange(len(b)))
                build.outputs(k, sp, g, sn)
            else:
                ids, g = build.neurons(f"l{k}_z", w, b, pos, neg, u)
                build.outputs(k, ids, g)
            return
        rails, scale = [], np.ones(len(b))
        if split and k == 0:
            rows = np.nonzero(needs[1][0] | needs[1][1])[0]
            sp, sn, scale[rows] = build.split_neurons(k, w, b, pos, u, rows)
        for sign, mask in zip((1, -1), needs[k + 1]):
            tag, need = ("p" if sign > 0 else "n"), np.nonzero(mask)[0]
            rail = np.full(len(b), -1, np.int64)
            rail[need] = build.c.nodes_of([f"l{k}_{tag}{i}" for i in need])
            if split and k == 0:  # VCVS +-(sp - sn) -> conductance G u -> copy node
                at = np.searchsorted(rows, need)
                ctrl = (sp[at], sn[at]) if sign > 0 else (sn[at], sp[at])
                out = build.c.nodes_of([f"l{k}_e{tag}{i}" for i in need])
                build.vcvs([f"el{k}_{tag}{i}" for i in need], out, ctrl[0], np.ones(len(need)), ctrl[1])
                build.c.add_many("R", [f"rl{k}_{tag}{i}_s" for i in need], np.stack([rail[need], out], 1),
                                 1.0 / (u * scale[need]))
            else:
                _, scale[need] = build.neurons(f"l{k}_{tag}", sign * w, sign * b, pos, neg, u, rows=need)
            build.diodes([f"dl{k}_{tag}{i}" for i in need], rail[need], clamp_below=sign > 0)
            rails.append(rail)
        pos, neg = rails


# ---- report ----------------------------------------------------------------------------------------
_LAYER_NAME = re.compile(r"^[rdev]l(\d+)_")
_INPUT_NAME = re.compile(r"^(vin\d|ein_n\d|vbias_)")


def element_report(circuit: Circuit) -> dict[str, dict[str, int]]:
    """Element counts of kinds R, D, E, V per group, from the element names of :func:`compile_relu`:
    ``"inputs"`` (input sources, input inverters, bias sources), ``"layer 0"``, ``"layer 1"``, ...,
    ``"other"`` (only when some names follow neither pattern), and ``"total"``."""
    report: dict[str, dict[str, int]] = {}
    for kind in REPORT_KINDS:
        for name in circuit[kind].names.tolist():
            m = _LAYER_NAME.match(name)
            group = f"layer {m[1]}" if m else "inputs" if _INPUT_NAME.match(name) else "other"
            counts = report.setdefault(group, dict.fromkeys(REPORT_KINDS, 0))
            counts[kind] += 1
    order = sorted(report, key=lambda g: (g != "inputs", g == "other", int(g[6:]) if g.startswith("layer") else 0))
    report = {g: report[g] for g in order}
    report["total"] = {kind: sum(c[kind] for c in report.values()) for kind in REPORT_KINDS}
    return report


def format_report(report: dict[str, dict[str, int]]) -> str:
    """The element report as a text table, one row per group."""
    lines = [f"{'group':<10}" + "".join(f"{k:>9}" for k in REPORT_KINDS)]
    lines += [f"{g:<10}" + "".join(f"{c[k]:>9}" for k in REPORT_KINDS) for g, c in report.items()]
    return "\n".join(lines)
