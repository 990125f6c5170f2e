"""Regenerate the committed copies of the seed derivation in docs/.

    python docs/make_docs.py            # writes seed-derivation.{en,zh}.{md,tex,pdf}

The Markdown renders on code hosting sites; the PDF is compiled from the .tex beside it
(pdflatex for English, xelatex with ctex for Chinese).  tests/test_docs.py fails when
the committed Markdown or LaTeX differ from what this script writes.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

LANGS = ("en", "zh")


def generated() -> dict[str, str]:
    """File name → content, for every text file this script writes."""
    import derive
    from derive.render.pdf import tex_document

    bp = derive.backprop(derive.seed_network())
    out = {}
    for lang in LANGS:
        out[f"seed-derivation.{lang}.md"] = bp.to_markdown(lang=lang)
        out[f"seed-derivation.{lang}.tex"] = tex_document(bp, lang=lang)
    return out


def main() -> None:
    import derive
    from derive.render.pdf import write_pdf

    os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")   # reproducible PDFs
    for name, text in generated().items():
        (DOCS / name).write_text(text, encoding="utf-8")
        print(f"wrote docs/{name}")
    bp = derive.backprop(derive.seed_network())
    for lang in LANGS:
        path = write_pdf(bp, DOCS / f"seed-derivation.{lang}.pdf", lang=lang)
        print(f"wrote docs/{path.name}")


if __name__ == "__main__":
    main()
