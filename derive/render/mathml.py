r"""MathML output: tracegrad's notation as presentation MathML, for web pages.

:class:`TracegradMathMLPrinter` is SymPy's ``MathMLPresentationPrinter`` with the conventions of
:mod:`derive.render.printer` (the same layout functions decide brackets, signs and term order):

* the differential is an upright d, ``<mi mathvariant="normal">d</mi>``;
* ⊙ for the Hadamard product, σ for the sigmoid, ``tr``, ``det``;
* ᵀ is a superscript T, 𝟏ₙ a bold 1 with a subscript, ∂f/∂W₁ a fraction;
* W1 → W₁, Ypred → Y_pred (``msub``).

The rules' laws are SymPy objects (:mod:`derive.laws`) and print here like any expression, so a
page holds no TeX source.
"""
from __future__ import annotations

import html
import re
from typing import Any
from xml.dom.minidom import Element

import sympy
from sympy import (
    Basic, Determinant, Identity, MatAdd, MatMul, MatPow, MatrixSymbol, OneMatrix, Trace,
    Transpose, ZeroMatrix,
)
from sympy.core.function import FunctionClass
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.printing.mathml import MathMLPresentationPrinter

from derive.differential import MatrixDifferential
from derive.render.layout import BREAK, WIDTH, break_levels, split_mathml, unmark
from derive.render.printer import (
    _lambda_power, differential_layout, factor_bracket, frobenius_operand,
    hadamard_layout, hadamard_operand_bracket, kronecker_operand_bracket, marked_text, postfix_bracket,
    postfix_layout, product_layout,
    name_parts, signed_terms, subscripted_name,
)
from derive.elementwise import ScalarFunctionBase, elementwise_function, function_record
from derive.laws import Gradient
from derive.render.laws import MathMLLaws

__all__ = [
    "TracegradMathMLPrinter",
    "equation_mathml",
    "loss_mathml",
    "math_mathml",
    "mathml_rows",
    "shape_mathml",
]

_MINUS = "\u2212"
MARK_COMMENT = "tg:"  # the line-break markers are comments <!--tg:open:sum-->, <!--tg:break-->, …
_NAMED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")


def _numeric_entity(m: re.Match) -> str:
    ch = {"dd": "\u2146"}.get(m.group(1)) or html.unescape(m.group(0))
    return f"&#{ord(ch)};" if len(ch) == 1 else m.group(0)

_THIN = "0.167em"


class TracegradMathMLPrinter(MathMLLaws, MathMLPresentationPrinter):
    """Presentation MathML in tracegrad's notation (the LaTeX printer's conventions).

    >>> X, W = MatrixSymbol("X", 4, 3), MatrixSymbol("W1", 3, 2)
    >>> print(TracegradMathMLPrinter().doprint(MatrixDifferential(X * W)))
    <mrow><mi mathvariant="normal">d</mi><mrow><mo stretchy="false">(</mo><mrow><mi>X</mi><mo>&#8290;</mo><msub><mi>W</mi><mn>1</mn></msub></mrow><mo stretchy="false">)</mo></mrow></mrow>
    >>> print(TracegradMathMLPrinter().doprint(W.T))
    <msubsup><mi>W</mi><mn>1</mn><mi>T</mi></msubsup>
    """

    printmethod = "_tracegrad_mathml"

    marks = False  # write line-break markers as comments (see derive.render.printer.OPEN)

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self._brackets: dict[int, Element] = {}  # the precedence brackets printed so far

    def _mark(self, row: Element, mark: str) -> None:
        """A line-break marker ``open:KIND``, ``break`` or ``close``, when ``marks`` is set."""
        if self.marks:
            row.appendChild(self.dom.createComment(MARK_COMMENT + mark))

    def doprint(self, expr: Basic) -> str:
        """The MathML of ``expr``, ASCII only: characters and SymPy's named entities
        (``&InvisibleTimes;``) as numeric references, so that it is well-formed XML as well as HTML."""
        return _NAMED_ENTITY.sub(_numeric_entity, super().doprint(expr))

    # --- building blocks ---------------------------------------------------
    def _el(self, tag: str, *children: Element | str, **attrs: str) -> Element:
        """An element; a str child becomes escaped text."""
        e = self.dom.createElement(tag)
        for k, v in attrs.items():
            e.setAttribute(k.rstrip("_").replace("_", "-"), v)
        for c in children:
            e.appendChild(self.dom.createTextNode(html.escape(c, quote=False)) if isinstance(c, str) else c)
        return e

    def _mo(self, op: str, **attrs: str) -> Element:
        return self._el("mo", op, **attrs)

    def _mi(self, name: str, upright: bool = False) -> Element:
        return self._el("mi", name, mathvariant="normal") if upright else self._el("mi", name)

    def _row(self, *children: Element) -> Element:
        return self._el("mrow", *children)

    def _bracket(self, expr: Basic | Element, kind: str, precedence: bool = True) -> Element:
        """``(…)`` or ``[…]``.  As in the LaTeX printer, square brackets always grow with their
        content, parentheses only around a fraction or a precedence bracket (not a function's)."""
        inner = expr if isinstance(expr, Element) else self._print(expr)
        if kind == "[":
            row = self._row(self._mo("["), inner, self._mo("]"))
        else:
            grow = bool(inner.getElementsByTagName("mfrac")) or any(
                id(r) in self._brackets for r in [inner, *inner.getElementsByTagName("mrow")])
            attrs = {} if grow else {"stretchy": "false"}
            row = self._row(self._mo("(", **attrs), inner, self._mo(")", **attrs))
        if precedence:
            self._brackets[id(row)] = row  # kept alive, so that the id stays unique
        return row

    def _bracketed(self, a: Basic, kind: str | None) -> Element:
        return self._print(a) if kind is None else self._bracket(a, kind)

    def _call(self, name: str, arg: Basic | Element, upright: bool = False) -> Element:
        """``name(arg)``: a function applied to its argument."""
        return self._row(self._mi(name, upright), self._mo("\u2061"),
                         self._bracket(arg, "(", precedence=False))

    # --- leaves ---------------------------------------------------------------
    def _print_MatrixSymbol(self, expr: MatrixSymbol) -> Element:
        parts = subscripted_name(expr.name)
        named = name_parts(expr.name) if parts is None else None
        if named is not None:
            return self._named(*named)
        if parts is None:
            return self._print_Symbol(sympy.Symbol(expr.name))
        base, sub = parts
        return self._el("msub", self._mi(base), self._el("mn", sub) if sub.isdigit() else self._mi(sub))

    def _named(self, accent: str | None, base: str, subs: tuple[str, ...]) -> Element:
        """A stage name such as B_hat (B̂) or L1_mu (L₁,μ): see :func:`derive.render.printer.name_parts`."""
        el = self._print_Symbol(sympy.Symbol(base))
        if accent:
            el = self._el("mover", el, self._mo({"hat": "^", "bar": "¯", "tilde": "~"}[accent]), accent="true")
        if subs:
            children: list[Element] = []
            for i, sub in enumerate(subs):
                if i:
                    children.append(self._mo(","))
                children.append(self._el("mn", sub) if sub.isdigit() else self._print_Symbol(sympy.Symbol(sub)))
            el = self._el("msub", el, children[0] if len(children) == 1 else self._row(*children))
        return el

    def _print_OneMatrix(self, expr: OneMatrix) -> Element:
        one = self._el("mn", "1", mathvariant="bold")
        rows, cols = expr.shape
        if cols == 1:
            return self._el("msub", one, self._print(rows))
        if rows == 1:
            return self._el("msubsup", one, self._print(cols), self._mi("T"))
        return one

    def _print_Identity(self, expr: Identity) -> Element:
        return self._mi("I")

    def _print_ZeroMatrix(self, expr: ZeroMatrix) -> Element:
        return self._el("mn", "0")

    def _print_Gradient(self, expr: Gradient) -> Element:
        f, wrt = expr.args
        return self._el("mfrac", self._row(self._mi("∂"), self._print(f)),
                        self._row(self._mi("∂"), self._print(wrt)))

    # --- sums and products ------------------------------------------------------
    def _print_MatAdd(self, expr: MatAdd) -> Element:
        row = self._row()
        self._mark(row, "open:sum")
        for i, (neg, t) in enumerate(signed_terms(expr.args)):
            if i:
                self._mark(row, "break")
            if neg or i:
                row.appendChild(self._mo(_MINUS if neg else "+"))
            row.appendChild(self._product(t, negate=neg) if isinstance(t, MatMul) else self._print(t))
        self._mark(row, "close")
        return row

    def _print_MatMul(self, expr: MatMul) -> Element:
        return self._product(expr, negate=False)

    def _product(self, expr: MatMul, negate: bool) -> Element:
        minus, coeff, mats = product_layout(expr, negate)
        row = self._row()
        if minus:
            row.appendChild(self._mo(_MINUS))
        if coeff != 1:
            row.appendChild(self._bracket(coeff, "(") if isinstance(coeff, sympy.Add) else self._print(coeff))
            if not coeff.is_Number:
                row.appendChild(self._mo("\u2062"))
        prev: Basic | None = None
        grouped = False
        for a in mats:
            if prev is not None:
                if MatrixDifferential in (type(a), type(prev)):
                    row.appendChild(self._el("mspace", width=_THIN))
                else:
                    self._mark(row, "break")
                    grouped = self.marks
                    row.appendChild(self._mo("\u2062"))  # invisible times
            row.appendChild(self._bracketed(a, factor_bracket(a)))
            prev = a
        if grouped:
            row.insertBefore(self.dom.createComment(MARK_COMMENT + "open:product"), row.firstChild)
            self._mark(row, "close")
        return row

    def _print_HadamardProduct(self, expr: HadamardProduct) -> Element:
        items = hadamard_layout(expr)
        if len(items) == 1:  # softmax(Z) alone
            return self._call("softmax", items[0][1])
        row = self._row()
        self._mark(row, "open:hadamard")
        for i, (kind, a) in enumerate(items):
            if i:
                self._mark(row, "break")
                row.appendChild(self._mo("⊙"))
            row.appendChild(self._call("softmax", a) if kind == "softmax"
                            else self._bracketed(a, hadamard_operand_bracket(a)))
        self._mark(row, "close")
        return row

    def _print_KroneckerProduct(self, expr: Basic) -> Element:
        row = self._row()
        for i, a in enumerate(expr.args):
            if i:
                row.appendChild(self._mo("⊗"))
            row.appendChild(self._el("msub", self._mi("I"), self._print(a.shape[0])) if isinstance(a, Identity)
                            else self._bracketed(a, kronecker_operand_bracket(a)))
        return row

    # --- postfix operators -----------------------------------------------------
    def _postfix(self, base: Basic, script: Element) -> Element:
        b = self._bracketed(base, postfix_bracket(base))
        if b.tagName == "msub":  # W₂ᵀ: the T above the 2
            return self._el("msubsup", *b.childNodes[:], script)
        return self._el("msup", b, script)

    def _print_Transpose(self, expr: Transpose) -> Element:
        base, op = postfix_layout(expr)
        if op == "T":
            script = self._mi("T")
        elif op == "INV":
            script = self._row(self._mo(_MINUS), self._el("mn", "1"))
        else:
            script = self._row(self._mo(_MINUS), self._mi("T"))
        return self._postfix(base, script)

    _print_Inverse = _print_Transpose

    def _print_MatPow(self, expr: MatPow) -> Element:
        base, p = expr.args
        if p == -1:
            return self._postfix(base, self._row(self._mo(_MINUS), self._el("mn", "1")))
        return self._postfix(base, self._print(p))

    def _print_HadamardPower(self, expr: HadamardPower) -> Element:
        return self._hadamard_power(expr.base, expr.exp)

    def _hadamard_power(self, base: Basic, p: sympy.Expr) -> Element:
        return self._postfix(base, self._row(self._mo("∘"), self._print(p)))

    # --- functions ----------------------------------------------------------------
    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> Element:
        fn = elementwise_function(expr)
        p = _lambda_power(fn)
        if p is not None:
            return self._hadamard_power(expr.expr, p)
        record = function_record(fn)
        if record is not None:
            return self._call(record.text, expr.expr)
        if isinstance(fn, FunctionClass):
            return self._call(fn.__name__, expr.expr)
        x = sympy.Symbol("x")
        body = self._print(fn.expr.xreplace({fn.variables[0]: x}))
        return self._row(self._bracket(self._row(self._mi("x"), self._mo("↦"), body), "("),
                         self._bracket(expr.expr, "["))

    def _print_Trace(self, expr: Trace) -> Element:
        return self._call("tr", expr.arg)

    def _print_Determinant(self, expr: Determinant) -> Element:
        return self._call("det", expr.arg)

    def _print_ScalarFunctionBase(self, expr: ScalarFunctionBase) -> Element:
        """A function defined by derive.define_elementwise, outside a matrix."""
        return self._call(function_record(type(expr)).text, expr.args[0])

    # --- differentials ------------------------------------------------------------
    def _print_MatrixDifferential(self, expr: Basic) -> Element:
        a = expr.args[0]
        d = self._mi("d", upright=True)
        layout = differential_layout(a)
        if layout == "leaf":
            return self._row(d, self._print(a))
        if layout == "trace":
            return self._row(d, self._el("mspace", width=_THIN), self._print(a))
        return self._row(d, self._bracket(a, "("))

    _print_ScalarDifferential = _print_MatrixDifferential

    # --- scalars ------------------------------------------------------------------
    def _print_Add(self, expr: sympy.Add, order: str | None = None) -> Element:
        row = self._row()
        self._mark(row, "open:sum")
        terms = self._as_ordered_terms(expr, order=order)
        for i, (neg, t) in enumerate(signed_terms(terms)):
            if i:
                self._mark(row, "break")
            if neg or i:
                row.appendChild(self._mo(_MINUS if neg else "+"))
            row.appendChild(self._print(-t if neg else t))
        self._mark(row, "close")
        return row

    def _print_exp(self, expr: sympy.exp) -> Element:
        # a scalar exponential, as the LaTeX printer writes it: e^{x}
        return self._el("msup", self._mi("e", upright=True), self._print(expr.args[0]))

    def _print_Exp1(self, expr: Basic) -> Element:
        return self._mi("e", upright=True)

    def _print_ImaginaryUnit(self, expr: Basic) -> Element:
        # i, as the text and LaTeX printers write it (SymPy writes the double-struck ⅈ)
        return self._mi("i", upright=True)

    def _print_Integer(self, expr: sympy.Integer) -> Element:
        if expr < 0:
            return self._row(self._mo(_MINUS), self._el("mn", str(-expr)))
        return self._el("mn", str(expr))

    def _print_Mul(self, expr: sympy.Mul) -> Element:
        if expr.could_extract_minus_sign():
            return self._row(self._mo(_MINUS), self._print(-expr))
        # a coefficient times traces or determinants: 2 tr(…), without a dot
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_Integer and rest.is_Mul is False and not rest.is_Number:
            if coeff == -1:
                return self._row(self._mo(_MINUS), self._print(rest))
            # 2 tr(…): a thin space before an operator name, as TeX puts one before \operatorname
            operator = isinstance(rest, (Trace, Determinant))
            gap = self._el("mspace", width=_THIN) if operator else self._mo("\u2062")
            if coeff < 0:
                return self._row(self._mo(_MINUS), self._print(-coeff), gap, self._print(rest))
            return self._row(self._print(coeff), gap, self._print(rest))
        return super()._print_Mul(expr)


_PRINTER_SETTINGS: dict[str, Any] = {}


# --- long equations ----------------------------------------------------------------------------

def mathml_rows(expr: Basic, width: int = WIDTH["html"], start: int = 0) -> list[str]:
    """``expr`` as MathML rows (without ``<math>``), broken where :func:`derive.render.layout.plan`
    breaks its text (:func:`derive.render.layout.split_mathml`); each row is well formed and the
    rows after the first begin with their indentation (an ``<mspace>``).

    >>> from sympy import MatrixSymbol, Transpose
    >>> A, B = MatrixSymbol("A", 3, 3), MatrixSymbol("B", 3, 3)
    >>> rows = mathml_rows(Transpose(A * B + B * A), width=8)
    >>> len(rows), rows[1].startswith('<mspace width="2em"/>'), rows[1].endswith("</msup>")
    (2, True, True)
    """
    printer = TracegradMathMLPrinter()
    printer.marks = True
    marked = printer.doprint(expr)
    text = marked_text(expr)
    if marked.count("<!--tg:break-->") != text.count(BREAK):  # the printers disagree: not broken
        return [unmark(marked)]
    return split_mathml(marked, break_levels(text, width, start))


def _math(node_xml: str, display: bool) -> str:
    attrs = ' display="block"' if display else ""
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML"{attrs}>{node_xml}</math>'


def math_mathml(expr: Basic, display: bool = False) -> str:
    """``expr`` as a ``<math>`` element.

    >>> Y, P = MatrixSymbol("Y", 4, 2), MatrixSymbol("Ypred", 4, 2)
    >>> print(math_mathml(P - Y))
    <math xmlns="http://www.w3.org/1998/Math/MathML"><mrow><msub><mi>Y</mi><mi>pred</mi></msub><mo>&#8722;</mo><mrow><mi>Y</mi></mrow></mrow></math>
    """
    return _math(TracegradMathMLPrinter(_PRINTER_SETTINGS).doprint(expr), display)


def equation_mathml(lhs: Basic, rhs: Basic, display: bool = False) -> str:
    """``lhs = rhs`` as one ``<math>`` element."""
    p = TracegradMathMLPrinter(_PRINTER_SETTINGS)
    return _math(p.doprint(lhs) + "<mo>=</mo>" + p.doprint(rhs), display)


def loss_mathml(loss: Basic) -> str:
    """The loss as written, without the ``<math>`` wrapper: ‖M‖²_F when it is tr(MᵀM)."""
    p = TracegradMathMLPrinter(_PRINTER_SETTINGS)
    m = frobenius_operand(loss)
    if m is None:
        return p.doprint(loss)
    bar = '<mo stretchy="false">‖</mo>'
    return ("<msubsup><mrow>" + bar + p.doprint(m) + bar + "</mrow>"
            "<mi>F</mi><mn>2</mn></msubsup>")


def shape_mathml(shape: tuple[Basic, Basic]) -> str:
    """``n × d`` for the shape (n, d), as a ``<math>`` element."""
    p = TracegradMathMLPrinter(_PRINTER_SETTINGS)
    rows, cols = (p.doprint(sympy.sympify(s)) for s in shape)
    return _math(f"{rows}<mo>×</mo>{cols}", False)
