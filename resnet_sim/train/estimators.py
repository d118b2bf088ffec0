"""Gradient estimators: equilibrium propagation (positive, negative, centered) and the exact gradient.

An estimator turns an energy model's answers (free and nudged equilibria, ∂E/∂θ) into an estimate of
d loss/dθ for a batch, loss = mean over the batch of C = ½‖y_hat − y‖² (V²). With nudged phases at β₁ < β₂
(siemens; one of them may be the free phase, β = 0), both warm-started from the free state,

    ĝ = (∂E/∂θ(x^β₂) − ∂E/∂θ(x^β₁)) / ((β₂ − β₁) B)      summed over the batch of B samples.

Variants: centered (−β, +β), error O(β²); positive (0, +β) and negative (−β, 0), error O(β). The
estimators never know which energy model they drive (the general path, a fast path).
"""

from __future__ import annotations

import numpy as np

__all__ = ["VARIANTS", "EquilibriumPropagation", "ExactGradient", "InferenceLearning", "DualPropagation",
           "as_model", "loss", "ep_gradient", "exact_gradient"]

# variant -> the two phases, as multiples of beta
VARIANTS = {"centered": (-1.0, 1.0), "positive": (0.0, 1.0), "negative": (-1.0, 0.0)}


def check_beta(beta) -> float:
    """beta as a float; ValueError unless finite and > 0 (siemens)."""
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite conductance > 0 (siemens), got {beta}")
    return beta


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown EP variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


class EquilibriumPropagation:
    """EP with nudging strength ``beta`` (S, > 0) and a ``variant`` of :data:`VARIANTS`."""

    def __init__(self, beta: float, variant: str = "centered"):
        self.beta, self.variant = check_beta(beta), check_variant(variant)

    def __call__(self, model, X, Y) -> tuple[np.ndarray, object]:
        """(ĝ (n_θ,), the free state) for the batch X (B, n_inputs), Y (B, n_outputs) V."""
        check = getattr(model, "check_ep_reach", None)
        if check is not None:
            check()
        free = model.free(X)
        phases = []
        for multiple in VARIANTS[self.variant]:
            beta = multiple * self.beta
            phases.append((beta, free if beta == 0 else model.nudged(X, Y, beta, free)))
        (b1, s1), (b2, s2) = phases
        return model.energy_gradient_difference(s2, s1, scale=1.0 / ((b2 - b1) * len(np.atleast_2d(X)))), free

    def __repr__(self) -> str:
        return f"EquilibriumPropagation(beta={self.beta!r}, variant={self.variant!r})"


class ExactGradient:
    """The exact gradient, from the energy model's own ``exact_gradient`` (implicit differentiation)."""

    def __call__(self, model, X, Y) -> tuple[np.ndarray, object]:
        return model.exact_gradient(X, Y)

    def __repr__(self) -> str:
        return "ExactGradient()"


class InferenceLearning:
    """The standard predictive-coding update (inference learning) for models with a ``clamped`` phase (a PCN):
    ĝ = ∂E/∂θ at the state with the outputs clamped to the targets, relaxed from the free state, averaged over
    the batch (∂E/∂θ at the free state, subtracted, is 0 there)."""

    def __call__(self, model, X, Y) -> tuple[np.ndarray, object]:
        clamp = getattr(model, "clamped", None)
        if clamp is None:
            raise ValueError(f"inference learning needs a model with a clamped phase (a PCN), not a {type(model).__name__}")
        free = model.free(X)
        return model.energy_gradient_difference(clamp(X, Y, free), free, scale=1.0 / len(np.atleast_2d(X))), free

    def __repr__(self) -> str:
        return "InferenceLearning()"


class DualPropagation:
    """Dual propagation (Høier, Staudt and Zach 2023) with nudging ``beta``: one inference phase of dyadic
    units (``model.dual_propagation``), for models whose free state is a feed-forward pass (a PCN). A DRN's or a
    Hopfield network's free state is the minimum of a recurrent energy, not a feed-forward pass, so the dyadic
    fixed point, derived for feed-forward networks, has no counterpart there that estimates their gradient."""

    def __init__(self, beta: float):
        self.beta = check_beta(beta)

    def __call__(self, model, X, Y) -> tuple[np.ndarray, object]:
        dual = getattr(model, "dual_propagation", None)
        if dual is None:
            raise ValueError("dual propagation needs a model whose free state is a feed-forward pass (a PCN), not a "
                             f"{type(model).__name__}")
        return dual(X, Y, self.beta)

    def __repr__(self) -> str:
        return f"DualPropagation(beta={self.beta!r})"


def as_model(p, method: str = "auto", tol: float = 1e-9):
    """An energy model for ``p``: a Circuit (compiled here) or Problem becomes a CircuitModel; an energy
    model is returned as it is."""
    from ..circuit import Circuit
    from ..compile import Problem, compile
    from .circuit_model import CircuitModel

    if isinstance(p, Circuit):
        p = compile(p)
    if isinstance(p, Problem):
        return CircuitModel(p, method=method, tol=tol)
    return p


def _batch(model, X, Y) -> tuple[np.ndarray, np.ndarray]:
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    if X.shape != (len(X), model.n_inputs) or Y.shape != (len(X), model.n_outputs):
        raise ValueError(f"X must have shape (B, {model.n_inputs}) and Y (B, {model.n_outputs}) with the same B; "
                         f"got {X.shape} and {Y.shape}")
    return X, Y


def loss(p, X, Y, method: str = "auto", tol: float = 1e-9) -> float:
    """Mean over the batch of ½‖y_hat − y‖² (V²) at the free states of X (B, n_inputs), Y (B, n_outputs)."""
    model = as_model(p, method, tol)
    X, Y = _batch(model, X, Y)
    return float(0.5 * np.mean(np.sum((model.outputs(model.free(X)) - Y) ** 2, axis=1)))


def ep_gradient(p, X, Y, beta: float = 1e-3, variant: str = "centered", method: str = "auto",
                tol: float = 1e-9) -> np.ndarray:
    """(n_θ,) EP estimate of d loss/dθ (see the module docstring); CircuitError where EP cannot reach a
    parameter (amplifier stages: ``CircuitModel.check_ep_reach``) or a negative nudge is not convex."""
    estimator = EquilibriumPropagation(beta, variant)
    model = as_model(p, method, tol)
    X, Y = _batch(model, X, Y)
    return estimator(model, X, Y)[0]


def exact_gradient(p, X, Y, method: str = "auto", tol: float = 1e-9) -> np.ndarray:
    """(n_θ,) d loss/dθ by implicit differentiation of the free state at its active set."""
    model = as_model(p, method, tol)
    X, Y = _batch(model, X, Y)
    return model.exact_gradient(X, Y)[0]
