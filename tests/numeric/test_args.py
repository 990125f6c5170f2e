"""Argument checking, dtypes, NaN and warnings."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from sympy import MatrixSymbol, Trace
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction as EAF

import numeric
from derive.elementwise import Sigmoid, Softplus
from tests.oracle import d, k, n, np_sigmoid

X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, k)
W = MatrixSymbol("W", d, k)
b = MatrixSymbol("b", 1, k)
KERNEL = numeric.compile([X * W + Y, Trace(Y.T * Y)], [X, Y, W])
GOOD = [np.ones((4, 3)), np.ones((4, 2)), np.ones((3, 2))]


def test_wrong_count():
    with pytest.raises(TypeError, match=re.escape("kernel(X, Y, W) takes 3 arrays, got 2")):
        KERNEL(*GOOD[:2])


def test_inconsistent_n_names_argument_and_dims():
    with pytest.raises(ValueError, match=re.escape("argument Y: expected shape (n, k) = (4, 2) from X, got (5, 2)")):
        KERNEL(GOOD[0], np.ones((5, 2)), GOOD[2])


def test_inconsistent_shared_dimension_later():
    with pytest.raises(ValueError, match=re.escape("argument W: expected shape (d, k) = (3, 2) from X, Y, got (2, 3)")):
        KERNEL(GOOD[0], GOOD[1], np.ones((2, 3)))


def test_literal_dimension():
    kern = numeric.compile(Y + EAF(Sigmoid, Y), [Y, b])
    with pytest.raises(ValueError, match=re.escape("argument b: expected shape (1, k) = (1, 2) from Y, got (1, 3)")):
        kern(np.ones((4, 2)), np.ones((1, 3)))
    with pytest.raises(ValueError, match=re.escape("argument b: expected shape (1, k) = (1, 2), got (3, 2)")):
        kern(np.ones((4, 2)), np.ones((3, 2)))


def test_one_dimensional_array():
    with pytest.raises(ValueError, match=re.escape("argument X: expected a 2-D array of shape (n, d), got a 1-D array of shape (3,)")):
        KERNEL(np.ones(3), *GOOD[1:])


def test_complex_and_object_rejected():
    with pytest.raises(TypeError, match="argument Y: complex"):
        KERNEL(GOOD[0], GOOD[1] + 1j, GOOD[2])
    with pytest.raises(TypeError, match="argument W: expected a real numeric array"):
        KERNEL(GOOD[0], GOOD[1], np.array([["a", "b"]] * 3))


@pytest.mark.parametrize("dtypes,expected", [
    ((np.float32,) * 3, np.float32),
    ((np.float64,) * 3, np.float64),
    ((np.int64,) * 3, np.float64),
    ((np.float32, np.float64, np.float32), np.float64),
    ((np.float32, np.int32, np.float32), np.float64),
])
def test_dtype_rules(dtypes, expected):
    rng = np.random.default_rng(0)
    raw = [rng.integers(-3, 4, size=a.shape) for a in GOOD]
    arrays = [r.astype(t) for r, t in zip(raw, dtypes)]
    out, tr = KERNEL(*arrays)
    assert out.dtype == expected and np.asarray(tr).dtype == expected
    np.testing.assert_allclose(out, raw[0] @ raw[2] + raw[1])
    assert float(tr) == float(np.sum(raw[1] ** 2))


def test_forced_dtype_and_lists():
    kern = numeric.compile(X * W, [X, W], dtype=np.float32)
    out = kern([[1, 2, 3]] * 4, [[1.0, 0.0]] * 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[6.0, 0.0]] * 4))


def test_nan_propagates():
    a = np.ones((4, 3))
    a[1, 2] = np.nan
    out, tr = KERNEL(a, GOOD[1], GOOD[2])
    assert np.isnan(out[1]).all() and not np.isnan(out[0]).any() and not np.isnan(tr)
    kern = numeric.compile(EAF(Sigmoid, Y), [Y])
    y = np.zeros((4, 2))
    y[0, 0] = np.nan
    s = kern(y)
    assert np.isnan(s[0, 0]) and s[1, 1] == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_softplus_extremes_warning_free(dtype):
    kern = numeric.compile([EAF(Sigmoid, Y), EAF(Softplus, Y), EAF(Sigmoid, Y).applyfunc(lambda t: t)], [Y])
    y = np.array([[-1e4, 1e4], [-50.0, 50.0], [0.0, -800.0], [3.0, -3.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, sp, _ = kern(y)
    assert s.dtype == dtype and np.isfinite(s).all() and np.isfinite(sp).all()
    np.testing.assert_allclose(s[0], [0.0, 1.0], atol=0)
    np.testing.assert_allclose(s[3], np_sigmoid(np.array([3.0, -3.0])), rtol=1e-6)
    np.testing.assert_allclose(sp[0], [0.0, 1e4])
    np.testing.assert_allclose(sp[1], [np.log1p(np.exp(-50.0)), 50.0])


def test_unknown_symbol_and_bad_args_at_compile_time():
    Z = MatrixSymbol("Z", n, d)
    with pytest.raises(ValueError, match=r"matrix symbol Z .* is not among the arguments"):
        numeric.compile(X + Z, [X])
    with pytest.raises(TypeError, match="MatrixSymbols"):
        numeric.compile(X, [X, "Y"])
    with pytest.raises(ValueError, match="listed twice"):
        numeric.compile(X, [X, X])


def test_cache_repr_and_source():
    k1 = numeric.compile(X * W, [X, W])
    assert numeric.compile(X * W, [X, W]) is k1
    assert repr(k1) == "<Kernel kernel(X: n×d, W: d×k) -> n×k, 1 temporaries>"
    assert "def kernel(*arrays):" in k1.source and "import sympy" not in k1.source


def test_unsupported_construct_is_named():
    from sympy import Adjoint

    with pytest.raises(NotImplementedError, match="Adjoint"):
        numeric.compile(Adjoint(X) * X, [X])


@pytest.mark.parametrize("name", ["numpy", "_prepare", "_cast", "_SPEC"])
def test_kernel_name_that_would_shadow_the_module_is_refused(name):
    # def numpy(*arrays) would shadow the module it calls: refused when compiled, not an AttributeError per call
    with pytest.raises(ValueError, match=f"kernel name '{name}' is taken by the generated module"):
        numeric.compile(2 * X, [X], name=name)
    kernel = numeric.compile(2 * X, [X], name="X")      # an argument's name is fine: it is local
    np.testing.assert_array_equal(kernel(np.ones((4, 3))), np.full((4, 3), 2.0))
