"""The grammar file (derive/lang/grammar.lark) and the messages lark's errors become."""
from __future__ import annotations

from importlib.resources import files

import pytest
from lark import Lark

from derive.lang import ExpressionError, syntax_check
from derive.lang.syntax import _Lexer

NAMES = ["X", "W1", "Y", "A"]


def test_the_grammar_is_lalr_without_conflicts() -> None:
    grammar = files("derive.lang").joinpath("grammar.lark").read_text(encoding="utf-8")
    # strict: a shift/reduce conflict is an error rather than resolved silently
    Lark(grammar, parser="lalr", lexer=_Lexer, start="expression", strict=True)


@pytest.mark.parametrize("text, column, message", [
    ("tr(A ]", 6, "unexpected ']' in the arguments of tr(): expected ',' or ')'"),
    ("σ(A, ]", 6, "unexpected ']': expected an operand"),
    ("sigmoid(X ,", 11, "the expression ends after ',': expected an operand"),
    ("(A ]", 4, "unexpected ']': expected ')' to close the '(' at column 1"),
    ("[A , Y]", 4, "unexpected ',': expected ']' to close the '[' at column 1"),
    ("(tr(A) X]", 9, "unexpected ']': expected ')' to close the '(' at column 1"),
    ("A , Y", 3, "unexpected ',' after 'A': expected an operator or the end"),
    ("X^T^T", 4, "unexpected '^' after 'T': expected an operator or the end"),
    ("X^T 2", 5, "unexpected number '2' after 'T': expected an operator (products need '*' before a number)"),
    ("^T", 1, "unexpected '^': expected an operand"),
    ("X ]", 3, "']' has no matching '['"),
    ("   ", 1, "empty expression"),
])
def test_parse_errors_name_the_token_and_the_bracket(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        syntax_check(text, NAMES)
    assert (info.value.kind, info.value.column, info.value.message) == ("syntax", column, message)


@pytest.mark.parametrize("text, column", [
    ("sigmoid(" * 101 + "X" + ")" * 101, 1 + 8 * 100),     # the 101st call
    ("-(" * 60 + "X" + ")" * 60, 101),                        # signs and brackets together
    ("[" * 101 + "X" + "]" * 101, 101),
])
def test_nesting_is_counted_over_calls_signs_and_brackets(text: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        syntax_check(text, NAMES)
    assert info.value.kind == "limit" and info.value.column == column, str(info.value)
