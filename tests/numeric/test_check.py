"""numeric.check_gradient with explicit gradient expressions (typed by hand)."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import Inverse, MatrixSymbol, Trace, log, Determinant
from sympy.matrices.expressions.hadamard import HadamardProduct

import numeric
from tests.numeric.helpers import d, k, n, random_arrays

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
