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


def hopfield(arch="1h", dataset: str = "mnist", n_inputs: int = 784, n_outputs: int = 10, seed: int = 0,
             dtype=np.float64, **options) -> Hopfield:
    """A deep Hopfield network: ``arch`` a preset name (``presets.PRESETS``) or a tuple of hidden sizes;
    ``options`` go to :class:`Hopfield` (weight_gain, tol, max_sweeps)."""
    hidden, options = hidden_and_options("hopfield", arch, dataset, options)
    return Hopfield(n_inputs, hidden, n_outputs, seed=seed, dtype=dtype, **options)
