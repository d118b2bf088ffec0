"""Published training configurations of the model families, by (family, architecture, data set).

A preset fixes the hidden layer sizes, the nudging beta, the learning rates per weight layer and per bias
layer (decayed by ``gamma`` per epoch), the batch size, momentum, the epochs of the published run, random
horizontal flips, the published test error (fraction; NaN where there is none) and the family's own options
(a DRN's input gain in volts, a weight gain at initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Preset", "PRESETS", "preset", "architectures"]


@dataclass(frozen=True)
class Preset:
    family: str
    name: str
    hidden: tuple[int, ...]
    beta: float
    lr_weights: tuple[float, ...]
    lr_biases: tuple[float, ...]
    epochs: int
    published_test_error: float
    batch_size: int = 4
    momentum: float = 0.0
    flips: bool = False
    gamma: float = 0.99
    options: dict = field(default_factory=dict)


def _drn(name, hidden, gain, beta, lr_w, lr_b, epochs, error, **kw):
    return Preset("drn", name, hidden, beta, lr_w, lr_b, epochs, error, options={"input_gain": gain}, **kw)


PRESETS = {
    # Scellier 2024, "A fast algorithm to simulate nonlinear resistive networks", and its reference code
    ("drn", "xs", "mnist"): _drn("xs", (100,), 100.0, 1.0, (0.006, 0.006), (0.006, 0.006), 10, 0.0346),
    ("drn", "1h", "mnist"): _drn("1h", (1024,), 480.0, 1.0, (0.006, 0.006), (0.006, 0.006), 50, 0.0157),
    ("drn", "2h", "mnist"): _drn("2h", (1024, 1024), 2000.0, 1.0, (0.002, 0.006, 0.018), (0.002, 0.006, 0.018), 50,
                                 0.0148),
    ("drn", "3h", "mnist"): _drn("3h", (1024, 1024, 1024), 4000.0, 2.0, (0.005, 0.02, 0.08, 0.005),
                                 (0.0005, 0.002, 0.008, 0.0005), 50, 0.0166),
    ("drn", "xl", "mnist"): _drn("xl", (32768,), 800.0, 1.0, (0.006, 0.006), (0.006, 0.006), 100, 0.0133),
    ("drn", "1h", "fashion-mnist"): _drn("1h", (1024,), 300.0, 0.5, (0.005, 0.005), (0.005, 0.005), 100, 0.1038,
                                         batch_size=32, momentum=0.9, flips=True),
    # the deep Hopfield baselines of the same paper (appendix E)
    ("hopfield", "1h", "mnist"): Preset("hopfield", "1h", (1024,), 0.2, (0.05, 0.05), (0.05, 0.05), 100, 0.0179,
                                        batch_size=16, options={"weight_gain": 0.7}),
    ("hopfield", "2h", "mnist"): Preset("hopfield", "2h", (1024, 1024), 0.2, (0.2, 0.05, 0.01), (0.2, 0.05, 0.01),
                                        100, 0.0165, batch_size=16, options={"weight_gain": 0.7}),
    ("hopfield", "3h", "mnist"): Preset("hopfield", "3h", (1024, 1024, 1024), 0.2, (0.2, 0.05, 0.01, 0.002),
                                        (0.2, 0.05, 0.01, 0.002), 100, 0.0165, batch_size=16,
                                        options={"weight_gain": 0.7}),
    # a ReLU MLP as a PCN (no published run of this size: the figure is ours, benchmarks/results/training.md)
    ("pcn", "1h", "mnist"): Preset("pcn", "1h", (512,), 0.1, (0.01, 0.01), (0.01, 0.01), 20, float("nan"),
                                   batch_size=32, momentum=0.9, options={"weight_gain": 1.0}),
}


def architectures(family: str) -> tuple[str, ...]:
    """The architectures with a preset in ``family``, in table order."""
    return tuple(dict.fromkeys(arch for fam, arch, _ in PRESETS if fam == family))


def preset(family: str, arch: str, dataset: str = "mnist") -> Preset:
    """The preset of ``arch`` on ``dataset`` (the MNIST one where that data set has none); ValueError naming
    the choices for an unknown architecture."""
    if arch not in architectures(family):
        raise ValueError(f"unknown {family} architecture {arch!r}; choose one of {', '.join(architectures(family))}")
    return PRESETS.get((family, arch, dataset), PRESETS[(family, arch, "mnist")])
