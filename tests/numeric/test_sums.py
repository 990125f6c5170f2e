"""Sums across rows and columns in NumPy kernels: 1ᵀG and G1 as BLAS products with a kept row of ones
(``_colsum``, ``_rowsum`` of :mod:`numeric.numpy_checks`).

Oracles: ``numpy.sum`` in float64 (``math.fsum`` for the accuracy check) and gradients written by hand.
Shapes non-square and all different (n=4, m=5, k=2).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from sympy import MatrixSymbol, OneMatrix

import numeric
from numeric import numpy_checks

n = sympy.Symbol("n", integer=True, positive=True)
N, M, K = 4, 5, 2
G = MatrixSymbol("G", n, M)
A = MatrixSymbol("A", M, K)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_column_and_row_sums_of_a_kernel_meet_numpy_sum(dtype: str) -> None:
    kernel = numeric.compile([OneMatrix(1, n) * G, G * OneMatrix(M, 1), OneMatrix(1, M) * G.T,
                              OneMatrix(1, n) * G * A], [G, A])
    assert "_colsum(" in kernel.source and "_rowsum(" in kernel.source
    rng = np.random.default_rng(3)
    g, a = rng.standard_normal((N, M)).astype(dtype), rng.standard_normal((M, K)).astype(dtype)
    cols, rows, cols_t, chained = kernel(g, a)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for got, want in ((cols, g.astype(float).sum(axis=0, keepdims=True)),
                      (rows, g.astype(float).sum(axis=1, keepdims=True)),
                      (cols_t, g.astype(float).T.sum(axis=0, keepdims=True)),
                      (chained, g.astype(float).sum(axis=0, keepdims=True) @ a.astype(float))):
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_a_sum_over_no_rows_is_zero() -> None:
    kernel = numeric.compile(OneMatrix(1, n) * G, [G])
    got = kernel(np.zeros((0, M)))
    assert got.shape == (1, M) and not got.any()


def test_the_sums_are_as_accurate_as_numpy_sum() -> None:
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4096, 3)) * np.logspace(0, 6, 4096)[:, None]
    exact = np.array([math.fsum(g[:, j]) for j in range(3)])
    ours = np.abs(numpy_checks._colsum(g)[0] - exact).max()
    theirs = np.abs(g.sum(axis=0) - exact).max()
    assert ours <= 4 * theirs + 1e-9 * np.abs(exact).max()


def test_the_rows_of_ones_are_read_only_and_few() -> None:
    numpy_checks._ONES.clear()
    row = numpy_checks._ones_row(N, np.dtype(np.float32))
    assert row.shape == (1, N) and row.dtype == np.float32 and not row.flags.writeable
    assert numpy_checks._ones_row(N, np.dtype(np.float32)) is row
    for length in range(1, 3 * numpy_checks._ONES_KEPT):
        numpy_checks._ones_row(length, np.dtype(np.float64))
    assert len(numpy_checks._ONES) <= numpy_checks._ONES_KEPT
    numpy_checks._ONES.clear()
    long = numpy_checks._ones_row(numpy_checks._ONES_LONGEST + 1, np.dtype(np.float64))
    assert long.shape == (1, numpy_checks._ONES_LONGEST + 1) and not numpy_checks._ONES


def test_the_seed_gradients_with_sums_meet_backprop_by_hand() -> None:
    from derive import gradient
    from derive.networks import seed_network
    from tests.oracle import rel_err

    net = seed_network(bias="row")
    kernel = numeric.compile([gradient(net.f, p) for p in net.params], [*net.inputs, *net.params])
    assert kernel.source.count("= _colsum(") == 2
    rng = np.random.default_rng(1)
    d, m, k = 3, 5, 2
    X, Y = rng.standard_normal((N, d)), rng.standard_normal((N, k))
    W1, b1, W2, b2 = (rng.standard_normal(s) for s in ((d, m), (1, m), (m, k), (1, k)))
    H = 1 / (1 + np.exp(-(X @ W1 + b1)))
    R = 2 * (H @ W2 + b2 - Y)
    Gh = (R @ W2.T) * H * (1 - H)
    for got, want in zip(kernel(X, Y, W1, b1, W2, b2), (X.T @ Gh, Gh.sum(0, keepdims=True), H.T @ R,
                                                        R.sum(0, keepdims=True))):
        assert rel_err(got, want) < 1e-12
