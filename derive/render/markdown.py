r"""Markdown output, written as the seed document is: prose lines, display math in ``$$`` blocks.

The mathematics is the LaTeX of :mod:`derive.render.latex`, in ``aligned`` blocks so that
MathJax and KaTeX (Jupyter, GitHub) render it.
"""
from __future__ import annotations

from derive.render.document import (
    BackpropLike, Section, rules_used, section, section_intro, show_expanded, uses_intro,
)
from derive.render.latex import (
    definitions_list, equation_rows, inline_equation, loss_equation, notation_notes, shape_rows,
    step_block_latex, task_line,
)
from derive.render.locale import Locale, get_locale
from derive.render.printer import math_latex, shape_latex
from derive.steps import F, RULES, Derivation, Gradient

__all__ = ["backprop_markdown", "derivation_markdown"]


def _display(tex: str) -> str:
    return f"$$\n{tex}\n$$"


def _m(e) -> str:
    return f"${math_latex(e)}$"


def _cell(tex: str) -> str:
    # a | would end the table cell
    return "$" + tex.replace(r"\|", r"\Vert ").replace("|", r"\vert ") + "$"


def derivation_markdown(d: Derivation, lang: str = "en", heading: str = "") -> str:
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
    sec = section(d)
    parts = [heading + loc.say("derive", grad=_m(sec.gradient))]
    if sec.contributions:
        # a variable used more than once: each use derived, then the sum
        parts.append(uses_intro(sec, loc, _m, inline_equation))
        for use, part in sec.contributions:
            parts.append(f"**{loc.say('use', u=_m(use))}**")
            parts += _section_body(part, loc)
        parts += [loc.say("sum_uses"), _display(step_block_latex([sec.result], loc, inline=True))]
    else:
        parts += _section_body(sec, loc)
    parts += [loc.say("note", text=n) for n in sec.notes]
    return "\n\n".join(parts)


def _section_body(sec: Section, loc: Locale) -> list[str]:
    """Where a section starts, its steps, and ⇒ ∂f/∂X = G."""
    parts = [_display(step_block_latex(sec.lead, loc, inline=True))] if sec.lead else []
    parts.append(section_intro(sec, loc, inline_equation))
    if sec.body:
        parts.append(_display(step_block_latex(sec.body, loc, inline=True)))
    parts.append(loc.say("obtain", grad=_m(sec.result.lhs)))
    parts.append(_display(rf"\Rightarrow {math_latex(sec.result.lhs)} = {math_latex(sec.result.rhs)}"))
    return parts


def backprop_markdown(bp: BackpropLike, lang: str = "en") -> str:
    """A network's whole derivation as one Markdown document, sections as in the seed document.

    Problem statement · Derivation (one ``###`` section per gradient) · In summary (a table of
    the parameters' gradients and shapes) · the rules used.
    """
    loc = get_locale(lang)
    out = [f"# {loc.say('title')}", f"## {loc.say('problem')}",
           _display("\\begin{aligned}\n" + " \\\\\n".join(equation_rows(bp)) + "\n\\end{aligned}"),
           loc.say("shapes"),
           _display("\\begin{gathered}\n" + " \\\\\n".join(shape_rows(bp)) + "\n\\end{gathered}")]
    notes = notation_notes(bp, loc)
    if notes:
        out.append(" ".join(notes))
    out += [task_line(bp, loc),
            f"## {loc.say('derivation')}", loc.say("so"), _display(loss_equation(bp))]
    out += [derivation_markdown(d, lang, heading="### ") for d in bp.sections]

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
        rows_x = [f"{math_latex(Gradient(F, x))} &= {math_latex(e)}" for x, _, e in bp.summary]
        out.append(_display("\\begin{aligned}\n" + " \\\\\n".join(rows_x) + "\n\\end{aligned}"))
    keys = [k for k in rules_used(bp.sections) if k in RULES]
    if keys:
        out.append(f"## {loc.say('rules')}")
        out.append("\n".join(f"- {loc.rule(k)}: ${RULES[k].law}$" for k in keys))
    return "\n\n".join(out) + "\n"
