"""Random dimensions 1..6: compiled gradients against central differences in NumPy."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st
from sympy import MatrixSymbol, OneMatrix, Trace
from sympy.matrices.expressions.hadamard import HadamardPower

import numeric
from derive.networks import seed_network
from tests.oracle import d, fd_directional_arrays, k, m, n, seed_loss
from tests.numeric.test_seed import hand_gradients

dims = st.tuples(*[st.integers(1, 6)] * 4)
NETS = {bias: seed_network(bias=bias) for bias in ("row", "full")}
KERNELS = {bias: numeric.compile([net.f, *hand_gradients(net)], [*net.inputs, *net.params])
           for bias, net in NETS.items()}


@settings(max_examples=15, deadline=None)
@given(dims=dims, bias=st.sampled_from(["row", "full"]), seed=st.integers(0, 2**16))
def test_seed_network_any_dims(dims, bias, seed):
    nn, dd, mm, kk = dims
    rng = np.random.default_rng(seed)
    rb = 1 if bias == "row" else nn
    arrays = [rng.standard_normal(s) for s in [(nn, dd), (nn, kk), (dd, mm), (rb, mm), (mm, kk), (rb, kk)]]
    f, *grads = KERNELS[bias](*arrays)
    assert abs(float(f) - seed_loss(*arrays)) <= 1e-9 * max(1.0, seed_loss(*arrays))
    for i, g in zip(range(2, 6), grads):
        assert g.shape == arrays[i].shape
        V = rng.standard_normal(g.shape)
        fd = fd_directional_arrays(seed_loss, arrays, i, V)
        assert abs(fd - np.sum(g * V)) <= 1e-6 * max(1.0, abs(fd))


X, Z = MatrixSymbol("X", n, d), MatrixSymbol("Z", n, d)
W, b = MatrixSymbol("W", d, m), MatrixSymbol("b", 1, m)
EXPRS = [OneMatrix(1, n) * HadamardPower(X * W + OneMatrix(n, 1) * b, 2) * OneMatrix(m, k),
         Trace(X.T * Z) * (X - Z), OneMatrix(n, d).T * X * W]
KERNEL = numeric.compile(EXPRS, [X, Z, W, b, MatrixSymbol("K", k, 1)])


@settings(max_examples=15, deadline=None)
@given(dims=dims, seed=st.integers(0, 2**16))
def test_ones_and_broadcasts_any_dims(dims, seed):
    nn, dd, mm, kk = dims
    rng = np.random.default_rng(seed)
    x, z, w, bb = (rng.standard_normal(s) for s in [(nn, dd), (nn, dd), (dd, mm), (1, mm)])
    e0, e1, e2 = KERNEL(x, z, w, bb, np.zeros((kk, 1)))
    np.testing.assert_allclose(e0, np.ones((1, nn)) @ (x @ w + bb) ** 2 @ np.ones((mm, kk)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(e1, np.sum(x * z) * (x - z), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(e2, np.ones((dd, nn)) @ x @ w, rtol=1e-10, atol=1e-12)
