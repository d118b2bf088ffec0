"""Figures (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["training_curves"]


def training_curves(history: list[dict], path) -> None:
    """Loss (V², log scale) and, for classification, error (%) against epoch, train and test, saved as a PNG.
    ``history``: metrics.json's list of epoch records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    has_error = any("train_error" in r or "test_error" in r for r in history)
    fig, axes = plt.subplots(1, 2 if has_error else 1, figsize=(9 if has_error else 5, 3.5), squeeze=False)
    panels = [("loss", "loss (V²)", 1.0)] + ([("error", "error (%)", 100.0)] if has_error else [])
    for ax, (key, label, scale) in zip(axes[0], panels):
        for split, style in (("train", "-o"), ("test", "-s")):
            points = [(e, r[f"{split}_{key}"] * scale) for e, r in zip(epochs, history) if f"{split}_{key}" in r]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=split)
        if key == "loss":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(Path(path), dpi=100)
    plt.close(fig)
