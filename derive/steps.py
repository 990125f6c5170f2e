"""A derivation as data: steps (rule + equation) and the result.

A step names its rule by key; :data:`RULES` holds every rule's record (``derive.rules.Rule``),
collected at import from the modules that define them beside their functions.
Nothing here renders: ``derive.render`` reads these objects, and their display methods
(``str``, ``to_latex``, Jupyter's) call the functions it registers in :mod:`derive.display`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import sympy
from sympy import Basic, Eq, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose

from derive.differential import RULES_OF_DIFFERENTIALS, MatrixDifferential, ScalarDifferential
from derive.laws import F, Dots, FrobeniusSq, Gradient, Summation, applied, matrices, scalars
from derive.rules import Rule, rule_table
from derive.broadcast import BROADCAST_SUM, COLS_SUM_TO_ZERO, FACTOR_BROADCAST, ROWS_SUM_TO_ZERO
from derive.fold import NAME_SOFTMAX, NAME_STAGE
from derive.kron_rules import KRON_RULES
from derive.simplify import COLLECT, SIMPLIFY_PRODUCT
from derive.trace_rules import READ_OFF, TRACE_RULES
from derive.structure import STRUCTURE_RULES
from derive.display import Displayed, display

__all__ = [
    "CHAIN",
    "DEFINITION",
    "DIFFERENTIAL",
    "ROWS_SUM_TO_ONE",
    "RULES",
    "SCALAR_AS_TRACE",
    "SUBSTITUTE",
    "SUM_OVER_USES",
    "Derivation",
    "Displayed",
    "F",
    "Gradient",
    "Rule",
    "Step",
    "Use",
]


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
    def law(self) -> Basic:
        """The law of the step's rule, as SymPy objects."""
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


# --- the steps of a derivation that are not rewrites of an expression --------------------------------

_A, _G, _X, _Z = matrices("A G X Z")
(_a,) = scalars("a")
_scalar = MatrixSymbol("a", 1, 1)
_n, _k, _u = sympy.symbols("n k u")

DEFINITION = Rule("definition", Eq(FrobeniusSq(_A), Trace(MatMul(Transpose(_A), _A)), evaluate=False),
                  {"en": "definition", "zh": "定义"})
SCALAR_AS_TRACE = Rule("scalar_as_trace", Eq(_scalar, Trace(_scalar), evaluate=False),
                       {"en": "a scalar is its own trace", "zh": "标量等于自身的迹"})
DIFFERENTIAL = Rule("differential", ScalarDifferential(F), {"en": "take the differential", "zh": "两边取微分"})
SUBSTITUTE = Rule("substitute", Eq(_Z, applied("g", Dots()), evaluate=False), {"en": "substitute", "zh": "代入"})
CHAIN = Rule("chain", Eq(ScalarDifferential(F),
                         Trace(MatMul(Transpose(MatrixSymbol("G_Z", *_Z.shape)), MatrixDifferential(_Z))),
                         evaluate=False),
             {"en": "chain rule", "zh": "链式法则"})
# X used by several stages (or a stage and f): X^(u) is X as used by u, the multivariable chain rule
SUM_OVER_USES = Rule("sum_over_uses", Eq(Gradient(F, _X), Summation(Gradient(F, Use(_X, _u)), _u), evaluate=False),
                     {"en": "multivariable chain rule: sum over every use", "zh": "多元链式法则：对每一处使用求和"})
ROWS_SUM_TO_ONE = Rule("rows_sum_to_one",
                       Eq(MatMul(MatrixSymbol("Y", _n, _k), OneMatrix(_k, 1)), OneMatrix(_n, 1), evaluate=False),
                       {"en": "each row sums to 1", "zh": "每行之和为 1"})

# Every rule a step can name, in the order a document's list of rules would give them.
RULES: Mapping[str, Rule] = rule_table((
    DEFINITION, SCALAR_AS_TRACE, DIFFERENTIAL, SUBSTITUTE, CHAIN, *RULES_OF_DIFFERENTIALS, *TRACE_RULES,
    SIMPLIFY_PRODUCT, COLLECT, READ_OFF, SUM_OVER_USES, ROWS_SUM_TO_ONE, NAME_STAGE, NAME_SOFTMAX,
    BROADCAST_SUM, COLS_SUM_TO_ZERO, ROWS_SUM_TO_ZERO, FACTOR_BROADCAST, *KRON_RULES, *STRUCTURE_RULES,
))
