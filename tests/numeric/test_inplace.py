"""The NumPy kernel's elementwise chains computed in place (``NumPyBackend.statements``).

Oracles: forward passes and gradients written by hand in NumPy; the arguments' values before a call.
A chain may only change an array its own statement made: never an argument, never a temporary
read later or returned.  Shapes non-square and all different (n=4, d=3, m=5, k=2).
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Trace

import numeric
from derive.backprop import backprop
from derive.elementwise import exp, sigmoid, tanh
from derive.networks import softmax_rows
from tests.oracle import rel_err

N, D, M, K = 4, 3, 5, 2
X, W, V = MatrixSymbol("X", N, D), MatrixSymbol("W", D, M), MatrixSymbol("V", D, M)
B, C = MatrixSymbol("b", 1, M), MatrixSymbol("C", N, M)
ONE = OneMatrix(N, 1)


def _calls(kernel, arrays):
    before = [a.copy() for a in arrays]
    got = kernel(*arrays)
    for a, b in zip(arrays, before):
        assert a.dtype == b.dtype and np.array_equal(a, b)   # no argument changed
    return got if isinstance(got, tuple) else (got,)


def test_the_seed_kernel_works_in_place_and_leaves_its_arguments_alone() -> None:
    import sys
    sys.path.insert(0, "benchmarks")
    from bench_kernels import hand_backprop, make_data, seed_kernel
    kernel = seed_kernel()
    assert "numpy.tanh(_t0, out=_t0)" in kernel.source
    for dtype in ("float64", "float32"):
        arrays = make_data((N, D, M, K), dtype, seed=3)
        got = _calls(kernel, arrays)
        want = hand_backprop(*[a.astype(np.float64) for a in arrays])
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == np.dtype(dtype)
            assert rel_err(np.asarray(g, dtype=np.float64), w) < (1e-5 if dtype == "float32" else 1e-12)


def test_softmax_and_batchnorm_kernels_leave_their_arguments_alone() -> None:
    rng = np.random.default_rng(0)
    Z = MatrixSymbol("Z", N, M)
    S = softmax_rows(Z)
    f = Trace(C.T * S)
    k = numeric.compile([f, S], [Z, C])
    z, c = rng.standard_normal((N, M)), rng.standard_normal((N, M))
    got = _calls(k, [z, c])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    s = e / e.sum(axis=1, keepdims=True)
    assert abs(got[0] - np.sum(c * s)) < 1e-12 and rel_err(got[1], s) < 1e-12
    from tests.derive.test_layers import _network
    net, _ = _network("batchnorm", out="Y")
    bp = backprop(net)
    g, b = MatrixSymbol("gamma", 1, D), MatrixSymbol("beta", 1, D)
    args = [s for s in net.inputs + net.params if s.name in ("Z", "gamma", "beta", "C")]
    kernel = numeric.compile(bp.gradient("Z"), sorted(args, key=lambda s: ["Z", "gamma", "beta", "C"].index(s.name)))
    zz, gg, bb, G = (rng.standard_normal(tuple(int(x) for x in s.shape)) for s in kernel.args)
    sigma = np.sqrt(zz.var(axis=0, keepdims=True) + 1e-5)
    hat = (zz - zz.mean(axis=0, keepdims=True)) / sigma
    n = zz.shape[0]
    compact = (gg / sigma) / n * (n * G - G.sum(axis=0, keepdims=True) - hat * (G * hat).sum(axis=0, keepdims=True))
    assert rel_err(_calls(kernel, [zz, gg, bb, G])[0], compact) < 1e-10
    del g, b


def _random_dag(rng):
    """An expression of X, W, V, b, C with shared subexpressions (each read again after a chain
    that could have changed it in place), and the same computed by hand in NumPy."""
    vals = {X: rng.standard_normal((N, D)), W: rng.standard_normal((D, M)), V: rng.standard_normal((D, M)),
            B: rng.standard_normal((1, M)), C: rng.standard_normal((N, M))}
    x, w, v, b, c = (vals[s] for s in (X, W, V, B, C))
    pool = [(X * W, x @ w), (X * V, x @ v), (C, c), (X * W + ONE * B, x @ w + b)]
    fns = [(sigmoid, lambda a: 0.5 * np.tanh(0.5 * a) + 0.5), (tanh, np.tanh), (exp, np.exp)]
    for _ in range(6):
        i, j = rng.integers(len(pool), size=2)
        (ea, na), (eb, nb) = pool[i], pool[j]
        kind = rng.integers(5)
        a, bcoef = float(rng.integers(1, 4)), float(rng.integers(-3, 4) or 1)
        if kind == 0:
            pool.append((a * ea - bcoef * eb + ONE * B, a * na - bcoef * nb + b))
        elif kind == 1:
            pool.append((HadamardProduct(ea, eb) * a, na * nb * a))
        elif kind == 2:
            fn, npf = fns[rng.integers(len(fns))]
            arg = (ea - eb) * sympy.Rational(1, 4) if fn is exp else ea + eb
            narg = (na - nb) / 4 if fn is exp else na + nb
            pool.append((fn(arg), npf(narg)))
        elif kind == 3:
            pool.append((-HadamardProduct(ea, ea, eb) + ea, -(na * na * nb) + na))
        else:
            pool.append((X * (X.T * ea) + eb, x @ (x.T @ na) + nb))
    picks = rng.choice(len(pool), size=3, replace=False)
    return [pool[p][0] for p in picks] + [pool[-1][0]], [pool[p][1] for p in picks] + [pool[-1][1]], vals


@pytest.mark.parametrize("seed", range(12))
def test_random_dags_meet_hand_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    exprs, want, vals = _random_dag(rng)
    args = [X, W, V, B, C]
    kernel = numeric.compile(exprs, args)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        arrays = [vals[s].astype(dtype) for s in args]
        got = _calls(kernel, arrays)
        for g, w in zip(got, want):
            assert g.dtype == dtype and g.shape == w.shape and rel_err(g, w) < tol
        ids = {id(g) for g in got}
        assert len(ids) == len(got) or len({e for e in exprs}) < len(exprs)   # outputs do not alias


def test_a_function_whose_template_is_its_argument_changes_no_argument() -> None:
    """A registered identity ("{x}") makes no new array: the chain after it must not work in place on X."""
    from numeric import registry

    registry.register_function("Ident", "{x}", scalar=lambda x: x)
    try:
        Xm, Cm = MatrixSymbol("X", N, M), MatrixSymbol("C", N, M)
        kernel = numeric.compile([2 * Xm.applyfunc(sympy.Function("Ident")) + Cm], [Xm, Cm])
        rng = np.random.default_rng(7)
        x, c = rng.standard_normal((N, M)), rng.standard_normal((N, M))
        (got,) = _calls(kernel, [x, c])
        assert rel_err(got, 2 * x + c) < 1e-15
    finally:
        del registry._FUNCTIONS["Ident"]
