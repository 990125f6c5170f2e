"""The syntax tree of the expression language and the parser that builds it from tokens."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import sympy

from derive.lang.errors import ExpressionError, Note, make_error
from derive.lang.functions import DIM_FUNCTIONS, arity, function_names, is_elementwise
from derive.lang.tokens import _number, _Token, _tokenize
from derive.limits import MAX_NESTING


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
        return make_error(message, tok.column, tok.source, self.text, kind)

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
            raise ExpressionError("empty expression", 1, "", self.text, "syntax")
        root = self.expression()
        tok = self.tok
        if tok.kind != "end":
            if tok.text in (")", "]"):
                raise self.error(f"{tok.source!r} has no matching {'(' if tok.text == ')' else '['!r}", tok, "syntax")
            prev = self.tokens[self.i - 1]
            raise self.error(f"unexpected {self.describe(tok)} after {prev.source!r}: "
                             "expected an operator or the end", tok, "syntax")
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
                                     "'*' between the factors", op, "syntax")
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
                                 "operator (products need '*' before a number)", tok, "syntax")
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
                raise self.error(f"{tok.source!r}: a dimension must be positive", tok, "syntax")
            return self.node("dims", tok, tok.pos, end, value=(dim, sympy.Integer(1)), text="ones")
        if tok.kind == "name":
            self.i += 1
            call = self.is_op("(")
            if call and (tok.text in function_names() or tok.text not in self.names):
                return self.call(tok)
            if tok.text in function_names():
                raise self.error(f"{tok.source!r} is a function: write {tok.source}(...)", tok, "syntax")
            return self.name(tok)
        if tok.kind == "op" and tok.text in ("(", "["):
            self.i += 1
            inner = self.expression()
            close = self.tok
            want = ")" if tok.text == "(" else "]"
            if not (close.kind == "op" and close.text == want):
                if close.kind == "end":
                    raise self.error(f"{tok.source!r} at column {tok.column} is never closed", tok, "syntax")
                raise self.error(f"unexpected {self.describe(close)}: expected {want!r} to close the "
                                 f"{tok.source!r} at column {tok.column}", close, "syntax")
            self.i += 1
            inner.start, inner.end, inner.bracketed = tok.pos, close.pos + 1, True
            return inner
        if tok.kind == "end":
            prev = self.tokens[self.i - 1] if self.i else tok
            raise self.error(f"the expression ends after {prev.source!r}: expected an operand", prev, "syntax")
        raise self.error(f"unexpected {self.describe(tok)}: expected an operand", tok, "syntax")

    def name(self, tok: _Token) -> _Node:
        """A name.  An undeclared one reads as a declared name spelt with or without underscores
        (Y_pred for Ypred), as an elementwise function of a declared name (h_sigmoid for
        sigmoid(h), as the seed write-up names σ(h)) or as declared names written together (XW1
        for X W1); a note says so."""
        end = tok.pos + len(tok.source)
        name = tok.text
        if name == "I" and name not in self.names and name not in self.dims:   # as the tool prints it
            self.notes.append(Note("read-name", tok.column, "I read as the identity matrix", "I 读作单位矩阵"))
            return self.node("ones", tok, tok.pos, end, text="eye")
        if name in self.names or name in self.dims or not self.names:
            return self.node("name", tok, tok.pos, end)
        same = self.declared(name)
        if same is not None:
            self.notes.append(Note("read-name", tok.column, f"{name} read as {same}", f"{name} 读作 {same}"))
            return self.node("name", tok, tok.pos, end, text=same)
        base, _, fname = name.rpartition("_")
        if is_elementwise(fname) and base and self.declared(base) is not None:
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
            raise self.error(f"unknown name {name!r}: products need '*' (write {options})", tok, "unknown-name")
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
        if fname not in function_names():
            hint = f" (for a product write {name.source}*(...))" if self.names else ""
            raise self.error(f"unknown function {name.source!r}; known functions: {', '.join(function_names())}{hint}",
                             name, "unknown-function")
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
                raise self.error(f"'(' at column {open_.column} is never closed", open_, "syntax")
            raise self.error(f"unexpected {self.describe(close)} in the arguments of {name.source}(): "
                             "expected ',' or ')'", close, "syntax")
        self.i += 1
        count = arity(fname)
        if len(args) != count:
            plural = "s" if count > 1 else ""
            raise self.error(f"{name.source}() takes {count} argument{plural}, got {len(args)}", name, "syntax")
        if fname in DIM_FUNCTIONS:
            dims = []
            for a in args:
                if a.kind == "num" and isinstance(a.value, sympy.Integer) and a.value > 0:
                    dims.append(a.value)
                elif a.kind == "name":
                    dims.append(_dim_symbol(a.token))
                else:
                    raise ExpressionError(
                        f"{fname}() takes dimensions (positive integers or dimension names), "
                        f"got {self.text[a.start:a.end]!r}", a.start + 1, self.text[a.start:a.end], self.text, "syntax")
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
