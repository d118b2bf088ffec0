"""Training with equilibrium propagation (DESIGN.md section 5): parameters, gradient estimators, optimiser,
device models, trainer.

::

    p = rs.compile(c)                                  # c has .inputs / .outputs / .trainable
    theta = rs.train.parameters(p)                     # (n_θ,) conductances (S), then currents (A)
    rs.train.loss(p, X, Y)                             # mean ½‖y_hat − y‖² (V²)
    rs.train.ep_gradient(p, X, Y, beta=1e-3, variant="centered")
    rs.train.exact_gradient(p, X, Y)
"""

from .estimators import VARIANTS, EquilibriumPropagation, ExactGradient, ep_gradient, exact_gradient, loss
from .parameters import ParameterLayout, circuit_with_parameters, layout, parameters, with_parameters

__all__ = ["VARIANTS", "EquilibriumPropagation", "ExactGradient", "ep_gradient", "exact_gradient", "loss",
           "ParameterLayout", "circuit_with_parameters", "layout", "parameters", "with_parameters"]
