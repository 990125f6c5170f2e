"""Elementwise functions: one record per function, and their derivatives in matrix form.

Each function is one :class:`ElementwiseFunction` record, made by :func:`define_elementwise`
from a SymPy expression of one variable: its language name, its SymPy scalar ``Function`` class,
how it is written (text, LaTeX), its NumPy code and its derivative.  Everything else reads the
record: the expression language, the differential of φ(A), every printer, the activations of
``derive.networks.mlp`` and the NumPy kernels of ``numeric`` (registered at definition).

>>> from sympy import MatrixSymbol
>>> h = MatrixSymbol("h", 4, 5)
>>> r = elementwise_functions()["sigmoid"]
>>> r.text, r.latex, r(h).shape
('σ', '\\\\sigma', (4, 5))
>>> r.derivative(h) == HadamardProduct(r(h), OneMatrix(4, 5) - r(h))
True
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import sympy
from sympy import Function, Lambda, MatrixExpr, OneMatrix
from sympy.core.function import ArgumentIndexError, FunctionClass
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode

import numeric

__all__ = [  # and the name of every built-in function (the end of the module)
    "RESERVED_NAMES",
    "Elementwise",
    "ElementwiseFunction",
    "Relu",
    "ScalarFunctionBase",
    "Sigmoid",
    "Softplus",
    "UnitStep",
    "define_elementwise",
    "elementwise_derivative",
    "elementwise_function",
    "elementwise_functions",
    "function_record",
]

# Names an elementwise function cannot take: the expression language's other functions and the
# activation "identity" of derive.networks.mlp.
RESERVED_NAMES = frozenset({"tr", "det", "logdet", "inv", "expm", "norm2", "sum", "sqrt", "softmax", "ones", "zeros",
                            "eye", "identity", "kron", "vec", "diag",
                            # the layers of derive.layers (a layer defined later is checked there)
                            "logsoftmax", "cross_entropy", "mean_rows", "mean_cols", "var_rows", "var_cols",
                            "batchnorm", "layernorm", "attention", "hinge", "svm_loss", "dropout"})


class ScalarFunctionBase(Function):
    """A scalar function made by :func:`define_elementwise`.

    Its value at a number is its definition's, its derivative the record's, and
    ``φ(x).rewrite("definition")`` (or ``.rewrite(g)`` for a function g of the definition) is the
    definition.

    >>> x = sympy.Symbol("x")
    >>> Sigmoid(x).diff(x) == Sigmoid(x) * (1 - Sigmoid(x)), Sigmoid(0)
    (True, 1/2)
    >>> Sigmoid(x).rewrite(sympy.exp)
    1/(1 + exp(-x))
    """

    _definition: ClassVar[Callable[[sympy.Expr], sympy.Expr]]

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_Number:
            return cls._definition(x)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return _BY_CLASS[type(self)].scalar_derivative(self.args[0])

    def _eval_rewrite(self, rule: Any, args: tuple, **hints: Any) -> sympy.Expr | None:
        body = type(self)._definition(args[0])
        if rule == "definition" or (isinstance(rule, FunctionClass) and body.has(rule)):
            return body
        return None

    def __reduce_ex__(self, protocol: Any) -> tuple:
        # by name, so that a function made at run time pickles (where it is defined when unpickled)
        return _rebuild, (_BY_CLASS[type(self)].name, self.args)


def _rebuild(name: str, args: tuple) -> sympy.Expr:
    return _REGISTRY[name].scalar(*args)


@dataclass(frozen=True)
class ElementwiseFunction:
    """One elementwise function: everything tracegrad knows about it.

    ``name`` is its name in the expression language and as an activation, ``scalar`` its SymPy
    scalar function class, ``text`` and ``latex`` how it is written, ``numpy`` its NumPy code (a
    template with ``{x}``), ``scalar_derivative`` x ↦ φ′(x).  Calling the record on a matrix
    applies the function to every entry; :meth:`derivative` is φ′ of a matrix.

    >>> from sympy import MatrixSymbol
    >>> print(relu(MatrixSymbol("Z", 4, 5)), relu.derivative(MatrixSymbol("Z", 4, 5)), relu.numpy)
    relu(Z) step(Z) numpy.maximum({x}, 0)
    """

    name: str
    scalar: FunctionClass
    text: str
    latex: str
    numpy: str
    scalar_derivative: Lambda

    def __call__(self, A: MatrixExpr) -> MatrixExpr:
        """φ applied to every entry of ``A``."""
        _check_matrix(A, self.name)
        return Elementwise(canonical_lambda(self.scalar), A)

    def derivative(self, A: MatrixExpr) -> MatrixExpr:
        """φ′(A): the derivative at every entry of ``A``, as a matrix expression."""
        return lift_scalar(self.scalar_derivative, A)


_REGISTRY: dict[str, ElementwiseFunction] = {}
_BY_CLASS: dict[FunctionClass, ElementwiseFunction] = {}


def elementwise_functions() -> Mapping[str, ElementwiseFunction]:
    """The elementwise functions by name, in the order they were defined (a read-only live view).

    >>> list(elementwise_functions())[:4]
    ['step', 'sigmoid', 'tanh', 'relu']
    """
    return MappingProxyType(_REGISTRY)


def function_record(fn: object) -> ElementwiseFunction | None:
    """The record of a SymPy scalar function class, or None.

    >>> function_record(sympy.tanh).name, function_record(sympy.sin)
    ('tanh', None)
    """
    return _BY_CLASS.get(fn) if isinstance(fn, FunctionClass) else None


def define_elementwise(name: str, fn: Callable[[sympy.Symbol], sympy.Expr], *,
                       derivative: Callable[..., sympy.Expr] | None = None, latex: str | None = None,
                       numpy: str | None = None, class_name: str | None = None) -> ElementwiseFunction:
    """Define the elementwise function ``name``: φ(x) = ``fn(x)``, and register it everywhere.

    ``fn`` builds a SymPy scalar expression from a SymPy symbol (a SymPy function such as
    ``sympy.erf`` is used as it is).  ``derivative`` builds φ′(x) from x, or from (x, φ) to write
    φ′ with φ itself; by default SymPy differentiates ``fn``.  ``latex`` defaults to
    ``\\operatorname{name}``; the text name is the Greek letter of a Greek ``latex`` (``\\sigma``
    is σ), else the name.  ``numpy`` is the kernels' code, a template with ``{x}``, when NumPy has no
    function (ufunc) of that name; without it, ``fn(x)`` is printed as NumPy code.  ``class_name``
    names the SymPy class (default: the name capitalised).  Returns the record, which applies φ
    to a matrix.

    >>> softsign = define_elementwise("softsign", lambda x: x / (1 + abs(x)))
    >>> from sympy import MatrixSymbol
    >>> print(softsign(MatrixSymbol("Z", 4, 5)), softsign.latex, softsign.numpy)
    softsign(Z) \\operatorname{softsign} {x}/(numpy.abs({x}) + 1.0)
    >>> _forget("softsign")
    """
    _check_name(name)
    x = sympy.Dummy("x", real=True)  # entries are real: |x|′ = sign(x), not re/im parts
    body = _built(fn, (x,), name, "fn")
    if isinstance(body, sympy.Function) and body.args == (x,) and not isinstance(body, ScalarFunctionBase):
        scalar = type(body)  # an existing SymPy function, as it is
    else:
        scalar = _new_class(class_name or "".join(p[:1].upper() + p[1:] for p in name.split("_")), body, x, fn)
    if scalar in _BY_CLASS:
        raise ValueError(f"define_elementwise({name!r}): {scalar.__name__} is already defined as "
                         f"{_BY_CLASS[scalar].name!r}")
    if derivative is None:
        d = sympy.diff(body, x)
    else:
        d = _built(derivative, (x, scalar) if _arity(derivative) == 2 else (x,), name, "derivative")
    if d.has(sympy.Derivative, sympy.Subs):
        raise ValueError(f"define_elementwise({name!r}): SymPy cannot differentiate {body}; give derivative=")
    if latex is None:
        latex = r"\operatorname{" + name.replace("_", r"\_") + "}"
    greek = re.fullmatch(r"\\([A-Za-z]+)", latex)
    text = greek_unicode.get(greek.group(1), name) if greek else name
    record = ElementwiseFunction(name, scalar, text, latex, _numpy_code(name, body, x, numpy),
                                 Lambda(x, d))
    numeric.register_function(scalar.__name__, record.numpy)   # constants fold as NumPy computes them
    _REGISTRY[name] = _BY_CLASS[scalar] = record
    return record


def _arity(f: object) -> int | None:
    try:
        return len(inspect.signature(f).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # not callable, or no signature: _built says which
        return None


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"define_elementwise: the name must be letters, digits and underscores, got {name!r}")
    layers = sys.modules.get("derive.layers")
    if name in RESERVED_NAMES or (layers is not None and name in layers.layers()):
        raise ValueError(f"define_elementwise: {name!r} is a function of the expression language")
    if name in _REGISTRY:
        raise ValueError(f"define_elementwise: {name!r} is already defined")


def _built(make: Callable[..., Any], args: tuple, name: str, what: str) -> sympy.Expr:
    """``make(*args)``, checked to be a scalar SymPy expression of the variable alone."""
    if not callable(make):
        raise TypeError(f"define_elementwise({name!r}): {what} must be callable, got {type(make).__name__}")
    try:
        e = make(*args)
    except Exception as err:  # the user's code: one line, whatever it raised
        raise ValueError(f"define_elementwise({name!r}): {what}(x) failed: {type(err).__name__}: {err}") from None
    e = sympy.S(e) if isinstance(e, (int, float)) else e
    if not isinstance(e, sympy.Expr) or isinstance(e, MatrixExpr) or e.free_symbols - {args[0]}:
        raise ValueError(f"define_elementwise({name!r}): {what}(x) must be a scalar SymPy expression of x "
                         f"alone, got {type(e).__name__} {e}")
    return e


def _new_class(class_name: str, body: sympy.Expr, x: sympy.Dummy, fn: Callable) -> FunctionClass:
    if not class_name.isidentifier() or hasattr(sympy, class_name) or any(
            c.__name__ == class_name for c in _BY_CLASS):
        raise ValueError(f"define_elementwise: the class name {class_name!r} is taken; give class_name=")
    doc = f"The scalar function x ↦ {sympy.sstr(body.xreplace({x: sympy.Symbol('x')}))}."
    return type(class_name, (ScalarFunctionBase,),
                {"_definition": staticmethod(fn), "__module__": __name__, "__doc__": doc})


class _TemplatePrinter(NumPyPrinter):
    """NumPy code of a definition; functions defined before it print as their own templates."""

    def _print_ScalarFunctionBase(self, expr: ScalarFunctionBase) -> str:
        return f"({_BY_CLASS[type(expr)].numpy.format(x=self._print(expr.args[0]))})"

    def _print_Abs(self, expr: sympy.Abs) -> str:   # SymPy writes Python's abs; templates call numpy.*
        return f"numpy.abs({self._print(expr.args[0])})"


_X = "_x_"


def _numpy_code(name: str, body: sympy.Expr, x: sympy.Dummy, template: str | None) -> str:
    """The NumPy template: the one given, NumPy's function of that name, or ``body`` printed."""
    if template is None:
        if isinstance(getattr(np, name, None), np.ufunc) and getattr(np, name).nin == 1:
            return f"numpy.{name}({{x}})"
        # constants as Python floats (a NumPy float64 constant would make float32 arrays float64)
        printer = _TemplatePrinter({"strict": False})
        code = printer.doprint(sympy.nfloat(body, n=17, exponent=False).xreplace({x: sympy.Symbol(_X)}))
        if printer._not_supported:
            code = ""
        template = code.replace("{", "{{").replace("}", "}}").replace(_X, "{x}")
    try:
        tree = ast.parse(template.format(x=_X), mode="eval")
    except (SyntaxError, ValueError, KeyError, IndexError, AttributeError) as err:
        raise ValueError(f"define_elementwise({name!r}): numpy={template!r} is not Python code with {{x}}: "
                         f"{err}") from None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    if _X not in names or not names <= {_X, "numpy", "abs"}:
        raise ValueError(f"define_elementwise({name!r}): NumPy code {template!r} must use {{x}} and numpy "
                         "(and abs) alone; give numpy= (a template such as 'numpy.tanh({x})')")
    return template


def _forget(name: str) -> None:
    """Remove a function defined by a test or an example (kernels already compiled keep it)."""
    record = _REGISTRY.pop(name)
    del _BY_CLASS[record.scalar]


# --------------------------------------------------------------------------- φ(A)


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
        record = function_record(fn)
        if record is not None:
            return record.text, record.latex
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


def _check_matrix(A: object, name: str) -> None:
    if not isinstance(A, MatrixExpr):
        raise TypeError(f"{name}() takes a SymPy matrix expression, got {type(A).__name__} {A!r}")


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
    return fn


def _ones(A: MatrixExpr) -> MatrixExpr:
    return OneMatrix(*A.shape)


def elementwise_derivative(e: ElementwiseApplyFunction) -> MatrixExpr:
    """φ′(A) for ``e = φ(A)``, as a matrix expression of the shape of ``A``: the record's
    derivative, else the scalar derivative lifted.

    >>> from sympy import MatrixSymbol
    >>> h = MatrixSymbol("h", 4, 5)
    >>> elementwise_derivative(sigmoid(h)).args[0] == sigmoid(h)
    True
    """
    fn = elementwise_function(e)
    record = function_record(fn)
    if record is not None:
        return record.derivative(e.expr)
    return lift_scalar(_scalar_derivative(fn), e.expr)


def _scalar_derivative(fn: FunctionClass | Lambda) -> Lambda:
    x = sympy.Dummy("x", real=True)  # entries are real: |x|′ = sign(x), not re/im parts
    body = fn(x) if isinstance(fn, FunctionClass) else fn.expr.subs(fn.variables[0], x)
    # sign′ = 2δ and Heaviside′ = δ: 0 almost everywhere, as step′ is here (kernels have no δ)
    return Lambda(x, sympy.diff(body, x).replace(sympy.DiracDelta, lambda *_: sympy.S.Zero))


def lift_scalar(fn: Lambda, A: MatrixExpr) -> MatrixExpr:
    """The matrix whose entries are ``fn`` of the entries of ``A``.

    Sums become sums, products Hadamard products (sums last: σ ⊙ (𝟏 − σ)), powers Hadamard
    powers, and a function of the variable an elementwise application.

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
            factors = sorted((lift(a) for a in e.args if a.has(x)), key=lambda f: isinstance(f, sympy.MatAdd))
            core = factors[0] if len(factors) == 1 else HadamardProduct(*factors)
            # MatMul without doit(): doit() would merge tanh(softplus(A)) into one composed Lambda
            return core if coeff == 1 else sympy.MatMul(coeff, core)
        if isinstance(e, sympy.Pow) and not e.exp.has(x):
            return HadamardPower(lift(e.base), e.exp)
        if isinstance(e, sympy.Function) and len(e.args) == 1:
            inner = lift(e.args[0])
            return Elementwise(canonical_lambda(type(e)), inner)
        d = sympy.Dummy("t")
        return Elementwise(Lambda(d, e.subs(x, d)), A)

    return lift(fn.expr)


# --------------------------------------------------------------------------- the built-in functions
# One definition each; the NumPy code where NumPy has no function of that name, chosen not to overflow
# (σ(x) = ½ tanh(x/2) + ½, softplus = logaddexp(0, x)) and 0 at 0 for the step.

step = define_elementwise("step", lambda x: sympy.Heaviside(x, 0), derivative=lambda x: 0,
                          numpy="numpy.heaviside({x}, 0)", class_name="UnitStep")
sigmoid = define_elementwise("sigmoid", lambda x: 1 / (1 + sympy.exp(-x)), latex=r"\sigma",
                             derivative=lambda x, s: s(x) * (1 - s(x)),
                             numpy="0.5 * numpy.tanh(0.5 * {x}) + 0.5")
tanh = define_elementwise("tanh", sympy.tanh, latex=r"\tanh")
relu = define_elementwise("relu", lambda x: sympy.Max(x, 0), derivative=lambda x: step.scalar(x),
                          numpy="numpy.maximum({x}, 0)")
softplus = define_elementwise("softplus", lambda x: sympy.log(1 + sympy.exp(x)),
                              derivative=lambda x: sigmoid.scalar(x), numpy="numpy.logaddexp(0, {x})")
exp = define_elementwise("exp", sympy.exp, latex=r"\exp")
log = define_elementwise("log", sympy.log, latex=r"\log")
gelu = define_elementwise("gelu", lambda x: x / 2 * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) * (x + 0.044715 * x**3))))
swish = define_elementwise("swish", lambda x: x * sigmoid.scalar(x))  # SiLU
# leaky ReLU with PyTorch's default slope 0.01 (exact, 1/100), and ELU with α = 1: elu′ = 1 for x > 0 and
# elu + 1 = eˣ below, written with elu itself so that the kernel never evaluates eˣ at a large x
leaky_relu = define_elementwise("leaky_relu", lambda x: sympy.Max(x, x / 100),
                                derivative=lambda x: sympy.Rational(1, 100) + sympy.Rational(99, 100) * step.scalar(x),
                                numpy="numpy.maximum({x}, 0.01 * {x})")
# |x|: sign is its derivative away from 0 and, at 0, sign(0) = 0 is a subgradient (any value in [−1, 1] is)
abs_ = define_elementwise("abs", sympy.Abs, derivative=lambda x: sympy.sign(x),
                          numpy="numpy.abs({x})", latex=r"\operatorname{abs}")
elu = define_elementwise("elu", lambda x: sympy.Max(x, 0) + sympy.Min(sympy.exp(x) - 1, 0),
                         derivative=lambda x, e: step.scalar(x) + (1 - step.scalar(x)) * (e(x) + 1),
                         numpy="numpy.maximum({x}, 0) + numpy.expm1(numpy.minimum({x}, 0))")

UnitStep, Sigmoid, Relu, Softplus = step.scalar, sigmoid.scalar, relu.scalar, softplus.scalar
__all__ += [name for name in _REGISTRY if name in globals()]  # abs is abs_
