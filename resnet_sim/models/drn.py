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

The fast path. Layers of one parity share no resistor, so updating all odd layers at once, then all even
ones, is exact block coordinate descent: a node's new potential is (sum_k W v_k + b) / sum_k W, clipped by
its diode (plus the nudge beta (y - v) on outputs). The input layer's contribution V_0 W_1 is computed once
per batch and shared by the free and nudged phases, which start from the free state. Sweeps run until no
potential moves by more than tol · max(1 V, max |v|) (``sweeps`` reports how many). EP's batch sums of
ΔV² are matrix products: sum_b (v_i - u_j)² = sum_b v_i² + sum_b u_j² - 2 (VᵀU)_ij.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..circuit import Circuit, TrainableSpec
from . import dense
from ..train.parameters import ParameterLayout

__all__ = ["Preset", "PRESETS", "preset", "DRN", "DRNState", "drn", "drn_circuit"]


@dataclass(frozen=True)
class Preset:
    """A published DRN configuration: hidden layer sizes, input gain g (V per unit pixel), nudging beta (S),
    learning rates per weight layer and per bias layer, batch size, momentum, epochs of the published run,
    random horizontal flips, and the published test error (fraction)."""

    name: str
    hidden: tuple[int, ...]
    input_gain: float
    beta: float
    lr_weights: tuple[float, ...]
    lr_biases: tuple[float, ...]
    epochs: int
    published_test_error: float
    batch_size: int = 4
    momentum: float = 0.0
    flips: bool = False
    gamma: float = 0.99


PRESETS = {
    ("xs", "mnist"): Preset("xs", (100,), 100.0, 1.0, (0.006, 0.006), (0.006, 0.006), 10, 0.0346),
    ("1h", "mnist"): Preset("1h", (1024,), 480.0, 1.0, (0.006, 0.006), (0.006, 0.006), 50, 0.0157),
    ("2h", "mnist"): Preset("2h", (1024, 1024), 2000.0, 1.0, (0.002, 0.006, 0.018), (0.002, 0.006, 0.018), 50, 0.0148),
    ("3h", "mnist"): Preset("3h", (1024, 1024, 1024), 4000.0, 2.0, (0.005, 0.02, 0.08, 0.005),
                            (0.0005, 0.002, 0.008, 0.0005), 50, 0.0166),
    ("xl", "mnist"): Preset("xl", (32768,), 800.0, 1.0, (0.006, 0.006), (0.006, 0.006), 100, 0.0133),
    ("1h", "fashion-mnist"): Preset("1h", (1024,), 300.0, 0.5, (0.005, 0.005), (0.005, 0.005), 100, 0.1038,
                                    batch_size=32, momentum=0.9, flips=True),
}
ARCHITECTURES = ("xs", "1h", "2h", "3h", "xl")


def preset(arch: str, dataset: str = "mnist") -> Preset:
    """The published preset of ``arch`` on ``dataset``; for a data set without a published run of that
    architecture, the MNIST preset. ValueError naming the choices for an unknown architecture."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown DRN architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return PRESETS.get((arch, dataset), PRESETS[(arch, "mnist")])


@dataclass
class DRNState:
    """An equilibrium of a batch: ``inputs`` (B, n_0) input-layer potentials, ``drive`` (B, n_1) amperes
    their contribution V_0 W_1, ``layers`` the potentials (B, n_l) of layers 1..L (volts), ``sweeps`` the
    block sweeps it took and ``converged``."""

    inputs: np.ndarray
    drive: np.ndarray
    layers: list[np.ndarray]
    sweeps: int
    converged: bool


class DRN:
    """A DRN of ``n_pixels`` pixels (2 n_pixels input nodes), ``hidden`` layer sizes (each even) and
    ``n_outputs`` outputs, with input gain ``input_gain`` (V), weights drawn from ``seed``, parameters and
    states in ``dtype`` (float32 or float64); equilibria to ``tol`` (relative, see the module docstring;
    default 1e-9 in float64, 1e-5 in float32) within ``max_sweeps``."""

    def __init__(self, n_pixels: int, hidden, n_outputs: int = 10, input_gain: float = 1.0, seed: int = 0,
                 dtype=np.float64, tol: float | None = None, max_sweeps: int = 10_000):
        hidden = tuple(int(h) for h in hidden)
        if n_pixels < 1 or n_outputs < 1 or any(h < 2 or h % 2 for h in hidden):
            raise ValueError(f"a DRN needs n_pixels >= 1, n_outputs >= 1 and even hidden sizes >= 2; got "
                             f"{n_pixels}, {hidden}, {n_outputs}")
        if not (np.isfinite(input_gain) and input_gain > 0):
            raise ValueError(f"input gain must be a finite number of volts > 0, got {input_gain}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.n_pixels, self.hidden, self.n_outputs = int(n_pixels), hidden, int(n_outputs)
        self.sizes = (2 * self.n_pixels, *hidden, self.n_outputs)
        self.input_gain = float(input_gain)
        self.tol = float(tol if tol is not None else (1e-9 if self.dtype == np.float64 else 1e-5))
        self.max_sweeps = int(max_sweeps)
        L = len(self.sizes) - 1
        n_w = [self.sizes[l - 1] * self.sizes[l] for l in range(1, L + 1)]
        self.w_off = np.concatenate([[0], np.cumsum(n_w)]).astype(np.int64)
        self.b_off = self.w_off[-1] + np.concatenate([[0], np.cumsum(self.sizes[1:])]).astype(np.int64)
        self.theta = np.zeros(int(self.b_off[-1]), self.dtype)
        rng = np.random.default_rng(seed)
        for l in range(1, L + 1):
            bound = 1.0 / np.sqrt(self.sizes[l - 1])
            self.weight(l)[:] = np.maximum(rng.uniform(-bound, bound, (self.sizes[l - 1], self.sizes[l])), 0.0)
        n_g = int(self.w_off[-1])
        group = np.concatenate([np.repeat(np.arange(L), n_w), np.repeat(np.arange(L, 2 * L), self.sizes[1:])])
        self.layout = ParameterLayout(
            resistors=np.arange(n_g), currents=np.arange(len(self.theta) - n_g), group=group,
            lower=np.concatenate([np.zeros(n_g), np.full(len(self.theta) - n_g, -np.inf)]),
            upper=np.full(len(self.theta), np.inf), names=None,
            group_names=tuple([f"w{l}_*" for l in range(1, L + 1)] + [f"b{l}_*" for l in range(1, L + 1)]))
        self._sums = self._limit = None
        self._grad = None
        self._phases = self._sweeps = 0

    # ---------------------------------------------------------------- parameters
    @property
    def n_layers(self) -> int:
        """L: the number of weight layers (hidden layers + 1)."""
        return len(self.sizes) - 1

    def weight(self, l: int) -> np.ndarray:
        """(n_{l-1}, n_l) view of W_l (siemens), l = 1..L."""
        return self.theta[self.w_off[l - 1]:self.w_off[l]].reshape(self.sizes[l - 1], self.sizes[l])

    def bias(self, l: int) -> np.ndarray:
        """(n_l,) view of b_l (amperes), l = 1..L."""
        return self.theta[self.b_off[l - 1]:self.b_off[l]]

    def set_theta(self, theta) -> None:
        """Take θ (n_θ,) (copied unless it is this model's own buffer) and mark derived sums stale."""
        if theta is not self.theta:
            theta = np.asarray(theta)
            if theta.shape != self.theta.shape:
                raise ValueError(f"theta must have shape {self.theta.shape}, got {theta.shape}")
            self.theta[:] = theta
        self._sums = self._limit = None

    @property
    def n_inputs(self) -> int:
        return self.n_pixels

    def _conductance_sums(self) -> np.ndarray:
        """(sum of n_l,) total conductance (S) at each node of layers 1..L, concatenated."""
        if self._sums is None:
            sums = []
            for l in range(1, self.n_layers + 1):
                s = np.empty((1, self.sizes[l]), self.dtype)
                dense.forward(np.ones((1, self.sizes[l - 1]), self.dtype), self.weight(l), s)
                s = s[0].astype(np.float64)
                if l < self.n_layers:
                    s += self.weight(l + 1).sum(axis=1, dtype=np.float64)
                sums.append(s)
            sums = np.concatenate(sums)
            if np.any(sums <= 0):
                layer, node = self._locate(int(np.flatnonzero(sums <= 0)[0]))
                raise ValueError(f"node {node} of layer {layer} has no conductance left (all its resistors are "
                                 "open): its potential is not determined")
            self._sums = sums.astype(self.dtype)
        return self._sums

    def _locate(self, flat: int) -> tuple[int, int]:
        ends = np.cumsum(self.sizes[1:])
        layer = int(np.searchsorted(ends, flat, side="right"))
        return layer + 1, flat - (int(ends[layer - 1]) if layer else 0)

    # ---------------------------------------------------------------- equilibria
    def input_potentials(self, X) -> np.ndarray:
        """(B, 2 n_pixels) input-layer potentials g [x, -x] (volts) of images X (B, n_pixels) in [0, 1]."""
        X = np.asarray(X, dtype=self.dtype).reshape(-1, self.n_pixels)
        return np.concatenate([X, -X], axis=1) * self.dtype.type(self.input_gain)

    def free(self, X) -> DRNState:
        """The free equilibrium of images X (B, n_pixels), from zero potentials."""
        V0 = self.input_potentials(X)
        drive = np.empty((len(V0), self.sizes[1]), self.dtype)
        dense.forward(V0, self.weight(1), drive)
        layers = [np.zeros((len(V0), n), self.dtype) for n in self.sizes[1:]]
        return self._equilibrate(V0, drive, layers, 0.0, None)

    def nudged(self, X, Y, beta: float, start: DRNState) -> DRNState:
        """The equilibrium with the outputs nudged by ``beta`` (S) towards Y (B, n_outputs) V, started from
        ``start`` (whose input contribution it reuses)."""
        Y = np.ascontiguousarray(Y, dtype=self.dtype).reshape(len(start.inputs), self.n_outputs)
        return self._equilibrate(start.inputs, start.drive, [v.copy() for v in start.layers], float(beta), Y)

    def _equilibrate(self, V0, drive, layers, beta, Y) -> DRNState:
        sums = self._conductance_sums()
        if beta < 0:
            # exact when cheap (one hidden layer: a 10 x 10 Schur complement) or already known for this θ;
            # otherwise the necessary condition on the outputs' own conductance (the trainer checks the exact
            # limit at its start and after every epoch)
            if self._limit is None and self.n_layers <= 2:
                self._limit = self.max_negative_beta()
            limit = self._limit if self._limit is not None else float(sums[-self.n_outputs:].min())
            if -beta >= limit:
                raise ValueError(f"beta = {beta:g} S makes the nudged energy non-convex (negative nudges need "
                                 f"|beta| < {limit:.6g} S)")
        state = np.concatenate([v.ravel() for v in layers])
        sizes = np.asarray(self.sizes, np.int64)
        v_off = np.concatenate([[0], np.cumsum(sizes[1:] * len(V0))]).astype(np.int64)
        target = np.zeros((len(V0), self.n_outputs), self.dtype) if Y is None else Y
        sweeps, converged = _sweeps(self.theta, self.w_off, self.b_off, sizes, np.ascontiguousarray(drive), sums,
                                    state, v_off, self.dtype.type(beta), target, self.tol, self.max_sweeps)
        if not np.isfinite(state).all():
            raise ValueError(f"the DRN's equilibrium diverged at beta = {beta:g} S"
                             + (f" (negative nudges need |beta| < {self.max_negative_beta():.6g} S)" if beta < 0 else ""))
        if not converged:
            from ..solve import ConvergenceWarning

            warnings.warn(f"DRN equilibrium not within tol={self.tol:g} after {self.max_sweeps} sweeps (beta = "
                          f"{beta:g} S)", ConvergenceWarning, stacklevel=3)
        self._phases, self._sweeps = self._phases + 1, self._sweeps + int(sweeps)
        B = len(V0)
        out = [state[v_off[l]:v_off[l + 1]].reshape(B, sizes[l + 1]) for l in range(self.n_layers)]
        return DRNState(V0, drive, out, int(sweeps), bool(converged))

    def pop_stats(self) -> dict:
        """{"sweeps_per_phase": mean block sweeps per equilibrium} since the last call (then reset)."""
        stats = {"sweeps_per_phase": self._sweeps / self._phases} if self._phases else {}
        self._phases = self._sweeps = 0
        return stats

    @staticmethod
    def outputs(state: DRNState) -> np.ndarray:
        """(B, n_outputs) output potentials (volts)."""
        return state.layers[-1]

    def max_negative_beta(self) -> float:
        """The largest |beta| (S) a negative nudge may take while the nudged energy stays strictly convex:
        the smallest eigenvalue of the outputs' Schur complement of the (diode-free) conductance matrix,
        eliminating layer after layer from the first hidden one: S_1 = D_1, S_l = D_l − W_lᵀ S_{l−1}⁻¹ W_l."""
        sums = self._conductance_sums().astype(np.float64)
        s_off = np.concatenate([[0], np.cumsum(self.sizes[1:])])
        if self._limit is None:
            W = self.weight(2).astype(np.float64) if self.n_layers > 1 else None
            S = np.diag(sums[s_off[-2]:]) if W is None else \
                np.diag(sums[s_off[1]:s_off[2]]) - W.T @ (W / sums[:s_off[1], None])
            for l in range(3, self.n_layers + 1):
                W = self.weight(l).astype(np.float64)
                S = np.diag(sums[s_off[l - 1]:s_off[l]]) - W.T @ np.linalg.solve(S, W)
            self._limit = float(np.linalg.eigvalsh(0.5 * (S + S.T))[0])
        return self._limit

    # ---------------------------------------------------------------- EP
    def energy_gradient_difference(self, state_2: DRNState, state_1: DRNState, scale: float = 1.0) -> np.ndarray:
        """(n_θ,) scale · (∂E/∂θ(state_2) − ∂E/∂θ(state_1)), batch-summed, in a buffer reused by the next call:
        ½ (Σ_b v_i² ⊕ Σ_b u_j²) − VᵀU per weight layer (differences of the two states; for W_1 the inputs
        are the same and the term is −V_0ᵀ(U_2 − U_1) plus the column part), −Σ_b u_j per bias."""
        if self._grad is None:
            self._grad = np.empty_like(self.theta)
        g, L = self._grad, self.n_layers

        def half_squares(a2, a1):
            return (0.5 * scale * (np.einsum("bi,bi->i", a2, a2) - np.einsum("bi,bi->i", a1, a1))).astype(self.dtype)

        for l in range(1, L + 1):
            u2, u1 = state_2.layers[l - 1], state_1.layers[l - 1]
            G = g[self.w_off[l - 1]:self.w_off[l]].reshape(self.sizes[l - 1], self.sizes[l])
            if l == 1:  # the inputs are the same in both states
                dense.drop_products(state_2.inputs, scale * (u2 - u1), np.zeros(self.sizes[0], self.dtype),
                                    half_squares(u2, u1), G)
            else:
                v2, v1 = state_2.layers[l - 2], state_1.layers[l - 2]
                dense.drop_products(np.concatenate([v2, -v1]), scale * np.concatenate([u2, u1]), half_squares(v2, v1),
                                    half_squares(u2, u1), G)
            g[self.b_off[l - 1]:self.b_off[l]] = scale * (u1.sum(axis=0) - u2.sum(axis=0))
        return g

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
        values = np.zeros(2 * n_pix) if images is None else self.input_potentials(np.asarray(images)[:1])[0]
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
        c.trainable = [TrainableSpec((f"w{l}_*",)) for l in range(1, L + 1)] + \
            [TrainableSpec((f"b{l}_*",)) for l in range(1, L + 1)]
        return c

    def source_values(self, images) -> np.ndarray:
        """(B, 2 n_pixels) float64 values of the circuit's ``.inputs`` sources for images (B, n_pixels)."""
        return self.input_potentials(images).astype(np.float64)


def drn(arch="xs", dataset: str = "mnist", n_pixels: int = 784, n_outputs: int = 10, seed: int = 0,
        dtype=np.float64, **options) -> DRN:
    """A DRN: ``arch`` a preset name (its hidden sizes and input gain) or a tuple of hidden sizes (then pass
    ``input_gain=``); ``options`` go to :class:`DRN` (tol, max_sweeps, input_gain)."""
    if isinstance(arch, str):
        p = preset(arch, dataset)
        options.setdefault("input_gain", p.input_gain)
        hidden = p.hidden
    else:
        hidden = tuple(arch)
    return DRN(n_pixels, hidden, n_outputs, seed=seed, dtype=dtype, **options)


# transitional: the benchmarks still build their DRN circuits with this; replaced by DRN.circuit
def drn_circuit(
    sizes,
    seed: int = 0,
    g_range: tuple[float, float] = (1e-5, 1e-3),
    v_clip: float = 1.0,
    title: str | None = None,
) -> Circuit:
    """A DRN with layer sizes ``sizes`` (n_in, hidden..., n_out) and conductances uniform in ``g_range`` (S).

    Input sources start at values uniform in [-1, 1] V (seeded), so the circuit solves as it is.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
    rng = np.random.default_rng(seed)
    c = Circuit(title or "DRN " + "-".join(map(str, sizes)))

    layers = [[f"in{i}" for i in range(sizes[0])]]
    for l in range(1, len(sizes) - 1):
        layers.append([f"h{l}_{j}" for j in range(sizes[l])])
    layers.append([f"out{j}" for j in range(sizes[-1])])
    ids = [c.nodes_of(names) for names in layers]

    n_in = sizes[0]
    c.add_many("V", [f"vin{i}" for i in range(n_in)], np.stack([ids[0], np.zeros(n_in, np.int64)], 1),
               rng.uniform(-1.0, 1.0, n_in))
    c.inputs = [f"vin{i}" for i in range(n_in)]
    c.outputs = list(layers[-1])

    for l in range(1, len(sizes)):
        n_prev, n_cur = sizes[l - 1], sizes[l]
        j, i = np.divmod(np.arange(n_prev * n_cur), n_prev)
        names = np.char.add(np.char.add(np.char.add(f"r{l}_", j.astype(str)), "_"), i.astype(str))
        g = rng.uniform(g_range[0], g_range[1], n_prev * n_cur)
        c.add_many("R", names, np.stack([ids[l][j], ids[l - 1][i]], 1), 1.0 / g)
    c.trainable = [TrainableSpec(("r*",), gmin=g_range[0] / 10, gmax=g_range[1] * 10)]

    if len(sizes) > 2:
        clip = c.node("clip")
        c.add("V", "vclip", ["clip", "0"], v_clip)
        for l in range(1, len(sizes) - 1):
            hidden = ids[l]
            zeros = np.zeros(len(hidden), np.int64)
            c.add_many("D", [f"dlo{l}_{j}" for j in range(len(hidden))], np.stack([zeros, hidden], 1), zeros)
            c.add_many("D", [f"dhi{l}_{j}" for j in range(len(hidden))],
                       np.stack([hidden, np.full(len(hidden), clip)], 1), zeros)
    return c


@njit(cache=True)
def _sweeps(theta, w_off, b_off, sizes, drive, sums, state, v_off, beta, target, tol, max_sweeps):
    """Block coordinate descent in place on ``state`` (layers 1..L, each (B, n_l) row-major at v_off[l-1]):
    odd layers, then even ones, until no potential moves more than tol · max(1, max |v|). Returns (sweeps,
    converged)."""
    L = len(sizes) - 1
    B = drive.shape[0]
    s_off = np.zeros(L + 1, np.int64)
    for l in range(1, L + 1):
        s_off[l] = s_off[l - 1] + sizes[l]
    for sweep in range(1, max_sweeps + 1):
        change = 0.0
        scale = 1.0
        for parity in (1, 0):
            for l in range(1, L + 1):
                if l % 2 != parity:
                    continue
                n_prev, n, n_next = sizes[l - 1], sizes[l], sizes[l + 1] if l < L else 0
                if l == 1:
                    num = drive.copy()
                else:
                    prev = state[v_off[l - 2]:v_off[l - 1]].reshape(B, n_prev)
                    W = theta[w_off[l - 1]:w_off[l]].reshape(n_prev, n)
                    num = np.zeros((B, n), drive.dtype)
                    for i in range(n_prev):
                        for b in range(B):
                            v = prev[b, i]
                            if v != 0:
                                for j in range(n):
                                    num[b, j] += v * W[i, j]
                if l < L:
                    nxt = state[v_off[l]:v_off[l + 1]].reshape(B, n_next)
                    W = theta[w_off[l]:w_off[l + 1]].reshape(n, n_next)
                    for b in range(B):
                        for j in range(n):
                            acc = 0.0
                            for k in range(n_next):
                                acc += W[j, k] * nxt[b, k]
                            num[b, j] += acc
                cur = state[v_off[l - 1]:v_off[l]].reshape(B, n)
                half = n // 2
                for b in range(B):
                    for j in range(n):
                        value = num[b, j] + theta[b_off[l - 1] + j]
                        den = sums[s_off[l - 1] + j]
                        if l == L:
                            value += beta * target[b, j]
                            den += beta
                        value /= den
                        if l < L:
                            if j < half:
                                value = max(value, 0.0)
                            else:
                                value = min(value, 0.0)
                        change = max(change, abs(value - cur[b, j]))
                        scale = max(scale, abs(value))
                        cur[b, j] = value
        if change <= tol * scale:
            return sweep, True
    return max_sweeps, False
