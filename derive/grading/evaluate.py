"""Values and differentials of SymPy matrix expressions at random data, in float64 (forward mode).

A chain ``df = A = B`` is checked by evaluating each line as a linear function of the differentials:
every leaf (input, parameter) gets a random value and a random direction, stages are computed from
their definitions with their differentials (dual numbers), ``MatrixDifferential(E)`` evaluates to
the differential of E, and ``ScalarDifferential(f)`` to that of the loss.  Holding the differentials
of everything but one variable V at zero is a :class:`Point` whose directions are zero except V's;
when V is a stage, its value is kept and only its differential is random (the graph is cut at V).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy
from sympy import (
    Determinant, HadamardPower, HadamardProduct, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixExpr,
    MatrixSymbol, OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.dims import concrete_shape
from derive.elementwise import elementwise_function
from derive.networks import Network

__all__ = ["Point", "Unevaluable", "close", "evaluate", "points"]


class Unevaluable(ValueError):
    """An expression of a kind the evaluator does not know."""


@dataclass
class Point:
    """Random data and directions for a network at concrete dimensions.

    The parameters have random differentials and the inputs (data) none, as in a derivation;
    ``held(V)`` gives V alone a random differential (``cut``: V)."""

    net: Network
    loss_name: str
    sizes: dict
    values: dict
    directions: dict
    pool: dict
    cut: MatrixSymbol | None = None

    def held(self, var: MatrixSymbol) -> Point:
        """The same data with every differential but ``var``'s held at zero."""
        values = dict(self.values)
        if var not in values:       # a stage: its value, computed once
            values[var] = evaluate(var, self)[0]
        return Point(self.net, self.loss_name, self.sizes, values, {var: self.pool[var]}, self.pool, var)


def points(net: Network, loss_name: str, count: int = 3, seed: int = 0) -> list[Point]:
    """``count`` random points, each with its own non-square dimensions (2 … 7, all different
    where there are few enough dimensions)."""
    rng = np.random.default_rng(seed)
    dims = sorted({x for s in net.symbols.values() for x in s.shape if isinstance(x, sympy.Symbol)},
                  key=lambda x: x.name)
    out = []
    for _ in range(count):
        pool = list(rng.permutation(np.arange(2, 8)))
        sizes = {d: int(pool[i % len(pool)]) for i, d in enumerate(dims)}
        values, pool = {}, {}
        for s in net.inputs + net.params:
            shape = concrete_shape(s.shape, sizes)
            values[s] = rng.standard_normal(shape)
            pool[s] = rng.standard_normal(shape)
        for s, _ in net.stages:
            pool[s] = rng.standard_normal(concrete_shape(s.shape, sizes))
        out.append(Point(net, loss_name, sizes, values, {s: pool[s] for s in net.params}, pool))
    return out


def close(a: object, b: object, rtol: float = 1e-7) -> bool:
    """Equal within ``rtol`` of the larger (at least 1e-3 of the size of the data) magnitude."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-3)
    return bool(np.all(np.abs(a - b) <= rtol * scale))


def _zero_like(v: np.ndarray | float) -> np.ndarray | float:
    return np.zeros_like(v) if isinstance(v, np.ndarray) else 0.0


@lru_cache(maxsize=64)
def _scalar_function(fn: sympy.Basic) -> tuple:
    x = sympy.Dummy("x", real=True)
    body = fn(x) if isinstance(fn, sympy.FunctionClass) else fn.expr.xreplace({fn.variables[0]: x})
    slope = sympy.diff(body, x)
    value = sympy.lambdify(x, body.rewrite("definition"), "numpy")
    deriv = sympy.lambdify(x, slope.rewrite("definition"), "numpy")
    return value, deriv


def evaluate(e: sympy.Basic, at: Point, memo: dict | None = None) -> tuple:
    """(value, differential) of ``e`` at ``at``: NumPy arrays for matrices, floats for scalars."""
    memo = {} if memo is None else memo
    with np.errstate(all="ignore"):
        return _ev(e, at, memo)


def _ev(e: sympy.Basic, at: Point, memo: dict) -> tuple:
    if e in memo:
        return memo[e]
    out = _compute(e, at, memo)
    memo[e] = out
    return out


def _stage(at: Point) -> Mapping:
    return dict(at.net.stages)


def _compute(e: sympy.Basic, at: Point, memo: dict) -> tuple:
    for types, rule in _RULES:
        if isinstance(e, types):
            return rule(e, at, lambda x: _ev(x, at, memo))
    if _scalar_rule(e):
        return _scalar(e, at, lambda x: _ev(x, at, memo))
    if e.is_Number or isinstance(e, sympy.NumberSymbol):
        return float(e), 0.0
    raise Unevaluable(type(e).__name__)


def _matrix_symbol(e: MatrixSymbol, at: Point, ev) -> tuple:
    if e in at.values:
        v = at.values[e]
        dv = at.directions.get(e)
        return v, (np.zeros_like(v) if dv is None else dv)
    stages = _stage(at)
    if e in stages:
        return ev(stages[e])
    raise Unevaluable(f"no value for {e.name}")


def _symbol(e: sympy.Symbol, at: Point, ev) -> tuple:
    if e.name == at.loss_name:
        return ev(at.net.loss)
    if e in at.sizes:
        return float(at.sizes[e]), 0.0
    raise Unevaluable(f"no value for {e.name}")


def _differential(e, at: Point, ev) -> tuple:
    slope = ev(e.arg)[1]
    return slope, _zero_like(slope)


def _constant(e, at: Point, ev) -> tuple:
    r, c = concrete_shape(e.shape, at.sizes)
    v = np.ones((r, c)) if isinstance(e, OneMatrix) else np.eye(r) if isinstance(e, Identity) else np.zeros((r, c))
    return v, np.zeros((r, c))


def _sum(e, at: Point, ev) -> tuple:
    parts = [ev(a) for a in e.args]
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _matmul(a, b):
    return a @ b if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) else a * b


def _times(e, at: Point, ev) -> tuple:
    return _product([ev(a) for a in e.args], _matmul)


def _hadamard(e, at: Point, ev) -> tuple:
    return _product([ev(a) for a in e.args], lambda a, b: a * b)


def _transpose(e, at: Point, ev) -> tuple:
    v, dv = ev(e.arg)
    return v.T, dv.T


def _trace(e, at: Point, ev) -> tuple:
    v, dv = ev(e.arg)
    return float(np.trace(v)), float(np.trace(dv))


def _power(e, at: Point, ev) -> tuple:
    b, db = ev(e.args[0])
    p, dp = ev(e.args[1])
    if np.any(np.asarray(dp) != 0):
        raise Unevaluable("a power with a variable exponent")
    return np.power(b, p), p * np.power(b, p - 1) * db


def _matpow(e, at: Point, ev) -> tuple:
    b, db = ev(e.base)
    n = int(e.exp)
    if n == -1:
        return ev(Inverse(e.base))
    v, dv = np.eye(b.shape[0]), np.zeros_like(b)
    for _ in range(n):
        v, dv = v @ b, dv @ b + v @ db
    return v, dv


def _inverse(e, at: Point, ev) -> tuple:
    b, db = ev(e.arg)
    inv = np.linalg.inv(b)
    return inv, -inv @ db @ inv


def _determinant(e, at: Point, ev) -> tuple:
    b, db = ev(e.arg)
    det = float(np.linalg.det(b))
    return det, det * float(np.trace(np.linalg.solve(b, db)))


def _elementwise(e, at: Point, ev) -> tuple:
    value, deriv = _scalar_function(elementwise_function(e))
    x, dx = ev(e.expr)
    return np.asarray(value(x), dtype=float) * np.ones_like(x), np.asarray(deriv(x), dtype=float) * dx


def _scalar(e, at: Point, ev) -> tuple:
    if len(e.args) != 1:
        raise Unevaluable(type(e).__name__)
    value, deriv = _scalar_function(type(e))
    x, dx = ev(e.args[0])
    return float(value(x)), float(deriv(x)) * dx


# (classes, rule): the first that matches; HadamardProduct before MatMul, matrices before scalars
_RULES: tuple = (
    (MatrixSymbol, _matrix_symbol), (sympy.Symbol, _symbol), ((MatrixDifferential, ScalarDifferential), _differential),
    ((OneMatrix, ZeroMatrix, Identity), _constant), ((MatAdd, sympy.Add), _sum), (HadamardProduct, _hadamard),
    ((MatMul, sympy.Mul), _times), (Transpose, _transpose), (Trace, _trace), ((HadamardPower, sympy.Pow), _power),
    (MatPow, _matpow), (Inverse, _inverse), (Determinant, _determinant), (ElementwiseApplyFunction, _elementwise),
)


def _scalar_rule(e: sympy.Basic) -> bool:
    return isinstance(e, sympy.Function) and not isinstance(e, MatrixExpr)


def _product(parts: list[tuple], mul) -> tuple:
    v, dv = parts[0]
    for w, dw in parts[1:]:
        v, dv = mul(v, w), mul(dv, w) + mul(v, dw)
    return v, dv
