"""Plain unicode text for the terminal: dX, ⊙, σ, ᵀ, 𝟏ₙ, ∂f/∂W1, tr.

A step block aligns its equals signs and names each step's rule in a column at the right.
"""
from __future__ import annotations

from collections.abc import Sequence

from sympy import Basic, MatrixSymbol, OneMatrix

from derive.render.document import (
    BackpropLike, Line, Section, ones_matrices, problem, section, section_intro, show_expanded, uses_intro,
)
from derive.render.locale import Locale, get_locale
from derive.render.printer import loss_text, math_text, shape_text, text_width
from derive.steps import F, Derivation, Gradient

__all__ = ["backprop_text", "derivation_text", "gradient_table_text", "step_block_text"]

RULE_COLUMN_MAX = 80  # a rule name starts at most this far right, or two spaces after a longer line
INDENT = "  "


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - text_width(s))


def step_block_text(lines: Sequence[Line], loc: Locale, indent: str = INDENT) -> str:
    """Lines ``lhs = rhs`` with the equals signs aligned and ``[rule]`` at the right.

    >>> from sympy import MatrixSymbol
    >>> from derive.differential import ScalarDifferential, MatrixDifferential
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> df = ScalarDifferential(F)
    >>> print(step_block_text([Line(df, 2 * Y.T * MatrixDifferential(Y), "collect", False),
    ...                        Line(Gradient(F, Y), 2 * Y, "read_off", True)], get_locale("en")))
      df = 2Yᵀ dY   [collect terms]
      ⇒ ∂f/∂Y = 2Y  [read off the gradient]
    """
    width = 0
    eqs = []
    prev_lhs = ""
    for ln in lines:
        if ln.lhs is None:
            left = " " * text_width(prev_lhs)
        else:
            left = ("⇒ " if ln.is_result else "") + math_text(ln.lhs)
            prev_lhs = left
        eq = f"{indent}{left} = {math_text(ln.rhs)}"
        eqs.append(eq)
        width = max(width, text_width(eq))
    column = min(width, RULE_COLUMN_MAX) + 2
    rows = [(_pad(eq, column) if text_width(eq) + 2 <= column else eq + "  ") + f"[{loc.rule(ln.rule)}]"
            for eq, ln in zip(eqs, lines)]
    return "\n".join(r.rstrip() for r in rows)


def _eq(lhs: Basic, rhs: Basic) -> str:
    return f"{math_text(lhs)} = {math_text(rhs)}"


def _defs(defs: Sequence[tuple[MatrixSymbol, Basic]], loc: Locale) -> str:
    return loc.say("list_sep").join(_eq(s, e) for s, e in defs)


def derivation_text(d: Derivation, lang: str = "en") -> str:
    """One derivation for the terminal: "Derive ∂f/∂X", where it starts, and the steps.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> print(derivation_text(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y), "zh"))
    推导 ∂f/∂Y
      方程两边取微分得到，
      ⇒ ∂f/∂Y = 2Y  [读出导数]
    """
    loc = get_locale(lang)
    sec = section(d)
    out = [loc.say("derive", grad=math_text(sec.gradient))]
    if sec.contributions:
        # a variable used more than once: each use derived, then the sum
        out.append(INDENT + uses_intro(sec, loc, math_text, _eq))
        for use, part in sec.contributions:
            out.append(INDENT + loc.say("use", u=math_text(use)))
            out += _section_body(part, loc, INDENT * 2)
        out += [INDENT + loc.say("sum_uses"), step_block_text([sec.result], loc)]
    else:
        out += _section_body(sec, loc, INDENT)
    out += [INDENT + loc.say("note", text=n) for n in sec.notes]
    return "\n".join(out)


def _section_body(sec: Section, loc: Locale, indent: str) -> list[str]:
    """Where a section starts and its steps, down to ⇒ ∂f/∂X = G."""
    out = [step_block_text(sec.lead, loc, indent)] if sec.lead else []
    return out + [indent + section_intro(sec, loc, _eq), step_block_text(list(sec.body) + [sec.result], loc, indent)]


def _heading(s: str, rule: str = "-") -> str:
    return f"{s}\n{rule * text_width(s)}"


def gradient_table_text(summary: Sequence[tuple[MatrixSymbol, Basic, Basic]], lang: str = "en",
                        expanded: bool = False) -> str:
    """A table: each parameter's gradient, its shape and its expression.

    >>> from sympy import MatrixSymbol
    >>> W = MatrixSymbol("W2", 5, 2)
    >>> print(gradient_table_text([(W, 2 * W, 2 * W)]))
      Gradient  Shape  Expression
      ∂f/∂W2    5×2    2W2
    """
    loc = get_locale(lang)
    rows = [(loc.say("gradient"), loc.say("shape"), loc.say("expression"))]
    rows += [(math_text(Gradient(F, x)), shape_text(x.shape), math_text(full if expanded else staged))
             for x, staged, full in summary]
    w0 = max(text_width(r[0]) for r in rows) + 2
    w1 = max(text_width(r[1]) for r in rows) + 2
    return "\n".join(INDENT + _pad(a, w0) + _pad(b, w1) + c for a, b, c in rows)


def _problem_text(bp: BackpropLike, loc: Locale) -> list[str]:
    p = problem(bp.network)
    lines = [_heading(loc.say("problem"))]
    lines += [f"{INDENT}{math_text(s)} = {math_text(e)}" for s, e in p.equations]
    lines.append(f"{INDENT}{math_text(F)} = {loss_text(p.loss)}")
    lines.append(loc.say("shapes"))
    for group in (p.inputs, p.params, p.intermediates):
        if group:
            lines.append(INDENT + ", ".join(f"{math_text(s)}: {shape_text(s.shape)}" for s in group))
    exprs = [e for _, e in p.equations] + [p.loss] + [d.result for d in bp.sections]
    columns, full = ones_matrices(exprs + [s.rhs for d in bp.sections for s in d.steps])
    for n in columns:
        lines.append(loc.say("ones_column", one=math_text(OneMatrix(n, 1)), n=math_text(n)))
    if full:
        lines.append(loc.say("ones_matrix", one="𝟏"))
    params = ", ".join(math_text(s) for s in p.params)
    lines.append(loc.say("task", f=math_text(F), params=params))
    return lines


def backprop_text(bp: BackpropLike, lang: str = "en") -> str:
    """A network's whole derivation for the terminal, then the table of parameter gradients."""
    loc = get_locale(lang)
    title = loc.say("title")
    out = [_heading(title, "="), ""]
    out += _problem_text(bp, loc)
    out += ["", _heading(loc.say("derivation")), loc.say("so")]
    loss = bp.network.loss
    eq = f"{INDENT}{math_text(F)} = {loss_text(loss)}"
    if loss_text(loss) != math_text(loss):
        eq += f" = {math_text(loss)}"
    out.append(eq)
    for d in bp.sections:
        out += ["", derivation_text(d, lang)]
    out += ["", _heading(loc.say("summary")), gradient_table_text(bp.summary, lang)]
    if bp.network.stages:
        out.append(INDENT + loc.say("intermediates", defs=_defs(tuple(bp.network.stages), loc)))
    if show_expanded(bp):
        out.append(INDENT + loc.say("expanded"))
        out += [f"{INDENT * 2}{math_text(Gradient(F, x))} = {math_text(full)}" for x, _, full in bp.summary]
    return "\n".join(out) + "\n"
