"""SPICE netlists: ``read_netlist`` (text or file -> Circuit) and ``write_netlist`` (Circuit -> text).

The dialect is documented in docs/netlist.md.
"""

from .reader import read_netlist
from .writer import write_netlist

__all__ = ["read_netlist", "write_netlist"]
