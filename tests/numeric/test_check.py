"""numeric.check_gradient with explicit gradient expressions (typed by hand)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from sympy import Inverse, MatrixSymbol, OneMatrix, Trace, log, Determinant
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

import numeric
from tests.oracle import d, k, n, random_arrays

X, A = MatrixSymbol("X", n, d), MatrixSymbol("A", n, d)
S = MatrixSymbol("S", n, n)
B = MatrixSymbol("B", d, k)


def test_correct_gradients_pass():
    rng = np.random.default_rng(0)
    vals = dict(zip([X, A, S, B], random_arrays([X, A, S, B], rng, spd=("S",))))
    # d tr(Xᵀ S X) = tr((S + Sᵀ) X)ᵀ dX ; d log det S = tr(S⁻¹ dS)
    assert numeric.check_gradient(Trace(X.T * S * X), X, vals, grad=S * X + S.T * X) < 1e-7
    assert numeric.check_gradient(log(Determinant(S)), S, vals, grad=Inverse(S).T) < 1e-6
    f = Trace(HadamardProduct(X, X).T * A)
    assert numeric.check_gradient(f, X, vals, grad=2 * HadamardProduct(X, A)) < 1e-7
    # several variables at once, values by name
    named = {s.name: v for s, v in vals.items()}
    assert numeric.check_gradient(Trace(X.T * A), [X, A], named, grad=[A, X]) < 1e-8


def test_wrong_gradients_fail():
    rng = np.random.default_rng(1)
    vals = dict(zip([X, S], random_arrays([X, S], rng, spd=("S",))))
    assert numeric.check_gradient(Trace(X.T * S * X), X, vals, grad=S * X) > 0.05
    assert numeric.check_gradient(Trace(X.T * S * X), X, vals, grad=2 * S.T * S * X) > 0.05


def test_errors():
    vals = {X: np.ones((4, 3))}
    with pytest.raises(ValueError, match="no value for A"):
        numeric.check_gradient(Trace(X.T * A), X, vals, grad=A)
    with pytest.raises(ValueError, match="2 gradient expressions for 1 variables"):
        numeric.check_gradient(Trace(X.T * X), X, vals, grad=[X, X])


# --------------------------------------------------------- a NaN or an infinity is a failure, never an error of 0

def _positive(shape, rng):
    return np.abs(rng.standard_normal(shape)) + 0.5


def test_nan_f_is_a_failure_naming_f():
    from derive.elementwise import log as elog

    rng = np.random.default_rng(2)
    x = _positive((4, 3), rng)
    x[1, 2] = -1.0                        # log(-1) is NaN: before, the error max(0.0, nan) was 0.0
    f = Trace(OneMatrix(1, n) * elog(X) * OneMatrix(d, 1))
    with pytest.raises(ValueError, match=r"^f at the given values is nan: a gradient check needs a finite f$"):
        numeric.check_gradient(f, X, {X: x}, grad=HadamardPower(X, -1))


def test_nan_gradient_is_a_failure_naming_the_variable():
    from derive.elementwise import log as elog

    rng = np.random.default_rng(3)
    vals = {X: rng.standard_normal((4, 3)), A: rng.standard_normal((4, 3))}
    vals[X][0, 1] = -2.0
    with pytest.raises(ValueError, match=re.escape("the gradient ∂f/∂X is not finite at the given values "
                                                   "(nan at [0, 1])")):
        numeric.check_gradient(Trace(X.T * A), X, vals, grad=HadamardProduct(A, elog(X)))


def test_infinite_f_and_non_finite_values_are_failures():
    from derive.elementwise import exp as eexp

    f = Trace(OneMatrix(1, n) * eexp(X) * OneMatrix(d, 1))
    x = np.zeros((4, 3))
    x[2, 0] = 1000.0                       # exp(1000) overflows to inf
    with pytest.raises(ValueError, match=r"^f at the given values is inf"):
        numeric.check_gradient(f, X, {X: x}, grad=eexp(X))
    x[2, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape("the value of X is not finite (nan at [2, 0])")):
        numeric.check_gradient(f, X, {X: x}, grad=eexp(X))


def test_non_finite_f_at_the_perturbed_points_is_a_failure():
    from derive.elementwise import log as elog

    f = Trace(OneMatrix(1, n) * elog(X) * OneMatrix(d, 1))
    x = np.full((4, 3), 1e-9)              # finite at X, NaN at X ± 1e-6 V for some direction V
    with pytest.raises(ValueError, match=re.escape("f at X ± 1e-06·V (the central difference) is nan")):
        numeric.check_gradient(f, X, {X: x}, grad=HadamardPower(X, -1))


# ----------------------------------------------------------------------------- a 1×1 matrix function

a, b = MatrixSymbol("a", n, 1), MatrixSymbol("b", d, 1)
x = MatrixSymbol("x", d, 1)
Sd = MatrixSymbol("Sd", d, d)


def test_one_by_one_matrix_functions():
    rng = np.random.default_rng(5)
    vals = {a: rng.standard_normal((4, 1)), b: rng.standard_normal((3, 1)), X: rng.standard_normal((4, 3)),
            x: rng.standard_normal((3, 1)), Sd: rng.standard_normal((3, 3))}
    # Matrix Cookbook (70): ∂aᵀXb/∂X = abᵀ; (81): ∂xᵀBx/∂x = (B + Bᵀ)x
    assert numeric.check_gradient(a.T * X * b, X, vals, grad=a * b.T) < 1e-8
    assert numeric.check_gradient(x.T * Sd * x, x, vals, grad=(Sd + Sd.T) * x) < 1e-7
    assert numeric.check_gradient(x.T * Sd * x, x, vals, grad=2 * Sd * x) > 0.05      # Sd is not symmetric
    assert numeric.check_gradient(x.T * Sd * x, [x, Sd], vals) < 1e-7                 # derive.gradient's
    with pytest.raises(ValueError, match=r"f must be scalar-valued .* got a n×1 matrix"):
        numeric.check_gradient(X * b, X, vals, grad=X)
