"""Bounded work: inputs whose evaluation or expansion is unbounded are refused, quickly, with a
message naming the limit (derive.limits), in the parser, the checker and the engine."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import sympy
from sympy import HadamardPower, MatPow, MatrixSymbol, Trace

import derive
from derive import limits
from derive.check import check_answer
from derive.limits import LimitError
from derive.parse import ExpressionError, ExpressionLimitError, parse
from tests.oracle import evaluate, fd_directional, random_values

FAST = 5.0   # seconds: a refusal is meant to take well under one; the bound is generous for busy machines
SHAPES = {"c": (), "t": (), "A": ("n", "n"), "X": ("n", "d"), "B": (3, 3)}


@contextmanager
def quickly(limit: float = FAST) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"took {elapsed:.1f} s"


def nested(fn: str, depth: int, inner: str) -> str:
    return f"{fn}(" * depth + inner + ")" * depth


# ---------------------------------------------------------------------------------- the parser

PARSER_REFUSALS = [
    # (text, column, message fragment)
    ("(1e300*c)^(1e300)", 10, "would make a number of about 3.0e+302 digits: the limit is 1000"),
    ("(2*n)^(10^300)", 6, "would make a number of about 3.0e+299 digits"),
    ("(2*c)^(10^8)", 6, "(2*c)^(10^8) would make a number of about 30103000 digits"),
    ("(2*c)^(-10^8)", 6, "would make a number of about 30103000 digits"),
    ("(c/2)^(10^8)", 6, "would make a number of about 30103000 digits"),
    ("3^10000", 2, "3^10000 would make a number of about 4772 digits"),
    ("2^(2^(2^(2^2)))", 2, "would make a number of about 19729 digits"),
    ("((2*c)^100)^(10^3)", 12, "would make a number of about 30103 digits"),
    ("tr(2*A)^(10^300)", 8, "would make a number of about"),
    ("n^(10^9)", 2, "n^(10^9) would make a number of about 301029996 digits"),   # n is a whole number
    ("(2*A)^(10^8)", 6, "would make a number of about 30103000 digits"),
    ("(2*X).^(10^8)", 6, "would make a number of about 30103000 digits"),
    ("*".join(["1e300"] * 5), 18, "makes a number of 1201 digits: the limit is 1000"),
    ("1" * 301, 1, "too large or too long"),
    (nested("tanh", 5, "c"), 1, "tanh nested more than 4 deep"),
    (nested("tanh", 3, nested("exp", 2, nested("tanh", 2, "c"))), 1, "tanh nested more than 4 deep"),
    ("(" * 120 + "c" + ")" * 120, 101, "nested too deeply (more than 100 levels"),
]


@pytest.mark.parametrize("text, column, fragment", PARSER_REFUSALS, ids=[t[:30] for t, _, _ in PARSER_REFUSALS])
def test_parser_refuses_unbounded_input_quickly(text: str, column: int, fragment: str) -> None:
    with quickly(), pytest.raises(ExpressionLimitError) as info:
        parse(text, SHAPES)
    err = info.value
    assert isinstance(err, LimitError) and isinstance(err, ExpressionError)
    assert err.column == column, str(err)
    assert fragment in err.message, err.message
    assert "derive.limits." in err.message          # the message says where the limit is
    assert "\n" not in str(err)


def test_every_number_the_parser_makes_can_be_printed() -> None:
    # just under the limit: built, and printable (Python refuses to print more than 4300 digits)
    for text in ("3^2000", "2^3000*c", "(2*c)^3000", "*".join(["1e300"] * 3)):
        with quickly():
            e = parse(text, SHAPES).expr
        assert len(str(e)) < 4300


def test_powers_without_numbers_in_the_base_stay_symbolic() -> None:
    c = sympy.Symbol("c")
    assert parse("c^(10^300)", SHAPES).expr == sympy.Pow(c, sympy.Integer(10) ** 300)
    # a modest power of a number is computed exactly
    assert parse("(2*c)^50", SHAPES).expr == sympy.Integer(2) ** 50 * c ** 50
    assert parse("B^(10^5)", SHAPES).expr == MatPow(MatrixSymbol("B", 3, 3), 10**5)


# ---------------------------------------------------------------------------------- the engine

X3 = MatrixSymbol("X", 3, 3)

ENGINE_REFUSALS: list[tuple[str, Callable[[], sympy.Basic], str]] = [
    ("tr(2X)^N", lambda: Trace(2 * X3) ** (10**300), "would make a number of about 3.0e+299 digits"),
    ("(2 tr X)^N unevaluated", lambda: sympy.Pow(2 * Trace(X3), 10**300, evaluate=False),
     "would make a number of about"),
    ("MatPow(2X, 1e8)", lambda: Trace(MatPow(2 * X3, 10**8)), "would make a number of about 30103000 digits"),
    ("HadamardPower(2X, 1e8)", lambda: Trace(HadamardPower(2 * X3, 10**8)), "30103000 digits"),
    ("3^10000 tr(X)", lambda: sympy.Integer(3) ** 10000 * Trace(X3), "a number of 4772 digits"),
    ("tanh x7", lambda: Trace(_nest(derive.tanh, 7, X3)), "f nests tanh 7 deep"),
    ("sigmoid x90", lambda: Trace(_nest(derive.sigmoid, 90, X3)), "f nests 90 functions"),
]


def _nest(fn: Callable, depth: int, x: sympy.Basic) -> sympy.Basic:
    for _ in range(depth):
        x = fn(x)
    return x


@pytest.mark.parametrize("name, build, fragment", ENGINE_REFUSALS, ids=[e[0] for e in ENGINE_REFUSALS])
def test_engine_refuses_unbounded_input_quickly(name: str, build, fragment: str) -> None:
    f = build()
    with quickly(), pytest.raises(LimitError) as info:
        derive.gradient(f, X3)
    assert fragment in str(info.value), str(info.value)
    assert "derive.limits." in str(info.value)


@pytest.mark.parametrize("text, wrt, fragment", [
    ("sum(" + nested("sigmoid", 90, "X") + ")", "X", "f nests 90 functions"),
    ("tr(" + "inv(A + " * 40 + "A" + ")" * 40 + ")", "A", "f nests 40 functions"),
    ("tr(" + "inv(A + " * 12 + "A" + ")" * 12 + ")", "A", "grows past 6000 terms in one equation"),
], ids=["sigmoid x90", "inv x40", "inv x12"])
def test_deep_nesting_is_refused_quickly(text: str, wrt: str, fragment: str) -> None:
    # sigmoid x90 took 83 s and inv(A + ...) x40 121 s before they were bounded
    p = parse(text, SHAPES)
    with quickly(), pytest.raises(LimitError) as info:
        derive.derivation(p.expr, p.symbols[wrt])
    assert fragment in str(info.value), str(info.value)
    assert "derive.backprop" in str(info.value)   # the message says what to do instead


def test_nesting_within_the_limits_is_derived_correctly() -> None:
    # five nested functions (two tanh), against central finite differences
    n, d = sympy.Symbol("n", integer=True, positive=True), sympy.Symbol("d", integer=True, positive=True)
    X, A = MatrixSymbol("X", n, d), MatrixSymbol("A", n, n)
    f = Trace(derive.sigmoid(derive.tanh(derive.sigmoid(derive.tanh(sympy.Inverse(A + X * X.T) * X)))).T * X)
    G = derive.gradient(f, X)
    vals = random_values([X, A], np.random.default_rng(1), positive_definite=(A,))
    V = np.random.default_rng(2).standard_normal(vals[X].shape)
    fd = fd_directional(f, X, vals, V)
    assert float(np.sum(evaluate(G, vals) * V)) == pytest.approx(fd, rel=1e-6)


def test_huge_symbolic_exponents_are_still_derived() -> None:
    # no number grows: d tr(X)^N = N tr(X)^(N-1) tr(dX), so ∂/∂X = N tr(X)^(N-1) I
    N = sympy.Integer(10) ** 300
    G = derive.gradient(Trace(X3) ** N, X3)
    assert sympy.simplify((G - N * Trace(X3) ** (N - 1) * sympy.Identity(3)).doit()) == sympy.ZeroMatrix(3, 3)


def test_limits_are_named_in_one_place() -> None:
    from derive import differential, engine, parse as parse_module

    assert differential.MAX_MATRIX_POWER is limits.MAX_MATRIX_POWER
    assert engine._MAX_STEPS == limits.MAX_STEPS
    for name in ("MAX_LENGTH", "MAX_NESTING", "MAX_NUMBER_BITS"):
        assert getattr(parse_module, name) == getattr(limits, name)
    from derive import check
    from derive.render import checks

    assert (check.MAX_BITS, check.MAX_ENTRIES, check.MAX_DIM) == (
        limits.CHECK_MAX_BITS, limits.CHECK_MAX_ENTRIES, limits.CHECK_MAX_DIM)
    assert checks.MAX_CHECK_ENTRIES == limits.MAX_CHECK_ENTRIES
    # and documented for users
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "guide.md").read_text(encoding="utf-8")
    section = guide.split("## Limits", 1)[1].split("\n## ", 1)[0]
    for name in limits.__all__:
        if name.startswith(("MAX_", "CHECK_MAX_")) and name != "MAX_NUMBER_BITS":
            assert f"`{name}`" in section, name


# --------------------------------------------------------------------------------- the checker

@pytest.mark.parametrize("answer, fragment", [
    ("(2*n)^(10^300)*2*H'*(Ypred - Y)", "would make a number of about 3.0e+299 digits"),
    ("(1e300*n)^(1e300)*H'*(Ypred - Y)", "would make a number of about 3.0e+302 digits"),
    ("(2*n)^(10^8)*H'*(Ypred - Y)", "30103000 digits"),
    ("3^10000*H'*(Ypred - Y)", "4772 digits"),
    ("n^(10^9)*H'*(Ypred - Y)", "301029996 digits"),   # was 25 s and 890 MB computing 4^(10^9)
    (nested("tanh", 5, "H") + "'*(Ypred - Y)", "tanh nested more than 4 deep"),
])
def test_checker_refuses_unbounded_answers_quickly(answer: str, fragment: str) -> None:
    with quickly(), pytest.raises(LimitError) as info:
        check_answer(answer, "W2")
    assert fragment in str(info.value)


def test_checker_still_judges_large_but_bounded_answers() -> None:
    assert not check_answer("2^100*H'*(Ypred - Y)", "W2").correct
    assert check_answer("2^100*2^(-100)*2*H'*(Ypred - Y)", "W2").correct


# ------------------------------------------------------------------------------ the helpers


def test_power_digits_and_function_depth() -> None:
    c = sympy.Symbol("c")
    assert limits.power_digits(c + 1, sympy.Integer(10) ** 300) is None        # 1 raised stays 1
    assert limits.power_digits(c + 2, sympy.Integer(10) ** 4) > limits.MAX_NUMBER_DIGITS
    assert limits.power_digits(2 * c, sympy.Integer(3000)) is None              # 904 digits
    assert limits.power_digits(2 * c, c) is None                                 # a symbolic exponent
    A = MatrixSymbol("A", 4000, 4000)                                            # dimensions are not numbers
    assert limits.power_digits(A, sympy.Integer(10**6)) is None
    assert limits.function_depth(Trace(sympy.Inverse(A + sympy.Inverse(A)))) == 2
    assert limits.function_depth(derive.sigmoid(derive.tanh(A)), (sympy.tanh,)) == 1
    assert limits.size_exceeds(A + A.T, 100) is None and limits.size_exceeds(A + A.T, 2) == 3
