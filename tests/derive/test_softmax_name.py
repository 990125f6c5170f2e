"""Jacobians and Hessians written with p = softmax(z): ∂softmax(z)/∂zᵀ, the log-sum-exp Hessian and the
softmax cross-entropy Hessian read diag(p) − ppᵀ (printed text, LaTeX, MathML, both languages), and
every one meets central finite differences of a softmax written by hand in NumPy and the closed form
diag(p) − ppᵀ typed from Magnus & Neudecker, at sizes that differ from case to case."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import MatMul, MatrixSymbol, OneMatrix, Trace

import numeric
from tests.oracle import evaluate
from derive.elementwise import exp
from derive.fold import Softmax, name_softmax, softmax_vector
from derive.jacobian import hessian, jacobian
from derive.kronecker import Diag
from derive.networks import softmax_cols, softmax_cross_entropy
from derive.parse import parse_expression
from derive.render.html import derivation_html
from derive.render.mathml import math_mathml
from derive.render.printer import math_latex, math_text

RNG = np.random.default_rng(12)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def closed(v: np.ndarray) -> np.ndarray:
    """diag(p) − ppᵀ for the column (or row) v."""
    p = softmax(v).reshape(-1, 1)
    return np.diagflat(p) - p @ p.T


def fd_jacobian(F, v: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """∂ vec F/∂(vec v)ᵀ by central differences, one column per entry of v."""
    cols = []
    for i in range(v.size):
        e = np.zeros(v.size)
        e[i] = h
        e = e.reshape(v.shape, order="F")
        cols.append(((F(v + e) - F(v - e)) / (2 * h)).reshape(-1, order="F"))
    return np.stack(cols, axis=1)


def fd_hessian(f, v: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """∂²f/∂(vec v)∂(vec v)ᵀ by central second differences."""
    n = v.size
    E = [np.eye(n)[:, [i]].reshape(v.shape, order="F") * h for i in range(n)]
    return np.array([[(f(v + E[i] + E[j]) - f(v + E[i] - E[j]) - f(v - E[i] + E[j]) + f(v - E[i] - E[j]))
                      / (4 * h * h) for j in range(n)] for i in range(n)])


def symbol(e, name: str) -> MatrixSymbol:
    return next(s for s in e.atoms(MatrixSymbol) if s.name == name)


def test_softmax_jacobian_reads_diag_p_minus_p_p_transpose() -> None:
    for name, n in (("z", 5), ("x", 4)):
        z = MatrixSymbol(name, n, 1)
        dv = jacobian(softmax_cols(z), z)
        assert math_text(dv.result) == "diag(p) - ppᵀ"
        assert [s.rule for s in dv.steps][-2:] == ["name_softmax", "read_off_jacobian"]
        v = RNG.normal(size=(n, 1))
        J = numeric.compile([dv.result], [z])(v)[0]
        assert rel(J, closed(v)) < 1e-12
        assert rel(J, fd_jacobian(softmax, v)) < 1e-7
        assert rel(evaluate(dv.result, {z: v}), closed(v)) < 1e-12   # SymPy with explicit matrices


def test_the_derivation_defines_p_in_every_renderer_and_language() -> None:
    z = MatrixSymbol("z", 5, 1)
    dv = jacobian(softmax_cols(z), z)
    text = str(dv)
    assert "p = exp(z) ⊙ Z" in text and "Z = 𝟏₅(𝟏₅ᵀexp(z))∘⁻¹" in text      # the definition line
    assert "= (diag(p) - ppᵀ) dz" in text and "[write with the softmax p]" in text
    assert "⇒ ∂F/∂zᵀ = diag(p) - ppᵀ" in text
    zh = dv.to_text(lang="zh")
    assert "为简洁，记" in zh and "p = exp(z) ⊙ Z" in zh and "[用 softmax p 表示]" in zh
    assert math_latex(dv.result) == r"\operatorname{diag}(p) - pp^T"
    assert r"$p = \exp(z) \odot Z$" in dv.to_markdown()
    assert r"\operatorname{diag}(p) - pp^T" in dv.to_latex()
    mml = math_mathml(dv.result)
    assert "<mi>p</mi><mo>&#8290;</mo><msup><mi>p</mi><mi>T</mi></msup>" in mml and "exp" not in mml
    assert "<mi>p</mi>" in derivation_html(dv)


@pytest.mark.parametrize("source, n", [
    ("log(sum(exp(z)))", 6),                     # log-sum-exp
    ("log(sum(exp(z))) - y'*z", 7),              # softmax cross-entropy, y a column
    ("log(sum(exp(z))) - sum(y .* z)", 3),       # the same, written with ⊙
])
def test_log_sum_exp_and_cross_entropy_hessians_read_diag_p_minus_p_p_transpose(source: str, n: int) -> None:
    f = parse_expression(source, {"z": (n, 1), "y": (n, 1)})
    z = symbol(f, "z")
    dv = hessian(f, z)
    assert math_text(dv.result) == "diag(p) - ppᵀ", source
    assert "name_softmax" in [s.rule for s in dv.steps]
    v, y = RNG.normal(size=(n, 1)), RNG.random(size=(n, 1))

    def forward(w: np.ndarray) -> float:
        m = w.max()
        return float(m + np.log(np.exp(w - m).sum()) - (y * w).sum() * ("y" in source))

    syms = sorted(f.atoms(MatrixSymbol), key=lambda s: s.name)
    H = numeric.compile([dv.result], syms)(*[v if s == z else y for s in syms])[0]
    assert rel(H, closed(v)) < 1e-12
    assert rel(H, fd_hessian(forward, v)) < 1e-5
    assert rel(H, H.T) < 1e-14


def test_row_cross_entropy_hessian_is_written_with_p() -> None:
    # a row z (1×k) and its label row y: the Hessian is (Σy)(diag(p) − pᵀp), written with p and y𝟏
    k = 5
    z, y = MatrixSymbol("z", 1, k), MatrixSymbol("y", 1, k)
    dv = hessian(softmax_cross_entropy(y, z), z)
    text = math_text(dv.result)
    assert "exp" not in text and "p" in text, text
    v, yv = RNG.normal(size=(1, k)), RNG.random(size=(1, k))

    def forward(w: np.ndarray) -> float:
        m = w.max()
        return float(-(yv * (w - m - np.log(np.exp(w - m).sum()))).sum())

    H = numeric.compile([dv.result], [y, z])(yv, v)[0]
    assert rel(H, yv.sum() * closed(v)) < 1e-12
    assert rel(H, fd_hessian(forward, v)) < 1e-5


def test_name_softmax_leaves_what_is_not_exp_over_its_sum() -> None:
    z = MatrixSymbol("z", 4, 1)
    s = Trace(MatMul(OneMatrix(1, 4), exp(z)))
    untouched = [exp(z), MatMul(s ** -2, exp(z)), MatMul(s ** -1, exp(z), exp(z).T),   # k ≠ −q
                 MatMul(s ** -1, exp(2 * z)), MatMul(s ** -1, Diag(exp(z) + z))]      # exp(2z), a sum inside diag
    for e in untouched:
        assert name_softmax(e, z) == e, e
    X = MatrixSymbol("X", 4, 3)
    assert name_softmax(MatMul(s ** -1, exp(X)), X) == MatMul(s ** -1, exp(X))     # not a vector
    # one power of s per exp(z): exp(z) ⊙ exp(z)/s² = p ⊙ p, and a scalar coefficient stays
    p = softmax_vector(z)
    assert math_text(name_softmax(MatMul(3, s ** -2, Diag(exp(z)), exp(z)), z)) == "3diag(p)p"
    assert isinstance(p, Softmax) and p.definition == softmax_cols(z)


def test_a_function_that_names_p_keeps_the_exp_form() -> None:
    z, p = MatrixSymbol("z", 4, 1), MatrixSymbol("p", 4, 1)
    F = MatMul(Diag(p), softmax_cols(z))
    dv = jacobian(F, z)
    assert "name_softmax" not in [s.rule for s in dv.steps] and "exp(z)" in math_text(dv.result)
    v, pv = RNG.normal(size=(4, 1)), RNG.normal(size=(4, 1))
    J = numeric.compile([dv.result], [p, z])(pv, v)[0]
    assert rel(J, np.diagflat(pv) @ closed(v)) < 1e-12


def test_row_cross_entropy_with_rows_summing_to_one_reads_diag_p_minus_p_transpose_p() -> None:
    k = 6
    z, y = MatrixSymbol("z", 1, k), MatrixSymbol("y", 1, k)
    facts = (((y, OneMatrix(k, 1)), OneMatrix(1, 1), "rows_sum_to_one"),)
    dv = hessian(softmax_cross_entropy(y, z), z, assumptions=facts)
    assert math_text(dv.result) == "diag(pᵀ) - pᵀp"
    assert "For short, write p = softmax(z)." in str(dv) and "[each row sums to 1]" in str(dv)
    v = RNG.normal(size=(1, k))
    yv = RNG.random(size=(1, k))
    yv /= yv.sum()

    def forward(w: np.ndarray) -> float:
        m = w.max()
        return float(-(yv * (w - m - np.log(np.exp(w - m).sum()))).sum())

    H = numeric.compile([dv.result], [z])(v)[0]
    assert rel(H, closed(v)) < 1e-12
    assert rel(H, fd_hessian(forward, v)) < 1e-5


def test_the_gradient_of_log_of_a_softmax_written_by_hand_cancels_the_softmax_and_its_reciprocal():
    # f = −tr(Yᵀ log softmax(XW)): d log P = P∘⁻¹ ⊙ dP, and P ⊙ P∘⁻¹ ⊙ Y is Y (not printed with P∘⁻¹)
    from derive import gradient
    from derive.elementwise import log
    from derive.networks import softmax_rows
    n, d, k = 4, 3, 5
    X, W, Y = MatrixSymbol("X", n, d), MatrixSymbol("W", d, k), MatrixSymbol("Y", n, k)
    G = gradient(-Trace(Y.T * log(softmax_rows(X * W))), W)
    text = math_text(G)
    assert "∘⁻¹" not in text and "XᵀY" in text
    x, w, y = RNG.standard_normal((n, d)), RNG.standard_normal((d, k)), RNG.random((n, k))
    p = np.exp(x @ w) / np.exp(x @ w).sum(axis=1, keepdims=True)
    by_hand = x.T @ (p * y.sum(axis=1, keepdims=True) - y)      # Y's rows need not sum to 1 here
    assert rel(evaluate(G, {X: x, W: w, Y: y}), by_hand) < 1e-12
