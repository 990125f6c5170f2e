"""Rendering the seed document's derivation (written by hand as Step data) in every format and language."""
from __future__ import annotations

import re

import pytest

from derive.render import (
    backprop_latex, backprop_markdown, backprop_text, derivation_latex, derivation_markdown,
    derivation_text, latex_engine,
)
from derive.render.latex import latex_escape
from derive.steps import F, Derivation, Gradient, Step

from .conftest import SECTION_ORDER, compile_tex, hand_backprop

W1_LATEX = r"2X^T\left[\left((Y_{pred} - Y)W_2^T\right) \odot \sigma(h) \odot (\mathbf{1} - \sigma(h))\right]"
W1_TEXT = "2Xᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]"
GRADIENTS_LATEX = [r"\frac{\partial f}{\partial %s}" % s for s in
                   ("Y", "Y_{pred}", "W_2", "b_2", "H", "h", "W_1", "b_1")]


def _section(bp, name: str) -> Derivation:
    return next(s for s in bp.sections if s.wrt.name == name)


# --- one derivation ---------------------------------------------------------------------------

def test_derivation_latex_is_an_aligned_block_with_rules(hand_bp) -> None:
    tex = derivation_latex(_section(hand_bp, "Ypred"))
    assert tex.startswith(r"\begin{align*}") and tex.endswith(r"\end{align*}")
    rows = tex.splitlines()[1:-1]
    assert rows[1].startswith(r"\mathrm{d}f &= ")
    assert all(r"\tag*{" in r for r in rows)
    assert (r" &= \operatorname{tr}\left(2(Y_{pred} - Y)^T\,\mathrm{d}Y_{pred}\right)"
            r" \tag*{\small collect terms}") in tex
    assert rows[-1] == (r"\Rightarrow \frac{\partial f}{\partial Y_{pred}} &= 2(Y_{pred} - Y)"
                        r" \tag*{\small read off the gradient}")
    # continuation lines leave the left-hand side out
    assert sum(r.startswith(" &= ") for r in rows) == len(rows) - 3


def test_derivation_latex_inline_and_repr(hand_bp) -> None:
    d = _section(hand_bp, "W1")
    tex = derivation_latex(d, inline=True)
    assert tex.startswith(r"\begin{aligned}") and r"&& \text{chain rule}" in tex
    assert W1_LATEX in tex
    assert d._repr_latex_() == "$\\displaystyle " + tex + "$"
    assert d.to_latex("zh").count(r"\tag*{") == len(d.steps)
    assert "链式法则" in d.to_latex("zh")


def test_derivation_markdown(hand_bp) -> None:
    md = derivation_markdown(_section(hand_bp, "W2"), "zh")
    lines = md.splitlines()
    assert lines[0] == r"推导 $\frac{\partial f}{\partial W_2}$"
    assert lines[2].startswith(r"由 $\frac{\partial f}{\partial Y_{pred}} = 2(Y_{pred} - Y)$，其中 $Y_{pred} = ")
    assert md.count("$$") == 4  # the step block and the result
    assert r"得到 $\frac{\partial f}{\partial W_2}$，" in md
    assert r"\Rightarrow \frac{\partial f}{\partial W_2} = 2H^T(Y_{pred} - Y)" in md
    assert _section(hand_bp, "W2")._repr_markdown_() == derivation_markdown(_section(hand_bp, "W2"), "en")


def test_derivation_text_aligns_equals_and_rules(hand_bp) -> None:
    txt = derivation_text(_section(hand_bp, "H"))
    lines = txt.splitlines()
    assert lines[0] == "Derive ∂f/∂H"
    assert lines[1] == "  From ∂f/∂Ypred = 2(Ypred - Y), where Ypred = HW2 + 𝟏ₙb2:"
    block = lines[2:]
    assert block[0].startswith("  df = tr(")
    assert all(l.startswith("     = ") for l in block[1:-1])
    assert block[-1].startswith("  ⇒ ∂f/∂H = 2(Ypred - Y)W2ᵀ")
    assert len({l.index("[") for l in block}) == 1, "rule names start in one column"
    assert str(_section(hand_bp, "H")) == txt


def test_derivation_without_read_off_step_shows_its_result() -> None:
    from sympy import MatrixSymbol

    Y = MatrixSymbol("Y", 3, 2)
    d = Derivation(F, Y, (), 2 * Y)
    assert derivation_latex(d).splitlines()[1].startswith(r"\Rightarrow \frac{\partial f}{\partial Y} &= 2Y")
    assert "⇒ ∂f/∂Y = 2Y" in derivation_text(d)


def test_notes_are_escaped_for_latex() -> None:
    from sympy import MatrixSymbol

    Y = MatrixSymbol("Y", 3, 2)
    d = Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y, notes=("50% of Aᵀ_x & more",))
    from derive.render.latex import section_latex

    assert r"Note: 50\% of A$^T$\_x \& more" in section_latex(d)
    assert "Note: 50% of Aᵀ_x & more" in derivation_text(d)


def test_latex_escape() -> None:
    assert latex_escape(r"a_b {c} $d$ #1 ~ ^") == r"a\_b \{c\} \$d\$ \#1 \~{} \^{}"
    assert latex_escape("中文", unicode_ok=False) == "??"
    assert latex_escape("中文", unicode_ok=True) == "中文"


# --- the whole document ---------------------------------------------------------------------

def _in_order(text: str, needles: list[str]) -> bool:
    pos = -1
    for s in needles:
        pos = text.find(s, pos + 1)
        if pos < 0:
            return False
    return True


@pytest.mark.parametrize("lang, derive_word, summary, cls", [
    ("en", "Derive", "In summary", r"\documentclass[11pt]{article}"),
    ("zh", "推导", "综上所述", r"\documentclass[11pt]{ctexart}"),
])
def test_latex_document_structure(hand_bp, lang, derive_word, summary, cls) -> None:
    tex = backprop_latex(hand_bp, lang)
    assert cls in tex and r"\usepackage{amsmath,amssymb,bm}" in tex
    assert f"% !TEX program = {latex_engine(lang)}" in tex.splitlines()[0]
    headings = [r"\subsection*{%s $%s$}" % (derive_word, g) for g in GRADIENTS_LATEX]
    assert _in_order(tex, headings + [r"\section*{%s}" % summary])
    assert tex.count(r"\subsection*{") == 8
    assert W1_LATEX in tex and r"\odot" in tex and r"\mathrm{d}" in tex
    assert "Y_{pred} - Y" in tex and "-Y + Y_{pred}" not in tex
    assert r"f &= \|Y - Y_{pred}\|_F^2" in tex
    # every symbol's shape once, in the problem statement
    assert tex.count(r"W_1 \in \mathbb{R}^{d \times m}") == 1
    assert tex.rstrip().endswith(r"\end{document}")
    if lang == "zh":
        for word in ("问题描述", "推导过程", "方程两边取微分得到", "得到", "由 $", "给出变量"):
            assert word in tex
    else:
        assert not re.search(r"[^\x00-\x7f]", tex), "pdflatex input is ASCII"


def test_latex_summary_table(hand_bp) -> None:
    tex = backprop_latex(hand_bp, "en")
    summary = tex[tex.index(r"\section*{In summary}"):]
    table = summary[summary.index(r"\begin{tabular}"):summary.index(r"\end{tabular}")]
    rows = [r for r in table.splitlines() if r.startswith("$")]
    assert [r.split(" & ")[:2] for r in rows] == [
        [r"$\frac{\partial f}{\partial W_1}$", r"$d \times m$"],
        [r"$\frac{\partial f}{\partial b_1}$", r"$1 \times m$"],
        [r"$\frac{\partial f}{\partial W_2}$", r"$m \times k$"],
        [r"$\frac{\partial f}{\partial b_2}$", r"$1 \times k$"],
    ]
    assert "$" + W1_LATEX + "$" in rows[0]
    assert r"\sigma(XW_1 + \mathbf{1}_{n}b_1)" in summary  # expanded in the inputs


def test_latex_fragment_without_preamble(hand_bp) -> None:
    tex = backprop_latex(hand_bp, "en", standalone=False)
    assert r"\documentclass" not in tex and r"\begin{document}" not in tex
    assert tex.startswith(r"\section*{Problem statement}")


@pytest.mark.parametrize("lang, words", [
    ("en", ["# Derivative expressions", "## Problem statement", "## Derivation", "## In summary"]),
    ("zh", ["# 导数表达式", "## 问题描述", "## 推导过程", "## 综上所述"]),
])
def test_markdown_document(hand_bp, lang, words) -> None:
    md = backprop_markdown(hand_bp, lang)
    assert _in_order(md, words)
    assert md.count("\n### ") == 8
    derive_word = "Derive" if lang == "en" else "推导"
    assert _in_order(md, ["### %s $%s$" % (derive_word, g) for g in GRADIENTS_LATEX])
    assert md.count("$$") % 2 == 0
    assert "| $\\frac{\\partial f}{\\partial W_1}$ | $d \\times m$ | $" + W1_LATEX + "$ |" in md
    # display math sits on lines of its own
    for block in re.findall(r"\$\$\n(.*?)\n\$\$", md, re.S):
        assert "$$" not in block


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_text_document(hand_bp, lang) -> None:
    txt = backprop_text(hand_bp, lang)
    derive_word = "Derive" if lang == "en" else "推导"
    assert _in_order(txt, [f"\n{derive_word} ∂f/∂{s}\n" for s in SECTION_ORDER])
    summary = "In summary" if lang == "en" else "综上所述"
    table = txt[txt.index(summary):]
    rows = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()[2:7]]
    assert rows == [
        ["Gradient", "Shape", "Expression"] if lang == "en" else ["导数", "维度", "表达式"],
        ["∂f/∂W1", "d×m", W1_TEXT],
        ["∂f/∂b1", "1×m", "2𝟏ₙᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]"],
        ["∂f/∂W2", "m×k", "2Hᵀ(Ypred - Y)"],
        ["∂f/∂b2", "1×k", "2𝟏ₙᵀ(Ypred - Y)"],
    ]
    assert "-Y + Ypred" not in txt


def test_full_bias_shapes() -> None:
    txt = backprop_text(hand_backprop("full"))
    assert "b1: n×m" in txt and re.search(r"∂f/∂b1 +n×m +2\[", txt)




# --- compiling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_document_compiles(hand_bp, lang, tmp_path) -> None:
    pdf = compile_tex(backprop_latex(hand_bp, lang), latex_engine(lang), tmp_path)
    assert pdf.stat().st_size > 1000
