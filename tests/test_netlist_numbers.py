"""SPICE numbers and parameter expressions (resnet_sim.netlist.numbers / expressions)."""

import math

import pytest

from resnet_sim.netlist.expressions import ExpressionError, evaluate
from resnet_sim.netlist.numbers import parse_number


@pytest.mark.parametrize("token, value", [
    ("10", 10.0), ("-2.5", -2.5), (".5", 0.5), ("5.", 5.0), ("+.5e+1", 5.0), ("1e3", 1000.0),
    ("1e-3", 0.001), ("1k", 1000.0), ("2.2k", 2200.0), ("2.2K", 2200.0), ("2.2kOhm", 2200.0),
    ("10V", 10.0), ("5A", 5.0), ("1MEG", 1e6), ("1meg", 1e6), ("3.3Megohm", 3.3e6), ("1m", 1e-3),
    ("1M", 1e-3), ("4.7mV", 4.7e-3), ("3u", 3e-6), ("4n", 4e-9), ("5p", 5e-12), ("6f", 6e-15),
    ("7T", 7e12), ("8G", 8e9), ("1mil", 2.54e-5), ("2MIL", 5.08e-5), ("-1.5e-3k", -1.5),
    ("1e", 1.0), ("0.1u", 1e-7), ("1234.5678901234567", 1234.5678901234567), ("1e-05", 1e-05),
    ("1.5e+20", 1.5e20), ("007", 7.0), ("1e0000003", 1000.0),
])
def test_spice_numbers(token, value):
    # suffixes shift the decimal exponent: 2.2k is the double nearest 2200 (not 2.2 * 1000.0)
    assert parse_number(token) == value


def test_suffix_is_exact_decimal_shift():
    # multiplying by the scale would round twice: 2.7 * 1e-12 == 2.7000000000000002e-12
    assert 2.7 * 1e-12 != 2.7e-12
    assert parse_number("2.7p") == 2.7e-12


@pytest.mark.parametrize("token", ["1.2.3", "1e+", "5x3", "--1", "k", "", ".", "-", "1_000", "0x10", "1k5"])
def test_malformed_numbers(token):
    assert parse_number(token) is None


def test_huge_exponents_clamp_to_inf_and_zero():
    assert parse_number("1e999999999999") == math.inf
    assert parse_number("1e-999999999999") == 0.0


@pytest.mark.parametrize("text, value", [
    ("1+2*3", 7.0), ("(1+2)*3", 9.0), ("2**3**2", 512.0), ("2^3", 8.0), ("-2**2", -4.0), ("2**-1", 0.5),
    ("10/4", 2.5), ("7-2-1", 4.0), ("8/2/2", 2.0), ("--3", 3.0), ("+3", 3.0), ("abs(-3)", 3.0),
    ("sqrt(16)", 4.0), ("exp(0)", 1.0), ("log(1)", 0.0), ("LOG(exp(2))", 2.0), ("min(3, 1, 2)", 1.0),
    ("max(1,2)", 2.0), ("2k*2", 4000.0), ("1meg/1k", 1000.0), (" 1 + a * b ", 7.0), ("A*B", 6.0),
])
def test_expressions(text, value):
    params = {"a": 2.0, "b": 3.0}
    assert evaluate(text, params.__getitem__) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text, message", [
    ("1/0", "division by zero"), ("sqrt(-1)", "no finite real value"), ("log(0)", "no finite real value"),
    ("foo(1)", "unknown function"), ("1+", "ends too early"), ("(1", "ends too early"), ("(1 2", "expected"),
    ("2 3", "unexpected"),
    ("exp(1000)", "no finite real value"), ("(-8)**(1/3)", "no finite real value"), ("", "empty"),
    ("1 # 2", "unexpected character"), ("min(1)", "at least 2"), ("abs(1, 2)", "1 argument"),
    ("(" * 300 + "1" + ")" * 300, "nested too deeply"), ("-" * 300 + "1", "nested too deeply"),
    ("1e308*10", "not finite"),
])
def test_expression_errors(text, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, {}.__getitem__)


def test_unknown_name_goes_to_lookup():
    def lookup(name):
        raise KeyError(name)

    with pytest.raises(KeyError, match="zz"):
        evaluate("1 + zz", lookup)
