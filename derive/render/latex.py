r"""LaTeX output: a derivation's step block, and a whole network's standalone document.

English documents compile with pdflatex (article, amsmath, amssymb, bm, geometry), Chinese
ones with xelatex (ctexart).  :func:`latex_engine` names the engine for a language.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from sympy import Basic, MatrixSymbol, OneMatrix

from derive.render.document import (
    BackpropLike, Line, Section, all_expressions, ones_matrices, problem, rules_used, section, section_intro,
    show_expanded, step_lines, uses_intro,
)
from derive.render.locale import Locale, get_locale
from derive.render.printer import frobenius_operand, loss_latex, math_latex, shape_latex
from derive.steps import F, RULES, Derivation, Gradient

__all__ = [
    "backprop_latex",
    "derivation_latex",
    "latex_engine",
    "latex_escape",
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


def step_block_latex(lines: Sequence[Line], loc: Locale, inline: bool = False) -> str:
    r"""Lines of a step block, each with its rule named at the right.

    ``inline``: an ``aligned`` environment (for ``$…$``, Markdown, notebooks) with the rule as
    ``&& \text{…}``; otherwise an ``align*`` display with the rule as ``\tag*{…}``.
    """
    rows = []
    for ln in lines:
        lhs = "" if ln.lhs is None else math_latex(ln.lhs)
        if ln.is_result:
            lhs = r"\Rightarrow " + lhs
        name = latex_escape(loc.rule(ln.rule), unicode_ok=loc.lang != "en")
        row = f"{lhs} &= {math_latex(ln.rhs)}"
        row += rf" && \text{{{name}}}" if inline else rf" \tag*{{\small {name}}}"
        rows.append(row)
    env = "aligned" if inline else "align*"
    return f"\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}"


def derivation_latex(d: Derivation, lang: str = "en", inline: bool = False) -> str:
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
    return step_block_latex(lines, loc, inline=inline)


def inline_equation(lhs: Basic, rhs: Basic) -> str:
    """``$lhs = rhs$``: an equation in running text."""
    return f"${_eq(lhs, rhs)}$"


def definitions_list(defs: Sequence[tuple[MatrixSymbol, Basic]], loc: Locale) -> str:
    """``$Z = …$, $H = …$`` joined as the language joins a list."""
    return loc.say("list_sep").join(inline_equation(s, e) for s, e in defs)


def section_latex(d: Derivation, lang: str = "en", heading: str = r"\subsection*") -> str:
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
            parts += _section_body(part, loc)
        parts += [esc(loc.say("sum_uses")), step_block_latex([sec.result], loc)]
    else:
        parts += _section_body(sec, loc)
    for note in sec.notes:
        parts.append(loc.say("note", escape=esc, text=esc(note)))
    return "\n\n".join(parts)


def _section_body(sec: Section, loc: Locale) -> list[str]:
    """Where a section starts, its steps, and ⇒ ∂f/∂X = G."""
    esc = _esc(loc)
    parts = [step_block_latex(sec.lead, loc)] if sec.lead else []
    parts.append(section_intro(sec, loc, inline_equation, esc))
    if sec.body:
        parts.append(step_block_latex(sec.body, loc))
    parts.append(loc.say("obtain", escape=esc, grad=_m(sec.result.lhs)))
    parts.append(r"\[" + r"\Rightarrow " + _eq(sec.result.lhs, sec.result.rhs) + r"\]")
    return parts


def _preamble(loc: Locale) -> str:
    if loc.lang == "zh":
        head = r"\documentclass[11pt]{ctexart}"
    else:
        head = r"\documentclass[11pt]{article}"
    return head + "\n" + "\n".join([
        r"\usepackage{amsmath,amssymb,bm}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\allowdisplaybreaks",
        r"\title{" + latex_escape(loc.say("title"), unicode_ok=loc.lang != "en") + "}",
        r"\date{}",
    ])


def equation_rows(bp: BackpropLike) -> list[str]:
    """``Z &= definition`` for each stage, then ``f &= loss`` (rows of an aligned block)."""
    p = problem(bp.network)
    rows = [f"{math_latex(s)} &= {math_latex(e)}" for s, e in p.equations]
    rows.append(f"{math_latex(F)} &= {loss_latex(p.loss)}")
    return rows


def shape_rows(bp: BackpropLike) -> list[str]:
    r"""Every symbol's shape once: a row for the inputs, the parameters, the intermediates."""
    p = problem(bp.network)
    groups = [g for g in (p.inputs, p.params, p.intermediates) if g]
    return [r",\quad ".join(rf"{math_latex(s)} \in \mathbb{{R}}^{{{shape_latex(s.shape)}}}" for s in g)
            for g in groups]


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


def _problem_latex(bp: BackpropLike, loc: Locale) -> str:
    esc = _esc(loc)
    parts = [r"\section*{" + esc(loc.say("problem")) + "}",
             "\\begin{align*}\n" + " \\\\\n".join(equation_rows(bp)) + "\n\\end{align*}",
             esc(loc.say("shapes")) + "\n\\begin{gather*}\n" + " \\\\\n".join(shape_rows(bp))
             + "\n\\end{gather*}"]
    notes = notation_notes(bp, loc, esc)
    if notes:
        parts.append(" ".join(notes))
    parts.append(task_line(bp, loc, esc))
    return "\n\n".join(parts)


def _derivation_intro(bp: BackpropLike, loc: Locale) -> str:
    return _esc(loc)(loc.say("so")) + "\n\\[" + loss_equation(bp) + r"\]"


def _summary_latex(bp: BackpropLike, loc: Locale) -> str:
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
        rows_x = [f"{math_latex(Gradient(F, x))} &= {math_latex(expanded)}" for x, _, expanded in bp.summary]
        parts.append(esc(loc.say("expanded")) + "\n\\begin{align*}\n" + " \\\\\n".join(rows_x)
                     + "\n\\end{align*}")
    return "\n\n".join(parts)


def _m_shape(x: MatrixSymbol) -> str:
    return f"${shape_latex(x.shape)}$"


def _rules_latex(bp: BackpropLike, loc: Locale) -> str:
    esc = _esc(loc)
    items = [rf"\item {esc(loc.rule(k))}: ${RULES[k].law}$" for k in rules_used(bp.sections) if k in RULES]
    if not items:
        return ""
    return (r"\section*{" + esc(loc.say("rules")) + "}\n\\begin{itemize}\n" + "\n".join(items)
            + "\n\\end{itemize}")


def backprop_latex(bp: BackpropLike, lang: str = "en", standalone: bool = True) -> str:
    r"""A network's whole derivation as a LaTeX document, laid out as the seed document.

    Problem statement · Derivation (one subsection per gradient, in ``bp.sections`` order) ·
    In summary (a table of the parameters' gradients and shapes) · the rules used.
    ``standalone``: with preamble and ``\begin{document}``, ready for :func:`latex_engine`.
    """
    loc = get_locale(lang)
    body = [_problem_latex(bp, loc),
            r"\section*{" + _esc(loc)(loc.say("derivation")) + "}",
            _derivation_intro(bp, loc)]
    body += [section_latex(d, lang) for d in bp.sections]
    body.append(_summary_latex(bp, loc))
    rules = _rules_latex(bp, loc)
    if rules:
        body.append(rules)
    text = "\n\n".join(body)
    if not standalone:
        return text + "\n"
    engine = latex_engine(lang)
    magic = f"% !TEX program = {engine}\n% Written by tracegrad; compile with {engine}.\n"
    return (magic + _preamble(loc) + "\n\n\\begin{document}\n\\maketitle\n\n" + text
            + "\n\n\\end{document}\n")


def derivation_document_latex(derivs: Sequence[Derivation], lang: str = "en", title: str = "") -> str:
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
    body = "\n\n".join(section_latex(d, lang) for d in derivs)
    head = (r"\section*{" + latex_escape(title, unicode_ok=True) + "}\n\n") if title else ""
    return (f"% !TEX program = {engine}\n% Written by tracegrad; compile with {engine}.\n" + _preamble(loc)
            + "\n\n\\begin{document}\n" + head + body + "\n\\end{document}\n")
