"""Trace identities as named rewrites of one trace ``tr(M)``, one record each (``derive.rules.Rule``).

Each rule takes a ``Trace`` whose argument is linear in one differential and
returns the rewritten scalar, or its input unchanged when it does not apply
(the style of SymPy's ``strategies``).  ``TRACE_RULES`` lists them in the order
the engine tries them; the first that changes the equation makes a step.
"""
from __future__ import annotations

import sympy
from sympy import Basic, Eq, Identity, MatAdd, MatMul, MatrixExpr, OneMatrix, Trace, Transpose

from derive.differential import MatrixDifferential, ScalarDifferential, has_differential
from derive.laws import F, Gradient, Iff, Laws, matrices, scalars
from derive.rules import Rule
from derive.simplify import ones_multiple, scale, split_coeff, transpose
from sympy.matrices.expressions.hadamard import HadamardProduct

__all__ = [
    "READ_OFF",
    "TRACE_RULES",
    "distribute",
    "factors",
    "read_off",
    "trace_cyclic",
    "trace_hadamard",
    "trace_linearity",
    "trace_transpose",
    "transpose_product",
]


def factors(M: MatrixExpr) -> tuple[sympy.Expr, list[MatrixExpr]]:
    """M = c · F₁F₂…Fₖ, flattened."""
    c, core = split_coeff(M)
    return c, list(core.args) if isinstance(core, MatMul) else [core]


def _product(c: sympy.Expr, mats: list[MatrixExpr]) -> MatrixExpr:
    return scale(c, mats[0] if len(mats) == 1 else MatMul(*mats))


def _diff_index(mats: list[MatrixExpr]) -> int:
    hits = [i for i, m in enumerate(mats) if has_differential(m)]
    return hits[0] if len(hits) == 1 else -1


def _push_transpose(e: Basic) -> Basic:
    """(AB)ᵀ = BᵀAᵀ, (A + B)ᵀ = Aᵀ + Bᵀ, (A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ, applied where a differential sits below."""
    if not isinstance(e, MatrixExpr) or not has_differential(e):
        return e
    if isinstance(e, Transpose):
        a = e.arg
        if isinstance(a, Transpose):
            return _push_transpose(a.arg)
        if isinstance(a, MatMul):
            c, mats = factors(a)
            return _product(c, [_push_transpose(Transpose(m)) for m in reversed(mats)])
        if isinstance(a, (MatAdd, HadamardProduct)):
            return type(a)(*[_push_transpose(Transpose(x)) for x in a.args])
        return e
    return e.func(*[_push_transpose(a) for a in e.args])


def transpose_product(t: Trace) -> Basic:
    """Push transposes through products, sums and ⊙ down to the differential."""
    return Trace(_push_transpose(t.arg))


def _linear_terms(M: MatrixExpr) -> list[MatrixExpr]:
    """M, linear in a differential, as a list of terms with no sum around the differential."""
    if isinstance(M, MatAdd):
        return [t for a in M.args if has_differential(a) for t in _linear_terms(a)]
    if isinstance(M, (MatMul, HadamardProduct)):
        i = next(i for i, a in enumerate(M.args) if has_differential(a))
        return [type(M)(*M.args[:i], t, *M.args[i + 1:]) for t in _linear_terms(M.args[i])]
    if isinstance(M, Transpose):
        return [Transpose(t) for t in _linear_terms(M.arg)]
    return [M]


def distribute(t: Trace) -> Basic:
    """A(B + C)D = ABD + ACD where the sum holds the differential."""
    terms = _linear_terms(t.arg)
    if len(terms) == 1 and not isinstance(t.arg, MatAdd):
        return Trace(terms[0]) if terms[0] != t.arg else t
    return Trace(MatAdd(*terms)) if len(terms) > 1 else Trace(terms[0])


def trace_linearity(t: Trace) -> Basic:
    """tr(A + B) = tr A + tr B, and tr(cA) = c tr A for a sum or a scalar that holds the differential."""
    c, core = split_coeff(t.arg)
    if has_differential(c) or c.could_extract_minus_sign():
        return c * Trace(core)
    if isinstance(t.arg, MatAdd):
        parts = []
        for a in t.arg.args:
            c, core = split_coeff(a)
            parts.append(c * Trace(core))
        return sympy.Add(*parts)
    return t


def trace_transpose(t: Trace) -> Basic:
    """tr(M) = tr(Mᵀ) when the factor holding the differential is transposed: tr(P Dᵀ Q) = tr(Qᵀ D Pᵀ)."""
    c, mats = factors(t.arg)
    i = _diff_index(mats)
    if i < 0 or not isinstance(mats[i], Transpose):
        return t
    return Trace(_product(c, [transpose(m) for m in reversed(mats)]))


def trace_cyclic(t: Trace) -> Basic:
    """tr(A dX B) = tr(B A dX): move the factor holding the differential to the end."""
    c, mats = factors(t.arg)
    i = _diff_index(mats)
    if i < 0 or i == len(mats) - 1:
        return t
    return Trace(_product(c, mats[i + 1:] + mats[:i + 1]))


def trace_hadamard(t: Trace) -> Basic:
    """tr(Rᵀ(A ⊙ E)) = tr((R ⊙ A)ᵀ E) where E holds the differential."""
    c, mats = factors(t.arg)
    if _diff_index(mats) != len(mats) - 1 or not isinstance(mats[-1], HadamardProduct):
        return t
    had = mats[-1]
    j = next(j for j, a in enumerate(had.args) if has_differential(a))
    rest = [a for k, a in enumerate(had.args) if k != j]
    left = mats[:-1]
    R = transpose(left[0] if len(left) == 1 else MatMul(*left)) if left else Identity(had.shape[0])
    rc, Rcore = split_coeff(R)
    flat = [x for a in (Rcore, *rest) for x in (a.args if isinstance(a, HadamardProduct) else (a,))]
    kept = []
    for x in flat:  # scalars out of ⊙, and 𝟏 ⊙ A = A
        if (ones := ones_multiple(x)) is not None:
            rc *= ones
        else:
            xc, x = split_coeff(x)
            rc *= xc
            kept.append(x)
    weight = HadamardProduct(*kept) if len(kept) > 1 else kept[0] if kept else OneMatrix(*had.shape)
    inner = had.args[j]
    inner_c, inner_mats = factors(inner)
    return Trace(_product(c * rc * inner_c, [Transpose(weight), *inner_mats]))


# --- the records: key, law, names, function ---------------------------------------------------------

_A, _B, _C, _D, _G, _X = matrices("A B C D G X")
(_c,) = scalars("c")
_dX = MatrixDifferential(_X)

DISTRIBUTE = Rule("distribute",
                  Eq(MatMul(_A, MatAdd(_B, _C), _D), MatAdd(MatMul(_A, _B, _D), MatMul(_A, _C, _D)), evaluate=False),
                  {"en": "distribute", "zh": "分配律"}, distribute)
TRACE_LINEARITY = Rule("trace_linearity",
                       Laws(Eq(Trace(MatAdd(_A, _B)), sympy.Add(Trace(_A), Trace(_B), evaluate=False), evaluate=False),
                            Eq(Trace(MatMul(_c, _A)), sympy.Mul(_c, Trace(_A), evaluate=False), evaluate=False)),
                       {"en": "linearity of the trace", "zh": "迹的线性"}, trace_linearity)
TRACE_TRANSPOSE = Rule("trace_transpose", Eq(Trace(Transpose(_A)), Trace(_A), evaluate=False),
                       {"en": "trace of a transpose", "zh": "转置的迹不变"}, trace_transpose)
TRANSPOSE_PRODUCT = Rule("transpose_product",
                         Eq(Transpose(MatMul(_A, _B)), MatMul(Transpose(_B), Transpose(_A)), evaluate=False),
                         {"en": "transpose of a product", "zh": "乘积的转置"}, transpose_product)
TRACE_HADAMARD = Rule("trace_hadamard",
                      Eq(Trace(MatMul(Transpose(_A), HadamardProduct(_B, _C))),
                         Trace(MatMul(Transpose(HadamardProduct(_A, _B)), _C)), evaluate=False),
                      {"en": "trace and Hadamard product", "zh": "迹与逐元素乘积"}, trace_hadamard)
TRACE_CYCLIC = Rule("trace_cyclic", Eq(Trace(MatMul(_A, _B, _C)), Trace(MatMul(_C, _A, _B)), evaluate=False),
                    {"en": "cyclic property of the trace", "zh": "迹的循环性质"}, trace_cyclic)

# Tried in this order; each application that changes df is one step.
TRACE_RULES: tuple[Rule, ...] = (
    DISTRIBUTE, TRACE_LINEARITY, TRACE_TRANSPOSE, TRANSPOSE_PRODUCT, TRACE_HADAMARD, TRACE_CYCLIC,
)


def read_off(t: Trace) -> MatrixExpr | None:
    """G for a term tr(R dX) (so df = tr(Gᵀ dX) with G = Rᵀ), or None if not in that form."""
    c, mats = factors(t.arg)
    if not isinstance(mats[-1], MatrixDifferential) or any(has_differential(m) for m in mats[:-1]):
        return None
    left = mats[:-1]
    if not left:
        return scale(c, Identity(mats[-1].shape[0]))
    return scale(c, transpose(left[0] if len(left) == 1 else MatMul(*left)))


READ_OFF = Rule("read_off",
                Iff(Eq(ScalarDifferential(F), Trace(MatMul(Transpose(_G), _dX)), evaluate=False),
                    Eq(Gradient(F, _X), _G, evaluate=False)),
                {"en": "read off the gradient", "zh": "读出导数"}, read_off)
