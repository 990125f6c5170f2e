"""ExpressionError.kind: each kind of KINDS raised where it should be, so that code reacts to kinds,
never to message text."""
from __future__ import annotations

import pytest

from derive.check import check_answer
from derive.lang import KINDS, ExpressionError, ExpressionLimitError, parse, syntax_check

SHAPES = {"X": ("n", "d"), "W": ("d", "m"), "A": ("n", "n"), "c": ()}


@pytest.mark.parametrize("text, kind", [
    ("X + $", "syntax"), ("X *", "syntax"), ("(X", "syntax"), ("tr(A, A)", "syntax"), ("X 2", "syntax"),
    ("Q*W", "unknown-name"),
    ("foo(X)", "unknown-function"),
    ("X + W", "shape"), ("X*X", "shape"), ("tr(X)", "shape"), ("X^2", "shape"),
    ("A^0.5", "unsupported"), ("sqrt(-1)", "unsupported"),
    ("X/0", "arithmetic"), ("0^-1*c", "arithmetic"),
    ("inv(zeros(n, n))", "undefined"),
    ("(" * 200 + "c" + ")" * 200, "limit"), ("2^(10^9)", "limit"),
])
def test_each_kind_is_raised_where_it_should_be(text: str, kind: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text, SHAPES, infer=False)
    assert info.value.kind == kind, (info.value.kind, str(info.value))
    assert kind in KINDS
    assert isinstance(info.value, ExpressionLimitError) == (kind == "limit")


def test_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        ExpressionError("message", 1, kind="no-such-kind")


def test_syntax_check_raises_only_what_parse_raises_before_shapes() -> None:
    syntax_check("X + W", ["X", "W"])            # a shape error is not a syntax error
    with pytest.raises(ExpressionError) as info:
        syntax_check("X + ", ["X"])
    assert info.value.kind == "syntax" and info.value.column == 3


def test_the_checker_raises_syntax_errors_and_grades_shape_errors() -> None:
    with pytest.raises(ExpressionError) as info:
        check_answer("2*H'*(Ypred - ", "W2")
    assert info.value.kind == "syntax"
    assert not check_answer("2*H*(Ypred - Y)", "W2").correct
