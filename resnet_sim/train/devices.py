"""Device models: what a programmable conductance does with the update the optimiser asks for.

They act on the conductances only (currents pass through, unbounded) at the projection step, after every
optimiser step, in this order (each optional, all seeded from the trainer's generator):

1. **update response**, one of
   - soft bounds: a step Δ = g* − g becomes Δ (g⁺ − g) / (g⁺ − g⁻) when potentiating (Δ > 0) and
     Δ (g − g⁻) / (g⁺ − g⁻) when depressing, so steps shrink towards g⁺ going up and towards g⁻ going
     down (asymmetric: the same |Δ| moves a device near g⁺ far less up than down);
   - a measured update table (CSV: conductance G_k, the step a potentiating pulse gives at G_k, the
     step a depressing pulse gives, both as signed siemens): the device receives n = round(|Δ| / |s(g)|)
     pulses of the requested sign (at most ``max_pulses``), each moving it by s(g), linearly interpolated
     in the table at its present conductance;
2. **programming noise** (cycle to cycle, multiplicative): a device that received an update ends at
   g (1 + σ ξ), ξ ~ N(0, 1) drawn anew at each programming;
3. **projection** onto its bounds [g⁻_i, g⁺_i]: the card's [gmin, gmax], or with **device-to-device
   variability** σ_d per device g⁻_i = gmin · exp(σ_d ζ_i), g⁺_i = gmax · exp(σ_d ζ'_i), ζ ~ N(0, 1)
   drawn once per run (and kept in the checkpoint);
4. **quantised levels**: Q levels evenly spaced in [g⁻_i, g⁺_i]; g goes to the nearest one
   (deterministic) or, with stochastic rounding, to the one above with probability equal to its fractional
   position between the two (unbiased: E[q(g)] = g).

Soft bounds, variability of gmax and quantisation need a finite gmax on every ``.trainable`` card.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .optim import KERNEL_MIN_LENGTH

__all__ = ["UpdateTable", "DeviceConfig", "Devices"]


@dataclass(frozen=True)
class UpdateTable:
    """A measured pulse response: ``conductance`` (K,) S ascending; ``up`` (K,) S the step of a potentiating
    pulse (> 0) and ``down`` (K,) S that of a depressing pulse (< 0) at each conductance."""

    conductance: np.ndarray
    up: np.ndarray
    down: np.ndarray

    def __post_init__(self):
        g = np.asarray(self.conductance, dtype=np.float64)
        if g.ndim != 1 or len(g) < 2 or np.any(np.diff(g) <= 0) or not np.all(np.isfinite(g)):
            raise ValueError("an update table needs at least two rows with strictly increasing, finite conductances")
        up, down = np.asarray(self.up, dtype=np.float64), np.asarray(self.down, dtype=np.float64)
        if up.shape != g.shape or down.shape != g.shape or not (np.all(up > 0) and np.all(down < 0)):
            raise ValueError("an update table's potentiating steps must be > 0 and its depressing steps < 0 (siemens)")
        if not (np.all(np.isfinite(up)) and np.all(np.isfinite(down))):
            raise ValueError("an update table's steps must be finite")

    @classmethod
    def from_csv(cls, path) -> "UpdateTable":
        """Read a CSV with a header row and three columns: conductance (S), potentiating step (S), depressing
        step (S, negative); ValueError naming the file otherwise."""
        path = Path(path)
        try:
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: cannot read the update table ({err})") from None
        body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
        try:
            values = np.array([[float(cell) for cell in r] for r in body])
        except ValueError:
            raise ValueError(f"{path}: the update table must hold numbers under its header row") from None
        if values.ndim != 2 or values.shape[1] != 3:
            raise ValueError(f"{path}: the update table needs three columns: conductance, potentiating step, "
                             "depressing step")
        try:
            return cls(values[:, 0], values[:, 1], values[:, 2])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def step(self, g: np.ndarray, potentiate: np.ndarray) -> np.ndarray:
        """The signed step (S) one pulse gives at conductances g: potentiating where ``potentiate``."""
        return np.where(potentiate, np.interp(g, self.conductance, self.up), np.interp(g, self.conductance, self.down))


@dataclass(frozen=True)
class DeviceConfig:
    """Which device models act (see the module docstring); the defaults are ideal devices (projection only)."""

    levels: int | None = None
    stochastic_rounding: bool = False
    program_noise: float = 0.0
    variability: float = 0.0
    soft_bounds: bool = False
    table: UpdateTable | None = None
    max_pulses: int = 1000

    def __post_init__(self):
        if self.levels is not None and self.levels < 2:
            raise ValueError(f"quantisation needs at least 2 levels, got {self.levels}")
        for name in ("program_noise", "variability"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite fraction >= 0, got {value}")
        if self.soft_bounds and self.table is not None:
            raise ValueError("choose one update response: soft bounds or an update table")
        if self.max_pulses < 1:
            raise ValueError(f"max_pulses must be >= 1, got {self.max_pulses}")

    @property
    def needs_gmax(self) -> bool:
        return self.levels is not None or self.soft_bounds or self.variability > 0


class Devices:
    """The device models of one run over the conductances θ[:n_g] with card bounds ``lower``, ``upper``
    (n_g,) S. ``rng`` draws the device-to-device bounds once (a ``state()`` to checkpoint)."""

    def __init__(self, config: DeviceConfig, lower: np.ndarray, upper: np.ndarray, rng: np.random.Generator,
                 label=None):
        """``label(i)``: how an error names the card of conductance i (optional)."""
        self.config = config
        lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if config.needs_gmax and len(upper) and not np.all(np.isfinite(upper)):
            what = [w for w, on in (("quantised levels", config.levels is not None), ("soft bounds", config.soft_bounds),
                                    ("device-to-device variability", config.variability > 0)) if on]
            culprit = "" if label is None else f" ({label(int(np.flatnonzero(~np.isfinite(upper))[0]))} has none)"
            raise ValueError(f"{' and '.join(what)}: every .trainable card that matches resistors needs gmax="
                             f"{culprit}")
        if config.variability:
            lower = lower * np.exp(config.variability * rng.standard_normal(len(lower)))
            upper = upper * np.exp(config.variability * rng.standard_normal(len(upper)))
            upper = np.maximum(upper, lower)
        self.lower, self.upper = lower, upper
        uniform = len(lower) and np.all(lower == lower[0]) and np.all(upper == upper[0])
        # projection bounds: scalars where every device shares them (no per-device arrays to stream)
        self._bounds = (float(lower[0]), float(upper[0])) if uniform else (lower, upper)

    def state(self) -> dict[str, np.ndarray]:
        return {"device_lower": self.lower.copy(), "device_upper": self.upper.copy()}

    def load_state(self, state: dict) -> None:
        lower, upper = np.asarray(state["device_lower"]), np.asarray(state["device_upper"])
        if lower.shape != self.lower.shape or upper.shape != self.upper.shape:
            raise ValueError("the checkpoint's device bounds do not match this model's conductances")
        self.lower, self.upper = lower.copy(), upper.copy()
        uniform = len(lower) and np.all(lower == lower[0]) and np.all(upper == upper[0])
        self._bounds = (float(lower[0]), float(upper[0])) if uniform else (self.lower, self.upper)

    @property
    def ideal(self) -> bool:
        """Projection only: ``program`` needs no ``old`` conductances."""
        c = self.config
        return not (c.soft_bounds or c.table is not None or c.program_noise or c.levels is not None)

    def initial(self, g: np.ndarray, rng: np.random.Generator) -> None:
        """Set the requested starting conductances ``g`` (n_g,) S, in place, to what the devices hold:
        projected and quantised."""
        np.clip(g, self.lower, self.upper, out=g)
        g[:] = self._quantise(g, rng)

    def program(self, g: np.ndarray, old: np.ndarray | None, rng: np.random.Generator) -> None:
        """In place: the proposed conductances ``g`` (n_g,) S become what the devices hold after being asked
        to go there from ``old`` (needed unless ``ideal``)."""
        cfg = self.config
        if self.ideal:
            lo, hi = self._bounds
            if np.isscalar(hi) and hi == np.inf and len(g) >= KERNEL_MIN_LENGTH:
                from .kernels import clip_below

                clip_below(g, g.dtype.type(lo))
            else:
                np.clip(g, lo, hi, out=g)
            return
        delta = g - old
        if cfg.soft_bounds:
            span = self.upper - self.lower
            with np.errstate(invalid="ignore", divide="ignore"):
                room = np.where(delta > 0, self.upper - old, old - self.lower) / span
            delta = delta * np.nan_to_num(np.clip(room, 0.0, 1.0))
        new = old + delta if cfg.table is None else self._pulses(old, delta)
        if cfg.program_noise:
            programmed = new != old
            noise = rng.standard_normal(int(np.count_nonzero(programmed)))
            new[programmed] *= 1.0 + cfg.program_noise * noise
        g[:] = self._quantise(np.clip(new, self.lower, self.upper), rng)

    def _pulses(self, g: np.ndarray, delta: np.ndarray) -> np.ndarray:
        table, up = self.config.table, delta > 0
        pulses = np.minimum(np.rint(np.abs(delta) / np.abs(table.step(g, up))), self.config.max_pulses).astype(np.int64)
        g = g.copy()
        for k in range(int(pulses.max(initial=0))):
            moving = pulses > k
            g[moving] += table.step(g[moving], up[moving])
        return g

    def _quantise(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        levels = self.config.levels
        if levels is None:
            return g
        span = self.upper - self.lower
        with np.errstate(invalid="ignore", divide="ignore"):
            position = np.nan_to_num((g - self.lower) / span * (levels - 1))
        if self.config.stochastic_rounding:
            below = np.floor(position)
            position = below + (rng.random(len(g)) < position - below)
        else:
            position = np.rint(position)
        return self.lower + np.clip(position, 0, levels - 1) / (levels - 1) * span
