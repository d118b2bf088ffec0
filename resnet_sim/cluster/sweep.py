"""Sweeps: one training run per point of a grid of command-line options, each a task on a Dask cluster.

SPEC is a TOML file::

    command = "drn"          # the base command: train, drn, hopfield or pcn
    threads = 1              # Numba threads of each run (default 1), fixed so that any worker gives the same bits
    [options]                # its options, spelled as on the command line without "--"
    arch = "xs"
    data = "/data"           # a file or folder; relative paths are relative to the SPEC's folder
    train-subset = 1000
    epochs = 1
    [grid]                   # every combination of these values is one point ...
    seed = [0, 1, 2, 3]
    lr = [0.01, 0.02]
    [[points]]               # ... and/or a list of points (each then crossed with the grid)
    beta = 0.5

A flag is ``true``/``false``; an option that takes several values (``gmax``, ``target-levels``) or may be
repeated (``group-lr``) takes a list. ``out``, ``resume`` and ``quiet`` are the sweep's own. A point's
RUNDIR is ``DIR/<name>``, its name made of the varied options (``lr=0.01_seed=1``).

Workers need only the installed package: the files a run reads (netlist, data file, IDX folder, update
table) are read by the client and scattered to the workers once per sweep; a run's files come back to the
client, which writes them into the RUNDIR (atomically) after every epoch and at the end, then
``point.json`` (the point's definition: its options, its inputs' SHA-256, finished). Run again, the sweep
skips finished points of the same definition and resumes the others from their checkpoints with
``--resume``: training resumes bit for bit, so the results are those of an uninterrupted sweep.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import tempfile
import threading
import tomllib
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from ..cli import FAMILIES, UsageError
from ..files import atomic_path
from ..train.trainer import CHECKPOINT, CURVES, METRICS

__all__ = ["Spec", "Point", "load_spec", "pending", "run_sweep", "run_point", "COMMANDS", "SUMMARY", "POINT_FILE"]

COMMANDS = ("train", *FAMILIES)
SUMMARY, POINT_FILE = "summary.csv", "point.json"
SPEC_KEYS = ("command", "threads", "options", "grid", "points")
RESERVED = {"out": "the sweep sets it (DIR/<point>)", "resume": "the sweep resumes unfinished points itself",
            "quiet": "the sweep's runs are always quiet", "help": "not an option of a run"}
# options naming files the run reads: "netlist" (read and written back whole: .include files go with it),
# "file" (sent as is), "idx" (a data folder: the data set's four IDX files are sent)
FILE_OPTIONS = {"train": {"netlist": "netlist", "data": "file", "update-table": "file"},
                **{family: {"data": "idx", "update-table": "file"} for family in FAMILIES}}
EPOCH_LINE = re.compile(r"epoch (\d+): ")  # the line `resnet-sim train/drn/...` prints after saving an epoch
SAFE_NAME = re.compile(r"[^A-Za-z0-9._,=+-]")
DRAIN_INTERVAL_S = 0.5  # how often the client collects the epochs that running points finished
FETCH_TIMEOUT_S = 30  # to fetch one epoch's files from the worker that ran it (skipped when it has gone)


@dataclass(frozen=True)
class Input:
    """A file argument of a run, on the worker: file ``path`` of the input bundle ``key`` ("" for the
    bundle's folder); ``given`` is what the SPEC named (for messages)."""

    key: str
    path: str
    given: str


@dataclass(frozen=True)
class Point:
    """One run of the sweep: its ``name`` (its RUNDIR under the sweep's folder), the varied ``values``, and
    ``argv``, the base command's arguments with file arguments as :class:`Input` (no --out/--resume/--quiet)."""

    name: str
    values: dict
    argv: tuple

    def definition(self, command: str, threads: int) -> dict:
        """What the run computes, as JSON values (files by content): equal definitions, equal results."""
        return {"command": command, "threads": threads,
                "argv": [f"<input {a.key}/{a.path}>" if isinstance(a, Input) else a for a in self.argv]}


@dataclass(frozen=True)
class Spec:
    """A parsed SPEC: the base ``command``, Numba ``threads`` per run, the ``varied`` option names, the
    ``points``, and ``bundles`` {key: {relative path: bytes}}, the input files the runs read."""

    path: Path
    command: str
    threads: int
    varied: tuple
    points: tuple
    bundles: dict = field(repr=False)


# ---------------------------------------------------------------------------------------------- SPEC
def load_spec(path) -> Spec:
    """Read and check SPEC; every problem is a UsageError naming the file (one line). The input files are
    read here, once."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(path, f"cannot read the sweep specification ({getattr(err, 'strerror', None) or err})") \
            from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(path, f"not valid TOML ({err})") from None

    def fail(message):
        return UsageError(path, message)

    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (a sweep specification has {', '.join(SPEC_KEYS)})")
    command = raw.get("command")
    if command not in COMMANDS:
        raise fail(f"command must be one of {', '.join(COMMANDS)}, got {command!r}")
    threads = raw.get("threads", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise fail(f"threads must be an integer >= 1, got {threads!r}")
    options, grid, listed = raw.get("options", {}), raw.get("grid", {}), raw.get("points", [])
    if not isinstance(options, dict) or not isinstance(grid, dict):
        raise fail("[options] and [grid] must be tables")
    if not isinstance(listed, list) or not all(isinstance(p, dict) for p in listed):
        raise fail("points must be an array of tables ([[points]])")
    options = {_canonical(k): v for k, v in options.items()}
    grid = {_canonical(k): v for k, v in grid.items()}
    listed = [{_canonical(k): v for k, v in p.items()} for p in listed]
    for key, values in grid.items():
        if not isinstance(values, list):
            raise fail(f"grid values must be lists: {key} = {values!r}")
        if not values:
            raise fail(f"empty grid: {key!r} has no values")
    if not grid and not listed:
        raise fail("empty grid: give option values in [grid] or points in [[points]]")
    varied = tuple(dict.fromkeys([*(k for p in listed for k in p), *grid]))
    both = [k for k in varied if k in options]
    if both:
        raise fail(f"{both[0]!r} is both a fixed option and a varied one")
    if command in FAMILIES and "data" not in options and "data" not in varied:
        from ..data import data_folder

        try:  # the client's $RESNET_SIM_DATA: its files are sent, whatever the workers' environment says
            options["data"] = str(data_folder(None).resolve())
        except ValueError as err:
            raise fail(str(err)) from None
    actions = _actions(command)
    for key in [*options, *varied]:
        if key in RESERVED:
            raise fail(f"option {key!r}: {RESERVED[key]}")
        if key not in actions:
            raise fail(f"unknown option {key!r} of 'resnet-sim {command}'")
    combos = [dict(p, **dict(zip(grid, values))) for p in (listed or [{}])
              for values in itertools.product(*grid.values())]
    reader = _InputReader(path.parent, command)
    points, names = [], {}
    for values in combos:
        name = "_".join(f"{k}={_name_part(values[k])}" for k in varied if k in values) or "default"
        name = SAFE_NAME.sub("_", name)[:200]
        if name in names:
            raise fail(f"two points are both named {name!r}: {names[name]} and {values}")
        names[name] = values
        argv = []
        for key, value in {**options, **values}.items():
            try:
                argv.extend(_arguments(actions[key], key, value, reader, {**options, **values}))
            except ValueError as err:
                raise fail(f"point {name}: option {key!r}: {err}") from None
        points.append(Point(name, values, tuple(argv)))
        _check_arguments(path, command, name, argv)
    return Spec(path, command, threads, varied, tuple(points), reader.bundles)


def _canonical(key: str) -> str:
    return key.replace("_", "-")


def _name_part(value) -> str:
    if isinstance(value, list):
        return ",".join(map(_name_part, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _subparser(command: str):
    from ..cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command]


def _actions(command: str) -> dict:
    """{option name without dashes (positionals: their dest): argparse action} of ``resnet-sim command``."""
    actions = {}
    for action in _subparser(command)._actions:
        names = [s[2:] for s in action.option_strings if s.startswith("--")] if action.option_strings \
            else [action.dest]
        for name in names:
            actions[name] = action
    return actions


def _text(value) -> str:
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        raise ValueError(f"expected a number or a string, got {value!r}")
    return str(value)


def _arguments(action, key: str, value, reader, values: dict) -> list:
    """The command-line arguments of option ``key`` = ``value`` (TOML)."""
    import argparse

    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ValueError(f"a flag takes true or false, got {value!r}")
        return [action.option_strings[-1]] if value else []
    kind = FILE_OPTIONS[reader.command].get(key)
    if kind is not None:
        if not isinstance(value, str):
            raise ValueError(f"expected a path, got {value!r}")
        value = reader.input(kind, value, values)
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not (isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*")
                                        or isinstance(action.nargs, int)):
        raise ValueError(f"takes one value, got a list {value!r}")
    items = [v if isinstance(v, Input) else _text(v) for v in items]
    if not action.option_strings:
        return items
    flag = next(s for s in action.option_strings if s.startswith("--"))
    if isinstance(action, argparse._AppendAction):
        return [x for item in items for x in (flag, item)]
    return [flag, *items]


def _check_arguments(path: Path, command: str, name: str, argv: list) -> None:
    """Parse a point's arguments as ``resnet-sim command`` would: its one-line error, naming the point."""
    from ..cli import build_parser

    args = [str(a.given) if isinstance(a, Input) else a for a in argv]
    err = io.StringIO()
    try:
        with redirect_stderr(err):
            build_parser().parse_args([command, *args, "--out", "RUNDIR"])
    except SystemExit:
        message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "bad arguments"
        raise UsageError(path, f"point {name}: {message.split(': error: ', 1)[-1]}") from None


class _InputReader:
    """Reads the files a SPEC's runs need, once each, into bundles keyed by content."""

    def __init__(self, folder: Path, command: str):
        self.folder, self.command = folder, command
        self.bundles: dict[str, dict[str, bytes]] = {}
        self._seen: dict[tuple, Input] = {}

    def input(self, kind: str, given: str, values: dict) -> Input:
        from ..data import dataset_files

        path = self.folder / Path(given).expanduser()
        dataset = values.get("dataset", "mnist")
        memo = (kind, str(path), dataset if kind == "idx" else None)
        if memo in self._seen:
            return self._seen[memo]
        if kind == "idx":
            try:
                files = [f for split in ("train", "test") for f in dataset_files(dataset, split, path)]
            except ValueError as err:
                raise ValueError(str(err)) from None
            bundle, inner = {f.name: _read(f) for f in files}, ""
        elif kind == "netlist":
            from ..netlist import read_netlist, write_netlist

            _exists(path)
            bundle = {path.name: write_netlist(read_netlist(path)).encode()}
            inner = path.name
        else:
            bundle, inner = {path.name: _read(_exists(path))}, path.name
        digest = hashlib.sha256()
        for name in sorted(bundle):
            digest.update(name.encode() + b"\0" + hashlib.sha256(bundle[name]).digest())
        key = "resnet-sim-input-" + digest.hexdigest()[:32]
        self.bundles[key] = bundle
        self._seen[memo] = Input(key, inner, given)
        return self._seen[memo]


def _exists(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror or err}") from None


# ---------------------------------------------------------------------------------------------- worker side
_RUN_LOCK = threading.Lock()  # one run at a time per worker process (sys.stdout is redirected per run)


class _Lines(io.TextIOBase):
    """A text stream calling ``on_line`` with each complete line written to it."""

    def __init__(self, on_line):
        self._part, self._on_line = "", on_line

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._part += text
        *complete, self._part = self._part.split("\n")
        for line in complete:
            self._on_line(line)
        return len(text)


def run_point(command: str, argv: tuple, bundles: dict, files: dict, threads: int, channel: str | None,
              name: str) -> dict:
    """Run one point on this process (a Dask task): write the input ``bundles`` {key: {path: bytes}} and the
    RUNDIR ``files`` {name: bytes} to resume from into a temporary folder, run ``resnet-sim command argv``
    with ``threads`` Numba threads, and after each epoch send {"point": ``name``, "epoch", "files"} to the
    client (see ``_shipper``; not when ``channel`` is None). Returns {"code": exit status, "error": its
    one-line message, paths in it as the SPEC gave them, "files": the RUNDIR's files}."""
    from numba import config, set_num_threads

    from ..cli import main

    with _RUN_LOCK, tempfile.TemporaryDirectory(prefix="resnet_sim_point_") as tmp:
        root = Path(tmp)
        for key, bundle in bundles.items():
            for rel, data in bundle.items():
                target = root / "in" / key / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        out = root / "run"
        out.mkdir()
        for file, data in files.items():
            (out / file).write_bytes(data)
        args = [command, *(str(root / "in" / a.key / a.path) if isinstance(a, Input) else a for a in argv),
                "--out", str(out), "--quiet", *(["--resume"] if CHECKPOINT in files else [])]
        if threads > config.NUMBA_NUM_THREADS:
            return {"code": 2, "files": {}, "error": f"threads = {threads}, but this worker's Numba has "
                                                     f"{config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS)"}
        set_num_threads(threads)
        ship = None if channel is None else _shipper(channel)

        def on_line(line):
            match = EPOCH_LINE.match(line)
            if match and ship is not None:  # the epoch's files are complete: the trainer prints after saving
                ship({"point": name, "epoch": int(match.group(1)), "files": _rundir_files(out)})

        stdout, stderr = _Lines(on_line), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(args)
        errors = [line for line in stderr.getvalue().splitlines() if line and not line.startswith("warning: ")]
        message = errors[-1] if errors else ""
        for a in argv:  # name the SPEC's paths, not the worker's temporary ones
            if isinstance(a, Input):
                message = message.replace(str(root / "in" / a.key / a.path), a.given)
        message = message.removeprefix(f"{out}: ").replace(str(out), "RUNDIR")
        return {"code": code, "error": message, "files": _rundir_files(out)}


def _shipper(channel: str):
    """A function sending an object to the sweep's client from this worker: it is kept on this worker (Dask
    scatter) and its future put on the Dask Queue ``channel``, so that the data goes straight to the client,
    not through the scheduler."""
    from distributed import Queue, get_client, get_worker

    client, queue, here = get_client(), Queue(channel), [get_worker().address]

    def ship(item):
        [future] = client.scatter([item], workers=here, hash=False)
        queue.put(future)
    return ship


def _rundir_files(out: Path) -> dict:
    """{name: bytes} of a RUNDIR's files (no temporary ones)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and not p.name.startswith(".")}


# ---------------------------------------------------------------------------------------------- client side
def _write_files(folder: Path, files: dict) -> None:
    """Write {name: bytes} into ``folder`` atomically, the checkpoint last (a resume reads it first)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: n == CHECKPOINT):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
            f.write(files[name])


def _finished(folder: Path, definition: dict) -> bool:
    """A point whose RUNDIR holds a finished run of this very definition."""
    try:
        record = json.loads((folder / POINT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (record.get("finished") is True and record.get("definition") == definition
            and (folder / CHECKPOINT).is_file() and (folder / METRICS).is_file())


def _history_length(folder: Path) -> int:
    try:
        return len(json.loads((folder / METRICS).read_text())["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def pending(spec: Spec, out) -> list[Point]:
    """The points of ``spec`` that ``out`` does not hold finished (with this very definition)."""
    return [p for p in spec.points if not _finished(Path(out) / p.name, p.definition(spec.command, spec.threads))]


def run_sweep(spec: Spec, out, client=None, progress: bool = True) -> list[dict]:
    """Run every point of ``spec`` into ``out``/<point> on the Dask ``client`` (None: in this process, one
    point after the other). Returns the summary rows (also written to ``out``/summary.csv, with the plot
    summary.png): point, the varied options, status (finished, skipped: finished earlier, or failed), the
    last epoch's metrics, error."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    definitions = {p.name: p.definition(spec.command, spec.threads) for p in spec.points}
    todo = pending(spec, out)
    status = {p.name: "skipped" for p in spec.points}
    errors: dict[str, str] = {}
    lock = threading.Lock()
    epochs_written = {p.name: _history_length(out / p.name) for p in todo}
    done_names: set[str] = set()
    bar = _bar(len(spec.points), len(spec.points) - len(todo), progress)

    def say(text):
        (bar.write if bar is not None else print)(text)

    def epoch_done(item):
        """An epoch's files from a running point: written unless the point is done or already further."""
        with lock:
            name = item["point"]
            if name in done_names or item["epoch"] <= epochs_written.get(name, 0):
                return
            _write_files(out / name, item["files"])
            epochs_written[name] = item["epoch"]

    def point_done(point, result):
        with lock:
            done_names.add(point.name)
            folder = out / point.name
            if result.get("files"):
                _write_files(folder, result["files"])
            ok = result["code"] == 0
            status[point.name] = "finished" if ok else "failed"
            if ok:
                record = {"definition": definitions[point.name], "values": point.values, "finished": True}
                with atomic_path(folder / POINT_FILE) as tmp, open(tmp, "w") as f:
                    f.write(json.dumps(record, indent=1) + "\n")
            else:
                errors[point.name] = result["error"] or f"exit status {result['code']}"
        last = _last_record(folder)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k in ("test_error", "test_loss", "train_loss"))
        say(f"{point.name}: " + (f"finished ({shown})" if result["code"] == 0 else f"FAILED: {errors[point.name]}"))
        if bar is not None:
            bar.update(1)

    for point in todo:  # record each point's definition before it runs (finished: false)
        folder = out / point.name
        folder.mkdir(exist_ok=True)
        with atomic_path(folder / POINT_FILE) as tmp, open(tmp, "w") as f:
            f.write(json.dumps({"definition": definitions[point.name], "values": point.values, "finished": False},
                               indent=1) + "\n")
    if client is None:
        for point in todo:
            files = _resume_files(out / point.name)
            bundles = {a.key: spec.bundles[a.key] for a in point.argv if isinstance(a, Input)}
            point_done(point, run_point(spec.command, point.argv, bundles, files, spec.threads, None, point.name))
    elif todo:
        _on_cluster(spec, todo, out, client, epoch_done, point_done)
    if bar is not None:
        bar.close()
    rows = _summary(spec, out, status, errors)
    return rows


def _resume_files(folder: Path) -> dict:
    """The files of an unfinished RUNDIR that a resumed run reads or keeps (none without a checkpoint)."""
    if not (folder / CHECKPOINT).is_file():
        return {}
    return {n: (folder / n).read_bytes() for n in (CHECKPOINT, METRICS, CURVES) if (folder / n).is_file()}


def _on_cluster(spec: Spec, todo: list, out: Path, client, epoch_done, point_done) -> None:
    """Submit ``todo`` to ``client``, draining per-epoch files from a Dask Queue while they run."""
    from distributed import Queue, as_completed

    needed = {a.key for p in todo for a in p.argv if isinstance(a, Input)}
    scattered = client.scatter({k: spec.bundles[k] for k in needed}, broadcast=True, hash=False) if needed else {}
    channel = f"resnet-sim-sweep-{uuid.uuid4().hex}"
    queue = Queue(channel, client=client)
    stop = threading.Event()

    def drain_once():
        for future in queue.get(batch=True):
            try:  # skipped when the worker holding it died: a later epoch or the point's result will come
                if client.who_has([future]).get(future.key):
                    epoch_done(future.result(timeout=FETCH_TIMEOUT_S))
            except Exception:
                pass
            future.release()

    def drain():
        while not stop.wait(DRAIN_INTERVAL_S):
            drain_once()

    drainer = threading.Thread(target=drain, name="resnet-sim sweep: epochs", daemon=True)
    drainer.start()
    futures = {}
    for point in todo:
        bundles = {a.key: scattered[a.key] for a in point.argv if isinstance(a, Input)}
        future = client.submit(run_point, spec.command, point.argv, bundles, _resume_files(out / point.name),
                               spec.threads, channel, point.name, key=f"resnet-sim-point-{point.name}-{uuid.uuid4().hex}",
                               pure=False)
        futures[future] = point
    try:
        for future in as_completed(futures):
            point = futures[future]
            try:
                result = future.result()
            except Exception as err:  # a lost worker (KilledWorker), a cancelled task, an unexpected error
                result = {"code": 1, "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
            future.release()  # else the scheduler would run it again when the worker holding the result dies
            point_done(point, result)
    finally:
        stop.set()
        drainer.join()
        drain_once()  # every task has returned, so every epoch it shipped is queued: release them all
        for future in futures:
            future.release()


def _bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="sweep", unit="point", mininterval=0.5, disable=None)


def _last_record(folder: Path) -> dict:
    try:
        epochs = json.loads((folder / METRICS).read_text())["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return epochs[-1] if epochs else {}


def _summary(spec: Spec, out: Path, status: dict, errors: dict) -> list[dict]:
    """summary.csv and summary.png: one row per point, the varied options and the last epoch's metrics."""
    rows = [{"point": p.name, **{k: p.values.get(k, "") for k in spec.varied}, "status": status[p.name],
             **_last_record(out / p.name), "error": errors.get(p.name, "")} for p in spec.points]
    columns = list(dict.fromkeys(k for row in rows for k in row if k != "error")) + ["error"]
    with atomic_path(out / SUMMARY) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows({k: _name_part(v) if isinstance(v, (list, bool)) else v for k, v in row.items()}
                         for row in rows)
    from ..plots import sweep_summary

    sweep_summary(rows, spec.varied, out / "summary.png")
    return rows
