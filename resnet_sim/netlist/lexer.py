"""Lines to cards: comments, ``+`` continuation lines, ``.control`` blocks, ``.end``, and tokens.

A card is one logical SPICE line: its tokens (with their physical line and column) and where it
starts. Comments: lines whose first non-blank character is ``*``; ``;`` anywhere and ``$`` at the start
of a token end a line. ``*@`` lines carry the training cards (``.inputs .outputs .trainable``) that
ngspice must not see: for the reader they are ordinary cards. Tokens: words, ``{expr}`` and
``'expr'`` (kind ``expr``), ``"text"`` (kind ``str``), and the single characters ``= ( )``;
whitespace and commas separate (a token remembers whether a comma came before it, for the argument
lists of bare expressions such as ``.param m = max(a, b)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

from ..errors import NetlistError

EXTENSION_CARDS = frozenset({".inputs", ".outputs", ".trainable", ".open"})
_SPECIAL = re.compile(r"[{}'\"=(),;$]")
# ASCII whitespace only (as fastpath.py): other Unicode spaces are ordinary characters
WHITESPACE = " \t\r\f\v"
_WORD = re.compile(r"[^ \t\r\f\v]+")
_WORD_END = re.compile(r"[ \t\r\f\v{}'\"=(),;]")
_LEADING_WORD = re.compile(r"[^ \t\r\f\v{}'\"=(),;]*")


class Token(NamedTuple):
    """One token: its text (braces and quotes removed), kind, 1-based physical line and column, and
    whether a comma separates it from the token before it on its line."""

    text: str
    kind: str  # "word", "expr", "str", "=", "(", ")"
    line: int
    col: int
    comma: bool = False


@dataclass(slots=True)
class Card:
    """One logical card: its tokens, the file it came from and the physical line where it starts."""

    tokens: list[Token]
    file: str
    line: int

    @property
    def keyword(self) -> str:
        """The first token, lower case (``r1``, ``.subckt``, ...)."""
        return self.tokens[0].text.lower()

    def error(self, message: str, token: Token | None = None) -> NetlistError:
        """A NetlistError at this card (column of ``token`` when it is on the card's first line)."""
        col = token.col if token is not None and token.line == self.line else None
        return NetlistError(message, self.file, self.line, col)


def tokenize(text: str, line: int, file: str, offset: int = 0) -> list[Token]:
    """Tokens of one physical line (comments already allowed for); ``offset`` is the column of text[0] - 1."""
    if _SPECIAL.search(text) is None:
        return [Token(m.group(), "word", line, offset + m.start() + 1) for m in _WORD.finditer(text)]
    tokens: list[Token] = []
    pos, n = 0, len(text)
    comma = False  # a comma since the last token
    while pos < n:
        ch = text[pos]
        col = offset + pos + 1
        if ch in WHITESPACE or ch == ",":
            comma = comma or ch == ","
            pos += 1
            continue
        if ch == ";" or ch == "$":
            break
        elif ch in "=()":
            tokens.append(Token(ch, ch, line, col, comma))
            pos += 1
        elif ch == "{":
            depth, end = 0, pos
            while end < n:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
                end += 1
            if end >= n:
                raise NetlistError("unclosed '{' in expression", file, line, col)
            tokens.append(Token(text[pos + 1:end], "expr", line, col, comma))
            pos = end + 1
        elif ch == "}":
            raise NetlistError("'}' without a matching '{'", file, line, col)
        elif ch in "'\"":
            end = text.find(ch, pos + 1)
            if end < 0:
                raise NetlistError(f"unclosed {ch} quote", file, line, col)
            tokens.append(Token(text[pos + 1:end], "expr" if ch == "'" else "str", line, col, comma))
            pos = end + 1
        else:
            m = _WORD_END.search(text, pos)
            end = n if m is None else m.start()
            tokens.append(Token(text[pos:end], "word", line, col, comma))
            pos = end
        comma = False
    return tokens


def _first_word(text: str) -> str:
    """The word ``text`` starts with, after blanks, lower case (as the tokenizer would cut it)."""
    return _LEADING_WORD.match(text.lstrip(WHITESPACE)).group().lower()


def cards(lines: Iterable[tuple[int, str]], file: str) -> Iterator[Card]:
    """Cards from ``(physical line number, text)`` pairs, in order, stopping after ``.end``.

    ``.control ... .endc`` blocks yield only their ``.control`` card (the reader warns about it).
    """
    current: Card | None = None
    in_control: Card | None = None
    for line_no, text in lines:
        stripped = text.lstrip(WHITESPACE)
        if not stripped:
            continue
        indent = len(text) - len(stripped)
        if in_control is not None:
            if _first_word(stripped) == ".endc":
                in_control = None
            continue
        head = stripped[0]
        if head == "*":
            if not stripped.startswith("*@") or _first_word(stripped[2:]) not in EXTENSION_CARDS:
                continue
            head, stripped, indent = ".", stripped[2:], indent + 2
        if head == "+":
            if current is None:
                raise NetlistError("continuation line '+' without a card to continue", file, line_no, indent + 1)
            current.tokens.extend(tokenize(stripped[1:], line_no, file, indent + 1))
            continue
        tokens = tokenize(stripped, line_no, file, indent)
        if not tokens:
            continue
        if current is not None:
            yield current
        current = Card(tokens, file, line_no)
        word = current.keyword
        if word == ".control":
            in_control, current = current, None
            yield in_control
        elif word == ".end":
            yield current
            return
    if in_control is not None:
        raise NetlistError(".control block without .endc", file, in_control.line, 1)
    if current is not None:
        yield current
