"""Matrix functions (issue 12, 7): e^A, symbolic and fractional powers inside a trace, the nuclear
norm, and the elementwise abs, against closed forms of the Matrix Cookbook and central finite
differences of NumPy functions written here (a Taylor series for e^A, the SVD for the nuclear norm)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import MatPow, MatrixSymbol, Rational, Symbol, Trace

import derive
import numeric
from derive.differential import UnsupportedExpressionError
from derive.lang import parse
from derive.matrix_functions import expm
from tests.oracle import rel_err

n, d, m, k = 4, 3, 5, 2
EPS = 1e-6


def taylor_expm(A: np.ndarray, terms: int = 60) -> np.ndarray:
    """e^A by its series with scaling and squaring by hand (an oracle independent of numeric)."""
    s = max(0, int(np.ceil(np.log2(max(np.abs(A).sum(), 1.0)))))
    B = A / 2 ** s
    E, T = np.eye(len(A)), np.eye(len(A))
    for i in range(1, terms):
        T = T @ B / i
        E = E + T
    for _ in range(s):
        E = E @ E
    return E


def fd(fn, V, P):
    return (fn(V + EPS * P) - fn(V - EPS * P)) / (2 * EPS)


def check_fd(fn, V, G, rng, directions=3, tol=1e-6):
    for _ in range(directions):
        P = rng.standard_normal(V.shape)
        num, an = fd(fn, V, P), float(np.sum(G * P))
        assert abs(num - an) <= tol * max(1.0, abs(num)), (num, an)


def test_trace_of_expm_is_the_cookbook_closed_form():
    X = MatrixSymbol("X", n, n)
    rng = np.random.default_rng(0)
    Xv = rng.standard_normal((n, n))
    dv = derive.derivation(Trace(expm(X)), X)
    assert "d_trace_function" in [s.rule for s in dv.steps]
    f, G = numeric.compile([Trace(expm(X)), dv.result], [X])(Xv)
    assert abs(f - np.trace(taylor_expm(Xv))) < 1e-12 * abs(f)
    assert rel_err(G, taylor_expm(Xv).T) < 1e-12            # Cookbook (528): ∂ tr(e^X) = (e^X)ᵀ
    check_fd(lambda V: np.trace(taylor_expm(V)), Xv, G, rng)


def test_trace_of_expm_of_a_product_non_square_factors():
    A, X = MatrixSymbol("A", n, d), MatrixSymbol("X", d, n)
    rng = np.random.default_rng(1)
    Av, Xv = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    f = sympy.log(Trace(expm(A * X)))
    G = numeric.compile(derive.gradient(f, X), [A, X])(Av, Xv)
    E = taylor_expm(Av @ Xv)
    assert rel_err(G, Av.T @ E.T / np.trace(E)) < 1e-12
    check_fd(lambda V: np.log(np.trace(taylor_expm(Av @ V))), Xv, G, rng)


def test_scalar_variable_in_a_matrix_exponential():
    A = MatrixSymbol("A", n, n)
    lam = Symbol("lambda")
    rng = np.random.default_rng(2)
    Av = rng.standard_normal((n, n))
    g = derive.gradient(Trace(expm(lam * A)), lam)
    val = numeric.compile(g, [A, lam])(Av, 0.3)
    assert abs(val - np.trace(taylor_expm(0.3 * Av) @ Av)) < 1e-12 * max(1.0, abs(val))
    num = (np.trace(taylor_expm((0.3 + EPS) * Av)) - np.trace(taylor_expm((0.3 - EPS) * Av))) / (2 * EPS)
    assert abs(val - num) < 1e-6 * max(1.0, abs(num))


def test_symbolic_integer_power_inside_a_trace():
    X = MatrixSymbol("X", n, n)
    kk = Symbol("k", integer=True)
    G = derive.gradient(Trace(MatPow(X, kk)), X)
    rng = np.random.default_rng(3)
    Xv = rng.standard_normal((n, n))
    kernel = numeric.compile([Trace(MatPow(X, kk)), G], [X, kk])
    for p in (1, 2, 3, 5):
        f, g = kernel(Xv, float(p))
        assert abs(f - np.trace(np.linalg.matrix_power(Xv, p))) < 1e-10 * max(1.0, abs(f))
        assert rel_err(g, p * np.linalg.matrix_power(Xv, p - 1).T) < 1e-12   # Cookbook (108)
        check_fd(lambda V, p=p: np.trace(np.linalg.matrix_power(V, p)), Xv, g, rng, directions=2)


def test_nuclear_norm_non_square():
    Z = MatrixSymbol("Z", m, d)
    f = Trace(MatPow(Z.T * Z, Rational(1, 2)))
    dv = derive.derivation(f, Z)
    rng = np.random.default_rng(4)
    Zv = rng.standard_normal((m, d))
    fv, G = numeric.compile([f, dv.result], [Z])(Zv)
    U, s, Vt = np.linalg.svd(Zv, full_matrices=False)
    assert abs(fv - s.sum()) < 1e-12 * s.sum()
    assert rel_err(G, U @ Vt) < 1e-12     # ∂‖Z‖_* = Z(ZᵀZ)^(−1/2) = UVᵀ
    check_fd(lambda V: np.linalg.svd(V, compute_uv=False).sum(), Zv, G, rng)


def test_fractional_power_of_a_positive_definite_matrix():
    X = MatrixSymbol("X", n, d)
    f = Trace(MatPow(X.T * X, Rational(-1, 3)))   # d tr(Aᵖ) = p tr(Aᵖ⁻¹ dA) with A = XᵀX
    G = derive.gradient(f, X)
    rng = np.random.default_rng(5)
    Xv = rng.standard_normal((n, d)) + 2 * np.eye(n, d)

    def tr_power(V):
        return float(np.sum(np.linalg.eigvalsh(V.T @ V) ** (-1 / 3)))

    g = numeric.compile(G, [X])(Xv)
    w, Q = np.linalg.eigh(Xv.T @ Xv)
    assert rel_err(g, -2 / 3 * Xv @ (Q * w ** (-4 / 3)) @ Q.T) < 1e-12
    check_fd(tr_power, Xv, g, rng)


def test_abs_is_elementwise_with_sign_as_its_subgradient():
    p = parse("sum(abs(Y - X*W))", {"X": (n, d), "W": (d, k), "Y": (n, k)})
    f = p.expr
    W_ = p.symbols["W"]
    G = derive.gradient(f, W_)
    rng = np.random.default_rng(6)
    Xv, Wv, Yv = rng.standard_normal((n, d)), rng.standard_normal((d, k)), rng.standard_normal((n, k))
    g = numeric.compile(G, [p.symbols["X"], W_, p.symbols["Y"]])(Xv, Wv, Yv)
    assert rel_err(g, -Xv.T @ np.sign(Yv - Xv @ Wv)) < 1e-15
    check_fd(lambda V: np.abs(Yv - Xv @ V).sum(), Wv, g, rng)
    # at 0 the derivative is sign(0) = 0, one of the subgradients [−1, 1] of |x|
    assert numeric.compile(derive.gradient(parse("sum(abs(X))", {"X": (n, d)}).expr,
                                           MatrixSymbol("X", n, d)), [MatrixSymbol("X", n, d)])(
        np.zeros((n, d))).tolist() == np.zeros((n, d)).tolist()
    assert "sign" in derive.derivation(f, W_).to_text()


def test_language_expm_powers_and_nuclear_norm():
    shapes = {"A": (n, n), "X": (n, n), "Z": (m, d), "k": ()}
    rng = np.random.default_rng(7)
    e1 = parse("tr(expm(A*X))", shapes)
    A, X = e1.symbols["A"], e1.symbols["X"]
    Av, Xv = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    g = numeric.compile(derive.gradient(e1.expr, X), [A, X])(Av, Xv)
    assert rel_err(g, Av.T @ taylor_expm(Av @ Xv).T) < 1e-12
    e2 = parse("tr((Z'*Z)^(1/2))", shapes)
    Z = e2.symbols["Z"]
    Zv = rng.standard_normal((m, d))
    U, _, Vt = np.linalg.svd(Zv, full_matrices=False)
    assert rel_err(numeric.compile(derive.gradient(e2.expr, Z), [Z])(Zv), U @ Vt) < 1e-12
    e3 = parse("tr(X^k)", shapes)
    kk = e3.symbols["k"]
    assert str(derive.gradient(e3.expr, e3.symbols["X"])) == "k·(Xᵀ)^(k - 1)"
    assert kk in e3.expr.free_symbols
    e4 = parse("tr(X^n)", {"X": ("n", "n")})  # a dimension is an integer symbol
    assert str(derive.gradient(e4.expr, e4.symbols["X"])) == "n·(Xᵀ)^(n - 1)"


def test_matrix_functions_refused_where_no_trace_makes_them_tractable():
    A, X = MatrixSymbol("A", n, n), MatrixSymbol("X", n, n)
    with pytest.raises(UnsupportedExpressionError, match=r"outside tr\(expm\(X\)\)"):
        derive.gradient(Trace(A * expm(X)), X)
    with pytest.raises(UnsupportedExpressionError, match=r"matrix power A\^k of A = X .* only inside a trace"):
        derive.gradient(Trace(A * MatPow(X, Symbol("k", integer=True))), X)
    with pytest.raises(ValueError, match="non-square"):
        expm(MatrixSymbol("Z", m, d))
    with pytest.raises(Exception, match="square"):
        parse("tr(expm(Z))", {"Z": (m, d)})


def test_numpy_matrix_functions_without_warnings():
    from numeric.numpy_matfun import _expm, _matrix_power, _spd_power

    rng = np.random.default_rng(8)
    for scale in (0.01, 1.0, 30.0):   # the last one takes the squaring path
        A = scale * rng.standard_normal((n, n)) / n
        assert rel_err(_expm(A), taylor_expm(A)) < 1e-12
    A32 = rng.standard_normal((n, n)).astype(np.float32)
    assert _expm(A32).dtype == np.float32 and rel_err(_expm(A32), taylor_expm(A32.astype(float))) < 1e-5
    S = rng.standard_normal((n, n))
    S = S @ S.T + n * np.eye(n)
    R = _spd_power(S, 0.5)
    assert rel_err(R @ R, S) < 1e-12
    assert rel_err(_matrix_power(S, 3.0), S @ S @ S) < 1e-12
    with pytest.raises(ValueError, match="positive definite"):
        _spd_power(-S, 0.5)
    with pytest.raises(ValueError, match="integer exponent"):
        _matrix_power(S, 1.5)
