"""The trainer: epochs of mini-batch EP (or exact-gradient) training of any energy model, with metrics,
atomic checkpoints and bit-for-bit resumption.

Per epoch: the training set is shuffled by the run's seeded generator; per batch the estimator returns
ĝ and the free state, the optimiser proposes θ, the device models program the conductances (projection
onto their bounds included). Training metrics are those of the free phases during the epoch (θ moving);
test metrics are evaluated on the test split with the epoch's final θ. Then ``RUNDIR`` gets
``checkpoint.h5`` (atomic), ``metrics.json`` (atomic) and ``curves.png``; at the end of the run,
``trained.cir`` (the netlist with the trained values; unless ``write_netlist`` is off).

The generator (shuffling, programming noise, stochastic rounding, augmentation) and every state array go
into the checkpoint, so a run stopped after any epoch and resumed gives the same θ and metrics as one
that was never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import remove_stale, write_text_atomic
from . import checkpoint
from .devices import DeviceConfig, Devices
from .estimators import (VARIANTS, DualPropagation, EquilibriumPropagation, ExactGradient, InferenceLearning,
                         check_beta, check_variant)
from .optim import SCHEDULES, SGD, Schedule

__all__ = ["TrainConfig", "Trainer", "RunError", "fit", "ESTIMATORS"]

ESTIMATORS = ("ep", "exact", "il", "dp")
CHECKPOINT, METRICS, CURVES, NETLIST = "checkpoint.h5", "metrics.json", "curves.png", "trained.cir"
# beta="auto": this fraction of the largest negative nudge the outputs' stage takes while convex
AUTO_BETA_FRACTION = 0.1
# the device models' random stream is default_rng([seed, DEVICE_STREAM]), independent of default_rng(seed)
DEVICE_STREAM = 1


class RunError(ValueError):
    """A run that cannot start or resume as asked (RUNDIR in use, a checkpoint of another run)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a run (see docs/training.md). ``beta`` None: ``AUTO_BETA_FRACTION`` of the model's
    convexity limit at the start (recorded in the checkpoint). ``group_lr``: ((group, η), ...).
    ``init_jitter`` f: each trainable conductance starts at g (1 + f u), u ~ U(-1, 1) (seeded)."""

    epochs: int = 10
    batch_size: int = 4
    lr: float = 0.01
    group_lr: tuple = ()
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    gamma: float = 0.99
    beta: float | None = None
    variant: str = "centered"
    estimator: str = "ep"
    seed: int = 0
    init_jitter: float = 0.0
    target_levels: tuple = (0.0, 1.0)
    devices: DeviceConfig = field(default_factory=DeviceConfig)
    eval_batch: int = 1000

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a finite number > 0, got {self.lr}")
        if self.beta is not None:
            check_beta(self.beta)
        check_variant(self.variant)
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not (0 <= self.init_jitter < 1):
            raise ValueError(f"init jitter must be in [0, 1), got {self.init_jitter}")

    def identity(self) -> dict:
        """Everything but the number of epochs, as JSON values: what a resumed run must share."""
        d = dataclasses.asdict(self)
        d.pop("epochs")
        d.pop("eval_batch")
        table = self.devices.table
        d["devices"]["table"] = None if table is None else [table.conductance.tolist(), table.up.tolist(),
                                                             table.down.tolist()]
        return json.loads(json.dumps(d))


class Trainer:
    """Trains ``model`` (an energy model) on ``data`` (a TrainingData) with ``config``, writing into ``out``
    (a folder, or None for no files). ``identity``: a JSON dict describing the model (e.g. its netlist text),
    which a resumed run must match. ``augment(X, rng) -> X``: an optional per-batch transform of the inputs.
    ``write_netlist``: write trained.cir, ``model.circuit(**netlist_options)``, at the end of the run."""

    def __init__(self, model, data, config: TrainConfig, out=None, identity: dict | None = None, progress: bool = True,
                 augment=None, write_netlist: bool = True, netlist_options: dict | None = None):
        self.model, self.data, self.config = model, data, config
        self.out = None if out is None else Path(out)
        self.identity = dict(identity or {})
        self.progress, self.augment, self.write_netlist = progress, augment, write_netlist
        self.netlist_options = dict(netlist_options or {})
        lay = model.layout
        self.n_g = lay.n_conductances
        self.optimiser = SGD(lay.group, config.lr, dict(config.group_lr), config.momentum, config.weight_decay,
                             Schedule(config.schedule, config.gamma, config.epochs))
        self.history: list[dict] = []
        self.on_epoch = None  # called with each epoch's record once it is saved

    # ---------------------------------------------------------------- set-up
    def _start(self, resume: bool) -> int:
        """Initialise (or restore) θ, optimiser, devices, generator and beta; returns the first epoch to run."""
        cfg, lay = self.config, self.model.layout
        needs = {"il": ("clamped", "inference learning needs a model with a clamped phase (a PCN)"),
                 "dp": ("dual_propagation", "dual propagation needs a model whose free state is a feed-forward pass "
                                            "(a PCN)")}.get(cfg.estimator)
        if needs and not hasattr(self.model, needs[0]):
            raise ValueError(f"{needs[1]}, not a {type(self.model).__name__}")
        state = None
        if self.out is not None:
            path = self.out / CHECKPOINT
            if resume:
                state = checkpoint.load(path)
                remove_stale(self.out, CHECKPOINT)
            elif path.exists():
                raise RunError(f"{self.out}: already holds a training run ({CHECKPOINT}); pass --resume to "
                               "continue it or choose another --out folder")
        elif resume:
            raise RunError("resume needs an output folder")
        self.rng = np.random.default_rng(cfg.seed)  # shuffling (and the augment transform)
        # device draws (bounds, start jitter, rounding, noise) from their own stream: the models draw their
        # initial weights from default_rng(seed), whose numbers this one would repeat (a weight drawn high
        # would always round down)
        self.device_rng = np.random.default_rng([cfg.seed, DEVICE_STREAM])
        self.devices = Devices(cfg.devices, lay.lower[: self.n_g], lay.upper[: self.n_g], self.device_rng,
                               label=lambda i: f"card {lay.group_names[lay.group[i]]!r}")
        if state is None:
            theta = self.model.theta
            if cfg.init_jitter:
                theta[: self.n_g] *= 1.0 + cfg.init_jitter * self.device_rng.uniform(-1.0, 1.0, self.n_g)
            self.devices.initial(theta[: self.n_g], self.device_rng)
            self.model.set_theta(theta)
            self.beta = cfg.beta if cfg.beta is not None else AUTO_BETA_FRACTION * self.model.max_negative_beta()
            self._check_beta()
            self.theta_per_epoch = [self.model.theta.astype(np.float32)]
            self.per_epoch_complete = True
            return 0
        self._restore(state)
        return len(self.history)

    def _run_identity(self) -> dict:
        return {"model": self.identity, "data": self.data.fingerprint, "config": self.config.identity()}

    def _restore(self, state: dict) -> None:
        attrs, mine = state["attrs"], self._run_identity()
        for key, what in (("model", "another model (netlist)"), ("data", "other data"), ("config", "other options")):
            if attrs.get(key) != mine[key]:
                detail = ""
                if key == "config":
                    diff = [k for k in mine[key] if attrs.get(key, {}).get(k) != mine[key][k]]
                    detail = f" ({diff[0]} was {attrs[key].get(diff[0])!r}, now {mine[key][diff[0]]!r})" if diff else ""
                raise RunError(f"{self.out / CHECKPOINT}: cannot resume: the checkpoint's run used {what}{detail}")
        theta = state["theta"]
        if theta.shape != (self.model.layout.size,):
            raise RunError(f"{self.out / CHECKPOINT}: the checkpoint holds {theta.shape[0]} parameters, the model "
                           f"{self.model.layout.size}")
        self.model.set_theta(theta)
        self.optimiser.load_state(state["arrays"])
        self.devices.load_state(state["arrays"])
        self.rng.bit_generator.state = attrs["rng"]
        self.device_rng.bit_generator.state = attrs["device_rng"]
        self.beta = attrs["beta"]
        self.history = attrs["history"]
        self.theta_per_epoch = list(state["theta_per_epoch"])
        self.per_epoch_complete = state["per_epoch_complete"]

    # ---------------------------------------------------------------- the loop
    def run(self, resume: bool = False) -> list[dict]:
        """Train up to ``config.epochs`` epochs in all (continuing a resumed run); returns the history
        (one dict per epoch, as in metrics.json)."""
        first = self._start(resume)
        self.epochs_run = max(0, self.config.epochs - first)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        estimator = {"ep": lambda: EquilibriumPropagation(self.beta, cfg.variant), "exact": ExactGradient,
                     "il": InferenceLearning, "dp": lambda: DualPropagation(self.beta)}[cfg.estimator]()
        for epoch in range(first, cfg.epochs):
            start = time.perf_counter()
            train = self._epoch(estimator, epoch)
            record = {"epoch": epoch + 1, **train}
            if self.data.test is not None:
                record.update(self.evaluate(self.data.test, prefix="test_"))
            record.update(getattr(self.model, "pop_stats", dict)())
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            self._save()
            if self.on_epoch is not None:
                self.on_epoch(record)
            self._check_beta()
        if self.out is not None and self.write_netlist and (self.epochs_run or not (self.out / NETLIST).exists()):
            from ..netlist import write_netlist

            write_text_atomic(self.out / NETLIST, write_netlist(self.model.circuit(**self.netlist_options)))
        return self.history

    def _check_beta(self) -> None:
        """ValueError when θ has moved so that the run's negative nudge is no longer convex."""
        cfg = self.config
        if cfg.estimator == "ep" and VARIANTS[cfg.variant][0] < 0:
            limit = self.model.max_negative_beta()
            if self.beta >= limit:
                raise ValueError(f"beta = -{self.beta:g} S makes the nudged energy non-convex (the {cfg.variant} "
                                 f"variant nudges by -beta; the outputs take |beta| < {limit:.6g} S)")

    def _epoch(self, estimator, epoch: int) -> dict:
        cfg, split, model = self.config, self.data.train, self.model
        order = self.rng.permutation(len(split))
        bar = _progress(len(order), self.progress, f"epoch {epoch + 1}/{cfg.epochs}")
        theta = model.theta
        loss_sum = wrong = seen = unconverged = 0
        for lo in range(0, len(order), cfg.batch_size):
            rows = order[lo: lo + cfg.batch_size]
            X, Y = split.x[rows], split.targets[rows]
            if self.augment is not None:
                X = self.augment(X, self.rng)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", _convergence_warning())
                grad, free = estimator(model, X, Y)
            unconverged += sum(issubclass(w.category, _convergence_warning()) for w in caught)
            out = model.outputs(free)
            loss_sum += 0.5 * float(np.sum((out - Y) ** 2))
            if split.labels is not None:
                wrong += int(np.count_nonzero(np.argmax(out, axis=1) != split.labels[rows]))
            seen += len(rows)
            old = None if self.devices.ideal else theta[: self.n_g].copy()
            self.optimiser.step(theta, grad, epoch)
            self.devices.program(theta[: self.n_g], old, self.device_rng)
            model.set_theta(theta)
            if bar is not None:
                bar.update(len(rows))
                shown = {"loss": f"{loss_sum / seen:.4g}"}
                if split.labels is not None:
                    shown["error"] = f"{wrong / seen:.2%}"
                bar.set_postfix(shown, refresh=False)
        if bar is not None:
            bar.close()
        record = {"train_loss": loss_sum / seen}
        if split.labels is not None:
            record["train_error"] = wrong / seen
        if unconverged:
            record["unconverged_solves"] = unconverged
        return record

    def evaluate(self, split, prefix: str = "") -> dict:
        """Mean loss (V²) and, for labels, error fraction of the free states on ``split`` (batches of
        ``eval_batch``)."""
        loss_sum, wrong = 0.0, 0
        for lo in range(0, len(split), self.config.eval_batch):
            X = split.x[lo: lo + self.config.eval_batch]
            out = self.model.outputs(self.model.free(X))
            loss_sum += 0.5 * float(np.sum((out - split.targets[lo: lo + len(X)]) ** 2))
            if split.labels is not None:
                wrong += int(np.count_nonzero(np.argmax(out, axis=1) != split.labels[lo: lo + len(X)]))
        record = {prefix + "loss": loss_sum / len(split)}
        if split.labels is not None:
            record[prefix + "error"] = wrong / len(split)
        return record

    # ---------------------------------------------------------------- files
    def _save(self) -> None:
        theta = self.model.theta
        size = theta.size * 4
        if self.per_epoch_complete and (len(self.theta_per_epoch) + 1) * size <= checkpoint.PER_EPOCH_MAX_BYTES:
            self.theta_per_epoch.append(theta.astype(np.float32))
        else:
            self.per_epoch_complete = False
        if self.out is None:
            return
        attrs = {**self._run_identity(), "rng": self.rng.bit_generator.state,
                 "device_rng": self.device_rng.bit_generator.state, "beta": self.beta,
                 "history": self.history}
        checkpoint.save(self.out / CHECKPOINT, theta=theta,
                        arrays={**self.optimiser.state(), **self.devices.state()}, attrs=attrs,
                        theta_per_epoch=np.stack(self.theta_per_epoch), per_epoch_complete=self.per_epoch_complete)
        write_text_atomic(self.out / METRICS, json.dumps({"epochs": self.history}, indent=1) + "\n")
        from ..plots import training_curves

        training_curves(self.history, self.out / CURVES)


def _progress(total: int, enabled: bool, description: str):
    """A tqdm bar counting examples (its rate: examples/s), or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="ex", unit_scale=True, leave=False, mininterval=0.5)


def _convergence_warning():
    from ..solve import ConvergenceWarning

    return ConvergenceWarning


def fit(circuit, data, out=None, resume: bool = False, progress: bool = False, method: str = "auto",
        tol: float = 1e-9, **options):
    """Train a circuit (``.inputs``, ``.outputs``, ``.trainable``) on ``data`` (a TrainingData, a dict of
    arrays, or an .npz / .h5 path; see ``datasets``); ``options`` are TrainConfig fields. Returns
    (the trained Circuit, the history: one dict per epoch). ``out``: a RUNDIR to write (and resume from)."""
    from ..compile import compile
    from ..netlist import write_netlist
    from .circuit_model import CircuitModel
    from .datasets import TrainingData, load_training_data, training_data

    config = TrainConfig(**options)
    model = CircuitModel(compile(circuit), method=method, tol=tol)
    if not isinstance(data, TrainingData):
        load = training_data if isinstance(data, dict) else load_training_data
        data = load(data, model.n_inputs, model.n_outputs, config.target_levels)
    identity = {"netlist": write_netlist(circuit)}
    history = Trainer(model, data, config, out=out, identity=identity, progress=progress).run(resume=resume)
    return model.circuit(), history
