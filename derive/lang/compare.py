"""Structural comparison of expressions (up to bound variables and the order of terms)."""
from __future__ import annotations

import sympy
from sympy import Lambda, MatAdd
from sympy.matrices.expressions.hadamard import HadamardProduct


def _canonical(e: sympy.Basic, bound: dict[sympy.Basic, str]) -> str:
    if isinstance(e, Lambda):
        inner = dict(bound)
        for i, v in enumerate(e.variables):
            inner[v] = f"#{len(bound)}.{i}"
        return f"Lambda({len(e.variables)}, {_canonical(e.expr, inner)})"
    if e in bound:
        return bound[e]
    if not e.args:
        return sympy.srepr(e)
    parts = [_canonical(a, bound) for a in e.args]
    if isinstance(e, (sympy.Add, sympy.Mul, MatAdd, HadamardProduct)):
        parts.sort()
    return f"{type(e).__name__}({', '.join(parts)})"


def same_structure(a: sympy.Basic, b: sympy.Basic) -> bool:
    """Whether ``a`` and ``b`` are the same expression up to the names of bound variables
    and the order of the terms of sums and the factors of commutative products.

    ``X.applyfunc(sympy.exp)`` makes a fresh ``Dummy`` each time, so it is not ``==`` to
    ``derive.elementwise.exp(X)``; it has the same structure.

    >>> import sympy
    >>> X = sympy.MatrixSymbol("X", 3, 2)
    >>> from derive.lang import parse_expression
    >>> e = parse_expression("exp(X)", {"X": (3, 2)})
    >>> e == X.applyfunc(sympy.exp), same_structure(e, X.applyfunc(sympy.exp))
    (False, True)
    """
    return _canonical(a, {}) == _canonical(b, {})

