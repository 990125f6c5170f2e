"""SymPy expressions → the graph of :mod:`numeric.ir`: one function per SymPy class.

:class:`Builder` adds to the graph's smart constructors a ``lower`` method, which dispatches on
the class of the expression (the first class of its MRO in :data:`MATRIX_RULES` or
:data:`SCALAR_RULES`), so a construct that ``numeric`` compiles is one line of a table and
one small function.  Elementwise functions are found by their SymPy class name in
:mod:`numeric.registry`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import sympy
from sympy import (
    Basic, Determinant, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, OneMatrix,
    Trace, Transpose, ZeroMatrix,
)
from sympy.core.function import FunctionClass
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from numeric import registry
from numeric.ir import Graph, Node, UnsupportedExpression, shape_text

__all__ = ["MATRIX_RULES", "SCALAR_RULES", "Builder"]

Rule = Callable[["Builder", Basic], Node]


class Builder(Graph):
    """Builds the graph for expressions over the matrix symbols ``args``.

    >>> from sympy import MatrixSymbol, Symbol
    >>> n = Symbol("n", integer=True, positive=True)
    >>> A = MatrixSymbol("A", n, 3)
    >>> b = Builder([A])
    >>> b.lower(A - A + A).op, b.lower(2*A).attr
    ('arg', 2.0)
    """

    def __init__(self, args: Sequence[MatrixSymbol | sympy.Symbol], rewrites: Iterable[str] | None = None):
        super().__init__(args, rewrites)
        self.bound: dict[Basic, Node] = {}  # the stages of a program (:meth:`bind`)

    def lower(self, e: Basic) -> Node:
        """The node of ``e`` (one node per distinct subexpression)."""
        node = self._memo.get(e)
        if node is None:
            node = self._lower_matrix(e) if isinstance(e, MatrixExpr) else self._lower_scalar(e)
            self._memo[e] = node
        return node

    def bind(self, symbol: Basic, node: Node) -> None:
        """Make ``symbol`` (a stage of a program) stand for ``node`` wherever it is lowered."""
        self._memo[symbol] = node
        self.bound[symbol] = node
        if node.full:
            self.pinned.add(node)

    def _lower_matrix(self, e: MatrixExpr) -> Node:
        return _rule(MATRIX_RULES, e)(self, e)

    def _lower_scalar(self, e: Basic) -> Node:
        if e in self._memo:  # also a Lambda's variable, bound to its argument
            return self._memo[e]
        if isinstance(e, MatrixExpr):
            return self._lower_matrix(e)
        return _rule(SCALAR_RULES, e)(self, e)

    def _lower_body(self, fn: sympy.Lambda, x: Node) -> Node:
        """A Lambda's body with its variable bound to ``x``: the body's nodes are not remembered by
        SymPy expression (the same body may be applied to other arguments)."""
        saved = dict(self._memo)
        self._memo[fn.variables[0]] = x
        try:
            return self._lower_scalar(fn.expr)
        finally:
            self._memo.clear()
            self._memo.update(saved)

    def _lower_elementwise(self, fn: Basic, x: Node) -> Node:
        if isinstance(fn, sympy.Lambda):
            (var,) = fn.variables
            body = fn.expr
            if isinstance(body, sympy.Function) and body.args == (var,):
                return self._lower_elementwise(type(body), x)
            return self._lower_body(fn, x)
        if isinstance(fn, FunctionClass):
            return self._function(fn.__name__, x)
        raise UnsupportedExpression(f"elementwise function {fn}")

    def _function(self, name: str, x: Node) -> Node:
        if registry.function(name) is None:
            raise UnsupportedExpression(f"function {name} has no NumPy translation in numeric")
        return self.fn(name, x)

    # ----- products ---------------------------------------------------------------------------
    def _chain(self, mats: list[MatrixExpr]) -> Node:
        first = _inverse_of(mats[0])
        if first is not None and len(mats) > 1:
            return self.solve(self.lower(first), self._chain(mats[1:]))
        # split at inverses: A·M⁻¹ = (M⁻ᵀ Aᵀ)ᵀ
        for i in range(1, len(mats)):
            inv = _inverse_of(mats[i])
            if inv is not None:
                left = self._chain(mats[:i])
                acc = self.T(self.solve(self.T(self.lower(inv)), self.T(left)))
                if i + 1 < len(mats):
                    acc = self._product([acc, *(self.lower(m) for m in mats[i + 1:])])
                return acc
        return self._product([self.lower(m) for m in mats])

    def _product(self, nodes: list[Node]) -> Node:
        nodes = [n for n in nodes if n.op != "eye"] or nodes[:1]
        # fold broadcast factors into their neighbours first: those products are sums
        while len(nodes) > 1:
            idx = next((i for i, n in enumerate(nodes) if not n.full or not _plain(n)), None)
            if idx is None:
                break
            j = idx if idx + 1 < len(nodes) else idx - 1
            nodes[j:j + 2] = [self.matmul(nodes[j], nodes[j + 1])]
        if len(nodes) == 1:
            return nodes[0]
        if len(nodes) == 2:
            return self.matmul(nodes[0], nodes[1])
        return self.multidot(nodes)

    def _lower_trace(self, M: MatrixExpr) -> Node:
        if isinstance(M, Transpose):
            return self._lower_trace(M.arg)
        if isinstance(M, MatAdd):
            return self.add([self._lower_trace(a) for a in M.args])
        if isinstance(M, MatMul):
            scalars = [self.lower(a) for a in M.args if not isinstance(a, MatrixExpr)]
            mats = [a for a in M.args if isinstance(a, MatrixExpr) and not isinstance(a, Identity)]
            if len(mats) >= 2:
                # tr(P Q) = Σ Pᵀ ⊙ Q with P the first factor: never form the product
                P = self.lower(mats[0])
                Q = self._chain(mats[1:])
                return self.mul([*scalars, self.inner(self.T(P), Q)], None)
            if len(mats) == 1:
                return self.mul([*scalars, self._lower_trace(mats[0])], None)
        return self.trace_of(self.lower(M))


def _rule(table: dict[type, Rule], e: Basic) -> Rule:
    for cls in type(e).__mro__:
        rule = table.get(cls)
        if rule is not None:
            return rule
        rule = NAMED_RULES.get(cls.__name__)  # a class numeric cannot import (derive's vec, e^A …)
        if rule is not None:
            return rule
    raise UnsupportedExpression(f"cannot compile {type(e).__name__}: {e}")


def _inverse_of(m: MatrixExpr) -> MatrixExpr | None:
    """M where ``m`` is M⁻¹ (or (M⁻¹)ᵀ: then Mᵀ), else None."""
    if isinstance(m, Inverse) or (isinstance(m, MatPow) and m.exp == -1):
        return m.args[0]
    if isinstance(m, Transpose) and isinstance(m.arg, (Inverse, MatPow)):
        inner = _inverse_of(m.arg)
        return None if inner is None else Transpose(inner)
    return None


def _plain(n: Node) -> bool:
    return not (n.op == "mul" and any(f.shape is None for f in n.args)) and \
        not (n.op == "mul" and n.attr != 1.0)


# ----- matrix expressions ---------------------------------------------------------------------
def _matrix_symbol(b: Builder, e: MatrixSymbol) -> Node:
    if e not in b.arg_nodes:
        names = ", ".join(a.name for a in b.args)
        stages = f" or the stages before it ({', '.join(map(str, b.bound))})" if b.bound else ""
        raise ValueError(f"matrix symbol {e.name} ({shape_text(tuple(e.shape))}) is not among the "
                         f"arguments ({names}){stages}")
    return b.arg_nodes[e]


def _matmul(b: Builder, e: MatMul) -> Node:
    scalars = [b.lower(a) for a in e.args if not isinstance(a, MatrixExpr)]
    gram = _gram(b, [a for a in e.args if isinstance(a, MatrixExpr)])
    if gram is not None:
        return b.mul([*scalars, gram], gram.shape)
    mats = _structured([a for a in e.args if isinstance(a, MatrixExpr) and not isinstance(a, Identity)])
    if not mats:
        shape = tuple(e.shape)
        return b.mul([*scalars, b.eye(shape[0])], shape)
    chain = b._chain(mats)
    return b.mul([*scalars, chain], chain.shape)


def _gram(b: Builder, mats: list[MatrixExpr]) -> Node | None:
    """Pᵀdiag(v)P (a Gauss–Newton or logistic-regression Hessian) as one ``gram`` node: computed as
    (√v ⊙ P)ᵀ(√v ⊙ P), one symmetric product, where v ≥ 0, else Pᵀ(v ⊙ P); None for other products."""
    k = len(mats) // 2
    if k == 0 or len(mats) % 2 != 1 or type(mats[k]).__name__ != "Diag" or mats[k].args[0].shape[1] != 1:
        return None
    # SymPy writes (PC)ᵀdiag(v)PC as CᵀPᵀdiag(v)PC: the factors left of diag(v) mirror those right of it
    if any(mats[j] != Transpose(mats[-1 - j]).doit() for j in range(k)):
        return None
    P = mats[k + 1] if k == 1 else MatMul(*mats[k + 1:])
    Pn, v = b.materialize(b.lower(P)), b.materialize(b.lower(mats[k].args[0]))
    shape = (Pn.shape[1], Pn.shape[1])
    return b._make("gram", (Pn, v), None, shape, shape)


def _structured(mats: list[MatrixExpr]) -> list[MatrixExpr]:
    """The factors of a product with the structured ones applied rather than formed, right to left:
    (P ⊗ Q) vec V = vec(Q V Pᵀ), K_{m,n} vec V = vec Vᵀ, diag(v) M = (v𝟏ᵀ) ⊙ M.  Vec, Diag and
    Commutation are derive's classes (derive.kronecker), known here by name."""
    out = list(mats)
    i = len(out) - 2
    while i >= 0:
        a, v = out[i], out[i + 1]
        name = type(v).__name__
        if isinstance(a, KroneckerProduct) and len(a.args) == 2 and name == "Vec":
            P, Q = a.args
            V = v.args[0]
            if V.shape == (Q.shape[1], P.shape[1]):
                out[i:i + 2] = [type(v)(MatMul(Q, V, Transpose(P)))]
        elif type(a).__name__ == "Commutation" and name == "Vec" and tuple(v.args[0].shape) == tuple(a.args):
            out[i:i + 2] = [type(v)(Transpose(v.args[0]))]
        elif type(a).__name__ == "Diag":
            d = a.args[0] if v.shape[1] == 1 else MatMul(a.args[0], OneMatrix(1, v.shape[1]))
            out[i:i + 2] = [HadamardProduct(d, v)]
        i -= 1
    return out


def _vec(b: Builder, e: MatrixExpr) -> Node:
    A = b.materialize(b.lower(e.args[0]))
    shape = tuple(e.shape)
    return b._make("vec", (A,), None, shape, shape)


def _commutation(b: Builder, e: MatrixExpr) -> Node:
    shape = tuple(e.shape)
    return b._make("commutation", (), tuple(e.args), shape, shape)


def _diag(b: Builder, e: MatrixExpr) -> Node:
    v = b.materialize(b.lower(e.args[0]))
    shape = tuple(e.shape)
    return b._make("diagflat", (v,), None, shape, shape)


def _kron(b: Builder, e: KroneckerProduct) -> Node:
    """P ⊗ Q formed as an array: only where the matrix itself is asked for (a product with a vec
    applies it without forming it: :func:`_structured`)."""
    node = b.materialize(b.lower(e.args[0]))
    for a in e.args[1:]:
        q = b.materialize(b.lower(a))
        shape = (node.shape[0] * q.shape[0], node.shape[1] * q.shape[1])
        node = b._make("kron", (node, q), None, shape, shape)
    return node


def _matpow(b: Builder, e: MatPow) -> Node:
    p = e.exp
    if not p.is_Integer:
        base = b.lower(e.base)
        if p.is_Number:  # a fractional power: of a symmetric positive definite matrix
            return b.unary_matrix("spdpow", base, base.shape, float(p))
        # an exponent known at run time: an integer (a dimension, an integer symbol) or, else, a real
        # power of a symmetric positive definite matrix
        op = "matpowv" if p.is_integer else "spdpowv"
        return b._make(op, (b.materialize(base), b._lower_scalar(p)), None, base.shape, base.shape)
    base = b.lower(e.base)
    shape = base.shape
    if p == -1:
        return b.unary_matrix("inv", base, shape)
    if p < 0:
        return b.unary_matrix("matpow", b.unary_matrix("inv", base, shape), shape, int(-p))
    return b.unary_matrix("matpow", base, shape, int(p))


def _terms(b: Builder, e: MatrixExpr) -> tuple[list[Node], tuple]:
    """The nodes of the terms (factors) of a sum (Hadamard product) of equal shapes, and that shape,
    read off a lowered term: SymPy's ``shape`` walks down the expression at every call."""
    nodes = [b.lower(a) for a in e.args]
    shape = next((n.shape for n in nodes if n.shape is not None), None)
    return nodes, (tuple(e.shape) if shape is None else shape)


def _matadd(b: Builder, e: MatAdd) -> Node:
    """Σ terms; terms c·diag(v) (derive's Diag, known by name) are added to the diagonal of the sum of the
    others, never formed: diag(p) − ppᵀ is the outer product with p added to its diagonal."""
    diags, rest = [], []
    for t in e.args:
        factors = t.args if isinstance(t, MatMul) else (t,)
        mats = [a for a in factors if isinstance(a, MatrixExpr)]
        if len(mats) == 1 and type(mats[0]).__name__ == "Diag":
            scalars = [a for a in factors if not isinstance(a, MatrixExpr)]
            diags.append(MatMul(*scalars, mats[0].args[0]) if scalars else mats[0].args[0])
        else:
            rest.append(t)
    if diags and rest:
        M = b.add(*_terms(b, MatAdd(*rest))) if len(rest) > 1 else b.lower(rest[0])
        if M.full and M.shape is not None:
            v = b.add([b.lower(d) for d in diags])
            return b._make("adddiag", (M, b.materialize(v)), None, M.shape, M.shape)
    return b.add(*_terms(b, e))


def _inverse(b: Builder, A: Node) -> Node:
    return b.unary_matrix("inv", A, A.shape)


MATRIX_RULES: dict[type, Rule] = {
    MatrixSymbol: _matrix_symbol,
    OneMatrix: lambda b, e: b.const(1.0, tuple(e.shape)),
    ZeroMatrix: lambda b, e: b.const(0.0, tuple(e.shape)),
    Identity: lambda b, e: b.eye(e.shape[0]),
    Transpose: lambda b, e: b.T(b.lower(e.arg)),
    MatAdd: _matadd,
    HadamardProduct: lambda b, e: b.mul(*_terms(b, e)),
    HadamardPower: lambda b, e: b.powv(b.lower(e.base), b.lower(e.exp)),
    ElementwiseApplyFunction: lambda b, e: b._lower_elementwise(e.function, b.lower(e.expr)),
    MatMul: _matmul,
    Inverse: lambda b, e: _inverse(b, b.lower(e.arg)),
    MatPow: _matpow,
    KroneckerProduct: _kron,
}

# Matrix classes known by name (numeric imports nothing from derive): derive's vec, diag,
# commutation matrix and matrix exponential
NAMED_RULES: dict[str, Rule] = {
    "Vec": _vec, "Diag": _diag, "Commutation": _commutation,
    "MatrixExponential": lambda b, e: b.unary_matrix("expm", b.lower(e.args[0]), tuple(e.shape)),
}


# ----- scalar expressions ---------------------------------------------------------------------
def _number(b: Builder, e: Basic) -> Node:
    if e.is_real is False or e.is_finite is False:
        raise UnsupportedExpression(f"constant {e}")
    return b.const(float(e))


def _symbol(b: Builder, e: sympy.Symbol) -> Node:
    if e in b.arg_nodes:
        return b.arg_nodes[e]
    if e.is_integer and e.is_positive:
        return b.dim(e)
    names = ", ".join(a.name for a in b.args)
    raise UnsupportedExpression(f"scalar symbol {e} is not among the arguments ({names}); "
                                f"list it in args to pass its value to the kernel")


def _pow(b: Builder, e: sympy.Pow) -> Node:
    base = b._lower_scalar(e.base)
    if e.exp.is_Number:
        return b.pow(base, float(e.exp))
    if e.base == sympy.E:
        return b.fn("exp", b._lower_scalar(e.exp))
    return b.powv(base, b._lower_scalar(e.exp))


def _matrix_element(b: Builder, e: MatrixElement) -> Node:
    M = b.lower(e.parent)
    if not (e.i.is_Integer and e.j.is_Integer):
        raise UnsupportedExpression(f"matrix element with symbolic index {e}")
    return b.item(M, int(e.i), int(e.j))


def _function(b: Builder, e: sympy.Function) -> Node:
    if len(e.args) != 1:
        raise UnsupportedExpression(f"cannot compile {type(e).__name__}: {e}")
    return b._function(type(e).__name__, b._lower_scalar(e.args[0]))


def _log(b: Builder, e: sympy.log) -> Node:
    arg = e.args[0]
    if isinstance(arg, Determinant):
        s = b.unary_matrix("slogdet", b.lower(arg.arg), None)
        # log det A = log(sign) + log|det A|: NaN when det A < 0, as log of a negative is
        return b.add([b.fn("log", b.item(s, 0)), b.item(s, 1)])
    if isinstance(arg, sympy.Abs) and isinstance(arg.args[0], Determinant):
        return b.item(b.unary_matrix("slogdet", b.lower(arg.args[0].arg), None), 1)
    return _function(b, e)


SCALAR_RULES: dict[type, Rule] = {
    sympy.Number: _number,
    sympy.NumberSymbol: _number,
    sympy.Symbol: _symbol,
    sympy.Add: lambda b, e: b.add([b._lower_scalar(a) for a in e.args]),
    sympy.Mul: lambda b, e: b.mul([b._lower_scalar(a) for a in e.args]),
    sympy.Pow: _pow,
    Trace: lambda b, e: b._lower_trace(e.arg),
    Determinant: lambda b, e: b.unary_matrix("det", b.lower(e.arg), None),
    MatrixElement: _matrix_element,
    sympy.log: _log,
    sympy.Function: _function,
}
