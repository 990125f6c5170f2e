"""The rules that take a differential dF to d vec F = J d vec X, and the symbols of what they find.

Magnus & Neudecker's identification theorems: d vec F = J d vec X gives the Jacobian
∂ vec F/∂(vec X)ᵀ = J (numerator layout: one row per entry of F); for a scalar f and a column x,
d(∂f/∂x) = H dx gives the Hessian H = ∂²f/∂x∂xᵀ (symmetric).  :func:`vectorize` is the rule that
applies vec to a differential linear in dX (vec(AXB) = (Bᵀ ⊗ A) vec X, vec(Xᵀ) = K vec X,
vec(W ⊙ X) = diag(vec W) vec X); :func:`kron_simplify` the identities that tidy the result
(I₁ ⊗ A = A, (A ⊗ B)(C ⊗ D) = AC ⊗ BD, (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ, diag(v)𝟏 = v …).
"""
from __future__ import annotations

import sympy
from sympy import (
    Basic, Eq, Identity, MatAdd, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from derive.differential import MatrixDifferential, has_differential
from derive.kronecker import Commutation, Diag, Vec
from derive.laws import Iff, Laws, matrices
from derive.rules import Rule

__all__ = [
    "HVP_DIRECTION",
    "KRON_RULES",
    "KRON_SIMPLIFY",
    "READ_OFF_HESSIAN",
    "READ_OFF_JACOBIAN",
    "VECTORIZE",
    "HessianSymbol",
    "HessianVector",
    "JacobianSymbol",
    "NotVectorizable",
    "kron_simplify",
    "vectorize",
]


class NotVectorizable(ValueError):
    """A differential that is not a sum of terms A dX B, A dXᵀ B, W ⊙ (…) or tr(…) C."""


class JacobianSymbol(MatrixExpr):
    """∂ vec F/∂(vec X)ᵀ (∂F/∂xᵀ for a column F and a column x): one row per entry of F."""

    def __new__(cls, F: MatrixExpr, X: MatrixSymbol):
        return Basic.__new__(cls, F, X)

    @property
    def shape(self):
        F, X = self.args
        return (F.shape[0] * F.shape[1], X.shape[0] * X.shape[1])

    def doit(self, **hints):
        return self

    def _columns(self) -> bool:
        return all(a.shape[1] == 1 for a in self.args)

    def _sympystr(self, printer) -> str:
        F, X = (printer._print(a) for a in self.args)
        if self._columns():
            return f"∂{F}/∂{X}ᵀ"
        return f"∂vec {F}/∂(vec {X})ᵀ"

    _tracegrad_text = _sympystr

    def _tracegrad_latex(self, printer) -> str:
        F, X = (printer._print(a) for a in self.args)
        if self._columns():
            return rf"\frac{{\partial {F}}}{{\partial {X}^T}}"
        return rf"\frac{{\partial \operatorname{{vec}} {F}}}{{\partial (\operatorname{{vec}} {X})^T}}"

    def _tracegrad_mathml(self, printer):
        F, X = self.args
        vec = [] if self._columns() else [printer._mi("vec", upright=True)]
        top = printer._row(printer._mo("∂"), *vec, printer._print(F))
        var = printer._print(X) if self._columns() else printer._row(
            printer._mo("("), printer._mi("vec", upright=True), printer._print(X), printer._mo(")"))
        bottom = printer._row(printer._mo("∂"), printer._el("msup", var, printer._mi("T")))
        return printer._el("mfrac", top, bottom)


class HessianSymbol(MatrixExpr):
    """∂²f/∂x∂xᵀ (for a matrix X: ∂²f/∂(vec X)∂(vec X)ᵀ)."""

    def __new__(cls, f: Basic, X: MatrixSymbol):
        return Basic.__new__(cls, f, X)

    @property
    def shape(self):
        X = self.args[1]
        return (X.shape[0] * X.shape[1],) * 2

    def doit(self, **hints):
        return self

    def _var(self, printer, vec: str) -> str:
        X = self.args[1]
        return printer._print(X) if X.shape[1] == 1 else f"({vec} {printer._print(X)})"

    def _sympystr(self, printer) -> str:
        v = self._var(printer, "vec")
        return f"∂²{printer._print(self.args[0])}/∂{v}∂{v}ᵀ"

    _tracegrad_text = _sympystr

    def _tracegrad_latex(self, printer) -> str:
        v = self._var(printer, r"\operatorname{vec}")
        return rf"\frac{{\partial^2 {printer._print(self.args[0])}}}{{\partial {v}\,\partial {v}^T}}"

    def _tracegrad_mathml(self, printer):
        X = self.args[1]
        var = printer._print(X) if X.shape[1] == 1 else printer._row(
            printer._mo("("), printer._mi("vec", upright=True), printer._print(X), printer._mo(")"))
        top = printer._row(printer._el("msup", printer._mo("∂"), printer._el("mn", "2")), printer._print(self.args[0]))
        bottom = printer._row(printer._mo("∂"), var, printer._mo("∂"), printer._el("msup", var.cloneNode(True),
                                                                                    printer._mi("T")))
        return printer._el("mfrac", top, bottom)


class HessianVector(MatrixExpr):
    """H[V]: the Hessian of f at X applied to the direction V, d(∂f/∂X) with dX = V (shape of X)."""

    def __new__(cls, f: Basic, X: MatrixSymbol, V: MatrixExpr):
        return Basic.__new__(cls, f, X, V)

    @property
    def shape(self):
        return self.args[1].shape

    def doit(self, **hints):
        return self

    def _sympystr(self, printer) -> str:
        f, X, V = (printer._print(a) for a in self.args)
        return f"∇²{f}({X})[{V}]"

    _tracegrad_text = _sympystr

    def _tracegrad_latex(self, printer) -> str:
        f, X, V = (printer._print(a) for a in self.args)
        return rf"\nabla^2 {f}({X})[{V}]"

    def _tracegrad_mathml(self, printer):
        f, X, V = (printer._print(a) for a in self.args)
        return printer._row(printer._el("msup", printer._mo("∇"), printer._el("mn", "2")), f,
                            printer._mo("("), X, printer._mo(")"), printer._mo("["), V, printer._mo("]"))


# --- vectorizing a differential ---------------------------------------------------------------------

def _product(mats: list[MatrixExpr], size: sympy.Expr) -> MatrixExpr:
    """The product of ``mats`` (I of ``size`` when there are none)."""
    if not mats:
        return Identity(size)
    return mats[0] if len(mats) == 1 else MatMul(*mats)


def _mm(*mats: MatrixExpr) -> MatrixExpr:
    """The product, without the identity that vec dX itself contributes (J of dX is I)."""
    kept = [m for m in mats if not isinstance(m, Identity)]
    return kept[0] if len(kept) == 1 else MatMul(*kept) if kept else mats[0]


def jacobian_of(e: Basic, X: MatrixSymbol) -> MatrixExpr | None:
    """J with vec(e) = J vec dX for a matrix ``e`` linear in dX (a row J for a scalar e); None when e
    holds no differential.  Raises :class:`NotVectorizable` for a form it does not know."""
    if not has_differential(e):
        return None
    if isinstance(e, MatrixDifferential):
        if e.arg != X:
            raise NotVectorizable(f"the differential d({e.arg}) is not of the variable {X}")
        return Identity(X.shape[0] * X.shape[1])
    if isinstance(e, (MatAdd, sympy.Add)):
        parts = [j for a in e.args if (j := jacobian_of(a, X)) is not None]
        return parts[0] if len(parts) == 1 else MatAdd(*parts)
    if isinstance(e, Transpose):
        p, q = e.arg.shape
        return _mm(Commutation(p, q), jacobian_of(e.arg, X))
    if isinstance(e, (MatMul, sympy.Mul)):
        return _product_jacobian(e, X)
    if isinstance(e, HadamardProduct):
        held = [a for a in e.args if has_differential(a)]
        if len(held) != 1:
            raise NotVectorizable(f"{e} is not linear in d{X}")
        rest = [a for a in e.args if not has_differential(a)]
        W = rest[0] if len(rest) == 1 else HadamardProduct(*rest)
        return _mm(Diag(Vec(W)), jacobian_of(held[0], X))
    if isinstance(e, Trace):
        return _mm(Transpose(Vec(Identity(e.arg.shape[0]))), jacobian_of(e.arg, X))
    if isinstance(e, MatrixElement) and e.parent.shape == (1, 1):
        return jacobian_of(e.parent, X)
    raise NotVectorizable(f"cannot vectorize {type(e).__name__} {e} (no vec rule for it)")


def _product_jacobian(e: Basic, X: MatrixSymbol) -> MatrixExpr:
    scalars = [a for a in e.args if not isinstance(a, MatrixExpr)]
    mats = [a for a in e.args if isinstance(a, MatrixExpr)]
    coeff = sympy.Mul(*[s for s in scalars if not has_differential(s)])
    held_s = [s for s in scalars if has_differential(s)]
    held_m = [i for i, m in enumerate(mats) if has_differential(m)]
    if len(held_s) + len(held_m) != 1:
        raise NotVectorizable(f"{e} is not linear in d{X}")
    if held_s:  # a scalar s(dX) times a constant matrix M: vec(sM) = vec(M) s
        js = jacobian_of(held_s[0], X)
        return _scaled(coeff, [Vec(_product(mats, 1)), js] if mats else [js])
    i = held_m[0]
    inner = mats[i]
    A = _product(mats[:i], inner.shape[0])
    B = _product(mats[i + 1:], inner.shape[1])
    if isinstance(inner, Diag):
        if B.shape[1] != 1:
            raise NotVectorizable(f"cannot vectorize {e}: diag(d…) times a matrix (a Khatri–Rao product)")
        # diag(u) w = w ⊙ u
        return _scaled(coeff, [m for m in (A if mats[:i] else None, jacobian_of(HadamardProduct(B, inner.arg), X))
                               if m is not None])
    K = KroneckerProduct(Transpose(B) if not isinstance(B, Identity) else B, A)
    Jin = jacobian_of(inner, X)
    return _scaled(coeff, [K] if isinstance(Jin, Identity) else [K, Jin])


def _scaled(coeff: sympy.Expr, mats: list[MatrixExpr]) -> MatrixExpr:
    """coeff · the product of ``mats`` (one factor alone is itself)."""
    if coeff == 1:
        return mats[0] if len(mats) == 1 else MatMul(*mats)
    return MatMul(coeff, *mats)


def vectorize(dF: MatrixExpr, X: MatrixSymbol) -> MatrixExpr:
    """dF (linear in dX) → J d vec X, J as the vec identities give it (before :func:`kron_simplify`).

    >>> A, B, X = MatrixSymbol("A", 2, 4), MatrixSymbol("B", 3, 5), MatrixSymbol("X", 4, 3)
    >>> vectorize(A * MatrixDifferential(X) * B, X)
    (KroneckerProduct(B.T, A))*d(vec(X))
    """
    J = jacobian_of(dF, X)
    if J is None:
        return ZeroMatrix(dF.shape[0] * dF.shape[1], 1)
    return MatMul(J, MatrixDifferential(Vec(X)))


# --- tidying Kronecker products --------------------------------------------------------------------

def _is_identity(e: Basic) -> bool:
    return isinstance(e, Identity) or (isinstance(e, MatrixExpr) and e.shape == (1, 1) and e == Identity(1))


def _kron(e: KroneckerProduct) -> MatrixExpr:
    args = [a for a in e.args if not (a.shape == (1, 1) and _is_identity(a))]
    if not args:
        return Identity(1)
    if all(isinstance(a, Identity) for a in args):
        return Identity(sympy.Mul(*[a.shape[0] for a in args]))
    return args[0] if len(args) == 1 else KroneckerProduct(*args)


def _vec(e: Vec) -> MatrixExpr:
    A = e.arg
    if A.shape[1] == 1:
        return A
    if A.shape[0] == 1:
        return _transpose(A)
    return e


def _transpose(A: MatrixExpr) -> MatrixExpr:
    from derive.simplify import transpose

    if isinstance(A, KroneckerProduct):
        return KroneckerProduct(*[_transpose(a) for a in A.args])
    if isinstance(A, (Diag, Identity)):
        return A
    if isinstance(A, Commutation):
        return Commutation(A.args[1], A.args[0])
    return transpose(A)


def _diag(e: Diag) -> MatrixExpr:
    v = e.arg
    if v.shape == (1, 1):
        return v
    if isinstance(v, OneMatrix):
        return Identity(v.shape[0])
    return e


def _commutation(e: Commutation) -> MatrixExpr:
    m, n = e.args
    return Identity(m * n) if m == 1 or n == 1 else e


def _matmul(e: MatMul) -> MatrixExpr:
    coeff, mats = e.as_coeff_matrices()
    out: list[MatrixExpr] = []
    for m in mats:
        if isinstance(m, Identity):
            continue
        if isinstance(m, MatMul):
            c, inner = m.as_coeff_matrices()
            coeff *= c
            out.extend(x for x in inner if not isinstance(x, Identity))
            continue
        prev = out[-1] if out else None
        if isinstance(prev, Diag) and isinstance(m, Diag):
            out[-1] = Diag(HadamardProduct(prev.arg, m.arg))  # diag(u)diag(v) = diag(u ⊙ v)
        elif isinstance(prev, Diag) and isinstance(m, OneMatrix) and m.shape[1] == 1:
            out[-1] = prev.arg  # diag(v)𝟏 = v
        elif isinstance(m, Diag) and isinstance(prev, OneMatrix) and prev.shape[0] == 1:
            out[-1] = _transpose(m.arg)  # 𝟏ᵀdiag(v) = vᵀ
        elif (isinstance(prev, KroneckerProduct) and isinstance(m, KroneckerProduct)
              and len(prev.args) == len(m.args) == 2
              and all(a.shape[1] == b.shape[0] for a, b in zip(prev.args, m.args))):
            out[-1] = KroneckerProduct(*[MatMul(a, b) for a, b in zip(prev.args, m.args)])  # mixed product
        else:
            out.append(m)
    if not out:
        return MatMul(coeff, Identity(e.shape[0])) if coeff != 1 else Identity(e.shape[0])
    if coeff == 1 and len(out) == 1:
        return out[0]
    return MatMul(*([] if coeff == 1 else [coeff]), *out)


def _hadamard_factored(terms: list[MatrixExpr]) -> MatrixExpr:
    """Σ cᵢ (C ⊙ Rᵢ) = C ⊙ Σ cᵢ Rᵢ for the factors C that every term shares; the sum that remains is
    evaluated (𝟏 − y + y = 𝟏), and 𝟏 ⊙ C = C."""
    from derive.simplify import scale, split_coeff, tidy

    split = []
    for t in terms:
        c, core = split_coeff(t)
        split.append((c, list(core.args) if isinstance(core, HadamardProduct) else [core]))
    common = [f for f in split[0][1] if all(f in fs for _, fs in split[1:])]
    if not common:
        return MatAdd(*terms)
    rest = []
    for c, fs in split:
        left = list(fs)
        for f in common:
            left.remove(f)
        core = HadamardProduct(*left) if len(left) > 1 else left[0] if left else OneMatrix(*terms[0].shape)
        rest.append(scale(c, core))
    return tidy(HadamardProduct(*common, MatAdd(*rest).doit()))


def _matadd(e: MatAdd) -> MatrixExpr:
    """P diag(a) Q + P diag(b) Q = P diag(a + b) Q (diag is linear)."""
    from derive.simplify import split_coeff

    groups: dict[tuple, list[MatrixExpr]] = {}
    others: list[MatrixExpr] = []
    for t in e.args:
        c, core = split_coeff(t)
        mats = list(core.args) if isinstance(core, MatMul) else [core]
        where = [i for i, m in enumerate(mats) if isinstance(m, Diag)]
        if len(where) != 1:
            others.append(t)
            continue
        i = where[0]
        groups.setdefault((tuple(mats[:i]), tuple(mats[i + 1:])), []).append(
            mats[i].arg if c == 1 else MatMul(c, mats[i].arg))
    if all(len(v) == 1 for v in groups.values()):
        return e
    terms = list(others)
    for (left, right), args in groups.items():
        inner = _hadamard_factored(args) if len(args) > 1 else args[0]
        terms.append(_scaled(1, [*left, Diag(inner), *right]))
    return terms[0] if len(terms) == 1 else MatAdd(*terms)


_SIMPLIFY = {KroneckerProduct: _kron, Vec: _vec, Diag: _diag, Commutation: _commutation, MatMul: _matmul,
             MatAdd: _matadd}


def _once(e: Basic) -> Basic:
    if not e.args or isinstance(e, (MatrixSymbol, sympy.Lambda, sympy.Symbol)):
        return e
    args = [_once(a) for a in e.args]
    if isinstance(e, Transpose):
        return _transpose(args[0])
    new = e if all(a is b for a, b in zip(args, e.args)) else e.func(*args)
    rule = next((_SIMPLIFY[c] for c in type(new).__mro__ if c in _SIMPLIFY), None)
    return rule(new) if rule is not None else new


def kron_simplify(e: Basic) -> Basic:
    """``e`` with the Kronecker and vec identities applied until nothing changes, then tidied.

    >>> A, x = MatrixSymbol("A", 3, 4), MatrixSymbol("x", 4, 1)
    >>> kron_simplify(MatMul(KroneckerProduct(Identity(1), A), Identity(4)))
    A
    """
    from derive.simplify import tidy

    for _ in range(50):
        new = _once(e)
        if new == e:
            break
        e = new
    return tidy(e)


# --- the records -----------------------------------------------------------------------------------

_A, _B, _C, _D, _X, _W, _J, _H, _V = matrices("A B C D X W J H V")
_dX = MatrixDifferential(_X)
_f, _F = sympy.Symbol("f"), MatrixSymbol("F", *_A.shape)
_n = _A.shape[0]
_v, _w = MatrixSymbol("v", _n, 1), MatrixSymbol("w", _n, 1)

VECTORIZE = Rule("vectorize",
                 Laws(Eq(Vec(MatMul(_A, _dX, _B)), MatMul(KroneckerProduct(Transpose(_B), _A), Vec(_dX)),
                         evaluate=False),
                      Eq(Vec(Transpose(_dX)), MatMul(Commutation(_n, _n), Vec(_dX)), evaluate=False),
                      Eq(Vec(HadamardProduct(_W, _dX)), MatMul(Diag(Vec(_W)), Vec(_dX)), evaluate=False)),
                 {"en": "vectorize", "zh": "向量化"})
KRON_SIMPLIFY = Rule("kron_simplify",
                     Laws(Eq(MatMul(KroneckerProduct(_A, _B), KroneckerProduct(_C, _D)),
                             KroneckerProduct(MatMul(_A, _C), MatMul(_B, _D)), evaluate=False),
                          Eq(Transpose(KroneckerProduct(_A, _B)), KroneckerProduct(Transpose(_A), Transpose(_B)),
                             evaluate=False),
                          Eq(KroneckerProduct(Identity(1), _A), _A, evaluate=False),
                          Eq(MatMul(Diag(_v), OneMatrix(_n, 1)), _v, evaluate=False),
                          Eq(MatMul(Diag(_v), Diag(_w)), Diag(HadamardProduct(_v, _w)), evaluate=False),
                          Eq(MatAdd(Diag(_v), Diag(_w)), Diag(MatAdd(_v, _w)), evaluate=False)),
                     {"en": "Kronecker product identities", "zh": "克罗内克积的恒等式"}, kron_simplify)
READ_OFF_JACOBIAN = Rule("read_off_jacobian",
                         Iff(Eq(MatrixDifferential(Vec(_F)), MatMul(_J, MatrixDifferential(Vec(_X))), evaluate=False),
                             Eq(JacobianSymbol(_F, _X), _J, evaluate=False)),
                         {"en": "read off the Jacobian (first identification theorem)",
                          "zh": "读出雅可比矩阵（第一识别定理）"})
READ_OFF_HESSIAN = Rule("read_off_hessian",
                        Iff(Eq(MatrixDifferential(Vec(MatrixSymbol("G", *_A.shape))),
                               MatMul(_H, MatrixDifferential(Vec(_X))), evaluate=False),
                            Eq(HessianSymbol(_f, _X), _H, evaluate=False)),
                        {"en": "read off the Hessian (second identification theorem)",
                         "zh": "读出黑塞矩阵（第二识别定理）"})
HVP_DIRECTION = Rule("hvp_direction", Eq(_dX, _V, evaluate=False),
                     {"en": "second differential along V: dX = V, held constant",
                      "zh": "沿 V 取二阶微分：dX = V（视为常量）"})

KRON_RULES: tuple[Rule, ...] = (VECTORIZE, KRON_SIMPLIFY, READ_OFF_JACOBIAN, READ_OFF_HESSIAN, HVP_DIRECTION)
"""The records of this module, in the order a document's list of rules shows them."""

