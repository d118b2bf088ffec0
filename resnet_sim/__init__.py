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
import os

# Numba's parallel kernels run on OpenMP threads, which by default spin while they wait: on a machine with
# more busy processes than cores that made a DRN training step 10x slower (19 ms against 1.6 ms). Set before
# Numba loads its OpenMP layer; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .circuit import Circuit, DiodeModel, TrainableSpec
from .errors import CircuitError, NetlistError

# Imported eagerly: the functions share their modules' names, and a lazy import of the module would
# rebind ``resnet_sim.compile`` / ``resnet_sim.solve`` to the module. Costs numpy + scipy.sparse at import.
from .compile import Problem, compile  # noqa: A004
from .solve import solve

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "read_netlist": "resnet_sim.netlist",
    "write_netlist": "resnet_sim.netlist",
    "OperatingPoint": "resnet_sim.operating_point",
    "compile_relu": "resnet_sim.relu_compiler",
}
_SUBMODULES = {"spice", "data", "plots", "models", "solvers", "netlist", "train"}

__all__ = ["Circuit", "DiodeModel", "TrainableSpec", "CircuitError", "NetlistError", "Problem", "compile", "solve",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"resnet_sim.{name}")
    raise AttributeError(f"module 'resnet_sim' has no attribute {name!r}")

