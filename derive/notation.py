"""Results that print in tracegrad's notation: ``print(gradient(f, X))`` reads 2Xᵀ[… ⊙ σ(h)].

SymPy's printers ask each expression for a print hook (``_sympystr`` for ``str``, ``_latex``
for ``latex`` and Jupyter, ``_pretty`` for ``pprint``) before using their own rules.
:func:`in_notation` gives the expression it returns such hooks, and only that one object:
its class is a subclass of the SymPy class it had, made once per class here, which

* prints the whole expression with tracegrad's printers (``derive.render.printer``);
* is equal to, hashes like and rebuilds as (``func``, pickling) the plain SymPy expression,
  so it goes wherever the plain expression goes.

Nothing in SymPy changes. An expression built from a result (``2*G``, ``G.T``, ``G.subs(…)``)
is plain SymPy again and prints as SymPy does, except its elementwise functions, which are
:class:`derive.elementwise.Elementwise` and print as σ(h) everywhere.
"""
from __future__ import annotations

from typing import Any, TypeVar

from sympy import Basic, MatrixSymbol
from sympy.core.operations import AssocOp

__all__ = ["in_notation", "plain"]

E = TypeVar("E", bound=Basic)


class _InNotation:
    """The print hooks and the plain-SymPy identity of a result (mixed into a SymPy class)."""

    __slots__ = ()
    _plain_class: type

    @property
    def func(self) -> type:
        return self._plain_class

    def _plain(self) -> Basic:
        return _new(self._plain_class, self)

    def __eq__(self, other: object) -> bool:
        return self._plain() == other

    def __ne__(self, other: object) -> bool:
        return not self._plain() == other

    def __hash__(self) -> int:
        return hash(self._plain())

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self._plain_class, tuple(self.args)  # unpickles as the plain expression (func(*args))

    def _sympystr(self, printer: Any) -> str:
        from derive.render.printer import math_text

        return math_text(self._plain())

    def _latex(self, printer: Any) -> str:
        from derive.render.printer import math_latex

        return math_latex(self._plain())

    def _pretty(self, printer: Any) -> Any:
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self._sympystr(printer))


_CLASSES: dict[type, type] = {}


def in_notation(e: E) -> E:
    """``e``, printing in tracegrad's notation (``str``, ``repr``, ``latex``, ``pprint``, Jupyter).

    >>> from sympy import MatrixSymbol, MatMul, Transpose
    >>> from derive.elementwise import sigmoid
    >>> X, h = MatrixSymbol("X", 4, 3), MatrixSymbol("h", 4, 5)
    >>> G = MatMul(2, Transpose(X), sigmoid(h))
    >>> G
    2*X.T*σ(h)
    >>> in_notation(G)
    2Xᵀσ(h)
    >>> in_notation(G) == G, hash(in_notation(G)) == hash(G), type(in_notation(G).func(*G.args))
    (True, True, <class 'sympy.matrices.expressions.matmul.MatMul'>)
    """
    cls = type(e)
    if isinstance(e, (_InNotation, MatrixSymbol)) or not isinstance(e, Basic) or not e.args:
        return e  # a name prints as itself
    if cls not in _CLASSES:
        # the same class name, so that SymPy's hash and ordering (which use it) agree with e's
        _CLASSES[cls] = type(cls.__name__, (_InNotation, cls),
                             {"_plain_class": cls, "__slots__": (), "__module__": __name__})
    return _new(_CLASSES[cls], e)


def _new(cls: type, like: Basic) -> Basic:
    """``like``'s arguments as an object of ``cls``; a scalar sum or product (∂f/∂λ) keeps the
    slot that SymPy's printers read."""
    out = Basic.__new__(cls, *like.args)
    if isinstance(like, AssocOp):
        out.is_commutative = like.is_commutative
    return out


def plain(e: E) -> E:
    """``e`` as the plain SymPy expression (undoes :func:`in_notation`).

    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 2, 2)
    >>> type(plain(in_notation(2 * X))).__name__, type(plain(in_notation(2 * X))) is type(2 * X)
    ('MatMul', True)
    """
    return e._plain() if isinstance(e, _InNotation) else e
