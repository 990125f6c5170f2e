"""LaTeX input for the Kronecker objects: ``\\otimes`` (infix, as kron), ``\\operatorname{vec}``,
``\\mathrm{vec}``, ``\\operatorname{diag}``, ``\\mathrm{diag}``, ``\\diag`` read as the ASCII language's
kron/vec/diag (compared structurally, and numerically with NumPy's kron on all-different shapes),
and a ⊗ the reading cannot place is a one-line error with its column."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import MatrixSymbol

import numeric
from derive.lang import ExpressionError, parse

SHAPES = {"A": (2, 3), "B": (4, 5), "C": (8, 15), "D": (3, 2), "X": (3, 5), "x": (6, 1), "M": (6, 6)}
RNG = np.random.default_rng(5)
VALUES = {name: RNG.normal(size=shape) for name, shape in SHAPES.items()}


def _expr(text: str, syntax: str):
    return parse(text, SHAPES, syntax=syntax).expr


def _value(e) -> np.ndarray:
    syms = sorted(e.atoms(MatrixSymbol), key=lambda s: s.name)
    return numeric.compile([e], syms)(*[VALUES[s.name] for s in syms])[0]


def vec(A: np.ndarray) -> np.ndarray:
    return A.reshape(-1, 1, order="F")


A, B, C, D, X, x, M = (VALUES[k] for k in "ABCDXxM")
PAIRS = [
    (r"A \otimes B", "kron(A, B)", np.kron(A, B)),
    (r"A \otimes B + C", "kron(A, B) + C", np.kron(A, B) + C),
    (r"C - 2A \otimes B", "C - kron(2*A, B)", C - 2 * np.kron(A, B)),
    (r"(A^T \otimes B)^T", "kron(A', B)'", np.kron(A.T, B).T),
    (r"\left(D \otimes A\right)\left(A \otimes D\right)", "kron(D, A)*kron(A, D)", np.kron(D, A) @ np.kron(A, D)),
    (r"A D \otimes D^{T} A^T", "kron(A*D, D'*A')", np.kron(A @ D, D.T @ A.T)),
    (r"D \otimes A \otimes x^T", "kron(kron(D, A), x')", np.kron(np.kron(D, A), x.T)),
    (r"(B \otimes A)\operatorname{vec}(X)", "kron(B, A)*vec(X)", vec(A @ X @ B.T)),
    (r"\mathrm{vec}(A X B^T)", "vec(A*X*B')", vec(A @ X @ B.T)),
    (r"\operatorname{vec}\left[X^T\right]", "vec(X')", vec(X.T)),
    (r"\operatorname{diag}(x) M", "diag(x)*M", np.diagflat(x) @ M),
    (r"\mathrm{diag}[x] - \diag(x)", "diag(x) - diag(x)", np.zeros((6, 6))),
    (r"\operatorname{kron}(A, B)", "kron(A, B)", np.kron(A, B)),
]


@pytest.mark.parametrize("latex, ascii_, expected", PAIRS, ids=[p[0] for p in PAIRS])
def test_latex_kronecker_reads_as_the_ascii_language(latex: str, ascii_: str, expected: np.ndarray) -> None:
    e = _expr(latex, "latex")
    assert e == _expr(ascii_, "ascii"), latex
    assert np.allclose(_value(e), expected, rtol=1e-12, atol=1e-12), latex


BAD = [
    (r"A \otimes", 3, "a factor on each side"),
    (r"\otimes B", 1, "a factor on each side"),
    (r"A \odot A \otimes B", 3, "ambiguous"),
    (r"\operatorname{diag}(A)", 1, "column vector"),
    (r"A \otimes X + C", 13, "joins A \\otimes X (6×15) with C (8×15)"),
]


def _error(text: str) -> ExpressionError:
    try:
        parse(text, SHAPES, syntax="latex")
    except ExpressionError as e:
        return e
    raise AssertionError(f"{text!r} parsed")


def test_latex_kronecker_errors_are_one_line_with_a_column() -> None:
    found = {text: _error(text) for text, _, _ in BAD}
    assert [(t, found[t].column) for t, _, _ in BAD] == [(t, c) for t, c, _ in BAD]
    for text, _, words in BAD:
        message = str(found[text])
        assert words in message and "\n" not in message and "Traceback" not in message, message
