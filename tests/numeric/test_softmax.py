"""Stable softmax cross-entropy: the ``log_sum_exp`` and ``softmax`` rewrites of numeric.ir.

Oracles: a stable softmax cross-entropy and its gradients typed by hand in NumPy
(row max subtracted), and central differences of that loss.  Shapes are non-square
and all different: n=6, d=3, m=5, k=4.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy
from sympy import MatMul, MatrixSymbol, OneMatrix, Trace
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

import numeric
from derive.backprop import backprop
from derive.elementwise import exp, log
from derive.networks import log_softmax_rows, mlp, softmax_cols, softmax_rows
from tests.oracle import fd_gradient, rel_err

N, D, M, K = 6, 3, 5, 4


# ----------------------------------------------------------------------------- oracles

def np_sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5          # no overflow at any x


def np_log_softmax(Z):
    m = Z.max(axis=1, keepdims=True)
    return Z - m - np.log(np.exp(Z - m).sum(axis=1, keepdims=True))


def np_softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_loss(X, Y, W1, b1, W2, b2) -> float:
    """−Σ Y ⊙ log softmax(σ(XW1 + b1) W2 + b2), rows of Y summing to 1."""
    Z = np_sigmoid(X @ W1 + b1) @ W2 + b2
    return float(-np.sum(Y * np_log_softmax(Z)))


def ce_gradients(X, Y, W1, b1, W2, b2):
    """∂/∂(W1, b1, W2, b2) by hand: G = softmax(Z) − Y, G_h = (G W2ᵀ) ⊙ H ⊙ (1 − H)."""
    H = np_sigmoid(X @ W1 + b1)
    G = np_softmax(H @ W2 + b2) - Y
    Gh = (G @ W2.T) * H * (1 - H)
    return [X.T @ Gh, Gh.sum(axis=0, keepdims=True), H.T @ G, G.sum(axis=0, keepdims=True)]


def data(scale: float, seed: int = 0, dtype=np.float64):
    """X, one-hot Y, W1, b1 of ordinary size; W2, b2 so that the logits reach ±scale."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    Y = np.eye(K)[rng.integers(0, K, size=N)]
    W1, b1 = rng.standard_normal((D, M)), rng.standard_normal((1, M))
    W2, b2 = rng.standard_normal((M, K)), rng.standard_normal((1, K))
    Z = np_sigmoid(X @ W1 + b1) @ W2 + b2
    c = scale / np.abs(Z).max()
    return [a.astype(dtype) for a in (X, Y, W1, b1, c * W2, c * b2)]


def ce_kernel(symbolic: bool):
    net = (mlp(["d", "m", "k"], loss="softmax_cross_entropy") if symbolic
           else mlp([D, M, K], loss="softmax_cross_entropy", n=N))
    grads = backprop(net).gradients(expanded=True)
    return numeric.compile([net.f, *(grads[p] for p in net.params)], [*net.inputs, *net.params])


# ------------------------------------------------------------------------ the mlp kernel

@pytest.mark.parametrize("symbolic", [False, True], ids=["literal-dims", "symbolic-dims"])
@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_softmax_ce_mlp_at_huge_logits_is_finite_warning_free_and_exact(symbolic, scale):
    kernel = ce_kernel(symbolic)
    arrays = data(scale)
    X, _, W1, b1, W2, b2 = arrays
    Z = np_sigmoid(X @ W1 + b1) @ W2 + b2
    assert np.abs(Z).max() == pytest.approx(scale) and Z.min() < -scale / 10  # logits of both signs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f, *grads = kernel(*arrays)
    assert np.isfinite(f) and all(np.isfinite(g).all() for g in grads)
    expected = ce_loss(*arrays)
    assert expected > scale / 100                                 # wrong classes cost ~ the logit gaps
    assert float(f) == pytest.approx(expected, rel=1e-12)
    for g, e, a in zip(grads, ce_gradients(*arrays), arrays[2:]):
        assert g.shape == a.shape
        assert rel_err(g, e) < 1e-12


@pytest.mark.parametrize("symbolic", [False, True], ids=["literal-dims", "symbolic-dims"])
def test_softmax_ce_mlp_at_ordinary_scale_matches_finite_differences(symbolic):
    kernel = ce_kernel(symbolic)
    arrays = data(3.0, seed=1)
    f, *grads = kernel(*arrays)
    assert float(f) == pytest.approx(ce_loss(*arrays), rel=1e-12)
    for i, g in zip(range(2, 6), grads):
        assert rel_err(g, fd_gradient(ce_loss, arrays, i)) < 1e-7


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e4])
def test_softmax_ce_mlp_float32_stays_float32(scale):
    kernel = ce_kernel(False)
    arrays = data(scale, seed=2, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f, *grads = kernel(*arrays)
    assert np.asarray(f).dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    a64 = [a.astype(np.float64) for a in arrays]
    assert float(f) == pytest.approx(ce_loss(*a64), rel=1e-5)
    for g, e in zip(grads, ce_gradients(*a64)):
        assert np.isfinite(g).all() and rel_err(g, e) < 1e-4


def test_loss_and_gradient_share_the_row_max_and_the_exponential():
    kernel = ce_kernel(False)
    body = kernel.source[kernel.source.index("def kernel"):]
    assert body.count(".max(axis=1, keepdims=True)") == 1
    assert body.count("numpy.exp(") == 1
    assert body.count("numpy.log(") == 1


# ------------------------------------------------- the patterns, wherever they occur

n, k = (sympy.Symbol(s, integer=True, positive=True) for s in "nk")
Z = MatrixSymbol("Z", n, k)
B = MatrixSymbol("B", n, k)
b = MatrixSymbol("b", 1, k)
E = exp(Z)
S = MatMul(E, OneMatrix(k, 1))                     # exp(Z)·𝟏ₖ, n×1


def huge_logits(seed=0, scale=1e4):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((5, 3))
    return scale * z / np.abs(z).max()


def run_quiet(kernel, *arrays):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return kernel(*arrays)


@pytest.mark.parametrize("name,expr", [
    ("softmax_rows", softmax_rows(Z)),
    ("factors-swapped", HadamardProduct(MatMul(HadamardPower(S, -1), OneMatrix(1, k)), E)),
    ("power-of-broadcast", HadamardProduct(E, HadamardPower(MatMul(S, OneMatrix(1, k)), -1))),
])
def test_softmax_in_any_order_is_stable(name, expr):
    z = huge_logits()
    out = run_quiet(numeric.compile(expr, [Z]), z)
    np.testing.assert_allclose(out, np_softmax(z), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)


def test_softmax_inside_larger_expressions_is_stable():
    z, y = huge_logits(1), huge_logits(2, scale=1.0)
    exprs = [3 * softmax_rows(Z) - B,
             HadamardProduct(B, softmax_rows(Z), B),
             Trace(B.T * log_softmax_rows(Z)),
             log_softmax_rows(Z).T * B]
    a, bb, c, d = run_quiet(numeric.compile(exprs, [Z, B]), z, y)
    np.testing.assert_allclose(a, 3 * np_softmax(z) - y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bb, y * np_softmax(z) * y, rtol=1e-12, atol=1e-300)
    assert float(c) == pytest.approx(float(np.sum(y * np_log_softmax(z))), rel=1e-12)
    np.testing.assert_allclose(d, np_log_softmax(z).T @ y, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_sum_exp_rows_and_columns(dtype):
    z = huge_logits(3).astype(dtype)
    exprs = [log(S), log(MatMul(OneMatrix(1, n), E)), log_softmax_rows(Z), log_softmax_rows(Z.T)]
    rows, cols, lsm, lsm_t = run_quiet(numeric.compile(exprs, [Z]), z)
    assert all(x.dtype == dtype for x in (rows, cols, lsm, lsm_t))
    z64 = z.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    m0, m1 = z64.max(axis=0, keepdims=True), z64.max(axis=1, keepdims=True)
    np.testing.assert_allclose(rows, m1 + np.log(np.exp(z64 - m1).sum(axis=1, keepdims=True)), rtol=tol)
    np.testing.assert_allclose(cols, m0 + np.log(np.exp(z64 - m0).sum(axis=0, keepdims=True)), rtol=tol)
    assert rows.shape == (5, 1) and cols.shape == (1, 3)
    np.testing.assert_allclose(lsm, np_log_softmax(z64), rtol=tol, atol=tol * 1e4)
    np.testing.assert_allclose(lsm_t, np_log_softmax(z64.T), rtol=tol, atol=tol * 1e4)


def test_softmax_of_a_broadcast_row_and_of_one_column():
    rng = np.random.default_rng(4)
    row = 1e4 * rng.standard_normal((1, 3))
    out = run_quiet(numeric.compile(softmax_rows(MatMul(OneMatrix(n, 1), b) + Z), [Z, b]),
                    np.zeros((5, 3)), row)
    np.testing.assert_allclose(out, np.repeat(np_softmax(row), 5, axis=0), rtol=1e-12, atol=1e-300)
    c = MatrixSymbol("c", n, 1)
    one, zero = run_quiet(numeric.compile([softmax_rows(c), log_softmax_rows(c)], [c]), np.array([[1e4], [-1e4]]))
    np.testing.assert_array_equal(one, np.ones((2, 1)))
    np.testing.assert_array_equal(zero, np.zeros((2, 1)))


def test_ordinary_exponentials_are_left_alone():
    # exp(Z)·𝟏 not under a log or a reciprocal, and a reciprocal without its exp(Z) factor
    kernel = numeric.compile([S, HadamardProduct(B, MatMul(HadamardPower(S, -1), OneMatrix(1, k)))], [Z, B])
    assert ".max(" not in kernel.source[kernel.source.index("def kernel"):]
    z, y = huge_logits(5, scale=2.0), huge_logits(6, scale=2.0)
    s, q = kernel(z, y)
    np.testing.assert_allclose(s, np.exp(z).sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(q, y / np.exp(z).sum(axis=1, keepdims=True), rtol=1e-12)


# ------------------------------------- log of a softmax as written: log(softmax(Z)), P ⊙ P^∘−1

def _one_hot(seed: int, rows: int = 5, cols: int = 3):
    return np.eye(cols)[np.random.default_rng(seed).integers(0, cols, size=rows)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_log_of_a_softmax_is_finite_where_the_softmax_underflows(dtype, columns):
    # log(softmax(Z)) written as such: exp(Z − m) ⊙ s^∘−1 under a log is (Z − m) − log s, never log 0
    z = huge_logits(7).astype(dtype)
    expr = log(softmax_cols(Z)) if columns else log(softmax_rows(Z))
    out = run_quiet(numeric.compile(expr, [Z]), z)
    z64 = z.astype(np.float64)
    want = np_log_softmax(z64.T).T if columns else np_log_softmax(z64)
    assert out.dtype == dtype and np.isfinite(out).all() and out.min() < -1e3
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * 1e4)


def test_cross_entropy_of_log_softmax_written_by_hand_and_its_gradient_at_huge_logits():
    # f = −tr(Yᵀ log softmax(XW)) with derive.gradient's unsimplified ∂f/∂W (which holds
    # softmax ⊙ softmax^∘−1 and (exp(XW)𝟏)^∘−2): finite, silent, and Xᵀ(softmax(XW) − Y) for one-hot Y
    from derive import gradient
    X, W, Y = MatrixSymbol("X", n, 3), MatrixSymbol("W", 3, k), MatrixSymbol("Y", n, k)
    f = -Trace(Y.T * log(softmax_rows(X * W)))
    kernel = numeric.compile([f, gradient(f, W)], [X, Y, W])
    rng = np.random.default_rng(8)
    x, w, y = rng.standard_normal((N, 3)), rng.standard_normal((3, K)), np.eye(K)[rng.integers(0, K, size=N)]
    for scale in (1.0, 1e4):
        loss, grad = run_quiet(kernel, scale * x, y, w)
        logits = scale * x @ w
        assert float(loss) == pytest.approx(float(-np.sum(y * np_log_softmax(logits))), rel=1e-12)
        np.testing.assert_allclose(grad, scale * x.T @ (np_softmax(logits) - y), rtol=1e-12, atol=1e-9)
    body = kernel.source[kernel.source.index("def kernel"):]
    assert body.count("numpy.exp(") == 1 and "**(-2)" not in body


def test_a_product_with_its_own_reciprocal_cancels_and_only_there():
    A = MatrixSymbol("A", n, k)
    a = huge_logits(9, scale=3.0)
    y = huge_logits(10, scale=2.0)
    keep, gone, absolute = numeric.compile(
        [HadamardProduct(A, HadamardPower(HadamardProduct(A, B), -1), B, B),     # → B
         HadamardProduct(HadamardPower(A, 2), HadamardPower(A, -2), B),           # → B
         HadamardPower(HadamardPower(A, 2), sympy.Rational(1, 2))], [A, B])(a, y)  # |A|, not A
    np.testing.assert_allclose(keep, y, rtol=1e-15)
    np.testing.assert_allclose(gone, y, rtol=1e-15)
    np.testing.assert_allclose(absolute, np.abs(a), rtol=1e-15)
    assert (a < 0).any()


def test_the_power_and_log_rewrites_apply_to_the_graph_and_can_be_turned_off():
    from numeric.ir import REWRITES, Graph
    on, off = Graph([Z]), Graph([Z], rewrites=set(REWRITES) - {"cancel_powers", "log_product"})
    for g, cancels in ((on, True), (off, False)):
        z = g.arg_nodes[Z]
        e = g.fn("exp", z)
        assert (g.mul([e, g.pow(e, -1.0)]).op == "const") is cancels
        assert (g.fn("log", g.mul([e, e])).op == "fn") is not cancels      # log(e ⊙ e) → z + z


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_program_that_logs_its_softmax_is_finite_at_huge_logits(dtype):
    # the program language's own example: P = softmax(Z); f = −sum(Y .* log(P))
    from derive import backprop, program
    from derive.kernel_stages import kernel_stages
    net = program("X: n×d; Y: n×k; param W: d×k; Z = X*W; P = softmax(Z); f = -sum(Y .* log(P))")
    stages, outputs, args = kernel_stages(backprop(net))
    kernel = numeric.compile(outputs, args, stages=stages)
    rng = np.random.default_rng(11)
    x, w, y = rng.standard_normal((N, 3)), rng.standard_normal((3, K)), np.eye(K)[rng.integers(0, K, size=N)]
    for scale in (1.0, 1e4):
        loss, grad = run_quiet(kernel, *(a.astype(dtype) for a in (scale * x, y, w)))
        logits = scale * x @ w
        tol = 1e-12 if dtype == np.float64 else 1e-5
        assert loss.dtype == dtype and grad.dtype == dtype
        assert float(loss) == pytest.approx(float(-np.sum(y * np_log_softmax(logits))), rel=tol)
        np.testing.assert_allclose(grad, scale * x.T @ (np_softmax(logits) - y), rtol=tol, atol=tol * scale)


def test_rational_powers_that_cancel_are_dropped():
    A = MatrixSymbol("A", n, k)
    R = sympy.Rational
    kernel = numeric.compile(HadamardProduct(HadamardPower(A, R(1, 10)), HadamardPower(A, R(2, 10)),
                                             HadamardPower(A, R(-3, 10)), B), [A, B])
    assert "**" not in kernel.source[kernel.source.index("def kernel"):].split('"""')[-1]
    a, b = -np.abs(huge_logits(12, scale=2.0)), huge_logits(13, scale=2.0)    # negative: any power is NaN
    np.testing.assert_array_equal(run_quiet(kernel, a, b), b)


def test_log_of_a_power_of_a_softmax_is_finite():
    z = huge_logits(14)
    kernel = numeric.compile([log(HadamardPower(softmax_rows(Z), 2)), log(HadamardPower(softmax_rows(Z), -1))], [Z])
    sq, inv = run_quiet(kernel, z)
    np.testing.assert_allclose(sq, 2 * np_log_softmax(z), rtol=1e-12)
    np.testing.assert_allclose(inv, -np_log_softmax(z), rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 1), (1, 6), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_sum_exp_over_every_entry_and_its_gradient_are_finite(shape, dtype):
    # log Σᵢⱼ exp(zᵢⱼ) of a column, a row and a matrix: by the largest entry (a row or a matrix
    # overflowed to inf, its gradient to nan); the loss is a scalar for every shape
    from derive import gradient
    from derive.lang import parse
    p = parse("log(sum(exp(z)))", {"z": shape})
    z = p.symbols["z"]
    kernel = numeric.compile([p.expr, gradient(p.expr, z)], [z])
    for scale in (1.0, 1e4):
        v = (scale * np.random.default_rng(15).standard_normal(shape)).astype(dtype)
        f, g = run_quiet(kernel, v)
        v64 = v.astype(np.float64)
        want = v64.max() + np.log(np.exp(v64 - v64.max()).sum())
        tol = 1e-12 if dtype == np.float64 else 1e-5
        assert np.shape(f) == () and np.asarray(f).dtype == dtype and g.dtype == dtype
        assert float(f) == pytest.approx(want, rel=tol)
        np.testing.assert_allclose(g, np.exp(v64 - want), rtol=tol, atol=tol)
