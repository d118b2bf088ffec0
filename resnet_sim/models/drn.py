"""Deep resistive networks (DRN): layered circuits of resistors with diode nonlinearities.

Layout of ``drn_circuit([n_in, h_1, ..., h_k, n_out])``:

- input ``i`` is node ``in{i}`` held by voltage source ``vin{i}`` (``.inputs``, in order);
- every node of layer ``l >= 1`` (names ``h{l}_{j}``; the last layer ``out{j}``, ``.outputs``) is joined
  to every node of layer ``l - 1`` by a resistor ``r{l}_{j}_{i}`` (``.trainable``);
- every hidden node carries two ideal diodes that keep it inside [0, ``v_clip``] volts: ``dlo{l}_{j}``
  from ground to the node and ``dhi{l}_{j}`` from the node to the clip source ``vclip``.

All diodes have one end fixed, so they are bounds on single node potentials; the free-node graph is
bipartite between consecutive layers, hence 2-colourable by layer parity.
"""

from __future__ import annotations

import numpy as np

from ..circuit import Circuit, TrainableSpec


def drn_circuit(
    sizes,
    seed: int = 0,
    g_range: tuple[float, float] = (1e-5, 1e-3),
    v_clip: float = 1.0,
    title: str | None = None,
) -> Circuit:
    """A DRN with layer sizes ``sizes`` (n_in, hidden..., n_out) and conductances uniform in ``g_range`` (S).

    Input sources start at values uniform in [-1, 1] V (seeded), so the circuit solves as it is.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
    rng = np.random.default_rng(seed)
    c = Circuit(title or "DRN " + "-".join(map(str, sizes)))

    layers = [[f"in{i}" for i in range(sizes[0])]]
    for l in range(1, len(sizes) - 1):
        layers.append([f"h{l}_{j}" for j in range(sizes[l])])
    layers.append([f"out{j}" for j in range(sizes[-1])])
    ids = [c.nodes_of(names) for names in layers]

    n_in = sizes[0]
    c.add_many("V", [f"vin{i}" for i in range(n_in)], np.stack([ids[0], np.zeros(n_in, np.int64)], 1),
               rng.uniform(-1.0, 1.0, n_in))
    c.inputs = [f"vin{i}" for i in range(n_in)]
    c.outputs = list(layers[-1])

    for l in range(1, len(sizes)):
        n_prev, n_cur = sizes[l - 1], sizes[l]
        j, i = np.divmod(np.arange(n_prev * n_cur), n_prev)
        names = np.char.add(np.char.add(np.char.add(f"r{l}_", j.astype(str)), "_"), i.astype(str))
        g = rng.uniform(g_range[0], g_range[1], n_prev * n_cur)
        c.add_many("R", names, np.stack([ids[l][j], ids[l - 1][i]], 1), 1.0 / g)
    c.trainable = [TrainableSpec(("r*",), gmin=g_range[0] / 10, gmax=g_range[1] * 10)]

    if len(sizes) > 2:
        clip = c.node("clip")
        c.add("V", "vclip", ["clip", "0"], v_clip)
        for l in range(1, len(sizes) - 1):
            hidden = ids[l]
            zeros = np.zeros(len(hidden), np.int64)
            c.add_many("D", [f"dlo{l}_{j}" for j in range(len(hidden))], np.stack([zeros, hidden], 1), zeros)
            c.add_many("D", [f"dhi{l}_{j}" for j in range(len(hidden))],
                       np.stack([hidden, np.full(len(hidden), clip)], 1), zeros)
    return c
