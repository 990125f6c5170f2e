"""Rendering of derivations: LaTeX, PDF, HTML (MathML), Markdown and terminal text, in English or Chinese.

A document is built once, as format-neutral blocks (:mod:`derive.render.document`, the model in
:mod:`derive.render.blocks`), from :class:`~derive.steps.Derivation` and ``Backprop`` objects;
each format is a writer of blocks (:func:`write`).  Importing this package registers the display
functions of those objects (``str``, ``to_latex``, Jupyter's, see :mod:`derive.display`).

>>> from derive.render import get_locale
>>> get_locale("zh").say("summary")
'综上所述'
"""
from __future__ import annotations

from derive.display import register as _register
from derive.render.blocks import Document
from derive.render.document import derivations_document, network_document
from derive.render.html import backprop_html, write_html
from derive.render.latex import (
    backprop_latex, derivation_latex, latex_engine, section_latex, write_latex,
)
from derive.render.locale import LANGUAGES, Locale, get_locale
from derive.render.markdown import backprop_markdown, derivation_markdown, write_markdown
from derive.render.printer import TextPrinter, TracegradLatexPrinter, math_latex, math_text
from derive.render.pdf import write_pdf
from derive.render.text import backprop_text, derivation_text, gradient_table_text, step_text, write_text

__all__ = [
    "FORMATS",
    "LANGUAGES",
    "Document",
    "Locale",
    "TextPrinter",
    "TracegradLatexPrinter",
    "backprop_html",
    "backprop_latex",
    "backprop_markdown",
    "backprop_text",
    "derivation_latex",
    "derivation_markdown",
    "derivation_text",
    "derivations_document",
    "get_locale",
    "gradient_table_text",
    "latex_engine",
    "math_latex",
    "math_text",
    "network_document",
    "section_latex",
    "write",
    "write_pdf",
]

FORMATS = {"text": write_text, "markdown": write_markdown, "latex": write_latex, "html": write_html}
"""Each text format and its writer (the PDF is the LaTeX, compiled: :func:`write_pdf`)."""


def write(doc: Document, fmt: str) -> str:
    """``doc`` in the format ``fmt`` (text, markdown, latex or html).

    >>> import derive
    >>> doc = derivations_document([derive.derivation(derive.frobenius_sq(derive.seed_network().W1),
    ...                                                derive.seed_network().W1)], "en", "f = ‖W1‖²")
    >>> write(doc, "markdown").splitlines()[0]
    '# f = ‖W1‖²'
    """
    try:
        writer = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}") from None
    return writer(doc)


# the display functions of the data classes (derive.display): registered by name, so that this
# package imports neither derive.backprop nor what it imports
_register("derive.steps.Step", "text", step_text)
_register("derive.steps.Derivation", "text", derivation_text)
_register("derive.steps.Derivation", "markdown", derivation_markdown)
_register("derive.steps.Derivation", "latex", derivation_latex)
_register("derive.steps.Derivation", "latex_inline",
                  lambda d, lang="en": "$\\displaystyle " + derivation_latex(d, lang, inline=True) + "$")
_register("derive.backprop.Backprop", "text", backprop_text)
_register("derive.backprop.Backprop", "markdown", backprop_markdown)
_register("derive.backprop.Backprop", "latex", backprop_latex)
