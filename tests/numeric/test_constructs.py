"""Every construct compiled and compared with a closed form typed by hand in NumPy.

Shapes are all different and non-square (n, d, m, k) = (4, 3, 5, 2) except where a
square matrix is the point (A, S are n×n).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from sympy import (
    Determinant, Identity, Inverse, Lambda, MatrixSymbol, OneMatrix, Trace, ZeroMatrix, exp, log, sqrt,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction as EAF
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

import numeric
from derive.elementwise import Relu, Sigmoid, Softplus, UnitStep
from tests.oracle import d, k, m, n, np_sigmoid, random_arrays, rel_err

X, Z = MatrixSymbol("X", n, d), MatrixSymbol("Z", n, d)
P = MatrixSymbol("P", n, d)           # positive entries
Y = MatrixSymbol("Y", n, k)
W = MatrixSymbol("W", d, m)
b = MatrixSymbol("b", 1, m)
h = MatrixSymbol("h", n, m)
A = MatrixSymbol("A", n, n)           # general square
S = MatrixSymbol("S", n, n)           # symmetric positive definite
u = MatrixSymbol("u", n, 1)
B = MatrixSymbol("B", n, k)
x = sympy.Symbol("x")


def ew(f, M):
    return EAF(Lambda(x, f(x)), M)


def soft(v):
    return np.log1p(np.exp(v))


# (id, args, sympy expression, NumPy closed form over the arrays in args order)
CASES = [
    ("transpose", [X], X.T, lambda X: X.T),
    ("scale", [X], 3 * X, lambda X: 3 * X),
    ("rational-scale", [X], sympy.Rational(1, 3) * X, lambda X: X / 3),
    ("matmul", [X, W], X * W, lambda X, W: X @ W),
    ("matmul-chain", [X, W, h], X.T * h * W.T, lambda X, W, h: X.T @ h @ W.T),
    ("gram", [X], X.T * X, lambda X: X.T @ X),
    ("matadd", [X, Z], X + Z - 3 * Z, lambda X, Z: X - 2 * Z),
    ("difference-both-signs", [X, Z], HadamardProduct(X - Z, Z - X), lambda X, Z: -(X - Z) ** 2),
    ("hadamard", [X, Z, P], HadamardProduct(X, Z, P), lambda X, Z, P: X * Z * P),
    ("hadamard-power-2", [X], HadamardPower(X, 2), lambda X: X ** 2),
    ("hadamard-power-3", [X], HadamardPower(X, 3), lambda X: X ** 3),
    ("hadamard-power-inv", [P], HadamardPower(P, -1), lambda P: 1 / P),
    ("hadamard-power-half", [P], HadamardPower(P, sympy.Rational(1, 2)), lambda P: np.sqrt(P)),
    ("hadamard-power-neg-half", [P], HadamardPower(P, -sympy.Rational(1, 2)), lambda P: P ** -0.5),
    ("sigmoid", [h], EAF(Sigmoid, h), lambda h: np_sigmoid(h)),
    ("sigmoid-lambda", [h], h.applyfunc(Sigmoid), lambda h: np_sigmoid(h)),
    ("tanh", [h], h.applyfunc(sympy.tanh), lambda h: np.tanh(h)),
    ("relu", [h], EAF(Relu, h), lambda h: np.where(h > 0, h, 0.0)),
    ("softplus", [h], EAF(Softplus, h), lambda h: soft(h)),
    ("step", [h], EAF(UnitStep, h), lambda h: (h > 0) * 1.0),
    ("exp", [X], X.applyfunc(exp), lambda X: np.exp(X)),
    ("log", [P], P.applyfunc(log), lambda P: np.log(P)),
    ("composition", [h], EAF(Sigmoid, h.applyfunc(sympy.tanh)), lambda h: np_sigmoid(np.tanh(h))),
    ("generic-lambda", [X], ew(lambda t: t ** 2 + sympy.sin(t) - 1, X), lambda X: X ** 2 + np.sin(X) - 1),
    ("sigmoid-derivative", [h], HadamardProduct(EAF(Sigmoid, h), OneMatrix(n, m) - EAF(Sigmoid, h)),
     lambda h: np_sigmoid(h) * (1 - np_sigmoid(h))),
    ("log-sigmoid", [h], EAF(sympy.log, EAF(Sigmoid, h)), lambda h: -soft(-h)),
    ("log-one-minus-sigmoid", [h], EAF(sympy.log, OneMatrix(n, m) - EAF(Sigmoid, h)), lambda h: -soft(h)),
    ("ones-row-sum", [X], OneMatrix(1, n) * X, lambda X: X.sum(axis=0, keepdims=True)),
    ("ones-col-sum", [X], X * OneMatrix(d, 1), lambda X: X.sum(axis=1, keepdims=True)),
    ("ones-transpose-sum", [X], 2 * OneMatrix(n, 1).T * X, lambda X: 2 * X.sum(axis=0, keepdims=True)),
    ("ones-broadcast-row", [b, X], OneMatrix(n, 1) * b, lambda b, X: np.repeat(b, 4, axis=0)),
    ("ones-broadcast-add", [X, W, b], X * W + OneMatrix(n, 1) * b, lambda X, W, b: X @ W + b),
    ("ones-full-block", [W, X], OneMatrix(n, d) * W, lambda W, X: np.ones((4, 3)) @ W),
    ("ones-both-sides", [h, X, Y], OneMatrix(k, n) * h * OneMatrix(m, d),
     lambda h, X, Y: np.ones((2, 4)) @ h @ np.ones((5, 3))),
    ("ones-times-ones", [X, Y], 3 * OneMatrix(n, d).T * OneMatrix(n, k), lambda X, Y: 3 * 4 * np.ones((3, 2))),
    ("ones-minus", [h], OneMatrix(n, m) - h, lambda h: 1 - h),
    ("ones-output", [h], OneMatrix(n, m), lambda h: np.ones((4, 5))),
    ("broadcast-row-matmul", [b, W, X], OneMatrix(n, 1) * b * W.T, lambda b, W, X: np.repeat(b @ W.T, 4, axis=0)),
    ("broadcast-then-sum", [b, X], OneMatrix(1, n) * OneMatrix(n, 1) * b, lambda b, X: 4 * b),
    ("identity-add", [A], A + 2 * Identity(n), lambda A: A + 2 * np.eye(4)),
    ("identity-product", [X], Identity(n) * X, lambda X: X),
    ("identity-output", [A], Identity(n) * 5, lambda A: 5 * np.eye(4)),
    ("zero-matrix", [X], X + ZeroMatrix(n, d), lambda X: X),
    ("zero-output", [X], ZeroMatrix(n, d), lambda X: np.zeros((4, 3))),
    ("argument-returned", [X], X, lambda X: X),
    ("trace-AtB", [X, Z], Trace(X.T * Z), lambda X, Z: np.trace(X.T @ Z)),
    ("trace-square", [A], Trace(A), lambda A: np.trace(A)),
    ("trace-chain", [X, A], Trace(X.T * A * X), lambda X, A: np.trace(X.T @ A @ X)),
    ("trace-ABt", [X, Z], Trace(X * Z.T), lambda X, Z: np.trace(X @ Z.T)),
    ("trace-sum", [A, X], Trace(A + X * X.T), lambda A, X: np.trace(A + X @ X.T)),
    ("trace-hadamard", [A, S], Trace(HadamardProduct(A, S)), lambda A, S: np.trace(A * S)),
    ("trace-identity", [X], Trace(Identity(n)) * Trace(X.T * X), lambda X: 4 * np.sum(X * X)),
    ("trace-ones", [A], Trace(OneMatrix(n, n) * A), lambda A: np.trace(np.ones((4, 4)) @ A)),
    ("trace-broadcast", [b, W], Trace(OneMatrix(d, 1) * b * W.T), lambda b, W: np.trace(np.ones((3, 1)) @ b @ W.T)),
    ("frobenius", [Y, B], Trace((Y - B).T * (Y - B)), lambda Y, B: np.sum((Y - B) ** 2)),
    ("inverse-solve", [S, B], Inverse(S) * B, lambda S, B: np.linalg.solve(S, B)),
    ("inverse-right", [S, B], B.T * Inverse(S), lambda S, B: B.T @ np.linalg.inv(S)),
    ("inverse-middle", [S, B], B.T * Inverse(S) * B, lambda S, B: B.T @ np.linalg.inv(S) @ B),
    ("inverse-alone", [S], Inverse(S), lambda S: np.linalg.inv(S)),
    ("inverse-transpose", [A, S, B], Inverse(S).T * B + A * B, lambda A, S, B: np.linalg.inv(S).T @ B + A @ B),
    ("matpow", [A], A ** 3, lambda A: A @ A @ A),
    ("matpow-neg", [S], S ** -2, lambda S: np.linalg.inv(S @ S)),
    ("determinant", [A], Determinant(A), lambda A: np.linalg.det(A)),
    ("log-det", [S], log(Determinant(S)), lambda S: np.log(np.linalg.det(S))),
    ("log-abs-det", [A], log(sympy.Abs(Determinant(A))), lambda A: np.log(abs(np.linalg.det(A)))),
    ("scalar-algebra", [X, S], sqrt(Trace(X.T * X)) + exp(-Trace(S) / 10) * log(Determinant(S)) - Trace(S) ** (Trace(X.T * X) / 100),
     lambda X, S: math.sqrt(np.sum(X * X)) + math.exp(-np.trace(S) / 10) * math.log(np.linalg.det(S))
     - np.trace(S) ** (np.sum(X * X) / 100)),
    ("scalar-dims", [X], n * Trace(X.T * X) / (d + 1), lambda X: 4 * np.sum(X * X) / 4),
    ("scalar-times-matrix", [X, Z], Trace(X.T * Z) * X, lambda X, Z: np.sum(X * Z) * X),
    ("matrix-element", [u, S], MatrixElement(u.T * S * u, 0, 0), lambda u, S: (u.T @ S @ u)[0, 0]),
    ("matrix-element-scaled", [u, S], 3 * MatrixElement(u.T * S * u, 0, 0) + 1,
     lambda u, S: 3 * (u.T @ S @ u)[0, 0] + 1),
    ("outer-product", [u, b], u * b, lambda u, b: u @ b),
    ("scalar-pi", [X], sympy.pi * X, lambda X: np.pi * X),
]
POSITIVE = ("P",)
SPD = ("S",)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,args,expr,closed", CASES, ids=[c[0] for c in CASES])
def test_construct_matches_closed_form(name, args, expr, closed, dtype):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    arrays = random_arrays(args, rng, positive=POSITIVE, spd=SPD, dtype=dtype)
    got = numeric.compile(expr, args)(*arrays)
    want = closed(*[a.astype(np.float64) for a in arrays])
    want = np.asarray(want, dtype=np.float64)
    got_arr = np.asarray(got)
    assert got_arr.dtype == dtype
    if isinstance(expr, sympy.MatrixExpr):
        assert got_arr.shape == want.shape
    else:
        assert got_arr.shape == ()
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert rel_err(got_arr, want) < tol * 1e3 if "inverse" in name or "det" in name or "pow" in name \
        else rel_err(got_arr, want) < tol * 10


def test_outputs_are_fresh_arrays():
    rng = np.random.default_rng(1)
    (Xv,) = random_arrays([X], rng)
    out = numeric.compile([X, X.T], [X])(Xv)
    out[0][0, 0] = 123.0
    out[1][0, 0] = 123.0
    assert Xv[0, 0] != 123.0


def test_broadcast_output_is_writable_full_array():
    bv = np.arange(5.0).reshape(1, 5)
    out = numeric.compile(OneMatrix(n, 1) * b, [b, X])(bv, np.zeros((4, 3)))
    assert out.shape == (4, 5) and out.flags.writeable and out.flags.owndata
    np.testing.assert_array_equal(out, np.repeat(bv, 4, axis=0))


def test_integer_dimensions():
    Xi, Wi = MatrixSymbol("X", 4, 3), MatrixSymbol("W", 3, 5)
    rng = np.random.default_rng(2)
    xv, wv = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    out = numeric.compile(OneMatrix(1, 4) * Xi * Wi, [Xi, Wi])(xv, wv)
    np.testing.assert_allclose(out, np.ones((1, 4)) @ xv @ wv, rtol=1e-12)


def test_dimension_from_a_later_argument():
    # n appears first in the second argument's shape
    Xs = MatrixSymbol("X", d, n)
    out = numeric.compile(Trace(Identity(n)) * OneMatrix(1, d) * Xs, [W, Xs])
    w, xs = np.zeros((3, 5)), np.ones((3, 4))
    np.testing.assert_allclose(out(w, xs), 4 * 3 * np.ones((1, 4)))


def test_scalar_times_transposes():
    # tr(BX)·A + tr(XᵀA)·Bᵀ: a scalar factor beside Aᵀ ⊙ Bᵀ once sent the builder into endless recursion
    Bt = MatrixSymbol("Bt", d, n)
    rng = np.random.default_rng(3)
    xv, zv, bv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    out = numeric.compile([Trace(Bt * X) * Z + Trace(X.T * Z) * Bt.T, Trace(X.T * Z) * Bt.T * X.T],
                          [X, Z, Bt])(xv, zv, bv)
    np.testing.assert_allclose(out[0], np.trace(bv @ xv) * zv + np.sum(xv * zv) * bv.T, rtol=1e-12)
    np.testing.assert_allclose(out[1], np.sum(xv * zv) * bv.T @ xv.T, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constants_folded_as_numpy_computes_them(dtype):
    # 0^∘−1, log 0, exp 1000 are inf as NumPy gives them, not a Python ZeroDivisionError or math error
    zeros, ones = ZeroMatrix(n, d), OneMatrix(n, d)
    exprs = [X + HadamardPower(zeros, -1), X + ew(log, zeros), X + ew(exp, 1000 * ones),
             X + HadamardPower(-ones, sympy.Rational(1, 2))]
    xv = np.ones((4, 3), dtype=dtype)
    with np.errstate(all="ignore"):
        out = numeric.compile(exprs, [X])(xv)
    assert all(o.dtype == dtype for o in out)
    assert np.all(out[0] == np.inf) and np.all(out[1] == -np.inf) and np.all(out[2] == np.inf)
    assert np.all(np.isnan(out[3]))


@pytest.mark.parametrize("axis", [0, 1])
def test_inner_product_with_several_broadcast_factors(axis: int) -> None:
    """tr(Cᵀ[(𝟏g) ⊙ Z ⊙ (𝟏s)∘⁻¹]) (rows broadcast down the columns; columns likewise), the form of a
    batch norm's loss: summing the broadcast axis once, not once per broadcast factor."""
    from sympy import HadamardPower, HadamardProduct, MatMul, MatrixSymbol, OneMatrix, Trace, Transpose

    n, d = 4, 3
    Z, C = MatrixSymbol("Z", n, d), MatrixSymbol("C", n, d)
    if axis == 0:
        g, s = MatrixSymbol("g", 1, d), MatrixSymbol("s", 1, d)
        bg, bs = MatMul(OneMatrix(n, 1), g), MatMul(OneMatrix(n, 1), s)
    else:
        g, s = MatrixSymbol("g", n, 1), MatrixSymbol("s", n, 1)
        bg, bs = MatMul(g, OneMatrix(1, d)), MatMul(s, OneMatrix(1, d))
    f = Trace(MatMul(Transpose(C), HadamardProduct(bg, Z, HadamardPower(bs, -1))))
    rng = np.random.default_rng(3)
    z, c, gv = rng.standard_normal((n, d)), rng.standard_normal((n, d)), rng.standard_normal(g.shape)
    sv = rng.uniform(0.5, 2.0, s.shape)
    got = float(numeric.compile(f, [Z, C, g, s])(z, c, gv, sv))
    assert got == pytest.approx(float(np.sum(c * gv * z / sv)), rel=1e-12)
