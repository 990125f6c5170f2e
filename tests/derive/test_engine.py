"""derive.engine: a scalar that holds the differential inside a matrix product, tr(tr(X)·AᵀB).

Each gradient meets a closed form typed by hand and central differences (tests.oracle).
"""
from __future__ import annotations

import numpy as np
import pytest
from sympy import Determinant, HadamardProduct, MatrixSymbol, OneMatrix, Trace, ZeroMatrix

import derive
from tests.oracle import check_against_fd, evaluate

X = MatrixSymbol("X", 3, 3)                       # square, for tr X and det X
A, B, C = (MatrixSymbol(s, 3, 4) for s in "ABC")
V = MatrixSymbol("V", 3, 4)


def _values(rng):
    vals = {s: rng.standard_normal((3, 4)) for s in (A, B, C, V)}
    vals[X] = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    return vals


# (f, variable, ∂f/∂variable in NumPy)
CASES = {
    "tr(trX*A'B)": (Trace(Trace(X) * A.T * B), X,
                      lambda v: np.trace(v[A].T @ v[B]) * np.eye(3)),
    "tr(A'(trX*B+C))": (Trace(A.T * (Trace(X) * B + C)), X,
                           lambda v: np.trace(v[A].T @ v[B]) * np.eye(3)),
    "tr(A'(trX*B+XB))": (Trace(A.T * (Trace(X) * B + X * B)), X,
                            lambda v: np.trace(v[A].T @ v[B]) * np.eye(3) + v[A] @ v[B].T),
    "sum(trX*B)": (Trace(OneMatrix(1, 3) * (Trace(X) * B) * OneMatrix(4, 1)), X,
                    lambda v: np.sum(v[B]) * np.eye(3)),
    "tr(A'(detX*B))": (Trace(A.T * (Determinant(X) * B)), X,
                        lambda v: np.linalg.det(v[X]) * np.trace(v[A].T @ v[B]) * np.linalg.inv(v[X]).T),
    "tr(A'tr(V'V)V)": (Trace(A.T * (Trace(V.T * V) * V)), V,
                        lambda v: 2 * np.trace(v[A].T @ v[V]) * v[V] + np.trace(v[V].T @ v[V]) * v[A]),
    "norm2(trX*B-C)^2": (derive.frobenius_sq(Trace(X) * B - C), X,
                      lambda v: 2 * np.sum((np.trace(v[X]) * v[B] - v[C]) * v[B]) * np.eye(3)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_scalar_coefficient_holding_the_differential(name: str) -> None:
    f, wrt, closed = CASES[name]
    rng = np.random.default_rng(0)
    vals = _values(rng)
    G = derive.gradient(f, wrt)
    np.testing.assert_allclose(evaluate(G, vals), closed(vals), rtol=1e-9, atol=1e-12)
    assert check_against_fd(f, wrt, G, vals, rng) < 1e-6


@pytest.mark.parametrize("text", ["sum(X - b)", "norm2(X*W - b)^2", "sum(sigmoid(X - b))"])
def test_one_by_one_matrix_broadcast_as_a_scalar(text: str) -> None:
    # the parser writes a 1×1 b added to a matrix as tr(b)·𝟏𝟏ᵀ: a scalar holding db inside a product
    from derive.parse import parse

    parsed = parse(text, {"X": (4, 3), "W": (3, 2), "b": (1, 1)})
    rng = np.random.default_rng(0)
    vals = {s: rng.standard_normal(tuple(int(x) for x in s.shape)) for s in parsed.expr.atoms(MatrixSymbol)}
    b = parsed.symbols["b"]
    G = derive.gradient(parsed.expr, b)
    assert G.shape == (1, 1)
    assert check_against_fd(parsed.expr, b, G, vals, rng) < 1e-6


P = MatrixSymbol("P", 4, 3)          # X is 3×3 above; here a 3×4 variable V and a 4×3 constant P


@pytest.mark.parametrize("name,f,closed", [
    # the differential of the second factor is a sum of traces: (tr(AᵀdV) + 2tr(VᵀdV))·tr(PV)
    ("tr(PV)*tr(V'V + V'A)", Trace(P * V) * Trace(V.T * V + V.T * A),
     lambda v: np.trace(v[V].T @ v[V] + v[V].T @ v[A]) * v[P].T + np.trace(v[P] @ v[V]) * (2 * v[V] + v[A])),
    ("tr(PV)*(tr(V'V) + tr(V'A))", Trace(P * V) * (Trace(V.T * V) + Trace(V.T * A)),
     lambda v: np.sum(v[V] * (v[V] + v[A])) * v[P].T + np.trace(v[P] @ v[V]) * (2 * v[V] + v[A])),
    ("tr(PV)*tr(V'(A.*V))", Trace(P * V) * Trace(V.T * HadamardProduct(A, V)),
     lambda v: np.sum(v[A] * v[V] ** 2) * v[P].T + np.trace(v[P] @ v[V]) * 2 * v[A] * v[V]),
], ids=lambda x: x if isinstance(x, str) else "")
def test_product_of_traces_whose_differential_is_a_sum(name, f, closed) -> None:
    rng = np.random.default_rng(2)
    vals = _values(rng)
    vals[P] = rng.standard_normal((4, 3))
    G = derive.gradient(f, V)
    np.testing.assert_allclose(evaluate(G, vals), closed(vals), rtol=1e-9, atol=1e-12)
    assert check_against_fd(f, V, G, vals, rng) < 1e-6


def test_a_gradient_that_is_zero_still_ends_with_the_read_off_step() -> None:
    X = MatrixSymbol("X", 4, 3)
    dv = derive.derivation(Trace(derive.step(X.T * X)), X)
    assert dv.steps[-1].rule == "read_off" and dv.steps[-1].lhs == derive.Gradient(derive.steps.F, X)
    assert dv.result == ZeroMatrix(4, 3)
