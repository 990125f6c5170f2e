"""Constants: an undefined one (inv(0), 1/det(0), A ⊘ 0, log 0) is refused where it is typed or
built, a defined one is derived as usual, and a gradient that is identically zero is a result.

Oracles: NumPy typed by hand (the refused formulas are inf, NaN or singular there; the zero
gradients are zero under central differences) and ``tests.oracle`` (SymPy entry by entry).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import sympy
from sympy import Determinant, HadamardPower, HadamardProduct, Inverse, MatMul, MatrixSymbol, Trace, ZeroMatrix

import derive
import numeric
from derive.cli import main
from derive.parse import ExpressionError, parse_expression
from derive.undefined import UndefinedExpressionError
from tests.oracle import check_against_fd, random_values

SHAPES = {"A": ("n", "n"), "B": ("n", "n"), "C": ("n", "d"), "c": ("n", 1)}
N = 4


# (text, column, message fragment, the same formula in NumPy at A (n×n), c (n×1); for an inverse,
# the matrix inverted)
UNDEFINED = [
    ("tr(inv(zeros(n,n))*A)", 4, "inv(zeros(n,n)) is undefined: it inverts zeros(n,n), a zero matrix",
     lambda A, c: np.zeros((N, N))),
    ("logdet(zeros(n,n)) + tr(A)", 1,
     "logdet(zeros(n,n)) is undefined: it takes the log of det(zeros(n, n)), which is 0",
     lambda A, c: np.log(np.linalg.det(np.zeros((N, N)))) + np.trace(A)),
    ("sum(A ./ (A - A))", 7, "A ./ (A - A) is undefined: it divides elementwise by (A - A), a zero matrix",
     lambda A, c: np.sum(A / (A - A))),
    ("det(A - A)^-1 + tr(A)", 11, "det(A - A)^-1 is undefined: it divides by det(A - A), which is 0",
     lambda A, c: np.linalg.det(A - A) ** -1.0 + np.trace(A)),
    ("tr(A)/det(A - A)", 6, "it divides by det(A - A), which is 0",
     lambda A, c: np.trace(A) / np.linalg.det(A - A)),
    ("sum(log(A - A) .* A)", 5, "log(A - A) is undefined: it applies log elementwise to A - A, a zero matrix",
     lambda A, c: np.sum(np.log(A - A) * A)),
    ("tr((A - A)^-1 * A)", 11, "(A - A)^-1 is undefined: it inverts (A - A), a zero matrix",
     lambda A, c: A - A),
    ("log(tr(A - A)) + tr(A)", 1, "log(tr(A - A)) is undefined: it takes the log of tr(A - A), which is 0",
     lambda A, c: np.log(np.trace(A - A)) + np.trace(A)),
    ("sum(1 ./ zeros(n,n) .* A)", 7, "it divides elementwise by zeros(n,n), a zero matrix",
     lambda A, c: np.sum(1 / np.zeros((N, N)) * A)),
    ("tr(inv(2*zeros(n,n) + zeros(n,n)) * A)", 4, "it inverts 2*zeros(n,n) + zeros(n,n), a zero matrix",
     lambda A, c: 2 * np.zeros((N, N)) + np.zeros((N, N))),
    ("tr(inv(ones(n,n))*A)", 4, "it inverts ones(n,n), a matrix of ones (rank 1: singular unless n = 1)",
     lambda A, c: np.ones((N, N))),
    ("tr(inv(c*c')*A)", 4, "it inverts c*c', an outer product (rank 1: singular unless n = 1)",
     lambda A, c: c @ c.T),
    ("sum(A ./ eye(n))", 7, "it divides elementwise by eye(n), an identity matrix (zero off the diagonal)",
     lambda A, c: np.sum(A / np.eye(N))),
    ("logdet(ones(n,n) * A)", 1, "it takes the log of det(ones(n, n)*A), which is 0",
     lambda A, c: np.log(np.linalg.det(np.ones((N, N)) @ A))),
    ("tr(inv(C*ones(d,d)*C') * A)", 4,
     "it inverts C*ones(d,d)*C', a product with a factor of rank 1 (rank 1: singular unless n = 1)",
     lambda A, c: A[:, :3] @ np.ones((3, 3)) @ A[:, :3].T),
    ("sum(A ./ relu(A - A))", 7, "it divides elementwise by relu(A - A), a zero matrix",
     lambda A, c: np.sum(A / np.maximum(A - A, 0))),
    ("sum(A ./ (2*tanh(zeros(n,n))')) + tr(A)", 7, "a zero matrix",
     lambda A, c: np.sum(A / (2 * np.tanh(np.zeros((N, N))).T)) + np.trace(A)),
]


@pytest.mark.parametrize("text,column,fragment,in_numpy", UNDEFINED, ids=[u[0] for u in UNDEFINED])
def test_undefined_constants_are_refused_where_typed(text, column, fragment, in_numpy) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, SHAPES)
    assert info.value.column == column
    assert fragment in str(info.value)
    # the oracle: NumPy computes no finite number for it, or the matrix inverted is singular
    # (np.linalg.inv may not notice: for c·cᵀ it returns entries of 1e16)
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        value = in_numpy(rng.standard_normal((N, N)), rng.standard_normal((N, 1)))
    if "inverts" in fragment:
        assert np.linalg.matrix_rank(value) < N
    else:
        assert not np.isfinite(value)


@pytest.mark.parametrize("text", [u[0] for u in UNDEFINED[:4]])
def test_cli_refuses_them_in_one_line_with_exit_2(text, capsys) -> None:
    assert main(["grad", text, "--wrt", "A", "--shape", "A=n,n", "c=n,1"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracegrad: error: ") and "is undefined" in lines[0]
    assert "∂f/∂A" not in out


A4, B4 = MatrixSymbol("A", 4, 4), MatrixSymbol("B", 4, 4)
Z4 = ZeroMatrix(4, 4)
BUILT = [
    (Trace(MatMul(A4, Inverse(Z4))), "0⁻¹ is undefined: it inverts 0, a zero matrix"),
    (sympy.log(Determinant(Z4)) + Trace(A4), "it takes the log of det(0), which is 0"),
    (Trace(HadamardProduct(A4, HadamardPower(A4 - A4, -1)) * B4), "it divides elementwise by 0, a zero matrix"),
    (Determinant(A4 - A4) ** -1 + Trace(A4), "it divides by det(0), which is 0"),
    (Trace(A4) / Trace(B4 - B4), "it divides by tr(0), which is 0"),
]


@pytest.mark.parametrize("f,fragment", BUILT, ids=[b[1] for b in BUILT])
def test_undefined_constants_built_in_python_are_refused_by_the_engine(f, fragment) -> None:
    with pytest.raises(UndefinedExpressionError, match=re.escape(fragment)) as info:
        derive.gradient(f, A4)
    assert "ZeroMatrix" not in str(info.value) and "Determinant" not in str(info.value)
    assert isinstance(info.value, ValueError)


# defined constants next to the refused ones: derived, and checked against central differences
DEFINED = [
    "det(A - A) + tr(A*B)",                 # det(0) = 0 is a number
    "sum(zeros(n,n) ./ A) + tr(A'*A)",      # 0 ⊘ A is 0 where A has no zero entry
    "sum((A - A) .^ 2) + tr(A*B)",
    "sum(sigmoid(zeros(n,n)) .* A)",        # σ(0) = 1/2
    "tr(inv(eye(n) + ones(n,n)) * A)",      # I + 11ᵀ is invertible
    "tr(inv(ones(1,1)) * c' * A * c)",      # a 1×1 matrix of ones is invertible
    "sum(A ./ ones(n,n))",
    "logdet(A*A' + eye(n))",
    "sum(A ./ sigmoid(zeros(n,n)))",        # σ(0) = 1/2 in the denominator
    "sum(A ./ exp(A - A))",                 # exp(0) = 1
    "tr(inv(C'*C) * C'*A*C)",               # d×d through n: no rank-1 factor
]


@pytest.mark.parametrize("text", DEFINED)
def test_defined_constants_are_derived(text) -> None:
    f = parse_expression(text, SHAPES)
    A = next(s for s in f.atoms(MatrixSymbol) if s.name == "A")
    G = derive.gradient(f, A)
    rng = np.random.default_rng(1)
    values = random_values(sorted(f.atoms(MatrixSymbol), key=lambda s: s.name), rng)
    assert check_against_fd(f, A, G, values, rng) < 1e-6


# ------------------------------------------------------------------- a zero gradient is a result

n, d = (sympy.Symbol(s, integer=True, positive=True) for s in "nd")
A, B = MatrixSymbol("A", n, d), MatrixSymbol("B", d, n)


def _fd_gradient_numpy(f, X, eps=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        E = np.zeros_like(X)
        E[idx] = eps
        g[idx] = (f(X + E) - f(X - E)) / (2 * eps)
    return g


@pytest.mark.parametrize("f,in_numpy", [
    (Trace(A * B) - Trace(B.T * A.T), lambda A, B: np.trace(A @ B) - np.trace(B.T @ A.T)),
    (Trace(A * B) - Trace(B * A), lambda A, B: np.trace(A @ B) - np.trace(B @ A)),
    (Trace(A * B * A * B) - Trace(B * A * B * A), lambda A, B: np.trace(A @ B @ A @ B) - np.trace(B @ A @ B @ A)),
])
def test_identically_zero_gradient_is_the_zero_matrix(f, in_numpy) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    for X, i in ((A, 0), (B, 1)):
        G = derive.gradient(f, X)
        assert ZeroMatrix(*X.shape) == G
        dv = derive.derivation(f, X)
        assert dv.steps[-1].rule == "read_off" and dv.steps[-1].rhs == ZeroMatrix(*X.shape)
        fd = _fd_gradient_numpy(lambda x, i=i: in_numpy(x, b) if i == 0 else in_numpy(a, x), (a, b)[i])
        assert np.max(np.abs(fd)) < 1e-7 * (1 + np.max(np.abs(a)) * np.max(np.abs(b)))
        kernel = numeric.compile(G, [A, B])
        np.testing.assert_array_equal(kernel(a, b), np.zeros((a, b)[i].shape))


def test_zero_next_to_a_nonzero_gradient() -> None:
    f = Trace(A * B) - Trace(B.T * A.T) + Trace(B * B.T)
    assert derive.gradient(f, A) == ZeroMatrix(n, d)
    assert derive.gradient(f, B) == 2 * B


def test_cli_prints_the_zero_gradient_with_exit_0(capsys) -> None:
    assert main(["grad", "tr(A*B) - tr(B'*A')", "--wrt", "A,B", "--shape", "A=n,d", "B=d,n"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "⇒ ∂f/∂A = 0" in out and "⇒ ∂f/∂B = 0" in out
    assert re.search(r"^\s+∂f/∂A\s+n×d\s+0$", out, re.M) and re.search(r"^\s+∂f/∂B\s+d×n\s+0$", out, re.M)
    assert "could not bring" not in out


def test_network_stage_with_an_undefined_constant_is_refused_naming_the_stage() -> None:
    from sympy import MatrixSymbol, ZeroMatrix

    import derive

    X, Z = MatrixSymbol("X", 4, 3), MatrixSymbol("Z", 4, 3)
    with pytest.raises(ValueError, match=r"stage Z .*undefined"):
        derive.Network(inputs=(X,), params=(), stages=((Z, X + derive.log(ZeroMatrix(4, 3))),),
                       loss=derive.frobenius_sq(Z))
