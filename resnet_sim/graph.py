"""Connected parts of an undirected graph given as edge arrays, with numpy alone.

Compilation and the solvers need connected parts of small and large graphs; scipy's csgraph takes about
0.07 s to import, more than a small circuit takes to solve, so this module stays on numpy.
"""

from __future__ import annotations

import numpy as np


def connected_components(n: int, u, w) -> np.ndarray:
    """(n,) int64 label of each node 0..n-1 of the undirected graph with edges (u[e], w[e]): the smallest
    node id of its connected part.

    Each round hooks, for every edge whose ends have different labels, the larger label (a root) under the
    smaller, then lets every label jump to its root; rounds repeat until every edge has one label. Edges
    already inside one part are dropped as it goes."""
    lab = np.arange(n, dtype=np.int64)
    u = np.asarray(u, dtype=np.int64).ravel()
    w = np.asarray(w, dtype=np.int64).ravel()
    while len(u):
        lu, lw = lab[u], lab[w]
        open_ = lu != lw
        if not open_.any():
            break
        u, w, lu, lw = u[open_], w[open_], lu[open_], lw[open_]
        np.minimum.at(lab, np.maximum(lu, lw), np.minimum(lu, lw))
        while True:
            up = lab[lab]
            if np.array_equal(up, lab):
                break
            lab = up
    return lab
