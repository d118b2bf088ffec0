"""Draw the compiled circuit of the 2-2-1 worked example of docs/relu_compiler.md.

    python docs/figures/relu_figures.py        # writes docs/figures/relu_2_2_1.png

Every element drawn comes from ``compile_relu`` (resistors labelled in ohms, amplifiers with their gains);
only the node positions are chosen here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from resnet_sim.relu_compiler import compile_relu  # noqa: E402

# the worked example: y = W1 relu(W0 x + b0) + b1
W0 = np.array([[1.0, -2.0], [-1.0, 1.0]])
B0 = np.array([0.5, -1.0])
W1 = np.array([[2.0, -3.0]])
B1 = np.array([0.25])

POS = {  # rails ordered so that neuron 0 (top) and neuron 1 (bottom) draw from disjoint rails
    "in0": (-0.8, 5.0), "in_n1": (1.6, 3.8), "in_n0": (1.6, 2.2), "in1": (-0.8, 1.0),
    "bias_p": (8.6, 6.2), "bias_n": (3.4, -1.0),
    "l0_z0": (5.0, 4.0), "l0_z1": (5.0, 1.0), "l0_p0": (7.2, 4.0), "l0_n1": (7.2, 1.0),
    "l1_z0": (10.0, 2.5), "out0": (12.2, 2.5),
}


def _xy(p):
    return np.asarray(POS[p], dtype=float)


def resistor(ax, p, q, label):
    """Zig-zag between nodes p and q (from 1/4 to 1/2 of the way from p), labelled beside it."""
    a, b = _xy(p), _xy(q)
    d = b - a
    n = np.array([-d[1], d[0]]) / np.hypot(*d)
    t = np.linspace(0, 1, 14)
    zig = np.r_[0, np.tile([1, -1], 6), 0] * 0.12
    mid = a + np.outer(0.25 + t / 4, d) + np.outer(zig, n)
    pts = np.vstack([a, mid, b])
    ax.plot(pts[:, 0], pts[:, 1], color="tab:brown", lw=1.2)
    c = a + d * 0.375 + n * 0.4
    ax.text(*c, label, fontsize=7, ha="center", va="center", color="tab:brown")


def ground(ax, xy):
    x, y = xy
    for i, w in enumerate((0.25, 0.16, 0.07)):
        ax.plot([x - w, x + w], [y - 0.08 * i] * 2, color="k", lw=1)


def diode_to_ground(ax, node, clamp_below: bool):
    """Ideal diode between ``node`` and a ground symbol below it (anode at ground when clamp_below)."""
    x, y = _xy(node) + np.array([0.0, -0.1])
    ax.plot([x, x], [y, y - 1.0], color="k", lw=1)
    tip, base = (y - 0.35, y - 0.65) if clamp_below else (y - 0.65, y - 0.35)
    ax.fill([x - 0.15, x + 0.15, x], [base, base, tip], color="tab:red")
    ax.plot([x - 0.15, x + 0.15], [tip, tip], color="tab:red", lw=2)
    ground(ax, (x, y - 1.0))


def amplifier(ax, ctrl, out, gain, at=(0.3, 0.75)):
    """VCVS drawn as a triangle on the line from its control node to its output node (between the fractions
    ``at`` of the way), pointing at the output, with the gain inside."""
    a, b = _xy(ctrl), _xy(out)
    d = b - a
    n = np.array([-d[1], d[0]]) / np.hypot(*d) * 0.35
    base, tip = a + d * at[0], a + d * at[1]
    ax.plot(*np.c_[a, base], color="k", lw=1)
    ax.plot(*np.c_[tip, b], color="k", lw=1)
    corners = np.array([base + n, base - n, tip])
    ax.fill(corners[:, 0], corners[:, 1], facecolor="tab:blue", alpha=0.25, edgecolor="tab:blue")
    ax.text(*(base + (tip - base) * 0.35), f"×{gain:g}", fontsize=7, va="center", ha="center")


def source(ax, node, label):
    """Voltage source from ground to ``node``, drawn beside it (right of bias_p, left elsewhere)."""
    side = 0.8 if node == "bias_p" else -0.6
    x, y = _xy(node) + np.array([side, 0.0])
    ax.plot([x, x - side], [y, y], color="k", lw=1)
    ax.add_patch(plt.Circle((x, y - 0.45), 0.25, fill=False))
    ax.text(x, y - 0.45, label, fontsize=7, ha="center", va="center")
    ax.plot([x, x], [y - 0.2, y], color="k", lw=1)
    ax.plot([x, x], [y - 0.7, y - 0.9], color="k", lw=1)
    ground(ax, (x, y - 0.9))


def draw(path: Path) -> None:
    c = compile_relu([W0, W1], [B0, B1])
    missing = set(c.node_names[1:]) - set(POS)
    assert not missing, f"no position for nodes {missing}"
    fig, ax = plt.subplots(figsize=(10, 5.4))
    names = c.node_names
    for name, (a, b), r in zip(c["R"].names, c["R"].nodes, c["R"].value):
        resistor(ax, names[b], names[a], f"{r:.4g} Ω")
    for (a, k) in c["D"].nodes:
        diode_to_ground(ax, names[k] if a == 0 else names[a], clamp_below=a == 0)
    for (p, _, cp, _), gain in zip(c["E"].nodes, c["E"].value):
        inverter = names[p].startswith("in_n")  # keep the two crossing input inverters apart
        amplifier(ax, names[cp], names[p], gain, at=(0.2, 0.5) if inverter else (0.3, 0.75))
    for name, p, value in zip(c["V"].names, c["V"].column("p"), c["V"].value):
        source(ax, names[p], "x" + name[3:] if name in c.inputs else f"{value:+g}V")
    for node, (x, y) in POS.items():
        ax.plot(x, y, "o", color="k", ms=4)
        ax.text(x, y + 0.22, node, fontsize=8, ha="center", fontweight="bold")
    ax.set_title("2-2-1 ReLU network, exact mode: W0=[[1,-2],[-1,1]], b0=[0.5,-1], W1=[[2,-3]], b1=[0.25]\n"
                 "resistors 1/(1 mS·|w|); diodes clamp neurons at ≥ 0 V; triangles are VCVS (gain inside)",
                 fontsize=9)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


if __name__ == "__main__":
    draw(Path(__file__).with_name("relu_2_2_1.png"))
