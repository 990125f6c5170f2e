"""Bad input gets a clear error naming the offender, never a wrong number."""
from __future__ import annotations

import re

import pytest
import sympy
from sympy import KroneckerProduct, MatrixSymbol, Trace

import derive

X = MatrixSymbol("X", 4, 3)
A = MatrixSymbol("A", 3, 4)


def test_matrix_valued_f_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"scalar-valued.*4×4"):
        derive.gradient(X * A, X)


def test_variable_must_be_a_matrix_symbol() -> None:
    with pytest.raises(TypeError, match="MatrixSymbol"):
        derive.gradient(Trace(X * A), X.T)


def test_variable_absent_from_f() -> None:
    W = MatrixSymbol("W", 2, 2)
    with pytest.raises(ValueError, match=r"W does not appear in f; f depends on A, X"):
        derive.gradient(Trace(X * A), W)


def test_same_name_other_shape() -> None:
    with pytest.raises(ValueError, match=r"X appears in f with shape 4×3, not 3×3"):
        derive.gradient(Trace(X * A), MatrixSymbol("X", 3, 3))


def test_non_conformable_shapes_named() -> None:
    n, d, m = sympy.symbols("n d m", integer=True, positive=True)
    Xs, Ws = MatrixSymbol("X", n, d), MatrixSymbol("W", m, m)
    bad = sympy.Basic.__new__(sympy.MatMul, Xs, Ws)  # bypass SymPy's own check
    with pytest.raises(ValueError, match=r"non-conformable shapes in MatMul .*: W.T \(m×m\), X.T \(d×n\)"):
        derive.gradient(Trace(bad.T * bad), Ws)


def test_unsupported_class_names_it_and_lists_supported() -> None:
    B = MatrixSymbol("B", 2, 2)
    with pytest.raises(NotImplementedError, match=r"Adjoint.*supported: .*HadamardProduct"):
        derive.gradient(Trace(sympy.Adjoint(X) * X), X)
    with pytest.raises(NotImplementedError, match=r"KroneckerProduct is not derived by traces; derive.jacobian"):
        derive.gradient(Trace(KroneckerProduct(X, B).T * KroneckerProduct(X, B)), X)


def test_elementwise_helpers_reject_non_matrices() -> None:
    with pytest.raises(TypeError, match=r"sigmoid\(\) takes a SymPy matrix expression"):
        derive.sigmoid(sympy.Symbol("x"))


def test_seed_network_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="bias"):
        derive.seed_network(bias="column")
    with pytest.raises(ValueError, match="dimension n"):
        derive.seed_network(n=0)


@pytest.mark.parametrize("f,var,message", [
    (sympy.Matrix([[1]]), X, "f must be a SymPy expression, got MutableDenseMatrix"),
    (Trace(X * A), [X], "the variable must be a sympy MatrixSymbol, got list"),
])
def test_unhashable_arguments_get_the_type_error(f, var, message) -> None:
    # checked before the derivation cache, which would say only "unhashable type"
    with pytest.raises(TypeError, match=message):
        derive.gradient(f, var)
    with pytest.raises(TypeError, match=message):
        derive.derivation(f, var)


def test_huge_matrix_power_is_refused_not_expanded() -> None:
    S = MatrixSymbol("S", 3, 3)
    with pytest.raises(NotImplementedError, match=r"MatPow S\*\*99999.*\|99999\| > 100"):
        derive.gradient(Trace(S ** 99999), S)


@pytest.mark.parametrize("text, entrywise", [
    ("sqrt(X.*X + 1)", "(X.*X + 1).^0.5"),
    ("sqrt(X)", "X.^0.5"),
    ("(X+Y)^2", "(X+Y).^2"),
    ("X^(1/2)", "X.^(1/2)"),
    ("sqrt((X+1).*(Y+2))", "((X+1).*(Y+2)).^0.5"),
])
def test_the_suggested_power_of_each_entry_reads_as_meant(text: str, entrywise: str) -> None:
    # the suggestion brackets a sum: X.*X + 1.^0.5 would be X.*X + 1
    from derive.lang import ExpressionError, parse
    shapes = {"X": ("n", "d"), "Y": ("n", "d")}
    with pytest.raises(ExpressionError) as err:
        parse(text, shapes)
    assert f"write {entrywise})" in str(err.value)
    inner = text[len("sqrt("):-1] if text.startswith("sqrt(") else text.split("^")[0]
    power = sympy.Rational(1, 2) if "sqrt" in text or "1/2" in text else 2
    want = sympy.HadamardPower(parse(inner, shapes).expr, power)
    assert parse(entrywise, shapes).expr == want


@pytest.mark.parametrize("text, entrywise", [
    ("sqrt(exp(X) + exp(Y))", "(exp(X) + exp(Y)).^0.5"),
    ("sqrt((X+1) + (Y+2))", "((X+1) + (Y+2)).^0.5"),
    ("sqrt(exp(X))", "exp(X).^0.5"),
])
def test_the_suggestion_brackets_a_sum_of_calls(text: str, entrywise: str) -> None:
    from derive.lang import ExpressionError, parse
    with pytest.raises(ExpressionError, match=rf"write {re.escape(entrywise)}\)"):
        parse(text, {"X": ("n", "d"), "Y": ("n", "d")})
