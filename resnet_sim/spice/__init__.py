"""The ngspice bridge: export a Circuit as an ngspice deck, run ngspice, read its answer back, compare.

::

    from resnet_sim import spice
    result = spice.simulate(circuit)            # SpiceResult: voltages, currents, wall, stats
    print(spice.compare(circuit, repeat=3))     # both tools: max |dV| and timings
    spice.simulate_batch(circuit, X, betas=(0, -b, b), targets=Y)   # a batch's phases, one ngspice process
    spice.SpiceModel(rs.compile(circuit))       # an energy model for rs.train: SPICE in the training loop
"""

from .batch import MODES, BatchDeck, BatchResult, batch_deck, run_batch, simulate_batch
from .compare import Comparison, compare
from .export import SpiceDeck, SpiceOptions, export
from .model import SpiceModel, SpiceState
from .raw import RawFileError, RawPlot, read_raw
from .run import SpiceError, SpiceResult, SpiceTimeout, run


def simulate(circuit, timeout: float = 600.0, ngspice: str = "ngspice", **options) -> SpiceResult:
    """ngspice's operating point of ``circuit``; ``options`` are SpiceOptions fields (diode_is, diode_n,
    reltol, vntol, abstol, acct)."""
    return run(export(circuit, SpiceOptions(**options)), timeout=timeout, ngspice=ngspice)


__all__ = ["MODES", "BatchDeck", "BatchResult", "batch_deck", "run_batch", "simulate_batch", "SpiceModel", "SpiceState",
           "Comparison", "compare", "SpiceDeck", "SpiceOptions", "export", "RawFileError", "RawPlot", "read_raw", "SpiceError",
           "SpiceResult", "SpiceTimeout", "run", "simulate"]
