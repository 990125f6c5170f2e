"""derive.elementwise: derivatives of functions lifted from scalars, against NumPy and differences."""
from __future__ import annotations

import numpy as np
import sympy
from sympy import Abs, MatrixSymbol, Trace

import derive
from tests.oracle import check_against_fd, evaluate

X, A = MatrixSymbol("X", 3, 4), MatrixSymbol("A", 3, 4)


def test_elementwise_abs_is_sign_for_real_entries() -> None:
    rng = np.random.default_rng(0)
    vals = {X: rng.standard_normal((3, 4)), A: rng.standard_normal((3, 4))}
    f = Trace(A.T * X.applyfunc(Abs))
    G = derive.gradient(f, X)
    assert not G.has(sympy.re, sympy.im, sympy.Derivative)
    np.testing.assert_allclose(evaluate(G, vals), vals[A] * np.sign(vals[X]), rtol=1e-12)
    assert check_against_fd(f, X, G, vals, rng) < 1e-6
