"""Writers of a :class:`~derive.grading.grade.Report`: text (default), Markdown, HTML (the write-up's
own equations beside the verdicts) and JSON.  They only read the entries.

>>> from derive.grading.grade import Entry, Report
>>> r = Report("w.md", (Entry(3, 0, "x = 1", "definition", "correct", (), "defines x"),))
>>> print(write(r, "json"))
[
  {
    "line": 3,
    "step": 0,
    "latex": "x = 1",
    "kind": "definition",
    "verdict": "correct",
    "readings": [],
    "message": "defines x"
  }
]
"""
from __future__ import annotations

import html
import json
from collections.abc import Callable

from derive.grading.grade import VERDICTS, Entry, Report
from derive.render.locale import get_locale

__all__ = ["FORMATS", "write"]

def _w(lang: str, key: str, **kw: str) -> str:
    """The words ``grade_report_<key>`` of :mod:`derive.render.locale` in ``lang``."""
    return get_locale(lang).say(f"grade_report_{key}", **kw)


def _summary(r: Report) -> str:
    counts = r.counts()
    sep = get_locale(r.lang).say("grade_list_sep")
    parts = sep.join(f"{counts[v]} {_w(r.lang, v)}" for v in VERDICTS if counts[v])
    return _w(r.lang, "summary", total=str(len(r.entries)), counts=parts)


def _head(r: Report) -> list[str]:
    return [_w(r.lang, "title", source=r.source or "-"), _w(r.lang, "network", network=r.network), _summary(r)]


def text(r: Report) -> str:
    """One paragraph per entry: where, what, the verdict, why, then the readings tried."""
    lines = [*_head(r), ""]
    for e in r.entries:
        where = f"{_w(r.lang, 'line')} {e.line}" + (f" · {_w(r.lang, 'step')} {e.step}" if e.step else "")
        lines.append(f"{where} · {_w(r.lang, e.kind)} · {_w(r.lang, e.verdict)}")
        lines.append(f"    {e.latex}")
        if e.message:
            lines.append(f"    {e.message}")
        if e.verdict != "correct":
            lines += [f"      - {x.label}: {_w(r.lang, x.verdict)}" for x in e.readings]
    return "\n".join(lines) + "\n"


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(r: Report) -> str:
    """A table: line, step, kind, verdict, the equation (as math), the message."""
    cols = ("line", "step", "kind", "verdict", "equation", "message")
    out = [f"# {_head(r)[0]}", "", _head(r)[1], "", _head(r)[2], "",
           "| " + " | ".join(_w(r.lang, c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for e in r.entries:
        out.append(f"| {e.line} | {e.step} | {_w(r.lang, e.kind)} | **{_w(r.lang, e.verdict)}** | "
                   f"${_cell(e.latex)}$ | {_cell(_details(e, r.lang))} |")
    return "\n".join(out) + "\n"


def _details(e: Entry, lang: str) -> str:
    more = "; ".join(f"{x.label}: {_w(lang, x.verdict)}" for x in e.readings) if e.verdict != "correct" else ""
    return e.message + (f" — {more}" if more else "")


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}
code{white-space:pre-wrap}.correct{background:#e8f6e8}.correct-under-reading{background:#fff6d6}
.wrong,.shape-error{background:#fde2e2}.uncheckable{background:#eee}"""


def _equation(e: Entry) -> str:
    """The entry's equation as MathML, or its LaTeX source where it does not read."""
    if e.math:
        from derive.render.mathml import equation_mathml, math_mathml

        try:
            return equation_mathml(*e.math) if len(e.math) == 2 else math_mathml(e.math[0])
        except (TypeError, ValueError, AttributeError, NotImplementedError):   # the printer cannot: the source
            pass
    return f"<code>{html.escape(e.latex)}</code>"


def html_page(r: Report, fragment: bool = False) -> str:
    """A self-contained page: the write-up's own equations (MathML, or the LaTeX source of a line that
    does not read) beside the verdicts; ``fragment``: the page's body only (no style)."""
    esc = html.escape
    rows = []
    for e in r.entries:
        readings = "".join(f"<li>{esc(x.label)}: {esc(_w(r.lang, x.verdict))}</li>" for x in e.readings)
        rows.append(f'<tr class="{e.verdict}"><td>{e.line}</td><td>{e.step}</td><td>{esc(_w(r.lang, e.kind))}</td>'
                    f'<td title="{esc(e.latex)}">{_equation(e)}</td><td><b>{esc(_w(r.lang, e.verdict))}</b></td>'
                    f"<td>{esc(e.message)}{'<ul>' + readings + '</ul>' if readings else ''}</td></tr>")
    head = "".join(f"<th>{esc(_w(r.lang, c))}</th>" for c in ("line", "step", "kind", "equation", "verdict", "message"))
    title = esc(_head(r)[0])
    if fragment:
        return (f"<h2>{title}</h2><p>{esc(_head(r)[1])}</p><p>{esc(_head(r)[2])}</p>"
                f'<table class="grade"><tr>{head}</tr>\n' + "\n".join(rows) + "\n</table>\n")
    return (f'<!DOCTYPE html>\n<html lang="{r.lang}"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_CSS}</style></head><body><h1>{title}</h1><p>{esc(_head(r)[1])}</p><p>{esc(_head(r)[2])}</p>"
            f"<table><tr>{head}</tr>\n" + "\n".join(rows) + "\n</table></body></html>\n")


def as_json(r: Report) -> str:
    """The entries as a JSON list (line, step, latex, kind, verdict, readings, message)."""
    return json.dumps([e.as_dict() for e in r.entries], ensure_ascii=False, indent=2)


FORMATS: dict[str, Callable[[Report], str]] = {"text": text, "markdown": markdown, "html": html_page, "json": as_json}


def write(r: Report, fmt: str = "text") -> str:
    """The report in ``fmt`` (text, markdown, html or json)."""
    return FORMATS[fmt](r)
