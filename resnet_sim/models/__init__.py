"""Model builders: each returns an object that gives its equivalent Circuit (where one exists) and a fast path
for its regular structure, an energy model for the trainer (docs/models.md)."""

from .drn import DRN, drn
from .hopfield import Hopfield, hopfield
from .pcn import PCN, pcn
from .presets import PRESETS, Preset, preset

__all__ = ["DRN", "drn", "Hopfield", "hopfield", "PCN", "pcn", "PRESETS", "Preset", "preset"]
