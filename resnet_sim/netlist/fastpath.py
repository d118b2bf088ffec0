"""Numba kernels for big netlists: classify lines, parse simple element cards, intern names.

A *simple* line is one element card of a common shape, in plain ASCII, with a literal number:

    Rname a b VALUE      Cname a b VALUE      Lname a b VALUE
    Vname p n VALUE      Vname p n DC VALUE   (same for I)
    Dname a k [MODEL]    Ename p n cp cn VALUE

Every other line (title, comments, dot cards, continuations and the lines they continue, anything
with braces, quotes, ``=``, parentheses, ``;``, ``$``, non-ASCII bytes, odd suffixes, values the
general reader must reject) is left to the general reader, which gives the same result slower.
Values follow numbers.py exactly: the literal (suffix folded into the exponent) is converted with
correct rounding, by the Eisel-Lemire algorithm for up to 19 significant digits and by the C library's
``strtod`` otherwise; Python's ``float`` is correctly rounded too, so values are bit-identical.
Kernels are pure functions over byte arrays; reader.py dispatches.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..circuit import NODE_COLUMNS
from .assemble import KIND_LETTERS
from .numbers import MAX_EXPONENT_DIGITS, MEG_SHIFT, MIL_SCALE, SUFFIX_SHIFT

# line classes
SKIP, GENERAL, SIMPLE = 0, 1, 2
# element kinds of simple lines: index into KIND_LETTERS; their number of nodes
N_NODES = np.array([len(NODE_COLUMNS[k]) for k in KIND_LETTERS], dtype=np.int64)
_R, _V, _I, _D = (KIND_LETTERS.index(k) for k in "RVID")
MAX_TOKENS = 6
MAX_LITERAL_DIGITS = 40  # longer literals go to the general reader

_SHIFT = np.zeros(128, dtype=np.int64)  # suffix letter -> decimal shift (0 = not a suffix)
for _letter, _shift in SUFFIX_SHIFT.items():
    _SHIFT[ord(_letter)] = _shift
_KIND_OF = np.full(128, -1, dtype=np.int64)  # lower-case first letter -> kind index
for _i, _letter in enumerate(KIND_LETTERS.lower()):
    _KIND_OF[ord(_letter)] = _i
_CONTROL, _ENDC, _SUBCKT, _ENDS, _END = (np.frombuffer(w, np.uint8).copy() for w in
                                         (b".control", b".endc", b".subckt", b".ends", b".end"))
# bytes that end a dot-card word (as in lexer.tokenize): whitespace and { } ' " = ( ) , ;
_WORD_BYTE = np.ones(256, dtype=np.bool_)
for _ch in " \t\r\f\v\n{}'\"=(),;":
    _WORD_BYTE[ord(_ch)] = False
# bytes allowed inside a simple token: printable ASCII except { } ' " = ( ) , ; $
_TOKEN_BYTE = np.zeros(256, dtype=np.bool_)
_TOKEN_BYTE[33:127] = True
for _ch in "{}'\"=(),;$":
    _TOKEN_BYTE[ord(_ch)] = False


@intrinsic
def _strtod(typingctx, address):
    """C ``strtod`` on the NUL-terminated bytes at ``address`` (linked by symbol, so cache=True works)."""
    sig = types.float64(types.intp)

    def codegen(context, builder, signature, args):
        char_p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.DoubleType(), [char_p, char_p.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "strtod")
        return builder.call(fn, [builder.inttoptr(args[0], char_p), ir.Constant(char_p.as_pointer(), None)])

    return sig, codegen


@njit(cache=True, inline="always")
def _is_space(b):
    return b == 32 or b == 9 or b == 13 or b == 12 or b == 11


@njit(cache=True, inline="always")
def _lower(b):
    return b + 32 if 65 <= b <= 90 else b


@njit(cache=True, inline="always")
def _is_digit(b):
    return 48 <= b <= 57


@njit(cache=True, inline="always")
def _is_letter(b):
    return 97 <= b <= 122  # lower case only: callers pass _lower(b)


def _powers_of_five() -> np.ndarray:
    """(651, 2) uint64: 128-bit approximations (high, low words) of 5**q for q in [-342, 308], normalised
    so the top bit is set, for the Eisel-Lemire conversion (truncated for q >= 0, rounded up for q < 0)."""
    rows = []
    for q in range(-342, 0):
        power5 = 5 ** -q
        z = power5.bit_length()
        c = 2 ** (z + 127) // power5 + 1 if q >= -27 else 2 ** (2 * z + 128) // power5 + 1
        while c >= 1 << 128:
            c //= 2
        rows.append(c)
    for q in range(0, 309):
        power5 = 5 ** q
        while power5 < 1 << 127:
            power5 *= 2
        while power5 >= 1 << 128:
            power5 //= 2
        rows.append(power5)
    return np.array([[c >> 64, c & (2 ** 64 - 1)] for c in rows], dtype=np.uint64)


_POW5 = _powers_of_five()
_M32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _mul128(a, b):
    """Full 64 x 64 -> 128-bit product of two uint64, as (high, low)."""
    a_lo, a_hi = a & _M32, a >> np.uint64(32)
    b_lo, b_hi = b & _M32, b >> np.uint64(32)
    p0, p1, p2, p3 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (p0 >> np.uint64(32)) + (p1 & _M32) + (p2 & _M32)
    return p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (mid >> np.uint64(32)), \
        (p0 & _M32) | (mid << np.uint64(32))


@njit(cache=True)
def _decimal_to_double(w, q, pow5):
    """Correctly rounded w * 10**q (w: the exact decimal significand, uint64; q: int) by the Eisel-Lemire
    algorithm (Lemire, "Number parsing at a gigabyte per second", 2021). Returns (decided, value);
    undecided cases (subnormal results, a rare ambiguous product) go to strtod."""
    if w == np.uint64(0) or q < -342:
        return True, 0.0
    if q > 308:
        return True, np.inf
    lz = 0
    while (w >> np.uint64(63)) == np.uint64(0):
        w = w << np.uint64(1)
        lz += 1
    hi, lo = _mul128(w, pow5[q + 342, 0])
    if (hi & np.uint64(0x1FF)) == np.uint64(0x1FF):  # the low bits may matter: add the next word
        hi2, _ = _mul128(w, pow5[q + 342, 1])
        lo = lo + hi2
        if hi2 > lo:
            hi = hi + np.uint64(1)
        if lo == np.uint64(0xFFFFFFFFFFFFFFFF) and (q < -27 or q > 55):
            return False, 0.0
    upperbit = np.int64(hi >> np.uint64(63))
    shift = np.uint64(upperbit + 9)
    mantissa = hi >> shift
    power2 = (((152170 + 65536) * q) >> 16) + 63 + upperbit - lz + 1023
    if power2 <= 0:
        return False, 0.0
    if lo <= np.uint64(1) and -4 <= q <= 23 and (mantissa & np.uint64(3)) == np.uint64(1) \
            and (mantissa << shift) == hi:  # exactly halfway: round to even
        mantissa = mantissa & ~np.uint64(1)
    mantissa = (mantissa + (mantissa & np.uint64(1))) >> np.uint64(1)
    if mantissa >= np.uint64(1 << 53):
        mantissa = np.uint64(1 << 52)
        power2 += 1
    if power2 >= 0x7FF:
        return True, np.inf
    return True, math.ldexp(float(mantissa | np.uint64(1 << 52)), power2 - 1075)


@njit(cache=True)
def _parse_value(buf, start, end, scratch, shift_table, pow5):
    """SPICE number in buf[start:end] (see numbers.py); (ok, value). Up to 19 significant digits go
    through _decimal_to_double, longer literals and undecided cases through strtod (``scratch``: its
    uint8 work buffer); both are correctly rounded, as Python's float is."""
    q = start
    neg = False
    if q < end and (buf[q] == 43 or buf[q] == 45):
        neg = buf[q] == 45
        q += 1
    i0 = q
    while q < end and _is_digit(buf[q]):
        q += 1
    i1 = q
    f0 = f1 = q
    if q < end and buf[q] == 46:
        q += 1
        f0 = q
        while q < end and _is_digit(buf[q]):
            q += 1
        f1 = q
    if i1 - i0 + f1 - f0 == 0 or i1 - i0 + f1 - f0 > MAX_LITERAL_DIGITS:
        return False, 0.0
    exponent = 0
    if q < end and _lower(buf[q]) == 101:
        r = q + 1
        eneg = False
        if r < end and (buf[r] == 43 or buf[r] == 45):
            eneg = buf[r] == 45
            r += 1
        if r < end and _is_digit(buf[r]):
            while r < end and buf[r] == 48:  # leading zeros
                r += 1
            e0 = r
            while r < end and _is_digit(buf[r]):
                exponent = exponent * 10 + (buf[r] - 48)
                r += 1
            if r - e0 > MAX_EXPONENT_DIGITS:
                return False, 0.0
            if eneg:
                exponent = -exponent
            q = r
    l0 = q
    while q < end and _is_letter(_lower(buf[q])):
        q += 1
    if q != end:
        return False, 0.0
    factor = 1.0
    if l0 < end:
        if end - l0 >= 3 and _lower(buf[l0]) == 109 and _lower(buf[l0 + 1]) == 101 and _lower(buf[l0 + 2]) == 103:
            exponent += MEG_SHIFT
        elif end - l0 >= 3 and _lower(buf[l0]) == 109 and _lower(buf[l0 + 1]) == 105 and _lower(buf[l0 + 2]) == 108:
            factor = MIL_SCALE
        else:
            exponent += shift_table[_lower(buf[l0])]
    w = np.uint64(0)
    significant = 0
    for p in range(i0, f1):
        if p == i1:
            continue  # the decimal point
        if significant > 0 or buf[p] != 48:
            significant += 1
            if significant <= 19:
                w = w * np.uint64(10) + np.uint64(buf[p] - 48)
    if significant <= 19:
        decided, value = _decimal_to_double(w, exponent - (f1 - f0), pow5)
        if decided:
            if neg:
                value = -value
            return True, value * factor if factor != 1.0 else value
    # literal "[-]int.frac e exponent" NUL-terminated in scratch
    w = 0
    if neg:
        scratch[w] = 45
        w += 1
    if i1 == i0:
        scratch[w] = 48
        w += 1
    for p in range(i0, i1):
        scratch[w] = buf[p]
        w += 1
    scratch[w] = 46
    w += 1
    for p in range(f0, f1):
        scratch[w] = buf[p]
        w += 1
    scratch[w] = 101
    w += 1
    if exponent < 0:
        scratch[w] = 45
        w += 1
        exponent = -exponent
    digits = 1
    while exponent // (10 ** digits) > 0:
        digits += 1
    for k in range(digits - 1, -1, -1):
        scratch[w + k] = 48 + exponent % 10
        exponent //= 10
    w += digits
    scratch[w] = 0
    value = _strtod(scratch.ctypes.data)
    if factor != 1.0:
        value = value * factor
    return True, value


@njit(cache=True)
def _dot_word_is(buf, p, e, word, word_byte):
    """True when the dot-card word starting at buf[p] (ending at whitespace or a special byte) is ``word``."""
    n = len(word)
    if e - p < n:
        return False
    for k in range(n):
        if _lower(buf[p + k]) != word[k]:
            return False
    return p + n == e or not word_byte[buf[p + n]]


@njit(cache=True)
def scan(buf, title_line, token_byte, word_byte, kind_of, shift_table, n_nodes, pow5):
    """Classify every line of ``buf`` (uint8) and parse the simple ones.

    title_line: index of the title line or -1. Returns per line ``starts``, ``ends`` (byte offsets, end
    excludes the newline) and ``cls`` (SKIP, GENERAL or SIMPLE); per simple line, in order: ``line``
    (0-based line index), ``kind`` (index into KIND_LETTERS), name span (``name_start``, ``name_end``,
    prefix ``<letter>.`` removed), node spans ``(m, 4)`` (-1 when unused), diode model spans
    (``model_start``, ``model_end``, -1 when none), ``value`` (float64; 0 for diodes); and ``bad``, the offset of the first control byte (-1 if none), ``high``, whether any
    byte is >= 128. Lines inside ``.subckt``/``.control`` blocks are GENERAL, lines after ``.end`` SKIP.
    """
    nb = len(buf)
    n = 1
    for p in range(nb):
        if buf[p] == 10:
            n += 1
    starts = np.empty(n, np.int64)
    ends = np.empty(n, np.int64)
    cls = np.zeros(n, np.int8)
    line = np.empty(n, np.int64)
    kind = np.empty(n, np.int8)
    name_start = np.empty(n, np.int64)
    name_end = np.empty(n, np.int64)
    node_start = np.full((n, 4), -1, np.int64)
    node_end = np.full((n, 4), -1, np.int64)
    model_start = np.full(n, -1, np.int64)
    model_end = np.full(n, -1, np.int64)
    value = np.zeros(n, np.float64)
    scratch = np.zeros(MAX_LITERAL_DIGITS + 16 + MAX_EXPONENT_DIGITS, np.uint8)
    ts = np.zeros(MAX_TOKENS + 1, np.int64)
    te = np.zeros(MAX_TOKENS + 1, np.int64)
    bad = -1
    high = False
    m = 0  # simple lines so far
    last = -1  # last line that was not SKIP
    depth = 0  # open .subckt definitions
    control = False  # inside .control ... .endc
    ended = False  # after .end
    q = 0
    for li in range(n):
        s = q
        plain = True
        while q < nb and buf[q] != 10:
            b = buf[q]
            if b >= 128:
                high = True
                plain = False
            elif (b < 32 and not (9 <= b <= 13)) or b == 127:
                if bad < 0:
                    bad = q
                plain = False
            q += 1
        e = q
        q += 1
        starts[li] = s
        ends[li] = e
        if ended:
            continue
        p = s
        while p < e and _is_space(buf[p]):
            p += 1
        if p >= e:
            continue
        c = _lower(buf[p])
        cls[li] = GENERAL
        if li == title_line:
            continue
        if control:
            if c == 46 and _dot_word_is(buf, p, e, _ENDC, word_byte):
                control = False
            last = li
            continue
        if c == 42:  # '*': comment, or a '*@' training card
            if not (p + 1 < e and buf[p + 1] == 64):
                cls[li] = SKIP
                continue
        elif c == 43:  # '+': continues the last card, which is then not simple
            if last >= 0 and cls[last] == SIMPLE:
                cls[last] = GENERAL
                m -= 1
        elif c == 46:  # '.'
            if _dot_word_is(buf, p, e, _CONTROL, word_byte):
                control = True
            elif _dot_word_is(buf, p, e, _SUBCKT, word_byte):
                depth += 1
            elif _dot_word_is(buf, p, e, _ENDS, word_byte):
                depth = max(depth - 1, 0)
            elif _dot_word_is(buf, p, e, _END, word_byte):
                ended = True
        last = li
        k = kind_of[c] if c < 128 else -1
        if k < 0 or not plain or depth > 0:
            continue
        nt = 0
        ok = True
        while p < e:
            while p < e and _is_space(buf[p]):
                p += 1
            if p >= e:
                break
            if nt == MAX_TOKENS:
                ok = False
                break
            ts[nt] = p
            while p < e and not _is_space(buf[p]):
                if not token_byte[buf[p]]:
                    ok = False
                p += 1
            te[nt] = p
            nt += 1
        if not ok:
            continue
        nn = n_nodes[k]
        v_tok = -1
        m_tok = -1
        if k == _D:  # name a k [model]
            if nt == 4:
                m_tok = 3
            elif nt != 3:
                continue
        elif k == _V or k == _I:  # name p n [dc] value
            if nt == 4:
                v_tok = 3
            elif nt == 5 and te[3] - ts[3] == 2 and _lower(buf[ts[3]]) == 100 and _lower(buf[ts[3] + 1]) == 99:
                v_tok = 4
            else:
                continue
        elif nt == nn + 2:  # R C L E: name nodes value
            v_tok = nn + 1
        else:
            continue
        ns = ts[0]
        if te[0] - ts[0] >= 2 and buf[ts[0] + 1] == 46:
            ns += 2
            if ns == te[0]:
                continue
        v = 0.0
        if v_tok >= 0:
            ok, v = _parse_value(buf, ts[v_tok], te[v_tok], scratch, shift_table, pow5)
            if not ok or not np.isfinite(v) or (k == _R and v <= 0.0):
                continue
        cls[li] = SIMPLE
        line[m] = li
        kind[m] = k
        name_start[m] = ns
        name_end[m] = te[0]
        if m_tok >= 0:
            model_start[m] = ts[m_tok]
            model_end[m] = te[m_tok]
        for j in range(4):
            node_start[m, j] = ts[1 + j] if j < nn else -1
            node_end[m, j] = te[1 + j] if j < nn else -1
        value[m] = v
        m += 1
    return (starts, ends, cls, line[:m], kind[:m], name_start[:m], name_end[:m], node_start[:m], node_end[:m],
            model_start[:m], model_end[:m], value[:m], bad, high)


@njit(cache=True)
def _fnv(pool, s, e):
    h = np.uint64(14695981039346656037)
    for p in range(s, e):
        h = (h ^ np.uint64(_lower(pool[p]))) * np.uint64(1099511628211)
    return h


@njit(cache=True)
def _same(pool1, s1, e1, pool2, s2, e2):
    if e1 - s1 != e2 - s2:
        return False
    for k in range(e1 - s1):
        if _lower(pool1[s1 + k]) != _lower(pool2[s2 + k]):
            return False
    return True


@njit(cache=True)
def hashes(pool, starts, ends):
    """(n,) uint64 FNV-1a hashes of the strings pool[starts[i]:ends[i]] (ASCII case ignored)."""
    out = np.empty(len(starts), np.uint64)
    for i in range(len(starts)):
        out[i] = _fnv(pool, starts[i], ends[i])
    return out


@njit(cache=True)
def _insert(table, hashes, u, cap):
    slot = np.int64(hashes[u] & np.uint64(cap - 1))
    while table[slot] >= 0:
        slot = (slot + 1) & (cap - 1)
    table[slot] = u


@njit(cache=True)
def intern(pool, starts, ends, expected):
    """Number the distinct strings pool[starts[i]:ends[i]] (ASCII case ignored) by first appearance.

    Spans with a negative start are skipped (id -1); ``expected``: about how many distinct strings
    (sizes the table; it grows when needed). Returns ``ids`` (n,), ``first`` (n_distinct,) the index of
    each string's first occurrence, and the hash table (``table``, ``hashes``) for ``lookup``.
    Open addressing, FNV-1a 64-bit hashes, exact byte comparison: no collision can merge two names.
    """
    n = len(starts)
    ids = np.full(n, -1, np.int64)
    cap = 1024  # table size, a power of 2; first and hashes hold cap // 2 entries
    while cap < 2 * expected:
        cap *= 2
    first = np.empty(cap // 2, np.int64)
    hashes = np.empty(cap // 2, np.uint64)
    table = np.full(cap, -1, np.int64)
    n_unique = 0
    for i in range(n):
        if starts[i] < 0:
            continue
        h = _fnv(pool, starts[i], ends[i])
        if 2 * (n_unique + 1) > cap:
            cap *= 4
            first = np.concatenate((first, np.empty(cap // 2 - len(first), np.int64)))
            hashes = np.concatenate((hashes, np.empty(cap // 2 - len(hashes), np.uint64)))
            table = np.full(cap, -1, np.int64)
            for u in range(n_unique):
                _insert(table, hashes, u, cap)
        slot = np.int64(h & np.uint64(cap - 1))
        while True:
            u = table[slot]
            if u < 0:
                table[slot] = n_unique
                hashes[n_unique] = h
                first[n_unique] = i
                ids[i] = n_unique
                n_unique += 1
                break
            if hashes[u] == h and _same(pool, starts[first[u]], ends[first[u]], pool, starts[i], ends[i]):
                ids[i] = u
                break
            slot = (slot + 1) & (cap - 1)
    return ids, first[:n_unique], table, hashes[:n_unique]


@njit(cache=True)
def lookup(table, hashes, first, pool, starts, ends, query_pool, query_starts, query_ends):
    """Ids (from ``intern`` over pool/starts/ends) of the query strings, -1 for strings not interned."""
    cap = len(table)
    out = np.full(len(query_starts), -1, np.int64)
    for q in range(len(query_starts)):
        h = _fnv(query_pool, query_starts[q], query_ends[q])
        slot = np.int64(h & np.uint64(cap - 1))
        while table[slot] >= 0:
            u = table[slot]
            if hashes[u] == h and _same(pool, starts[first[u]], ends[first[u]], query_pool, query_starts[q],
                                        query_ends[q]):
                out[q] = u
                break
            slot = (slot + 1) & (cap - 1)
    return out


@njit(cache=True)
def _gather(pool, starts, ends):
    n = len(starts)
    width = 1
    for i in range(n):
        width = max(width, ends[i] - starts[i])
    out = np.zeros((n, width), np.uint32)
    for i in range(n):
        for k in range(ends[i] - starts[i]):
            out[i, k] = _lower(pool[starts[i] + k])
    return out


def strings(pool: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The ASCII strings at the given spans of ``pool``, lower-cased, as a numpy str array."""
    if len(starts) == 0:
        return np.array([], dtype=str)
    codes = _gather(pool, starts, ends)
    return codes.view(f"U{codes.shape[1]}").reshape(-1)


def scan_buffer(buf: np.ndarray, title: bool):
    """``scan`` with this module's tables; ``title``: the first line is the title."""
    return scan(buf, 0 if title else -1, _TOKEN_BYTE, _WORD_BYTE, _KIND_OF, _SHIFT, N_NODES, _POW5)
