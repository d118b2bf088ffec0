"""Training with equilibrium propagation (DESIGN.md section 5): parameters, gradient estimators, optimiser,
device models, trainer. See docs/training.md.

::

    p = rs.compile(c)                                  # c has .inputs / .outputs / .trainable
    theta = rs.train.parameters(p)                     # (n_θ,) conductances (S), then currents (A)
    rs.train.loss(p, X, Y)                             # mean ½‖y_hat − y‖² (V²)
    rs.train.ep_gradient(p, X, Y, beta=1e-3, variant="centered")
    rs.train.exact_gradient(p, X, Y)
    trained, history = rs.train.fit(c, "data.npz", epochs=10, out="run")
"""

from .devices import DeviceConfig, UpdateTable
from .estimators import VARIANTS, EquilibriumPropagation, ExactGradient, ep_gradient, exact_gradient, loss
from .optim import SGD, Schedule
from .parameters import ParameterLayout, circuit_with_parameters, layout, parameters, with_parameters
from .trainer import TrainConfig, Trainer, fit

__all__ = ["DeviceConfig", "UpdateTable", "VARIANTS", "EquilibriumPropagation", "ExactGradient", "ep_gradient",
           "exact_gradient", "loss", "SGD", "Schedule", "ParameterLayout", "circuit_with_parameters", "layout",
           "parameters", "with_parameters", "TrainConfig", "Trainer", "fit"]
