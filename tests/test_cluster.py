"""`resnet-sim sweep` and `resnet-sim mc` on Dask (issue 19): a LocalCluster of 2 worker processes and a
separately started `dask scheduler` / `dask worker` pair give the numbers a serial run gives; a worker killed
during a sweep, or the sweep itself killed, loses no finished point and the sweep run again completes with
the same results; bad SPECs and arguments are one line and exit status 2."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

try:
    import distributed  # noqa: F401
except ImportError:  # the cluster extra: installed by the README's `pip install -e '.[dev]'`
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise
    pytest.skip("dask/distributed not installed (pip install -e '.[cluster]')", allow_module_level=True)

import resnet_sim as rs  # noqa: E402
from resnet_sim.cli import main  # noqa: E402
from resnet_sim.cluster.montecarlo import draw_outputs, monte_carlo  # noqa: E402
from resnet_sim.train import checkpoint  # noqa: E402
from resnet_sim.train.devices import DeviceConfig  # noqa: E402
from resnet_sim.train.parameters import layout  # noqa: E402
from test_drn_cli import mnist_folder  # noqa: E402,F401  (the fixture: an IDX folder of the shipped sample)

ROOT = Path(__file__).resolve().parents[1]
XOR = ROOT / "netlists" / "xor.cir"


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def xor_data(tmp_path_factory):
    """netlists/xor.npz cut to 16 training samples (4 batches an epoch: runs of a fraction of a second)."""
    path = tmp_path_factory.mktemp("xor") / "xor16.npz"
    with np.load(ROOT / "netlists" / "xor.npz") as d:
        np.savez(path, x_train=d["x_train"][:16], y_train=d["y_train"][:16], x_test=d["x_test"], y_test=d["y_test"])
    return path


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _die_with_this_process():
    """In a child before exec: SIGTERM it when the test process dies (Linux), so that a killed test run leaves
    no scheduler or worker behind."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _dask(*args):
    """`dask ARGS` in its own process group (the test kills a worker with its nanny), quiet."""
    return subprocess.Popen(["dask", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=_die_with_this_process)


def _start_worker(scheduler_file):
    """A `dask worker` of one thread; it exits a minute after its scheduler has gone."""
    return _dask("worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--no-dashboard",
                 "--death-timeout", "60s")


def _wait_for_workers(address, n: int) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(n, timeout=60)


@pytest.fixture
def scheduler(tmp_path_factory):
    """(address, scheduler file) of a `dask scheduler` on localhost with one `dask worker`, fresh for each test:
    the tests kill clients and workers, and one test's leftovers must not decide the next one's outcome."""
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    sched = _dask("scheduler", "--scheduler-file", str(file), "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                  "--idle-timeout", "300s")
    procs = [sched]
    try:
        deadline = time.time() + 60
        while not (file.is_file() and file.stat().st_size) and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        procs.append(_start_worker(file))
        yield address, file
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _spec(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.toml"
    path.write_text(text)
    return path


def _xor_spec(folder, data, epochs, seeds=(0, 1), lrs=(0.01,)):
    return _spec(folder, f'command = "train"\n[options]\nnetlist = "{XOR}"\ndata = "{data}"\nepochs = {epochs}\n'
                         f"[grid]\nseed = {list(seeds)}\nlr = {list(lrs)}\n")


def _result(run: Path):
    """A RUNDIR's parameters and metrics (without the wall times)."""
    metrics = json.loads((run / "metrics.json").read_text())["epochs"]
    return checkpoint.load(run / "checkpoint.h5")["theta"], [{k: v for k, v in r.items() if k != "seconds"}
                                                            for r in metrics]


def _same_as_serial(out: Path, serial: dict):
    for name, (theta, metrics) in serial.items():
        got_theta, got_metrics = _result(out / name)
        assert np.array_equal(got_theta, theta), name
        assert got_metrics == metrics, name


@pytest.fixture(scope="module")
def xor_serial(xor_data, tmp_path_factory):
    """runs(epochs, seeds, lrs) -> {point name: (θ, metrics)} of the XOR points of ``_xor_spec``, each run by
    `resnet-sim train` in this process (cached: each run takes a few tenths of a second per epoch)."""
    cache = {}

    def run(epochs, seed, lr):
        if (epochs, seed, lr) not in cache:
            folder = tmp_path_factory.mktemp("serial")
            assert main(["train", str(XOR), "--data", str(xor_data), "--epochs", str(epochs), "--seed", str(seed),
                         "--lr", str(lr), "--out", str(folder / "run"), "--quiet"]) == 0
            cache[epochs, seed, lr] = _result(folder / "run")
        return cache[epochs, seed, lr]

    def runs(epochs, seeds=(0, 1), lrs=(0.01,)):
        return {f"seed={seed}_lr={lr}": run(epochs, seed, lr) for seed in seeds for lr in lrs}
    return runs


# ---------------------------------------------------------------------------------------------- sweep
def test_a_sweep_on_a_local_cluster_gives_the_serial_results_and_skips_finished_points(xor_data, xor_serial, scheduler,
                                                                                        tmp_path, capsys):
    spec = _xor_spec(tmp_path, xor_data, epochs=2)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert "2 points, 2 run, 0 finished before, 0 failed" in capsys.readouterr().out
    _same_as_serial(out, xor_serial(2))
    assert sorted(p.name for p in out.iterdir()) == ["seed=0_lr=0.01", "seed=1_lr=0.01", "summary.csv", "summary.png"]
    assert sorted(p.name for p in (out / "seed=0_lr=0.01").iterdir()) == \
        ["checkpoint.h5", "curves.png", "metrics.json", "point.json", "trained.cir"]
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("point,seed,lr,status,epoch,train_loss") and len(rows) == 3
    assert all(",finished,2," in row for row in rows[1:])
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/checkpoint.h5")}
    # run again: nothing to do, no cluster started, nothing rewritten
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 0
    assert "2 points, 0 run, 2 finished before, 0 failed" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/checkpoint.h5")}
    # more epochs: every point resumes from its checkpoint, and ends as a 3-epoch run from the start
    spec.write_text(spec.read_text().replace("epochs = 2", "epochs = 3"))
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", scheduler[0], "--quiet"]) == 0
    _same_as_serial(out, xor_serial(3))


def test_a_drn_sweep_on_a_scheduler_gives_the_serial_results(scheduler, mnist_folder, tmp_path, capsys):
    import numba

    address, _ = scheduler
    spec = _spec(tmp_path, f'command = "drn"\nthreads = 1\n[options]\narch = "xs"\ndata = "{mnist_folder}"\n'
                           'train-subset = 100\nepochs = 1\ndtype = "float64"\n[[points]]\nseed = 0\n[[points]]\n'
                           'seed = 1\nbatch-size = 8\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address, "--quiet"]) == 0
    assert "2 points, 2 run" in capsys.readouterr().out
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # as the SPEC's runs: the dense kernels' partial sums depend on the thread count
    try:
        serial = {}
        for name, extra in (("seed=0", ["--seed", "0"]), ("seed=1_batch-size=8", ["--seed", "1", "--batch-size", "8"])):
            run = tmp_path / "serial" / name
            assert main(["drn", "--arch", "xs", "--data", str(mnist_folder), "--train-subset", "100", "--epochs", "1",
                         "--dtype", "float64", *extra, "--out", str(run), "--quiet"]) == 0
            serial[name] = _result(run)
    finally:
        numba.set_num_threads(threads)
    _same_as_serial(out, serial)


def _sweep_process(spec, out, address, workers):
    return subprocess.Popen([sys.executable, "-m", "resnet_sim.cli", "sweep", str(spec), "--out", str(out),
                             "--scheduler", address, "--workers", str(workers), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_die_with_this_process)


def _finished_points(out: Path) -> set:
    done = set()
    for record in out.glob("*/point.json"):
        try:
            if json.loads(record.read_text())["finished"]:
                done.add(record.parent.name)
        except (ValueError, OSError):
            pass
    return done


def _wait_until_idle(address, timeout=120.0):
    """Until no worker of the scheduler at ``address`` is running a task (a killed client's task runs on)."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        _wait_for(lambda: not any(client.processing().values()), timeout)


def _wait_for(condition, timeout=120.0):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_killed_during_a_sweep_loses_no_finished_point(scheduler, xor_data, xor_serial, tmp_path, capsys):
    address, file = scheduler
    seeds = (0, 1, 2)
    spec, out = _xor_spec(tmp_path, xor_data, epochs=4, seeds=seeds), tmp_path / "out"
    extra = _start_worker(file)
    try:
        _wait_for_workers(address, 2)
        sweep = _sweep_process(spec, out, address, workers=2)
        _wait_for(lambda: _finished_points(out) or sweep.poll() is not None)
        before = {name: {p.name: p.read_bytes() for p in (out / name).iterdir()} for name in _finished_points(out)}
        os.killpg(extra.pid, signal.SIGKILL)  # the worker and its nanny, mid-sweep
        extra.wait()
        sweep.communicate(timeout=300)
    finally:
        _stop(extra)
    # whatever the killed worker was running ran again elsewhere or is run now; finished points stay as they were
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address, "--quiet"]) == 0
    assert ", 0 failed" in capsys.readouterr().out
    assert before and all({p.name: p.read_bytes() for p in (out / name).iterdir()} == files
                          for name, files in before.items())
    _same_as_serial(out, xor_serial(4, seeds))


def test_a_killed_sweep_resumes_its_unfinished_points_from_their_epochs(scheduler, xor_data, xor_serial, tmp_path,
                                                                         capsys):
    address, _ = scheduler
    spec, out = _xor_spec(tmp_path, xor_data, epochs=4, seeds=(0,)), tmp_path / "out"
    sweep = _sweep_process(spec, out, address, workers=1)

    def partial():  # an epoch of a running point has come back to the client
        return [run for run in out.glob("*/metrics.json")
                if run.parent.name not in _finished_points(out) and json.loads(run.read_text())["epochs"]]
    _wait_for(lambda: partial() or sweep.poll() is not None)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.wait()
    resumed = {run.parent.name: len(json.loads(run.read_text())["epochs"]) for run in partial()}
    assert resumed and all(0 < n < 4 for n in resumed.values())
    _wait_until_idle(address)  # the killed client's task may still be running on the worker
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address, "--quiet"]) == 0
    assert ", 0 failed" in capsys.readouterr().out
    _same_as_serial(out, xor_serial(4, (0,)))


def _one_line_error(capsys, argv, expect):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err, err


@pytest.mark.parametrize("text, expect", [
    ('command = "train"\n[options]\nnetlist = "{xor}"\nlrr = 0.1\n[grid]\nseed = [0]\n',
     "unknown option 'lrr' of 'resnet-sim train'"),
    ('command = "train"\n[options]\nnetlist = "{xor}"\n[grid]\nseed = []\n', "empty grid: 'seed' has no values"),
    ('command = "train"\n[options]\nnetlist = "{xor}"\n', "empty grid"),
    ('command = "fit"\n[grid]\nseed = [0]\n', "command must be one of train, drn, hopfield, pcn"),
    ('command = "train"\nepochs = 3\n[grid]\nseed = [0]\n', "unknown key 'epochs'"),
    ('command = "train"\n[options]\nnetlist = "{xor}"\nout = "x"\n[grid]\nseed = [0]\n', "option 'out': the sweep"),
    ('command = "train"\n[options]\nnetlist = "{xor}"\ndata = "nowhere.npz"\n[grid]\nseed = [0]\n',
     "option 'data': "),
    ('command = "train"\n[options]\nnetlist = "{xor}"\n[grid]\nlr = ["fast"]\n',
     "point lr=fast: argument --lr: invalid float value: 'fast'"),
    ('command = "train"\n[options]\nnetlist = "{xor}"\n[grid]\nseed = 3\n', "grid values must be lists"),
    ('command = "drn"\nthreads = 0\n[grid]\nseed = [0]\n', "threads must be an integer >= 1"),
    ('command = "train"\n[grid\n', "not valid TOML"),
])
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, capsys, text, expect):
    spec = _spec(tmp_path, text.replace("{xor}", str(XOR)))
    _one_line_error(capsys, ["sweep", str(spec), "--out", str(tmp_path / "out")], expect)
    assert not (tmp_path / "out").exists()


def test_a_drn_spec_sends_the_clients_data_folder(mnist_folder, tmp_path, monkeypatch):
    from resnet_sim.cluster.sweep import Input, load_spec

    spec = _spec(tmp_path, 'command = "drn"\n[options]\narch = "xs"\n[grid]\nseed = [0, 1]\n')
    monkeypatch.setenv("RESNET_SIM_DATA", str(mnist_folder))
    s = load_spec(spec)
    [data] = {a for p in s.points for a in p.argv if isinstance(a, Input)}
    assert sorted(s.bundles[data.key]) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                           "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    assert s.bundles[data.key]["t10k-labels-idx1-ubyte"] == (mnist_folder / "mnist" / "t10k-labels-idx1-ubyte").read_bytes()
    monkeypatch.delenv("RESNET_SIM_DATA")
    with pytest.raises(Exception, match="no data folder"):
        load_spec(spec)


def test_an_unreadable_spec_is_one_line_and_exit_2(tmp_path, capsys):
    _one_line_error(capsys, ["sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")], "no such file")
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe\x00")
    _one_line_error(capsys, ["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")], "cannot read")


def test_a_scheduler_that_cannot_be_reached_is_one_line_and_exit_2(xor_data, tmp_path, capsys):
    spec = _xor_spec(tmp_path, xor_data, epochs=1)
    _one_line_error(capsys, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--scheduler", "nonsense://"],
                    "resnet-sim sweep: cannot reach the Dask scheduler at 'nonsense://': unknown address scheme")
    assert not (tmp_path / "out").exists()


def test_a_failing_point_is_reported_and_the_others_finish(xor_data, scheduler, tmp_path, capsys):
    spec = _spec(tmp_path, f'command = "train"\n[options]\nnetlist = "{XOR}"\ndata = "{xor_data}"\nepochs = 1\n'
                           "[grid]\nbatch-size = [4, 0]\n")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", scheduler[0], "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "2 points, 1 run, 0 finished before, 1 failed" in captured.out
    assert captured.err.strip() == f"{out / 'batch-size=0'}: {XOR}: batch size must be >= 1, got 0"
    assert json.loads((out / "batch-size=4" / "point.json").read_text())["finished"]


# ---------------------------------------------------------------------------------------------- Monte Carlo
@pytest.fixture(scope="module")
def bounded_xor(tmp_path_factory):
    """netlists/xor.cir with gmax = 0.2 S on its resistors (variability and levels need one), its 4 test
    corners and their labels as .npy files."""
    folder = tmp_path_factory.mktemp("mc")
    text = XOR.read_text().replace(".trainable r* ib*", ".trainable r* gmax=0.2\n.trainable ib*")
    (folder / "xor.cir").write_text(text)
    with np.load(ROOT / "netlists" / "xor.npz") as d:
        np.save(folder / "x.npy", d["x_test"])
        np.save(folder / "y.npy", d["y_test"])
    return folder


DEVICES = DeviceConfig(levels=32, stochastic_rounding=True, program_noise=0.05, variability=0.1)
MC_OPTIONS = ["--levels", "32", "--stochastic-rounding", "--program-noise", "0.05", "--variability", "0.1"]


def test_monte_carlo_draws_are_seeded_per_draw(bounded_xor):
    c, X = rs.read_netlist(bounded_xor / "xor.cir"), np.load(bounded_xor / "x.npy")
    a = monte_carlo(c, X, 10, DEVICES, seed=3, chunk=3)
    b = monte_carlo(c, X, 6, DEVICES, seed=3, chunk=4)
    assert np.array_equal(a.outputs[:6], b.outputs) and not np.array_equal(a.outputs[0], a.outputs[1])
    assert not np.array_equal(monte_carlo(c, X, 1, DEVICES, seed=4).outputs[0], a.outputs[0])
    assert np.array_equal(a.nominal, rs.solve(c, inputs=X).outputs) and a.converged.all()
    # ideal devices: each draw is the circuit as written
    assert np.array_equal(monte_carlo(c, X, 3, DeviceConfig()).outputs, np.broadcast_to(a.nominal, (3, *a.nominal.shape)))


def test_a_draw_is_the_trained_values_written_with_the_device_models(bounded_xor):
    """Draw k with programming noise only: every conductance times (1 + σ ξ), ξ from default_rng([seed, k])."""
    c, X = rs.read_netlist(bounded_xor / "xor.cir"), np.load(bounded_xor / "x.npy")
    p = rs.compile(c)
    theta = rs.train.parameters(p)
    n_g = layout(p).n_conductances
    xi = np.random.default_rng([7, 2]).standard_normal(n_g)
    theta[:n_g] = np.clip(theta[:n_g] * (1 + 0.05 * xi), 0, 0.2)
    expected = rs.solve(rs.train.with_parameters(p, theta), inputs=X).outputs
    got, _ = draw_outputs(c, X, DeviceConfig(program_noise=0.05), 7, 2, 3)
    assert np.array_equal(got[0], expected)


def test_mc_on_a_local_cluster_and_on_a_scheduler_gives_the_serial_numbers(bounded_xor, scheduler, tmp_path, capsys):
    c, X, y = (rs.read_netlist(bounded_xor / "xor.cir"), np.load(bounded_xor / "x.npy"), np.load(bounded_xor / "y.npy"))
    serial = monte_carlo(c, X, 24, DEVICES, seed=5, labels=y, chunk=24)
    common = ["mc", str(bounded_xor / "xor.cir"), "--inputs", str(bounded_xor / "x.npy"), "--labels",
              str(bounded_xor / "y.npy"), "--draws", "24", "--seed", "5", *MC_OPTIONS, "--quiet"]
    local, remote = tmp_path / "local.h5", tmp_path / "remote.h5"
    assert main([*common, "--workers", "2", "--out", str(local)]) == 0
    assert main([*common, "--scheduler", scheduler[0], "--chunk", "5", "--out", str(remote)]) == 0
    out = capsys.readouterr().out
    assert "24 draws of 4 inputs: accuracy" in out and f"wrote {local}, {local.with_suffix('.png')}" in out
    for path in (local, remote):
        with h5py.File(path, "r") as f:
            assert np.array_equal(f["outputs"][...], serial.outputs)
            assert np.array_equal(f["nominal"][...], serial.nominal)
            assert np.array_equal(f["accuracy"][...], serial.accuracy)
            assert f["accuracy"].shape == (24,) and f.attrs["draws"] == 24 and f.attrs["seed"] == 5
            assert json.loads(f.attrs["devices"])["levels"] == 32
            assert f.attrs["nominal_accuracy"] == serial.nominal_accuracy
        assert path.with_suffix(".png").stat().st_size > 0
    assert np.array_equal(serial.accuracy, np.mean(np.argmax(serial.outputs, axis=2) == y, axis=1))


def test_bad_mc_arguments_are_one_line_and_exit_2(bounded_xor, tmp_path, capsys):
    common = ["mc", str(bounded_xor / "xor.cir"), "--inputs", str(bounded_xor / "x.npy"), "--out", str(tmp_path / "r.h5")]
    np.save(tmp_path / "y3.npy", np.array([0, 1, 1]))
    _one_line_error(capsys, [*common, "--draws", "4", "--labels", str(tmp_path / "y3.npy")], "labels must be (4,)")
    _one_line_error(capsys, [*common, "--draws", "0"], "draws must be >= 1")
    _one_line_error(capsys, [*common[:5], str(tmp_path / "no" / "r.h5"), "--draws", "2"], "its folder does not exist")
    _one_line_error(capsys, ["mc", str(XOR), "--inputs", str(bounded_xor / "x.npy"), "--draws", "2", "--levels", "8",
                             "--out", str(tmp_path / "r.h5")], "needs gmax=")
    _one_line_error(capsys, [*common[:3], str(tmp_path / "none.npy"), *common[4:], "--draws", "2"], "no such file")
    np.save(tmp_path / "x3.npy", np.zeros((2, 3)))
    _one_line_error(capsys, [*common[:3], str(tmp_path / "x3.npy"), *common[4:], "--draws", "2"], "(B, 2)")
    assert not (tmp_path / "r.h5").exists()
