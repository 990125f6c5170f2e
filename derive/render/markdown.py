r"""Markdown output, written as the seed document is: prose lines, display math in ``$$`` blocks.

The Markdown writer of the document model (:mod:`derive.render.blocks`).  The mathematics is
the LaTeX of :mod:`derive.render.latex`, in ``aligned`` blocks so that MathJax and KaTeX
(Jupyter, GitHub) render it; long equations continue on indented rows (``width``, default
:data:`~derive.render.layout.WIDTH` ``["markdown"]``).
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

from derive.render.blocks import (
    Details, Document, Equations, Group, Inlines, Link, LossDisplay, Paragraph, Remarks, RuleList, Section,
    Shapes, Steps, Table, Text, Writer,
)
from derive.render.document import BackpropLike, derivation_block, network_document
from derive.render.latex import equation_rows, loss_display, result_latex, shape_rows, span_latex, step_block_latex
from derive.render.layout import WIDTH
from derive.render.locale import get_locale
from derive.steps import Derivation

__all__ = ["MarkdownWriter", "backprop_markdown", "derivation_markdown", "inline_markdown", "write_markdown"]


def _display(tex: str) -> str:
    return f"$$\n{tex}\n$$"


def _aligned(env: str, rows: Sequence[str]) -> str:
    return _display(f"\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}")


def inline_markdown(spans: Inlines) -> str:
    r"""Spans as Markdown: words as they are, mathematics as ``$…$``.

    >>> from sympy import MatrixSymbol
    >>> from derive.render.blocks import Math
    >>> inline_markdown((Text("Find "), Math(MatrixSymbol("W1", 2, 2))))
    'Find $W_1$'
    """
    return "".join(s.text if isinstance(s, Text) else inline_markdown(s.content) if isinstance(s, Link)
                   else f"${span_latex(s)}$" for s in spans)


def _cell(spans: Inlines) -> str:
    """A table cell: a | would end it (in the words, and as ‖ or | in the mathematics)."""
    return "".join(s.text.replace("|", "\\|") if isinstance(s, Text) else _cell(s.content) if isinstance(s, Link)
                   else "$" + span_latex(s).replace(r"\|", r"\Vert ").replace("|", r"\vert ") + "$" for s in spans)


class MarkdownWriter(Writer):
    """Blocks as Markdown paragraphs (joined by blank lines); ``details_heading`` is put before the
    title of a derivation instead of its ``#`` heading marks (``""``: a plain line)."""

    def __init__(self, lang: str = "en", width: int | None = None, details_heading: str | None = None) -> None:
        self.lang, self.details_heading = lang, details_heading
        self.width = WIDTH["markdown"] if width is None else width

    def parts(self, blocks: Sequence[Any], depth: int) -> list[str]:
        return [p for b in blocks for p in self.block(b, depth)]

    @staticmethod
    def _heading(depth: int, title: Inlines) -> str:
        return "#" * (depth + 2) + " " + inline_markdown(title)

    @staticmethod
    def _lead(lead: Inlines, display: str) -> list[str]:
        return [inline_markdown(lead), display] if lead else [display]

    def section(self, b: Section, depth: int) -> list[str]:
        return [self._heading(depth, b.title), *self.parts(b.blocks, depth + 1)]

    def details(self, b: Details, depth: int) -> list[str]:
        head = self._heading(depth, b.title) if self.details_heading is None else (
            self.details_heading + inline_markdown(b.title))
        return [head, *self.parts(b.blocks, depth + 1)]

    def group(self, b: Group, depth: int) -> list[str]:
        return ([f"**{inline_markdown(b.label)}**"] if b.label else []) + self.parts(b.blocks, depth)

    def paragraph(self, b: Paragraph, depth: int) -> list[str]:
        return [inline_markdown(b.content)]

    def remarks(self, b: Remarks, depth: int) -> list[str]:
        return [" ".join(inline_markdown(item) for item in b.items)]

    def equations(self, b: Equations, depth: int) -> list[str]:
        return self._lead(b.lead, _aligned("aligned", equation_rows(b.rows, self.width)))

    def loss_display(self, b: LossDisplay, depth: int) -> list[str]:
        return self._lead(b.lead, _display(loss_display(b.loss, self.width, inline=True)))

    def shapes(self, b: Shapes, depth: int) -> list[str]:
        return self._lead(b.lead, _aligned("gathered", shape_rows([g for _, g in b.groups], self.width)))

    def steps(self, b: Steps, depth: int) -> list[str]:
        out = [_display(step_block_latex(b.rows, self.lang, inline=True, width=self.width))] if b.rows else []
        if b.result is not None:
            out += [inline_markdown(b.obtain),
                    _display(result_latex(b.result.lhs, b.result.rhs, self.width, inline=True))]
        return out

    def table(self, b: Table, depth: int) -> list[str]:
        rows = ["| " + " | ".join(inline_markdown(h) for h in b.header) + " |", "|" + "---|" * len(b.header)]
        rows += ["| " + " | ".join(_cell(c) for c in r.cells) + " |" for r in b.rows]
        return ["\n".join(rows)]

    def rule_list(self, b: RuleList, depth: int) -> list[str]:
        return [self._heading(depth, b.title), "\n".join(f"- {name}: ${law.latex}$" for name, law in b.items)]

    def document(self, doc: Document) -> str:
        return "\n\n".join([f"# {doc.title}", *self.parts(doc.blocks, 0)]) + "\n"


def write_markdown(doc: Document, width: int | None = None) -> str:
    """``doc`` as one Markdown document."""
    return MarkdownWriter(doc.lang, width).document(doc)


def derivation_markdown(d: Derivation, lang: str = "en", heading: str = "", width: int | None = None) -> str:
    r"""One derivation as Markdown: "Derive ∂f/∂X", where it starts, the steps, the result.

    ``heading`` is put before the first line (``"### "`` makes it a heading).

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import F, Gradient, Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> md = derivation_markdown(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y), "zh")
    >>> print(md.splitlines()[0])
    推导 $\frac{\partial f}{\partial Y}$
    >>> print(md.splitlines()[-2])
    \Rightarrow \frac{\partial f}{\partial Y} = 2Y
    """
    writer = MarkdownWriter(lang, width, details_heading=heading)
    return "\n\n".join(writer.block(derivation_block(d, get_locale(lang)), 0))


def backprop_markdown(bp: BackpropLike, lang: str = "en", width: int | None = None, checks: Any = None) -> str:
    """A network's whole derivation as one Markdown document, sections as in the seed document.

    Problem statement · Derivation (one ``###`` section per gradient) · In summary (a table of
    the parameters' gradients and shapes) · the checks, where ``checks`` is given
    (:func:`derive.render.checks.network_checks`) · the rules used.
    """
    return write_markdown(network_document(bp, lang, checks), width)
