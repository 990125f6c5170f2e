"""A web page: the whole derivation as one self-contained HTML file, mathematics as MathML.

The HTML writer of the document model (:mod:`derive.render.blocks`).  The page needs no network
and no JavaScript (its Content-Security-Policy forbids both): the mathematics is presentation
MathML from :mod:`derive.render.mathml`, which browsers lay out natively, and the style sheet is
inline.  Each section is a ``<section>`` listed in the navigation bar; each derivation a
collapsible ``<details>`` (each step in a row beside the rule that produced it).

Browsers do not break MathML lines, so a long equation is written as continuation lines
(:mod:`derive.render.layout`, ``width`` default :data:`~derive.render.layout.WIDTH` ``["html"]``)
that keep the rule column in view at 1200 px; a line that still does not fit scrolls in its cell.
"""
from __future__ import annotations

import html
from typing import Any
from collections.abc import Sequence

from sympy import Basic, sympify

from derive.render.blocks import (
    Details, Document, Equation, Equations, Group, Inlines, Link, LossDisplay, Math, MathList, Paragraph,
    Remarks, RuleList, Section, Shape, Shapes, StepRow, Steps, Table, Tex, Text, Writer, plain, walk,
)
from derive.render.checks import seed_audit
from derive.render.document import BackpropLike, derivation_block, derivations_document, network_document
from derive.render.layout import WIDTH
from derive.render.locale import Locale, get_locale
from derive.render.mathml import (
    TracegradMathMLPrinter, equation_mathml, loss_mathml, math_mathml, mathml_rows,
    shape_mathml,
)
from derive.render.printer import frobenius_operand, math_latex
from derive.steps import F, Derivation

__all__ = ["HtmlWriter", "backprop_html", "derivation_html", "derivations_html", "inline_html", "write_html"]

_MATH = '<math xmlns="http://www.w3.org/1998/Math/MathML">'

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
h3 { font-size: 1.12rem; margin: 1.6rem 0 0.6rem; }
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


def _rhs(rhs: Basic, prefix: str = "<mo>=</mo>", width: int | None = None) -> str:
    """``= rhs`` as one ``<math>``, or, broken to ``width``, as lines ``<div class="line">``."""
    rows = mathml_rows(rhs, WIDTH["html"] if width is None else width) if width != 0 else [
        TracegradMathMLPrinter().doprint(rhs)]
    maths = [_MATH + (prefix if i == 0 else "") + row + "</math>" for i, row in enumerate(rows)]
    if len(maths) == 1:
        return maths[0]
    return "".join(f'<div class="line">{m}</div>' for m in maths)


def _tex(s: Tex) -> str:
    return _e(s.text or s.latex)   # a formula known only as LaTeX (the write-up's own) is shown as written


def _math_list(s: MathList) -> str:
    p = TracegradMathMLPrinter()
    return _MATH + "<mo>,</mo>".join(p.doprint(e) for e in s.exprs) + "</math>"


# each kind of span as HTML
_SPANS = {
    Text: lambda s: _e(s.text),
    Math: lambda s: math_mathml(s.expr),
    MathList: _math_list,
    Equation: lambda s: equation_mathml(s.lhs, s.rhs),
    Shape: lambda s: shape_mathml(s.shape),
    Tex: _tex,
    Link: lambda s: f'<a href="#{s.target}">{inline_html(s.content)}</a>',
}


def inline_html(spans: Inlines) -> str:
    """Spans as HTML: words escaped, mathematics as MathML.

    >>> from sympy import MatrixSymbol
    >>> inline_html((Text("A < "), Math(MatrixSymbol("B", 2, 2))))
    'A &lt; <math xmlns="http://www.w3.org/1998/Math/MathML"><mi>B</mi></math>'
    """
    return "".join(_SPANS[type(s)](s) for s in spans)


def _p(spans: Inlines, cls: str = "") -> str:
    return (f'<p class="{cls}">' if cls else "<p>") + inline_html(spans) + "</p>"


def _memberships(symbols: Sequence[Basic]) -> str:
    """``X ∈ ℝⁿˣᵈ, Y ∈ ℝⁿˣᵏ``: one ``<math>`` element each, so that a long list wraps between them."""
    p = TracegradMathMLPrinter()
    items = []
    for s in symbols:
        rows, cols = (p.doprint(sympify(d)) for d in s.shape)
        items.append(f"{_MATH}{p.doprint(s)}<mo>∈</mo><msup><mi>ℝ</mi><mrow>{rows}<mo>×</mo>{cols}</mrow></msup></math>")
    return ",&emsp; ".join(items)


def _equations_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(f'<tr><td class="lhs">{lhs}</td><td class="rhs">{rhs}</td></tr>' for lhs, rhs in rows)
    return f'<div class="wide"><table class="eqs">\n{body}\n</table></div>'


# formula, reading, shapes, conforms, max. error, verdict: the cells of the audit's numbers
_AUDIT_CLASSES = ("", "", "num", "", "num", "")


class HtmlWriter(Writer):
    """Blocks as HTML; ``open_``: derivations shown unfolded; ``fragment``: the body only, without the
    page around it, each step's row carrying its LaTeX (``data-latex``) for a page to copy."""

    def __init__(self, lang: str = "en", width: int | None = None, open_: bool = True,
                 fragment: bool = False) -> None:
        self.loc, self.width, self.open_, self.fragment = get_locale(lang), width, open_, fragment

    def parts(self, blocks: Sequence[Any], depth: int) -> list[str]:
        return [p for b in blocks for p in self.block(b, depth)]

    def _lead(self, lead: Inlines) -> list[str]:
        return [_p(lead)] if lead else []

    def section(self, b: Section, depth: int) -> list[str]:
        h = f"h{min(depth + 2, 6)}"
        return [f'<section id="{b.anchor}"><{h}>{inline_html(b.title)}</{h}>', *self.parts(b.blocks, depth + 1),
                "</section>"]

    def details(self, b: Details, depth: int) -> list[str]:
        attrs = f' id="{b.anchor}"' + (" open" if self.open_ else "")
        return [f"<details{attrs}>",
                f'<summary><span class="title">{inline_html(b.title)}</span>'
                f'<span class="preview">{_rhs(b.preview, width=0)}</span></summary>',
                '<div class="body">', *self.parts(b.blocks, depth + 1), "</div>\n</details>"]

    def group(self, b: Group, depth: int) -> list[str]:
        label = [f"<p><strong>{inline_html(b.label)}</strong></p>"] if b.label else []
        inner = label + self.parts(b.blocks, depth)
        return [f'<div class="{b.role}">' + inner[0], *inner[1:], "</div>"] if b.role else inner

    def paragraph(self, b: Paragraph, depth: int) -> list[str]:
        return [_p(b.content, b.role)]

    def remarks(self, b: Remarks, depth: int) -> list[str]:
        return ["<p>" + " ".join(inline_html(item) for item in b.items) + "</p>"]

    def equations(self, b: Equations, depth: int) -> list[str]:
        rows = [(math_mathml(r.lhs), f"{_MATH}<mo>=</mo>{loss_mathml(r.rhs)}</math>" if r.loss
                 else _rhs(r.rhs, width=self.width)) for r in b.rows]
        return [*self._lead(b.lead), _equations_table(rows)]

    def loss_display(self, b: LossDisplay, depth: int) -> list[str]:
        p = TracegradMathMLPrinter()
        eq = p.doprint(F) + "<mo>=</mo>" + loss_mathml(b.loss)
        if frobenius_operand(b.loss) is not None:
            eq += "<mo>=</mo>" + p.doprint(b.loss)
        return [*self._lead(b.lead), f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">{eq}</math>']

    def shapes(self, b: Shapes, depth: int) -> list[str]:
        rows = "\n".join(f'<tr><th scope="row">{inline_html(label)}</th><td>{_memberships(g)}</td></tr>'
                         for label, g in b.groups)
        return [*self._lead(b.lead), f'<div class="wide"><table class="grid shapes">\n{rows}\n</table></div>']

    def _step_row(self, ln: StepRow) -> str:
        lhs = "" if ln.lhs is None else math_mathml(ln.lhs)
        if ln.is_result and ln.lhs is not None:
            lhs = _MATH + "<mo>⇒</mo>" + TracegradMathMLPrinter().doprint(ln.lhs) + "</math>"
        cls = ' class="result"' if ln.is_result else ""
        if self.fragment:
            tex = ("" if ln.lhs is None else (r"\Rightarrow " if ln.is_result else "") + math_latex(ln.lhs) + " ")
            cls += f' data-latex="{html.escape(tex + "= " + math_latex(ln.rhs))}"'
        return (f'<tr{cls}><td class="lhs">{lhs}</td><td class="rhs">{_rhs(ln.rhs, width=self.width)}</td>'
                f'<td class="rule">{_e(ln.rule_name)}</td></tr>')

    def steps(self, b: Steps, depth: int) -> list[str]:
        """A step block: one row per line, ``lhs | = rhs | rule``; the result row marked.  A right-hand
        side longer than ``width`` is written as indented continuation lines in its cell."""
        rows = [*b.rows, b.result] if b.result is not None else list(b.rows)
        head = (f'<thead><tr><th colspan="2">{_e(self.loc.say("equation"))}</th>'
                f'<th>{_e(self.loc.say("rule"))}</th></tr></thead>')
        return [f'<div class="wide"><table class="steps">{head}<tbody>\n'
                + "\n".join(self._step_row(r) for r in rows) + "\n</tbody></table></div>"]

    def table(self, b: Table, depth: int) -> list[str]:
        audit = b.style == "audit"
        head = "".join(f"<th>{inline_html(h)}</th>" for h in b.header)
        rows = []
        for r in b.rows:
            cells = [inline_html(c) for c in r.cells]
            if audit:
                cells[-1] = f'<span class="verdict {r.status}">{cells[-1]}</span>'
            classes = _AUDIT_CLASSES if audit else ("",) * len(cells)
            rows.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>"
                                         for c, v in zip(classes, cells)) + "</tr>")
        cls = "grid audit" if audit else "grid"
        return [f'<div class="wide"><table class="{cls}"><thead><tr>{head}</tr></thead>\n<tbody>\n'
                + "\n".join(rows) + "\n</tbody></table></div>"]

    def rule_list(self, b: RuleList, depth: int) -> list[str]:
        h = f"h{min(depth + 2, 6)}"
        rows = "\n".join(f"<tr><td>{_e(name)}</td><td>{math_mathml(law.expr)}</td></tr>"
                         for name, law in b.items)
        return [f'<section id="{b.anchor}"><{h}>{inline_html(b.title)}</{h}>'
                f'<div class="wide"><table class="grid"><thead><tr><th>{_e(self.loc.say("rule"))}</th>'
                f'<th>{_e(self.loc.say("law"))}</th></tr></thead>\n<tbody>\n{rows}\n</tbody></table></div></section>']

    def document(self, doc: Document) -> str:
        if self.fragment:
            return "\n".join(self.parts(doc.blocks, 0)) + "\n"
        contents = [(b.anchor, plain(b.title)) for b in walk(doc.blocks)
                    if isinstance(b, (Section, RuleList)) and b.anchor]
        return _page(doc.title, self.loc, "\n".join(self.parts(doc.blocks, 0)), contents)


def write_html(doc: Document, width: int | None = None, fragment: bool = False) -> str:
    """``doc`` as one self-contained HTML page (MathML, inline CSS, no script); ``fragment``: the
    page's body only (its sections, no style), each step's row with a ``data-latex`` attribute."""
    return HtmlWriter(doc.lang, width, fragment=fragment).document(doc)


def derivation_html(d: Derivation, lang: str = "en", open_: bool = True, width: int | None = None) -> str:
    """One section as a ``<details>`` element: "Derive ∂f/∂X", where it starts, and a table of its
    steps, each beside the rule that produced it, down to ⇒ ∂f/∂X = G (the summary line shows G).

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Gradient, Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> page = derivation_html(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y))
    >>> page.splitlines()[0]
    '<details id="d-Y" open>'
    >>> "Derive <math" in page and '<tr class="result">' in page
    True
    """
    return "\n".join(HtmlWriter(lang, width, open_).block(derivation_block(d, get_locale(lang)), 1))


def backprop_html(bp: BackpropLike, lang: str = "en", audit: bool = True, checks: Any = None,
                  width: int | None = None) -> str:
    """A network's whole derivation as one self-contained HTML page (MathML, inline CSS, no script).

    ``checks`` (``derive.render.checks.network_checks``) adds the gradient check and the audit;
    without it, ``audit`` adds the audit of the seed document's formulas for the seed network
    (only).

    >>> from derive import seed_network
    >>> from derive.backprop import backprop
    >>> page = backprop_html(backprop(seed_network()), "zh", audit=False)
    >>> page.splitlines()[:2]
    ['<!DOCTYPE html>', '<html lang="zh">']
    >>> page.count("<details"), "<script" in page, "\\\\frac" in page
    (8, False, False)
    """
    if checks is None and audit:
        checks = seed_audit(bp)
    return write_html(network_document(bp, lang, checks), width)


def derivations_html(derivations: Sequence[Derivation], lang: str = "en", title: str | None = None,
                     width: int | None = None) -> str:
    """Several derivations (of any functions) as one self-contained HTML page, with the rules used.

    >>> from sympy import MatrixSymbol
    >>> from derive.steps import Gradient, Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> d = Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y)
    >>> page = derivations_html([d], title="f = norm2(Y)^2")
    >>> "<h1>f = norm2(Y)^2</h1>" in page, page.count("<details")
    (True, 1)
    """
    return write_html(derivations_document(derivations, lang, title), width)


def _page(title: str, loc: Locale, body: str, contents: Sequence[tuple[str, str]]) -> str:
    """The page around ``body``, with a navigation bar listing ``contents``: (anchor, title) pairs."""
    links = " ".join(f'<a href="#{key}">{_e(name)}</a>' for key, name in contents)
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
    return head + "\n" + body + "\n" + tail
