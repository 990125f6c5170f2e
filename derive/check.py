"""Check a hand-written gradient against the engine's, and say where it goes wrong.

``check_answer("2*X'*(((Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h)))", "W1")`` parses the
answer with the expression language (the network's intermediates may be used by name), checks its
shape against ∂f/∂W1 and compares its value with the engine's gradient.  Any input, parameter or
intermediate of the network may be the variable.

The comparison must never accept a wrong answer, so it decides in interval arithmetic:

* **draws** — every dimension takes several values, each varied independently of the others
  (:data:`DIM_ROWS`: non-square, away from the defaults, one draw with dimensions of 1), and the data
  several scales (0.1 to 10, and beyond the largest number written in the answer, so that a term
  such as ``relu(h - 100)`` that vanishes on small data is seen); most dimension sets are drawn twice;
* **precision** — the answer and the gradient are evaluated in P-bit interval arithmetic (mpmath's
  ``iv``; P ≥ 128, with twice the bits of the longest number the answer writes or computes from the
  dimensions): every entry is an interval that encloses its exact value, whatever rounding and
  cancellation the formula holds (``H'*(Ypred + 1e9) - H'*(Y + 1e9)``).  The answer differs when an
  entry's interval is disjoint from the gradient's, or undefined (0⁻¹) where the gradient is not: a
  proof.  It agrees when no entry differs and every interval is narrower than 2^(−3P/4) of the
  largest value.  Otherwise P grows fourfold, up to :data:`MAX_BITS`, and an answer still undecided
  there is "not confirmed", never accepted.  An answer off by 10⁻⁸ (or 2⁻³⁰⁰) of its size differs.

When the answer is wrong, the report says

* whether it is a multiple of the gradient, with the factor as a function of the dimensions fitted
  over the draws (``1/(k·n)``, ``−1``: a sign error), not a number read off one draw;
* the first step of the staged derivation where it differs.  The answer is *right up to* ∂f/∂v when
  one of its parts, times the scalars the answer multiplies that part by, equals ∂f/∂v: the part
  is the correct chain from the loss to v, and the rest of the answer is what was done after it.
  The parts tried are the answer's sub-expressions that enter it linearly (not inside σ, an inverse
  or a power), including contiguous sub-products (``(Ypred - Y)*W2'`` inside ``2*X'*(Ypred - Y)*W2'``)
  and partial sums;
* a counterexample at the smallest dimensions where the two differ, with small integer data (not
  all dimensions 1 when a larger example shows it).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from itertools import combinations
from itertools import product as cartesian

import mpmath
import numpy as np
import sympy
from sympy import (
    Determinant, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, OneMatrix, Trace,
    Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from derive.backprop import Backprop, backprop
from derive.elementwise import Relu, ScalarFunctionBase, Sigmoid, Softplus, UnitStep
from derive.engine import gradient
from derive.limits import CHECK_MAX_BITS, CHECK_MAX_DIM, CHECK_MAX_ENTRIES
from derive.networks import Network, seed_network
from derive.parse import ExpressionError, _Parser, parse
from derive.render.locale import get_locale
from derive.steps import Gradient

__all__ = ["DIM_ROWS", "MAX_BITS", "CheckResult", "check_answer"]

BASE_BITS = 120
# precisions are rounded up to these (then ×4), so that answers share the network's cached values
_LEVELS = (128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
# Limits (derive.limits): the interval arithmetic runs in Python, so the matrices of one draw hold at
# most MAX_ENTRIES entries and no dimension exceeds MAX_DIM (a larger --dims is refused with a
# message); an answer still undecided at MAX_BITS is "not confirmed".
MAX_BITS = CHECK_MAX_BITS
MAX_ENTRIES = CHECK_MAX_ENTRIES
MAX_DIM = CHECK_MAX_DIM

# Row j: the j-th dimension set, the value of the network's i-th symbolic dimension in column i.
# Every column takes five or more values; no row repeats a value (non-square), except the last,
# which has dimensions of 1 (a batch of one, a single output).
DIM_ROWS: tuple[tuple[int, ...], ...] = (
    (4, 3, 5, 2, 6, 7, 8, 9),
    (7, 5, 2, 3, 4, 6, 9, 8),
    (3, 6, 4, 5, 2, 8, 7, 9),
    (2, 4, 7, 6, 3, 5, 9, 8),
    (6, 2, 3, 7, 5, 4, 8, 9),
    (5, 7, 6, 4, 8, 2, 3, 9),
    (1, 2, 3, 1, 4, 5, 6, 7),
)
# (dimension row, data scale) of each draw
_PLAN = ((0, 1.0), (0, 10.0), (1, 1.0), (1, 0.1), (2, 3.0), (2, 1.0), (3, 1.0), (3, 10.0),
         (4, 1.0), (4, 0.1), (5, 1.0), (6, 1.0))
_FIXED_PLAN = ((0, 1.0), (0, 10.0), (0, 0.1), (0, 3.0))   # a network whose dimensions are all numbers


@dataclass(frozen=True)
class CheckResult:
    """The verdict on an answer: ``correct``, a one-line ``verdict`` and further ``details``."""

    correct: bool
    verdict: str
    details: tuple[str, ...] = ()
    answer: sympy.Basic | None = None
    expected: MatrixExpr | None = None
    max_error: float | None = None
    counterexample: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join((self.verdict, *("  " + d for d in self.details)))


# ------------------------------------------------------------------------------ the problem

@dataclass(frozen=True, eq=False)
class _Problem:
    """A network's values and gradients, as expressions the evaluator reads."""

    net: Network
    bp: Backprop
    definitions: dict          # stage symbol → its definition
    gradients: dict            # variable → ∂f/∂variable (may hold stage symbols and ∂f/∂Z symbols)
    scalars: tuple             # scalar symbols of the loss that are not dimensions (a weight decay λ)

    def variables(self) -> dict[str, MatrixSymbol]:
        net = self.net
        syms = list(net.inputs) + list(net.params) + [s for s, _ in reversed(net.stages)]
        return {s.name: s for s in syms}

    def gradient(self, X: MatrixSymbol) -> MatrixExpr:
        if X not in self.gradients:
            # an input the loss holds only through the stages (X): derived in one piece, shown with the
            # intermediates' names
            net = self.net
            G = gradient(net.f, X)
            names = {net.expand(s): s for s, _ in net.stages}
            self.gradients[X] = G.xreplace(names)
        return self.gradients[X]


@lru_cache(maxsize=16)
def _problem(net: Network) -> _Problem:
    bp = backprop(net)
    dims = set(net.dims)
    scalars = tuple(sorted((s for s in sympy.sympify(net.loss).free_symbols
                            if isinstance(s, sympy.Symbol) and s not in dims), key=str))
    gradients = {s.wrt: s.result for s in bp.sections}
    gradients.update(bp.gradients(expanded=False))        # a parameter's total gradient: the summary's
    return _Problem(net, bp, dict(net.stages), gradients, scalars)


def _network(net: Network | str, bias: str, lang: str) -> Network:
    if isinstance(net, Network):
        return net
    if net == "seed":
        return seed_network(bias=bias)
    raise ValueError(get_locale(lang).say("check_unknown_network", name=repr(net)))


def _shapes(net: Network, scalars: Sequence[sympy.Symbol]) -> dict[str, tuple]:
    syms = list(net.inputs) + list(net.params) + [s for s, _ in net.stages]
    out: dict[str, tuple] = {s.name: tuple(s.shape) for s in syms}
    out.update({s.name: () for s in scalars})
    return out


# ------------------------------------------------------------------------------- the draws

@dataclass(frozen=True)
class _Draw:
    """One evaluation point: the dimensions, the scale of the data and the seed it is drawn with."""

    dims: tuple[tuple[sympy.Symbol, int], ...]
    scale: float
    seed: tuple[int, ...]
    integers: bool = False

    def label(self) -> str:
        return ", ".join(f"{d}={v}" for d, v in self.dims)


def _dim_value(row: int, i: int) -> int:
    values = DIM_ROWS[row]
    return values[i] if i < len(values) else 2 + (3 * i + 5 * row) % 9


def _ordered_dims(net: Network) -> list[sympy.Symbol]:
    """The network's dimensions, the seed's n, d, m, k first (so that the first draw is 4, 3, 5, 2)."""
    first = ("n", "d", "m", "k")
    return sorted(net.dims, key=lambda d: (first.index(d.name) if d.name in first else len(first),
                                           net.dims.index(d)))


def _draws(net: Network, seed: int, large: float | None) -> list[_Draw]:
    dims = _ordered_dims(net)
    plan = list(_PLAN if dims else _FIXED_PLAN)
    if large is not None:
        # beyond the answer's largest number L: the data itself, and a product of two data, exceed L
        plan += [(1, 3.0 * math.sqrt(large)), (2, 3.0 * large)]
    return [_Draw(tuple((d, _dim_value(row, i)) for i, d in enumerate(dims)), scale, (seed, j))
            for j, (row, scale) in enumerate(plan)]


def _stochastic_rows(rng: np.random.Generator, shape: tuple[int, int], integers: bool) -> np.ndarray:
    """Positive rows that sum to exactly 1 (dyadic entries), for a Y assumed to hold probabilities."""
    r, k = shape
    hi = 3 if integers else 1024
    w = rng.integers(1, hi + 1, (r, k)).astype(float)
    total = 2.0 ** math.ceil(math.log2(k * hi + 1))
    w[:, -1] = total - w[:, :-1].sum(axis=1)
    return rng.permuted(w, axis=1) / total


@lru_cache(maxsize=256)
def _data(net: Network, scalars: tuple, draw: _Draw) -> dict:
    rng = np.random.default_rng(list(draw.seed))
    size = {d: sympy.Integer(v) for d, v in draw.dims}
    vals: dict = {}
    for s in list(net.inputs) + list(net.params):
        shape = tuple(int(sympy.sympify(x).xreplace(size)) for x in s.shape)
        if draw.integers:
            v = rng.integers(-2, 3, shape).astype(float)
            while v.size > 1 and np.all(v == v.flat[0]):        # never all ones, nor any constant matrix
                v = rng.integers(-2, 3, shape).astype(float)
        else:
            v = rng.standard_normal(shape)
        vals[s] = v * draw.scale
    for pattern, _, rule in net.assumptions:
        if rule == "rows_sum_to_one":
            # the derivation assumed each row of Y sums to one: so must the data, exactly
            Y = pattern[0]
            vals[Y] = _stochastic_rows(rng, vals[Y].shape, draw.integers)
    for s in scalars:
        vals[s] = float(rng.integers(1, 4)) if draw.integers else float(rng.uniform(0.5, 2.0))
    return vals


# --------------------------------------------------------------------- interval evaluation

iv = mpmath.iv
_NAN = mpmath.mpf("nan")
_WIDE = iv.mpf(["-inf", "inf"])          # a value not known at this precision
_ZERO, _ONE = iv.mpf(0), iv.mpf(1)


class _Unsupported(ValueError):
    pass


class _ivprec:
    """``with _ivprec(bits):`` sets the precision of mpmath's interval context (a global) for a block."""

    def __init__(self, bits: int):
        self.bits = bits

    def __enter__(self) -> None:
        self.saved, iv.prec = iv.prec, self.bits

    def __exit__(self, *exc) -> None:
        iv.prec = self.saved


@dataclass(frozen=True)
class _V:
    """A value: intervals (an object array of ``iv.mpf``, or one) and where it is undefined (a bool
    array, or a bool); an undefined entry holds the placeholder 0."""

    v: object
    u: object


# An interval's endpoints and midpoint, exactly (``mpf(x.a)`` and ``x.mid`` round to the context's precision).
def _lo(x) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[0])


def _hi(x) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[1])


def _mid(x) -> mpmath.mpf:
    return mpmath.ldexp(mpmath.fadd(_lo(x), _hi(x), exact=True), -1)


def _interval(lo, hi) -> object:
    return iv.mpf([lo, hi])


# Each scalar function on an interval: (enclosure, undefined).  An argument that straddles the edge of
# the domain (log of [−ε, ε]) gives the wide interval, not "undefined": more precision may decide it.
def _log(x):
    if _hi(x) <= 0:
        return _ZERO, True
    if _lo(x) <= 0:
        return _interval("-inf", _hi(iv.log(iv.mpf(_hi(x))))), False
    return iv.log(x), False


def _relu(x):
    return _interval(max(_lo(x), 0), max(_hi(x), 0)), False


def _step(x):
    if _lo(x) > 0:
        return _ONE, False
    if _hi(x) <= 0:
        return _ZERO, False
    return _interval(0, 1), False


def _abs(x):
    if _lo(x) >= 0:
        return x, False
    if _hi(x) <= 0:
        return -x, False
    return _interval(0, max(-_lo(x), _hi(x))), False


def _sign(x):
    if _lo(x) > 0:
        return _ONE, False
    if _hi(x) < 0:
        return -_ONE, False
    if _lo(x) == 0 == _hi(x):
        return _ZERO, False
    return _interval(-1, 1), False


def _monotone(f: Callable, lo_dom=None, hi_dom=None, increasing: bool = True) -> Callable:
    """An increasing (decreasing) function on [lo_dom, hi_dom], its endpoints computed with 20 more bits
    and widened outward by four units in the last place."""
    def g(x):
        a, b = _lo(x), _hi(x)
        if (lo_dom is not None and b < lo_dom) or (hi_dom is not None and a > hi_dom):
            return _ZERO, True
        if (lo_dom is not None and a < lo_dom) or (hi_dom is not None and b > hi_dom):
            return _WIDE, False
        with mpmath.workprec(iv.prec + 20):
            fa, fb = f(a), f(b)
            if not increasing:
                fa, fb = fb, fa
            pad = mpmath.ldexp(1, -iv.prec + 2)
            return _interval(fa - abs(fa) * pad, fb + abs(fb) * pad), False
    return g


def _plain(f: Callable) -> Callable:
    return lambda x: (f(x), False)


_FUNCTIONS: dict = {
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
    sympy.Abs: _abs, sympy.sign: _sign, Relu: _relu, UnitStep: _step,
}


def _pow(b, p):
    """b^p on intervals: an integer power of anything, a real power of a positive number."""
    integer = _lo(p) == _hi(p) and mpmath.isint(_lo(p))
    if _lo(b) == 0 == _hi(b) and _hi(p) < 0:
        return _ZERO, True                                     # 0⁻¹
    if not integer and _hi(b) < 0:
        return _ZERO, True                                     # (−8)^½
    if not integer and _lo(b) < 0:
        return _WIDE, False
    if integer and _lo(p) < 0 and _lo(b) <= 0 <= _hi(b):
        return _WIDE, False
    return (b ** int(_lo(p)) if integer else b ** p), False


def _div(a, b):
    if _lo(b) == 0 == _hi(b):
        return _ZERO, True
    return a / b, False


def _exact_det(m: np.ndarray) -> Fraction | None:
    """The determinant of a matrix of point intervals, exactly (fractions); None if an entry is not a point."""
    if not all(_lo(a) == _hi(a) and mpmath.isfinite(_lo(a)) for a in m.flat):
        return None
    rows = [[Fraction(*mpmath.libmp.to_rational(_lo(a)._mpf_)) for a in row] for row in m]
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


def _full(r: int, c: int, value) -> np.ndarray:
    return np.full((r, c), value, dtype=object)


def _map(f: Callable, *xs: _V) -> _V:
    """``f`` (interval → (interval, undefined)) entry by entry."""
    val, und = np.frompyfunc(f, len(xs), 2)(*[x.v for x in xs])
    u = np.asarray(und, dtype=bool) if isinstance(und, np.ndarray) else bool(und)
    for x in xs:
        u = u | x.u
    return _V(np.where(u, _ZERO, val) if isinstance(val, np.ndarray) else (_ZERO if u else val), u)


class _Evaluator:
    """Values at one draw in ``bits``-bit interval arithmetic (mpmath ``iv``): each entry an interval
    that encloses the exact value, whatever rounding and cancellation the formula holds, and a mask
    of undefined entries (0⁻¹, log of a negative number).

    ``value(e)`` is the interval value; ``ev(e)`` the midpoints, NaN where undefined, for the diagnosis.
    Stage symbols are evaluated from their definitions and ∂f/∂Z symbols from the gradients, once each.
    """

    def __init__(self, problem: _Problem, draw: _Draw, bits: int, memo: dict | None = None):
        self.problem, self.draw, self.bits = problem, draw, bits
        self.size = {d: sympy.Integer(v) for d, v in draw.dims}
        self.memo: dict = dict(memo) if memo is not None else {}
        self.mids: dict = {}
        if memo is not None:
            return
        with _ivprec(bits):
            for d, v in draw.dims:
                self.memo[d] = _V(iv.mpf(v), False)
            for s, v in _data(problem.net, problem.scalars, draw).items():
                if isinstance(s, MatrixSymbol):
                    self.memo[s] = _V(np.frompyfunc(iv.mpf, 1, 1)(v), np.zeros(v.shape, dtype=bool))
                else:
                    self.memo[s] = _V(iv.mpf(v), False)

    def value(self, e: sympy.Basic) -> _V:
        with _ivprec(self.bits):
            return self._value(e)

    def __call__(self, e: sympy.Basic):
        """The midpoints of ``e``'s intervals (mpf), NaN where undefined or unbounded."""
        if e not in self.mids:
            x = self.value(e)

            def mid(v, u):
                if u or not (mpmath.isfinite(_lo(v)) and mpmath.isfinite(_hi(v))):
                    return _NAN
                return _mid(v)
            with mpmath.workprec(self.bits):
                self.mids[e] = np.frompyfunc(mid, 2, 1)(x.v, x.u) if isinstance(x.v, np.ndarray) else mid(x.v, x.u)
        return self.mids[e]

    def _value(self, e: sympy.Basic) -> _V:
        v = self.memo.get(e)
        if v is None:
            v = self._matrix(e) if isinstance(e, MatrixExpr) else self._scalar(e, None)
            self.memo[e] = v
        return v

    def _int(self, d: sympy.Basic) -> int:
        return int(sympy.sympify(d).xreplace(self.size))

    # ----- matrices
    def _matrix(self, e: MatrixExpr) -> _V:
        if isinstance(e, MatrixSymbol):
            if e in self.problem.definitions:
                return self._value(self.problem.definitions[e])
            raise _Unsupported(f"no value for {e.name}")
        if isinstance(e, Gradient):
            return self._value(self.problem.gradient(e.wrt))
        r, c = (self._int(x) for x in e.shape)
        defined = np.zeros((r, c), dtype=bool)
        if isinstance(e, (OneMatrix, ZeroMatrix)):
            return _V(_full(r, c, _ONE if isinstance(e, OneMatrix) else _ZERO), defined)
        if isinstance(e, Identity):
            out = _full(r, c, _ZERO)
            for i in range(r):
                out[i, i] = _ONE
            return _V(out, defined)
        if isinstance(e, Transpose):
            x = self._value(e.arg)
            return _V(x.v.T, x.u.T)
        if isinstance(e, (MatAdd, HadamardProduct)):
            terms = [self._value(a) for a in e.args]
            v, u = terms[0].v, terms[0].u
            for t in terms[1:]:
                v, u = (v + t.v if isinstance(e, MatAdd) else v * t.v), u | t.u
            return _V(v, u)
        if isinstance(e, HadamardPower):
            return _map(_pow, self._value(e.base), self._value(e.exp))
        if isinstance(e, ElementwiseApplyFunction):
            return _map(self._elementwise(e.function), self._value(e.expr))
        if isinstance(e, MatMul):
            scalars = [self._value(a) for a in e.args if not isinstance(a, MatrixExpr)]
            mats = [self._value(a) for a in e.args if isinstance(a, MatrixExpr)]
            out = mats[0]
            for m in mats[1:]:
                out = _V(out.v.dot(m.v), out.u.any(axis=1)[:, None] | m.u.any(axis=0)[None, :])
            for x in scalars:
                out = _V(out.v * x.v, out.u | x.u)
            return out
        if isinstance(e, Inverse):
            return self._inverse(self._value(e.arg))
        if isinstance(e, MatPow) and isinstance(e.exp, sympy.Integer):
            base = self._value(e.base)
            p = int(e.exp)
            if p < 0:
                base, p = self._inverse(base), -p
            out = self._value(Identity(e.shape[0]))
            for _ in range(p):
                out = _V(out.v.dot(base.v), out.u.any(axis=1)[:, None] | base.u.any(axis=0)[None, :])
            return out
        raise _Unsupported(type(e).__name__)

    @staticmethod
    def _inverse(x: _V) -> _V:
        n = x.v.shape[0]
        if x.u.any():
            return _V(_full(n, n, _ZERO), np.ones((n, n), dtype=bool))
        try:
            inv = iv.matrix(x.v.tolist()) ** -1
        except ZeroDivisionError:
            # a pivot interval holds 0: singular only if the exact determinant is 0, else not known yet
            singular = _exact_det(x.v) == 0
            return _V(_full(n, n, _ZERO if singular else _WIDE), np.full((n, n), singular))
        return _V(np.array(inv.tolist(), dtype=object), np.zeros((n, n), dtype=bool))

    def _elementwise(self, fn: sympy.Basic) -> Callable:
        if isinstance(fn, sympy.Lambda) and len(fn.variables) == 1:
            var, body = fn.variables[0], fn.expr
            if isinstance(body, sympy.Function) and body.args == (var,) and type(body) in _FUNCTIONS:
                return _FUNCTIONS[type(body)]

            def g(x):
                r = self._scalar(body, {var: _V(x, False)})
                return r.v, r.u
            return g
        if fn in _FUNCTIONS:
            return _FUNCTIONS[fn]
        raise _Unsupported(str(fn))

    # ----- scalars
    def _scalar(self, e: sympy.Basic, env: dict | None) -> _V:
        if env is not None:
            # inside an elementwise function's body: only what holds its variable depends on the entry
            if e in env:
                return env[e]
            if not (e.free_symbols & env.keys()):
                return self._value(e)
        if isinstance(e, MatrixExpr):
            x = self._value(e)                      # a 1×1 matrix used as a number
            return _V(x.v[0, 0], bool(x.u[0, 0]))
        if e.is_Integer:
            return _V(iv.mpf(int(e)), False)
        if e.is_Rational:
            return _V(iv.mpf(int(e.p)) / int(e.q), False)
        if e.is_Float:
            # a decimal in a network (weight_decay=0.01) means that decimal, 1/100, not the binary near it
            q = Fraction(str(e))
            return _V(iv.mpf(q.numerator) / q.denominator, False)
        if isinstance(e, sympy.NumberSymbol):
            with mpmath.workprec(self.bits + 20):
                x = mpmath.mpf(e.evalf(int(self.bits * 0.302) + 10))
                pad = abs(x) * mpmath.ldexp(1, -self.bits)
                return _V(_interval(x - pad, x + pad), False)
        if e.is_Number or (e.is_number and e.is_real is False):      # zoo, nan, I, 2·I
            return _V(_ZERO, True)
        if isinstance(e, sympy.Symbol):
            if e in self.memo:
                return self.memo[e]
            raise _Unsupported(f"no value for {e}")
        sub = (lambda a: self._scalar(a, env)) if env is not None else self._value
        if isinstance(e, (sympy.Add, sympy.Mul)):
            parts = [sub(a) for a in e.args]
            v = parts[0].v
            for q in parts[1:]:
                v = v + q.v if isinstance(e, sympy.Add) else v * q.v
            return _V(v, any(q.u for q in parts))
        if isinstance(e, sympy.Pow):
            b, p = sub(e.base), sub(e.exp)
            v, u = _pow(b.v, p.v)
            return _V(v, u or b.u or p.u)
        if isinstance(e, Trace):
            m = self._value(e.arg)
            v = _ZERO
            for i in range(m.v.shape[0]):
                v = v + m.v[i, i]
            return _V(v, bool(np.diag(m.u).any()))
        if isinstance(e, Determinant):
            m = self._value(e.arg)
            if m.u.any():
                return _V(_ZERO, True)
            det = iv.det(iv.matrix(m.v.tolist()))
            if not isinstance(det, type(_ONE)):
                # mpmath answers 0 when a pivot interval holds 0: exactly 0, or not known yet
                det = _ZERO if _exact_det(m.v) == 0 else _WIDE
            return _V(det, False)
        if isinstance(e, MatrixElement):
            m = self._value(e.parent)
            i, j = self._int(e.i), self._int(e.j)
            return _V(m.v[i, j], bool(m.u[i, j]))
        if isinstance(e, sympy.Heaviside):
            x = sub(e.args[0])
            h0 = sub(e.args[1]) if len(e.args) > 1 else _V(iv.mpf(0.5), False)
            v, u = _step(x.v)
            if _lo(x.v) == 0 == _hi(x.v):
                v = h0.v
            elif _lo(x.v) <= 0 <= _hi(x.v):
                v = _interval(min(0, _lo(h0.v)), max(1, _hi(h0.v)))
            return _V(v, x.u or h0.u)
        if type(e) in _FUNCTIONS and len(e.args) == 1:
            x = sub(e.args[0])
            v, u = _FUNCTIONS[type(e)](x.v)
            return _V(v, u or x.u)
        if isinstance(e, ScalarFunctionBase):  # defined by derive.define_elementwise: its definition
            return self._scalar(e.rewrite("definition"), env)
        raise _Unsupported(type(e).__name__)


# ----------------------------------------------------------------------------- deciding

@dataclass(frozen=True)
class _Verdict:
    state: str                           # "equal", "differ", "undecided" or "skip"
    error: float = 0.0                   # max |answer − gradient| / max |gradient|, at the midpoints
    entry: tuple[int, int] | None = None


def _decide(a: _V, g: _V, bits: int) -> _Verdict:
    """Answer against gradient from their intervals at one draw.

    They differ where an entry of the answer is undefined and the gradient's is not, or where the two
    intervals are disjoint: a proof.  They agree when no entry differs and every interval is narrower
    than 2^(−3P/4) of the largest value.  Otherwise they are undecided at this precision."""
    idx = [i for i in zip(*np.nonzero(~g.u))]
    if not idx:
        return _Verdict("skip")
    with mpmath.workprec(bits):
        undefined = [i for i in idx if a.u[i]]
        if undefined:
            return _Verdict("differ", math.inf, tuple(int(x) for x in undefined[0]))
        apart = [i for i in idx if _hi(a.v[i]) < _lo(g.v[i]) or _hi(g.v[i]) < _lo(a.v[i])]
        widths = [max(_hi(a.v[i]) - _lo(a.v[i]), _hi(g.v[i]) - _lo(g.v[i])) for i in idx]
        bounded = all(mpmath.isfinite(w) for w in widths)
        mids = {i: (_mid(a.v[i]), _mid(g.v[i])) for i in idx} if bounded else {}
        err = math.nan
        if bounded:
            gmax = max(abs(y) for _, y in mids.values())
            dmax = max(abs(x - y) for x, y in mids.values())
            err = float(dmax / gmax) if gmax > 0 else float(dmax)
        if apart:
            i = max(apart, key=lambda i: abs(mids[i][0] - mids[i][1])) if bounded else apart[0]
            return _Verdict("differ", err, (int(i[0]), int(i[1])))
        if bounded:
            scale = max(max(abs(x), abs(y)) for x, y in mids.values())
            if max(widths) <= scale * mpmath.ldexp(1, -(3 * bits) // 4):
                return _Verdict("equal", err)
        return _Verdict("undecided", err)


@lru_cache(maxsize=512)
def _base(problem: _Problem, draw: _Draw, bits: int, G: MatrixExpr | None) -> dict:
    """The network's own values at a draw (data, stages, the gradient ``G``), shared by the checks of
    many answers."""
    ev = _Evaluator(problem, draw, bits)
    for s, _ in problem.net.stages:
        ev.value(s)
    if G is not None:
        ev.value(G)
    return ev.memo


def _evaluator(problem: _Problem, draw: _Draw, bits: int, G: MatrixExpr | None = None) -> _Evaluator:
    return _Evaluator(problem, draw, bits, _base(problem, draw, bits, G))


def _compare(problem: _Problem, draw: _Draw, A: MatrixExpr, G: MatrixExpr, bits: int
             ) -> tuple[_Verdict, _Evaluator, int]:
    """The verdict at one draw, raising the precision fourfold while it is undecided; the evaluator."""
    while True:
        ev = _evaluator(problem, draw, bits, G)
        v = _decide(ev.value(A), ev.value(G), bits)
        if v.state != "undecided" or bits * 4 > MAX_BITS:
            return v, ev, bits
        bits *= 4


def _numbers(A: sympy.Basic) -> list[sympy.Number]:
    """The numbers written in ``A``, not those in the shapes of its matrices."""
    out: list[sympy.Number] = []

    def walk(e: sympy.Basic) -> None:
        if isinstance(e, sympy.Number):
            out.append(e)
        elif not isinstance(e, (MatrixSymbol, OneMatrix, ZeroMatrix, Identity, sympy.Lambda)):
            for a in e.args:
                walk(a)

    walk(A)
    return out


def _literal_bits(A: sympy.Basic) -> int:
    """The bits of the longest number in ``A`` (numerator or denominator)."""
    bits = 0
    for r in _numbers(A):
        if r.is_Rational:
            bits = max(bits, abs(int(r.p)).bit_length(), int(r.q).bit_length())
        elif r.is_Float:
            bits = max(bits, r._prec)
    return bits


def _scalar_bits(A: sympy.Basic, draw: _Draw) -> int:
    """The binary exponent of the largest or smallest number ``A`` computes from numbers and dimensions
    alone at ``draw`` (2^(−100·n) at n = 3: 300; exp(−1000): 1443), which the precision must exceed."""
    size = {d: sympy.Integer(v) for d, v in draw.dims}
    bits = 0
    for node in sympy.preorder_traversal(A):
        if (isinstance(node, MatrixExpr) or node.is_Atom or not isinstance(node, sympy.Expr)
                or node.has(MatrixExpr, sympy.Dummy)):
            continue
        value = node.xreplace(size)
        if value.free_symbols:
            continue
        try:
            x = mpmath.mpf(sympy.N(value, 20)) if value.is_real else mpmath.mpf(0)
        except (TypeError, ValueError, OverflowError):
            continue
        if x != 0 and mpmath.isfinite(x):
            bits = max(bits, abs(int(mpmath.mag(x))))
    return min(bits, MAX_BITS)


def _largest_number(A: sympy.Basic) -> float | None:
    big = max((abs(float(r)) for r in _numbers(A) if r.is_finite and r.is_real), default=0.0)
    return min(big, 1e12) if big > 5 else None


# ------------------------------------------------------------------- factors and parts

def _unit(v: np.ndarray):
    """(v / max|v| as floats, max|v|) of midpoints, or None when an entry is undefined."""
    if not all(mpmath.isfinite(x) for x in v.flat):
        return None
    M = max(abs(x) for x in v.flat)
    if M == 0:
        return np.zeros(v.shape), M
    return np.array([[float(x / M) for x in row] for row in v]), M


def _ratio(s: np.ndarray, g: np.ndarray, bits: int):
    """c with s = c·g to within 2^(−bits/2) of s (an mpf), "skip" where both vanish, or None.

    A float test screens; the factor and the residual are then computed in ``bits``-bit arithmetic, so
    that a part off by 2⁻³⁰⁰ is not taken for an exact one."""
    if s.shape != g.shape:
        return None
    us, ug = _unit(s), _unit(g)
    if us is None or ug is None:
        return None
    (us, Ms), (ug, Mg) = us, ug
    if Mg == 0:
        return "skip" if Ms == 0 else None
    if Ms == 0:
        return mpmath.mpf(0)
    c = float(np.vdot(us, ug) / np.vdot(ug, ug))
    if np.max(np.abs(us - c * ug)) > 1e-9:
        return None
    with mpmath.workprec(bits):
        c = mpmath.fsum(x * y for x, y in zip(s.flat, g.flat)) / mpmath.fsum(y * y for y in g.flat)
        if max(abs(x - c * y) for x, y in zip(s.flat, g.flat)) > mpmath.ldexp(Ms, -(bits // 2)):
            return None
    return c


def _ratios(values: Iterable[tuple[np.ndarray, np.ndarray]], evs: Sequence[_Evaluator]) -> list | None:
    """Per draw, the factor c with part = c·gradient: None unless it exists at every draw where the
    gradient does not vanish and is the same at draws with the same dimensions.  ``values`` may be
    lazy: the first draw without a factor ends the search."""
    out, by_dims = [], {}
    for (s, g), ev in zip(values, evs):
        c = _ratio(s, g, ev.bits)
        if c is None:
            return None
        out.append(c)
        if c == "skip":
            continue
        seen = by_dims.setdefault(ev.draw.dims, c)
        if abs(seen - c) > mpmath.ldexp(max(abs(seen), abs(c)), -(ev.bits // 2)):
            return None
    return out if any(c != "skip" for c in out) else None


def _small_rational(x: float, max_den: int = 64) -> Fraction | None:
    q = Fraction(x).limit_denominator(max_den)
    return q if abs(float(q) - x) <= 1e-9 * max(1.0, abs(x)) and abs(q.numerator) <= 10_000 else None


def _fit(draws: Sequence[_Draw], ratios: Sequence) -> sympy.Expr | None:
    """The simplest formula in the dimensions equal to the ratios at every draw, or None.

    Tried in order: q·∏ dᵉ (e ∈ −2…2), a·∏ dᵉ + c, Σ aᵢdᵢ + c and q·∏ dᵉ·(d + c) (e ∈ −1…1,
    c ∈ −6…6), with q, a, c small rationals; within a family the fewest and lowest powers win.

    >>> n, k = sympy.symbols("n k", integer=True, positive=True)
    >>> sets = ((4, 2), (7, 3), (3, 5), (2, 6))
    >>> draws = [_Draw(((n, a), (k, b)), 1.0, (0,)) for a, b in sets]
    >>> _fit(draws, [1 / (a * b) for a, b in sets]), _fit(draws, [a - 3 for a, b in sets])
    (1/(k*n), n - 3)
    >>> _fit(draws, [a * b - 7 for a, b in sets]), _fit(draws, [(a - 1) * b for a, b in sets])
    (k*n - 7, k*(n - 1))
    """
    pts = [(dict(dr.dims), float(r)) for dr, r in zip(draws, ratios) if r != "skip"]
    if not pts:
        return None
    dims = [d for d, _ in draws[0].dims]
    V = np.array([[vals[d] for d in dims] for vals, _ in pts], dtype=float).reshape(len(pts), len(dims))
    R = np.array([r for _, r in pts])
    if not np.all(np.isfinite(R)):
        return None                  # an infinite or undefined ratio is no factor

    def monomials(span: range) -> tuple[np.ndarray, np.ndarray]:
        exps = list(cartesian(span, repeat=len(dims)))
        E = np.array(exps, dtype=float).reshape(len(exps), len(dims))
        return E, np.prod(V[None, :, :] ** E[:, None, :], axis=2)          # (candidates, points)

    def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.all(np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(b)), axis=-1)

    def expr(q: Fraction, exps: np.ndarray) -> sympy.Expr:
        return sympy.Rational(q.numerator, q.denominator) * sympy.Mul(*[d ** int(e) for d, e in zip(dims, exps)])

    def simplest(found: list) -> sympy.Expr | None:
        return min(found, key=lambda f: f[0])[1] if found else None

    # q·M: the ratio over the monomial is one small rational
    E, B = monomials(range(-2, 3))
    Q = R[None, :] / B
    found = []
    for c in np.nonzero(close(Q, Q[:, :1]))[0]:
        q = _small_rational(float(Q[c, 0]))
        if q is not None:
            found.append(((np.abs(E[c]).sum(), len(str(q))), expr(q, E[c])))
    if found:
        return simplest(found)
    # a·M + c, by least squares on each monomial
    if len(pts) >= 3:
        mb, mr = B.mean(axis=1), R.mean()
        var = ((B - mb[:, None]) ** 2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = ((B - mb[:, None]) * (R - mr)[None, :]).sum(axis=1) / var
        c0 = mr - a * mb
        ok = (var > 0) & close(a[:, None] * B + c0[:, None], R[None, :])
        for i in np.nonzero(ok)[0]:
            qa, qc = _small_rational(float(a[i])), _small_rational(float(round(c0[i], 9)))
            if qa is not None and qc is not None and qa != 0:
                found.append(((np.abs(E[i]).sum() + 1, len(str(qa)) + len(str(qc))),
                              expr(qa, E[i]) + sympy.Rational(qc.numerator, qc.denominator)))
        if found:
            return simplest(found)
    # Σ aᵢdᵢ + c, by least squares
    if len({tuple(row) for row in V}) > len(dims) + 1:
        M = np.hstack([V, np.ones((len(pts), 1))])
        coef = np.linalg.lstsq(M, R, rcond=None)[0]
        qs = [_small_rational(float(round(x, 9))) for x in coef]
        if all(q is not None for q in qs) and close(M @ coef, R):
            return sympy.Add(*[sympy.Rational(q.numerator, q.denominator) * t
                               for q, t in zip(qs, [*dims, sympy.Integer(1)])])
    # q·M·(d + c)
    E, B = monomials(range(-1, 2))
    for i in range(len(dims)):
        for shift in range(-6, 7):
            lin = V[:, i] + shift
            if shift == 0 or np.any((lin == 0) & (R != 0)):
                continue
            base = B * lin[None, :]
            keep = lin != 0
            if not keep.any():
                continue
            Q = R[None, keep] / base[:, keep]
            for c in np.nonzero(close(Q, Q[:, :1]))[0]:
                q = _small_rational(float(Q[c, 0]))
                if q is not None:
                    found.append(((np.abs(E[c]).sum() + 2, len(str(q))), expr(q, E[c]) * (dims[i] + shift)))
    return simplest(found)


def _candidates(A: MatrixExpr) -> list[tuple[MatrixExpr, sympy.Expr]]:
    """Parts of ``A`` that enter it linearly, each with the scalar ``A`` multiplies it by.

    >>> from sympy import MatrixSymbol, MatMul
    >>> P, Q, R = MatrixSymbol("P", 2, 3), MatrixSymbol("Q", 3, 4), MatrixSymbol("R", 4, 2)
    >>> [(str(s), k) for s, k in _candidates(MatMul(2, P, Q, R))][:3]
    [('2*P*Q*R', 1), ('P', 2), ('P*Q', 2)]
    """
    out: list[tuple[MatrixExpr, sympy.Expr]] = []
    seen: set = set()

    def add(S: MatrixExpr, kappa: sympy.Expr) -> None:
        if (S, kappa) not in seen:
            seen.add((S, kappa))
            out.append((S, kappa))

    def walk(e: MatrixExpr, kappa: sympy.Expr) -> None:
        add(e, kappa)
        if isinstance(e, Transpose):
            walk(e.arg, kappa)
        elif isinstance(e, MatMul):
            scalar = sympy.Mul(*[a for a in e.args if not isinstance(a, MatrixExpr)])
            mats = [a for a in e.args if isinstance(a, MatrixExpr)]
            k2 = kappa * scalar
            for i in range(len(mats)):
                for j in range(i + 1, len(mats) + 1):
                    if j - i == 1:
                        walk(mats[i], k2)
                    elif j - i < len(mats) or scalar != 1:
                        add(MatMul(*mats[i:j]), k2)
        elif isinstance(e, (MatAdd, HadamardProduct)):
            for a in e.args:
                walk(a, kappa)
            if 2 < len(e.args) <= 6:
                for r in range(2, len(e.args)):
                    for sub in combinations(e.args, r):
                        add(type(e)(*sub), kappa)

    walk(A, sympy.Integer(1))
    return out


def _chain(problem: _Problem, X: MatrixSymbol) -> list[MatrixSymbol]:
    """The stages whose value depends on ``X``, from the loss down: the gradients a correct answer
    passes through on its way to ∂f/∂X."""
    depends: dict[MatrixSymbol, bool] = {}
    for s, definition in problem.net.stages:
        depends[s] = definition.has(X) or any(definition.has(t) for t, dep in depends.items() if dep)
    return [s for s, _ in reversed(problem.net.stages) if depends[s] and s != X and s in problem.gradients]


# ------------------------------------------------------------------------------ the check

def _fmt(e: sympy.Basic) -> str:
    from derive.render.printer import math_text

    return math_text(e)


def check_answer(answer: str, wrt: str | MatrixSymbol, net: Network | str = "seed", *,
                 bias: str = "row", seed: int = 0, lang: str = "en") -> CheckResult:
    """Check ``answer`` (expression-language text) as ∂f/∂``wrt`` of ``net``.

    ``wrt`` is any input, parameter or intermediate of the network.  A syntax error or an unknown
    name raises :class:`derive.parse.ExpressionError`, an unknown variable ``ValueError``; an answer
    whose shapes do not conform is a wrong answer.  ``lang`` ("en" or "zh") is the language of the
    verdict.

    >>> check_answer("2*H'*(Ypred - Y)", "W2").correct
    True
    >>> r = check_answer("2*(Ypred - Y)", "b2")
    >>> r.correct, r.verdict
    (False, 'wrong shape: ∂f/∂b2 is 1×k, the answer is n×k')
    >>> print(check_answer("H'*(Ypred - Y)/(n*k)", "W2").details[0])
    the answer is 1/(2·k·n) times ∂f/∂W2: a factor depending on the dimensions is wrong
    """
    say = get_locale(lang).say
    net = _network(net, bias, lang)
    problem = _problem(net)
    name = wrt.name if isinstance(wrt, MatrixSymbol) else wrt
    variables = problem.variables()
    if name not in variables:
        raise ValueError(say("check_unknown_variable", name=repr(name), choices=", ".join(variables)))
    X = variables[name]
    grad = f"∂f/∂{name}"
    want = f"{X.shape[0]}×{X.shape[1]}"
    shapes = _shapes(net, problem.scalars)
    _Parser(answer, tuple(shapes)).parse()      # a syntax error is the user's to fix: it raises
    expected = problem.gradient(X)
    try:
        A = parse(answer, shapes, infer=False).expr
    except ExpressionError as exc:
        if exc.kind in ("unknown-name", "limit"):
            raise
        if exc.kind == "undefined":
            where = f"{answer}\n{' ' * (exc.column - 1)}^"
            return CheckResult(False, say("check_undefined_answer", grad=grad, column=str(exc.column),
                                          error=exc.message), (where,), None, expected)
        return CheckResult(False, say("check_conform", grad=grad, want=want, error=str(exc)),
                           (exc.caret(),), None, expected)
    if not isinstance(A, MatrixExpr):
        return CheckResult(False, say("check_scalar", grad=grad, want=want), (), A, expected)
    if tuple(A.shape) != tuple(X.shape):
        details = []
        if X.shape[0] == 1 and A.shape[0] != 1 and A.shape[1] == X.shape[1]:
            details.append(say("check_row_bias", name=name, cols=str(X.shape[1])))
        if tuple(A.shape) == tuple(reversed(X.shape)):
            details.append(say("check_transposed"))
        return CheckResult(False, say("check_shape", grad=grad, want=want, got=f"{A.shape[0]}×{A.shape[1]}"),
                           tuple(details), A, expected)
    draws = _draws(net, seed, _largest_number(A))
    _check_size(problem, draws, say)
    bits = BASE_BITS + 2 * _literal_bits(A)
    try:
        return _judge(problem, A, X, expected, draws, bits, grad, say)
    except _Unsupported as exc:
        raise ValueError(say("check_unsupported", what=str(exc))) from None


def _level(bits: int) -> int:
    return next((b for b in _LEVELS if b >= bits), bits)


def _check_size(problem: _Problem, draws: Sequence[_Draw], say: Callable[..., str]) -> None:
    net = problem.net
    syms = list(net.inputs) + list(net.params) + [s for s, _ in net.stages]
    for draw in draws:
        size = {d: sympy.Integer(v) for d, v in draw.dims}
        shapes = [tuple(int(sympy.sympify(x).xreplace(size)) for x in s.shape) for s in syms]
        entries = sum(r * c for r, c in shapes)
        largest = max(max(s) for s in shapes)
        if entries > MAX_ENTRIES or largest > MAX_DIM:
            raise ValueError(say("check_too_large", entries=str(entries), largest=str(largest),
                                 max_entries=str(MAX_ENTRIES), max_dim=str(MAX_DIM)))


def _judge(problem: _Problem, A: MatrixExpr, X: MatrixSymbol, expected: MatrixExpr, draws: list[_Draw],
           bits: int, grad: str, say: Callable[..., str]) -> CheckResult:
    verdicts, evaluators, used = [], [], _level(bits)
    failing = None
    for draw in draws:
        here = _level(max(bits, BASE_BITS + 2 * _scalar_bits(A, draw)))
        v, ev, used_here = _compare(problem, draw, A, expected, here)
        verdicts.append(v)
        evaluators.append(ev)
        used = max(used, used_here)
        if v.state in ("differ", "undecided"):
            failing = draw
            break
    expr = _fmt(expected)
    if failing is None:
        compared = [d for d, v in zip(draws, verdicts) if v.state == "equal"]
        if not compared:
            return CheckResult(False, say("check_undecided", grad=grad, where="—", bits=str(used)), (), A, expected)
        dims = list(dict.fromkeys(d.dims for d in compared))
        names = ", ".join(str(d) for d, _ in compared[0].dims)
        sets = ", ".join("(" + ", ".join(str(v) for _, v in ds) + ")" for ds in dims)
        scales = ", ".join(f"{s:g}" for s in sorted({d.scale for d in compared}))
        detail = say("check_compared", count=str(len(compared)),
                     dims=f"({names}) = {sets}" if names else say("check_fixed_dims"),
                     scales=scales, bits=str(used))
        return CheckResult(True, say("check_correct", grad=grad, expr=expr), (detail,), A, expected,
                           max(v.error for v in verdicts if v.state == "equal"))
    v = verdicts[-1]
    if v.state == "undecided":
        where = say("check_where", dims=failing.label() or say("check_fixed_dims"), scale=f"{failing.scale:g}")
        return CheckResult(False, say("check_undecided", grad=grad, where=where, bits=str(used)),
                           (), A, expected, v.error)
    # the diagnosis reads the answer's parts at every draw, in P-bit arithmetic
    for draw in draws[len(evaluators):]:
        evaluators.append(_evaluator(problem, draw, used, expected))
    err = "∞" if math.isinf(v.error) else "—" if math.isnan(v.error) else f"{v.error:.2g}"
    details: list[str] = []
    whole = _ratios(((ev(A), ev(expected)) for ev in evaluators), evaluators)
    if whole is not None:
        details.append(_factor_line(draws, whole, min(ev.bits for ev in evaluators), grad, say))
    details += _locate(problem, A, X, draws, evaluators, whole is not None, say)
    example = _counterexample(problem, A, expected, grad, failing, used, say)
    if example:
        details += example[0]
    return CheckResult(False, say("check_wrong", grad=grad, expr=expr, err=err), tuple(details), A, expected,
                       v.error, example[1] if example else {})


def _constant(ratios: Sequence) -> sympy.Expr | None:
    """The common value of the ratios when they are all one number (a long one: 1.00000001)."""
    values = [r for r in ratios if r != "skip"]
    if values and all(abs(r - values[0]) <= 1e-12 * abs(values[0]) for r in values):
        return sympy.Float(mpmath.nstr(values[0], 12))
    return None


def _near_one(ratios: Sequence) -> str | None:
    """'1 + 4.91e-91' for ratios that float arithmetic cannot tell from 1 (a literal 1 + 2^-300)."""
    values = [r for r in ratios if r != "skip"]
    if not values or not all(abs(r - 1) <= 1e-9 for r in values):
        return None
    first = values[0] - 1
    if first == 0 or not all(abs(r - 1 - first) <= 1e-6 * abs(first) for r in values):
        return None
    return f"1 {'+' if first > 0 else '−'} {mpmath.nstr(abs(first), 3)}"


def _factor(draws: Sequence[_Draw], ratios: Sequence, bits: int) -> sympy.Expr | None:
    """The factor as a formula in the dimensions (or a long constant), checked in ``bits``-bit arithmetic:
    a float fit of 1 does not stand for 1 + 2^(−100·n)."""
    f = _fit(draws, ratios)
    if f is None:
        return _constant(ratios)
    with mpmath.workprec(bits):
        for draw, r in zip(draws, ratios):
            if r == "skip":
                continue
            value = mpmath.mpf(sympy.N(f.xreplace({d: sympy.Integer(v) for d, v in draw.dims}), bits // 3))
            if abs(value - r) > mpmath.ldexp(abs(r), -(bits // 2)):
                return None
    return f


def _ratio_text(r) -> str:
    if r != 1 and abs(r - 1) <= 1e-9:
        return f"1 {'+' if r > 1 else '−'} {mpmath.nstr(abs(r - 1), 3)}"
    return f"{float(r):.6g}"


def _factor_text(f: sympy.Expr) -> str:
    text = _fmt(f) if not f.is_Float else mpmath.nstr(mpmath.mpf(f), 12)
    return f"({text})" if isinstance(f, sympy.Add) else text


def _factor_line(draws: Sequence[_Draw], ratios: Sequence, bits: int, grad: str, say: Callable[..., str]) -> str:
    near = _near_one(ratios)
    if near is not None:
        return say("check_factor_constant", grad=grad, factor=near)
    f = _factor(draws, ratios, bits)
    if f is None:
        seen: dict = {}
        for d, r in zip(draws, ratios):
            if r != "skip":
                seen.setdefault(d.dims, r)
        names = ", ".join(str(d) for d, _ in draws[0].dims) or "—"
        shown = "; ".join(f"({', '.join(str(v) for _, v in dims)}): {_ratio_text(r)}"
                          for dims, r in list(seen.items())[:4])
        return say("check_factor_other", grad=grad, dims=names, ratios=f"({names}) = {shown}"
                   + ("; …" if len(seen) > 4 else ""))
    if f == 0:
        return say("check_factor_zero", grad=grad)
    if f == -1:
        return say("check_factor_sign", grad=grad)
    key = "check_factor_constant" if f.is_Number else "check_factor_dims"
    return say(key, grad=grad, factor=_factor_text(f))


def _part_factor(draws: Sequence[_Draw], ratios: Sequence, bits: int) -> str:
    near = _near_one(ratios)
    if near is not None:
        return near
    f = _factor(draws, ratios, bits)
    if f is not None:
        return _factor_text(f)
    values = [r for r in ratios if r != "skip"]
    return f"{_ratio_text(values[0])}, {_ratio_text(values[-1])}, …"


def _locate(problem: _Problem, A: MatrixExpr, X: MatrixSymbol, draws: Sequence[_Draw],
            evs: Sequence[_Evaluator], multiple: bool, say: Callable[..., str]) -> list[str]:
    """Where the answer first differs, along the chain from the loss to X (module docstring)."""
    nodes = _chain(problem, X)
    if not nodes:
        return []
    bits = min(ev.bits for ev in evs)
    cands = _candidates(A)
    found = []                                      # per node: (strict part, loose part with its factor)
    for v in nodes:
        G = problem.gradient(v)
        strict = loose = None
        for S, kappa in cands:
            if tuple(S.shape) != tuple(v.shape):
                continue
            cs = _ratios(((ev(S), ev(G)) for ev in evs), evs)
            if cs is None or any(c != "skip" and c == 0 for c in cs):
                continue
            eff = []
            for c, ev in zip(cs, evs):
                with mpmath.workprec(ev.bits):         # a product rounds: to the evaluation's precision
                    eff.append(c if c == "skip" else c * ev(kappa))
            shown = S if kappa == 1 else MatMul(kappa, *(S.args if isinstance(S, MatMul) else (S,)))
            if all(c == "skip" or abs(c - 1) <= mpmath.ldexp(1, -(ev.bits // 2)) for c, ev in zip(eff, evs)):
                strict = shown
                break
            if loose is None:
                loose = (shown, eff)
        found.append((v, G, strict, loose))
    deepest_strict = max((i for i, f in enumerate(found) if f[2] is not None), default=None)
    deepest_loose = max((i for i, f in enumerate(found) if f[2] is not None or f[3] is not None), default=None)
    # a wrong factor is followed along the exact matches; a wrong structure along the matches up to a factor
    deepest = deepest_strict if multiple else deepest_loose
    lines = []
    if deepest_strict is not None and deepest_strict <= (deepest if deepest is not None else -1):
        v, _, strict, _ = found[deepest_strict]
        lines.append(say("check_right_as", grad=f"∂f/∂{v.name}", expr=_fmt(strict)))
    if not multiple and deepest is not None and deepest != deepest_strict:
        v, _, _, (shown, eff) = found[deepest]
        lines.append(say("check_up_to_factor", grad=f"∂f/∂{v.name}", expr=_fmt(shown),
                         factor=_part_factor(draws, eff, bits)))
    nxt = 0 if deepest is None else deepest + 1
    if nxt == len(found):
        v = found[deepest][0]
        lines.append(say("check_last_step", up=f"∂f/∂{v.name}", grad=f"∂f/∂{X.name}"))
        return lines
    w, G, _, loose = found[nxt]
    fields = dict(grad=f"∂f/∂{w.name}", expr=_fmt(G))
    if nxt == 0:
        key = "check_first_step"
    else:
        key = "check_step"
        fields["up"] = f"∂f/∂{found[deepest][0].name}"
    if loose is not None:
        key += "_factor"
        fields.update(part=_fmt(loose[0]), factor=_part_factor(draws, loose[1], bits))
    lines.append(say(key, **fields))
    return lines


def _counterexample(problem: _Problem, A: MatrixExpr, G: MatrixExpr, grad: str, failing: _Draw, bits: int,
                    say: Callable[..., str]) -> tuple[list[str], dict] | None:
    """The smallest dimensions (and small integer data) at which the answer and the gradient differ."""
    dims = [d for d, _ in failing.dims]
    tuples = sorted(cartesian(range(1, 4), repeat=len(dims)), key=lambda t: (sum(t), t))
    tuples = [t for t in tuples if any(x != 1 for x in t)][:40] + [(1,) * len(dims)]
    big = 10.0 ** math.ceil(math.log10(failing.scale)) if failing.scale > 1 else None
    tries = [(1.0, 0), (1.0, 1)] + ([(big, 0)] if big else [])
    candidates = [(t, s, k) for t in tuples for s, k in tries]
    candidates.append((tuple(v for _, v in failing.dims), failing.scale if failing.scale >= 1 else 1.0, 2))
    for t, scale, k in candidates:
        draw = _Draw(tuple(zip(dims, t)), scale, (7, *t, k), integers=True)
        verdict, ev, _ = _compare(problem, draw, A, G, bits)
        if verdict.state != "differ":
            continue
        net = problem.net
        data = _data(net, problem.scalars, draw)
        shown = "; ".join(f"{s.name}={_matrix_text(data[s])}" for s in list(net.inputs) + list(net.params))
        shown += "".join(f"; {s}={data[s]:g}" for s in problem.scalars)
        i, j = verdict.entry
        got, want = ev(A)[i, j], ev(G)[i, j]
        undefined = say("check_undefined")
        digits = 6
        if mpmath.isfinite(got) and mpmath.isfinite(want) and got != want:
            # enough digits to show the difference (a factor 1 + 10⁻¹² needs 14)
            digits = max(6, min(60, 2 - int(mpmath.log10(abs(got - want) / max(abs(got), abs(want))))))
        lines = [say("check_counterexample", dims=draw.label(), data=shown) if draw.dims
                 else say("check_counterexample_fixed", data=shown),
                 "  " + say("check_entry", i=str(i + 1), j=str(j + 1),
                            got=undefined if not mpmath.isfinite(got) else _show(got, digits), grad=grad,
                            want=undefined if not mpmath.isfinite(want) else _show(want, digits))]
        info = {"dims": dict((str(d), v) for d, v in draw.dims),
                "data": {s.name: data[s].tolist() for s in list(net.inputs) + list(net.params)},
                "entry": (i + 1, j + 1), "answer": float(got), "expected": float(want)}
        return lines, info
    return None


def _show(x: mpmath.mpf, digits: int) -> str:
    text = mpmath.nstr(x, digits)
    return text[:-2] if text.endswith(".0") else text


def _matrix_text(a: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{x:g}" for x in row) + "]" for row in a) + "]"
