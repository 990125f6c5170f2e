"""A small, safe expression language for matrix functions, parsed into SymPy.

``parse_expression("norm2(Y - (sigmoid(X*W1 + b1)*W2 + b2))^2", shapes)`` builds
the SymPy expression that ``derive`` differentiates.  The text is never handed to
``eval``, ``exec``, ``sympify`` or ``parse_expr``: a hand-written tokenizer and a
recursive-descent (precedence-climbing) parser build a small syntax tree, shapes are
inferred over it, and only then are SymPy objects constructed, one operator at a time.

Why hand-written rather than Python's ``ast`` or ``lark``: ``ast`` cannot read postfix
``'`` or ``.*``; ``lark`` could, but the grammar is a dozen rules, the lexing is
context-sensitive in small ways (``2.*A`` is ``2 .* A``, ``.5`` is a number, ``A.T`` a
transpose, ``A.Tx`` an error), and every error must name its token and 1-based column
with a message about shapes.  A scanner and parser of about 200 lines do all of that with no
new dependency and no code path that could run the text.

Grammar (EBNF; precedence from low to high, ``^`` and ``.^`` right-associative)::

    expression := product  (("+" | "-") product)*
    product    := unary    (("*" | "/" | ".*" | "./") unary)*
    unary      := ("-" | "+") unary | side
    side       := power    power*                      (factors side by side: 2X, Xᵀ(Y - P))
    power      := postfix  (("^" | ".^") exponent | "^T")?
    exponent   := ("-" | "+") exponent | power
    postfix    := primary  ("'" | ".T" | SUPERSCRIPT)*
    primary    := NUMBER | NAME | NAME "(" [expression ("," expression)*] ")" | ONES
                | "(" expression ")" | "[" expression "]"
    NAME       := [A-Za-z_][A-Za-z0-9_]* | a Greek letter (λ is lambda) …
    NUMBER     := ([0-9]+ ("." [0-9]+)? | "." [0-9]+) ([eE] [+-]? [0-9]+)?
    ONES       := "𝟏" (subscript dimension: 𝟏ₙ, 𝟏_n, 𝟏_(m1))?
    SUPERSCRIPT:= "²", "⁻¹", "⁻ᵀ", "∘²" …               (X², X⁻¹, X⁻ᵀ = (X⁻¹)ᵀ, the Hadamard X∘²)

So ``-a^2`` is ``-(a^2)``, ``a^-1`` is allowed, ``a^b^c`` is ``a^(b^c)``, ``2*-x`` is
``2*(-x)``, ``-X*W`` is ``(-X)*W`` and ``X'*W`` is ``(X')*W``.  Numbers are exact
(``0.5`` is ``Rational(1, 2)``).  Whitespace (spaces, tabs, newlines) separates tokens
and counts towards columns.

The text the tool prints reads back, and so does what people type: ``−`` is ``-``; ``@``, ``×``
and ``·`` are ``*``; ``⊙`` and ``∘`` are ``.*``, ``⊘`` is ``./``; ``ᵀ`` and ``⊤`` are ``'``;
``X^T`` is the transpose where ``T`` is neither a declared name nor a dimension; ``σ`` is
``sigmoid``; ``𝟏ₙ`` is ``ones(n, 1)`` and a bare ``𝟏`` the ones matrix of the shape around it.
Factors side by side are a product that binds tighter than the written operators (``A .* 2B``
is ``A .* (2*B)``, ``2X^2`` is ``2*(X^2)``); a number after a factor needs ``*`` (``X 2`` is an
error), and ``a/2b`` is refused as ambiguous.  A declared variable followed by ``(`` is a
product, ``X(A + B)``.  An undeclared name that is a declared one spelt with or without
underscores (``Y_pred`` for ``Ypred``), an elementwise function of one (``h_sigmoid`` for
``sigmoid(h)``), or that splits in exactly one way into declared names (``XW1`` for ``X W1``),
reads as those, with a :class:`Note`.

Operators:

* ``+ -``: sums of equal shapes, with broadcasting: a 1×m row with an n×m matrix becomes
  ``OneMatrix(n, 1)*b``, an n×1 column with an n×m matrix ``b*OneMatrix(1, m)``, a scalar
  (or 1×1 matrix) ``c*OneMatrix(n, m)``; each broadcast is recorded as a :class:`Note`.
* ``*``: matrix product; a scalar times a matrix is a scalar multiple, and so is a 1×1
  matrix times a matrix it does not conform with (through ``Trace`` of the 1×1 factor).
* ``/``: division by a scalar (or 1×1) only.  ``.*`` and ``./``: Hadamard product and
  division of equal shapes (a scalar operand makes them ``*`` and ``/``).
* ``^``: scalar power, or an integer power of a square matrix (``A^-1`` is ``Inverse``);
  matrix square roots and symbolic matrix powers are refused, saying that ``.^`` is a
  different function.  ``.^``: Hadamard power by a scalar.  Postfix ``'`` and ``.T``: transpose.

Limits (:mod:`derive.limits`): the length and nesting of the text, the digits of literals, the
digits of any number a product or power would compute (``(2*c)^(10^8)`` distributes the power
onto the 2 and is refused before SymPy computes it) and the nesting of ``tanh``; a refusal is an
:class:`ExpressionLimitError`.  ``exp``, ``log`` and ``tanh`` of a square matrix are elementwise,
and a :class:`Note` says so (a reader of the Matrix Cookbook means the matrix function).

Functions: ``tr`` (Trace), ``det`` (Determinant), ``logdet`` (log of Determinant),
``inv`` (Inverse), ``norm2`` (``sqrt(frobenius_sq(A))``, so ``norm2(A)^2`` is
``tr(AᵀA)``), ``sum`` (``tr(1ᵀ A 1)``, a scalar), ``sqrt`` (scalars), the elementwise
``sigmoid tanh relu softplus exp log step`` (matrices elementwise, scalars directly), ``softmax``
(row-wise, as :func:`derive.networks.softmax_rows`) and
``ones(r, c)``, ``zeros(r, c)``, ``eye(n)``, whose arguments are dimensions (positive
integers or dimension names).  ``step``, ``ones``, ``zeros`` and ``eye`` go beyond the
minimum so that :func:`format_expression` can write the gradients ``derive`` produces.
Where a 1×1 matrix is used as a scalar (the argument of ``exp``, ``log``, ``sqrt`` …, a
divisor, an exponent, a non-integer power base) it becomes ``Trace`` of itself.

Shapes: ``shapes`` maps names to ``(rows, cols)`` (positive ints, dimension names, or
SymPy dimensions) or ``()`` for a scalar.  A dimension name ``"n"`` becomes
``Symbol("n", integer=True, positive=True)``, and may be used as a scalar in the text
(``norm2(E)^2/n``) unless a variable has the same name.  Names missing from ``shapes`` are matrices
whose shapes are inferred by unification over dimension variables (``A + B`` with A known
gives B A's shape; ``X*W`` fixes W's rows); a name whose shape stays open is an error.

Structure: each operator builds what SymPy's own operator would (``MatMul(a, b).doit(deep=False)``
and the like: canonical, flattened, scalars in front), elementwise functions come from
:mod:`derive.elementwise`, and parsing a text twice gives ``==`` results.  SymPy's sum
canonicaliser evaluates terms that carry a numeric coefficient, so ``A - (A*B)'`` becomes
``A - B'A'`` exactly as ``A - (A*B).T`` does in Python; where it composes elementwise
functions (``-σ(σ(X))``) the parser splits them back into nested applications.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import Any
from collections.abc import Callable, Iterator, Mapping, Sequence

import sympy
from sympy import (
    Determinant, Dummy, Identity, Inverse, Lambda, MatAdd, MatMul, MatPow, MatrixExpr,
    MatrixSymbol, OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.hadamard import canonicalize as _hadamard_canonical

from derive import elementwise as ew
from derive.elementwise import elementwise_function, elementwise_functions, function_record
from derive.limits import (
    MAX_LENGTH, MAX_LITERAL_DIGITS, MAX_NESTING, MAX_NUMBER_BITS, MAX_NUMBER_DIGITS, MAX_TANH_DEPTH,
    digits_text,
    LimitError, number_bits, power_digits,
)
from derive.networks import frobenius_sq, softmax_rows
from derive.undefined import find_undefined

__all__ = [
    "FUNCTIONS",
    "ExpressionError",
    "ExpressionLimitError",
    "Note",
    "ParsedExpression",
    "format_expression",
    "parse",
    "parse_expression",
    "same_structure",
]

Dim = int | str | sympy.Expr
Shape = tuple[()] | tuple[Dim, Dim]

# The limits (length, nesting, the size of numbers) are in derive.limits, with all the others.

# The elementwise functions: their scalar forms here, their matrix forms from derive.elementwise.
_DIM_FUNCTIONS = {"ones": 2, "zeros": 2, "eye": 1}
_MATRIX_FUNCTIONS = {"tr": 1, "det": 1, "logdet": 1, "inv": 1, "norm2": 1, "sum": 1, "sqrt": 1, "softmax": 1}


class _Registry(Mapping):
    """A table read from the elementwise registry at each lookup, so that functions defined
    later (derive.define_elementwise) are seen: ``pick`` of each record, keyed by name."""

    def __init__(self, pick: Callable[[ew.ElementwiseFunction], Any]) -> None:
        self._pick = pick

    def __getitem__(self, name: str) -> Any:
        return self._pick(elementwise_functions()[name])

    def __iter__(self) -> Iterator[str]:
        return iter(elementwise_functions())

    def __len__(self) -> int:
        return len(elementwise_functions())


# The elementwise functions: their scalar forms and their matrix forms, from derive.elementwise.
_ELEMENTWISE: Mapping[str, Callable[..., sympy.Expr]] = _Registry(lambda r: r.scalar)
_MATRIX_ELEMENTWISE: Mapping[str, Callable[[MatrixExpr], MatrixExpr]] = _Registry(lambda r: r)
FUNCTIONS: tuple[str, ...]  # the language's function names: computed at each lookup (__getattr__)


def _functions() -> tuple[str, ...]:
    return tuple(sorted({**_MATRIX_FUNCTIONS, **_DIM_FUNCTIONS, **dict.fromkeys(_ELEMENTWISE, 1)}))


def __getattr__(name: str) -> Any:
    if name == "FUNCTIONS":  # the names of the functions of the language, as of now
        return _functions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Elementwise functions that are also matrix functions of a square matrix (e^A, log A): a note says
# which one the text means.
_MATRIX_FUNCTION_NAMES = {"exp": ("exponential", "指数"), "log": ("logarithm", "对数"),
                          "tanh": ("hyperbolic tangent", "双曲正切")}


# --------------------------------------------------------------------------- errors


class ExpressionError(ValueError):
    """A problem with the expression text, at a 1-based ``column``.

    ``token`` is the offending token's text ('' at the end of the input) and ``message``
    a one-line description naming it; ``str(error)`` is ``"column C: message"``.

    >>> try:
    ...     parse_expression("A + $")
    ... except ExpressionError as e:
    ...     print(e, e.column, repr(e.token))
    column 5: unexpected character '$' 5 '$'
    """

    def __init__(self, message: str, column: int, token: str = "", text: str | None = None,
                 kind: str = "invalid"):
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


def _error(message: str, column: int, token: str, text: str | None, kind: str = "invalid") -> ExpressionError:
    """An :class:`ExpressionError` of ``kind`` (an :class:`ExpressionLimitError` for ``"limit"``)."""
    cls = ExpressionLimitError if kind == "limit" else ExpressionError
    return cls(message, column, token, text, kind)


@dataclass(frozen=True)
class Note:
    """Something the parser did that a derivation may want to say.

    ``kind`` is one of ``"broadcast-row"``, ``"broadcast-column"``,
    ``"broadcast-scalar"``, ``"scalar-from-1x1"``, ``"inferred-shape"``,
    ``"elementwise-function"`` (exp or log of a square matrix, which a reader could take for the
    matrix function) and ``"read-name"`` (a name read as a declared one, or as a product).
    ``text`` is in English, ``zh`` in Chinese; :meth:`say` picks one.

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


@dataclass(frozen=True)
class ParsedExpression:
    """The result of :func:`parse`.

    ``symbols`` maps each name used in the text to its ``MatrixSymbol`` (or ``Symbol``
    for scalars) in order of first use; ``shapes`` gives their shapes (``()`` for
    scalars); ``inferred`` names those whose shapes were inferred; ``dims`` maps the
    dimension names involved to their symbols.
    """

    text: str
    expr: sympy.Basic
    symbols: dict[str, sympy.Basic]
    shapes: dict[str, tuple]
    notes: tuple[Note, ...] = ()
    inferred: tuple[str, ...] = ()
    dims: dict[str, sympy.Symbol] = field(default_factory=dict)

    @property
    def shape(self) -> tuple | None:
        """The expression's shape, or ``None`` for a scalar."""
        return self.expr.shape if isinstance(self.expr, MatrixExpr) else None


# ------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str   # "num", "name", "op", "sup" (a superscript power), "ones" (𝟏, 𝟏ₙ), "end"
    text: str   # canonical: '−' is "-", 'ᵀ' is "'", 'λ' is "lambda", '²' is "^2"
    pos: int    # 0-based offset
    src: str = ""   # the text as typed, where it differs from ``text``

    @property
    def column(self) -> int:
        return self.pos + 1

    @property
    def source(self) -> str:
        return self.src or self.text


_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_TAIL = re.compile(r"[A-Za-z0-9_]*")
_IDENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SINGLE = frozenset("+-*/^'(),[]")
_SPACES = frozenset(" \t\r\n\u00a0\u2009\u202f")
# The tool's own notation and what people type, as the operators of the language.
_UNICODE_OPS = {
    "−": "-", "–": "-",                          # minus sign, en dash
    "@": "*", "×": "*", "·": "*", "⋅": "*",      # products
    "⊙": ".*", "∘": ".*", "⊘": "./",             # Hadamard product and division
    "ᵀ": "'", "⊤": "'", "’": "'",                # transpose
}
_SUPERSCRIPT_DIGITS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6",
                       "⁷": "7", "⁸": "8", "⁹": "9"}
_SUBSCRIPT_CHARS = dict(zip("₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", "0123456789aehijklmnoprstuvx"))
_ONE = "𝟏"
# Lower-case Greek letters are the names the text printer writes them for (λ for lambda), except
# the text names of elementwise functions (σ is sigmoid: _FUNCTION_ALIASES).
_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
          "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu",
          "ξ": "xi", "π": "pi", "ρ": "rho", "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi",
          "ψ": "psi", "ω": "omega"}


class _Aliases(Mapping):
    """The text names of elementwise functions that are not their names (σ for sigmoid), read from
    the registry at each lookup, so that the text the printer writes reads back."""

    def _table(self) -> dict[str, str]:
        return {r.text: r.name for r in elementwise_functions().values() if r.text != r.name}

    def __getitem__(self, text: str) -> str:
        return self._table()[text]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


_FUNCTION_ALIASES: Mapping[str, str] = _Aliases()


def _superscript(text: str, i: int) -> tuple[str, int] | None:
    """(exponent, end) of a superscript power at ``i``: ``²`` → "2", ``⁻¹`` → "-1", ``⁻ᵀ`` → "-T"."""
    j = i
    sign = ""
    if j < len(text) and text[j] in "⁻⁺":
        sign = "-" if text[j] == "⁻" else ""
        j += 1
        if sign and j < len(text) and text[j] == "ᵀ":
            return "-T", j + 1
    k = j
    while k < len(text) and text[k] in _SUPERSCRIPT_DIGITS:
        k += 1
    if k == j:
        return None
    return sign + "".join(_SUPERSCRIPT_DIGITS[ch] for ch in text[j:k]), k


def _ones_subscript(text: str, i: int) -> tuple[str, int]:
    """(dimension, end) of the subscript after 𝟏 at ``i``: 𝟏ₙ, 𝟏_n, 𝟏_(m1); "" for none."""
    j = i
    while j < len(text) and text[j] in _SUBSCRIPT_CHARS:
        j += 1
    if j > i:
        return "".join(_SUBSCRIPT_CHARS[ch] for ch in text[i:j]), j
    if text.startswith("_(", i):
        m = _IDENT.match(text, i + 2)
        if m and text.startswith(")", m.end()):
            return m.group(), m.end() + 1
    if text.startswith("_", i) and i + 1 < len(text) and text[i + 1] in _IDENT_CHARS:
        return text[i + 1], i + 2
    return "", i


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens on demand, so that errors come out left to right."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACES:
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if ch in _IDENT_CHARS and not ch.isdigit():
            m = _IDENT.match(text, i)
            assert m is not None
            yield _Token("name", m.group(), i)
            i = m.end()
        elif (ch.isdigit() and ch in _IDENT_CHARS) or (ch == "." and nxt.isdigit() and nxt in _IDENT_CHARS):
            m = _NUMBER.match(text, i)
            assert m is not None
            yield _Token("num", m.group(), i)
            i = m.end()
        elif ch == ".":
            if nxt in ("*", "/", "^"):
                yield _Token("op", "." + nxt, i)
                i += 2
            elif nxt == "T" and not (i + 2 < n and text[i + 2] in _IDENT_CHARS):
                yield _Token("op", ".T", i)
                i += 2
            else:
                raise ExpressionError(
                    "unexpected character '.': expected '.*', './', '.^', '.T' or a number",
                    i + 1, ".", text)
        elif ch == "*" and nxt == "*":
            raise ExpressionError("'**' is not an operator: write '^' for powers", i + 1, "**", text)
        elif ch in _SINGLE:
            yield _Token("op", ch, i)
            i += 1
        elif ch == "∘" and _superscript(text, i + 1):
            exponent, end = _superscript(text, i + 1)
            if exponent == "-T":
                raise ExpressionError("'∘⁻ᵀ' is not a power", i + 1, text[i:end], text)
            yield _Token("sup", ".^" + exponent, i, text[i:end])
            i = end
        elif ch in _UNICODE_OPS:
            yield _Token("op", _UNICODE_OPS[ch], i, ch)
            i += 1
        elif _superscript(text, i):
            exponent, end = _superscript(text, i)
            yield _Token("sup", "^" + exponent, i, text[i:end])
            i = end
        elif ch == _ONE:
            dim, end = _ones_subscript(text, i + 1)
            yield _Token("ones", dim, i, text[i:end])
            i = end
        elif ch in _FUNCTION_ALIASES:
            yield _Token("name", _FUNCTION_ALIASES[ch], i, ch)
            i += 1
        elif ch in _GREEK:
            m = _IDENT_TAIL.match(text, i + 1)
            assert m is not None
            yield _Token("name", _GREEK[ch] + m.group(), i, text[i:m.end()])
            i = m.end()
        else:
            raise ExpressionError(f"unexpected character {ch!r}", i + 1, ch, text)
    yield _Token("end", "", n)


def _number(tok: _Token, text: str) -> sympy.Rational:
    mantissa, _, exponent = tok.text.lower().partition("e")
    digits = len(mantissa.replace(".", "").lstrip("0"))
    if digits > MAX_LITERAL_DIGITS or (exponent and abs(int(exponent)) > MAX_LITERAL_DIGITS):
        raise ExpressionLimitError(f"number {tok.text!r} is too large or too long (at most {MAX_LITERAL_DIGITS} "
                                   "digits and exponents up to e300, derive.limits.MAX_LITERAL_DIGITS)",
                                   tok.column, tok.text, text)
    f = Fraction(tok.text)
    return sympy.Rational(f.numerator, f.denominator)


# --------------------------------------------------------------------------- parser


@dataclass(eq=False)
class _Node:
    kind: str          # num name unary bin pow post call dims ones
    token: str         # operator, name, function name or number text (canonical)
    pos: int           # 0-based offset of the token
    start: int         # source span [start, end)
    end: int
    children: tuple[_Node, ...] = ()
    value: object = None
    depth: int = 1
    src: str = ""      # the token as typed
    implicit: bool = False   # a product written without an operator (2X, X W, Xᵀ(A + B))
    bracketed: bool = False  # written in brackets

    @property
    def column(self) -> int:
        return self.pos + 1


def _readings(name: str, names: frozenset[str], limit: int = 2) -> list[list[str]]:
    """The ways (at most ``limit``) to read ``name`` as several declared names written together.

    >>> _readings("XW1", frozenset({"X", "W1", "W"}))
    [['X', 'W1']]
    """
    # ways[i]: up to ``limit`` readings of name[i:], found from the end (no backtracking blow-up)
    ways: list[list[list[str]]] = [[] for _ in range(len(name))] + [[[]]]
    longest = max(map(len, names), default=0)
    for i in range(len(name) - 1, -1, -1):
        for j in range(i + 1, min(len(name), i + longest) + 1):
            if name[i:j] in names:
                for rest in ways[j]:
                    if len(ways[i]) < limit:
                        ways[i].append([name[i:j], *rest])
    return [w for w in ways[0] if len(w) > 1]


class _Parser:
    def __init__(self, text: str, names: Sequence[str] = (), dims: Sequence[str] = ()):
        self.text = text
        self.names = frozenset(names)
        self.dims = frozenset(dims)
        self.stream = _tokenize(text)
        self.tokens: list[_Token] = []
        self.i = 0
        self.level = 0
        self.notes: list[Note] = []
        # the levels of the grammar; partials add no Python frame, so deep nesting meets
        # MAX_NESTING before the interpreter's recursion limit
        # the exponent of ^ and .^: a signed power, without side-by-side products (X^2Y is X²·Y)
        self.exponent: Callable[[], _Node] = partial(self.signed, self.power)
        self.unary: Callable[[], _Node] = partial(self.signed, self.juxtaposition)
        self.product: Callable[[], _Node] = partial(self._left_assoc, ("*", "/", ".*", "./"), self.unary)
        self.expression: Callable[[], _Node] = partial(self._left_assoc, ("+", "-"), self.product)

    # helpers
    @property
    def tok(self) -> _Token:
        while len(self.tokens) <= self.i:
            self.tokens.append(next(self.stream))
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> _Token:
        self.i += ahead
        try:
            return self.tok
        finally:
            self.i -= ahead

    def error(self, message: str, tok: _Token, kind: str = "invalid") -> ExpressionError:
        return _error(message, tok.column, tok.source, self.text, kind)

    def node(self, kind: str, tok: _Token, start: int, end: int,
             children: tuple[_Node, ...] = (), value: object = None, text: str | None = None) -> _Node:
        if kind == "bin":
            depth = max(children[0].depth, children[1].depth + 1)
        else:
            depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_NESTING:
            raise self.error(f"expression nested too deeply (more than {MAX_NESTING} levels, "
                             f"derive.limits.MAX_NESTING) at {tok.source!r}", tok, "limit")
        return _Node(kind, tok.text if text is None else text, tok.pos, start, end, children, value, depth,
                     tok.source)

    def describe(self, tok: _Token) -> str:
        kind = {"num": "number ", "name": "name "}.get(tok.kind, "")
        return kind + repr(tok.source)

    def is_op(self, *texts: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in texts

    def starts_operand(self) -> bool:
        tok = self.tok
        return tok.kind in ("name", "num", "ones") or (tok.kind == "op" and tok.text in ("(", "["))

    def guard(self) -> None:
        self.level += 1
        if self.level > MAX_NESTING:
            raise self.error(f"expression nested too deeply (more than {MAX_NESTING} levels, "
                             f"derive.limits.MAX_NESTING) at {self.tok.source!r}", self.tok, "limit")

    # grammar
    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression", 1, "", self.text)
        root = self.expression()
        tok = self.tok
        if tok.kind != "end":
            if tok.text in (")", "]"):
                raise self.error(f"{tok.source!r} has no matching {'(' if tok.text == ')' else '['!r}", tok)
            prev = self.tokens[self.i - 1]
            raise self.error(f"unexpected {self.describe(tok)} after {prev.source!r}: "
                             "expected an operator or the end", tok)
        return root

    def _left_assoc(self, ops: tuple[str, ...], operand: Callable[[], _Node]) -> _Node:
        left = operand()
        while self.is_op(*ops):
            op = self.tok
            self.i += 1
            right = operand()
            if op.text in ("/", "./"):
                inner = right
                while inner.kind == "unary" and not inner.bracketed:
                    inner = inner.children[0]
                if inner.implicit and not inner.bracketed:
                    written = " ".join(self.text[right.start:right.end].split())
                    raise self.error(f"{op.source!r} before {written!r}, a product written without '*', is "
                                     f"ambiguous: write {op.source}({written}) to divide by the product, or "
                                     "'*' between the factors", op)
            left = self.node("bin", op, left.start, right.end, (left, right))
        return left

    def signed(self, operand: Callable[[], _Node]) -> _Node:
        """("-" | "+")* operand."""
        self.guard()
        try:
            tok = self.tok
            if tok.kind == "op" and tok.text in ("+", "-"):
                self.i += 1
                inner = self.signed(operand)
                return self.node("unary", tok, tok.pos, inner.end, (inner,))
            return operand()
        finally:
            self.level -= 1

    def juxtaposition(self) -> _Node:
        """Factors written side by side (2X, Xᵀ(Y − P), (A + B)C): a product that binds tighter
        than the written operators, so ``A .* 2B`` is ``A .* (2*B)``."""
        left = self.power()
        while self.starts_operand():
            tok = self.tok
            if tok.kind == "num":
                prev = self.tokens[self.i - 1]
                raise self.error(f"unexpected number {tok.source!r} after {prev.source!r}: expected an "
                                 "operator (products need '*' before a number)", tok)
            right = self.power()
            left = self.node("bin", _Token("op", "*", right.start), left.start, right.end, (left, right))
            left.src, left.implicit = "", True
        return left

    def power(self) -> _Node:
        base = self.postfix()
        if self.is_op("^", ".^"):
            op = self.tok
            self.i += 1
            nxt = self.tok
            transpose = (op.text == "^" and (
                (nxt.kind == "name" and nxt.text == "T" and "T" not in self.names and "T" not in self.dims
                 and not (self.peek().kind == "op" and self.peek().text == "("))
                or (nxt.kind == "op" and nxt.text == "'" and nxt.src)))
            if transpose:   # X^T, X^ᵀ: the transpose
                self.i += 1
                return self.node("post", _Token("op", "'", op.pos, op.source + nxt.source), base.start,
                                 nxt.pos + len(nxt.source), (base,))
            exponent = self.exponent()
            return self.node("pow", op, base.start, exponent.end, (base, exponent))
        return base

    def postfix(self) -> _Node:
        node = self.primary()
        while self.is_op("'", ".T") or self.tok.kind == "sup":
            op = self.tok
            self.i += 1
            end = op.pos + len(op.source)
            if op.kind == "op":
                node = self.node("post", op, node.start, end, (node,))
                continue
            power, _, exponent = op.text.partition("^")
            if exponent == "-T":   # X⁻ᵀ = (X⁻¹)ᵀ
                exponent = "-1"
            num = self.node("num", op, op.pos, end, value=sympy.Integer(int(exponent)), text=exponent)
            node = self.node("pow", _Token("op", power + "^", op.pos, op.src), node.start, end, (node, num))
            if op.text.endswith("-T"):
                node = self.node("post", _Token("op", "'", op.pos, op.src), node.start, end, (node,))
        return node

    def primary(self) -> _Node:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return self.node("num", tok, tok.pos, tok.pos + len(tok.text), value=_number(tok, self.text))
        if tok.kind == "ones":
            self.i += 1
            end = tok.pos + len(tok.source)
            if not tok.text:
                return self.node("ones", tok, tok.pos, end, text="ones")
            dim = sympy.Integer(int(tok.text)) if tok.text.isdigit() else _dim_symbol(tok.text)
            if dim == 0:
                raise self.error(f"{tok.source!r}: a dimension must be positive", tok)
            return self.node("dims", tok, tok.pos, end, value=(dim, sympy.Integer(1)), text="ones")
        if tok.kind == "name":
            self.i += 1
            call = self.is_op("(")
            if call and (tok.text in _functions() or tok.text not in self.names):
                return self.call(tok)
            if tok.text in _functions():
                raise self.error(f"{tok.source!r} is a function: write {tok.source}(...)", tok)
            return self.name(tok)
        if tok.kind == "op" and tok.text in ("(", "["):
            self.i += 1
            inner = self.expression()
            close = self.tok
            want = ")" if tok.text == "(" else "]"
            if not (close.kind == "op" and close.text == want):
                if close.kind == "end":
                    raise self.error(f"{tok.source!r} at column {tok.column} is never closed", tok)
                raise self.error(f"unexpected {self.describe(close)}: expected {want!r} to close the "
                                 f"{tok.source!r} at column {tok.column}", close)
            self.i += 1
            inner.start, inner.end, inner.bracketed = tok.pos, close.pos + 1, True
            return inner
        if tok.kind == "end":
            prev = self.tokens[self.i - 1] if self.i else tok
            raise self.error(f"the expression ends after {prev.source!r}: expected an operand", prev)
        raise self.error(f"unexpected {self.describe(tok)}: expected an operand", tok)

    def name(self, tok: _Token) -> _Node:
        """A name.  An undeclared one reads as a declared name spelt with or without underscores
        (Y_pred for Ypred), as an elementwise function of a declared name (h_sigmoid for
        sigmoid(h), as the seed write-up names σ(h)) or as declared names written together (XW1
        for X W1); a note says so."""
        end = tok.pos + len(tok.source)
        name = tok.text
        if name in self.names or name in self.dims or not self.names:
            return self.node("name", tok, tok.pos, end)
        same = self.declared(name)
        if same is not None:
            self.notes.append(Note("read-name", tok.column, f"{name} read as {same}", f"{name} 读作 {same}"))
            return self.node("name", tok, tok.pos, end, text=same)
        base, _, fname = name.rpartition("_")
        if fname in _ELEMENTWISE and base and self.declared(base) is not None:
            arg = self.declared(base)
            self.notes.append(Note("read-name", tok.column, f"{name} read as {fname}({arg})",
                                   f"{name} 读作 {fname}({arg})"))
            inner = self.node("name", tok, tok.pos, tok.pos + len(base), text=arg)
            return self.node("call", tok, tok.pos, end, (inner,), text=fname)
        readings = _readings(name, self.names) if not tok.src else []
        if len(readings) == 1:
            # read as its parts, side by side: the parser goes on from the first, so that a postfix
            # operator binds to the last (XW1ᵀ is X·W1ᵀ)
            parts = readings[0]
            self.notes.append(Note("read-name", tok.column,
                                   f"{name} read as the product {'·'.join(parts)}",
                                   f"{name} 读作乘积 {'·'.join(parts)}"))
            pieces, pos = [], tok.pos
            for part in parts:
                pieces.append(_Token("name", part, pos))
                pos += len(part)
            self.tokens[self.i - 1:self.i] = pieces
            return self.node("name", pieces[0], tok.pos, tok.pos + len(parts[0]))
        if len(readings) > 1:
            options = " or ".join("*".join(r) for r in readings)
            raise self.error(f"unknown name {name!r}: products need '*' (write {options})", tok)
        return self.node("name", tok, tok.pos, end)

    def declared(self, name: str) -> str | None:
        """The declared name ``name`` is, itself or spelt with or without underscores."""
        if name in self.names:
            return name
        plain = name.replace("_", "")
        same = [k for k in self.names if k.replace("_", "") == plain]
        return same[0] if len(same) == 1 else None

    def call(self, name: _Token) -> _Node:
        fname = name.text
        if fname not in _functions():
            hint = f" (for a product write {name.source}*(...))" if self.names else ""
            raise self.error(f"unknown function {name.source!r}; known functions: {', '.join(_functions())}{hint}",
                             name)
        open_ = self.tok
        self.i += 1
        args: list[_Node] = []
        if not self.is_op(")"):
            while True:
                args.append(self.expression())
                if self.is_op(","):
                    self.i += 1
                    continue
                break
        close = self.tok
        if not self.is_op(")"):
            if close.kind == "end":
                raise self.error(f"'(' at column {open_.column} is never closed", open_)
            raise self.error(f"unexpected {self.describe(close)} in the arguments of {name.source}(): "
                             "expected ',' or ')'", close)
        self.i += 1
        arity = _DIM_FUNCTIONS.get(fname) or _MATRIX_FUNCTIONS.get(fname) or 1
        if len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise self.error(f"{name.source}() takes {arity} argument{plural}, got {len(args)}", name)
        if fname in _DIM_FUNCTIONS:
            dims = []
            for a in args:
                if a.kind == "num" and isinstance(a.value, sympy.Integer) and a.value > 0:
                    dims.append(a.value)
                elif a.kind == "name":
                    dims.append(_dim_symbol(a.token))
                else:
                    raise ExpressionError(
                        f"{fname}() takes dimensions (positive integers or dimension names), "
                        f"got {self.text[a.start:a.end]!r}", a.start + 1, self.text[a.start:a.end], self.text)
            return self.node("dims", name, name.pos, close.pos + 1, value=tuple(dims))
        return self.node("call", name, name.pos, close.pos + 1, tuple(args))


def _dim_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def _postorder(root: _Node) -> list[_Node]:
    out: list[_Node] = []
    stack: list[tuple[_Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            out.append(node)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(node.children))
    return out


# ------------------------------------------------------------------ shape inference


class _Unifier:
    """Union-find over dimension variables, each optionally bound to a SymPy dimension."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.value: list[sympy.Expr | None] = []

    def new(self, value: sympy.Expr | None = None) -> int:
        self.parent.append(len(self.parent))
        self.value.append(value)
        return len(self.parent) - 1

    def find(self, v: int) -> int:
        while self.parent[v] != v:
            self.parent[v] = self.parent[self.parent[v]]
            v = self.parent[v]
        return v

    def get(self, v: int) -> sympy.Expr | None:
        return self.value[self.find(v)]

    def same(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        return ra == rb or (self.value[ra] is not None and self.value[ra] == self.value[rb])

    def unify(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        va, vb = self.value[ra], self.value[rb]
        if va is not None and vb is not None and va != vb:
            return False   # a genuine mismatch: the builder reports it with both shapes
        self.parent[rb] = ra
        self.value[ra] = va if va is not None else vb
        return True


_SCALAR = ("s",)
_PENDING = object()


def _infer(root: _Node, order: list[_Node], known: dict[str, tuple],
           u: _Unifier, ones: dict[int, tuple] | None = None) -> dict[str, tuple[int, int]]:
    """Give unknown names dimension variables and unify them through the operators.

    Sums whose shapes are still open are deferred (they may broadcast once the shapes
    are known) and, when nothing else can move, the first is forced to equal shapes.
    Returns the variables of the unknown names; ``ones`` receives those of each 𝟏
    written without dimensions (keyed on the node's id).
    """
    ones = {} if ones is None else ones
    unknown: dict[str, tuple[int, int]] = {}
    known_vars: dict[str, tuple] = {}
    types: dict[int, tuple] = {}

    def resolved(t: tuple) -> bool:
        return t[0] == "s" or (u.get(t[1]) is not None and u.get(t[2]) is not None)

    def is_1x1(t: tuple) -> bool:
        return t[0] == "m" and u.get(t[1]) == 1 and u.get(t[2]) == 1

    def rule(node: _Node, force: bool):
        ch = [types[id(c)] for c in node.children]
        k = node.kind
        if k == "num":
            return _SCALAR
        if k == "ones":
            ones[id(node)] = ("m", u.new(), u.new())
            return ones[id(node)]
        if k == "name":
            if node.token in known:
                if node.token not in known_vars:
                    shape = known[node.token]
                    known_vars[node.token] = (_SCALAR if shape == ()
                                              else ("m", u.new(shape[0]), u.new(shape[1])))
                return known_vars[node.token]
            if node.token not in unknown:
                unknown[node.token] = (u.new(), u.new())
            return ("m",) + unknown[node.token]
        if k == "dims":
            dims = node.value if node.token != "eye" else node.value * 2
            return ("m", u.new(dims[0]), u.new(dims[1]))
        if k == "unary":
            return ch[0]
        if k == "post":
            return ch[0] if ch[0][0] == "s" else ("m", ch[0][2], ch[0][1])
        if k == "bin":
            a, b = ch
            op = node.token
            if op in ("+", "-"):
                if a[0] == "s" or b[0] == "s":
                    return b if a[0] == "s" else a
                if u.same(a[1], b[1]) and u.same(a[2], b[2]):
                    return a
                if resolved(a) and resolved(b):
                    ra, ca, rb, cb = (u.get(x) for x in (a[1], a[2], b[1], b[2]))
                    if is_1x1(a) or (ra == 1 and ca == cb) or (ca == 1 and ra == rb):
                        return b
                    return a
                if not force:
                    return _PENDING
                u.unify(a[1], b[1])
                u.unify(a[2], b[2])
                return a
            if op == "*":
                if a[0] == "s" or b[0] == "s":
                    return b if a[0] == "s" else a
                if u.same(a[2], b[1]):
                    return ("m", a[1], b[2])
                if u.get(a[2]) is not None and u.get(b[1]) is not None:
                    if is_1x1(a):
                        return b
                    if is_1x1(b):
                        return a
                    return ("m", a[1], b[2])
                u.unify(a[2], b[1])
                return ("m", a[1], b[2])
            if op == "/":
                return a
            # .* ./
            if a[0] == "s" or b[0] == "s":
                return b if a[0] == "s" and op == ".*" else (a if b[0] == "s" else b)
            u.unify(a[1], b[1])
            u.unify(a[2], b[2])
            return a
        if k == "pow":
            base = ch[0]
            if base[0] == "s" or node.token == ".^":
                return base
            if is_1x1(base):
                return _SCALAR
            u.unify(base[1], base[2])
            return base
        if k == "call":
            fname, arg = node.token, ch[0]
            if fname in _ELEMENTWISE:
                return _SCALAR if is_1x1(arg) else arg
            if fname in ("tr", "det", "logdet", "inv") and arg[0] == "m":
                u.unify(arg[1], arg[2])
            return arg if fname in ("inv", "softmax") else _SCALAR
        raise AssertionError(k)

    while id(root) not in types:
        progress = False
        first_pending = None
        for node in order:
            if id(node) in types or any(id(c) not in types for c in node.children):
                continue
            t = rule(node, force=False)
            if t is _PENDING:
                first_pending = first_pending or node
            else:
                types[id(node)] = t
                progress = True
        if not progress and first_pending is not None:
            types[id(first_pending)] = rule(first_pending, force=True)
    return unknown


# ------------------------------------------------------------------------- builder


def _mm(*args: sympy.Basic) -> MatrixExpr:
    """A matrix product as ``*`` builds it (canonical, args not evaluated further)."""
    out = MatMul(*args).doit(deep=False)
    if isinstance(out, MatAdd):   # 2*(A + B) is distributed, into an unsorted sum
        out = _ma(*out.args)
    return out


def _hadamard(a: MatrixExpr, b: MatrixExpr) -> MatrixExpr:
    """A Hadamard product, canonical: SymPy's canonicaliser needs a second pass at times
    (A.*(A.*(A.*A)) first becomes A.^2 .* A.^2)."""
    out = _hadamard_canonical(HadamardProduct(a, b))
    for _ in range(8):
        if not isinstance(out, HadamardProduct):
            break
        again = _hadamard_canonical(out)
        if again == out:
            break
        out = again
    return out


def _ma(*args: sympy.Basic) -> MatrixExpr:
    """A matrix sum as ``+`` builds it (canonical, args not evaluated further)."""
    return MatAdd(*args).doit(deep=False)


def _shape_text(v: sympy.Basic) -> str:
    if isinstance(v, MatrixExpr):
        return f"{v.shape[0]}×{v.shape[1]}"
    return "scalar"


_SUBSCRIPTS = str.maketrans("0123456789aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")


def _ones_text(dim: sympy.Expr) -> str:
    s = str(dim)
    sub = s.translate(_SUBSCRIPTS)
    if all(c in "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ" for c in sub):
        return "1" + sub
    return f"1_{s}"


def _is_scalar(v: sympy.Basic) -> bool:
    return not isinstance(v, MatrixExpr)


def _is_1x1(v: sympy.Basic) -> bool:
    return isinstance(v, MatrixExpr) and v.shape[0] == 1 and v.shape[1] == 1


def _bad_number(v: sympy.Basic) -> bool:
    return isinstance(v, sympy.Expr) and not isinstance(v, MatrixExpr) and v.has(
        sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _complex_number(v: sympy.Basic) -> bool:
    """A scalar that is not real: sqrt(-1), log(-1), (-8)^(1/3)."""
    return isinstance(v, sympy.Expr) and not isinstance(v, MatrixExpr) and (
        v.has(sympy.I) or (not v.free_symbols and v.is_extended_real is False))


class _Builder:
    def __init__(self, text: str, symbols: dict[str, sympy.Basic]):
        self.text = text
        self.symbols = symbols
        self.notes: list[Note] = []

    def src(self, node: _Node) -> str:
        s = " ".join(self.text[node.start:node.end].split())
        return s if len(s) <= 40 else s[:37] + "..."

    def desc(self, node: _Node, v: sympy.Basic) -> str:
        return f"{self.src(node)} ({_shape_text(v)})"

    def fail(self, node: _Node, message: str, kind: str = "invalid") -> ExpressionError:
        return _error(message, node.column, node.src, self.text, kind)

    def scalar(self, node: _Node, v: sympy.Basic) -> sympy.Expr:
        """``v`` as a scalar: a 1×1 matrix becomes its trace."""
        if _is_1x1(v):
            self.notes.append(Note("scalar-from-1x1", node.column,
                                   f"{self.src(node)} (1×1) used as a scalar: tr({self.src(node)})",
                                   f"{self.src(node)}（1×1）作为标量使用：tr({self.src(node)})"))
            return Trace(v)
        return v

    def build(self, order: list[_Node]) -> sympy.Basic:
        vals: dict[int, sympy.Basic] = {}
        tanhs: dict[int, int] = {}
        for node in order:
            # SymPy's tanh is exponential in its nesting: count it before building one
            tanhs[id(node)] = max((tanhs.pop(id(c)) for c in node.children), default=0) + (
                node.kind == "call" and node.token == "tanh")
            if tanhs[id(node)] > MAX_TANH_DEPTH:
                raise self.fail(node, f"tanh nested more than {MAX_TANH_DEPTH} deep: SymPy's tanh takes time "
                                      "exponential in its nesting (derive.limits.MAX_TANH_DEPTH)",
                                "limit")
            args = [vals.pop(id(c)) for c in node.children]
            try:
                v = self.one(node, args)
            except ExpressionError:
                raise
            except RecursionError:
                raise self.fail(node, f"expression nested too deeply at {node.token!r}",
                                "limit") from None
            except Exception as exc:  # SymPy ShapeError, TypeError, ValueError ...
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
                raise self.fail(node, f"{node.token!r} cannot be built: {type(exc).__name__}: {first}") \
                    from None
            if (node.kind in ("pow", "call") or node.token in ("/", "./")) and _bad_number(v):
                raise self.fail(node, f"{node.token!r} gives an undefined or infinite value "
                                      f"({self.src(node)} = {v})")
            if node.kind in ("pow", "call") and _complex_number(v):
                raise self.fail(node, f"{self.src(node)} is not a real number; complex values are not "
                                      "supported")
            if node.kind in ("num", "bin", "unary", "pow", "call"):
                self.check_size(node, v)
            self.check_defined(node, v, args)
            vals[id(node)] = v
        return vals[id(order[-1])]

    def check_size(self, node: _Node, v: sympy.Basic) -> None:
        """Refuse a number (the coefficient of ``v``) of more than MAX_NUMBER_DIGITS digits."""
        if isinstance(v, MatMul):
            coeff = v.as_coeff_mmul()[0]
        elif isinstance(v, (sympy.Mul, sympy.Add)):
            coeff = v.as_coeff_Add()[0] if isinstance(v, sympy.Add) else v.as_coeff_Mul()[0]
        else:
            coeff = v
        if isinstance(coeff, sympy.Rational) and number_bits(coeff) > MAX_NUMBER_BITS:
            raise self.fail(node, f"{self.src(node)} makes a number of "
                                  f"{digits_text(number_bits(coeff) * math.log10(2))} digits: the limit is "
                                  f"{MAX_NUMBER_DIGITS} (derive.limits.MAX_NUMBER_DIGITS)", "limit")

    def check_defined(self, node: _Node, v: sympy.Basic, args: list[sympy.Basic]) -> None:
        """Refuse ``v`` if what this node built holds an undefined constant (inv(0), 1/det(0), log(0))."""
        found = find_undefined(v, known=args)
        if found is not None:
            _, operand, phrase = found
            name = next((self.src(c) for c, a in zip(node.children, args) if a == operand), None)
            raise self.fail(node, f"{self.src(node)} is undefined: it "
                                  f"{phrase.format(name or format_expression(operand))}", "undefined")

    def one(self, node: _Node, args: list[sympy.Basic]) -> sympy.Basic:
        k = node.kind
        if k == "num":
            return node.value
        if k == "ones":
            return OneMatrix(*node.value)
        if k == "name":
            return self.symbols[node.token]
        if k == "dims":
            dims = node.value
            return {"ones": OneMatrix, "zeros": ZeroMatrix, "eye": Identity}[node.token](*dims)
        if k == "unary":
            (a,) = args
            if node.token == "+":
                return a
            return _mm(-1, a) if isinstance(a, MatrixExpr) else -a
        if k == "post":
            (a,) = args
            return Transpose(a) if isinstance(a, MatrixExpr) else a
        if k == "bin":
            return self.binary(node, *node.children, *args)
        if k == "pow":
            return self.power(node, *node.children, *args)
        if k == "call":
            return self.call(node, node.children[0], args[0])
        raise AssertionError(k)

    # ----- operators
    def binary(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
        op = node.token
        if op in ("+", "-"):
            return self.add(node, ln, rn, a, b, op == "-")
        if op == "*":
            return self.multiply(node, ln, rn, a, b)
        if op == "/":
            return self.divide(node, ln, rn, a, b)
        # .* and ./
        if _is_scalar(a) or _is_scalar(b):
            if op == ".*":
                return self.multiply(node, ln, rn, a, b)
            if _is_scalar(b):
                return self.divide(node, ln, rn, a, b)
            return _mm(a, HadamardPower(b, -1))
        if a.shape != b.shape:
            what = "Hadamard product" if op == ".*" else "Hadamard division"
            raise self.fail(node, f"{op!r} joins {self.desc(ln, a)} with {self.desc(rn, b)}: "
                                  f"{what} needs equal shapes")
        if op == "./":
            b = HadamardPower(b, -1)
        return _hadamard(a, b)

    def add(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic,
            minus: bool) -> sympy.Basic:
        if _is_scalar(a) and _is_scalar(b):
            return a - b if minus else a + b
        if isinstance(a, MatrixExpr) and isinstance(b, MatrixExpr) and a.shape == b.shape:
            pass
        elif isinstance(b, MatrixExpr) and (_is_scalar(a) or _is_1x1(a)):
            a = self.broadcast_scalar(ln, self.scalar(ln, a), b.shape)
        elif isinstance(a, MatrixExpr) and (_is_scalar(b) or _is_1x1(b)):
            b = self.broadcast_scalar(rn, self.scalar(rn, b), a.shape)
        else:
            a2 = self.broadcast(ln, a, b.shape)
            b2 = self.broadcast(rn, b, a.shape)
            if a2 is None and b2 is None:
                raise self.fail(node, f"{node.token!r} joins {self.desc(ln, a)} with {self.desc(rn, b)}: "
                                      "a sum needs equal shapes (or a 1×m row, n×1 column or "
                                      "scalar to broadcast)")
            a, b = a2 if a2 is not None else a, b2 if b2 is not None else b
        if minus:
            b = _mm(-1, b)
        return _ma(a, b)

    def broadcast_scalar(self, node: _Node, c: sympy.Expr, shape: tuple) -> MatrixExpr:
        r, k = shape
        self.notes.append(Note("broadcast-scalar", node.column,
                               f"{self.src(node)} (scalar) broadcast to {r}×{k} as "
                               f"{self.src(node)}·{_ones_text(r)}{_ones_text(k)}ᵀ",
                               f"{self.src(node)}（标量）广播为 {r}×{k} 矩阵 "
                               f"{self.src(node)}·{_ones_text(r)}{_ones_text(k)}ᵀ"))
        return _mm(c, OneMatrix(r, k))

    def broadcast(self, node: _Node, v: MatrixExpr, shape: tuple) -> MatrixExpr | None:
        """``v`` (a row or column) broadcast to ``shape``, or None where it does not fit."""
        (r, c), (R, C) = v.shape, shape
        if r == 1 and c == C and R != 1:
            self.notes.append(Note("broadcast-row", node.column,
                                   f"{self.src(node)} (1×{c}) broadcast over the {R} rows as "
                                   f"{_ones_text(R)}·{self.src(node)}",
                                   f"{self.src(node)}（1×{c}）沿 {R} 行广播为 {_ones_text(R)}·{self.src(node)}"))
            return _mm(OneMatrix(R, 1), v)
        if c == 1 and r == R and C != 1:
            self.notes.append(Note("broadcast-column", node.column,
                                   f"{self.src(node)} ({r}×1) broadcast over the {C} columns as "
                                   f"{self.src(node)}·{_ones_text(C)}ᵀ",
                                   f"{self.src(node)}（{r}×1）沿 {C} 列广播为 {self.src(node)}·{_ones_text(C)}ᵀ"))
            return _mm(v, OneMatrix(1, C))
        return None

    def multiply(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
        if _is_scalar(a) and _is_scalar(b):
            return a * b
        if _is_scalar(a) or _is_scalar(b):
            return _mm(a, b)
        if a.shape[1] == b.shape[0]:
            return _mm(a, b)
        if _is_1x1(a):
            return _mm(self.scalar(ln, a), b)
        if _is_1x1(b):
            return _mm(self.scalar(rn, b), a)
        what = "the product" if node.implicit else "'*'"
        raise self.fail(node, f"{what} joins {self.desc(ln, a)} with {self.desc(rn, b)}: a matrix product "
                              f"needs the columns of the left ({a.shape[1]}) to equal the rows of "
                              f"the right ({b.shape[0]})")

    def divide(self, node: _Node, ln: _Node, rn: _Node, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
        if isinstance(b, MatrixExpr) and not _is_1x1(b):
            raise self.fail(node, f"{node.token!r} divides {self.src(ln)} by {self.desc(rn, b)}: only "
                                  "division by a scalar is allowed (use './' for elementwise "
                                  "division, or inv())")
        b = self.scalar(rn, b)
        if b == 0:
            raise self.fail(node, f"{node.token!r} divides {self.src(ln)} by zero")
        if isinstance(a, MatrixExpr):
            return _mm(sympy.Pow(b, -1), a)
        return a / b

    def bounded(self, node: _Node, base: sympy.Basic, e: sympy.Basic) -> None:
        """Refuse a power that would compute a huge number: SymPy evaluates 3^10000 at once and
        distributes (2c)^N into 2^N c^N."""
        digits = power_digits(base, e)
        if digits is not None:
            raise self.fail(node, f"{self.src(node)} would make a number of about {digits_text(digits)} "
                                  f"digits: the limit is {MAX_NUMBER_DIGITS} (derive.limits.MAX_NUMBER_DIGITS)",
                            "limit")

    def scalar_power(self, node: _Node, base: sympy.Expr, e: sympy.Expr) -> sympy.Expr:
        if base.is_Number and e.is_Number and base == 0 and e.is_negative:
            raise self.fail(node, f"{node.token!r} raises zero to a negative power")
        self.bounded(node, base, e)
        return sympy.Pow(base, e)

    def power(self, node: _Node, bn: _Node, en: _Node, base: sympy.Basic, e: sympy.Basic) -> sympy.Basic:
        op = node.token
        if isinstance(e, MatrixExpr) and not _is_1x1(e):
            raise self.fail(node, f"{op!r} has the exponent {self.desc(en, e)}: an exponent must "
                                  "be a scalar")
        e = self.scalar(en, e)
        if _is_scalar(base):
            return self.scalar_power(node, base, e)
        if op == ".^":
            self.bounded(node, base, e)
            return HadamardPower(base, e)
        if _is_1x1(base) and not isinstance(e, sympy.Integer):
            return self.scalar_power(node, self.scalar(bn, base), e)
        raised = f"'^' raises {self.desc(bn, base)} to {self.src(en)}"
        if base.shape[0] != base.shape[1]:
            raise self.fail(node, f"{raised}: a matrix power needs a square matrix (for the power of "
                                  f"each entry write {self.src(bn)}.^{self.src(en)})")
        if not isinstance(e, sympy.Integer):
            if e.is_Number:
                why = ("matrix square roots and other non-integer matrix powers are not supported"
                       if e.is_real else "a matrix power needs an integer exponent")
            else:
                why = ("symbolic matrix powers are not supported yet: the exponent must be an integer "
                       "number such as 2 or -1")
            raise self.fail(node, f"{raised}: {why} (.^ is a different function: the power of each entry)")
        self.bounded(node, base, e)
        self.check_defined(node, MatPow(base, e), [base])
        return MatPow(base, e).doit(deep=False)

    def call(self, node: _Node, an: _Node, a: sympy.Basic) -> sympy.Basic:
        fname = node.token
        if fname in _ELEMENTWISE:
            fn = _ELEMENTWISE[fname]
            if _is_scalar(a) or _is_1x1(a):
                return fn(self.scalar(an, a))
            if fname in _MATRIX_FUNCTION_NAMES and a.shape[0] == a.shape[1]:
                en, zh = _MATRIX_FUNCTION_NAMES[fname]
                call = f"{fname}({self.src(an)})"
                self.notes.append(Note("elementwise-function", node.column,
                                       f"{call} is the elementwise {en} (of each entry), not the matrix {en}",
                                       f"{call} 是逐元素{zh}（对每个元素），不是矩阵{zh}"))
            return _MATRIX_ELEMENTWISE[fname](a)
        if fname == "sqrt":
            if isinstance(a, MatrixExpr) and not _is_1x1(a):
                raise self.fail(node, f"'sqrt' takes a scalar, got {self.desc(an, a)}: the matrix square "
                                      f"root is not supported (for the square root of each entry, a "
                                      f"different function, write {self.src(an)}.^0.5)")
            return sympy.sqrt(self.scalar(an, a))
        if fname == "softmax":   # row-wise, as the tool prints it: exp(Z) ⊙ [(exp(Z)𝟏ₖ)^∘−1 𝟏ₖᵀ]
            if not isinstance(a, MatrixExpr):
                raise self.fail(node, f"'softmax' takes a matrix (it normalises each row), got {self.desc(an, a)}")
            return softmax_rows(a)
        if fname == "norm2":
            if _is_scalar(a):
                raise self.fail(node, f"'norm2' takes a matrix, got {self.desc(an, a)}")
            return sympy.sqrt(frobenius_sq(a))
        if fname == "sum":
            if _is_scalar(a):
                return a
            if _is_1x1(a):
                return Trace(a)
            r, c = a.shape
            factors = ([OneMatrix(1, r)] if r != 1 else []) + [a] + ([OneMatrix(c, 1)] if c != 1 else [])
            return Trace(_mm(*factors))
        # tr det logdet inv
        if _is_scalar(a):
            return {"tr": a, "det": a, "logdet": sympy.log(a), "inv": sympy.Pow(a, -1)}[fname]
        if a.shape[0] != a.shape[1]:
            raise self.fail(node, f"{fname!r} needs a square matrix, got {self.desc(an, a)}")
        if fname == "tr":
            return Trace(a)
        if fname == "det":
            return Determinant(a)
        if fname == "logdet":
            return sympy.log(Determinant(a))
        return Inverse(a)


# ----------------------------------------------------------------------- interface


def _chain(fn: object) -> list[str] | None:
    """The names f, g, … where ``fn`` is ``Lambda(x, f(g(…(x))))`` over known functions."""
    if not isinstance(fn, Lambda) or len(fn.variables) != 1:
        return None
    names, body = [], fn.expr
    while isinstance(body, sympy.Function) and function_record(type(body)) and len(body.args) == 1:
        names.append(function_record(type(body)).name)
        body = body.args[0]
    return names if names and body == fn.variables[0] else None


def _split_composed(e: sympy.Basic) -> sympy.Basic:
    """``e`` with elementwise compositions σ∘σ (made by SymPy's canonicaliser, with a
    fresh Dummy) written as nested applications of the canonical helpers."""
    def composed(x: sympy.Basic) -> bool:
        names = _chain(getattr(x, "function", None))
        return names is not None and (
            len(names) > 1 or x.function != ew.canonical_lambda(_ELEMENTWISE[names[0]]))

    if not any(isinstance(x, ElementwiseApplyFunction) and composed(x) for x in sympy.preorder_traversal(e)):
        return e

    def fix(x: sympy.Basic) -> sympy.Basic:
        if isinstance(x, ElementwiseApplyFunction):
            inner = fix(x.expr)
            names = _chain(x.function)
            if names is None:
                return ElementwiseApplyFunction(x.function, inner)
            for name in reversed(names):
                inner = _MATRIX_ELEMENTWISE[name](inner)
            return inner
        if not x.args or isinstance(x, (Lambda, MatrixSymbol)):
            return x
        args = [fix(a) for a in x.args]
        return x if all(a is b for a, b in zip(args, x.args)) else x.func(*args)

    return fix(e)


def _normalise_shapes(shapes: Mapping[str, Sequence[Dim]] | None) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for name, shape in (shapes or {}).items():
        if not isinstance(name, str) or not _IDENT.fullmatch(name):
            raise ValueError(f"shapes: {name!r} is not a name (letters, digits, underscore)")
        if name in _functions():
            raise ValueError(f"shapes: {name!r} is a function name")
        shape = tuple(shape)
        if shape == ():
            out[name] = ()
            continue
        if len(shape) != 2:
            raise ValueError(f"shapes: {name} must be (rows, cols) or () for a scalar, got {shape!r}")
        out[name] = tuple(_dim(v, name) for v in shape)
    return out


def _dim(value: Dim, name: str) -> sympy.Expr:
    if isinstance(value, str):
        if not _IDENT.fullmatch(value):
            raise ValueError(f"shapes: dimension {value!r} of {name} is not a name")
        return _dim_symbol(value)
    if isinstance(value, bool):
        raise ValueError(f"shapes: dimension {value!r} of {name} is not a dimension")
    if isinstance(value, (int, sympy.Integer)) and int(value) > 0:
        return sympy.Integer(value)
    if isinstance(value, sympy.Symbol):
        return value
    raise ValueError(f"shapes: dimension {value!r} of {name} must be a positive integer or a name")


def parse(text: str, shapes: Mapping[str, Sequence[Dim]] | None = None, *,
          infer: bool = True, syntax: str = "python") -> ParsedExpression:
    """Parse ``text`` into a :class:`ParsedExpression` (expression, symbols, notes).

    ``shapes`` maps names to ``(rows, cols)`` or ``()`` (a scalar).  With ``infer``
    (the default) names missing from ``shapes`` get shapes inferred from their use;
    without it they are errors.  Raises :class:`ExpressionError` for any problem
    with the text, and ``ValueError`` for a malformed ``shapes``.  ``syntax`` is how
    the error for a name without a shape says to declare one: ``"python"``
    (``shapes={"c": ()}``) or ``"cli"`` (``--shape c=``).

    >>> p = parse("X*W + b", {"X": ("n", "d"), "W": ("d", "m"), "b": (1, "m")})
    >>> p.expr
    X*W + 1*b
    >>> p.shape
    (n, m)
    >>> print(p.notes[0])
    b (1×m) broadcast over the n rows as 1ₙ·b
    >>> q = parse("X*W + b", {"X": ("n", "d"), "b": (1, "m")})
    >>> q.inferred, q.symbols["W"].shape
    (('W',), (d, m))
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionLimitError(f"expression longer than {MAX_LENGTH} characters "
                                   "(derive.limits.MAX_LENGTH)", MAX_LENGTH + 1, text[MAX_LENGTH], text)
    known = _normalise_shapes(shapes)
    dims = {x.name: x for shape in known.values() for x in shape if isinstance(x, sympy.Symbol)}
    parser = _Parser(text, tuple(known), tuple(dims))
    root = parser.parse()
    order = _postorder(root)

    u = _Unifier()
    dim_scalars = {name: () for name in dims if name not in known}
    ones: dict[int, tuple] = {}
    unknown = _infer(root, order, {**dim_scalars, **known}, u, ones)
    for node in order:
        if node.kind == "ones":
            r, c = (u.get(v) for v in ones[id(node)][1:])
            if r is None or c is None:
                raise ExpressionError(f"the shape of {node.src!r} cannot be inferred: write ones(rows, cols) "
                                      "or 𝟏ₙ for a column", node.column, node.src, text)
            node.value = (r, c)
    first_use: dict[str, _Node] = {}
    for node in sorted((n for n in order if n.kind == "name"), key=lambda n: n.pos):
        first_use.setdefault(node.token, node)
    known_list = ", ".join(known) if known else "none (no shapes were given)"
    symbols: dict[str, sympy.Basic] = {}
    used_dims: dict[str, sympy.Symbol] = {}
    notes: list[Note] = []
    for name, node in first_use.items():
        if name in dim_scalars:
            used_dims[name] = dims[name]
            continue
        if name in known:
            shape = known[name]
            symbols[name] = sympy.Symbol(name) if shape == () else MatrixSymbol(name, *shape)
            continue
        r, c = (u.get(v) for v in unknown[name])
        if not infer:
            raise ExpressionError(f"unknown name {name!r}; known names: {known_list}",
                                  node.column, node.src, text, "unknown-name")
        if r is None or c is None:
            partial = f"{'?' if r is None else r}×{'?' if c is None else c}"
            raise ExpressionError(
                f"unknown name {name!r}: its shape cannot be inferred (only {partial}); "
                f"{_declare_hint(name, r, c, syntax)}; known names: {known_list}", node.column, node.src, text,
                "unknown-name")
        symbols[name] = MatrixSymbol(name, r, c)
        notes.append(Note("inferred-shape", node.column,
                          f"{name} is not in shapes: inferred {r}×{c} from its use",
                          f"{name} 未在 shapes 中给出：由其用法推断为 {r}×{c}"))
    builder = _Builder(text, {**used_dims, **symbols})
    expr = _split_composed(builder.build(order))
    for sym in symbols.values():
        for x in getattr(sym, "shape", ()):
            if isinstance(x, sympy.Symbol):
                used_dims.setdefault(x.name, x)
    return ParsedExpression(
        text=text, expr=expr, symbols=symbols, dims=used_dims,
        shapes={k: (() if isinstance(v, sympy.Symbol) else tuple(v.shape)) for k, v in symbols.items()},
        notes=tuple(parser.notes + notes + builder.notes),
        inferred=tuple(k for k in symbols if k not in known))


def _declare_hint(name: str, rows: sympy.Expr | None, cols: sympy.Expr | None, syntax: str) -> str:
    """How to declare the shape of ``name``, in Python or on the command line.

    >>> _declare_hint("c", None, None, "cli")
    'declare it with --shape c=ROWS,COLS, or --shape c= for a scalar'
    >>> print(_declare_hint("x", sympy.Symbol("n"), None, "python"))
    declare it in shapes: shapes={"x": ("n", COLS)}, or shapes={"x": ()} for a scalar
    """
    if syntax == "cli":
        dims = ",".join(["ROWS", "COLS"][i] if d is None else str(d) for i, d in enumerate((rows, cols)))
        return f"declare it with --shape {name}={dims}, or --shape {name}= for a scalar"
    if syntax != "python":
        raise ValueError(f"syntax must be 'python' or 'cli', got {syntax!r}")
    dims = ", ".join(["ROWS", "COLS"][i] if d is None else (str(d) if d.is_Integer else f'"{d}"')
                     for i, d in enumerate((rows, cols)))
    return f'declare it in shapes: shapes={{"{name}": ({dims})}}, or shapes={{"{name}": ()}} for a scalar'


def parse_expression(text: str, shapes: Mapping[str, Sequence[Dim]] | None = None, *,
                     infer: bool = True) -> sympy.Basic:
    """The SymPy expression for ``text``: ``parse(text, shapes).expr``.

    >>> shapes = {"X": ("n", "d"), "Y": ("n", "k"), "W1": ("d", "m"), "b1": (1, "m"),
    ...           "W2": ("m", "k"), "b2": (1, "k")}
    >>> e = parse_expression("norm2(Y - (sigmoid(X*W1 + b1)*W2 + b2))^2", shapes)
    >>> type(e).__name__, format_expression(e)
    ('Trace', 'norm2(Y - sigmoid(X*W1 + b1)*W2 - b2)^2')
    >>> parse_expression("tr(A^-1) + c*logdet(A)", {"A": ("n", "n"), "c": ()})
    c*log(Determinant(A)) + Trace(A**(-1))
    """
    return parse(text, shapes, infer=infer).expr


# ------------------------------------------------------------------------- printer

_ADD, _MUL, _UNARY, _POW, _POST, _ATOM = range(1, 7)


def format_expression(expr: sympy.Basic) -> str:
    """Write ``expr`` in the expression language, so that parsing it gives ``expr`` back.

    For every expression :func:`parse_expression` returns, parsing the text again (with
    the same shapes) gives an ``==`` expression.  Implicit broadcasts are written
    implicitly (``X*W + b``); objects with no form in the language raise ``ValueError``.

    >>> shapes = {"X": ("n", "d"), "W": ("d", "m"), "b": (1, "m")}
    >>> e = parse_expression("norm2(X*W + b - 1)^2 / 2", shapes)
    >>> format_expression(e)
    'norm2(X*W - 1 + b)^2/2'
    >>> format_expression(parse_expression("(X*W)' ./ 2", shapes))
    "(1/2)*(X*W)'"
    >>> parse_expression(format_expression(e), shapes) == e
    True
    """
    return _fmt(sympy.sympify(expr) if not isinstance(expr, sympy.Basic) else expr)[0]


def _wrap(e: sympy.Basic, level: int) -> str:
    text, got = _fmt(e)
    return text if got >= level else f"({text})"


def _exponent(e: sympy.Basic) -> str:
    text, level = _fmt(e)
    if level < _POW or (e.is_Number and (e.is_negative or not e.is_Integer)):
        return f"({text})"
    return text


def _negative(e: sympy.Basic) -> bool:
    if isinstance(e, MatrixExpr):
        if isinstance(e, MatMul):
            coeff = e.as_coeff_matrices()[0]
            return coeff.is_Number and coeff.is_negative
        return False
    if e.is_Number:
        return bool(e.is_negative)
    if isinstance(e, sympy.Mul):
        coeff = e.as_coeff_Mul()[0]
        return coeff.is_Number and bool(coeff.is_negative)
    return False


def _negate(e: sympy.Basic) -> sympy.Basic:
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        return _mm(-coeff, *mats)
    return -e


def _frobenius_arg(e: sympy.Basic) -> MatrixExpr | None:
    """M where ``e`` is ``Trace(MatMul(Transpose(M), M))``."""
    if isinstance(e, Trace) and isinstance(e.arg, MatMul) and len(e.arg.args) == 2:
        t, m = e.arg.args
        if isinstance(t, Transpose) and t.arg == m:
            return m
    return None


def _sum_arg(e: Trace) -> MatrixExpr | None:
    """A where ``e`` is ``Trace(1ᵀ A 1)`` as ``sum`` builds it."""
    if not isinstance(e.arg, MatMul):
        return None
    coeff, mats = e.arg.as_coeff_matrices()
    if (len(mats) >= 3 and isinstance(mats[0], OneMatrix) and isinstance(mats[-1], OneMatrix)
            and mats[0].shape[0] == 1 and mats[-1].shape[1] == 1
            and mats[0].shape[1] != 1 and mats[-1].shape[0] != 1):
        return _mm(coeff, *mats[1:-1])
    return None


def _positive_first(terms: list[sympy.Basic]) -> list[sympy.Basic]:
    for i, term in enumerate(terms):
        if not _negative(term):
            return [term] + terms[:i] + terms[i + 1:]
    return terms


def _terms(e: sympy.Basic, terms: list[sympy.Basic]) -> tuple[str, int]:
    parts: list[str] = []
    for i, term in enumerate(terms):
        if i == 0:
            parts.append(_wrap(term, _ADD))
        elif _negative(term):
            parts.append(f" - {_wrap(_negate(term), _MUL)}")
        else:
            parts.append(f" + {_wrap(term, _MUL)}")
    return "".join(parts), _ADD


def _implicit(term: MatrixExpr, shape: tuple) -> sympy.Basic | None:
    """What to write for a broadcast ``term`` of a sum of ``shape``, or None."""
    R, C = shape
    if isinstance(term, OneMatrix) and term.shape == shape and shape != (1, 1):
        return sympy.Integer(1)
    if not isinstance(term, MatMul) or term.shape != shape:
        return None
    coeff, mats = term.as_coeff_matrices()
    if len(mats) == 1 and isinstance(mats[0], OneMatrix) and shape != (1, 1):
        return coeff
    if len(mats) >= 2 and isinstance(mats[0], OneMatrix) and mats[0].shape == (R, 1) and R != 1 and C != 1:
        return _mm(coeff, *mats[1:])
    if len(mats) >= 2 and isinstance(mats[-1], OneMatrix) and mats[-1].shape == (1, C) and C != 1 and R != 1:
        return _mm(coeff, *mats[:-1])
    return None


def _fmt_mul(e: sympy.Mul) -> tuple[str, int]:
    """A scalar product.  SymPy distributes a number over a sum in a product of exactly
    those two (``2*(c + 1)`` is ``2*c + 2``), so where a factor is a sum the text keeps
    every partial product clear of that: ``(c + 1)*t*2``, ``1/(c + t)/2``, ``-((c + 1)/t)``.
    """
    coeff, rest = e.as_coeff_Mul()
    num: list[sympy.Basic] = []
    den: list[sympy.Basic] = []
    for f in sympy.Mul.make_args(rest):
        if isinstance(f, sympy.Pow) and f.exp.is_Number and f.exp.is_negative:
            den.append(sympy.Pow(f.base, -f.exp))
        else:
            num.append(f)
    negative = bool(coeff.is_negative)
    coeff = -coeff if negative else coeff
    p, q = (sympy.Integer(coeff.p), sympy.Integer(coeff.q)) if isinstance(coeff, sympy.Rational) \
        else (coeff, sympy.Integer(1))
    has_sum = any(isinstance(f, sympy.Add) for f in num + den)
    if has_sum:
        text = "*".join(_wrap(f, _UNARY) for f in num) if num else "1"
        text += "".join(f"/{_wrap(f, _UNARY)}" for f in den)
        text += (f"*{_wrap(p, _UNARY)}" if p != 1 else "") + (f"/{q}" if q != 1 else "")
    else:
        front = ([p] if p != 1 else []) + num
        text = "*".join(_wrap(f, _UNARY) for f in front) if front else "1"
        below = ([q] if q != 1 else []) + den
        if below:
            text += "/" + (_wrap(below[0], _UNARY) if len(below) == 1 else
                           f"({'*'.join(_wrap(f, _UNARY) for f in below)})")
    single = len(num) + (p != 1) == 1 and not den and q == 1
    level = _fmt(num[0] if num else p)[1] if single else _MUL
    if not negative:
        return text, level
    if has_sum:
        return f"-({text})", _UNARY
    return (f"-{text}", _MUL if level == _MUL else _UNARY) if level >= _MUL else (f"-({text})", _UNARY)


def _fmt_matadd(e: MatAdd) -> tuple[str, int]:
    full, implicit = [], []
    for term in e.args:
        content = _implicit(term, e.shape)
        (implicit if content is not None else full).append(content if content is not None else term)
    if not full:   # nothing to broadcast against: write the ones explicitly
        full, implicit = list(e.args), []
    return _terms(e, _positive_first(full) + implicit)


def _fmt_matmul(e: MatMul) -> tuple[str, int]:
    coeff, mats = e.as_coeff_matrices()
    body = "*".join(_wrap(m, _UNARY) for m in mats)
    if coeff.is_Rational and coeff != 1 and isinstance(mats[0], MatAdd) and len(mats) > 1:
        body = f"({body})"   # 2*(A + B)*C, not (2*(A + B))*C, which would distribute
    if coeff == 1:
        return body, (_MUL if len(mats) > 1 else _fmt(mats[0])[1])
    if coeff == -1:
        return f"-{body}", (_UNARY if len(mats) == 1 else _MUL)
    if coeff.is_Rational and not coeff.is_Integer:
        return f"({_fmt(coeff)[0]})*{body}", _MUL
    return f"{_wrap(coeff, _MUL)}*{body}", _MUL


def _fmt_pow(e: sympy.Pow) -> tuple[str, int]:
    base, ex = e.args
    m = _frobenius_arg(base)
    if m is not None and (2 * ex).is_Integer:
        n = 2 * ex
        if n == 1:
            return f"norm2({_fmt(m)[0]})", _POST
        return f"norm2({_fmt(m)[0]})^{_exponent(n)}", _POW
    if ex.is_Number and ex.is_negative:
        return f"1/{_wrap(sympy.Pow(base, -ex), _UNARY)}", _MUL
    if ex == sympy.S.Half:
        return f"sqrt({_fmt(base)[0]})", _POST
    return f"{_wrap(base, _POST)}^{_exponent(ex)}", _POW


def _fmt_function(e: sympy.Function) -> tuple[str, int]:
    if isinstance(e, sympy.log) and isinstance(e.args[0], Determinant):
        return f"logdet({_fmt(e.args[0].arg)[0]})", _POST
    record = function_record(type(e))
    if record is not None and len(e.args) == 1:
        return f"{record.name}({_fmt(e.args[0])[0]})", _POST
    return _no_form(e)


def _fmt_trace(e: Trace) -> tuple[str, int]:
    m = _frobenius_arg(e)
    if m is not None:
        return f"norm2({_fmt(m)[0]})^2", _POW
    s = _sum_arg(e)
    if s is not None:
        return f"sum({_fmt(s)[0]})", _POST
    return f"tr({_fmt(e.arg)[0]})", _POST


def _fmt_hadamard(e: HadamardProduct) -> tuple[str, int]:
    plain = [f for f in e.args if not (isinstance(f, HadamardPower) and f.exp == -1)]
    inverse = [f.base for f in e.args if isinstance(f, HadamardPower) and f.exp == -1]
    if not plain:
        plain, inverse = list(e.args), []
    text = " .* ".join(_wrap(f, _UNARY) for f in plain)
    text += "".join(f" ./ {_wrap(f, _UNARY)}" for f in inverse)
    return text, _MUL


def _fmt_elementwise(e: ElementwiseApplyFunction) -> tuple[str, int]:
    record = function_record(elementwise_function(e))
    if record is not None:
        return f"{record.name}({_fmt(e.expr)[0]})", _POST
    return _no_form(e)


def _no_form(e: sympy.Basic) -> tuple[str, int]:
    raise ValueError(f"format_expression: {type(e).__name__} ({e}) has no form in the expression language")


def _signed(e: sympy.Number) -> int:
    return _UNARY if e < 0 else _ATOM


# How each SymPy class is written in the language, looked up along type(e).__mro__.
_FORMATTERS: dict[type, Callable[..., tuple[str, int]]] = {
    sympy.Integer:            lambda e: (str(e), _signed(e)),
    sympy.Rational:           lambda e: (f"{e.p}/{e.q}", _MUL),
    sympy.Float:              lambda e: (str(e), _signed(e)),
    sympy.core.numbers.Exp1:  lambda e: ("exp(1)", _POST),
    sympy.core.numbers.ImaginaryUnit: lambda e: ("(-1)^(1/2)", _POW),
    MatrixSymbol:             lambda e: (e.name, _ATOM),
    Dummy:                    _no_form,
    sympy.Symbol:             lambda e: (e.name, _ATOM),
    OneMatrix:                lambda e: (f"ones({e.shape[0]}, {e.shape[1]})", _POST),
    ZeroMatrix:               lambda e: (f"zeros({e.shape[0]}, {e.shape[1]})", _POST),
    Identity:                 lambda e: (f"eye({e.shape[0]})", _POST),
    MatAdd:                   _fmt_matadd,
    MatMul:                   _fmt_matmul,
    sympy.Add:                lambda e: _terms(e, _positive_first(list(e.args))),
    sympy.Mul:                _fmt_mul,
    sympy.Pow:                _fmt_pow,
    sympy.Function:           _fmt_function,
    Trace:                    _fmt_trace,
    Determinant:              lambda e: (f"det({_fmt(e.arg)[0]})", _POST),
    Inverse:                  lambda e: (f"inv({_fmt(e.arg)[0]})", _POST),
    MatPow:                   lambda e: (f"{_wrap(e.base, _POST)}^{_exponent(e.exp)}", _POW),
    Transpose:                lambda e: (f"{_wrap(e.arg, _POST)}'", _POST),
    HadamardPower:            lambda e: (f"{_wrap(e.base, _POST)}.^{_exponent(e.exp)}", _POW),
    HadamardProduct:          _fmt_hadamard,
    ElementwiseApplyFunction: _fmt_elementwise,
}


def _fmt(e: sympy.Basic) -> tuple[str, int]:
    """(text, precedence level) of ``e``."""
    for cls in type(e).__mro__:
        if cls in _FORMATTERS:
            return _FORMATTERS[cls](e)
    return _no_form(e)


# --------------------------------------------------------------------- comparison


def _canonical(e: sympy.Basic, bound: dict[sympy.Basic, str]) -> str:
    if isinstance(e, Lambda):
        inner = dict(bound)
        for i, v in enumerate(e.variables):
            inner[v] = f"#{len(bound)}.{i}"
        return f"Lambda({len(e.variables)}, {_canonical(e.expr, inner)})"
    if e in bound:
        return bound[e]
    if not e.args:
        return sympy.srepr(e)
    parts = [_canonical(a, bound) for a in e.args]
    if isinstance(e, (sympy.Add, sympy.Mul, MatAdd, HadamardProduct)):
        parts.sort()
    return f"{type(e).__name__}({', '.join(parts)})"


def same_structure(a: sympy.Basic, b: sympy.Basic) -> bool:
    """Whether ``a`` and ``b`` are the same expression up to the names of bound variables
    and the order of the terms of sums and the factors of commutative products.

    ``X.applyfunc(sympy.exp)`` makes a fresh ``Dummy`` each time, so it is not ``==`` to
    ``derive.elementwise.exp(X)``; it has the same structure.

    >>> import sympy
    >>> X = sympy.MatrixSymbol("X", 3, 2)
    >>> e = parse_expression("exp(X)", {"X": (3, 2)})
    >>> e == X.applyfunc(sympy.exp), same_structure(e, X.applyfunc(sympy.exp))
    (False, True)
    """
    return _canonical(a, {}) == _canonical(b, {})
