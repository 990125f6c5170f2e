"""Printers for matrix expressions: LaTeX for documents, unicode text for the terminal.

Both follow one set of conventions, kept in :class:`_MatrixConventions`:

* the differential is an upright d: ``\\mathrm{d}X``, ``\\mathrm{d}(A + B)`` / ``dX``, ``d(A + B)``;
* a sum lists its positive terms first: ``Y_{pred} - Y``, never ``-Y + Y_{pred}``;
* brackets make precedence explicit: a sum inside a product, a product or a sum inside ⊙, and
  a transposed sum or product get parentheses; a Hadamard product that is a factor of a matrix
  product (or is transposed) gets square brackets;
* elementwise functions by the names of their records (derive.elementwise): σ, tanh, relu, …

The printers only read expressions; they never rewrite them.
"""
from __future__ import annotations

import re
from typing import Any

import sympy
from sympy import (
    Basic, Determinant, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixSymbol,
    OneMatrix, Trace, Transpose, ZeroMatrix,
)
from sympy.core.function import FunctionClass
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode
from sympy.printing.str import StrPrinter

from derive.differential import MatrixDifferential  # noqa: F401 (the doctests below use it)
from derive.dims import shape_text
from derive.elementwise import ScalarFunctionBase, elementwise_function, function_record
from derive.render.conventions import (  # noqa: F401 (the printers' shared layout, re-exported)
    _LEAVES, _differential_pair, _is_negative_term, _lambda_power, _matmul_parts, _positive_first,
    differential_layout, factor_bracket, frobenius_operand, hadamard_layout, hadamard_operand_bracket,
    kronecker_operand_bracket, postfix_bracket, postfix_layout, product_layout, signed_terms, softmax_operand,
)
from derive.render.laws import LatexLaws, TextLaws
from derive.render.layout import BREAK, CLOSE, MARKS, OPEN, text_width
from derive.steps import Gradient

__all__ = [
    "BREAK",
    "CLOSE",
    "MARKS",
    "OPEN",
    "TextPrinter",
    "TracegradLatexPrinter",
    "differential_layout",
    "factor_bracket",
    "frobenius_operand",
    "hadamard_layout",
    "hadamard_operand_bracket",
    "loss_latex",
    "loss_text",
    "marked_latex",
    "marked_text",
    "math_latex",
    "math_text",
    "name_parts",
    "postfix_bracket",
    "postfix_layout",
    "product_layout",
    "shape_latex",
    "shape_text",
    "signed_terms",
    "softmax_operand",
    "subscripted_name",
    "symbol_latex",
    "text_width",
]

class _MatrixConventions:
    """Structure shared by the string printers; subclasses supply the notation.

    The decisions themselves (which bracket, which sign, which order) are the module's layout
    functions, which the MathML printer uses as well.  Subclass hooks: ``_bracket(expr, kind)``
    prints ``expr`` inside ``(`` or ``[`` brackets, ``_call(name, expr)`` a function applied to
    ``expr``, and the tokens below.
    """

    ODOT: str
    OTIMES: str
    T: str  # transpose
    INV: str
    INV_T: str
    TR: str
    DET: str
    D: str  # the differential
    D_SEP: str  # between d and tr
    _NAME: str  # the field of an elementwise function's record that names it: text or latex
    SOFTMAX: str
    BRACKET_GRADIENT = False  # ∂f/∂Z as a factor of a product: (∂f/∂Z) in text, where "/" binds loosely
    MINUS: str = " - "
    PLUS: str = " + "
    marks = False  # write the line-break markers (see OPEN, BREAK, CLOSE)

    def _open(self, kind: str) -> str:
        return OPEN[kind] if self.marks else ""

    def _break(self) -> str:
        return BREAK if self.marks else ""

    def _close(self) -> str:
        return CLOSE if self.marks else ""

    # --- precedence -------------------------------------------------------
    def _bracketed(self, a: Basic, kind: str | None) -> str:
        return self._print(a) if kind is None else self._bracket(a, kind)

    def _factor(self, a: Basic) -> str:
        """``a`` as a factor of a matrix product."""
        return self._bracketed(a, factor_bracket(a, self.BRACKET_GRADIENT))

    def _hadamard_operand(self, a: Basic) -> str:
        return self._bracketed(a, hadamard_operand_bracket(a))

    def _postfix_base(self, a: Basic) -> str:
        """The base of a postfix operator: ᵀ, ⁻¹, a power."""
        return self._bracketed(a, postfix_bracket(a))

    # --- sums and products ------------------------------------------------
    def _print_MatAdd(self, expr: MatAdd) -> str:
        out = ""
        for i, (neg, t) in enumerate(signed_terms(expr.args)):
            body = self._signed_term(t, negate=neg)
            if i == 0:
                out = ("-" + body) if neg else body
            else:
                out += self._break() + (self.MINUS if neg else self.PLUS) + body
        return self._open("sum") + out + self._close()

    def _print_Add(self, expr: sympy.Add, order: str | None = None) -> str:
        """A scalar sum, positive terms first (as the MathML printer writes it too)."""
        out = ""
        for i, term in enumerate(_positive_first(list(self._as_ordered_terms(expr, order=order)))):
            if term.could_extract_minus_sign():
                out += "-" if i == 0 else self._break() + self.MINUS
                term = -term
            elif i:
                out += self._break() + self.PLUS
            out += self._scalar_term(term)
        return self._open("sum") + out + self._close()

    def _signed_term(self, t: Basic, negate: bool) -> str:
        # only a product carries a sign (its coefficient)
        return self._matmul(t, negate=negate) if isinstance(t, MatMul) else self._print(t)

    def _print_MatMul(self, expr: MatMul) -> str:
        return self._matmul(expr, negate=False)

    def _matmul(self, expr: MatMul, negate: bool) -> str:
        minus, coeff, mats = product_layout(expr, negate)
        prefix = "-" if minus else ""
        if coeff != 1:
            prefix += self._coefficient(coeff)
        parts = [self._factor(a) for a in mats]
        return self._join(prefix, parts, mats)

    def _print_HadamardProduct(self, expr: HadamardProduct) -> str:
        ops = [self._call(self.SOFTMAX, a) if kind == "softmax" else self._hadamard_operand(a)
               for kind, a in hadamard_layout(expr)]
        if len(ops) == 1:  # softmax(Z) alone
            return ops[0]
        return self._open("hadamard") + (self._break() + self.ODOT).join(ops) + self._close()

    def _print_KroneckerProduct(self, expr: Basic) -> str:
        # an identity factor with its size (Iₙ ⊗ A): nothing beside it says how large it is
        return self.OTIMES.join(self._sized_identity(a) if isinstance(a, Identity) else
                                self._bracketed(a, kronecker_operand_bracket(a)) for a in expr.args)

    # --- postfix operators -----------------------------------------------
    def _print_Transpose(self, expr: Transpose) -> str:
        base, op = postfix_layout(expr)
        return self._postfix_base(base) + getattr(self, op)

    _print_Inverse = _print_Transpose

    # --- functions ---------------------------------------------------------
    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        fn = elementwise_function(expr)
        p = _lambda_power(fn)
        if p is not None:
            return self._hadamard_power(expr.expr, p)
        record = function_record(fn)
        if record is not None:
            return self._call(getattr(record, self._NAME), expr.expr)
        if isinstance(fn, FunctionClass):
            return self._call(self._function_name(fn.__name__), expr.expr)
        return self._lambda_call(fn, expr.expr)

    def _print_HadamardPower(self, expr: HadamardPower) -> str:
        return self._hadamard_power(expr.base, expr.exp)

    def _print_Trace(self, expr: Trace) -> str:
        return self._call(self.TR, expr.arg)

    def _print_Determinant(self, expr: Determinant) -> str:
        return self._call(self.DET, expr.arg)

    # --- differentials -----------------------------------------------------
    def _print_MatrixDifferential(self, expr: Basic) -> str:
        a = expr.args[0]
        layout = differential_layout(a)
        if layout == "leaf":
            return self.D + self._print(a)
        if layout == "trace":
            return self.D + self.D_SEP + self._print(a)
        return self.D + self._bracket(a, "(")

    _print_ScalarDifferential = _print_MatrixDifferential


class TracegradLatexPrinter(_MatrixConventions, LatexLaws, LatexPrinter):
    r"""SymPy's LaTeX printer with tracegrad's notation.

    >>> X, W = MatrixSymbol("X", 4, 3), MatrixSymbol("W1", 3, 2)
    >>> TracegradLatexPrinter().doprint(X.T * MatrixDifferential(X * W))
    'X^T\\,\\mathrm{d}(XW_1)'
    """

    printmethod = "_tracegrad_latex"
    ODOT = r" \odot "
    OTIMES = r" \otimes "
    T = "^T"
    INV = "^{-1}"
    INV_T = "^{-T}"
    TR = r"\operatorname{tr}"
    DET = r"\det"
    D = r"\mathrm{d}"
    D_SEP = ""
    SOFTMAX = r"\operatorname{softmax}"
    _NAME = "latex"

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__(settings)
        # set while printing inside a bracket when a precedence bracket was printed within it
        self._nested = False

    def _bracket(self, expr: Basic, kind: str) -> str:
        self._nested = False
        inner = self._print(expr)
        nested = self._nested
        self._nested = True  # whatever encloses this now holds a bracket
        if kind == "[":
            return rf"\left[{inner}\right]"
        if nested or r"\frac" in inner:
            return rf"\left({inner}\right)"
        return f"({inner})"

    def _call(self, name: str, arg: Basic) -> str:
        saved, self._nested = self._nested, False
        inner = self._print(arg)
        nested = self._nested
        self._nested = saved or nested
        if nested:
            return rf"{name}\left({inner}\right)"
        return f"{name}({inner})"

    def _function_name(self, name: str) -> str:
        from sympy.printing.latex import accepted_latex_functions

        return "\\" + name if name in accepted_latex_functions else rf"\operatorname{{{name}}}"

    def _lambda_call(self, fn: sympy.Lambda, arg: Basic) -> str:
        x = sympy.Symbol("x")
        body = self._print(fn.expr.xreplace({fn.variables[0]: x}))
        return rf"\left(x \mapsto {body}\right)\left[{self._print(arg)}\right]"

    def _hadamard_power(self, base: Basic, p: sympy.Expr) -> str:
        return rf"{self._postfix_base(base)}^{{\circ {self._print(p)}}}"

    def _coefficient(self, c: sympy.Expr) -> str:
        if isinstance(c, sympy.Add):
            return self._bracket(c, "(")
        return self._print(c)

    def _join(self, prefix: str, parts: list[str], mats: list[Basic]) -> str:
        out = prefix
        prev: Basic | None = None
        grouped = False  # a break marker between two factors: the product is a group
        for s, a in zip(parts, mats):
            if prev is not None and _differential_pair(prev, a):
                out += r"\,"
            elif re.search(r"\\[A-Za-z]+$", out.rstrip(BREAK + CLOSE)) and s[:1].isalpha():
                out += " "
            if prev is not None and not _differential_pair(prev, a):
                out += self._break()
                grouped = self.marks
            out += s
            prev = a
        return self._open("product") + out + self._close() if grouped else out

    # --- leaves -------------------------------------------------------------
    def _print_MatrixSymbol(self, expr: MatrixSymbol, style: str = "plain") -> str:
        return symbol_latex(expr.name, self)

    # the constants e, π and i as in the text and MathML printers (SymPy: \text{ImaginaryUnit}, \text{\Pi})
    def _print_Exp1(self, expr: Basic) -> str:
        return "e"

    def _print_Pi(self, expr: Basic) -> str:
        return r"\pi"

    def _print_ImaginaryUnit(self, expr: Basic) -> str:
        return "i"

    def _print_OneMatrix(self, expr: OneMatrix) -> str:
        rows, cols = expr.shape
        if cols == 1:
            return rf"\mathbf{{1}}_{{{self._print(rows)}}}"
        if rows == 1:
            return rf"\mathbf{{1}}_{{{self._print(cols)}}}^T"
        return r"\mathbf{1}"

    def _print_Identity(self, expr: Identity) -> str:
        return "I"

    def _sized_identity(self, expr: Identity) -> str:
        return rf"I_{{{self._print(expr.shape[0])}}}"

    def _print_ZeroMatrix(self, expr: ZeroMatrix) -> str:
        return "0"

    def _print_MatPow(self, expr: MatPow) -> str:
        base, p = expr.args
        if p == -1:
            return self._postfix_base(base) + self.INV
        return f"{self._postfix_base(base)}^{{{self._print(p)}}}"

    def _print_Gradient(self, expr: Gradient) -> str:
        f, wrt = expr.args
        return rf"\frac{{\partial {self._print(f)}}}{{\partial {self._print(wrt)}}}"

    def _scalar_term(self, term: sympy.Expr) -> str:
        tex = self._print(term)
        return rf"\left({tex}\right)" if self._needs_add_brackets(term) else tex

    # functions defined by derive.define_elementwise, when they appear outside a matrix
    def _print_ScalarFunctionBase(self, expr: ScalarFunctionBase, exp: Any = None) -> str:
        s = self._call(function_record(type(expr)).latex, expr.args[0])
        return f"{s}^{{{exp}}}" if exp is not None else s


def symbol_latex(name: str, printer: LatexPrinter | None = None) -> str:
    r"""A matrix symbol's name in LaTeX: W1 → W_1, W12 → W_{12}, Ypred → Y_{pred}.

    Other names follow SymPy (``h_sigmoid`` → ``h_{sigmoid}``, ``alpha`` → ``\alpha``).

    >>> [symbol_latex(s) for s in ("X", "W1", "b12", "Ypred", "h_sigmoid")]
    ['X', 'W_1', 'b_{12}', 'Y_{pred}', 'h_{sigmoid}']
    """
    parts = subscripted_name(name)
    if parts is not None:
        base, sub = parts
        return f"{base}_{sub}" if len(sub) == 1 else f"{base}_{{{sub}}}"
    printer = printer or LatexPrinter()
    named = name_parts(name)
    if named is None:
        return printer._deal_with_super_sub(name)
    accent, base, subs = named
    tex = printer._deal_with_super_sub(base)
    if accent:
        tex = rf"\{accent}{{{tex}}}"
    if subs:
        tex += "_{" + ",".join(printer._deal_with_super_sub(s) for s in subs) + "}"
    return tex


ACCENTS = ("hat", "bar", "tilde")


def name_parts(name: str) -> tuple[str | None, str, tuple[str, ...]] | None:
    """(accent, base, subscripts) of a name with underscores, as the layers name their stages:
    ``B_hat`` is X̂-like (accent ``hat`` on B), ``L1_mu`` is L with the subscripts 1 and μ.
    None for a name SymPy's own convention writes (no underscore, or a superscript).

    >>> [name_parts(s) for s in ("B_hat", "L1_mu", "L1_hat", "X", "x__2")]
    [('hat', 'B', ()), (None, 'L', ('1', 'mu')), ('hat', 'L', ('1',)), None, None]
    """
    if "_" not in name:
        return None
    base, supers, subs = split_super_sub(name)
    if supers or not subs or not base:
        return None
    accent = subs[-1] if subs[-1] in ACCENTS else None
    return accent, base, tuple(subs[:-1] if accent else subs)


def subscripted_name(name: str) -> tuple[str, str] | None:
    """(base, subscript) for the names tracegrad writes with a subscript, else None.

    A letter and digits (W1, b12) or a capital and lower-case letters (Ypred); other names are
    left to SymPy's own ``x_sub`` / ``x^sup`` convention.

    >>> [subscripted_name(s) for s in ("W1", "Ypred", "h_sigmoid", "X")]
    [('W', '1'), ('Y', 'pred'), None, None]
    """
    m = re.fullmatch(r"([A-Za-z])(\d+)", name) or re.fullmatch(r"([A-Z])([a-z]{2,}\d*)", name)
    return (m.group(1), m.group(2)) if m else None


_SUPERSCRIPT = str.maketrans("0123456789-+()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺⁽⁾ⁿ")
_SUBSCRIPT = str.maketrans("0123456789aehijklmnoprstuvx",
                           "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")


def _script(s: str, table: dict, fallback: str) -> str:
    """``s`` in unicode super/subscript characters, or ``^s``/``_s`` where one is missing."""
    if s and all(ch.translate(table) != ch for ch in s):
        return s.translate(table)
    return f"{fallback}{s}" if len(s) == 1 else f"{fallback}({s})"


class TextPrinter(_MatrixConventions, TextLaws, StrPrinter):
    """A unicode printer for the terminal: dX, ⊙, σ, ᵀ, 𝟏ₙ, ∂f/∂W1, tr.

    >>> h = MatrixSymbol("h", 4, 3)
    >>> from derive.elementwise import sigmoid
    >>> TextPrinter().doprint(OneMatrix(4, 3) - sigmoid(h))
    '𝟏 - σ(h)'
    """

    printmethod = "_tracegrad_text"
    BRACKET_GRADIENT = True
    ODOT = " ⊙ "
    OTIMES = " ⊗ "
    T = "ᵀ"
    INV = "⁻¹"
    INV_T = "⁻ᵀ"
    TR = "tr"
    DET = "det"
    D = "d"
    D_SEP = " "
    SOFTMAX = "softmax"
    _NAME = "text"

    def doprint(self, expr: Basic) -> str:
        # scalar products and powers from StrPrinter: x*y → x·y, x**2 → x^2
        return super().doprint(expr).replace("**", "^").replace("*", "·")

    def _bracket(self, expr: Basic, kind: str) -> str:
        inner = self._print(expr)
        return f"[{inner}]" if kind == "[" else f"({inner})"

    def _call(self, name: str, arg: Basic) -> str:
        return f"{name}({self._print(arg)})"

    def _function_name(self, name: str) -> str:
        return name

    def _lambda_call(self, fn: sympy.Lambda, arg: Basic) -> str:
        x = sympy.Symbol("x")
        return f"(x ↦ {self._print(fn.expr.xreplace({fn.variables[0]: x}))})[{self._print(arg)}]"

    def _hadamard_power(self, base: Basic, p: sympy.Expr) -> str:
        return f"{self._postfix_base(base)}∘{_script(str(p) if p.is_Number else self._print(p), _SUPERSCRIPT, '^')}"

    def _coefficient(self, c: sympy.Expr) -> str:
        if isinstance(c, (sympy.Add, sympy.Rational)) and not c.is_Integer:
            return f"({self._print(c)})"
        if not c.is_Number:
            return self._print(c) + "·"  # λW1 would read as one name: λ·W1
        return self._print(c)

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return greek_unicode.get(expr.name, expr.name)

    def _scalar_term(self, term: sympy.Expr) -> str:
        text = self._print(term)
        return f"({text})" if term.is_Add or term.is_Relational else text

    def _join(self, prefix: str, parts: list[str], mats: list[Basic]) -> str:
        out = prefix
        prev: Basic | None = None
        grouped = False  # a break marker between two factors: the product is a group
        for s, a in zip(parts, mats):
            if (prev is not None and _differential_pair(prev, a)) or (prev is not None and out.rstrip(CLOSE)[-1:].isalnum() and s[:1].isalpha() and (
                    _long_name(prev) or _long_name(a))):
                out += " "
            if prev is not None and not _differential_pair(prev, a):
                out += self._break()
                grouped = self.marks
            out += s
            prev = a
        return self._open("product") + out + self._close() if grouped else out

    def _print_MatrixSymbol(self, expr: MatrixSymbol) -> str:
        return expr.name

    # the constants e, π and i as in the LaTeX and MathML printers (SymPy: E, pi, I)
    def _print_Exp1(self, expr: Basic) -> str:
        return "e"

    def _print_Pi(self, expr: Basic) -> str:
        return "π"

    def _print_ImaginaryUnit(self, expr: Basic) -> str:
        return "i"

    def _print_OneMatrix(self, expr: OneMatrix) -> str:
        rows, cols = expr.shape
        if cols == 1:
            return "𝟏" + _script(self._print(rows), _SUBSCRIPT, "_")
        if rows == 1:
            return "𝟏" + _script(self._print(cols), _SUBSCRIPT, "_") + "ᵀ"
        return "𝟏"

    def _print_Identity(self, expr: Identity) -> str:
        return "I"

    def _sized_identity(self, expr: Identity) -> str:
        return "I" + _script(self._print(expr.shape[0]), _SUBSCRIPT, "_")

    def _print_ZeroMatrix(self, expr: ZeroMatrix) -> str:
        return "0"

    def _print_MatPow(self, expr: MatPow) -> str:
        base, p = expr.args
        if p == -1:
            return self._postfix_base(base) + self.INV
        return self._postfix_base(base) + _script(str(p), _SUPERSCRIPT, "^")

    def _print_Gradient(self, expr: Gradient) -> str:
        f, wrt = expr.args
        return f"∂{self._print(f)}/∂{self._print(wrt)}"

    # functions defined by derive.define_elementwise, when they appear outside a matrix
    def _print_ScalarFunctionBase(self, expr: ScalarFunctionBase) -> str:
        return self._call(function_record(type(expr)).text, expr.args[0])


def _long_name(a: Basic) -> bool:
    """A symbol whose name has more than one letter (Ypred): keep it apart from its neighbours."""
    while isinstance(a, (Transpose, Inverse)):
        a = a.args[0]
    return isinstance(a, MatrixSymbol) and sum(ch.isalpha() for ch in a.name) > 1


_TEXT = TextPrinter()


def math_latex(expr: Basic) -> str:
    r"""``expr`` in tracegrad's LaTeX notation.

    >>> Y, P = MatrixSymbol("Y", 4, 2), MatrixSymbol("Ypred", 4, 2)
    >>> math_latex(MatMul(2, Transpose(P - Y)))
    '2(Y_{pred} - Y)^T'
    """
    return TracegradLatexPrinter().doprint(expr)


def math_text(expr: Basic) -> str:
    """``expr`` as unicode text for the terminal.

    >>> Y, P = MatrixSymbol("Y", 4, 2), MatrixSymbol("Ypred", 4, 2)
    >>> math_text(MatMul(2, Transpose(P - Y), MatrixDifferential(P)))
    '2(Ypred - Y)ᵀ dYpred'
    """
    return _TEXT.doprint(expr)


def loss_latex(loss: Basic) -> str:
    r"""The loss as written: ‖M‖²_F when it is tr(MᵀM), otherwise as stored.

    >>> Y, P = MatrixSymbol("Y", 4, 2), MatrixSymbol("Ypred", 4, 2)
    >>> loss_latex(Trace(MatMul(Transpose(Y - P), Y - P)))
    '\\|Y - Y_{pred}\\|_F^2'
    """
    m = frobenius_operand(loss)
    return rf"\|{math_latex(m)}\|_F^2" if m is not None else math_latex(loss)


def loss_text(loss: Basic) -> str:
    """The loss as unicode text: ‖M‖_F² when it is tr(MᵀM).

    >>> Y, P = MatrixSymbol("Y", 4, 2), MatrixSymbol("Ypred", 4, 2)
    >>> loss_text(Trace(MatMul(Transpose(Y - P), Y - P)))
    '‖Y - Ypred‖_F²'
    """
    m = frobenius_operand(loss)
    return f"‖{math_text(m)}‖_F²" if m is not None else math_text(loss)


def shape_latex(shape: tuple[Basic, Basic]) -> str:
    r"""``n \times d`` for the shape (n, d).

    >>> shape_latex((sympy.Symbol("n"), 3))
    'n \\times 3'
    """
    return rf"{math_latex(sympy.sympify(shape[0]))} \times {math_latex(sympy.sympify(shape[1]))}"


def marked_text(expr: Basic) -> str:
    """``expr`` as :func:`math_text` writes it, with the line-break markers of
    :mod:`derive.render.layout` (for :func:`derive.render.layout.plan`)."""
    printer = TextPrinter()
    printer.marks = True
    return printer.doprint(expr)


def marked_latex(expr: Basic) -> str:
    """``expr`` as :func:`math_latex` writes it, with the line-break markers."""
    printer = TracegradLatexPrinter()
    printer.marks = True
    return printer.doprint(expr)
