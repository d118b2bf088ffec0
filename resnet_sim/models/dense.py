"""Numba kernels of the layered fast paths: products of a small batch with dense layer matrices and EP's
batch-summed drop products. Plain arrays in, plain arrays out.

Batches are small (the published DRN runs use B = 4), so a product with an (m, n) weight matrix is bound by
reading the matrix, not by arithmetic: the kernels read each matrix row once, contiguously, and split the
rows over the cores. BLAS is not used here: OpenBLAS's threads, at B = 4, were 10-40x slower
than one thread on the 2-core machines this project runs on (30 ms against 0.7 ms for 4 x 1568 @ 1568 x 1024).

A product of fewer than PARALLEL_MIN_WORK multiply-adds runs on the calling thread: waking the OpenMP
threads costs more. resnet_sim sets OMP_WAIT_POLICY=PASSIVE (spinning threads made a DRN-XS epoch 2.8x
slower with one other busy process and 7x with two; GOMP_SPINCOUNT=100000 45x with one), and a sleeping
thread of this project's virtual machines takes about 0.3 ms to wake: a DRN-XS epoch took 23 s with every
product parallel, 9.4 s on one thread, as fast as with spinning threads on an idle machine (8.9 s; scratch
measurements, 4000 images extrapolated).
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

# products of at least this many multiply-adds are split over the cores (see the module docstring)
PARALLEL_MIN_WORK = 2_000_000


def threads_for(work: int, min_work: int) -> int:
    """The cores a kernel of ``work`` operations runs on: Numba's threads from ``min_work`` up, else 1."""
    threads = get_num_threads()
    return threads if work >= min_work else 1


def forward(V, W, out) -> None:
    """out (B, n) = V (B, m) @ W (m, n); rows i where V[:, i] is all zero are skipped (most input pixels).
    Large products: one task per core streams a contiguous run of W's rows into its own partial sum."""
    threads = threads_for(V.size * W.shape[1], PARALLEL_MIN_WORK)
    if threads == 1:
        out[:] = 0
        add_rows(V, W, 0, V.shape[1], out)
    else:
        forward_parallel(V, W, out, threads)


def drop_products(P, Q, row, col, out) -> None:
    """out[i, j] = row[i] + col[j] − Σ_k P[k, i] Q[k, j] for P (K, m), Q (K, n), row (m,), col (n,)."""
    threads = threads_for(P.size * Q.shape[1], PARALLEL_MIN_WORK)
    if threads == 1:
        drop_rows(P, Q, row, col, 0, P.shape[1], out)
    else:
        drop_products_parallel(P, Q, row, col, out, threads)


@njit(cache=True)
def add_rows(V, W, lo, hi, acc):
    """acc (B, n) += V[:, lo:hi] @ W[lo:hi], skipping zeros of V."""
    B = V.shape[0]
    n = W.shape[1]
    for i in range(lo, hi):
        for b in range(B):
            v = V[b, i]
            if v != 0:
                for j in range(n):
                    acc[b, j] += v * W[i, j]


@njit(cache=True)
def dot_rows(U, W, lo, hi, out):
    """out[:, lo:hi] += U @ W[lo:hi].T for U (B, m), W (n, m)."""
    B = U.shape[0]
    m = W.shape[1]
    for j in range(lo, hi):
        for b in range(B):
            acc = 0.0
            for k in range(m):
                acc += W[j, k] * U[b, k]
            out[b, j] += acc


@njit(cache=True)
def drop_rows(P, Q, row, col, lo, hi, out):
    """:func:`drop_products` for rows lo..hi of out."""
    K = P.shape[0]
    n = Q.shape[1]
    for i in range(lo, hi):
        for j in range(n):
            out[i, j] = row[i] + col[j]
        for k in range(K):
            p = P[k, i]
            if p != 0:
                for j in range(n):
                    out[i, j] -= p * Q[k, j]


@njit(parallel=True, cache=True)
def forward_parallel(V, W, out, threads):
    """:func:`forward` on up to ``threads`` tasks, each over an equal share of V's nonzero columns."""
    B, m = V.shape
    n = W.shape[1]
    used = np.zeros(m, np.bool_)
    for i in range(m):
        for b in range(B):
            if V[b, i] != 0:
                used[i] = True
                break
    rows = np.flatnonzero(used)
    tasks = min(threads, max(1, len(rows) // 16))
    partial = np.zeros((tasks, B, n), out.dtype)
    per = (len(rows) + tasks - 1) // tasks
    for t in prange(tasks):
        acc = partial[t]
        for r in range(t * per, min(len(rows), (t + 1) * per)):
            add_rows(V, W, rows[r], rows[r] + 1, acc)
    out[:] = partial[0]
    for t in range(1, tasks):
        out += partial[t]


@njit(parallel=True, cache=True)
def add_transposed_parallel(U, W, out, threads):
    """out (B, n) += U (B, m) @ W.T for W (n, m): W's rows split over ``threads`` cores."""
    n = W.shape[0]
    per = (n + threads - 1) // threads
    for t in prange(threads):
        dot_rows(U, W, t * per, min(n, (t + 1) * per), out)


@njit(parallel=True, cache=True)
def drop_products_parallel(P, Q, row, col, out, threads):
    """:func:`drop_products` on ``threads`` cores."""
    m = P.shape[1]
    per = (m + threads - 1) // threads
    for t in prange(threads):
        drop_rows(P, Q, row, col, t * per, min(m, (t + 1) * per), out)
