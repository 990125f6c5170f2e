"""The Dask backend (``numeric.compile(..., backend="dask")``): lazy dask arrays over a row-chunked X.

Oracles: the NumPy kernel, and central differences of forward passes written by hand in NumPy (the
seed network, logistic regression), on chunked arrays of all-different shapes with an uneven last
chunk; numpy.linalg for the functions dask.array lacks.  Skipped where dask is missing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy import Determinant, Inverse, MatrixSymbol, Symbol, Trace, log

import numeric
from derive import backprop, gradient, seed_network
from derive.kernel_stages import kernel_stages
from derive.networks import mlp
from derive.parse import parse_expression
from numeric import dask_backend, registry
from tests.oracle import fd_gradient, np_sigmoid, random_arrays, rel_err, seed_data, seed_loss

da = pytest.importorskip("dask.array")
compute = dask_backend.compute

ROOT = Path(__file__).resolve().parents[2]
N, D, M, K = 11, 3, 5, 2   # 11 rows in chunks of 4: 4, 4, 3


def seed_program():
    return kernel_stages(backprop(seed_network()))


def logistic():
    f = parse_expression("sum(softplus(X*w)) - y'*X*w", {"X": ("n", "d"), "w": ("d", 1), "y": ("n", 1)})
    syms = {s.name: s for s in f.atoms(MatrixSymbol)}
    return [f, gradient(f, syms["w"])], [syms["X"], syms["w"], syms["y"]]


def logistic_loss(X, w, y) -> float:
    z = X @ w
    return float(np.sum(np.logaddexp(0, z)) - (y.T @ z).item())


def logistic_data(dtype=np.float64, seed=2):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((N, D)).astype(dtype), rng.standard_normal((D, 1)).astype(dtype),
            (rng.random((N, 1)) < 0.5).astype(dtype)]


def chunked(arrays, rows=4):
    """The arrays with n rows chunked by ``rows`` (the others one chunk, some left as NumPy arrays)."""
    return [da.from_array(a, chunks=(rows, a.shape[1])) if a.shape[0] == N else a for a in arrays]


def test_seed_network_meets_numpy_and_finite_differences():
    stages, outs, args = seed_program()
    arrays = list(seed_data(n=N, d=D, m=M, k=K, seed=4).values())
    X, Y = da.from_array(arrays[0], chunks=(4, D)), da.from_array(arrays[1], chunks=(5, K))  # unaligned chunks
    lazy = numeric.compile(outs, args, stages=stages, backend="dask")(X, Y, *arrays[2:])
    assert all(isinstance(o, da.Array) for o in lazy) and lazy[0].shape == ()
    got = compute(lazy)
    want = numeric.compile(outs, args, stages=stages)(*arrays)
    for g, w in zip(got, want):
        assert g.shape == np.shape(w) and rel_err(g, w) < 1e-12
    assert abs(got[0] - seed_loss(*arrays)) < 1e-10 * abs(got[0])
    for i, G in zip(range(2, 6), got[1:]):
        assert rel_err(G, fd_gradient(seed_loss, arrays, i)) < 1e-6


def test_logistic_regression_meets_numpy_and_finite_differences():
    exprs, args = logistic()
    arrays = logistic_data()
    f, g = compute(numeric.compile(exprs, args, backend="dask")(*chunked(arrays)))
    f_np, g_np = numeric.compile(exprs, args)(*arrays)
    assert rel_err(f, f_np) < 1e-13 and rel_err(g, g_np) < 1e-13
    assert abs(f.item() - logistic_loss(*arrays)) < 1e-10
    assert rel_err(g, fd_gradient(logistic_loss, arrays, 1)) < 1e-7
    # the hand-written gradient, Xᵀ(σ(Xw) − y)
    X, w, y = arrays
    assert rel_err(g, X.T @ (np_sigmoid(X @ w) - y)) < 1e-12


@pytest.mark.parametrize("program", ["seed", "logistic"])
def test_float32_stays_float32(program):
    if program == "seed":
        stages, outs, args = seed_program()
        arrays = list(seed_data(n=N, d=D, m=M, k=K, seed=5, dtype=np.float32).values())
    else:
        stages, (outs, args) = (), logistic()
        arrays = logistic_data(np.float32)
    lazy = numeric.compile(outs, args, stages=stages, backend="dask")(*chunked(arrays))
    assert all(o.dtype == np.float32 for o in lazy)
    got = compute(lazy)
    want = numeric.compile(outs, args, stages=stages)(*(a.astype(np.float64) for a in arrays))
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and rel_err(g, w) < 1e-5


def test_a_call_computes_nothing_and_one_compute_makes_each_chunk_once():
    exprs, args = logistic()
    X_np, w, y_np = logistic_data()
    made = []

    def chunk(block_id=None):
        made.append(block_id[0])
        start = 4 * block_id[0]
        return X_np[start:start + 4]

    X = da.map_blocks(chunk, chunks=((4, 4, 3), (D,)), dtype=np.float64)
    outputs = numeric.compile(exprs, args, backend="dask")(X, w, da.from_array(y_np, chunks=(4, 1)))
    assert made == []
    f, g = compute(outputs, scheduler="synchronous")
    assert sorted(made) == [0, 1, 2]   # the loss and the gradient shared each chunk of X
    f_np, g_np = numeric.compile(exprs, args)(X_np, w, y_np)
    assert rel_err(f, f_np) < 1e-13 and rel_err(g, g_np) < 1e-13


def test_sums_over_the_batch_are_tree_reductions():
    exprs, args = logistic()
    rng = np.random.default_rng(0)
    X = da.from_array(rng.standard_normal((64, D)), chunks=(2, D))   # 32 chunks
    y = da.from_array((rng.random((64, 1)) < 0.5) * 1.0, chunks=(2, 1))
    _, g = numeric.compile(exprs, args, backend="dask")(X, np.zeros((D, 1)), y)
    import dask.core

    graph = dict(g.__dask_graph__())
    dependencies = dask.core.get_deps(graph)[0]
    assert len(graph) > 3 * 32 and max(len(d) for d in dependencies.values()) < 32


def test_auto_picks_dask_for_a_dask_array():
    exprs, args = logistic()
    kernel = numeric.compile(exprs, args, backend="auto")
    arrays = logistic_data()
    lazy = kernel(*chunked(arrays))
    assert isinstance(lazy[1], da.Array)
    assert isinstance(kernel(*arrays)[1], np.ndarray)


def test_argument_checks_read_shapes_only():
    exprs, args = logistic()
    kernel = numeric.compile(exprs, args, backend="dask")
    X, w, y = chunked(logistic_data())
    with pytest.raises(ValueError, match=r"^argument y: expected shape \(n, 1\) = \(11, 1\) from X, got \(10, 1\)$"):
        kernel(X, w, y[:10])
    with pytest.raises(ValueError, match=r"^argument X: the dask array's shape \(nan, 3\) has unknown lengths"):
        kernel(X[X[:, 0] > 0], w, y)
    with pytest.raises(TypeError, match=r"^argument w: complex arrays are not supported"):
        kernel(X, w.astype(complex), y)
    with pytest.raises(TypeError, match=r"takes 3 arrays, got 2$|takes 3 arguments, got 2$"):
        kernel(X, w)


def test_scalar_argument_keeps_float32():
    # ‖XW − Y‖² + λ‖W‖² with λ a Python float, then a 0-d dask array
    n = Symbol("n", integer=True, positive=True)
    X, W, Y = MatrixSymbol("X", n, D), MatrixSymbol("W", D, K), MatrixSymbol("Y", n, K)
    lam = Symbol("lam")
    E = X * W - Y
    f = Trace(E.T * E) + lam * Trace(W.T * W)
    G = 2 * X.T * E + 2 * lam * W
    kernel = numeric.compile([f, G], [X, W, Y, lam], backend="dask")
    rng = np.random.default_rng(1)
    x, w, yy = (rng.standard_normal(s).astype(np.float32) for s in [(N, D), (D, K), (N, K)])
    for lam_value in (0.3, da.from_array(np.float32(0.3))):
        f_d, G_d = compute(kernel(da.from_array(x, chunks=(4, D)), w, yy, lam_value))
        assert f_d.dtype == G_d.dtype == np.float32
        hand = 2 * x.T.astype(np.float64) @ (x @ w - yy) + 0.6 * w
        assert rel_err(G_d, hand) < 1e-5


def test_functions_dask_lacks_run_on_one_block_lazily():
    # det, log det (slogdet), inv, solve, kron, e^S and S^½ of small square matrices: one NumPy call each;
    # A³ by products and a chain of products in the cheapest order, chunked
    from sympy import KroneckerProduct, MatPow, Rational

    from derive.matrix_functions import expm

    A, B, C = MatrixSymbol("A", 3, 3), MatrixSymbol("B", 3, 4), MatrixSymbol("C", 2, 2)
    S, E = MatrixSymbol("S", 3, 3), MatrixSymbol("E", 4, 2)
    exprs = [Determinant(A), log(Determinant(A)), Inverse(A), Inverse(A) * B, KroneckerProduct(C, A),
             expm(S), MatPow(S, Rational(1, 2)), MatPow(A, 3), A * B * E]
    kernel = numeric.compile(exprs, [A, B, C, S, E], backend="dask")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 3)) + 4 * np.eye(3)
    b, c, e = rng.standard_normal((3, 4)), rng.standard_normal((2, 2)), rng.standard_normal((4, 2))
    q = rng.standard_normal((3, 3))
    s = q @ q.T + np.eye(3)
    lazy = kernel(da.from_array(a, chunks=2), da.from_array(b, chunks=(2, 3)), c, da.from_array(s, chunks=2), e)
    assert all(isinstance(o, da.Array) for o in lazy)
    det, logdet, inv, solved, kron, exp_s, root_s, cube, chain = compute(lazy)
    assert abs(det - np.linalg.det(a)) < 1e-12 * abs(det)
    assert abs(logdet - np.log(np.linalg.det(a))) < 1e-12
    assert rel_err(inv, np.linalg.inv(a)) < 1e-12 and rel_err(solved, np.linalg.solve(a, b)) < 1e-12
    assert rel_err(kron, np.kron(c, a)) < 1e-12
    w, V = np.linalg.eigh(s)
    assert rel_err(exp_s, (V * np.exp(w)) @ V.T) < 1e-12 and rel_err(root_s, (V * np.sqrt(w)) @ V.T) < 1e-12
    assert rel_err(cube, a @ a @ a) < 1e-12 and rel_err(chain, a @ b @ e) < 1e-12


def test_a_numpy_function_dask_lacks_is_one_line_at_compile_time():
    class Unwrapped(sympy.Function):
        pass

    registry.register_function("Unwrapped", "numpy.unwrap({x})")
    try:
        X = MatrixSymbol("X", 2, 3)
        with pytest.raises(NotImplementedError, match=r"^numpy\.unwrap is not supported by the dask backend "
                                                      r"\(use backend='numpy'\)$"):
            numeric.compile(X.applyfunc(Unwrapped), [X], backend="dask")
    finally:
        registry._FUNCTIONS.pop("Unwrapped", None)


def test_relu_network_uses_heaviside_per_chunk():
    # relu′ is numpy.heaviside, a ufunc dask.array does not wrap: applied chunk by chunk
    stages, outs, args = kernel_stages(backprop(mlp(["d", "m", "k"], activation="relu")))
    arrays = random_arrays(args, np.random.default_rng(6), {"n": N, "d": D, "m": M, "k": K})
    kernel = numeric.compile(outs, args, stages=stages, backend="dask")
    assert "_ufunc(numpy.heaviside)" in kernel.source
    got = compute(kernel(*chunked(arrays)))
    want = numeric.compile(outs, args, stages=stages)(*arrays)
    assert all(rel_err(g, w) < 1e-12 for g, w in zip(got, want))


@pytest.fixture(scope="module")
def address():
    """The address of a small LocalCluster (threads of this process: quick to start), for the tests
    that run on a cluster by its address, as on a remote one."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address
        dask_backend.close_clients([cluster.scheduler_address])


def test_on_a_local_cluster_by_its_address(address):
    exprs, args = logistic()
    arrays = logistic_data()
    kernel = numeric.compile(exprs, args, backend="dask")
    f, g = compute(kernel(*chunked(arrays)), scheduler=address)
    f_np, g_np = numeric.compile(exprs, args)(*arrays)
    assert rel_err(f, f_np) < 1e-13 and rel_err(g, g_np) < 1e-13


def test_bench_dask_runs_small(address):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_dask

    r = bench_dask.main(["--rows", "3000", "--cols", "7", "--chunk-rows", "700", "--scheduler", address])
    assert r["chunks"] == 5 and r["numpy_rows"] == 3000 and r["slice_max_rel_diff"] < 1e-12
    assert r["dask_rows_per_s"] > 0 and r["peak_GiB"] > 0 and r["persisted_rows"] > 0


def test_gradient_descent_example_runs_small(address):
    sys.path.insert(0, str(ROOT / "docs" / "examples"))
    import dask_logistic_regression as example

    losses, w = example.main(["--rows", "2000", "--cols", "5", "--chunk-rows", "600", "--iterations", "4",
                              "--scheduler", address])
    assert len(losses) == 4 and all(b < a for a, b in zip(losses, losses[1:])) and w.shape == (5, 1)
    assert losses[0] == pytest.approx(np.log(2))   # at w = 0 every row costs log 2
