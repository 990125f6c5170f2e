r"""The rules' laws in every notation: what the printers add for the objects of :mod:`derive.laws`.

A law is SymPy objects (``derive.steps.RULES[key].law``); the rest of it (products, transposes,
traces, differentials, ∂f/∂X) prints as every expression does.  These mixins give the text, LaTeX
and MathML printers of :mod:`derive.render.printer` and :mod:`derive.render.mathml` the equation,
⟺, several laws side by side, Σ, a named function φ(A) or g′(a), ‖A‖²_F and ….

>>> from derive.render.printer import math_latex, math_text
>>> from derive.steps import RULES
>>> math_latex(RULES["read_off"].law)
'\\mathrm{d}f = \\operatorname{tr}(G^T\\,\\mathrm{d}X) \\iff \\frac{\\partial f}{\\partial X} = G'
>>> math_text(RULES["d_elementwise"].law)
'd(φ(A)) = φ′(A) ⊙ dA'
"""
from __future__ import annotations

from typing import Any
from xml.dom.minidom import Element

import sympy

from derive.laws import Dots, FrobeniusSq, Iff, Laws, MatrixApplied, ScalarApplied, Summation

__all__ = ["LatexLaws", "MathMLLaws", "TextLaws"]


class _StringLaws:
    """Shared by the text and LaTeX printers; subclasses give the tokens and ``_sum``."""

    IFF: str  # between two laws that say the same
    LAW_SEP: str  # between the laws of one rule
    PRIME: str
    FROBENIUS_SQ: str  # ‖{}‖²_F
    DOTS: str
    _print: Any
    _call: Any

    def _sum(self, under: str, over: str | None) -> str:
        raise NotImplementedError

    def _print_Equality(self, expr: sympy.Eq) -> str:
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Iff(self, expr: Iff) -> str:
        return self.IFF.join(self._print(a) for a in expr.args)

    def _print_Laws(self, expr: Laws) -> str:
        return self.LAW_SEP.join(self._print(a) for a in expr.args)

    def _print_MatrixApplied(self, expr: MatrixApplied | ScalarApplied) -> str:
        return self._call(self._print(expr.name) + self.PRIME * expr.primes, expr.arg)

    _print_ScalarApplied = _print_MatrixApplied

    def _print_Summation(self, expr: Summation) -> str:
        under = self._print(expr.index)
        if expr.limits:
            lower, upper = (self._print(x) for x in expr.limits)
            return f"{self._sum(f'{under}={lower}', upper)} {self._print(expr.term)}"
        return f"{self._sum(under, None)} {self._print(expr.term)}"

    def _print_FrobeniusSq(self, expr: FrobeniusSq) -> str:
        return self.FROBENIUS_SQ.format(self._print(expr.arg))

    def _print_Dots(self, expr: Dots) -> str:
        return self.DOTS


class LatexLaws(_StringLaws):
    IFF = r" \iff "
    LAW_SEP = r",\; "
    PRIME = "'"
    FROBENIUS_SQ = r"\|{}\|_F^2"
    DOTS = r"\dots"

    def _sum(self, under: str, over: str | None) -> str:
        return rf"\sum_{{{under}}}" + ("" if over is None else f"^{{{over}}}")


class TextLaws(_StringLaws):
    IFF = " ⟺ "
    LAW_SEP = ",  "
    PRIME = "′"
    FROBENIUS_SQ = "‖{}‖_F²"
    DOTS = "…"

    def _sum(self, under: str, over: str | None) -> str:
        sub = under if len(under) == 1 else f"({under})"
        return f"Σ_{sub}" + ("" if over is None else f"^({over})")


class MathMLLaws:
    """For the MathML printer (which supplies ``_row``, ``_el``, ``_mo``, ``_mi``, ``_bracket``)."""

    _print: Any
    _row: Any
    _el: Any
    _mo: Any
    _mi: Any
    _bracket: Any

    def _print_Equality(self, expr: sympy.Eq) -> Element:
        return self._row(self._print(expr.lhs), self._mo("="), self._print(expr.rhs))

    def _print_Iff(self, expr: Iff) -> Element:
        a, b = (self._print(x) for x in expr.args)
        return self._row(a, self._mo("⟺"), b)

    def _print_Laws(self, expr: Laws) -> Element:
        row = self._row()
        for i, law in enumerate(expr.args):
            if i:
                row.appendChild(self._mo(","))
                row.appendChild(self._el("mspace", width="0.278em"))  # TeX's \;
            row.appendChild(self._print(law))
        return row

    def _print_MatrixApplied(self, expr: MatrixApplied | ScalarApplied) -> Element:
        name = self._print(expr.name)
        if expr.primes:
            name = self._el("msup", name, self._mo("′" * expr.primes))
        return self._row(name, self._mo("\u2061"), self._bracket(expr.arg, "(", precedence=False))

    _print_ScalarApplied = _print_MatrixApplied

    def _print_Summation(self, expr: Summation) -> Element:
        sigma = self._mo("∑")
        if expr.limits:
            lower, upper = expr.limits
            under = self._row(self._print(expr.index), self._mo("="), self._print(lower))
            op = self._el("munderover", sigma, under, self._print(upper))
        else:
            op = self._el("munder", sigma, self._print(expr.index))
        return self._row(op, self._print(expr.term))

    def _print_FrobeniusSq(self, expr: FrobeniusSq) -> Element:
        norm = self._row(self._mo("‖", stretchy="false"), self._print(expr.arg), self._mo("‖", stretchy="false"))
        return self._el("msubsup", norm, self._mi("F"), self._el("mn", "2"))

    def _print_Dots(self, expr: Dots) -> Element:
        return self._mi("…")
