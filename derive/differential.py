"""The differential operator d and its rules, one table keyed on the SymPy class.

``MatrixDifferential(A)`` (matrix) and ``ScalarDifferential(a)`` (scalar) are
unevaluated nodes.  ``expand_once`` applies one rule to every outermost node of
one class, which is one step of a derivation.  A sub-expression that does not
contain the variable is a constant: its differential is zero and is dropped.
"""
from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import (
    Basic, Determinant, Expr, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixExpr,
    MatrixSymbol, OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from derive.elementwise import elementwise_derivative
from derive.limits import MAX_MATRIX_POWER

__all__ = [
    "DIFFERENTIAL_RULES",
    "SPECIAL_CASES",
    "MatrixDifferential",
    "ScalarDifferential",
    "UnsupportedExpressionError",
    "d",
    "expand_once",
    "has_differential",
    "substitute",
]


class UnsupportedExpressionError(NotImplementedError):
    """No differential rule for a SymPy class."""


class MatrixDifferential(MatrixExpr):
    """d(A) for a matrix expression A, left unevaluated."""

    def __new__(cls, arg: MatrixExpr):
        return Basic.__new__(cls, arg)

    @property
    def arg(self) -> MatrixExpr:
        return self.args[0]

    @property
    def shape(self):
        return self.arg.shape

    def doit(self, **hints):
        return self

    def _eval_transpose(self):
        return None

    def _sympystr(self, printer):
        return _str_d(self.arg, printer)


class ScalarDifferential(Expr):
    """d(a) for a scalar expression a, left unevaluated."""

    is_commutative = True

    def __new__(cls, arg: Expr):
        return Expr.__new__(cls, arg)

    @property
    def arg(self) -> Expr:
        return self.args[0]

    def doit(self, **hints):
        return self

    def _sympystr(self, printer):
        return _str_d(self.arg, printer)


def _str_d(arg, printer) -> str:
    inner = printer._print(arg)
    return f"d{inner}" if isinstance(arg, (MatrixSymbol, sympy.Symbol)) else f"d({inner})"


def d(e: Basic, wrt: frozenset) -> Basic:
    """d(e), or zero when e holds none of the symbols in ``wrt`` (a constant)."""
    if not any(e.has(x) for x in wrt):
        return ZeroMatrix(*e.shape) if isinstance(e, MatrixExpr) else sympy.Integer(0)
    if isinstance(e, MatrixExpr):
        return MatrixDifferential(e)
    return ScalarDifferential(e)


def has_differential(e: Basic) -> bool:
    return e.has(MatrixDifferential) or e.has(ScalarDifferential)


Rule = Callable[[Basic, Callable[[Basic], Basic]], Basic]


def _product_rule(e: Basic, dd: Callable[[Basic], Basic], cls: type) -> Basic:
    args = list(e.args)
    terms = []
    for i, a in enumerate(args):
        da = dd(a)
        if _is_zero(da):
            continue
        terms.append(cls(*args[:i], da, *args[i + 1:]))
    return _add(terms, e)


def _add(terms: list[Basic], like: Basic) -> Basic:
    if not terms:
        return ZeroMatrix(*like.shape) if isinstance(like, MatrixExpr) else sympy.Integer(0)
    if len(terms) == 1:
        return terms[0]
    if isinstance(like, MatrixExpr):
        return MatAdd(*terms)
    return sympy.Add(*terms, evaluate=False)


def _is_zero(e: Basic) -> bool:
    return isinstance(e, ZeroMatrix) or e == 0


def _d_sum(e, dd):
    return _add([t for t in (dd(a) for a in e.args) if not _is_zero(t)], e)




def _power(base, i: int) -> list:
    return [] if i == 0 else [base] if i == 1 else [MatPow(base, i)]


def _d_matpow(e, dd):
    base, p = e.args
    if not p.is_Integer:
        raise UnsupportedExpressionError(
            f"MatPow with a non-integer exponent {p} is not supported; use an integer power")
    if abs(p) > MAX_MATRIX_POWER:
        raise UnsupportedExpressionError(
            f"MatPow {e}: the product rule writes one term per factor, and |{p}| > {MAX_MATRIX_POWER} "
            "terms is more than a derivation can show; use a smaller integer power")
    if p < 0:
        return _d_inverse(Inverse(MatPow(base, -p) if p != -1 else base), dd)
    terms = [MatMul(*_power(base, i), dd(base), *_power(base, int(p) - 1 - i)) for i in range(int(p))]
    return _add([t if len(t.args) > 1 else t.args[0] for t in terms], e)


def _d_inverse(e, dd):
    A = e.args[0]
    return MatMul(-1, Inverse(A), dd(A), Inverse(A))


def _d_scalar_function(e, dd):
    (a,) = e.args
    x = sympy.Dummy("x", real=True)  # entries are real: d|a| = sign(a) da, not re/im parts
    gprime = sympy.diff(type(e)(x), x).subs(x, a)
    return sympy.Mul(gprime, dd(a), evaluate=False)


def _d_pow(e, dd):
    base, p = e.args
    dp, db = dd(p), dd(base)
    if _is_zero(dp):
        return sympy.Mul(p, sympy.Pow(base, p - 1), db, evaluate=False)
    # d(a^b) = a^b log a · db + b a^(b−1) · da; a constant base (2^tr X) has no second term
    terms = [sympy.Mul(e, sympy.log(base), dp, evaluate=False)]
    if not _is_zero(db):
        terms.append(sympy.Mul(p, sympy.Pow(base, p - 1), db, evaluate=False))
    return _add(terms, e)


def _hadamard_or_zero(a: MatrixExpr, b: MatrixExpr) -> MatrixExpr:
    if isinstance(a, ZeroMatrix) or isinstance(b, ZeroMatrix):
        return ZeroMatrix(*b.shape)
    return HadamardProduct(a, b)


def _drop_zeros(e: Basic) -> Basic:
    """Products with a zero factor are zero, zero terms leave sums (after φ′ = 0, as for step)."""
    if not e.args or isinstance(e, (MatrixSymbol, sympy.Lambda)) or not e.has(ZeroMatrix):
        return e
    args = [_drop_zeros(a) for a in e.args]
    zero = ZeroMatrix(*e.shape) if isinstance(e, MatrixExpr) else sympy.Integer(0)
    if isinstance(e, (MatMul, HadamardProduct, Transpose)) and any(isinstance(a, ZeroMatrix) for a in args):
        return zero
    if isinstance(e, (MatAdd, sympy.Add)):
        kept = [a for a in args if not (isinstance(a, ZeroMatrix) or a == 0)]
        return _add(kept, e)
    if isinstance(e, Trace) and isinstance(args[0], ZeroMatrix):
        return zero
    return e.func(*args)


def _d_hadamard_power(e, dd):
    base, p = e.args
    lower = base if p == 2 else HadamardPower(base, p - 1)  # A^∘1 is A
    return HadamardProduct(p * lower, dd(base))


def _d_entry(e, dd):
    parent = e.parent
    if parent.shape != (1, 1):
        raise UnsupportedExpressionError(
            f"MatrixElement {e} of a {parent.shape[0]}x{parent.shape[1]} matrix: only entries of "
            "1x1 matrices (aᵀXb) are supported as scalars")
    return Trace(dd(parent))


# The table: SymPy class -> (rule key, rule).  Looked up along type(e).__mro__.
DIFFERENTIAL_RULES: dict[type, tuple[str, Rule]] = {
    MatAdd:                   ("d_sum",            _d_sum),
    MatMul:                   ("d_product",        lambda e, dd: _product_rule(e, dd, MatMul)),
    HadamardProduct:          ("d_hadamard",       lambda e, dd: _product_rule(e, dd, HadamardProduct)),
    Transpose:                ("d_transpose",      lambda e, dd: Transpose(dd(e.arg))),
    Trace:                    ("d_trace",          lambda e, dd: Trace(dd(e.arg))),
    ElementwiseApplyFunction: ("d_elementwise",    lambda e, dd: _hadamard_or_zero(elementwise_derivative(e), dd(e.expr))),
    Inverse:                  ("d_inverse",        _d_inverse),
    Determinant:              ("d_determinant",    lambda e, dd: e * Trace(MatMul(Inverse(e.arg), dd(e.arg)))),
    MatPow:                   ("d_matpow",         _d_matpow),
    HadamardPower:            ("d_hadamard_power", _d_hadamard_power),
    MatrixElement:            ("d_entry",          _d_entry),
    sympy.Add:                ("d_scalar_sum",     _d_sum),
    sympy.Mul:                ("d_scalar_product", lambda e, dd: _product_rule(e, dd, lambda *a: sympy.Mul(*a, evaluate=False))),
    sympy.Pow:                ("d_scalar_function", _d_pow),
    sympy.Function:           ("d_scalar_function", _d_scalar_function),
}

def _is_constant_multiple(e: Basic, wrt: frozenset) -> bool:
    """λA (a matrix) or λa (a scalar) with a constant scalar λ: d(λA) = λ dA."""
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        return len(mats) == 1 and coeff != 1 and not any(coeff.has(x) for x in wrt)
    if isinstance(e, sympy.Mul):
        return sum(1 for a in e.args if any(a.has(x) for x in wrt)) == 1
    return False


# Special cases, tried before the table: (rule key, whether it applies to e, rule).
SPECIAL_CASES: tuple[tuple[str, Callable[[Basic, frozenset], bool], Rule], ...] = (
    ("d_constant_multiple", _is_constant_multiple,
     lambda e, dd: rule_for(e)[1](e, dd)),  # the product rule with one non-constant factor: λ dA
)

# Leaves: a variable's own differential stays as it is.
LEAVES = (MatrixSymbol, sympy.Symbol)
CONSTANTS = (OneMatrix, Identity, ZeroMatrix)


def rule_for(e: Basic, wrt: frozenset = frozenset()) -> tuple[str, Rule]:
    """The rule for d(e): a special case that applies (given the variables ``wrt``), else the table's."""
    for key, applies, rule in SPECIAL_CASES:
        if wrt and applies(e, wrt):
            return key, rule
    for cls in type(e).__mro__:
        if cls in DIFFERENTIAL_RULES:
            return DIFFERENTIAL_RULES[cls]
    supported = ", ".join(sorted(c.__name__ for c in DIFFERENTIAL_RULES))
    raise UnsupportedExpressionError(
        f"no differential rule for the SymPy class {type(e).__name__} (in {e}); "
        f"supported: {supported}, and MatrixSymbol, OneMatrix, Identity, ZeroMatrix")


def outermost_differentials(e: Basic) -> list[Basic]:
    """MatrixDifferential nodes not inside another one, in pre-order."""
    found: list[Basic] = []

    def walk(x: Basic) -> None:
        if isinstance(x, (MatrixDifferential, ScalarDifferential)):
            found.append(x)
            return
        for a in x.args:
            walk(a)

    walk(e)
    return found


def pending(e: Basic) -> list[Basic]:
    """Outermost differentials whose argument is not a leaf (still to expand)."""
    return [x for x in outermost_differentials(e) if not isinstance(x.arg, LEAVES)]


def expand_once(e: Basic, wrt: frozenset) -> tuple[str, Basic] | None:
    """Apply one rule to every pending differential whose argument has the first one's rule.

    Returns (rule key, new expression), or None when every differential is at a leaf.

    >>> from sympy import MatrixSymbol, Trace
    >>> X = MatrixSymbol("X", 3, 3)
    >>> expand_once(ScalarDifferential(Trace(X.T)), frozenset({X}))
    ('d_trace', Trace(d(X.T)))
    """
    todo = pending(e)
    if not todo:
        return None
    key, _ = rule_for(todo[0].arg, wrt)
    dd = lambda x: d(x, wrt)
    mapping = {}
    for node in todo:
        k, rule = rule_for(node.arg, wrt)
        if k == key:
            mapping[node] = rule(node.arg, dd)
    return key, _drop_zeros(substitute(e, mapping))


def substitute(e: Basic, mapping: dict[Basic, Basic]) -> Basic:
    """``e`` with the nodes of ``mapping`` replaced, as a derivation's next line shows it.

    Products and sums are flattened (A(BC) is ABC: regrouping is not a step) and a scalar sum
    is left unevaluated, so that combining its like terms is a step of its own.

    >>> from sympy import MatrixSymbol, MatMul
    >>> A, B, C = (MatrixSymbol(s, 2, 2) for s in "ABC")
    >>> substitute(MatMul(A, MatrixDifferential(B * C)), {MatrixDifferential(B * C): B * MatrixDifferential(C)})
    A*B*dC
    """
    if e in mapping:
        return mapping[e]
    if not e.args or isinstance(e, (MatrixSymbol, sympy.Lambda)):
        return e
    args = [substitute(a, mapping) for a in e.args]
    if all(a is b for a, b in zip(args, e.args)):
        return e
    return assemble(e, args)


def assemble(e: Basic, args: list[Basic]) -> Basic:
    """``e.func(*args)`` with nested products, Hadamard products and sums flattened, and a scalar sum
    left unevaluated."""
    if isinstance(e, MatMul):
        coeff, mats = sympy.Integer(1), []
        for a in args:
            for f in (a.args if isinstance(a, MatMul) else (a,)):
                if isinstance(f, MatrixExpr):
                    mats.append(f)
                else:
                    coeff *= f
        if coeff == 1 and len(mats) == 1:
            return mats[0]
        return MatMul(*([] if coeff == 1 else [coeff]), *mats)
    if isinstance(e, (MatAdd, HadamardProduct)):
        return type(e)(*[f for a in args for f in (a.args if isinstance(a, type(e)) else (a,))])
    if isinstance(e, sympy.Add):
        terms = [t for a in args for t in sympy.Add.make_args(a)]
        return terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)
    return e.func(*args)
