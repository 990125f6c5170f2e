"""Programs: a network typed as declarations and assignments, built into a :class:`~derive.networks.Network`.

A program is a list of statements, one per line or separated by ``;``, with ``#`` comments::

    X: n×d; Y: n×k                  # inputs (data)
    param W1: d×m; param b1: 1×m    # parameters: the gradients to derive
    param W2: m×k; param b2: 1×k
    h = X*W1 + b1
    H = sigmoid(h)
    Ypred = H*W2 + b2
    f = norm2(Y - Ypred)^2

* **Declarations** ``NAME: ROWS×COLS`` (also ``ROWS,COLS``, ``ROWS x COLS`` or ``ROWS*COLS``; a dimension
  is a positive integer or a name), ``NAME: scalar`` for a scalar, and ``param NAME: ROWS×COLS`` for a
  parameter.  A name is declared once, anywhere in the program.
* **Assignments** ``NAME = EXPRESSION`` in the expression language (:mod:`derive.lang`), parsed with
  the shapes known so far: the declarations, ``shapes`` (the command line's ``--shape``), the
  names assigned on earlier lines (each a matrix of its inferred shape) and the undeclared names
  inferred on earlier lines.  A name neither declared nor assigned is an input whose shape comes
  from ``shapes`` or is inferred from its use (:func:`derive.lang.parse`); a shape left open is an
  error.  A name is assigned once.
* **The loss** is the last assignment; it must be a scalar (a 1×1 matrix counts, as its trace).
  Its name is free (``f``, ``loss``, ``L``); the document always calls it f, as the seed document
  does, so ``f`` may not name anything else.
* Every earlier matrix assignment is a **stage** of the network, with its own section in the
  staged derivation (:func:`derive.backprop`).  A **scalar** assignment before the last line
  (``s = sum(X*W)``) is no stage: later lines use its value (it is inlined).
* A right-hand side that is exactly one call of a registered layer (:func:`derive.layers.layers`),
  ``P = softmax(Z)``, is expanded by the layer (``layer(name).expand("P", Z)``): its sub-stages
  become stages of the network; a scalar layer on the last line gives the loss (and its
  assumptions).  Inside a larger expression a layer call is the language's function, inlined.
* The parameters are the ``param`` declarations, or the names ``wrt`` lists (any matrix that is
  declared or used without being assigned); the other matrices are the inputs.

Every error is a :class:`ProgramError`, one line naming the line and column of the whole text.
Nothing is evaluated: each right-hand side goes through :func:`derive.lang.parse`.  Programs are
bounded by :data:`derive.limits.MAX_PROGRAM_LENGTH` and :data:`derive.limits.MAX_PROGRAM_STATEMENTS`.

>>> net = program('''
... X: n×d; Y: n×k
... param W: d×k
... E = X*W - Y
... f = norm2(E)^2''')
>>> [s.name for s, _ in net.stages], net.params, net.inputs
(['E'], (W,), (X, Y))
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy
from sympy import MatrixExpr, MatrixSymbol

from derive.lang.errors import ExpressionError
from derive.limits import MAX_DIMENSION, MAX_PROGRAM_LENGTH, MAX_PROGRAM_STATEMENTS, LimitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from derive.networks import Network

__all__ = ["ProgramError", "ProgramLimitError", "is_program", "program"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DIM = rf"{_NAME}|[0-9]+"
_DECLARATION = re.compile(rf"(\s*)(?:(param)\s+)?({_NAME})(\s*):(.*)$", re.S)
_ASSIGNMENT = re.compile(r"(\s*)([^=]*?)(\s*)=(.*)$", re.S)
_SHAPE = re.compile(rf"\(?\s*({_DIM})\s*(?:×|,|\*|\s[xX]\s)\s*({_DIM})\s*\)?")
_CALL = re.compile(rf"\s*({_NAME})\s*\(")
_LOSS_NAME = "f"  # what the document calls the loss (derive.steps.F)


class ProgramError(ExpressionError):
    """A problem with a program's text at a 1-based ``line`` and ``column`` of the whole text.

    ``str(error)`` is ``"line L, column C: message"``; ``kind`` is one of
    :data:`derive.lang.KINDS`, or ``"program"`` folded into ``"syntax"`` (a statement that is neither a
    declaration nor an assignment), ``"unknown-name"``, ``"shape"``…

    >>> try:
    ...     program("X: n×d\\nparam W: d×k\\nf = sum(X*V)")
    ... except ProgramError as e:
    ...     print(e.line, e.column, e.kind)
    3 11 unknown-name
    """

    def __init__(self, message: str, line: int, column: int, token: str = "", text: str | None = None,
                 kind: str = "syntax"):
        super().__init__(message, column, token, text, kind)
        self.line = line
        self.args = (f"line {line}, column {column}: {message}",)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self):
        return (type(self), (self.message, self.line, self.column, self.token, self.text, self.kind))

    def caret(self) -> str:
        """The offending line with a caret under the column (when the text is known)."""
        if self.text is None:
            return str(self)
        lines = self.text.split("\n")
        line = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        return f"{line.replace(chr(9), ' ')}\n{' ' * (self.column - 1)}^ {self.message}"


class ProgramLimitError(ProgramError, LimitError):
    """A program refused by a limit of :mod:`derive.limits` (kind ``"limit"``)."""

    def __init__(self, message: str, line: int, column: int, token: str = "", text: str | None = None,
                 kind: str = "limit"):
        super().__init__(message, line, column, token, text, kind)


@dataclass(frozen=True)
class _Statement:
    text: str    # as typed, comment removed
    line: int    # 1-based line of the whole text
    column: int  # 1-based column of text[0] in that line


def is_program(text: str) -> bool:
    """Whether ``text`` (typed on the command line) is a program rather than one expression:
    it holds an assignment, a line break, a ``;`` or a declaration ``NAME: …``.

    >>> is_program("norm2(Y - X*W)^2"), is_program("X: n×d; f = sum(X)"), is_program("E = X*W")
    (False, True, True)
    """
    return any(c in text for c in "=\n;") or re.match(rf"\s*(param\s+)?{_NAME}\s*:", text) is not None


def _statements(text: str) -> list[_Statement]:
    """The non-empty statements of ``text``: lines cut at ``#``, then split at ``;``."""
    out: list[_Statement] = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.split("#", 1)[0].rstrip("\r")
        start = 0
        for piece in line.split(";"):
            if piece.strip():
                out.append(_Statement(piece, number, start + 1))
            start += len(piece) + 1
    return out


def _error(text: str, st: _Statement, offset: int, message: str, token: str = "", kind: str = "syntax"
           ) -> ProgramError:
    """A :class:`ProgramError` at 0-based ``offset`` of statement ``st``."""
    cls = ProgramLimitError if kind == "limit" else ProgramError
    return cls(message, st.line, st.column + offset, token, text, kind)


def _moved(text: str, st: _Statement, offset: int, e: ExpressionError) -> ProgramError:
    """``e``, raised for the part of ``st`` that starts at ``offset``, as a :class:`ProgramError`."""
    return _error(text, st, offset + e.column - 1, e.message, e.token, e.kind)


def _check_size(text: str) -> None:
    if len(text) > MAX_PROGRAM_LENGTH:
        line = text.count("\n", 0, MAX_PROGRAM_LENGTH) + 1
        column = MAX_PROGRAM_LENGTH - (text.rfind("\n", 0, MAX_PROGRAM_LENGTH) + 1) + 1
        raise ProgramLimitError(f"program longer than {MAX_PROGRAM_LENGTH} characters "
                                "(derive.limits.MAX_PROGRAM_LENGTH)", line, column, "", text)


@dataclass
class _Declared:
    kind: str      # "input", "parameter" or "scalar"
    shape: tuple   # () for a scalar
    where: _Statement
    offset: int    # of the name in the statement


def _dimension(text: str, st: _Statement, offset: int, value: str) -> sympy.Expr:
    from derive.dims import dimension

    if value.isdigit():
        if not 0 < int(value) <= MAX_DIMENSION:
            raise _error(text, st, offset, f"dimension {value} must be a positive integer of at most "
                                           f"{MAX_DIMENSION:.0e} (derive.limits.MAX_DIMENSION)", value, "shape")
        return sympy.Integer(int(value))
    return dimension(value, value)


def _declaration(text: str, st: _Statement, m: re.Match[str]) -> tuple[str, _Declared]:
    from derive.lang.functions import function_names

    _, param, name, _, spec = m.groups()
    offset = m.start(3)
    if name in function_names() or name == "param":
        raise _error(text, st, offset, f"{name!r} is a function name and cannot be declared", name)
    spec_at = m.start(5) + len(spec) - len(spec.lstrip())
    spec = spec.strip()
    if spec == "scalar":
        if param:
            raise _error(text, st, spec_at, "a parameter is a matrix: write param NAME: ROWS×COLS "
                                            "(a 1×1 matrix for a scalar parameter)", spec)
        return name, _Declared("scalar", (), st, offset)
    shape = _SHAPE.fullmatch(spec)
    if shape is None:
        raise _error(text, st, spec_at, f"expected a shape after '{name}:', such as n×d, n,d, 1×m or scalar; "
                                        f"got {spec!r}" if spec else f"expected a shape after '{name}:', such "
                                        "as n×d, n,d, 1×m or scalar", spec)
    dims = tuple(_dimension(text, st, spec_at + shape.start(i) - shape.start(0), shape.group(i)) for i in (1, 2))
    return name, _Declared("parameter" if param else "input", dims, st, offset)


def _layer_call(rhs: str) -> tuple[str, int, list[tuple[str, int]]] | None:
    """``(name, offset, [(argument, offset), …])`` where ``rhs`` is exactly one call of a registered
    layer, else None."""
    from derive.layers import layers

    m = _CALL.match(rhs)
    if m is None or m.group(1) not in layers():
        return None
    depth, args, start = 0, [], m.end()
    for i in range(m.end() - 1, len(rhs)):
        c = rhs[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                if rhs[i + 1:].strip():
                    return None   # the call is part of a larger expression
                args.append((rhs[start:i], start))
                return m.group(1), m.start(1), [(a, o) for a, o in args if a.strip() or len(args) > 1]
        elif c == "," and depth == 1:
            args.append((rhs[start:i], start))
            start = i + 1
    return None   # unbalanced: the parser says where


class _Builder:
    """The state of one program as its assignments are read in order."""

    def __init__(self, text: str, shapes: Mapping | None, syntax: str):
        self.text = text
        self.syntax = syntax
        self.given = dict(shapes or {})
        self.declared: dict[str, _Declared] = {}
        self.assigned: dict[str, _Statement] = {}
        self.inferred: dict[str, MatrixSymbol] = {}   # undeclared inputs, in order of first use
        self.stages: list[tuple[MatrixSymbol, MatrixExpr, _Statement, int]] = []
        self.scalars: dict[sympy.Symbol, sympy.Basic] = {}   # scalar intermediates, inlined
        self.scalar_lines: dict[sympy.Symbol, tuple[_Statement, int]] = {}
        self.used_scalars: set[sympy.Symbol] = set()
        self.assumptions: list = []

    def known(self) -> dict[str, tuple]:
        out = {k: tuple(v) for k, v in self.given.items() if k not in self.declared}
        out.update({k: d.shape for k, d in self.declared.items()})
        out.update({k: tuple(s.shape) for k, s in self.inferred.items()})
        out.update({s.name: tuple(s.shape) for s, _, _, _ in self.stages})
        out.update({s.name: () for s in self.scalars})
        return out

    def parse(self, st: _Statement, offset: int, expression: str) -> sympy.Basic:
        """``expression`` (at ``offset`` of ``st``) as SymPy, scalar intermediates inlined."""
        from derive.lang import parse

        if not expression.strip():
            raise _error(self.text, st, offset + len(expression), "expected an expression after '='")
        try:
            parsed = parse(expression, self.known(), syntax=self.syntax)
        except ExpressionError as e:
            raise _moved(self.text, st, offset, e) from None
        for name, symbol in parsed.symbols.items():   # inferred, or from shapes: undeclared inputs
            given = name in self.given and name not in self.declared and isinstance(symbol, MatrixSymbol)
            if name in parsed.inferred or given:
                self.inferred.setdefault(name, symbol)
        self.used_scalars.update(s for s in self.scalars if s.name in parsed.symbols)
        return parsed.expr.xreplace(self.scalars) if self.scalars else parsed.expr

    def check_new_name(self, st: _Statement, offset: int, name: str, what: str = "") -> None:
        from derive.layers import layers
        from derive.lang.functions import function_names

        prefix = f"{what}{name}" if what else name
        if name in function_names() or name in layers():
            raise _error(self.text, st, offset, f"{name!r} is a function name; choose another name", name)
        if name in self.declared:
            d = self.declared[name]
            raise _error(self.text, st, offset, f"{prefix} redefines the {d.kind} {name} declared on line "
                                                f"{d.where.line}", name, "syntax")
        if name in self.assigned:
            raise _error(self.text, st, offset, f"{prefix} is already assigned on line {self.assigned[name].line}",
                         name)
        if name in self.inferred:
            raise _error(self.text, st, offset, f"{prefix} is used as an input on an earlier line, before it is "
                                                "assigned: assign it first", name, "unknown-name")

    def assign(self, st: _Statement, lead: int, name: str, rhs: str, rhs_at: int, last: bool) -> sympy.Basic | None:
        """Read ``name = rhs``; the loss (for the ``last`` assignment) or None."""
        self.check_new_name(st, lead, name)
        if name == _LOSS_NAME and not last:
            raise _error(self.text, st, lead, f"{_LOSS_NAME} names the loss (the last line) in the document; "
                                              "give this intermediate another name", name)
        call = _layer_call(rhs)
        value = self.layer(st, name, rhs_at, *call, last) if call else self.parse(st, rhs_at, rhs)
        if name in self.inferred:
            raise _error(self.text, st, lead, f"{name} is used in its own definition", name, "unknown-name")
        self.assigned[name] = st
        if value is None:   # a matrix layer: its stages are added
            if last:
                out = self.stages[-1][0]
                raise _error(self.text, st, lead, f"the last assignment is the loss and must be a scalar; {name} "
                                                  f"is {_shape(out.shape)}", name, "shape")
            return None
        if isinstance(value, MatrixExpr):
            if value.shape == (1, 1):
                value = sympy.Trace(value)
            elif last:
                raise _error(self.text, st, lead, f"the last assignment is the loss and must be a scalar; {name} "
                                                  f"is {_shape(value.shape)}: end with e.g. "
                                                  f"f = norm2({name})^2 or f = sum({name})", name, "shape")
            else:
                self.stages.append((MatrixSymbol(name, *value.shape), value, st, lead))
                return None
        if last:
            return value
        if not isinstance(value, sympy.Expr) or isinstance(value, MatrixExpr):
            raise _error(self.text, st, rhs_at, f"{name} is neither a matrix nor a scalar", name, "shape")
        self.scalars[sympy.Symbol(name)] = value
        self.scalar_lines[sympy.Symbol(name)] = (st, lead)
        return None

    def layer(self, st: _Statement, name: str, rhs_at: int, fname: str, at: int,
              args: list[tuple[str, int]], last: bool) -> sympy.Basic | None:
        """``name = fname(args)``: the layer's sub-stages are added; a scalar layer's value returned."""
        from derive.layers import layer

        values = [self.parse(st, rhs_at + o, a) for a, o in args]
        try:
            expansion = layer(fname).expand(name, *values)
        except (ValueError, TypeError, NotImplementedError) as e:
            raise _error(self.text, st, rhs_at + at, f"{fname}: {e}", fname, "shape") from None
        if expansion.loss is not None and not last:
            return expansion.inline()
        own = len(expansion.stages) - (1 if expansion.loss is None else 0)
        for s, _ in expansion.stages[:own]:
            if s.name in self.known() or s.name in self.assigned or s.name == _LOSS_NAME:
                raise _error(self.text, st, rhs_at + at, f"{fname} names one of its steps {s.name}, which the "
                                                         f"program already uses; rename {name}", fname)
        for s, definition in expansion.stages:
            self.stages.append((s, definition, st, rhs_at + at))
        self.assumptions.extend(expansion.assumptions)
        return expansion.loss


def _shape(shape: tuple) -> str:
    from derive.dims import shape_text

    return shape_text(shape)


def program(text: str, shapes: Mapping[str, Sequence] | None = None, *, wrt: Sequence[str] | None = None,
            name: str = "program", syntax: str = "python") -> Network:
    """The :class:`~derive.networks.Network` that the program ``text`` describes (see the module).

    ``shapes`` gives the shapes of names the program uses without declaring them (``(rows, cols)``
    or ``()`` for a scalar, as :func:`derive.lang.parse` takes them); ``wrt`` the names to
    differentiate by (default: the ``param`` declarations); ``name`` the network's name;
    ``syntax`` how an error says to declare a shape (``"python"`` or ``"cli"``, as
    :func:`derive.lang.parse`).  Every problem with the text is a :class:`ProgramError`.

    >>> from derive import backprop
    >>> net = program("X: n×d; Y: n×k; param W: d×k; Z = X*W; P = softmax(Z); f = -sum(Y .* log(P))")
    >>> [s.wrt.name for s in backprop(net).sections]
    ['Y', 'P', 'Z', 'W']
    """
    if not isinstance(text, str):
        raise TypeError(f"program() takes a str, got {type(text).__name__}")
    _check_size(text)
    statements = _statements(text)
    if len(statements) > MAX_PROGRAM_STATEMENTS:
        st = statements[MAX_PROGRAM_STATEMENTS]
        raise _error(text, st, len(st.text) - len(st.text.lstrip()),
                     f"program of more than {MAX_PROGRAM_STATEMENTS} statements "
                     "(derive.limits.MAX_PROGRAM_STATEMENTS)", kind="limit")
    b = _Builder(text, shapes, syntax)
    assignments: list[tuple[_Statement, re.Match[str]]] = []
    for st in statements:
        declaration = _DECLARATION.match(st.text)
        if declaration is not None and "=" not in st.text:
            declared, d = _declaration(text, st, declaration)
            if declared in b.declared:
                raise _error(text, st, d.offset, f"{declared} is already declared on line "
                                                 f"{b.declared[declared].where.line}", declared)
            given = b.given.get(declared)
            if given is not None and _normal(given) != d.shape:
                raise _error(text, st, d.offset, f"{declared} is declared {_shape(d.shape) if d.shape else 'scalar'} "
                                                 f"but shapes gives {given!r}", declared, "shape")
            b.declared[declared] = d
            continue
        assignment = _ASSIGNMENT.match(st.text)
        if assignment is None:
            lead = len(st.text) - len(st.text.lstrip())
            raise _error(text, st, lead, f"expected a declaration (X: n×d, param W: d×m, c: scalar) or an "
                                         f"assignment (h = X*W), got {st.text.strip()!r}", st.text.strip()[:1])
        assignments.append((st, assignment))
    if not assignments:
        st = statements[-1] if statements else _Statement("", max(1, text.count("\n") + 1), 1)
        raise _error(text, st, len(st.text.rstrip()), "the program has no assignment: end it with the loss, "
                                                      "e.g. f = norm2(Y - X*W)^2", kind="syntax")
    loss = None
    for i, (st, m) in enumerate(assignments):
        lead, lhs, _, rhs = m.groups()
        if not re.fullmatch(_NAME, lhs):
            raise _error(text, st, len(lead), f"the left of '=' must be a name, got {lhs!r}" if lhs else
                         "expected a name before '='", lhs[:1] or "=")
        loss = b.assign(st, len(lead), lhs, rhs, m.start(4), last=i == len(assignments) - 1)
    last_st, last_m = assignments[-1]
    if not any(isinstance(s, MatrixSymbol) for s in loss.atoms(MatrixSymbol)):
        raise _error(text, last_st, last_m.start(4), "the loss uses no matrix of the program", kind="shape")
    return _network(b, loss, wrt, name, (last_st, len(last_m.group(1))))


def _normal(shape: Sequence) -> tuple:
    from derive.dims import dimension

    return tuple(dimension(v, "shape") for v in shape)


def _network(b: _Builder, loss: sympy.Basic, wrt: Sequence[str] | None, name: str, last: tuple) -> Network:
    """The network of the program read by ``b``: every line used, the parameters chosen."""
    from derive.networks import Network

    text = b.text
    definitions = [d for _, d, _, _ in b.stages]
    for i, (s, _, st, at) in enumerate(b.stages):
        if not any(d.has(s) for d in definitions[i + 1:]) and not loss.has(s):
            raise _error(text, st, at, f"{s.name} is assigned but never used: every line before the last must "
                                       "lead to the loss", s.name)
    for s, (st, at) in b.scalar_lines.items():
        if s not in b.used_scalars:
            raise _error(text, st, at, f"{s.name} is assigned but never used: every line before the last must "
                                       "lead to the loss", s.name)
    leaves = {k: MatrixSymbol(k, *d.shape) for k, d in b.declared.items() if d.kind != "scalar"}
    leaves.update(b.inferred)
    used = [s for s in leaves.values() if loss.has(s) or any(d.has(s) for d in definitions)]
    for k, d in b.declared.items():
        leaf = sympy.Symbol(k) if d.kind == "scalar" else leaves[k]
        if not (loss.has(leaf) or any(x.has(leaf) for x in definitions)):
            raise _error(text, d.where, d.offset, f"{d.kind} {k} is declared but never used", k)
    if wrt is None:
        params = [leaves[k] for k, d in b.declared.items() if d.kind == "parameter"]
        if not params:
            st, at = last
            raise _error(text, st, 0, "the program declares no parameter: declare one with param NAME: ROWS×COLS "
                                      "(or name the variables to differentiate by, --wrt)", kind="unknown-name")
    else:
        params = []
        for w in wrt:
            if w not in leaves or leaves[w] not in used:
                assigned = " (an intermediate: its gradient has its own section)" if w in b.assigned else ""
                raise ValueError(f"--wrt {w}: not an input or parameter of the program{assigned}; "
                                 f"choose from {', '.join(s.name for s in used)}")
            if leaves[w] not in params:
                params.append(leaves[w])
    inputs = tuple(s for s in used if s not in params)
    st, at = last
    try:
        return Network(inputs=inputs, params=tuple(params), stages=tuple((s, d) for s, d, _, _ in b.stages),
                       loss=loss, name=name, assumptions=tuple(b.assumptions))
    except (ValueError, TypeError) as e:
        raise _error(text, st, at, str(e), kind="shape") from None
