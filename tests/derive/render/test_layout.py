"""Long equations (derive.render.layout, derive.render.document.abbreviate).

Broken lines keep every term, in every format; the lines fit; names given to repeated
subexpressions, replaced by their definitions, give back the derivation's own lines; and the
README's ``tracegrad grad`` example fits the page of its PDF (TRACEGRAD_REQUIRE_TEX=1 makes a
missing TeX engine a failure).  Its web page at 1200 px is in test_html.py.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import sympy
from sympy import MatrixSymbol, OneMatrix, Trace

import derive
from derive.cli import main
from derive.render.outline import ABBREVIATION_NAMES, outline as section, substitute
from derive.render.latex import latex_rows
from derive.render.layout import MATHML_MARKS, wrap_words
from derive.render.mathml import TracegradMathMLPrinter, mathml_rows
from derive.render.printer import MARKS, TextPrinter, TracegradLatexPrinter, math_latex, math_text, text_width
from derive.render.text import table_text, text_lines
from tests.derive.render.conftest import compile_tex, tex_engine

README = ["grad", "norm2(Y - (sigmoid(X*W1 + b1)*W2 + b2))^2", "--wrt", "W1,b1",
          "--shape", "X=n,d", "Y=n,k", "W1=d,m", "b1=1,m", "W2=m,k", "b2=1,k"]
SHAPES = {"X": ("n", "d"), "Y": ("n", "k"), "W1": ("d", "m"), "b1": (1, "m"), "W2": ("m", "k"), "b2": (1, "k")}


def readme_derivations() -> list:
    from derive.parse import parse

    parsed = parse(README[1], SHAPES)
    return [derive.derivation(parsed.expr, parsed.symbols[w]) for w in ("W1", "b1")]


def _long_expressions() -> list[sympy.Basic]:
    """Every right-hand side of the README example's two derivations, written out in full."""
    return [s.rhs for d in readme_derivations() for s in d.steps]


LONG = _long_expressions()


def _squash(s: str) -> str:
    return "".join(s.split())


# --- every term is kept ---------------------------------------------------------------------------

@pytest.mark.parametrize("width", [30, 60, 100])
def test_broken_text_keeps_every_term_and_fits(width) -> None:
    broken = 0
    for e in LONG:
        lines = text_lines(e, width, start=7)
        assert _squash("".join(lines)) == _squash(math_text(e))
        # each line fits, except a single operand that no break can shorten (at 30 columns)
        assert all(7 * (i == 0) + text_width(ln) <= width for i, ln in enumerate(lines)) or width < 60
        broken += len(lines) > 1
    assert broken >= (10 if width < 100 else 1)


def _latex_joined(rows: list[str]) -> str:
    out = []
    for i, row in enumerate(rows):
        if i:
            row = re.sub(r"^\\qquad(\\quad)*(\\left\.)*\s*\{\}", "", row)
        out.append(re.sub(r"(\\right\.)+$", "", row))
    return _squash("".join(out))


@pytest.mark.parametrize("width", [40, 80])
def test_broken_latex_keeps_every_term_and_balances_each_row(width) -> None:
    for e in LONG:
        rows = latex_rows(e, width, start=5)
        assert _latex_joined(rows) == _squash(math_latex(e))
        for row in rows:
            assert len(re.findall(r"\\left(?![a-z])", row)) == len(re.findall(r"\\right(?![a-z])", row)), row
            depth = 0
            for ch in re.sub(r"\\[{}]", "", row):
                depth += {"{": 1, "}": -1}.get(ch, 0)
                assert depth >= 0, row
            assert depth == 0, row
        assert len(rows) > 1 or len(math_text(e)) < width - 5


def _leaves(xml: str) -> list[str]:
    root = ET.fromstring(f'<math xmlns="http://www.w3.org/1998/Math/MathML">{xml}</math>')
    return [el.text for el in root.iter() if el.tag.endswith(("}mi", "}mn", "}mo")) and el.text]


@pytest.mark.parametrize("width", [40, 72])
def test_broken_mathml_rows_are_well_formed_and_keep_every_term(width) -> None:
    for e in LONG:
        rows = mathml_rows(e, width)
        unbroken = TracegradMathMLPrinter().doprint(e)
        assert [leaf for r in rows for leaf in _leaves(r)] == _leaves(unbroken)
        for r in rows[1:]:
            assert r.startswith("<mspace ")


def test_the_three_printers_mark_the_same_breaks() -> None:
    """The breaks are chosen on the text and applied to LaTeX and MathML by their number."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from tests.derive.render.test_mathml import _generated_expressions, draw_expression

    generators = _generated_expressions()

    def kinds(s: str) -> list[str]:
        return [ch for ch in s if ch in MARKS]

    def mathml_kinds(s: str) -> list[str]:
        return [MATHML_MARKS[m] for m in re.findall(r"<!--tg:([a-z:]+)-->", s)]

    @settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data) -> None:
        text, e = draw_expression(data, generators)
        printers = [TextPrinter(), TracegradLatexPrinter(), TracegradMathMLPrinter()]
        for p in printers:
            p.marks = True
        marked = [p.doprint(e) for p in printers]
        if any(isinstance(a, sympy.Mul) and not isinstance(a, sympy.MatrixExpr)
               and sum(1 for f in a.args if f.has(sympy.MatrixExpr)) > 1 for a in sympy.preorder_traversal(e)):
            return  # products of several traces: the printers may order the factors differently
        assert kinds(marked[0]) == kinds(marked[1]) == mathml_kinds(marked[2]), text
        # unmarked, the printers write what they always wrote
        assert "".join(ch for ch in marked[0] if ch not in MARKS) == math_text(e)

    check()


# --- names for repeated subexpressions ----------------------------------------------------------

def _restore(e: sympy.Basic, abbreviations) -> sympy.Basic:
    for s, definition in reversed(abbreviations):
        e = substitute(e, {s: definition})  # as xreplace, but without combining terms
    return e


def test_abbreviations_give_back_the_derivation() -> None:
    for d in readme_derivations():
        sec = section(d)
        names = [s.name for s, _ in sec.abbreviations]
        assert names == ["Z", "R"]
        assert [math_text(e) for _, e in sec.abbreviations] == ["XW1 + 𝟏ₙb1", "Y - σ(Z)W2 - 𝟏ₙb2"]
        used = {s.name for s in d.function.atoms(MatrixSymbol)}
        assert not used & set(names) and set(names) <= set(ABBREVIATION_NAMES)
        lines = [*sec.lead, *sec.body, sec.result]
        full = section(d, abbreviate_over=10**9)
        assert [_restore(ln.rhs, sec.abbreviations) for ln in lines] == \
               [ln.rhs for ln in (*full.lead, *full.body, full.result)]
        assert max(len(math_text(ln.rhs)) for ln in lines) <= 82 < max(len(math_text(e)) for e in LONG)
        assert [ln.rule for ln in lines] == [ln.rule for ln in (*full.lead, *full.body, full.result)]


def test_short_sections_are_written_in_full(real_bp) -> None:
    assert all(section(d).abbreviations == () for d in real_bp.sections)
    net = derive.networks.mlp([3, 5, 4, 2], activation="tanh", loss="softmax_cross_entropy")
    assert all(section(d).abbreviations == () for d in derive.backprop(net).sections)


def test_a_name_the_derivation_uses_is_not_given() -> None:
    # the README's network with its weights called Z and R
    from derive.parse import parse

    parsed = parse("norm2(Y - (sigmoid(X*Z + b1)*R + b2))^2",
                   {**SHAPES, "Z": ("d", "m"), "R": ("m", "k")})
    sec = section(derive.derivation(parsed.expr, parsed.symbols["Z"]))
    names = [s.name for s, _ in sec.abbreviations]
    assert names and not {"Z", "R"} & set(names)


def test_every_format_states_the_names() -> None:
    from derive.render.html import derivation_html
    from derive.render.latex import section_latex
    from derive.render.markdown import derivation_markdown
    from derive.render.text import derivation_text

    d = readme_derivations()[0]
    assert "For short, write Z = XW1 + 𝟏ₙb1, R = Y - σ(Z)W2 - 𝟏ₙb2." in derivation_text(d)
    assert "为简洁，记 Z = XW1 + 𝟏ₙb1，R = Y - σ(Z)W2 - 𝟏ₙb2。" in derivation_text(d, "zh")
    assert "For short, write $Z = XW_1 + \\mathbf{1}_{n}b_1$" in derivation_markdown(d)
    assert "For short, write $Z = XW_1 + \\mathbf{1}_{n}b_1$" in section_latex(d)
    assert "For short, write <math" in derivation_html(d)


# --- the README's example ----------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_readme_example_in_the_terminal_fits_100_columns(capsys, lang) -> None:
    assert main([*README, "--lang", lang]) == 0
    out = capsys.readouterr().out
    assert max(text_width(line) for line in out.splitlines()) <= 100
    assert "Z = XW1 + 𝟏ₙb1" in out and "⊙ (𝟏 - σ(Z))" in out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_readme_example_pdf_has_no_overfull_line(lang, tmp_path) -> None:
    from derive.render.latex import latex_engine
    from derive.render.pdf import with_fontset

    engine = latex_engine(lang)
    tex_engine(engine)
    assert main([*README, "--lang", lang, "-o", str(tmp_path / "out.tex")]) == 0
    tex = (tmp_path / "out.tex").read_text(encoding="utf-8")
    compile_tex(with_fontset(tex, lang), engine, tmp_path)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    too_wide = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(too_wide, default=0.0) <= 3.0, too_wide
    assert r"\qquad" in tex  # some equations do continue on a second row


def test_wrap_words() -> None:
    assert wrap_words("each formula under every reading", 16, indent="  ") == \
        ["  each formula", "  under every", "  reading"]
    assert wrap_words("按原文（f 视为 Ypred 的函数）", 14) == ["按原文（f 视为", "Ypred 的函数）"]
    assert all(text_width(ln) <= 10 for ln in wrap_words("averyveryverylongword and more", 10))


@pytest.mark.parametrize("width", [72, 100])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_table_text_fits(width, lang) -> None:
    from derive.grading import grade, seed_writeup
    from derive.render.blocks import Tex, plain
    from derive.render.document import audit_table

    table = audit_table([grade(seed_writeup(), lang=lang)], lang)
    head = [plain(h) for h in table.header]
    cells = [[c[0].text if isinstance(c[0], Tex) else plain(c) for c in row.cells] for row in table.rows]
    table = table_text(head, cells, width)
    assert max(text_width(line) for line in table.splitlines()) <= width
    # every character of every cell is there, and nothing else
    assert Counter(_squash(table.replace("─", ""))) == Counter(_squash("".join(head + [c for row in cells for c in row])))


def test_a_sum_of_traces_breaks_between_the_traces() -> None:
    A, B = MatrixSymbol("A", 4, 3), MatrixSymbol("B", 3, 4)
    e = Trace(A * B * A * B) - Trace(B * OneMatrix(4, 1) * OneMatrix(1, 4) * A)
    assert text_lines(e, width=12) == ["tr(ABAB)", "- tr(B𝟏A)"]


def _deep_network():
    # held out: another network, deeper, another loss, weight decay (a long f)
    return derive.networks.mlp([8, 16, 16, 16, 4], activation="tanh", loss="softmax_cross_entropy",
                               weight_decay=0.01)


def test_a_deep_network_fits_100_columns() -> None:
    from derive.render.text import backprop_text

    for lang in ("en", "zh"):
        text = backprop_text(derive.backprop(_deep_network()), lang)
        assert max(text_width(line) for line in text.splitlines()) <= 100


def test_a_deep_network_pdf_has_no_overfull_line(tmp_path) -> None:
    from derive.render.latex import backprop_latex

    tex_engine("pdflatex")
    compile_tex(backprop_latex(derive.backprop(_deep_network())), "pdflatex", tmp_path)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    too_wide = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(too_wide, default=0.0) <= 3.0, too_wide
