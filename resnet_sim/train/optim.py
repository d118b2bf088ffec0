"""The optimiser: stochastic gradient descent with per-group learning rates, momentum, weight decay and a
per-epoch schedule. It proposes θ; the device models (``devices.py``) turn the proposal into what the
devices hold, projected onto each parameter's bounds.

    u ← ĝ + λ θ                    (weight decay λ)
    v ← μ v + u                    (momentum μ; v starts at 0)
    θ ← θ − η_group · f(epoch) · v  (f: the schedule)

Units: η in S²/V² for conductances (ĝ is in V²/S) and A²/V² for currents (ĝ in V²/A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SCHEDULES", "Schedule", "SGD"]

SCHEDULES = ("constant", "exponential", "cosine")
# parameter vectors at least this long are stepped (and projected, ``devices``) by the Numba kernels
KERNEL_MIN_LENGTH = 1 << 16


@dataclass(frozen=True)
class Schedule:
    """Learning-rate factor per epoch (0-based e): constant 1; exponential ``gamma``^e; cosine
    ½ (1 + cos(π e / ``epochs``)) (``epochs``: the run's total)."""

    kind: str = "constant"
    gamma: float = 0.99
    epochs: int = 1

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}")
        if not (0 < self.gamma <= 1):
            raise ValueError(f"the exponential schedule's gamma must be in (0, 1], got {self.gamma}")
        if self.epochs < 1:
            raise ValueError(f"the cosine schedule needs epochs >= 1, got {self.epochs}")

    def factor(self, epoch: int) -> float:
        if self.kind == "exponential":
            return self.gamma ** epoch
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        return 1.0


class SGD:
    """SGD over θ (n_θ,) whose parameters fall into groups ``group`` (n_θ,) int (``.trainable`` cards, or a
    fast path's layers). ``lr`` is every group's learning rate unless ``group_lr`` {group: η} names its own."""

    def __init__(self, group, lr: float = 0.01, group_lr: dict | None = None, momentum: float = 0.0,
                 weight_decay: float = 0.0, schedule: Schedule = Schedule()):
        group = np.asarray(group, dtype=np.int64)
        rates = dict(group_lr or {})
        for name, value in (("lr", lr), *((f"group {g} lr", v) for g, v in rates.items())):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite learning rate > 0, got {value}")
        unknown = set(rates) - set(np.unique(group).tolist())
        if unknown:
            raise ValueError(f"group_lr names group{'s' if len(unknown) > 1 else ''} {sorted(unknown)}, which "
                             f"hold{'' if len(unknown) > 1 else 's'} no parameter")
        if not (0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not (np.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
        table = np.full(int(group.max(initial=-1)) + 1, float(lr))
        for g, value in rates.items():
            table[g] = value
        self.lr = table[group] if len(group) else np.zeros(0)
        # runs of equal learning rate (start, stop, lr): a layered model has a few, stepped slice by slice
        edges = np.flatnonzero(np.diff(self.lr)) + 1
        starts, stops = np.concatenate([[0], edges]), np.concatenate([edges, [len(self.lr)]])
        self._runs = [(int(a), int(b), float(self.lr[a])) for a, b in zip(starts, stops)] if len(edges) < 64 else None
        self.momentum, self.weight_decay, self.schedule = float(momentum), float(weight_decay), schedule
        self.velocity = np.zeros(len(group))

    def step(self, theta: np.ndarray, grad: np.ndarray, epoch: int) -> None:
        """One step in place: θ (n_θ,) becomes the proposal for gradient ``grad`` during (0-based) ``epoch``
        (``grad`` may be overwritten)."""
        update = grad
        if self.weight_decay:
            update += self.weight_decay * theta
        if self.momentum:
            if self.velocity.dtype != theta.dtype:
                self.velocity = self.velocity.astype(theta.dtype)
            self.velocity *= self.momentum
            self.velocity += update
            update = self.velocity
        factor = self.schedule.factor(epoch)
        if self._runs is None:
            theta -= (factor * self.lr) * update
            return
        if len(theta) >= KERNEL_MIN_LENGTH:
            from .kernels import add_scaled

            for a, b, lr in self._runs:
                add_scaled(theta[a:b], theta.dtype.type(-factor * lr), update[a:b])
            return
        for a, b, lr in self._runs:
            theta[a:b] -= (factor * lr) * update[a:b]

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint must keep to continue bit for bit."""
        return {"velocity": self.velocity.copy()}

    def load_state(self, state: dict) -> None:
        velocity = np.asarray(state["velocity"], dtype=np.float64)
        if velocity.shape != self.velocity.shape:
            raise ValueError(f"optimiser state for {velocity.shape} parameters, this model has {self.velocity.shape}")
        self.velocity = velocity.copy()
