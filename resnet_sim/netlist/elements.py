"""Element cards (R V I D E C L X) to rows, with subcircuit flattening, and ``.model`` cards to DiodeModels.

Flattening: inside instance ``x1`` the element ``r3`` becomes ``x1.r3`` and the internal node ``mid``
becomes ``x1.mid``; ports map to the caller's nodes; ground (``0``/``gnd``) and ``.global`` nodes stay
global; nested instances give ``x1.x2.r3``. An instance's parameters: the subcircuit's defaults,
overridden by the instance (evaluated in the caller's scope), plus the body's ``.param`` cards, in a
scope whose parent is the global one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..circuit import GROUND, GROUND_ALIASES, DiodeModel
from .assemble import Rows
from .lexer import Card, Token
from .numbers import is_numberlike
from .params import Scope, expression_value, is_value_token, key_values, token_value

SIMULATED = "RVIDECLX"
IDEAL_MODEL = "resnet_ideal"  # the writer's stand-in .model for ideal diodes; read back as model ""
MAX_NESTING = 50
# transient source functions: index of the argument that gives the value at t = 0 (None: not simple)
TRANSIENT_T0 = {"pulse": 0, "sin": 0, "exp": 0, "sffm": 0, "pwl": 1, "am": None, "trnoise": None,
                "trrandom": None}
_KEYWORDS = frozenset({"dc", "ac", "distof1", "distof2", *TRANSIENT_T0})
_E_FORMS = frozenset({"value", "vol", "poly", "table", "laplace", "freq", "cur", "and", "or", "nand", "nor"})


@dataclass
class Subckt:
    """A ``.subckt`` definition: ports, default parameters (name -> (expression, card, token)), body cards."""

    name: str
    ports: list[str]
    defaults: list[tuple[str, str, Token]]
    card: Card
    body: list[Card] = field(default_factory=list)


@dataclass
class Context:
    """Where a card is being instantiated: parameter scope, name prefix, port map, the top-level card."""

    scope: Scope
    prefix: str = ""
    ports: dict[str, str] = field(default_factory=dict)
    origin: Card | None = None
    stack: tuple[str, ...] = ()


class Instantiator:
    """Turns element cards into rows of ``Rows`` (flattening X cards) using the definitions of pass 1."""

    def __init__(self, rows: Rows, global_scope: Scope, subckts: dict[str, Subckt], models: dict[str, str],
                 globals_: set[str], warnings: list[str], series: frozenset[str] = frozenset()):
        self.rows = rows
        self.global_scope = global_scope
        self.subckts = subckts
        self.models = models  # model name -> model name stored in the Circuit ("" for the ideal stand-in)
        self.series = series  # diode models with a series resistance RS > 0
        self.globals = globals_
        self.warnings = warnings

    def warn(self, card: Card, message: str) -> None:
        self.warnings.append(f"{card.file}:{card.line}: {message}")

    # ---- helpers -----------------------------------------------------------------------------------
    def node(self, card: Card, token: Token, ctx: Context) -> str:
        if token.kind != "word":
            raise card.error(f"expected a node name, found {token.text!r}", token)
        name = token.text.lower()
        if name in GROUND_ALIASES:
            return GROUND
        if not ctx.prefix or name in self.globals:  # a .global name wins over a port of that name (ngspice)
            return name
        if name in ctx.ports:
            return ctx.ports[name]
        return ctx.prefix + name

    def nodes(self, card: Card, ctx: Context, count: int) -> list[str]:
        tokens = card.tokens
        if len(tokens) < count + 1:
            raise card.error(f"{card.keyword}: expected {count} nodes, found {len(tokens) - 1}",
                             tokens[-1])
        return [self.node(card, tok, ctx) for tok in tokens[1:count + 1]]

    # ---- cards -------------------------------------------------------------------------------------
    def card(self, card: Card, ctx: Context) -> None:
        """Add the rows of one element card (recursively for X)."""
        first = card.tokens[0]
        if first.kind != "word":
            raise card.error(f"expected an element name, found {first.text!r}", first)
        letter = card.keyword[0].upper()
        if letter not in SIMULATED:
            raise card.error(
                f"unsupported element {first.text!r}: only resistive DC elements R V I D E C L X are simulated",
                first)
        name = card.keyword
        if len(name) >= 2 and name[1] == ".":
            name = name[2:]
        if not name:
            raise card.error(f"element name {first.text!r} is empty after its kind letter", first)
        full = ctx.prefix + name
        origin = ctx.origin or card
        getattr(self, f"_{letter}")(card, ctx, full, origin)

    def _two_terminal(self, card, ctx, what, keys):
        """Nodes, value and the other ``name=value`` parameters of an R, C or L card. The value is positional
        (``R1 a b 1k``) or a parameter named in ``keys`` (``R1 a b r=1k``, which wins, as in ngspice)."""
        a, b = self.nodes(card, ctx, 2)
        tokens = card.tokens[3:]
        value = value_tok = None
        if tokens and not (len(tokens) > 1 and tokens[1].kind == "="):
            value_tok, tokens = tokens[0], tokens[1:]
            if not is_value_token(value_tok):
                raise card.error(f"{card.keyword}: missing {what}", value_tok)
            value = token_value(value_tok, ctx.scope, card, what)
        params = {name: (text, tok) for name, text, tok in key_values(tokens, card)}  # the last one counts
        for key in keys:
            if key in params:
                text, value_tok = params.pop(key)
                value = expression_value(text, ctx.scope, card, value_tok)
        if value is None:
            raise card.error(f"{card.keyword}: missing {what}", card.tokens[-1])
        return a, b, value, value_tok, params

    def _extra(self, card: Card, params: dict) -> None:
        if params:
            self.warn(card, f"{card.keyword}: ignored parameters {', '.join(params)}")

    def _R(self, card, ctx, full, origin):
        a, b, value, value_tok, params = self._two_terminal(card, ctx, "resistance", ("r", "resistance"))
        for key in ("scale", "m"):  # as ngspice: conductance = m / (r * scale)
            if key in params:
                text, tok = params.pop(key)
                factor = expression_value(text, ctx.scope, card, tok)
                if factor <= 0.0:
                    raise card.error(f"{card.keyword}: {key} must be > 0, got {factor!r}", tok)
                value = value * factor if key == "scale" else value / factor
        self._extra(card, params)
        if not value > 0.0 or not math.isfinite(value):
            raise card.error(f"{card.keyword}: resistance must be > 0 ohms, got {value!r}", value_tok)
        self.rows.add("R", full, (a, b), value, "", origin)

    def _C(self, card, ctx, full, origin):
        a, b, value, _, params = self._two_terminal(card, ctx, "capacitance", ("c", "capacitance"))
        self._extra(card, params)
        self.rows.add("C", full, (a, b), value, "", origin)

    def _L(self, card, ctx, full, origin):
        a, b, value, _, params = self._two_terminal(card, ctx, "inductance", ("l", "inductance"))
        self._extra(card, params)
        self.rows.add("L", full, (a, b), value, "", origin)

    def _V(self, card, ctx, full, origin):
        p, n = self.nodes(card, ctx, 2)
        self.rows.add(card.keyword[0].upper(), full, (p, n), self._source_value(card, ctx), "", origin)

    _I = _V

    def _source_value(self, card: Card, ctx: Context) -> float:
        """DC value of a V/I card: ``[DC] value``, else the transient value at t=0 (warned), else 0 (warned)."""
        tokens = card.tokens[3:]
        dc = t0 = None
        t0_known = True
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            word = tok.text.lower() if tok.kind == "word" else ""
            if word == "dc":
                i += 2 if i + 1 < len(tokens) and tokens[i + 1].kind == "=" else 1
                if i >= len(tokens) or not is_value_token(tokens[i]):
                    raise card.error(f"{card.keyword}: DC needs a value", tok)
                dc = token_value(tokens[i], ctx.scope, card, "DC value")
                i += 1
            elif word in ("ac", "distof1", "distof2"):
                i += 1
                for _ in range(2):  # magnitude, phase: checked, not used at DC
                    if i < len(tokens) and is_value_token(tokens[i]) and tokens[i].text.lower() not in _KEYWORDS:
                        token_value(tokens[i], ctx.scope, card, f"{word.upper()} value")
                        i += 1
            elif word in TRANSIENT_T0:
                args, i = self._function_args(card, tokens, i + 1, ctx)
                index = TRANSIENT_T0[word]
                if index is not None and len(args) > index:
                    t0 = args[index]
                    if word == "sin" and len(args) > 5:  # SIN(vo va freq td theta phase): vo + va sin(phase)
                        t0 += args[1] * math.sin(math.radians(args[5]))
                else:
                    t0_known = False
            elif i == 0 and is_value_token(tok):
                dc = token_value(tok, ctx.scope, card, "value")
                i += 1
            else:
                raise card.error(f"{card.keyword}: unexpected {tok.text!r} in the source specification", tok)
        if dc is not None:
            return dc
        if t0 is not None and t0_known:
            self.warn(card, f"{card.keyword}: no DC value, using the transient value at t=0 ({t0!r})")
            return t0
        self.warn(card, f"{card.keyword}: no DC value, using 0")
        return 0.0

    def _function_args(self, card: Card, tokens: list[Token], i: int, ctx: Context) -> tuple[list[float], int]:
        """Arguments of ``FUNC(a b c)`` or ``FUNC a b c`` starting at tokens[i]; returns (values, next index)."""
        args = []
        paren = i < len(tokens) and tokens[i].kind == "("
        if paren:
            i += 1
        while i < len(tokens):
            tok = tokens[i]
            if paren and tok.kind == ")":
                return args, i + 1
            if not is_value_token(tok) or (tok.kind == "word" and tok.text.lower() in _KEYWORDS):
                break
            args.append(token_value(tok, ctx.scope, card, "source function argument"))
            i += 1
        if paren:
            raise card.error(f"{card.keyword}: missing ')' in the source function", tokens[-1])
        return args, i

    def _D(self, card, ctx, full, origin):
        a, k = self.nodes(card, ctx, 2)
        tokens = card.tokens[3:]
        model = ""
        if tokens and tokens[0].kind == "word" and not (len(tokens) > 1 and tokens[1].kind == "="):
            name_tok, tokens = tokens[0], tokens[1:]
            name = name_tok.text.lower()
            if name not in self.models:
                raise card.error(f"{card.keyword}: unknown diode model {name_tok.text!r}", name_tok)
            model = self.models[name]
        if tokens:
            if model in self.series:
                self._diode_multipliers(card, tokens, ctx, model)
            self.warn(card, f"{card.keyword}: ignored {' '.join(t.text for t in tokens)}")
        self.rows.add("D", full, (a, k), 0.0, model, origin)

    def _diode_multipliers(self, card: Card, tokens: list[Token], ctx: Context, model: str) -> None:
        """Error for an area (``area=``, or a number after the model) or ``m=`` other than 1 on a diode whose
        model has RS: ngspice divides RS by them; a model holds one RS here."""
        for i, tok in enumerate(tokens):
            key = tok.text.lower() if tok.kind == "word" else ""
            if key in ("area", "m") and i + 2 < len(tokens) and tokens[i + 1].kind == "=":
                tok = tokens[i + 2]
            elif i == 0 and (tok.kind == "expr" or is_numberlike(tok.text)):
                key = "area"
            else:
                continue
            factor = token_value(tok, ctx.scope, card, key)
            if factor != 1.0:
                raise card.error(f"{card.keyword}: {key}={factor!r} would divide the series resistance RS of "
                                 f"model {model!r} (as in ngspice), which is not supported: give the diode a "
                                 f"model with RS/{key} instead", tok)

    def _E(self, card, ctx, full, origin):
        tokens = card.tokens
        form = tokens[3] if len(tokens) > 3 else None
        if form is not None and (form.kind != "word" or (form.text.lower() in _E_FORMS and (
                len(tokens) == 4 or tokens[4].kind != "word"))):
            raise card.error(f"{card.keyword}: only the linear form 'E name p n cp cn gain' is supported", form)
        nodes = self.nodes(card, ctx, 4)
        if len(tokens) < 6 or not is_value_token(tokens[5]):
            raise card.error(f"{card.keyword}: missing gain", tokens[-1])
        gain = token_value(tokens[5], ctx.scope, card, "gain")
        if len(tokens) > 6:
            raise card.error(f"{card.keyword}: unexpected {tokens[6].text!r} after the gain", tokens[6])
        self.rows.add("E", full, tuple(nodes), gain, "", origin)

    def _X(self, card, ctx, full, origin):
        tokens = card.tokens[1:]
        end = len(tokens)
        for i, tok in enumerate(tokens):
            if tok.kind == "=" or (tok.kind == "word" and tok.text.lower() == "params:"):
                end = i - 1 if tok.kind == "=" else i
                break
        positional, rest = tokens[:end], tokens[end:]
        if rest and rest[0].text.lower() == "params:":
            rest = rest[1:]
        if not positional:
            raise card.error(f"{card.keyword}: missing subcircuit name", card.tokens[0])
        for tok in positional:
            if tok.kind != "word":
                raise card.error(f"{card.keyword}: unexpected {tok.text!r}", tok)
        sub_tok = positional[-1]
        sub = self.subckts.get(sub_tok.text.lower())
        if sub is None:
            raise card.error(f"{card.keyword}: unknown subcircuit {sub_tok.text!r}", sub_tok)
        if sub.name in ctx.stack or len(ctx.stack) >= MAX_NESTING:
            raise card.error(f"{card.keyword}: subcircuit {sub.name!r} instantiates itself "
                             f"({' -> '.join(ctx.stack + (sub.name,))})", sub_tok)
        nodes = positional[:-1]
        if len(nodes) != len(sub.ports):
            raise card.error(f"{card.keyword}: subcircuit {sub.name!r} has {len(sub.ports)} ports "
                             f"({' '.join(sub.ports)}), the instance gives {len(nodes)} nodes", sub_tok)
        scope = Scope(parent=self.global_scope)
        for name, text, tok in sub.defaults:
            scope.define(name, text, sub.card, tok)
        declared = {name for name, _, _ in sub.defaults}
        overridden = set()
        for name, text, tok in key_values(rest, card):
            if name not in declared:
                hint = " (an instance multiplier m= is not supported)" if name == "m" else ""
                raise card.error(f"{card.keyword}: subcircuit {sub.name!r} has no parameter {name!r}{hint}", tok)
            scope.set_value(name, expression_value(text, ctx.scope, card, tok))
            overridden.add(name)
        inner = Context(scope=scope, prefix=full + ".", origin=origin, stack=ctx.stack + (sub.name,),
                        ports={port: self.node(card, tok, ctx) for port, tok in zip(sub.ports, nodes)})
        for body_card in sub.body:
            if body_card.keyword == ".param":
                for name, text, tok in key_values(body_card.tokens[1:], body_card):
                    if name not in overridden:  # the instance's value wins, as in ngspice
                        scope.define(name, text, body_card, tok)
        for body_card in sub.body:
            if body_card.keyword != ".param":
                self.card(body_card, inner)


def diode_model(card: Card, scope: Scope, warnings: list[str]) -> DiodeModel | None:
    """DiodeModel of a ``.model name D(...)`` card; None (with a warning) for other model types."""
    tokens = card.tokens
    if len(tokens) < 3 or tokens[1].kind != "word" or tokens[2].kind != "word":
        raise card.error(".model needs a name and a type, e.g. '.model dmod D(VF=0.7)'", tokens[-1])
    kind = tokens[2].text.lower()
    rest = [t for t in tokens[3:] if t.kind not in ("(", ")")]
    if kind != "d":
        warnings.append(f"{card.file}:{card.line}: ignored .model {tokens[1].text} {tokens[2].text} "
                        "(only diode models are used)")
        return None
    vf, rs, params = 0.0, 0.0, []
    for name, text, tok in key_values(rest, card):
        value = expression_value(text, scope, card, tok)
        if name == "vf":
            vf = value
        elif name == "rs":
            if value < 0:
                raise card.error(f"diode series resistance RS must be >= 0 ohms, got {value!r}", tok)
            rs = value
        else:
            params.append((name, value))
    if params:
        warnings.append(f"{card.file}:{card.line}: model {tokens[1].text.lower()}: parameters "
                        f"{', '.join(p for p, _ in params)} ignored (ideal diode: only VF and RS are used)")
    return DiodeModel(vf=vf, rs=rs, params=tuple(params))
