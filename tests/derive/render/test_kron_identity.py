"""An identity factor of a Kronecker product prints with its size (Iₙ ⊗ A, A ⊗ I₅) in text, LaTeX and
MathML: nothing beside it says how large it is; an identity elsewhere stays I."""
from __future__ import annotations

from sympy import Identity, KroneckerProduct, MatMul, MatrixSymbol, Symbol

from derive.jacobian import jacobian
from derive.render.mathml import math_mathml
from derive.render.printer import math_latex, math_text


def test_identity_factor_of_a_kronecker_product_shows_its_size() -> None:
    A, n = MatrixSymbol("A", 3, 4), Symbol("n", integer=True, positive=True)
    e = KroneckerProduct(Identity(5), A)
    assert (math_text(e), math_latex(e)) == ("I₅ ⊗ A", r"I_{5} \otimes A")
    assert "<msub><mi>I</mi><mn>5</mn></msub><mo>&#8855;</mo><mi>A</mi>" in math_mathml(e)
    e = KroneckerProduct(A.T, Identity(n))
    assert (math_text(e), math_latex(e)) == ("Aᵀ ⊗ Iₙ", r"A^T \otimes I_{n}")
    assert math_text(MatMul(A, Identity(4))) == "AI"


def test_the_jacobian_of_a_product_reads_identity_sizes() -> None:
    # ∂ vec(AX)/∂(vec X)ᵀ = I₂ ⊗ A for X 4×2: the 2 is the columns of X
    A, X = MatrixSymbol("A", 3, 4), MatrixSymbol("X", 4, 2)
    assert math_text(jacobian(A * X, X).result) == "I₂ ⊗ A"
    assert math_text(jacobian(X * MatrixSymbol("B", 2, 5), X).result) == "Bᵀ ⊗ I₄"
