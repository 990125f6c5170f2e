"""derive.differential: rules checked against closed forms and central differences (tests.oracle)."""
from __future__ import annotations

import numpy as np
import sympy
from sympy import Abs, E, MatrixSymbol, Trace

import derive
from tests.oracle import check_against_fd, evaluate

X, A = MatrixSymbol("X", 3, 4), MatrixSymbol("A", 3, 4)
S = MatrixSymbol("S", 3, 3)


def _check(f, wrt, vals, closed) -> None:
    rng = np.random.default_rng(1)
    G = derive.gradient(f, wrt)
    np.testing.assert_allclose(evaluate(G, vals), closed, rtol=1e-9, atol=1e-12)
    assert check_against_fd(f, wrt, G, vals, rng) < 1e-6


def test_power_with_a_constant_base() -> None:
    # d(c^t) = c^t log c dt: the term of d(base) is zero and must not reach the read-off
    rng = np.random.default_rng(0)
    vals = {X: rng.standard_normal((3, 4)), A: rng.standard_normal((3, 4))}
    t = float(np.sum(vals[X] * vals[A])) / 5
    _check(2 ** (Trace(X.T * A) / 5), X, vals, 2 ** t * np.log(2) / 5 * vals[A])
    _check(E ** (Trace(X.T * A) / 5), X, vals, np.exp(t) / 5 * vals[A])


def test_abs_of_a_real_scalar_is_sign() -> None:
    rng = np.random.default_rng(0)
    vals = {S: rng.standard_normal((3, 3))}
    G = derive.gradient(Abs(Trace(S)), S)
    assert not G.has(sympy.re, sympy.im, sympy.Subs)
    _check(Abs(Trace(S)), S, vals, np.sign(np.trace(vals[S])) * np.eye(3))
