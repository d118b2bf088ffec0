"""The ngspice bridge: export a Circuit as an ngspice deck, run ngspice, read its answer back, compare.

::

    from resnet_sim import spice
    result = spice.simulate(circuit)            # SpiceResult: voltages, currents, wall, stats
    print(spice.compare(circuit, repeat=3))     # both tools: max |dV| and timings
"""

from .compare import Comparison, compare
from .export import SpiceDeck, SpiceOptions, export
from .raw import RawFileError, RawPlot, read_raw
from .run import SpiceError, SpiceResult, SpiceTimeout, run


def simulate(circuit, timeout: float = 600.0, ngspice: str = "ngspice", **options) -> SpiceResult:
    """ngspice's operating point of ``circuit``; ``options`` are SpiceOptions fields (diode_is, diode_n,
    reltol, vntol, abstol, acct)."""
    return run(export(circuit, SpiceOptions(**options)), timeout=timeout, ngspice=ngspice)


__all__ = ["Comparison", "compare", "SpiceDeck", "SpiceOptions", "export", "RawFileError", "RawPlot", "read_raw", "SpiceError",
           "SpiceResult", "SpiceTimeout", "run", "simulate"]
