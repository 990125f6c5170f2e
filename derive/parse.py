"""The expression language's public API (the language itself is the package :mod:`derive.lang`;
its grammar and documentation are there).

>>> parse_expression("tr(X'*X)", {"X": ("n", "d")})
Trace(X.T*X)
"""
from __future__ import annotations

# re-exported: derive.parse's names are derive.lang's __all__
from derive.lang import (
    KINDS, Dim, ExpressionError, ExpressionLimitError, Note, ParsedExpression, Shape,  # noqa: F401
    format_expression, parse, parse_expression, same_structure, syntax_check,  # noqa: F401
    __all__,  # noqa: F401
)


def __getattr__(name: str) -> object:
    if name == "FUNCTIONS":   # every function name of the language, read when asked
        from derive import lang

        return lang.FUNCTIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
