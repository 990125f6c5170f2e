"""The functions of the expression language: dimension functions, matrix functions, the
elementwise functions (read through :func:`_functions` alone) and the layers
(:mod:`derive.layers`, several arguments, inlined where they are called)."""
from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import MatrixExpr

from derive.elementwise import elementwise_functions
from derive.layers import layers

DIM_FUNCTIONS = {"ones": 2, "zeros": 2, "eye": 1}
MATRIX_FUNCTIONS = {"tr": 1, "det": 1, "logdet": 1, "inv": 1, "norm2": 1, "sum": 1, "sqrt": 1, "expm": 1,
                    "kron": 2, "vec": 1, "diag": 1}
# Elementwise functions that are also matrix functions of a square matrix (e^A, log A): a note says
# which one the text means.
MATRIX_FUNCTION_NAMES = {"exp": ("exponential", "指数"), "log": ("logarithm", "对数"),
                         "tanh": ("hyperbolic tangent", "双曲正切")}


def _functions() -> dict[str, tuple[Callable[..., sympy.Expr], Callable[[MatrixExpr], MatrixExpr]]]:
    """The elementwise functions: language name → (scalar SymPy function, its elementwise
    application to a matrix), read from the registry (:func:`derive.define_elementwise`) at each
    lookup, so that a function defined later is part of the language.

    >>> sorted(_functions())
    ['abs', 'elu', 'exp', 'gelu', 'leaky_relu', 'log', 'relu', 'sigmoid', 'softplus', 'step', 'swish', 'tanh']
    """
    return {name: (record.scalar, record) for name, record in elementwise_functions().items()}


def is_elementwise(name: str) -> bool:
    """Whether ``name`` is an elementwise function."""
    return name in _functions()


def scalar_function(name: str) -> Callable[..., sympy.Expr]:
    """The scalar SymPy function of the elementwise function ``name``."""
    return _functions()[name][0]


def matrix_function(name: str) -> Callable[[MatrixExpr], MatrixExpr]:
    """The elementwise application to a matrix of the function ``name``."""
    return _functions()[name][1]


def name_of(fn: object) -> str | None:
    """The language name of a scalar SymPy function class, or None.

    >>> name_of(elementwise_functions()["sigmoid"].scalar), name_of(sympy.sin)
    ('sigmoid', None)
    """
    return next((name for name, (scalar, _) in _functions().items() if scalar is fn), None)


def is_layer(name: str) -> bool:
    """Whether ``name`` is a layer (:func:`derive.layers.layer`)."""
    return name in layers()


def function_names() -> tuple[str, ...]:
    """Every function name of the language, sorted."""
    return tuple(sorted({**MATRIX_FUNCTIONS, **DIM_FUNCTIONS, **dict.fromkeys(_functions(), 1),
                         **dict.fromkeys(layers(), 1)}))


def arity(name: str) -> tuple[int, int]:
    """The least and the most arguments the function ``name`` takes.

    >>> arity("tr"), arity("ones"), arity("batchnorm")
    ((1, 1), (2, 2), (3, 4))
    """
    record = layers().get(name)
    if record is not None:
        return len(record.arguments) - record.optional, len(record.arguments)
    count = DIM_FUNCTIONS.get(name) or MATRIX_FUNCTIONS.get(name) or 1
    return count, count
