"""Undefined constants: a zero or singular matrix inverted, a division by zero, log of zero.

SymPy simplifies ``A - A`` to a ``ZeroMatrix`` and keeps ``inv(0)``, ``det(0)⁻¹``, ``A ⊙ 0∘⁻¹``
and ``log det(0)`` as expressions; derived and compiled, they are kernels that return inf or
NaN.  :func:`find_undefined` finds such a subexpression from the structure alone (no
evaluation of unknown values): the parser refuses it where it is typed, and
:func:`derive.engine.validate` refuses it in an expression built in Python.

A subexpression is *zero* when it is built to be (``ZeroMatrix``, the number 0, a product with
a zero factor, a sum of zeros, tr or det of such, a positive power of zero, φ(0) = 0), and a
square matrix is *singular* when it is zero, a matrix of ones or an outer product (rank 1, where
it is larger than 1×1), or a product or transpose of a singular square matrix.
"""
from __future__ import annotations

from collections.abc import Iterable

import sympy
from sympy import (
    Basic, Determinant, Identity, Inverse, Lambda, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol,
    OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

__all__ = ["UndefinedExpressionError", "check_defined", "find_undefined"]

_BAD = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


class UndefinedExpressionError(ValueError):
    """An expression that holds an undefined constant (``inv(0)``, ``1/det(0)``, ``log(0)``)."""


def _is_zero(e: Basic) -> bool:
    if isinstance(e, ZeroMatrix):
        return True
    if isinstance(e, sympy.Number):
        return e == 0
    if isinstance(e, (Trace, Transpose)):
        return _is_zero(e.arg)
    if isinstance(e, Determinant):
        return _singular(e.arg) is not None
    if isinstance(e, (MatMul, sympy.Mul, HadamardProduct)):
        return any(_is_zero(a) for a in e.args)
    if isinstance(e, (MatAdd, sympy.Add)):
        return all(_is_zero(a) for a in e.args)
    if isinstance(e, (HadamardPower, sympy.Pow)):
        return e.args[1].is_positive is True and _is_zero(e.args[0])
    if isinstance(e, ElementwiseApplyFunction):
        return _is_zero(e.expr) and e.function(sympy.Integer(0)) == 0
    if isinstance(e, sympy.Function) and len(e.args) == 1:
        return _is_zero(e.args[0]) and e.func(sympy.Integer(0)) == 0
    return False


def _rank_one_text(size: Basic) -> str:
    return "(rank 1)" if size.is_Integer else f"(rank 1: singular unless {size} = 1)"


def _singular(a: Basic) -> str | None:
    """Why the square matrix ``a`` is singular, or None where its structure does not say.

    Every reason means rank ≤ 1, so a product with such a factor is singular too."""
    if not isinstance(a, MatrixExpr):
        return None
    if _is_zero(a):
        return "a zero matrix"
    size = a.shape[0]
    if size == 1:
        return None
    if isinstance(a, OneMatrix):
        return "a matrix of ones " + _rank_one_text(size)
    if isinstance(a, Transpose):
        return _singular(a.arg)
    if isinstance(a, MatMul):
        mats = [m for m in a.args if isinstance(m, MatrixExpr)]
        if any(m.shape[1] == 1 for m in mats[:-1]):
            return "an outer product " + _rank_one_text(size)
        if len(mats) == 1:
            return _singular(mats[0])
        if any(m.shape[0] == m.shape[1] and _singular(m) for m in mats):
            return "a product with a factor of rank 1 " + _rank_one_text(size)
    return None


def _zero_entry(a: Basic) -> str | None:
    """Why the matrix ``a`` has a zero entry, or None where its structure does not say."""
    if _is_zero(a):
        return "a zero matrix"
    if isinstance(a, Identity) and a.shape[0] != 1:
        return "an identity matrix (zero off the diagonal)"
    if isinstance(a, Transpose):
        return _zero_entry(a.arg)
    if isinstance(a, (MatMul, HadamardProduct)):
        mats = [m for m in a.args if isinstance(m, MatrixExpr)]
        if isinstance(a, HadamardProduct) or len(mats) == 1:
            return next((why for m in mats if (why := _zero_entry(m))), None)
    return None


def _undefined_at_zero(fn: Lambda) -> bool:
    return sympy.sympify(fn(sympy.Integer(0))).has(*_BAD)


def _function_name(fn: Lambda) -> str:
    body = fn.expr
    if isinstance(body, sympy.Function) and body.args == fn.variables:
        return body.func.__name__
    return "the function"


def undefined_node(e: Basic) -> tuple[Basic, str] | None:
    """``(operand, phrase)`` if the node ``e`` itself is undefined (its arguments are not looked
    into); ``phrase`` completes "it …" with ``{}`` for the operand.

    >>> from sympy import ZeroMatrix, Inverse
    >>> undefined_node(Inverse(ZeroMatrix(3, 3)))
    (0, 'inverts {}, a zero matrix')
    """
    if isinstance(e, Inverse) or (isinstance(e, MatPow) and e.exp.is_negative is True):
        if why := _singular(e.args[0]):
            return e.args[0], "inverts {}, " + why
    elif isinstance(e, HadamardPower):
        if e.exp.is_negative is True and (why := _zero_entry(e.base)):
            return e.base, "divides elementwise by {}, " + why
    elif isinstance(e, ElementwiseApplyFunction):
        if (why := _zero_entry(e.expr)) and _undefined_at_zero(e.function):
            name = _function_name(e.function)
            return e.expr, f"applies {name} elementwise to {{}}, {why}, and {name}(0) is undefined"
    elif isinstance(e, sympy.Pow):
        if e.exp.is_negative is True and _is_zero(e.base):
            return e.base, "divides by {}, which is 0"
    elif (isinstance(e, sympy.Function) and len(e.args) == 1 and _is_zero(e.args[0])
          and sympy.sympify(e.func(sympy.Integer(0))).has(*_BAD)):
        what = "the log of" if isinstance(e, sympy.log) else f"{e.func.__name__} of"
        return e.args[0], f"takes {what} {{}}, which is 0"
    return None


def find_undefined(e: Basic, known: Iterable[Basic] = ()) -> tuple[Basic, Basic, str] | None:
    """The first undefined subexpression of ``e`` as ``(node, operand, phrase)``, or None.

    Subexpressions in ``known`` (already checked) are not looked into.

    >>> from sympy import MatrixSymbol, ZeroMatrix, Determinant, Trace
    >>> A = MatrixSymbol("A", 3, 3)
    >>> find_undefined(Trace(A) + 1 / Determinant(A - A))
    (1/Determinant(0), Determinant(0), 'divides by {}, which is 0')
    >>> find_undefined(Trace(A) + Determinant(A - A)) is None
    True
    """
    skip = set(known)
    stack = [e]
    while stack:
        x = stack.pop()
        if x in skip:
            continue
        skip.add(x)
        found = undefined_node(x)
        if found is not None:
            return (x, *found)
        if not isinstance(x, (MatrixSymbol, Lambda)):
            stack.extend(reversed(x.args))
    return None


def check_defined(e: Basic) -> None:
    """Raise :class:`UndefinedExpressionError` naming the first undefined subexpression of ``e``.

    >>> from sympy import ZeroMatrix, Inverse, Trace
    >>> check_defined(Trace(Inverse(ZeroMatrix(3, 3))))
    Traceback (most recent call last):
    ...
    derive.undefined.UndefinedExpressionError: 0⁻¹ is undefined: it inverts 0, a zero matrix
    """
    found = find_undefined(e)
    if found is not None:
        from derive.render.printer import math_text

        node, operand, phrase = found
        raise UndefinedExpressionError(f"{math_text(node)} is undefined: it {phrase.format(math_text(operand))}")
