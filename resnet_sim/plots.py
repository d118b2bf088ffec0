"""Figures (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["training_curves", "sweep_summary", "monte_carlo_histogram"]


def training_curves(history: list[dict], path) -> None:
    """Loss (V², log scale) and, for classification, error (%) against epoch, train and test, saved as a PNG.
    ``history``: metrics.json's list of epoch records."""
    plt = _pyplot()
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sweep_summary(rows: list[dict], varied, path) -> None:
    """A sweep's final metric (test error in %, else test loss, train error, train loss) against each varied
    option, one panel per option, one marker per point and a line through the means, saved as a PNG.
    ``rows``: the sweep's summary rows (the varied options' values and the last epoch's metrics)."""
    plt = _pyplot()
    metric = next((m for m in ("test_error", "test_loss", "train_error", "train_loss")
                   if any(m in r for r in rows)), None)
    varied = list(varied) or ["point"]
    fig, axes = plt.subplots(1, len(varied), figsize=(4 * len(varied), 3.5), squeeze=False)
    scale, label = (100.0, metric.replace("_", " ") + " (%)") if metric and metric.endswith("error") else \
        (1.0, (metric or "").replace("_", " ") + " (V²)")
    for ax, key in zip(axes[0], varied):
        points = [(r.get(key), r[metric] * scale) for r in rows if metric and metric in r]
        if not points:
            ax.text(0.5, 0.5, "no finished point", ha="center", va="center", transform=ax.transAxes)
        else:
            xs = [x for x, _ in points]
            numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
            if numeric:
                positions = xs
            else:
                names = list(dict.fromkeys(map(str, xs)))
                positions = [names.index(str(x)) for x in xs]
                ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0)
            ax.plot(positions, [y for _, y in points], "o", alpha=0.6)
            means = {}
            for x, (_, y) in zip(positions, points):
                means.setdefault(x, []).append(y)
            order = sorted(means)
            ax.plot(order, [sum(means[x]) / len(means[x]) for x in order], "-", color="k", lw=1, label="mean")
            ax.legend(fontsize="small")
            if numeric and min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=100)
    plt.close(fig)


def monte_carlo_histogram(accuracy, nominal_accuracy, deviation, path) -> None:
    """A Monte-Carlo run's histograms, saved as a PNG: the accuracy (%) of each draw against the nominal
    circuit's (when labels were given: ``accuracy`` (K,) fractions, else None), and the output voltages'
    deviation from the nominal circuit's (mV), ``deviation`` (K, B, n_out) V."""
    import numpy as np

    plt = _pyplot()
    panels = (accuracy is not None) + 1
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.5), squeeze=False)
    if accuracy is not None:
        ax = axes[0][0]
        acc, step = 100 * np.asarray(accuracy), 100 / np.shape(deviation)[1]  # accuracies are multiples of step
        lo, hi = np.floor(acc.min() / step), np.ceil(acc.max() / step)
        bins = (np.arange(lo, hi + 2) - 0.5) * step if hi - lo < 60 else 50
        ax.hist(acc, bins=bins, color="C0")
        ax.axvline(100 * nominal_accuracy, color="k", ls="--", label=f"nominal {100 * nominal_accuracy:.1f} %")
        ax.set_xlabel("accuracy (%)")
        ax.set_ylabel("draws")
        ax.legend()
    ax = axes[0][-1]
    ax.hist(1e3 * np.asarray(deviation).ravel(), bins=100, color="C1")
    ax.set_yscale("log")
    ax.set_xlabel("output − nominal output (mV)")
    ax.set_ylabel("outputs (all draws and inputs)")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=100)
    plt.close(fig)
