"""A small hash-consed dataflow graph of matrix computations, which SymPy expressions are lowered to.

Every SymPy subexpression becomes a :class:`Node` (:mod:`numeric.lower`).  Nodes are built by smart
constructors on a :class:`Graph` that fold constants, pull scalar coefficients
to the outside of products, cancel double transposes and give sums a canonical
sign, then look the result up in a table: equal computations are one node, which
is the common-subexpression elimination across all outputs.

A node records two shapes.  ``shape`` is the true (symbolic) shape of the value;
``rt`` is the shape of the array that holds it at run time, where an axis of
size 1 may stand for a longer axis along which the value is constant (``1·b``
is held as the row ``b``; ``OneMatrix(n, m)`` as the float ``1.0``, ``rt=None``).
NumPy broadcasting makes such values correct in every elementwise operation;
products and reductions are rewritten so that they never need the full array:

* ``A·B`` with A constant along its columns (A = a·1ᵀ): ``a * B.sum(axis=0)``;
* ``A·B`` with B constant along its rows (B = 1·b): ``A.sum(axis=1) * b``;
* both: ``p * a * b`` where p is the inner dimension;
* inner dimension literally 1: the outer product ``a * b``.

The smart constructors also apply the named numerical rewrites of :data:`REWRITES`
(all on by default; ``Graph(args, rewrites=...)`` chooses).  They match the
hash-consed graph, so a pattern is recognised wherever it occurs, in any output:

* ``log_sigmoid``: log σ(a) → −softplus(−a), log(1 − σ(a)) → −softplus(a);
* ``log_sum_exp``: log(exp(A)·𝟏) → log(exp(A − m)·𝟏) + m with m the row maximum
  of A (``A.max(axis=1, keepdims=True)``), and 𝟏ᵀexp(A) likewise by columns;
  log(exp(A)) → A (a sum of one term);
* ``softmax``: exp(A) ⊙ ((exp(A)·𝟏)^∘−1 𝟏ᵀ) → exp(A − m) ⊙ ((exp(A − m)·𝟏)^∘−1 𝟏ᵀ),
  the Hadamard factors in any order, inside any product;
* ``cancel_powers``: f ⊙ f^∘p → f^∘(1+p), dropped at 0 (P ⊙ P^∘−1 ⊙ Y → Y), with a power of a
  product spread over its factors where one of them stands beside it, and (f^∘a)^∘b → f^∘ab for an
  integer b or a positive f;
* ``log_product``: log(c·Π fᵢ) → log c + Σ log fᵢ and log f^p → p log f where every factor is
  positive by construction (exp(a), exp(A − m), a sum or power of those): the log of a softmax is (A − m) − log(exp(A − m)·𝟏)𝟏ᵀ,
  finite where the softmax itself underflows to 0.

Both exp rewrites build the same ``max`` node m and the same ``expshift`` node
exp(A − m) for one A, so a loss and its gradient compiled together share them.
``exp_scale`` (:meth:`Graph.stabilize`, after lowering) computes with exp(A − m) every
subexpression whose value does not change when a row of exp(A) is scaled, such as the
derivative of a softmax ((G ⊙ exp(A))𝟏) ⊙ (exp(A)𝟏)^∘−2 ⊙ exp(A).

Inner products ⟨a, b⟩ (a loss tr(Rᵀ·Y)) distribute over the terms of b and sum a broadcast
factor's axis first (⟨R, 𝟏γ ⊙ X̂⟩ = ⟨𝟏ᵀ(R ⊙ X̂), γ⟩), so that no array is formed for them;
a chain of products reuses a product of neighbours the graph has already computed.  The
values a program names (:meth:`numeric.lower.Builder.bind`) are ``pinned``: sums and
products keep them whole, so each is computed once.

The smart constructors pull scalar coefficients outwards; :meth:`Graph.share_scale` (after lowering)
puts a coefficient that several outputs share on the one node they are all linear in (the residual
of a loss: G = −2R once, not −2 times each gradient).

A scalar argument (a SymPy ``Symbol`` that is not a dimension) is an ``arg`` node of
shape None: at run time it is a NumPy scalar of the computation's dtype.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import sympy
from sympy import Basic, MatrixSymbol

from numeric import registry

__all__ = ["REWRITES", "Graph", "Node", "UnsupportedExpression", "is_number", "shape_text"]

Shape = tuple  # (rows, cols) of SymPy integers/symbols, or None for a scalar


class UnsupportedExpression(NotImplementedError):
    """A construct that ``numeric`` cannot compile; the message names it."""


@dataclass(eq=False)
class Node:
    op: str
    args: tuple[Node, ...]
    attr: Any
    shape: Shape | None
    rt: Shape | None
    serial: int = field(default=0)

    @property
    def is_scalar_rt(self) -> bool:
        return self.rt is None

    def collapsed(self, axis: int) -> bool:
        """True when the run-time array has size 1 along ``axis`` but the value does not."""
        if self.shape is None:
            return False
        true = self.shape[axis]
        run = 1 if self.rt is None else self.rt[axis]
        return run == 1 and true != 1

    @property
    def full(self) -> bool:
        return self.rt is not None and not self.collapsed(0) and not self.collapsed(1)

    def __repr__(self) -> str:
        return f"Node#{self.serial}({self.op}, {self.attr!r}, shape={self.shape}, rt={self.rt})"


def _fold(compute: Callable[[], object], numpy_compute: Callable[[], object]) -> float:
    """A constant's value; where Python's math fails (log 0, 0⁻¹, exp 1000, (−1)^½) NumPy's value
    (inf or nan, with NumPy's warning), as the kernel would compute it for an array."""
    try:
        value = compute()
        if isinstance(value, (int, float)):
            return float(value)
    except (ArithmeticError, ValueError):
        pass
    return float(numpy_compute())


# The named rewrites of the smart constructors (module docstring), name → what it does.
REWRITES: dict[str, str] = {
    "log_sigmoid": "log σ(a) → −softplus(−a); log(1 − σ(a)) → −softplus(a)",
    "log_sum_exp": "log(exp(A)·𝟏) → log(exp(A − m)·𝟏) + m, m = max of each row of A (columns for 𝟏ᵀexp(A)); "
                   "log(exp(A)) → A",
    "softmax": "exp(A) ⊙ ((exp(A)·𝟏)^∘−1 𝟏ᵀ) → exp(A − m) ⊙ ((exp(A − m)·𝟏)^∘−1 𝟏ᵀ)",
    "cancel_powers": "f ⊙ f^∘p → f^∘(1+p), dropped at 0; (Π gᵢ)^∘p spread over its factors where one stands "
                     "beside it; (f^∘a)^∘b → f^∘ab (b an integer or f positive)",
    "log_product": "log(c·Π fᵢ) → log c + Σ log fᵢ for factors positive by construction (exp(a), exp(A − m), "
                   "sums and powers of those): log softmax(A) → (A − m) − log(exp(A − m)·𝟏)𝟏ᵀ",
    "exp_scale": "a product unchanged when each row of exp(A) is scaled (its degree in exp(A) is 0, as "
                 "in ((G ⊙ exp(A))𝟏) ⊙ (exp(A)𝟏)^∘−2 ⊙ exp(A), a softmax's derivative) → the same with "
                 "exp(A − m); by columns likewise",
}
# The functions of the log_sigmoid rewrite, by SymPy class name (derive registers both).
SIGMOID, SOFTPLUS = "Sigmoid", "Softplus"


def is_number(x: Node) -> bool:
    """x is computed from dimensions and constants alone by arithmetic: at run time a Python number
    (weakly typed: it leaves a float32 array float32 in every array library).

    >>> from sympy import MatrixSymbol, Symbol
    >>> n = Symbol("n", integer=True, positive=True)
    >>> g = Graph([MatrixSymbol("X", n, 3)])
    >>> is_number(g.pow(g.dim(n), -0.5)), is_number(g.arg_nodes[MatrixSymbol("X", n, 3)])
    (True, False)
    """
    if x.op in ("dim", "const"):
        return True
    return x.op in ("add", "mul", "pow") and x.rt is None and all(is_number(a) for a in x.args)


def _unbroadcast(x: Node) -> Node:
    """x without ``mul`` wrappers that only give it a larger (broadcast) true shape."""
    while x.op == "mul" and x.attr == 1.0 and len(x.args) == 1:
        x = x.args[0]
    return x


def _sum_of_exp(x: Node) -> tuple[str, Node] | None:
    """(``sum1``/``sum0``, the exp node) when x is exp(A)·𝟏 or 𝟏ᵀ·exp(A), maybe broadcast;
    also when x is exp(A) itself with A one column (row): the sum of one term."""
    x = _unbroadcast(x)
    if x.op in ("sum0", "sum1") and x.args[0].op == "fn" and x.args[0].attr == "exp":
        return x.op, x.args[0]
    if x.op == "sumall" and x.args[0].op == "fn" and x.args[0].attr == "exp" and x.args[0].full:
        # Σ exp(a) over a column (row): the sum along its one axis
        E = x.args[0]
        if _is_one(E.shape[1]):
            return "sum0", E
        if _is_one(E.shape[0]):
            return "sum1", E
    if x.op == "fn" and x.attr == "exp" and x.full:
        if _is_one(x.shape[1]):
            return "sum1", x
        if _is_one(x.shape[0]):
            return "sum0", x
    return None


def _total_of_exp(x: Node) -> Node | None:
    """A where x is Σᵢⱼ exp(A)ᵢⱼ, the sum of all entries (of exp(A), of its transpose, of its row or
    column sums); else None."""
    if x.op != "sumall":
        return None
    inner = x.args[0]
    inner = inner.args[0] if inner.op == "T" else inner
    inner = inner.args[0] if inner.op in ("sum0", "sum1") else inner
    inner = inner.args[0] if inner.op == "T" else inner
    if inner.op == "fn" and inner.attr == "exp" and inner.rt is not None:
        return inner.args[0]
    return None


def _positive(x: Node) -> bool:
    """x is positive by construction: exp(a), exp(A − m), or sums, positive multiples and powers of those."""
    x = _unbroadcast(x)
    if (x.op == "fn" and x.attr == "exp") or x.op == "expshift":
        return True
    if x.op in ("sum0", "sum1", "sumall", "pow"):
        return _positive(x.args[0])
    if x.op == "mul":
        return x.attr > 0.0 and all(_positive(f) for f in x.args)
    return False


def _is_one(d) -> bool:
    return d == 1


def _bshape(shapes: Sequence[Shape | None]) -> Shape | None:
    """Broadcast of 2-D shapes (None = scalar); an axis is 1 only if it is 1 everywhere."""
    shapes = [s for s in shapes if s is not None]
    if not shapes:
        return None
    out = []
    for axis in range(2):
        sizes = [s[axis] for s in shapes if not _is_one(s[axis])]
        out.append(sizes[0] if sizes else sympy.Integer(1))
    return tuple(out)


def shape_text(shape: Shape | None) -> str:
    """``4×3`` for the shape (4, 3), ``scalar`` for None: numeric's one way of writing a shape.

    >>> shape_text((4, 3)), shape_text(None)
    ('4×3', 'scalar')
    """
    return "scalar" if shape is None else f"{shape[0]}×{shape[1]}"


class Graph:
    """The nodes of expressions over the arguments ``args`` (matrix symbols and scalar symbols),
    built by smart constructors; :class:`numeric.lower.Builder` lowers SymPy expressions onto it.

    >>> from sympy import MatrixSymbol
    >>> A = MatrixSymbol("A", 2, 3)
    >>> g = Graph([A])
    >>> a = g.arg_nodes[A]
    >>> g.add([a, g.mul([a], coef=-1.0), a]) is a, g.T(g.T(a)) is a
    (True, True)
    """

    def __init__(self, args: Sequence[MatrixSymbol | sympy.Symbol], rewrites: Iterable[str] | None = None):
        self._table: dict[tuple, Node] = {}
        self._memo: dict[Basic, Node] = {}
        # values a program names (its stages): sums and products do not take them apart, so that each
        # is computed once and read where it is used
        self.pinned: set[Node] = set()
        self._serial = 0
        self.rewrites = frozenset(REWRITES if rewrites is None else rewrites)
        unknown = sorted(self.rewrites - set(REWRITES))
        if unknown:
            raise ValueError(f"unknown rewrite {', '.join(unknown)}; the rewrites are {', '.join(REWRITES)}")
        self.args = list(args)
        self.arg_nodes: dict[MatrixSymbol | sympy.Symbol, Node] = {}
        for a in self.args:
            if isinstance(a, MatrixSymbol):
                self.arg_nodes[a] = self._make("arg", (), a.name, tuple(a.shape), tuple(a.shape))
            else:  # a scalar argument
                self.arg_nodes[a] = self._make("arg", (), a.name, None, None)

    # ----- hash-consing -------------------------------------------------------------------
    def _make(self, op: str, args: tuple[Node, ...], attr: Any, shape: Shape | None,
              rt: Shape | None) -> Node:
        key = (op, tuple(a.serial for a in args), attr, shape)
        node = self._table.get(key)
        if node is None:
            node = Node(op, args, attr, shape, rt, self._serial)
            self._serial += 1
            self._table[key] = node
        return node

    # ----- leaves ---------------------------------------------------------------------------
    def const(self, value: float, shape: Shape | None = None) -> Node:
        return self._make("const", (), float(value), shape, None)

    def dim(self, d: Basic) -> Node:
        d = sympy.sympify(d)
        if d.is_Integer:
            return self.const(int(d))
        return self._make("dim", (), d, None, None)

    def eye(self, n: Basic) -> Node:
        return self._make("eye", (), None, (n, n), (n, n))

    # ----- elementwise ------------------------------------------------------------------
    def add(self, terms: Sequence[Node], shape: Shape | None = None) -> Node:
        """Σ terms, as a canonical ``add`` node: constant + Σ cᵢ·tᵢ, first cᵢ positive."""
        if shape is None:
            shape = _bshape([t.shape for t in terms])
        const = 0.0
        coefs: dict[Node, float] = {}

        def collect(t: Node, c: float) -> None:
            nonlocal const
            if t.op == "const":
                const += c * t.attr
            elif t.op == "add" and t not in self.pinned:
                const += c * t.attr[0]
                for sub, sc in zip(t.args, t.attr[1]):
                    collect(sub, c * sc)
            elif t.op == "mul" and t.attr != 1.0 and t not in self.pinned:
                collect(self.mul(t.args, t.shape), c * t.attr)
            else:
                coefs[t] = coefs.get(t, 0.0) + c

        for t in terms:
            collect(t, 1.0)
        items = sorted(((t, c) for t, c in coefs.items() if c != 0.0), key=lambda tc: tc[0].serial)
        if not items:
            return self.const(const, shape)
        if const == 0.0 and len(items) == 1:
            t, c = items[0]
            return self.mul([t], shape, coef=c)
        if shape is not None and all(t.op == "T" for t, _ in items):
            # Aᵀ + Bᵀ = (A + B)ᵀ: SymPy pushes transposes inwards, we pull them out
            inner = [self.mul([t.args[0]], coef=c) for t, c in items]
            if const != 0.0:
                inner.append(self.const(const))
            return self.T(self.add(inner, (shape[1], shape[0])))
        sign = 1.0
        if const == 0.0 and items[0][1] < 0:
            # Y − Ŷ and Ŷ − Y are one node: −1 moves into the enclosing product
            sign = -1.0
            items = [(t, -c) for t, c in items]
        rt = _bshape([t.rt for t, _ in items])
        node = self._make("add", tuple(t for t, _ in items), (const, tuple(c for _, c in items)), shape, rt)
        return node if sign == 1.0 else self.mul([node], shape, coef=-1.0)

    def mul(self, factors: Sequence[Node], shape: Shape | None = None, coef: float = 1.0) -> Node:
        """coef · Π factors, elementwise (scalars broadcast); constants folded into coef."""
        if shape is None:
            shape = _bshape([f.shape for f in factors])
        flat: list[Node] = []

        def collect(f: Node) -> None:
            nonlocal coef
            if f.op == "const":
                coef *= f.attr
            elif f.op == "mul" and f not in self.pinned:
                coef *= f.attr
                for sub in f.args:
                    collect(sub)
            else:
                flat.append(f)

        for f in factors:
            collect(f)
        if not flat or coef == 0.0:
            return self.const(coef if flat == [] else 0.0, shape)
        if "softmax" in self.rewrites:
            flat = self._stable_softmax(flat)
        if "cancel_powers" in self.rewrites:
            flat, coef = self._cancel_powers(flat, coef)
            if not flat:
                return self.const(coef, shape)
        flat = self._reuse_pinned(flat)
        flat.sort(key=lambda f: f.serial)
        shaped = [f for f in flat if f.shape is not None]
        if shape is not None and shaped and len(shaped) == len(flat) and all(f.op == "T" for f in shaped):
            # Aᵀ ⊙ Bᵀ = (A ⊙ B)ᵀ (not with scalar factors: T() would pull them out again, forever)
            inner = [f.args[0] if f.op == "T" else f for f in flat]
            return self.T(self.mul(inner, (shape[1], shape[0]), coef))
        if coef == 1.0 and len(flat) == 1 and flat[0].shape == shape:
            return flat[0]
        rt = _bshape([f.rt for f in flat])
        return self._make("mul", tuple(flat), coef, shape, rt)

    def _cancel_powers(self, flat: list[Node], coef: float) -> tuple[list[Node], float]:
        """Factors with the powers of one base merged (f ⊙ f^∘p → f^∘(1+p), none at 0) where a power
        is among them, after spreading a power of a product (c·Π gᵢ)^∘p = c^p·Π gᵢ^∘p over its
        factors where one of the gᵢ stands beside it; ``(flat, coef)`` unchanged otherwise."""
        def base(f: Node) -> tuple[Node, float]:
            return (f.args[0], f.attr) if f.op == "pow" else (f, 1.0)

        present = {base(f)[0] for f in flat}
        spread: list[Node] = []
        scale = coef
        for f in flat:
            inner = f.args[0] if f.op == "pow" else None
            if (inner is not None and inner.op == "mul" and (f.attr.is_integer() or _positive(inner))
                    and any(base(g)[0] in present for g in inner.args)):
                scale *= inner.attr ** f.attr
                spread += [self.pow(g, f.attr) for g in inner.args]
            else:
                spread.append(f)
        groups: dict[Node, list[Node]] = {}
        for f in spread:
            groups.setdefault(base(f)[0], []).append(f)
        if len(spread) == len(flat) and all(len(g) == 1 or all(f.op != "pow" for f in g) for g in groups.values()):
            return flat, coef
        out: list[Node] = []
        for b, members in groups.items():
            if len(members) == 1 or all(f.op != "pow" for f in members):
                out += members
            else:
                p = math.fsum(base(f)[1] for f in members)
                if abs(p - round(p)) < 1e-12:   # 0.1 + 0.2 − 0.3 is 0: the powers cancel
                    p = float(round(p))
                if p != 0.0:
                    out.append(self.pow(b, p))
        return out, scale

    def _reuse_pinned(self, flat: list[Node]) -> list[Node]:
        """Factors that make up a named product of the program (a pinned ``mul``, coefficient 1), as
        P = exp(A − m) ⊙ s^∘−1 in exp(A − m) ⊙ s^∘−1 ⊙ G: that product, computed once, instead."""
        for P in self.pinned:
            if P.op != "mul" or P.attr != 1.0 or len(P.args) >= len(flat):
                continue
            rest = list(flat)
            for f in P.args:
                if f not in rest:
                    break
                rest.remove(f)
            else:
                return [*rest, P]
        return flat

    def _stable_softmax(self, flat: list[Node]) -> list[Node]:
        """Factors exp(A) and (exp(A)·𝟏)^∘−1 (by columns: (𝟏ᵀexp(A))^∘−1) → exp(A − m), (exp(A − m)·𝟏)^∘−1."""
        for i, f in enumerate(flat):
            if f.op == "pow" and f.attr == -2.0:
                flat = self._softmax_outer(flat, i)
                if flat[i] is not f:
                    return self._stable_softmax(flat)
            if f.op != "pow" or f.attr != -1.0:
                continue
            A = _total_of_exp(f.args[0])
            if A is not None and f.shape is None:   # exp(A)/Σᵢⱼ exp(A): by the largest entry
                j = next((j for j, g in enumerate(flat) if g.op == "fn" and g.attr == "exp" and g.args[0] is A), None)
                if j is not None:
                    _, e, s = self._shifted_total(A)
                    rest = [g for idx, g in enumerate(flat) if idx not in (i, j)]
                    return self._stable_softmax([*rest, e, self.pow(s, -1.0)])
            found = _sum_of_exp(f.args[0])
            if found is None or not any(g is found[1] for g in flat):
                continue
            reduce_op, E = found
            _, e, s = self._shifted_exp(E.args[0], 1 if reduce_op == "sum1" else 0)
            j = next(j for j, g in enumerate(flat) if g is E)
            rest = [g for idx, g in enumerate(flat) if idx not in (i, j)]
            return self._stable_softmax([*rest, e, self.pow(s, -1.0)])
        return flat

    def _softmax_outer(self, flat: list[Node], i: int) -> list[Node]:
        """s^−2 ⊙ e ⊙ eᵀ (e = exp(a) a column, s = Σ e: the outer product in a softmax's Hessian) →
        p ⊙ pᵀ with p = e ⊙ s^−1, which the softmax rewrite then shifts; ``flat`` unchanged otherwise."""
        found = _sum_of_exp(flat[i].args[0])
        if found is None:
            return flat
        E = found[1]
        j = next((j for j, g in enumerate(flat) if g is E), None)
        k = next((k for k, g in enumerate(flat) if g.op == "T" and g.args[0] is E), None)
        if j is None or k is None:
            return flat
        p = self.mul([E, self.pow(flat[i].args[0], -1.0)], E.shape)
        rest = [g for idx, g in enumerate(flat) if idx not in (i, j, k)]
        return [p, *rest, self.T(p)]

    def _shifted_exp(self, A: Node, axis: int) -> tuple[Node, Node, Node]:
        """m = the maximum of A along ``axis`` (keepdims), e = exp(A − m) and s = Σ_axis e."""
        if axis == 1:
            shape, rt = (A.shape[0], sympy.Integer(1)), (A.rt[0], sympy.Integer(1))
        else:
            shape, rt = (sympy.Integer(1), A.shape[1]), (sympy.Integer(1), A.rt[1])
        m = self._make("max", (A,), axis, shape, rt)
        e = self._make("expshift", (A, m), None, A.shape, A.rt)
        return m, e, self._reduce("sum1" if axis == 1 else "sum0", e)

    def _shifted_total(self, A: Node) -> tuple[Node, Node, Node]:
        """m = the largest entry of A (a scalar), e = exp(A − m) and s = Σᵢⱼ e."""
        one = sympy.Integer(1)
        rows = self._make("max", (A,), 1, (A.shape[0], one), (A.rt[0], one))
        m = self._make("item", (self._make("max", (rows,), 0, (one, one), (one, one)),), (0, 0), None, None)
        e = self._make("expshift", (A, m), None, A.shape, A.rt)
        return m, e, self.sumall(e)

    def split_scalar(self, x: Node) -> tuple[float, list[Node], Node]:
        """x = c · (scalar-valued factors) · core, for pulling scalars out of products."""
        if x.op != "mul":
            return 1.0, [], x
        scalars = [f for f in x.args if f.shape is None]
        rest = [f for f in x.args if f.shape is not None]
        if not rest:
            return x.attr, scalars, self.const(1.0, x.shape)
        if len(rest) == 1 and rest[0].shape == x.shape:
            core = rest[0]
        else:
            core = self.mul(rest, x.shape)
        return x.attr, scalars, core

    def pow(self, base: Node, p: float) -> Node:
        if p == 1.0:
            return base
        if p == 0.0:
            return self.const(1.0, base.shape)
        if base.op == "const":
            return self.const(_fold(lambda: base.attr ** p,
                                    lambda: np.float64(base.attr) ** np.float64(p)), base.shape)
        if base.op == "T":
            return self.T(self.pow(base.args[0], p))
        if "cancel_powers" in self.rewrites and base.op == "pow" and (float(p).is_integer() or _positive(base.args[0])):
            return self.pow(base.args[0], base.attr * p)  # (f^∘a)^∘b = f^∘ab
        return self._make("pow", (base,), float(p), base.shape, base.rt)

    def powv(self, base: Node, p: Node) -> Node:
        if p.op == "const":
            return self.pow(base, p.attr)
        shape = _bshape([base.shape, p.shape])
        return self._make("powv", (base, p), None, shape, _bshape([base.rt, p.rt]))

    def fn(self, name: str, x: Node) -> Node:
        """The registered function ``name`` (a SymPy class name) applied to every entry of x."""
        if x.op == "const":
            return self.const(registry.function(name).value(x.attr), x.shape)
        if name == "log" and "log_sigmoid" in self.rewrites and registry.function(SOFTPLUS) is not None:
            if x.op == "fn" and x.attr == SIGMOID:
                # log σ(a) = −softplus(−a): finite where σ(a) underflows
                return self.mul([self.fn(SOFTPLUS, self.mul([x.args[0]], coef=-1.0))], coef=-1.0)
            if x.op == "add" and x.attr[0] == 1.0 and len(x.args) == 1 \
                    and x.attr[1][0] == -1.0 and x.args[0].op == "fn" and x.args[0].attr == SIGMOID:
                # log(1 − σ(a)) = −softplus(a)
                return self.mul([self.fn(SOFTPLUS, x.args[0].args[0])], coef=-1.0)
        if name == "log" and "log_product" in self.rewrites and x.op in ("mul", "pow") and _positive(x):
            if x.op == "pow":   # log f^p = p log f, f positive
                return self.mul([self.fn("log", x.args[0])], x.shape, coef=x.attr)
            return self._log_product(x)
        if name == "log" and "log_sum_exp" in self.rewrites:
            if x.op == "fn" and x.attr == "exp":
                return x.args[0]  # log exp(a) = a, also where exp(a) overflows or underflows
            found = _sum_of_exp(x)
            if found is not None:
                # log Σ exp(a) = log Σ exp(a − max a) + max a: no overflow, no log 0
                m, _, s = self._shifted_exp(found[1].args[0], 1 if found[0] == "sum1" else 0)
                out = self.mul([self.add([self.fn("log", s), m])], x.shape)
                if x.shape is None and out.shape is not None:   # Σ over one column or row: a scalar
                    out = self._make("item", (out,), (0, 0), None, None)
                return out
            A = _total_of_exp(x)
            if A is not None:   # over all entries: the largest entry of A
                m, _, s = self._shifted_total(A)
                return self.add([self.fn("log", s), m])
        if x.op == "T":
            return self.T(self.fn(name, x.args[0]))
        return self._make("fn", (x,), name, x.shape, x.rt)

    def _log_product(self, x: Node) -> Node:
        """log(c·Π fᵢ) = log c + Σ log fᵢ for a product ``x`` of positive factors (:func:`_positive`):
        log exp(a) = a, log exp(A − m) = A − m, log s^p = p·log s (s itself by these rules and
        ``log_sum_exp``), so no factor's underflow to 0 reaches a log."""
        terms = [self.const(float(np.log(x.attr)))] if x.attr != 1.0 else []
        for f in x.args:
            f = _unbroadcast(f)
            if f.op == "expshift":
                A, m = f.args
                terms += [A, self.mul([m], coef=-1.0)]
            elif f.op == "pow":
                terms.append(self.mul([self.fn("log", f.args[0])], coef=f.attr))
            else:
                terms.append(self.fn("log", f))
        return self.mul([self.add(terms)], x.shape)

    # ----- structure ------------------------------------------------------------------------
    def T(self, x: Node) -> Node:
        if x.shape is None:
            return x
        shape = (x.shape[1], x.shape[0])
        if x.op == "T":
            return x.args[0]
        if x.op == "const":
            return self.const(x.attr, shape)
        if x.op == "eye":
            return x
        if x.op == "mul" and any(f.shape is None for f in x.args):
            c, scalars, core = self.split_scalar(x)
            return self.mul([*scalars, self.T(core)], shape, coef=c)
        rt = None if x.rt is None else (x.rt[1], x.rt[0])
        return self._make("T", (x,), None, shape, rt)

    def _reduce(self, op: str, x: Node) -> Node:
        axis = 0 if op == "sum0" else 1
        shape = (sympy.Integer(1), x.shape[1]) if axis == 0 else (x.shape[0], sympy.Integer(1))
        c, scalars, core = self.split_scalar(x)
        if c != 1.0 or scalars:
            return self.mul([*scalars, self._reduce(op, core)], shape, coef=c)
        if x.op == "T":
            # 1ᵀAᵀ = (A 1)ᵀ
            return self.T(self._reduce("sum1" if axis == 0 else "sum0", x.args[0]))
        if x.op == "mul" and x not in self.pinned:
            # Σⱼ aᵢbᵢⱼ = aᵢ Σⱼ bᵢⱼ: a factor constant along the summed axis multiplies the sum
            along = [f for f in x.args if f.rt is None or _is_one(f.rt[axis])]
            if along and len(along) < len(x.args):
                rest = [f for f in x.args if f not in along]
                return self.mul([*along, self._reduce(op, self.mul(rest, x.shape))], shape)
        rt = (sympy.Integer(1), x.rt[1]) if axis == 0 else (x.rt[0], sympy.Integer(1))
        return self._make(op, (x,), None, shape, rt)

    def matmul(self, a: Node, b: Node) -> Node:
        """a·b for nodes of true shapes (r, p), (p, c), never expanding broadcast values."""
        r, p = a.shape
        p2, c = b.shape
        if p != p2:
            raise ValueError(f"matrix product of {shape_text(a.shape)} and {shape_text(b.shape)}")
        shape = (r, c)
        ca, sa, a_core = self.split_scalar(a)
        cb, sb, b_core = self.split_scalar(b)
        if ca != 1.0 or cb != 1.0 or sa or sb:
            return self.mul([*sa, *sb, self.matmul(a_core, b_core)], shape, coef=ca * cb)
        if a.op == "const" and b.op == "const":
            return self.mul([self.dim(p)], shape, coef=a.attr * b.attr)
        if a.op == "eye":
            return b
        if b.op == "eye":
            return a
        if a.op == "T" and b.op == "T":
            # Aᵀ Bᵀ = (B A)ᵀ
            return self.T(self.matmul(b.args[0], a.args[0]))
        if _is_one(p):
            # outer product: (r×1)(1×c) is a broadcast product
            return self.mul([a, b], shape)
        a_col = a.collapsed(1) or a.rt is None  # a = ã·1ᵀ
        b_row = b.collapsed(0) or b.rt is None  # b = 1·b̃
        # a constant along its columns is held as its first column ã (n×1 or a scalar):
        # a·b = ã·(1ᵀb); likewise b constant along its rows is held as its first row b̃
        if a_col and b_row:
            return self.mul([self.dim(p), a, b], shape)
        if a_col:
            return self.mul([a, self._reduce("sum0", b)], shape)
        if b_row:
            return self.mul([self._reduce("sum1", a), b], shape)
        # a product already computed as one chain of factors is that node, however grouped
        chain = (*(a.args if a.op in ("matmul", "multidot") else (a,)),
                 *(b.args if b.op in ("matmul", "multidot") else (b,)))
        if len(chain) > 2:
            known = self._existing("multidot", chain, shape)
            if known is not None:
                return known
        return self._make("matmul", (a, b), None, shape, (a.rt[0], b.rt[1]))

    def _existing(self, op: str, args: Sequence[Node], shape: Shape) -> Node | None:
        """The node ``op(args)`` if the graph has it already (never makes one)."""
        return self._table.get((op, tuple(x.serial for x in args), None, shape))

    def multidot(self, factors: Sequence[Node]) -> Node:
        shape = (factors[0].shape[0], factors[-1].shape[1])
        for i in range(len(factors) - 1):
            # a product of neighbours the graph has already computed is reused: (AB)C, A(BC)
            pair = self._existing("matmul", factors[i:i + 2], (factors[i].shape[0], factors[i + 1].shape[1]))
            if pair is not None:
                rest = [*factors[:i], pair, *factors[i + 2:]]
                return rest[0] if len(rest) == 1 else self.matmul(*rest) if len(rest) == 2 else self.multidot(rest)
        return self._make("multidot", tuple(factors), None, shape, (factors[0].rt[0], factors[-1].rt[1]))

    def materialize(self, x: Node) -> Node:
        """x as an array of its true shape (a view where x is a broadcast value)."""
        if x.full:
            return x
        return self._make("bcast", (x,), None, x.shape, x.shape)

    def sumall(self, x: Node) -> Node:
        """Σ of all entries of x (true shape), summing the run-time array once."""
        if x.op == "const":
            return self.mul([self.dim(x.shape[0]), self.dim(x.shape[1])], None, coef=x.attr)
        extra = [self.dim(x.shape[a]) for a in range(2) if x.collapsed(a)]
        if x.rt is None:
            return self.mul([*extra, x], None)
        c, scalars, core = self.split_scalar(x)
        if c != 1.0 or scalars:
            return self.mul([*scalars, self.sumall(core)], None, coef=c)
        return self.mul([*extra, self._make("sumall", (x,), None, None, None)], None)

    def inner(self, a: Node, b: Node) -> Node:
        """Σᵢⱼ aᵢⱼ bᵢⱼ = tr(aᵀ b), without forming the matrix product."""
        ca, sa, a_core = self.split_scalar(a)
        cb, sb, b_core = self.split_scalar(b)
        if ca != 1.0 or cb != 1.0 or sa or sb:
            return self.mul([*sa, *sb, self.inner(a_core, b_core)], None, coef=ca * cb)
        if a.op == "T" and b.op == "T":
            # Σ aᵀ ⊙ bᵀ = Σ a ⊙ b: use the untransposed (contiguous) arrays
            return self.inner(a.args[0], b.args[0])
        if b.op == "add" and a.op != "add" and a.full:
            # ⟨a, Σ cᵢtᵢ + c⟩ = Σ cᵢ⟨a, tᵢ⟩ + c Σa: broadcast terms become sums of a, not arrays
            const, coefs = b.attr
            terms = [self.mul([self.inner(a, t)], None, coef=c) for t, c in zip(b.args, coefs)]
            if const != 0.0:
                terms.append(self.mul([self.sumall(a)], None, coef=const))
            return self.add(terms, None)
        if a.op == "add" and b.op != "add" and b.full:
            return self.inner(b, a)
        for x, y in ((a, b), (b, a)):
            if x.full and y.rt is not None:
                reduced = self._inner_broadcast(x, y)
                if reduced is not None:
                    return reduced
        if a.full and b.full:
            if b.serial < a.serial:
                a, b = b, a
            return self._make("vdot", (a, b), None, None, None)
        return self.sumall(self.mul([a, b], a.shape))

    def _inner_broadcast(self, a: Node, b: Node) -> Node | None:
        """⟨a, r ⊙ M⟩ with r constant along the rows (a row, 𝟏r) = ⟨𝟏ᵀ(a ⊙ M), r⟩ (columns likewise):
        the column sums of a ⊙ M, not the array r ⊙ M; None where b has no such factor."""
        factors = b.args if b.op == "mul" and b.attr == 1.0 else (b,)
        for axis, op in ((0, "sum0"), (1, "sum1")):
            small = [f for f in factors if f.rt is not None and _is_one(f.rt[axis]) and not _is_one(a.shape[axis])]
            if small:
                rest = [f for f in factors if f not in small]
                M = self.mul([a, *rest], a.shape) if rest else a
                # the product has the reduced shape (1×d or n×1): the small factors are stored that way,
                # and a broadcast shape here would count the summed axis again in sumall
                reduced = (1, a.shape[1]) if axis == 0 else (a.shape[0], 1)
                return self.sumall(self.mul([self._reduce(op, M), *small], reduced))
        return None

    def trace_of(self, x: Node) -> Node:
        n = x.shape[0]
        if x.op == "const":
            return self.mul([self.dim(n)], None, coef=x.attr)
        if x.op == "eye":
            return self.dim(n)
        if x.op == "T":
            return self.trace_of(x.args[0])
        c, scalars, core = self.split_scalar(x)
        if c != 1.0 or scalars:
            return self.mul([*scalars, self.trace_of(core)], None, coef=c)
        if x.op == "add":
            terms = [self.mul([self.trace_of(t)], None, coef=cf) for t, cf in zip(x.args, x.attr[1])]
            return self.add([*terms, self.mul([self.dim(n)], None, coef=x.attr[0])], None)
        if x.rt is None:
            return self.mul([self.dim(n), x], None)
        if x.collapsed(0) or x.collapsed(1):
            # constant along an axis: the diagonal is the stored row (column)
            return self._make("sumall", (x,), None, None, None)
        return self._make("trace", (x,), None, None, None)

    def solve(self, A: Node, B: Node) -> Node:
        A = self.materialize(A)
        cb, sb, b_core = self.split_scalar(B)
        if cb != 1.0 or sb:
            return self.mul([*sb, self.solve(A, b_core)], (A.shape[0], B.shape[1]), coef=cb)
        B = self.materialize(B)
        return self._make("solve", (A, B), None, (A.shape[0], B.shape[1]), (A.shape[0], B.shape[1]))

    def unary_matrix(self, op: str, A: Node, shape: Shape | None, attr: Any = None) -> Node:
        return self._make(op, (self.materialize(A),), attr, shape, shape)

    def item(self, x: Node, i: int, j: int | None = None) -> Node:
        if x.op == "slogdet":
            return self._make("item", (x,), (i,), None, None)
        if x.rt is None:
            return x
        i = 0 if x.collapsed(0) else i
        j = 0 if x.collapsed(1) else j
        return self._make("item", (x,), (i, j), None, None)

    def stabilize(self, outputs: Sequence[Node]) -> list[Node]:
        """``outputs`` with the ``exp_scale`` rewrite: every exp(A) of a full A inside a subexpression
        of degree 0 in exp(A)'s row (column) scale (products, row sums, powers, sums of equal degree,
        products by a matrix on the right) is exp(A − m), m the row (column) maximum: exact, and
        finite where exp(A) overflows.  Outermost subexpressions first."""
        if "exp_scale" not in self.rewrites:
            return list(outputs)
        exps = [n for n in self._table.values() if n.op == "fn" and n.attr == "exp" and n.args[0].full]
        for E in exps:
            for axis in (1, 0):
                outputs = self._rescale(outputs, E, axis)
        return list(outputs)

    def _rescale(self, outputs: Sequence[Node], E: Node, axis: int) -> list[Node]:
        """The ``exp_scale`` rewrite of E = exp(A) along ``axis`` (:meth:`stabilize`)."""
        memo: dict = {}
        contains: dict = {}
        done: dict[Node, Node] = {}
        shifted = self._shifted_exp(E.args[0], axis)[1]

        def visit(x: Node) -> Node:
            if x not in done:
                if not _contains(x, E, contains) or x is E:
                    done[x] = x
                elif x.op in ("mul", "add") and _degree(x, E, axis, memo, contains) == 0.0:
                    done[x] = self._substitute(x, E, shifted, {})
                else:
                    done[x] = self._rebuild(x, [visit(a) for a in x.args])
            return done[x]

        return [visit(o) for o in outputs]

    def _substitute(self, x: Node, old: Node, new: Node, memo: dict[Node, Node]) -> Node:
        if x is old:
            return new
        if x not in memo:
            memo[x] = self._rebuild(x, [self._substitute(a, old, new, memo) for a in x.args])
        return memo[x]

    def _rebuild(self, x: Node, args: list[Node]) -> Node:
        """``x`` with new arguments, through the smart constructors."""
        if all(a is b for a, b in zip(args, x.args)):
            return x
        op = x.op
        if op == "mul":
            return self.mul(args, x.shape, x.attr)
        if op == "add":
            const, coefs = x.attr
            terms = [self.mul([t], t.shape, c) for t, c in zip(args, coefs)]
            return self.add([*terms, *([self.const(const)] if const else [])], x.shape)
        if op == "pow":
            return self.pow(args[0], x.attr)
        if op in ("sum0", "sum1"):
            return self._reduce(op, args[0])
        if op == "matmul":
            return self.matmul(*args)
        if op == "T":
            return self.T(args[0])
        if op == "fn":
            return self.fn(x.attr, args[0])
        return self._make(op, tuple(args), x.attr, x.shape, x.rt)

    def share_scale(self, outputs: Sequence[Node]) -> list[Node]:
        """``outputs`` where two or more of them are c·Lᵢ(v), each Lᵢ linear in one node v (products,
        transposes, sums along an axis) and c one coefficient: v scaled once, c·v, and the Lᵢ computed
        from it, as one writes G = 2R once in a backprop by hand instead of 2·(each gradient).  One
        multiplication replaces one per output (on small arrays a call costs more than its
        arithmetic); applied where the estimated size of v is at most the outputs' together, and only
        where every node rebuilt is read by the rebuilt outputs alone (nothing is computed twice).

        >>> from sympy import MatrixSymbol
        >>> from numeric.lower import Builder
        >>> A, B, R = MatrixSymbol("A", 3, 4), MatrixSymbol("B", 5, 2), MatrixSymbol("R", 4, 5)
        >>> b = Builder([A, B, R])
        >>> outs = [b.output(b.lower(-2 * A * R)), b.output(b.lower(-2 * R * B))]
        >>> [(o.op, o.attr) for o in outs]
        [('mul', -2.0), ('mul', -2.0)]
        >>> [(o.op, [a.op for a in o.args]) for o in b.share_scale(outs)]
        [('matmul', ['arg', 'mul']), ('matmul', ['mul', 'arg'])]
        """
        outputs = list(outputs)
        users: dict[Node, set[Node]] = {}
        seen: set[Node] = set()
        stack = list(outputs)
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                for a in node.args:
                    users.setdefault(a, set()).add(node)
                    stack.append(a)
        groups: dict[float, list[int]] = {}
        for i, o in enumerate(outputs):
            if (o.op == "mul" and len(o.args) == 1 and o.attr != 1.0 and o.shape is not None
                    and o not in users and outputs.count(o) == 1):
                groups.setdefault(o.attr, []).append(i)
        for c, tops in groups.items():
            if len(tops) >= 2:
                outputs = self._share_scale(outputs, c, tops, users)
        return outputs

    def _share_scale(self, outputs: list[Node], c: float, tops: list[int],
                     users: dict[Node, set[Node]]) -> list[Node]:
        """:meth:`share_scale` for the outputs ``tops``, all c·xᵢ: the best v, if one is worth it."""
        reach: dict[Node, list[int]] = {}
        for i in tops:
            stack, visited = [outputs[i].args[0]], set()
            while stack:
                node = stack.pop()
                if node not in visited:
                    visited.add(node)
                    reach.setdefault(node, []).append(i)
                    if node.op in _LINEAR:
                        stack.extend(a for a in node.args if a.shape is not None)
        candidates = sorted((v for v, r in reach.items() if len(r) >= 2), key=lambda v: (-len(reach[v]), v.serial))
        output_set = set(outputs)
        for v in candidates:
            region: dict[Node, bool] = {}
            dropped = [i for i in tops if _linear_in(outputs[i].args[0], v, region)]
            R = {x for x, inside in region.items() if inside and x is not v}
            tops_x = {outputs[i].args[0]: i for i in dropped}
            contains: dict[Node, bool] = {}
            ok = len(dropped) >= 2 and _size(v) <= sum(_size(outputs[i]) for i in dropped)
            for x in R if ok else ():
                holders = [a for a in x.args if _contains(a, v, contains)]
                if (len(holders) != 1 or holders[0] not in R | {v} or x in output_set
                        or any(u not in R and not (u.op == "mul" and tops_x.get(x) is not None
                                                   and outputs[tops_x[x]] is u) for u in users.get(x, ()))):
                    ok = False
                    break
            if not ok:
                continue
            if v.op == "mul" and all(u in R for u in users.get(v, ())) and v not in output_set:
                scaled = self._make("mul", v.args, v.attr * c, v.shape, v.rt)
            else:
                scaled = self._make("mul", (v,), c, v.shape, v.rt)
            memo: dict[Node, Node] = {v: scaled}
            outputs = list(outputs)
            for i in dropped:
                outputs[i] = self._rebuild_in(outputs[i].args[0], R, memo)
            return outputs
        return outputs

    def _rebuild_in(self, x: Node, region: set[Node], memo: dict[Node, Node]) -> Node:
        """``x`` with each argument in ``region`` (or in ``memo``: the scaled v) rebuilt, as it is
        (no smart constructor: they would pull the coefficient out again)."""
        if x not in memo:
            memo[x] = self._make(x.op, tuple(self._rebuild_in(a, region, memo) if a in region or a in memo else a
                                             for a in x.args), x.attr, x.shape, x.rt)
        return memo[x]

    def output(self, x: Node) -> Node:
        """x prepared to be returned: full shape, never an alias of an argument."""
        if x.shape is None:
            return x
        if x.rt is None:
            return self._make("full", (x,), None, x.shape, x.shape)
        if not x.full:
            return self._make("bcastcopy", (x,), None, x.shape, x.shape)
        if x.op == "arg" or (x.op == "T" and x.args[0].op == "arg"):
            return self._make("copy", (x,), None, x.shape, x.rt)
        return x


# operations linear in each array argument, which a scalar coefficient passes through (share_scale)
_LINEAR = ("matmul", "multidot", "T", "sum0", "sum1", "mul")


def _size(x: Node) -> float:
    """The number of elements of x's run-time array, a symbolic dimension counted as 1000 (an
    estimate that compares arrays of the same dimensions)."""
    if x.rt is None:
        return 1.0
    out = 1.0
    for d in x.rt:
        out *= float(d) if getattr(d, "is_Integer", False) else 1000.0
    return out


def _linear_in(x: Node, v: Node, memo: dict[Node, bool]) -> bool:
    """Whether ``x`` reaches ``v`` through operations of :data:`_LINEAR` only (every such node is
    recorded in ``memo``, the region that scaling v rebuilds)."""
    if x not in memo:
        inside = x is v
        if x.op in _LINEAR:
            for a in x.args:  # every argument: the region must hold all of them
                inside = _linear_in(a, v, memo) or inside
        memo[x] = inside
    return memo[x]


def _contains(x: Node, target: Node, memo: dict[Node, bool]) -> bool:
    if x is target:
        return True
    if x not in memo:
        memo[x] = any(_contains(a, target, memo) for a in x.args)
    return memo[x]


def _degree(x: Node, E: Node, axis: int, memo: dict, contains: dict) -> float | None:
    """How ``x`` scales when each row (``axis`` 1; columns: 0) of E = exp(A) is multiplied by a
    positive number c: as c^degree, or None where it does not scale so."""
    if not _contains(x, E, contains):
        return 0.0
    if x is E:
        return 1.0
    if x in memo:
        return memo[x]
    memo[x] = None  # provisional (the graph is acyclic; this only guards the recursion)
    d = [_degree(a, E, axis, memo, contains) for a in x.args]
    out: float | None = None
    if None in d:
        out = None
    elif x.op == "mul":
        out = sum(d)
    elif x.op == "pow":
        out = x.attr * d[0]
    elif x.op == ("sum1" if axis == 1 else "sum0"):
        out = d[0]
    elif x.op == "add":
        out = d[0] if all(v == d[0] for v in d) and (x.attr[0] == 0.0 or d[0] == 0.0) else None
    elif x.op == "matmul":   # (D a) b = D (a b) for rows; a (b D) = (a b) D for columns
        out = d[0] if axis == 1 and d[1] == 0.0 else d[1] if axis == 0 and d[0] == 0.0 else None
    memo[x] = out
    return out
