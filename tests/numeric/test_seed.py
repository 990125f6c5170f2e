"""The seed network end to end: compiled gradients against central differences of f in NumPy.

The gradient expressions are typed by hand in the form ``derive.gradient`` produces
(intermediates expanded); ``test_derive_gradient_*`` use ``derive.gradient`` itself
and run as soon as ``derive`` exports it.
"""
from __future__ import annotations

import numpy as np
import pytest
from sympy import MatrixSymbol, OneMatrix, Trace
from sympy.matrices.expressions.hadamard import HadamardProduct

import derive
import numeric
from derive.elementwise import sigmoid
from derive.networks import seed_network
from tests.oracle import fd_gradient, rel_err, seed_data, seed_loss


def hand_gradients(net):
    """∂f/∂(W1, b1, W2, b2) typed by hand: G = 2(Ŷ − Y), G_h = (G W2ᵀ) ⊙ σ ⊙ (1 − σ)."""
    X, Y = net.inputs
    W1, b1, W2, b2 = net.params
    n, m = X.shape[0], W1.shape[1]
    if net.bias == "row":
        h = X * W1 + OneMatrix(n, 1) * b1
    else:
        h = X * W1 + b1
    S = sigmoid(h)
    Ypred = S * W2 + (OneMatrix(n, 1) * b2 if net.bias == "row" else b2)
    Gh = HadamardProduct((Ypred - Y) * W2.T, S, OneMatrix(n, m) - S)
    rows = (lambda G: OneMatrix(1, n) * G) if net.bias == "row" else (lambda G: G)
    return [2 * X.T * Gh, 2 * rows(Gh), 2 * S.T * (Ypred - Y), 2 * rows(Ypred - Y)]


def values(net, seed, dtype=np.float64):
    return list(seed_data(seed=seed, bias=net.bias, dtype=dtype).values())


@pytest.mark.parametrize("bias", ["row", "full"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seed_gradients_match_finite_differences(bias, dtype):
    net = seed_network(bias=bias)
    kernel = numeric.compile([net.f, *hand_gradients(net)], [*net.inputs, *net.params])
    arrays = values(net, 0, dtype=dtype)
    f, *grads = kernel(*arrays)
    assert all(g.dtype == dtype for g in grads) and np.asarray(f).dtype == dtype
    a64 = [a.astype(np.float64) for a in arrays]
    tol = 1e-7 if dtype == np.float64 else 1e-3
    assert abs(float(f) - seed_loss(*a64)) / seed_loss(*a64) < tol
    for i, g in zip(range(2, 6), grads):
        assert g.shape == arrays[i].shape
        assert rel_err(g, fd_gradient(seed_loss, a64, i)) < tol


def test_forward_pass_runs_once():
    net = seed_network()
    kernel = numeric.compile([net.f, *hand_gradients(net)], [*net.inputs, *net.params])
    body = kernel.source[kernel.source.index("def kernel"):]
    assert body.count("numpy.tanh") == 1        # σ(X W1 + 1 b1) once
    assert body.count("X @ W1") == 1
    assert "ones" not in body.replace("OneMatrix", "")  # no ones matrix materialised
    assert "vdot" in body                          # f = tr(RᵀR) as a sum of products


def test_loss_in_float32_is_float32_and_close():
    net = seed_network()
    arrays = values(net, 3, dtype=np.float32)
    f = numeric.compile(net.f, [*net.inputs, *net.params])(*arrays)
    assert f.dtype == np.float32
    assert abs(float(f) - seed_loss(*[a.astype(np.float64) for a in arrays])) < 1e-4 * float(f)


needs_derive = pytest.mark.skipif(not hasattr(derive, "gradient"),
                                  reason="derive.gradient is not exported yet (derive/__init__.py)")


@needs_derive
@pytest.mark.parametrize("bias", ["row", "full"])
def test_derive_gradient_seed_network(bias):
    net = seed_network(bias=bias)
    grads = [derive.gradient(net.f, p) for p in net.params]
    kernel = numeric.compile([net.f, *grads], [*net.inputs, *net.params])
    arrays = values(net, 5)
    _, *gs = kernel(*arrays)
    for i, g in zip(range(2, 6), gs):
        assert rel_err(g, fd_gradient(seed_loss, arrays, i)) < 1e-7
    assert kernel.source.count("numpy.tanh") == 1


@needs_derive
def test_check_gradient_with_derive():
    net = seed_network()
    arrays = values(net, 6)
    vals = dict(zip([*net.inputs, *net.params], arrays))
    assert numeric.check_gradient(net.f, list(net.params), vals) < 1e-6


@needs_derive
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softplus", "exp", "relu"])
def test_derive_gradient_other_activations(act):
    # f = ‖φ(XW + 1b) V − Y‖²: the compiled derive.gradient against central differences
    from tests.oracle import d, k, m, n

    X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, k)
    W, b, V = MatrixSymbol("W", d, m), MatrixSymbol("b", 1, m), MatrixSymbol("V", m, k)
    R = getattr(derive, act)(X * W + OneMatrix(n, 1) * b) * V - Y
    f = Trace(R.T * R)
    rng = np.random.default_rng(11)
    vals = {s: rng.standard_normal(s.shape if all(isinstance(x, int) for x in s.shape) else
                                   tuple({n: 4, d: 3, m: 5, k: 2}.get(x, x) for x in s.shape))
            for s in (X, Y, W, b, V)}
    assert numeric.check_gradient(f, [W, b, V], vals) < 1e-5
