"""The expression language: constructs, shapes, broadcasts, errors, round trips, fuzz."""
from __future__ import annotations

import builtins
import os
from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sympy import (
    Determinant, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixSymbol, OneMatrix, Trace,
    Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, hadamard_product

from derive import elementwise as ew
from derive.networks import frobenius_sq, seed_network
from derive.parse import (
    ExpressionError, ParsedExpression, format_expression, parse, parse_expression, same_structure,
)
from tests.oracle import evaluate, random_values

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dim(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


n, d, m, k = (dim(s) for s in "ndmk")
SHAPES = {
    "X": ("n", "d"), "Y": ("n", "k"), "W1": ("d", "m"), "b1": (1, "m"), "W2": ("m", "k"),
    "b2": (1, "k"), "A": ("n", "n"), "B": ("n", "n"), "v": ("n", 1), "w": ("d", 1),
    "x": ("d", 1), "s": (1, 1), "c": (), "t": (), "G": (3, 2),
}
X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, k)
W1, b1, W2, b2 = MatrixSymbol("W1", d, m), MatrixSymbol("b1", 1, m), MatrixSymbol("W2", m, k), \
    MatrixSymbol("b2", 1, k)
A, B = MatrixSymbol("A", n, n), MatrixSymbol("B", n, n)
v, w, x, s = MatrixSymbol("v", n, 1), MatrixSymbol("w", d, 1), MatrixSymbol("x", d, 1), \
    MatrixSymbol("s", 1, 1)
G = MatrixSymbol("G", 3, 2)
c, t = sympy.Symbol("c"), sympy.Symbol("t")
EXAMPLE = "norm2(Y - (sigmoid(X*W1 + b1)*W2 + b2))^2"


def P(text: str, shapes=SHAPES) -> sympy.Basic:
    return parse_expression(text, shapes)


# ------------------------------------------------------------------- constructs

def add(*args: sympy.Basic) -> sympy.Basic:
    return MatAdd(*args, evaluate=True)


def mul(*args: sympy.Basic) -> sympy.Basic:
    return MatMul(*args, evaluate=True)


CONSTRUCTS = [
    # names and numbers
    ("X", X), ("c", c), ("s", s), ("2", sympy.Integer(2)), ("0.25", sympy.Rational(1, 4)),
    ("1e-3", sympy.Rational(1, 1000)), (".5", sympy.Rational(1, 2)), ("2.5E2", sympy.Integer(250)),
    # + - and unary
    ("A + B", add(A, B)), ("A - B", add(A, mul(-1, B))), ("-A", mul(-1, A)),
    ("+A", A), ("c - t", c - t), ("-c", -c), ("--c", c),
    # products and quotients
    ("X*W1", mul(X, W1)), ("X*W1*W2", mul(X, W1, W2)), ("c*X", mul(c, X)),
    ("X*c", mul(c, X)), ("c*t", c * t), ("X/c", mul(1 / c, X)), ("c/t", c / t),
    ("X/2", mul(sympy.Rational(1, 2), X)), ("2*c*X", mul(2 * c, X)),
    ("s*X", mul(Trace(s), X)), ("X*s", mul(Trace(s), X)), ("w'*x", mul(Transpose(w), x)),
    ("X/s", mul(1 / Trace(s), X)),
    # Hadamard
    ("A .* B", hadamard_product(A, B)), ("A ./ B", hadamard_product(A, HadamardPower(B, -1))),
    ("A .* B .* A", hadamard_product(A, B, A)),
    ("A .* (A .* (A .* A))", HadamardPower(HadamardPower(A, 2), 2)),
    ("c .* A", mul(c, A)), ("A ./ c", mul(1 / c, A)), ("c ./ A", mul(c, HadamardPower(A, -1))),
    ("A .^ 2", HadamardPower(A, 2)), ("X.^c", HadamardPower(X, c)), ("c.^2", c**2),
    # powers
    ("A^2", MatPow(A, 2)), ("A^-1", Inverse(A)), ("A^(-2)", MatPow(A, -2)), ("A^0", Identity(n)),
    ("A^1", A), ("c^2", c**2), ("c^0.5", sympy.sqrt(c)), ("c^t", c**t), ("2^3^2", sympy.Integer(512)),
    ("-c^2", -c**2), ("(-c)^2", c**2), ("c^-1", 1 / c), ("s^0.5", sympy.sqrt(Trace(s))),
    ("s^2", MatPow(s, 2)),
    # transpose
    ("X'", Transpose(X)), ("X.T", Transpose(X)), ("X''", Transpose(Transpose(X))),
    ("(X*W1)'", Transpose(mul(X, W1))), ("X'*Y", mul(Transpose(X), Y)), ("c'", c),
    ("A'^2", MatPow(Transpose(A), 2)),
    # functions
    ("tr(A)", Trace(A)), ("det(A)", Determinant(A)), ("logdet(A)", sympy.log(Determinant(A))),
    ("inv(A)", Inverse(A)), ("norm2(X)", sympy.sqrt(Trace(mul(Transpose(X), X)))),
    ("norm2(X)^2", frobenius_sq(X)), ("norm2(X*W1)^2", frobenius_sq(mul(X, W1))),
    ("sum(X)", Trace(mul(OneMatrix(1, n), X, OneMatrix(d, 1)))),
    ("sum(v)", Trace(mul(OneMatrix(1, n), v))), ("sum(s)", Trace(s)), ("sum(c)", c),
    ("sqrt(c)", sympy.sqrt(c)), ("sqrt(s)", sympy.sqrt(Trace(s))),
    ("exp(c)", sympy.exp(c)), ("log(c)", sympy.log(c)), ("tanh(c)", sympy.tanh(c)),
    ("sigmoid(c)", ew.Sigmoid(c)), ("relu(c)", ew.Relu(c)), ("softplus(c)", ew.Softplus(c)),
    ("step(c)", ew.UnitStep(c)), ("exp(w'*x)", sympy.exp(Trace(mul(Transpose(w), x)))),
    ("tr(c)", c), ("inv(c)", 1 / c), ("det(c)", c), ("logdet(c)", sympy.log(c)),
    ("ones(n, 1)", OneMatrix(n, 1)), ("zeros(2, m)", ZeroMatrix(2, m)), ("eye(n)", Identity(n)),
    # broadcasting
    ("X*W1 + b1", add(mul(X, W1), mul(OneMatrix(n, 1), b1))),
    ("b1 + X*W1", add(mul(X, W1), mul(OneMatrix(n, 1), b1))),
    ("X*W1 - b1", add(mul(X, W1), mul(-1, OneMatrix(n, 1), b1))),
    ("A + v", add(A, mul(v, OneMatrix(1, n)))),
    ("A + c", add(A, mul(c, OneMatrix(n, n)))), ("A + 1", add(A, OneMatrix(n, n))),
    ("s + A", add(A, mul(Trace(s), OneMatrix(n, n)))),
    ("s + s", mul(2, s)), ("s + c", add(s, mul(c, OneMatrix(1, 1)))),
    # precedence
    ("A + B*A", add(A, mul(B, A))), ("(A + B)*A", mul(add(A, B), A)),
    ("-A*B", mul(-1, A, B)), ("A*-B", mul(-1, A, B)), ("c*t^2", c * t**2),
    ("c^2'", c**2), ("X'*X/c", mul(1 / c, Transpose(X), X)),
    ("tr(A)*tr(B) + 1", Trace(A) * Trace(B) + 1),
    (" \tX\n* W1 ", mul(X, W1)),
]


@pytest.mark.parametrize("text, expected", CONSTRUCTS, ids=[t for t, _ in CONSTRUCTS])
def test_construct(text: str, expected: sympy.Basic) -> None:
    got = P(text)
    assert got == expected, (got, expected)


ELEMENTWISE = [("sigmoid", ew.sigmoid), ("tanh", ew.tanh), ("relu", ew.relu),
               ("softplus", ew.softplus), ("exp", ew.exp), ("log", ew.log), ("step", ew.step)]


@pytest.mark.parametrize("name, helper", ELEMENTWISE, ids=[nm for nm, _ in ELEMENTWISE])
def test_elementwise_on_matrices(name: str, helper) -> None:
    got = P(f"{name}(X*W1)")
    assert isinstance(got, ElementwiseApplyFunction)
    assert got == helper(MatMul(X, W1))
    assert ew.elementwise_function(got) is ew.elementwise_function(helper(X))
    assert got.shape == (n, m)


def test_parsing_is_deterministic() -> None:
    assert P("sigmoid(X) + tanh(X)") == P("sigmoid(X) + tanh(X)")
    assert P("sigmoid(X) + tanh(X)") == ew.sigmoid(X) + ew.tanh(X)


def test_composed_elementwise_functions_stay_nested() -> None:
    # SymPy's sum canonicaliser composes -σ(σ(A)) into one Lambda with a fresh Dummy;
    # the parser writes it back as nested canonical applications
    got = P("v - sigmoid(tanh(A))")
    assert got == P("v - sigmoid(tanh(A))")
    assert same_structure(got, MatAdd(MatMul(v, OneMatrix(1, n)), MatMul(-1, ew.sigmoid(ew.tanh(A)))))
    assert format_expression(got) == "-sigmoid(tanh(A)) + v"


def test_example_is_the_seed_network_loss() -> None:
    got = P(EXAMPLE)
    # the network substitutes its stages into Y - Ypred without re-canonicalising, so
    # compare the canonical forms of both
    assert same_structure(got.doit(), seed_network().f.doit())
    assert isinstance(got, Trace)


def test_example_numerically() -> None:
    shapes = {**SHAPES, "X": (4, 3), "Y": (4, 2), "W1": (3, 5), "b1": (1, 5), "W2": (5, 2), "b2": (1, 2)}
    p = parse(EXAMPLE, shapes)
    rng = np.random.default_rng(0)
    vals = random_values([p.symbols[nm] for nm in ("X", "Y", "W1", "b1", "W2", "b2")], rng)
    Xv, Yv, W1v, b1v, W2v, b2v = (vals[p.symbols[nm]] for nm in ("X", "Y", "W1", "b1", "W2", "b2"))
    H = 1 / (1 + np.exp(-(Xv @ W1v + b1v)))
    want = np.sum((Yv - (H @ W2v + b2v)) ** 2)
    assert float(evaluate(p.expr, vals)) == pytest.approx(want, rel=1e-9)


def test_parse_result() -> None:
    p = parse(EXAMPLE, SHAPES)
    assert isinstance(p, ParsedExpression)
    assert list(p.symbols) == ["Y", "X", "W1", "b1", "W2", "b2"]
    assert p.symbols["W1"] == W1 and p.shapes["b1"] == (1, m)
    assert p.shape is None and p.inferred == ()
    assert p.dims == {"n": n, "k": k, "d": d, "m": m}
    assert parse("c", SHAPES).shapes == {"c": ()}
    assert parse("X'", SHAPES).shape == (d, n)


def test_dimension_names_are_scalars() -> None:
    assert P("norm2(X)^2/n") == frobenius_sq(X) / n
    assert P("n*A") == MatMul(n, A)
    assert format_expression(P("tr(A)/n + k")) == "k + tr(A)/n"
    # a variable of the same name wins
    assert P("n*A", {"A": ("n", "n"), "n": ()}) == MatMul(sympy.Symbol("n"), A)


def test_error_pickles_and_points() -> None:
    import pickle

    with pytest.raises(ExpressionError) as info:
        P("X +\n Y")
    err = pickle.loads(pickle.dumps(info.value))
    assert (err.column, err.token, str(err)) == (3, "+", str(info.value))
    assert err.caret() == "X +  Y\n  ^ " + err.message


def test_shapes_accept_ints_names_and_symbols() -> None:
    assert P("G*G'") == MatMul(G, Transpose(G))
    assert P("Q", {"Q": (dim("r"), 2)}) == MatrixSymbol("Q", dim("r"), 2)
    assert P("Q", {"Q": [sympy.Integer(2), "r"]}) == MatrixSymbol("Q", 2, dim("r"))


@pytest.mark.parametrize("shapes, match", [
    ({"X": (1, 2, 3)}, "rows, cols"), ({"X": (0, 2)}, "positive"), ({"X": ("a b", 2)}, "not a name"),
    ({"tr": (2, 2)}, "function name"), ({"1X": (2, 2)}, "not a name"), ({"X": (True, 2)}, "dimension"),
])
def test_bad_shapes_argument(shapes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_expression("X", shapes)


# ------------------------------------------------------------ broadcasts and notes


def test_row_broadcast_note() -> None:
    p = parse("X*W1 + b1", SHAPES)
    (note,) = p.notes
    assert note.kind == "broadcast-row" and note.column == 8
    assert str(note) == "b1 (1×m) broadcast over the n rows as 1ₙ·b1"


def test_example_notes() -> None:
    notes = [str(nt) for nt in parse(EXAMPLE, SHAPES).notes]
    assert notes == ["b1 (1×m) broadcast over the n rows as 1ₙ·b1",
                     "b2 (1×k) broadcast over the n rows as 1ₙ·b2"]


def test_column_scalar_and_1x1_notes() -> None:
    p = parse("A + v + c", SHAPES)
    assert [nt.kind for nt in p.notes] == ["broadcast-column", "broadcast-scalar"]
    assert str(p.notes[0]) == "v (n×1) broadcast over the n columns as v·1ₙᵀ"
    assert str(p.notes[1]) == "c (scalar) broadcast to n×n as c·1ₙ1ₙᵀ"
    q = parse("exp(w'*x)", SHAPES)
    assert [nt.kind for nt in q.notes] == ["scalar-from-1x1"]
    assert "w'*x (1×1) used as a scalar" in str(q.notes[0])
    assert str(parse("Q + X", {"X": ("n", "d")}).notes[0]) == "Q is not in shapes: inferred n×d from its use"
    # a dimension with no subscript letter
    assert str(parse("W1 + b1", SHAPES).notes[0]) == "b1 (1×m) broadcast over the d rows as 1_d·b1"


# ---------------------------------------------------------------- shape inference


def test_inference_from_a_sum() -> None:
    p = parse("X + Q", {"X": ("n", "d")})
    assert p.symbols["Q"] == MatrixSymbol("Q", n, d) and p.inferred == ("Q",)


def test_inference_through_products() -> None:
    shapes = {"X": ("n", "d"), "Y": ("n", "k"), "c": (1, "m")}
    p = parse("norm2(Y - sigmoid(X*U + c)*V)^2", shapes)
    assert p.symbols["U"].shape == (d, m) and p.symbols["V"].shape == (m, k)
    # the hidden width is fixed by nothing: an error naming the first open name
    with pytest.raises(ExpressionError, match=r"column 21: unknown name 'U'.*only d×\?"):
        parse_expression("norm2(Y - sigmoid(X*U)*V)^2", shapes)


def test_inference_unifies_across_uses() -> None:
    # U's columns are fixed only by the second term
    p = parse("tr(X*U) + tr(U'*Z)", {"X": ("n", "d"), "Z": ("d", "n")})
    assert p.symbols["U"].shape == (d, n)


def test_inference_waits_for_broadcasts() -> None:
    # the bias is inferred only after X*W is known, and then broadcasts as a row
    p = parse("X*W + b + Y*Q", {"X": ("n", "d"), "W": ("d", "m"), "b": (1, "m"), "Y": ("n", "k")})
    assert p.symbols["Q"].shape == (k, m)
    assert [nt.kind for nt in p.notes] == ["inferred-shape", "broadcast-row"]


def test_inference_square_and_transpose() -> None:
    assert parse("inv(Q)*X", {"X": ("n", "d")}).symbols["Q"].shape == (n, n)
    assert parse("X' + Q", {"X": ("n", "d")}).symbols["Q"].shape == (d, n)
    assert parse("Q^2 + A", {"A": (3, 3)}).symbols["Q"].shape == (3, 3)


@pytest.mark.parametrize("text, column, partial", [
    ("X*U", 3, "d×?"), ("U*X", 1, "?×n"), ("c*U", 3, "?×?"), ("tr(U)", 4, "?×?"),
    ("X + U*V", 5, "n×?"),
])
def test_inference_that_stays_open_is_an_error(text: str, column: int, partial: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, {"X": ("n", "d"), "c": ()})
    err = info.value
    assert err.column == column and err.token == text[column - 1]
    assert partial in err.message and "known names: X, c" in err.message


def test_no_inference_when_disabled() -> None:
    with pytest.raises(ExpressionError, match=r"column 5: unknown name 'Q'; known names: X"):
        parse_expression("X + Q", {"X": ("n", "d")}, infer=False)


def test_no_shapes_at_all() -> None:
    with pytest.raises(ExpressionError, match="no shapes were given"):
        parse_expression("A + B")
    assert parse_expression("2*3 + 1") == 7


# -------------------------------------------------------------------------- errors

ERRORS = [
    # (text, column, token, message fragment)
    ("", 1, "", "empty expression"),
    ("   ", 1, "", "empty expression"),
    ("X*W1 .* W2", 6, ".*", "'.*' joins X*W1 (n×m) with W2 (m×k): Hadamard product needs equal shapes"),
    ("X ./ Y", 3, "./", "Hadamard division needs equal shapes"),
    ("foo(X)", 1, "foo", "unknown function 'foo'; known functions: abs, attention, batchnorm"),
    ("tr - A", 1, "tr", "'tr' is a function: write tr(...)"),
    ("A*exp", 3, "exp", "'exp' is a function"),
    ("Qq + 1", 1, "Qq", "unknown name 'Qq'"),
    ("(X*W1", 1, "(", "'(' at column 1 is never closed"),
    ("tr(A", 3, "(", "'(' at column 3 is never closed"),
    ("((A)", 1, "(", "never closed"),
    ("X*W1)", 5, ")", "')' has no matching '('"),
    ("(A))", 4, ")", "no matching"),
    ("X 2", 3, "2", "unexpected number '2' after 'X': expected an operator (products need '*' before a number)"),
    ("2 3", 3, "3", "products need '*' before a number"),
    ("A + * A", 5, "*", "unexpected '*': expected an operand"),
    ("A +", 3, "+", "ends after '+'"),
    ("()", 2, ")", "unexpected ')'"),
    ("A,B", 2, ",", "unexpected ','"),
    ("tr(A 2)", 6, "2", "unexpected number '2' after 'A': expected an operator (products need '*' before a number)"),
    ("tr(A,)", 6, ")", "unexpected ')': expected an operand"),
    ("X Y", 3, "", "the product joins X (n×d) with Y (n×k): a matrix product needs"),
    ("X*Y", 2, "*", "'*' joins X (n×d) with Y (n×k): a matrix product needs the columns of the left (d) "
                    "to equal the rows of the right (n)"),
    ("A + X", 3, "+", "'+' joins A (n×n) with X (n×d): a sum needs equal shapes"),
    ("X - b1'", 3, "-", "b1' (m×1)"),
    ("(X*W1) - Y", 8, "-", "(X*W1) (n×m)"),
    ("X^2", 2, "^", "'^' raises X (n×d) to 2: a matrix power needs a square matrix (for the power of each "
                    "entry write X.^2)"),
    ("A^0.5", 2, "^", "matrix square roots and other non-integer matrix powers are supported only as the "
                      "whole argument of tr"),
    ("A^c", 2, "^", "raises A (n×n) to c: symbolic matrix powers are supported only as the whole argument of tr"),
    ("c^A", 2, "^", "exponent must be a scalar"),
    ("X .^ A", 3, ".^", "exponent must be a scalar"),
    ("X / A", 3, "/", "only division by a scalar"),
    ("c / X", 3, "/", "only division by a scalar"),
    ("X / 0", 3, "/", "by zero"),
    ("0^-1", 2, "^", "zero to a negative power"),
    ("log(0)", 1, "log", "undefined or infinite"),
    ("tr(X)", 1, "tr", "'tr' needs a square matrix, got X (n×d)"),
    ("det(X)", 1, "det", "square"), ("logdet(X)", 1, "logdet", "square"), ("inv(X)", 1, "inv", "square"),
    ("sqrt(X)", 1, "sqrt", "'sqrt' takes a scalar"),
    ("norm2(c)", 1, "norm2", "'norm2' takes a matrix"),
    ("tr()", 1, "tr", "tr() takes 1 argument, got 0"),
    ("tr(A, B)", 1, "tr", "takes 1 argument, got 2"),
    ("ones(n)", 1, "ones", "takes 2 arguments"),
    ("ones(n, X+1)", 9, "X+1", "takes dimensions"),
    ("eye(0)", 5, "0", "takes dimensions"),
    ("A**2", 2, "**", "write '^' for powers"),
    ("A.Tx", 2, ".", "unexpected character '.'"),
    ("1.", 2, ".", "unexpected character '.'"),
    ("A $ B", 3, "$", "unexpected character '$'"),
    ("é", 1, "é", "unexpected character"),
    ("x‰", 2, "‰", "unexpected character"),
    ("c = 1", 3, "=", "unexpected character '='"),
    ("1e400", 1, "1e400", "too large"),
    ("9^9^9", 2, "^", "9^9^9 would make a number of about 369693100 digits: the limit is 1000"),
    ("(" * 120 + "c" + ")" * 120, 101, "(", "nested too deeply"),
    ("-" * 150 + "c", 101, "-", "nested too deeply"),
    ("A" + "'" * 150, 101, "'", "nested too deeply"),
    ("__import__('os').system('x')", 1, "__import__", "unknown function '__import__'"),
    ("exec('1')", 1, "exec", "unknown function 'exec'"),
    ("X.__class__", 2, ".", "unexpected character '.'"),
    ("lambda: 1", 7, ":", "unexpected character ':'"),
]


@pytest.mark.parametrize("text, column, token, fragment", ERRORS, ids=[repr(e[0])[:30] for e in ERRORS])
def test_error(text: str, column: int, token: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, SHAPES)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.column, err.token) == (column, token), str(err)
    assert fragment in err.message, err.message
    assert str(err) == f"column {column}: {err.message}"
    assert "\n" not in str(err)
    assert err.caret().splitlines()[1].index("^") == column - 1


def test_the_brief_error_message() -> None:
    with pytest.raises(ExpressionError) as info:
        P("sigmoid(X*W1 .* W2)")
    assert str(info.value) == ("column 14: '.*' joins X*W1 (n×m) with W2 (m×k): "
                               "Hadamard product needs equal shapes")


def test_too_long() -> None:
    with pytest.raises(ExpressionError, match="column 2001: expression longer than 2000 characters"):
        P("c+" * 1200 + "c")


def test_long_flat_sums_are_fine() -> None:
    assert P("+".join(["c"] * 900)) == 900 * c
    assert P("*".join(["A"] * 300)) == MatPow(A, 300)
    assert P("-".join(["A"] * 600)) == MatMul(-598, A)


def test_sympy_failures_become_expression_errors(monkeypatch) -> None:
    import derive.lang.build as parse_module

    def boom(*args, **kwargs):
        raise sympy.ShapeError("matrices are not aligned")

    monkeypatch.setattr(parse_module, "Determinant", boom)
    with pytest.raises(ExpressionError, match=r"column 5: 'det' cannot be built: ShapeError"):
        P("c + det(A)")


# ------------------------------------------------------- the tool's notation and students' typing

NOTATION = [
    # (text as printed or typed, the same in the plain language)
    ("Xᵀ", "X'"), ("X^T", "X'"), ("X^ᵀ", "X'"), ("X⊤", "X'"), ("X’", "X'"), ("(X*W1)^T", "(X*W1)'"),
    ("A − B", "A - B"), ("−A", "-A"), ("c – t", "c - t"),
    ("X@W1", "X*W1"), ("X × W1", "X*W1"), ("c·X", "c*X"), ("X⋅W1", "X*W1"),
    ("A ⊙ B", "A .* B"), ("A ∘ B", "A .* B"), ("A ⊘ B", "A ./ B"),
    ("A²", "A^2"), ("A⁻¹", "A^-1"), ("A⁻²", "A^-2"), ("A⁻ᵀ", "inv(A)'"), ("c²", "c^2"), ("X∘²", "X.^2"),
    ("X∘⁻¹", "X.^-1"), ("A²ᵀ", "(A^2)'"),
    ("σ(X)", "sigmoid(X)"), ("σ(c)", "sigmoid(c)"), ("2σ(X)", "2*sigmoid(X)"),
    ("𝟏ₙ", "ones(n, 1)"), ("𝟏ₙᵀ", "ones(n, 1)'"), ("𝟏_n", "ones(n, 1)"), ("𝟏_(n)", "ones(n, 1)"), ("𝟏₃", "ones(3, 1)"),
    ("𝟏 - A", "ones(n, n) - A"), ("A ⊙ (𝟏 - A)", "A .* (ones(n, n) - A)"), ("X𝟏 + X", "X*ones(d, d) + X"),
    ("[A + B]", "(A + B)"), ("2[A ⊙ B]A", "2*(A .* B)*A"),
    ("I ⊙ A", "eye(n) .* A"), ("X'X + 2I", "X'*X + 2*eye(d)"), ("A∘^c", "A.^c"), ("A∘^(1/2)", "A.^0.5"),
    # factors side by side
    ("2X", "2*X"), ("2 X", "2*X"), ("X W1", "X*W1"), ("X'(Y - 2Y)", "X'*(Y - 2*Y)"), ("(A + B)A", "(A + B)*A"),
    ("tr(A)X", "tr(A)*X"), ("A(B)", "A*B"), ("2(A + B)", "2*(A + B)"), ("X'Y", "X'*Y"),
    ("A .* 2B", "A .* (2*B)"), ("A + 2B", "A + 2*B"), ("-2X", "-(2*X)"), ("2^3X", "8*X"),
    ("c^2X", "c^2*X"), ("A^2B", "A^2*B"), ("A'^2", "(A')^2"),
    # inside function calls, exactly as at the top level
    ("tr(2A)", "tr(2*A)"), ("sigmoid(2X)", "sigmoid(2*X)"), ("tr(A B)", "tr(A*B)"), ("tr(A'(B))", "tr(A'*B)"),
    # names read as declared ones, and products of declared names written together
    ("XW1", "X*W1"), ("AB'", "A*B'"), ("vv'", "v*v'"), ("2XW1 + b1", "2*X*W1 + b1"), ("W_1", "W1"), ("b_1", "b1"),
    ("X_sigmoid", "sigmoid(X)"), ("X_sigmoid'*X", "sigmoid(X)'*X"), ("A_exp .* A_tanh", "exp(A) .* tanh(A)"),
    ("W_1_relu", "relu(W1)"),
    ("λ*A", "lambda*A"),
]


@pytest.mark.parametrize("text, plain", NOTATION, ids=[t for t, _ in NOTATION])
def test_notation_reads_as_the_plain_language(text: str, plain: str) -> None:
    shapes = {**SHAPES, "lambda": ()}
    assert parse_expression(text, shapes) == parse_expression(plain, shapes), text


def test_softmax_is_the_row_wise_softmax() -> None:
    from derive.networks import softmax_rows

    assert P("softmax(X*W1)") == softmax_rows(MatMul(X, W1))
    rng = np.random.default_rng(3)
    vals = random_values([X, W1], rng)
    Z = vals[X] @ vals[W1]
    want = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)          # by hand
    np.testing.assert_allclose(evaluate(P("softmax(X*W1)"), vals), want, rtol=1e-12)
    with pytest.raises(ExpressionError, match="'softmax' takes a matrix"):
        P("softmax(c)")


def test_reading_a_name_is_noted_in_both_languages() -> None:
    p = parse("norm2(Y - XW1*W2)^2 + tr(Y_pred'*Y)", {**SHAPES, "Ypred": ("n", "k")})
    said = {note.kind: [] for note in p.notes}
    for note in p.notes:
        said[note.kind].append((note.say("en"), note.say("zh")))
    assert ("XW1 read as the product X·W1", "XW1 读作乘积 X·W1") in said["read-name"]
    assert ("Y_pred read as Ypred", "Y_pred 读作 Ypred") in said["read-name"]
    assert p.symbols.keys() == {"Y", "X", "W1", "W2", "Ypred"}


def test_ambiguous_or_undeclared_names_are_not_split() -> None:
    shapes = {"A": ("n", "n"), "AB": ("n", "n"), "B": ("n", "n"), "BA": ("n", "n")}
    with pytest.raises(ExpressionError) as info:     # A·B·A, A·BA or AB·A
        parse_expression("tr(ABA)", shapes)
    assert info.value.message == "unknown name 'ABA': products need '*' (write A*B*A or A*BA)"
    # undeclared parts: an unknown name, as before (inferred, or an error without inference)
    assert parse("X*Wz + X", {"X": ("n", "d")}).inferred == ("Wz",)
    with pytest.raises(ExpressionError, match="unknown name 'XZ'"):
        parse_expression("XZ", {"X": ("n", "n")}, infer=False)


def test_elementwise_exp_of_a_square_matrix_is_noted() -> None:
    p = parse("tr(exp(A)) + sum(log(X)) + tr(tanh(A))", SHAPES)
    notes = [(n.kind, n.say("en"), n.say("zh")) for n in p.notes]
    assert ("elementwise-function", "exp(A) is the elementwise exponential (of each entry), not the matrix "
            "exponential", "exp(A) 是逐元素指数（对每个元素），不是矩阵指数") in notes
    assert any(n[1].startswith("tanh(A) is the elementwise hyperbolic tangent") for n in notes)
    assert not any("log(X)" in n[1] for n in notes)            # X is not square: no matrix logarithm to confuse
    assert parse("exp(c)", SHAPES).notes == parse("sigmoid(A)", SHAPES).notes == ()
    # every note has its Chinese text
    assert all(n.say("zh") != n.say("en") for n in parse("tr(exp(A)) + sum(X*W1 + b1) + tr(Qz*A) + s + c", SHAPES).notes)


@pytest.mark.parametrize("text, column, message", [
    ("(X'*X)^0.5", 7, "'^' raises (X'*X) (d×d) to 0.5: matrix square roots and other non-integer matrix "
                      "powers are supported only as the whole argument of tr, such as tr((X'*X)^(1/2)) (.^ is a different function: the power of each entry)"),
    ("A^n", 2, "'^' raises A (n×n) to n: symbolic matrix powers are supported only as the whole argument of tr, "
               "such as tr(A^k); elsewhere the exponent must be an integer number such as 2 or -1"),
    ("sqrt(A)", 1, "'sqrt' takes a scalar, got A (n×n): the matrix square root is not supported (for the "
                   "square root of each entry, a different function, write A.^0.5)"),
])
def test_matrix_power_messages_do_not_mislead(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, SHAPES)
    assert info.value.column == column
    assert info.value.message.startswith(message), info.value.message
    assert "non-integer exponent" not in info.value.message


@pytest.mark.parametrize("inner", ["X 2", "A 2", "(A + B) 3"])
def test_products_need_a_star_before_a_number_inside_a_call_as_at_top_level(inner: str) -> None:
    with pytest.raises(ExpressionError) as top:
        parse_expression(inner, SHAPES)
    with pytest.raises(ExpressionError) as called:
        parse_expression(f"sigmoid({inner})", SHAPES)
    assert "(products need '*' before a number)" in top.value.message
    assert called.value.message == top.value.message
    assert called.value.column == top.value.column + len("sigmoid(")


@pytest.mark.parametrize("text", ["c/2t", "c/2 t", "X/2c", "A ./ 2B", "c/-2t"])
def test_division_before_a_side_by_side_product_is_ambiguous(text: str) -> None:
    with pytest.raises(ExpressionError, match="a product written without '\\*', is ambiguous"):
        parse_expression(text, SHAPES)
    assert parse_expression("c/(2t)", SHAPES) == c / (2 * t)
    assert parse_expression("c/2*t", SHAPES) == c * t / 2


def _network_shapes(net) -> dict:
    syms = list(net.inputs) + list(net.params) + [s for s, _ in net.stages]
    shapes = {s.name: tuple(s.shape) for s in syms}
    shapes.update({s.name: () for s in net.f.free_symbols if isinstance(s, sympy.Symbol) and not s.is_integer})
    return shapes


def _round_trip_cases() -> list:
    from derive.networks import mlp

    nets = [seed_network(), seed_network(bias="full"),
            mlp(["d", "m", "k"], activation=["tanh"], loss="softmax_cross_entropy", weight_decay="lambda"),
            mlp(["d", "m", "k"], activation=["softplus"], loss="mse"),
            mlp(["d", "m", "m2", "k"], activation=["relu", "sigmoid"])]
    return [pytest.param(net, id=f"{net.name or 'net'}{i}") for i, net in enumerate(nets)]


@pytest.mark.parametrize("net", _round_trip_cases())
def test_printed_gradients_parse_back(net) -> None:
    """The text renderer's gradients (every section and every expanded gradient) read back as the
    same function: equal values on random non-square data, by the independent SymPy oracle."""
    import derive
    from derive.render.printer import math_text

    bp = derive.backprop(net)
    shapes = _network_shapes(net)
    dims = {"n": 4, "d": 3, "m": 5, "k": 2, "m2": 6}
    scalars = {sympy.Symbol(name): 0.3 for name, shape in shapes.items() if shape == ()}
    rng = np.random.default_rng(7)
    gradients = [s.result for s in bp.sections] + list(bp.gradients(expanded=True).values())
    checked = 0
    for G in gradients:
        text = math_text(G)
        if "∂" in text:        # refers to another section's result, ∂f/∂A1: not an expression
            continue
        back = parse_expression(text, shapes)
        mats = sorted(G.atoms(MatrixSymbol) | back.atoms(MatrixSymbol), key=str)
        vals = random_values(mats, rng, dims)
        want = evaluate(G.subs(scalars), vals, dims)
        got = evaluate(back.subs(scalars), vals, dims)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=text)
        checked += 1
    assert checked >= len(gradients) - 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_printed_text_of_generated_expressions_reads_back(data) -> None:
    """Any expression, written by the text renderer, parses back to the same function (the SymPy
    oracle on random data), except where the notation itself drops a shape: a zero matrix is
    printed 0, and 𝟏 or I with nothing around them to give their shape."""
    from derive.render.printer import math_text

    r, q = data.draw(st.sampled_from(GEN_DIMS)), data.draw(st.sampled_from(GEN_DIMS))
    text = data.draw(matrix_text(r, q, 3) if data.draw(st.booleans()) else scalar_text(3))
    try:
        e = parse_expression(text, GEN_SHAPES)
    except ExpressionError:
        assume(False)
    assume(not e.has(ZeroMatrix))
    printed = math_text(e)
    try:
        back = parse_expression(printed, GEN_SHAPES)
    except ExpressionError as err:
        assume("cannot be inferred" not in err.message)
        raise
    dims = {"n": 3, "m": 2}
    mats = sorted(e.atoms(MatrixSymbol) | back.atoms(MatrixSymbol), key=str)
    vals = random_values(mats, np.random.default_rng(0), dims)
    scalars = {c: 0.7, t: 1.3}
    with np.errstate(all="ignore"):
        try:
            want = evaluate(e.subs(scalars), vals, dims)
        except (ValueError, TypeError, ZeroDivisionError):
            assume(False)
        got = evaluate(back.subs(scalars), vals, dims)
    assert np.shape(got) == np.shape(want), (text, printed)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, equal_nan=True, err_msg=f"{text} → {printed}")


def test_the_brief_seed_gradient_reads_back() -> None:
    text = "2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 − σ(h))]"
    shapes = _network_shapes(seed_network())
    e = parse_expression(text, shapes)
    assert e == parse_expression("2*X'*(((Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h)))", shapes)


# ---------------------------------------------------------------------- round trips

ROUND_TRIPS = [
    EXAMPLE, "X*W1 + b1", "X*W1 - b1", "X*W1 + 2*b1 - c", "A + v - 1", "tr(A^-1) + c*logdet(A)",
    "A' .* B ./ A", "2 ./ A", "A ./ 2", "(X*W1)' ./ 3", "-X*W1", "-(c + 1)*X", "c^-2*t^(1/2)",
    "sum(X) + sum(v) + sum(s)", "exp(w'*x)", "log(1 + exp(-w'*x))", "s*X", "(w'*x)^0.5",
    "X.^2 + X.^-1", "ones(n, 1)*b1 + zeros(n, m)", "relu(A)' + tanh(A).T", "A - A",
    "softplus(c) + step(c) + sigmoid(c)", "tr(A'*A)", "tr((X*W1)'*X*W1)", "norm2(X)^3", "norm2(X)",
    "A^3 + inv(A)*B^-2", "det(A)^2/det(B)", "sqrt(c)/t", "c/(t*det(A))", "exp(1)",
    "X*W1 + b1 + b1", "b1 + b1 + X*W1", "A + c + t", "2^100", "0.1*X", "-(2/3)*c", "A'''",
    "X'*(v + v)", "tr(ones(1, n)*X*W1*ones(m, 1))", "eye(n) + A", "G .* ones(3, 2)",
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_round_trip(text: str) -> None:
    e = P(text)
    printed = format_expression(e)
    assert P(printed) == e, printed
    assert format_expression(P(printed)) == printed


def test_format_examples() -> None:
    assert format_expression(P(EXAMPLE)) == "norm2(Y - sigmoid(X*W1 + b1)*W2 - b2)^2"
    assert format_expression(P("X*W1 + b1")) == "X*W1 + b1"
    assert format_expression(P("A + v")) == "A + v"
    assert format_expression(P("A ./ B")) == "A ./ B"
    assert format_expression(P("c/t")) == "c/t"
    assert format_expression(MatMul(OneMatrix(n, 1), b1)) == "ones(n, 1)*b1"


def test_format_hand_built_and_unsupported() -> None:
    assert format_expression(ew.sigmoid(X)) == "sigmoid(X)"
    assert format_expression(seed_network().f) == EXAMPLE
    with pytest.raises(ValueError, match="no form"):
        format_expression(sympy.pi * c)
    with pytest.raises(ValueError, match="no form"):
        format_expression(sympy.Adjoint(A))


# A generator of well-typed texts over every shape built from the dimensions n, m, 1.
GEN_DIMS = ["n", "m", "1"]
GEN_SHAPES: dict[str, tuple] = {f"M{r}{q}": tuple(1 if x == "1" else x for x in (r, q))
                                 for r in GEN_DIMS for q in GEN_DIMS}
GEN_SHAPES.update({"N": ("n", "n"), "R": (1, "m"), "K": ("n", 1), "c": (), "t": ()})


@st.composite
def scalar_text(draw, depth: int) -> str:
    """A scalar-valued text; compound texts come in parentheses so they nest as drawn."""
    if depth <= 0:
        return draw(st.sampled_from(["c", "t", "2", "3", "0.5", "1e-2"]))
    choice = draw(st.integers(0, 9))
    sub = scalar_text(depth - 1)
    if choice == 0:
        text = f"{draw(sub)} {draw(st.sampled_from(['+', '-', '*']))} {draw(sub)}"
    elif choice == 1:
        text = f"{draw(sub)}/{draw(st.sampled_from(['c', 't', '2']))}"
    elif choice == 2:
        text = f"{draw(sub)}^{draw(st.sampled_from(['2', '3', '-1', '0.5']))}"
    elif choice == 3:
        r = draw(st.sampled_from(GEN_DIMS))
        text = f"tr({draw(matrix_text(r, r, depth - 1))})"
    elif choice == 4:
        r, q = draw(st.sampled_from(GEN_DIMS)), draw(st.sampled_from(GEN_DIMS))
        text = f"{draw(st.sampled_from(['sum', 'norm2']))}({draw(matrix_text(r, q, depth - 1))})"
    elif choice == 5:
        fn = draw(st.sampled_from(["exp", "sigmoid", "tanh", "relu", "softplus", "sqrt", "step"]))
        text = f"{fn}({draw(st.sampled_from(['c', 't']))} + {draw(sub)})"
    elif choice == 6:
        text = f"-{draw(sub)}"
    elif choice == 7:
        text = f"det({draw(matrix_text('n', 'n', depth - 1))})"
    elif choice == 8:
        text = f"norm2({draw(matrix_text('n', 'm', depth - 1))})^2"
    else:
        return draw(sub)
    return f"({text})"


@st.composite
def matrix_text(draw, r: str, q: str, depth: int) -> str:
    """An r×q matrix text over GEN_SHAPES; compound texts come in parentheses."""
    if depth <= 0:
        return f"M{r}{q}"
    sub = matrix_text(r, q, depth - 1)
    choice = draw(st.integers(0, 12))
    if choice == 0:
        text = f"{draw(sub)} {draw(st.sampled_from(['+', '-']))} {draw(sub)}"
    elif choice == 1:
        inner = draw(st.sampled_from(GEN_DIMS))
        text = f"{draw(matrix_text(r, inner, depth - 1))}*{draw(matrix_text(inner, q, depth - 1))}"
    elif choice == 2:
        text = f"{draw(scalar_text(depth - 1))}*{draw(sub)}"
    elif choice == 3:
        text = draw(matrix_text(q, r, depth - 1)) + draw(st.sampled_from(["'", ".T"]))
    elif choice == 4 and (r, q) != ("1", "1"):
        fn = draw(st.sampled_from(["sigmoid", "tanh", "relu", "softplus", "exp", "step"]))
        text = f"{fn}({draw(sub)})"
    elif choice == 5:
        text = f"{draw(sub)} {draw(st.sampled_from(['.*', './']))} {draw(sub)}"
    elif choice == 6:
        text = f"{draw(sub)}.^{draw(st.sampled_from(['2', '-1', '0.5', 'c']))}"
    elif choice == 7 and r == q != "1":
        if draw(st.booleans()):
            text = f"inv({draw(sub)})"
        else:
            text = f"{draw(sub)}^{draw(st.sampled_from(['2', '-1', '3']))}"
    elif choice == 8 and r != "1" and q != "1":
        row_or_col = f"M1{q}" if draw(st.booleans()) else f"M{r}1"
        text = f"{draw(sub)} + {row_or_col}" if draw(st.booleans()) else f"{row_or_col} - {draw(sub)}"
    elif choice == 9 and (r, q) != ("1", "1"):
        text = f"{draw(sub)} + {draw(scalar_text(depth - 1))}"
    elif choice == 10:
        text = f"{draw(sub)}/{draw(st.sampled_from(['c', '2']))}"
    elif choice == 11 and r == q == "n":
        text = draw(st.sampled_from(["N", "eye(n)", "ones(n, n)"]))
    else:
        return draw(sub)
    return f"({text})"


def _expected_shape(r: str, q: str) -> tuple:
    return tuple(1 if x == "1" else dim(x) for x in (r, q))


@FUZZ
@given(data=st.data())
def test_round_trip_generated(data) -> None:
    r, q = data.draw(st.sampled_from(GEN_DIMS)), data.draw(st.sampled_from(GEN_DIMS))
    text = data.draw(matrix_text(r, q, 3) if data.draw(st.booleans()) else scalar_text(3))
    try:
        e = parse_expression(text, GEN_SHAPES)
    except ExpressionError as err:   # e.g. the inverse of a difference that is identically zero
        assume(not any(w in err.message for w in ("zero", "undefined", "cannot be built")))
        raise
    if isinstance(e, sympy.MatrixExpr) and e.shape != (1, 1):
        assert e.shape == _expected_shape(r, q)
    printed = format_expression(e)
    assert parse_expression(printed, GEN_SHAPES) == e, (text, printed)


# ---------------------------------------------------------------------------- fuzz


@contextmanager
def nothing_runs() -> Iterator[None]:
    """eval, exec, compile, __import__ and os.system raise while active."""
    def forbidden(*args, **kwargs):
        raise AssertionError(f"the parser tried to run something: {args!r}")

    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "compile")}
    saved_system = os.system
    try:
        for name in saved:
            setattr(builtins, name, forbidden)
        os.system = forbidden
        yield
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)
        os.system = saved_system


def _check_outcome(text: str, shapes=SHAPES) -> None:
    with nothing_runs():
        try:
            result = parse(text, shapes)
        except ExpressionError as err:
            assert 1 <= err.column <= len(text) + 1
            assert err.token == "" or text[err.column - 1:].startswith(err.token), (text, err)
            assert str(err).startswith(f"column {err.column}: ") and "\n" not in str(err)
            return
    assert isinstance(result.expr, sympy.Basic)
    printed = format_expression(result.expr)
    assert parse_expression(printed, {**shapes, **result.shapes}) == result.expr


TOKENS = ["X", "Y", "W1", "b1", "W2", "b2", "A", "B", "v", "w", "x", "s", "c", "t", "Q", "n", "2", "0",
          "0.5", "1e-3", ".5", "+", "-", "*", "/", ".*", "./", "^", ".^", "'", ".T", "(", ")", ",",
          "tr(", "det(", "logdet(", "inv(", "norm2(", "sum(", "sqrt(", "sigmoid(", "tanh(", "relu(",
          "softplus(", "exp(", "log(", "ones(n,", "eye(", "zeros(1,", "foo(", " ", "__import__("]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_fuzz_token_soup(text: str) -> None:
    _check_outcome(text)


@FUZZ
@given(st.text(alphabet="XAbcsvw12.eT*+-/^'(),_ tr", max_size=24))
def test_fuzz_language_characters(text: str) -> None:
    _check_outcome(text)


@FUZZ
@given(st.text(max_size=40))
def test_fuzz_arbitrary_text(text: str) -> None:
    _check_outcome(text)


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')", "eval('1')", "exec('import os')", "().__class__.__bases__",
    "open('/etc/passwd')", "X.__dict__", "[c for c in X]", "lambda c: c", "c if c else c", "c; c",
    "getattr(X, 'T')", "sympify('c')", "S('c')", "Symbol('c')", "\"c\"", "`c`", "c # comment",
])
def test_code_is_never_run(text: str, tmp_path) -> None:
    with nothing_runs(), pytest.raises(ExpressionError) as info:
        parse_expression(text, SHAPES)
    assert 1 <= info.value.column <= len(text)
