"""Deep resistive networks (DRNs, Scellier 2024): the published model, its circuit and its layered fast path.

The model. Layer 0 holds 2 n_pixels input nodes: pixel x_i in [0, 1] drives node i to +g x_i and node
n_pixels + i to -g x_i volts (g: the input gain), each through a voltage source. Hidden layers follow: the
first half of a hidden layer's nodes has an ideal diode from ground (v >= 0), the second half one to ground
(v <= 0). The last layer has n_outputs linear nodes. Consecutive layers are fully connected by trainable
conductances W_l (n_{l-1}, n_l) siemens (initialised uniform in [-1/sqrt(n_{l-1}), 1/sqrt(n_{l-1})], then
clamped at 0, so about half start open), and every hidden and output node receives a trainable bias current
b_l (amperes, initialised 0) from ground. The energy (power) is

    E = sum_l sum_ij ½ W_l[i, j] (v_{l-1,i} - v_{l,j})² - sum_l sum_j b_l[j] v_{l,j}.

θ is laid out as the circuit's: W_1 ... W_L row-major (resistor ``w{l}_{i}_{j}`` joins node i of layer
l-1 to node j of layer l), then b_1 ... b_L (current source ``b{l}_{j}``); parameter group l-1 holds
W_l and group L+l-1 holds b_l, as the circuit's ``.trainable`` cards ``w{l}_*`` and ``b{l}_*`` do.

The fast path is ``layered.LayeredModel``'s exact block coordinate descent: a node's new potential is
(sum_k W v_k + b) / sum_k W, clipped by its diode (plus the nudge beta (y - v) on outputs); EP's batch sums of
ΔV² are matrix products: sum_b (v_i - u_j)² = sum_b v_i² + sum_b u_j² - 2 (VᵀU)_ij.
"""

from __future__ import annotations

import numpy as np

from ..circuit import Circuit, TrainableSpec
from . import dense
from .base import hidden_and_options
from .layered import LayeredModel, LayeredState

__all__ = ["DRN", "LayeredState", "drn"]


class DRN(LayeredModel):
    """A DRN of ``n_pixels`` pixels (2 n_pixels input nodes), ``hidden`` layer sizes (each even) and
    ``n_outputs`` outputs, with input gain ``input_gain`` (V), weights drawn from ``seed``, parameters and
    states in ``dtype`` (float32 or float64); equilibria to ``tol`` (relative, see the module docstring;
    default 1e-9 in float64, 1e-5 in float32) within ``max_sweeps``. ``gmax``: an upper bound (S) on the
    conductances, one for all weight layers or one per layer (default none; device models such as quantised
    levels need one)."""

    name = "DRN"
    squared_terms = True

    def __init__(self, n_pixels: int, hidden, n_outputs: int = 10, input_gain: float = 1.0, seed: int = 0,
                 dtype=np.float64, tol: float | None = None, max_sweeps: int = 10_000, gmax=None):
        hidden = tuple(int(h) for h in hidden)
        if any(h < 2 or h % 2 for h in hidden):
            raise ValueError(f"a DRN's hidden layers need even sizes >= 2 (half v >= 0, half v <= 0), got {hidden}")
        if not (np.isfinite(input_gain) and input_gain > 0):
            raise ValueError(f"input gain must be a finite number of volts > 0, got {input_gain}")
        self.n_pixels, self.hidden, self.input_gain = int(n_pixels), hidden, float(input_gain)
        L = len(hidden) + 1
        self.gmax = tuple(np.broadcast_to(np.inf if gmax is None else np.asarray(gmax, dtype=np.float64), L).tolist())
        if not all(g > 0 for g in self.gmax):
            raise ValueError(f"gmax must be > 0 siemens, got {gmax}")
        sizes = (2 * self.n_pixels, *hidden, n_outputs)
        n_w = [sizes[l - 1] * sizes[l] for l in range(1, L + 1)]
        super().__init__(sizes, dtype, tol, max_sweeps, (0.0, np.repeat(self.gmax, n_w)),
                         [f"w{l}_*" for l in range(1, L + 1)] + [f"b{l}_*" for l in range(1, L + 1)])
        self._uniform_weights(1.0, seed, clamp_at_zero=True)
        self._limit = None

    @property
    def n_inputs(self) -> int:
        return self.n_pixels

    def set_theta(self, theta) -> None:
        super().set_theta(theta)
        self._limit = None

    def _node_terms(self):
        """d = each free node's total conductance (S); lo, hi = 0 / inf (first half of a hidden layer), -inf / 0
        (second half), -inf / inf (outputs)."""
        sums, lo, hi = [], [], []
        for l in range(1, self.n_layers + 1):
            s = np.empty((1, self.sizes[l]), self.dtype)
            dense.forward(np.ones((1, self.sizes[l - 1]), self.dtype), self.weight(l), s)
            s = s[0].astype(np.float64)
            half = self.sizes[l] // 2
            if l < self.n_layers:
                s += self.weight(l + 1).sum(axis=1, dtype=np.float64)
                lo.append(np.r_[np.zeros(half), np.full(half, -np.inf)])
                hi.append(np.r_[np.full(half, np.inf), np.zeros(half)])
            else:
                lo.append(np.full(self.sizes[l], -np.inf))
                hi.append(np.full(self.sizes[l], np.inf))
            sums.append(s)
        sums = np.concatenate(sums)
        if np.any(sums <= 0):
            layer, node = self._locate(int(np.flatnonzero(sums <= 0)[0]))
            raise ValueError(f"node {node} of layer {layer} has no conductance left (all its resistors are "
                             "open): its potential is not determined")
        return sums, np.concatenate(lo), np.concatenate(hi)

    def input_layer(self, X) -> np.ndarray:
        """(B, 2 n_pixels) input-layer potentials g [x, -x] (volts) of images X (B, n_pixels) in [0, 1]."""
        X = np.asarray(X, dtype=self.dtype).reshape(-1, self.n_pixels)
        return np.concatenate([X, -X], axis=1) * self.dtype.type(self.input_gain)

    def _check_negative_beta(self, beta: float) -> None:
        """Exact when cheap (one hidden layer: a 10 x 10 Schur complement) or already known for this θ;
        otherwise the necessary condition on the outputs' own conductance (the trainer checks the exact limit
        at its start and after every epoch)."""
        if self._limit is None and self.n_layers <= 2:
            self.max_negative_beta()
        d = self.node_terms()[0]
        limit = self._limit if self._limit is not None else float(d[-self.n_outputs:].min())
        if -beta >= limit:
            raise ValueError(f"beta = {beta:g} S makes the nudged energy non-convex (negative nudges need "
                             f"|beta| < {limit:.6g} S)")

    def max_negative_beta(self) -> float:
        """The largest |beta| (S) a negative nudge may take while the nudged energy stays strictly convex:
        the smallest eigenvalue of the outputs' Schur complement of the (diode-free) conductance matrix,
        eliminating layer after layer from the first hidden one: S_1 = D_1, S_l = D_l − W_lᵀ S_{l−1}⁻¹ W_l."""
        if self._limit is None:
            sums = self.node_terms()[0].astype(np.float64)
            s_off = np.concatenate([[0], np.cumsum(self.sizes[1:])])
            W = self.weight(2).astype(np.float64) if self.n_layers > 1 else None
            S = np.diag(sums[s_off[-2]:]) if W is None else \
                np.diag(sums[s_off[1]:s_off[2]]) - W.T @ (W / sums[:s_off[1], None])
            for l in range(3, self.n_layers + 1):
                W = self.weight(l).astype(np.float64)
                S = np.diag(sums[s_off[l - 1]:s_off[l]]) - W.T @ np.linalg.solve(S, W)
            self._limit = float(np.linalg.eigvalsh(0.5 * (S + S.T))[0])
        return self._limit

    # ---------------------------------------------------------------- the circuit
    def circuit(self, images=None, title: str | None = None) -> Circuit:
        """The equivalent Circuit: input sources ``vp{i}`` (+g x_i) and ``vn{i}`` (-g x_i) on nodes ``xp{i}``,
        ``xn{i}`` (``.inputs``, in input-layer order; set to ``images[0]`` when given, else 0 V), hidden nodes
        ``h{l}_{j}`` with diodes ``d{l}_{j}``, outputs ``out{j}`` (``.outputs``), resistors ``w{l}_{i}_{j}``
        (open where W is 0), bias sources ``b{l}_{j}`` and one ``.trainable`` card per layer."""
        c = Circuit(title or "DRN " + "-".join(map(str, self.sizes)))
        n_pix, L = self.n_pixels, self.n_layers
        pixels = np.arange(n_pix).astype(str)
        names = [np.concatenate([np.char.add("xp", pixels), np.char.add("xn", pixels)])]
        names += [np.char.add(f"h{l}_", np.arange(self.sizes[l]).astype(str)) for l in range(1, L)]
        names.append(np.char.add("out", np.arange(self.n_outputs).astype(str)))
        ids = [c.nodes_of(n) for n in names]
        values = np.zeros(2 * n_pix) if images is None else self.input_layer(np.asarray(images)[:1])[0]
        sources = np.concatenate([np.char.add("vp", pixels), np.char.add("vn", pixels)])
        c.add_many("V", sources, np.stack([ids[0], np.zeros(2 * n_pix, np.int64)], 1), values.astype(np.float64),
                   lower=False)
        c.inputs = sources.tolist()
        c.outputs = names[-1].tolist()
        for l in range(1, L + 1):
            i, j = np.divmod(np.arange(self.sizes[l - 1] * self.sizes[l]), self.sizes[l])
            w = self.weight(l).ravel().astype(np.float64)
            with np.errstate(divide="ignore"):
                resistance = 1.0 / w
            label = np.char.add(np.char.add(np.char.add(f"w{l}_", i.astype(str)), "_"), j.astype(str))
            c.add_many("R", label, np.stack([ids[l - 1][i], ids[l][j]], 1), resistance, lower=False)
        for l in range(1, L):
            half = self.sizes[l] // 2
            node = ids[l]
            ground = np.zeros(len(node), np.int64)
            anode = np.concatenate([ground[:half], node[half:]])
            cathode = np.concatenate([node[:half], ground[half:]])
            c.add_many("D", np.char.add(f"d{l}_", np.arange(len(node)).astype(str)), np.stack([anode, cathode], 1),
                       np.zeros(len(node)), lower=False)
        for l in range(1, L + 1):
            c.add_many("I", np.char.add(f"b{l}_", np.arange(self.sizes[l]).astype(str)),
                       np.stack([np.zeros(self.sizes[l], np.int64), ids[l]], 1), self.bias(l).astype(np.float64),
                       lower=False)
        c.trainable = [TrainableSpec((f"w{l}_*",), gmax=None if np.isinf(g) else g)
                       for l, g in zip(range(1, L + 1), self.gmax)] + \
            [TrainableSpec((f"b{l}_*",)) for l in range(1, L + 1)]
        return c

    def source_values(self, images) -> np.ndarray:
        """(B, 2 n_pixels) float64 values of the circuit's ``.inputs`` sources for images (B, n_pixels)."""
        return self.input_layer(images).astype(np.float64)


def drn(arch="xs", dataset: str = "mnist", n_pixels: int = 784, n_outputs: int = 10, seed: int = 0,
        dtype=np.float64, **options) -> DRN:
    """A DRN: ``arch`` a preset name (its hidden sizes and input gain; ``presets.PRESETS``) or a tuple of
    hidden sizes (then pass ``input_gain=``); ``options`` go to :class:`DRN` (tol, max_sweeps, input_gain, gmax)."""
    hidden, options = hidden_and_options("drn", arch, dataset, options)
    return DRN(n_pixels, hidden, n_outputs, seed=seed, dtype=dtype, **options)
