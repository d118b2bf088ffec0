"""SPICE in the loop (issue 16, item 8): the same EP training with equilibria from ngspice and from resnet_sim.

    python benchmarks/training.py                          # the default run, a few minutes
    python benchmarks/training.py --netlists xor,random --steps 50 --repeats 5
    python benchmarks/training.py --drn-steps 10 --drn-op-steps 2 --drn-ours-steps 15000   # 15000 steps: a DRN-XS epoch
    python benchmarks/training.py --netlists xor --out /tmp/x    # results elsewhere

Each netlist is trained by rs.train's Trainer several times with one configuration (same seed, so the same
batches; centered EP with the same β; the same learning rate and optimiser): with equilibria from ngspice
(``resnet_sim.spice.SpiceModel``: one ngspice process per batch solves its free, −β and +β phases; the θ,
∂E/∂θ and update code is rs.train's) and from resnet_sim (``CircuitModel``, the general path, method
"auto", tol 1e-9, Numba on one thread like ngspice). ngspice set-ups (``resnet_sim.spice.batch``): "dc",
one DC sweep per batch over the batch's points, and "op", ``alter`` + ``op`` per phase in a ``.control``
loop; ngspice's reltol is 1e-9 (the bridge's 1e-6 lets Newton stop tens of mV short on the random netlist:
``--reltols`` runs the dc set-up of xor and random at the others too and reports the equilibria's gap) and
its abstol 1e-12 A (the bridge's 1e-15 A makes some points of the random netlist fail to converge). A training step is timed from the start of one batch's free phase to the start of the next (all
phases, the EP estimate, the optimiser step); seconds per training sample = median step / B. resnet_sim's
steps are timed on ``--ours-steps`` steps, ``--repeats`` times, after an untimed warm-up run.

Netlists: ``xor`` (netlists/xor.cir on netlists/xor.npz, the CLI's defaults), ``random`` (a 150-node random
graph with ideal diodes between free nodes, built here from a seed; its targets come from a teacher: the
same graph with perturbed conductances), ``drn-xs`` (``rs.models.drn("xs").circuit()`` on MNIST with the
preset's β, learning rate and batch size; ngspice on a few steps only, the per-epoch figures extrapolated).

Writes benchmarks/results/training_spice.json and the '## SPICE in the loop' section of
benchmarks/results/training.md (other sections of that file are left as they are).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import resnet_sim as rs  # noqa: E402
from benchmarks.families import random_graph_circuit  # noqa: E402
from resnet_sim import spice  # noqa: E402
from resnet_sim.circuit import TrainableSpec  # noqa: E402
from resnet_sim.spice.compare import time_process  # noqa: E402
from resnet_sim.spice.run import ngspice_binary  # noqa: E402
from resnet_sim.train.circuit_model import CircuitModel  # noqa: E402
from resnet_sim.train.datasets import training_data  # noqa: E402
from resnet_sim.train.trainer import TrainConfig, Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HEADING = "## SPICE in the loop"
EPOCH = 60_000  # MNIST training samples: one DRN-XS epoch
# ngspice's own timing figures (.options acct / rusage), seconds: its parse of the deck (the expansion time
# includes the loading time; ngspice's frontend/inp.c)
PARSE_STATS = ("subckt_and_param_expansion_time", "netlist_parsing_time")


# ---- netlists ----------------------------------------------------------------------------------------
def random_netlist(n_nodes: int = 150, seed: int = 0, n_inputs: int = 6, diode_fraction: float = 0.1):
    """``benchmarks.families.random_graph_circuit`` made trainable: its first ``n_inputs`` sources are the
    ``.inputs`` (the other two stay as fixed biases), two seeded nodes not driven by a source are the
    ``.outputs``, every resistor is trainable in [1e-5, 0.1] S."""
    c = random_graph_circuit(n_nodes, degree=4.0, seed=seed, n_sources=n_inputs + 2, diode_fraction=diode_fraction)
    c.title = (f"random graph, {n_nodes} nodes, {len(c['D'])} ideal diodes between free nodes, {n_inputs} inputs, "
               f"2 outputs (seed {seed})")
    c.inputs = [f"vs{k}" for k in range(n_inputs)]
    driven = set(c["R"].nodes[-(n_inputs + 2):, 1].tolist())  # the nodes the sources' 1 kohm resistors drive
    free = [i for i in range(1, n_nodes + 1) if i not in driven]
    c.outputs = [c.node_names[i] for i in np.random.default_rng(seed + 1).choice(free, 2, replace=False)]
    c.trainable = [TrainableSpec(("r*",), gmin=1e-5, gmax=0.1)]
    return c


def random_data(circuit, n_train: int, n_test: int, seed: int = 2, spread: float = 0.7):
    """Teacher-student data: inputs uniform in [-1, 1] V; targets the outputs of the same circuit with each
    trainable conductance multiplied by exp(N(0, ``spread``)) (seeded)."""
    problem = rs.compile(circuit)
    rng = np.random.default_rng(seed)
    theta = rs.train.parameters(problem)
    teacher = rs.train.with_parameters(problem, theta * np.exp(rng.normal(0.0, spread, theta.shape)))
    X = rng.uniform(-1.0, 1.0, (n_train + n_test, len(circuit.inputs)))
    Y = rs.solve(teacher, inputs=X).outputs
    return {"x_train": X[:n_train], "y_train": Y[:n_train], "x_test": X[n_train:], "y_test": Y[n_train:]}


def drn_xs_preset():
    """DRN-XS's published preset on MNIST (``preset("drn", "xs")``; ``drn.preset("xs")`` before the presets of
    all model families moved to resnet_sim.models.presets)."""
    try:
        from resnet_sim.models.presets import preset
    except ImportError:
        from resnet_sim.models.drn import preset

        return preset("xs")
    return preset("drn", "xs")


def case(name: str, args) -> dict:
    """{circuit, arrays (x_train, y_train, ...), config (TrainConfig fields), steps per run kind, about}."""
    if name == "xor":
        circuit = rs.read_netlist(ROOT / "netlists" / "xor.cir")
        with np.load(ROOT / "netlists" / "xor.npz") as f:
            arrays = {k: f[k] for k in f.files}
        config = {"batch_size": 4, "lr": 0.01, "beta": None}
        about = "netlists/xor.cir on netlists/xor.npz; the CLI's defaults (B = 4, lr 0.01, beta auto)"
        steps = (args.steps, args.op_steps, args.ours_steps)
    elif name == "random":
        circuit = random_netlist(seed=args.seed)
        arrays = random_data(circuit, 200, 100, seed=args.seed + 2)
        config = {"batch_size": 4, "lr": 1e-4, "beta": None}
        about = (f"{circuit.title}; benchmarks.families.random_graph_circuit(150, degree=4, seed={args.seed}, "
                 "n_sources=8, diode_fraction=0.1) made trainable here; teacher-student data (200 train, 100 test)")
        steps = (args.steps, args.op_steps, args.ours_steps)
    elif name == "drn-xs":
        drn = rs.models.drn("xs")
        circuit = drn.circuit()
        p = drn_xs_preset()
        n = max(args.drn_steps, args.drn_op_steps, args.drn_ours_steps) * p.batch_size
        images, labels = rs.data.load_dataset("mnist", "train", args.data)
        arrays = {"x_train": drn.source_values(images[:n]), "y_train": labels[:n]}
        fast = {"model": lambda: rs.models.drn("xs"), "arrays": {"x_train": images[:n], "y_train": labels[:n]}}
        lrs = (*p.lr_weights, *p.lr_biases)  # one per .trainable card: w1_*, w2_*, b1_*, b2_*
        config = {"batch_size": p.batch_size, "lr": lrs[0], "group_lr": tuple(enumerate(lrs)), "beta": p.beta}
        about = (f"rs.models.drn('xs').circuit() (seed 0), the first {n} MNIST training images; preset: B = "
                 f"{p.batch_size}, beta {p.beta} S, lr {lrs[0]}")
        steps = (args.drn_steps, args.drn_op_steps, args.drn_ours_steps)
    else:
        raise SystemExit(f"unknown netlist {name!r}; choose from xor, random, drn-xs")
    return {"name": name, "circuit": circuit, "arrays": arrays, "config": config, "about": about,
            "steps": dict(zip(("dc", "op", "ours"), steps)), "fast": fast if name == "drn-xs" else None,
            "single_runs": args.drn_single_runs if name == "drn-xs" else args.single_runs, "timeout": args.timeout}


def subset(c: dict, steps: int, arrays: dict | None = None):
    """TrainingData of the first ``steps`` batches' worth of training samples of ``arrays`` (``c``'s by default;
    no test split)."""
    arrays, n = arrays or c["arrays"], steps * c["config"]["batch_size"]
    if len(arrays["x_train"]) < n:
        raise SystemExit(f"{c['name']}: {steps} steps need {n} training samples, the data has {len(arrays['x_train'])}")
    x = arrays["x_train"][:n]
    return training_data({"x_train": x, "y_train": arrays["y_train"][:n]}, x.shape[1], len(c["circuit"].outputs))


# ---- training runs -----------------------------------------------------------------------------------
class Stamped:
    """An energy model that records time.perf_counter() and time.process_time() at each ``free`` call (the
    start of a training step) and forwards everything else to ``model``; with ``keep``, also each step's θ,
    inputs and states."""

    def __init__(self, model, keep: bool = False):
        self.model, self.keep, self.stamps, self.cpu_stamps, self.steps = model, keep, [], [], []

    def free(self, X):
        self.stamps.append(time.perf_counter())
        self.cpu_stamps.append(time.process_time())
        state = self.model.free(X)
        if self.keep:
            self.steps.append({"theta": np.array(self.model.theta), "X": X, "states": [(0.0, None, state)]})
        return state

    def nudged(self, X, Y, beta, start):
        state = self.model.nudged(X, Y, beta, start)
        if self.keep:
            self.steps[-1]["states"].append((beta, Y, state))
        return state

    def __getattr__(self, name):
        return getattr(self.model, name)


def train(model, data, c: dict, keep: bool = False) -> dict:
    """One epoch over ``data`` with ``c``'s configuration: θ before and after, step seconds (wall, and CPU of
    this process), history, β (and with ``keep`` the steps' θ, inputs and states)."""
    stamped = Stamped(model, keep)
    trainer = Trainer(stamped, data, TrainConfig(epochs=1, **c["config"]), progress=False, write_netlist=False)
    theta0 = np.array(model.theta)  # a copy: a fast path's theta may be its own array, updated in place
    history = trainer.run()
    steps = np.diff([*stamped.stamps, time.perf_counter()])
    cpu = np.diff([*stamped.cpu_stamps, time.process_time()])
    return {"theta0": theta0, "theta": np.array(model.theta), "step_s": steps.tolist(), "step_cpu_s": cpu.tolist(),
            "history": history,
            "beta": trainer.beta, "load": os.getloadavg()[0], "steps": stamped.steps}


def equilibrium_gap(problem, steps: list) -> float:
    """Max |V_ngspice − V_resnet_sim| (volts) over every node, sample and phase of a run's steps, resnet_sim
    solving each step's circuit (its θ) to tol 1e-11."""
    worst = 0.0
    for step in steps:
        p = rs.train.with_parameters(problem, step["theta"])
        for beta, Y, state in step["states"]:
            op = rs.solve(p, inputs=step["X"], beta=beta, targets=Y, tol=1e-11)
            n = state.potentials.shape[0]
            worst = max(worst, float(np.nanmax(np.abs(op.potentials[:n] - state.potentials))))
    return worst


def theta_gap(a: dict, b: dict) -> dict:
    """How far two runs' θ are apart: max |θ_a − θ_b| / max |θ_b| and the same for their updates θ − θ0."""
    da, db = a["theta"] - a["theta0"], b["theta"] - b["theta0"]
    return {"theta": float(np.max(np.abs(a["theta"] - b["theta"])) / np.max(np.abs(b["theta"]))),
            "update": float(np.max(np.abs(da - db)) / np.max(np.abs(db))),
            "start": float(np.max(np.abs(a["theta0"] - b["theta0"])) / np.max(np.abs(b["theta0"])))}


def spice_split(run: dict, records: list, batch: int) -> dict:
    """Median seconds per sample of each part of an ngspice step: deck writing here; the process: outside
    ngspice's own clock (its start-up and exit), its parse of the deck, its analysis, the rest inside its
    clock (control commands, writing the raw file); reading its raw file here; the rest of the step here (EP
    estimate, optimiser); and the step's CPU seconds (this process's and ngspice's)."""
    parts = {k: [] for k in ("deck", "outside", "parse", "analysis", "inside_rest", "read", "update", "step",
                             "step_cpu")}
    for step, cpu, r in zip(run["step_s"], run["step_cpu_s"], records):
        elapsed = r["stats"].get("total_elapsed_time", np.nan)
        parse = sum(r["stats"].get(k, 0.0) for k in PARSE_STATS)
        analysis = r["stats"].get("total_analysis_time", 0.0)
        values = {"deck": r["deck"], "outside": r["wall"] - elapsed, "parse": parse, "analysis": analysis,
                  "inside_rest": elapsed - parse - analysis, "read": r["read"],
                  "update": step - r["deck"] - r["wall"] - r["read"], "step": step, "step_cpu": cpu + r["cpu"]}
        for k, v in values.items():
            parts[k].append(v / batch)
    out = {k: statistics.median(v) for k, v in parts.items()}
    out["iterations_per_point"] = statistics.median(r["stats"].get("total_iterations", np.nan) / (r["samples"] *
                                                    r["phases"]) for r in records)
    out["raw_bytes_per_sample"] = statistics.median(r["raw_bytes"] / r["samples"] for r in records)
    return out


def ngspice_startup(repeats: int = 5) -> float:
    """Median wall seconds of an ngspice process on netlists/divider.cir (start-up, a 3-element .op, exit)."""
    deck = spice.export(rs.read_netlist(ROOT / "netlists" / "divider.cir"), spice.SpiceOptions(acct=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "divider.cir")
        path.write_text(deck.text)
        return statistics.median(w for w, _ in time_process([ngspice_binary(), "-b", path], repeats))


def fixed_and_marginal(c: dict, run: dict, records: list, data, runs: int, options) -> dict:
    """ngspice's process CPU seconds (user + system: less shaken by the machine's other work than wall time) as
    a part per process plus a part per sample: ``runs`` processes on the first training sample alone (θ at
    the start, the same three phases) against the median of the run's B-sample processes."""
    B = c["config"]["batch_size"]
    circuit = rs.train.circuit_with_parameters(c["circuit"], run["theta0"])
    betas = (0.0, -run["beta"], run["beta"])
    deck = spice.batch_deck(circuit, data.train.x[:1], betas, data.train.targets[:1], options=options)
    single = [spice.run_batch(deck, timeout=c["timeout"]).cpu for _ in range(runs)]
    one, full = statistics.median(single), statistics.median(r["cpu"] for r in records)
    marginal = (full - one) / (B - 1) if B > 1 else float("nan")
    return {"single_sample_process_cpu_s": single, "batch_process_cpu_s": full, "per_process_s": one - marginal,
            "per_sample_s": marginal}


def benchmark(c: dict, args) -> dict:
    circuit, B = c["circuit"], c["config"]["batch_size"]
    problem = rs.compile(circuit)
    counts = circuit.n_elements()
    row = {"name": c["name"], "about": c["about"], "title": circuit.title, "nodes": circuit.n_nodes - 1,
           "elements": sum(counts.values()), "diodes": counts["D"], "n_theta": rs.train.layout(problem).size,
           "config": dict(c["config"]), "steps": c["steps"], "runs": {}, "ours": {}}
    print(f"{c['name']}: {row['nodes']} nodes, {row['elements']} elements, {row['n_theta']} parameters", flush=True)
    # resnet_sim's energy models: the general path, and for DRN-XS also its fast path (data: the images)
    paths = {"general": (lambda: CircuitModel(rs.compile(circuit)), c["arrays"])}
    if c["fast"]:
        paths["fast"] = (c["fast"]["model"], c["fast"]["arrays"])
    for make, arrays in paths.values():
        train(make(), subset(c, 1, arrays), c)  # warm-up: Numba compilation, caches
    reltols = [float(v) for v in args.reltols.split(",")]
    for mode, reltol in [("dc", reltols[0]), ("op", reltols[0]), *(("dc", r) for r in reltols[1:] if c["fast"] is None)]:
        steps = c["steps"][mode]
        if not steps:
            continue
        data = subset(c, steps)
        options = spice.SpiceOptions(reltol=reltol, abstol=args.abstol, diode_n=args.diode_n)
        model = spice.SpiceModel(rs.compile(circuit), mode=mode, options=options, timeout=args.timeout)
        key = mode if reltol == reltols[0] else f"{mode} reltol={reltol:g}"
        try:
            theirs = train(model, data, c, keep=True)
        except spice.SpiceError as err:
            row["runs"][key] = {"steps": steps, "reltol": reltol,
                                "error": " / ".join(line.strip() for line in str(err).splitlines()[:3])}
            print(f"  ngspice {key}: {row['runs'][key]['error']}", flush=True)
            continue
        ours = {path: train(make(), subset(c, steps, arrays), c) for path, (make, arrays) in paths.items()}
        split = spice_split(theirs, model.records, B)
        run = row["runs"][key] = {
            "steps": steps, "reltol": reltol, "beta": theirs["beta"], "spice_per_sample": split["step"],
            "split": split, "max_dv": equilibrium_gap(problem, theirs["steps"]),
            "theta_gap": {path: theta_gap(theirs, o) for path, o in ours.items()},
            "train_loss": {"ngspice": theirs["history"][0]["train_loss"],
                           **{path: o["history"][0]["train_loss"] for path, o in ours.items()}},
            "spice_step_s": theirs["step_s"], "load": theirs["load"],
            "records": [{**{k: v for k, v in r.items() if k != "stats"}, "stats": {k: v for k, v in r["stats"].items() if v}}
                        for r in model.records]}
        if key == "dc":
            run["per_process"] = fixed_and_marginal(c, theirs, model.records, data, c["single_runs"], options)
        print(f"  ngspice {key}: {split['step']:.4g} s/sample over {steps} steps; max |dV| {run['max_dv']:.2e} V; "
              f"theta gaps {run['theta_gap']}", flush=True)
    for path, (make, arrays) in paths.items():
        data, steps, cpu = subset(c, c["steps"]["ours"], arrays), [], []
        for _ in range(args.repeats):
            run = train(make(), data, c)
            steps, cpu = steps + run["step_s"], cpu + run["step_cpu_s"]
        row["ours"][path] = {"per_sample": statistics.median(steps) / B, "cpu_per_sample": statistics.median(cpu) / B,
                             "timed_steps": len(steps),
                             "step_s_quartiles": np.percentile(steps, [25, 50, 75]).tolist()}
        print(f"  resnet_sim {path}: {row['ours'][path]['per_sample']:.4g} s/sample ({len(steps)} steps)", flush=True)
    for run in row["runs"].values():
        if "error" in run:
            continue
        run["ratio"] = {path: run["spice_per_sample"] / o["per_sample"] for path, o in row["ours"].items()}
        run["ratio_cpu"] = {path: run["split"]["step_cpu"] / o["cpu_per_sample"] for path, o in row["ours"].items()}
        run["ratio_analysis_only"] = {path: run["split"]["analysis"] / o["per_sample"] for path, o in row["ours"].items()}
        if "per_process" in run:
            run["ratio_marginal"] = {path: run["per_process"]["per_sample_s"] / o["per_sample"]
                                     for path, o in row["ours"].items()}
    if c["name"] == "random":
        row["learning"] = learning(c, args.random_epochs)
    return row


def learning(c: dict, epochs: int) -> dict:
    """That the random netlist trains: test loss before and after each of ``epochs`` epochs (resnet_sim)."""
    problem = rs.compile(c["circuit"])
    data = training_data(c["arrays"], len(c["circuit"].inputs), len(c["circuit"].outputs))
    before = rs.train.loss(problem, data.test.x, data.test.targets)
    history = Trainer(CircuitModel(problem), data, TrainConfig(epochs=epochs, **c["config"]), progress=False,
                      write_netlist=False).run()
    return {"test_loss_before": before, "test_loss": [r["test_loss"] for r in history]}


# ---- report ------------------------------------------------------------------------------------------
def fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-6:.2g} µs"


def _ok(run: dict | None) -> dict | None:
    """A run, or None where there is none or ngspice failed in it."""
    return run if run and "error" not in run else None


def markdown(result: dict) -> str:
    m, rows = result["machine"], result["netlists"]
    lines = [HEADING, "",
             f"Command: `{result['command']}` (at {result['commit']}"
             f"{', working tree modified' if result['dirty'] else ''}; {result['seconds']:.0f} s in all)", "",
             f"Machine: {m['nproc']} CPUs ({m['cpu']}), shared with other work: `uptime` at start "
             f"`{m['uptime_start']}`, at end `{m['uptime_end']}`. {m['ngspice']}; Python {m['python']}; Numba on "
             "one thread (ngspice uses one).", "",
             "Both runs of a netlist use rs.train's Trainer with one configuration and seed (so the same batches), "
             "centered EP with the same β, the same learning rate and optimiser; θ, ∂E/∂θ and the update are "
             "rs.train's. Only the equilibria differ: ngspice's through `resnet_sim.spice.SpiceModel`, or "
             "resnet_sim's general path (`CircuitModel`, method auto, tol 1e-9; for DRN-XS also its fast path, "
             "`rs.models.drn('xs')`, which has the same θ). A step is timed from the start of a batch's free phase "
             "to the start of the next (the three phases, the EP estimate and the update); s/sample = median step "
             f"/ B. resnet_sim: the median over {result['args']['repeats']} runs of its timed steps, after an "
             "untimed warm-up run.", "",
             "ngspice set-ups (`resnet_sim.spice.batch`), one ngspice process per batch, its deck written with the "
             "batch's θ. **dc** (the faster; the headline figures): one `.dc` sweep over the batch's B × 3 points "
             "(free, −β, +β per sample); the input sources that change between samples become behavioural "
             "sources `pwl(v(k), ...)` of the point index, each output gets a behavioural current source "
             "β(k)·(v(o) − y(k)); ngspice sets the circuit up and orders its matrix once per batch and starts each "
             "point from the previous one. **op**: a `.control` loop of `alter` (the inputs; a nudging resistor "
             "1/β to a source at the target: 1e300 Ω for β = 0, negative for −β, which ngspice accepts) and `op` "
             "per phase, each point appended to a binary raw file; ngspice sets the circuit up, reorders its "
             "matrix and searches from scratch at every `op` (its `CKTdoJob` resets the circuit for each analysis "
             f"command). Diodes IS = 1e-12 A, N = {result['args']['diode_n']:g}; reltol "
             f"{result['args']['reltols'].split(',')[0]}, vntol 1e-9 V, abstol {result['args']['abstol']:g} A "
             "(`SpiceOptions` has reltol 1e-6, with which ngspice stops Newton tens of mV short on the random "
             "netlist, see the last table, and abstol 1e-15 A, with which it fails to converge at some points of "
             "the random netlist at reltol 1e-9).", "",
             "Seconds per training sample: wall clock (what the machine's other work also slows), and CPU time "
             "(user + system of this process and of ngspice's: steadier on a shared machine).", "",
             "| netlist | nodes | elements | diodes | θ | B | β (S) | ngspice steps dc / op | resnet_sim | ngspice dc "
             "| ngspice op | resnet_sim | ratio dc | ratio op | ngspice dc, CPU | resnet_sim, CPU | ratio dc, CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        dc, op = _ok(r["runs"].get("dc")), _ok(r["runs"].get("op"))
        beta = (dc or op)["beta"] if dc or op else float("nan")
        per_sample = [fmt(run["spice_per_sample"]) if run else "-" for run in (dc, op)]
        for path, o in r["ours"].items():
            ratios = [f"{run['ratio'][path]:.3g}x" if run else "-" for run in (dc, op)]
            cpu = [fmt(dc["split"]["step_cpu"]), f"{dc['ratio_cpu'][path]:.3g}x"] if dc else ["-", "-"]
            lines.append(f"| {r['name']} | {r['nodes']} | {r['elements']} | {r['diodes']} | {r['n_theta']} | "
                         f"{r['config']['batch_size']} | {beta:.3g} | {r['steps']['dc']} / {r['steps']['op']} | "
                         f"{path} path | {per_sample[0]} | {per_sample[1]} | {fmt(o['per_sample'])} | {ratios[0]} | "
                         f"{ratios[1]} | {cpu[0]} | {fmt(o['cpu_per_sample'])} | {cpu[1]} |")
    lines += ["", "Where ngspice's time per sample goes (dc set-up; medians over its steps, per sample): the deck "
              "written here (θ included); the process: outside ngspice's own clock (start-up and exit; a whole "
              f"ngspice run of netlists/divider.cir takes {fmt(result['ngspice_startup_s'])}), its parse of the "
              "deck, its analysis, the rest inside its clock (writing the raw file, control commands); ngspice's "
              "figures are its own, to the millisecond per process; then the raw file read here and the rest of "
              "the step here (EP estimate, optimiser). Then the process's CPU time (user + system, less shaken by "
              "the machine's other work than wall time) as a part per process plus a part per sample (processes "
              "on one sample against the run's B-sample processes): the part per sample is what ngspice would cost "
              "at a very large batch (**extrapolated**). Ratios against resnet_sim's general path at the run's B: "
              "ngspice's analysis alone (no start-up, parse or file I/O), and its CPU part per sample.", "",
              "| netlist | deck (Python) | outside ngspice's clock | parse | analysis | rest inside ngspice | raw "
              "read | EP + update | step | Newton iterations per point | CPU per process | CPU per sample | ratio: "
              "analysis only | ratio: CPU per sample |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        run = _ok(r["runs"].get("dc"))
        if run:
            s, pp = run["split"], run["per_process"]
            # ngspice reports its times to the millisecond per process: 0 is under 1 ms / B per sample
            below = f"< {fmt(1e-3 / r['config']['batch_size'])}"
            own = [fmt(s[k]) if s[k] else below for k in ("parse", "analysis", "inside_rest")]
            analysis_only = f"{run['ratio_analysis_only']['general']:.3g}x" if s["analysis"] else "-"
            lines.append(f"| {r['name']} | {fmt(s['deck'])} | {fmt(s['outside'])} | {own[0]} | {own[1]} | {own[2]} | "
                         f"{fmt(s['read'])} | {fmt(s['update'])} | {fmt(s['step'])} | {s['iterations_per_point']:.3g} | "
                         f"{fmt(pp['per_process_s'])} | {fmt(pp['per_sample_s'])} | {analysis_only} | "
                         f"{run['ratio_marginal']['general']:.3g}x |")
    lines += ["", "The two runs' equilibria and θ after the same steps (same start, same batches): max |dV| = max "
              "|V_ngspice − V_resnet_sim| over every node, sample and phase of the ngspice run (resnet_sim solving "
              "each step's circuit to tol 1e-11); max |θ_ngspice − θ_resnet_sim| / max |θ_resnet_sim|, and the same "
              "for the updates θ − θ_0; the mean training loss of the steps' free phases. Extra rows: the dc set-up "
              "at other reltols (its s/sample in the last column).", "",
              "| netlist | ngspice set-up | steps | max \\|dV\\| (V) | resnet_sim | θ | update | train loss ngspice / "
              "resnet_sim (V²) | ngspice s/sample |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for mode, run in r["runs"].items():
            if "error" in run:
                lines.append(f"| {r['name']} | {mode} | {run['steps']} | ngspice failed: {run['error']} | | | | | |")
                continue
            for path, g in run["theta_gap"].items():
                lines.append(f"| {r['name']} | {mode} | {run['steps']} | {run['max_dv']:.1e} | {path} path | "
                             f"{g['theta']:.2e} | {g['update']:.2e} | {run['train_loss']['ngspice']:.6g} / "
                             f"{run['train_loss'][path]:.6g} | {fmt(run['spice_per_sample'])} |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['name']}: {r['about']}.")
        if "learning" in r:
            le = r["learning"]
            lines.append(f"  It trains: test loss {le['test_loss_before']:.3g} V² before, "
                         f"{', '.join(f'{v:.3g}' for v in le['test_loss'])} V² after each epoch (resnet_sim).")
        dc = _ok(r["runs"].get("dc"))
        if r["name"] == "drn-xs":
            ours = ", ".join(f"{path} path {EPOCH * o['per_sample']:.3g} s" for path, o in r["ours"].items())
            theirs = (f"; ngspice {EPOCH * dc['spice_per_sample'] / 3600:.3g} h (dc set-up; its analysis alone "
                      f"{EPOCH * dc['split']['analysis'] / 3600:.3g} h; its CPU part per sample alone "
                      f"{EPOCH * dc['per_process']['per_sample_s'] / 3600:.3g} h)" if dc else "")
            if _ok(r["runs"].get("op")):
                theirs += f", {EPOCH * r['runs']['op']['spice_per_sample'] / 3600:.3g} h (op set-up)"
            lines.append(f"  Per epoch ({EPOCH} samples), **extrapolated** from the timed steps above: resnet_sim "
                         f"{ours}{theirs}.")
            if dc:
                verdict = "; ".join(f"{path} path {dc['ratio'][path]:.3g}x: {'met' if dc['ratio'][path] >= 1000 else 'NOT met'}"
                                    for path in r["ours"])
                cpu = "; ".join(f"{path} path {dc['ratio_cpu'][path]:.3g}x: {'met' if dc['ratio_cpu'][path] >= 1000 else 'NOT met'}"
                                for path in r["ours"])
                lines.append(f"  Target >= 1000x faster per sample than ngspice in the loop (dc set-up, B = "
                             f"{r['config']['batch_size']}), wall clock: {verdict}; CPU time: {cpu}. Against ngspice's "
                             "analysis time alone: "
                             + ", ".join(f"{p} {v:.3g}x" for p, v in dc["ratio_analysis_only"].items())
                             + "; against its CPU part per sample alone (extrapolated): "
                             + ", ".join(f"{p} {v:.3g}x" for p, v in dc["ratio_marginal"].items()) + ".")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this script's section of ``path`` (from HEADING to the next '## ' heading), or append it."""
    text = path.read_text() if path.exists() else "# Training benchmarks\n"
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADING), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "\n".join(lines[end:])
        new = "\n".join(lines[:start]) + ("\n" if start else "") + section + ("\n" + rest if rest else "")
    path.write_text(new)


def git(*command: str) -> str:
    return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netlists", default="xor,random,drn-xs")
    parser.add_argument("--steps", type=int, default=25, help="ngspice dc steps (xor, random)")
    parser.add_argument("--op-steps", type=int, default=10, help="ngspice op steps (xor, random; 0: skip)")
    parser.add_argument("--ours-steps", type=int, default=50, help="resnet_sim timed steps (xor, random)")
    parser.add_argument("--drn-steps", type=int, default=5, help="ngspice dc steps on DRN-XS")
    parser.add_argument("--drn-op-steps", type=int, default=1, help="ngspice op steps on DRN-XS (0: skip)")
    parser.add_argument("--drn-ours-steps", type=int, default=100, help="resnet_sim timed steps on DRN-XS")
    parser.add_argument("--repeats", type=int, default=3, help="resnet_sim timing runs (medians)")
    parser.add_argument("--single-runs", type=int, default=3,
                        help="ngspice processes on one sample (xor, random): its cost per process and per sample")
    parser.add_argument("--drn-single-runs", type=int, default=3, help="the same on DRN-XS")
    parser.add_argument("--random-epochs", type=int, default=3, help="epochs showing that the random netlist trains")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random netlist")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per ngspice process")
    parser.add_argument("--reltols", default="1e-9,1e-6",
                        help="ngspice reltol: the first for every run, the others for dc runs of xor and random")
    parser.add_argument("--abstol", type=float, default=1e-12,
                        help="ngspice abstol, A (ngspice's default; the bridge's 1e-15 makes warm-started points fail)")
    parser.add_argument("--diode-n", type=float, default=spice.SpiceOptions().diode_n,
                        help="emission coefficient of ngspice's near-ideal diode")
    parser.add_argument("--data", default="/work/shared/data", help="folder holding mnist/")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    numba.set_num_threads(1)
    command = "python benchmarks/training.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    ngspice_version = subprocess.run([ngspice_binary(), "--version"], capture_output=True, text=True).stdout
    machine = {"nproc": os.cpu_count(), "python": sys.version.split()[0],
               "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                            if line.startswith("model name")), "?"),
               "ngspice": next((line.strip("* ").strip() for line in ngspice_version.splitlines() if "ngspice-" in line),
                               "ngspice"),
               "uptime_start": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    startup = ngspice_startup()
    rows = [benchmark(case(name, args), args) for name in args.netlists.split(",")]
    machine["uptime_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result = {"command": command, "commit": git("rev-parse", "--short", "HEAD"),
              "dirty": bool(git("status", "--porcelain", "--untracked-files=no")), "args": vars(args),
              "machine": machine, "ngspice_startup_s": startup, "netlists": rows,
              "seconds": time.perf_counter() - start}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training_spice.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    section = markdown(result)
    write_section(out / "training.md", section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
