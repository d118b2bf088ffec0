"""Reader for ngspice's binary raw files (``ngspice -b -r OUT.raw``), at full float64 precision.

A raw file is a sequence of plots. Each plot has a text header (``Title:``, ``Date:``, ``Plotname:``,
``Flags:``, ``No. Variables:``, ``No. Points:``, then ``Variables:`` and one ``index name type`` line
per variable) followed by ``Binary:`` and the values, point by point, as little-endian float64
(two per value, real then imaginary, when the flags say ``complex``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class RawFileError(ValueError):
    """A raw file that is not a well-formed ngspice binary raw file; the message names the file."""


@dataclass(frozen=True)
class RawPlot:
    """One plot of a raw file: ``names`` (n_vars,) as ngspice wrote them (lower case), ``types`` (n_vars,)
    (``voltage``, ``current``, ...), ``values`` (n_points, n_vars) float64 or complex128."""

    title: str
    plotname: str
    flags: tuple[str, ...]
    names: tuple[str, ...]
    types: tuple[str, ...]
    values: np.ndarray

    def point(self, index: int = 0) -> dict[str, float]:
        """Variable name -> value at point ``index`` (an operating point has a single point, 0)."""
        return dict(zip(self.names, self.values[index].tolist()))


def read_raw(path) -> list[RawPlot]:
    """All plots of the binary raw file at ``path``, in file order."""
    path = Path(path)
    data = path.read_bytes()
    plots, pos = [], 0
    while pos < len(data):
        plot, pos = _read_plot(data, pos, path)
        plots.append(plot)
    if not plots:
        raise RawFileError(f"{path}: empty raw file")
    return plots


def _read_plot(data: bytes, pos: int, path: Path) -> tuple[RawPlot, int]:
    """Parse the plot starting at byte ``pos``; returns it and the offset just past its values."""
    header, lines, pos = {}, [], pos
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise RawFileError(f"{path}: header ends without 'Binary:'")
        line = data[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        if line.startswith("Binary:"):
            break
        if line.startswith("Values:"):
            raise RawFileError(f"{path}: ASCII raw file; only binary raw files are read")
        lines.append(line)
    names, types = [], []
    for k, line in enumerate(lines):
        key, _, value = line.partition(":")
        if key == "Variables":
            for var in lines[k + 1 :]:
                fields = var.split()
                names.append(fields[1].lower())
                types.append(fields[2] if len(fields) > 2 else "")
            break
        header[key.strip()] = value.strip()
    try:
        n_vars, n_points = int(header["No. Variables"]), int(header["No. Points"])
    except (KeyError, ValueError):
        raise RawFileError(f"{path}: header lacks 'No. Variables' or 'No. Points'") from None
    if len(names) != n_vars:
        raise RawFileError(f"{path}: header declares {n_vars} variables but lists {len(names)}")
    flags = tuple(header.get("Flags", "real").lower().split())
    width = 2 if "complex" in flags else 1
    count = n_points * n_vars * width
    if pos + 8 * count > len(data):
        raise RawFileError(f"{path}: truncated: {n_points} points of {n_vars} variables need {8 * count} bytes, "
                           f"{len(data) - pos} left")
    values = np.frombuffer(data, dtype="<f8", count=count, offset=pos).astype(np.float64)
    values = values.view(np.complex128) if width == 2 else values
    plot = RawPlot(header.get("Title", ""), header.get("Plotname", ""), flags, tuple(names), tuple(types),
                   values.reshape(n_points, n_vars))
    return plot, pos + 8 * count
