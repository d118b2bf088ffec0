"""write_netlist round trips, ngspice runs the written text, the fast path equals the card parser, fuzzing."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resnet_sim as rs
from resnet_sim import Circuit, DiodeModel, NetlistError, TrainableSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "netlists").glob("*.cir"))
SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def same(a: Circuit, b: Circuit) -> bool:
    """Equal circuits, and also the same node numbering, element order and bit-identical values."""
    if a != b or a.node_names != b.node_names:
        return False
    return all(np.array_equal(a[k].names, b[k].names) and np.array_equal(a[k].nodes, b[k].nodes)
               and np.array_equal(a[k].value.view(np.int64), b[k].value.view(np.int64)) for k in "RVIDECL")


def outcome(text, fast):
    """The circuit read from ``text``, or the NetlistError's text; nothing else may come out."""
    try:
        return rs.read_netlist(text, fast=fast)
    except NetlistError as err:
        return str(err)


def assert_same_outcome(text):
    general, fast = outcome(text, False), outcome(text, True)
    if isinstance(general, str) or isinstance(fast, str):
        assert general == fast
    else:
        assert same(general, fast)
        assert general.warnings == fast.warnings


# ---- example files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip_and_fast_path(path):
    c = rs.read_netlist(path, fast=False)
    assert same(rs.read_netlist(path, fast=True), c)
    text = rs.write_netlist(c)
    assert rs.read_netlist(text) == c
    assert same(rs.read_netlist(text, fast=True), rs.read_netlist(text, fast=False))


def test_example_count_and_descriptions():
    assert len(EXAMPLES) >= 12
    for path in EXAMPLES:
        assert "* Shows:" in path.read_text(), path.name


def run_ngspice(ngspice, text, tmp_path, name="deck.cir"):
    deck = tmp_path / name
    deck.write_text(text)
    proc = subprocess.run([ngspice, "-b", str(deck)], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # ngspice's messages start a line; its tables indent their rows (a node may be called "error")
    assert not re.search(r"^(?=\S).*\berror\b", out, re.IGNORECASE | re.MULTILINE), out
    # node lines: "name value"; ngspice prints numeric-looking names as V(name)
    pairs = re.findall(r"^\s*([^\s#]+)\s+(-?\d\.\d+e[+-]\d+)\s*$", proc.stdout, re.MULTILINE)
    return {re.sub(r"^V\((.*)\)$", r"\1", k): float(v) for k, v in pairs}, out


# closed-form node voltages (see each file's comment)
EXPECTED = {
    "divider.cir": {"out": 5.0, "in": 10.0},
    "amplifier.cir": {"a": 0.5, "b": 2.0, "c": 1.0, "out": -2.5},
    "ladder.cir": {"n1": 8.0, "n2": 4.0, "n3": 2.0, "n4": 1.0},
    "subckt_params.cir": {"a": 3.0, "x2.mid": 2.25, "b": 1.125},
}


@pytest.mark.ngspice
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_ngspice_runs_written_examples(ngspice, path, tmp_path):
    voltages, out = run_ngspice(ngspice, rs.write_netlist(rs.read_netlist(path)), tmp_path)
    assert voltages, out
    for node, volts in EXPECTED.get(path.name, {}).items():
        assert voltages[node] == pytest.approx(volts, rel=1e-5), node


@pytest.mark.ngspice
def test_ngspice_agrees_on_number_syntax(ngspice, tmp_path):
    """Our value of each SPICE number = ngspice's: 1 A through a resistor R gives R volts."""
    tokens = ["2.2k", "1MEG", "0.47meg", "3.3kOhm", "10V", ".5", "5.", "1e3", "4.7m", "100u", "2mil", "1.5T",
              "2G", "330", "1e-2k"]
    lines = ["number syntax"] + [f"I{i} 0 n{i} 1\nR{i} n{i} 0 {t}" for i, t in enumerate(tokens)] + [".op", ".end"]
    text = "\n".join(lines) + "\n"
    c = rs.read_netlist(text)
    voltages, _ = run_ngspice(ngspice, text, tmp_path)
    for i, r in enumerate(c["R"].value):
        assert voltages[f"n{i}"] == pytest.approx(r, rel=1e-5), tokens[i]


# ---- hypothesis: circuits --------------------------------------------------------------------------
SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=5)
NAMES = st.lists(SEGMENT, min_size=1, max_size=3).map(".".join)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False)
NONNEG = st.floats(min_value=0.0, max_value=1e300)


def normal(lo, hi):
    return st.floats(lo, hi, allow_subnormal=False)


@st.composite
def circuits(draw):
    title = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)).strip()
    c = Circuit(title)
    node_names = draw(st.lists(NAMES.filter(lambda n: n not in ("0", "gnd")), min_size=1, max_size=8, unique=True))
    pick = st.sampled_from(["0", *node_names])
    n_per_kind = {k: draw(st.integers(0, 4)) for k in "RVIDECL"}
    if sum(n_per_kind.values()) == 0:
        n_per_kind["R"] = 1
    names = iter(draw(st.lists(NAMES, min_size=sum(n_per_kind.values()), max_size=sum(n_per_kind.values()),
                               unique=True)))
    model_names = draw(st.lists(SEGMENT.filter(lambda n: n != "resnet_ideal"), max_size=2, unique=True))
    for m in model_names:
        params = draw(st.lists(st.tuples(SEGMENT.filter(lambda n: n not in ("vf", "rs")), FINITE), max_size=2,
                               unique_by=lambda p: p[0]))
        c.models[m] = DiodeModel(draw(FINITE), draw(NONNEG), tuple(params))
    for kind, n in n_per_kind.items():
        n_cols = 4 if kind == "E" else 2
        for _ in range(n):
            value = 0.0 if kind == "D" else draw(POSITIVE if kind == "R" else FINITE)
            model = draw(st.sampled_from(["", *model_names])) if kind == "D" else ""
            c.add(kind, next(names), [draw(pick) for _ in range(n_cols)], value, model)
    sources = c["V"].names.tolist() + c["I"].names.tolist()
    c.inputs = draw(st.lists(st.sampled_from(sources), unique=True)) if sources else []
    used = sorted({c.node_names[i] for k in "RVIDECL" for i in c[k].nodes.ravel().tolist()})
    c.outputs = draw(st.lists(st.sampled_from(used), max_size=3))
    for _ in range(draw(st.integers(0, 2))):
        patterns = tuple(draw(st.lists(SEGMENT.map(lambda s: s + "*"), min_size=1, max_size=2)))
        gmin = draw(st.none() | NONNEG)
        gmax = draw(st.none() | NONNEG.filter(lambda g: gmin is None or g >= gmin))
        c.trainable.append(TrainableSpec(patterns, gmin, gmax))
    return c


@SETTINGS
@given(circuits())
def test_hypothesis_round_trip(c):
    text = rs.write_netlist(c)
    assert rs.read_netlist(text, fast=False) == c
    assert same(rs.read_netlist(text, fast=True), rs.read_netlist(text, fast=False))


@st.composite
def spice_circuits(draw):
    """Well-posed circuits: every node has a resistor to ground, sources cannot conflict. No subnormal
    numbers: ngspice stops with "strtod: Numerical result out of range" on them."""
    c = Circuit("hypothesis deck")
    nodes = draw(st.lists(NAMES.filter(lambda n: n not in ("0", "gnd")), min_size=2, max_size=6, unique=True))
    ohms = normal(1.0, 1e6)
    names = iter(f"{i}" for i in range(1000))
    for n in nodes:
        c.add("R", f"r{next(names)}", [n, "0"], draw(ohms))
    pair = st.lists(st.sampled_from(nodes), min_size=2, max_size=2, unique=True)
    for _ in range(draw(st.integers(0, 4))):
        c.add("R", f"x.r{next(names)}", draw(pair), draw(ohms))
    driven = draw(st.lists(st.sampled_from(nodes), max_size=2, unique=True))
    for n in driven:
        c.add("V", f"v{next(names)}", [n, "0"], draw(normal(-10, 10)))
    for _ in range(draw(st.integers(0, 2))):
        c.add("I", f"i.{next(names)}", draw(pair), draw(normal(-1e-2, 1e-2)))
    c.models["dm"] = DiodeModel(vf=draw(normal(0, 1)), rs=draw(st.just(0.0) | normal(0.1, 100)),
                                params=(("cjo", 1e-12),))  # (RS = 1e-199 ohm would defeat ngspice)
    # no path of ideal diodes between two sources (it could carry infinite current): every diode has a
    # free end, and each free node has at most one diode
    free = [n for n in nodes if n not in driven]
    for _ in range(draw(st.integers(0, 3))):
        if not free:
            break
        end = draw(st.sampled_from(free))
        free.remove(end)
        others = free + driven
        if not others:
            break
        other = draw(st.sampled_from(others))
        if other in free:
            free.remove(other)
        ends = [end, other] if draw(st.booleans()) else [other, end]
        c.add("D", f"d{next(names)}", ends, 0.0, draw(st.sampled_from(["", "dm"])))
    for _ in range(draw(st.integers(0, 2))):
        out = f"e.out{next(names)}"
        c.add("R", f"r{next(names)}", [out, "0"], draw(ohms))
        c.add("E", f"e{next(names)}", [out, "0", *draw(pair)], draw(normal(-10, 10)))
    for _ in range(draw(st.integers(0, 2))):
        c.add("C", f"c{next(names)}", draw(pair), draw(normal(1e-15, 1e-6)))
    for _ in range(draw(st.integers(0, 2))):
        far = f"l.far{next(names)}"
        c.add("R", f"r{next(names)}", [far, "0"], draw(ohms))
        c.add("L", f"l{next(names)}", [draw(st.sampled_from(nodes)), far], draw(normal(1e-9, 1e-3)))
    c.inputs = c["V"].names.tolist()
    c.outputs = nodes[:1]
    c.trainable = [TrainableSpec(("x.*",), 1e-6, 1.0)]
    return c


@pytest.mark.ngspice
@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(spice_circuits())
def test_hypothesis_ngspice_runs_written_circuits(ngspice, tmp_path, c):
    text = rs.write_netlist(c)
    assert rs.read_netlist(text) == c
    voltages, out = run_ngspice(ngspice, text, tmp_path)
    for row, name in enumerate(c["V"].names.tolist()):
        node = c.node_names[c["V"].nodes[row, 0]]
        assert voltages[node] == pytest.approx(c["V"].value[row], rel=1e-5, abs=1e-9), out


# ---- hypothesis: the fast path equals the card parser, and only NetlistError escapes ---------------
TOKEN = st.sampled_from(["a", "B", "n1", "0", "gnd", "GND", "x.y", "mid", "dc", "DC", "ac", "in", "out", "dm", "DM",
                        "resnet_ideal"])
NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1k", "2.2K", "3meg", "1MEG", "4.7m", "10V", ".5", "5.", "1e3", "-2", "0", "1mil", "2kOhm",
                     "1e-400", "1e400", "1.2.3", "{1+2}", "'2*3'", "p1", "1e", "1e+", "007", "1x2", "+1"]),
)
CARD_LETTER = st.sampled_from(list("RrVvIiDdEeCcLlXxQq"))


@st.composite
def netlist_lines(draw):
    kind = draw(st.sampled_from(["element"] * 6 + ["comment", "blank", "cont", "dot", "subckt", "junk"]))
    space = draw(st.sampled_from([" ", "  ", "\t", " \t "]))
    if kind == "element":
        letter = draw(CARD_LETTER)
        name = letter + draw(st.sampled_from(["1", "2", "x", ".a.b", ".", "_9", "1"]))
        n_tokens = draw(st.integers(1, 7))
        tokens = [draw(TOKEN) for _ in range(n_tokens)]
        if draw(st.booleans()) and tokens:
            tokens[-1] = draw(NUMBER)
        return draw(st.sampled_from(["", " "])) + space.join([name, *tokens])
    if kind == "comment":
        return draw(st.sampled_from(["* comment", "*@ .outputs a", "*@ .inputs v1", "*@ junk", "  * x",
                                     "R1 a 0 1 ; tail", "R2 a 0 2 $ tail"]))
    if kind == "blank":
        return draw(st.sampled_from(["", "   ", "\t"]))
    if kind == "cont":
        return "+" + space + space.join(draw(st.lists(st.one_of(TOKEN, NUMBER), max_size=3)))
    if kind == "dot":
        return draw(st.sampled_from([".param p1=2k", ".op", ".end", ".tran 1n 1u", ".model dm D(VF=0.5)",
                                     ".control", ".endc", ".ends", ".END", ".options acct", ".inputs v1",
                                     ".trainable r*", ".global mid", ".subckt", ".endc;x", ".end;", ".end$",
                                     ".control\xa0x", ".ends{", ".END\t* c"]))
    if kind == "subckt":
        return ".subckt sub p q r=1k\nR1 p mid {r}\nR2 mid q 2\n.ends\nX9 a b sub r=3"
    return draw(st.sampled_from(["Q1 a b c qmod", "garbage", "1 2 3", "{", "'", "R1 a 0 {", "x1 a b",
                                 "R1\xa0a 0 1", "R\u00e92 a 0 1", "V1 a 0 \u00a05"]))


@SETTINGS
@given(st.lists(netlist_lines(), min_size=1, max_size=25), st.sampled_from(["\n", "\r\n"]))
def test_fast_path_equals_card_parser(lines, newline):
    assert_same_outcome(newline.join(["title", *lines]) + newline)


def mutate(text: str, data) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "duplicate_line"]))
        pos = data.draw(st.integers(0, max(len(chars) - 1, 0)))
        if op == "delete" and chars:
            del chars[pos]
        elif op == "insert":
            chars.insert(pos, data.draw(st.sampled_from(list("\n+*.{}()='\";$,0aZ9- \t\x00\xe9k"))))
        elif op == "replace" and chars:
            chars[pos] = data.draw(st.characters(max_codepoint=300))
        elif op == "duplicate_line":
            lines = "".join(chars).split("\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            chars = list("\n".join(lines))
    return "".join(chars)


@SETTINGS
@given(st.sampled_from(EXAMPLES), st.data())
def test_mutated_examples_give_circuit_or_netlist_error(path, data):
    text = mutate(path.read_text(), data)
    if "\n" in text:
        assert_same_outcome(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: "t\n" + t)))
def test_random_input_gives_circuit_or_netlist_error(source):
    if isinstance(source, str):
        source = source.encode("utf-8", "surrogatepass")
    assert_same_outcome(source)


def test_writer_rejects_unwritable_names_and_values():
    c = Circuit("t")
    c.add("R", "bad name", ["a", "0"], 1.0)
    with pytest.raises(ValueError, match="bad name"):
        rs.write_netlist(c)
    c = Circuit("t")
    c.add("R", "r1", ["a", "0"], float("nan"))
    with pytest.raises(ValueError, match="resistances <= 0"):
        rs.write_netlist(c)
    c = Circuit("t")
    c.add("V", "v1", ["a", "0"], float("inf"))
    with pytest.raises(ValueError, match="non-finite V values"):
        rs.write_netlist(c)
    c = Circuit("t")
    c.add("D", "d1", ["a", "0"], 0.0, "nomodel")
    with pytest.raises(ValueError, match="undefined models"):
        rs.write_netlist(c)
    c = Circuit("two\nlines")
    with pytest.raises(ValueError, match="title"):
        rs.write_netlist(c)


def test_written_form_of_names_and_training_cards():
    c = Circuit("t")
    c.add("R", "x1.r3", ["x1.mid", "0"], 1.0)
    c.add("R", "load", ["x1.mid", "0"], 2.0)
    c.add("V", "vin", ["x1.mid", "0"], 0.1)
    c.add("D", "d1", ["x1.mid", "0"], 0.0)
    c.inputs, c.outputs = ["vin"], ["x1.mid"]
    c.trainable = [TrainableSpec(("r*", "load"), gmax=0.5)]
    lines = rs.write_netlist(c).splitlines()
    assert "r.x1.r3 x1.mid 0 1.0" in lines and "r.load x1.mid 0 2.0" in lines and "vin x1.mid 0 0.1" in lines
    assert "d1 x1.mid 0 resnet_ideal" in lines
    assert ["*@ .inputs vin", "*@ .outputs x1.mid", "*@ .trainable r* load gmax=0.5"] == \
        [line for line in lines if line.startswith("*@")]
    assert lines[-2:] == [".op", ".end"]


def test_docs_example_reads_and_writes_as_shown():
    parts = (ROOT / "docs" / "netlist.md").read_text().split("```")
    source, written = [parts[i][1:] for i in range(1, len(parts), 2) if parts[i].startswith("\nTwo dividers")]
    c = rs.read_netlist(source)
    assert c["R"].names.tolist() == ["x1.r1", "x1.r2", "x2.r1", "x2.r2"]
    assert c["R"].value.tolist() == [1000.0, 1000.0, 1000.0, 3000.0]
    assert c.models == {"dclamp": DiodeModel(vf=0.3)}
    assert rs.write_netlist(c) == written


def test_dollar_inside_a_name_is_written_at_the_start_it_is_not():
    # "$" starts a comment only at a token's start (reader and ngspice alike)
    c = rs.read_netlist("t\nV1 a 0 1\nR1 a a$b 1k\nR$2 a$b 0 1k\n.end\n")
    assert "a$b" in c.node_names and "r$2" in c["R"].names.tolist()
    assert rs.read_netlist(rs.write_netlist(c)) == c
    bad = Circuit("t")
    bad.add("R", "r1", ["$a", "0"], 1.0)
    with pytest.raises(ValueError, match=r"'\$a': it contains '\$' at its start"):
        rs.write_netlist(bad)


@pytest.mark.ngspice
def test_ngspice_reads_dollar_inside_names(ngspice, tmp_path):
    c = rs.read_netlist("t\nV1 a 0 1\nR1 a a$b 1k\nR$2 a$b 0 3k\n.op\n.end\n")
    voltages, out = run_ngspice(ngspice, rs.write_netlist(c), tmp_path)
    assert voltages["a$b"] == pytest.approx(0.75, rel=1e-9), out


@pytest.mark.parametrize("n_open", [3, 5000])  # 5000: above the fast reader's threshold, several .open cards
def test_open_resistors_are_written_for_ngspice_and_read_back_as_open(n_open):
    c = Circuit("open resistors")
    c.add("V", "v1", ["a", "0"], 1.0)
    c.add("R", "x1.load", ["b", "0"], 1e3)
    ids = c.nodes_of(["a", "b"])
    names = [f"r{i}" for i in range(2 * n_open)]
    c.add_many("R", names, np.tile(ids, (2 * n_open, 1)), np.where(np.arange(2 * n_open) % 2, np.inf, 1e3))
    c["R"].value = np.where(np.char.startswith(c["R"].names, "x1"), np.inf, c["R"].value)
    text = rs.write_netlist(c)
    lines = text.splitlines()
    assert "r.x1.load b 0 1e+300" in lines and "r1 a b 1e+300" in lines
    cards = [line.split()[2:] for line in lines if line.startswith("*@ .open ")]
    assert cards[0][:3] == ["x1.load", "r1", "r3"] and max(map(len, cards)) <= 32
    assert sum(map(len, cards)) == n_open + 1
    back = rs.read_netlist(text)
    assert back == c and np.isinf(back["R"].value).sum() == n_open + 1
    # x1.load open: b follows a through the n_open 1 kohm resistors
    assert rs.solve(back).voltage("b") == pytest.approx(1.0, rel=1e-12)


def test_open_names_a_resistor():
    with pytest.raises(rs.NetlistError, match=r":4: \.open: no resistor named 'v1'"):
        rs.read_netlist("t\nV1 a 0 1\nR1 a 0 1\n*@ .open v1\n")


@pytest.mark.ngspice
def test_ngspice_simulates_a_written_open_resistor_as_open(ngspice, tmp_path):
    c = rs.read_netlist("t\nV1 a 0 1\nR1 a b 1k\nR2 b 0 3k\nR3 a b 1k\n.op\n.end\n")
    c["R"].value = np.array([1e3, 3e3, np.inf])
    voltages, out = run_ngspice(ngspice, rs.write_netlist(c), tmp_path)
    assert voltages["b"] == pytest.approx(0.75, rel=1e-9), out
