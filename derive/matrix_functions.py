"""Matrix functions of a square matrix (not elementwise): the matrix exponential e^A.

The elementwise exponential of the language (``exp``, :mod:`derive.elementwise`) maps each entry;
:class:`MatrixExponential` is e^A = Σₖ Aᵏ/k!.  Its differential, ∫₀¹ e^{sA} dA e^{(1−s)A} ds, has
no closed form the trace method can read a gradient from, but inside a trace it has one:
d tr(e^A) = tr(e^A dA) (Cookbook (528); likewise d tr(Aᵖ) = p tr(Aᵖ⁻¹ dA) for a symbolic or
fractional p), which is the rule :data:`derive.differential.D_TRACE_FUNCTION`.
"""
from __future__ import annotations

from typing import Any

from sympy import Basic, MatrixExpr

__all__ = ["MatrixExponential", "expm"]


class MatrixExponential(MatrixExpr):
    """e^A for a square matrix expression A.

    >>> from sympy import MatrixSymbol
    >>> from derive.render.printer import math_latex, math_text
    >>> A = MatrixSymbol("A", 3, 3)
    >>> math_text(expm(A)), math_latex(expm(2 * A))
    ('expm(A)', 'e^{2A}')
    """

    def __new__(cls, arg: MatrixExpr):
        if not isinstance(arg, MatrixExpr):
            raise TypeError(f"expm takes a matrix expression, got {type(arg).__name__}")
        if arg.shape[0] != arg.shape[1]:
            raise ValueError(f"expm of a non-square matrix {arg} ({arg.shape[0]}×{arg.shape[1]})")
        return Basic.__new__(cls, arg)

    @property
    def arg(self) -> MatrixExpr:
        return self.args[0]

    @property
    def shape(self):
        return self.arg.shape

    def doit(self, **hints: Any):
        return self

    def _eval_transpose(self):
        return MatrixExponential(self.arg.T)  # (e^A)ᵀ = e^(Aᵀ)

    def _sympystr(self, printer: Any) -> str:
        return f"expm({printer._print(self.arg)})"

    _tracegrad_text = _sympystr

    def _tracegrad_latex(self, printer: Any) -> str:
        return f"e^{{{printer._print(self.arg)}}}"

    def _tracegrad_mathml(self, printer: Any):
        e = printer.dom.createElement("msup")
        base = printer.dom.createElement("mi")
        base.appendChild(printer.dom.createTextNode("e"))
        e.appendChild(base)
        e.appendChild(printer._print(self.arg))
        return e


def expm(A: MatrixExpr) -> MatrixExponential:
    """The matrix exponential e^A (not the elementwise exp).

    >>> from sympy import MatrixSymbol
    >>> expm(MatrixSymbol("A", 3, 3)).shape
    (3, 3)
    """
    return MatrixExponential(A)
