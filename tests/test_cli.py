"""`resnet-sim op`: table, JSON, HDF5, batched inputs, and one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from resnet_sim.cli import main

NETLISTS = Path(__file__).resolve().parent.parent / "netlists"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table(capsys):
    code, out, err = run(capsys, "op", NETLISTS / "diode_clamp.cir")
    assert code == 0 and err == ""
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert ["out", "2"] in rows and ["d1", "0.006"] in rows and ["d1", "on"] in rows
    assert "converged: yes" in out and "method:" in out and "residuals:" in out


def test_table_of_a_large_circuit_leaves_resistor_currents_to_all(capsys, tmp_path):
    """1001 parallel 1 kOhm resistors on a 1 V source: the default table lists the source's current
    (-1001 mA, SPICE sign) but not the resistors'; --all lists them (1 mA each)."""
    from resnet_sim.cli import TABLE_MAX_RESISTORS

    n = TABLE_MAX_RESISTORS + 1
    path = tmp_path / "parallel.cir"
    path.write_text("parallel resistors\nV1 a 0 1\n" + "".join(f"R{i} a 0 1k\n" for i in range(n)) + ".end\n")
    code, out, _ = run(capsys, "op", path)
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert code == 0 and ["v1", str(-n / 1000)] in rows
    assert not any(r[0] == "r0" for r in rows) and f"({n} resistor currents not listed" in out
    code, out, _ = run(capsys, "op", path, "--all")
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert code == 0 and sum(r == [f"r{i}", "0.001"] for r in rows for i in (0, n - 1)) == 2


def test_json(capsys):
    code, out, _ = run(capsys, "op", NETLISTS / "floating_source.cir", "--json", "--method", "active-set")
    d = json.loads(out)
    assert code == 0 and d["method"] == "active-set" and d["converged"] is True
    assert d["nodes"]["p"] == pytest.approx(46 / 7) and d["currents"]["v2"] == pytest.approx(25 / 14 * 1e-3)
    assert set(d["residuals"]) == {"stationarity", "feasibility", "dual", "complementarity"}


def test_inputs_give_outputs(capsys, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.array([[0.0, 0.0], [-1.0, -1.0], [0.5, -0.3]]))
    code, out, _ = run(capsys, "op", NETLISTS / "trainable.cir", "--json", "--inputs", x)
    d = json.loads(out)
    assert code == 0
    assert np.shape(d["outputs"]) == (3, 1)
    assert d["outputs"][0][0] == pytest.approx(0.0, abs=1e-12)
    assert len(d["nodes"]["h0"]) == 3


def test_h5(capsys, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "op.h5"
    code, _, _ = run(capsys, "op", NETLISTS / "divider.cir", "--h5", path, "--tol", "1e-10")
    assert code == 0
    with h5py.File(path) as f:
        names = [n.decode() for n in f["node_names"][()]]
        assert f["voltages"][names.index("out"), 0] == pytest.approx(5.0)
        assert f.attrs["converged"]


def one_line_error(capsys, *argv, expect):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert expect in err, err
    return err


def test_errors_are_one_line(capsys, tmp_path):
    one_line_error(capsys, "op", tmp_path / "missing.cir", expect="missing.cir: no such file")
    bad = tmp_path / "bad.cir"
    bad.write_text("title\nR1 a 0 1k\nR2 a\n.end\n")
    err = one_line_error(capsys, "op", bad, expect=f"{bad}:3")
    loop = tmp_path / "loop.cir"
    loop.write_text("title\nV1 a 0 1\nV2 a 0 2\nR1 a 0 1k\n.end\n")
    err = one_line_error(capsys, "op", loop, expect=f"{loop}: ")
    assert "v1" in err and "v2" in err
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 5)))
    one_line_error(capsys, "op", NETLISTS / "trainable.cir", "--inputs", x, expect="x.npy: expected a real numeric (B, 2)")
    np.save(x, np.array([[0.0, np.nan]]))
    one_line_error(capsys, "op", NETLISTS / "trainable.cir", "--inputs", x, expect="x.npy: inputs must be finite")
    junk = tmp_path / "junk.npy"
    junk.write_text("not numpy")
    one_line_error(capsys, "op", NETLISTS / "trainable.cir", "--inputs", junk, expect="junk.npy: ")


def test_console_script_exit_status(tmp_path):
    floating = tmp_path / "floating.cir"
    floating.write_text("title\nV1 a 0 1\nR1 a 0 1k\nR2 x y 1k\n.end\n")
    proc = subprocess.run([sys.executable, "-m", "resnet_sim.cli", "op", str(floating)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"{floating}: ") and "gmin" in proc.stderr and proc.stderr.count("\n") == 1
    proc = subprocess.run([sys.executable, "-m", "resnet_sim.cli", "op", str(floating), "--gmin", "1e-12", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["nodes"]["x"] == pytest.approx(0.0, abs=1e-9)


def test_reader_warnings_go_to_stderr(capsys, tmp_path):
    # temperature is not modelled: ngspice gives 1230 V here (tc1 at 50 degrees C), we give 1000 V and must say so
    path = tmp_path / "temp.cir"
    path.write_text("t\nI1 0 a 1\nR1 a 0 1k temp=50 tc1=0.01\n.temp 50\n.end\n")
    code, out, err = run(capsys, "op", path)
    assert code == 0 and "1000" in out
    lines = err.splitlines()
    assert f"warning: {path}:3: r1: ignored parameters temp, tc1" in lines
    assert f"warning: {path}:4: ignored .temp" in lines


def test_warnings_are_capped(capsys, tmp_path):
    from resnet_sim.cli import MAX_WARNINGS

    path = tmp_path / "many.cir"
    path.write_text("t\nI1 0 a 1\n" + "".join(f"R{i} a 0 1k tc1=0.01\n" for i in range(MAX_WARNINGS + 5)) + ".end\n")
    code, _, err = run(capsys, "op", path)
    lines = err.splitlines()
    assert code == 0 and len(lines) == MAX_WARNINGS + 1 and lines[-1] == "warning: ... and 5 more"


def test_spice_refuses_names_ngspice_cannot_take_in_one_line(capsys, tmp_path):
    path = tmp_path / "nbsp.cir"
    path.write_text("t\nV1 a 0 1\nR1 a a\u00a0b 1k\nR2 a\u00a0b 0 1k\n.end\n", encoding="utf-8")
    code, _, err = run(capsys, "spice", path)
    assert code == 2
    assert err.strip().splitlines() == [f"{path}: cannot hand this circuit to ngspice: cannot write node name "
                                        "'a\\xa0b': it contains '\\xa0'"]


def test_bad_arguments_and_inputs_are_one_line_errors(capsys, tmp_path):
    trainable = NETLISTS / "trainable.cir"
    np.save(tmp_path / "empty.npy", np.zeros((0, 2)))
    (tmp_path / "zero.npy").write_bytes(b"")
    np.savez(tmp_path / "arch.npz", a=np.zeros((1, 2)))
    np.save(tmp_path / "complex.npy", np.zeros((1, 2)) + 1j)
    (tmp_path / "tiny.cir").write_text("t\nV1 a 0 1\nR1 a 0 1e-320\n.end\n")  # 1 / R overflows
    (tmp_path / "big.cir").write_text("t\nV1 a 0 1e308\nV2 b 0 -1e308\nR1 a b 1\n.end\n")  # its current overflows
    cases = [
        (["op", trainable, "--inputs", tmp_path / "empty.npy"], "empty.npy: no samples"),
        (["op", trainable, "--inputs", tmp_path / "zero.npy"], "zero.npy: not a numpy .npy array"),
        (["op", trainable, "--inputs", tmp_path / "arch.npz"], "arch.npz: not a numpy .npy array (an .npz archive"),
        (["op", trainable, "--inputs", tmp_path / "complex.npy"], "complex.npy: expected a real numeric (B, 2) array"),
        (["op", tmp_path / "tiny.cir"], "resistor r1 has resistance 9.99989e-321 ohm"),
        (["op", tmp_path / "big.cir", "--json"], "big.cir: the operating point overflows double precision"),
        (["op", trainable, "--tol", "0"], "--tol must be a finite number > 0, got 0.0"),
        (["op", trainable, "--tol", "inf"], "--tol must be a finite number > 0, got inf"),
        (["op", trainable, "--gmin", "nan"], "--gmin must be a finite conductance > 0"),
        (["spice", trainable, "--timeout", "nan"], "--timeout must be a number of seconds"),
        (["spice", trainable, "--timeout", "-1"], "--timeout must be a number of seconds"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and message in err, (argv, err)


def test_h5_keeps_symlinks_permissions_and_non_files(capsys, tmp_path):
    import os
    import stat

    (tmp_path / "link.h5").symlink_to("target.h5")
    code, _, _ = run(capsys, "op", NETLISTS / "divider.cir", "--h5", tmp_path / "link.h5")
    assert code == 0 and (tmp_path / "link.h5").is_symlink() and (tmp_path / "target.h5").is_file()
    old = os.umask(0o022)
    try:
        run(capsys, "op", NETLISTS / "divider.cir", "--h5", tmp_path / "new.h5")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.h5").stat().st_mode) == 0o644  # not mkstemp's 0600
    (tmp_path / "folder").mkdir()
    code, _, err = run(capsys, "op", NETLISTS / "divider.cir", "--h5", tmp_path / "folder")
    assert code == 2 and err == f"{tmp_path / 'folder'}: exists and is not a regular file\n"
    code, _, err = run(capsys, "op", NETLISTS / "divider.cir", "--h5", tmp_path / "no" / "x.h5")
    assert code == 2 and err == f"{tmp_path / 'no' / 'x.h5'}: No such file or directory\n"
