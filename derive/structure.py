"""Structured and scalar variables: a symmetric or diagonal matrix S, and a scalar λ.

A symmetric S has n(n + 1)/2 free entries σᵢⱼ (i ≤ j).  With the trace inner product ⟨A, B⟩ = tr(AᵀB)
restricted to the space of symmetric matrices, the gradient is the G_S in that space with
df = tr(G_Sᵀ dS) for every symmetric dS.  From df = tr(Gᵀ dS) (the unconstrained derivation) and
tr(Gᵀ dS) = tr(sym(G)ᵀ dS) for symmetric dS (the antisymmetric part of G is orthogonal to it),
G_S = sym(G) = (G + Gᵀ)/2.  Likewise a diagonal D: G_D = I ⊙ G, the projection on diagonal matrices.

A scalar variable λ: df is linear in dλ, so the trace rules bring it to df = g dλ and ∂f/∂λ = g.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Basic, Eq, Identity, MatAdd, MatMul, MatrixExpr, MatrixSymbol, Trace, Transpose
from sympy.matrices.expressions.hadamard import HadamardProduct

from derive.differential import ScalarDifferential, has_differential
from derive.laws import F, Gradient, Iff, matrices, scalars
from derive.rules import Rule
from derive.simplify import split_coeff, tidy, transpose

__all__ = ["DIAGONAL_VARIABLE", "READ_OFF_SCALAR", "SCALAR_OUT_OF_TRACE", "STRUCTURES", "SYMMETRIC_VARIABLE",
           "SYMMETRY", "Remark", "project"]

STRUCTURES = ("symmetric", "diagonal")
"""The structures ``derive.gradient(f, S, structure=...)`` accepts."""


@dataclass(frozen=True)
class Remark:
    """A note of a derivation in English and Chinese; :meth:`say` picks one.

    >>> print(Remark("a note", "一条注释").say("zh"))
    一条注释
    """

    text: str
    zh: str

    def __str__(self) -> str:
        return self.text

    def say(self, lang: str = "en") -> str:
        """The note in ``lang`` ("en" or "zh")."""
        return self.zh if lang == "zh" else self.text


_S, _G, _X, _A = matrices("S G X A")
_lam, _g = scalars("lambda g")
_dlam = ScalarDifferential(_lam)

SYMMETRY = Rule("symmetry", Eq(Transpose(_S), _S, evaluate=False),
                {"en": "S is symmetric: Sᵀ = S", "zh": "S 对称：Sᵀ = S"})
SYMMETRIC_VARIABLE = Rule(
    "symmetric_variable",
    Eq(Gradient(F, _S), MatMul(sympy.Rational(1, 2), MatAdd(_G, Transpose(_G))), evaluate=False),
    {"en": "symmetric variable: sym(G), as tr(Gᵀ dS) = tr(sym(G)ᵀ dS)",
     "zh": "对称变量：sym(G)，因 tr(Gᵀ dS) = tr(sym(G)ᵀ dS)"})
DIAGONAL_VARIABLE = Rule(
    "diagonal_variable",
    Eq(Gradient(F, _S), HadamardProduct(Identity(_S.shape[0]), _G), evaluate=False),
    {"en": "diagonal variable: I ⊙ G, as tr(Gᵀ dD) = tr((I ⊙ G)ᵀ dD)",
     "zh": "对角变量：I ⊙ G，因 tr(Gᵀ dD) = tr((I ⊙ G)ᵀ dD)"})
SCALAR_OUT_OF_TRACE = Rule(
    "scalar_out_of_trace",
    Eq(Trace(HadamardProduct(_A, MatMul(_dlam, _X))), sympy.Mul(_dlam, Trace(HadamardProduct(_A, _X)),
                                                                  evaluate=False), evaluate=False),
    {"en": "the scalar dλ out of the trace", "zh": "把标量 dλ 移出迹"})
READ_OFF_SCALAR = Rule(
    "read_off_scalar",
    Iff(Eq(ScalarDifferential(F), sympy.Mul(_g, _dlam, evaluate=False), evaluate=False),
        Eq(sympy.Derivative(F, _lam), _g, evaluate=False)),
    {"en": "read off the derivative", "zh": "读出导数"})

STRUCTURE_RULES = (SYMMETRY, SYMMETRIC_VARIABLE, DIAGONAL_VARIABLE, SCALAR_OUT_OF_TRACE, READ_OFF_SCALAR)

NOTES = {
    "symmetric": Remark(
        "S is symmetric, so f depends on its n(n + 1)/2 free entries S(i,j), i ≤ j, and the gradient is the "
        "element of the space of symmetric matrices, with the trace inner product, that represents df: "
        "sym(G) = (G + Gᵀ)/2. Some texts give G + Gᵀ − G ⊙ I instead: that is the matrix of the partial "
        "derivatives by the free entries (2 sym(G)(i,j) off the diagonal, sym(G)(i,i) on it), written as a "
        "matrix, not the gradient for the Frobenius inner product; used in a gradient step it doubles the "
        "off-diagonal step (Srinivasan & Panda, "
        "“What is the gradient of a scalar function of a symmetric matrix?”, 2019/2023).",
        "S 是对称矩阵，f 只依赖其 n(n + 1)/2 个自由元素 S(i,j)（i ≤ j）；在带迹内积的对称矩阵空间中表示 df 的元素才是梯度："
        "sym(G) = (G + Gᵀ)/2。有些教材给出 G + Gᵀ − G ⊙ I：那是对各自由元素的偏导数（非对角元素为 2 sym(G)(i,j)，"
        "对角元素为 sym(G)(i,i)）排成的矩阵，"
        "不是 Frobenius 内积下的梯度；用于梯度下降时非对角元素的步长会加倍（Srinivasan & Panda，2019/2023）。"),
    "diagonal": Remark(
        "D is diagonal, so f depends on its n diagonal entries only, and the gradient in the space of diagonal "
        "matrices with the trace inner product is the diagonal part I ⊙ G of the unconstrained gradient G; "
        "its diagonal entries are the partial derivatives by D(i,i).",
        "D 是对角矩阵，f 只依赖其 n 个对角元素；在带迹内积的对角矩阵空间中，梯度是无约束梯度 G 的对角部分 I ⊙ G，"
        "其对角元素即对 D(i,i) 的偏导数。"),
}


def _symmetric(e: Basic, S: MatrixSymbol) -> Basic:
    """``e`` with Sᵀ = S (S symmetric)."""
    return e.xreplace({Transpose(S): S})


def project(G: MatrixExpr, S: MatrixSymbol, structure: str) -> MatrixExpr:
    """The gradient of the structured variable S from the unconstrained gradient G.

    >>> A, S = MatrixSymbol("A", 3, 3), MatrixSymbol("S", 3, 3)
    >>> project(A.T, S, "symmetric")
    (1/2)*(A + A.T)
    """
    if structure == "symmetric":
        G = _symmetric(G, S)
        total = tidy(_symmetric(tidy(MatAdd(G, _symmetric(transpose(G), S))), S))
        # ½ into the sum where every term then keeps an integer coefficient: ASA + AᵀSAᵀ, not ½(2ASA + …)
        halved = [tidy(MatMul(sympy.Rational(1, 2), t)) for t in MatAdd.make_args(total)]
        if all(split_coeff(h)[0].is_Integer for h in halved):
            return tidy(MatAdd(*halved)) if len(halved) > 1 else halved[0]
        return tidy(MatMul(sympy.Rational(1, 2), total))
    return tidy(HadamardProduct(Identity(S.shape[0]), _symmetric(G, S)))


def check_structure(S: Basic, structure: str) -> None:
    """Refuse a structure this module does not know, or a variable that cannot have it."""
    if structure not in STRUCTURES:
        raise ValueError(f"structure={structure!r}: expected one of {', '.join(map(repr, STRUCTURES))} or None")
    if not isinstance(S, MatrixSymbol) or S.shape[0] != S.shape[1]:
        shape = f"a {S.shape[0]}×{S.shape[1]} matrix" if isinstance(S, MatrixSymbol) else type(S).__name__
        raise ValueError(f"structure={structure!r} needs a square MatrixSymbol as the variable, got {shape}")


def structured_steps(G: MatrixExpr, S: MatrixSymbol, structure: str) -> list[tuple[str, MatrixExpr]]:
    """The lines (rule key, ∂f/∂S = …) from the unconstrained ∂f/∂S = G to the structured gradient
    (the last one).

    >>> A, S = MatrixSymbol("A", 3, 3), MatrixSymbol("S", 3, 3)
    >>> [key for key, _ in structured_steps(A * S.T, S, "diagonal")]
    ['symmetry', 'diagonal_variable']
    """
    lines = []
    sym = tidy(_symmetric(G, S))
    if sym != G:
        lines.append((SYMMETRY.key, sym))
    rule = SYMMETRIC_VARIABLE if structure == "symmetric" else DIAGONAL_VARIABLE
    lines.append((rule.key, project(sym, S, structure)))
    return lines


def scalar_out_of_trace(t: Trace, lam: sympy.Symbol) -> Basic:
    """tr(M) = dλ · tr(M at dλ = 1), for M linear in the scalar differential dλ (and in no other)."""
    dlam = ScalarDifferential(lam)
    if not isinstance(t, Trace) or not t.has(dlam):
        return t
    return sympy.Mul(dlam, Trace(tidy(t.arg.xreplace({dlam: sympy.Integer(1)}))), evaluate=False)


def scalar_coefficient(df: Basic, lam: sympy.Symbol) -> Basic:
    """g in df = g dλ, or a RuntimeError when df is not of that form."""
    dlam = ScalarDifferential(lam)
    g = sympy.expand(df, deep=False, mul=True, power_exp=False, power_base=False, log=False)
    parts = []
    for term in sympy.Add.make_args(g):
        factors = sympy.Mul.make_args(term)
        rest = [a for a in factors if a != dlam]
        if len(factors) - len(rest) != 1 or any(has_differential(a) for a in rest):
            raise RuntimeError(f"could not bring the term {term} into the form g dλ")
        parts.append(sympy.Mul(*rest))
    return sympy.Add(*parts)
