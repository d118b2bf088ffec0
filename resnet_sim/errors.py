"""The two exceptions users catch: bad netlist text and circuits with no (unique, finite) DC state."""

from __future__ import annotations


class NetlistError(ValueError):
    """A netlist that cannot be read.

    ``file`` is the path (or ``"<string>"``), ``line`` and ``col`` are 1-based (``None`` when no single
    line applies). ``str(err)`` is ``FILE:LINE: message`` (or ``FILE: message``).
    """

    def __init__(self, message: str, file: str | None = None, line: int | None = None, col: int | None = None):
        self.message = message
        self.file = file or "<string>"
        self.line = line
        self.col = col
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class CircuitError(ValueError):
    """A circuit with no unique finite DC operating point; the message names the nodes or elements."""
