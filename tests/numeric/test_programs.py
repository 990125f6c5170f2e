"""numeric.compile of programs: deep networks compile in time linear in their size, with stages.

Oracles: a tanh network's forward pass written by hand in NumPy and its central finite
differences (non-square widths), the same recurrence evaluated by a NumPy loop, and the
expanded kernel against the staged one.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import sympy
from sympy import MatAdd, MatMul, MatrixSymbol, OneMatrix, Trace, Transpose

import derive
import numeric
from derive.kernel_stages import kernel_stages
from derive.networks import mlp
from tests.oracle import fd_gradient, rel_err

WIDTHS = {"n": 6, "d": 3, "m1": 5, "m2": 4, "m3": 7, "m4": 8, "k": 2}


def tanh_net(L: int):
    return mlp(["d"] + [f"m{i}" for i in range(1, L + 1)] + ["k"], activation="tanh")


def hand_loss(X, Y, *params):
    """‖Y − Ŷ‖²_F of the tanh network, written by hand."""
    A = X
    pairs = list(zip(params[::2], params[1::2]))
    for W, b in pairs[:-1]:
        A = np.tanh(A @ W + b)
    W, b = pairs[-1]
    R = A @ W + b - Y
    return float(np.sum(R * R))


def data(args, rng, dtype=np.float64):
    sizes = {sympy.Symbol(k, integer=True, positive=True): v for k, v in WIDTHS.items()}
    return [(0.7 * rng.standard_normal(tuple(int(sympy.sympify(x).xreplace(sizes)) for x in a.shape)))
            .astype(dtype) for a in args]


@pytest.mark.parametrize("L", [3, 4])
@pytest.mark.parametrize("staged", [False, True])
def test_deep_tanh_kernel_meets_finite_differences(L: int, staged: bool) -> None:
    net = tanh_net(L)
    bp = derive.backprop(net)
    if staged:
        stages, outputs, args = kernel_stages(bp)
        kernel = numeric.compile(outputs, args, stages=stages)
    else:
        grads = bp.gradients()
        args = [*net.inputs, *net.params]
        kernel = numeric.compile([net.f, *(grads[p] for p in net.params)], args)
    arrays = data(args, np.random.default_rng(L))
    f, *grads_out = kernel(*arrays)
    assert rel_err(f, hand_loss(*arrays)) < 1e-12
    for i, g in enumerate(grads_out, start=2):
        assert g.shape == arrays[i].shape
        assert rel_err(g, fd_gradient(hand_loss, arrays, i)) < 1e-6


def test_staged_and_expanded_kernels_agree_in_float32() -> None:
    net = tanh_net(3)
    bp = derive.backprop(net)
    stages, outputs, args = kernel_stages(bp)
    grads = bp.gradients()
    staged = numeric.compile(outputs, args, stages=stages)
    expanded = numeric.compile([net.f, *(grads[p] for p in net.params)], args)
    arrays = data(args, np.random.default_rng(1), np.float32)
    for a, b in zip(staged(*arrays), expanded(*arrays)):
        assert a.dtype == np.float32 and b.dtype == np.float32
        assert rel_err(a, b) < 1e-5
    # the staged kernel computes each activation once
    assert staged.source.count("numpy.tanh") == 3


def test_compile_time_is_linear_in_depth() -> None:
    """A 16-layer network's loss and 32 gradients compile in well under a second (they took 3.6 s
    when docstrings printed every expression and shapes were recomputed down each product)."""
    net = tanh_net(16)
    bp = derive.backprop(net)
    grads = bp.gradients()
    exprs = [net.f, *(grads[p] for p in net.params)]
    args = [*net.inputs, *net.params]
    numeric.compile.__globals__["_CACHE"].clear()
    t0 = time.perf_counter()
    kernel = numeric.compile(exprs, args)
    assert time.perf_counter() - t0 < 2.0
    assert kernel.source.count("numpy.tanh") == 16
    assert "not printed" in kernel.source  # the long gradients are not printed in the docstring


def test_a_shared_graph_of_exponential_tree_size_compiles_at_once() -> None:
    """A_{i+1} = W_i A_i + A_i: 2⁴⁰ nodes as a tree, 120 as a graph; every walk is of the graph."""
    n = sympy.Symbol("n", integer=True, positive=True)
    A0 = MatrixSymbol("A", n, 3)
    Ws = [MatrixSymbol(f"W{i}", n, n) for i in range(40)]
    A = A0
    for W in Ws:
        A = MatAdd(MatMul(W, A), A)  # built as given (A = W*A + A rebuilds the tree)
    t0 = time.perf_counter()
    kernel = numeric.compile([A, Trace(MatMul(Transpose(A), A))], [A0, *Ws])
    assert time.perf_counter() - t0 < 5.0
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal((4, 3))
    ws = [0.3 * rng.standard_normal((4, 4)) for _ in Ws]
    want = a0
    for w in ws:
        want = w @ want + want
    got, f = kernel(a0, *ws)
    assert rel_err(got, want) < 1e-12 and rel_err(f, np.sum(want * want)) < 1e-12


def test_stage_errors_are_one_line() -> None:
    n = sympy.Symbol("n", integer=True, positive=True)
    X, H, K = MatrixSymbol("X", n, 3), MatrixSymbol("H", n, 3), MatrixSymbol("K", n, 2)
    with pytest.raises(ValueError, match="stage X: the name is an argument"):
        numeric.compile(X, [X], stages=[(X, 2 * X)])
    with pytest.raises(ValueError, match="stage H: the name is defined twice"):
        numeric.compile(H, [X], stages=[(H, 2 * X), (H, 3 * X)])
    with pytest.raises(ValueError, match=r"stage K: the name is n×2, its definition n×3"):
        numeric.compile(K, [X], stages=[(K, 2 * X)])
    with pytest.raises(ValueError, match=r"matrix symbol H .* or the stages before it \(K\)"):
        numeric.compile(H, [X], stages=[(K, X * OneMatrix(3, 2)), (MatrixSymbol("J", n, 3), 2 * H)])
    with pytest.raises(TypeError, match="stage 0: expected a"):
        numeric.compile(X, [X], stages=[X])
