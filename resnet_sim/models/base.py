"""What the layered model families share: their sizes, dtype and tolerance, θ laid out as dense layers, the
parameter layout the trainer reads, sweep statistics, and building a model from a preset."""

from __future__ import annotations

import numpy as np

from ..train.parameters import ParameterLayout
from .presets import preset

__all__ = ["DenseLayers", "hidden_and_options"]


class DenseLayers:
    """Layer sizes ``sizes`` (n_0 inputs, hidden..., n_L outputs) and θ: W_1 ... W_L row-major (W_l is
    (n_{l-1}, n_l)), then b_1 ... b_L; group l − 1 holds W_l and group L + l − 1 holds b_l. ``dtype`` float32 or
    float64; equilibria to ``tol`` (default 1e-9 in float64, 1e-5 in float32) within ``max_sweeps``."""

    name = "model"

    def __init__(self, sizes, dtype, tol, max_sweeps, weight_bounds, group_names):
        sizes = tuple(int(n) for n in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"a {self.name} needs positive layer sizes, got {sizes}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.sizes = sizes
        self.tol = float(tol if tol is not None else (1e-9 if self.dtype == np.float64 else 1e-5))
        self.max_sweeps = int(max_sweeps)
        L = self.n_layers
        n_w = [sizes[l - 1] * sizes[l] for l in range(1, L + 1)]
        self.w_off = np.concatenate([[0], np.cumsum(n_w)]).astype(np.int64)
        self.b_off = self.w_off[-1] + np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.int64)
        self.theta = np.zeros(int(self.b_off[-1]), self.dtype)
        n_g, n_b = int(self.w_off[-1]), int(self.b_off[-1] - self.w_off[-1])
        group = np.concatenate([np.repeat(np.arange(L), n_w), np.repeat(np.arange(L, 2 * L), sizes[1:])])
        lower, upper = (np.broadcast_to(np.asarray(b, dtype=np.float64), n_g) for b in weight_bounds)
        self.layout = ParameterLayout(
            resistors=np.arange(n_g), currents=np.arange(n_b), group=group,
            lower=np.concatenate([lower, np.full(n_b, -np.inf)]), upper=np.concatenate([upper, np.full(n_b, np.inf)]),
            names=None, group_names=tuple(group_names))
        self._grad = None
        self._phases = self._sweeps = 0

    def _signed_layers(self, sizes, weight_gain, seed, dtype, tol, max_sweeps) -> None:
        """Initialise as a network of signed, unbounded weights (groups ``W{l}``, ``b{l}``), uniform in
        ±weight_gain/√n_{l-1}, biases 0."""
        L = len(sizes) - 1
        DenseLayers.__init__(self, sizes, dtype, tol, max_sweeps, (-np.inf, np.inf),
                             [f"W{l}" for l in range(1, L + 1)] + [f"b{l}" for l in range(1, L + 1)])
        self._uniform_weights(weight_gain, seed)

    def _uniform_weights(self, gain: float, seed: int, clamp_at_zero: bool = False) -> None:
        """W_l uniform in ±gain/√n_{l-1} (clamped at 0 if asked), drawn from ``seed``."""
        rng = np.random.default_rng(seed)
        for l in range(1, self.n_layers + 1):
            bound = gain / np.sqrt(self.sizes[l - 1])
            w = rng.uniform(-bound, bound, (self.sizes[l - 1], self.sizes[l]))
            self.weight(l)[:] = np.maximum(w, 0.0) if clamp_at_zero else w

    @property
    def n_layers(self) -> int:
        """L: the number of weight layers."""
        return len(self.sizes) - 1

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    def weight(self, l: int) -> np.ndarray:
        """(n_{l-1}, n_l) view of W_l, l = 1..L."""
        return self.theta[self.w_off[l - 1]:self.w_off[l]].reshape(self.sizes[l - 1], self.sizes[l])

    def bias(self, l: int) -> np.ndarray:
        """(n_l,) view of b_l, l = 1..L."""
        return self.theta[self.b_off[l - 1]:self.b_off[l]]

    def set_theta(self, theta) -> None:
        """Take θ (n_θ,) (copied unless it is this model's own buffer); subclasses drop what they derived."""
        if theta is not self.theta:
            theta = np.asarray(theta)
            if theta.shape != self.theta.shape:
                raise ValueError(f"theta must have shape {self.theta.shape}, got {theta.shape}")
            self.theta[:] = theta

    def _gradient_buffer(self) -> np.ndarray:
        """The (n_θ,) buffer ``energy_gradient_difference`` fills and returns (reused call after call)."""
        if self._grad is None:
            self._grad = np.empty_like(self.theta)
        return self._grad

    def _count(self, sweeps: int) -> None:
        self._phases, self._sweeps = self._phases + 1, self._sweeps + int(sweeps)

    def pop_stats(self) -> dict:
        """{"sweeps_per_phase": mean sweeps per equilibrium} since the last call (then reset)."""
        stats = {"sweeps_per_phase": self._sweeps / self._phases} if self._phases else {}
        self._phases = self._sweeps = 0
        return stats


def hidden_and_options(family: str, arch, dataset: str, options: dict) -> tuple[tuple[int, ...], dict]:
    """(hidden sizes, options) for a builder: a preset name's (its options under the caller's), or a tuple of
    hidden sizes with the caller's options."""
    if isinstance(arch, str):
        p = preset(family, arch, dataset)
        return p.hidden, {**p.options, **options}
    return tuple(arch), dict(options)
