"""NumericPrinter on its own, through sympy.lambdify."""
from __future__ import annotations

import numpy as np
import sympy
from sympy import MatrixSymbol, OneMatrix, Trace

from derive.elementwise import sigmoid
from numeric.numpy_backend import NumericPrinter
from tests.oracle import d, m, n, np_sigmoid


def test_lambdify_with_our_printer(seed_values):
    X, W, b = MatrixSymbol("X", n, d), MatrixSymbol("W", d, m), MatrixSymbol("b", 1, m)
    expr = OneMatrix(1, n) * sigmoid(X * W + OneMatrix(n, 1) * b)
    f = sympy.lambdify([X, W, b], expr, modules="numpy", printer=NumericPrinter)
    x, w, bb = seed_values["X"], seed_values["W1"], seed_values["b1"]
    np.testing.assert_allclose(f(x, w, bb), np_sigmoid(x @ w + bb).sum(axis=0, keepdims=True), rtol=1e-12)


def test_trace_prints_as_sum_of_products():
    A, B = MatrixSymbol("A", n, d), MatrixSymbol("B", n, d)
    code = NumericPrinter().doprint(Trace(A.T * B))
    assert code == "numpy.vdot(A, B)"
    a, b = np.arange(12.0).reshape(4, 3), np.ones((4, 3))
    assert eval(code, {"numpy": np, "A": a, "B": b}) == np.trace(a.T @ b)


def test_plain_scalars_still_print():
    x = sympy.Symbol("x")
    assert NumericPrinter().doprint(sympy.sin(x) + 1) == "numpy.sin(x) + 1"
