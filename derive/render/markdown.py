r"""Markdown output, written as the seed document is: prose lines, display math in ``$$`` blocks.

The mathematics is the LaTeX of :mod:`derive.render.latex`, in ``aligned`` blocks so that
MathJax and KaTeX (Jupyter, GitHub) render it; long equations continue on indented rows
(``width``, default :data:`~derive.render.layout.WIDTH` ``["markdown"]``).
"""
from __future__ import annotations

from typing import Any

from derive.render.document import (
    BackpropLike, Section, rules_used, section, section_intro, show_expanded, uses_intro,
)
from derive.render.latex import (
    aligned_rows, definitions_list, equation_rows, inline_equation, loss_display, notation_notes, result_latex,
    shape_rows, step_block_latex, task_line,
)
from derive.render.layout import WIDTH
from derive.render.locale import Locale, get_locale
from derive.render.printer import math_latex, shape_latex
from derive.steps import F, RULES, Derivation, Gradient

__all__ = ["backprop_markdown", "checks_markdown", "derivation_markdown"]


def _display(tex: str) -> str:
    return f"$$\n{tex}\n$$"


def _m(e) -> str:
    return f"${math_latex(e)}$"


def _cell(tex: str) -> str:
    # a | would end the table cell
    return "$" + tex.replace(r"\|", r"\Vert ").replace("|", r"\vert ") + "$"


def derivation_markdown(d: Derivation, lang: str = "en", heading: str = "", width: int | None = None) -> str:
    r"""One derivation as Markdown: "Derive ∂f/∂X", where it starts, the steps, the result.

    ``heading`` is put before the first line (``"### "`` makes it a heading).

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> md = derivation_markdown(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y), "zh")
    >>> print(md.splitlines()[0])
    推导 $\frac{\partial f}{\partial Y}$
    >>> print(md.splitlines()[-2])
    \Rightarrow \frac{\partial f}{\partial Y} = 2Y
    """
    loc = get_locale(lang)
    width = WIDTH["markdown"] if width is None else width
    sec = section(d)
    parts = [heading + loc.say("derive", grad=_m(sec.gradient))]
    if sec.contributions:
        # a variable used more than once: each use derived, then the sum
        parts.append(uses_intro(sec, loc, _m, inline_equation))
        for use, part in sec.contributions:
            parts.append(f"**{loc.say('use', u=_m(use))}**")
            parts += _section_body(part, loc, width)
        parts += [loc.say("sum_uses"), _display(step_block_latex([sec.result], loc, inline=True, width=width))]
    else:
        parts += _section_body(sec, loc, width)
    parts += [loc.say("note", text=n) for n in sec.notes]
    return "\n\n".join(parts)


def _section_body(sec: Section, loc: Locale, width: int) -> list[str]:
    """The names a section gives, where it starts, its steps, and ⇒ ∂f/∂X = G."""
    parts = []
    if sec.abbreviations:
        parts.append(loc.say("abbreviations", defs=definitions_list(sec.abbreviations, loc)))
    if sec.lead:
        parts.append(_display(step_block_latex(sec.lead, loc, inline=True, width=width)))
    parts.append(section_intro(sec, loc, inline_equation))
    if sec.body:
        parts.append(_display(step_block_latex(sec.body, loc, inline=True, width=width)))
    parts.append(loc.say("obtain", grad=_m(sec.result.lhs)))
    parts.append(_display(result_latex(sec.result.lhs, sec.result.rhs, width, inline=True)))
    return parts


def backprop_markdown(bp: BackpropLike, lang: str = "en", width: int | None = None,
                      checks: Any = None) -> str:
    """A network's whole derivation as one Markdown document, sections as in the seed document.

    Problem statement · Derivation (one ``###`` section per gradient) · In summary (a table of
    the parameters' gradients and shapes) · the checks, where ``checks`` is given
    (:func:`derive.render.checks.network_checks`) · the rules used.
    """
    loc = get_locale(lang)
    width = WIDTH["markdown"] if width is None else width
    out = [f"# {loc.say('title')}", f"## {loc.say('problem')}",
           _display("\\begin{aligned}\n" + " \\\\\n".join(equation_rows(bp, width)) + "\n\\end{aligned}"),
           loc.say("shapes"),
           _display("\\begin{gathered}\n" + " \\\\\n".join(shape_rows(bp)) + "\n\\end{gathered}")]
    notes = notation_notes(bp, loc)
    if notes:
        out.append(" ".join(notes))
    out += [task_line(bp, loc),
            f"## {loc.say('derivation')}", loc.say("so"), _display(loss_display(bp, width, inline=True))]
    out += [derivation_markdown(d, lang, heading="### ", width=width) for d in bp.sections]

    out.append(f"## {loc.say('summary')}")
    rows = [f"| {loc.say('gradient')} | {loc.say('shape')} | {loc.say('expression')} |", "|---|---|---|"]
    for x, g, _ in bp.summary:
        cells = (math_latex(Gradient(F, x)), shape_latex(x.shape), math_latex(g))
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    out.append("\n".join(rows))
    if bp.network.stages:
        out.append(loc.say("intermediates", defs=definitions_list(tuple(bp.network.stages), loc)))
    if show_expanded(bp):
        out.append(loc.say("expanded"))
        rows_x = [r for x, _, e in bp.summary for r in aligned_rows(Gradient(F, x), e, width)]
        out.append(_display("\\begin{aligned}\n" + " \\\\\n".join(rows_x) + "\n\\end{aligned}"))
    if checks is not None:
        out.append(checks_markdown(checks, lang))
    keys = [k for k in rules_used(bp.sections) if k in RULES]
    if keys:
        out.append(f"## {loc.say('rules')}")
        out.append("\n".join(f"- {loc.rule(k)}: ${math_latex(RULES[k].law)}$" for k in keys))
    return "\n\n".join(out) + "\n"


def _text_cell(s: str) -> str:
    return s.replace("|", "\\|")


def checks_markdown(checks: Any, lang: str = "en") -> str:
    """The checks (a ``derive.render.checks.Checks``) as a ``##`` section: the gradient check,
    then the audit as a table whose formulas are mathematics, written from each row's data."""
    loc = get_locale(lang)
    out = [f"## {loc.say('checks')}"]
    if checks.gradient is not None:
        out.append(checks.gradient.sentence(loc))
    if checks.audit:
        from numeric.reference import audit_table

        head, cells = audit_table(list(checks.audit), lang)
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r, row in zip(checks.audit, cells):
            latex = getattr(r, "latex", "")
            first = _cell(latex) if latex else _text_cell(row[0])
            rows.append("| " + " | ".join([first, *(_text_cell(c) for c in row[1:])]) + " |")
        dims = ", ".join(map(str, checks.audit_dims))
        out += [f"### {loc.say('audit')}", loc.say("audit_intro", dims=dims), "\n".join(rows)]
    return "\n\n".join(out)
