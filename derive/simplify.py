"""Tidy a matrix expression into the form people write.

Scalars to the front, transposes pushed into products, no double transposes,
X⁻ᵀ for (X⁻¹)ᵀ, like terms combined, and a leading minus sign absorbed into a
difference: −2(Y − Ŷ) becomes 2(Ŷ − Y).  :func:`tidy` applies one rule per class
(:data:`TIDY_RULES`) bottom-up, with ``sympy.strategies``.  The two rewrites that are steps of
a derivation, "simplify the product" and "collect terms", are rule records here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy
from sympy import (
    Basic, Eq, Identity, Inverse, Lambda, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, OneMatrix, Trace,
    Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.strategies.traverse import bottom_up

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.laws import Laws, matrices, scalars
from derive.rules import Rule, by_class

__all__ = [
    "COLLECT",
    "SIMPLIFY_PRODUCT",
    "TIDY_RULES",
    "combine_like_terms",
    "negate",
    "ones_multiple",
    "simplify_product",
    "split_coeff",
    "term_count",
    "tidy",
    "tidy_hadamard",
    "tidy_hadamard_power",
    "tidy_product",
    "tidy_sum",
    "tidy_transpose",
    "transpose",
]


def split_coeff(e: MatrixExpr) -> tuple[sympy.Expr, MatrixExpr]:
    """(c, M) with e = c·M, nested products flattened and M carrying no scalar factor."""
    if isinstance(e, MatMul):
        coeff, mats = sympy.Integer(1), []
        for a in e.args:
            if not isinstance(a, MatrixExpr):
                coeff *= a
                continue
            c, M = split_coeff(a)
            coeff *= c
            mats.extend(M.args if isinstance(M, MatMul) else (M,))
        return coeff, (mats[0] if len(mats) == 1 else MatMul(*mats))
    return sympy.Integer(1), e


def scale(c: sympy.Expr, M: MatrixExpr) -> MatrixExpr:
    if c == 1:
        return M
    if c == 0:
        return ZeroMatrix(*M.shape)
    inner_c, inner = split_coeff(M)
    c = c * inner_c
    if c == 1:
        return inner
    args = inner.args if isinstance(inner, MatMul) else (inner,)
    return MatMul(c, *args)


def transpose(e: MatrixExpr) -> MatrixExpr:
    """eᵀ, pushed through products; sums and Hadamard products stay grouped as (…)ᵀ.

    >>> from sympy import MatrixSymbol
    >>> A, B = MatrixSymbol("A", 4, 3), MatrixSymbol("B", 3, 5)
    >>> transpose(2*A*B)
    2*B.T*A.T
    """
    if isinstance(e, Transpose):
        return e.arg
    if isinstance(e, MatMul):
        c, M = split_coeff(e)
        mats = M.args if isinstance(M, MatMul) else (M,)
        return scale(c, _matmul([transpose(a) for a in reversed(mats)]))
    if isinstance(e, (Identity, ZeroMatrix, OneMatrix)):
        return e.T
    if isinstance(e, Inverse):
        return Inverse(transpose(e.arg))
    if isinstance(e, MatPow):
        return MatPow(transpose(e.base), e.exp)
    return Transpose(e)


def _matmul(mats: list[MatrixExpr]) -> MatrixExpr:
    return mats[0] if len(mats) == 1 else MatMul(*mats)


def negate(e: MatrixExpr) -> MatrixExpr:
    """−e, cancelling a leading −1."""
    c, M = split_coeff(e)
    return scale(-c, M)


def _flip_difference(e: MatrixExpr) -> MatrixExpr | None:
    """−e rewritten by negating a difference inside a product, or None if there is none."""
    if isinstance(e, MatAdd):
        return MatAdd(*[negate(t) for t in e.args]).doit(deep=False)
    if isinstance(e, Transpose):
        inner = _flip_difference(e.arg)
        return None if inner is None else Transpose(inner)
    if isinstance(e, (MatMul, HadamardProduct)):
        for i, a in enumerate(e.args):
            if isinstance(a, MatrixExpr):
                flipped = _flip_difference(a)
                if flipped is not None:
                    return type(e)(*e.args[:i], flipped, *e.args[i + 1:])
    return None


def _absorb_sign(e: MatrixExpr) -> MatrixExpr:
    c, M = split_coeff(e)
    if c.could_extract_minus_sign():
        flipped = _flip_difference(M)
        if flipped is not None:
            return scale(-c, flipped)
    return e


def tidy_transpose(e: Transpose) -> MatrixExpr:
    """(AB)ᵀ = BᵀAᵀ, (A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ, Aᵀᵀ = A; a transposed sum is split only where that removes
    transposes: (bᵀXᵀ + cᵀ)ᵀ = Xb + c."""
    return _tidy_transpose(e.arg)


def tidy_product(e: MatMul) -> MatrixExpr:
    """Scalars to the front, I dropped, Aᵖ Aᵍ = Aᵖ⁺ᵍ, a leading minus absorbed into a difference."""
    return _tidy_matmul(list(e.args))


def tidy_hadamard(e: HadamardProduct) -> MatrixExpr:
    """Scalars out of ⊙, 𝟏 ⊙ A = A, A^∘p ⊙ A^∘q = A^∘(p+q), a leading minus absorbed into a difference."""
    return _tidy_hadamard(list(e.args))


def tidy_sum(e: MatAdd) -> MatrixExpr:
    """Like terms combined; PS + QS = (P + Q)S where the shared S holds a sum."""
    return _tidy_matadd(list(e.args))


def tidy_hadamard_power(e: HadamardPower) -> MatrixExpr:
    """A^∘1 = A; for an integer p, (A^∘q)^∘p = A^∘pq, and (a^∘q 𝟏ᵀ)^∘p = a𝟏ᵀ where pq = 1 (𝟏aᵀ likewise:
    the power undone inside a repeated column or row; other powers of one stay whole, as a stage names them).

    >>> from sympy import MatrixSymbol
    >>> a = MatrixSymbol("a", 4, 1)
    >>> tidy_hadamard_power(HadamardPower(MatMul(HadamardPower(a, -1), OneMatrix(1, 3)), -1)).args
    (a, 1)
    """
    if e.exp == 1:
        return e.base
    if not e.exp.is_integer:
        return e
    if isinstance(e.base, HadamardPower):
        return tidy_hadamard_power(HadamardPower(e.base.base, e.base.exp * e.exp))
    if isinstance(e.base, MatMul) and len(e.base.args) == 2:
        left, right = e.base.args
        if isinstance(right, OneMatrix) and _is_one(right.shape[0]) and _undone(left, e.exp):
            return MatMul(left.base, right)
        if isinstance(left, OneMatrix) and _is_one(left.shape[1]) and _undone(right, e.exp):
            return MatMul(left, right.base)
    return e


def _undone(a: MatrixExpr, p: sympy.Expr) -> bool:
    """a is a Hadamard power that the power p undoes."""
    return isinstance(a, HadamardPower) and a.exp * p == 1


def _is_one(d: sympy.Expr) -> bool:
    return d == 1


def _tidy_leaf(e: Basic) -> bool:
    # matrices and scalars are tidied inside; the rest (names, tuples, numbers) are left as they are
    return not isinstance(e, Basic) or not e.args or not isinstance(e, (MatrixExpr, sympy.Expr))


# bottom_up rebuilds a node from its tidied arguments with its class's constructor (``func``), as
# SymPy would, and then applies the rule of the node's class
_TIDY_TREE = {"op": lambda e: e.func, "new": lambda func, *args: func(*args),
              "leaf": _tidy_leaf, "children": lambda e: e.args}

TIDY_RULES: dict[type, Callable[[Any], MatrixExpr]] = {
    Transpose: tidy_transpose,
    MatMul: tidy_product,
    HadamardProduct: tidy_hadamard,
    MatAdd: tidy_sum,
    HadamardPower: tidy_hadamard_power,
}
"""The rule for each class; a node of another class is only rebuilt from its tidied arguments."""

_tidy = bottom_up(by_class(TIDY_RULES), fns=_TIDY_TREE)


def tidy(e: Basic) -> Basic:
    """The tidy form of ``e``: the rule of each node's class (:data:`TIDY_RULES`), bottom-up
    (SymPy's doit is not used, so σ(h) stays σ(h)).

    >>> from sympy import MatrixSymbol
    >>> Y, P = MatrixSymbol("Y", 4, 2), MatrixSymbol("Ypred", 4, 2)
    >>> from sympy import MatMul
    >>> tidy(MatMul(-2, Y - P))
    2*(-Y + Ypred)
    """
    return _tidy(e)


def _tidy_transpose(a: MatrixExpr) -> MatrixExpr:
    if isinstance(a, HadamardProduct):
        return _tidy_hadamard([_tidy_transpose(x) for x in a.args])
    if isinstance(a, MatAdd):
        pushed = [_tidy_transpose(t) for t in a.args]
        # (A + B)ᵀ stays grouped unless pushing it in removes transposes: (bᵀXᵀ + cᵀ)ᵀ = Xb + c
        if sum(_transposes(t) for t in pushed) < sum(_transposes(t) for t in a.args):
            return _tidy_matadd(pushed)
        return Transpose(a)
    if isinstance(a, MatMul):
        c, M = split_coeff(a)
        mats = M.args if isinstance(M, MatMul) else (M,)
        return _tidy_matmul([c, *[_tidy_transpose(x) for x in reversed(mats)]])
    return transpose(a)


def _tidy_matmul(args: list[Basic]) -> MatrixExpr:
    coeff, core = split_coeff(MatMul(*args))
    mats = list(core.args) if isinstance(core, MatMul) else [core]
    shape = (mats[0].shape[0], mats[-1].shape[1])
    if coeff == 0 or any(isinstance(m, ZeroMatrix) for m in mats):
        return ZeroMatrix(*shape)
    kept = _merge_powers([m for m in mats if not isinstance(m, Identity)]) or [Identity(shape[0])]
    return _absorb_sign(scale(coeff, _matmul(kept)))


def _transposes(e: Basic) -> int:
    return sum(1 for x in sympy.preorder_traversal(e) if isinstance(x, Transpose))


def _base_exp(m: MatrixExpr) -> tuple[MatrixExpr, sympy.Expr]:
    if isinstance(m, MatPow):
        return m.base, m.exp
    if isinstance(m, Inverse):
        return m.arg, sympy.Integer(-1)
    return m, sympy.Integer(1)


def _power_of(base: MatrixExpr, p: sympy.Expr) -> list[MatrixExpr]:
    if p == 0:
        return []
    if p == 1:
        return [base]
    if p == -1:
        return [base.arg] if isinstance(base, Inverse) else [Inverse(base)]
    return [MatPow(base, p)]


def simplify_product(e: MatrixExpr) -> MatrixExpr:
    """A product with powers of the same matrix merged and identity factors dropped; nothing else changes.

    >>> from sympy import MatrixSymbol
    >>> X, A = MatrixSymbol("X", 3, 3), MatrixSymbol("A", 3, 3)
    >>> simplify_product(MatMul(2, A, Inverse(X), Inverse(Inverse(X)), Identity(3), X))
    2*A*X
    """
    c, mats = split_coeff(e)
    mats = list(mats.args) if isinstance(mats, MatMul) else [mats]
    kept = _merge_powers([m for m in mats if not isinstance(m, Identity)]) or [Identity(e.shape[0])]
    return scale(c, _matmul(kept))


def _merge_powers(mats: list[MatrixExpr]) -> list[MatrixExpr]:
    """Aᵖ Aᵍ = Aᵖ⁺ᵍ for neighbours with the same base: X Xᵀ stays, Xᵀ Xᵀ = (Xᵀ)², X⁻¹ X = I."""
    out: list[MatrixExpr] = []
    for m in mats:
        if isinstance(m, Inverse) and isinstance(m.arg, Inverse):
            m = m.arg.arg  # (X⁻¹)⁻¹ = X
        if out:
            b1, p1 = _base_exp(out[-1])
            b2, p2 = _base_exp(m)
            if b1 == b2 and b1.is_square:
                out.pop()
                out.extend(_power_of(b1, p1 + p2))
                continue
        out.append(m)
    return out


def _tidy_hadamard(args: list[MatrixExpr]) -> MatrixExpr:
    coeff = sympy.Integer(1)
    factors: list[MatrixExpr] = []
    for a in args:
        c, M = split_coeff(a)
        coeff *= c
        factors.extend(M.args if isinstance(M, HadamardProduct) else (M,))
    if coeff == 0 or any(isinstance(f, ZeroMatrix) for f in factors):
        return ZeroMatrix(*args[0].shape)
    kept = []
    for f in _merge_hadamard_powers(factors):
        ones = ones_multiple(f)
        if ones is None:
            kept.append(f)
        else:
            coeff *= ones  # 𝟏 ⊙ A = A: a matrix of ones is the identity of ⊙
    kept = kept or [OneMatrix(*args[0].shape)]
    core = kept[0] if len(kept) == 1 else HadamardProduct(*kept)
    return _absorb_sign(scale(coeff, core))


def ones_multiple(e: MatrixExpr) -> sympy.Expr | None:
    """c when ``e`` is c times a matrix of ones (𝟏, 𝟏ₙ𝟏_dᵀ = 𝟏, 𝟏ₙᵀ𝟏ₙ = n), else None.

    >>> from sympy import Symbol
    >>> n, d = Symbol("n"), Symbol("d")
    >>> ones_multiple(MatMul(OneMatrix(n, 1), OneMatrix(1, d))), ones_multiple(MatMul(OneMatrix(1, n), OneMatrix(n, 1)))
    (1, n)
    >>> ones_multiple(MatMul(Transpose(OneMatrix(n, 1)), OneMatrix(n, 1))), ones_multiple(Identity(3)) is None
    (n, True)
    """
    c, M = split_coeff(e)
    mats = M.args if isinstance(M, MatMul) else (M,)
    if not all(isinstance(m.arg if isinstance(m, Transpose) else m, OneMatrix) for m in mats):
        return None
    for m in mats[:-1]:
        c *= m.shape[1]  # 𝟏_{a×b}𝟏_{b×c} = b·𝟏_{a×c}
    return c


def _combine(terms_in: list[MatrixExpr]) -> list[MatrixExpr]:
    terms: dict[MatrixExpr, sympy.Expr] = {}
    for t in terms_in:
        if isinstance(t, ZeroMatrix):
            continue
        c, M = split_coeff(t)
        terms[M] = terms.get(M, 0) + c
    return [scale(c, M) for M, c in terms.items() if c != 0]


def _hadamard_base(f: MatrixExpr) -> tuple[MatrixExpr, sympy.Expr]:
    return (f.base, f.exp) if isinstance(f, HadamardPower) else (f, sympy.Integer(1))


def _spread_hadamard_powers(factors: list[MatrixExpr]) -> list[MatrixExpr]:
    """(A ⊙ B)^∘p → A^∘p ⊙ B^∘p for an integer p where A or B stands beside it, so that it can cancel
    (softmax ⊙ softmax^∘−1, with the softmax's own factors beside its power); ``factors`` otherwise."""
    bases = {_hadamard_base(f)[0] for f in factors}
    out: list[MatrixExpr] = []
    for f in factors:
        if (isinstance(f, HadamardPower) and isinstance(f.base, HadamardProduct) and f.exp.is_integer
                and all(split_coeff(g)[0] == 1 for g in f.base.args)
                and any(_hadamard_base(g)[0] in bases for g in f.base.args)):
            for g in f.base.args:
                base, p = _hadamard_base(g)
                out.append(HadamardPower(base, p * f.exp))
        else:
            out.append(f)
    return out


def _merge_hadamard_powers(factors: list[MatrixExpr]) -> list[MatrixExpr]:
    """A^∘p ⊙ A^∘q = A^∘(p+q), in the place of the first; A^∘−1 ⊙ A drops out (also A ⊙ B ⊙ (A ⊙ B)^∘−1)."""
    exps: dict[MatrixExpr, sympy.Expr] = {}
    order: list[MatrixExpr] = []
    for f in _spread_hadamard_powers(factors):
        base, p = _hadamard_base(f)
        if base not in exps:
            order.append(base)
            exps[base] = sympy.Integer(0)
        exps[base] += p
    out = []
    for base in order:
        p = exps[base]
        if p != 0:
            out.append(base if p == 1 else tidy_hadamard_power(HadamardPower(base, p)))
    return out


def _tidy_matadd(args: list[MatrixExpr]) -> MatrixExpr:
    # (Ŷ − Y) + (Ŷ − Y) is 2(Ŷ − Y): combine whole sums first, and flatten only if that leaves several terms
    kept = _combine(list(args))
    if len(kept) > 1:
        kept = _combine([t for a in kept for t in (a.args if isinstance(a, MatAdd) else (a,))])
    if not kept:
        return ZeroMatrix(*args[0].shape)
    if len(kept) == 1:
        return kept[0]
    if len(kept) == 2:
        factored = _factor_common_sum(*kept)
        if factored is not None:
            return factored
    return MatAdd(*kept).doit(deep=False)


def _factors(e: MatrixExpr) -> tuple[sympy.Expr, list[MatrixExpr]]:
    c, M = split_coeff(e)
    return c, list(M.args) if isinstance(M, MatMul) else [M]


def _factor_common_sum(a: MatrixExpr, b: MatrixExpr) -> MatrixExpr | None:
    """PS + QS = (P + Q)S (and SP + SQ = S(P + Q)) when the shared S holds a sum, as the Cookbook writes
    (D + Dᵀ)(Xb + c)bᵀ; products without a shared sum stay expanded (BX + BᵀX)."""
    (ca, fa), (cb, fb) = _factors(a), _factors(b)
    for suffix in (True, False):
        n = 0
        while n < min(len(fa), len(fb)) - 0 and (fa[-1 - n] == fb[-1 - n] if suffix else fa[n] == fb[n]):
            n += 1
        if n == 0 or n >= min(len(fa), len(fb)):
            continue
        shared = fa[len(fa) - n:] if suffix else fa[:n]
        if not any(isinstance(x, MatAdd) for x in shared):
            continue
        ra = fa[:len(fa) - n] if suffix else fa[n:]
        rb = fb[:len(fb) - n] if suffix else fb[n:]
        inner = _tidy_matadd([scale(ca, _matmul(ra)), scale(cb, _matmul(rb))])
        return _tidy_matmul([inner, *shared] if suffix else [*shared, inner])
    return None


_A, _B, _X = matrices("A B X")
_a, _b, _p, _q, _t = scalars("a b p q t")
_dX = MatrixDifferential(_X)

SIMPLIFY_PRODUCT = Rule("simplify_product",
                        Laws(Eq(MatMul(MatPow(_A, _p), MatPow(_A, _q)), MatPow(_A, _p + _q), evaluate=False),
                             Eq(Inverse(Inverse(_A)), _A, evaluate=False),
                             Eq(MatMul(_A, Identity(_A.shape[0])), _A, evaluate=False)),
                        {"en": "simplify the product", "zh": "化简乘积"}, simplify_product)


# --- like terms of scalar sums: the step "collect terms" ---------------------------------------------

def _scalar_args(e: Basic) -> tuple[Basic, ...]:
    """The arguments of ``e`` that can hold a scalar sum: all of a scalar's, a product's coefficients."""
    if isinstance(e, (MatrixSymbol, Lambda, MatrixDifferential, ScalarDifferential)):
        return ()
    if isinstance(e, MatrixExpr):
        return tuple(a for a in e.args if not isinstance(a, MatrixExpr)) if isinstance(e, MatMul) else ()
    return e.args


def _is_scalar_sum(e: Basic) -> bool:
    return isinstance(e, sympy.Add) and not isinstance(e, MatrixExpr)


def combine_like_terms(e: Basic) -> Basic:
    """``e`` with every scalar sum evaluated (like terms combined): tr A + tr A = 2 tr A.

    >>> from sympy import MatrixSymbol
    >>> A = MatrixSymbol("A", 2, 2)
    >>> combine_like_terms(sympy.Add(Trace(A), Trace(A), evaluate=False))
    2*Trace(A)
    """
    inner = _scalar_args(e)
    if not inner:
        return e
    new = {a: b for a in inner if (b := combine_like_terms(a)) is not a}
    if _is_scalar_sum(e):
        return sympy.Add(*[new.get(a, a) for a in e.args])
    return e.func(*[new.get(a, a) for a in e.args]) if new else e


def term_count(e: Basic) -> int:
    """How many terms the scalar sums of ``e`` have together."""
    return (len(e.args) if _is_scalar_sum(e) else 0) + sum(term_count(a) for a in _scalar_args(e))


COLLECT = Rule("collect",
               Laws(Eq(sympy.Add(sympy.Mul(_a, _t, evaluate=False), sympy.Mul(_b, _t, evaluate=False),
                                 evaluate=False),
                       sympy.Mul(sympy.Add(_a, _b, evaluate=False), _t, evaluate=False), evaluate=False),
                    Eq(sympy.Add(Trace(MatMul(Transpose(_A), _dX)), Trace(MatMul(Transpose(_B), _dX)),
                                 evaluate=False),
                       Trace(MatMul(Transpose(MatAdd(_A, _B)), _dX)), evaluate=False)),
               {"en": "collect terms", "zh": "合并同类项"}, combine_like_terms)
