"""``read_netlist``: SPICE netlist text or file -> Circuit.

Two passes. Pass 1 reads the files (``.include`` recursively) into definitions (``.param``,
``.subckt``, ``.model``, ``.global``, training cards) and the top-level element cards, in order. Big
files first go through the Numba fast path (fastpath.py), which parses the simple element lines in
bulk and hands every other line to the card parser. Pass 2 instantiates the element cards (flattening
subcircuits) and assembles the Circuit (assemble.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..circuit import Circuit, TrainableSpec
from ..errors import NetlistError
from . import lexer
from .assemble import FastChunk, Rows, build_circuit
from .elements import IDEAL_MODEL, Context, Instantiator, Subckt, diode_model
from .params import Scope, expression_value, key_values

# files at least this big use the fast path (below it, Numba's start-up costs more than it saves)
FAST_MIN_BYTES = 512 * 1024
IGNORED = frozenset({
    ".options", ".option", ".opt", ".tran", ".ac", ".dc", ".print", ".plot", ".save", ".temp", ".ic",
    ".nodeset", ".probe", ".meas", ".measure", ".four", ".noise", ".tf", ".disto", ".sens", ".pz",
    ".width", ".csparam", ".control",
})
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_BOM = "\ufeff".encode("utf-8")


def read_netlist(source, *, fast: bool | None = None) -> Circuit:
    """Read a SPICE netlist into a Circuit.

    ``source``: a ``pathlib.Path`` (always a file), a ``str`` (netlist text when it contains a newline,
    otherwise a file path), or ``bytes`` (netlist text). ``fast``: force the Numba fast path on or off
    (default: on for files of at least FAST_MIN_BYTES); the result is the same either way.
    Raises NetlistError (file, line, col) for anything it cannot read; warnings about ignored input are
    in ``circuit.warnings``.
    """
    data, file, directory = _source(source)
    reader = _Reader(fast)
    reader.load(data, file, directory, top=True)
    return reader.finish(file)


def _source(source) -> tuple[bytes, str, Path]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<string>", Path.cwd()
    if isinstance(source, str) and "\n" in source:
        try:
            return source.encode("utf-8"), "<string>", Path.cwd()
        except UnicodeEncodeError as err:
            line = source.count("\n", 0, err.start) + 1
            raise NetlistError("text is not valid Unicode (lone surrogate)", "<string>", line) from None
    if isinstance(source, (str, Path)):
        return _read_file(Path(source)), str(source), Path(source).parent
    raise TypeError(f"read_netlist takes a path, netlist text or bytes, not {type(source).__name__}")


def _read_file(path: Path, card: lexer.Card | None = None) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        message = f"cannot read netlist file {str(path)!r}: {err.strerror or err}"
        if card is not None:
            raise card.error(message, card.tokens[-1]) from None
        raise NetlistError(message, str(path)) from None


def _line_of(starts: np.ndarray, offset: int) -> tuple[int, int]:
    line = int(np.searchsorted(starts, offset, "right")) - 1
    return line + 1, offset - int(starts[line]) + 1


class _Reader:
    def __init__(self, fast: bool | None):
        self.fast = fast
        self.title = ""
        self.warnings: list[str] = []
        self.scope = Scope()
        self.subckts: dict[str, Subckt] = {}
        self.model_cards: dict[str, lexer.Card] = {}
        self.globals: set[str] = set()
        self.items: list = []  # top-level element cards and FastChunks, in reading order
        self.open: list[Subckt] = []  # .subckt definitions being read
        self.including: list[Path] = []
        self.training: dict[str, list[lexer.Card]] = {".inputs": [], ".outputs": [], ".trainable": [], ".open": []}

    def warn(self, card: lexer.Card, message: str) -> None:
        self.warnings.append(f"{card.file}:{card.line}: {message}")

    # ---- pass 1 ------------------------------------------------------------------------------------
    def load(self, data: bytes, file: str, directory: Path, top: bool) -> None:
        """Read one file's cards (its first line is the title when ``top``)."""
        if data.startswith(_BOM):  # a UTF-8 byte order mark (some editors write one): not text
            data = data[len(_BOM):]
        fast = self.fast if self.fast is not None else len(data) >= FAST_MIN_BYTES
        if fast and not self.open:
            lines, fast_lines, chunk_of = self._scan(data, file, top)
        else:
            lines, fast_lines, chunk_of = self._split(data, file, top), np.zeros(0, np.int64), None
        done = 0
        for card in lexer.cards(lines, file):
            if done < len(fast_lines):
                upto = int(np.searchsorted(fast_lines, card.line - 1))
                if upto > done:
                    self.items.append(chunk_of(done, upto))
                done = upto
            self.card(card, directory)
        if done < len(fast_lines):
            self.items.append(chunk_of(done, len(fast_lines)))

    def _split(self, data: bytes, file: str, top: bool):
        """(line number, text) of every line, for the card parser alone."""
        bad = _CONTROL_BYTES.search(data)
        if bad is not None:
            line_start = data.rfind(b"\n", 0, bad.start()) + 1
            raise NetlistError(f"binary data (byte {data[bad.start()]:#04x}): not a text netlist", file,
                               data.count(b"\n", 0, bad.start()) + 1, bad.start() - line_start + 1)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise NetlistError("not UTF-8 text (binary data?)", file, data.count(b"\n", 0, err.start) + 1) from None
        lines = text.split("\n")
        if top:
            self.title = _title(lines[0])
        return ((i + 1, lines[i]) for i in range(1 if top else 0, len(lines)))

    def _scan(self, data: bytes, file: str, top: bool):
        """Fast path: parse simple lines in bulk; (line number, text) of the other lines, the indices of
        the simple lines, and a function making a FastChunk of simple lines [lo, hi)."""
        from . import fastpath

        buf = np.frombuffer(data, np.uint8)
        starts, ends, cls, line, kind, n_start, n_end, nd_start, nd_end, m_start, m_end, value, bad, high = \
            fastpath.scan_buffer(buf, top)
        if bad >= 0:
            row, col = _line_of(starts, bad)
            raise NetlistError(f"binary data (byte {data[bad]:#04x}): not a text netlist", file, row, col)
        if high:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise NetlistError("not UTF-8 text (binary data?)", file, _line_of(starts, err.start)[0]) from None
        others = np.flatnonzero(cls == fastpath.GENERAL)
        if top:
            self.title = _title(data[starts[0]:ends[0]].decode("utf-8"))
            others = others[others > 0]

        def chunk_of(lo: int, hi: int) -> FastChunk:
            return FastChunk(file, buf, starts, ends, kind[lo:hi], n_start[lo:hi], n_end[lo:hi], nd_start[lo:hi],
                             nd_end[lo:hi], m_start[lo:hi], m_end[lo:hi], value[lo:hi], line[lo:hi] + 1)

        lines = ((int(i) + 1, data[starts[i]:ends[i]].decode("utf-8")) for i in others)
        return lines, line, chunk_of

    def card(self, card: lexer.Card, directory: Path) -> None:
        """Pass 1 for one card: definitions are recorded, element cards kept for pass 2."""
        word = card.keyword
        if word == ".subckt":
            self._subckt(card)
        elif word == ".ends":
            if not self.open:
                raise card.error(".ends without .subckt", card.tokens[0])
            sub = self.open.pop()
            if len(card.tokens) > 1 and card.tokens[1].text.lower() != sub.name:
                raise card.error(f".ends {card.tokens[1].text} closes .subckt {sub.name}", card.tokens[1])
        elif word == ".model":
            self._model(card)
        elif word in (".include", ".inc"):
            self._include(card, directory)
        elif word == ".lib":
            raise card.error(".lib is not supported: use .include", card.tokens[0])
        elif word == ".global":
            self.globals.update(t.text.lower() for t in card.tokens[1:])
        elif self.open:
            if word == ".param" or not word.startswith("."):
                self.open[-1].body.append(card)
            elif word in IGNORED:
                self.warn(card, f"ignored {word}")
            else:
                raise card.error(f"{word} is not allowed inside .subckt {self.open[-1].name}", card.tokens[0])
        elif not word.startswith("."):
            self.items.append(card)
        elif word == ".param":
            for name, text, tok in key_values(card.tokens[1:], card):
                self.scope.define(name, text, card, tok)
        elif word == ".title":
            self.title = " ".join(t.text for t in card.tokens[1:])
        elif word in self.training:
            self.training[word].append(card)
        elif word in IGNORED:
            self.warn(card, f"ignored {word}" + (" block" if word == ".control" else ""))
        elif word not in (".op", ".end"):
            raise card.error(f"unknown control card {card.tokens[0].text!r}", card.tokens[0])

    def _subckt(self, card: lexer.Card) -> None:
        tokens = card.tokens
        if len(tokens) < 2 or tokens[1].kind != "word":
            raise card.error(".subckt needs a name", tokens[-1])
        name = tokens[1].text.lower()
        if name in self.subckts:
            raise card.error(f"subcircuit {name!r} defined twice (first at {self.subckts[name].card.file}:"
                             f"{self.subckts[name].card.line})", tokens[1])
        rest = tokens[2:]
        end = next((i for i, t in enumerate(rest) if t.kind == "=" or t.text.lower() == "params:"), len(rest))
        if end < len(rest) and rest[end].kind == "=":
            end -= 1
        ports = rest[:end]
        params = rest[end:]
        if params and params[0].text.lower() == "params:":
            params = params[1:]
        for tok in ports:
            if tok.kind != "word":
                raise card.error(f".subckt {name}: unexpected {tok.text!r} among the ports", tok)
        sub = Subckt(name, [t.text.lower() for t in ports], key_values(params, card), card)
        self.subckts[name] = sub
        self.open.append(sub)

    def _model(self, card: lexer.Card) -> None:
        if len(card.tokens) < 2 or card.tokens[1].kind != "word":
            raise card.error(".model needs a name", card.tokens[-1])
        name = card.tokens[1].text.lower()
        if name in self.model_cards:
            first = self.model_cards[name]
            raise card.error(f"model {name!r} defined twice (first at {first.file}:{first.line})", card.tokens[1])
        self.model_cards[name] = card

    def _include(self, card: lexer.Card, directory: Path) -> None:
        if len(card.tokens) < 2 or card.tokens[1].kind not in ("word", "str", "expr"):  # expr: 'single quotes'
            raise card.error(f"{card.keyword} needs a file name", card.tokens[-1])
        path = directory / Path(card.tokens[1].text).expanduser()
        resolved = path.resolve()
        if resolved in self.including:
            chain = " -> ".join(str(p) for p in self.including + [resolved])
            raise card.error(f"include loop: {chain}", card.tokens[1])
        if not path.is_file():
            raise card.error(f"include file not found: {str(path)!r}", card.tokens[1])
        self.including.append(resolved)
        self.load(_read_file(path, card), str(path), path.parent, top=False)
        self.including.pop()

    # ---- pass 2 ------------------------------------------------------------------------------------
    def finish(self, file: str) -> Circuit:
        """Instantiate the element cards and build the Circuit with its models and training cards."""
        if self.open:
            raise self.open[-1].card.error(f"unclosed .subckt {self.open[-1].name} (no .ends)",
                                           self.open[-1].card.tokens[0])
        models, stored = {}, {IDEAL_MODEL: ""}
        for name, card in self.model_cards.items():
            if name == IDEAL_MODEL:
                continue
            model = diode_model(card, self.scope, self.warnings)
            if model is not None:
                models[name] = model
                stored[name] = name
        rows = Rows()
        series = frozenset(name for name, model in models.items() if model.rs > 0.0)
        instantiate = Instantiator(rows, self.scope, self.subckts, stored, self.globals, self.warnings, series)
        ctx = Context(self.scope)
        for item in self.items:
            if isinstance(item, FastChunk):
                item.model = _fast_models(item, stored, lambda card: instantiate.card(card, ctx))
                rows.add_fast(item)
            else:
                instantiate.card(item, ctx)
        if len(rows) == 0:
            raise NetlistError("no circuit elements (empty netlist?)", file)
        c = build_circuit(rows, self.title)
        c.models = models
        self._training(c)
        c.warnings = self.warnings
        return c

    def _training(self, c: Circuit) -> None:
        sources = set(c["V"].names.tolist()) | set(c["I"].names.tolist())
        for card in self.training[".inputs"]:
            for tok in card.tokens[1:]:
                name = tok.text.lower()
                if name not in sources:
                    raise card.error(f".inputs: no voltage or current source named {tok.text!r}", tok)
                if name in c.inputs:
                    raise card.error(f".inputs: {tok.text!r} listed twice", tok)
                c.inputs.append(name)
        for card in self.training[".outputs"]:
            for tok in card.tokens[1:]:
                if not c.has_node(tok.text):
                    raise card.error(f".outputs: no node named {tok.text!r}", tok)
                c.outputs.append(tok.text.lower())
        for card in self.training[".trainable"]:
            tokens = card.tokens[1:]
            end = next((i for i, t in enumerate(tokens) if i + 1 < len(tokens) and tokens[i + 1].kind == "="),
                       len(tokens))
            patterns = tokens[:end]
            if not patterns or any(t.kind != "word" for t in patterns):
                raise card.error(".trainable needs resistor or current-source name patterns, e.g. "
                                 "'.trainable r* gmax=1e-3'",
                                 card.tokens[0])
            bounds = {}
            for name, text, tok in key_values(tokens[end:], card):
                if name not in ("gmin", "gmax"):
                    raise card.error(f".trainable: unknown option {name!r} (gmin, gmax)", tok)
                bounds[name] = expression_value(text, self.scope, card, tok)
            gmin, gmax = bounds.get("gmin"), bounds.get("gmax")
            if (gmin is not None and gmin < 0) or (gmin is not None and gmax is not None and gmax < gmin):
                raise card.error(f".trainable: need 0 <= gmin <= gmax siemens, got gmin={gmin!r} gmax={gmax!r}",
                                 card.tokens[0])
            c.trainable.append(TrainableSpec(tuple(t.text.lower() for t in patterns), gmin, gmax))
        if self.training[".open"]:
            rows = {name: i for i, name in enumerate(c["R"].names.tolist())}
            resistance = c["R"].value.copy()
            for card in self.training[".open"]:
                for tok in card.tokens[1:]:
                    row = rows.get(tok.text.lower())
                    if row is None:
                        raise card.error(f".open: no resistor named {tok.text!r}", tok)
                    resistance[row] = np.inf
            c["R"].value = resistance


def _fast_models(chunk: FastChunk, stored: dict[str, str], parse_card) -> np.ndarray:
    """(m,) model names (as stored in the Circuit) of a fast chunk's rows ("" for ideal diodes and other
    kinds). A line naming an unknown model goes through the card parser (``parse_card``), which raises
    its own error for it."""
    from . import fastpath

    named = np.flatnonzero(chunk.model_start >= 0)
    if len(named) == 0:
        return np.full(len(chunk.kind), "", dtype=str)
    names, inverse = np.unique(fastpath.strings(chunk.buf, chunk.model_start[named], chunk.model_end[named]),
                               return_inverse=True)
    unknown = [i for i, name in enumerate(names.tolist()) if name not in stored]
    if unknown:  # the first line in reading order that names one, as the card parser would report it
        first = np.flatnonzero(np.isin(inverse, unknown))[0]
        line = int(chunk.line[named[first]])
        text = chunk.buf[chunk.starts[line - 1]:chunk.ends[line - 1]].tobytes().decode("utf-8")
        parse_card(next(lexer.cards([(line, text)], chunk.file)))
        raise AssertionError(f"the card parser accepted unknown diode model {names[inverse[first]]!r}")  # not reached
    mapped = np.array([stored[name] for name in names.tolist()] + [""], dtype=str)
    model = np.full(len(chunk.kind), "", dtype=mapped.dtype)
    model[named] = mapped[inverse]
    return model


def _title(line: str) -> str:
    return line.strip(lexer.WHITESPACE + "\n")
