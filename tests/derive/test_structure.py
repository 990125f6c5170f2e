"""Symmetric and diagonal variables, and a scalar variable λ, against finite differences of
NumPy functions written by hand (``tests/oracle.py``)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import Identity, MatrixSymbol, Symbol, Trace, det, log

import derive
from derive.elementwise import exp as ew_exp
from derive.networks import frobenius_sq
from tests.oracle import evaluate, rel_err

N = 4
S = MatrixSymbol("S", N, N)
A = MatrixSymbol("A", N, N)
x = MatrixSymbol("x", N, 1)


def _spd(rng, n=N):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


# (f as SymPy, f as NumPy of (S, A, x)): log det S, tr(AS), xᵀSx, and one with S twice
CASES = {
    "logdet": (log(det(S)), lambda s, a, v: np.linalg.slogdet(s)[1]),
    "trace_AS": (Trace(A * S), lambda s, a, v: np.trace(a @ s)),
    "quadratic": (x.T * S * x, lambda s, a, v: (v.T @ s @ v).item()),
    "tr_ASAS": (Trace(A * S * A * S), lambda s, a, v: np.trace(a @ s @ a @ s)),
}


def _data(seed: int):
    rng = np.random.default_rng(seed)
    return rng, _spd(rng), rng.standard_normal((N, N)), rng.standard_normal((N, 1))


def _fd(fn, s, a, v, E, eps=1e-6):
    return (fn(s + eps * E, a, v) - fn(s - eps * E, a, v)) / (2 * eps)


def _unit(i, j):
    E = np.zeros((N, N))
    E[i, j] = E[j, i] = 1.0
    return E


@pytest.mark.parametrize("name", sorted(CASES))
def test_symmetric_gradient_meets_fd_and_free_parameters(name):
    f, fn = CASES[name]
    rng, s, a, v = _data(1)
    G = derive.gradient(f, S, structure="symmetric")
    g = evaluate(G, {S: s, A: a, x: v})
    assert rel_err(g, g.T) < 1e-12  # an element of the space of symmetric matrices
    for _ in range(3):  # along symmetric directions
        B = rng.standard_normal((N, N))
        E = B + B.T
        assert abs(_fd(fn, s, a, v, E) - np.sum(g * E)) < 1e-6 * max(1.0, abs(np.sum(g * E)))
    # by each free parameter σᵢⱼ (i ≤ j): S = Σ σᵢⱼ (eᵢeⱼᵀ + eⱼeᵢᵀ)/(1 + δᵢⱼ)
    partials = np.zeros((N, N))
    for i in range(N):
        for j in range(i, N):
            partials[i, j] = partials[j, i] = _fd(fn, s, a, v, _unit(i, j))
            assert abs(partials[i, j] - (2 - (i == j)) * g[i, j]) < 1e-6 * max(1.0, abs(partials[i, j]))
    # the convention G + Gᵀ − G ⊙ I of some texts is this matrix of partials, not the gradient
    G_free = evaluate(derive.gradient(f, S), {S: s, A: a, x: v})
    assert rel_err(G_free + G_free.T - G_free * np.eye(N), partials) < 1e-6
    assert rel_err(partials, g) > 1e-2


@pytest.mark.parametrize("name", sorted(CASES))
def test_diagonal_gradient_meets_fd(name):
    f, fn = CASES[name]
    _, s, a, v = _data(2)
    s = np.diag(np.diag(s))
    g = evaluate(derive.gradient(f, S, structure="diagonal"), {S: s, A: a, x: v})
    assert np.all(g[~np.eye(N, dtype=bool)] == 0)
    for i in range(N):
        fd = _fd(fn, s, a, v, _unit(i, i))
        assert abs(fd - g[i, i]) < 1e-6 * max(1.0, abs(fd))


def test_closed_forms_of_the_symmetric_gradient():
    assert derive.gradient(log(det(S)), S, structure="symmetric") == S.I  # Cookbook (57), S symmetric
    assert derive.gradient(x.T * S * x, S, structure="symmetric") == x * x.T
    G = derive.gradient(Trace(A * S), S, structure="symmetric")
    assert sympy.expand((G - (A + A.T) / 2).as_explicit()) == sympy.zeros(N, N)
    D = derive.gradient(Trace(A * S), S, structure="diagonal")
    assert sympy.expand((D - sympy.hadamard_product(Identity(N), A.T)).as_explicit()) == sympy.zeros(N, N)


def test_structured_derivation_shows_the_step_and_the_note():
    dv = derive.derivation(Trace(A * S), S, structure="symmetric")
    assert [s.rule for s in dv.steps][-2:] == ["read_off", "symmetric_variable"]
    en, zh = dv.to_text(), dv.to_text(lang="zh")
    assert "G + Gᵀ − G ⊙ I" in en and "Srinivasan & Panda" in en and "not the gradient" in en
    assert "对称矩阵空间" in zh and "G + Gᵀ − G ⊙ I" in zh
    assert "(1/2)(A + Aᵀ)" in en
    dv = derive.derivation(log(det(S)), S, structure="diagonal")
    assert dv.steps[-2].rule == "symmetry" and dv.steps[-1].rule == "diagonal_variable"
    assert "diagonal part I ⊙ G" in dv.to_markdown() and "对角部分" in dv.to_markdown(lang="zh")
    assert "symmetric_variable" not in [s.rule for s in derive.derivation(Trace(A * S), S).steps]


def test_structured_variable_refused_clearly():
    X = MatrixSymbol("X", 4, 3)
    with pytest.raises(ValueError, match="square MatrixSymbol"):
        derive.gradient(frobenius_sq(X), X, structure="symmetric")
    with pytest.raises(ValueError, match="expected one of 'symmetric', 'diagonal'"):
        derive.gradient(Trace(A * S), S, structure="skew")


# --- a scalar variable λ ---------------------------------------------------------------------------

lam = Symbol("lambda")
X, Y = MatrixSymbol("X", 4, 3), MatrixSymbol("Y", 4, 3)
SCALAR_CASES = {
    "lam_norm": (lam * frobenius_sq(X), lambda t, X_, Y_: t * np.sum(X_ ** 2)),
    "least_squares": (frobenius_sq(Y - lam * X), lambda t, X_, Y_: np.sum((Y_ - t * X_) ** 2)),
    "exp_lam": (Trace(sympy.exp(lam) * X.T * Y), lambda t, X_, Y_: np.exp(t) * np.sum(X_ * Y_)),
    "elementwise_exp": (frobenius_sq(ew_exp(lam * X)), lambda t, X_, Y_: np.sum(np.exp(2 * t * X_))),
    "ridge": (frobenius_sq(Y - X) + lam ** 2 * frobenius_sq(X) + log(lam),
              lambda t, X_, Y_: np.sum((Y_ - X_) ** 2) + t ** 2 * np.sum(X_ ** 2) + np.log(t)),
}


@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
def test_scalar_variable_meets_fd(name):
    f, fn = SCALAR_CASES[name]
    rng = np.random.default_rng(3)
    t = 0.7
    Xv, Yv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dv = derive.derivation(f, lam)
    assert dv.steps[-1].rule == "read_off_scalar"
    g = float(evaluate(sympy.sympify(dv.result).subs(lam, t), {X: Xv, Y: Yv}))
    eps = 1e-6
    fd = (fn(t + eps, Xv, Yv) - fn(t - eps, Xv, Yv)) / (2 * eps)
    assert abs(g - fd) < 1e-6 * max(1.0, abs(fd))


def test_scalar_variable_closed_form_and_text():
    # ‖Y − λX‖²: ∂/∂λ = −2 tr((Y − λX)ᵀX)
    rng = np.random.default_rng(4)
    Xv, Yv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    g = sympy.sympify(derive.gradient(frobenius_sq(Y - lam * X), lam)).subs(lam, 0.3)
    assert abs(float(evaluate(g, {X: Xv, Y: Yv})) + 2 * np.sum((Yv - 0.3 * Xv) * Xv)) < 1e-12
    text = derive.derivation(frobenius_sq(Y - lam * X), lam).to_text()
    assert "∂f/∂λ" in text and "dλ" in text and "read off the derivative" in text
    with pytest.raises(ValueError, match="does not appear"):
        derive.gradient(frobenius_sq(X), lam)


def test_one_by_one_matrix_variable():
    # a 1×1 MatrixSymbol as the variable: f = ‖Y − Xc‖² with c 1×1 and X, Y columns
    c, u, w = MatrixSymbol("c", 1, 1), MatrixSymbol("u", 5, 1), MatrixSymbol("w", 5, 1)
    rng = np.random.default_rng(5)
    cv, uv, wv = rng.standard_normal((1, 1)), rng.standard_normal((5, 1)), rng.standard_normal((5, 1))
    g = evaluate(derive.gradient(frobenius_sq(w - u * c), c), {c: cv, u: uv, w: wv})
    assert g.shape == (1, 1)
    assert abs(g.item() + 2 * (uv.T @ (wv - uv * cv.item())).item()) < 1e-12


def test_structured_and_scalar_gradients_compile():
    import numeric

    rng = np.random.default_rng(6)
    s, a = _spd(rng), rng.standard_normal((N, N))
    g = numeric.compile(derive.gradient(log(det(S)), S, structure="diagonal"), [S])(s)
    assert rel_err(g, np.diag(np.diag(np.linalg.inv(s)))) < 1e-12
    g = numeric.compile(derive.gradient(Trace(A * S), S, structure="symmetric"), [A, S])(a, s)
    assert rel_err(g, (a + a.T) / 2) < 1e-12
    Xv, Yv = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    g = numeric.compile(derive.gradient(frobenius_sq(Y - lam * X), lam), [X, Y, lam])(Xv, Yv, 0.3)
    assert abs(g + 2 * np.sum((Yv - 0.3 * Xv) * Xv)) < 1e-12


def test_a_power_whose_exponent_varies_is_refused():
    from derive.differential import UnsupportedExpressionError

    with pytest.raises(UnsupportedExpressionError, match="exponent that varies"):
        derive.gradient(Trace(sympy.MatPow(S, lam)), lam)
