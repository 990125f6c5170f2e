"""The syntax tree of the expression language and the parser that builds it from tokens: lark's
LALR parser of grammar.lark, fed by a custom lexer over tokens.py's tokens."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import sympy
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from derive.lang.errors import ExpressionError, Note, make_error
from derive.lang.functions import DIM_FUNCTIONS, arity, function_names, is_elementwise
from derive.lang.latex import latex_lexer
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


# The lark terminal of each canonical operator (tokens.py); names, numbers, 𝟏 and superscripts
# are read in _Parser.read.
_TERMINALS = {"+": "ADDITIVE", "-": "ADDITIVE", "*": "MULTIPLICATIVE", "/": "MULTIPLICATIVE",
              ".*": "MULTIPLICATIVE", "./": "MULTIPLICATIVE", "^": "POWER", ".^": "POWER",
              "'": "POSTFIX", ".T": "POSTFIX", "(": "OPEN", ")": "CLOSE", "[": "OPEN_SQUARE",
              "]": "CLOSE_SQUARE", ",": "COMMA"}
# Terminals after which an operand is complete (an operator, a bracket or the end may follow).
_ENDS_OPERAND = frozenset({"NAME", "NUMBER", "ONES", "CLOSE", "CLOSE_SQUARE", "POSTFIX", "SUPERSCRIPT",
                           "POWER_T", "GRADIENT"})
_STARTS_OPERAND = frozenset({"NAME", "NUMBER", "ONES", "FUNCTION", "OPEN", "OPEN_SQUARE", "ADDITIVE", "DIFF",
                             "GRADIENT"})
# The loss's name: ``df`` and ∂f/∂X read it as a scalar where it is not declared.
LOSS = "f"
_PARSER: ContextVar[_Parser] = ContextVar("derive.lang.syntax parser")


class _Parser:
    """One parse: the custom lexer's state (the tokens given to lark, the open brackets, the
    nesting level) and the notes; :meth:`parse` runs lark's LALR parser over it."""

    def __init__(self, text: str, names: Sequence[str] = (), dims: Sequence[str] = (), latex: bool = False):
        self.text = text
        self.names = frozenset(names)
        self.dims = frozenset(dims)
        self.lexer = latex_lexer(text) if latex else None
        self.stream = self.lexer.tokens() if self.lexer is not None else _tokenize(text)
        self.loss = False   # the text reads the undeclared loss f (df, ∂f/∂X)
        self.latex = latex
        self.ahead: list[_Token] = []
        self.notes: list[Note] = []
        # what each lark token stands for: (token, end, node for a name); lark's start_pos indexes it
        self.items: list[tuple[_Token, int, _Node | None]] = []
        self.types: list[str] = []
        self.opens: list[tuple[_Token, str, int]] = []   # open brackets: token, function, inner level
        self.open_before: tuple[_Token, str, int] | None = None   # the innermost one before the last token
        self.signs = 0   # signs in a row before the operand they apply to

    # helpers
    def peek(self, ahead: int = 0) -> _Token:
        while len(self.ahead) <= ahead:
            self.ahead.append(next(self.stream))
        return self.ahead[ahead]

    def take(self) -> _Token:
        tok = self.peek()
        del self.ahead[0]
        return tok

    def error(self, message: str, tok: _Token, kind: str = "invalid") -> ExpressionError:
        return make_error(message, tok.column, tok.source, self.text, kind)

    def node(self, kind: str, tok: _Token, start: int, end: int,
             children: tuple[_Node, ...] = (), value: object = None, text: str | None = None) -> _Node:
        if kind == "bin":
            depth = max(children[0].depth, children[1].depth + 1)
        else:
            depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_NESTING:
            raise self.nested(tok)
        return _Node(kind, tok.text if text is None else text, tok.pos, start, end, children, value, depth,
                     tok.source)

    def nested(self, tok: _Token) -> ExpressionError:
        return self.error(f"expression nested too deeply (more than {MAX_NESTING} levels, "
                          f"derive.limits.MAX_NESTING) at {tok.source!r}", tok, "limit")

    def describe(self, tok: _Token) -> str:
        kind = {"num": "number ", "name": "name "}.get(tok.kind, "")
        return kind + repr(tok.source)

    # the parse
    def parse(self) -> _Node:
        reset = _PARSER.set(self)
        try:
            root = _lark().parse(self)
            if self.lexer is not None:
                self.notes.extend(self.lexer.notes)
            return root
        except UnexpectedInput as e:
            raise self.syntax_error(e.token.type == "$END" if isinstance(e, UnexpectedToken) else True) from None
        finally:
            _PARSER.reset(reset)

    def syntax_error(self, at_end: bool) -> ExpressionError:
        """Today's message for lark's UnexpectedToken, from the tokens around it."""
        if not self.items:
            return ExpressionError("empty expression", 1, "", self.text, "syntax")
        last, last_type = self.items[-1][0], self.types[-1]
        if at_end:
            if last_type in _ENDS_OPERAND and self.opens:
                open_ = self.opens[-1][0]
                return self.error(f"{open_.source!r} at column {open_.column} is never closed", open_, "syntax")
            return self.error(f"the expression ends after {last.source!r}: expected an operand", last, "syntax")
        tok = last
        if len(self.types) < 2 or self.types[-2] not in _ENDS_OPERAND:
            return self.error(f"unexpected {self.describe(tok)}: expected an operand", tok, "syntax")
        prev = self.items[-2][0].source
        if self.types[-2] == "POWER_T":
            prev = prev[1:]   # after X^T: 'T'
        if tok.kind == "num":
            return self.error(f"unexpected number {tok.source!r} after {prev!r}: expected an "
                              "operator (products need '*' before a number)", tok, "syntax")
        if self.open_before is None:
            if tok.text in (")", "]"):
                return self.error(f"{tok.source!r} has no matching {'(' if tok.text == ')' else '['!r}", tok,
                                  "syntax")
            return self.error(f"unexpected {self.describe(tok)} after {prev!r}: "
                              "expected an operator or the end", tok, "syntax")
        open_, function, _ = self.open_before
        if function:
            return self.error(f"unexpected {self.describe(tok)} in the arguments of {function}(): "
                              "expected ',' or ')'", tok, "syntax")
        want = ")" if open_.text == "(" else "]"
        return self.error(f"unexpected {self.describe(tok)}: expected {want!r} to close the "
                          f"{open_.source!r} at column {open_.column}", tok, "syntax")

    # the custom lexer: lark's tokens from tokens.py's
    def lex(self) -> Iterator[Token]:
        while self.peek().kind != "end":
            for type_, tok, end, node in self.read(self.take()):
                self.open_before = self.opens[-1] if self.opens else None
                self.level(type_, tok)
                self.items.append((tok, end, node))
                self.types.append(type_)
                yield Token(type_, tok.text, start_pos=len(self.items) - 1)

    def level(self, type_: str, tok: _Token) -> None:
        """Refuse nesting deeper than MAX_NESTING (brackets, arguments and signs before an
        operand), counted from the tokens before lark's parser stacks them; keep the open brackets."""
        level = (self.opens[-1][2] if self.opens else 1) + self.signs
        operand = type_ in _STARTS_OPERAND and not (self.types and self.types[-1] in _ENDS_OPERAND)
        if (operand or type_ in ("OPEN", "OPEN_SQUARE")) and level > MAX_NESTING:
            raise self.nested(tok)
        if type_ in ("OPEN", "OPEN_SQUARE"):
            function = self.items[-1][0].source if self.types and self.types[-1] == "FUNCTION" else ""
            self.opens.append((tok, function, level + 1))
            self.signs = 0
        elif type_ in ("CLOSE", "CLOSE_SQUARE"):
            if self.opens:
                self.opens.pop()
            self.signs = 0
        elif operand and type_ not in ("FUNCTION", "DIFF"):
            self.signs = self.signs + 1 if type_ == "ADDITIVE" else 0

    def read(self, tok: _Token) -> list[tuple[str, _Token, int, _Node | None]]:
        """(terminal, token, end, node) for one token of tokens.py: a name can be several (XW1)."""
        end = tok.pos + len(tok.source)
        if tok.kind == "op":
            if tok.text == "^" and self.types and self.types[-1] in _ENDS_OPERAND - {"POWER_T"} and self.transposes():
                nxt = self.take()   # X^T, X^ᵀ: the transpose
                return [("POWER_T", _Token("op", "'", tok.pos, tok.source + nxt.source), nxt.pos + len(nxt.source),
                         None)]
            return [(_TERMINALS[tok.text], tok, end, None)]
        if tok.kind == "grad":
            return [("GRADIENT", tok, end, self.gradient(tok))]
        if tok.kind == "name":
            call = self.peek().kind == "op" and self.peek().text == "("
            special = self.special_name(tok, call)
            if special is not None:
                return special
            if call and (tok.text in function_names() or tok.text not in self.names):
                if tok.text not in function_names():
                    hint = f" (for a product write {tok.source}*(...))" if self.names else ""
                    raise self.error(f"unknown function {tok.source!r}; known functions: "
                                     f"{', '.join(function_names())}{hint}", tok, "unknown-function")
                return [("FUNCTION", tok, end, None)]
            if tok.text in function_names():
                raise self.error(f"{tok.source!r} is a function: write {tok.source}(...)", tok, "syntax")
            nodes = self.name(tok)
            if len(nodes) == 1:
                return [("NAME", tok, end, nodes[0])]
            return [("NAME", _Token("name", n.token, n.pos), n.end, n) for n in nodes]
        kind = {"num": "NUMBER", "ones": "ONES", "sup": "SUPERSCRIPT"}[tok.kind]
        return [(kind, tok, end, None)]

    def special_name(self, tok: _Token, call: bool) -> list[tuple[str, _Token, int, _Node | None]] | None:
        """The names that are no name: σ'(h) (the derivative of an elementwise function), max(Z, 0)
        (relu) and the differential's d (dX, d(XW + b), df); None for any other."""
        end = tok.pos + len(tok.source)
        nxt = self.peek()
        if (is_elementwise(tok.text) and nxt.kind == "op" and nxt.text == "'" and self.peek(1).kind == "op"
                and self.peek(1).text == "("):
            prime = self.take()
            return [("FUNCTION", _Token("name", tok.text + "'", tok.pos, tok.source + prime.source),
                     prime.pos + len(prime.source), None)]
        if tok.text == "max" and call and "max" not in self.names:
            return [("FUNCTION", tok, end, None)]
        if "d" in self.names or not tok.text.startswith("d") or tok.text in self.names:
            return None
        note = Note("read-name", tok.column, f"{tok.source} read as a differential",
                    f"{tok.source} 读作微分")
        if tok.text == "d":
            if "d" in self.dims and not self.latex:   # the dimension d times (…), in the ASCII language
                return None
            if call or nxt.kind in ("name", "ones") or (nxt.kind == "op" and nxt.text == "["):
                self.notes.append(note)
                return [("DIFF", tok, end, None)]
            return None
        rest = tok.text[1:]
        if not (rest == LOSS or self.declared(rest) is not None or self.reads_as_declared(rest)):
            return None
        self.notes.append(note)
        d = _Token("name", "d", tok.pos, tok.source[:1])
        inner = _Token("name", rest, tok.pos + 1, tok.source[1:])
        if rest == LOSS and rest not in self.names:
            self.loss = True
            items = [("NAME", inner, end, self.node("name", inner, inner.pos, end))]
        else:
            items = [("NAME", _Token("name", n.token, n.pos), n.end, n) for n in self.name(inner)]
            if len(items) == 1:
                items = [("NAME", inner, end, items[0][3])]
        return [("DIFF", d, tok.pos + 1, None), *items]

    def reads_as_declared(self, name: str) -> bool:
        """Whether an undeclared ``name`` reads as declared names (h_sigmoid, XW1)."""
        base, _, fname = name.rpartition("_")
        return bool((is_elementwise(fname) and base and self.declared(base)) or _readings(name, self.names))

    def gradient(self, tok: _Token) -> _Node:
        """∂f/∂X, written \\frac{\\partial f}{\\partial X}: a node over the name X."""
        f, wrt = tok.text.split("/")
        end = tok.pos + len(tok.source)
        if f == LOSS and f not in self.names:
            self.loss = True
        nodes = self.name(_Token("name", wrt, tok.pos, wrt))
        if len(nodes) != 1 or nodes[0].kind != "name":
            raise self.error(f"∂{f}/∂{wrt}: {wrt} is not one variable", tok, "unknown-name")
        inner = nodes[0]
        inner.start, inner.end = tok.pos, end
        return self.node("grad", tok, tok.pos, end, (inner,), value=f)

    def transposes(self) -> bool:
        """Whether the ``^`` just taken and the token after it are a transpose (X^T, X^ᵀ)."""
        nxt = self.peek()
        if nxt.kind == "op":
            return nxt.text == "'" and bool(nxt.src)
        return (nxt.kind == "name" and nxt.text == "T" and "T" not in self.names and "T" not in self.dims
                and not (self.peek(1).kind == "op" and self.peek(1).text == "("))

    def name(self, tok: _Token) -> list[_Node]:
        """A name.  An undeclared one reads as a declared name spelt with or without underscores
        (Y_pred for Ypred), as an elementwise function of a declared name (h_sigmoid for
        sigmoid(h), as the seed write-up names σ(h)) or as declared names written together (XW1
        for X W1, side by side, so that a postfix operator binds to the last: XW1ᵀ is X·W1ᵀ); a
        note says so."""
        end = tok.pos + len(tok.source)
        name = tok.text
        if name == "I" and name not in self.names and name not in self.dims:   # as the tool prints it
            self.notes.append(Note("read-name", tok.column, "I read as the identity matrix", "I 读作单位矩阵"))
            return [self.node("ones", tok, tok.pos, end, text="eye")]
        if name in self.names or name in self.dims or not self.names:
            return [self.node("name", tok, tok.pos, end)]
        if name == LOSS and self.latex:   # f = …, the loss: a scalar
            self.loss = True
            return [self.node("name", tok, tok.pos, end)]
        same = self.declared(name)
        if same is not None:
            self.notes.append(Note("read-name", tok.column, f"{name} read as {same}", f"{name} 读作 {same}"))
            return [self.node("name", tok, tok.pos, end, text=same)]
        base, _, fname = name.rpartition("_")
        arg = self.declared(base) if base else None
        if is_elementwise(fname) and arg is not None:
            self.notes.append(Note("read-name", tok.column, f"{name} read as {fname}({arg})",
                                   f"{name} 读作 {fname}({arg})"))
            inner = self.node("name", tok, tok.pos, tok.pos + len(base), text=arg)
            return [self.node("call", tok, tok.pos, end, (inner,), text=fname)]
        readings = _readings(name, self.names) if not tok.src or self.latex else []
        if len(readings) > 1:
            options = " or ".join("*".join(r) for r in readings)
            raise self.error(f"unknown name {name!r}: products need '*' (write {options})", tok, "unknown-name")
        if not readings:
            return [self.node("name", tok, tok.pos, end)]
        parts = readings[0]
        self.notes.append(Note("read-name", tok.column, f"{name} read as the product {'·'.join(parts)}",
                               f"{name} 读作乘积 {'·'.join(parts)}"))
        nodes, pos = [], tok.pos
        for part in parts:
            nodes.append(self.node("name", _Token("name", part, pos), pos, pos + len(part)))
            pos += len(part)
        return nodes

    def declared(self, name: str) -> str | None:
        """The declared name ``name`` is, itself or spelt with or without underscores."""
        if name in self.names:
            return name
        plain = name.replace("_", "")
        same = [k for k in self.names if k.replace("_", "") == plain]
        return same[0] if len(same) == 1 else None


class _Lexer(Lexer):
    """lark's custom lexer: the tokens of the :class:`_Parser` lark is given."""

    def __init__(self, lexer_conf: object) -> None:
        pass

    def lex(self, parser: _Parser) -> Iterator[Token]:   # type: ignore[override]
        return parser.lex()


@v_args(inline=True)
class _Build(Transformer):
    """The grammar's rules (grammar.lark) as syntax-tree nodes, called by lark as it reduces
    (so no recursion however deep the tree)."""

    @staticmethod
    def _item(token: Token) -> tuple[_Parser, _Token, int]:
        parser = _PARSER.get()
        tok, end, _ = parser.items[token.start_pos]
        return parser, tok, end

    def binary(self, left: _Node, op: Token, right: _Node) -> _Node:
        parser, tok, _ = self._item(op)
        if tok.text in ("/", "./"):
            inner = right
            while inner.kind == "unary" and not inner.bracketed:
                inner = inner.children[0]
            if inner.implicit and not inner.bracketed:
                written = " ".join(parser.text[right.start:right.end].split())
                raise parser.error(f"{tok.source!r} before {written!r}, a product written without '*', is "
                                   f"ambiguous: write {tok.source}({written}) to divide by the product, or "
                                   "'*' between the factors", tok, "syntax")
        return parser.node("bin", tok, left.start, right.end, (left, right))

    def unary(self, op: Token, inner: _Node) -> _Node:
        parser, tok, _ = self._item(op)
        return parser.node("unary", tok, tok.pos, inner.end, (inner,))

    def side_by_side(self, left: _Node, right: _Node) -> _Node:
        node = _PARSER.get().node("bin", _Token("op", "*", right.start), left.start, right.end, (left, right))
        node.src, node.implicit = "", True
        return node

    def power(self, base: _Node, op: Token, exponent: _Node) -> _Node:
        parser, tok, _ = self._item(op)
        return parser.node("pow", tok, base.start, exponent.end, (base, exponent))

    def transpose(self, node: _Node, op: Token) -> _Node:
        parser, tok, end = self._item(op)
        return parser.node("post", tok, node.start, end, (node,))

    def superscript(self, node: _Node, op: Token) -> _Node:
        parser, tok, end = self._item(op)
        power, _, exponent = tok.text.partition("^")
        if exponent == "-T":   # X⁻ᵀ = (X⁻¹)ᵀ
            exponent = "-1"
        num = parser.node("num", tok, tok.pos, end, value=sympy.Integer(int(exponent)), text=exponent)
        node = parser.node("pow", _Token("op", power + "^", tok.pos, tok.src), node.start, end, (node, num))
        if tok.text.endswith("-T"):
            node = parser.node("post", _Token("op", "'", tok.pos, tok.src), node.start, end, (node,))
        return node

    def number(self, token: Token) -> _Node:
        parser, tok, end = self._item(token)
        return parser.node("num", tok, tok.pos, end, value=_number(tok, parser.text))

    def name(self, token: Token) -> _Node:
        node = _PARSER.get().items[token.start_pos][2]
        assert node is not None
        return node

    gradient = name

    def differential(self, d: Token, inner: _Node) -> _Node:
        parser, tok, _ = self._item(d)
        return parser.node("diff", tok, tok.pos, inner.end, (inner,))

    def ones(self, token: Token) -> _Node:
        parser, tok, end = self._item(token)
        if not tok.text:
            return parser.node("ones", tok, tok.pos, end, text="ones")
        dim = sympy.Integer(int(tok.text)) if tok.text.isdigit() else _dim_symbol(tok.text)
        if dim == 0:
            raise parser.error(f"{tok.source!r}: a dimension must be positive", tok, "syntax")
        return parser.node("dims", tok, tok.pos, end, value=(dim, sympy.Integer(1)), text="ones")

    def arguments(self, *children: _Node | Token) -> list[_Node]:
        return [c for c in children if isinstance(c, _Node)]

    def call(self, function: Token, _open: Token, args: list[_Node] | None, close: Token) -> _Node:
        parser, tok, _ = self._item(function)
        args = args or []
        fname, end = tok.text, parser.items[close.start_pos][1]
        if fname == "max":
            return self.relu(parser, tok, args, end)
        if fname.endswith("'"):   # σ'(h): the derivative, elementwise
            if len(args) != 1:
                raise parser.error(f"{tok.source}() takes 1 argument, got {len(args)}", tok, "syntax")
            return parser.node("call", tok, tok.pos, end, tuple(args), value="derivative", text=fname[:-1])
        least, most = arity(fname)
        if not least <= len(args) <= most:
            count = str(least) if least == most else f"{least} to {most}"
            plural = "s" if most > 1 else ""
            raise parser.error(f"{tok.source}() takes {count} argument{plural}, got {len(args)}", tok, "syntax")
        if fname not in DIM_FUNCTIONS:
            return parser.node("call", tok, tok.pos, end, tuple(args))
        dims = []
        for a in args:
            if a.kind == "num" and isinstance(a.value, sympy.Integer) and a.value > 0:
                dims.append(a.value)
            elif a.kind == "name":
                dims.append(_dim_symbol(a.token))
            else:
                written = parser.text[a.start:a.end]
                raise ExpressionError(f"{fname}() takes dimensions (positive integers or dimension names), "
                                      f"got {written!r}", a.start + 1, written, parser.text, "syntax")
        return parser.node("dims", tok, tok.pos, end, value=tuple(dims))

    @staticmethod
    def relu(parser: _Parser, tok: _Token, args: list[_Node], end: int) -> _Node:
        """max(Z, 0) and max(0, Z): relu(Z)."""
        zero = [i for i, a in enumerate(args) if a.kind == "num" and a.value == 0]
        if len(args) != 2 or not zero:
            raise parser.error(f"{tok.source}() is read only as max(Z, 0), the relu", tok, "unsupported")
        parser.notes.append(Note("read-name", tok.column, f"{tok.source}(·, 0) read as relu",
                                 f"{tok.source}(·, 0) 读作 relu"))
        return parser.node("call", tok, tok.pos, end, (args[1 - zero[0]],), text="relu")

    def bracket(self, open_: Token, inner: _Node, close: Token) -> _Node:
        items = _PARSER.get().items
        inner.start, inner.end, inner.bracketed = items[open_.start_pos][0].pos, items[close.start_pos][1], True
        return inner


@cache
def _lark() -> Lark:
    """The LALR parser of grammar.lark, with the custom lexer and the node callbacks."""
    grammar = files("derive.lang").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=_Lexer, transformer=_Build(), start="expression",
                maybe_placeholders=True)


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
