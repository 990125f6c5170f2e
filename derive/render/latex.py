r"""LaTeX output: a derivation's step block, and a whole network's standalone document.

English documents compile with pdflatex (article, amsmath, amssymb, bm, geometry), Chinese
ones with xelatex (ctexart).  :func:`latex_engine` names the engine for a language.
Equations longer than ``width`` (default :data:`~derive.render.layout.WIDTH` ``["latex"]``,
in columns of their unicode text) continue on indented rows of their ``align*``/``aligned``
block, broken at their outermost + and ⊙ (:mod:`derive.render.layout`).
"""
from __future__ import annotations

from typing import Any
from collections.abc import Callable, Sequence

from sympy import Basic, MatrixSymbol, OneMatrix

from derive.render.document import (
    BackpropLike, Line, Section, all_expressions, ones_matrices, problem, rules_used, section, section_intro,
    show_expanded, step_lines, uses_intro,
)
from derive.render.layout import BREAK, WIDTH, break_levels, split_latex, unmark
from derive.render.locale import Locale, get_locale
from derive.render.printer import (
    frobenius_operand, loss_latex, marked_latex, marked_text, math_latex, math_text, shape_latex, shape_text,
    text_width,
)
from derive.steps import F, RULES, Derivation, Gradient

__all__ = [
    "aligned_rows",
    "backprop_latex",
    "checks_latex",
    "derivation_latex",
    "latex_engine",
    "latex_escape",
    "latex_rows",
    "section_latex",
    "step_block_latex",
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


def _esc(loc: Locale) -> Callable[[str], str]:
    return lambda s: latex_escape(s, unicode_ok=loc.lang != "en")


def _m(e: Basic) -> str:
    return f"${math_latex(e)}$"


def _eq(lhs: Basic, rhs: Basic) -> str:
    return f"{math_latex(lhs)} = {math_latex(rhs)}"


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


def step_block_latex(lines: Sequence[Line], loc: Locale, inline: bool = False, width: int | None = None) -> str:
    r"""Lines of a step block, each with its rule named at the right.

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
        name = latex_escape(loc.rule(ln.rule), unicode_ok=loc.lang != "en")
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


def derivation_latex(d: Derivation, lang: str = "en", inline: bool = False, width: int | None = None) -> str:
    r"""The steps of ``d`` as one aligned block, ``\mathrm{d}f &= …`` down to ``∂f/∂X = G``.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Step
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
    loc = get_locale(lang)
    # a variable used more than once: the steps of each use, then the sum
    lines = [ln for c in d.contributions for ln in step_lines(c.steps)] + step_lines(d.steps)
    if not lines:
        lines = [Line(Gradient(F, d.wrt), d.result, "read_off", True)]
    return step_block_latex(lines, loc, inline=inline, width=width)


def inline_equation(lhs: Basic, rhs: Basic) -> str:
    """``$lhs = rhs$``: an equation in running text."""
    return f"${_eq(lhs, rhs)}$"


def definitions_list(defs: Sequence[tuple[MatrixSymbol, Basic]], loc: Locale) -> str:
    """``$Z = …$, $H = …$`` joined as the language joins a list."""
    return loc.say("list_sep").join(inline_equation(s, e) for s, e in defs)


def section_latex(d: Derivation, lang: str = "en", heading: str = r"\subsection*",
                  width: int | None = None) -> str:
    r"""One section of the document: "Derive ∂f/∂X", where it starts, the steps, the result.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> tex = section_latex(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y), "zh")
    >>> tex.splitlines()[0]
    '\\subsection*{推导 $\\frac{\\partial f}{\\partial Y}$}'
    """
    loc = get_locale(lang)
    esc = _esc(loc)
    sec = section(d)
    parts = [heading + "{" + loc.say("derive", escape=esc, grad=_m(sec.gradient)) + "}"]
    if sec.contributions:
        # a variable used more than once: each use derived, then the sum
        parts.append(uses_intro(sec, loc, _m, inline_equation, esc))
        for use, part in sec.contributions:
            parts.append(r"\paragraph{" + loc.say("use", escape=esc, u=_m(use)) + "}")
            parts += _section_body(part, loc, width)
        parts += [esc(loc.say("sum_uses")), step_block_latex([sec.result], loc, width=width)]
    else:
        parts += _section_body(sec, loc, width)
    for note in sec.notes:
        parts.append(loc.say("note", escape=esc, text=esc(note)))
    return "\n\n".join(parts)


def _section_body(sec: Section, loc: Locale, width: int | None) -> list[str]:
    """The names a section gives, where it starts, its steps, and ⇒ ∂f/∂X = G."""
    esc = _esc(loc)
    parts = []
    if sec.abbreviations:
        parts.append(loc.say("abbreviations", escape=esc, defs=definitions_list(sec.abbreviations, loc)))
    if sec.lead:
        parts.append(step_block_latex(sec.lead, loc, width=width))
    parts.append(section_intro(sec, loc, inline_equation, esc))
    if sec.body:
        parts.append(step_block_latex(sec.body, loc, width=width))
    parts.append(loc.say("obtain", escape=esc, grad=_m(sec.result.lhs)))
    parts.append(result_latex(sec.result.lhs, sec.result.rhs, width))
    return parts


def _preamble(loc: Locale, tables: bool = False) -> str:
    """The preamble; ``tables``: with longtable and array, for the audit's table."""
    if loc.lang == "zh":
        head = r"\documentclass[11pt]{ctexart}"
    else:
        head = r"\documentclass[11pt]{article}"
    return head + "\n" + "\n".join([
        r"\usepackage{amsmath,amssymb,bm}",
        *([r"\usepackage{array,longtable}"] if tables else []),
        r"\usepackage[margin=2cm]{geometry}",
        r"\allowdisplaybreaks",
        r"\title{" + latex_escape(loc.say("title"), unicode_ok=loc.lang != "en") + "}",
        r"\date{}",
    ])


def equation_rows(bp: BackpropLike, width: int | None = None) -> list[str]:
    """``Z &= definition`` for each stage, then ``f &= loss`` (rows of an aligned block)."""
    p = problem(bp.network)
    rows = [r for s, e in p.equations for r in aligned_rows(s, e, width)]
    if frobenius_operand(p.loss) is not None:
        rows.append(f"{math_latex(F)} &= {loss_latex(p.loss)}")
    else:
        rows += aligned_rows(F, p.loss, width)
    return rows


def shape_rows(bp: BackpropLike, width: int | None = None) -> list[str]:
    r"""Every symbol's shape once: a row for the inputs, the parameters, the intermediates, each
    continued on further rows where it is wider than ``width`` (columns of its unicode text)."""
    width = WIDTH["latex"] if width is None else width
    p = problem(bp.network)
    rows = []
    for group in (g for g in (p.inputs, p.params, p.intermediates) if g):
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


def notation_notes(bp: BackpropLike, loc: Locale, escape: Callable[[str], str] | None = None) -> list[str]:
    """What 𝟏ₙ and 𝟏 stand for, where they occur."""
    p = problem(bp.network)
    columns, full = ones_matrices([e for _, e in p.equations] + [p.loss] + all_expressions(bp))
    notes = [loc.say("ones_column", escape=escape, one=_m(OneMatrix(n, 1)), n=_m(n)) for n in columns]
    if full:
        notes.append(loc.say("ones_matrix", escape=escape, one=r"$\mathbf{1}$"))
    return notes


def task_line(bp: BackpropLike, loc: Locale, escape: Callable[[str], str] | None = None) -> str:
    params = "$" + ", ".join(math_latex(s) for s in bp.network.params) + "$"
    return loc.say("task", escape=escape, f=_m(F), params=params)


def loss_equation(bp: BackpropLike) -> str:
    r"""``f = \|M\|_F^2 = \operatorname{tr}(M^TM)`` (or ``f = loss``)."""
    loss = bp.network.loss
    eq = f"{math_latex(F)} = {loss_latex(loss)}"
    if frobenius_operand(loss) is not None:
        eq += f" = {math_latex(loss)}"
    return eq


def loss_display(bp: BackpropLike, width: int | None = None, inline: bool = False) -> str:
    r""":func:`loss_equation` as a display (``inline``: for ``$$…$$``), a loss other than
    ‖M‖²_F broken as any long equation."""
    if frobenius_operand(bp.network.loss) is not None:
        return loss_equation(bp) if inline else rf"\[{loss_equation(bp)}\]"
    return display_latex(F, bp.network.loss, width, inline)


def _problem_latex(bp: BackpropLike, loc: Locale, width: int | None) -> str:
    esc = _esc(loc)
    parts = [r"\section*{" + esc(loc.say("problem")) + "}",
             "\\begin{align*}\n" + " \\\\\n".join(equation_rows(bp, width)) + "\n\\end{align*}",
             esc(loc.say("shapes")) + "\n\\begin{gather*}\n" + " \\\\\n".join(shape_rows(bp))
             + "\n\\end{gather*}"]
    notes = notation_notes(bp, loc, esc)
    if notes:
        parts.append(" ".join(notes))
    parts.append(task_line(bp, loc, esc))
    return "\n\n".join(parts)


def _derivation_intro(bp: BackpropLike, loc: Locale, width: int | None) -> str:
    return _esc(loc)(loc.say("so")) + "\n" + loss_display(bp, width)


def _summary_latex(bp: BackpropLike, loc: Locale, width: int | None) -> str:
    esc = _esc(loc)
    rows = [f"{_m(Gradient(F, x))} & {_m_shape(x)} & {_m(staged)} \\\\"
            for x, staged, _ in bp.summary]
    table = "\n".join([
        r"\begin{center}",
        r"\renewcommand{\arraystretch}{1.6}",
        r"\begin{tabular}{lll}",
        r"\hline",
        f"{esc(loc.say('gradient'))} & {esc(loc.say('shape'))} & {esc(loc.say('expression'))} \\\\",
        r"\hline",
        *rows,
        r"\hline",
        r"\end{tabular}",
        r"\end{center}",
    ])
    parts = [r"\section*{" + esc(loc.say("summary")) + "}", table]
    stages = tuple(bp.network.stages)
    if stages:
        parts.append(loc.say("intermediates", escape=esc, defs=definitions_list(stages, loc)))
    if show_expanded(bp):
        rows_x = [r for x, _, expanded in bp.summary for r in aligned_rows(Gradient(F, x), expanded, width)]
        parts.append(esc(loc.say("expanded")) + "\n\\begin{align*}\n" + " \\\\\n".join(rows_x)
                     + "\n\\end{align*}")
    return "\n\n".join(parts)


def _m_shape(x: MatrixSymbol) -> str:
    return f"${shape_latex(x.shape)}$"


def _rules_latex(bp: BackpropLike, loc: Locale) -> str:
    esc = _esc(loc)
    items = [rf"\item {esc(loc.rule(k))}: ${math_latex(RULES[k].law)}$" for k in rules_used(bp.sections) if k in RULES]
    if not items:
        return ""
    return (r"\section*{" + esc(loc.say("rules")) + "}\n\\begin{itemize}\n" + "\n".join(items)
            + "\n\\end{itemize}")


def backprop_latex(bp: BackpropLike, lang: str = "en", standalone: bool = True, width: int | None = None,
                   checks: Any = None) -> str:
    r"""A network's whole derivation as a LaTeX document, laid out as the seed document.

    Problem statement · Derivation (one subsection per gradient, in ``bp.sections`` order) ·
    In summary (a table of the parameters' gradients and shapes) · the checks, where ``checks``
    is given (:func:`derive.render.checks.network_checks`) · the rules used.
    ``standalone``: with preamble and ``\begin{document}``, ready for :func:`latex_engine`.
    """
    loc = get_locale(lang)
    body = [_problem_latex(bp, loc, width),
            r"\section*{" + _esc(loc)(loc.say("derivation")) + "}",
            _derivation_intro(bp, loc, width)]
    body += [section_latex(d, lang, width=width) for d in bp.sections]
    body.append(_summary_latex(bp, loc, width))
    if checks is not None:
        body.append(checks_latex(checks, lang))
    rules = _rules_latex(bp, loc)
    if rules:
        body.append(rules)
    text = "\n\n".join(body)
    if not standalone:
        return text + "\n"
    engine = latex_engine(lang)
    magic = f"% !TEX program = {engine}\n% Written by tracegrad; compile with {engine}.\n"
    tables = checks is not None and bool(checks.audit)
    return (magic + _preamble(loc, tables) + "\n\n\\begin{document}\n\\maketitle\n\n" + text
            + "\n\n\\end{document}\n")


# the audit's columns: formula, reading, shapes, conforms, max. error, verdict (17 cm in all)
_AUDIT_COLUMNS = (4.3, 3.9, 1.7, 1.5, 1.4, 2.3)


def checks_latex(checks: Any, lang: str = "en") -> str:
    r"""The checks as a section: the gradient check, then the audit as a ``longtable`` (with the
    packages ``array`` and ``longtable``, which :func:`backprop_latex` loads when it has an audit).
    Each audit row is written from its data: the formula as mathematics, the rest as words."""
    loc = get_locale(lang)
    esc = _esc(loc)
    parts = [r"\section*{" + esc(loc.say("checks")) + "}"]
    if checks.gradient is not None:
        parts.append(checks.gradient.sentence(loc, esc))
    if checks.audit:
        from numeric.reference import audit_table

        head, cells = audit_table(list(checks.audit), lang)
        spec = "".join(rf">{{\raggedright\arraybackslash}}p{{{w}cm}}" for w in _AUDIT_COLUMNS)
        rows = []
        for r, row in zip(checks.audit, cells):
            latex = getattr(r, "latex", "")
            first = f"${latex}$" if latex else esc(row[0])
            rows.append(" & ".join([first, *(esc(c) for c in row[1:])]) + r" \\")
        dims = ", ".join(map(str, checks.audit_dims))
        parts += [r"\subsection*{" + esc(loc.say("audit")) + "}",
                  loc.say("audit_intro", escape=esc, dims=dims),
                  "\n".join([r"{\small\setlength{\tabcolsep}{4pt}\renewcommand{\arraystretch}{1.5}",
                              rf"\begin{{longtable}}{{@{{}}{spec}@{{}}}}",
                              r"\hline",
                              " & ".join(rf"\textbf{{{esc(h)}}}" for h in head) + r" \\",
                              r"\hline",
                              r"\endhead",
                              *rows,
                              r"\hline",
                              r"\end{longtable}}"])]
    return "\n\n".join(parts)


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
    loc = get_locale(lang)
    engine = latex_engine(lang)
    body = "\n\n".join(section_latex(d, lang, width=width) for d in derivs)
    head = (r"\section*{" + latex_escape(title, unicode_ok=True) + "}\n\n") if title else ""
    return (f"% !TEX program = {engine}\n% Written by tracegrad; compile with {engine}.\n" + _preamble(loc)
            + "\n\n\\begin{document}\n" + head + body + "\n\\end{document}\n")
