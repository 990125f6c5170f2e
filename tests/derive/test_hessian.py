"""derive.hessian and derive.hvp: every Hessian meets central second differences of f (written by hand in
NumPy) on random non-square data, is symmetric, and equals the closed form of the Matrix Cookbook /
Magnus & Neudecker; every Hessian-vector product meets ⟨U, H[V]⟩ = d²f along U and V by second
differences of f, and vec H[V] = H vec V where the Hessian reduces."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sympy import MatMul, MatrixSymbol, Trace, Transpose

import derive
import numeric
from derive.jacobian import hessian, hvp
from derive.networks import frobenius_sq, softmax_cross_entropy
from derive.parse import parse_expression
from derive.render.printer import math_text

RNG = np.random.default_rng(7)


def vec(A: np.ndarray) -> np.ndarray:
    return A.reshape(-1, 1, order="F")


def second_difference(f: Callable[[np.ndarray], float], X: np.ndarray, U: np.ndarray, V: np.ndarray,
                      h: float = 1e-4) -> float:
    """d²f along U and V: (f(X+hU+hV) − f(X+hU−hV) − f(X−hU+hV) + f(X−hU−hV)) / 4h²."""
    return (f(X + h * U + h * V) - f(X + h * U - h * V) - f(X - h * U + h * V) + f(X - h * U - h * V)) / (4 * h * h)


def fd_hessian(f: Callable[[np.ndarray], float], X: np.ndarray) -> np.ndarray:
    """∂²f/∂(vec X)∂(vec X)ᵀ by second differences, entry by entry."""
    n = X.size
    E = [vec_inverse(np.eye(n)[:, [i]], X.shape) for i in range(n)]
    return np.array([[second_difference(f, X, E[i], E[j]) for j in range(n)] for i in range(n)])


def vec_inverse(v: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return v.reshape(shape, order="F")


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def symbols(e, *names: str) -> list[MatrixSymbol]:
    by_name = {s.name: s for s in e.atoms(MatrixSymbol)}
    return [by_name[n] for n in names]


# --- vector Hessians -------------------------------------------------------------------------------

n, d = 5, 3
Xd, yd = RNG.normal(size=(n, d)), (RNG.random(size=(n, 1)) < 0.5).astype(float)
wd, xd, Ad, zd = RNG.normal(size=(d, 1)), RNG.normal(size=(4, 1)), RNG.normal(size=(4, 4)), RNG.normal(size=(6, 1))
yk = RNG.random(size=(6, 1))
yk /= yk.sum()


def _quadratic():
    x, A = MatrixSymbol("x", 4, 1), MatrixSymbol("A", 4, 4)
    return MatMul(x.T, A, x), x, [A, x], [Ad, xd], lambda v: (v.T @ Ad @ v).item(), Ad + Ad.T


def _logistic():
    f = parse_expression("-sum(y .* log(sigmoid(X*w)) + (1-y) .* log(1 - sigmoid(X*w)))",
                         {"X": (n, d), "w": (d, 1), "y": (n, 1)})
    X, w, y = symbols(f, "X", "w", "y")

    def nll(v):
        p = sig(Xd @ v)
        return float(-(yd * np.log(p) + (1 - yd) * np.log(1 - p)).sum())

    s = sig(Xd @ wd)
    return f, w, [X, w, y], [Xd, wd, yd], nll, Xd.T @ np.diagflat(s * (1 - s)) @ Xd


def _log_sum_exp():
    f = parse_expression("log(sum(exp(z)))", {"z": (6, 1)})
    (z,) = symbols(f, "z")
    p = np.exp(zd) / np.exp(zd).sum()
    return f, z, [z], [zd], lambda v: float(np.log(np.exp(v).sum())), np.diagflat(p) - p @ p.T


def _softmax_cross_entropy():
    # the row z (1×6) of one example, y a distribution: the Hessian is diag(p) − ppᵀ again (Σy = 1)
    z, y = MatrixSymbol("z", 1, 6), MatrixSymbol("y", 1, 6)
    f = softmax_cross_entropy(y, z)
    p = np.exp(zd) / np.exp(zd).sum()

    def ce(v):
        return float(-(yk.T @ (v - np.log(np.exp(v).sum()))).item())

    return f, z, [y, z], [yk.T, zd.T], lambda v: ce(v.T), np.diagflat(p) - p @ p.T


CASES = {"xᵀAx": _quadratic, "logistic regression": _logistic, "log-sum-exp": _log_sum_exp,
         "softmax cross-entropy": _softmax_cross_entropy}


@pytest.mark.parametrize("name", list(CASES))
def test_vector_hessian_meets_second_differences_closed_form_and_is_symmetric(name: str) -> None:
    f, var, syms, values, forward, closed = CASES[name]()
    dv = hessian(f, var)
    H = numeric.compile([dv.result], syms)(*values)[0]
    value = values[syms.index(var)]
    assert rel(H, fd_hessian(forward, value)) < 1e-5, name
    assert rel(H, closed) < 1e-10, name
    assert rel(H, H.T) < 1e-12, name


def test_quadratic_form_hessian_reads_a_plus_a_transpose() -> None:
    f, x, *_ = _quadratic()
    dv = hessian(f, x)
    assert math_text(dv.result) == "A + Aᵀ"
    rules = [s.rule for s in dv.steps]
    assert "read_off" in rules and rules[-3:] == ["vectorize", "kron_simplify", "read_off_hessian"]
    assert "Derive ∂²f/∂x∂xᵀ" in str(dv) and "第二识别定理" in dv.to_text(lang="zh")
    assert r"\frac{\partial^2 f}{\partial x\,\partial x^T}" in dv.to_latex()


def test_logistic_hessian_is_x_transpose_diag_x() -> None:
    f, w, *_ = _logistic()
    assert math_text(hessian(f, w).result) == "Xᵀdiag(σ(Xw) ⊙ (𝟏₅ - σ(Xw)))X"


# --- matrix variables: Hessians in Kronecker form and HVPs ---------------------------------------------

Xm, Am, Ym = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 4)), RNG.normal(size=(4, 2))
Wm = RNG.normal(size=(3, 2))


def test_least_squares_hessian_is_kronecker() -> None:
    X, W, Y = MatrixSymbol("X", 4, 3), MatrixSymbol("W", 3, 2), MatrixSymbol("Y", 4, 2)
    dv = hessian(frobenius_sq(X * W - Y), W)
    H = numeric.compile([dv.result], [X, W, Y])(Xm, Wm, Ym)[0]
    closed = 2 * np.kron(np.eye(2), Xm.T @ Xm)   # Magnus & Neudecker: 2(I ⊗ XᵀX)
    assert rel(H, closed) < 1e-12
    assert rel(H, fd_hessian(lambda v: float(((Xm @ v - Ym) ** 2).sum()), Wm)) < 1e-5
    assert "⊗" in math_text(dv.result) and "∂²f/∂(vec W)∂(vec W)ᵀ" in str(dv)


def test_trace_quadratic_hessian() -> None:
    X, A = MatrixSymbol("X", 4, 3), MatrixSymbol("A", 4, 4)
    dv = hessian(Trace(X.T * A * X), X)
    H = numeric.compile([dv.result], [X, A])(Xm, Am)[0]
    assert rel(H, np.kron(np.eye(3), Am + Am.T)) < 1e-12   # I ⊗ (A + Aᵀ)
    assert rel(H, fd_hessian(lambda v: float(np.trace(v.T @ Am @ v)), Xm)) < 1e-5


def test_hvp_of_quartic_meets_second_differences_and_closed_form() -> None:
    X, V = MatrixSymbol("X", 4, 3), MatrixSymbol("V", 4, 3)
    f = Trace(X.T * X * X.T * X)   # ‖XᵀX‖²_F
    dv = hvp(f, X, V)
    assert dv.result.shape == (4, 3)
    Vm, Um = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    HV = numeric.compile([dv.result], [X, V])(Xm, Vm)[0]
    closed = 4 * (Vm @ Xm.T @ Xm + Xm @ Vm.T @ Xm + Xm @ Xm.T @ Vm)
    assert rel(HV, closed) < 1e-12

    def quartic(v):
        return float(np.sum((v.T @ v) ** 2))

    assert abs(np.sum(Um * HV) - second_difference(quartic, Xm, Um, Vm)) < 1e-5 * abs(np.sum(Um * HV))
    assert [s.rule for s in dv.steps][-1] == "hvp_direction" and "∇²f(X)[V]" in str(dv)


def test_seed_network_hvp_meets_second_differences_and_the_hessian(seed_values) -> None:
    net = derive.seed_network(n=4, d=3, m=5, k=2)
    W1 = net.W1
    V = MatrixSymbol("V", *W1.shape)
    dv = hvp(net.f, W1, V)
    args = list(net.inputs) + list(net.params)
    values = [seed_values[a.name] for a in args]
    Vm, Um = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    HV = numeric.compile([dv.result], args + [V])(*values, Vm)[0]

    def loss(w1):
        v = dict(seed_values, W1=w1)
        H = sig(v["X"] @ w1 + v["b1"])
        return float(((v["Y"] - H @ v["W2"] - v["b2"]) ** 2).sum())

    fd = second_difference(loss, seed_values["W1"], Um, Vm)
    assert abs(np.sum(Um * HV) - fd) < 1e-5 * max(abs(fd), 1.0)
    H = numeric.compile([hessian(net.f, W1).result], args)(*values)[0]
    assert rel(H @ vec(Vm), vec(HV)) < 1e-10
    assert rel(H, H.T) < 1e-12


def test_hvp_refuses_a_bad_direction() -> None:
    X = MatrixSymbol("X", 4, 3)
    with pytest.raises(ValueError, match="shape of X"):
        hvp(Trace(X.T * X), X, MatrixSymbol("V", 3, 4))
    with pytest.raises(ValueError, match="must not depend"):
        hvp(Trace(X.T * X), X, 2 * X)
    with pytest.raises(TypeError, match="MatrixSymbol"):
        hessian(Trace(X.T * X), Transpose(X))


def test_the_hessian_of_a_function_with_a_constant_gradient_is_zero() -> None:
    # ∂f/∂X = B (or 0) does not depend on X: d(∂f/∂X) = 0 (the HVP read dB; the Hessian raised)
    from sympy import ZeroMatrix
    X, B, V, S = MatrixSymbol("X", 4, 3), MatrixSymbol("B", 4, 3), MatrixSymbol("V", 4, 3), MatrixSymbol("S", 4, 4)
    assert hvp(Trace(X.T * B), X, V).result == ZeroMatrix(4, 3)
    assert hessian(Trace(X.T * B), X).result == ZeroMatrix(12, 12)
    assert hessian(Trace(S - S.T), S).result == ZeroMatrix(16, 16)


def test_the_second_derivative_of_abs_has_no_dirac_delta() -> None:
    # sign′ = 2δ is 0 almost everywhere (as step′ is): the HVP of Σ|X|³ is 6|X| ⊙ V, and it compiles
    from sympy import DiracDelta
    X, V = MatrixSymbol("X", 4, 3), MatrixSymbol("V", 4, 3)
    f = derive.lang.parse("sum(abs(X) .^ 3)", {"X": (4, 3)}).expr
    H = hvp(f, X, V).result
    assert not H.has(DiracDelta)
    rng = np.random.default_rng(16)
    x, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    np.testing.assert_allclose(numeric.compile(H, [X, V])(x, v), 6 * np.abs(x) * v, rtol=1e-12)
