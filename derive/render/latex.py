r"""LaTeX output: the LaTeX writer of the document model, and the typesetting Markdown shares.

English documents compile with pdflatex (article, amsmath, amssymb, bm, geometry), Chinese
ones with xelatex (ctexart).  :func:`latex_engine` names the engine for a language.
Equations longer than ``width`` (default :data:`~derive.render.layout.WIDTH` ``["latex"]``,
in columns of their unicode text) continue on indented rows of their ``align*``/``aligned``
block, broken at their outermost + and ⊙ (:mod:`derive.render.layout`).
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

from sympy import Basic, MatrixSymbol

from derive.render.blocks import (
    Details, Document, Equation, EquationRow, Equations, Group, Inlines, Link, LossDisplay, Math, MathList,
    Paragraph, Remarks, RuleList, Section, Shape, Shapes, StepRow, Steps, Table, Tex, Text, Writer,
)
from derive.render.document import (
    BackpropLike, derivation_block, derivation_steps, derivations_document, network_document, uses_tables,
)
from derive.render.layout import BREAK, WIDTH, break_levels, split_latex, unmark
from derive.render.locale import get_locale
from derive.render.printer import (
    frobenius_operand, loss_latex, marked_latex, marked_text, math_latex, math_text, shape_latex, shape_text,
    text_width,
)
from derive.steps import F, Derivation

__all__ = [
    "LatexWriter",
    "aligned_rows",
    "backprop_latex",
    "derivation_document_latex",
    "derivation_latex",
    "equation_rows",
    "inline_latex",
    "latex_engine",
    "latex_escape",
    "latex_rows",
    "loss_display",
    "section_latex",
    "shape_rows",
    "span_latex",
    "step_block_latex",
    "write_latex",
]

_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}",
}
# unicode a note might hold, as LaTeX that both engines accept
_UNICODE = {
    "∂": r"$\partial$", "⊙": r"$\odot$", "σ": r"$\sigma$", "ᵀ": r"$^T$", "−": "-", "×": r"$\times$",
    "⇒": r"$\Rightarrow$", "→": r"$\to$", "‖": r"$\|$", "≠": r"$\neq$", "≤": r"$\leq$",
    "≥": r"$\geq$", "∈": r"$\in$", "·": r"$\cdot$", "∘": r"$\circ$", "𝟏": r"$\mathbf{1}$",
    "²": r"$^2$", "⁻": r"$^-$", "¹": r"$^1$", "—": "---", "–": "--", "…": r"\dots{}",
    "‘": "`", "’": "'", "“": "``", "”": "''", "ₙ": r"$_n$",
    **{chr(0x2080 + i): f"$_{i}$" for i in range(10)},
}


def latex_escape(s: str, unicode_ok: bool = False) -> str:
    r"""Plain text as LaTeX text: specials escaped, common math symbols as math.

    Without ``unicode_ok`` (pdflatex) any other character outside Latin-1 becomes ``?``.

    >>> latex_escape("tr(Aᵀ B) & 50%")
    'tr(A$^T$ B) \\& 50\\%'
    >>> latex_escape("推导 ∂f", unicode_ok=True)
    '推导 $\\partial$f'
    """
    out = []
    for ch in s:
        if ch in _SPECIALS:
            out.append(_SPECIALS[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 0x80 or unicode_ok or ("\u00c0" <= ch <= "\u00ff"):
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def latex_engine(lang: str) -> str:
    """The TeX engine that compiles :func:`backprop_latex` for ``lang``.

    >>> latex_engine("en"), latex_engine("zh")
    ('pdflatex', 'xelatex')
    """
    get_locale(lang)
    return "xelatex" if lang == "zh" else "pdflatex"


def latex_rows(expr: Basic, width: int | None = None, start: int = 0) -> list[str]:
    r"""``expr`` as LaTeX rows, broken where :func:`derive.render.layout.plan` breaks its text
    (:func:`derive.render.layout.split_latex`): the first row as it continues a row, the others
    beginning with their indentation.  ``start``: the width in columns of what stands before
    ``expr`` on its first row (``df = ``).

    >>> from sympy import MatrixSymbol, Trace
    >>> A, B = MatrixSymbol("A", 3, 3), MatrixSymbol("B", 3, 3)
    >>> for row in latex_rows(Trace(A * B.T + B * A.T), width=12):
    ...     print(row)
    \operatorname{tr}(AB^T
    \qquad {} + BA^T)
    """
    marked, text = marked_latex(expr), marked_text(expr)
    if marked.count(BREAK) != text.count(BREAK):  # the printers disagree: not broken
        return [unmark(marked)]
    return split_latex(marked, break_levels(text, WIDTH["latex"] if width is None else width, start))


def aligned_rows(lhs: Basic | str, rhs: Basic, width: int | None = None, prefix: str = "",
                 lhs_text: str | None = None) -> list[str]:
    r"""``lhs &= rhs`` as rows of an aligned block, ``rhs`` broken to ``width`` (continuation rows
    ``& \qquad …``).  ``lhs`` is an expression or LaTeX; ``lhs_text`` is the unicode text of
    ``prefix`` and ``lhs`` (whose width tells where ``rhs`` starts), when it is not ``lhs``'s own.

    >>> from sympy import MatrixSymbol
    >>> A, B = MatrixSymbol("A", 2, 2), MatrixSymbol("B", 2, 2)
    >>> aligned_rows(MatrixSymbol("Z", 2, 2), A * B + B * A, width=8)
    ['Z &= AB', '&\\qquad {} + BA']
    """
    width = WIDTH["latex"] if width is None else width
    tex = lhs if isinstance(lhs, str) else math_latex(lhs)
    if lhs_text is None:
        lhs_text = lhs if isinstance(lhs, str) else math_text(lhs)
    rows = latex_rows(rhs, width, text_width(lhs_text) + 3)
    return [f"{prefix}{tex} &= {rows[0]}"] + [f"&{r}" for r in rows[1:]]


def step_block_latex(lines: Sequence[StepRow], lang: str = "en", inline: bool = False,
                     width: int | None = None) -> str:
    r"""Rows of a step block, each with its rule named at the right.

    ``inline``: an ``aligned`` environment (for ``$…$``, Markdown, notebooks) with the rule as
    ``&& \text{…}``; otherwise an ``align*`` display with the rule as ``\tag*{…}``.  A line
    longer than ``width`` continues on indented rows; its rule stays on its first row.
    """
    rows = []
    for ln in lines:
        if ln.lhs is None:
            lhs, text = "", ""
        else:
            lhs, text = math_latex(ln.lhs), math_text(ln.lhs)
        prefix = r"\Rightarrow " if ln.is_result else ""
        name = latex_escape(ln.rule_name, unicode_ok=lang != "en")
        first, *rest = aligned_rows(lhs, ln.rhs, width, prefix, ("⇒ " if ln.is_result else "") + text)
        first += rf" && \text{{{name}}}" if inline else rf" \tag*{{\small {name}}}"
        rows += [first, *rest]
    env = "aligned" if inline else "align*"
    return f"\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}"


def result_latex(lhs: Basic, rhs: Basic, width: int | None = None, inline: bool = False) -> str:
    r"""The display ``⇒ ∂f/∂X = G``: ``\[…\]``, or an aligned block when ``G`` is broken
    (``inline``: the block for ``$$…$$``)."""
    return display_latex(lhs, rhs, width, inline, r"\Rightarrow ", "⇒ ")


def display_latex(lhs: Basic, rhs: Basic, width: int | None = None, inline: bool = False, prefix: str = "",
                  prefix_text: str = "") -> str:
    r"""The display ``lhs = rhs``: ``\[…\]``, or an aligned block when ``rhs`` is broken
    (``inline``: the block for ``$$…$$``); ``prefix`` (its unicode text ``prefix_text``) before ``lhs``."""
    rows = aligned_rows(lhs, rhs, width, prefix, prefix_text + math_text(lhs))
    if len(rows) == 1:
        body = rows[0].replace(" &= ", " = ", 1)
        return body if inline else rf"\[{body}\]"
    env = "aligned" if inline else "align*"
    return f"\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}"


def _preamble(title: str, lang: str, tables: bool = False) -> str:
    """The preamble; ``tables``: with longtable and array, for the audit's table."""
    if lang == "zh":
        head = r"\documentclass[11pt]{ctexart}"
    else:
        head = r"\documentclass[11pt]{article}"
    return head + "\n" + "\n".join([
        r"\usepackage{amsmath,amssymb,bm}",
        *([r"\usepackage{array,longtable}"] if tables else []),
        r"\usepackage[margin=2cm]{geometry}",
        r"\allowdisplaybreaks",
        r"\title{" + latex_escape(title, unicode_ok=lang != "en") + "}",
        r"\date{}",
    ])


def _env(name: str, rows: Sequence[str]) -> str:
    return f"\\begin{{{name}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{name}}}"


def equation_rows(rows: Sequence[EquationRow], width: int | None = None) -> list[str]:
    """``lhs &= rhs`` for each row (rows of an aligned block); the loss as ‖M‖²_F where it is one."""
    out = []
    for row in rows:
        if row.loss and frobenius_operand(row.rhs) is not None:
            out.append(f"{math_latex(row.lhs)} &= {loss_latex(row.rhs)}")
        else:
            out += aligned_rows(row.lhs, row.rhs, width)
    return out


def shape_rows(groups: Sequence[Sequence[MatrixSymbol]], width: int | None = None) -> list[str]:
    r"""Every symbol's shape once: a row per group (inputs, parameters, intermediates), each
    continued on further rows where it is wider than ``width`` (columns of its unicode text)."""
    width = WIDTH["latex"] if width is None else width
    rows = []
    for group in (g for g in groups if g):
        row: list[str] = []
        used = 0
        for s in group:
            w = text_width(f"{math_text(s)} ∈ ℝ{shape_text(s.shape)}") + 4  # and the ,\quad after it
            if row and used + w > width:
                rows.append(r",\quad ".join(row))
                row, used = [], 0
            row.append(rf"{math_latex(s)} \in \mathbb{{R}}^{{{shape_latex(s.shape)}}}")
            used += w
        rows.append(r",\quad ".join(row))
    return rows


def loss_display(loss: Basic, width: int | None = None, inline: bool = False) -> str:
    r"""``f = \|M\|_F^2 = \operatorname{tr}(M^TM)`` as a display (``inline``: for ``$$…$$``), a loss
    other than ‖M‖²_F broken as any long equation."""
    if frobenius_operand(loss) is None:
        return display_latex(F, loss, width, inline)
    eq = f"{math_latex(F)} = {loss_latex(loss)} = {math_latex(loss)}"
    return eq if inline else rf"\[{eq}\]"


# each kind of mathematical span as LaTeX, without the dollars
_MATH_SPANS = {
    Math: lambda s: math_latex(s.expr),
    MathList: lambda s: ", ".join(map(math_latex, s.exprs)),
    Equation: lambda s: f"{math_latex(s.lhs)} = {math_latex(s.rhs)}",
    Shape: lambda s: shape_latex(s.shape),
    Tex: lambda s: s.latex,
}


def span_latex(s: Any) -> str:
    """A mathematical span (:class:`~derive.render.blocks.Math`, ``Equation`` …) as LaTeX, without the dollars."""
    return _MATH_SPANS[type(s)](s)


def inline_latex(spans: Inlines, lang: str = "en") -> str:
    r"""Spans as LaTeX: words escaped (:func:`latex_escape`), mathematics in ``$…$``.

    >>> inline_latex((Text("50% of "), Math(MatrixSymbol("W1", 2, 2))))
    '50\\% of $W_1$'
    """
    out = []
    for s in spans:
        if isinstance(s, Text):
            out.append(latex_escape(s.text, unicode_ok=lang != "en"))
        elif isinstance(s, Link):
            out.append(inline_latex(s.content, lang))
        else:
            out.append(f"${span_latex(s)}$")
    return "".join(out)


HEADINGS = (r"\section*", r"\subsection*", r"\subsubsection*")
# the audit's columns: formula, reading, shapes, conforms, max. error, verdict (17 cm in all)
_AUDIT_COLUMNS = (4.3, 3.9, 1.7, 1.5, 1.4, 2.3)


class LatexWriter(Writer):
    """Blocks as LaTeX paragraphs (joined by blank lines); ``details_heading`` overrides the
    sectioning command of a derivation."""

    def __init__(self, lang: str = "en", width: int | None = None, details_heading: str | None = None) -> None:
        self.lang, self.width, self.details_heading = lang, width, details_heading

    def inline(self, spans: Inlines) -> str:
        return inline_latex(spans, self.lang)

    def parts(self, blocks: Sequence[Any], depth: int) -> list[str]:
        return [p for b in blocks for p in self.block(b, depth)]

    def _heading(self, depth: int, title: Inlines) -> str:
        return HEADINGS[min(depth, len(HEADINGS) - 1)] + "{" + self.inline(title) + "}"

    def _lead(self, lead: Inlines, display: str) -> list[str]:
        return [self.inline(lead) + "\n" + display if lead else display]

    def section(self, b: Section, depth: int) -> list[str]:
        return [self._heading(depth, b.title), *self.parts(b.blocks, depth + 1)]

    def details(self, b: Details, depth: int) -> list[str]:
        head = self._heading(depth, b.title) if self.details_heading is None else (
            self.details_heading + "{" + self.inline(b.title) + "}")
        return [head, *self.parts(b.blocks, depth + 1)]

    def group(self, b: Group, depth: int) -> list[str]:
        label = [r"\paragraph{" + self.inline(b.label) + "}"] if b.label else []
        return label + self.parts(b.blocks, depth)

    def paragraph(self, b: Paragraph, depth: int) -> list[str]:
        return [self.inline(b.content)]

    def remarks(self, b: Remarks, depth: int) -> list[str]:
        return [" ".join(self.inline(item) for item in b.items)]

    def equations(self, b: Equations, depth: int) -> list[str]:
        return self._lead(b.lead, _env("align*", equation_rows(b.rows, self.width)))

    def loss_display(self, b: LossDisplay, depth: int) -> list[str]:
        return self._lead(b.lead, loss_display(b.loss, self.width))

    def shapes(self, b: Shapes, depth: int) -> list[str]:
        return self._lead(b.lead, _env("gather*", shape_rows([g for _, g in b.groups], self.width)))

    def steps(self, b: Steps, depth: int) -> list[str]:
        out = [step_block_latex(b.rows, self.lang, width=self.width)] if b.rows else []
        if b.result is not None:
            out += [self.inline(b.obtain), result_latex(b.result.lhs, b.result.rhs, self.width)]
        return out

    def table(self, b: Table, depth: int) -> list[str]:
        rows = [" & ".join(self.inline(c) for c in r.cells) + r" \\" for r in b.rows]
        if b.style == "audit":
            spec = "".join(rf">{{\raggedright\arraybackslash}}p{{{w}cm}}" for w in _AUDIT_COLUMNS)
            return ["\n".join([r"{\small\setlength{\tabcolsep}{4pt}\renewcommand{\arraystretch}{1.5}",
                               rf"\begin{{longtable}}{{@{{}}{spec}@{{}}}}", r"\hline",
                               " & ".join(rf"\textbf{{{self.inline(h)}}}" for h in b.header) + r" \\",
                               r"\hline", r"\endhead", *rows, r"\hline", r"\end{longtable}}"])]
        return ["\n".join([r"\begin{center}", r"\renewcommand{\arraystretch}{1.6}",
                           r"\begin{tabular}{" + "l" * len(b.header) + "}", r"\hline",
                           " & ".join(self.inline(h) for h in b.header) + r" \\", r"\hline", *rows, r"\hline",
                           r"\end{tabular}", r"\end{center}"])]

    def rule_list(self, b: RuleList, depth: int) -> list[str]:
        items = [rf"\item {latex_escape(name, unicode_ok=self.lang != 'en')}: ${law.latex}$" for name, law in b.items]
        return [self._heading(depth, b.title) + "\n\\begin{itemize}\n" + "\n".join(items) + "\n\\end{itemize}"]

    def document(self, doc: Document, standalone: bool = True) -> str:
        body = "\n\n".join(self.parts(doc.blocks, 0))
        if not standalone:
            return body + "\n"
        engine = latex_engine(doc.lang)
        magic = f"% !TEX program = {engine}\n% Written by tracegrad; compile with {engine}.\n"
        return (magic + _preamble(doc.title, doc.lang, uses_tables(doc)) + "\n\n\\begin{document}\n\\maketitle\n\n"
                + body + "\n\n\\end{document}\n")


def write_latex(doc: Document, standalone: bool = True, width: int | None = None) -> str:
    r"""``doc`` as LaTeX; ``standalone``: with preamble and ``\begin{document}``, ready for :func:`latex_engine`."""
    return LatexWriter(doc.lang, width).document(doc, standalone)


def derivation_latex(d: Derivation, lang: str = "en", inline: bool = False, width: int | None = None) -> str:
    r"""The steps of ``d`` as one aligned block, ``\mathrm{d}f &= …`` down to ``∂f/∂X = G``.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Gradient, Step
    >>> from derive.differential import ScalarDifferential, MatrixDifferential
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> d = Derivation(F, Y, (Step("chain", ScalarDifferential(F), 2 * Y.T * MatrixDifferential(Y)),
    ...                       Step("read_off", Gradient(F, Y), 2 * Y)), 2 * Y)
    >>> print(derivation_latex(d, inline=True))
    \begin{aligned}
    \mathrm{d}f &= 2Y^T\,\mathrm{d}Y && \text{chain rule} \\
    \Rightarrow \frac{\partial f}{\partial Y} &= 2Y && \text{read off the gradient}
    \end{aligned}
    """
    return step_block_latex(derivation_steps(d, get_locale(lang)).rows, lang, inline=inline, width=width)


def section_latex(d: Derivation, lang: str = "en", heading: str = r"\subsection*",
                  width: int | None = None) -> str:
    r"""One section of the document: "Derive ∂f/∂X", where it starts, the steps, the result.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Gradient, Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> tex = section_latex(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y), "zh")
    >>> tex.splitlines()[0]
    '\\subsection*{推导 $\\frac{\\partial f}{\\partial Y}$}'
    """
    writer = LatexWriter(lang, width, details_heading=heading)
    return "\n\n".join(writer.block(derivation_block(d, get_locale(lang)), 1))


def backprop_latex(bp: BackpropLike, lang: str = "en", standalone: bool = True, width: int | None = None,
                   checks: Any = None) -> str:
    r"""A network's whole derivation as a LaTeX document, laid out as the seed document.

    Problem statement · Derivation (one subsection per gradient, in ``bp.sections`` order) ·
    In summary (a table of the parameters' gradients and shapes) · the checks, where ``checks``
    is given (:func:`derive.render.checks.network_checks`) · the rules used.
    ``standalone``: with preamble and ``\begin{document}``, ready for :func:`latex_engine`.
    """
    return write_latex(network_document(bp, lang, checks), standalone, width)


def derivation_document_latex(derivs: Sequence[Derivation], lang: str = "en", title: str = "",
                              width: int | None = None) -> str:
    r"""Several derivations as a standalone LaTeX document (one subsection each), for ``tracegrad grad``.

    >>> from sympy import MatrixSymbol, Trace
    >>> import derive
    >>> X = MatrixSymbol("X", 4, 3)
    >>> tex = derivation_document_latex([derive.derivation(Trace(X.T * X), X)], "en", "f = tr(X'X)")
    >>> tex.count(r"\begin{document}"), "subsection" in tex
    (1, True)
    """
    return write_latex(derivations_document(derivs, lang, title or None), width=width)
