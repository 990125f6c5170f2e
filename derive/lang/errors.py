"""The errors and notes of the expression language.

Every :class:`ExpressionError` carries a machine-readable ``kind``, one of :data:`KINDS`; code
that reacts to an error reads the kind, never the message.
"""
from __future__ import annotations

from dataclasses import dataclass

from derive.limits import LimitError

# The kinds of ExpressionError, what each means.
KINDS: dict[str, str] = {
    "syntax": "the text is not in the grammar (a character, a missing operand or bracket, a function's "
              "arguments)",
    "unknown-name": "a name that is not declared and whose shape cannot be inferred (or that reads as "
                    "declared names in more than one way)",
    "unknown-function": "a name called as a function that is no function of the language",
    "shape": "shapes that do not conform (a sum, product, power or function of the wrong shapes)",
    "unsupported": "a meaningful construct the language does not support (a matrix square root, a "
                   "symbolic matrix power, a complex value)",
    "arithmetic": "arithmetic with no finite value: division by zero, zero to a negative power",
    "undefined": "a constant that makes the expression undefined (inv of a zero matrix, log(0))",
    "limit": "a limit of derive.limits (length, nesting, the size of numbers); an ExpressionLimitError",
    "build": "SymPy could not build an operation",
}


class ExpressionError(ValueError):
    """A problem with the expression text, at a 1-based ``column``.

    ``token`` is the offending token's text ('' at the end of the input) and ``message``
    a one-line description naming it; ``str(error)`` is ``"column C: message"``; ``kind`` (one of
    :data:`KINDS`) says what went wrong, for code.

    >>> from derive.lang import parse, parse_expression
    >>> try:
    ...     parse_expression("A + $")
    ... except ExpressionError as e:
    ...     print(e, e.column, repr(e.token))
    column 5: unexpected character '$' 5 '$'
    """

    def __init__(self, message: str, column: int, token: str = "", text: str | None = None,
                 kind: str = "syntax"):
        if kind not in KINDS:
            raise ValueError(f"ExpressionError kind {kind!r} is not one of {sorted(KINDS)}")
        self.message = message
        self.column = column
        self.token = token
        self.text = text
        self.kind = kind
        super().__init__(f"column {column}: {message}")

    def __reduce__(self):
        return (type(self), (self.message, self.column, self.token, self.text, self.kind))

    def caret(self) -> str:
        """The text with a caret under the offending column (when the text is known)."""
        if self.text is None:
            return str(self)
        line = self.text.replace("\n", " ").replace("\t", " ")
        return f"{line}\n{' ' * (self.column - 1)}^ {self.message}"


class ExpressionLimitError(ExpressionError, LimitError):
    """An expression refused by a limit of :mod:`derive.limits` (a number too large, nesting too
    deep, text too long): an :class:`ExpressionError` of kind ``"limit"`` that is also a
    ``LimitError``."""

    def __init__(self, message: str, column: int, token: str = "", text: str | None = None,
                 kind: str = "limit"):
        super().__init__(message, column, token, text, kind)


def make_error(message: str, column: int, token: str, text: str | None, kind: str) -> ExpressionError:
    """An :class:`ExpressionError` of ``kind`` (an :class:`ExpressionLimitError` for ``"limit"``)."""
    cls = ExpressionLimitError if kind == "limit" else ExpressionError
    return cls(message, column, token, text, kind)


@dataclass(frozen=True)
class Note:
    """Something the parser did that a derivation may want to say.

    ``kind`` is one of ``"broadcast-row"``, ``"broadcast-column"``,
    ``"broadcast-scalar"``, ``"scalar-from-1x1"``, ``"inferred-shape"``,
    ``"elementwise-function"`` (exp or log of a square matrix, which a reader could take for the
    matrix function), ``"read-name"`` (a name read as a declared one, or as a product) and
    ``"stray-bracket"`` (a closing bracket with nothing open at the end of a LaTeX text, dropped).
    ``text`` is in English, ``zh`` in Chinese; :meth:`say` picks one.

    >>> from derive.lang import parse
    >>> note = parse("tr(exp(A))", {"A": ("n", "n")}).notes[0]
    >>> print(note.say("en"))
    exp(A) is the elementwise exponential (of each entry), not the matrix exponential
    """

    kind: str
    column: int
    text: str
    zh: str = ""

    def __str__(self) -> str:
        return self.text

    def say(self, lang: str = "en") -> str:
        """The note in ``lang`` ("en" or "zh")."""
        return self.zh if lang == "zh" and self.zh else self.text


