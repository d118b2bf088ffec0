"""Graph colouring of the free variables for colour-blocked coordinate descent.

Two variables conflict when they share a resistor (an off-diagonal nonzero of L) or a coupled diode
row (both ends free). Variables of one colour share no conflict, so updating a whole colour at once is
exact block coordinate descent.

The colouring is greedy, ``largest_first`` order (as networkx ``greedy_color(strategy="largest_first")``),
written as a Numba kernel because networkx takes seconds on 10⁵–10⁶ nodes. A bipartite conflict graph
(layered DRNs, 2D grids) is coloured with exactly 2 colours by breadth-first search first, since greedy
orders can waste colours on such graphs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from .qp import QP


def conflict_graph(qp: QP) -> sp.csr_matrix:
    """(n, n) symmetric boolean CSR adjacency: off-diagonal nonzeros of L plus coupled diode rows."""
    L = qp.L.tocoo()
    off = (L.row != L.col) & (L.data != 0)
    coupled = (qp.a >= 0) & (qp.k >= 0) & (qp.a != qp.k)
    rows = np.concatenate([L.row[off], qp.a[coupled], qp.k[coupled]])
    cols = np.concatenate([L.col[off], qp.k[coupled], qp.a[coupled]])
    g = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(qp.n, qp.n))
    g.sum_duplicates()
    return g


@njit(cache=True)
def _two_colour(indptr, indices):
    """Colours 0/1 by breadth-first search, or an empty array when the graph has an odd cycle."""
    n = len(indptr) - 1
    colour = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    for start in range(n):
        if colour[start] >= 0:
            continue
        colour[start] = 0
        head, tail = 0, 1
        queue[0] = start
        while head < tail:
            u = queue[head]
            head += 1
            for p in range(indptr[u], indptr[u + 1]):
                v = indices[p]
                if colour[v] < 0:
                    colour[v] = 1 - colour[u]
                    queue[tail] = v
                    tail += 1
                elif colour[v] == colour[u]:
                    return np.empty(0, np.int64)
    return colour


@njit(cache=True)
def _greedy_colour(indptr, indices, order):
    """Greedy colouring visiting nodes in ``order``: each takes the smallest colour unused by its neighbours."""
    n = len(indptr) - 1
    colour = np.full(n, -1, np.int64)
    seen = np.full(n + 1, -1, np.int64)  # seen[c] == u: colour c is taken by a neighbour of u
    for u in order:
        for p in range(indptr[u], indptr[u + 1]):
            cv = colour[indices[p]]
            if cv >= 0:
                seen[cv] = u
        c = 0
        while seen[c] == u:
            c += 1
        colour[u] = c
    return colour


def colour_variables(qp: QP) -> np.ndarray:
    """(n,) int64 colour of each free variable, colours 0..n_colours-1; 2 colours when the graph is bipartite.

    Pass the result back to ``solve_cd(qp, colours=...)`` to reuse it across solves with the same L and
    diode rows.
    """
    g = conflict_graph(qp)
    indptr, indices = g.indptr.astype(np.int64), g.indices.astype(np.int64)
    colour = _two_colour(indptr, indices)
    if len(colour) == qp.n:
        return colour
    degree = np.diff(indptr)
    order = np.argsort(-degree, kind="stable").astype(np.int64)
    return _greedy_colour(indptr, indices, order)
