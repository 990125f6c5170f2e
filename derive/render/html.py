"""A web page: the whole derivation as one self-contained HTML file, mathematics as MathML.

The page needs no network and no JavaScript (its Content-Security-Policy forbids both): the
mathematics is presentation MathML from :mod:`derive.render.mathml`, which browsers lay out
natively, and the style sheet is inline.  It is laid out as the LaTeX document: the problem
statement with the shapes, one collapsible ``<details>`` section per variable (each step in a
row beside the rule that produced it), the summary table, the checks (a gradient check and,
for the seed network, when :mod:`numeric.reference` is importable, the audit of the seed
document's formulas) and the rules used.

Browsers do not break MathML lines, so a long equation is written as continuation lines
(:mod:`derive.render.layout`, ``width`` default :data:`~derive.render.layout.WIDTH` ``["html"]``)
that keep the rule column in view at 1200 px; a line that still does not fit scrolls in its cell.
"""
from __future__ import annotations

import html
import re
from typing import Any
from collections.abc import Sequence

from sympy import Basic, MatrixSymbol, OneMatrix, sympify

from derive.render.document import (
    BackpropLike, Line, Section, all_expressions, ones_matrices, problem, rules_used, section, section_intro,
    show_expanded, uses_intro,
)
from derive.render.layout import WIDTH
from derive.render.locale import Locale, get_locale
from derive.render.mathml import (
    equation_mathml, loss_mathml, math_mathml, mathml_rows, shape_mathml,
    TracegradMathMLPrinter,
)
from derive.steps import F, RULES, Derivation, Gradient

__all__ = ["audit_rows_html", "backprop_html", "checks_html", "derivation_html", "derivations_html"]

_FONTS = {
    "en": '"Noto Sans", "Segoe UI", system-ui, -apple-system, Roboto, "DejaVu Sans", sans-serif',
    "zh": '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans GB", '
          '"Microsoft YaHei", "WenQuanYi Micro Hei", "Noto Sans", system-ui, sans-serif',
}

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0b5cad;
        --ok: #1a7f37; --bad: #cf222e; --partial: #9a6700; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; color: var(--fg); background: #fff; font-family: FONTS; line-height: 1.55; }
main { max-width: 70rem; margin: 0 auto; padding: 1.5rem 1.5rem 3rem; }
math { font-family: "Latin Modern Math", "STIX Two Math", "Cambria Math", "DejaVu Math TeX Gyre", math;
       font-size: 1.08em; }
math [mathvariant="bold"] { font-weight: bold; }
math[display="block"] { margin: 0.6rem 0; overflow-x: auto; overflow-y: hidden; padding: 0.1rem 0; }
h1 { font-size: 1.9rem; margin: 0.4rem 0 0.2rem; }
h2 { font-size: 1.35rem; margin: 2.2rem 0 0.8rem; padding-bottom: 0.3rem;
     border-bottom: 1px solid var(--line); }
header p { margin: 0.2rem 0; color: var(--muted); }
nav { margin: 0.8rem 0 0; font-size: 0.95rem; }
nav a { color: var(--accent); text-decoration: none; margin-right: 1.1rem; }
nav a:hover { text-decoration: underline; }
p { margin: 0.5rem 0; }
table { border-collapse: collapse; }
.wide { overflow-x: auto; }
table.grid { width: 100%; margin: 0.6rem 0; font-size: 0.97rem; }
table.grid th, table.grid td { padding: 0.45rem 0.7rem; border-bottom: 1px solid var(--line);
                               text-align: left; vertical-align: middle; }
table.grid th { background: var(--soft); font-weight: 600; font-size: 0.9rem; color: var(--muted); }
table.shapes th { width: 9rem; background: none; font-size: 0.95rem; color: var(--fg); font-weight: 500; }
table.eqs td { padding: 0.25rem 0; vertical-align: middle; }
table.eqs td.lhs { text-align: right; padding-right: 0.2rem; white-space: nowrap; }
table.eqs td.rhs { text-align: left; }
table.steps { width: 100%; margin: 0.5rem 0; }
table.steps th { text-align: left; font-size: 0.85rem; color: var(--muted); font-weight: 600;
                 padding: 0.2rem 0.6rem; border-bottom: 1px solid var(--line); }
table.steps td { padding: 0.4rem 0.6rem; border-bottom: 1px solid #eef1f4; vertical-align: middle; }
table.steps td.lhs { text-align: right; white-space: nowrap; padding-right: 0.15rem; width: 1%; }
table.steps td.rhs { padding-left: 0.15rem; max-width: 0; overflow-x: auto; }
td.rhs .line { white-space: nowrap; }
table.steps td.rule { color: var(--muted); font-size: 0.88rem; width: 14rem; }
table.steps tr.result td { background: #eef6ff; border-bottom: none; }
table.steps tr.result td.rule { color: var(--accent); }
details { border: 1px solid var(--line); border-radius: 8px; margin: 0.8rem 0; background: #fff; }
details > summary { cursor: pointer; padding: 0.6rem 1rem; background: var(--soft); border-radius: 8px;
                    display: flex; align-items: baseline; gap: 1.2rem; flex-wrap: wrap; list-style: none; }
details > summary::-webkit-details-marker { display: none; }
details > summary::before { content: "▸"; color: var(--muted); width: 0.8rem; }
details[open] > summary::before { content: "▾"; }
details[open] > summary { border-bottom: 1px solid var(--line); border-radius: 8px 8px 0 0; }
summary .title { font-weight: 600; }
summary .preview { color: var(--muted); overflow-x: auto; max-width: 100%; }
details > .body { padding: 0.4rem 1rem 0.8rem; }
.note { color: var(--muted); font-size: 0.93rem; }
.use { margin-left: 0.6rem; padding-left: 0.8rem; border-left: 2px solid var(--line); }
.verdict { font-weight: 600; }
.verdict.ok { color: var(--ok); }
.verdict.bad { color: var(--bad); }
.verdict.partial { color: var(--partial); }
table.audit td:nth-child(2) { min-width: 15rem; }
table.audit td:first-child { white-space: nowrap; }
a math { color: var(--accent); }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--line);
         padding-top: 0.6rem; }
@media print { details > summary::before { content: none; } nav { display: none; } }
"""


def _e(s: str) -> str:
    return html.escape(s, quote=False)


def _say(loc: Locale, key: str, **fields: str) -> str:
    return loc.say(key, escape=_e, **fields)


def _m(e: Basic) -> str:
    return math_mathml(e)


def _eq(lhs: Basic, rhs: Basic) -> str:
    return equation_mathml(lhs, rhs)


def _rhs(rhs: Basic, prefix: str = "<mo>=</mo>", width: int | None = None) -> str:
    """``= rhs`` as one ``<math>``, or, broken to ``width``, as lines ``<div class="line">``."""
    rows = mathml_rows(rhs, WIDTH["html"] if width is None else width) if width != 0 else [
        TracegradMathMLPrinter().doprint(rhs)]
    maths = ['<math xmlns="http://www.w3.org/1998/Math/MathML">' + (prefix if i == 0 else "") + row + "</math>"
             for i, row in enumerate(rows)]
    if len(maths) == 1:
        return maths[0]
    return "".join(f'<div class="line">{m}</div>' for m in maths)


def step_table_html(lines: Sequence[Line], loc: Locale, width: int | None = None) -> str:
    """A step block: one row per line, ``lhs | = rhs | rule``; the read-off row is marked.

    A right-hand side longer than ``width`` is written as indented continuation lines in its cell.
    """
    rows = []
    for ln in lines:
        lhs = "" if ln.lhs is None else _m(ln.lhs)
        if ln.is_result and ln.lhs is not None:
            lhs = ('<math xmlns="http://www.w3.org/1998/Math/MathML"><mo>⇒</mo>'
                   + TracegradMathMLPrinter().doprint(ln.lhs) + "</math>")
        cls = ' class="result"' if ln.is_result else ""
        rows.append(f'<tr{cls}><td class="lhs">{lhs}</td><td class="rhs">{_rhs(ln.rhs, width=width)}</td>'
                    f'<td class="rule">{_e(loc.rule(ln.rule))}</td></tr>')
    head = (f'<thead><tr><th colspan="2">{_e(loc.say("equation"))}</th>'
            f'<th>{_e(loc.say("rule"))}</th></tr></thead>')
    return (f'<div class="wide"><table class="steps">{head}<tbody>\n' + "\n".join(rows)
            + "\n</tbody></table></div>")


def _anchor(x: MatrixSymbol) -> str:
    return "d-" + re.sub(r"[^A-Za-z0-9_-]", "_", x.name)


def derivation_html(d: Derivation, lang: str = "en", open_: bool = True, width: int | None = None) -> str:
    """One section as a ``<details>`` element: "Derive ∂f/∂X", where it starts, and a table of its
    steps, each beside the rule that produced it, down to ⇒ ∂f/∂X = G (the summary line shows G).

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> page = derivation_html(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y))
    >>> page.splitlines()[0]
    '<details id="d-Y" open>'
    >>> "Derive <math" in page and '<tr class="result">' in page
    True
    """
    loc = get_locale(lang)
    sec = section(d)
    attrs = f' id="{_anchor(d.wrt)}"' + (" open" if open_ else "")
    preview = _rhs(sec.result.rhs, width=0)
    parts = [f"<details{attrs}>",
             f'<summary><span class="title">{_say(loc, "derive", grad=_m(sec.gradient))}</span>'
             f'<span class="preview">{preview}</span></summary>',
             '<div class="body">']
    if sec.contributions:
        # a variable used more than once: each use derived, then the sum
        parts.append(f"<p>{uses_intro(sec, loc, _m, _eq, _e)}</p>")
        for use, part in sec.contributions:
            parts.append(f'<div class="use"><p><strong>{_say(loc, "use", u=_m(use))}</strong></p>')
            parts += _section_body(part, loc, width)
            parts.append("</div>")
        parts += [f"<p>{_e(loc.say('sum_uses'))}</p>", step_table_html([sec.result], loc, width)]
    else:
        parts += _section_body(sec, loc, width)
    parts += [f'<p class="note">{_say(loc, "note", text=_e(n))}</p>' for n in sec.notes]
    parts.append("</div>\n</details>")
    return "\n".join(parts)


def _section_body(sec: Section, loc: Locale, width: int | None) -> list[str]:
    """The names a section gives, where it starts and a table of its steps, the read-off step
    last and marked: ⇒ ∂f/∂X = G."""
    parts = []
    if sec.abbreviations:
        defs = _e(loc.say("list_sep")).join(_eq(s, e) for s, e in sec.abbreviations)
        parts.append(f"<p>{_say(loc, 'abbreviations', defs=defs)}</p>")
    if sec.lead:
        parts.append(step_table_html(sec.lead, loc, width))
    parts.append(f"<p>{section_intro(sec, loc, _eq, _e)}</p>")
    parts.append(step_table_html([*sec.body, sec.result], loc, width))
    return parts


def _equations_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(f'<tr><td class="lhs">{lhs}</td><td class="rhs">{rhs}</td></tr>' for lhs, rhs in rows)
    return f'<div class="wide"><table class="eqs">\n{body}\n</table></div>'


def _loss_rhs(bp: BackpropLike) -> str:
    return ('<math xmlns="http://www.w3.org/1998/Math/MathML"><mo>=</mo>' + loss_mathml(bp.network.loss)
            + "</math>")


def _problem_html(bp: BackpropLike, loc: Locale, width: int | None) -> str:
    p = problem(bp.network)
    rows = [(_m(s), _rhs(e, width=width)) for s, e in p.equations] + [(_m(F), _loss_rhs(bp))]
    groups = [(key, g) for key, g in (("kind_inputs", p.inputs), ("kind_params", p.params),
                                      ("kind_intermediates", p.intermediates)) if g]
    shape_rows = "\n".join(
        f'<tr><th scope="row">{_e(loc.say(key))}</th><td>{_memberships(g)}</td></tr>' for key, g in groups)
    shapes = f'<div class="wide"><table class="grid shapes">\n{shape_rows}\n</table></div>'
    columns, full = ones_matrices([e for _, e in p.equations] + [p.loss] + all_expressions(bp))
    notes = [_say(loc, "ones_column", one=_m(OneMatrix(n, 1)), n=_m(n)) for n in columns]
    if full:
        notes.append(_say(loc, "ones_matrix", one=_m(OneMatrix(2, 2))))
    params = ('<math xmlns="http://www.w3.org/1998/Math/MathML">'
              + "<mo>,</mo>".join(TracegradMathMLPrinter().doprint(s) for s in p.params) + "</math>")
    out = [f'<section id="problem"><h2>{_e(loc.say("problem"))}</h2>', _equations_table(rows),
           f"<p>{_e(loc.say('shapes'))}</p>", shapes]
    if notes:
        out.append(f"<p>{' '.join(notes)}</p>")
    out.append(f"<p>{_say(loc, 'task', f=_m(F), params=params)}</p></section>")
    return "\n".join(out)


def _memberships(symbols: Sequence[MatrixSymbol]) -> str:
    """``X ∈ ℝⁿˣᵈ, Y ∈ ℝⁿˣᵏ``: one ``<math>`` element each, so that a long list wraps between them."""
    p = TracegradMathMLPrinter()
    items = []
    for s in symbols:
        rows, cols = (p.doprint(sympify(d)) for d in s.shape)
        items.append('<math xmlns="http://www.w3.org/1998/Math/MathML">'
                     f"{p.doprint(s)}<mo>∈</mo><msup><mi>ℝ</mi><mrow>{rows}<mo>×</mo>{cols}</mrow></msup></math>")
    return ",&emsp; ".join(items)


def _derivation_html(bp: BackpropLike, loc: Locale, width: int | None) -> str:
    from derive.render.printer import frobenius_operand

    loss = bp.network.loss
    p = TracegradMathMLPrinter()
    eq = p.doprint(F) + "<mo>=</mo>" + loss_mathml(loss)
    if frobenius_operand(loss) is not None:
        eq += "<mo>=</mo>" + p.doprint(loss)
    parts = [f'<section id="derivation"><h2>{_e(loc.say("derivation"))}</h2>',
             f"<p>{_e(loc.say('so'))}</p>",
             f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">{eq}</math>']
    parts += [derivation_html(d, loc.lang, width=width) for d in bp.sections]
    parts.append("</section>")
    return "\n".join(parts)


def _summary_html(bp: BackpropLike, loc: Locale, width: int | None) -> str:
    rows = "\n".join(
        f'<tr><td><a href="#{_anchor(x)}">{_m(Gradient(F, x))}</a></td><td>{shape_mathml(x.shape)}</td>'
        f"<td>{_m(staged)}</td></tr>" for x, staged, _ in bp.summary)
    table = (f'<div class="wide"><table class="grid"><thead><tr><th>{_e(loc.say("gradient"))}</th>'
             f'<th>{_e(loc.say("shape"))}</th><th>{_e(loc.say("expression"))}</th></tr></thead>\n'
             f"<tbody>\n{rows}\n</tbody></table></div>")
    parts = [f'<section id="summary"><h2>{_e(loc.say("summary"))}</h2>', table]
    stages = tuple(bp.network.stages)
    if stages:
        defs = _e(loc.say("list_sep")).join(_eq(s, e) for s, e in stages)
        parts.append(f"<p>{_say(loc, 'intermediates', defs=defs)}</p>")
    if show_expanded(bp):
        parts.append(f"<p>{_e(loc.say('expanded'))}</p>")
        parts.append(_equations_table([(_m(Gradient(F, x)), _rhs(e, width=width)) for x, _, e in bp.summary]))
    parts.append("</section>")
    return "\n".join(parts)


def _rules_html(derivations: Sequence[Derivation], loc: Locale) -> str:
    keys = [k for k in rules_used(derivations) if k in RULES]
    if not keys:
        return ""
    rows = [f"<tr><td>{_e(loc.rule(k))}</td><td>{math_mathml(RULES[k].law)}</td></tr>" for k in keys]
    return (f'<section id="rules"><h2>{_e(loc.say("rules"))}</h2>'
            f'<div class="wide"><table class="grid"><thead><tr><th>{_e(loc.say("rule"))}</th>'
            f'<th>{_e(loc.say("law"))}</th></tr></thead>\n<tbody>\n' + "\n".join(rows)
            + "\n</tbody></table></div></section>")


def _verdict_class(verdict: str) -> str:
    if verdict == "correct":
        return "ok"
    if verdict.startswith("correct"):
        return "partial"
    return "bad" if verdict in ("wrong", "shapes do not conform") else ""


# formula, reading, shapes, conforms, max. error, verdict (the columns of numeric.reference.audit_table)
_AUDIT_CLASSES = ("", "", "num", "", "num", "")


def audit_rows_html(rows: Sequence[Any], lang: str = "en") -> str:
    """The audit as an HTML table, written from each row's data: the formulas as the seed document
    writes them, the rest as the words of ``numeric.reference.audit_table``.

    ``rows`` are ``numeric.reference.AuditRow`` objects (``formula``, ``verdict`` …).
    """
    from numeric.reference import audit_table

    head, body = audit_table(list(rows), lang)
    out = ['<div class="wide"><table class="grid audit"><thead><tr>'
           + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for r, cells in zip(rows, body):
        cells_html = [_e(c) for c in cells]
        verdict = _verdict_class(getattr(r, "verdict", ""))
        cells_html[-1] = f'<span class="verdict {verdict}">{cells_html[-1]}</span>'
        tds = [f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>"
               for c, v in zip(_AUDIT_CLASSES, cells_html)]
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _audit_section(rows: Sequence[Any], dims: Sequence[int], loc: Locale) -> str:
    return (f'<section id="audit"><h2>{_e(loc.say("audit"))}</h2>'
            f"<p>{_say(loc, 'audit_intro', dims=', '.join(map(str, dims)))}</p>\n"
            + audit_rows_html(rows, loc.lang) + "</section>")


def checks_html(checks: Any, loc: Locale) -> list[tuple[str, str]]:
    """The sections ("checks", html) with the gradient check and ("audit", html) with the audit,
    each where ``checks`` (a ``derive.render.checks.Checks``) has it."""
    out = []
    if checks.gradient is not None:
        sentence = checks.gradient.sentence(loc, _e)
        out.append(("checks", f'<section id="checks"><h2>{_e(loc.say("checks"))}</h2><p>{sentence}</p></section>'))
    if checks.audit:
        out.append(("audit", _audit_section(checks.audit, checks.audit_dims, loc)))
    return out


def backprop_html(bp: BackpropLike, lang: str = "en", audit: bool = True, checks: Any = None,
                  width: int | None = None) -> str:
    """A network's whole derivation as one self-contained HTML page (MathML, inline CSS, no script).

    ``checks`` (``derive.render.checks.network_checks``) adds the gradient check and the audit;
    without it, ``audit`` adds the audit of the seed document's formulas for the seed network
    (only, and only where ``numeric.reference`` is importable).

    >>> from derive import seed_network
    >>> from derive.backprop import backprop
    >>> page = backprop_html(backprop(seed_network()), "zh", audit=False)
    >>> page.splitlines()[:2]
    ['<!DOCTYPE html>', '<html lang="zh">']
    >>> page.count("<details"), "<script" in page, "\\\\frac" in page
    (8, False, False)
    """
    loc = get_locale(lang)
    parts = [("problem", _problem_html(bp, loc, width)), ("derivation", _derivation_html(bp, loc, width)),
             ("summary", _summary_html(bp, loc, width))]
    if checks is not None:
        parts += checks_html(checks, loc)
    elif audit and getattr(bp.network, "name", None) == "seed":
        try:
            from numeric.reference import AUDIT_DIMS, audit as seed_audit
        except ImportError:
            pass
        else:
            parts.append(("audit", _audit_section(seed_audit(seed=0, dims=AUDIT_DIMS), AUDIT_DIMS, loc)))
    parts.append(("rules", _rules_html(bp.sections, loc)))
    return _page(loc.say("title"), loc, [(key, html) for key, html in parts if html])


def derivations_html(derivations: Sequence[Derivation], lang: str = "en", title: str | None = None,
                     width: int | None = None) -> str:
    """Several derivations (of any functions) as one self-contained HTML page, with the rules used.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> d = Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y)
    >>> page = derivations_html([d], title="f = norm2(Y)^2")
    >>> "<h1>f = norm2(Y)^2</h1>" in page, page.count("<details")
    (True, 1)
    """
    loc = get_locale(lang)
    body = "\n".join(derivation_html(d, lang, width=width) for d in derivations)
    section_html = f'<section id="derivation"><h2>{_e(loc.say("derivation"))}</h2>\n{body}\n</section>'
    parts = [("derivation", section_html), ("rules", _rules_html(derivations, loc))]
    return _page(title if title is not None else loc.say("title"), loc, [(k, h) for k, h in parts if h])


def _page(title: str, loc: Locale, sections: Sequence[tuple[str, str]]) -> str:
    """The page around ``sections``: (id, html) pairs, each listed in the navigation bar under the
    locale's word for its id (problem, derivation, summary, audit, rules)."""
    links = " ".join(f'<a href="#{key}">{_e(loc.say(key))}</a>' for key, _ in sections)
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    head = "\n".join([
        "<!DOCTYPE html>",
        f'<html lang="{loc.lang}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="tracegrad">',
        f"<title>{_e(title)} · tracegrad</title>",
        "<style>" + _CSS.replace("FONTS", _FONTS[loc.lang]) + "</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<header><h1>{_e(title)}</h1>",
        f'<nav aria-label="{_e(loc.say("contents"))}">{links}</nav></header>',
    ])
    tail = f'<footer>{_e(loc.say("generated"))}</footer>\n</main>\n</body>\n</html>\n'
    return head + "\n" + "\n".join(html for _, html in sections) + "\n" + tail
