"""What a kernel does with arrays that are not plain float32/float64 ndarrays.

np.matrix is converted to a plain ndarray (its ``*`` would otherwise turn every ⊙ of the
kernel into a matrix product); masked arrays, ragged lists, object, complex and longdouble
arrays are refused with an error naming the argument; float16 is computed in float32.
The seed kernel's five outputs meet a backprop written by hand in NumPy.
"""
from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
from sympy import Determinant, Inverse, MatrixSymbol, Symbol, Trace, log

import numeric
from derive import gradient
from derive.networks import seed_network
from tests.oracle import d, k, n, seed_backprop, seed_data

# np.matrix itself warns that it is not recommended: that is the point of these tests
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

NET = seed_network(bias="row")
SEED_ARGS = [*NET.inputs, *NET.params]
SEED_KERNEL = numeric.compile([NET.f, *(gradient(NET.f, p) for p in NET.params)], SEED_ARGS)

X, W = MatrixSymbol("X", n, d), MatrixSymbol("W", d, k)
S = MatrixSymbol("S", d, d)
lam = Symbol("lam")
SMALL = numeric.compile([X * W, lam * Trace(W.T * W)], [X, W, lam])


def seed_arrays(dims, seed, dtype=np.float64):
    return list(seed_data(*dims, seed=seed, dtype=dtype).values())


def assert_matches_hand_backprop(outputs, arrays, rtol):
    expected = seed_backprop(*[np.asarray(a, dtype=np.float64) for a in arrays])
    assert len(outputs) == len(expected) == 5
    for got, want in zip(outputs, expected):
        assert type(got) is not np.matrix
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=rtol)


# (5, 5, 5, 5): every * of np.matrix conforms, so before the conversion ⊙ silently became a matrix
# product; (4, 3, 5, 2): the non-square shapes of the other tests
@pytest.mark.parametrize("dims", [(4, 3, 5, 2), (5, 5, 5, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_np_matrix_arguments_give_the_hand_written_backprop(dims, dtype):
    arrays = seed_arrays(dims, 1, dtype)
    outputs = SEED_KERNEL(*[np.asmatrix(a) for a in arrays])
    assert all(type(o) is np.ndarray for o in outputs[1:]) and np.asarray(outputs[0]).ndim == 0
    assert all(o.dtype == dtype for o in outputs)
    assert_matches_hand_backprop(outputs, arrays, 1e-9 if dtype == np.float64 else 1e-4)


def test_np_matrix_among_plain_arrays_and_as_a_scalar():
    arrays = seed_arrays((5, 5, 5, 5), 2)
    mixed = [np.asmatrix(a) if i % 2 else a for i, a in enumerate(arrays)]
    assert_matches_hand_backprop(SEED_KERNEL(*mixed), arrays, 1e-9)
    x, w = np.arange(12.0).reshape(4, 3), np.arange(6.0).reshape(3, 2)
    prod, penalty = SMALL(np.asmatrix(x), np.asmatrix(w), np.asmatrix([[0.5]]))
    assert type(prod) is np.ndarray
    np.testing.assert_array_equal(prod, x @ w)
    assert float(penalty) == 0.5 * float(np.sum(w * w))


def test_exported_module_converts_np_matrix(tmp_path):
    path = numeric.export([NET.f, *(gradient(NET.f, p) for p in NET.params)], SEED_ARGS,
                          tmp_path / "seedgrads.py", name="seed")
    spec = importlib.util.spec_from_file_location("seedgrads", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    arrays = seed_arrays((5, 5, 5, 5), 3)
    assert_matches_hand_backprop(mod.seed(*[np.asmatrix(a) for a in arrays]), arrays, 1e-9)
    with pytest.raises(TypeError, match="argument W1: masked arrays are not supported"):
        mod.seed(*arrays[:2], np.ma.masked_less(arrays[2], 0.0), *arrays[3:])


@pytest.mark.parametrize("mask", [False, True])
def test_masked_array_is_refused_naming_the_argument(mask):
    w = np.ma.array(np.ones((3, 2)), mask=np.eye(3, 2, dtype=bool) if mask else False)
    with pytest.raises(TypeError, match=re.escape("argument W: masked arrays are not supported (the mask "
                                                  "would be ignored); pass W.filled(value) or W.data")):
        SMALL(np.ones((4, 3)), w, 1.0)
    with pytest.raises(TypeError, match="argument lam: masked arrays are not supported"):
        SMALL(np.ones((4, 3)), np.ones((3, 2)), np.ma.masked)


def test_ragged_list_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"argument X: cannot be converted to an array: .*inhomogeneous"):
        SMALL([[1.0, 2.0, 3.0]] * 3 + [[1.0, 2.0]], np.ones((3, 2)), 1.0)
    with pytest.raises(ValueError, match="argument W: cannot be converted to an array"):
        SMALL(np.ones((4, 3)), [[1.0, 2.0], [3.0], [4.0, 5.0]], 1.0)


@pytest.mark.parametrize("bad,message", [
    (np.ones((3, 2), dtype=object), "argument W: expected a real numeric array, got dtype object"),
    (np.ones((3, 2), dtype=complex), "argument W: complex arrays are not supported (dtype complex128)"),
    (np.full((3, 2), "1"), "argument W: expected a real numeric array, got dtype <U1"),
])
def test_object_complex_and_text_arrays_are_refused(bad, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        SMALL(np.ones((4, 3)), bad, 1.0)


def test_float16_is_computed_in_float32_also_through_linalg():
    rng = np.random.default_rng(4)
    x16, w16 = rng.standard_normal((4, 3)).astype(np.float16), rng.standard_normal((3, 2)).astype(np.float16)
    prod, penalty = SMALL(x16, w16, 2.0)
    assert prod.dtype == np.float32 and np.asarray(penalty).dtype == np.float32
    np.testing.assert_allclose(prod, x16.astype(np.float64) @ w16.astype(np.float64), rtol=1e-6)
    assert abs(float(penalty) - 2.0 * float(np.sum(w16.astype(np.float64) ** 2))) < 1e-5
    # mixed with float32: float32; with float64: float64
    assert SMALL(x16, w16.astype(np.float32), 1.0)[0].dtype == np.float32
    assert SMALL(x16, w16.astype(np.float64), 1.0)[0].dtype == np.float64
    # inv and det, which NumPy's linalg refuses in float16
    lin = numeric.compile([Inverse(S), log(Determinant(S))], [S])
    s = (np.eye(3) * 4 + rng.standard_normal((3, 3))).astype(np.float16)
    inv, logdet = lin(s)
    s64 = s.astype(np.float64)
    assert inv.dtype == np.float32
    np.testing.assert_allclose(inv, np.linalg.inv(s64), rtol=1e-5, atol=1e-6)
    assert abs(float(logdet) - np.log(np.linalg.det(s64))) < 1e-5


def test_longdouble_is_refused_unless_the_dtype_is_forced():
    x = np.ones((4, 3), dtype=np.longdouble)
    message = (f"argument X: dtype {np.dtype(np.longdouble)} is not supported (kernels compute in float32 "
               "or float64, as NumPy's linalg does); convert it with X.astype(numpy.float64)")
    with pytest.raises(TypeError, match=re.escape(message)):
        SMALL(x, np.ones((3, 2)), 1.0)
    with pytest.raises(TypeError, match="argument lam: dtype"):
        SMALL(np.ones((4, 3)), np.ones((3, 2)), np.longdouble(1.0))
    forced = numeric.compile(X * W, [X, W], dtype=np.float64)
    out = forced(x, np.ones((3, 2), dtype=np.longdouble))
    assert out.dtype == np.float64 and (out == 3.0).all()


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.int64, np.complex128])
def test_forcing_a_dtype_other_than_float32_or_float64_is_refused(dtype, tmp_path):
    message = f"dtype {np.dtype(dtype)} is not supported: kernels compute in float32 or float64"
    with pytest.raises(ValueError, match=re.escape(message)):
        numeric.compile(X * W, [X, W], dtype=dtype)
    with pytest.raises(ValueError, match=re.escape(message)):
        numeric.export(X * W, [X, W], tmp_path / "m.py", dtype=dtype)


def test_booleans_and_non_native_byte_order_are_computed_in_float64():
    x = np.ones((4, 3), dtype=bool)
    w = np.arange(6.0).reshape(3, 2).astype(">f8")
    prod, _ = SMALL(x, w, 1.0)
    assert prod.dtype == np.float64 and prod.dtype.isnative
    np.testing.assert_array_equal(prod, np.ones((4, 3)) @ np.arange(6.0).reshape(3, 2))
