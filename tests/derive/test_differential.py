"""derive.differential: rules checked against closed forms and central differences (tests.oracle)."""
from __future__ import annotations

import numpy as np
import pytest
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


@pytest.mark.parametrize("text, wrt", [
    ("sum(X .^ tr(B))", "B"), ("sum(X .^ tr(B))", "X"), ("sum(X .^ tr(X'*X/10))", "X"),
    ("sum(X ./ (V .^ tr(B)))", "B"),
])
def test_a_hadamard_power_with_a_varying_exponent(text: str, wrt: str) -> None:
    # d(A^∘p) = p A^∘(p−1) ⊙ dA + dp (A^∘p ⊙ log A): the exponent's term was dropped (∂f/∂B read 0)
    import numpy as np
    import numeric
    from derive import gradient
    from derive.lang import parse
    from tests.oracle import fd_gradient
    p = parse(text, {"X": (4, 3), "B": (3, 3), "V": (4, 3)})
    syms = list(p.symbols.values())
    rng = np.random.default_rng(3)
    vals = {"X": rng.random((4, 3)) + 0.5, "B": 0.3 * rng.standard_normal((3, 3)), "V": rng.random((4, 3)) + 0.5}
    arrays = [vals[s.name] for s in syms]

    def forward(*a):   # by hand in NumPy
        v = dict(zip([s.name for s in syms], a))
        X, B = v["X"], v.get("B")
        if text == "sum(X ./ (V .^ tr(B)))":
            return float(np.sum(X / v["V"] ** np.trace(B)))
        e = np.trace(X.T @ X / 10) if "X'*X" in text else np.trace(B)
        return float(np.sum(X ** e))

    G = numeric.compile(gradient(p.expr, p.symbols[wrt]), syms)(*arrays)
    want = fd_gradient(forward, arrays, [s.name for s in syms].index(wrt))
    assert np.abs(G - want).max() < 1e-6 * max(1.0, np.abs(want).max())
