"""The language's entry points: :func:`parse`, :func:`parse_expression`, :func:`syntax_check`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sympy
from sympy import Lambda, MatrixExpr, MatrixSymbol
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from derive import elementwise as ew
from derive.lang.build import _Builder
from derive.lang.errors import ExpressionError, ExpressionLimitError, Note
from derive.lang.functions import function_names, matrix_function, name_of, scalar_function
from derive.lang.shapes import _infer, _Unifier
from derive.lang.latex import looks_like_latex
from derive.lang.syntax import LOSS, _dim_symbol, _Node, _Parser, _postorder
from derive.lang.tokens import _IDENT, _Token
from derive.limits import MAX_LENGTH

Dim = int | str | sympy.Expr
Shape = tuple[()] | tuple[Dim, Dim]


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





def _chain(fn: object) -> list[str] | None:
    """The names f, g, … where ``fn`` is ``Lambda(x, f(g(…(x))))`` over known functions."""
    if not isinstance(fn, Lambda) or len(fn.variables) != 1:
        return None
    names, body = [], fn.expr
    while isinstance(body, sympy.Function) and name_of(type(body)) is not None and len(body.args) == 1:
        names.append(name_of(type(body)))
        body = body.args[0]
    return names if names and body == fn.variables[0] else None


def _split_composed(e: sympy.Basic) -> sympy.Basic:
    """``e`` with elementwise compositions σ∘σ (made by SymPy's canonicaliser, with a
    fresh Dummy) written as nested applications of the canonical helpers."""
    def composed(x: sympy.Basic) -> bool:
        names = _chain(getattr(x, "function", None))
        return names is not None and (
            len(names) > 1 or x.function != ew.canonical_lambda(scalar_function(names[0])))

    if not any(isinstance(x, ElementwiseApplyFunction) and composed(x) for x in sympy.preorder_traversal(e)):
        return e

    def fix(x: sympy.Basic) -> sympy.Basic:
        if isinstance(x, ElementwiseApplyFunction):
            inner = fix(x.expr)
            names = _chain(x.function)
            if names is None:
                return ElementwiseApplyFunction(x.function, inner)
            for name in reversed(names):
                inner = matrix_function(name)(inner)
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
        if name in function_names():
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


SYNTAXES = ("python", "cli", "ascii", "latex", "auto")


def is_latex(text: str, syntax: str) -> bool:
    """Whether ``text`` is read in the LaTeX dialect under ``syntax`` (one of :data:`SYNTAXES`;
    ``"auto"`` looks for a backslash, ``^{`` or ``_{``).

    >>> is_latex(r"X^\\top", "auto"), is_latex("X'", "auto"), is_latex("X'", "latex")
    (True, False, True)
    """
    if syntax not in SYNTAXES:
        raise ValueError(f"syntax must be one of {', '.join(SYNTAXES)}, got {syntax!r}")
    return syntax == "latex" or (syntax == "auto" and looks_like_latex(text))


def parse(text: str, shapes: Mapping[str, Sequence[Dim]] | None = None, *,
          infer: bool = True, syntax: str = "python") -> ParsedExpression:
    """Parse ``text`` into a :class:`ParsedExpression` (expression, symbols, notes).

    ``shapes`` maps names to ``(rows, cols)`` or ``()`` (a scalar).  With ``infer``
    (the default) names missing from ``shapes`` get shapes inferred from their use;
    without it they are errors.  Raises :class:`ExpressionError` for any problem
    with the text, and ``ValueError`` for a malformed ``shapes``.  ``syntax`` is the
    dialect: ``"latex"`` reads LaTeX as students write it (:mod:`derive.lang.latex`:
    ``2X^T[(Y_{pred} - Y)W_2^T \\odot \\sigma'(h)]``), ``"auto"`` LaTeX where the text looks like
    it, the others the ASCII language; it is also how the error for a name without a shape says
    to declare one: ``"cli"`` (``--shape c=``) or else Python (``shapes={"c": ()}``).
    Where ⊙ stands between factors side by side, LaTeX reads as the language does (⊙ looser than
    the product); :func:`readings` gives every reading.

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
    >>> parse(r"X^\\top (Y_{pred} - Y)", {"X": ("n", "d"), "Y": ("n", "k"), "Ypred": ("n", "k")},
    ...       syntax="latex").expr
    X.T*(-Y + Ypred)
    """
    return _parse(text, shapes, infer, syntax, None)


def _parse(text: str, shapes: Mapping[str, Sequence[Dim]] | None, infer: bool, syntax: str,
           take: tuple[int, int] | None) -> ParsedExpression:
    hint = "cli" if syntax == "cli" else "python"
    known, dims, parser, root = _tree(text, shapes, syntax)
    if take is not None:
        root = _tighten(root, parser, take)
    if parser.loss:   # df, ∂f/∂X: the loss f, a scalar
        known[LOSS] = ()
    order = _postorder(root)

    u = _Unifier()
    dim_scalars = {name: () for name in dims if name not in known}
    ones: dict[int, tuple] = {}
    unknown = _infer(root, order, {**dim_scalars, **known}, u, ones)
    _ones_shapes(text, order, u, ones)
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
                f"{_declare_hint(name, r, c, hint)}; known names: {known_list}", node.column, node.src, text,
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


def _ones_shapes(text: str, order: list[_Node], u: _Unifier, ones: dict[int, tuple]) -> None:
    """The shape of each 𝟏 and I written without dimensions, from the inference; a ones vector
    with one dimension left open (𝟏ᵀA, A𝟏) is a column (a row)."""
    for node in order:
        if node.kind == "ones":
            r, c = (u.get(v) for v in ones[id(node)][1:])
            if node.token == "ones" and (r is None) != (c is None):
                r, c = r or sympy.Integer(1), c or sympy.Integer(1)
            if r is None or c is None:
                write = "eye(n)" if node.token == "eye" else "ones(rows, cols) or 𝟏ₙ for a column"
                raise ExpressionError(f"the shape of {node.src!r} cannot be inferred: write {write}",
                                      node.column, node.src, text, "shape")
            node.value = (r, c)


def _tree(text: str, shapes: Mapping[str, Sequence[Dim]] | None,
          syntax: str) -> tuple[dict[str, tuple], dict[str, sympy.Symbol], _Parser, _Node]:
    """The declared shapes, their dimensions, the parser and the syntax tree of ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a str, got {type(text).__name__}")
    latex = is_latex(text, syntax)
    _check_length(text)
    known = _normalise_shapes(shapes)
    dims = {x.name: x for shape in known.values() for x in shape if isinstance(x, sympy.Symbol)}
    parser = _Parser(text, tuple(known), tuple(dims), latex=latex)
    return known, dims, parser, parser.parse()


def _check_length(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise ExpressionLimitError(f"expression longer than {MAX_LENGTH} characters "
                                   "(derive.limits.MAX_LENGTH)", MAX_LENGTH + 1, text[MAX_LENGTH], text)


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

    >>> from derive.lang import format_expression
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


def syntax_check(text: str, names: Sequence[str] = (), *, syntax: str = "python") -> None:
    """Raise :class:`ExpressionError` where ``text`` is not in the grammar, given the declared
    ``names`` (which decide how names written together read): the errors of kinds "syntax",
    "unknown-function", "unknown-name" (a name with several readings) and "limit" that
    :func:`parse` raises before it looks at shapes.

    >>> syntax_check("2*X'*(Y - X*W)", ["X", "Y", "W"])
    >>> try:
    ...     syntax_check("2*X'*(Y - ", ["X", "Y"])
    ... except ExpressionError as e:
    ...     print(e.kind, e)
    syntax column 9: the expression ends after '-': expected an operand
    """
    if not isinstance(text, str):
        raise TypeError(f"syntax_check() takes a str, got {type(text).__name__}")
    _check_length(text)
    _Parser(text, tuple(names), latex=is_latex(text, syntax)).parse()


# ------------------------------------------------------------------------- readings

@dataclass(frozen=True)
class Reading:
    """One reading of a text whose notation is ambiguous: ``key`` (``"as_written"``, or the keys of
    the hand-typed audit (tests/hand_audit.py): ``"looser"`` and ``"tighter"``, ⊙ against the product of factors side by
    side, and ``"between"``, ⊙ over part of the product), ``label`` in words, ``text`` the text with the brackets this reading puts in, and the
    :class:`ParsedExpression` or the :class:`ExpressionError` (shapes that do not conform under
    this reading)."""

    key: str
    label: str
    parsed: ParsedExpression | None = None
    error: ExpressionError | None = None
    text: str = ""


_LABELS = {"as_written": "as written", "looser": "⊙ looser than the product",
           "tighter": "⊙ tighter than the product", "between": "⊙ over part of the product"}


def readings(text: str, shapes: Mapping[str, Sequence[Dim]] | None = None, *, syntax: str = "latex",
             infer: bool = True) -> list[Reading]:
    """Every reading of ``text``: one where the notation is unambiguous; where ⊙ (``\\odot``,
    ``\\circ``, ``.*``) stands next to factors side by side, two: ⊙ looser than the product
    (``2X^T R W_2^T \\odot S`` is [2XᵀRW2ᵀ] ⊙ S, as :func:`parse` reads it) and ⊙ tighter
    (2XᵀR[W2ᵀ ⊙ S]), and where one ⊙ stands next to more factors, the readings between
(2Xᵀ[RW2ᵀ ⊙ S], key ``"between"``).  A reading whose shapes do not conform carries its error; a text that is not
    in the grammar gives one reading with the error.  ``ValueError`` for a malformed ``shapes``.

    >>> shapes = {"A": (3, 4), "B": (4, 5), "C": (4, 5)}
    >>> for r in readings(r"A B \\odot C", shapes):
    ...     print(r.key, r.parsed is not None, r.text)
    looser False [A B] \\odot C
    tighter True A [B \\odot C]
    >>> [r.label for r in readings("A*B", shapes, syntax="ascii")]
    ['as written']
    """
    try:
        root = _tree(text, shapes, syntax)[3]
    except ExpressionError as exc:
        return [Reading("as_written", _LABELS["as_written"], None, exc)]
    chains = _hadamard_chains(root, ambiguous=True)
    if not chains:
        takes: list[tuple[str, tuple[int, int] | None]] = [("as_written", None)]
    else:
        takes = [("looser", None), *[("between", t) for t in _between(chains)], ("tighter", (1, 1))]
    out = []
    for key, take in takes:
        written = _bracketed(text, chains, take)
        try:
            out.append(Reading(key, _LABELS[key], _parse(text, shapes, infer, syntax, take), text=written))
        except ExpressionError as exc:
            out.append(Reading(key, _LABELS[key], None, exc, text=written))
    return out


def _between(chains: list[_Node]) -> list[tuple[int, int]]:
    """The readings between looser and tighter of one ambiguous ⊙ chain: ⊙ taking the last j factors
    of the product before it and the first i of the product after it (a leading number is no factor
    of its own: 2X R ⊙ S over X R is 2X R ⊙ S); none where there are several chains."""
    if len(chains) != 1:
        return []
    ops = _operands(chains[0])
    first, last = _factors(_signed(ops[0])[1]), _factors(ops[-1])
    lead = next((k for k, f in enumerate(first) if f.kind != "num"), len(first) - 1)
    out = [(j, i) for j in range(len(first) - lead, 0, -1) for i in range(len(last), 0, -1)
           if (j, i) not in ((len(first) - lead, len(last)), (1, 1))]
    return out[:6]


def _bracketed(text: str, chains: list[_Node], take: tuple[int, int] | None) -> str:
    """``text`` with the brackets a reading of its ⊙ chains puts in (``take``: see :func:`_tighten`)."""
    spans = []
    for top in chains:
        ops = _operands(top)
        first, last = _factors(_signed(ops[0])[1]), _factors(ops[-1])
        if take is not None:
            j, i = take
            start = ops[0].start if j >= len(first) else first[-j].start
            spans.append((start, last[min(i, len(last)) - 1].end))
            continue
        spans += [(op.start, op.end) for op, fs in ((ops[0], first), (ops[-1], last)) if len(fs) > 1]
    inserts = sorted([(a, "[") for a, _ in spans] + [(b, "]") for _, b in spans], key=lambda x: -x[0])
    for pos, mark in inserts:
        text = text[:pos] + mark + text[pos:]
    return text


def _factors(node: _Node) -> list[_Node]:
    """The factors of a product written side by side (not bracketed), left to right."""
    out: list[_Node] = []
    while node.kind == "bin" and node.implicit and not node.bracketed:
        out.append(node.children[1])
        node = node.children[0]
    out.append(node)
    return out[::-1]


def _signed(node: _Node) -> tuple[_Node | None, _Node]:
    """(the sign, the product) of a signed product written side by side (-A B), or (None, node)."""
    if node.kind == "unary" and not node.bracketed and len(_factors(node.children[0])) > 1:
        return node, node.children[0]
    return None, node


def _operands(node: _Node) -> list[_Node]:
    """The operands of a chain of ⊙ (left-associative, not bracketed)."""
    out: list[_Node] = []
    top = node
    while node.kind == "bin" and node.token == ".*" and (node is top or not node.bracketed):
        out.append(node.children[1])
        node = node.children[0]
    out.append(node)
    return out[::-1]


def _hadamard_chains(root: _Node, ambiguous: bool = False) -> list[_Node]:
    """The ⊙ chains of the tree (their top nodes); with ``ambiguous``, those next to a product of
    factors side by side."""
    inner: set[int] = set()
    chains = []
    for node in reversed(_postorder(root)):    # parents before children
        if node.kind == "bin" and node.token == ".*" and id(node) not in inner:
            ops = _operands(node)
            inner.update(id(c) for c in _chain_nodes(node))
            if not ambiguous or len(_factors(_signed(ops[0])[1])) > 1 or len(_factors(ops[-1])) > 1:
                chains.append(node)
    return chains


def _chain_nodes(node: _Node) -> list[_Node]:
    out = []
    top = node
    while node.kind == "bin" and node.token == ".*" and (node is top or not node.bracketed):
        out.append(node)
        node = node.children[0]
    return out


def _tighten(root: _Node, parser: _Parser, take: tuple[int, int] = (1, 1)) -> _Node:
    """The tree with each ⊙ chain next to factors side by side read tighter than the product:
    with ``take`` (j, i), ⊙ takes the last j factors before it and the first i after it
    (a b ⊙ c d with (1, 1) is a (b ⊙ c) d)."""
    replace: dict[int, _Node] = {}
    for top in _hadamard_chains(root, ambiguous=True):
        ops = _operands(top)
        sign, head = _signed(ops[0])
        first, last = _factors(head), _factors(ops[-1])
        j, i = min(take[0], len(first)), min(take[1], len(last))
        if j == len(first) and sign is not None:    # the whole signed product: the sign inside
            left, first, sign = [ops[0]], [], None
        else:
            left, first = first[-j:], first[:-j]
        right, last = last[:i], last[i:]
        inner = [_side_by_side(parser, left), *ops[1:-1], _side_by_side(parser, right)] if len(ops) > 1 \
            else [_side_by_side(parser, left)]
        op = top
        had = inner[0]
        for nxt in inner[1:]:
            had = parser.node("bin", _Token("op", ".*", op.pos, op.src), had.start, nxt.end, (had, nxt))
        prod = _side_by_side(parser, [*first, had, *last])
        if sign is not None:
            prod = parser.node("unary", _Token("op", sign.token, sign.pos, sign.src), sign.start, prod.end, (prod,))
        prod.bracketed = top.bracketed
        replace[id(top)] = prod
    if not replace:
        return root
    # rebuild the parents of the replaced chains (children first)
    new: dict[int, _Node] = {}
    for node in _postorder(root):
        if id(node) in replace:
            new[id(node)] = replace[id(node)]
            continue
        children = tuple(new.get(id(c), c) for c in node.children)
        if any(a is not b for a, b in zip(children, node.children)):
            node.children = children
        new[id(node)] = node
    return new[id(root)]


def _side_by_side(parser: _Parser, factors: list[_Node]) -> _Node:
    """The product of ``factors`` written side by side (one factor: itself)."""
    prod = factors[0]
    for nxt in factors[1:]:
        prod = parser.node("bin", _Token("op", "*", nxt.start), prod.start, nxt.end, (prod, nxt))
        prod.src, prod.implicit = "", True
    return prod
