"""Dimensions: a dimension given by a user (a positive integer or a name) as SymPy, and a shape with
symbolic dimensions at given sizes as integers.  The one place each is done."""
from __future__ import annotations

from typing import Any
from collections.abc import Iterable, Mapping

import sympy

__all__ = ["concrete_shape", "dimension", "shape_text"]


def shape_text(shape: tuple[Any, Any]) -> str:
    """``n×d`` for the shape (n, d): the one way a shape is written in messages and tables.

    >>> shape_text((sympy.Symbol("n"), 3)), shape_text((2 * sympy.Symbol("k"), 1))
    ('n×3', '2k×1')
    """
    return "×".join(sympy.sstr(sympy.sympify(d)).replace("*", "") for d in shape)


def dimension(value: Any, name: str) -> sympy.Expr:
    """``value`` (a positive integer, a name, or a SymPy symbol) as a dimension; ``name`` says which in
    the error.

    >>> dimension(4, "n"), dimension("d", "d")
    (4, d)
    >>> dimension(0, "n")
    Traceback (most recent call last):
    ...
    ValueError: dimension n must be a positive integer or a name, got 0
    """
    if isinstance(value, str):
        return sympy.Symbol(value, integer=True, positive=True)
    if isinstance(value, (int, sympy.Integer)) and not isinstance(value, bool) and int(value) > 0:
        return sympy.Integer(value)
    if isinstance(value, sympy.Symbol):
        return value
    raise ValueError(f"dimension {name} must be a positive integer or a name, got {value!r}")


def concrete_shape(shape: Iterable[Any], sizes: Mapping[sympy.Symbol, int]) -> tuple[int, ...]:
    """``shape`` with each dimension symbol replaced by its size in ``sizes``.

    >>> n, k = sympy.symbols("n k", integer=True, positive=True)
    >>> concrete_shape((n, 2 * k + 1), {n: 4, k: 2})
    (4, 5)
    """
    values = {d: sympy.Integer(v) for d, v in sizes.items()}
    return tuple(int(sympy.sympify(x).xreplace(values)) for x in shape)
