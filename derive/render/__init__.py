"""Rendering of derivations: LaTeX, PDF, HTML (MathML), Markdown and terminal text, in English or Chinese.

Renderers only read :class:`~derive.steps.Derivation` and ``Backprop`` objects.

>>> from derive.render import get_locale
>>> get_locale("zh").say("summary")
'综上所述'
"""
from __future__ import annotations

from derive.render.html import backprop_html
from derive.render.latex import backprop_latex, derivation_latex, latex_engine, section_latex
from derive.render.locale import LANGUAGES, Locale, get_locale
from derive.render.markdown import backprop_markdown, derivation_markdown
from derive.render.printer import TextPrinter, TracegradLatexPrinter, math_latex, math_text
from derive.render.pdf import write_pdf
from derive.render.text import backprop_text, derivation_text, gradient_table_text

__all__ = [
    "LANGUAGES",
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
    "get_locale",
    "gradient_table_text",
    "latex_engine",
    "math_latex",
    "math_text",
    "section_latex",
    "write_pdf",
]
