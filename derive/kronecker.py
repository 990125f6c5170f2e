"""vec, diag and the commutation matrix as SymPy matrix expressions; Kronecker products are SymPy's
``KroneckerProduct``.

The identities that take a differential to d vec F = J d vec X (Magnus & Neudecker, ch. 2):

* vec(AXB) = (Bᵀ ⊗ A) vec X;
* vec(Xᵀ) = K_{m,n} vec X for an m×n X (K the commutation matrix);
* vec(W ⊙ X) = diag(vec W) vec X;
* (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ and (A ⊗ B)(C ⊗ D) = AC ⊗ BD.

Each printer (text, LaTeX, MathML) prints these through its ``_call`` hook (vec(X), diag(v)); the
commutation matrix is K with its two dimensions as subscripts.

>>> from sympy import MatrixSymbol
>>> X = MatrixSymbol("X", 4, 3)
>>> Vec(X).shape, Commutation(4, 3).shape, Diag(MatrixSymbol("v", 5, 1)).shape
((12, 1), (12, 12), (5, 5))
"""
from __future__ import annotations

import sympy
from sympy import Basic, ImmutableMatrix, MatrixBase, MatrixExpr

__all__ = ["Commutation", "Diag", "Vec"]


class _Operator(MatrixExpr):
    """A named operator of one matrix, printed name(A) by every printer; subclasses give ``name``,
    ``shape``, ``_explicit`` (the value of an explicit matrix) and ``_entry``."""

    name = ""

    @property
    def arg(self) -> MatrixExpr:
        return self.args[0]

    def doit(self, **hints):
        A = self.arg.doit(**hints) if hints.get("deep", True) else self.arg
        return self._explicit(A) if isinstance(A, MatrixBase) else type(self)(A)

    def _sympystr(self, printer) -> str:
        return f"{self.name}({printer._print(self.arg)})"

    def _tracegrad_text(self, printer) -> str:
        return printer._call(self.name, self.arg)

    def _tracegrad_latex(self, printer) -> str:
        return printer._call(rf"\operatorname{{{self.name}}}", self.arg)

    def _tracegrad_mathml(self, printer):
        return printer._call(self.name, self.arg, upright=True)


class Vec(_Operator):
    """vec A: the columns of an m×n A stacked into one mn×1 column."""

    name = "vec"

    def __new__(cls, A: MatrixExpr):
        if not isinstance(A, MatrixExpr):
            raise TypeError(f"vec takes a matrix, got {type(A).__name__} {A}")
        return Basic.__new__(cls, A)

    @property
    def shape(self):
        return (self.arg.shape[0] * self.arg.shape[1], sympy.Integer(1))

    @staticmethod
    def _explicit(A: MatrixBase) -> ImmutableMatrix:
        return ImmutableMatrix(A.rows * A.cols, 1, list(A.T))   # the columns, stacked

    def _entry(self, i, j, **kwargs):
        rows = self.arg.shape[0]
        return self.arg[i % rows, i // rows]

    def _eval_transpose(self):
        return None


class Diag(_Operator):
    """diag(v): the n×n diagonal matrix with the column v (n×1) on its diagonal."""

    name = "diag"

    def __new__(cls, v: MatrixExpr):
        if not isinstance(v, MatrixExpr) or v.shape[1] != 1:
            raise ValueError(f"diag takes a column vector (n×1), got {v} of shape {getattr(v, 'shape', '?')}")
        return Basic.__new__(cls, v)

    @property
    def shape(self):
        return (self.arg.shape[0], self.arg.shape[0])

    @staticmethod
    def _explicit(v: MatrixBase) -> ImmutableMatrix:
        return ImmutableMatrix(sympy.diag(*list(v)))

    def _entry(self, i, j, **kwargs):
        return sympy.KroneckerDelta(i, j) * self.arg[i, 0]

    def _eval_transpose(self):
        return self  # diagonal


class Commutation(MatrixExpr):
    """K_{m,n}, the mn×mn permutation with K_{m,n} vec A = vec Aᵀ for every m×n A.

    K_{m,n}ᵀ = K_{n,m}, and K_{m,1} = K_{1,n} = I.
    """

    def __new__(cls, m, n):
        return Basic.__new__(cls, sympy.sympify(m), sympy.sympify(n))

    @property
    def shape(self):
        m, n = self.args
        return (m * n, m * n)

    def doit(self, **hints):
        return self

    def _entry(self, i, j, **kwargs):
        # row j' + i'·n holds the entry (i', j') of A, which vec A holds at i' + j'·m
        m, n = self.args
        return sympy.Integer(1) if j == (i // n) + (i % n) * m else sympy.Integer(0)

    def _eval_transpose(self):
        m, n = self.args
        return Commutation(n, m)

    def _sympystr(self, printer) -> str:
        m, n = (printer._print(a) for a in self.args)
        return f"K_({m},{n})"

    _tracegrad_text = _sympystr

    def _tracegrad_latex(self, printer) -> str:
        m, n = (printer._print(a) for a in self.args)
        return f"K_{{{m},{n}}}"

    def _tracegrad_mathml(self, printer):
        sub = printer._row(printer._print(self.args[0]), printer._mo(","), printer._print(self.args[1]))
        return printer._el("msub", printer._mi("K"), sub)
