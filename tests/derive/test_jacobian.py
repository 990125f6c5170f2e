"""derive.jacobian: every Jacobian meets central finite differences of the function, written by hand in
NumPy, on random non-square data (all dimensions different), and the closed forms of the Matrix Cookbook /
Magnus & Neudecker (numerator layout: d vec F = J d vec X)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sympy import Identity, Inverse, Trace, KroneckerProduct, MatMul, MatrixSymbol, OneMatrix, Transpose
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

import derive
import numeric
from derive import sigmoid, tanh
from derive.jacobian import jacobian
from derive.differential import MatrixDifferential
from derive.kron_rules import NotVectorizable, jacobian_of
from derive.kronecker import Commutation, Diag, Vec
from derive.networks import softmax_cols
from derive.render.printer import math_latex, math_text

RNG = np.random.default_rng(12)


def vec(A: np.ndarray) -> np.ndarray:
    return A.reshape(-1, 1, order="F")


def fd_jacobian(F: Callable[[np.ndarray], np.ndarray], X: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂ vec F/∂(vec X)ᵀ by central differences, one column per entry of vec X."""
    cols = []
    for j in range(X.size):
        E = np.zeros(X.size)
        E[j] = eps
        E = E.reshape(X.shape, order="F")
        cols.append((vec(F(X + E)) - vec(F(X - E))).ravel() / (2 * eps))
    return np.stack(cols, axis=1)


def evaluate(expr, symbols, values) -> np.ndarray:
    return numeric.compile([expr], list(symbols))(*values)[0]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


x = MatrixSymbol("x", 4, 1)
A = MatrixSymbol("A", 3, 4)
W = MatrixSymbol("W", 3, 4)
z = MatrixSymbol("z", 5, 1)
X = MatrixSymbol("X", 4, 3)
P = MatrixSymbol("P", 2, 4)
Q = MatrixSymbol("Q", 3, 5)
S = MatrixSymbol("S", 3, 3)
M = MatrixSymbol("M", 4, 3)
V2 = MatrixSymbol("V", 3, 2)
b = MatrixSymbol("b", 1, 2)

xv, Av, Wv, zv = RNG.normal(size=(4, 1)), RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4)), RNG.normal(size=(5, 1))
Xv, Pv, Qv, Mv, V2v, bv = (RNG.normal(size=s) for s in ((4, 3), (2, 4), (3, 5), (4, 3), (3, 2), (1, 2)))
Sv = RNG.normal(size=(3, 3)) + 3 * np.eye(3)


def commutation(m: int, n: int) -> np.ndarray:
    """K_{m,n} from its definition (Magnus & Neudecker 3.7): the entry (i, j) of an m×n A sits at
    i + jm in vec A and at j + in in vec Aᵀ."""
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            K[j + i * n, i + j * m] = 1
    return K


# (name, F, variable, symbols, values, NumPy F of the variable's value, closed form as NumPy or None)
CASES = [
    ("Ax", A * x, x, [A, x], [Av, xv], lambda v: Av @ v, Av),
    ("sigmoid(Wx)", sigmoid(W * x), x, [W, x], [Wv, xv], lambda v: sig(Wv @ v),
     np.diagflat(sig(Wv @ xv) * (1 - sig(Wv @ xv))) @ Wv),
    ("softmax(z)", softmax_cols(z), z, [z], [zv], lambda v: np.exp(v) / np.exp(v).sum(),
     (lambda p: np.diagflat(p) - p @ p.T)(np.exp(zv) / np.exp(zv).sum())),
    ("PXQ", P * X * Q, X, [P, X, Q], [Pv, Xv, Qv], lambda v: Pv @ v @ Qv, np.kron(Qv.T, Pv)),
    ("X^T", Transpose(X), X, [X], [Xv], lambda v: v.T, commutation(4, 3)),
    ("M ⊙ X", HadamardProduct(M, X), X, [M, X], [Mv, Xv], lambda v: Mv * v, np.diagflat(vec(Mv))),
    ("X^T X", Transpose(X) * X, X, [X], [Xv], lambda v: v.T @ v,     # (I ⊗ Xᵀ) + (Xᵀ ⊗ I)K
     np.kron(np.eye(3), Xv.T) + np.kron(Xv.T, np.eye(3)) @ commutation(4, 3)),
    ("S^-1", Inverse(S), S, [S], [Sv], np.linalg.inv,
     -np.kron(np.linalg.inv(Sv).T, np.linalg.inv(Sv))),
    ("tanh(XV + 1b)", tanh(X * V2 + OneMatrix(4, 1) * b), V2, [X, V2, b], [Xv, V2v, bv],
     lambda v: np.tanh(Xv @ v + bv), np.diagflat(vec(1 - np.tanh(Xv @ V2v + bv) ** 2)) @ np.kron(np.eye(2), Xv)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_jacobian_meets_finite_differences_and_closed_form(case) -> None:
    name, F, var, symbols, values, forward, closed = case
    dv = jacobian(F, var)
    J = evaluate(dv.result, symbols, values)
    value = values[symbols.index(var)]
    assert J.shape == (int(F.shape[0] * F.shape[1]), value.size)
    assert rel(J, fd_jacobian(forward, value)) < 1e-6, name
    if closed is not None:
        assert rel(J, closed) < 1e-12, name


def test_vector_jacobians_are_ordinary_matrices() -> None:
    assert jacobian(A * x, x).result == A and derive.jacobian(A * x, x).result == A   # the function, not the module
    assert math_text(jacobian(sigmoid(W * x), x).result) == "diag(σ(Wx) ⊙ (𝟏₃ - σ(Wx)))W"
    assert math_text(jacobian(P * X * Q, X).result) == "Qᵀ ⊗ P"


def test_transpose_gives_the_commutation_matrix() -> None:
    J = jacobian(Transpose(X), X).result
    assert Commutation(4, 3) == J
    # K_{m,n} vec A = vec Aᵀ, and Kᵀ = K_{n,m}
    K = evaluate(J, [X], [Xv])
    assert np.array_equal(K @ vec(Xv), vec(Xv.T)) and np.array_equal(K.T @ vec(Xv.T), vec(Xv))
    assert Transpose(J).doit() == Commutation(3, 4)


def test_the_steps_name_each_rule_and_render() -> None:
    dv = jacobian(P * X * Q, X)
    rules = [s.rule for s in dv.steps]
    assert rules[:3] == ["definition", "differential", "d_product"]
    assert rules[-2:] == ["vectorize", "read_off_jacobian"]
    text = str(dv)
    assert "Derive ∂vec F/∂(vec X)ᵀ" in text and "(Qᵀ ⊗ P) d(vec(X))" in text
    assert "第一识别定理" in dv.to_text(lang="zh")
    assert r"Q^T \otimes P" in dv.to_latex() and r"\operatorname{vec}" in dv.to_latex()
    assert "Q^T \\otimes P" in math_latex(dv.result)


def test_kronecker_printing_and_identities() -> None:
    B = MatrixSymbol("B", 2, 5)
    C, D = MatrixSymbol("C", 4, 6), MatrixSymbol("D", 5, 3)
    from derive.kron_rules import kron_simplify

    assert math_text(KroneckerProduct(P + MatrixSymbol("R", 2, 4), B.T)) == "(P + R) ⊗ Bᵀ"
    assert kron_simplify(Transpose(KroneckerProduct(P, B))) == KroneckerProduct(P.T, B.T)
    assert kron_simplify(MatMul(KroneckerProduct(P, B), KroneckerProduct(C, D))) == KroneckerProduct(P * C, B * D)
    assert kron_simplify(KroneckerProduct(Identity(1), P)) == P
    assert kron_simplify(MatMul(Diag(z), OneMatrix(5, 1))) == z
    assert kron_simplify(Vec(Transpose(z))) == z
    assert math_text(Vec(X)) == "vec(X)" and math_latex(Diag(z)) == r"\operatorname{diag}(z)"
    assert math_latex(Commutation(4, 3)) == "K_{4,3}"


def test_errors_are_one_line() -> None:
    with pytest.raises(TypeError, match="MatrixSymbol"):
        jacobian(A * x, "x")
    with pytest.raises(ValueError, match="does not appear"):
        jacobian(A * x, z)
    with pytest.raises(TypeError, match="F must be a matrix expression"):
        jacobian(Trace(X.T * X), X)
    with pytest.raises(NotVectorizable, match="cannot vectorize"):
        jacobian_of(MatrixElement(MatrixDifferential(X), 0, 1), X)


def test_the_language_has_kron_vec_and_diag() -> None:
    from derive.lang.format import format_expression
    from derive.parse import parse_expression

    shapes = {"A": (2, 4), "B": (3, 5), "X": (5, 4), "x": (6, 1)}
    e = parse_expression("kron(A, B)*vec(X) + vec(B*X*A')", shapes)
    assert e.shape == (6, 1) and parse_expression(format_expression(e), shapes) == e
    assert parse_expression("diag(x)", shapes) == Diag(MatrixSymbol("x", 6, 1))
    rows, cols = parse_expression("vec(A)", {"A": ("n", "d")}).shape
    assert str(rows) == "d*n" and cols == 1
    with pytest.raises(ValueError, match="'diag' takes a column vector"):
        parse_expression("diag(A)", shapes)
    # the Jacobian of a typed vector function, against finite differences
    F = parse_expression("diag(x)*tanh(x)", {"x": (6, 1)})
    xs = MatrixSymbol("x", 6, 1)
    v = RNG.normal(size=(6, 1))
    J = evaluate(jacobian(F, xs).result, [xs], [v])
    assert rel(J, fd_jacobian(lambda u: u * np.tanh(u), v)) < 1e-6


def test_kernels_apply_a_kronecker_product_without_forming_it() -> None:
    B, Y = MatrixSymbol("B", 2, 5), MatrixSymbol("Y", 4, 2)
    applied = numeric.compile([MatMul(KroneckerProduct(B.T, P), Vec(Y)), MatMul(Diag(z), OneMatrix(5, 3)),
                               MatMul(Commutation(4, 3), Vec(X))], [B, P, Y, X, z])
    assert "kron" not in applied.source and "diagflat" not in applied.source and "eye" not in applied.source
    Bv, Yv = RNG.normal(size=(2, 5)), RNG.normal(size=(4, 2))
    for dtype in (np.float64, np.float32):
        out = applied(*(a.astype(dtype) for a in (Bv, Pv, Yv, Xv, zv)))
        assert all(o.dtype == dtype for o in out)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        assert rel(out[0], np.kron(Bv.T, Pv) @ vec(Yv)) < tol      # (Bᵀ ⊗ P) vec Y = vec(P Y B)
        assert rel(out[1], np.diagflat(zv) @ np.ones((5, 3))) < tol
        assert rel(out[2], vec(Xv.T)) < tol
    formed = numeric.compile([KroneckerProduct(B.T, P), Commutation(4, 3), Diag(z)], [B, P, z])
    K, C, D = formed(Bv, Pv, zv)
    assert np.array_equal(K, np.kron(Bv.T, Pv)) and np.array_equal(C @ vec(Xv), vec(Xv.T))
    assert np.array_equal(D, np.diagflat(zv))
