"""The torch and JAX backends (``numeric.compile(..., backend=...)``), against the NumPy kernel and
against each library's own autodiff (torch.autograd, jax.grad) on forward passes written by hand.

Shapes are non-square and all different (n=4, d=3, m=5, k=2).  Skipped where torch or jax is missing.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sympy import MatrixSymbol

import numeric
from derive import backprop, seed_network
from derive.kernel_stages import kernel_stages
from derive.networks import mlp
from tests.oracle import seed_data

N, D, M, K = 4, 3, 5, 2


def seed_program():
    return kernel_stages(backprop(seed_network()))


def ce_program():
    return kernel_stages(backprop(mlp(["d", "m", "k"], loss="softmax_cross_entropy")))


def ce_data(scale=None, seed=1):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((N, D)), np.eye(K)[rng.integers(0, K, size=N)]
    W1, b1, W2, b2 = (rng.standard_normal(s) for s in [(D, M), (1, M), (M, K), (1, K)])
    if scale is not None:  # logits of size ±scale
        Z = 0.5 * np.tanh(0.5 * (X @ W1 + b1)) + 0.5
        c = scale / np.abs(Z @ W2 + b2).max()
        W2, b2 = c * W2, c * b2
    return [X, Y, W1, b1, W2, b2]


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# ------------------------------------------------------------------------ no library needed

@pytest.mark.parametrize("library", ["torch", "dask"])
def test_missing_library_is_one_line_naming_the_extra(monkeypatch, library):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == library else real(name, *a))
    X = MatrixSymbol("X", 2, 3)
    with pytest.raises(ImportError, match=rf"^backend '{library}' needs {library}, which is not installed: "
                                          rf"pip install 'tracegrad\[{library}\]'$"):
        numeric.compile(2 * X, [X], backend=library)


def test_unknown_backend():
    X = MatrixSymbol("X", 2, 3)
    with pytest.raises(ValueError, match="unknown backend 'fortran'"):
        numeric.compile(2 * X, [X], backend="fortran")


def test_auto_on_numpy_is_the_numpy_kernel():
    stages, outs, args = seed_program()
    arrays = list(seed_data().values())
    auto = numeric.compile(outs, args, stages=stages, backend="auto")
    plain = numeric.compile(outs, args, stages=stages)
    assert all(np.array_equal(a, b) for a, b in zip(auto(*arrays), plain(*arrays)))


# ------------------------------------------------------------------------ torch

def torch_seed_loss(torch, X, Y, W1, b1, W2, b2):
    H = torch.sigmoid(X @ W1 + b1)
    return ((Y - (H @ W2 + b2)) ** 2).sum()


def torch_ce_loss(torch, X, Y, W1, b1, W2, b2):
    Z = torch.sigmoid(X @ W1 + b1) @ W2 + b2
    return -(Y * torch.log_softmax(Z, dim=1)).sum()


@pytest.mark.parametrize("case", ["seed", "softmax-ce"])
def test_torch_matches_numpy_and_autograd(case):
    torch = pytest.importorskip("torch")
    stages, outs, args = seed_program() if case == "seed" else ce_program()
    arrays = list(seed_data().values()) if case == "seed" else ce_data()
    loss = torch_seed_loss if case == "seed" else torch_ce_loss
    kernel = numeric.compile(outs, args, stages=stages, backend="torch")
    f, *grads = kernel(*(torch.from_numpy(a) for a in arrays))
    assert isinstance(f, torch.Tensor) and f.dtype == torch.float64 and f.shape == ()
    expected = numeric.compile(outs, args, stages=stages)(*arrays)
    for got, want in zip([f, *grads], expected):
        assert rel(got.numpy(), want) < 1e-10
    leaves = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(arrays)]
    value = loss(torch, *leaves)
    value.backward()
    assert rel(f.numpy(), value.detach().numpy()) < 1e-10
    for got, leaf in zip(grads, leaves[2:]):
        assert got.shape == leaf.shape and rel(got.numpy(), leaf.grad.numpy()) < 1e-10


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_torch_softmax_at_huge_logits_float32_stays_float32(scale):
    torch = pytest.importorskip("torch")
    stages, outs, args = ce_program()
    arrays = ce_data(scale=scale)
    kernel = numeric.compile(outs, args, stages=stages, backend="torch")
    for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-4)]:
        results = kernel(*(torch.from_numpy(a).to(dtype) for a in arrays))
        assert all(r.dtype == dtype and bool(torch.isfinite(r).all()) for r in results)
        leaves = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(arrays)]
        torch_ce_loss(torch, *leaves).backward()
        for got, leaf in zip(results[1:], leaves[2:]):
            assert rel(got.numpy(), leaf.grad.numpy()) < tol


def test_torch_argument_errors():
    torch = pytest.importorskip("torch")
    stages, outs, args = seed_program()
    kernel = numeric.compile(outs, args, stages=stages, backend="torch")
    arrays = [torch.from_numpy(a) for a in seed_data().values()]
    with pytest.raises(TypeError, match=r"argument X: expected a torch\.Tensor"):
        kernel(np.ones((N, D)), *arrays[1:])
    with pytest.raises(ValueError, match=r"argument Y: expected shape \(n, k\) = \(4, 2\) from X, got \(5, 2\)"):
        kernel(arrays[0], torch.ones(5, 2, dtype=torch.float64), *arrays[2:])
    with pytest.raises(TypeError, match="argument W1: complex"):
        kernel(*arrays[:2], arrays[2].to(torch.complex128), *arrays[3:])
    with pytest.raises(TypeError, match="takes 6 arguments, got 5"):
        kernel(*arrays[:5])


def test_auto_dispatches_to_torch():
    torch = pytest.importorskip("torch")
    X = MatrixSymbol("X", 2, 3)
    kernel = numeric.compile(2 * X.T * X, [X], backend="auto")
    out = kernel(torch.ones(2, 3, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (3, 3)
    assert isinstance(kernel(np.ones((2, 3))), np.ndarray)


# ------------------------------------------------------------------------ jax

@pytest.fixture
def jax_x64():
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", before)


def jax_seed_loss(jnp, X, Y, W1, b1, W2, b2):
    H = 1 / (1 + jnp.exp(-(X @ W1 + b1)))
    return ((Y - (H @ W2 + b2)) ** 2).sum()


def jax_ce_loss(jnp, X, Y, W1, b1, W2, b2):
    import jax.nn
    Z = jax.nn.sigmoid(X @ W1 + b1) @ W2 + b2
    return -(Y * jax.nn.log_softmax(Z, axis=1)).sum()


@pytest.mark.parametrize("case", ["seed", "softmax-ce"])
def test_jax_jitted_matches_numpy_and_grad(case, jax_x64):
    jax = jax_x64
    import jax.numpy as jnp
    stages, outs, args = seed_program() if case == "seed" else ce_program()
    arrays = list(seed_data().values()) if case == "seed" else ce_data()
    loss = jax_seed_loss if case == "seed" else jax_ce_loss
    kernel = numeric.compile(outs, args, stages=stages, backend="jax")
    jitted = jax.jit(kernel)
    f, *grads = jitted(*(jnp.asarray(a) for a in arrays))
    assert isinstance(f, jax.Array) and f.dtype == jnp.float64 and f.shape == ()
    expected = numeric.compile(outs, args, stages=stages)(*arrays)
    for got, want in zip([f, *grads], expected):
        assert rel(got, want) < 1e-10
    value, oracle = jax.value_and_grad(lambda *p: loss(jnp, *arrays[:2], *p), argnums=(0, 1, 2, 3))(
        *(jnp.asarray(a) for a in arrays[2:]))
    assert rel(f, value) < 1e-10
    for got, want in zip(grads, oracle):
        assert got.shape == want.shape and rel(got, want) < 1e-10


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_jax_softmax_at_huge_logits_float32_stays_float32(scale, jax_x64):
    jax = jax_x64
    import jax.numpy as jnp
    stages, outs, args = ce_program()
    arrays = ce_data(scale=scale)
    kernel = jax.jit(numeric.compile(outs, args, stages=stages, backend="jax"))
    oracle = jax.grad(lambda *p: jax_ce_loss(jnp, *arrays[:2], *p), argnums=(0, 1, 2, 3))(
        *(jnp.asarray(a) for a in arrays[2:]))
    for dtype, tol in [(jnp.float64, 1e-10), (jnp.float32, 1e-4)]:
        results = kernel(*(jnp.asarray(a, dtype=dtype) for a in arrays))
        assert all(r.dtype == dtype and bool(jnp.isfinite(r).all()) for r in results)
        for got, want in zip(results[1:], oracle):
            assert rel(got, want) < tol


def test_jax_argument_errors(jax_x64):
    import jax.numpy as jnp
    stages, outs, args = seed_program()
    kernel = numeric.compile(outs, args, stages=stages, backend="jax")
    arrays = [jnp.asarray(a) for a in seed_data().values()]
    with pytest.raises(ValueError, match=r"argument Y: expected shape \(n, k\) = \(4, 2\) from X, got \(5, 2\)"):
        kernel(arrays[0], jnp.ones((5, 2)), *arrays[2:])
    with pytest.raises(TypeError, match="argument W1: complex"):
        kernel(*arrays[:2], arrays[2].astype(jnp.complex128), *arrays[3:])


def test_auto_dispatches_to_jax(jax_x64):
    import jax.numpy as jnp
    X = MatrixSymbol("X", 2, 3)
    out = numeric.compile(2 * X.T * X, [X], backend="auto")(jnp.ones((2, 3), dtype=jnp.float32))
    assert isinstance(out, jax_x64.Array) and out.dtype == jnp.float32 and out.shape == (3, 3)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_unsupported_node_is_one_line_naming_function_and_backend(backend):
    pytest.importorskip(backend)
    from sympy import MatPow, Rational
    S = MatrixSymbol("S", 3, 3)
    with pytest.raises(NotImplementedError, match=rf"^the power of a symmetric positive definite matrix is "
                                                  rf"not supported by the {backend} backend \(use backend='numpy'\)$"):
        numeric.compile(MatPow(S, Rational(1, 2)), [S], backend=backend)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_stable_softmax_form_is_printed(backend):
    pytest.importorskip(backend)
    stages, outs, args = ce_program()
    source = numeric.compile(outs, args, stages=stages, backend=backend).source
    assert ("amax(dim=1, keepdim=True)" if backend == "torch" else "max(axis=1, keepdims=True)") in source
    assert "import numpy" not in source and "sympy" not in source


ACTIVATIONS = ["tanh", "relu", "softplus", "leaky_relu", "elu", "gelu", "swish", "abs"]


def to_library(library, arrays):
    if library == "torch":
        import torch
        return [torch.from_numpy(a) for a in arrays]
    import jax.numpy as jnp
    return [jnp.asarray(a) for a in arrays]


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_activations_and_a_scalar_argument_match_the_numpy_kernel(library, request):
    """Each activation's template (numpy.maximum(x, 0), logaddexp(0, x), heaviside(x, 0) …) in the
    library, in a two-hidden-layer mlp with L2 weight decay λ (a scalar argument: a Python float)."""
    pytest.importorskip(library)
    if library == "jax":
        request.getfixturevalue("jax_x64")
    rng = np.random.default_rng(3)
    for activation in ACTIVATIONS:
        net = mlp(["d", "m", "m", "k"], activation=activation, weight_decay="lambda")
        stages, outs, args = kernel_stages(backprop(net))
        assert len(args) == 9
        shapes = [(N, D), (N, K), (D, M), (1, M), (M, M), (1, M), (M, K), (1, K)]
        arrays = [rng.standard_normal(s) for s in shapes]
        values = [*arrays, 0.3]
        expected = numeric.compile(outs, args, stages=stages)(*values)
        got = numeric.compile(outs, args, stages=stages, backend=library)(*to_library(library, arrays),
                                                                           *values[len(arrays):])
        for g, e in zip(got, expected):
            assert rel(g, e) < 1e-10, activation


def _attention_by_hand(X, Y, Wq, Wk, Wv):
    """f = ‖Y − softmax(QKᵀ/√e)V‖² and ∂f/∂(Wq, Wk, Wv), backprop written by hand in NumPy."""
    Q, K_, V = X @ Wq, X @ Wk, X @ Wv
    c = 1 / np.sqrt(Wq.shape[1])
    S = c * Q @ K_.T
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    R = P @ V - Y
    G = 2 * R                                            # ∂f/∂A
    dP = G @ V.T
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))
    return float(np.sum(R * R)), X.T @ (c * dS @ K_), X.T @ (c * dS.T @ Q), X.T @ (P.T @ G)


def attention_program():
    from derive import program
    return kernel_stages(backprop(program(
        "X: n×d; Y: n×v; param Wq: d×e; param Wk: d×e; param Wv: d×v; "
        "Q = X*Wq; K = X*Wk; V = X*Wv; A = attention(Q, K, V); f = norm2(Y - A)^2")))


def _typed_kernel_call(library, request, exprs, args, arrays, stages=()):
    """The kernel of ``exprs`` for ``library`` (skipped where it is missing), checked to cast nothing
    back, called on ``arrays`` (NumPy arrays, moved to the library)."""
    if library != "numpy":
        pytest.importorskip(library)
    if library == "jax":
        request.getfixturevalue("jax_x64")
    kernel = numeric.compile(exprs, args, stages=stages, backend=library)
    assert "_cast(" not in kernel.source[kernel.source.index("    _t0"):]
    return kernel(*(arrays if library == "numpy" else to_library(library, arrays)))


def _meets(got, want, dtype):
    tol = 1e-12 if dtype == "float64" else 1e-5
    for g, w in zip(got, want):
        assert str(g.dtype).endswith(dtype)
        assert rel(g, w) < tol


@pytest.mark.parametrize("library", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_scale_by_a_root_of_a_dimension_on_every_library(library, dtype, request):
    # 1/√e of attention is a root of a dimension: taken of a scalar of the arrays' dtype in every library
    # (torch.sqrt of an int raised; numpy.sqrt made a float64 scalar that turned a float32 kernel's
    # work into float64, cast back at the end)
    stages, outs, args = attention_program()
    rng = np.random.default_rng(5)
    e, v = 6, 2
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(N, D), (N, v), (D, e), (D, e), (D, v)]]
    got = _typed_kernel_call(library, request, outs, args, arrays, stages)
    _meets(got, _attention_by_hand(*(a.astype(np.float64) for a in arrays)), dtype)


@pytest.mark.parametrize("library", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_functions_of_a_dimension_keep_the_dtype_on_every_library(library, dtype, request):
    # log n, e^−n, √n, σ(n): a library function of a Python int raised in torch and JAX, and NumPy's
    # made float64 scalars (float32 work done in float64, then cast back)
    import sympy
    from sympy import Trace
    from derive.elementwise import sigmoid
    n = sympy.Symbol("n", integer=True, positive=True)
    X = MatrixSymbol("X", n, D)
    x = np.random.default_rng(6).standard_normal((N, D)).astype(dtype)
    got = _typed_kernel_call(library, request, [sympy.log(n) * Trace(X.T * X), sympy.exp(-n) * X,
                                                sympy.sqrt(n) * X, sigmoid.scalar(n) * X], [X], [x])
    x64 = x.astype(np.float64)
    _meets(got, [np.log(N) * np.sum(x64 * x64), np.exp(-N) * x64, np.sqrt(N) * x64, x64 / (1 + np.exp(-N))],
           dtype)


def test_a_root_of_a_negative_or_zero_dimension_expression_is_nan_or_inf_never_complex():
    import sympy
    n, m = (sympy.Symbol(s, integer=True, positive=True) for s in "nm")
    X = MatrixSymbol("X", n, m)
    kernel = numeric.compile([X * sympy.sqrt(n - m), X * (n - m) ** sympy.Rational(3, 2), X / sympy.sqrt(n)], [X])
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b, _ = kernel(np.ones((4, 5), np.float32))
        *_, c = kernel(np.ones((0, 5)))
    assert a.dtype == b.dtype == np.float32 and np.isnan(a).all() and np.isnan(b).all()
    assert c.shape == (0, 5)
