"""numeric.compile of second derivatives: diag(v) in a sum added to the diagonal (never formed), the
softmax Hessian diag(p) − ppᵀ shifted by the maximum, the products of a Hessian's weights formed before
the big factor.  Oracles: the same formulas written by hand in NumPy, and central finite differences of f
(all dimensions different)."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import MatMul, MatrixSymbol, OneMatrix, Symbol

import derive
import numeric
from derive.kronecker import Diag
from derive.parse import parse_expression

RNG = np.random.default_rng(21)
k = Symbol("k", integer=True, positive=True)
A, B = MatrixSymbol("A", k, k), MatrixSymbol("B", k, 3)
v, u = MatrixSymbol("v", k, 1), MatrixSymbol("u", k, 1)


def _body(kernel) -> str:
    return kernel.source[kernel.source.rindex("_prepare(arrays"):]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diag_in_a_sum_is_added_to_the_diagonal_and_the_arguments_are_not_changed(dtype) -> None:
    exprs = [3 * Diag(v) + A,                      # an argument: copied, never written
             Diag(v) - 2 * MatMul(u, u.T),         # a fresh outer product: updated in place
             Diag(v) + Diag(u) + MatMul(B, B.T) + A.T,
             MatMul(Symbol("c") * Diag(v), OneMatrix(k, k)) + A]
    kernel = numeric.compile(exprs, [A, B, v, u, Symbol("c")])
    assert "diagflat" not in _body(kernel) and "eye" not in _body(kernel)
    Av, Bv, vv, uv = (RNG.normal(size=s).astype(dtype) for s in ((5, 5), (5, 3), (5, 1), (5, 1)))
    before = Av.copy()
    out = kernel(Av, Bv, vv, uv, dtype(0.5))
    assert np.array_equal(Av, before)
    want = [3 * np.diagflat(vv) + Av, np.diagflat(vv) - 2 * uv @ uv.T,
            np.diagflat(vv) + np.diagflat(uv) + Bv @ Bv.T + Av.T, 0.5 * np.diagflat(vv) @ np.ones((5, 5)) + Av]
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for got, w in zip(out, want):
        assert got.dtype == dtype and np.max(np.abs(got - w)) < tol * max(1.0, np.max(np.abs(w)))


def test_a_diagonal_asked_for_alone_is_formed() -> None:
    kernel = numeric.compile([2 * Diag(v), Diag(v) + Diag(u)], [v, u])
    vv, uv = RNG.normal(size=(4, 1)), RNG.normal(size=(4, 1))
    D1, D2 = kernel(vv, uv)
    assert np.array_equal(D1, 2 * np.diagflat(vv)) and np.allclose(D2, np.diagflat(vv + uv), rtol=0, atol=1e-15)


@pytest.mark.parametrize("text", ["log(sum(exp(z)))", "log(sum(exp(z))) - y'*z"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_hessian_is_diag_p_minus_ppT_formed_directly_and_stable(text, dtype) -> None:
    f = parse_expression(text, {"z": ("k", 1), "y": ("k", 1)})
    syms = {s.name: s for s in f.atoms(MatrixSymbol)}
    args = sorted(syms.values(), key=lambda s: s.name)
    kernel = numeric.compile(derive.hessian(f, syms["z"]).result, args)
    body = _body(kernel)
    assert "diagflat" not in body and "max(" in body and "**(-2)" not in body
    zs = RNG.normal(size=(7, 1))
    for scale in (1.0, 1e3):   # logits of order 1e3: exp overflows unless shifted (RuntimeWarning is an error)
        z = (zs * scale).astype(dtype)
        values = {"z": z, "y": np.eye(7)[:, [2]].astype(dtype)}
        H = kernel(*[values[a.name] for a in args])
        e = np.exp(z.astype(np.float64) - z.max())
        p = e / e.sum()
        want = np.diagflat(p) - p @ p.T
        assert H.dtype == dtype and np.all(np.isfinite(H))
        assert np.max(np.abs(H - want)) < (1e-12 if dtype == np.float64 else 1e-6)
    # against second differences of f at moderate logits
    z = zs.astype(np.float64)
    H = kernel(*[{"z": z, "y": np.eye(7)[:, [2]]}[a.name] for a in args])

    def fz(x):
        return float(np.log(np.exp(x - x.max()).sum()) + x.max() - (x[2, 0] if "y" in text else 0.0))
    eps, (i, j) = 1e-4, (1, 4)
    Ei, Ej = np.eye(7)[:, [i]] * eps, np.eye(7)[:, [j]] * eps
    fd = (fz(z + Ei + Ej) - fz(z + Ei - Ej) - fz(z - Ei + Ej) + fz(z - Ei - Ej)) / (4 * eps * eps)
    assert abs(H[i, j] - fd) < 1e-6


def test_logistic_hessian_weights_the_rows_once_and_keeps_float32() -> None:
    shapes = {"X": ("n", "d"), "w": ("d", 1), "y": ("n", 1)}
    f = parse_expression("sum(softplus(X*w)) - y'*X*w", shapes)
    syms = {s.name: s for s in f.atoms(MatrixSymbol)}
    kernel = numeric.compile(derive.hessian(f, syms["w"]).result, [syms["X"], syms["w"], syms["y"]])
    body = _body(kernel)
    assert "diagflat" not in body
    # Xᵀdiag(s)X as one Gram product of X with the weights s = σ ⊙ (𝟏 − σ), formed first (n×1)
    assert "_gram(X, (1.0 - _t0) * _t0)" in body, body
    for dtype in (np.float64, np.float32):
        X, w, y = RNG.normal(size=(9, 4)).astype(dtype), RNG.normal(size=(4, 1)).astype(dtype), \
            (RNG.random((9, 1)) < 0.5).astype(dtype)
        H = kernel(X, w, y)
        s = 1 / (1 + np.exp(-(X.astype(np.float64) @ w)))
        want = (X * (s * (1 - s))).T @ X
        assert H.dtype == dtype and np.max(np.abs(H - want)) < (1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gram_products_with_any_weights_and_a_product_as_the_matrix(dtype) -> None:
    n, d, m = Symbol("n", integer=True, positive=True), Symbol("d", integer=True, positive=True), \
        Symbol("m", integer=True, positive=True)
    P, Q, C, s = MatrixSymbol("P", n, d), MatrixSymbol("Q", n, d), MatrixSymbol("C", d, m), MatrixSymbol("s", n, 1)
    PC = MatMul(P, C)
    exprs = [MatMul(P.T, Diag(s), P), 2 * MatMul(PC.T, Diag(s), PC), MatMul(P.T, Diag(s), Q)]
    kernel = numeric.compile(exprs, [P, Q, C, s])
    body = _body(kernel)
    assert body.count("_gram(") == 2 and "diagflat" not in body
    Pv, Qv, Cv = (RNG.normal(size=sh).astype(dtype) for sh in ((7, 4), (7, 4), (4, 3)))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for i, sv in enumerate((RNG.random((7, 1)), RNG.normal(size=(7, 1)), np.zeros((7, 1)))):   # ≥ 0, ±, 0
        sv = sv.astype(dtype)
        out = kernel(Pv, Qv, Cv, sv)
        want = [Pv.T @ np.diagflat(sv) @ Pv, 2 * (Pv @ Cv).T @ np.diagflat(sv) @ (Pv @ Cv),
                Pv.T @ np.diagflat(sv) @ Qv]
        for got, w in zip(out, want):
            assert got.dtype == dtype and np.max(np.abs(got - w)) < tol * max(1.0, np.max(np.abs(w)))
        if i != 1:   # weights ≥ 0: one symmetric product, exactly symmetric
            assert np.array_equal(out[0], out[0].T)
    nan = np.full((7, 1), np.nan, dtype)
    assert np.all(np.isnan(kernel(Pv, Qv, Cv, nan)[0]))
