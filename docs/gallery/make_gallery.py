"""Regenerate the gallery: each program in docs/gallery/*.tg derived, in English and Chinese.

    python docs/gallery/make_gallery.py          # writes NAME.{en,zh}.{md,html,pdf} and README.md

Each ``NAME.tg`` is a program (``derive.program``) typed by hand; this script writes its staged
derivation as Markdown, HTML (MathML) and PDF in both languages, and the index ``README.md``.
tests/test_gallery.py fails when a committed Markdown or HTML file differs from what this script
writes, and checks every gradient against finite differences of a forward pass written in NumPy.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

GALLERY = Path(__file__).resolve().parent
sys.path.insert(0, str(GALLERY.parent.parent))

LANGS = ("en", "zh")


def programs() -> dict[str, str]:
    """Case name → program text, in the order of the index."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(GALLERY.glob("*.tg"), key=_order)}


ORDER = ("seed", "softmax_regression", "svm", "batchnorm", "layernorm", "dropout", "residual", "attention",
         "transformer", "rnn", "autoencoder", "word2vec")


def _order(path: Path) -> tuple[int, str]:
    return (ORDER.index(path.stem) if path.stem in ORDER else len(ORDER), path.stem)


def _title(text: str) -> str:
    """The program's first comment line, which says what it is."""
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def derivations() -> dict[str, object]:
    import derive

    return {name: derive.backprop(derive.program(text)) for name, text in programs().items()}


def generated(derived: dict[str, object] | None = None) -> dict[str, str]:
    """File name → content, for every text file this script writes."""
    from derive.render import backprop_markdown
    from derive.render.html import backprop_html

    derived = derivations() if derived is None else derived
    out: dict[str, str] = {}
    for name, bp in derived.items():
        for lang in LANGS:
            out[f"{name}.{lang}.md"] = backprop_markdown(bp, lang=lang)
            out[f"{name}.{lang}.html"] = backprop_html(bp, lang=lang)
    out["README.md"] = _index()
    return out


def _index() -> str:
    lines = ["# Gallery", "",
             "Each network is a program (`.tg`) typed by hand and derived by `tracegrad grad -f NAME.tg`,",
             "section by section; `python docs/gallery/make_gallery.py` writes every file here, and",
             "`tests/test_gallery.py` checks each gradient against central finite differences of a",
             "forward pass written by hand in NumPy.", "",
             "| network | program | English | 中文 |", "|---|---|---|---|"]
    for name, text in programs().items():
        en = f"[md]({name}.en.md) · [html]({name}.en.html) · [pdf]({name}.en.pdf)"
        zh = f"[md]({name}.zh.md) · [html]({name}.zh.html) · [pdf]({name}.zh.pdf)"
        lines.append(f"| {_title(text)} | [{name}.tg]({name}.tg) | {en} | {zh} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from derive.render.pdf import write_pdf

    os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")   # reproducible PDFs
    derived = derivations()
    for name, text in generated(derived).items():
        (GALLERY / name).write_text(text, encoding="utf-8")
        print(f"wrote docs/gallery/{name}")
    for name, bp in derived.items():
        for lang in LANGS:
            path = write_pdf(bp, GALLERY / f"{name}.{lang}.pdf", lang=lang)
            print(f"wrote docs/gallery/{path.name}")


if __name__ == "__main__":
    main()
