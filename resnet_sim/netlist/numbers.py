"""SPICE numbers: decimal literals with an optional scale suffix, letters after it ignored.

``10``, ``-2.5``, ``.5``, ``5.``, ``1e-3``, ``2.2k``, ``10V``, ``2.2kOhm``, ``3meg``, ``1mil``.
Suffixes (case-insensitive): T=1e12 G=1e9 MEG=1e6 K=1e3 M=1e-3 (milli) U=1e-6 N=1e-9 P=1e-12
F=1e-15, MIL=25.4e-6. Any other letters after the number are units and ignored (``10V``).

A power-of-ten suffix shifts the decimal exponent, so ``2.2k`` is exactly the double nearest to
2200 (the same as ``2.2e3``); ``MIL`` multiplies by 2.54e-5. The fast path (fastpath.py) follows
the same rule byte for byte, so both give bit-identical values.
"""

from __future__ import annotations

import re

SUFFIX_SHIFT = {"t": 12, "g": 9, "k": 3, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15}
MEG_SHIFT = 6
MIL_SCALE = 2.54e-5
# exponents beyond this many digits are clamped (the value is then 0 or out of range anyway)
MAX_EXPONENT_DIGITS = 5

_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?([A-Za-z]*)")
_NUMBERLIKE = re.compile(r"[+-]?\.?[0-9]")


def suffix_scale(letters: str) -> tuple[int, float]:
    """(decimal shift, extra factor) of the letters after a number: ``k`` -> (3, 1.0), ``mil`` -> (0, 2.54e-5)."""
    letters = letters.lower()
    if letters.startswith("meg"):
        return MEG_SHIFT, 1.0
    if letters.startswith("mil"):
        return 0, MIL_SCALE
    if letters:
        return SUFFIX_SHIFT.get(letters[0], 0), 1.0
    return 0, 1.0


def is_numberlike(token: str) -> bool:
    """True when ``token`` starts like a number (digit, or sign/point then digit)."""
    return _NUMBERLIKE.match(token) is not None


def parse_number(token: str) -> float | None:
    """The value of a SPICE number token, or None when the token is not a well-formed number."""
    m = _NUMBER.fullmatch(token)
    if m is None:
        return None
    sign, whole, frac, exp, letters = m.groups()
    if not whole and not frac:
        return None
    exponent = 0
    if exp is not None:
        digits = exp.lstrip("+-").lstrip("0")
        if len(digits) > MAX_EXPONENT_DIGITS:
            exponent = 10 ** MAX_EXPONENT_DIGITS * (-1 if exp.startswith("-") else 1)
        else:
            exponent = int(exp)
    shift, factor = suffix_scale(letters)
    value = float(f"{sign}{whole or '0'}.{frac or ''}e{exponent + shift}")
    return value * factor if factor != 1.0 else value
