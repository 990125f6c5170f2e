"""The notation of the rules' laws, as SymPy objects that tracegrad's printers typeset.

A law is an equation (``sympy.Eq`` with ``evaluate=False``) of ordinary expressions built from
the generic symbols below, the differential (``derive.differential``) and a few objects SymPy
has no class for: ∂f/∂X (:class:`Gradient`, which derivation steps use too), a ⟺ b
(:class:`Iff`), several laws in one (:class:`Laws`), Σ (:class:`Summation`), a function
applied by name, φ(A) or g′(a) (:func:`applied`), ‖A‖²_F (:class:`FrobeniusSq`) and ….
Nothing here prints: ``derive.render`` does, in text, LaTeX and MathML alike.
"""
from __future__ import annotations

import sympy
from sympy import Basic, Expr, MatrixExpr, MatrixSymbol, Tuple

__all__ = [
    "Dots",
    "F",
    "FrobeniusSq",
    "Gradient",
    "Iff",
    "Laws",
    "MatrixApplied",
    "ScalarApplied",
    "Summation",
    "applied",
    "matrices",
    "scalars",
]

F = sympy.Symbol("f")
"""The function being differentiated, f."""

_n = sympy.Symbol("n", integer=True, positive=True)


def matrices(names: str) -> tuple[MatrixSymbol, ...]:
    """Generic n×n matrices for a law (square, so that every trace and inverse is defined).

    >>> A, B = matrices("A B")
    >>> A.shape == B.shape
    True
    """
    return tuple(MatrixSymbol(s, _n, _n) for s in names.split())


def scalars(names: str) -> tuple[sympy.Symbol, ...]:
    """Generic scalars for a law: ``scalars("a b")``."""
    return tuple(sympy.Symbol(s) for s in names.split())


class Gradient(MatrixExpr):
    """The symbol ∂f/∂X (shape of X), used on the left of the read-off step."""

    def __new__(cls, f: sympy.Symbol, wrt: MatrixSymbol):
        return Basic.__new__(cls, f, wrt)

    @property
    def wrt(self) -> MatrixSymbol:
        return self.args[1]

    @property
    def shape(self):
        return self.wrt.shape

    def doit(self, **hints):
        return self

    def _sympystr(self, printer) -> str:
        return f"∂{printer._print(self.args[0])}/∂{printer._print(self.wrt)}"


class Iff(Basic):
    """a ⟺ b, for two laws that say the same.

    >>> a, b = scalars("a b")
    >>> Iff(sympy.Eq(a, b), sympy.Eq(b, a)).args
    (Eq(a, b), Eq(b, a))
    """

    def __new__(cls, a: Basic, b: Basic):
        return Basic.__new__(cls, a, b)


class Laws(Basic):
    """Several laws under one rule, written side by side: ``tr(A + B) = tr A + tr B,  tr(cA) = c tr A``."""

    def __new__(cls, *laws: Basic):
        return Basic.__new__(cls, *laws)


class Summation(MatrixExpr):
    """Σ of a matrix ``term`` over ``index`` (``limits``: from, to; none for "over every index").

    >>> i, p = sympy.symbols("i p")
    >>> (A,) = matrices("A")
    >>> s = Summation(A, i, (0, p - 1))
    >>> s.index, s.limits, s.shape == A.shape
    (i, (0, p - 1), True)
    """

    def __new__(cls, term: MatrixExpr, index: sympy.Symbol, limits: tuple = ()):
        return Basic.__new__(cls, term, index, Tuple(*limits))

    @property
    def term(self) -> MatrixExpr:
        return self.args[0]

    @property
    def index(self) -> sympy.Symbol:
        return self.args[1]

    @property
    def limits(self) -> tuple:
        return tuple(self.args[2])

    @property
    def shape(self):
        return self.term.shape

    def doit(self, **hints):
        return self


class _Applied:
    """A function named ``name`` (a Symbol) applied to ``arg``, with ``primes`` primes: φ(A), g′(a)."""

    @property
    def name(self) -> sympy.Symbol:
        return self.args[0]

    @property
    def arg(self) -> Basic:
        return self.args[1]

    @property
    def primes(self) -> int:
        return int(self.args[2])

    def doit(self, **hints):
        return self


class MatrixApplied(_Applied, MatrixExpr):
    """A named function applied entry by entry to a matrix: φ(A), φ′(A)."""

    def __new__(cls, name: sympy.Symbol, arg: MatrixExpr, primes: int = 0):
        return Basic.__new__(cls, name, arg, sympy.Integer(primes))

    @property
    def shape(self):
        return self.arg.shape


class ScalarApplied(_Applied, Expr):
    """A named scalar function applied to a scalar: g(a), g′(a)."""

    is_commutative = True

    def __new__(cls, name: sympy.Symbol, arg: Expr, primes: int = 0):
        return Expr.__new__(cls, name, arg, sympy.Integer(primes))


def applied(name: str, arg: Basic, primes: int = 0) -> MatrixApplied | ScalarApplied:
    """The function ``name`` applied to ``arg``: entry by entry for a matrix.

    >>> (A,) = matrices("A")
    >>> type(applied("phi", A)).__name__, type(applied("g", sympy.Symbol("a"), 1)).__name__
    ('MatrixApplied', 'ScalarApplied')
    """
    cls = MatrixApplied if isinstance(arg, MatrixExpr) else ScalarApplied
    return cls(sympy.Symbol(name), arg, primes)


class FrobeniusSq(Expr):
    """‖A‖²_F, the squared Frobenius norm of a matrix."""

    is_commutative = True

    def __new__(cls, A: MatrixExpr):
        return Expr.__new__(cls, A)

    @property
    def arg(self) -> MatrixExpr:
        return self.args[0]


class Dots(Expr):
    """…, arguments left unwritten: g(…)."""

    is_commutative = True

    def __new__(cls):
        return Expr.__new__(cls)
