"""Deep Hopfield networks: a layered energy with hard-sigmoid units, trained by EP on the layered fast path.

    E = Σ_l ½‖s_l‖² − Σ_l s_{l−1}ᵀ W_l s_l − Σ_l b_lᵀ s_l

with s_0 = x the input (fixed), hidden states clipped to [0, 1] (hard sigmoid) and a linear output layer;
weights and biases are signed. Given its neighbours, E is ½‖s_l‖² minus a linear term in layer l, so the
exact block update is s_l = clip(W_lᵀ s_{l−1} + W_{l+1} s_{l+1} + b_l, 0, 1) (on the output layer, with a
nudge β towards y: (W_Lᵀ s_{L−1} + b_L + β y) / (1 + β), unclipped): ``layered.LayeredModel`` with d = 1,
boxes [0, 1] and ∂E/∂W_l[i, j] = −s_{l−1,i} s_{l,j}. E need not be convex (‖W‖ may exceed 1): block
coordinate descent lowers E at every step and stops at a fixed point, the state the published
fixed-point iterations reach when they converge.

Weights start uniform in ±gain/√fan_in (gain 0.7 in the published runs), biases at 0.
"""

from __future__ import annotations

import numpy as np

from .base import hidden_and_options
from .layered import LayeredModel

__all__ = ["Hopfield", "hopfield"]


class Hopfield(LayeredModel):
    """A deep Hopfield network of ``n_inputs`` inputs, ``hidden`` layer sizes and ``n_outputs`` outputs;
    parameters and states in ``dtype``; equilibria to ``tol`` (default 1e-9 in float64, 1e-5 in float32)."""

    name = "Hopfield network"

    def __init__(self, n_inputs: int, hidden, n_outputs: int = 10, weight_gain: float = 0.7, seed: int = 0,
                 dtype=np.float64, tol: float | None = None, max_sweeps: int = 10_000):
        self._signed_layers((n_inputs, *hidden, n_outputs), weight_gain, seed, dtype, tol, max_sweeps)

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    def input_layer(self, X) -> np.ndarray:
        return np.ascontiguousarray(X, dtype=self.dtype).reshape(-1, self.n_inputs)

    def _node_terms(self):
        hidden = sum(self.sizes[1:-1])
        lo = np.concatenate([np.zeros(hidden), np.full(self.n_outputs, -np.inf)])
        hi = np.concatenate([np.ones(hidden), np.full(self.n_outputs, np.inf)])
        return np.ones(len(lo)), lo, hi

    def max_negative_beta(self) -> float:
        """1: the output update divides by 1 + beta."""
        return 1.0

    def unrolled(self, sweeps: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(weights, biases) of a ReLU network (``compile_relu``'s convention: W (n_out, n_in), ReLU on every
        layer but the last) computing ``sweeps`` sweeps of the fast path's block coordinate descent from zero
        states, and then the output layer. Each half-sweep is one ReLU layer carrying every layer's value as a
        difference of two non-negative channels: the input x as relu(x) − relu(−x), a hidden value in [0, 1]
        as relu(z) − relu(z − 1) (the hard sigmoid) when updated and relu(h) − relu(−h) when carried, an output
        as relu(z) − relu(−z). There is no exact resistive map of a Hopfield network: its signed couplings act
        both ways between free layers, while an amplifier (the only sign-inverting element here) acts one way;
        the unrolled network reaches the model's equilibrium as block coordinate descent does (docs/models.md)."""
        L, sizes = self.n_layers, self.sizes
        offs = np.concatenate([[0], np.cumsum([2 * n for n in sizes])])  # channel block of each layer
        width = int(offs[-1])
        W = [self.weight(l).astype(np.float64) for l in range(1, L + 1)]
        b = [self.bias(l).astype(np.float64) for l in range(1, L + 1)]

        def value(l):
            """(n_l, width) map from the channels to layer l's value (positive minus negative channel)."""
            m = np.zeros((sizes[l], width))
            m[np.arange(sizes[l]), offs[l] + np.arange(sizes[l])] = 1.0
            m[np.arange(sizes[l]), offs[l] + sizes[l] + np.arange(sizes[l])] = -1.0
            return m

        weights, biases = [], []
        first = np.zeros((width, sizes[0]))  # x -> relu(x), relu(-x); every other layer starts at 0
        first[np.arange(sizes[0]), np.arange(sizes[0])] = 1.0
        first[sizes[0] + np.arange(sizes[0]), np.arange(sizes[0])] = -1.0
        weights.append(first)
        biases.append(np.zeros(width))
        for _ in range(sweeps):
            for parity in (1, 0):
                A, c = np.zeros((width, width)), np.zeros(width)
                for l in range(L + 1):
                    pos, neg = offs[l] + np.arange(sizes[l]), offs[l] + sizes[l] + np.arange(sizes[l])
                    if l == 0 or l % 2 != parity:  # carried as it is
                        A[pos] = value(l)
                        A[neg] = -value(l)
                        continue
                    z = W[l - 1].T @ value(l - 1)
                    if l < L:
                        z += W[l] @ value(l + 1)
                    A[pos], c[pos] = z, b[l - 1]
                    if l < L:  # hard sigmoid: relu(z) - relu(z - 1)
                        A[neg], c[neg] = z, b[l - 1] - 1.0
                    else:  # linear output: relu(z) - relu(-z)
                        A[neg], c[neg] = -z, -b[l - 1]
                weights.append(A)
                biases.append(c)
        weights.append(value(L))
        biases.append(np.zeros(sizes[L]))
        return weights, biases

    def circuit(self, sweeps: int = 10, **options):
        """The circuit of :meth:`unrolled` (``compile_relu``; ``options``: mode, unit, gain): its inputs the
        network's inputs, its outputs the output layer after ``sweeps`` sweeps."""
        from ..relu_compiler import compile_relu

        weights, biases = self.unrolled(sweeps)
        return compile_relu(weights, biases, title=f"Hopfield {'-'.join(map(str, self.sizes))}, {sweeps} sweeps "
                                                   "unrolled", **options)


def hopfield(arch="1h", dataset: str = "mnist", n_inputs: int = 784, n_outputs: int = 10, seed: int = 0,
             dtype=np.float64, **options) -> Hopfield:
    """A deep Hopfield network: ``arch`` a preset name (``presets.PRESETS``) or a tuple of hidden sizes;
    ``options`` go to :class:`Hopfield` (weight_gain, tol, max_sweeps)."""
    hidden, options = hidden_and_options("hopfield", arch, dataset, options)
    return Hopfield(n_inputs, hidden, n_outputs, seed=seed, dtype=dtype, **options)

