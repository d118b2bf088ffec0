"""The ``resnet-sim`` command.

Each sub-command is a pair of small functions -- one adds its arguments to an argparse parser, one runs
it and returns the exit status -- registered in ``COMMANDS``. Heavy modules are imported inside the
run functions, so the command starts quickly. User errors (bad netlists, circuits without a unique
finite operating point, missing files, bad input arrays) print one line on stderr, ``FILE:LINE: message``
or ``FILE: message``, and exit with status 2; there is no traceback. The reader's warnings (input it
ignored) go to stderr as ``warning: FILE:LINE: message``.
"""

from __future__ import annotations

import argparse
import sys

from .errors import CircuitError, NetlistError

USER_ERROR = 2
# the table lists resistor currents only up to this many resistors (unless --all): 1.6 M lines are not a
# readable table, and ngspice's own .op output likewise gives node voltages and source currents
TABLE_MAX_RESISTORS = 1000
# reader warnings (ignored cards and parameters) printed on stderr, at most this many lines
MAX_WARNINGS = 20


class UsageError(Exception):
    """A user error outside the netlist and the circuit (a missing file, a bad array): ``FILE: message``."""

    def __init__(self, file, message):
        super().__init__(f"{file}: {message}")


# ---------------------------------------------------------------------------------------------- op
def _op_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="netlist (.cir)")
    p.add_argument("--json", action="store_true", help="print JSON (nodes, currents, diodes, certificate)")
    p.add_argument("--h5", metavar="OUT.h5", help="also write the operating point to an HDF5 file")
    p.add_argument("--inputs", metavar="X.npy", help="(B, n_inputs) values of the .inputs sources, one row per sample")
    p.add_argument("--method", default="auto", choices=("auto", "cd", "active-set", "cvxpy"))
    p.add_argument("--tol", type=float, default=1e-9, help="KKT tolerance (default 1e-9)")
    p.add_argument("--gmin", type=float, default=None,
                   help="conductance (S) from every node to ground, for circuits with floating parts")
    p.add_argument("--all", action="store_true",
                   help=f"list every resistor's current in the table (by default only up to {TABLE_MAX_RESISTORS} "
                        "resistors; --json and --h5 always hold them all)")


def _op(args) -> int:
    import warnings

    import numpy as np

    from .netlist import read_netlist
    from .solve import ConvergenceWarning, solve

    if not (np.isfinite(args.tol) and args.tol > 0):
        raise UsageError(args.file, f"--tol must be a finite number > 0, got {args.tol}")
    if args.gmin is not None and not (np.isfinite(args.gmin) and args.gmin > 0):
        raise UsageError(args.file, f"--gmin must be a finite conductance > 0 (siemens), got {args.gmin}")
    circuit = read_netlist(_existing(args.file))
    _print_warnings(circuit)
    inputs = None if args.inputs is None else _read_inputs(args.inputs, len(circuit.inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the output instead
        try:
            op = solve(circuit, method=args.method, tol=args.tol, inputs=inputs, gmin=args.gmin)
        except CircuitError as err:
            raise CircuitError(f"{args.file}: {err}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(op.voltages).all() and np.isfinite(op.currents()[1]).all()
    if not finite:
        raise CircuitError(f"{args.file}: the operating point overflows double precision (a voltage or current "
                           "beyond 1.8e308)")
    if args.h5 is not None:
        op.to_hdf5(args.h5)
    try:
        text = op.to_json(indent=1) if args.json else _table(op, all_resistors=args.all)
    except ValueError as err:  # strict JSON: an overflowing current or voltage
        raise UsageError(args.file, f"cannot report this operating point: {err}") from None
    print(text)
    return 0


def _print_warnings(circuit) -> None:
    """The reader's warnings (``FILE:LINE: ignored ...``: input that changes nothing here but may in
    ngspice) on stderr, one per line, at most MAX_WARNINGS of them and a count of the rest."""
    for w in circuit.warnings[:MAX_WARNINGS]:
        print(f"warning: {w}", file=sys.stderr)
    if len(circuit.warnings) > MAX_WARNINGS:
        print(f"warning: ... and {len(circuit.warnings) - MAX_WARNINGS} more", file=sys.stderr)


def _load_npy(path: str):
    """The array of a numpy .npy file; UsageError naming the file otherwise."""
    import numpy as np

    try:
        array = np.load(_existing(path), allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise UsageError(path, f"not a numpy .npy array ({err or 'empty file'})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise UsageError(path, "not a numpy .npy array (an .npz archive: save one array with np.save)")
    return array


def _read_inputs(path: str, n_in: int):
    """(B, n_in) values of a circuit's .inputs sources from an .npy file (real, finite, B >= 1)."""
    import numpy as np

    inputs = _load_npy(path)
    if (inputs.ndim != 2 or inputs.shape[1] != n_in or not np.issubdtype(inputs.dtype, np.number)
            or np.iscomplexobj(inputs)):
        raise UsageError(path, f"expected a real numeric (B, {n_in}) array (one column per .inputs "
                               f"source), got {inputs.dtype} of shape {inputs.shape}")
    if inputs.shape[0] == 0:
        raise UsageError(path, "no samples (shape (0, n)): nothing to solve")
    if not np.isfinite(inputs).all():
        raise UsageError(path, "inputs must be finite (no NaN or inf)")
    return inputs


def _existing(path: str) -> str:
    import os

    if not os.path.isfile(path):
        raise UsageError(path, "no such file")
    return path


def _table(op, all_resistors: bool = False) -> str:
    """The readable report: header, certificate, node voltages, element currents (resistors only up to
    TABLE_MAX_RESISTORS of them, unless ``all_resistors``), diode states."""
    import numpy as np

    B = op.batch
    samples = "" if B == 1 else "  (columns: samples 0.." + str(B - 1) + ")"
    lines = [f"circuit: {op.circuit.title}",
             f"method: {op.method}   converged: {'yes' if op.converged else 'NO'}   sweeps: {op.sweeps}",
             "residuals: " + ", ".join(f"{k} {np.max(v):.3g} {u}" for (k, v), u in
                                       zip(op.residuals.items(), ("A", "V", "A", "W")))]

    def block(title, names, rows):
        """One section: a name column, then one right-aligned column per sample (rows: (n, B))."""
        if not names:
            return
        width = max(12, max(map(len, names)))
        lines.append("")
        lines.append(f"{title:<{width}}  {'' if B == 1 else samples}".rstrip())
        rows = np.asarray(rows)
        if rows.dtype.kind == "f":
            rows, cell = rows + 0.0, "%17.9g"  # + 0.0 turns -0.0 into 0.0
        else:
            cell = "%17s"
        line = f"%-{width}s" + cell * B  # %-formatting: a third faster than str.format on 1e6 rows
        lines.extend([line % row for row in zip(names, *rows.T.tolist())])

    block("node  voltage (V)", op.node_names, op.voltages)
    n_res = len(op.circuit["R"])
    listed = all_resistors or n_res <= TABLE_MAX_RESISTORS
    names, cur = op.currents(skip=() if listed else ("R",))
    block("element  current (A)", names, cur)
    if not listed:
        lines.append(f"({n_res} resistor currents not listed: --all lists them; --json and --h5 hold them)")
    states = op.diode_states()
    block("diode  state", op.circuit["D"].names.tolist(), np.where(states, "on", "off"))
    if op.outputs is not None:
        block("output  voltage (V)", list(op.circuit.outputs), op.outputs.T)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- compile-relu
def _compile_relu_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="network weights: .npz (or HDF5) with arrays W0, b0, W1, b1, ...")
    p.add_argument("-o", "--output", metavar="NET.cir", required=True, help="netlist to write")
    p.add_argument("--mode", default="exact", choices=("exact", "minimal"),
                   help="exact: VCVS buffers between layers; minimal: fewest amplifiers (default exact)")
    p.add_argument("--gain", type=float, default=None,
                   help="minimal mode: conductance ratio between consecutive layers (default 1000)")
    p.add_argument("--unit", type=float, default=1e-3, help="conductance per unit weight, siemens (default 1e-3)")


def _compile_relu(args) -> int:
    from .netlist import write_netlist
    from .relu_compiler import compile_relu, element_report, format_report, load_model

    try:
        weights, biases = load_model(_existing(args.model))
        circuit = compile_relu(weights, biases, args.mode, unit=args.unit, gain=args.gain)
    except ValueError as err:
        raise UsageError(args.model, str(err).removeprefix(f"{args.model}: ")) from None
    text = write_netlist(circuit)  # before opening the output, so a failure leaves an existing file alone
    with open(args.output, "w") as f:
        f.write(text)
    print(f"wrote {args.output}: {circuit.title}, {len(circuit.inputs)} inputs, {len(circuit.outputs)} outputs")
    print(format_report(element_report(circuit)))
    return 0


# ---------------------------------------------------------------------------------------------- spice
def _spice_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="netlist (.cir)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each tool; times are medians (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before ngspice is killed (default 600)")


def _spice(args) -> int:
    from .netlist import read_netlist
    from .spice import SpiceError, compare

    if args.repeat < 1:
        raise UsageError(args.file, f"--repeat must be >= 1, got {args.repeat}")
    if not (0 < args.timeout < 1e9):
        raise UsageError(args.file, f"--timeout must be a number of seconds in (0, 1e9), got {args.timeout}")
    circuit = read_netlist(_existing(args.file))
    _print_warnings(circuit)
    try:
        comparison = compare(circuit, repeat=args.repeat, timeout=args.timeout)
    except SpiceError as err:
        lines = list(dict.fromkeys(err.lines))[:3]  # ngspice repeats its messages
        raise UsageError(args.file, "; ".join([str(err).splitlines()[0], *lines])) from None
    except CircuitError as err:
        raise CircuitError(f"{args.file}: {err}") from None
    print(comparison.table())
    return 0


# ---------------------------------------------------------------------------------------------- train
def _train_arguments(p: argparse.ArgumentParser) -> None:
    from .train.cli_options import add_training_options

    p.add_argument("netlist", metavar="NETLIST", help="netlist with .inputs, .outputs and .trainable cards")
    p.add_argument("--data", metavar="DATA", required=True,
                   help=".npz or .h5 with x_train, y_train (and x_test, y_test): labels or target volts")
    add_training_options(p, {})
    p.add_argument("--target-levels", type=float, nargs=2, default=(0.0, 1.0), metavar=("LOW", "HIGH"),
                   help="one-hot target volts for class labels (default 0 1)")
    p.add_argument("--init-jitter", type=float, default=0.0, metavar="F",
                   help="start each trainable conductance at g (1 + F u), u uniform in [-1, 1] (default 0)")
    p.add_argument("--method", default="auto", help="solver: auto, cd, active-set or cvxpy (default auto)")
    p.add_argument("--tol", type=float, default=1e-9, help="solver tolerance (default 1e-9)")


def _read_solver_netlist(args):
    """The circuit of ``args.netlist`` (its reader warnings on stderr), after checking ``args.method`` and
    ``args.tol``; UsageError naming the netlist otherwise."""
    import numpy as np

    from .netlist import read_netlist
    from .solve import METHODS

    circuit = read_netlist(_existing(args.netlist))
    _print_warnings(circuit)
    if args.method not in METHODS:
        raise UsageError(args.netlist, f"--method must be one of {', '.join(METHODS)}, got {args.method!r}")
    if not (np.isfinite(args.tol) and args.tol > 0):
        raise UsageError(args.netlist, f"--tol must be a finite number > 0, got {args.tol}")
    return circuit


def _train(args) -> int:
    from .compile import compile
    from .netlist import write_netlist
    from .train.circuit_model import CircuitModel
    from .train.cli_options import config_fields
    from .train.datasets import load_training_data
    from .train.trainer import TrainConfig, Trainer

    circuit = _read_solver_netlist(args)
    try:
        config = TrainConfig(**config_fields(args), init_jitter=args.init_jitter, target_levels=tuple(args.target_levels))
        model = CircuitModel(compile(circuit), method=args.method, tol=args.tol)
    except CircuitError as err:
        raise CircuitError(f"{args.netlist}: {err}") from None
    except ValueError as err:
        raise UsageError(args.netlist, str(err)) from None
    try:
        data = load_training_data(args.data, model.n_inputs, model.n_outputs, config.target_levels)
    except ValueError as err:
        raise UsageError(args.data, str(err).removeprefix(f"{args.data}: ")) from None
    trainer = Trainer(model, data, config, out=args.out, identity={"netlist": write_netlist(circuit)},
                      progress=not args.quiet)
    return _run_training(trainer, args)


# ---------------------------------------------------------------------------------------------- model families
# family -> (what --arch chooses, the builder's module and function)
FAMILIES = {"drn": ("published DRN preset", "resnet_sim.models.drn", "drn"),
            "hopfield": ("published deep Hopfield network preset", "resnet_sim.models.hopfield", "hopfield"),
            "pcn": ("predictive coding network preset", "resnet_sim.models.pcn", "pcn")}

NETLIST_HELP = {"drn": "also write trained.cir (the trained DRN's circuit) at the end of the run",
                "hopfield": "also write trained.cir at the end of the run: the network unrolled over --unroll sweeps "
                            "as a ReLU circuit (docs/models.md)",
                "pcn": "also write trained.cir at the end of the run: the PCN's free phase (its predictions) as a "
                       "ReLU circuit (docs/models.md)"}


def _family_arguments(family: str):
    """The argument-adding function of ``resnet-sim FAMILY``: a preset, its data, the training options."""

    def add(p: argparse.ArgumentParser) -> None:
        from .models.presets import architectures
        from .train.cli_options import add_training_options

        p.add_argument("--arch", required=True, choices=architectures(family), help=FAMILIES[family][0])
        p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"), help="(default mnist)")
        p.add_argument("--data", metavar="DIR", default=None,
                       help="folder with the IDX files (mnist/, fashion-mnist/ or the files themselves); default "
                            "$RESNET_SIM_DATA")
        p.add_argument("--train-subset", type=int, default=None, metavar="K",
                       help="train on K images drawn (seeded) from the training set (default all)")
        p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="(default float32)")
        p.add_argument("--netlist", action="store_true", help=NETLIST_HELP[family])
        if family == "hopfield":
            p.add_argument("--unroll", type=int, default=10, metavar="K",
                           help="sweeps of the unrolled circuit that --netlist writes (default 10)")
        if family == "drn":
            p.add_argument("--gmax", type=float, nargs="+", default=None, metavar="S",
                           help="upper bound on the conductances: one for all weight layers or one per layer "
                                "(default none)")
        add_training_options(p, dict(epochs=None, batch_size=None, lr=None, momentum=None, beta=None, gamma=None,
                                     schedule="exponential"))
    return add


def _family(family: str):
    """The run function of ``resnet-sim FAMILY``: load the data folder's set, then ``_train_family``."""

    def run(args) -> int:
        from .data import load_dataset

        if family == "hopfield" and args.unroll < 1:
            raise UsageError(args.out, f"--unroll must be >= 1 sweep, got {args.unroll}")
        where = args.data or "$RESNET_SIM_DATA"
        try:
            train = load_dataset(args.dataset, "train", args.data)
            test = load_dataset(args.dataset, "test", args.data)
        except ValueError as err:
            raise UsageError(where, str(err)) from None
        return _train_family(family, args, train, test, where)
    return run


def _train_family(family: str, args, train, test, where: str, announce: bool = True) -> int:
    """Train the preset ``args.arch`` of ``family`` on (images, labels) pairs ``train`` and ``test``; ``where``
    names the data in errors."""
    import importlib

    import numpy as np

    from .models.presets import preset
    from .train.cli_options import config_fields
    from .train.datasets import training_data
    from .train.trainer import TrainConfig, Trainer

    p = preset(family, args.arch, args.dataset)
    for name, value in (("epochs", p.epochs), ("batch_size", p.batch_size), ("momentum", p.momentum),
                        ("beta", p.beta), ("gamma", p.gamma)):
        if getattr(args, name) is None:
            setattr(args, name, value)
    L = len(p.hidden) + 1
    scale = 1.0 if args.lr is None else args.lr / p.lr_weights[0]
    rates = {**{l: scale * r for l, r in enumerate(p.lr_weights)}, **{L + l: scale * r for l, r in enumerate(p.lr_biases)}}
    rates.update(dict(args.group_lr))
    args.group_lr, args.lr = sorted(rates.items()), scale * p.lr_weights[0]
    try:
        config = TrainConfig(**config_fields(args))
    except ValueError as err:
        raise UsageError(args.out, str(err)) from None
    (x_train, y_train), (x_test, y_test) = train, test
    if args.train_subset is not None:
        if not 1 <= args.train_subset <= len(x_train):
            raise UsageError(where, f"--train-subset must be in [1, {len(x_train)}] (the training set's size), got "
                                    f"{args.train_subset}")
        keep = np.sort(np.random.default_rng(args.seed).choice(len(x_train), args.train_subset, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    builder = getattr(importlib.import_module(FAMILIES[family][1]), FAMILIES[family][2])
    options = {"gmax": args.gmax} if family == "drn" else {}
    try:
        model = builder(args.arch, args.dataset, seed=args.seed, dtype=np.dtype(args.dtype), **options)
    except ValueError as err:
        raise UsageError(args.out, str(err)) from None
    data = training_data(dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test), model.n_inputs,
                         model.n_outputs, config.target_levels)
    identity = {family: {"arch": args.arch, "dataset": args.dataset, "dtype": args.dtype, "sizes": list(model.sizes),
                         "train_subset": args.train_subset, **p.options, **options}}
    trainer = Trainer(model, data, config, out=args.out, identity=identity, progress=not args.quiet,
                      augment=_horizontal_flips if p.flips else None, write_netlist=args.netlist,
                      netlist_options={"sweeps": args.unroll} if family == "hopfield" else None)
    return _run_training(trainer, args, announce)


# ---------------------------------------------------------------------------------------------- demo
def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=10, help="(default 10)")
    p.add_argument("--out", metavar="RUNDIR", default=None, help="keep the run's files here (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0, help="(default 0)")


def _demo(args) -> int:
    import tempfile

    from .data import load_sample

    parser = build_parser()
    with tempfile.TemporaryDirectory(prefix="resnet_sim_demo_") as tmp:
        out = args.out or tmp
        drn_args = parser.parse_args(["drn", "--arch", "xs", "--out", out, "--epochs", str(args.epochs), "--seed",
                                      str(args.seed), "--quiet"])
        train, test = load_sample("train"), load_sample("test")
        print(f"DRN-XS (1568-100-10) trained with EP on the {len(train[0])} training images shipped with the package, "
              f"tested on {len(test[0])}:")
        code = _train_family("drn", drn_args, train, test, "the shipped MNIST sample", announce=args.out is not None)
        if code == 0:
            import json
            from pathlib import Path

            last = json.loads((Path(out) / "metrics.json").read_text())["epochs"][-1]
            print(f"test accuracy after {last['epoch']} epochs: {1 - last['test_error']:.1%}")
    return code


def _horizontal_flips(X, rng):
    """Each 28x28 image of X (B, 784) mirrored left-right with probability 1/2."""
    flip = rng.random(len(X)) < 0.5
    if flip.any():
        X = X.copy()
        side = int(round(X.shape[1] ** 0.5))
        X[flip] = X[flip].reshape(-1, side, side)[:, :, ::-1].reshape(int(flip.sum()), -1)
    return X


def _run_training(trainer, args, announce: bool = True) -> int:
    """Run (or resume) a Trainer, printing one line per epoch (and, with ``announce``, the files written);
    user errors become one-line UsageErrors."""
    from .train.trainer import RunError

    def report(record):
        print("epoch " + str(record["epoch"]) + ": " + ", ".join(
            f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")) + f" ({record['seconds']:.1f} s)",
            flush=True)

    trainer.on_epoch = report
    try:
        history = trainer.run(resume=args.resume)
    except CircuitError as err:
        raise CircuitError(f"{args.out}: {err}") from None
    except (RunError, ValueError) as err:
        raise UsageError(args.out, str(err).removeprefix(f"{args.out}/")) from None
    if not announce:
        return 0
    if trainer.epochs_run:
        print(f"wrote {args.out}: metrics.json, checkpoint.h5, curves.png" + (", trained.cir" if trainer.write_netlist else ""))
    else:
        print(f"{args.out}: the run already holds {len(history)} epochs (--epochs {args.epochs}): nothing to do")
    return 0


# ---------------------------------------------------------------------------------------------- cluster
def _cluster(name: str):
    """The function ``name`` of resnet_sim/cluster/commands.py (sweep, mc), imported when called."""

    def call(arg):
        from .cluster import commands

        return getattr(commands, name)(arg)
    return call


# ---------------------------------------------------------------------------------------------- registry
# name -> (help, add_arguments(parser), run(args) -> exit status)
COMMANDS = {
    "op": ("DC operating point of a netlist", _op_arguments, _op),
    "compile-relu": ("compile a ReLU network (MODEL.npz) into a netlist", _compile_relu_arguments, _compile_relu),
    "spice": ("compare with ngspice: answers and timings", _spice_arguments, _spice),
    "train": ("train a netlist's .trainable elements with equilibrium propagation", _train_arguments, _train),
    "drn": ("train a published deep resistive network on MNIST or Fashion-MNIST", _family_arguments("drn"),
            _family("drn")),
    "hopfield": ("train a published deep Hopfield network on MNIST or Fashion-MNIST", _family_arguments("hopfield"),
                 _family("hopfield")),
    "pcn": ("train a predictive coding network (EP or inference learning) on MNIST or Fashion-MNIST",
            _family_arguments("pcn"), _family("pcn")),
    "demo": ("train a small DRN on the MNIST sample shipped with the package", _demo_arguments, _demo),
    "sweep": ("train every point of a grid of options, on a Dask cluster", _cluster("sweep_arguments"),
              _cluster("sweep")),
    "mc": ("a trained circuit under seeded device-variability draws, on a Dask cluster", _cluster("mc_arguments"),
           _cluster("mc")),
}


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``resnet-sim CMD: error: ...``), exit status 2, no usage dump."""

    def error(self, message):
        self.exit(USER_ERROR, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command; with ``command``, only that one gets its arguments (the others are
    still listed): adding a sub-command's arguments may import what it needs (drn's choices import Numba),
    which `resnet-sim op` on a small netlist should not pay for."""
    parser = _Parser(prog="resnet-sim", description="Exact DC simulation of ideal resistive networks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command in (None, name):
            add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    """Run ``resnet-sim`` with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # the top level has no other options
    try:
        args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    except SystemExit as stop:  # --help, or a one-line usage error (exit status 2)
        return stop.code
    try:
        return args.run(args)
    except (NetlistError, CircuitError, UsageError) as err:
        print(str(err).splitlines()[0] if str(err) else type(err).__name__, file=sys.stderr)
        return USER_ERROR
    except OSError as err:
        print(f"{err.filename or args.command}: {err.strerror or err}", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
