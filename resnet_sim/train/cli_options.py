"""Command-line options shared by the training sub-commands (``resnet-sim train``, ``resnet-sim drn``, ...):
the optimiser, the estimator, the device models, the run's seed and resumption, each turned into a
TrainConfig field. The sub-commands add their own (the netlist and data, or a preset)."""

from __future__ import annotations

import argparse

__all__ = ["add_training_options", "config_fields", "device_config"]


def _pair(text: str):
    """``K=VALUE`` for --group-lr: (K as int, VALUE as float)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected GROUP=LR (e.g. 2=0.001), got {text!r}")
    try:
        return int(key), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer group and a number, got {text!r}") from None


def add_training_options(p: argparse.ArgumentParser, defaults: dict, preset_text: str = "the preset's") -> None:
    """Add the shared options; ``defaults`` {dest: value} overrides TrainConfig's defaults. A default of None
    means the sub-command fills the value in after parsing (from a preset: ``preset_text`` in --help)."""
    from .trainer import TrainConfig

    base = {**{f.name: f.default for f in TrainConfig.__dataclass_fields__.values()
               if not callable(f.default)}, **defaults}

    def default(key: str) -> str:
        return f"(default {preset_text})" if base[key] is None and key in defaults else "(default %(default)s)"

    g = p.add_argument_group("training")
    g.add_argument("--out", metavar="RUNDIR", required=True, help="folder for metrics.json, checkpoint.h5, curves.png")
    g.add_argument("--epochs", type=int, default=base["epochs"], help="total epochs of the run " + default("epochs"))
    g.add_argument("--batch-size", type=int, default=base["batch_size"], help=default("batch_size"))
    g.add_argument("--lr", type=float, default=base["lr"], help="learning rate, S^2/V^2 for conductances " + default("lr"))
    g.add_argument("--group-lr", type=_pair, action="append", default=[], metavar="K=LR",
                   help="learning rate of parameter group K (.trainable card K, from 0); repeatable")
    g.add_argument("--momentum", type=float, default=base["momentum"], help=default("momentum"))
    g.add_argument("--weight-decay", type=float, default=base["weight_decay"], help=default("weight_decay"))
    g.add_argument("--schedule", default=base["schedule"], help="constant, exponential or cosine " + default("schedule"))
    g.add_argument("--gamma", type=float, default=base["gamma"],
                   help="per-epoch factor of the exponential schedule " + default("gamma"))
    g.add_argument("--beta", type=float, default=base["beta"],
                   help="nudging conductance, siemens " + (default("beta") if "beta" in defaults else
                                                           "(default: a tenth of the largest convex negative nudge)"))
    g.add_argument("--variant", default=base["variant"], help="centered, positive or negative " + default("variant"))
    g.add_argument("--estimator", default=base["estimator"], help="ep, exact (general path), il (inference learning, PCN) or dp (dual propagation, PCN) "
                   + default("estimator"))
    g.add_argument("--seed", type=int, default=base["seed"], help="shuffling, noise and initialisation " + default("seed"))
    g.add_argument("--resume", action="store_true", help="continue RUNDIR's run from its checkpoint up to --epochs")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    d = p.add_argument_group("device models (docs/training.md)")
    d.add_argument("--levels", type=int, default=None, help="quantised conductance levels between gmin and gmax")
    d.add_argument("--stochastic-rounding", action="store_true", help="round to a level stochastically (unbiased)")
    d.add_argument("--program-noise", type=float, default=0.0, metavar="SIGMA",
                   help="multiplicative programming noise g (1 + SIGMA xi) per update")
    d.add_argument("--variability", type=float, default=0.0, metavar="SIGMA",
                   help="device-to-device spread of gmin, gmax: exp(SIGMA zeta), fixed per run")
    d.add_argument("--soft-bounds", action="store_true", help="steps shrink towards gmax (up) and gmin (down)")
    d.add_argument("--update-table", metavar="CSV", default=None,
                   help="measured pulse response: conductance, potentiating step, depressing step (siemens)")
    d.add_argument("--max-pulses", type=int, default=1000, help="pulses per update with --update-table")


def device_config(args):
    """The DeviceConfig of the parsed options (ValueError for bad values or an unreadable table)."""
    from .devices import DeviceConfig, UpdateTable

    table = None if args.update_table is None else UpdateTable.from_csv(args.update_table)
    return DeviceConfig(levels=args.levels, stochastic_rounding=args.stochastic_rounding,
                        program_noise=args.program_noise, variability=args.variability, soft_bounds=args.soft_bounds,
                        table=table, max_pulses=args.max_pulses)


def config_fields(args) -> dict:
    """TrainConfig fields from the parsed shared options."""
    return dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, group_lr=tuple(args.group_lr),
                momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule, gamma=args.gamma,
                beta=args.beta, variant=args.variant, estimator=args.estimator, seed=args.seed,
                devices=device_config(args))
