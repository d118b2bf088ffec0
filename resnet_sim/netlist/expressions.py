"""Parameter expressions: ``.param`` values and ``{...}`` element values, evaluated safely (no ``eval``).

Grammar (case-insensitive)::

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('+' | '-') unary | power
    power := atom (('**' | '^') unary)?          right-associative, binds tighter than unary minus
    atom  := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'

NUMBER follows the SPICE rules of numbers.py (``2k``, ``1e-3``); NAME is another parameter. Functions:
abs, sqrt, exp, log (natural), min, max (two or more arguments). Every result must be a finite real
number; anything else is an ExpressionError carrying the offset (0-based) of the culprit.
"""

from __future__ import annotations

import math
import re
from typing import Callable

from .numbers import parse_number

MAX_DEPTH = 100

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[A-Za-z]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),])"
    r")"
)

_FUNCTIONS: dict[str, tuple[int, Callable]] = {
    "abs": (1, abs),
    "sqrt": (1, math.sqrt),
    "exp": (1, math.exp),
    "log": (1, math.log),
    "min": (2, min),
    "max": (2, max),
}


class ExpressionError(Exception):
    """A malformed or non-evaluable expression; ``offset`` is where in the text (0-based)."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            offset = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ExpressionError(f"unexpected character {text[offset]!r} in expression", offset)
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, lookup: Callable[[str], float]):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.lookup = lookup
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, op: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise ExpressionError("expression ends too early" + (f", expected {op!r}" if op else ""), len(self.text))
        if op is not None and not (tok[0] == "op" and tok[1] == op):
            raise ExpressionError(f"expected {op!r}, found {tok[1]!r}", tok[2])
        self.i += 1
        return tok

    def at(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "op" and tok[1] in ops

    def expr(self) -> float:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expression nested too deeply", self.peek()[2] if self.peek() else 0)
        value = self.term()
        while self.at("+", "-"):
            _, op, pos = self.take()
            rhs = self.term()
            value = self.check(value + rhs if op == "+" else value - rhs, pos)
        self.depth -= 1
        return value

    def term(self) -> float:
        value = self.unary()
        while self.at("*", "/"):
            _, op, pos = self.take()
            rhs = self.unary()
            if op == "/" and rhs == 0.0:
                raise ExpressionError("division by zero", pos)
            value = self.check(value * rhs if op == "*" else value / rhs, pos)
        return value

    def unary(self) -> float:
        if self.at("+", "-"):
            op = self.take()[1]
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("expression nested too deeply", self.toks[self.i - 1][2])
            value = self.unary()
            self.depth -= 1
            return -value if op == "-" else value
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if self.at("**", "^"):
            pos = self.take()[2]
            exponent = self.unary()
            try:
                return self.check(math.pow(base, exponent), pos)
            except (ValueError, OverflowError, ZeroDivisionError):
                raise ExpressionError(f"{base!r} ** {exponent!r} has no finite real value", pos) from None
        return base

    def atom(self) -> float:
        kind, text, pos = self.take()
        if kind == "num":
            value = parse_number(text)
            if value is None:
                raise ExpressionError(f"malformed number {text!r}", pos)
            return self.check(value, pos)
        if kind == "name":
            name = text.lower()
            if self.at("("):
                return self.call(name, pos)
            return self.lookup(name)
        if text == "(":
            value = self.expr()
            self.take(")")
            return value
        raise ExpressionError(f"unexpected {text!r} in expression", pos)

    def call(self, name: str, pos: int) -> float:
        if name not in _FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r} (known: {', '.join(_FUNCTIONS)})", pos)
        n_args, fn = _FUNCTIONS[name]
        self.take("(")
        args = [self.expr()]
        while self.at(","):
            self.take()
            args.append(self.expr())
        self.take(")")
        if (n_args == 1 and len(args) != 1) or len(args) < n_args:
            raise ExpressionError(f"{name}() takes {'1 argument' if n_args == 1 else 'at least 2 arguments'}", pos)
        try:
            return self.check(fn(*args), pos)
        except (ValueError, OverflowError):
            raise ExpressionError(f"{name}{tuple(args)} has no finite real value", pos) from None

    @staticmethod
    def check(value: float, pos: int) -> float:
        if not math.isfinite(value):
            raise ExpressionError("expression value is not finite", pos)
        return value


def evaluate(text: str, lookup: Callable[[str], float]) -> float:
    """Value of expression ``text``; ``lookup(name)`` gives the value of a (lower-case) parameter name.

    Raises ExpressionError (message, offset) on any malformed or non-finite expression; ``lookup`` may
    raise its own errors, which pass through.
    """
    parser = _Parser(text, lookup)
    if not parser.toks:
        raise ExpressionError("empty expression", 0)
    value = parser.expr()
    tok = parser.peek()
    if tok is not None:
        raise ExpressionError(f"unexpected {tok[1]!r} after the expression", tok[2])
    return value
