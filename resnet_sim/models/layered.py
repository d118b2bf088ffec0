"""Layered energy models: the fast path shared by DRNs and deep Hopfield networks.

A layered model has an input layer 0 (fixed per sample) and free layers 1..L (L the output layer), dense
weights W_l (n_{l-1}, n_l) between consecutive layers and biases b_l. Its energy, given the neighbours of
layer l, is a separable quadratic in layer l with a box per node:

    E_l(v) = Σ_j ½ d_j v_j² − v_j (Σ_i W_l[i, j] u_i + Σ_k W_{l+1}[j, k] w_k + b_l[j]),  lo_j ≤ v_j ≤ hi_j

(u, w the potentials of layers l-1 and l+1; on the output layer the nudge adds ½ β (v − y)²), so its exact
minimiser is v_j = clip((Σ W u + Σ W w + b_j [+ β y_j]) / (d_j [+ β]), lo_j, hi_j). Layers of one parity do
not interact, so updating all odd layers at once, then all even ones, is exact block coordinate descent.
A subclass says what d, lo, hi are (a DRN: each node's total conductance and its diode; a Hopfield network:
1 and the hard sigmoid's [0, 1]) and what ∂E/∂W is beyond the −u_i v_j of the product (a DRN's resistors
add ½ u_i² + ½ v_j²).

θ is laid out as W_1 ... W_L row-major, then b_1 ... b_L; group l − 1 holds W_l and group L + l − 1 holds
b_l. The input layer's contribution V_0 W_1 is computed once per batch and shared by the free and nudged
phases, which start from the free state. Sweeps continue until no potential moves by more than
tol · max(1, max |v|); ``sweeps`` reports how many that took.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit

from . import dense
from .base import DenseLayers

__all__ = ["LayeredModel", "LayeredState"]


@dataclass
class LayeredState:
    """An equilibrium of a batch: ``inputs`` (B, n_0) input-layer values, ``drive`` (B, n_1) their
    contribution V_0 W_1, ``layers`` the states (B, n_l) of layers 1..L, ``sweeps`` the block sweeps it took
    and ``converged``."""

    inputs: np.ndarray
    drive: np.ndarray
    layers: list[np.ndarray]
    sweeps: int
    converged: bool


class LayeredModel(DenseLayers):
    """The shared fast path (see the module docstring). Subclasses call ``DenseLayers.__init__`` and define
    ``input_layer``, ``_node_terms``, ``max_negative_beta`` and, for resistive interactions,
    ``squared_terms = True``."""

    squared_terms = False  # ∂E/∂W_l[i, j] holds ½ u_i² + ½ v_j² (resistors) besides −u_i v_j
    name = "layered model"
    _terms = None

    def set_theta(self, theta) -> None:
        super().set_theta(theta)
        self._terms = None

    def node_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(d, lo, hi), each (n_1 + ... + n_L,) in the model's dtype: the quadratic coefficient and the box of
        every free node (cached per θ)."""
        if self._terms is None:
            self._terms = tuple(np.ascontiguousarray(a, dtype=self.dtype) for a in self._node_terms())
        return self._terms

    def _locate(self, flat: int) -> tuple[int, int]:
        """(layer, node) of free node ``flat`` in the concatenation of layers 1..L."""
        ends = np.cumsum(self.sizes[1:])
        layer = int(np.searchsorted(ends, flat, side="right"))
        return layer + 1, flat - (int(ends[layer - 1]) if layer else 0)

    # ---------------------------------------------------------------- equilibria
    def free(self, X) -> LayeredState:
        """The free equilibrium of the batch X (B, n_inputs), from zero states."""
        V0 = self.input_layer(X)
        drive = np.empty((len(V0), self.sizes[1]), self.dtype)
        dense.forward(V0, self.weight(1), drive)
        layers = [np.zeros((len(V0), n), self.dtype) for n in self.sizes[1:]]
        return self._equilibrate(V0, drive, layers, 0.0, None)

    def nudged(self, X, Y, beta: float, start: LayeredState) -> LayeredState:
        """The equilibrium with the outputs nudged by ``beta`` towards Y (B, n_outputs), started from
        ``start`` (whose input contribution it reuses)."""
        Y = np.ascontiguousarray(Y, dtype=self.dtype).reshape(len(start.inputs), self.n_outputs)
        return self._equilibrate(start.inputs, start.drive, [v.copy() for v in start.layers], float(beta), Y)

    def _check_negative_beta(self, beta: float) -> None:
        """ValueError when a negative ``beta`` is beyond what the model takes (subclasses may be exact)."""
        limit = self.max_negative_beta()
        if -beta >= limit:
            raise ValueError(f"beta = {beta:g} makes the nudged energy non-convex (negative nudges need "
                             f"|beta| < {limit:.6g})")

    def _equilibrate(self, V0, drive, layers, beta, Y) -> LayeredState:
        d, lo, hi = self.node_terms()
        if beta < 0:
            self._check_negative_beta(beta)
        state = np.concatenate([v.ravel() for v in layers])
        sizes = np.asarray(self.sizes, np.int64)
        v_off = np.concatenate([[0], np.cumsum(sizes[1:] * len(V0))]).astype(np.int64)
        target = np.zeros((len(V0), self.n_outputs), self.dtype) if Y is None else Y
        sweeps, converged = _sweeps(self.theta, self.w_off, self.b_off, sizes, np.ascontiguousarray(drive), d, lo, hi,
                                    state, v_off, self.dtype.type(beta), target, self.tol, self.max_sweeps,
                                    get_num_threads(), dense.PARALLEL_MIN_WORK)
        if not np.isfinite(state).all():
            raise ValueError(f"the {self.name}'s equilibrium diverged at beta = {beta:g}")
        if not converged:
            from ..solve import ConvergenceWarning

            warnings.warn(f"{self.name} equilibrium not within tol={self.tol:g} after {self.max_sweeps} sweeps "
                          f"(beta = {beta:g})", ConvergenceWarning, stacklevel=3)
        self._count(sweeps)
        B = len(V0)
        out = [state[v_off[l]:v_off[l + 1]].reshape(B, sizes[l + 1]) for l in range(self.n_layers)]
        return LayeredState(V0, drive, out, int(sweeps), bool(converged))

    @staticmethod
    def outputs(state: LayeredState) -> np.ndarray:
        """(B, n_outputs) output states."""
        return state.layers[-1]

    # ---------------------------------------------------------------- EP
    def energy_gradient_difference(self, state_2: LayeredState, state_1: LayeredState, scale: float = 1.0) -> np.ndarray:
        """(n_θ,) scale · (∂E/∂θ(state_2) − ∂E/∂θ(state_1)), batch-summed, in a buffer reused by the next call.
        Per weight layer: −(U₂ᵀV₂ − U₁ᵀV₁) (one product of stacked states; for W_1 the inputs are the same in
        both states: −V₀ᵀ(U₂ − U₁)), plus ½ (Σ_b u² ⊕ Σ_b v²) differences with ``squared_terms``; per bias:
        −(Σ_b v₂ − Σ_b v₁)."""
        g, L = self._gradient_buffer(), self.n_layers

        def half_squares(a2, a1, n):
            if not self.squared_terms:
                return np.zeros(n, self.dtype)
            return (0.5 * scale * (np.einsum("bi,bi->i", a2, a2) - np.einsum("bi,bi->i", a1, a1))).astype(self.dtype)

        for l in range(1, L + 1):
            u2, u1 = state_2.layers[l - 1], state_1.layers[l - 1]
            G = g[self.w_off[l - 1]:self.w_off[l]].reshape(self.sizes[l - 1], self.sizes[l])
            if l == 1:
                dense.drop_products(state_2.inputs, scale * (u2 - u1), np.zeros(self.sizes[0], self.dtype),
                                    half_squares(u2, u1, self.sizes[1]), G)
            else:
                v2, v1 = state_2.layers[l - 2], state_1.layers[l - 2]
                dense.drop_products(np.concatenate([v2, -v1]), scale * np.concatenate([u2, u1]),
                                    half_squares(v2, v1, self.sizes[l - 1]), half_squares(u2, u1, self.sizes[l]), G)
            g[self.b_off[l - 1]:self.b_off[l]] = scale * (u1.sum(axis=0) - u2.sum(axis=0))
        return g


@njit(cache=True)
def _sweeps(theta, w_off, b_off, sizes, drive, d, lo, hi, state, v_off, beta, target, tol, max_sweeps, threads,
            parallel_work):
    """Block coordinate descent in place on ``state`` (layers 1..L, each (B, n_l) row-major at v_off[l-1]):
    odd layers, then even ones, each node set to clip((Σ W u + Σ W w + b [+ β y]) / (d [+ β]), lo, hi), until
    no state moves more than tol · max(1, max |v|); the products with the weight matrices are ``dense``'s,
    on ``threads`` cores from ``parallel_work`` multiply-adds up. Returns (sweeps, converged)."""
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
                    if B * n_prev * n < parallel_work or threads == 1:
                        dense.add_rows(prev, W, 0, n_prev, num)
                    else:
                        dense.forward_parallel(prev, W, num, threads)
                if l < L:
                    nxt = state[v_off[l]:v_off[l + 1]].reshape(B, n_next)
                    W = theta[w_off[l]:w_off[l + 1]].reshape(n, n_next)
                    if B * n * n_next < parallel_work or threads == 1:
                        dense.dot_rows(nxt, W, 0, n, num)
                    else:
                        dense.add_transposed_parallel(nxt, W, num, threads)
                cur = state[v_off[l - 1]:v_off[l]].reshape(B, n)
                for b in range(B):
                    for j in range(n):
                        node = s_off[l - 1] + j
                        value = num[b, j] + theta[b_off[l - 1] + j]
                        den = d[node]
                        if l == L:
                            value += beta * target[b, j]
                            den += beta
                        value = min(max(value / den, lo[node]), hi[node])
                        change = max(change, abs(value - cur[b, j]))
                        scale = max(scale, abs(value))
                        cur[b, j] = value
        if change <= tol * scale:
            return sweep, True
    return max_sweeps, False
