"""Interval arithmetic for the checker: each scalar function on an mpmath ``iv`` interval gives an
enclosure and whether it is undefined there; :class:`Value` is a matrix (or scalar) of such intervals."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np
import sympy

from derive.elementwise import Relu, Sigmoid, Softplus, UnitStep


iv = mpmath.iv
NAN = mpmath.mpf("nan")
WIDE = iv.mpf(["-inf", "inf"])          # a value not known at this precision
ZERO, ONE = iv.mpf(0), iv.mpf(1)


class Unsupported(ValueError):
    pass


class ivprec:
    """``with ivprec(bits):`` sets the precision of mpmath's interval context (a global) for a block."""

    def __init__(self, bits: int):
        self.bits = bits

    def __enter__(self) -> None:
        self.saved, iv.prec = iv.prec, self.bits

    def __exit__(self, *exc) -> None:
        iv.prec = self.saved


@dataclass(frozen=True)
class Value:
    """A value: intervals (an object array of ``iv.mpf``, or one) and where it is undefined (a bool
    array, or a bool); an undefined entry holds the placeholder 0."""

    v: object
    u: object


# An interval's endpoints and midpoint, exactly (``mpf(x.a)`` and ``x.mid`` round to the context's precision).
def lower(x) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[0])


def upper(x) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[1])


def midpoint(x) -> mpmath.mpf:
    return mpmath.ldexp(mpmath.fadd(lower(x), upper(x), exact=True), -1)


def interval(lo, hi) -> object:
    return iv.mpf([lo, hi])


# Each scalar function on an interval: (enclosure, undefined).  An argument that straddles the edge of
# the domain (log of [−ε, ε]) gives the wide interval, not "undefined": more precision may decide it.
def _log(x):
    if upper(x) <= 0:
        return ZERO, True
    if lower(x) <= 0:
        return interval("-inf", upper(iv.log(iv.mpf(upper(x))))), False
    return iv.log(x), False


def _relu(x):
    return interval(max(lower(x), 0), max(upper(x), 0)), False


def istep(x):
    if lower(x) > 0:
        return ONE, False
    if upper(x) <= 0:
        return ZERO, False
    return interval(0, 1), False


def _abs(x):
    if lower(x) >= 0:
        return x, False
    if upper(x) <= 0:
        return -x, False
    return interval(0, max(-lower(x), upper(x))), False


def _sign(x):
    if lower(x) > 0:
        return ONE, False
    if upper(x) < 0:
        return -ONE, False
    if lower(x) == 0 == upper(x):
        return ZERO, False
    return interval(-1, 1), False


def _monotone(f: Callable, lo_dom=None, hi_dom=None, increasing: bool = True) -> Callable:
    """An increasing (decreasing) function on [lo_dom, hi_dom], its endpoints computed with 20 more bits
    and widened outward by four units in the last place."""
    def g(x):
        a, b = lower(x), upper(x)
        if (lo_dom is not None and b < lo_dom) or (hi_dom is not None and a > hi_dom):
            return ZERO, True
        if (lo_dom is not None and a < lo_dom) or (hi_dom is not None and b > hi_dom):
            return WIDE, False
        with mpmath.workprec(iv.prec + 20):
            fa, fb = f(a), f(b)
            if not increasing:
                fa, fb = fb, fa
            pad = mpmath.ldexp(1, -iv.prec + 2)
            return interval(fa - abs(fa) * pad, fb + abs(fb) * pad), False
    return g


def _plain(f: Callable) -> Callable:
    return lambda x: (f(x), False)


FUNCTIONS: dict = {
    sympy.exp: _plain(iv.exp), sympy.log: _log,
    sympy.sin: _plain(iv.sin), sympy.cos: _plain(iv.cos), sympy.tan: _plain(iv.tan),
    # x occurs once in each formula: the interval result is an enclosure
    sympy.tanh: _plain(lambda x: 1 - 2 / (iv.exp(2 * x) + 1)),
    Sigmoid: _plain(lambda x: 1 / (1 + iv.exp(-x))),
    Softplus: _plain(lambda x: iv.log1p(iv.exp(x))),
    sympy.sinh: _plain(lambda x: (iv.exp(x) - iv.exp(-x)) / 2),
    sympy.cosh: _plain(lambda x: (iv.exp(x) + iv.exp(-x)) / 2),
    sympy.atan: _monotone(mpmath.atan), sympy.asin: _monotone(mpmath.asin, -1, 1),
    sympy.acos: _monotone(mpmath.acos, -1, 1, increasing=False),
    sympy.Abs: _abs, sympy.sign: _sign, Relu: _relu, UnitStep: istep,
}


def ipow(b, p):
    """b^p on intervals: an integer power of anything, a real power of a positive number."""
    integer = lower(p) == upper(p) and mpmath.isint(lower(p))
    if lower(b) == 0 == upper(b) and upper(p) < 0:
        return ZERO, True                                     # 0⁻¹
    if not integer and upper(b) < 0:
        return ZERO, True                                     # (−8)^½
    if not integer and lower(b) < 0:
        return WIDE, False
    if integer and lower(p) < 0 and lower(b) <= 0 <= upper(b):
        return WIDE, False
    return (b ** int(lower(p)) if integer else b ** p), False



def exact_det(m: np.ndarray) -> Fraction | None:
    """The determinant of a matrix of point intervals, exactly (fractions); None if an entry is not a point."""
    if not all(lower(a) == upper(a) and mpmath.isfinite(lower(a)) for a in m.flat):
        return None
    rows = [[Fraction(*mpmath.libmp.to_rational(lower(a)._mpf_)) for a in row] for row in m]
    n, det = len(rows), Fraction(1)
    for c in range(n):
        p = next((r for r in range(c, n) if rows[r][c] != 0), None)
        if p is None:
            return Fraction(0)
        if p != c:
            rows[c], rows[p], det = rows[p], rows[c], -det
        det *= rows[c][c]
        for r in range(c + 1, n):
            f = rows[r][c] / rows[c][c]
            rows[r] = [a - f * b for a, b in zip(rows[r], rows[c])]
    return det


def full_matrix(r: int, c: int, value) -> np.ndarray:
    return np.full((r, c), value, dtype=object)


def entrywise(f: Callable, *xs: Value) -> Value:
    """``f`` (interval → (interval, undefined)) entry by entry."""
    val, und = np.frompyfunc(f, len(xs), 2)(*[x.v for x in xs])
    u = np.asarray(und, dtype=bool) if isinstance(und, np.ndarray) else bool(und)
    for x in xs:
        u = u | x.u
    return Value(np.where(u, ZERO, val) if isinstance(val, np.ndarray) else (ZERO if u else val), u)

