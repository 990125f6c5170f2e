"""Scalar symbols (a weight decay λ) as kernel arguments: values, checks, dtypes, export.

Oracles: losses and gradients typed by hand in NumPy, and central differences.
Shapes non-square and all different: n=6, d=3, m=5, k=4.
"""
from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
import sympy
from sympy import MatrixSymbol, Trace

import numeric
from derive.backprop import backprop
from derive.networks import mlp
from tests.oracle import fd_gradient, rel_err

N, D, M, K = 6, 3, 5, 4
LAM = sympy.Symbol("lambda")        # a Python keyword: the kernel renames its parameter


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def wd_loss(X, Y, W1, b1, W2, b2, lam) -> float:
    """‖σ(XW1 + b1)W2 + b2 − Y‖²_F + λ(‖W1‖²_F + ‖W2‖²_F)."""
    R = np_sigmoid(X @ W1 + b1) @ W2 + b2 - Y
    return float(np.sum(R ** 2) + lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2)))


def wd_arrays(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shapes = [(N, D), (N, K), (D, M), (1, M), (M, K), (1, K)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def wd_kernel(symbolic: bool):
    net = (mlp(["d", "m", "k"], weight_decay="lambda") if symbolic
           else mlp([D, M, K], weight_decay="lambda", n=N))
    assert LAM in net.f.free_symbols
    grads = backprop(net).gradients(expanded=True)
    return numeric.compile([net.f, *(grads[p] for p in net.params)], [*net.inputs, *net.params, LAM])


@pytest.mark.parametrize("symbolic", [False, True], ids=["literal-dims", "symbolic-dims"])
@pytest.mark.parametrize("lam", [0.37, 0.0, 2.5])
def test_weight_decay_gradients_with_lambda_as_an_argument(symbolic, lam):
    kernel = wd_kernel(symbolic)
    arrays = wd_arrays()
    f, *grads = kernel(*arrays, lam)
    assert float(f) == pytest.approx(wd_loss(*arrays, lam), rel=1e-12)
    for i, g in zip(range(2, 6), grads):
        assert g.shape == arrays[i].shape
        assert rel_err(g, fd_gradient(wd_loss, [*arrays, lam], i)) < 1e-7


def test_lambda_is_a_live_argument_not_a_constant():
    kernel = wd_kernel(False)
    arrays = wd_arrays(1)
    _, gW1a, gb1a, _, _ = kernel(*arrays, 0.0)
    _, gW1b, gb1b, _, _ = kernel(*arrays, 1.0)
    np.testing.assert_allclose(gW1b - gW1a, 2 * arrays[2], rtol=1e-12)   # ∂(λ‖W1‖²)/∂W1 = 2λW1
    np.testing.assert_array_equal(gb1a, gb1b)                            # no decay on biases
    assert "kernel(X, Y, W1, b1, W2, b2, lambda)" in kernel.source
    assert repr(kernel).startswith("<Kernel kernel(X: 6×3, Y: 6×4, W1: 3×5, b1: 1×5, W2: 5×4, b2: 1×4, lambda: scalar)")


@pytest.mark.parametrize("lam", [0.5, np.float64(0.5), np.float32(0.5), np.array(0.5), np.array([[0.5]]), [0.5], 1, True])
def test_scalar_forms_accepted_and_float32_stays_float32(lam):
    kernel = wd_kernel(False)
    a32 = wd_arrays(2, dtype=np.float32)
    f, *grads = kernel(*a32, lam)
    assert np.asarray(f).dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    a64 = [a.astype(np.float64) for a in a32]
    value = float(np.asarray(lam, dtype=np.float64).reshape(()))
    assert float(f) == pytest.approx(wd_loss(*a64, value), rel=1e-5)
    f64, *_ = kernel(*a64, lam)
    assert np.asarray(f64).dtype == np.float64
    assert float(f64) == pytest.approx(wd_loss(*a64, value), rel=1e-12)


@pytest.mark.parametrize("bad,error,message", [
    (np.array([0.5, 0.5]), ValueError, "argument lambda: expected a scalar (a real number or an array of size 1), "
                                       "got an array of shape (2,)"),
    (np.ones((2, 3)), ValueError, "argument lambda: expected a scalar"),
    (np.array([]), ValueError, "argument lambda: expected a scalar"),
    ("0.5", TypeError, "argument lambda: expected a real number, got dtype <U3"),
    (0.5 + 1j, TypeError, "argument lambda: complex numbers are not supported"),
    (None, TypeError, "argument lambda: expected a real number, got dtype object"),
])
def test_bad_scalar_is_named(bad, error, message):
    kernel = wd_kernel(False)
    with pytest.raises(error, match=re.escape(message)):
        kernel(*wd_arrays(), bad)


def test_wrong_count_with_scalars_says_arguments():
    with pytest.raises(TypeError, match=re.escape("kernel(X, Y, W1, b1, W2, b2, lambda) takes 7 arguments, got 6")):
        wd_kernel(False)(*wd_arrays())


def test_scalar_only_kernel_dtype_follows_the_scalars():
    a, c = sympy.Symbol("a"), sympy.Symbol("c", positive=True)
    kernel = numeric.compile([a * sympy.exp(c) + c ** 2, sympy.log(c)], [a, c])
    v, w = kernel(np.float32(2.0), np.float32(3.0))
    assert v.dtype == np.float32 and w.dtype == np.float32
    v, w = kernel(2.0, 3)
    assert v.dtype == np.float64 and v == pytest.approx(2 * np.exp(3.0) + 9.0) and w == pytest.approx(np.log(3.0))


def test_scalar_in_matrix_functions_and_mixed_with_dimensions():
    n, d = (sympy.Symbol(s, integer=True, positive=True) for s in "nd")
    X, W = MatrixSymbol("X", n, d), MatrixSymbol("W", d, 2)
    t = sympy.Symbol("t")
    # t scales inside an elementwise function and a trace, next to a dimension n
    from derive.elementwise import tanh

    exprs = [tanh(t * X * W), n * t * Trace(W.T * W), t]
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    out, tr, tv = numeric.compile(exprs, [X, W, t])(x, w, -0.7)
    np.testing.assert_allclose(out, np.tanh(-0.7 * x @ w), rtol=1e-12)
    assert float(tr) == pytest.approx(5 * -0.7 * np.sum(w ** 2), rel=1e-12)
    assert float(tv) == -0.7


def test_argument_errors_at_compile_time():
    n = sympy.Symbol("n", integer=True, positive=True)
    X = MatrixSymbol("X", n, 3)
    lam = sympy.Symbol("lam")
    with pytest.raises(ValueError, match=re.escape("argument n is a dimension (of X)")):
        numeric.compile(n * X, [X, n])
    with pytest.raises(NotImplementedError, match=re.escape("scalar symbol lam is not among the arguments (X)")):
        numeric.compile(lam * X, [X])
    with pytest.raises(ValueError, match="argument lam is listed twice"):
        numeric.compile(lam * X, [X, lam, lam])
    with pytest.raises(TypeError, match="MatrixSymbols or scalar Symbols"):
        numeric.compile(lam * X, [X, 2.0])


def test_export_with_a_scalar_argument(tmp_path):
    n, d = (sympy.Symbol(s, integer=True, positive=True) for s in "nd")
    X, W = MatrixSymbol("X", n, d), MatrixSymbol("W", d, 2)
    lam = sympy.Symbol("lam")
    exprs = [Trace((X * W).T * (X * W)) + lam * Trace(W.T * W), 2 * X.T * X * W + 2 * lam * W]
    path = numeric.export(exprs, [X, lam, W], tmp_path / "ridge.py", name="ridge")
    text = path.read_text()
    assert "lam is a scalar" in text and "lam: scalar" in text
    spec = importlib.util.spec_from_file_location("ridge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    f, g = module.ridge(x, 0.3, w)
    assert float(f) == pytest.approx(np.sum((x @ w) ** 2) + 0.3 * np.sum(w ** 2), rel=1e-12)
    np.testing.assert_allclose(g, 2 * x.T @ x @ w + 0.6 * w, rtol=1e-12)
    f32, g32 = module.ridge(x.astype(np.float32), 0.3, w.astype(np.float32))
    assert np.asarray(f32).dtype == np.float32 and g32.dtype == np.float32
    with pytest.raises(ValueError, match="argument lam: expected a scalar"):
        module.ridge(x, np.ones(2), w)
    compiled = numeric.compile(exprs, [X, lam, W], name="ridge")
    np.testing.assert_array_equal(compiled(x, 0.3, w)[1], g)


def test_lambdify_with_a_scalar_symbol():
    X = MatrixSymbol("X", 4, 3)
    lam = sympy.Symbol("lam")
    fn = sympy.lambdify([X, lam], lam * X * X.T, modules="numpy", printer=numeric.NumericPrinter)
    x = np.random.default_rng(5).standard_normal((4, 3))
    np.testing.assert_allclose(fn(x, 1.5), 1.5 * x @ x.T, rtol=1e-12)
