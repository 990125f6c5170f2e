"""The document, built once: a derivation, a staged network or a list of derivations as blocks.

Every format writes the same outline, decided here and only here, as the seed document is
written: the problem statement (equations, shapes, what 𝟏 stands for, the task) · the
derivation (the loss, then one section per variable; a variable used more than once gets one
part per use and their sum) · the summary (the parameters' gradients, the intermediates, the
gradients in terms of the inputs) · the checks (the gradient check; for the seed network, the
audit of its hand-written formulas) · the rules used.  The writers (text, Markdown, LaTeX,
HTML) turn the blocks (:mod:`derive.render.blocks`) into their format; the words come from the
locale (:mod:`derive.render.locale`), the layout of each derivation from
:func:`derive.render.outline.outline`.

>>> import derive
>>> from derive.render.blocks import plain
>>> doc = network_document(derive.backprop(derive.seed_network()), "zh")
>>> [plain(s.title) for s in doc.blocks]
['问题描述', '推导过程', '综上所述', '所用法则']
>>> sum(isinstance(b, Details) for b in walk(doc.blocks))
8
"""
from __future__ import annotations

import re
import string
from typing import Any, Protocol
from collections.abc import Iterable, Sequence

import sympy
from sympy import Basic, MatAdd, MatrixExpr, MatrixSymbol, OneMatrix

from derive.limits import size_exceeds
from derive.render.blocks import (
    Block, Details, Document, Equation, EquationRow, Equations, Group, Inline, Inlines, Link, LossDisplay,
    Math, MathList, Paragraph, Remarks, RuleList, Section, Shape, Shapes, StepRow, Steps, Table, TableRow,
    Tex, Text, walk,
)
from derive.render.locale import Locale, get_locale
from derive.render.outline import Line, Outline, outline, step_lines
from derive.steps import F, RULES, Derivation, Gradient, Use

__all__ = [
    "BackpropLike",
    "NetworkLike",
    "anchor",
    "audit_table",
    "checks_section",
    "derivation_block",
    "derivation_steps",
    "derivations_document",
    "gradient_table",
    "network_document",
    "ones_matrices",
    "rule_list",
    "rules_used",
    "say",
    "show_expanded",
    "uses_tables",
]


class NetworkLike(Protocol):
    inputs: tuple[MatrixSymbol, ...]
    params: tuple[MatrixSymbol, ...]
    stages: tuple[tuple[MatrixSymbol, MatrixExpr], ...]
    loss: Basic


class BackpropLike(Protocol):
    """What the builder reads from ``derive.backprop.Backprop``."""

    network: NetworkLike
    sections: tuple[Derivation, ...]
    summary: tuple[tuple[MatrixSymbol, MatrixExpr, MatrixExpr | None], ...]   # None: too large to expand


# --- words and mathematics -------------------------------------------------------------------

Field = str | Inline | Inlines


def say(loc: Locale, key: str, **fields: Field) -> Inlines:
    """The locale's template ``key`` as spans: its words as :class:`Text`, each field as given
    (a string is words, a span or a tuple of spans is put in as it is).

    >>> say(get_locale("en"), "derive", grad=Math(Gradient(F, MatrixSymbol("W", 2, 2))))
    (Text(text='Derive '), Math(expr=∂f/∂W))
    """
    out: list[Inline] = []
    for literal, name, _spec, _conv in string.Formatter().parse(loc.prose[key]):
        if literal:
            out.append(Text(literal))
        if name is not None:
            value = fields[name]
            out.extend(value if isinstance(value, tuple) else [Text(value) if isinstance(value, str) else value])
    return tuple(out)


def _listed(loc: Locale, spans: Iterable[Inline]) -> Inlines:
    """The spans joined as the language joins a list ("A, B" or "A，B")."""
    out: list[Inline] = []
    for s in spans:
        if out:
            out.append(Text(loc.say("list_sep")))
        out.append(s)
    return tuple(out)


def _definitions(loc: Locale, defs: Iterable[tuple[Basic, Basic]]) -> Inlines:
    return _listed(loc, (Equation(s, e) for s, e in defs))


def anchor(x: MatrixSymbol) -> str:
    """The anchor of the derivation of ∂f/∂x (a web page links the summary to it).

    >>> anchor(MatrixSymbol("W_1", 2, 2))
    'd-W_1'
    """
    return "d-" + re.sub(r"[^A-Za-z0-9_-]", "_", x.name)


# --- one derivation --------------------------------------------------------------------------

def _row(line: Line, loc: Locale) -> StepRow:
    return StepRow(line.lhs, line.rhs, line.rule, loc.rule(line.rule), line.is_result)


def _rows(lines: Iterable[Line], loc: Locale) -> tuple[StepRow, ...]:
    return tuple(_row(ln, loc) for ln in lines)


def _intro(sec: Outline, loc: Locale) -> Inlines:
    """"From ∂f/∂Z = G, where Z = …:" for a staged section, else "Taking the differential…"."""
    if sec.upstream is not None:
        eq = Equation(*sec.upstream)
        if sec.definitions:
            return say(loc, "from_where", eq=eq, defs=_definitions(loc, sec.definitions))
        return say(loc, "from", eq=eq)
    intro = say(loc, "differentiate")
    if sec.definitions:
        intro = (*say(loc, "where", defs=_definitions(loc, sec.definitions)), Text(" "), *intro)
    return intro


def _uses_intro(sec: Outline, loc: Locale) -> Inlines:
    """"W is used 2 times (Z, f). Writing W^(u) for W as used by u, … ∂f/∂W = ∂f/∂W^(Z) + ∂f/∂W^(f) …"."""
    X = sec.gradient.wrt
    u = sympy.Symbol("u")
    uses = [use for use, _ in sec.contributions]
    total = MatAdd(*[Gradient(F, Use(X, use)) for use in uses])
    return say(loc, "uses", x=Math(X), count=str(len(uses)), uses=_listed(loc, (Math(use) for use in uses)),
               copy=Math(Use(X, u)), u=Math(u), eq=Equation(sec.gradient, total))


def _outline_blocks(sec: Outline, loc: Locale) -> list[Block]:
    """The names a section gives, its lead lines (f = …), where it starts, its steps and ⇒ ∂f/∂X = G."""
    blocks: list[Block] = []
    if sec.abbreviations:
        blocks.append(Paragraph(say(loc, "abbreviations", defs=_definitions(loc, sec.abbreviations))))
    if sec.lead:
        blocks.append(Steps(_rows(sec.lead, loc)))
    blocks.append(Paragraph(_intro(sec, loc)))
    blocks.append(Steps(_rows(sec.body, loc), result=_row(sec.result, loc),
                        obtain=say(loc, "obtain", grad=Math(sec.result.lhs))))
    return blocks


def derivation_block(d: Derivation, loc: Locale) -> Details:
    """The section "Derive ∂f/∂X" of ``d``: where it starts, its steps and its result; for a
    variable used more than once, one part per use, then their sum.

    >>> from derive.render.blocks import plain
    >>> from derive.steps import Step
    >>> Y = MatrixSymbol("Y", 3, 2)
    >>> block = derivation_block(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y),
    ...                          get_locale("en"))
    >>> plain(block.title), [type(b).__name__ for b in block.blocks], block.anchor
    ('Derive ', ['Paragraph', 'Steps'], 'd-Y')
    """
    sec = outline(d)
    blocks: list[Block] = []
    if sec.contributions:
        blocks.append(Paragraph(_uses_intro(sec, loc)))
        for use, part in sec.contributions:
            blocks.append(Group(tuple(_outline_blocks(part, loc)), label=say(loc, "use", u=Math(use)), role="use"))
        # the sum, then the steps that tidy it (a layer's facts: the columns of X̂ sum to zero …)
        blocks += [Paragraph(say(loc, "sum_uses")), Steps(_rows(sec.body, loc) + (_row(sec.result, loc),))]
    else:
        blocks += _outline_blocks(sec, loc)
    blocks += [Paragraph(say(loc, "note", text=n.say(loc.lang) if hasattr(n, "say") else n), role="note") for n in sec.notes]
    return Details(say(loc, "derive", grad=Math(sec.gradient)), tuple(blocks), anchor(d.wrt), sec.result.rhs)


def derivation_steps(d: Derivation, loc: Locale) -> Steps:
    """Every step of ``d`` as one block (for a variable used more than once, the steps of each use,
    then the sum), down to ∂f/∂X = G: a derivation shown as one aligned formula."""
    lines = [ln for c in d.contributions for ln in step_lines(c.steps)] + step_lines(d.steps)
    if not lines:
        lines = [Line(Gradient(F, d.wrt), d.result, "read_off", True)]
    return Steps(_rows(lines, loc))


# --- a network ---------------------------------------------------------------------------------

# The summary also shows the gradients written in the inputs when they are short: each at most
# EXPANDED_SUMMARY_MAX_CHARS characters in tracegrad's notation (the seed's longest is 77); larger
# ones are not even printed (a deep network's expansion grows with every layer), and the summary
# says they are omitted.
EXPANDED_SUMMARY_MAX_CHARS = 100
EXPANDED_SUMMARY_MAX_NODES = 400


def _short(e: Basic) -> bool:
    from derive.render.printer import math_text

    return (size_exceeds(e, EXPANDED_SUMMARY_MAX_NODES) is None
            and len(math_text(e)) <= EXPANDED_SUMMARY_MAX_CHARS)


def show_expanded(bp: BackpropLike) -> bool:
    """Whether the summary adds the gradients in terms of the inputs (each short: at most
    :data:`EXPANDED_SUMMARY_MAX_CHARS` characters in the text notation)."""
    if any(expanded is None for _, _, expanded in bp.summary):   # too large to keep (derive.backprop)
        return False
    if all(staged == expanded for _, staged, expanded in bp.summary):
        return False
    return all(_short(e) for _, _, e in bp.summary)


def _with_contributions(derivations: Iterable[Derivation]) -> list[Derivation]:
    """The derivations, each followed by those of its uses (a variable used more than once)."""
    return [x for d in derivations for x in (*_with_contributions(d.contributions), d)]


def rules_used(derivations: Iterable[Derivation]) -> list[str]:
    """The rule keys the derivations name, in order of first use."""
    seen: dict[str, None] = {}
    for d in _with_contributions(derivations):
        for s in d.steps:
            seen.setdefault(s.rule, None)
    return list(seen)


def ones_matrices(exprs: Iterable[Basic]) -> tuple[list[Basic], bool]:
    """(lengths of the ones columns/rows, whether a full ones matrix occurs) in ``exprs``."""
    lengths: list[Basic] = []
    full = False
    for e in exprs:
        for o in sorted(e.atoms(OneMatrix), key=str):
            rows, cols = o.shape
            if cols == 1 or rows == 1:
                n = rows if cols == 1 else cols
                if n not in lengths:
                    lengths.append(n)
            else:
                full = True
    return lengths, full


def _problem(bp: BackpropLike, loc: Locale) -> Section:
    """The equations, every symbol's shape, what the ones matrices stand for, the task."""
    net = bp.network
    stages = tuple(net.stages)
    equations = Equations(tuple(EquationRow(s, e) for s, e in stages) + (EquationRow(F, net.loss, loss=True),))
    groups = tuple((say(loc, key), tuple(g)) for key, g in (
        ("kind_inputs", net.inputs), ("kind_params", net.params), ("kind_intermediates", [s for s, _ in stages]))
        if g)
    blocks: list[Block] = [equations, Shapes(groups, lead=say(loc, "shapes"))]
    exprs = [e for _, e in stages] + [net.loss]
    for d in _with_contributions(bp.sections):
        exprs += [d.result, *(s.rhs for s in d.steps)]
    columns, full = ones_matrices(exprs)
    notes = [say(loc, "ones_column", one=Math(OneMatrix(n, 1)), n=Math(n)) for n in columns]
    if full:
        notes.append(say(loc, "ones_matrix", one=Math(OneMatrix(2, 2))))
    if notes:
        blocks.append(Remarks(tuple(notes)))
    blocks.append(Paragraph(say(loc, "task", f=Math(F), params=MathList(tuple(net.params)))))
    return Section(say(loc, "problem"), tuple(blocks), "problem")


def gradient_table(summary: Sequence[tuple[MatrixSymbol, Basic, Basic]], loc: Locale,
                   expanded: bool = False) -> Table:
    """Each parameter's gradient (linking to its derivation), its shape and its expression, with
    the intermediates (or, ``expanded``, in terms of the inputs)."""
    head = tuple(say(loc, key) for key in ("gradient", "shape", "expression"))
    rows = tuple(TableRow(((Link(anchor(x), (Math(Gradient(F, x)),)),), (Shape(x.shape),),
                           (Math(full if expanded else staged),)))
                 for x, staged, full in summary)
    return Table(head, rows, "gradients")


def _summary(bp: BackpropLike, loc: Locale) -> Section:
    """The table of the parameters' gradients, then what the intermediates stand for and, for a small
    network, the gradients in terms of the inputs."""
    more: list[Block] = []
    if bp.network.stages:
        more.append(Paragraph(say(loc, "intermediates", defs=_definitions(loc, bp.network.stages))))
    if show_expanded(bp):
        more.append(Equations(tuple(EquationRow(Gradient(F, x), e) for x, _, e in bp.summary),
                              lead=say(loc, "expanded")))
    elif any(staged != expanded for _, staged, expanded in bp.summary):
        more.append(Paragraph(say(loc, "expanded_omitted", chars=str(EXPANDED_SUMMARY_MAX_CHARS))))
    blocks: list[Block] = [gradient_table(bp.summary, loc)]
    if more:
        blocks.append(Group(tuple(more)))
    return Section(say(loc, "summary"), tuple(blocks), "summary")


def rule_list(derivations: Sequence[Derivation], loc: Locale) -> RuleList | None:
    """The rules the derivations use, in order of first use, each with its law."""
    keys = [k for k in rules_used(derivations) if k in RULES]
    if not keys:
        return None
    return RuleList(say(loc, "rules"), tuple((loc.rule(k), Math(RULES[k].law)) for k in keys))


# --- the checks --------------------------------------------------------------------------------

# a grade's verdict as the table's status: "ok", "partial" (right under some reading), "bad"
_VERDICT_STATUS = {"correct": "ok", "correct-under-reading": "partial", "wrong": "bad", "shape-error": "bad"}
# the columns of the audit table (derive.render.latex and .html size them in this order)
_AUDIT_COLUMNS = ("equation", "message", "line", "kind", "step", "verdict")


def _audited(e: Any) -> bool:
    """The entries of the seed's grade the document shows: every result, and every line not plainly right."""
    return e.kind == "result" or e.verdict != "correct"


def audit_table(reports: Sequence[Any], lang: str = "en") -> Table:
    """The grade of the seed write-up (``derive.grading.Report``, one per language) as a table: the
    write-up's equation (its LaTeX, and in the tool's notation where TeX is not typeset), the message, line, kind, step, verdict (graded).  The one place
    that reads the grade's entries for a document.

    >>> from derive.grading import grade, seed_writeup
    >>> from derive.render.blocks import plain
    >>> t = audit_table([grade(seed_writeup())], "en")
    >>> [plain(h) for h in t.header], len(t.rows), t.rows[0].status
    (['equation', 'message', 'line', 'kind', 'step', 'verdict'], 19, '')
    """
    from derive.grading.names import notation

    report = next((r for r in reports if r.lang == lang), reports[0])
    loc = get_locale(report.lang)

    def word(key: str) -> str:
        return loc.say(f"grade_report_{key}")

    out = []
    for e in report.entries:
        if not _audited(e):
            continue
        message = e.message.split("; ")[0] if e.kind == "result" and e.verdict == "correct" else e.message
        cells = (Tex(e.latex, notation(e.latex)), Text(message), Text(str(e.line)), Text(word(e.kind)),
                 Text(str(e.step) if e.step else ""), Text(word(e.verdict)))
        out.append(TableRow(tuple((c,) for c in cells), _VERDICT_STATUS.get(e.verdict, "")))
    return Table(tuple((Text(word(c)),) for c in _AUDIT_COLUMNS), tuple(out), "audit")


def checks_section(checks: Any, loc: Locale) -> Section | None:
    """The checks (a :class:`derive.render.checks.Checks`): the gradient check, then the audit."""
    blocks: list[Block] = []
    if checks.gradient is not None:
        key, fields = checks.gradient.words(loc)
        blocks.append(Paragraph(say(loc, key, **fields)))
    if checks.audit:
        audit = (Paragraph(say(loc, "audit_intro")), audit_table(checks.audit, loc.lang))
        blocks.append(Section(say(loc, "audit"), audit, "audit"))
    return Section(say(loc, "checks"), tuple(blocks), "checks") if blocks else None


# --- documents -----------------------------------------------------------------------------------

def network_document(bp: BackpropLike, lang: str = "en", checks: Any = None) -> Document:
    """A network's whole derivation, laid out as the seed document; ``checks``
    (:func:`derive.render.checks.network_checks`) adds the gradient check and the audit."""
    loc = get_locale(lang)
    derivation = Section(say(loc, "derivation"),
                         (LossDisplay(bp.network.loss, lead=say(loc, "so")),
                          *(derivation_block(d, loc) for d in bp.sections)), "derivation")
    blocks: list[Block | None] = [_problem(bp, loc), derivation, _summary(bp, loc)]
    if checks is not None:
        blocks.append(checks_section(checks, loc))
    blocks.append(rule_list(bp.sections, loc))
    return Document(loc.say("title"), tuple(b for b in blocks if b is not None), lang)


def derivations_document(derivations: Sequence[Derivation], lang: str = "en", title: str | None = None) -> Document:
    """Several derivations (of any functions) as one document, with the rules they use.

    >>> import derive
    >>> from derive.render.blocks import plain
    >>> X = MatrixSymbol("X", 4, 3)
    >>> doc = derivations_document([derive.derivation(sympy.Trace(X.T * X), X)], "en", "f = tr(X'X)")
    >>> doc.title, [plain(b.title) for b in doc.blocks]
    ("f = tr(X'X)", ['Derivation', 'Rules used'])
    """
    loc = get_locale(lang)
    blocks: list[Block | None] = [Section(say(loc, "derivation"),
                                          tuple(derivation_block(d, loc) for d in derivations), "derivation"),
                                  rule_list(derivations, loc)]
    return Document(loc.say("title") if title is None else title, tuple(b for b in blocks if b is not None), lang)


def uses_tables(doc: Document) -> bool:
    """Whether ``doc`` holds an audit table (LaTeX loads ``longtable`` for it)."""
    return any(isinstance(b, Table) and b.style == "audit" for b in walk(doc.blocks))

