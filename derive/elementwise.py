"""Elementwise activation functions and their derivatives in matrix form.

Each activation is a SymPy ``Function`` (so it differentiates and evaluates as a
scalar) and a matrix helper that wraps ``ElementwiseApplyFunction``.  The table
``ELEMENTWISE_DERIVATIVES`` gives φ′(A) as a matrix expression, one line per
function; anything else falls back to lifting the scalar derivative.
"""
from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import Function, Lambda, MatrixExpr, OneMatrix, ZeroMatrix
from sympy.core.function import FunctionClass
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from numeric import register_function

__all__ = [
    "ELEMENTWISE_DERIVATIVES",
    "FUNCTION_LATEX",
    "FUNCTION_TEXT",
    "Elementwise",
    "Relu",
    "Sigmoid",
    "Softplus",
    "Step",
    "elementwise_derivative",
    "elementwise_function",
    "exp",
    "log",
    "relu",
    "sigmoid",
    "softplus",
    "step",
    "tanh",
]


class Sigmoid(Function):
    """The logistic function σ(x) = 1 / (1 + e^{−x})."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sympy.exp(-x))
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))


class Step(Function):
    """The unit step: 1 for x > 0, else 0 (relu's derivative; 0 at x = 0)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sympy.Integer(1) if x > 0 else sympy.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)


class Relu(Function):
    """max(x, 0)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return Step(self.args[0])

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x if x > 0 else sympy.Integer(0)
        return None


class Softplus(Function):
    """log(1 + e^x)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return Sigmoid(self.args[0])

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sympy.log(1 + sympy.exp(x))
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))


# The NumPy code of each function, for numeric (which knows functions by class name). σ(x) = ½ tanh(x/2) + ½:
# one transcendental pass, no overflow for any x, float32 stays float32; step is 0 at 0, NaN stays NaN.
for _fn, _code in ((Sigmoid, "0.5 * numpy.tanh(0.5 * {x}) + 0.5"), (Softplus, "numpy.logaddexp(0, {x})"),
                   (Relu, "numpy.maximum({x}, 0)"), (Step, "numpy.heaviside({x}, 0)")):
    register_function(_fn.__name__, _code)
del _fn, _code


# How each function is written: in unicode text and in LaTeX (the printers of derive.render read these too).
FUNCTION_TEXT: dict[FunctionClass, str] = {
    Sigmoid: "σ", sympy.tanh: "tanh", Relu: "relu", Softplus: "softplus", Step: "step",
    sympy.exp: "exp", sympy.log: "log",
}
FUNCTION_LATEX: dict[FunctionClass, str] = {
    Sigmoid: r"\sigma", sympy.tanh: r"\tanh", Relu: r"\operatorname{relu}",
    Softplus: r"\operatorname{softplus}", Step: r"\operatorname{step}", sympy.exp: r"\exp",
    sympy.log: r"\log",
}


class Elementwise(ElementwiseApplyFunction):
    """φ(A), φ applied to every entry of A: SymPy's ``ElementwiseApplyFunction``, printed as φ(A).

    SymPy's own printers write ``Lambda(_x, Sigmoid(_x)).(h)``; this class gives them
    ``σ(h)`` (``str``), ``\\sigma\\left(h\\right)`` (LaTeX) and ``σ(h)`` (pretty) through their
    print hooks, for itself only: nothing in SymPy is changed.

    >>> from sympy import MatrixSymbol
    >>> h = MatrixSymbol("h", 4, 5)
    >>> print(sigmoid(h)), print(sympy.latex(tanh(h.T)))
    σ(h)
    \\tanh\\left(h^{T}\\right)
    (None, None)
    """

    def _names(self) -> tuple[str, str]:
        """(text, LaTeX) name of the function; a lambda is written x ↦ body."""
        fn = elementwise_function(self)
        if fn in FUNCTION_TEXT:
            return FUNCTION_TEXT[fn], FUNCTION_LATEX[fn]
        if isinstance(fn, FunctionClass):
            return fn.__name__, rf"\operatorname{{{fn.__name__}}}"
        x = sympy.Symbol("x")
        body = fn.expr.xreplace({fn.variables[0]: x})
        return f"(x ↦ {sympy.sstr(body)})", rf"\left(x \mapsto {sympy.latex(body)}\right)"

    def _sympystr(self, printer) -> str:
        return f"{self._names()[0]}({printer._print(self.expr)})"

    def _latex(self, printer) -> str:
        return rf"{self._names()[1]}\left({printer._print(self.expr)}\right)"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        arg = printer._print(self.expr)
        return prettyForm(*prettyForm(*arg.parens()).left(self._names()[0]))


# Code that goes by the class name (SymPy's hash, ordering and srepr, derive.parse.same_structure) sees
# the SymPy node it is; pickle goes by __qualname__, which stays.
Elementwise.__name__ = "ElementwiseApplyFunction"


_VAR = sympy.Dummy("x")
_LAMBDAS: dict[FunctionClass, Lambda] = {}


def canonical_lambda(function: FunctionClass) -> Lambda:
    """One ``Lambda(x, φ(x))`` per function, so that σ(h) built twice is the same expression."""
    if function not in _LAMBDAS:
        _LAMBDAS[function] = Lambda(_VAR, function(_VAR))
    return _LAMBDAS[function]


def _apply(function: FunctionClass, A: MatrixExpr) -> MatrixExpr:
    _check_matrix(A, function)
    return Elementwise(canonical_lambda(function), A)


def canonicalize(e: sympy.Basic) -> sympy.Basic:
    """``e`` with every elementwise application written with the canonical Lambda.

    >>> from sympy import MatrixSymbol
    >>> Z = MatrixSymbol("Z", 2, 3)
    >>> canonicalize(Z.applyfunc(sympy.exp)) == exp(Z)
    True
    """
    def fix(x: sympy.Basic) -> sympy.Basic:
        if isinstance(x, ElementwiseApplyFunction):
            inner = fix(x.expr)
            fn = elementwise_function(x)
            if isinstance(fn, FunctionClass):
                return Elementwise(canonical_lambda(fn), inner)
            return Elementwise(fn, inner)
        if not x.args or isinstance(x, Lambda):
            return x
        return x.func(*[fix(a) for a in x.args])

    return fix(e)


def _check_matrix(A: object, function: object) -> None:
    if not isinstance(A, MatrixExpr):
        name = getattr(function, "__name__", str(function)).lower()
        raise TypeError(
            f"{name}() takes a SymPy matrix expression, got {type(A).__name__} {A!r}"
        )


def sigmoid(A: MatrixExpr) -> MatrixExpr:
    """σ applied to every entry of ``A``.

    >>> from sympy import MatrixSymbol
    >>> sigmoid(MatrixSymbol("h", 4, 5)).shape
    (4, 5)
    """
    return _apply(Sigmoid, A)


def tanh(A: MatrixExpr) -> MatrixExpr:
    """tanh applied to every entry of ``A``.

    >>> from sympy import MatrixSymbol
    >>> tanh(MatrixSymbol("h", 4, 5)).shape
    (4, 5)
    """
    return _apply(sympy.tanh, A)


def relu(A: MatrixExpr) -> MatrixExpr:
    """max(·, 0) applied to every entry of ``A``.

    >>> from sympy import MatrixSymbol
    >>> relu(MatrixSymbol("h", 4, 5)).shape
    (4, 5)
    """
    return _apply(Relu, A)


def softplus(A: MatrixExpr) -> MatrixExpr:
    """log(1 + e^a) applied to every entry of ``A``.

    >>> from sympy import MatrixSymbol
    >>> softplus(MatrixSymbol("h", 4, 5)).shape
    (4, 5)
    """
    return _apply(Softplus, A)


def exp(A: MatrixExpr) -> MatrixExpr:
    """e^a applied to every entry of ``A``.

    >>> from sympy import MatrixSymbol
    >>> exp(MatrixSymbol("Z", 4, 5)).shape
    (4, 5)
    """
    return _apply(sympy.exp, A)


def log(A: MatrixExpr) -> MatrixExpr:
    """log a applied to every entry of ``A``.

    >>> from sympy import MatrixSymbol
    >>> log(MatrixSymbol("Z", 4, 5)).shape
    (4, 5)
    """
    return _apply(sympy.log, A)


def step(A: MatrixExpr) -> MatrixExpr:
    """The unit step applied to every entry of ``A`` (1 where a > 0, else 0).

    >>> from sympy import MatrixSymbol
    >>> step(MatrixSymbol("Z", 4, 5)).shape
    (4, 5)
    """
    return _apply(Step, A)


def elementwise_function(e: ElementwiseApplyFunction) -> FunctionClass | Lambda:
    """The scalar function of ``e``: a Function class where there is one.

    ``M.applyfunc(sympy.exp)`` stores ``Lambda(d, exp(d))``; this returns ``exp``.

    >>> from sympy import MatrixSymbol
    >>> import sympy
    >>> elementwise_function(MatrixSymbol("Z", 2, 3).applyfunc(sympy.exp))
    exp
    """
    fn = e.function
    if isinstance(fn, Lambda) and len(fn.variables) == 1:
        body = fn.expr
        if isinstance(body, sympy.Function) and body.args == fn.variables:
            return type(body)
        if isinstance(body, sympy.Pow) and body.base == fn.variables[0] and body.exp == sympy.S.Half:
            return fn
    return fn


def _ones(A: MatrixExpr) -> MatrixExpr:
    return OneMatrix(*A.shape)


# φ′(A) as a matrix expression, one line per function.
ELEMENTWISE_DERIVATIVES: dict[FunctionClass, Callable[[MatrixExpr], MatrixExpr]] = {
    Sigmoid: lambda A: HadamardProduct(sigmoid(A), _ones(A) - sigmoid(A)),
    sympy.tanh: lambda A: _ones(A) - HadamardPower(tanh(A), 2),
    Relu: lambda A: step(A),
    Step: lambda A: ZeroMatrix(*A.shape),
    Softplus: lambda A: sigmoid(A),
    sympy.exp: lambda A: exp(A),
    sympy.log: lambda A: HadamardPower(A, -1),
}


def elementwise_derivative(e: ElementwiseApplyFunction) -> MatrixExpr:
    """φ′(A) for ``e = φ(A)``, as a matrix expression of the shape of ``A``.

    >>> from sympy import MatrixSymbol
    >>> h = MatrixSymbol("h", 4, 5)
    >>> elementwise_derivative(sigmoid(h)).args[0] == sigmoid(h)
    True
    """
    A = e.expr
    fn = elementwise_function(e)
    rule = ELEMENTWISE_DERIVATIVES.get(fn)
    if rule is not None:
        return rule(A)
    return lift_scalar(_scalar_derivative(fn), A)


def _scalar_derivative(fn: FunctionClass | Lambda) -> Lambda:
    x = sympy.Dummy("x", real=True)  # entries are real: |x|′ = sign(x), not re/im parts
    body = fn(x) if isinstance(fn, FunctionClass) else fn.expr.subs(fn.variables[0], x)
    return Lambda(x, sympy.diff(body, x))


def lift_scalar(fn: Lambda, A: MatrixExpr) -> MatrixExpr:
    """The matrix whose entries are ``fn`` of the entries of ``A``.

    Sums become sums, products Hadamard products, powers Hadamard powers, and a
    function of the variable an elementwise application.

    >>> from sympy import MatrixSymbol, Lambda, Symbol
    >>> x = Symbol("x")
    >>> lift_scalar(Lambda(x, 2*x), MatrixSymbol("A", 2, 3))
    2*A
    """
    x = fn.variables[0]

    def lift(e: sympy.Expr) -> MatrixExpr:
        if e == x:
            return A
        if not e.has(x):
            return e * _ones(A)
        if isinstance(e, sympy.Add):
            consts = [a for a in e.args if not a.has(x)]
            terms = [lift(a) for a in e.args if a.has(x)]
            if consts:
                terms.append(sympy.Add(*consts) * _ones(A))
            return sympy.MatAdd(*terms)
        if isinstance(e, sympy.Mul):
            coeff = sympy.Mul(*[a for a in e.args if not a.has(x)])
            factors = [lift(a) for a in e.args if a.has(x)]
            core = factors[0] if len(factors) == 1 else HadamardProduct(*factors)
            return core if coeff == 1 else coeff * core
        if isinstance(e, sympy.Pow) and not e.exp.has(x):
            return HadamardPower(lift(e.base), e.exp)
        if isinstance(e, sympy.Function) and len(e.args) == 1:
            inner = lift(e.args[0])
            return Elementwise(canonical_lambda(type(e)), inner)
        d = sympy.Dummy("t")
        return Elementwise(Lambda(d, e.subs(x, d)), A)

    return lift(fn.expr)
