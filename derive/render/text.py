"""Plain unicode text for the terminal: dX, ⊙, σ, ᵀ, 𝟏ₙ, ∂f/∂W1, tr.

The text writer of the document model (:mod:`derive.render.blocks`).  A step block aligns its
equals signs and names each step's rule in a column at the right.  Lines longer than ``width``
columns (default :data:`~derive.render.layout.WIDTH` ``["text"]``, 100) are broken
(:mod:`derive.render.layout`): equations at their outermost + and ⊙, prose at spaces.  Prose at
the top of a section starts at the margin; the parts of a derivation are indented, and other
displays (equations, shapes, tables) one step further than the prose around them.  The terminal
names each rule beside its step and lists no laws (they are LaTeX).
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

from sympy import Basic, MatrixSymbol

from derive.render.blocks import (
    Details, Document, Equation, Equations, Group, Inlines, Link, LossDisplay, Math, MathList, Paragraph,
    Remarks, RuleList, Section, Shape, Shapes, StepRow, Steps, Table, Tex, Text, Writer,
)
from derive.render.document import (
    BackpropLike, derivation_block, gradient_table, network_document,
)
from derive.render.layout import WIDTH, longest_word, plan, wrap_words
from derive.render.locale import get_locale
from derive.render.printer import loss_text, marked_text, math_text, shape_text, text_width
from derive.steps import F, Derivation, Step

__all__ = ["TextWriter", "backprop_text", "derivation_text", "equation_text", "gradient_table_text",
           "inline_text", "step_block_text", "step_text", "table_text", "text_lines", "write_text"]

RULE_COLUMN_MAX = 80  # a rule name starts at most this far right, or two spaces after a longer line
INDENT = "  "


def text_lines(expr: Basic, width: int | None = None, start: int = 0,
               first_width: int | None = None) -> list[str]:
    """``expr`` as unicode text in lines of at most ``width`` columns where the breaks allow
    (:func:`derive.render.layout.plan`): the first as it continues a line at column ``start``
    (and ends before ``first_width``, when given), the others with the spaces that put them at
    their column.  Joined, the lines are the unbroken text (up to the spaces at the breaks):

    >>> from sympy import MatrixSymbol, Trace
    >>> A, B = MatrixSymbol("A", 3, 3), MatrixSymbol("Ypred", 3, 3)
    >>> lines = text_lines(Trace(A * B.T + B * A.T - A), width=20, start=5)
    >>> print("\\n".join(["df = " + lines[0]] + lines[1:]))
    df = tr(A Ypredᵀ
            + Ypred Aᵀ
            - A)
    >>> " ".join(l.strip() for l in lines) == math_text(Trace(A * B.T + B * A.T - A))
    True
    """
    lines = plan(marked_text(expr), WIDTH["text"] if width is None else width, start, first_width)
    return [ln.text().rstrip() if ln.first else " " * ln.col + ln.text().rstrip() for ln in lines]


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - text_width(s))


def step_block_text(lines: Sequence[StepRow], indent: str = INDENT, width: int | None = None) -> str:
    """Rows ``lhs = rhs`` with the equals signs aligned and ``[rule]`` at the right.

    An equation that does not fit in ``width`` columns with its rule is broken, the rule kept
    on its first line.

    >>> from derive.differential import ScalarDifferential, MatrixDifferential
    >>> from derive.steps import Gradient
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> df = ScalarDifferential(F)
    >>> print(step_block_text([StepRow(df, 2 * Y.T * MatrixDifferential(Y), "collect", "collect terms"),
    ...                        StepRow(Gradient(F, Y), 2 * Y, "read_off", "read off the gradient", True)]))
      df = 2Yᵀ dY   [collect terms]
      ⇒ ∂f/∂Y = 2Y  [read off the gradient]
    """
    width = WIDTH["text"] if width is None else width
    heads = []
    prev_lhs = ""
    for ln in lines:
        if ln.lhs is None:
            left = " " * text_width(prev_lhs)
        else:
            left = ("⇒ " if ln.is_result else "") + math_text(ln.lhs)
            prev_lhs = left
        heads.append(f"{indent}{left} = ")
    rules = [f"[{ln.rule_name}]" for ln in lines]

    def layout(first_width: int) -> list[list[str]]:
        out = []
        for head, ln, rule in zip(heads, lines, rules):
            body = text_lines(ln.rhs, width, text_width(head),
                              first_width=min(first_width, width - 2 - text_width(rule)))
            out.append([head + body[0]] + body[1:])
        return out

    eqs = layout(width)
    column = min(max(text_width(eq[0]) for eq in eqs), RULE_COLUMN_MAX) + 2
    longest = max(text_width(r) for r in rules)
    if column + longest > width:
        # the rules would not fit in one column: the column moves left, the long equations are broken
        column = max(width - longest, width // 2)
        eqs = layout(column - 2)
        column = min(max(text_width(eq[0]) for eq in eqs) + 2, column)
    rows = []
    for eq, rule in zip(eqs, rules):
        fits = text_width(eq[0]) + 2 <= column and column + text_width(rule) <= width
        rows.append((_pad(eq[0], column) if fits else eq[0] + "  ") + rule)
        rows += eq[1:]
    return "\n".join(r.rstrip() for r in rows)


def equation_text(lhs: str, rhs: Basic, width: int, indent: str = INDENT) -> str:
    """``lhs = rhs`` (``lhs`` already text), broken to ``width`` columns.

    >>> from sympy import MatrixSymbol
    >>> A, B = MatrixSymbol("A", 2, 2), MatrixSymbol("B", 2, 2)
    >>> print(equation_text("Z", A * B + B * A + A, 14))
      Z = AB + BA
          + A
    """
    head = f"{indent}{lhs} = "
    body = text_lines(rhs, width, text_width(head))
    return "\n".join([head + body[0]] + body[1:])


def table_text(head: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None,
               indent: str = INDENT, gap: int = 2) -> str:
    """An aligned table whose cells wrap so that no line is wider than ``width`` columns.

    The widest columns give way first, down to their longest word; a header rule of ``─``
    separates the headings from the rows, and a blank line the rows when some take two lines.

    >>> print(table_text(["formula", "verdict"], [["∂f/∂b2 = 2(Ypred − Y)", "correct for bias n×k only"]],
    ...                  width=34))
      formula          verdict
      ───────────────  ───────────────
      ∂f/∂b2 =         correct for
      2(Ypred − Y)     bias n×k only
    """
    width = WIDTH["text"] if width is None else width
    cols = len(head)
    cells = [list(head)] + [list(r) for r in rows]
    # a column is never narrower than its longest word, nor than its heading up to 8 columns
    least = [max(max(longest_word(r[j]) for r in cells), min(text_width(head[j]), 8), 1) for j in range(cols)]
    widths = [max(text_width(r[j]) for r in cells) for j in range(cols)]
    room = width - text_width(indent) - gap * (cols - 1)
    heights: dict[tuple[int, int], list[int]] = {}

    def height(j: int, w: int) -> list[int]:
        if (j, w) not in heights:
            heights[j, w] = [len(wrap_words(r[j], w)) for r in cells]
        return heights[j, w]

    def lines_with(j: int, w: int) -> int:
        return sum(max(height(i, w if i == j else widths[i])[k] for i in range(cols)) for k in range(len(cells)))

    # narrow the column whose narrowing costs the fewest lines (the widest among equals), until it fits
    while sum(widths) > room:
        j = min((j for j in range(cols) if widths[j] > least[j]),
                key=lambda j: (lines_with(j, widths[j] - 1), -widths[j]), default=None)
        if j is None:
            break
        widths[j] -= 1
    wrapped = [[wrap_words(c, w) for c, w in zip(r, widths)] for r in cells]
    tall = any(len(c) > 1 for r in wrapped[1:] for c in r)
    out: list[str] = []
    for i, r in enumerate(wrapped):
        if i > 1 and tall:
            out.append("")
        for k in range(max(len(c) for c in r)):
            parts = [_pad(c[k] if k < len(c) else "", w) for c, w in zip(r, widths)]
            out.append((indent + (" " * gap).join(parts)).rstrip())
        if i == 0:
            out.append(indent + (" " * gap).join("─" * w for w in widths))
    return "\n".join(out)


# each kind of span as text
_SPANS = {
    Text: lambda s: s.text,
    Math: lambda s: math_text(s.expr),
    MathList: lambda s: ", ".join(map(math_text, s.exprs)),
    Equation: lambda s: f"{math_text(s.lhs)} = {math_text(s.rhs)}",
    Shape: lambda s: shape_text(s.shape),
    Tex: lambda s: s.text or s.latex,
    Link: lambda s: inline_text(s.content),
}


def inline_text(spans: Inlines) -> str:
    """Spans as unicode text.

    >>> inline_text((Text("Find "), MathList((MatrixSymbol("W1", 2, 2), MatrixSymbol("b1", 1, 2))), Text(".")))
    'Find W1, b1.'
    """
    return "".join(_SPANS[type(s)](s) for s in spans)


def _heading(s: str, rule: str = "-") -> str:
    return f"{s}\n{rule * text_width(s)}"


def _formula_lines(cell: Inlines, width: int, start: int) -> list[str]:
    """A table cell holding one formula, broken to ``width``; any other cell as one line."""
    if len(cell) == 1 and isinstance(cell[0], Math):
        return text_lines(cell[0].expr, width, start)
    return [inline_text(cell)]


class TextWriter(Writer):
    """Blocks as lines of text no wider than ``width`` columns where the breaks allow."""

    def __init__(self, width: int | None = None) -> None:
        self.width = WIDTH["text"] if width is None else width

    def lines(self, blocks: Sequence[Any], depth: int) -> list[str]:
        """The lines of ``blocks``; a section, a derivation and an audit table are set off by a blank line."""
        out: list[str] = []
        for b in blocks:
            part = self.block(b, depth)
            if part and out and (isinstance(b, (Section, Details)) or getattr(b, "style", "") == "audit"):
                out.append("")
            out += part
        return out

    def prose(self, spans: Inlines, depth: int) -> list[str]:
        """Words wrapped: at the margin on top, else indented and hanging one step further."""
        indent = INDENT * depth
        return wrap_words(inline_text(spans), self.width, indent=indent + INDENT if depth else "",
                          first_indent=indent)

    def document(self, doc: Document) -> str:
        return "\n".join([_heading(doc.title, "="), "", *self.lines(doc.blocks, 0)]) + "\n"

    def section(self, b: Section, depth: int) -> list[str]:
        return [_heading(inline_text(b.title)), *self.lines(b.blocks, depth)]

    def details(self, b: Details, depth: int) -> list[str]:
        return [INDENT * depth + inline_text(b.title), *self.lines(b.blocks, depth + 1)]

    def group(self, b: Group, depth: int) -> list[str]:
        return (self.prose(b.label, depth) if b.label else []) + self.lines(b.blocks, depth + 1)

    def paragraph(self, b: Paragraph, depth: int) -> list[str]:
        return self.prose(b.content, depth)

    def remarks(self, b: Remarks, depth: int) -> list[str]:
        return [line for item in b.items for line in self.prose(item, depth)]

    def equations(self, b: Equations, depth: int) -> list[str]:
        out = self.prose(b.lead, depth) if b.lead else []
        indent = INDENT * (depth + 1)
        for row in b.rows:
            if row.loss and loss_text(row.rhs) != math_text(row.rhs):  # ‖M‖_F², with M as short as the stages make it
                out.append(f"{indent}{math_text(row.lhs)} = {loss_text(row.rhs)}")
            else:
                out += equation_text(math_text(row.lhs), row.rhs, self.width, indent).split("\n")
        return out

    def loss_display(self, b: LossDisplay, depth: int) -> list[str]:
        out = self.prose(b.lead, depth) if b.lead else []
        f = math_text(F)
        lhs = f"{f} = {loss_text(b.loss)}" if loss_text(b.loss) != math_text(b.loss) else f
        return out + equation_text(lhs, b.loss, self.width, INDENT * (depth + 1)).split("\n")

    def shapes(self, b: Shapes, depth: int) -> list[str]:
        out = self.prose(b.lead, depth) if b.lead else []
        for _, group in b.groups:
            out += wrap_words(", ".join(f"{math_text(s)}: {shape_text(s.shape)}" for s in group), self.width,
                              indent=INDENT * (depth + 1))
        return out

    def steps(self, b: Steps, depth: int) -> list[str]:
        rows = [*b.rows, b.result] if b.result is not None else list(b.rows)
        return step_block_text(rows, INDENT * depth, self.width).split("\n") if rows else []

    def table(self, b: Table, depth: int) -> list[str]:
        head = [inline_text(h) for h in b.header]
        if b.style == "audit":
            cells = [[inline_text(c) for c in r.cells] for r in b.rows]
            return table_text(head, cells, self.width, INDENT * (depth + 1)).split("\n")
        # each row's first cells as they are, its last (a formula) broken to the width
        rows = [[inline_text(c) for c in r.cells[:-1]] for r in b.rows]
        widths = [max(text_width(r[j]) for r in [head, *rows]) + 2 for j in range(len(head) - 1)]
        indent = INDENT * (depth + 1)
        out = [indent + "".join(_pad(h, w) for h, w in zip(head, widths)) + head[-1]]
        for r, row in zip(rows, b.rows):
            left = indent + "".join(_pad(c, w) for c, w in zip(r, widths))
            body = _formula_lines(row.cells[-1], self.width, text_width(left))
            out += [left + body[0]] + body[1:]
        return out

    def rule_list(self, b: RuleList, depth: int) -> list[str]:
        return []  # each step names its rule; the laws are LaTeX


def write_text(doc: Document, width: int | None = None) -> str:
    """``doc`` as text for the terminal."""
    return TextWriter(width).document(doc)


def derivation_text(d: Derivation, lang: str = "en", width: int | None = None) -> str:
    """One derivation for the terminal: "Derive ∂f/∂X", where it starts, and the steps.

    >>> from derive.steps import Gradient
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> print(derivation_text(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y), "zh"))
    推导 ∂f/∂Y
      方程两边取微分得到，
      ⇒ ∂f/∂Y = 2Y  [读出导数]
    """
    return "\n".join(TextWriter(width).block(derivation_block(d, get_locale(lang)), 0))


def step_text(step: Step, lang: str = "en") -> str:
    """``lhs = rhs  [rule]``: one step on one line."""
    return f"{math_text(step.lhs)} = {math_text(step.rhs)}  [{get_locale(lang).rule(step.rule)}]"


def gradient_table_text(summary: Sequence[tuple[MatrixSymbol, Basic, Basic]], lang: str = "en",
                        expanded: bool = False, width: int | None = None) -> str:
    """A table: each parameter's gradient, its shape and its expression (broken to ``width``).

    >>> W = MatrixSymbol("W2", 5, 2)
    >>> print(gradient_table_text([(W, 2 * W, 2 * W)]))
      Gradient  Shape  Expression
      ∂f/∂W2    5×2    2W2
    """
    return "\n".join(TextWriter(width).block(gradient_table(summary, get_locale(lang), expanded), 0))


def backprop_text(bp: BackpropLike, lang: str = "en", width: int | None = None, checks: Any = None) -> str:
    """A network's whole derivation for the terminal, then the table of parameter gradients.

    No line is wider than ``width`` columns (default 100) where the equations can be broken;
    ``checks`` (:func:`derive.render.checks.network_checks`) adds the gradient check and the audit.
    """
    return write_text(network_document(bp, lang, checks), width)
