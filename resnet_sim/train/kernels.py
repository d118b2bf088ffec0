"""Numba kernels for the optimiser and the projection on large parameter vectors (one pass, both cores),
used from ``optim.KERNEL_MIN_LENGTH`` parameters up; smaller vectors use numpy and need not load Numba."""

from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True)
def add_scaled(y, alpha, x):
    """y += alpha * x, in place."""
    for i in prange(len(y)):
        y[i] += alpha * x[i]


@njit(parallel=True, cache=True)
def clip_below(y, low):
    """y = max(y, low), in place."""
    for i in prange(len(y)):
        if y[i] < low:
            y[i] = low
