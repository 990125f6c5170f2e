"""The LaTeX and text printers: notation, term order and brackets, expected strings written by hand."""
from __future__ import annotations

import pytest
import sympy
from sympy import Identity, Inverse, MatAdd, MatMul, MatrixSymbol, OneMatrix, Trace, Transpose, ZeroMatrix
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from derive.differential import MatrixDifferential as D, ScalarDifferential
from derive.elementwise import exp, log, relu, sigmoid, softplus, step, tanh
from derive.render.printer import (
    loss_latex, loss_text, math_latex, math_text, shape_latex, shape_text, symbol_latex,
)
from derive.steps import F, Gradient

n, d, m, k = sympy.symbols("n d m k", integer=True, positive=True)
X = MatrixSymbol("X", n, d)
Y = MatrixSymbol("Y", n, k)
P = MatrixSymbol("Ypred", n, k)
W1 = MatrixSymbol("W1", d, m)
W2 = MatrixSymbol("W2", m, k)
b1 = MatrixSymbol("b1", 1, m)
h = MatrixSymbol("h", n, m)
A = MatrixSymbol("A", n, n)
B = MatrixSymbol("B", n, n)
E = MatAdd(MatMul(-1, Y), P)  # Ypred − Y as SymPy stores it: −Y + Ypred
CORE = HadamardProduct(MatMul(E, Transpose(W2)), sigmoid(h), MatAdd(OneMatrix(n, m), MatMul(-1, sigmoid(h))))

LATEX_CASES = [
    # differentials
    (D(X), r"\mathrm{d}X"),
    (D(MatAdd(A, B)), r"\mathrm{d}(A + B)"),
    (ScalarDifferential(F), r"\mathrm{d}f"),
    (Transpose(D(Y)), r"(\mathrm{d}Y)^T"),
    (MatMul(Transpose(X), D(W1)), r"X^T\,\mathrm{d}W_1"),
    (ScalarDifferential(Trace(MatMul(Transpose(Y), Y))), r"\mathrm{d}\operatorname{tr}(Y^TY)"),
    # gradient symbol and names
    (Gradient(F, W1), r"\frac{\partial f}{\partial W_1}"),
    (Gradient(F, P), r"\frac{\partial f}{\partial Y_{pred}}"),
    (MatMul(X, W1), "XW_1"),
    (MatMul(OneMatrix(n, 1), b1), r"\mathbf{1}_{n}b_1"),
    # Hadamard product and power
    (HadamardProduct(A, B), r"A \odot B"),
    (HadamardPower(A, 2), r"A^{\circ 2}"),
    (HadamardPower(A, -1), r"A^{\circ -1}"),
    (HadamardPower(MatAdd(A, B), 2), r"(A + B)^{\circ 2}"),
    # elementwise functions
    (sigmoid(h), r"\sigma(h)"),
    (tanh(h), r"\tanh(h)"),
    (relu(h), r"\operatorname{relu}(h)"),
    (softplus(h), r"\operatorname{softplus}(h)"),
    (step(h), r"\operatorname{step}(h)"),
    (exp(h), r"\exp(h)"),
    (log(h), r"\log(h)"),
    (h.applyfunc(sympy.exp), r"\exp(h)"),
    (MatAdd(OneMatrix(n, m), MatMul(-1, HadamardPower(tanh(h), 2))), r"\mathbf{1} - \tanh(h)^{\circ 2}"),
    # ones, identity, zero, inverse, trace, determinant
    (OneMatrix(n, 1), r"\mathbf{1}_{n}"),
    (OneMatrix(1, n), r"\mathbf{1}_{n}^T"),
    (Transpose(OneMatrix(n, 1)), r"\mathbf{1}_{n}^T"),
    (OneMatrix(n, m), r"\mathbf{1}"),
    (Identity(n), "I"),
    (ZeroMatrix(n, n), "0"),
    (Inverse(A), "A^{-1}"),
    (Transpose(Inverse(A)), "A^{-T}"),
    (Inverse(Transpose(A)), "A^{-T}"),
    (Inverse(MatAdd(A, B)), "(A + B)^{-1}"),
    (Trace(A), r"\operatorname{tr}(A)"),
    (sympy.Determinant(A), r"\det(A)"),
    # positive terms first
    (E, "Y_{pred} - Y"),
    (MatAdd(MatMul(-1, A), MatMul(-2, B)), "-A - 2B"),
    (MatAdd(MatMul(-1, sigmoid(h)), OneMatrix(n, m)), r"\mathbf{1} - \sigma(h)"),
    # brackets
    (Transpose(MatAdd(Y, MatMul(-1, P))), "(Y - Y_{pred})^T"),
    (MatMul(2, Transpose(E)), "2(Y_{pred} - Y)^T"),
    (MatMul(E, Transpose(W2)), "(Y_{pred} - Y)W_2^T"),
    (Transpose(MatMul(A, B)), "(AB)^T"),
    (HadamardProduct(MatMul(A, B), MatAdd(A, B)), r"(AB) \odot (A + B)"),
    (MatMul(A, HadamardProduct(A, B)), r"A\left[A \odot B\right]"),
    (Transpose(HadamardProduct(A, B)), r"\left[A \odot B\right]^T"),
    (MatMul(2, Transpose(X), CORE),
     r"2X^T\left[\left((Y_{pred} - Y)W_2^T\right) \odot \sigma(h) \odot (\mathbf{1} - \sigma(h))\right]"),
    (Trace(MatMul(2, Transpose(E), D(P))),
     r"\operatorname{tr}\left(2(Y_{pred} - Y)^T\,\mathrm{d}Y_{pred}\right)"),
    (MatMul(sympy.Rational(1, 2), A), r"\frac{1}{2}A"),
]


@pytest.mark.parametrize("expr, expected", LATEX_CASES, ids=[e for _, e in LATEX_CASES])
def test_latex(expr, expected: str) -> None:
    assert math_latex(expr) == expected


TEXT_CASES = [
    (D(X), "dX"),
    (D(MatAdd(A, B)), "d(A + B)"),
    (Transpose(D(Y)), "(dY)ᵀ"),
    (ScalarDifferential(Trace(MatMul(Transpose(Y), Y))), "d tr(YᵀY)"),
    (Gradient(F, W1), "∂f/∂W1"),
    (MatMul(OneMatrix(n, 1), b1), "𝟏ₙb1"),
    (OneMatrix(1, n), "𝟏ₙᵀ"),
    (OneMatrix(n, m), "𝟏"),
    (HadamardPower(A, 2), "A∘²"),
    (HadamardPower(A, -1), "A∘⁻¹"),
    (Transpose(Inverse(A)), "A⁻ᵀ"),
    (Trace(MatMul(2, Transpose(E), D(P))), "tr(2(Ypred - Y)ᵀ dYpred)"),
    (MatMul(2, Transpose(X), CORE), "2Xᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]"),
    (tanh(h), "tanh(h)"),
    (relu(h), "relu(h)"),
    (MatMul(Transpose(P), Y), "Ypredᵀ Y"),  # a long name is kept apart from its neighbour
    (MatMul(sympy.Rational(1, 2), A), "(1/2)A"),
]


@pytest.mark.parametrize("expr, expected", TEXT_CASES, ids=[e for _, e in TEXT_CASES])
def test_text(expr, expected: str) -> None:
    assert math_text(expr) == expected


def test_names() -> None:
    assert [symbol_latex(s) for s in ("W1", "W12", "Ypred", "h_sigmoid", "alpha", "X")] == [
        "W_1", "W_{12}", "Y_{pred}", "h_{sigmoid}", r"\alpha", "X"]


def test_frobenius_loss_shown_as_norm() -> None:
    loss = Trace(MatMul(Transpose(MatAdd(Y, MatMul(-1, P))), MatAdd(Y, MatMul(-1, P))))
    assert loss_latex(loss) == r"\|Y - Y_{pred}\|_F^2"
    assert loss_text(loss) == "‖Y - Ypred‖_F²"
    other = Trace(MatMul(Transpose(Y), P))
    assert loss_latex(other) == math_latex(other) == r"\operatorname{tr}(Y^TY_{pred})"


def test_shapes() -> None:
    assert shape_latex(W1.shape) == r"d \times m"
    assert shape_text((4, 3)) == "4×3"


def test_scalar_activation_outside_matrices() -> None:
    x = sympy.Symbol("x")
    from derive.elementwise import Sigmoid

    assert math_latex(Sigmoid(x)) == r"\sigma(x)"
    assert math_text(Sigmoid(x)) == "σ(x)"


@pytest.mark.parametrize("expr", [MatMul(2, Transpose(X), CORE), MatMul(Transpose(E), X, W1),
                                  HadamardProduct(tanh(MatMul(X, W1)), MatAdd(OneMatrix(n, m), MatMul(-1, h)))],
                         ids=["seed-W1", "product", "hadamard"])
def test_printed_text_parses_back_to_the_same_values(expr) -> None:
    """The text read back by the expression language has the same values on random non-square data
    (evaluated entry by entry by the SymPy oracle, independent of the printer)."""
    import numpy as np

    from derive.parse import parse_expression
    from tests.oracle import evaluate, random_values

    shapes = {"X": ("n", "d"), "Y": ("n", "k"), "Ypred": ("n", "k"), "W1": ("d", "m"), "W2": ("m", "k"),
              "h": ("n", "m")}
    text = math_text(expr)
    back = parse_expression(text, shapes)
    vals = random_values(sorted(expr.atoms(MatrixSymbol) | back.atoms(MatrixSymbol), key=str),
                         np.random.default_rng(0))
    np.testing.assert_allclose(evaluate(back, vals), evaluate(expr, vals), rtol=1e-12, err_msg=text)
