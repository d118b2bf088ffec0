"""resnet_sim: exact, fast DC simulation and training of ideal nonlinear resistive networks.

The public API (see docs/ and DESIGN.md section 6)::

    import resnet_sim as rs
    c = rs.read_netlist("netlists/divider.cir")
    op = rs.solve(c)
    op.voltage("out")

Heavy modules (numba kernels, cvxpy, h5py, matplotlib) load on first use, so ``import resnet_sim`` and the
``resnet-sim`` command start quickly.
"""

from __future__ import annotations

import importlib
import sys
import types

from .circuit import Circuit, DiodeModel, TrainableSpec
from .errors import CircuitError, NetlistError

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "read_netlist": "resnet_sim.netlist",
    "write_netlist": "resnet_sim.netlist",
    "compile": "resnet_sim.compile",
    "Problem": "resnet_sim.compile",
    "solve": "resnet_sim.solve",
    "OperatingPoint": "resnet_sim.operating_point",
    "compile_relu": "resnet_sim.relu_compiler",
    "drn_circuit": "resnet_sim.models.drn",
}
_SUBMODULES = {"spice", "data", "plots", "models", "solvers", "netlist"}

__all__ = ["Circuit", "DiodeModel", "TrainableSpec", "CircuitError", "NetlistError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"resnet_sim.{name}")
    raise AttributeError(f"module 'resnet_sim' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Keeps ``rs.compile`` and ``rs.solve`` the functions: importing the submodules of the same name
    (``resnet_sim.compile``, ``resnet_sim.solve``) would otherwise rebind them to the modules."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
