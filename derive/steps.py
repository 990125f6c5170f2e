"""A derivation as data: steps (rule + equation) and the result.

Nothing here renders: ``derive.render`` reads these objects, and their display methods
(``str``, ``to_latex``, Jupyter's) call the functions it registers in :mod:`derive.display`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import sympy
from sympy import Basic, MatrixExpr, MatrixSymbol

from derive.display import Displayed, display


@dataclass(frozen=True)
class Rule:
    """A named rule: a key (used by the renderers' locales) and its law in LaTeX."""

    key: str
    law: str


# Every rule a step can name.  The renderers translate ``key``; ``law`` is the identity.
RULES: dict[str, Rule] = {r.key: r for r in (
    # laws are mathematics only (no words: they appear as they are in every language)
    Rule("definition", r"\|A\|_F^2 = \operatorname{tr}(A^T A)"),
    Rule("scalar_as_trace", r"a = \operatorname{tr}(a)"),
    Rule("differential", r"\mathrm{d}f"),
    Rule("substitute", r"Z = g(\dots)"),
    Rule("chain", r"\mathrm{d}f = \operatorname{tr}(G_Z^T\, \mathrm{d}Z)"),
    # differential rules
    Rule("d_sum", r"\mathrm{d}(A + B) = \mathrm{d}A + \mathrm{d}B"),
    Rule("d_constant_multiple", r"\mathrm{d}(\lambda A) = \lambda\,\mathrm{d}A"),
    Rule("d_product", r"\mathrm{d}(AB) = \mathrm{d}A\,B + A\,\mathrm{d}B"),
    Rule("d_hadamard", r"\mathrm{d}(A \odot B) = \mathrm{d}A \odot B + A \odot \mathrm{d}B"),
    Rule("d_transpose", r"\mathrm{d}(A^T) = (\mathrm{d}A)^T"),
    Rule("d_trace", r"\mathrm{d}\operatorname{tr}A = \operatorname{tr}\mathrm{d}A"),
    Rule("d_elementwise", r"\mathrm{d}\,\varphi(A) = \varphi'(A) \odot \mathrm{d}A"),
    Rule("d_inverse", r"\mathrm{d}(X^{-1}) = -X^{-1}\,\mathrm{d}X\,X^{-1}"),
    Rule("d_determinant", r"\mathrm{d}\det X = \det X \operatorname{tr}(X^{-1}\mathrm{d}X)"),
    Rule("d_matpow", r"\mathrm{d}(X^p) = \sum_{i=0}^{p-1} X^i\,\mathrm{d}X\,X^{p-1-i}"),
    Rule("d_hadamard_power", r"\mathrm{d}(A^{\circ p}) = p A^{\circ (p-1)} \odot \mathrm{d}A"),
    Rule("d_scalar_sum", r"\mathrm{d}(a + b) = \mathrm{d}a + \mathrm{d}b"),
    Rule("d_scalar_product", r"\mathrm{d}(ab) = \mathrm{d}a\,b + a\,\mathrm{d}b"),
    Rule("d_scalar_function", r"\mathrm{d}\,g(a) = g'(a)\,\mathrm{d}a"),
    Rule("d_entry", r"\mathrm{d}(a_{11}) = \operatorname{tr}(\mathrm{d}a)"),
    # trace identities
    Rule("trace_linearity", r"\operatorname{tr}(A + B) = \operatorname{tr}A + \operatorname{tr}B,\; \operatorname{tr}(cA) = c\operatorname{tr}A"),
    Rule("distribute", r"A(B + C)D = ABD + ACD"),
    Rule("transpose_product", r"(AB)^T = B^T A^T"),
    Rule("trace_transpose", r"\operatorname{tr}(A^T) = \operatorname{tr}(A)"),
    Rule("trace_cyclic", r"\operatorname{tr}(ABC) = \operatorname{tr}(CAB)"),
    Rule("trace_hadamard", r"\operatorname{tr}(A^T(B \odot C)) = \operatorname{tr}((A \odot B)^T C)"),
    Rule("simplify_product", r"A^p A^q = A^{p+q},\; (A^{-1})^{-1} = A,\; AI = A"),
    Rule("collect", r"a\,t + b\,t = (a + b)\,t,\; \operatorname{tr}(A^T\mathrm{d}X) + \operatorname{tr}(B^T\mathrm{d}X) = \operatorname{tr}((A + B)^T\mathrm{d}X)"),
    Rule("read_off", r"\mathrm{d}f = \operatorname{tr}(G^T\mathrm{d}X) \iff \frac{\partial f}{\partial X} = G"),
    # X used by several stages (or a stage and f): X^{(u)} is X as used by u, the multivariable chain rule
    Rule("sum_over_uses", r"\frac{\partial f}{\partial X} = \sum_{u} \frac{\partial f}{\partial X^{(u)}}"),
    Rule("rows_sum_to_one", r"Y\mathbf{1}_k = \mathbf{1}_n"),
)}


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``lhs = rhs``, obtained by ``rule``.

    ``lhs`` is usually the differential ``df``; for the final step it is the
    gradient symbol ∂f/∂X.
    """

    rule: str
    lhs: Basic
    rhs: Basic

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise KeyError(f"unknown rule {self.rule!r}; known: {sorted(RULES)}")

    @property
    def law(self) -> str:
        return RULES[self.rule].law

    def to_text(self, lang: str = "en") -> str:
        """``lhs = rhs  [rule]`` in tracegrad's notation (by :mod:`derive.display`).

        >>> from sympy import MatrixSymbol
        >>> Y = MatrixSymbol("Y", 3, 2)
        >>> print(Step("read_off", Gradient(F, Y), 2 * Y.T))
        ∂f/∂Y = 2Yᵀ  [read off the gradient]
        """
        return display(self, "text", lang=lang)

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True)
class Derivation(Displayed):
    """The steps that take ``f`` to ``∂f/∂wrt = result``.

    ``definitions`` maps intermediate symbols (kept as symbols in the steps) to
    what they stand for; ``upstream`` names the gradient a staged section starts from.
    """

    function: Basic
    wrt: MatrixSymbol
    steps: tuple[Step, ...]
    result: MatrixExpr
    definitions: tuple[tuple[MatrixSymbol, MatrixExpr], ...] = ()
    upstream: tuple[MatrixSymbol, MatrixExpr] | None = None
    notes: tuple[str, ...] = field(default=())
    # X used more than once: one derivation per use (each ends in ∂f/∂X⁽ᵘ⁾, see ``Use``); the
    # steps are then the sum over the uses ("sum_over_uses")
    contributions: tuple[Derivation, ...] = field(default=())

    def _repr_latex_(self) -> str:
        return display(self, "latex_inline", lang="en")


class Gradient(MatrixExpr):
    """The symbol ∂f/∂X (shape of X), used on the left of the read-off step."""

    def __new__(cls, f: sympy.Symbol, wrt: MatrixSymbol):
        return Basic.__new__(cls, f, wrt)

    @property
    def wrt(self) -> MatrixSymbol:
        return self.args[1]

    @property
    def shape(self):
        return self.wrt.shape

    def doit(self, **hints):
        return self

    def _sympystr(self, printer) -> str:
        return f"∂{printer._print(self.args[0])}/∂{printer._print(self.wrt)}"


class Use(MatrixExpr):
    """X as read by one of its uses ``via`` (a stage symbol, or f for the loss): X⁽ᵘ⁾.

    Where X feeds several stages, f is a function of one copy of X per use, and
    ∂f/∂X = Σᵤ ∂f/∂X⁽ᵘ⁾ (the multivariable chain rule); ``Gradient(F, Use(X, u))`` is one term.

    >>> from derive.render.printer import math_latex, math_text
    >>> W, Z = MatrixSymbol("W1", 3, 5), MatrixSymbol("Z", 4, 5)
    >>> math_text(Gradient(F, Use(W, Z))), math_latex(Use(W, Z))
    ('∂f/∂W1^(Z)', 'W_1^{(Z)}')
    """

    def __new__(cls, X: MatrixSymbol, via: Basic):
        return Basic.__new__(cls, X, via)

    @property
    def X(self) -> MatrixSymbol:
        return self.args[0]

    @property
    def via(self) -> Basic:
        return self.args[1]

    @property
    def shape(self):
        return self.X.shape

    def doit(self, **hints):
        return self

    def _sympystr(self, printer) -> str:
        return f"{printer._print(self.X)}^({printer._print(self.via)})"

    _tracegrad_text = _sympystr

    def _tracegrad_latex(self, printer) -> str:
        return f"{printer._print(self.X)}^{{({printer._print(self.via)})}}"

    def _tracegrad_mathml(self, printer):
        def el(tag: str, *children):
            e = printer.dom.createElement(tag)
            for c in children:
                e.appendChild(c)
            return e

        def mo(ch: str):
            e = printer.dom.createElement("mo")
            e.setAttribute("stretchy", "false")
            e.appendChild(printer.dom.createTextNode(ch))
            return e

        return el("msup", printer._print(self.X), el("mrow", mo("("), printer._print(self.via), mo(")")))


F = sympy.Symbol("f")
