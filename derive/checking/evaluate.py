"""The checker's evaluator (values at one draw in interval arithmetic) and its verdict at one draw."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

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

from derive.dims import concrete_shape
from derive.elementwise import ScalarFunctionBase
from derive.limits import CHECK_MAX_BITS as MAX_BITS
from derive.steps import Gradient
from derive.checking.intervals import (
    FUNCTIONS, NAN, ONE, Unsupported, Value, WIDE, ZERO, entrywise, exact_det, full_matrix, interval, ipow, istep, iv, ivprec, lower, midpoint, upper,
)
from derive.checking.problem import Draw, Problem, draw_data


class Evaluator:
    """Values at one draw in ``bits``-bit interval arithmetic (mpmath ``iv``): each entry an interval
    that encloses the exact value, whatever rounding and cancellation the formula holds, and a mask
    of undefined entries (0⁻¹, log of a negative number).

    ``value(e)`` is the interval value; ``ev(e)`` the midpoints, NaN where undefined, for the diagnosis.
    Stage symbols are evaluated from their definitions and ∂f/∂Z symbols from the gradients, once each.
    """

    def __init__(self, problem: Problem, draw: Draw, bits: int, memo: dict | None = None):
        self.problem, self.draw, self.bits = problem, draw, bits
        self.sizes = dict(draw.dims)
        self.memo: dict = dict(memo) if memo is not None else {}
        self.mids: dict = {}
        if memo is not None:
            return
        with ivprec(bits):
            for d, v in draw.dims:
                self.memo[d] = Value(iv.mpf(v), False)
            for s, v in draw_data(problem.net, problem.scalars, draw).items():
                if isinstance(s, MatrixSymbol):
                    self.memo[s] = Value(np.frompyfunc(iv.mpf, 1, 1)(v), np.zeros(v.shape, dtype=bool))
                else:
                    self.memo[s] = Value(iv.mpf(v), False)

    def value(self, e: sympy.Basic) -> Value:
        with ivprec(self.bits):
            return self._value(e)

    def __call__(self, e: sympy.Basic):
        """The midpoints of ``e``'s intervals (mpf), NaN where undefined or unbounded."""
        if e not in self.mids:
            x = self.value(e)

            def mid(v, u):
                if u or not (mpmath.isfinite(lower(v)) and mpmath.isfinite(upper(v))):
                    return NAN
                return midpoint(v)
            with mpmath.workprec(self.bits):
                self.mids[e] = np.frompyfunc(mid, 2, 1)(x.v, x.u) if isinstance(x.v, np.ndarray) else mid(x.v, x.u)
        return self.mids[e]

    def _value(self, e: sympy.Basic) -> Value:
        v = self.memo.get(e)
        if v is None:
            v = self._matrix(e) if isinstance(e, MatrixExpr) else self._scalar(e, None)
            self.memo[e] = v
        return v

    def _int(self, d: sympy.Basic) -> int:
        return concrete_shape((d,), self.sizes)[0]

    # ----- matrices
    def _matrix(self, e: MatrixExpr) -> Value:
        if isinstance(e, MatrixSymbol):
            if e in self.problem.definitions:
                return self._value(self.problem.definitions[e])
            raise Unsupported(f"no value for {e.name}")
        if isinstance(e, Gradient):
            return self._value(self.problem.gradient(e.wrt))
        for types, method in _MATRIX_RULES:
            if isinstance(e, types):
                return method(self, e)
        raise Unsupported(type(e).__name__)

    def _constant(self, e: MatrixExpr) -> Value:
        r, c = (self._int(x) for x in e.shape)
        out = full_matrix(r, c, ONE if isinstance(e, OneMatrix) else ZERO)
        if isinstance(e, Identity):
            for i in range(r):
                out[i, i] = ONE
        return Value(out, np.zeros((r, c), dtype=bool))

    def _transpose(self, e: Transpose) -> Value:
        x = self._value(e.arg)
        return Value(x.v.T, x.u.T)

    def _sum_or_hadamard(self, e: MatAdd | HadamardProduct) -> Value:
        terms = [self._value(a) for a in e.args]
        v, u = terms[0].v, terms[0].u
        for t in terms[1:]:
            v, u = (v + t.v if isinstance(e, MatAdd) else v * t.v), u | t.u
        return Value(v, u)

    def _hadamard_power(self, e: HadamardPower) -> Value:
        return entrywise(ipow, self._value(e.base), self._value(e.exp))

    def _apply(self, e: ElementwiseApplyFunction) -> Value:
        return entrywise(self._elementwise(e.function), self._value(e.expr))

    def _product(self, e: MatMul) -> Value:
        scalars = [self._value(a) for a in e.args if not isinstance(a, MatrixExpr)]
        mats = [self._value(a) for a in e.args if isinstance(a, MatrixExpr)]
        out = mats[0]
        for m in mats[1:]:
            out = _dot(out, m)
        for x in scalars:
            out = Value(out.v * x.v, out.u | x.u)
        return out

    def _inverse_of(self, e: Inverse) -> Value:
        return self._inverse(self._value(e.arg))

    def _power(self, e: MatPow) -> Value:
        if not isinstance(e.exp, sympy.Integer):
            raise Unsupported(type(e).__name__)
        base = self._value(e.base)
        p = int(e.exp)
        if p < 0:
            base, p = self._inverse(base), -p
        out = self._value(Identity(e.shape[0]))
        for _ in range(p):
            out = _dot(out, base)
        return out

    @staticmethod
    def _inverse(x: Value) -> Value:
        n = x.v.shape[0]
        if x.u.any():
            return Value(full_matrix(n, n, ZERO), np.ones((n, n), dtype=bool))
        try:
            inv = iv.matrix(x.v.tolist()) ** -1
        except ZeroDivisionError:
            # a pivot interval holds 0: singular only if the exact determinant is 0, else not known yet
            singular = exact_det(x.v) == 0
            return Value(full_matrix(n, n, ZERO if singular else WIDE), np.full((n, n), singular))
        return Value(np.array(inv.tolist(), dtype=object), np.zeros((n, n), dtype=bool))

    def _elementwise(self, fn: sympy.Basic) -> Callable:
        if isinstance(fn, sympy.Lambda) and len(fn.variables) == 1:
            var, body = fn.variables[0], fn.expr
            if isinstance(body, sympy.Function) and body.args == (var,) and type(body) in FUNCTIONS:
                return FUNCTIONS[type(body)]

            def g(x):
                r = self._scalar(body, {var: Value(x, False)})
                return r.v, r.u
            return g
        if fn in FUNCTIONS:
            return FUNCTIONS[fn]
        raise Unsupported(str(fn))

    # ----- scalars
    def _scalar(self, e: sympy.Basic, env: dict | None) -> Value:
        if env is not None:
            # inside an elementwise function's body: only what holds its variable depends on the entry
            if e in env:
                return env[e]
            if not (e.free_symbols & env.keys()):
                return self._value(e)
        if isinstance(e, MatrixExpr):
            x = self._value(e)                      # a 1×1 matrix used as a number
            return Value(x.v[0, 0], bool(x.u[0, 0]))
        if e.is_number:
            number = self._number(e)
            if number is not None:
                return number
        if isinstance(e, sympy.Symbol):
            if e in self.memo:
                return self.memo[e]
            raise Unsupported(f"no value for {e}")
        sub = (lambda a: self._scalar(a, env)) if env is not None else self._value
        for types, method in _SCALAR_RULES:
            if isinstance(e, types):
                return method(self, e, sub)
        if type(e) in FUNCTIONS and len(e.args) == 1:
            x = sub(e.args[0])
            v, u = FUNCTIONS[type(e)](x.v)
            return Value(v, u or x.u)
        if isinstance(e, ScalarFunctionBase):  # defined by derive.define_elementwise: its definition
            return self._scalar(e.rewrite("definition"), env)
        raise Unsupported(type(e).__name__)

    def _number(self, e: sympy.Basic) -> Value | None:
        """A number's enclosure; None for a numeric expression to be evaluated (2·π, sin(1))."""
        if e.is_Integer:
            return Value(iv.mpf(int(e)), False)
        if e.is_Rational:
            return Value(iv.mpf(int(e.p)) / int(e.q), False)
        if e.is_Float:
            # a decimal in a network (weight_decay=0.01) means that decimal, 1/100, not the binary near it
            q = Fraction(str(e))
            return Value(iv.mpf(q.numerator) / q.denominator, False)
        if isinstance(e, sympy.NumberSymbol):
            with mpmath.workprec(self.bits + 20):
                x = mpmath.mpf(e.evalf(int(self.bits * 0.302) + 10))
                pad = abs(x) * mpmath.ldexp(1, -self.bits)
                return Value(interval(x - pad, x + pad), False)
        if e.is_Number or e.is_real is False:      # zoo, nan, I, 2·I
            return Value(ZERO, True)
        return None

    def _sum_or_product(self, e: sympy.Add | sympy.Mul, sub: Callable) -> Value:
        parts = [sub(a) for a in e.args]
        v = parts[0].v
        for q in parts[1:]:
            v = v + q.v if isinstance(e, sympy.Add) else v * q.v
        return Value(v, any(q.u for q in parts))

    def _scalar_power(self, e: sympy.Pow, sub: Callable) -> Value:
        b, p = sub(e.base), sub(e.exp)
        v, u = ipow(b.v, p.v)
        return Value(v, u or b.u or p.u)

    def _trace(self, e: Trace, sub: Callable) -> Value:
        m = self._value(e.arg)
        v = ZERO
        for i in range(m.v.shape[0]):
            v = v + m.v[i, i]
        return Value(v, bool(np.diag(m.u).any()))

    def _determinant(self, e: Determinant, sub: Callable) -> Value:
        m = self._value(e.arg)
        if m.u.any():
            return Value(ZERO, True)
        det = iv.det(iv.matrix(m.v.tolist()))
        if not isinstance(det, type(ONE)):
            # mpmath answers 0 when a pivot interval holds 0: exactly 0, or not known yet
            det = ZERO if exact_det(m.v) == 0 else WIDE
        return Value(det, False)

    def _element(self, e: MatrixElement, sub: Callable) -> Value:
        m = self._value(e.parent)
        i, j = self._int(e.i), self._int(e.j)
        return Value(m.v[i, j], bool(m.u[i, j]))

    def _heaviside(self, e: sympy.Heaviside, sub: Callable) -> Value:
        x = sub(e.args[0])
        h0 = sub(e.args[1]) if len(e.args) > 1 else Value(iv.mpf(0.5), False)
        v, _ = istep(x.v)
        if lower(x.v) == 0 == upper(x.v):
            v = h0.v
        elif lower(x.v) <= 0 <= upper(x.v):
            v = interval(min(0, lower(h0.v)), max(1, upper(h0.v)))
        return Value(v, x.u or h0.u)


def _dot(a: Value, b: Value) -> Value:
    """The matrix product; an entry is undefined where its row of ``a`` or column of ``b`` holds one."""
    return Value(a.v.dot(b.v), a.u.any(axis=1)[:, None] | b.u.any(axis=0)[None, :])


# the evaluator's method for each kind of matrix expression, and of scalar expression
_MATRIX_RULES: tuple = (
    ((OneMatrix, ZeroMatrix, Identity), Evaluator._constant), (Transpose, Evaluator._transpose),
    ((MatAdd, HadamardProduct), Evaluator._sum_or_hadamard), (HadamardPower, Evaluator._hadamard_power),
    (ElementwiseApplyFunction, Evaluator._apply), (MatMul, Evaluator._product),
    (Inverse, Evaluator._inverse_of), (MatPow, Evaluator._power),
)
_SCALAR_RULES: tuple = (
    ((sympy.Add, sympy.Mul), Evaluator._sum_or_product), (sympy.Pow, Evaluator._scalar_power),
    (Trace, Evaluator._trace), (Determinant, Evaluator._determinant), (MatrixElement, Evaluator._element),
    (sympy.Heaviside, Evaluator._heaviside),
)


# ----------------------------------------------------------------------------- deciding

@dataclass(frozen=True)
class Verdict:
    state: str                           # "equal", "differ", "undecided" or "skip"
    error: float = 0.0                   # max |answer − gradient| / max |gradient|, at the midpoints
    entry: tuple[int, int] | None = None


def decide(a: Value, g: Value, bits: int) -> Verdict:
    """Answer against gradient from their intervals at one draw.

    They differ where an entry of the answer is undefined and the gradient's is not, or where the two
    intervals are disjoint: a proof.  They agree when no entry differs and every interval is narrower
    than 2^(−3P/4) of the largest value.  Otherwise they are undecided at this precision."""
    idx = [i for i in zip(*np.nonzero(~g.u))]
    if not idx:
        return Verdict("skip")
    with mpmath.workprec(bits):
        undefined = [i for i in idx if a.u[i]]
        if undefined:
            return Verdict("differ", math.inf, tuple(int(x) for x in undefined[0]))
        apart = [i for i in idx if upper(a.v[i]) < lower(g.v[i]) or upper(g.v[i]) < lower(a.v[i])]
        widths = [max(upper(a.v[i]) - lower(a.v[i]), upper(g.v[i]) - lower(g.v[i])) for i in idx]
        bounded = all(mpmath.isfinite(w) for w in widths)
        mids = {i: (midpoint(a.v[i]), midpoint(g.v[i])) for i in idx} if bounded else {}
        err = math.nan
        if bounded:
            gmax = max(abs(y) for _, y in mids.values())
            dmax = max(abs(x - y) for x, y in mids.values())
            err = float(dmax / gmax) if gmax > 0 else float(dmax)
        if apart:
            i = max(apart, key=lambda i: abs(mids[i][0] - mids[i][1])) if bounded else apart[0]
            return Verdict("differ", err, (int(i[0]), int(i[1])))
        if bounded:
            scale = max(max(abs(x), abs(y)) for x, y in mids.values())
            if max(widths) <= scale * mpmath.ldexp(1, -(3 * bits) // 4):
                return Verdict("equal", err)
        return Verdict("undecided", err)


@lru_cache(maxsize=512)
def _base(problem: Problem, draw: Draw, bits: int, G: MatrixExpr | None) -> dict:
    """The network's own values at a draw (data, stages, the gradient ``G``), shared by the checks of
    many answers."""
    ev = Evaluator(problem, draw, bits)
    for s, _ in problem.net.stages:
        ev.value(s)
    if G is not None:
        ev.value(G)
    return ev.memo


def evaluator_at(problem: Problem, draw: Draw, bits: int, G: MatrixExpr | None = None) -> Evaluator:
    return Evaluator(problem, draw, bits, _base(problem, draw, bits, G))


def compare(problem: Problem, draw: Draw, A: MatrixExpr, G: MatrixExpr, bits: int
             ) -> tuple[Verdict, Evaluator, int]:
    """The verdict at one draw, raising the precision fourfold while it is undecided; the evaluator."""
    while True:
        ev = evaluator_at(problem, draw, bits, G)
        v = decide(ev.value(A), ev.value(G), bits)
        if v.state != "undecided" or bits * 4 > MAX_BITS:
            return v, ev, bits
        bits *= 4

