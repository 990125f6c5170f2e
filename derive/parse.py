"""The expression language's public API (the language itself is the package :mod:`derive.lang`;
its grammar and documentation are there).

>>> parse_expression("tr(X'*X)", {"X": ("n", "d")})
Trace(X.T*X)
"""
from __future__ import annotations

from derive.lang import (
    FUNCTIONS, KINDS, Dim, ExpressionError, ExpressionLimitError, Note, ParsedExpression, Shape,
    format_expression, parse, parse_expression, same_structure, syntax_check,
)

__all__ = [
    "FUNCTIONS",
    "KINDS",
    "Dim",
    "ExpressionError",
    "ExpressionLimitError",
    "Note",
    "ParsedExpression",
    "Shape",
    "format_expression",
    "parse",
    "parse_expression",
    "same_structure",
    "syntax_check",
]
