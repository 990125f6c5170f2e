"""The differential operator d and its rules, one table keyed on the SymPy class.

``MatrixDifferential(A)`` (matrix) and ``ScalarDifferential(a)`` (scalar) are
unevaluated nodes.  Each rule is one record (``derive.rules.Rule``: key, law, names,
function) that rewrites d(e) for the classes the table sends to it and returns any other
input unchanged.  ``expand_once`` applies one rule to every outermost node of one class,
which is one step of a derivation.  A sub-expression that does not contain the variable is
a constant: its differential is zero and is dropped.
"""
from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import (
    Basic, Determinant, Eq, Expr, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixExpr,
    MatrixSymbol, OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from derive.elementwise import elementwise_derivative, log
from derive.kronecker import Diag, Vec
from derive.laws import Laws, Summation, applied, matrices, scalars
from derive.limits import MAX_MATRIX_POWER
from derive.matrix_functions import MatrixExponential
from derive.rules import Rule

__all__ = [
    "DIFFERENTIAL_RULES",
    "RULES_OF_DIFFERENTIALS",
    "SPECIAL_CASES",
    "MatrixDifferential",
    "ScalarDifferential",
    "UnsupportedExpressionError",
    "d",
    "expand_once",
    "has_differential",
    "rule_for",
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


Expand = Callable[[Basic, Callable[[Basic], Basic]], Basic]
"""A rule's function: ``expand(e, dd)`` is d(e), where ``dd`` takes the differential of a part of e."""


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
    if not _is_zero(dd(p)):
        raise UnsupportedExpressionError(
            f"the matrix power A^({p}) of A = {base} has an exponent that varies with the variable; "
            "d(Aᵖ) for a varying p (a log A term) is not supported")
    if not p.is_Integer:
        raise UnsupportedExpressionError(
            f"the matrix power A^{p} of A = {e.base} (an exponent that is not an integer number) has a "
            f"differential only inside a trace of it, d tr(Aᵖ) = p tr(Aᵖ⁻¹ dA): write tr(A^{p}) as a term "
            "of f, or use an integer power")
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
    if isinstance(e, (MatMul, HadamardProduct, Transpose, KroneckerProduct, Vec, Diag)) and any(isinstance(a, ZeroMatrix) for a in args):
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
    power = HadamardProduct(p * lower, dd(base))
    if not p.free_symbols and not p.atoms(MatrixSymbol):
        return power
    # an exponent that may vary (tr(B)): d(A^∘p) = p A^∘(p−1) ⊙ dA + dp · (A^∘p ⊙ log A)
    return MatAdd(power, MatMul(dd(p), HadamardProduct(e, log(base))))


def _d_entry(e, dd):
    parent = e.parent
    if parent.shape != (1, 1):
        raise UnsupportedExpressionError(
            f"MatrixElement {e} of a {parent.shape[0]}x{parent.shape[1]} matrix: only entries of "
            "1x1 matrices (aᵀXb) are supported as scalars")
    return Trace(dd(parent))


# --- the rules: one record each, beside its function ----------------------------------------------
# A rule rewrites a differential node, d(e) → its expansion, and returns any other input unchanged.

def _is_differential(e: Basic) -> bool:
    return isinstance(e, (MatrixDifferential, ScalarDifferential))


def _table_rule_for(e: Basic) -> Rule | None:
    return next((DIFFERENTIAL_RULES[cls] for cls in type(e).__mro__ if cls in DIFFERENTIAL_RULES), None)


def _rule(key: str, expand: Expand, law: Basic, names: dict[str, str]) -> Rule:
    """The record of a rule of the class table: it applies to d(e) where the table sends e's class to it."""
    def rewrite(node: Basic, wrt: frozenset = frozenset()) -> Basic:
        if not _is_differential(node) or _table_rule_for(node.arg) is not record:
            return node
        return expand(node.arg, lambda x: d(x, wrt))

    record = Rule(key, law, names, rewrite)
    return record


def _d_scalar_function(e, dd):
    if isinstance(e, sympy.Pow):
        return _d_pow(e, dd)
    (a,) = e.args
    x = sympy.Dummy("x", real=True)  # entries are real: d|a| = sign(a) da, not re/im parts
    gprime = sympy.diff(type(e)(x), x).subs(x, a)
    return sympy.Mul(gprime, dd(a), evaluate=False)


_A, _B, _X = matrices("A B X")
_a, _b, _lambda, _p, _i = scalars("a b lambda p i")
_dA, _dB, _dX = (MatrixDifferential(M) for M in (_A, _B, _X))
_da, _db = ScalarDifferential(_a), ScalarDifferential(_b)

D_SUM = _rule("d_sum", _d_sum,
              Eq(MatrixDifferential(MatAdd(_A, _B)), MatAdd(_dA, _dB), evaluate=False),
              {"en": "differential of a sum", "zh": "和的微分"})
D_PRODUCT = _rule("d_product", lambda e, dd: _product_rule(e, dd, MatMul),
                  Eq(MatrixDifferential(MatMul(_A, _B)), MatAdd(MatMul(_dA, _B), MatMul(_A, _dB)), evaluate=False),
                  {"en": "product rule", "zh": "乘积的微分"})
D_HADAMARD = _rule("d_hadamard", lambda e, dd: _product_rule(e, dd, HadamardProduct),
                   Eq(MatrixDifferential(HadamardProduct(_A, _B)),
                      MatAdd(HadamardProduct(_dA, _B), HadamardProduct(_A, _dB)), evaluate=False),
                   {"en": "product rule for the Hadamard product", "zh": "逐元素乘积的微分"})
D_TRANSPOSE = _rule("d_transpose", lambda e, dd: Transpose(dd(e.arg)),
                    Eq(MatrixDifferential(Transpose(_A)), Transpose(_dA), evaluate=False),
                    {"en": "differential of a transpose", "zh": "转置的微分"})
D_TRACE = _rule("d_trace", lambda e, dd: Trace(dd(e.arg)),
                Eq(ScalarDifferential(Trace(_A)), Trace(_dA), evaluate=False),
                {"en": "differential of a trace", "zh": "迹的微分"})
D_ELEMENTWISE = _rule("d_elementwise",
                      lambda e, dd: _hadamard_or_zero(elementwise_derivative(e), dd(e.expr)),
                      Eq(MatrixDifferential(applied("phi", _A)), HadamardProduct(applied("phi", _A, 1), _dA),
                         evaluate=False),
                      {"en": "differential of an elementwise function", "zh": "逐元素函数的微分"})
D_INVERSE = _rule("d_inverse", _d_inverse,
                  Eq(MatrixDifferential(Inverse(_X)), MatMul(-1, Inverse(_X), _dX, Inverse(_X)), evaluate=False),
                  {"en": "differential of an inverse", "zh": "逆矩阵的微分"})
D_DETERMINANT = _rule("d_determinant", lambda e, dd: e * Trace(MatMul(Inverse(e.arg), dd(e.arg))),
                      Eq(ScalarDifferential(Determinant(_X)),
                         sympy.Mul(Determinant(_X), Trace(MatMul(Inverse(_X), _dX)), evaluate=False),
                         evaluate=False),
                      {"en": "differential of a determinant", "zh": "行列式的微分"})
D_MATPOW = _rule("d_matpow", _d_matpow,
                 Eq(MatrixDifferential(MatPow(_X, _p)),
                    Summation(MatMul(MatPow(_X, _i), _dX, MatPow(_X, _p - 1 - _i)), _i, (0, _p - 1)),
                    evaluate=False),
                 {"en": "differential of a matrix power", "zh": "矩阵幂的微分"})
D_HADAMARD_POWER = _rule("d_hadamard_power", _d_hadamard_power,
                         Eq(MatrixDifferential(HadamardPower(_A, _p)),
                            HadamardProduct(MatMul(_p, HadamardPower(_A, _p - 1)), _dA), evaluate=False),
                         {"en": "differential of a Hadamard power", "zh": "逐元素幂的微分"})
D_ENTRY = _rule("d_entry", _d_entry,
                Eq(ScalarDifferential(sympy.Symbol("a_11")), Trace(MatrixDifferential(MatrixSymbol("a", 1, 1))),
                   evaluate=False),
                {"en": "entry of a 1-by-1 matrix", "zh": "1×1 矩阵的元素"})
D_SCALAR_SUM = _rule("d_scalar_sum", _d_sum,
                     Eq(ScalarDifferential(_a + _b), sympy.Add(_da, _db, evaluate=False), evaluate=False),
                     {"en": "differential of a sum", "zh": "和的微分"})
D_SCALAR_PRODUCT = _rule("d_scalar_product",
                         lambda e, dd: _product_rule(e, dd, lambda *a: sympy.Mul(*a, evaluate=False)),
                         Eq(ScalarDifferential(_a * _b), sympy.Add(sympy.Mul(_da, _b, evaluate=False),
                                                                   sympy.Mul(_a, _db, evaluate=False),
                                                                   evaluate=False), evaluate=False),
                         {"en": "product rule", "zh": "乘积的微分"})
D_SCALAR_FUNCTION = _rule("d_scalar_function", _d_scalar_function,
                          Eq(ScalarDifferential(applied("g", _a)),
                             sympy.Mul(applied("g", _a, 1), _da, evaluate=False), evaluate=False),
                          {"en": "differential of a scalar function", "zh": "标量函数的微分"})
D_KRONECKER = _rule("d_kronecker", lambda e, dd: _product_rule(e, dd, KroneckerProduct),
                     Eq(MatrixDifferential(KroneckerProduct(_A, _B)),
                        MatAdd(KroneckerProduct(_dA, _B), KroneckerProduct(_A, _dB)), evaluate=False),
                     {"en": "product rule for the Kronecker product", "zh": "克罗内克积的微分"})
D_VEC = _rule("d_vec", lambda e, dd: Vec(dd(e.arg)),
              Eq(MatrixDifferential(Vec(_A)), Vec(_dA), evaluate=False),
              {"en": "differential of vec", "zh": "向量化的微分"})
_v = MatrixSymbol("v", sympy.Symbol("n", integer=True, positive=True), 1)
D_DIAG = _rule("d_diag", lambda e, dd: Diag(dd(e.arg)),
               Eq(MatrixDifferential(Diag(_v)), Diag(MatrixDifferential(_v)), evaluate=False),
               {"en": "differential of diag", "zh": "对角矩阵的微分"})

def _d_expm(e, dd):
    raise UnsupportedExpressionError(
        f"the differential of the matrix exponential {e} outside tr({e}) is ∫₀¹ e^(sA) dA e^((1−s)A) ds, "
        "which the trace method cannot read a gradient from; only d tr(e^A) = tr(e^A dA) is derived: "
        f"write tr({e}) as a term of f")


def _matrix_function(M: Basic) -> tuple[Basic, Basic] | None:
    """(c, φ(A)) for M = c·φ(A) with a constant c, φ(A) = e^A or Aᵖ with a symbolic or fractional p
    (an integer number p is the product rule's); else None."""
    c, core = sympy.Integer(1), M
    if isinstance(M, MatMul):
        c, mats = M.as_coeff_matrices()
        if len(mats) != 1:
            return None
        core = mats[0]
    if isinstance(core, MatrixExponential) or (isinstance(core, MatPow) and not core.exp.is_Integer):
        return c, core
    return None


def _is_trace_of_function(e: Basic, wrt: frozenset) -> bool:
    """tr(c·e^A) or tr(c·Aᵖ), c and p constant."""
    if not isinstance(e, Trace):
        return False
    found = _matrix_function(e.arg)
    if found is None:
        return False
    c, inner = found
    constants = (c,) if isinstance(inner, MatrixExponential) else (c, inner.exp)
    return not any(k.has(x) for k in constants for x in wrt)


def _d_trace_of_function(e, dd):
    c, inner = _matrix_function(e.arg)
    if isinstance(inner, MatrixExponential):
        return Trace(MatMul(*([] if c == 1 else [c]), inner, dd(inner.arg)))
    base, p = inner.args
    lower = [] if p == 1 else [MatPow(base, p - 1)]
    return Trace(MatMul(c * p, *lower, dd(base)))


def _trace_function(node: Basic, wrt: frozenset = frozenset()) -> Basic:
    if not (_is_differential(node) and _is_trace_of_function(node.arg, wrt)):
        return node
    return _d_trace_of_function(node.arg, lambda x: d(x, wrt))


# d tr φ(A) = tr(φ′(A) dA) for a primary matrix function φ (cyclic trace; Cookbook (528), (529)); for a
# fractional power, A symmetric positive definite (Aᵖ by its eigenvalues)
D_TRACE_FUNCTION = Rule("d_trace_function",
                        Laws(Eq(ScalarDifferential(Trace(MatrixExponential(_X))),
                                Trace(MatMul(MatrixExponential(_X), _dX)), evaluate=False),
                             Eq(ScalarDifferential(Trace(MatPow(_X, _p))),
                                sympy.Mul(_p, Trace(MatMul(MatPow(_X, _p - 1), _dX)), evaluate=False),
                                evaluate=False)),
                        {"en": "differential of the trace of a matrix function",
                         "zh": "矩阵函数之迹的微分"}, _trace_function)
D_EXPM = _rule("d_expm", _d_expm,
               Eq(MatrixDifferential(MatrixExponential(_X)),
                  sympy.Integral(MatMul(MatrixExponential(_p * _X), _dX, MatrixExponential((1 - _p) * _X)),
                                 (_p, 0, 1)), evaluate=False),
               {"en": "differential of the matrix exponential", "zh": "矩阵指数的微分"})

# The table: SymPy class -> rule, looked up along type(e).__mro__ (checked at import: every value
# is a record of this module).
DIFFERENTIAL_RULES: dict[type, Rule] = {
    MatAdd: D_SUM,
    MatMul: D_PRODUCT,
    HadamardProduct: D_HADAMARD,
    Transpose: D_TRANSPOSE,
    Trace: D_TRACE,
    ElementwiseApplyFunction: D_ELEMENTWISE,
    Inverse: D_INVERSE,
    Determinant: D_DETERMINANT,
    MatPow: D_MATPOW,
    MatrixExponential: D_EXPM,
    HadamardPower: D_HADAMARD_POWER,
    MatrixElement: D_ENTRY,
    KroneckerProduct: D_KRONECKER,
    Vec: D_VEC,
    Diag: D_DIAG,
    sympy.Add: D_SCALAR_SUM,
    sympy.Mul: D_SCALAR_PRODUCT,
    sympy.Pow: D_SCALAR_FUNCTION,
    sympy.Function: D_SCALAR_FUNCTION,
}


def _is_constant_multiple(e: Basic, wrt: frozenset) -> bool:
    """λA (a matrix) or λa (a scalar) with a constant scalar λ: d(λA) = λ dA."""
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        return len(mats) == 1 and coeff != 1 and not any(coeff.has(x) for x in wrt)
    if isinstance(e, sympy.Mul):
        return sum(1 for a in e.args if any(a.has(x) for x in wrt)) == 1
    return False


def _constant_multiple(node: Basic, wrt: frozenset = frozenset()) -> Basic:
    # the product rule with one non-constant factor: λ dA
    if not (_is_differential(node) and wrt and _is_constant_multiple(node.arg, wrt)):
        return node
    return _table_rule_for(node.arg)(node, wrt)


D_CONSTANT_MULTIPLE = Rule("d_constant_multiple",
                           Eq(MatrixDifferential(MatMul(_lambda, _A)), MatMul(_lambda, _dA), evaluate=False),
                           {"en": "constant multiple", "zh": "常数倍的微分"}, _constant_multiple)

# Special cases, tried before the table: (rule, whether it applies to e given the variables).
SPECIAL_CASES: tuple[tuple[Rule, Callable[[Basic, frozenset], bool]], ...] = (
    (D_CONSTANT_MULTIPLE, _is_constant_multiple),
    (D_TRACE_FUNCTION, _is_trace_of_function),
)

RULES_OF_DIFFERENTIALS: tuple[Rule, ...] = (
    D_SUM, D_CONSTANT_MULTIPLE, D_PRODUCT, D_HADAMARD, D_TRANSPOSE, D_TRACE, D_ELEMENTWISE, D_INVERSE,
    D_DETERMINANT, D_MATPOW, D_TRACE_FUNCTION, D_EXPM, D_HADAMARD_POWER, D_SCALAR_SUM, D_SCALAR_PRODUCT, D_SCALAR_FUNCTION, D_ENTRY,
    D_KRONECKER, D_VEC, D_DIAG,
)
"""Every rule of this module, in the order the rule list of a document shows them."""

# Leaves: a variable's own differential stays as it is.
LEAVES = (MatrixSymbol, sympy.Symbol)
CONSTANTS = (OneMatrix, Identity, ZeroMatrix)


def rule_for(e: Basic, wrt: frozenset = frozenset()) -> Rule:
    """The rule for d(e): a special case that applies (given the variables ``wrt``), else the table's.

    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 3, 3)
    >>> rule_for(X * X.T).key, rule_for(2 * X, frozenset({X})).key
    ('d_product', 'd_constant_multiple')
    """
    for rule, applies in SPECIAL_CASES:
        if wrt and applies(e, wrt):
            return rule
    rule = _table_rule_for(e)
    if rule is None:
        supported = ", ".join(sorted(c.__name__ for c in DIFFERENTIAL_RULES))
        raise UnsupportedExpressionError(
            f"no differential rule for the SymPy class {type(e).__name__} (in {e}); "
            f"supported: {supported}, and MatrixSymbol, OneMatrix, Identity, ZeroMatrix")
    return rule


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


def expand_once(e: Basic, wrt: frozenset) -> tuple[Rule, Basic] | None:
    """Apply one rule to every pending differential whose argument has the first one's rule.

    Returns (the rule, the new expression), or None when every differential is at a leaf.

    >>> from sympy import MatrixSymbol, Trace
    >>> X = MatrixSymbol("X", 3, 3)
    >>> rule, e = expand_once(ScalarDifferential(Trace(X.T)), frozenset({X}))
    >>> rule.key, e
    ('d_trace', Trace(d(X.T)))
    """
    todo = pending(e)
    if not todo:
        return None
    rule = rule_for(todo[0].arg, wrt)
    mapping = {node: rule(node, wrt) for node in todo if rule_for(node.arg, wrt) is rule}
    return rule, _drop_zeros(substitute(e, mapping))


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
