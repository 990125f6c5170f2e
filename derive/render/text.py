"""Plain unicode text for the terminal: dX, ⊙, σ, ᵀ, 𝟏ₙ, ∂f/∂W1, tr.

A step block aligns its equals signs and names each step's rule in a column at the right.
Lines longer than ``width`` columns (default :data:`~derive.render.layout.WIDTH` ``["text"]``,
100) are broken (:mod:`derive.render.layout`): equations at their outermost + and ⊙, prose at spaces.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

from sympy import Basic, MatrixSymbol, OneMatrix

from derive.render.document import (
    BackpropLike, Line, Section, ones_matrices, problem, section, section_intro, show_expanded, uses_intro,
)
from derive.render.layout import WIDTH, longest_word, plan, wrap_words
from derive.render.locale import Locale, get_locale
from derive.render.printer import loss_text, marked_text, math_text, shape_text, text_width
from derive.steps import F, Derivation, Gradient

__all__ = ["backprop_text", "checks_text", "derivation_text", "equation_text", "gradient_table_text",
           "step_block_text", "table_text", "text_lines"]

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


def step_block_text(lines: Sequence[Line], loc: Locale, indent: str = INDENT, width: int | None = None) -> str:
    """Lines ``lhs = rhs`` with the equals signs aligned and ``[rule]`` at the right.

    An equation that does not fit in ``width`` columns with its rule is broken, the rule kept
    on its first line.

    >>> from sympy import MatrixSymbol
    >>> from derive.differential import ScalarDifferential, MatrixDifferential
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> df = ScalarDifferential(F)
    >>> print(step_block_text([Line(df, 2 * Y.T * MatrixDifferential(Y), "collect", False),
    ...                        Line(Gradient(F, Y), 2 * Y, "read_off", True)], get_locale("en")))
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
    rules = [f"[{loc.rule(ln.rule)}]" for ln in lines]

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


def _eq(lhs: Basic, rhs: Basic) -> str:
    return f"{math_text(lhs)} = {math_text(rhs)}"


def _defs(defs: Sequence[tuple[MatrixSymbol, Basic]], loc: Locale) -> str:
    return loc.say("list_sep").join(_eq(s, e) for s, e in defs)


def derivation_text(d: Derivation, lang: str = "en", width: int | None = None) -> str:
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
    width = WIDTH["text"] if width is None else width
    sec = section(d)
    out = [loc.say("derive", grad=math_text(sec.gradient))]
    if sec.contributions:
        # a variable used more than once: each use derived, then the sum
        out += _prose(uses_intro(sec, loc, math_text, _eq), width)
        for use, part in sec.contributions:
            out.append(INDENT + loc.say("use", u=math_text(use)))
            out += _section_body(part, loc, INDENT * 2, width)
        out += [INDENT + loc.say("sum_uses"), step_block_text([sec.result], loc, width=width)]
    else:
        out += _section_body(sec, loc, INDENT, width)
    for n in sec.notes:
        out += _prose(loc.say("note", text=n), width)
    return "\n".join(out)


def _section_body(sec: Section, loc: Locale, indent: str, width: int) -> list[str]:
    """The names a section gives, where it starts and its steps, down to ⇒ ∂f/∂X = G."""
    out = []
    if sec.abbreviations:
        out += _prose(loc.say("abbreviations", defs=_defs(sec.abbreviations, loc)), width, indent)
    if sec.lead:
        out.append(step_block_text(sec.lead, loc, indent, width))
    out += _prose(section_intro(sec, loc, _eq), width, indent)
    out.append(step_block_text(list(sec.body) + [sec.result], loc, indent, width))
    return out


def _prose(text: str, width: int, indent: str = INDENT) -> list[str]:
    return wrap_words(text, width, indent=indent + INDENT, first_indent=indent)


def _heading(s: str, rule: str = "-") -> str:
    return f"{s}\n{rule * text_width(s)}"


def gradient_table_text(summary: Sequence[tuple[MatrixSymbol, Basic, Basic]], lang: str = "en",
                        expanded: bool = False, width: int | None = None) -> str:
    """A table: each parameter's gradient, its shape and its expression (broken to ``width``).

    >>> from sympy import MatrixSymbol
    >>> W = MatrixSymbol("W2", 5, 2)
    >>> print(gradient_table_text([(W, 2 * W, 2 * W)]))
      Gradient  Shape  Expression
      ∂f/∂W2    5×2    2W2
    """
    loc = get_locale(lang)
    width = WIDTH["text"] if width is None else width
    head = (loc.say("gradient"), loc.say("shape"), loc.say("expression"))
    rows = [(math_text(Gradient(F, x)), shape_text(x.shape), full if expanded else staged)
            for x, staged, full in summary]
    w0 = max(text_width(r[0]) for r in [head, *rows]) + 2
    w1 = max(text_width(r[1]) for r in [head, *rows]) + 2
    out = [INDENT + _pad(head[0], w0) + _pad(head[1], w1) + head[2]]
    for a, b, e in rows:
        left = INDENT + _pad(a, w0) + _pad(b, w1)
        body = text_lines(e, width, text_width(left))
        out += [left + body[0]] + body[1:]
    return "\n".join(out)


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


def checks_text(checks: Any, lang: str = "en", width: int | None = None) -> str:
    """The checks after the summary (a ``derive.render.checks.Checks``): the gradient check,
    then the audit as an aligned table."""
    loc = get_locale(lang)
    width = WIDTH["text"] if width is None else width
    out = [_heading(loc.say("checks"))]
    if checks.gradient is not None:
        out += wrap_words(checks.gradient.sentence(loc), width)
    if checks.audit:
        from numeric.reference import audit_table

        dims = ", ".join(map(str, checks.audit_dims))
        out += ["", _heading(loc.say("audit"))]
        out += wrap_words(loc.say("audit_intro", dims=dims), width)
        head, cells = audit_table(list(checks.audit), lang)
        out += ["", table_text(head, cells, width)]
    return "\n".join(out)


def _problem_text(bp: BackpropLike, loc: Locale, width: int) -> list[str]:
    p = problem(bp.network)
    lines = [_heading(loc.say("problem"))]
    lines += [equation_text(math_text(s), e, width) for s, e in p.equations]
    if loss_text(p.loss) == math_text(p.loss):
        lines.append(equation_text(math_text(F), p.loss, width))
    else:  # ‖M‖_F², with M as short as the stages make it
        lines.append(f"{INDENT}{math_text(F)} = {loss_text(p.loss)}")
    lines.append(loc.say("shapes"))
    for group in (p.inputs, p.params, p.intermediates):
        if group:
            lines += wrap_words(", ".join(f"{math_text(s)}: {shape_text(s.shape)}" for s in group), width,
                                indent=INDENT)
    exprs = [e for _, e in p.equations] + [p.loss] + [d.result for d in bp.sections]
    columns, full = ones_matrices(exprs + [s.rhs for d in bp.sections for s in d.steps])
    for n in columns:
        lines.append(loc.say("ones_column", one=math_text(OneMatrix(n, 1)), n=math_text(n)))
    if full:
        lines.append(loc.say("ones_matrix", one="𝟏"))
    params = ", ".join(math_text(s) for s in p.params)
    lines += wrap_words(loc.say("task", f=math_text(F), params=params), width)
    return lines


def backprop_text(bp: BackpropLike, lang: str = "en", width: int | None = None,
                  checks: Any = None) -> str:
    """A network's whole derivation for the terminal, then the table of parameter gradients.

    No line is wider than ``width`` columns (default 100) where the equations can be broken;
    ``checks`` (:func:`derive.render.checks.network_checks`) adds the gradient check and the audit.
    """
    loc = get_locale(lang)
    width = WIDTH["text"] if width is None else width
    title = loc.say("title")
    out = [_heading(title, "="), ""]
    out += _problem_text(bp, loc, width)
    out += ["", _heading(loc.say("derivation")), loc.say("so")]
    loss = bp.network.loss
    if loss_text(loss) != math_text(loss):
        out.append(equation_text(f"{math_text(F)} = {loss_text(loss)}", loss, width))
    else:
        out.append(equation_text(math_text(F), loss, width))
    for d in bp.sections:
        out += ["", derivation_text(d, lang, width)]
    out += ["", _heading(loc.say("summary")), gradient_table_text(bp.summary, lang, width=width)]
    if bp.network.stages:
        out += _prose(loc.say("intermediates", defs=_defs(tuple(bp.network.stages), loc)), width)
    if show_expanded(bp):
        out.append(INDENT + loc.say("expanded"))
        out += [equation_text(math_text(Gradient(F, x)), full, width, INDENT * 2) for x, _, full in bp.summary]
    if checks is not None:
        out += ["", checks_text(checks, lang, width)]
    return "\n".join(out) + "\n"
