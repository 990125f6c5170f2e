"""The layout decisions every printer of derive.render shares (LaTeX, text, MathML): which operand
gets brackets, how a product, a Hadamard product, a sum and a transpose are laid out, which
patterns print by name (‖A‖²_F, softmax(Z)).  The printers only read these decisions.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Iterable

import sympy
from sympy import (
    Basic, Identity, Inverse, MatAdd, MatMul, MatrixExpr, MatrixSymbol,
    OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.kronecker import KroneckerProduct

from derive.differential import MatrixDifferential
from derive.elementwise import elementwise_function
from derive.simplify import ones_multiple
from derive.steps import Gradient

_LEAVES = (MatrixSymbol, sympy.Symbol)



def _matmul_parts(e: MatMul) -> tuple[sympy.Expr, list[Basic]]:
    """(scalar coefficient, matrix factors) of a product, as stored."""
    coeff, mats = e.as_coeff_matrices()
    return coeff, list(mats)


def _is_negative_term(t: Basic) -> bool:
    if isinstance(t, MatMul):
        coeff, _ = _matmul_parts(t)
        return bool(coeff.could_extract_minus_sign())
    return isinstance(t, sympy.Expr) and not isinstance(t, MatrixExpr) and t.could_extract_minus_sign()


def _positive_first(terms: list[Basic]) -> list[Basic]:
    # stable: the stored order is kept within each group
    return [t for t in terms if not _is_negative_term(t)] + [t for t in terms if _is_negative_term(t)]


def _lambda_power(fn: Any) -> sympy.Expr | None:
    """p when ``fn`` is ``x ↦ x**p`` with a number p (an elementwise power), else None."""
    if isinstance(fn, sympy.Lambda) and len(fn.variables) == 1:
        body = fn.expr
        if isinstance(body, sympy.Pow) and body.base == fn.variables[0] and body.exp.is_Number:
            return body.exp
    return None


def frobenius_operand(e: Basic) -> MatrixExpr | None:
    """M when ``e`` is tr(MᵀM) (how ‖M‖²_F is stored), else None.

    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> frobenius_operand(Trace(Transpose(Y) * Y))
    Y
    >>> frobenius_operand(Trace(Y * Transpose(Y))) is None
    True
    """
    if isinstance(e, Trace) and isinstance(e.arg, MatMul):
        coeff, mats = _matmul_parts(e.arg)
        if coeff == 1 and len(mats) == 2:
            a, b = mats
            if isinstance(a, Transpose) and a.arg == b:
                return b
    return None


def _is_exp(e: Basic) -> bool:
    return isinstance(e, ElementwiseApplyFunction) and elementwise_function(e) is sympy.exp


def _normalises_rows(N: Basic, E: MatrixExpr) -> bool:
    """Whether N is 1 over the row sums of E, spread over the columns: (E𝟏ₖ)^∘−1 𝟏ₖᵀ or (E𝟏ₖ𝟏ₖᵀ)^∘−1."""
    k = E.shape[1]
    if isinstance(N, HadamardPower) and N.exp == -1 and isinstance(N.base, MatMul):
        coeff, mats = _matmul_parts(N.base)
        return (coeff == 1 and len(mats) >= 2 and mats[0] == E
                and ones_multiple(MatMul(*mats[1:])) == 1 and N.shape == E.shape)
    if isinstance(N, MatMul):
        coeff, mats = _matmul_parts(N)
        return (coeff == 1 and len(mats) == 2 and mats[1] == OneMatrix(1, k)
                and isinstance(mats[0], HadamardPower) and mats[0].exp == -1
                and mats[0].base == MatMul(E, OneMatrix(k, 1)))
    return False


def hadamard_layout(expr: HadamardProduct) -> list[tuple[str, Basic]]:
    """The operands of a Hadamard product as written: ``("softmax", Z)`` for the row-wise softmax
    exp(Z) ⊙ [(exp(Z)𝟏ₖ)^∘−1 𝟏ₖᵀ] (= exp(Z) ⊘ (exp(Z)𝟏ₖ𝟏ₖᵀ)) found among them, ``("factor", A)`` for the others.

    >>> from derive.elementwise import exp
    >>> Z, A = MatrixSymbol("Z", 4, 2), MatrixSymbol("A", 4, 2)
    >>> E = exp(Z)
    >>> hadamard_layout(HadamardProduct(A, MatMul(HadamardPower(E * OneMatrix(2, 1), -1), OneMatrix(1, 2)), E))
    [('factor', A), ('softmax', Z)]
    """
    args = list(expr.args)
    items: list[tuple[str, Basic] | None] = [("factor", a) for a in args]
    for i, E in enumerate(args):
        if not _is_exp(E):
            continue
        for j, N in enumerate(args):
            if j != i and items[i] is not None and items[j] is not None and items[i][0] == items[j][0] == "factor" \
                    and _normalises_rows(N, E):
                items[min(i, j)], items[max(i, j)] = ("softmax", E.expr), None
                break
    return [it for it in items if it is not None]


def softmax_operand(e: Basic) -> MatrixExpr | None:
    """Z when ``e`` is the row-wise softmax of Z (see :func:`hadamard_layout`), else None.

    >>> from derive.elementwise import exp
    >>> Z = MatrixSymbol("Z", 4, 2)
    >>> softmax_operand(HadamardProduct(exp(Z), HadamardPower(exp(Z) * OneMatrix(2, 2), -1)))
    Z
    """
    if isinstance(e, HadamardProduct):
        items = hadamard_layout(e)
        if len(items) == 1 and items[0][0] == "softmax":
            return items[0][1]
    return None


# --- layout decisions, shared by every printer (LaTeX, text, MathML) ------------------------------
# Each answers one question about an expression's structure; the printers supply the notation.

def factor_bracket(a: Basic, bracket_gradient: bool = False) -> str | None:
    """The bracket ``a`` takes as a factor of a matrix product: ``"["``, ``"("`` or None.

    A Hadamard product gets square brackets, a sum or product parentheses (and ∂f/∂Z when
    ``bracket_gradient``, for notations where "/" binds loosely).

    >>> A, B = MatrixSymbol("A", 2, 2), MatrixSymbol("B", 2, 2)
    >>> factor_bracket(HadamardProduct(A, B)), factor_bracket(A + B), factor_bracket(A) is None
    ('[', '(', True)
    """
    if isinstance(a, Gradient) and bracket_gradient:
        return "("
    if getattr(a, "_tracegrad_leaf", False):  # a name (p = softmax(z)) prints as a symbol
        return None
    if isinstance(a, HadamardProduct):
        return None if softmax_operand(a) is not None else "["
    if isinstance(a, (MatAdd, MatMul, sympy.Add, KroneckerProduct)):
        return "("
    return None


def kronecker_operand_bracket(a: Basic) -> str | None:
    """``"("`` for a sum, product or Hadamard product inside ⊗ (a nested ⊗ needs none).

    >>> A = MatrixSymbol("A", 2, 2)
    >>> kronecker_operand_bracket(A + A), kronecker_operand_bracket(A) is None
    ('(', True)
    """
    if getattr(a, "_tracegrad_leaf", False):
        return None
    return "(" if isinstance(a, (MatAdd, MatMul, HadamardProduct)) else None


def hadamard_operand_bracket(a: Basic) -> str | None:
    """``"("`` for a sum or product inside ⊙; a nested ⊙ needs none (it is associative)."""
    return "(" if isinstance(a, (MatAdd, MatMul, KroneckerProduct)) else None


def postfix_bracket(a: Basic) -> str | None:
    """The bracket the base of a postfix operator (ᵀ, ⁻¹, a power) takes.

    >>> A = MatrixSymbol("A", 2, 2)
    >>> postfix_bracket(A) is None, postfix_bracket(A * A), postfix_bracket(HadamardProduct(A, A))
    (True, '(', '[')
    """
    if isinstance(a, HadamardProduct):
        return None if softmax_operand(a) is not None or getattr(a, "_tracegrad_leaf", False) else "["
    if isinstance(a, (*_LEAVES, OneMatrix, Identity, ZeroMatrix, ElementwiseApplyFunction)):
        return None
    return "("


def postfix_layout(expr: Transpose | Inverse) -> tuple[Basic, str]:
    """(base, operator) of a transpose or inverse: the operator is ``"T"``, ``"INV"`` or ``"INV_T"``.

    (X⁻¹)ᵀ and (Xᵀ)⁻¹ are both written X⁻ᵀ.
    """
    a = expr.arg
    if isinstance(expr, Transpose):
        return (a.arg, "INV_T") if isinstance(a, Inverse) else (a, "T")
    return (a.arg, "INV_T") if isinstance(a, Transpose) else (a, "INV")


def signed_terms(terms: Iterable[Basic]) -> list[tuple[bool, Basic]]:
    """(is negative, term) for the terms of a sum, positive terms first (stable within each group).

    >>> Y, P = MatrixSymbol("Y", 2, 2), MatrixSymbol("Ypred", 2, 2)
    >>> signed_terms((-Y + P).args)
    [(False, Ypred), (True, -Y)]
    """
    return [(_is_negative_term(t), t) for t in _positive_first(list(terms))]


def product_layout(expr: MatMul, negate: bool = False) -> tuple[bool, sympy.Expr, list[Basic]]:
    """(leading minus, positive coefficient, matrix factors) of a product (``negate``: of its negation).

    >>> A = MatrixSymbol("A", 2, 2)
    >>> product_layout(MatMul(-2, A.T, A))
    (True, 2, [A.T, A])
    """
    coeff, mats = _matmul_parts(expr)
    if negate:
        coeff = -coeff
    minus = bool(coeff.could_extract_minus_sign())
    return minus, (-coeff if minus else coeff), mats


def _differential_pair(a: Basic, b: Basic) -> bool:
    """Neighbouring factors of which one is a differential: X dW is never broken across lines."""
    return MatrixDifferential in (type(a), type(b))


def differential_layout(a: Basic) -> str:
    """How d applies to ``a``: ``"leaf"`` (dX), ``"trace"`` (d tr(…)) or ``"bracket"`` (d(…))."""
    if isinstance(a, _LEAVES):
        return "leaf"
    if isinstance(a, Trace):
        return "trace"
    return "bracket"


