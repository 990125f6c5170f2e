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
    unary      := ("-" | "+") unary | power
    power      := postfix  (("^" | ".^") unary)?
    postfix    := primary  ("'" | ".T")*
    primary    := NUMBER | NAME | NAME "(" [expression ("," expression)*] ")"
                | "(" expression ")"
    NAME       := [A-Za-z_][A-Za-z0-9_]*
    NUMBER     := ([0-9]+ ("." [0-9]+)? | "." [0-9]+) ([eE] [+-]? [0-9]+)?

So ``-a^2`` is ``-(a^2)``, ``a^-1`` is allowed, ``a^b^c`` is ``a^(b^c)``, ``2*-x`` is
``2*(-x)``, ``-X*W`` is ``(-X)*W`` and ``X'*W`` is ``(X')*W``.  Numbers are exact
(``0.5`` is ``Rational(1, 2)``).  Whitespace (spaces, tabs, newlines) separates tokens
and counts towards columns; there is no implicit multiplication.

Operators:

* ``+ -``: sums of equal shapes, with broadcasting: a 1×m row with an n×m matrix becomes
  ``OneMatrix(n, 1)*b``, an n×1 column with an n×m matrix ``b*OneMatrix(1, m)``, a scalar
  (or 1×1 matrix) ``c*OneMatrix(n, m)``; each broadcast is recorded as a :class:`Note`.
* ``*``: matrix product; a scalar times a matrix is a scalar multiple, and so is a 1×1
  matrix times a matrix it does not conform with (through ``Trace`` of the 1×1 factor).
* ``/``: division by a scalar (or 1×1) only.  ``.*`` and ``./``: Hadamard product and
  division of equal shapes (a scalar operand makes them ``*`` and ``/``).
* ``^``: scalar power, or an integer power of a square matrix (``A^-1`` is ``Inverse``).
  ``.^``: Hadamard power by a scalar.  Postfix ``'`` and ``.T``: transpose.

Functions: ``tr`` (Trace), ``det`` (Determinant), ``logdet`` (log of Determinant),
``inv`` (Inverse), ``norm2`` (``sqrt(frobenius_sq(A))``, so ``norm2(A)^2`` is
``tr(AᵀA)``), ``sum`` (``tr(1ᵀ A 1)``, a scalar), ``sqrt`` (scalars), the elementwise
``sigmoid tanh relu softplus exp log step`` (matrices elementwise, scalars directly) and
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

import re
from dataclasses import dataclass, field
from fractions import Fraction
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
from derive.networks import frobenius_sq
from derive.undefined import find_undefined

__all__ = [
    "FUNCTIONS",
    "ExpressionError",
    "Note",
    "ParsedExpression",
    "format_expression",
    "parse",
    "parse_expression",
    "same_structure",
]

Dim = int | str | sympy.Expr
Shape = tuple[()] | tuple[Dim, Dim]

MAX_LENGTH = 2_000       # characters (SymPy's canonicalisers are quadratic in a flat sum)
MAX_NESTING = 100        # parser recursion and syntax-tree depth
MAX_NUMBER_BITS = 20_000  # largest exact number a literal or a numeric power may make

_DIM_FUNCTIONS = {"ones": 2, "zeros": 2, "eye": 1}
_MATRIX_FUNCTIONS = {"tr": 1, "det": 1, "logdet": 1, "inv": 1, "norm2": 1, "sum": 1, "sqrt": 1}


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


@dataclass(frozen=True)
class Note:
    """Something the parser did that a derivation may want to say.

    ``kind`` is one of ``"broadcast-row"``, ``"broadcast-column"``,
    ``"broadcast-scalar"``, ``"scalar-from-1x1"`` and ``"inferred-shape"``.
    """

    kind: str
    column: int
    text: str

    def __str__(self) -> str:
        return self.text


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
    kind: str   # "num", "name", "op", "end"
    text: str
    pos: int    # 0-based offset

    @property
    def column(self) -> int:
        return self.pos + 1


_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SINGLE = frozenset("+-*/^'(),")


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens on demand, so that errors come out left to right."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
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
        else:
            raise ExpressionError(f"unexpected character {ch!r}", i + 1, ch, text)
    yield _Token("end", "", n)


def _number(tok: _Token, text: str) -> sympy.Rational:
    mantissa, _, exponent = tok.text.lower().partition("e")
    digits = len(mantissa.replace(".", "").lstrip("0"))
    if digits > 300 or (exponent and abs(int(exponent)) > 300):
        raise ExpressionError(f"number {tok.text!r} is too large or too long", tok.column, tok.text, text)
    f = Fraction(tok.text)
    return sympy.Rational(f.numerator, f.denominator)


# --------------------------------------------------------------------------- parser


@dataclass(eq=False)
class _Node:
    kind: str          # num name unary bin pow post call dims
    token: str         # operator, name, function name or number text
    pos: int           # 0-based offset of the token
    start: int         # source span [start, end)
    end: int
    children: tuple[_Node, ...] = ()
    value: object = None
    depth: int = 1

    @property
    def column(self) -> int:
        return self.pos + 1


class _Parser:
    def __init__(self, text: str, names: Sequence[str] = ()):
        self.text = text
        self.names = frozenset(names)
        self.stream = _tokenize(text)
        self.tokens: list[_Token] = []
        self.i = 0
        self.level = 0

    # helpers
    @property
    def tok(self) -> _Token:
        while len(self.tokens) <= self.i:
            self.tokens.append(next(self.stream))
        return self.tokens[self.i]

    def error(self, message: str, tok: _Token) -> ExpressionError:
        return ExpressionError(message, tok.column, tok.text, self.text)

    def node(self, kind: str, tok: _Token, start: int, end: int,
             children: tuple[_Node, ...] = (), value: object = None) -> _Node:
        if kind == "bin":
            depth = max(children[0].depth, children[1].depth + 1)
        else:
            depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_NESTING:
            raise self.error(f"expression nested too deeply (more than {MAX_NESTING} levels) "
                             f"at {tok.text!r}", tok)
        return _Node(kind, tok.text, tok.pos, start, end, children, value, depth)

    def describe(self, tok: _Token) -> str:
        return {"num": "number", "name": "name"}.get(tok.kind, "") + (" " if tok.kind != "op" else "") \
            + repr(tok.text)

    # grammar
    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise ExpressionError("empty expression", 1, "", self.text)
        root = self.expression()
        tok = self.tok
        if tok.kind != "end":
            if tok.text == ")":
                raise self.error("')' has no matching '('", tok)
            prev = self.tokens[self.i - 1]
            raise self.error(f"unexpected {self.describe(tok)} after {prev.text!r}: "
                             "expected an operator or the end (products need '*')", tok)
        return root

    def _left_assoc(self, ops: tuple[str, ...], operand: Callable[[], _Node]) -> _Node:
        left = operand()
        while self.tok.kind == "op" and self.tok.text in ops:
            op = self.tok
            self.i += 1
            right = operand()
            left = self.node("bin", op, left.start, right.end, (left, right))
        return left

    def expression(self) -> _Node:
        return self._left_assoc(("+", "-"), self.product)

    def product(self) -> _Node:
        return self._left_assoc(("*", "/", ".*", "./"), self.unary)

    def unary(self) -> _Node:
        self.level += 1
        try:
            if self.level > MAX_NESTING:
                raise self.error(f"expression nested too deeply (more than {MAX_NESTING} levels) "
                                 f"at {self.tok.text!r}", self.tok)
            tok = self.tok
            if tok.kind == "op" and tok.text in ("+", "-"):
                self.i += 1
                operand = self.unary()
                return self.node("unary", tok, tok.pos, operand.end, (operand,))
            return self.power()
        finally:
            self.level -= 1

    def power(self) -> _Node:
        base = self.postfix()
        if self.tok.kind == "op" and self.tok.text in ("^", ".^"):
            op = self.tok
            self.i += 1
            exponent = self.unary()
            return self.node("pow", op, base.start, exponent.end, (base, exponent))
        return base

    def postfix(self) -> _Node:
        node = self.primary()
        while self.tok.kind == "op" and self.tok.text in ("'", ".T"):
            op = self.tok
            self.i += 1
            node = self.node("post", op, node.start, op.pos + len(op.text), (node,))
        return node

    def primary(self) -> _Node:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return self.node("num", tok, tok.pos, tok.pos + len(tok.text), value=_number(tok, self.text))
        if tok.kind == "name":
            self.i += 1
            if self.tok.text == "(" and self.tok.kind == "op":
                return self.call(tok)
            if tok.text in _functions():
                raise self.error(f"{tok.text!r} is a function: write {tok.text}(...)", tok)
            return self.node("name", tok, tok.pos, tok.pos + len(tok.text))
        if tok.text == "(" and tok.kind == "op":
            self.i += 1
            inner = self.expression()
            close = self.tok
            if close.text != ")":
                if close.kind == "end":
                    raise self.error(f"'(' at column {tok.column} is never closed", tok)
                raise self.error(f"unexpected {self.describe(close)}: expected ')' to close the "
                                 f"'(' at column {tok.column}", close)
            self.i += 1
            inner.start, inner.end = tok.pos, close.pos + 1
            return inner
        if tok.kind == "end":
            prev = self.tokens[self.i - 1] if self.i else tok
            raise self.error(f"the expression ends after {prev.text!r}: expected an operand", prev)
        raise self.error(f"unexpected {self.describe(tok)}: expected an operand", tok)

    def call(self, name: _Token) -> _Node:
        fname = name.text
        if fname in self.names:
            raise self.error(f"{fname!r} is a variable, not a function: products need '*' "
                             f"({fname}*(...))", name)
        if fname not in _functions():
            raise self.error(f"unknown function {fname!r}; known functions: {', '.join(_functions())}", name)
        open_ = self.tok
        self.i += 1
        args: list[_Node] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            while True:
                args.append(self.expression())
                if self.tok.kind == "op" and self.tok.text == ",":
                    self.i += 1
                    continue
                break
        close = self.tok
        if close.text != ")" or close.kind != "op":
            if close.kind == "end":
                raise self.error(f"'(' at column {open_.column} is never closed", open_)
            raise self.error(f"unexpected {self.describe(close)} in the arguments of {fname}(): "
                             "expected ',' or ')'", close)
        self.i += 1
        arity = _DIM_FUNCTIONS.get(fname) or _MATRIX_FUNCTIONS.get(fname) or 1
        if len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise self.error(f"{fname}() takes {arity} argument{plural}, got {len(args)}", name)
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
           u: _Unifier) -> dict[str, tuple[int, int]]:
    """Give unknown names dimension variables and unify them through the operators.

    Sums whose shapes are still open are deferred (they may broadcast once the shapes
    are known) and, when nothing else can move, the first is forced to equal shapes.
    Returns the variables of the unknown names.
    """
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
            return arg if fname == "inv" else _SCALAR
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
        return ExpressionError(message, node.column, node.token, self.text, kind)

    def scalar(self, node: _Node, v: sympy.Basic) -> sympy.Expr:
        """``v`` as a scalar: a 1×1 matrix becomes its trace."""
        if _is_1x1(v):
            self.notes.append(Note("scalar-from-1x1", node.column,
                                   f"{self.src(node)} (1×1) used as a scalar: tr({self.src(node)})"))
            return Trace(v)
        return v

    def build(self, order: list[_Node]) -> sympy.Basic:
        vals: dict[int, sympy.Basic] = {}
        for node in order:
            args = [vals.pop(id(c)) for c in node.children]
            try:
                v = self.one(node, args)
            except ExpressionError:
                raise
            except RecursionError:
                raise self.fail(node, f"expression nested too deeply at {node.token!r}") from None
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
            self.check_defined(node, v, args)
            vals[id(node)] = v
        return vals[id(order[-1])]

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
                               f"{self.src(node)}·{_ones_text(r)}{_ones_text(k)}ᵀ"))
        return _mm(c, OneMatrix(r, k))

    def broadcast(self, node: _Node, v: MatrixExpr, shape: tuple) -> MatrixExpr | None:
        """``v`` (a row or column) broadcast to ``shape``, or None where it does not fit."""
        (r, c), (R, C) = v.shape, shape
        if r == 1 and c == C and R != 1:
            self.notes.append(Note("broadcast-row", node.column,
                                   f"{self.src(node)} (1×{c}) broadcast over the {R} rows as "
                                   f"{_ones_text(R)}·{self.src(node)}"))
            return _mm(OneMatrix(R, 1), v)
        if c == 1 and r == R and C != 1:
            self.notes.append(Note("broadcast-column", node.column,
                                   f"{self.src(node)} ({r}×1) broadcast over the {C} columns as "
                                   f"{self.src(node)}·{_ones_text(C)}ᵀ"))
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
        raise self.fail(node, f"'*' joins {self.desc(ln, a)} with {self.desc(rn, b)}: a matrix product "
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

    def scalar_power(self, node: _Node, base: sympy.Expr, e: sympy.Expr) -> sympy.Expr:
        if base.is_Number and e.is_Number:
            if base == 0 and e.is_negative:
                raise self.fail(node, f"{node.token!r} raises zero to a negative power")
            if isinstance(base, sympy.Rational) and abs(base) != 1:
                bits = max(abs(base.p).bit_length(), abs(base.q).bit_length())
                if float(abs(e)) * bits > MAX_NUMBER_BITS:
                    raise self.fail(node, f"{node.token!r} makes a number too large "
                                          f"({base}^{e})")
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
            return HadamardPower(base, e)
        if _is_1x1(base) and not isinstance(e, sympy.Integer):
            return self.scalar_power(node, self.scalar(bn, base), e)
        if base.shape[0] != base.shape[1]:
            raise self.fail(node, f"'^' raises {self.desc(bn, base)} to a power: a matrix power "
                                  "needs a square matrix (use '.^' for elementwise powers)")
        if not isinstance(e, sympy.Integer):
            raise self.fail(node, f"'^' raises {self.desc(bn, base)} to {self.src(en)}: a matrix "
                                  "power needs an integer exponent (use '.^' for elementwise powers)")
        self.check_defined(node, MatPow(base, e), [base])
        return MatPow(base, e).doit(deep=False)

    def call(self, node: _Node, an: _Node, a: sympy.Basic) -> sympy.Basic:
        fname = node.token
        if fname in _ELEMENTWISE:
            fn = _ELEMENTWISE[fname]
            if _is_scalar(a) or _is_1x1(a):
                return fn(self.scalar(an, a))
            return _MATRIX_ELEMENTWISE[fname](a)
        if fname == "sqrt":
            if isinstance(a, MatrixExpr) and not _is_1x1(a):
                raise self.fail(node, f"'sqrt' takes a scalar, got {self.desc(an, a)} (use .^0.5 for an "
                                      "elementwise square root)")
            return sympy.sqrt(self.scalar(an, a))
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
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH + 1,
                              text[MAX_LENGTH], text)
    known = _normalise_shapes(shapes)
    dims = {x.name: x for shape in known.values() for x in shape if isinstance(x, sympy.Symbol)}
    root = _Parser(text, tuple(known)).parse()
    order = _postorder(root)

    u = _Unifier()
    dim_scalars = {name: () for name in dims if name not in known}
    unknown = _infer(root, order, {**dim_scalars, **known}, u)
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
                                  node.column, name, text, "unknown-name")
        if r is None or c is None:
            partial = f"{'?' if r is None else r}×{'?' if c is None else c}"
            raise ExpressionError(
                f"unknown name {name!r}: its shape cannot be inferred (only {partial}); "
                f"{_declare_hint(name, r, c, syntax)}; known names: {known_list}", node.column, name, text,
                "unknown-name")
        symbols[name] = MatrixSymbol(name, r, c)
        notes.append(Note("inferred-shape", node.column,
                          f"{name} is not in shapes: inferred {r}×{c} from its use"))
    builder = _Builder(text, {**used_dims, **symbols})
    expr = _split_composed(builder.build(order))
    for sym in symbols.values():
        for x in getattr(sym, "shape", ()):
            if isinstance(x, sympy.Symbol):
                used_dims.setdefault(x.name, x)
    return ParsedExpression(
        text=text, expr=expr, symbols=symbols, dims=used_dims,
        shapes={k: (() if isinstance(v, sympy.Symbol) else tuple(v.shape)) for k, v in symbols.items()},
        notes=tuple(notes + builder.notes),
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
