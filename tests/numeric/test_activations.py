"""Kernels of the elementwise functions of derive.elementwise: every record's NumPy code against NumPy
written by hand, gelu and swish and their derivatives finite and silent at ±1e4, float32 kept."""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from sympy import MatrixSymbol, Trace

import derive
import numeric
from derive import elementwise as ew


def np_sigmoid(x):
    """1/(1 + e^−x) without overflow: e^−|x| only."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))

Z, G = MatrixSymbol("Z", 4, 5), MatrixSymbol("G", 4, 5)

# written by hand, in float64, from the definitions
_C = np.sqrt(2 / np.pi)
FORWARD = {
    "sigmoid": lambda x: np_sigmoid(x),
    "tanh": np.tanh,
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "softplus": lambda x: np.logaddexp(0, x),
    "exp": np.exp,
    "log": np.log,
    "step": lambda x: (x > 0) * 1.0,
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x**3))),
    "swish": lambda x: x * np_sigmoid(x),
}
PRIME = {
    "gelu": lambda x: (0.5 * (1 + np.tanh(_C * (x + 0.044715 * x**3)))
                       + 0.5 * x * (1 - np.tanh(_C * (x + 0.044715 * x**3)) ** 2) * _C * (1 + 3 * 0.044715 * x**2)),
    "swish": lambda x: np_sigmoid(x) * (1 + x * (1 - np_sigmoid(x))),
}
HUGE = np.array([[-1e4, -1e3, -60.0, -20.0, -3.0], [-1.0, -0.1, 0.0, 0.1, 1.0],
                 [3.0, 20.0, 60.0, 1e3, 1e4], [-1e4, 1e4, -0.5, 0.5, 7.0]])


def test_every_function_has_a_kernel_that_meets_numpy_by_hand() -> None:
    assert set(FORWARD) <= set(derive.elementwise_functions())
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 5)) * 3
    for name, record in derive.elementwise_functions().items():
        if name not in FORWARD:
            continue
        arg = np.abs(z) + 0.1 if name == "log" else z
        np.testing.assert_allclose(numeric.compile(record(Z), [Z])(arg), FORWARD[name](arg), rtol=1e-12,
                                   atol=1e-300, err_msg=name)


@pytest.mark.parametrize("name", ["gelu", "swish"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_and_swish_kernels_are_finite_and_silent_at_1e4(name, dtype) -> None:
    record = derive.elementwise_functions()[name]
    grad = derive.gradient(Trace(G.T * record(Z)), Z)  # G ⊙ φ′(Z)
    kernel = numeric.compile([record(Z), grad], [Z, G])
    z, g = HUGE.astype(dtype), np.ones((4, 5), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, slope = kernel(z, g)
    assert value.dtype == dtype and slope.dtype == dtype
    assert np.isfinite(value).all() and np.isfinite(slope).all()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(value, FORWARD[name](HUGE), **tol)
    np.testing.assert_allclose(slope, PRIME[name](HUGE), **tol)
    assert value[0, 0] == pytest.approx(0.0, abs=1e-30) and value[2, 4] == pytest.approx(1e4)


@pytest.mark.parametrize("name", ["gelu", "swish"])
def test_exported_kernels_meet_numpy_by_hand(name, tmp_path) -> None:
    record = derive.elementwise_functions()[name]
    W = MatrixSymbol("W", 3, 5)
    X = MatrixSymbol("X", 4, 3)
    path = numeric.export([record(X * W), ew.elementwise_derivative(record(X * W))], [X, W],
                          tmp_path / f"{name}.py", name=name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    value, slope = getattr(module, name)(x, w)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, FORWARD[name]((x @ w).astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(slope, PRIME[name]((x @ w).astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_an_argument_read_twice_by_the_code_is_computed_once() -> None:
    X, W = MatrixSymbol("X", 4, 3), MatrixSymbol("W", 3, 5)
    for record in (ew.gelu, ew.swish, ew.sigmoid):
        kernel = numeric.compile(record(X * W), [X, W])
        assert kernel.source.count("X @ W") == 1, kernel.source
