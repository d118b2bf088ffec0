"""Circuit families shared by the benchmarks: DRNs, 2D grids with diodes, random sparse graphs.

Each builder is seeded and returns a resnet_sim.Circuit; ``FAMILIES`` maps the names used in the
result tables to zero-argument builders.
"""

from __future__ import annotations

import numpy as np

from resnet_sim.circuit import Circuit
from resnet_sim.data import load_sample
from resnet_sim.models.drn import DRN


def drn_circuit(sizes, seed: int = 0, title: str | None = None) -> Circuit:
    """The published DRN's circuit (rs.models.DRN, input gain 1 V) of layer sizes ``sizes`` (2 n_pixels inputs,
    hidden..., outputs), weights drawn from ``seed``, inputs set to the shipped sample's first test image
    (cycled to n_pixels pixels)."""
    n_pixels = sizes[0] // 2
    image = np.resize(load_sample("test")[0][0], n_pixels)[None, :]
    return DRN(n_pixels, sizes[1:-1], sizes[-1], input_gain=1.0, seed=seed).circuit(image, title=title)


def grid_circuit(n: int, seed: int = 0, diode_fraction: float = 0.1) -> Circuit:
    """An n x n grid of resistors (100 ohm .. 10 kohm) between a 1 V left edge and a grounded right edge.

    Node ``g{r}_{c}``. A random ``diode_fraction`` of the nodes carry an ideal diode to the clamp source
    ``vclamp`` (0.5 V), so they cannot rise above 0.5 V; another such fraction carry a diode between them and
    their right-hand neighbour (a coupled row: both ends free).
    """
    rng = np.random.default_rng(seed)
    c = Circuit(f"grid {n}x{n} with diodes")
    names = np.char.add(np.char.add("g", np.repeat(np.arange(n), n).astype(str)),
                        np.char.add("_", np.tile(np.arange(n), n).astype(str)))
    ids = c.nodes_of(names).reshape(n, n)
    horiz = np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1)
    vert = np.stack([ids[:-1, :].ravel(), ids[1:, :].ravel()], 1)
    edges = np.concatenate([horiz, vert])
    c.add_many("R", [f"r{k}" for k in range(len(edges))], edges, rng.uniform(100.0, 1e4, len(edges)))

    c.add("V", "vleft", ["left", "0"], 1.0)
    left, rows = c.node("left"), np.arange(n)
    c.add_many("R", [f"rl{r}" for r in rows], np.stack([np.full(n, left), ids[:, 0]], 1), np.full(n, 100.0))
    c.add_many("R", [f"rr{r}" for r in rows], np.stack([ids[:, -1], np.zeros(n, np.int64)], 1), np.full(n, 100.0))

    c.add("V", "vclamp", ["clamp", "0"], 0.5)
    clamp = c.node("clamp")
    flat = ids.ravel()
    clamped = rng.choice(flat.size, int(diode_fraction * flat.size), replace=False)
    c.add_many("D", [f"dc{k}" for k in range(len(clamped))],
               np.stack([flat[clamped], np.full(len(clamped), clamp)], 1), np.zeros(len(clamped)))
    pairs = horiz[rng.choice(len(horiz), int(diode_fraction * flat.size), replace=False)]
    c.add_many("D", [f"dp{k}" for k in range(len(pairs))], pairs, np.zeros(len(pairs)))
    return c


def random_graph_circuit(n_nodes: int, degree: float = 4.0, seed: int = 0, n_sources: int = 8,
                         diode_fraction: float = 0.02) -> Circuit:
    """A random sparse resistive graph: a ring (so it is connected) plus random chords, mean degree ``degree``.

    ``n_sources`` grounded sources (-1..1 V) drive random nodes through 1 kohm; a ``diode_fraction`` of the
    edges get an ideal diode in parallel with the resistor (both ends free).
    """
    rng = np.random.default_rng(seed)
    c = Circuit(f"random graph {n_nodes} nodes")
    ids = c.nodes_of([f"n{k}" for k in range(n_nodes)])
    ring = np.stack([ids, np.roll(ids, -1)], 1)
    n_chords = max(int(n_nodes * (degree - 2) / 2), 0)
    chords = ids[rng.integers(0, n_nodes, (n_chords, 2))]
    chords = chords[chords[:, 0] != chords[:, 1]]
    edges = np.concatenate([ring, chords])
    c.add_many("R", [f"r{k}" for k in range(len(edges))], edges, rng.uniform(100.0, 1e4, len(edges)))
    driven = rng.choice(n_nodes, min(n_sources, n_nodes), replace=False)
    for k, node in enumerate(driven):
        c.add("V", f"vs{k}", [f"s{k}", "0"], rng.uniform(-1.0, 1.0))
        c.add("R", f"rs{k}", [f"s{k}", int(ids[node])], 1000.0)
    with_diode = edges[rng.choice(len(edges), int(diode_fraction * len(edges)), replace=False)]
    c.add_many("D", [f"d{k}" for k in range(len(with_diode))], with_diode, np.zeros(len(with_diode)))
    return c


FAMILIES = {
    "drn-xs": lambda: drn_circuit([1568, 100, 10], seed=0, title="DRN-XS 1568-100-10"),
    "drn-1h": lambda: drn_circuit([1568, 1024, 10], seed=0, title="DRN-1H 1568-1024-10"),
    "grid-100": lambda: grid_circuit(100),
    "grid-200": lambda: grid_circuit(200),
    "grid-300": lambda: grid_circuit(300),
    "random-1k": lambda: random_graph_circuit(1_000),
    "random-30k": lambda: random_graph_circuit(30_000),
    "random-300k": lambda: random_graph_circuit(300_000),
}
