"""read_netlist: cards, subcircuits, includes, models, training cards, warnings and errors."""

from pathlib import Path

import numpy as np
import pytest

import resnet_sim as rs
from resnet_sim import DiodeModel, NetlistError, TrainableSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[False, True], ids=["general", "fast"])
def read(request):
    """read_netlist with the fast path forced off or on (both must give the same circuit)."""
    return lambda source: rs.read_netlist(source, fast=request.param)


def value(c, name):
    kind, row = c.element(name)
    return c[kind].value[row]


def nodes(c, name):
    kind, row = c.element(name)
    return [c.node_names[i] for i in c[kind].nodes[row]]


# ---- basic cards -----------------------------------------------------------------------------------
def test_divider_file(read):
    c = read(ROOT / "netlists" / "divider.cir")
    assert c.title == "Voltage divider: 10 V across two 1 kOhm resistors"
    assert c.node_names == ["0", "in", "out"]
    assert c["R"].names.tolist() == ["r1", "r2"]
    assert c["R"].value.tolist() == [1000.0, 1000.0]
    assert nodes(c, "r1") == ["in", "out"] and nodes(c, "r2") == ["out", "0"]
    assert c["V"].value.tolist() == [10.0]
    assert c.warnings == []


def test_first_line_is_title_even_if_it_looks_like_a_card(read):
    c = read("R1 a 0 1\nR2 a 0 2\nV1 a 0 1\n")
    assert c.title == "R1 a 0 1"
    assert c["R"].names.tolist() == ["r2"]


def test_title_card_overrides(read):
    assert read("first\n.title the real title\nr1 a 0 1\n").title == "the real title"


def test_comments_continuations_case(read):
    c = read("""title
* a comment
  * an indented comment
R1 IN Out 1k ; inline comment
R2 out GND 2k $ another
r3 in
* comment between a card and its continuation
+ 0
+ 3k
v1 in 0 5
""")
    assert c["R"].names.tolist() == ["r1", "r2", "r3"]
    assert nodes(c, "r1") == ["in", "out"] and nodes(c, "r2") == ["out", "0"] and nodes(c, "r3") == ["in", "0"]
    assert c["R"].value.tolist() == [1000.0, 2000.0, 3000.0]


def test_crlf_tabs_and_blank_lines(read):
    c = read("t\r\n\r\nR1\tA\t0\t1k\r\n\r\nV1 a 0 2\r\n")
    assert c["R"].value.tolist() == [1000.0] and nodes(c, "r1") == ["a", "0"]


@pytest.mark.parametrize("card, dc, warns", [
    ("V1 a 0 5", 5.0, False), ("V1 a 0 DC 5", 5.0, False), ("V1 a 0 dc=5", 5.0, False),
    ("V1 a 0 DC 5 AC 1", 5.0, False), ("V1 a 0 AC 1 0 DC 2", 2.0, False), ("V1 a 0 5 AC 1 90", 5.0, False),
    ("V1 a 0 PULSE(1 2 1n 1n 1n 5n 10n)", 1.0, True), ("V1 a 0 SIN(0.5 1 1k)", 0.5, True),
    ("V1 a 0 PWL(0 2 1u 3)", 2.0, True), ("V1 a 0 EXP(-1 1 0 1n)", -1.0, True),
    ("V1 a 0 DC 3 PULSE(1 2)", 3.0, False), ("V1 a 0 pulse 4 5 1n", 4.0, True), ("V1 a 0", 0.0, True),
    ("V1 a 0 AM(1 2 3 4)", 0.0, True),
])
def test_source_forms(read, card, dc, warns):
    c = read(f"t\n{card}\nR1 a 0 1\n")
    assert c["V"].value.tolist() == [dc]
    assert any("v1: no DC value" in w for w in c.warnings) == warns


def test_current_source_sign_and_units(read):
    c = read(ROOT / "netlists" / "current_sources.cir")
    assert c["I"].value.tolist() == [0.002, 0.001]
    assert nodes(c, "i1") == ["0", "a"]
    assert c["R"].value.tolist() == [1000.0, 2000.0, 3000.0]


def test_all_element_kinds_and_columns(read):
    c = read("""t
r1 a b 1
v1 a 0 2
i1 b 0 3m
d1 b c
e1 e 0 b c 4
c1 c 0 5p
l1 c d 6u
r2 d 0 7
""")
    assert {k: n for k, n in c.n_elements().items() if n} == dict(R=2, V=1, I=1, D=1, E=1, C=1, L=1)
    assert nodes(c, "e1") == ["e", "0", "b", "c"] and value(c, "e1") == 4.0
    assert value(c, "c1") == 5e-12 and value(c, "l1") == 6e-6 and value(c, "i1") == 3e-3
    assert c["D"].models.tolist() == [""]


def test_value_keywords_and_resistor_multipliers(read):
    # as ngspice: R1 a b r=1k (the keyword wins over a positional value), resistance = r * scale / m
    c = read("""t
.param r=5k
R1 a b r=3k
R2 b 0 1k R=2k
R3 a c 1k m=2 m=4
R4 c 0 RESISTANCE={r} scale=2 m=0.5 tc1=0.01
R5 a d r
C1 d 0 c=1p
C2 d 0 CAPACITANCE=2p m=3
L1 a e l=1u
L2 e 0 inductance=2u
V1 a 0 1
""")
    assert c["R"].value.tolist() == [3000.0, 2000.0, 250.0, 20000.0, 5000.0]
    assert c["C"].value.tolist() == [1e-12, 2e-12] and c["L"].value.tolist() == [1e-6, 2e-6]
    assert [w.split(": ", 1)[1] for w in c.warnings] == ["r4: ignored parameters tc1", "c2: ignored parameters m"]

def test_flattened_name_prefix_is_stripped(read):
    c = read("t\nr.x1.r3 a 0 1\nv.x1.vs a 0 1\nd.dd a 0\nrr.x a 0 2\n")
    assert c["R"].names.tolist() == ["x1.r3", "rr.x"]
    assert c["V"].names.tolist() == ["x1.vs"] and c["D"].names.tolist() == ["dd"]


def test_after_end_ignored(read):
    c = read("t\nr1 a 0 1\n.end\nr2 a 0 1\nQ1 garbage\n")
    assert c["R"].names.tolist() == ["r1"]


# ---- parameters and subcircuits --------------------------------------------------------------------
def test_params_any_order_and_bare_names(read):
    c = read("t\nR1 a 0 {2*b}\n.param b = {a + 1}\n.param a=2k\nR2 a 0 a\nR3 a 0 'a/2'\n.param c = a*2 + 1\nR4 a 0 c\n")
    assert c["R"].value.tolist() == [4002.0, 2000.0, 1000.0, 4001.0]


def test_bare_param_expression_with_function_arguments(read):
    # as ngspice: in a bare expression (no braces or quotes) a comma separates function arguments
    c = read("t\n.param a=2 b=3\n.param hi = max(a, b) lo=min( a , 1k ) both = max(a,b)*min(a, -b)\n"
             ".subckt s p big=max(a, 5)\nR1 p 0 big\n.ends\nX1 x s big=max(7, b)\n"
             "R1 x 0 hi\nR2 x 0 lo\nR3 x 0 {-both}\nV1 x 0 1\n")
    assert c["R"].value.tolist() == [7.0, 3.0, 2.0, 9.0]

def test_subcircuit_example(read):
    c = read(ROOT / "netlists" / "subckt_params.cir")
    assert c["R"].names.tolist() == ["x1.r1", "x1.r2", "x2.xa.r1", "x2.xa.r2", "x2.xb.r1", "x2.xb.r2"]
    assert c["R"].value.tolist() == [2000.0, 1000.0, 2000.0, 1000.0, 1000.0, 1000.0]
    assert nodes(c, "x2.xa.r2") == ["x2.mid", "0"] and nodes(c, "x2.xb.r1") == ["x2.mid", "b"]
    assert nodes(c, "x1.r1") == ["in", "a"]


def test_subckt_internal_nodes_params_globals(read):
    c = read("""t
.global vdd
.param g=5
.subckt cell a b r=1k
.param half={r/2}
R1 a mid {half}
R2 mid b {half}
Rg mid vdd {g}
Rz mid gnd 1
.ends
Vdd vdd 0 1
X1 n1 0 cell
X2 n1 n2 cell params: r=4k
""")
    assert c["R"].names.tolist() == ["x1.r1", "x1.r2", "x1.rg", "x1.rz", "x2.r1", "x2.r2", "x2.rg", "x2.rz"]
    assert c["R"].value.tolist() == [500.0, 500.0, 5.0, 1.0, 2000.0, 2000.0, 5.0, 1.0]
    assert nodes(c, "x1.r1") == ["n1", "x1.mid"] and nodes(c, "x2.rg") == ["x2.mid", "vdd"]
    assert nodes(c, "x1.rz") == ["x1.mid", "0"]


def test_ideal_diode_models_and_warnings(read):
    c = read(ROOT / "netlists" / "diode_model.cir")
    assert c.models == {"dsil": DiodeModel(vf=0.7, rs=100.0, params=(("is", 1e-14), ("cjo", 2e-12)))}
    assert c["D"].models.tolist() == ["dsil"]
    assert any("is, cjo ignored" in w for w in c.warnings)


def test_diode_area_and_multiplier_ignored_without_series_resistance(read):
    c = read("t\n.model dv D(VF=0.7)\n.model dr D(RS=10)\nR1 a 0 1\nD1 a 0 dv m=2 area=3\nD2 a 0 dr m=1 off\n")
    assert c["D"].models.tolist() == ["dv", "dr"]
    assert [w.split(": ", 1)[1] for w in c.warnings] == ["d1: ignored m = 2 area = 3", "d2: ignored m = 1 off"]

def test_model_defined_after_use_and_non_diode_models(read):
    c = read("t\nd1 a 0 dm\nr1 a 0 1\n.model dm d vf=0.3\n.model qn NPN(BF=100)\n")
    assert c.models == {"dm": DiodeModel(vf=0.3)}
    assert any("ignored .model qn npn" in w.lower() for w in c.warnings)


def test_resnet_ideal_model_reads_as_ideal(read):
    c = read("t\nd1 a 0 resnet_ideal\nr1 a 0 1\n.model resnet_ideal D(IS=1e-14 N=0.01)\n")
    assert c["D"].models.tolist() == [""] and c.models == {}


# ---- includes --------------------------------------------------------------------------------------
def test_include_relative_to_including_file(tmp_path, read):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "parts.inc").write_text("* no title line in an included file\nR2 b 0 2k\n.include more.inc\n")
    (tmp_path / "sub" / "more.inc").write_text("R3 b 0 3k\n")
    (tmp_path / "top.cir").write_text("top\nV1 b 0 1\n.include sub/parts.inc\nR4 b 0 4k\n")
    c = read(tmp_path / "top.cir")
    assert c["R"].names.tolist() == ["r2", "r3", "r4"]


def test_byte_order_mark_is_skipped_in_every_file(tmp_path, read):
    bom = "\ufeff".encode()
    (tmp_path / "parts.inc").write_bytes(bom + b"R2 b 0 2k\r\n")
    (tmp_path / "top.cir").write_bytes(bom + b"BOM title\r\nV1 b 0 1\r\n.include parts.inc\r\n")
    c = read(tmp_path / "top.cir")
    assert c.title == "BOM title" and c["R"].names.tolist() == ["r2"] and c["R"].value.tolist() == [2000.0]

def test_include_loop_and_missing(tmp_path, read):
    (tmp_path / "a.inc").write_text("R1 a 0 1\n.include b.inc\n")
    (tmp_path / "b.inc").write_text(".include a.inc\n")
    (tmp_path / "top.cir").write_text("top\n.include a.inc\n")
    with pytest.raises(NetlistError, match="include loop") as err:
        read(tmp_path / "top.cir")
    assert err.value.file.endswith("b.inc") and err.value.line == 1
    (tmp_path / "m.cir").write_text("top\nR1 a 0 1\n.include nowhere.inc\n")
    with pytest.raises(NetlistError, match="include file not found") as err:
        read(tmp_path / "m.cir")
    assert err.value.line == 3


# ---- ignored cards ---------------------------------------------------------------------------------
def test_ignored_cards_are_warnings(read):
    c = read(ROOT / "netlists" / "spice_compat.cir")
    file = str(ROOT / "netlists" / "spice_compat.cir")
    for line, what in [(5, ".options"), (14, ".tran"), (15, ".print"), (16, ".control block")]:
        assert f"{file}:{line}: ignored {what}" in c.warnings
    assert c["V"].value.tolist() == [5.0, 0.0]
    assert c["C"].names.tolist() == ["c1", "c2"] and c["L"].value.tolist() == [1e-5]


# ---- training cards --------------------------------------------------------------------------------
def test_training_cards(read):
    c = read(ROOT / "netlists" / "trainable.cir")
    assert c.inputs == ["vin0", "vin1"] and c.outputs == ["out"]
    assert c.trainable == [TrainableSpec(("rh*", "ro_*"), 1e-5, 1e-2)]
    assert c.trainable_mask().tolist() == [True, True, True, True, True, True, False]


def test_training_cards_in_comment_form(read):
    c = read("t\nv1 a 0 1\ni1 0 a 1\nr1 a 0 1\n*@ .inputs V1 i1\n*@ .outputs A\n*@ .trainable r*\n* .inputs not me\n")
    assert c.inputs == ["v1", "i1"] and c.outputs == ["a"] and c.trainable == [TrainableSpec(("r*",))]


# ---- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("letter", list("QMJKBGFHSWTUOZYPNA"))
def test_unsupported_elements(read, letter):
    with pytest.raises(NetlistError, match="only resistive DC elements R V I D E C L X are simulated") as err:
        read(f"t\nR1 a 0 1\n{letter}1 a b c d\n")
    assert (err.value.file, err.value.line, err.value.col) == ("<string>", 3, 1)


@pytest.mark.parametrize("body, line, message", [
    ("R1 a 0\n", 2, "missing resistance"),
    ("R1 a 0 0\n", 2, "resistance must be > 0"),
    ("R1 a 0 -5\n", 2, "resistance must be > 0"),
    ("R1 a 0 1 m=0\n", 2, "m must be > 0"),
    ("R1 a 0 r=1 scale=-2\n", 2, "scale must be > 0"),
    ("R1 a 0 m=2\n", 2, "missing resistance"),
    ("R1 a 0 r=1e300 scale=1e300\n", 2, "resistance must be > 0 ohms, got inf"),
    ("R1 a 0 1k2\n", 2, "malformed number"),
    ("R1 a 0 1e999\n", 2, "out of range"),
    ("R1 a\n", 2, "expected 2 nodes"),
    ("R1 a 0 {1/0}\n", 2, "division by zero"),
    ("R1 a 0 {foo}\n", 2, "unknown parameter 'foo'"),
    ("R1 a 0 zz\n", 2, "unknown parameter 'zz'"),
    (".param a={b}\n.param b={a}\nR1 a 0 a\n", 2, "depends on itself"),
    ("R1 a 0 1\nX1 a b nosuch\n", 3, "unknown subcircuit 'nosuch'"),
    (".subckt s p q\nR1 p q 1\n.ends\nX1 a s\n", 5, "has 2 ports"),
    (".subckt s p q r=1\nR1 p q r\n.ends\nX1 a b s w=2\n", 5, "has no parameter 'w'"),
    (".subckt s p q\nR1 p q 1\n.ends\nX1 a b s m=2\n", 5, r"has no parameter 'm' \(an instance multiplier m="),
    (".subckt s p q\nX1 p q s\n.ends\nX1 a b s\n", 3, "instantiates itself"),
    (".subckt s p q\nR1 p q 1\n", 2, "unclosed .subckt s"),
    ("R1 a 0 1\n.ends\n", 3, ".ends without .subckt"),
    ("D1 a 0 nomodel\n", 2, "unknown diode model 'nomodel'"),
    ("R1 a 0 1\nR1 a 0 2\n", 3, "duplicate element name 'r1'"),
    ("R.x a 0 1\nV.x a 0 2\n", 3, "duplicate element name 'x'"),
    ("R1 a 0 {1}\nR1 a 0 {2}\n", 3, "duplicate element name 'r1'"),
    ("R1 a 0 {1}\nR1 a 0 2\n", 3, "duplicate element name 'r1'"),
    ("R1 a 0 1\nR2 a 0 1\nR2 a 0 {1}\nR1 a 0 {2}\n", 4, "duplicate element name 'r2'"),
    (".subckt s p\nR1 p 0 1\n.ends\nX1 a s\nR.x1.r1 a 0 1\n", 6, "duplicate element name 'x1.r1'"),
    ("E1 a 0 VALUE={v(b)*2}\n", 2, "only the linear form"),
    ("E1 a 0 POLY(1) b 0 0 1\n", 2, "only the linear form"),
    ("R1 a 0 1\n.inputs v9\n", 3, "no voltage or current source named 'v9'"),
    ("R1 a 0 1\n.outputs zz\n", 3, "no node named 'zz'"),
    ("R1 a 0 1\n.trainable r* gmin=2 gmax=1\n", 3, "gmin <= gmax"),
    ("R1 a 0 1\n.bogus\n", 3, "unknown control card"),
    ("R1 a 0 1\n.lib models.lib tt\n", 3, ".lib is not supported"),
    ("+ r1 a 0 1\n", 2, "continuation line"),
    ("R1 a 0 {1+\n", 2, "unclosed '{'"),
    ("* only comments\n", None, "no circuit elements"),
    (".model d1 D(RS=-1)\nD1 a 0 d1\nR1 a 0 1\n", 2, "RS must be >= 0"),
    (".model d1 D(RS=10)\nR1 a 0 1\nD1 a 0 d1 m=2\n", 4, "m=2.0 would divide the series resistance RS"),
    (".model d1 D(RS=10)\nR1 a 0 1\nD1 a 0 d1 off area={3}\n", 4, "area=3.0 would divide"),
    ("R1 a 0 1\nD1 a 0 d1 2\n.model d1 D(RS=10)\n", 3, "area=2.0 would divide"),
    ("V1 a 0 DC\nR1 a 0 1\n", 2, "DC needs a value"),
    ("V1 a 0 1 2\nR1 a 0 1\n", 2, "unexpected '2'"),
    ("R1 a 0 1\n.control\nrun\n", 3, ".control block without .endc"),
])
def test_errors_point_at_the_line(read, body, line, message):
    with pytest.raises(NetlistError, match=message) as err:
        read("title\n" + body)
    assert err.value.line == line and err.value.file == "<string>"
    assert str(err.value).startswith(f"<string>:{line}: " if line else "<string>: ")


def test_error_column(read):
    with pytest.raises(NetlistError) as err:
        read("t\nR1 a 0 1\n  R2 a 0 -1k\n")
    assert (err.value.line, err.value.col) == (3, 10)


def test_empty_and_binary_input(read):
    with pytest.raises(NetlistError, match="no circuit elements"):
        read("\n")
    with pytest.raises(NetlistError, match="binary data") as err:
        read(b"t\nR1 a 0 1\nR2 a\x00b 0 1\n")
    assert err.value.line == 3
    with pytest.raises(NetlistError, match="not UTF-8") as err:
        read(b"t\nR1 a 0 1\n\xff\xfegarbage\n")
    assert err.value.line == 3


def test_unicode_names(read):
    c = read("t\nR1 knoten\u00e4 0 1\nV1 KNOTEN\u00c4 0 1\n")
    assert c.node_names == ["0", "knoten\u00e4"]


def test_path_versus_text(tmp_path):
    path = tmp_path / "one.cir"
    path.write_text("one\nR1 a 0 1\n")
    assert rs.read_netlist(path)["R"].names.tolist() == ["r1"]
    assert rs.read_netlist(str(path))["R"].names.tolist() == ["r1"]
    with pytest.raises(NetlistError, match="cannot read netlist file") as err:
        rs.read_netlist(str(tmp_path / "missing.cir"))
    assert err.value.file == str(tmp_path / "missing.cir")
    with pytest.raises(NetlistError, match="cannot read netlist file"):
        rs.read_netlist(tmp_path)  # a directory
    with pytest.raises(TypeError):
        rs.read_netlist(42)


def test_fast_path_values_match_general_reader_bit_for_bit():
    values = ["1k", "2.7p", "1234.5678901234567", "1e-05", "-3.3e+3meg", ".5", "5.", "7mil", "0.1u", "2.2kOhm",
              "1e0000003", "9" * 30, "1" + "0" * 39 + "e-39"]
    text = "t\n" + "".join(f"V{i} n{i} 0 {v}\n" for i, v in enumerate(values))
    fast, general = rs.read_netlist(text, fast=True), rs.read_netlist(text, fast=False)
    assert fast == general
    assert np.array_equal(fast["V"].value.view(np.int64), general["V"].value.view(np.int64))


def test_fast_path_numbers_bit_for_bit_on_many_values():
    """The fast path's Eisel-Lemire conversion (strtod for the rest) equals Python's float on 20k values:
    repr of random doubles over the whole exponent range, 1-19 digit literals, suffixes, decimal midpoints."""
    rng = np.random.default_rng(7)
    doubles = rng.standard_normal(8000) * 10.0 ** rng.integers(-320, 300, 8000)
    tokens = [repr(v) for v in doubles.tolist()]
    literals = (f"{rng.integers(1, 10 ** rng.integers(1, 19))}e{rng.integers(-340, 310)}" for _ in range(6000))
    tokens += [t for t in literals if float(t) < 1.7e308]  # larger ones are out of range (an error)
    suffixes = ["", "k", "meg", "m", "u", "n", "p", "f", "t", "g", "mil", "V", "kOhm"]
    tokens += [f"{rng.integers(0, 10**9) / 10 ** rng.integers(0, 9)}{suffixes[i % len(suffixes)]}" for i in range(4000)]
    for _ in range(2000):  # exact decimal midpoints between two doubles, and their neighbours
        m, e = int(rng.integers(2**52, 2**53)), int(rng.integers(-40, 40))
        w, q = ((2 * m + 1) << (e - 1), 0) if e >= 1 else ((2 * m + 1) * 5 ** (1 - e), e - 1)
        tokens.append(f"{w + int(rng.integers(-1, 2))}e{q}")
    text = "t\n" + "".join(f"V{i} n 0 {tok}\n" for i, tok in enumerate(tokens))
    fast, general = rs.read_netlist(text, fast=True), rs.read_netlist(text, fast=False)
    assert np.array_equal(fast["V"].value.view(np.int64), general["V"].value.view(np.int64))
    assert general["V"].value[:8000].tolist() == doubles.tolist()


# ---- agreements with ngspice 39 (each value below is what ngspice's .op printed for the same text) ------
def test_sin_source_dc_value_includes_its_phase(read):
    # ngspice: SIN(1 2 1k 0 0 90) -> 3 V (vo + va sin 90 deg); SIN(1 2 1k 1m 0 30) -> 2 V (the delay does not matter)
    c = read("t\nV1 a 0 SIN(1 2 1k 0 0 90)\nV2 b 0 SIN(1 2 1k 1m 0 30)\nV3 c 0 SIN(1 2 1k)\n.end\n")
    assert value(c, "v1") == pytest.approx(3.0)
    assert value(c, "v2") == pytest.approx(2.0)
    assert value(c, "v3") == 1.0


def test_instance_parameter_wins_over_a_body_param(read):
    # ngspice: X1 q=2 -> R1 = 2k; X2 (no override) -> the body's q=5 -> 5k
    c = read("t\n.subckt blk p q=1\n.param q=5\nR1 p 0 {q*1k}\n.ends\nX1 a blk q=2\nX2 b blk\n.end\n")
    assert value(c, "x1.r1") == 2000.0
    assert value(c, "x2.r1") == 5000.0


def test_global_node_wins_over_a_port_of_that_name(read):
    # ngspice: n1 = 2.5 V (the divider hangs on the global vcc = 5 V; the port connects nothing)
    c = read("t\n.global vcc\nVcc vcc 0 5\n.subckt s vcc o\nR1 vcc o 1k\nR2 o 0 1k\n.ends\nV2 x 0 2\nX1 x n1 s\n.end\n")
    assert nodes(c, "x1.r1") == ["vcc", "n1"]
    assert rs.solve(c).voltage("n1") == pytest.approx(2.5)


def test_include_name_in_single_quotes(tmp_path, read):
    (tmp_path / "part.inc").write_text("R9 a 0 1k\n")
    (tmp_path / "top.cir").write_text("t\nI1 0 a 1\n.include 'part.inc'\n.end\n")
    assert value(read(tmp_path / "top.cir"), "r9") == 1000.0


def test_unknown_models_are_reported_in_reading_order(read):
    # the fast path checks the models of a whole chunk at once; it must name the first line, as the card parser does
    with pytest.raises(NetlistError, match="unknown diode model 'dz'") as err:
        read("t\nV1 n0 0 1\nD1 n0 n1 dz\nD2 n0 n1 da\nR1 n1 0 1k\n.end\n")
    assert err.value.line == 3
