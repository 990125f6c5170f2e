"""Shape inference: unknown names get dimension variables, unified (union-find) through the
operators of the syntax tree."""
from __future__ import annotations

import sympy

from derive.lang.functions import is_elementwise
from derive.layers import layers
from derive.lang.syntax import _Node


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


class _Inference:
    """The shape rules, one per kind of node, over the dimension variables of ``u``."""

    def __init__(self, known: dict[str, tuple], u: _Unifier, ones: dict[int, tuple]) -> None:
        self.known, self.u, self.ones = known, u, ones
        self.unknown: dict[str, tuple[int, int]] = {}
        self.known_vars: dict[str, tuple] = {}

    def resolved(self, t: tuple) -> bool:
        return t[0] == "s" or (self.u.get(t[1]) is not None and self.u.get(t[2]) is not None)

    def is_1x1(self, t: tuple) -> bool:
        return t[0] == "m" and self.u.get(t[1]) == 1 and self.u.get(t[2]) == 1

    def rule(self, node: _Node, ch: list[tuple], force: bool):
        return _RULES[node.kind](self, node, ch, force)

    def ones_(self, node: _Node, ch: list[tuple], force: bool) -> tuple:
        # 𝟏 or I: a constant matrix whose shape comes from its use (I is square)
        r = self.u.new()
        self.ones[id(node)] = ("m", r, r if node.token == "eye" else self.u.new())
        return self.ones[id(node)]

    def name(self, node: _Node, ch: list[tuple], force: bool) -> tuple:
        u, token = self.u, node.token
        if token in self.known:
            if token not in self.known_vars:
                shape = self.known[token]
                self.known_vars[token] = _SCALAR if shape == () else ("m", u.new(shape[0]), u.new(shape[1]))
            return self.known_vars[token]
        if token not in self.unknown:
            self.unknown[token] = (u.new(), u.new())
        return ("m",) + self.unknown[token]

    def dims(self, node: _Node, ch: list[tuple], force: bool) -> tuple:
        dims = node.value if node.token != "eye" else node.value * 2
        return ("m", self.u.new(dims[0]), self.u.new(dims[1]))

    def binary(self, node: _Node, ch: list[tuple], force: bool):
        a, b = ch
        op = node.token
        if op in ("+", "-"):
            return self.add(a, b, force)
        if op == "/":
            return a
        if a[0] == "s" or b[0] == "s":
            if op == "./":
                return a if b[0] == "s" else b
            return b if a[0] == "s" else a
        if op == "*":
            return self.multiply(a, b)
        self.u.unify(a[1], b[1])   # .* ./
        self.u.unify(a[2], b[2])
        return a

    def add(self, a: tuple, b: tuple, force: bool):
        """A sum: equal shapes, or a broadcast once both shapes are known (pending until then)."""
        u = self.u
        if a[0] == "s" or b[0] == "s":
            return b if a[0] == "s" else a
        if u.same(a[1], b[1]) and u.same(a[2], b[2]):
            return a
        if self.resolved(a) and self.resolved(b):
            ra, ca, rb, cb = (u.get(x) for x in (a[1], a[2], b[1], b[2]))
            if self.is_1x1(a) or (ra == 1 and ca == cb) or (ca == 1 and ra == rb):
                return b
            return a
        if not force:
            return _PENDING
        u.unify(a[1], b[1])
        u.unify(a[2], b[2])
        return a

    def multiply(self, a: tuple, b: tuple) -> tuple:
        u = self.u
        if u.same(a[2], b[1]):
            return ("m", a[1], b[2])
        if u.get(a[2]) is not None and u.get(b[1]) is not None:
            if self.is_1x1(a):
                return b
            if self.is_1x1(b):
                return a
            return ("m", a[1], b[2])
        u.unify(a[2], b[1])
        return ("m", a[1], b[2])

    def power(self, node: _Node, ch: list[tuple], force: bool) -> tuple:
        base = ch[0]
        if base[0] == "s" or node.token == ".^":
            return base
        if self.is_1x1(base):
            return _SCALAR
        self.u.unify(base[1], base[2])
        return base

    def layer(self, node: _Node, ch: list[tuple]) -> tuple:
        """A layer call: the dimensions its signature shares are one; the value has its output shape."""
        letters: dict[object, int] = {}

        def var(letter: object) -> int:
            if letter == 1:
                return self.u.new(sympy.Integer(1))
            if letter not in letters:
                letters[letter] = self.u.new()
            return letters[letter]

        record = layers()[node.token]
        for want, got in zip(record.signature, ch):
            if want != () and got[0] == "m":
                self.u.unify(var(want[0]), got[1])
                self.u.unify(var(want[1]), got[2])
        return _SCALAR if record.output == () else ("m", var(record.output[0]), var(record.output[1]))

    def kronecker(self, fname: str, ch: list[tuple]) -> tuple:
        """kron(A, B): (rows·rows, cols·cols); vec(A): (rows·cols, 1); diag(v): v is a column, n×n."""
        if any(t[0] != "m" for t in ch):
            return _SCALAR   # the builder says that these take matrices

        def product(*vs: int) -> int:
            values = [self.u.get(v) for v in vs]
            return self.u.new(None if any(v is None for v in values) else sympy.Mul(*values))

        if fname == "kron":
            (_, ra, ca), (_, rb, cb) = ch
            return ("m", product(ra, rb), product(ca, cb))
        (_, r, c) = ch[0]
        if fname == "vec":
            return ("m", product(r, c), self.u.new(sympy.Integer(1)))
        self.u.unify(c, self.u.new(sympy.Integer(1)))
        return ("m", r, r)

    def call(self, node: _Node, ch: list[tuple], force: bool) -> tuple:
        if node.token in layers():
            return self.layer(node, ch)
        fname, arg = node.token, ch[0]
        if fname in ("kron", "vec", "diag"):
            return self.kronecker(fname, ch)
        if is_elementwise(fname):
            return _SCALAR if self.is_1x1(arg) else arg
        if fname in ("tr", "det", "logdet", "inv", "expm") and arg[0] == "m":
            self.u.unify(arg[1], arg[2])
        return arg if fname in ("inv", "expm") else _SCALAR


_RULES = {
    "num": lambda self, node, ch, force: _SCALAR,
    "ones": _Inference.ones_,
    "name": _Inference.name,
    "dims": _Inference.dims,
    "unary": lambda self, node, ch, force: ch[0],
    "post": lambda self, node, ch, force: ch[0] if ch[0][0] == "s" else ("m", ch[0][2], ch[0][1]),
    "bin": _Inference.binary,
    "pow": _Inference.power,
    "call": _Inference.call,
    "grad": lambda self, node, ch, force: ch[0],    # ∂f/∂X has X's shape
    "diff": lambda self, node, ch, force: ch[0],    # dA has A's shape
}


def _infer(root: _Node, order: list[_Node], known: dict[str, tuple],
           u: _Unifier, ones: dict[int, tuple] | None = None) -> dict[str, tuple[int, int]]:
    """Give unknown names dimension variables and unify them through the operators.

    Sums whose shapes are still open are deferred (they may broadcast once the shapes
    are known) and, when nothing else can move, the first is forced to equal shapes.
    Returns the variables of the unknown names; ``ones`` receives those of each 𝟏
    written without dimensions (keyed on the node's id).
    """
    inference = _Inference(known, u, {} if ones is None else ones)
    types: dict[int, tuple] = {}
    while id(root) not in types:
        progress = False
        first_pending = None
        for node in order:
            if id(node) in types or any(id(c) not in types for c in node.children):
                continue
            t = inference.rule(node, [types[id(c)] for c in node.children], force=False)
            if t is _PENDING:
                first_pending = first_pending or node
            else:
                types[id(node)] = t
                progress = True
        if not progress and first_pending is not None:
            types[id(first_pending)] = inference.rule(
                first_pending, [types[id(c)] for c in first_pending.children], force=True)
    return inference.unknown
