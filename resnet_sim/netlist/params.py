"""Parameter scopes and the values of card tokens (numbers, ``{expr}``, bare parameter names).

A Scope holds ``.param`` definitions as expression text and evaluates each on first use (so
definition order does not matter); a cycle is an error naming the parameter. Subcircuit instances get a
child scope of the global one holding their defaults, overrides and body ``.param`` cards.
"""

from __future__ import annotations

import math
import re

from .expressions import ExpressionError, evaluate
from .lexer import Card, Token
from .numbers import is_numberlike, parse_number

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class Scope:
    """Parameter definitions (name -> expression text, where) evaluated lazily; ``parent`` is searched next."""

    def __init__(self, parent: Scope | None = None):
        self.parent = parent
        self._defs: dict[str, tuple[str, Card, Token]] = {}
        self._values: dict[str, float] = {}
        self._busy: set[str] = set()

    def define(self, name: str, text: str, card: Card, token: Token) -> None:
        """Define (or redefine) ``name`` as the expression ``text`` written at ``card``/``token``."""
        self._defs[name] = (text, card, token)
        self._values.pop(name, None)

    def set_value(self, name: str, value: float) -> None:
        """Define ``name`` as an already evaluated number."""
        self._defs.pop(name, None)
        self._values[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self._values or name in self._defs

    def get(self, name: str, card: Card, token: Token | None) -> float:
        """Value of parameter ``name``; NetlistError at ``card``/``token`` when it is unknown."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope._values:
                return scope._values[name]
            if name in scope._defs:
                return scope._evaluate(name)
            scope = scope.parent
        raise card.error(f"unknown parameter {name!r}", token)

    def _evaluate(self, name: str) -> float:
        text, card, token = self._defs[name]
        if name in self._busy:
            raise card.error(f"parameter {name!r} depends on itself", token)
        self._busy.add(name)
        try:
            value = expression_value(text, self, card, token)
        finally:
            self._busy.discard(name)
        self._values[name] = value
        return value


def expression_value(text: str, scope: Scope, card: Card, token: Token) -> float:
    """Evaluate expression ``text`` (written at ``token`` of ``card``) in ``scope``."""
    try:
        return evaluate(text.lower(), lambda name: scope.get(name, card, token))
    except ExpressionError as err:
        raise card.error(f"{err.message} in {text.strip()!r}", token) from None


def token_value(token: Token, scope: Scope, card: Card, what: str = "value") -> float:
    """The number a value token stands for: a SPICE number, ``{expr}``/``'expr'``, or a parameter name."""
    if token.kind == "expr":
        return expression_value(token.text, scope, card, token)
    text = token.text.lower()
    if token.kind == "word":
        if is_numberlike(text):
            value = parse_number(text)
            if value is None:
                raise card.error(f"malformed number {token.text!r} for the {what}", token)
            if not math.isfinite(value):
                raise card.error(f"number {token.text!r} is out of range", token)
            return value
        if _IDENTIFIER.fullmatch(text):
            return scope.get(text, card, token)
    raise card.error(f"expected a number for the {what}, found {token.text!r}", token)


def is_value_token(token: Token) -> bool:
    """True for tokens that can stand for a number (number, expression, or parameter name)."""
    return token.kind == "expr" or (token.kind == "word" and (is_numberlike(token.text) or
                                                             _IDENTIFIER.fullmatch(token.text.lower()) is not None))


def key_values(tokens: list[Token], card: Card) -> list[tuple[str, str, Token]]:
    """``name = value`` pairs (``a=1 b = {a*2} c=a*2+1``) as (lower-case name, expression text, name token).

    A value runs up to the next ``word =``; its tokens are joined into one expression (a comma between
    two tokens inside parentheses is kept: ``m = max(a, b)``).
    """
    pairs = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind != "word" or i + 1 >= n or tokens[i + 1].kind != "=":
            raise card.error(f"expected 'name=value', found {tok.text!r}", tok)
        j = i + 2
        parts, depth = [], 0
        while j < n and not (tokens[j].kind == "word" and j + 1 < n and tokens[j + 1].kind == "="):
            part = tokens[j]
            if part.kind in ("str", "="):
                raise card.error(f"unexpected {part.text!r} in the value of {tok.text!r}", part)
            if parts:
                parts.append(", " if part.comma and depth > 0 else " ")
            parts.append(f"({part.text})" if part.kind == "expr" else part.text)
            depth += (part.kind == "(") - (part.kind == ")")
            j += 1
        if not parts:
            raise card.error(f"missing value for {tok.text!r}", tok)
        pairs.append((tok.text.lower(), "".join(parts), tok))
        i = j
    return pairs
