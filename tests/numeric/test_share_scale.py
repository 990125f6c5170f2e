"""``Graph.share_scale``: outputs c·Lᵢ(v) computed from one c·v, and left alone where that would
compute a node twice or is not linear.  Oracles: the same products written by hand in NumPy, and the
seed network's backprop by hand; shapes all different (n=4, d=3, m=5, k=2)."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import MatrixSymbol

import numeric
from derive import gradient
from derive.networks import seed_network
from tests.oracle import rel_err

N, D, M, K = 4, 3, 5, 2
A, R, B = MatrixSymbol("A", D, N), MatrixSymbol("R", N, K), MatrixSymbol("B", K, M)
RNG = np.random.default_rng(7)
a, r, b = RNG.standard_normal((D, N)), RNG.standard_normal((N, K)), RNG.standard_normal((K, M))


def test_two_outputs_share_one_scaled_argument() -> None:
    kernel = numeric.compile([-2 * A * R, -2 * R * B], [A, R, B])
    assert kernel.source.count("-2.0 * ") == 1
    got = kernel(a, r, b)
    assert rel_err(got[0], -2 * a @ r) < 1e-14 and rel_err(got[1], -2 * r @ b) < 1e-14


@pytest.mark.parametrize("exprs, want", [
    # the product A·R is also an output unscaled: scaling R inside it would change that output
    ([2 * A * R, 2 * R * B, A * R], lambda: [2 * a @ r, 2 * r @ b, a @ r]),
    # different coefficients share nothing
    ([2 * A * R, 3 * R * B], lambda: [2 * a @ r, 3 * r @ b]),
    # Rᵀ·R is not linear in R
    ([2 * R.T * R, 2 * R * B], lambda: [2 * r.T @ r, 2 * r @ b]),
])
def test_left_alone_where_sharing_is_wrong(exprs, want) -> None:
    kernel = numeric.compile(exprs, [A, R, B])
    for g, w in zip(kernel(a, r, b), want()):
        assert rel_err(g, w) < 1e-14
    assert kernel.source.count("2.0 * ") + kernel.source.count("3.0 * ") == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seed_gradients_scale_the_residual_once(dtype) -> None:
    net = seed_network(bias="row")
    kernel = numeric.compile([net.f, *(gradient(net.f, p) for p in net.params)], [*net.inputs, *net.params])
    assert kernel.source.count("-2.0 * ") == 1   # G = −2(Y − Ŷ), read by all four gradients
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((N, D)), rng.standard_normal((N, K))
    W1, b1, W2, b2 = (rng.standard_normal(s) for s in [(D, M), (1, M), (M, K), (1, K)])
    arrays = [x.astype(dtype) for x in (X, Y, W1, b1, W2, b2)]
    H = 1 / (1 + np.exp(-(X @ W1 + b1)))
    G = 2 * (H @ W2 + b2 - Y)
    Gh = (G @ W2.T) * H * (1 - H)
    want = [np.sum((H @ W2 + b2 - Y) ** 2), X.T @ Gh, Gh.sum(0, keepdims=True), H.T @ G, G.sum(0, keepdims=True)]
    got = kernel(*arrays)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == dtype
        assert rel_err(np.asarray(g, np.float64), w) < (1e-12 if dtype == np.float64 else 1e-5)
