"""Predictive coding networks (PCN): an energy of prediction errors, trained by EP or by the standard
predictive-coding update (inference learning).

    F = Σ_{l=1..L} ½ ‖s_l − μ_l‖²,   μ_l = f(s_{l−1}) W_l + b_l,   f = ReLU (the input s_0 = x enters as it is)

W_l is (n_{l−1}, n_l) and the output layer s_L is linear. With no target, F's minimum is 0 at the
feed-forward pass s_l = μ_l: the free equilibrium is the ReLU network's prediction (so a trained PCN compiles
to a circuit with ``compile_relu``). A nudge adds ½ β ‖s_L − y‖²; the inference-learning baseline clamps
s_L = y instead.

**Equilibration** (``nudged``, ``clamped``) is exact coordinate descent, unit by unit, from the given state:
the output layer's minimiser is (μ_L + β y) / (1 + β); a hidden unit s_j enters F through its own error
½ (s_j − μ_j)² and through f(s_j) in the next layer's prediction, ½ ‖q − w_j f(s_j)‖² (w_j row j of
W_{l+1}, q the next layer's error without unit j's part). F is quadratic on each side of 0, so the exact
minimiser is the better of min(μ_j, 0) and max(0, (μ_j + w_j·q) / (1 + ‖w_j‖²)). Each update lowers F + βC,
which is bounded below, so sweeps settle at a point where no single unit can lower it (the tests check it
against a generic optimiser). Samples are independent and split over the cores. Sweeps stop when no state
moves by more than tol · max(1, max |s|).

**EP update**: ∂F/∂W_l = −f(s_{l−1})ᵀ ε_l and ∂F/∂b_l = −ε_l with ε_l = s_l − μ_l, batch-summed; at the free
state every ε is 0. **Inference learning** (the baseline users know): ĝ = ∂F/∂θ at the clamped state
(``ILEstimator``); it is EP's positive variant at β → ∞ (the free state contributes 0).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from . import dense
from .base import DenseLayers, hidden_and_options

__all__ = ["PCN", "PCNState", "pcn"]


@dataclass
class PCNState:
    """States (B, n_l) of layers 1..L, their prediction errors ε_l, the inputs, ``sweeps`` and ``converged``."""

    inputs: np.ndarray
    layers: list[np.ndarray]
    errors: list[np.ndarray]
    sweeps: int
    converged: bool


class PCN(DenseLayers):
    """A PCN of ``n_inputs`` inputs, ``hidden`` ReLU layer sizes and ``n_outputs`` linear outputs; weights
    uniform in ±gain/√fan_in, biases 0; ``dtype``; equilibria to ``tol`` (1e-9 float64, 1e-5 float32)."""

    name = "PCN"

    def __init__(self, n_inputs: int, hidden, n_outputs: int = 10, weight_gain: float = 1.0, seed: int = 0,
                 dtype=np.float64, tol: float | None = None, max_sweeps: int = 10_000):
        self._signed_layers((n_inputs, *hidden, n_outputs), weight_gain, seed, dtype, tol, max_sweeps)

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    def relu_network(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(weights, biases) of the feed-forward ReLU network the free phase computes, in ``compile_relu``'s
        convention: W_l as (n_l, n_{l-1}) float64 matrices, b_l (n_l,)."""
        L = self.n_layers
        return ([self.weight(l).T.astype(np.float64) for l in range(1, L + 1)],
                [self.bias(l).astype(np.float64) for l in range(1, L + 1)])

    def circuit(self, **options):
        """The circuit of the free phase: ``compile_relu`` of :meth:`relu_network` (``options``: mode, unit, gain),
        which computes the PCN's predictions; its nudged phases have no circuit (docs/models.md)."""
        from ..relu_compiler import compile_relu

        return compile_relu(*self.relu_network(), title=f"PCN {'-'.join(map(str, self.sizes))} (free phase)",
                            **options)

    # ---------------------------------------------------------------- equilibria
    def free(self, X) -> PCNState:
        """The feed-forward pass of X (B, n_inputs): every prediction error 0 (F's minimum)."""
        s = np.ascontiguousarray(X, dtype=self.dtype).reshape(-1, self.n_inputs)
        inputs, layers = s, []
        for l in range(1, self.n_layers + 1):
            a = s if l == 1 else np.maximum(s, 0)
            s = np.empty((len(a), self.sizes[l]), self.dtype)
            dense.forward(np.ascontiguousarray(a), self.weight(l), s)
            s += self.bias(l)
            layers.append(s)
        self._count(0)
        return PCNState(inputs, layers, [np.zeros_like(v) for v in layers], 0, True)

    def nudged(self, X, Y, beta: float, start: PCNState) -> PCNState:
        """The equilibrium of F + ½ beta ‖s_L − y‖² from ``start``; |beta| < 1 for negative nudges."""
        if beta <= -1:
            raise ValueError(f"beta = {beta:g} makes the nudged energy unbounded below (negative nudges need "
                             "|beta| < 1)")
        return self._relax(start, Y, float(beta), False)

    def clamped(self, X, Y, start: PCNState) -> PCNState:
        """The equilibrium of F with the outputs clamped to Y (inference learning's phase)."""
        return self._relax(start, Y, 0.0, True)

    def _relax(self, start, Y, beta, clamp) -> PCNState:
        B = len(start.inputs)
        Y = np.ascontiguousarray(Y, dtype=self.dtype).reshape(B, self.n_outputs)
        sizes = np.asarray(self.sizes, np.int64)
        layers = [v.copy() for v in start.layers]
        errors = [v.copy() for v in start.errors]
        if clamp:  # the output's prediction is unchanged: its error moves with it
            errors[-1] += Y - layers[-1]
            layers[-1][:] = Y
        s = np.concatenate([np.ascontiguousarray(v).ravel() for v in layers])
        e = np.concatenate([np.ascontiguousarray(v).ravel() for v in errors])
        v_off = np.concatenate([[0], np.cumsum(sizes[1:] * B)]).astype(np.int64)
        sweeps = np.zeros(B, np.int64)
        _relax(self.theta, self.w_off, sizes, s, e, v_off, self.dtype.type(beta), Y, clamp, self.tol,
               self.max_sweeps, sweeps)
        converged = bool(np.all(sweeps <= self.max_sweeps))
        if not converged:
            from ..solve import ConvergenceWarning

            warnings.warn(f"PCN equilibrium not within tol={self.tol:g} after {self.max_sweeps} sweeps",
                          ConvergenceWarning, stacklevel=3)
        n = int(np.minimum(sweeps, self.max_sweeps).max(initial=0))
        self._count(n)
        layers = [s[v_off[l]:v_off[l + 1]].reshape(B, sizes[l + 1]) for l in range(self.n_layers)]
        errors = [e[v_off[l]:v_off[l + 1]].reshape(B, sizes[l + 1]) for l in range(self.n_layers)]
        return PCNState(start.inputs, layers, errors, n, converged)

    def energy(self, state: PCNState) -> np.ndarray:
        """(B,) F of each sample (recomputed from the states)."""
        F = np.zeros(len(state.inputs))
        prev = state.inputs
        for l in range(1, self.n_layers + 1):
            a = prev if l == 1 else np.maximum(prev, 0)
            err = state.layers[l - 1] - (a @ self.weight(l) + self.bias(l))
            F += 0.5 * np.einsum("bj,bj->b", err, err)
            prev = state.layers[l - 1]
        return F

    @staticmethod
    def outputs(state: PCNState) -> np.ndarray:
        return state.layers[-1]

    def max_negative_beta(self) -> float:
        """1: F − ½|beta| ‖s_L − y‖² stays bounded below in s_L for |beta| < 1."""
        return 1.0

    def dual_propagation(self, X, Y, beta: float, max_sweeps: int = 100) -> tuple[np.ndarray, PCNState]:
        """(ĝ (n_θ,) batch mean, the free state): dual propagation (Høier, Staudt and Zach 2023, α = ½) on the
        network the free phase computes. Each unit holds two activities a⁺, a⁻ (hidden: f of the pre-activation
        ± half the error fed back, ā_{l−1} W_l + b_l ± ½ (a⁺_{l+1} − a⁻_{l+1}) W_{l+1}ᵀ; output: ā_{L−1} W_L + b_L
        ∓ ½ β (a_L − y)), whose mean ā carries the activity forward and whose difference carries −β times the
        error back; one inference phase, iterated top down to a fixed point (until no activity moves by
        tol · max(1, max |a|), at most ``max_sweeps``), replaces EP's nudged phases. ĝ_W_l = −ā_{l−1}ᵀ (a⁺_l −
        a⁻_l) / (β B), ĝ_b_l = −Σ_b (a⁺_l − a⁻_l) / (β B)."""
        free = self.free(X)
        L = self.n_layers
        Y = np.asarray(Y, dtype=self.dtype).reshape(len(free.inputs), self.n_outputs)
        relu = [(lambda z: z) if l == L else (lambda z: np.maximum(z, 0)) for l in range(1, L + 1)]
        plus = [relu[l](v) for l, v in enumerate(free.layers)]
        minus = [a.copy() for a in plus]
        sweeps = 0
        for sweeps in range(1, max_sweeps + 1):
            change, scale = 0.0, 1.0
            means = [free.inputs] + [0.5 * (p + m) for p, m in zip(plus, minus)]
            for l in range(L, 0, -1):
                z = np.empty((len(Y), self.sizes[l]), self.dtype)
                dense.forward(np.ascontiguousarray(means[l - 1]), self.weight(l), z)
                z += self.bias(l)
                if l == L:
                    half = 0.5 * beta * (z - Y)
                    new_plus, new_minus = z - half, z + half
                else:
                    half = 0.5 * (plus[l] - minus[l]) @ self.weight(l + 1).T
                    new_plus, new_minus = relu[l - 1](z + half), relu[l - 1](z - half)
                change = max(change, np.abs(new_plus - plus[l - 1]).max(), np.abs(new_minus - minus[l - 1]).max())
                scale = max(scale, np.abs(new_plus).max(), np.abs(new_minus).max())
                plus[l - 1], minus[l - 1] = new_plus, new_minus
            if change <= self.tol * scale:
                break
        else:
            from ..solve import ConvergenceWarning

            warnings.warn(f"dual propagation not within tol={self.tol:g} after {max_sweeps} sweeps",
                          ConvergenceWarning, stacklevel=2)
        self._count(sweeps)
        g = self._gradient_buffer()
        means = [free.inputs] + [0.5 * (p + m) for p, m in zip(plus, minus)]
        zero = [np.zeros(n, self.dtype) for n in self.sizes]
        c = -1.0 / (beta * len(Y))
        for l in range(1, L + 1):
            diff = plus[l - 1] - minus[l - 1]
            G = g[self.w_off[l - 1]:self.w_off[l]].reshape(self.sizes[l - 1], self.sizes[l])
            dense.drop_products(np.ascontiguousarray(means[l - 1]), np.ascontiguousarray(-c * diff), zero[l - 1],
                                zero[l], G)
            g[self.b_off[l - 1]:self.b_off[l]] = c * diff.sum(axis=0)
        return g, free

    # ---------------------------------------------------------------- gradients
    def energy_gradient_difference(self, state_2: PCNState, state_1: PCNState, scale: float = 1.0) -> np.ndarray:
        """(n_θ,) scale · (∂F/∂θ(state_2) − ∂F/∂θ(state_1)), batch-summed (buffer reused by the next call):
        −f(s_{l−1})ᵀ ε_l per weight layer (one product of the two states stacked), −Σ_b ε_l per bias."""
        g = self._gradient_buffer()
        zero = [np.zeros(n, self.dtype) for n in self.sizes]
        for l in range(1, self.n_layers + 1):
            if l == 1:
                a2 = a1 = state_2.inputs
            else:
                a2, a1 = np.maximum(state_2.layers[l - 2], 0), np.maximum(state_1.layers[l - 2], 0)
            e2, e1 = state_2.errors[l - 1], state_1.errors[l - 1]
            G = g[self.w_off[l - 1]:self.w_off[l]].reshape(self.sizes[l - 1], self.sizes[l])
            dense.drop_products(np.concatenate([a2, -a1]), scale * np.concatenate([e2, e1]), zero[l - 1], zero[l], G)
            g[self.b_off[l - 1]:self.b_off[l]] = scale * (e1.sum(axis=0) - e2.sum(axis=0))
        return g


def pcn(arch="1h", dataset: str = "mnist", n_inputs: int = 784, n_outputs: int = 10, seed: int = 0,
        dtype=np.float64, **options) -> PCN:
    """A PCN: ``arch`` a preset name (``presets.PRESETS``) or a tuple of hidden ReLU layer sizes; ``options`` go
    to :class:`PCN` (weight_gain, tol, max_sweeps)."""
    hidden, options = hidden_and_options("pcn", arch, dataset, options)
    return PCN(n_inputs, hidden, n_outputs, seed=seed, dtype=dtype, **options)


@njit(parallel=True, cache=True)
def _relax(theta, w_off, sizes, s, e, v_off, beta, target, clamp, tol, max_sweeps, sweeps):
    """Exact unit-by-unit coordinate descent on F + ½ beta ‖s_L − y‖² (or with s_L clamped), in place on the
    states ``s`` and their errors ``e`` (consistent on entry: e = s − μ; layers 1..L, (B, n_l) row-major at
    v_off[l-1]); samples in parallel. ``sweeps[b]`` gets the sweeps sample b took (max_sweeps + 1 when it did
    not settle)."""
    L = len(sizes) - 1
    B = target.shape[0]
    for b in prange(B):
        sweeps[b] = max_sweeps + 1
        for sweep in range(1, max_sweeps + 1):
            change = 0.0
            scale = 1.0
            for l in range(L - 1, 0, -1):  # hidden layers, top down
                n, n_next = sizes[l], sizes[l + 1]
                W = theta[w_off[l]:w_off[l + 1]].reshape(n, n_next)
                so, eo, en = v_off[l - 1] + b * n, v_off[l - 1] + b * n, v_off[l] + b * n_next
                for j in range(n):
                    old = s[so + j]
                    mu = old - e[eo + j]
                    f_old = max(old, 0.0)
                    wq = 0.0
                    ww = 0.0
                    qq = 0.0
                    for k in range(n_next):
                        q = e[en + k] + W[j, k] * f_old
                        wq += W[j, k] * q
                        ww += W[j, k] * W[j, k]
                        qq += q * q
                    neg = min(mu, 0.0)
                    e_neg = 0.5 * (neg - mu) ** 2 + 0.5 * qq
                    pos = max((mu + wq) / (1.0 + ww), 0.0)
                    e_pos = 0.5 * (pos - mu) ** 2 + 0.5 * (qq - 2.0 * pos * wq + pos * pos * ww)
                    new = pos if e_pos < e_neg else neg
                    f_new = max(new, 0.0)
                    if f_new != f_old:
                        for k in range(n_next):
                            e[en + k] -= W[j, k] * (f_new - f_old)
                    s[so + j] = new
                    e[eo + j] = new - mu
                    change = max(change, abs(new - old))
                    scale = max(scale, abs(new))
            if not clamp:
                n = sizes[L]
                o = v_off[L - 1] + b * n
                for j in range(n):
                    old = s[o + j]
                    mu = old - e[o + j]
                    new = (mu + beta * target[b, j]) / (1.0 + beta)
                    s[o + j] = new
                    e[o + j] = new - mu
                    change = max(change, abs(new - old))
                    scale = max(scale, abs(new))
            if change <= tol * scale:
                sweeps[b] = sweep
                break
