"""Numba kernels for the optimiser and the projection on large parameter vectors (one pass), used from
``optim.KERNEL_MIN_LENGTH`` parameters up; smaller vectors use numpy and need not load Numba. Vectors of
PARALLEL_MIN_WORK elements or more are split over the cores: these passes are bound by memory bandwidth,
which one core of this project's virtual machines does not saturate (DRN-1H, 1.6 M float32 parameters:
y += a x 0.85 ms on one core; an epoch 46.6 s with these passes on one core, 40.3 s on two, with the
OpenMP threads asleep between them, see ``resnet_sim.models.dense``; scratch measurements, 4000 images
extrapolated)."""

from __future__ import annotations

from numba import njit, prange

from ..models.dense import threads_for

PARALLEL_MIN_WORK = 500_000


def add_scaled(y, alpha, x) -> None:
    """y += alpha * x, in place."""
    alpha, threads = y.dtype.type(alpha), threads_for(len(y), PARALLEL_MIN_WORK)
    if threads == 1:
        _add_scaled_range(y, alpha, x, 0, len(y))
    else:
        _add_scaled_parallel(y, alpha, x, threads)


def clip_below(y, low) -> None:
    """y = max(y, low), in place."""
    low, threads = y.dtype.type(low), threads_for(len(y), PARALLEL_MIN_WORK)
    if threads == 1:
        _clip_below_range(y, low, 0, len(y))
    else:
        _clip_below_parallel(y, low, threads)


@njit(cache=True)
def _add_scaled_range(y, alpha, x, lo, hi):
    for i in range(lo, hi):
        y[i] += alpha * x[i]


@njit(cache=True)
def _clip_below_range(y, low, lo, hi):
    for i in range(lo, hi):
        y[i] = max(y[i], low)


@njit(parallel=True, cache=True)
def _add_scaled_parallel(y, alpha, x, threads):
    per = (len(y) + threads - 1) // threads
    for t in prange(threads):
        _add_scaled_range(y, alpha, x, t * per, min(len(y), (t + 1) * per))


@njit(parallel=True, cache=True)
def _clip_below_parallel(y, low, threads):
    per = (len(y) + threads - 1) // threads
    for t in prange(threads):
        _clip_below_range(y, low, t * per, min(len(y), (t + 1) * per))
