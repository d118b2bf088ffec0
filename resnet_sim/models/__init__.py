"""Model builders: each returns an object that gives its equivalent Circuit and a fast path for its regular
structure (an energy model for the trainer)."""

from .drn import DRN, PRESETS, drn, preset

__all__ = ["DRN", "PRESETS", "drn", "preset"]
