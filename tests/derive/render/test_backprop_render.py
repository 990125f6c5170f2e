"""Rendering what derive.backprop produces (these tests wait for derive/backprop.py)."""
from __future__ import annotations

import pytest

from derive.render import backprop_latex, backprop_markdown, backprop_text, latex_engine

from .conftest import SECTION_ORDER, compile_tex
from .test_render import GRADIENTS_LATEX, W1_LATEX, W1_TEXT, _in_order


def test_sections_in_document_order(real_bp) -> None:
    assert [s.wrt.name for s in real_bp.sections] == SECTION_ORDER
    assert [p.name for p, _, _ in real_bp.summary] == ["W1", "b1", "W2", "b2"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex(real_bp, lang) -> None:
    tex = real_bp.to_latex(lang)
    assert tex == backprop_latex(real_bp, lang)
    word = "Derive" if lang == "en" else "推导"
    assert _in_order(tex, [r"\subsection*{%s $%s$}" % (word, g) for g in GRADIENTS_LATEX])
    assert W1_LATEX in tex
    assert "-Y + Y_{pred}" not in tex


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_markdown_and_text(real_bp, lang) -> None:
    md = real_bp.to_markdown(lang)
    assert md == backprop_markdown(real_bp, lang) and md.count("\n### ") == 8
    txt = real_bp.to_text(lang)
    assert txt == backprop_text(real_bp, lang)
    if lang == "en":
        assert str(real_bp) == txt
    assert W1_TEXT in txt
    assert ("综上所述" if lang == "zh" else "In summary") in txt


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_compiles(real_bp, lang, tmp_path) -> None:
    compile_tex(real_bp.to_latex(lang), latex_engine(lang), tmp_path)


def test_deeper_network_renders_and_compiles(tmp_path) -> None:
    import derive

    if not hasattr(derive.networks, "mlp"):
        pytest.skip("derive.networks.mlp does not exist yet")
    net = derive.networks.mlp([3, 4, 4, 2], activation=["tanh", "relu"], loss="softmax_cross_entropy",
                              weight_decay="lambda")
    bp = derive.backprop(net)
    txt = bp.to_text()
    for p, _, _ in bp.summary:
        assert f"∂f/∂{p.name}" in txt
    md = bp.to_markdown("zh")
    assert md.count("\n### ") == len(bp.sections)
    compile_tex(bp.to_latex("en"), "pdflatex", tmp_path)
