"""What numeric compiles by name: elementwise functions, and the default gradient of ``check_gradient``.

numeric imports nothing from derive: a SymPy function class is known here by its ``__name__``
(``"exp"``, ``"Abs"``, ``"Sigmoid"``), and whoever defines a function registers its NumPy code
with :func:`register_function`.  SymPy's own functions are registered below; derive registers
its activations (σ, softplus, relu, the unit step, …) when its elementwise module is imported.

A template is one Python expression in NumPy code with ``{x}`` for the argument, written with
the ``numpy.`` prefix (a backend maps the prefix to its own array module).  It is parsed when
registered: its precedence, and how tightly each ``{x}`` binds, decide the parentheses when it
is printed, and a template that reads ``{x}`` more than once makes the argument a temporary.

This module imports only the standard library, so that registering costs nothing.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADD",
    "ATOM",
    "MUL",
    "POW",
    "UNARY",
    "NumericFunction",
    "default_gradient",
    "function",
    "notation",
    "register_function",
    "register_gradient",
    "register_notation",
]

# Python's operator precedences, as the printers compare them
ATOM, POW, UNARY, MUL, ADD = 100, 15, 14, 12, 11

_PLACEHOLDER = "__x__"
_BINARY = {ast.Add: ADD, ast.Sub: ADD, ast.Mult: MUL, ast.Div: MUL, ast.FloorDiv: MUL, ast.Mod: MUL,
           ast.MatMult: MUL, ast.Pow: POW}
_ALLOWED = (ast.Expression, ast.Call, ast.Name, ast.Attribute, ast.Constant, ast.BinOp, ast.UnaryOp,
            ast.Load, ast.operator, ast.unaryop, ast.keyword)


@dataclass(frozen=True)
class NumericFunction:
    """One elementwise function: its NumPy template, parsed, and its value at a number.

    ``pieces`` are the template's text around each ``{x}``; ``contexts[i]`` is how the i-th
    ``{x}`` binds: None where any expression may stand (a call's argument), else the
    precedence its argument must reach and whether an equal one needs parentheses too.
    """

    name: str
    numpy: str
    scalar: Callable[[float], float] | None
    precedence: int
    pieces: tuple[str, ...]
    contexts: tuple[tuple[int, bool] | None, ...]

    @property
    def reads(self) -> int:
        """How many times the template reads its argument."""
        return len(self.contexts)

    def value(self, x: float) -> float:
        """The function at the number ``x``: ``scalar`` where it gives a finite float, else NumPy's
        value of the template (inf or nan, with NumPy's warning), as a kernel computes it for an array.

        >>> function("exp").value(0.0), function("Heaviside").value(0.0)
        (1.0, 0.0)
        """
        if self.scalar is not None:
            try:
                v = self.scalar(x)
                if isinstance(v, (int, float)):
                    return float(v)
            except (ArithmeticError, ValueError):
                pass
        import numpy

        code = self.numpy.replace("{x}", "(x)")
        return float(eval(code, {"__builtins__": {}, "numpy": numpy}, {"x": numpy.float64(x)}))


_FUNCTIONS: dict[str, NumericFunction] = {}


def _parse(name: str, numpy: str) -> tuple[int, tuple[str, ...], tuple[tuple[int, bool] | None, ...]]:
    if not isinstance(numpy, str) or "{x}" not in numpy:
        raise ValueError(f"function {name}: the NumPy template must be a string with {{x}} for the "
                         f"argument, got {numpy!r}")
    try:
        tree = ast.parse(numpy.replace("{x}", _PLACEHOLDER), mode="eval")
    except SyntaxError:
        raise ValueError(f"function {name}: the NumPy template {numpy!r} is not a Python expression") from None
    for node in ast.walk(tree):
        bad_name = isinstance(node, ast.Name) and node.id not in ("numpy", _PLACEHOLDER)
        if not isinstance(node, _ALLOWED) or bad_name or (isinstance(node, ast.Attribute) and node.attr[:1] == "_"):
            what = node.id if isinstance(node, ast.Name) else getattr(node, "attr", type(node).__name__)
            raise ValueError(f"function {name}: the NumPy template {numpy!r} may use numbers, operators and "
                             f"numpy.* calls only, not {what}")
    contexts: list[tuple[int, bool] | None] = []
    _contexts(tree.body, None, contexts)
    return _precedence(tree.body), tuple(numpy.split("{x}")), tuple(contexts)


def _precedence(node: ast.AST) -> int:
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return UNARY
    return ATOM


def _contexts(node: ast.AST, context: tuple[int, bool] | None, out: list[tuple[int, bool] | None]) -> None:
    """Append, in the order of the template's text, how each placeholder binds."""
    if isinstance(node, ast.Name):
        if node.id == _PLACEHOLDER:
            out.append(context)
    elif isinstance(node, ast.BinOp):
        prec = _BINARY[type(node.op)]
        right_assoc = isinstance(node.op, ast.Pow)
        _contexts(node.left, (prec, right_assoc), out)
        _contexts(node.right, (prec, not right_assoc), out)
    elif isinstance(node, ast.UnaryOp):
        _contexts(node.operand, (UNARY, False), out)
    elif isinstance(node, ast.Attribute):
        _contexts(node.value, (ATOM, False), out)
    elif isinstance(node, ast.Call):
        _contexts(node.func, (ATOM, False), out)
        for a in [*node.args, *(k.value for k in node.keywords)]:
            _contexts(a, None, out)


def register_function(name: str, numpy: str, scalar: Callable[[float], float] | None = None) -> None:
    """Compile the SymPy function class named ``name`` to the NumPy code ``numpy`` (with ``{x}``).

    ``scalar`` computes it at a Python float (for folding constants); without it the template
    is evaluated by NumPy.  A later registration of a name replaces the earlier one.

    >>> register_function("Cube", "{x} ** 3")
    >>> f = function("Cube")
    >>> f.precedence == POW, f.contexts, f.value(2.0)
    (True, ((15, True),), 8.0)
    >>> register_function("Cube", "cube({x})")
    Traceback (most recent call last):
    ...
    ValueError: function Cube: the NumPy template 'cube({x})' may use numbers, operators and numpy.* calls only, not cube
    >>> del _FUNCTIONS["Cube"]
    """
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"a function's name must be the __name__ of its SymPy class, got {name!r}")
    precedence, pieces, contexts = _parse(name, numpy)
    _FUNCTIONS[name] = NumericFunction(name, numpy, scalar, precedence, pieces, contexts)


def function(name: str) -> NumericFunction | None:
    """The registered function named ``name`` (a SymPy class's ``__name__``), or None."""
    return _FUNCTIONS.get(name)


_GRADIENT: list[Callable[[Any, Any], Any]] = []


def register_gradient(gradient: Callable[[Any, Any], Any]) -> None:
    """Make ``gradient(f, X)`` (a matrix expression ∂f/∂X) the gradient ``check_gradient`` checks when
    it is given none; derive registers ``derive.gradient`` when its engine is imported."""
    _GRADIENT[:] = [gradient]


def default_gradient() -> Callable[[Any, Any], Any] | None:
    """The registered gradient function, or None."""
    return _GRADIENT[0] if _GRADIENT else None


_NOTATION: list[Callable[[Any], str]] = []


def register_notation(write: Callable[[Any], str]) -> None:
    """Make ``write(expr)`` the text of an expression in kernels' docstrings and messages; derive
    registers its notation (``2Xᵀ[…]``) when its engine is imported."""
    _NOTATION[:] = [write]


def notation() -> Callable[[Any], str]:
    """The registered notation, or ``str`` (SymPy's, which is also slower)."""
    return _NOTATION[0] if _NOTATION else str


def _sign(x: float) -> float:
    return float((x > 0) - (x < 0))


# SymPy's own functions.  (Heaviside is 0 at 0, as numpy.heaviside(x, 0); NaN stays NaN.)
for _name, _code, _scalar in (
    ("exp", "numpy.exp({x})", math.exp),
    ("log", "numpy.log({x})", math.log),
    ("tanh", "numpy.tanh({x})", math.tanh),
    ("sin", "numpy.sin({x})", math.sin),
    ("cos", "numpy.cos({x})", math.cos),
    ("tan", "numpy.tan({x})", math.tan),
    ("sinh", "numpy.sinh({x})", math.sinh),
    ("cosh", "numpy.cosh({x})", math.cosh),
    ("atan", "numpy.arctan({x})", math.atan),
    ("asin", "numpy.arcsin({x})", math.asin),
    ("acos", "numpy.arccos({x})", math.acos),
    ("Abs", "numpy.abs({x})", abs),
    ("sign", "numpy.sign({x})", _sign),
    ("Heaviside", "numpy.heaviside({x}, 0)", lambda x: 1.0 if x > 0 else 0.0),
):
    register_function(_name, _code, _scalar)
del _name, _code, _scalar
