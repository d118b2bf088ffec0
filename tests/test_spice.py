"""The ngspice bridge: raw files, export, failure detection, agreement with closed forms and with our solver."""

import math
import struct
from pathlib import Path

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim import spice
from resnet_sim.circuit import Circuit, DiodeModel
from resnet_sim.cli import main
from resnet_sim.spice.compare import max_abs_dv
from resnet_sim.spice.export import SpiceDeck
from resnet_sim.spice.raw import RawFileError, read_raw

VT = 1.380649e-23 * 300.15 / 1.602176634e-19  # thermal voltage at ngspice's default 27 C, volts


def _raw_bytes(names, values, flags="real", title="t", plotname="Operating Point"):
    values = np.asarray(values)
    header = (f"Title: {title}\nDate: today\nPlotname: {plotname}\nFlags: {flags}\n"
              f"No. Variables: {len(names)}\nNo. Points: {values.shape[0]}\nVariables:\n"
              + "".join(f"\t{k}\t{n}\t{'voltage' if n.startswith('v') else 'current'}\n" for k, n in enumerate(names))
              + "Binary:\n")
    flat = values.astype(np.complex128).view(np.float64) if flags == "complex" else values.astype(np.float64)
    return header.encode() + struct.pack(f"<{flat.size}d", *flat.ravel())


def test_read_raw_two_plots_full_precision(tmp_path):
    real = np.array([[1 / 3, -2e-300, math.pi], [0.1, 0.2, 0.3]])
    cplx = np.array([[1 + 2j, -0.5j]])
    path = tmp_path / "x.raw"
    path.write_bytes(_raw_bytes(["v(a)", "v(x1.b)", "i(v1)"], real)
                     + _raw_bytes(["V(a)", "i(v.x1.v2)"], cplx, flags="complex", plotname="AC Analysis"))
    op, ac = read_raw(path)
    assert op.names == ("v(a)", "v(x1.b)", "i(v1)") and op.types == ("voltage", "voltage", "current")
    assert np.array_equal(op.values, real) and op.point(1) == {"v(a)": 0.1, "v(x1.b)": 0.2, "i(v1)": 0.3}
    assert ac.plotname == "AC Analysis" and ac.names == ("v(a)", "i(v.x1.v2)")
    assert np.array_equal(ac.values, cplx)


def test_read_raw_rejects_truncated_file(tmp_path):
    path = tmp_path / "x.raw"
    path.write_bytes(_raw_bytes(["v(a)", "v(b)"], np.ones((1, 2)))[:-4])
    with pytest.raises(RawFileError, match="truncated"):
        read_raw(path)


def _divider() -> Circuit:
    """1 V over 1k + 3k (node mid = 0.75 V), an x2 VCVS on mid, a flattened-style subcircuit name."""
    c = Circuit("divider")
    c.add("V", "v1", ["in", "0"], 1.0)
    c.add("R", "r1", ["in", "mid"], 1e3)
    c.add("R", "x1.r2", ["mid", "0"], 3e3)
    c.add("E", "e1", ["o", "0", "mid", "0"], 2.0)
    c.add("R", "rl", ["o", "x1.q"], 1e3)
    c.add("V", "x1.vsense", ["x1.q", "0"], 0.0)
    c.add("C", "c1", ["mid", "0"], 1e-9)
    c.add("L", "l1", ["o", "o2"], 1e-3)
    c.add("R", "r3", ["o2", "0"], 1e3)
    c.inputs, c.outputs = ["v1"], ["o"]
    return c


def test_export_card_names_and_dropped_annotations():
    deck = spice.export(_divider())
    lines = deck.text.splitlines()
    assert lines[0] == "divider" and lines[-1] == ".end"
    assert "r.x1.r2 mid 0 3000.0" in lines and "v.x1.vsense x1.q 0 0.0" in lines and "e1 o 0 mid 0 2.0" in lines
    assert ".options reltol=1e-06 vntol=1e-09 abstol=1e-15" in lines and ".options acct" in lines
    assert not any(line.startswith((".inputs", ".outputs", ".trainable")) for line in lines)
    assert deck.branches == {"v1": "v1", "v.x1.vsense": "x1.vsense", "e1": "e1"}


@pytest.mark.ngspice
def test_divider_matches_closed_form(ngspice):
    result = spice.simulate(_divider(), ngspice=ngspice)
    v = result.voltages
    assert v["in"] == 1.0 and v["mid"] == pytest.approx(0.75, abs=1e-12)
    assert v["o"] == pytest.approx(1.5, abs=1e-12) and v["o2"] == pytest.approx(1.5, abs=1e-12)
    # SPICE sign: current entering the + terminal; 1 V drives 0.25 mA out of v1's + terminal
    assert result.currents["v1"] == pytest.approx(-0.25e-3, rel=1e-9)
    assert result.currents["x1.vsense"] == pytest.approx(1.5e-3, rel=1e-9)
    assert set(v) == {"in", "mid", "o", "o2", "x1.q"}
    assert result.wall > 0 and "total_analysis_time" in result.stats and "matrix_reorder_time" in result.stats


@pytest.mark.ngspice
@pytest.mark.parametrize("n", [1e-2, 1e-4, 1e-6])
def test_diode_drop_is_n_vt_log(ngspice, n):
    """1 mA forced through the near-ideal diode: V = N Vt ln(1 + I/IS), the gap to the ideal 0 V."""
    c = Circuit("forward diode")
    c.add("I", "i1", ["0", "a"], 1e-3)
    c.add("D", "d1", ["a", "0"])
    v = spice.simulate(c, ngspice=ngspice, diode_n=n).voltages["a"]
    assert v == pytest.approx(n * VT * math.log(1 + 1e-3 / 1e-12), rel=1e-3)


@pytest.mark.ngspice
def test_forward_drop_and_series_resistance(ngspice):
    """5 V, 1 kohm, diode VF = 0.7 V, RS = 100 ohm: I = 4.3 V / 1.1 kohm, reported under the diode's name."""
    c = Circuit("vf diode")
    c.models["dv"] = DiodeModel(vf=0.7, rs=100.0)
    c.add("V", "v1", ["in", "0"], 5.0)
    c.add("R", "r1", ["in", "a"], 1e3)
    c.add("D", "d1", ["a", "0"], model="dv")
    result = spice.simulate(c, ngspice=ngspice)
    i = 4.3 / 1.1e3
    assert result.currents["d1"] == pytest.approx(i, abs=1e-9)
    assert result.voltages["a"] == pytest.approx(0.7 + 100 * i, abs=1e-6)
    assert set(result.voltages) == {"in", "a"}  # the internal node stays internal


@pytest.mark.ngspice
def test_singular_circuit_is_an_error(ngspice):
    c = Circuit("floating")
    c.add("V", "v1", ["in", "0"], 1.0)
    c.add("R", "r1", ["in", "a"], 1e3)
    c.add("R", "r2", ["b", "c"], 1e3)
    c.add("I", "i1", ["0", "b"], 1e-3)
    with pytest.raises(spice.SpiceError, match="singular matrix") as err:
        spice.simulate(c, ngspice=ngspice)
    assert any("check node b" in line for line in err.value.lines)


@pytest.mark.ngspice
def test_parse_error_is_an_error(ngspice):
    deck = SpiceDeck("bad\nV1 in 0 1\nR1 in 0 foo\n.op\n.end\n", {"in": "in"}, {})
    with pytest.raises(spice.SpiceError, match="exited with status 1") as err:
        spice.run(deck, ngspice=ngspice)
    assert any("foo" in line for line in err.value.lines)


@pytest.mark.ngspice
def test_timeout(ngspice):
    c = rs.models.drn("xs").circuit(np.full((1, 784), 0.5))
    with pytest.raises(spice.SpiceTimeout, match="timed out after 0.2 s"):  # ngspice needs ~2 s on it
        spice.simulate(c, timeout=0.2, ngspice=ngspice)


def test_missing_binary_says_how_to_install():
    with pytest.raises(spice.SpiceError, match="apt-get install ngspice"):
        spice.simulate(_divider(), ngspice="/nonexistent/ngspice")


# ---------------------------------------------------------------------------- against our solver
NETLISTS = sorted((Path(__file__).resolve().parents[1] / "netlists").glob("*.cir"))
DIODE_TOL = 1e-5  # volts: the near-ideal diode model's gap to the ideal one (module docstring of spice.export)


def _gap(circuit, **options):
    """Between our answer and ngspice's: (max |dV| volts, that relative to max |V|, the largest source-current
    gap relative to the largest source current)."""
    op = rs.solve(circuit)
    result = spice.simulate(circuit, **options)
    ours = dict(zip(op.node_names, op.voltages[:, 0].tolist()))
    gap, rel = max_abs_dv(ours, result.voltages)
    di = max((abs(op.current(name) - i) for name, i in result.currents.items()), default=0.0)
    scale = max((abs(i) for i in result.currents.values()), default=0.0)
    return gap, rel, di / scale if scale else di


@pytest.mark.ngspice
@pytest.mark.parametrize("path", NETLISTS, ids=lambda p: p.name)
def test_netlist_agrees_with_ngspice(ngspice, path):
    c = rs.read_netlist(path)
    gap, rel, rel_current = _gap(c, ngspice=ngspice)
    if len(c["D"]):
        assert gap <= DIODE_TOL
    else:
        assert rel <= 1e-9 and rel_current <= 1e-9


DIODE_NETLISTS = [p for p in NETLISTS if len(rs.read_netlist(p)["D"])] if NETLISTS else []


@pytest.mark.ngspice
@pytest.mark.parametrize("path", DIODE_NETLISTS, ids=lambda p: p.name)
def test_diode_gap_shrinks_as_the_model_steepens(ngspice, path):
    c = rs.read_netlist(path)
    gaps = [_gap(c, ngspice=ngspice, diode_n=n)[0] for n in (1e-2, 1e-4, 1e-6)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] <= DIODE_TOL


@pytest.mark.ngspice
def test_compare_divider(ngspice):
    comparison = spice.compare(_divider(), ngspice=ngspice)
    assert comparison.max_dv <= 1e-12 and comparison.rel_dv <= 1e-12
    assert set(comparison.dv) == {"in", "mid", "o", "o2", "x1.q"}
    assert min(comparison.spice_process, comparison.ours_process, comparison.ours_solve) > 0
    text = comparison.table()
    assert "max |dV|" in text and "whole process" in text and "divider" in text


@pytest.mark.ngspice
def test_cli_spice(ngspice, tmp_path, capsys):
    path = tmp_path / "divider.cir"
    path.write_text(rs.write_netlist(_divider()))
    assert main(["spice", str(path), "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "max |dV|" in out and "whole process" in out and "resnet_sim" in out


@pytest.mark.ngspice
def test_cli_spice_failure_is_one_line(ngspice, tmp_path, capsys):
    path = tmp_path / "divider.cir"
    path.write_text(rs.write_netlist(_divider()))
    assert main(["spice", str(path), "--timeout", "1e-4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}: ngspice timed out after 0.0001 s"]


def test_cli_spice_missing_file(tmp_path, capsys):
    assert main(["spice", str(tmp_path / "nope.cir")]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.cir'}: no such file"


# ---------------------------------------------------------------------------- batches: SPICE in the loop
def _batch_circuit() -> Circuit:
    """A voltage and a current input, a diode between free nodes, a diode with a forward drop (an internal
    node), and a node and a resistor named like the batch deck's own additions (k, r.nudge.0)."""
    c = Circuit("batch")
    c.models["dv"] = DiodeModel(vf=0.3)
    c.add("V", "vin", ["in", "0"], 0.0)
    c.add("I", "iin", ["0", "a"], 0.0)
    c.add("V", "vbias", ["bias", "0"], 1.0)
    for name, ends, ohms in (("r1", ["in", "a"], 1e3), ("r2", ["a", "k"], 2e3), ("nudge.0", ["k", "0"], 3e3),
                             ("r3", ["bias", "k"], 5e3), ("r4", ["k", "out"], 1e3), ("r5", ["out", "0"], 4e3)):
        c.add("R", name, ends, ohms)
    c.add("D", "d1", ["a", "k"])
    c.add("D", "d2", ["out", "0"], model="dv")
    c.inputs, c.outputs = ["vin", "iin"], ["out", "a"]
    return c


BATCH_X = np.array([[0.5, 1e-4], [-0.3, 1e-4], [0.9, 1e-4]])  # iin the same in every sample
BATCH_Y = np.array([[0.2, 0.1], [0.0, -0.2], [0.4, 0.3]])
BATCH_BETAS = (0.0, -2e-4, 2e-4)


@pytest.mark.ngspice
@pytest.mark.parametrize("mode", spice.MODES)
def test_batch_agrees_with_solve_in_every_phase(ngspice, mode):
    c = _batch_circuit()
    deck = spice.batch_deck(c, BATCH_X, BATCH_BETAS, BATCH_Y, mode=mode)
    lines = deck.text.splitlines()
    if mode == "dc":
        assert any(line.startswith("b.vin in 0 v=pwl(v(k_),") for line in lines)  # node k taken
        assert "iin 0 a 0.0001" in lines and ".dc v.k 0 8 1" in lines
        assert any(line.startswith("b.nudge.0 out 0 i=(pwl(") for line in lines)
    else:
        assert "r.nudge.0_ out nudge.0 1e+300" in lines  # the circuit's r.nudge.0 is taken
        assert "alter r.nudge.0_ = -5000.0" in lines  # a negative nudge: a negative resistance
    result = spice.run_batch(deck, ngspice=ngspice)
    assert result.potentials.shape == (3, c.n_nodes, 3) and result.wall > 0 and result.raw_bytes > 0
    p = rs.compile(c)
    for phase, beta in enumerate(BATCH_BETAS):
        op = rs.solve(p, inputs=BATCH_X, beta=beta, targets=BATCH_Y)
        gap = np.max(np.abs(op.potentials[: c.n_nodes] - result.potentials[phase]))
        assert gap <= DIODE_TOL, (beta, gap)
        assert np.max(np.abs(op.outputs - result.potentials[phase][[c.node_id("out"), c.node_id("a")]].T)) <= DIODE_TOL


def test_batch_deck_refuses_what_it_cannot_run():
    c = _batch_circuit()
    with pytest.raises(ValueError, match="shape"):
        spice.batch_deck(c, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="need targets"):
        spice.batch_deck(c, BATCH_X, BATCH_BETAS)
    with pytest.raises(ValueError, match="unknown batch mode"):
        spice.batch_deck(c, BATCH_X, mode="tran")
    with pytest.raises(ValueError, match="finite"):
        spice.batch_deck(c, BATCH_X, (0.0, np.nan), BATCH_Y)


@pytest.mark.ngspice
@pytest.mark.parametrize("mode", spice.MODES)
def test_spice_model_gives_the_general_paths_ep_gradient(ngspice, mode):
    """rs.train's EP estimator on ngspice's equilibria (XOR: amplifiers, diodes, trainable biases): one ngspice
    process per step, the estimate of the general path to 1e-4."""
    from resnet_sim.train import EquilibriumPropagation
    from resnet_sim.train.circuit_model import CircuitModel

    p = rs.compile(rs.read_netlist(Path(__file__).resolve().parents[1] / "netlists" / "xor.cir"))
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(0, 1, (4, 2)), rng.uniform(0, 1, (4, 2))
    model = spice.SpiceModel(p, mode=mode, ngspice=ngspice)
    ours, ours_free = EquilibriumPropagation(0.02)(CircuitModel(p), X, Y)
    theirs, free = EquilibriumPropagation(0.02)(model, X, Y)
    assert len(model.records) == 1 and model.records[0]["phases"] == 3 and model.records[0]["samples"] == 4
    assert np.max(np.abs(theirs - ours)) <= 1e-4 * np.max(np.abs(ours))
    assert np.max(np.abs(model.outputs(free) - ours_free.outputs)) <= DIODE_TOL
    # a state read before the nudged phases are asked for: they run in a second process
    free = model.free(X)
    assert free.outputs.shape == (4, 2) and len(model.records) == 2
    nudged = model.nudged(X, Y, 0.02, free)
    assert nudged.potentials.shape == (p.circuit.n_nodes, 4) and len(model.records) == 3
    assert model.records[-1]["phases"] == 1 and model.pop_stats()["ngspice_processes"] == 3


def test_failed_gmin_stepping_rescued_by_source_stepping_is_no_failure(tmp_path):
    from resnet_sim.spice.run import check

    raw = tmp_path / "out.raw"
    raw.write_bytes(b"")
    gmin = "Warning: Dynamic gmin stepping failed\nWarning: True gmin stepping failed\n"
    check(0, gmin + "Note: Starting source stepping\nNote: Source stepping completed\n", raw)
    with pytest.raises(spice.SpiceError, match="cannot be trusted"):
        check(0, gmin, raw)  # no source stepping: the gmin failure stands
    with pytest.raises(spice.SpiceError, match="cannot be trusted") as err:  # a second op's source stepping failed
        check(0, 2 * (gmin + "Note: Starting source stepping\n") + "Note: Source stepping completed\n"
              "Warning: source stepping failed\n", raw)
    assert "Warning: source stepping failed" in err.value.lines
