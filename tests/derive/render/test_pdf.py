"""PDF output: the seed derivation compiled by a real TeX engine, page 1 rasterised and looked at.

Skipped where the engine is missing, unless TRACEGRAD_REQUIRE_TEX=1 (CI), which makes it a failure.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from derive.render import latex_engine
from derive.render import pdf as pdf_mod
from derive.render.pdf import TexCompileError, TexNotFoundError, tex_document, write_pdf
from tests.derive.render.conftest import tex_engine
from tests.derive.render.images import read_png

PAGES: dict[str, int] = {}


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        import os

        missing = pytest.fail if os.environ.get("TRACEGRAD_REQUIRE_TEX") == "1" else pytest.skip
        missing(f"{tool} (poppler-utils) is not installed")
    return path


def page_count(pdf: Path) -> int:
    out = subprocess.run([_poppler("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def first_page_ink(pdf: Path, tmp_path: Path) -> float:
    """The fraction of dark pixels on page 1 at 50 dpi (pdftoppm -png -gray)."""
    stem = tmp_path / "page"
    subprocess.run([_poppler("pdftoppm"), "-png", "-gray", "-r", "50", "-f", "1", "-l", "1",
                    str(pdf), str(stem)], check=True, capture_output=True, timeout=60)
    (png,) = tmp_path.glob("page*.png")
    image = read_png(png)
    assert 350 < image.width < 500 and 500 < image.height < 700, (image.width, image.height)  # A4/letter
    return image.ink()


@pytest.mark.parametrize("lang, fontset", [("en", "auto"), ("zh", "auto"), ("zh", "noto")])
def test_seed_pdf(real_bp, lang, fontset, tmp_path) -> None:
    tex_engine(latex_engine(lang))
    if fontset == "noto" and not pdf_mod._has_font("Noto Serif CJK SC"):
        pytest.skip("fonts-noto-cjk is not installed")
    out = write_pdf(real_bp, tmp_path / "out" / "seed.pdf", lang=lang, fontset=fontset)
    assert out == tmp_path / "out" / "seed.pdf"
    assert out.read_bytes()[:5] == b"%PDF-"
    pages = page_count(out)
    PAGES[f"{lang}/{fontset}"] = pages
    print(f"seed.pdf ({lang}, {fontset}): {pages} pages")
    assert 3 <= pages <= 12
    ink = first_page_ink(out, tmp_path)
    assert 0.005 < ink < 0.5, f"page 1 looks blank or black: {ink:.3%} dark pixels"
    fonts = subprocess.run([_poppler("pdffonts"), str(out)], capture_output=True, text=True).stdout
    if lang == "zh":
        assert ("Fandol" if fontset == "auto" and pdf_mod.cjk_fontset() == "fandol" else "CJK") in fonts


def test_missing_engine_names_the_packages(real_bp, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pdf_mod.shutil, "which", lambda name: None)
    for lang, engine in (("en", "pdflatex"), ("zh", "xelatex")):
        with pytest.raises(TexNotFoundError) as e:
            write_pdf(real_bp, tmp_path / "x.pdf", lang=lang)
        msg = str(e.value)
        assert msg.startswith(f"{engine} not found; install the Debian packages")
        for pkg in ("texlive-latex-base", "texlive-latex-recommended", "texlive-xetex",
                    "texlive-lang-chinese", "fonts-noto-cjk"):
            assert pkg in msg
    assert not (tmp_path / "x.pdf").exists()


def test_missing_ctex(real_bp, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pdf_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(pdf_mod, "_kpsewhich", lambda name: None)
    with pytest.raises(TexNotFoundError, match=r"ctex .* not found; install the Debian packages"):
        write_pdf(real_bp, tmp_path / "x.pdf", lang="zh")


def test_compile_error_reports_the_tex_error(real_bp, tmp_path, monkeypatch) -> None:
    tex_engine("pdflatex")
    broken = "\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}"
    monkeypatch.setattr(pdf_mod, "tex_document", lambda bp, lang, fontset, checks=None: broken)
    with pytest.raises(TexCompileError, match=r"pdflatex failed: Undefined control sequence"):
        write_pdf(real_bp, tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_chinese_fontsets(hand_bp) -> None:
    fandol = tex_document(hand_bp, "zh", fontset="fandol")
    assert r"\documentclass[11pt,fontset=fandol]{ctexart}" in fandol
    noto = tex_document(hand_bp, "zh", fontset="noto")
    assert r"\documentclass[11pt,fontset=none]{ctexart}" in noto
    assert r"\setCJKmainfont{Noto Serif CJK SC}" in noto
    assert "ctexart" not in tex_document(hand_bp, "en")
    with pytest.raises(ValueError, match="unknown fontset"):
        tex_document(hand_bp, "zh", fontset="comic")
