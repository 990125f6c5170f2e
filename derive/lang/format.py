"""The formatter: SymPy expressions written back in the expression language."""
from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import Determinant, Dummy, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, \
    OneMatrix, Trace, Transpose, ZeroMatrix
from sympy.matrices.expressions.kronecker import KroneckerProduct

from derive.kronecker import Diag, Vec
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from derive.elementwise import elementwise_function
from derive.lang.algebra import _mm
from derive.lang.functions import name_of
from derive.matrix_functions import MatrixExponential

_ADD, _MUL, _UNARY, _POW, _POST, _ATOM = range(1, 7)


def format_expression(expr: sympy.Basic) -> str:
    """Write ``expr`` in the expression language, so that parsing it gives ``expr`` back.

    For every expression :func:`parse_expression` returns, parsing the text again (with
    the same shapes) gives an ``==`` expression.  Implicit broadcasts are written
    implicitly (``X*W + b``); objects with no form in the language raise ``ValueError``.

    >>> from derive.lang import parse_expression
    >>> shapes = {"X": ("n", "d"), "W": ("d", "m"), "b": (1, "m")}
    >>> e = parse_expression("norm2(X*W + b - 1)^2 / 2", shapes)
    >>> format_expression(e)
    'norm2(X*W - 1 + b)^2/2'
    >>> format_expression(parse_expression("(X*W)' ./ 2", shapes))
    "(1/2)*(X*W)'"
    >>> parse_expression(format_expression(e), shapes) == e
    True
    """
    return _fmt(sympy.sympify(expr) if not isinstance(expr, sympy.Basic) else expr)[0]


def _wrap(e: sympy.Basic, level: int) -> str:
    text, got = _fmt(e)
    return text if got >= level else f"({text})"


def _exponent(e: sympy.Basic) -> str:
    text, level = _fmt(e)
    if level < _POW or (e.is_Number and (e.is_negative or not e.is_Integer)):
        return f"({text})"
    return text


def _negative(e: sympy.Basic) -> bool:
    if isinstance(e, MatrixExpr):
        if isinstance(e, MatMul):
            coeff = e.as_coeff_matrices()[0]
            return coeff.is_Number and coeff.is_negative
        return False
    if e.is_Number:
        return bool(e.is_negative)
    if isinstance(e, sympy.Mul):
        coeff = e.as_coeff_Mul()[0]
        return coeff.is_Number and bool(coeff.is_negative)
    return False


def _negate(e: sympy.Basic) -> sympy.Basic:
    if isinstance(e, MatMul):
        coeff, mats = e.as_coeff_matrices()
        return _mm(-coeff, *mats)
    return -e


def _frobenius_arg(e: sympy.Basic) -> MatrixExpr | None:
    """M where ``e`` is ``Trace(MatMul(Transpose(M), M))``."""
    if isinstance(e, Trace) and isinstance(e.arg, MatMul) and len(e.arg.args) == 2:
        t, m = e.arg.args
        if isinstance(t, Transpose) and t.arg == m:
            return m
    return None


def _sum_arg(e: Trace) -> MatrixExpr | None:
    """A where ``e`` is ``Trace(1ᵀ A 1)`` as ``sum`` builds it."""
    if not isinstance(e.arg, MatMul):
        return None
    coeff, mats = e.arg.as_coeff_matrices()
    if (len(mats) >= 3 and isinstance(mats[0], OneMatrix) and isinstance(mats[-1], OneMatrix)
            and mats[0].shape[0] == 1 and mats[-1].shape[1] == 1
            and mats[0].shape[1] != 1 and mats[-1].shape[0] != 1):
        return _mm(coeff, *mats[1:-1])
    return None


def _positive_first(terms: list[sympy.Basic]) -> list[sympy.Basic]:
    for i, term in enumerate(terms):
        if not _negative(term):
            return [term] + terms[:i] + terms[i + 1:]
    return terms


def _terms(e: sympy.Basic, terms: list[sympy.Basic]) -> tuple[str, int]:
    parts: list[str] = []
    for i, term in enumerate(terms):
        if i == 0:
            parts.append(_wrap(term, _ADD))
        elif _negative(term):
            parts.append(f" - {_wrap(_negate(term), _MUL)}")
        else:
            parts.append(f" + {_wrap(term, _MUL)}")
    return "".join(parts), _ADD


def _implicit(term: MatrixExpr, shape: tuple) -> sympy.Basic | None:
    """What to write for a broadcast ``term`` of a sum of ``shape``, or None."""
    R, C = shape
    if isinstance(term, OneMatrix) and term.shape == shape and shape != (1, 1):
        return sympy.Integer(1)
    if not isinstance(term, MatMul) or term.shape != shape:
        return None
    coeff, mats = term.as_coeff_matrices()
    if len(mats) == 1 and isinstance(mats[0], OneMatrix) and shape != (1, 1):
        return coeff
    if len(mats) >= 2 and isinstance(mats[0], OneMatrix) and mats[0].shape == (R, 1) and R != 1 and C != 1:
        return _mm(coeff, *mats[1:])
    if len(mats) >= 2 and isinstance(mats[-1], OneMatrix) and mats[-1].shape == (1, C) and C != 1 and R != 1:
        return _mm(coeff, *mats[:-1])
    return None


def _fmt_mul(e: sympy.Mul) -> tuple[str, int]:
    """A scalar product.  SymPy distributes a number over a sum in a product of exactly
    those two (``2*(c + 1)`` is ``2*c + 2``), so where a factor is a sum the text keeps
    every partial product clear of that: ``(c + 1)*t*2``, ``1/(c + t)/2``, ``-((c + 1)/t)``.
    """
    coeff, rest = e.as_coeff_Mul()
    num: list[sympy.Basic] = []
    den: list[sympy.Basic] = []
    for f in sympy.Mul.make_args(rest):
        if isinstance(f, sympy.Pow) and f.exp.is_Number and f.exp.is_negative:
            den.append(sympy.Pow(f.base, -f.exp))
        else:
            num.append(f)
    negative = bool(coeff.is_negative)
    coeff = -coeff if negative else coeff
    p, q = (sympy.Integer(coeff.p), sympy.Integer(coeff.q)) if isinstance(coeff, sympy.Rational) \
        else (coeff, sympy.Integer(1))
    has_sum = any(isinstance(f, sympy.Add) for f in num + den)
    if has_sum:
        text = "*".join(_wrap(f, _UNARY) for f in num) if num else "1"
        text += "".join(f"/{_wrap(f, _UNARY)}" for f in den)
        text += (f"*{_wrap(p, _UNARY)}" if p != 1 else "") + (f"/{q}" if q != 1 else "")
    else:
        front = ([p] if p != 1 else []) + num
        text = "*".join(_wrap(f, _UNARY) for f in front) if front else "1"
        below = ([q] if q != 1 else []) + den
        if below:
            text += "/" + (_wrap(below[0], _UNARY) if len(below) == 1 else
                           f"({'*'.join(_wrap(f, _UNARY) for f in below)})")
    single = len(num) + (p != 1) == 1 and not den and q == 1
    level = _fmt(num[0] if num else p)[1] if single else _MUL
    if not negative:
        return text, level
    if has_sum:
        return f"-({text})", _UNARY
    return (f"-{text}", _MUL if level == _MUL else _UNARY) if level >= _MUL else (f"-({text})", _UNARY)


def _fmt_matadd(e: MatAdd) -> tuple[str, int]:
    full, implicit = [], []
    for term in e.args:
        content = _implicit(term, e.shape)
        (implicit if content is not None else full).append(content if content is not None else term)
    if not full:   # nothing to broadcast against: write the ones explicitly
        full, implicit = list(e.args), []
    return _terms(e, _positive_first(full) + implicit)


def _fmt_matmul(e: MatMul) -> tuple[str, int]:
    coeff, mats = e.as_coeff_matrices()
    body = "*".join(_wrap(m, _UNARY) for m in mats)
    if coeff.is_Rational and coeff != 1 and isinstance(mats[0], MatAdd) and len(mats) > 1:
        body = f"({body})"   # 2*(A + B)*C, not (2*(A + B))*C, which would distribute
    if coeff == 1:
        return body, (_MUL if len(mats) > 1 else _fmt(mats[0])[1])
    if coeff == -1:
        return f"-{body}", (_UNARY if len(mats) == 1 else _MUL)
    if coeff.is_Rational and not coeff.is_Integer:
        return f"({_fmt(coeff)[0]})*{body}", _MUL
    return f"{_wrap(coeff, _MUL)}*{body}", _MUL


def _fmt_pow(e: sympy.Pow) -> tuple[str, int]:
    base, ex = e.args
    m = _frobenius_arg(base)
    if m is not None and (2 * ex).is_Integer:
        n = 2 * ex
        if n == 1:
            return f"norm2({_fmt(m)[0]})", _POST
        return f"norm2({_fmt(m)[0]})^{_exponent(n)}", _POW
    if ex.is_Number and ex.is_negative:
        return f"1/{_wrap(sympy.Pow(base, -ex), _UNARY)}", _MUL
    if ex == sympy.S.Half:
        return f"sqrt({_fmt(base)[0]})", _POST
    return f"{_wrap(base, _POST)}^{_exponent(ex)}", _POW


def _fmt_function(e: sympy.Function) -> tuple[str, int]:
    if isinstance(e, sympy.log) and isinstance(e.args[0], Determinant):
        return f"logdet({_fmt(e.args[0].arg)[0]})", _POST
    if name_of(type(e)) is not None and len(e.args) == 1:
        return f"{name_of(type(e))}({_fmt(e.args[0])[0]})", _POST
    return _no_form(e)


def _fmt_trace(e: Trace) -> tuple[str, int]:
    m = _frobenius_arg(e)
    if m is not None:
        return f"norm2({_fmt(m)[0]})^2", _POW
    s = _sum_arg(e)
    if s is not None:
        return f"sum({_fmt(s)[0]})", _POST
    return f"tr({_fmt(e.arg)[0]})", _POST


def _fmt_hadamard(e: HadamardProduct) -> tuple[str, int]:
    plain = [f for f in e.args if not (isinstance(f, HadamardPower) and f.exp == -1)]
    inverse = [f.base for f in e.args if isinstance(f, HadamardPower) and f.exp == -1]
    if not plain:
        plain, inverse = list(e.args), []
    text = " .* ".join(_wrap(f, _UNARY) for f in plain)
    text += "".join(f" ./ {_wrap(f, _UNARY)}" for f in inverse)
    return text, _MUL


def _fmt_elementwise(e: ElementwiseApplyFunction) -> tuple[str, int]:
    fn = elementwise_function(e)
    if name_of(fn) is not None:
        return f"{name_of(fn)}({_fmt(e.expr)[0]})", _POST
    return _no_form(e)


def _no_form(e: sympy.Basic) -> tuple[str, int]:
    raise ValueError(f"format_expression: {type(e).__name__} ({e}) has no form in the expression language")


def _signed(e: sympy.Number) -> int:
    return _UNARY if e < 0 else _ATOM


# How each SymPy class is written in the language, looked up along type(e).__mro__.
_FORMATTERS: dict[type, Callable[..., tuple[str, int]]] = {
    sympy.Integer:            lambda e: (str(e), _signed(e)),
    sympy.Rational:           lambda e: (f"{e.p}/{e.q}", _MUL),
    sympy.Float:              lambda e: (str(e), _signed(e)),
    sympy.core.numbers.Exp1:  lambda e: ("exp(1)", _POST),
    sympy.core.numbers.ImaginaryUnit: lambda e: ("(-1)^(1/2)", _POW),
    MatrixSymbol:             lambda e: (e.name, _ATOM),
    Dummy:                    _no_form,
    sympy.Symbol:             lambda e: (e.name, _ATOM),
    OneMatrix:                lambda e: (f"ones({e.shape[0]}, {e.shape[1]})", _POST),
    ZeroMatrix:               lambda e: (f"zeros({e.shape[0]}, {e.shape[1]})", _POST),
    Identity:                 lambda e: (f"eye({e.shape[0]})", _POST),
    MatAdd:                   _fmt_matadd,
    MatMul:                   _fmt_matmul,
    sympy.Add:                lambda e: _terms(e, _positive_first(list(e.args))),
    sympy.Mul:                _fmt_mul,
    sympy.Pow:                _fmt_pow,
    sympy.Function:           _fmt_function,
    Trace:                    _fmt_trace,
    Determinant:              lambda e: (f"det({_fmt(e.arg)[0]})", _POST),
    Inverse:                  lambda e: (f"inv({_fmt(e.arg)[0]})", _POST),
    MatrixExponential:        lambda e: (f"expm({_fmt(e.arg)[0]})", _POST),
    MatPow:                   lambda e: (f"{_wrap(e.base, _POST)}^{_exponent(e.exp)}", _POW),
    Transpose:                lambda e: (f"{_wrap(e.arg, _POST)}'", _POST),
    HadamardPower:            lambda e: (f"{_wrap(e.base, _POST)}.^{_exponent(e.exp)}", _POW),
    HadamardProduct:          _fmt_hadamard,
    ElementwiseApplyFunction: _fmt_elementwise,
    KroneckerProduct:         lambda e: (f"kron({', '.join(_fmt(a)[0] for a in e.args)})", _POST)
    if len(e.args) == 2 else (f"kron({_fmt(e.args[0])[0]}, {_fmt(KroneckerProduct(*e.args[1:]))[0]})", _POST),
    Vec:                      lambda e: (f"vec({_fmt(e.arg)[0]})", _POST),
    Diag:                     lambda e: (f"diag({_fmt(e.arg)[0]})", _POST),
}


def _fmt(e: sympy.Basic) -> tuple[str, int]:
    """(text, precedence level) of ``e``."""
    for cls in type(e).__mro__:
        if cls in _FORMATTERS:
            return _FORMATTERS[cls](e)
    return _no_form(e)


# --------------------------------------------------------------------- comparison

