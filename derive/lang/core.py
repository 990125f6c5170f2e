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
from derive.lang.syntax import _dim_symbol, _Node, _Parser, _postorder
from derive.lang.tokens import _IDENT
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
    _check_length(text)
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
                write = "eye(n)" if node.token == "eye" else "ones(rows, cols) or 𝟏ₙ for a column"
                raise ExpressionError(f"the shape of {node.src!r} cannot be inferred: write {write}",
                                      node.column, node.src, text, "shape")
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


def syntax_check(text: str, names: Sequence[str] = ()) -> None:
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
    _Parser(text, tuple(names)).parse()
