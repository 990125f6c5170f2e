"""Jacobians, Hessians and Hessian-vector products by differentials (Magnus & Neudecker).

* :func:`jacobian`: dF expanded by the rules of ``derive.differential``, vectorized
  (vec(AdXB) = (Bᵀ ⊗ A) vec dX, vec(dXᵀ) = K vec dX, vec(W ⊙ dX) = diag(vec W) vec dX), tidied by
  the Kronecker identities, and read off: d vec F = J d vec X ⇒ ∂ vec F/∂(vec X)ᵀ = J.  The layout
  is the numerator layout: J has one row per entry of F (for columns, ∂(Ax)/∂xᵀ = A).
* :func:`hessian`: the gradient G = ∂f/∂X (``derive.engine``), then the Jacobian of G: H = ∂ vec G/∂(vec X)ᵀ,
  the symmetric matrix of the second identification theorem d²f = (d vec X)ᵀ H d vec X.
* :func:`hvp`: d(∂f/∂X) with dX = V held constant, a matrix of the shape of X that never forms H.

Every result is a :class:`Derivation` whose steps show each rule, rendered like any other.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Basic, MatrixExpr, MatrixSymbol

from derive.differential import MatrixDifferential, expand_once, substitute
from derive.dims import shape_text
from derive.engine import Assumption, _bounded, _walk_check, derivation
from derive.fold import NAME_SOFTMAX, Softmax, name_softmax
from derive.kron_rules import (
    HVP_DIRECTION, KRON_SIMPLIFY, READ_OFF_HESSIAN, READ_OFF_JACOBIAN, VECTORIZE, HessianSymbol, HessianVector,
    JacobianSymbol, NotVectorizable, jacobian_of, kron_simplify,
)
from derive.kronecker import Vec
from derive.limits import MAX_STEPS, LimitError
from derive.notation import in_notation
from derive.simplify import tidy
from derive.steps import DEFINITION, DIFFERENTIAL, F, Derivation, Gradient, Step

__all__ = ["SecondOrder", "hessian", "hvp", "jacobian"]


@dataclass(frozen=True)
class SecondOrder(Derivation):
    """A derivation whose result is a Jacobian, a Hessian or a Hessian-vector product; ``target`` is the
    symbol it finds (∂F/∂xᵀ, ∂²f/∂x∂xᵀ, ∇²f(X)[V])."""

    target: Basic | None = None


def _check_variable(X: object) -> MatrixSymbol:
    if not isinstance(X, MatrixSymbol):
        raise TypeError(f"the variable must be a sympy MatrixSymbol, got {type(X).__name__} {X!r}")
    return X


def _expand(start: Basic, lhs: Basic, X: MatrixSymbol, steps: list[Step]) -> Basic:
    """d(start) expanded by the differential rules, one step per rule (lhs = ``lhs``); 0 where ``start``
    does not depend on X (a gradient that is a constant matrix B, or 0)."""
    if not start.has(X):
        zero = sympy.ZeroMatrix(*start.shape)
        steps.append(Step(DIFFERENTIAL.key, lhs, zero))
        return zero
    e = MatrixDifferential(start)
    steps.append(Step(DIFFERENTIAL.key, lhs, e))
    wrt = frozenset({X})
    for _ in range(MAX_STEPS):
        out = expand_once(e, wrt)
        if out is None:
            return e
        rule, e = out
        steps.append(Step(rule.key, lhs, _bounded(e)))
    raise LimitError(f"the differential of {start} takes more than {MAX_STEPS} steps")


def _identify(dG: Basic, lhs_symbol: MatrixExpr, X: MatrixSymbol, steps: list[Step], function: Basic) -> MatrixExpr:
    """dG (linear in dX) → d vec G = J d vec X, tidied, and written with p = softmax(x) where exp(x)
    and its sum s = 𝟏ᵀexp(x) appear as exp(x)/s (unless ``function`` names something p); returns J."""
    try:
        J = jacobian_of(dG, X)
    except NotVectorizable as err:
        raise NotVectorizable(f"cannot bring d{lhs_symbol} into the form Σ A dX B: {err}") from None
    rows = dG.shape[0] * dG.shape[1]
    if J is None:
        J = sympy.ZeroMatrix(rows, X.shape[0] * X.shape[1])
    dvecG = MatrixDifferential(Vec(lhs_symbol)) if lhs_symbol.shape[1] != 1 else MatrixDifferential(lhs_symbol)
    dvecX = MatrixDifferential(Vec(X)) if X.shape[1] != 1 else MatrixDifferential(X)
    steps.append(Step(VECTORIZE.key, dvecG, sympy.MatMul(J, dvecX)))
    simple = kron_simplify(J)
    if simple != J:
        steps.append(Step(KRON_SIMPLIFY.key, dvecG, sympy.MatMul(simple, dvecX)))
    if simple.shape != (rows, X.shape[0] * X.shape[1]):
        raise RuntimeError(f"internal error: Jacobian of shape {simple.shape}, expected "
                           f"{rows}×{X.shape[0] * X.shape[1]}")
    if Softmax.symbol not in {s.name for s in function.atoms(MatrixSymbol)}:
        named = name_softmax(simple, X)
        if named != simple:
            steps.append(Step(NAME_SOFTMAX.key, dvecG, sympy.MatMul(named, dvecX)))
            return named
    return simple


def jacobian(F_: MatrixExpr, X: MatrixSymbol, name: str = "F") -> SecondOrder:
    """The derivation of J = ∂ vec F/∂(vec X)ᵀ (numerator layout) for a matrix-valued F.

    >>> from sympy import MatrixSymbol
    >>> A, x = MatrixSymbol("A", 3, 4), MatrixSymbol("x", 4, 1)
    >>> jacobian(A * x, x).result
    A
    >>> B, X = MatrixSymbol("B", 3, 2), MatrixSymbol("X", 4, 3)
    >>> jacobian(A * X * B, X).result
    Bᵀ ⊗ A
    """
    X = _check_variable(X)
    if not isinstance(F_, MatrixExpr):
        raise TypeError(f"F must be a matrix expression, got {type(F_).__name__} {F_}")
    if X not in F_.atoms(MatrixSymbol):
        raise ValueError(f"{X.name} does not appear in F = {F_}")
    _walk_check(F_)
    Fsym = MatrixSymbol(name, *F_.shape)
    steps = [Step(DEFINITION.key, Fsym, F_)]
    dF = _expand(F_, MatrixDifferential(Fsym), X, steps)
    J = _identify(dF, Fsym, X, steps, F_)
    target = JacobianSymbol(Fsym, X)
    steps.append(Step(READ_OFF_JACOBIAN.key, target, J))
    return SecondOrder(function=F_, wrt=X, steps=tuple(steps), result=in_notation(J), target=target)


def hessian(f: Basic, X: MatrixSymbol, assumptions: tuple[Assumption, ...] = ()) -> SecondOrder:
    """The derivation of the Hessian ∂²f/∂x∂xᵀ (for a matrix X, ∂²f/∂(vec X)∂(vec X)ᵀ): the gradient's
    derivation (with the facts in ``assumptions``, as ``derive.derivation`` takes them: rows of a label
    that sum to 1), then the Jacobian of the gradient.

    >>> from sympy import MatrixSymbol, MatMul
    >>> A, x = MatrixSymbol("A", 4, 4), MatrixSymbol("x", 4, 1)
    >>> hessian(MatMul(x.T, A, x), x).result
    A + Aᵀ
    """
    X = _check_variable(X)
    grad = derivation(f, X, assumptions)
    G = Gradient(F, X)
    steps = list(grad.steps)
    dG = _expand(grad.result, MatrixDifferential(G), X, steps)
    try:
        H = _identify(dG, G, X, steps, grad.function)
    except NotVectorizable as err:
        raise NotVectorizable(f"{err}; the Hessian-vector product derive.hvp(f, X, V) is always available") from None
    target = HessianSymbol(F, X)
    steps.append(Step(READ_OFF_HESSIAN.key, target, H))
    return SecondOrder(function=grad.function, wrt=X, steps=tuple(steps), result=in_notation(H), target=target)


def hvp(f: Basic, X: MatrixSymbol, V: MatrixExpr) -> SecondOrder:
    """The derivation of ∇²f(X)[V] = d(∂f/∂X) with dX = V held constant (the shape of X): the
    Hessian applied to V without forming it, so that ⟨U, ∇²f(X)[V]⟩ = d²f along U and V.

    >>> from sympy import MatrixSymbol, Trace
    >>> X, V = MatrixSymbol("X", 4, 3), MatrixSymbol("V", 4, 3)
    >>> hvp(Trace(X.T * X * X.T * X), X, V).result.shape
    (4, 3)
    """
    X = _check_variable(X)
    if not isinstance(V, MatrixExpr) or V.shape != X.shape:
        raise ValueError(f"the direction V must be a matrix of the shape of {X.name} ({shape_text(X.shape)}), "
                         f"got {V}" + (f" ({shape_text(V.shape)})" if isinstance(V, MatrixExpr) else ""))
    if V.has(X):
        raise ValueError(f"the direction V = {V} must not depend on {X.name}")
    grad = derivation(f, X)
    G = Gradient(F, X)
    steps = list(grad.steps)
    dG = _expand(grad.result, MatrixDifferential(G), X, steps)
    along = tidy(substitute(dG, {MatrixDifferential(X): V}))
    target = HessianVector(F, X, V)
    steps.append(Step(HVP_DIRECTION.key, target, along))
    return SecondOrder(function=grad.function, wrt=X, steps=tuple(steps), result=in_notation(along), target=target)
