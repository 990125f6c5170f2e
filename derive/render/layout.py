r"""Long equations broken into lines, the same way in every output format.

An equation longer than the line is broken at the operators of its outermost sum or Hadamard
product (``+``, ``−``, ``⊙``), and only where there is none, between the factors of a matrix
product (never between a factor and a differential: ``X dW`` stays together).  Each
continuation line starts with its operator and is indented under the first operand of the
broken sum — in text exactly, in LaTeX and MathML by ``\qquad`` (one ``\quad`` more for each
deeper level).  A line that is still too long is broken again inside, at the next level.

The printers of :mod:`derive.render.printer` and :mod:`derive.render.mathml` write the
candidate breaks as markers (:data:`OPEN`, :data:`BREAK`, :data:`CLOSE`; comments in MathML)
when made with ``marks=True``.  The breaks are chosen once, by :func:`plan` on the marked unicode
text and its widths in terminal columns, and applied by their number to the LaTeX
(:func:`split_latex`) and the MathML (:func:`split_mathml`) of the same expression, which hold
the same markers in the same order.  ``width`` is in those columns; :data:`WIDTH` holds each
format's default.  Breaking never changes the mathematics: the lines joined are the unbroken
equation.  This module works on strings only (it imports nothing of tracegrad); the functions
that take an expression are :func:`derive.render.text.text_lines`,
:func:`derive.render.latex.latex_rows` and :func:`derive.render.mathml.mathml_rows`.

>>> s = OPEN["sum"] + "AB" + BREAK + " + BC" + BREAK + " + CA" + CLOSE
>>> [ln.text().strip() for ln in plan(s, width=10)]
['AB + BC', '+ CA']
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "BREAK",
    "CLOSE",
    "MARKS",
    "OPEN",
    "WIDTH",
    "break_levels",
    "longest_word",
    "plan",
    "split_latex",
    "split_mathml",
    "text_width",
    "unmark",
    "wrap_words",
]

# Line-break markers (private-use characters), written only by a printer made with ``marks=True``:
# OPEN[kind] before the first operand of a sum, a Hadamard product or a matrix product, BREAK
# before each further operand (before its operator), CLOSE after the last.  No output holds them.
OPEN = {"sum": "\ue000", "hadamard": "\ue001", "product": "\ue002"}
BREAK = "\ue003"
CLOSE = "\ue004"
MARKS = frozenset([*OPEN.values(), BREAK, CLOSE])
MATHML_MARKS = {"open:sum": OPEN["sum"], "open:hadamard": OPEN["hadamard"], "open:product": OPEN["product"],
                "break": BREAK, "close": CLOSE}
"""The MathML printer's marker comments ``<!--tg:open:sum-->`` … and the characters they stand for."""


def text_width(s: str) -> int:
    """Columns ``s`` takes in a terminal (CJK characters take two, combining marks none).

    >>> text_width("推导 ∂f/∂W2")
    11
    """
    if s.isascii():
        return len(s)
    return sum(map(_char_width, s))


@lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1

WIDTH = {"text": 100, "latex": 80, "markdown": 80, "html": 72}
"""Default break width of each format, in terminal columns of the unicode text of an equation.

text: the whole terminal line; latex (and so the PDF) and markdown: the row of an ``align*``
or ``aligned`` block, left-hand side included, on the 17 cm of an A4 page with 2 cm margins at
11 pt; html: the right-hand side, in the equation column of a step table at 1200 px."""

_KINDS = {v: k for k, v in OPEN.items()}
_RANK = {"sum": 0, "hadamard": 0, "product": 1}  # + and ⊙ are broken before products


@dataclass
class _Tok:
    kind: str  # "text", "open", "break" or "close"
    text: str = ""
    group: int = -1
    index: int = -1  # a break's place among all the breaks of the expression


def _tokens(marked: str) -> tuple[list[_Tok], dict[int, str], dict[int, int]]:
    """The tokens of a marked string, with each group's kind and depth (its enclosing groups)."""
    toks: list[_Tok] = []
    kinds: dict[int, str] = {}
    depth: dict[int, int] = {}
    stack: list[int] = []
    breaks = 0
    for piece in re.split(f"([{''.join(sorted(MARKS))}])", marked):
        if not piece:
            continue
        if piece in _KINDS:
            g = len(kinds)
            kinds[g], depth[g] = _KINDS[piece], len(stack)
            stack.append(g)
            toks.append(_Tok("open", group=g))
        elif piece == BREAK:
            toks.append(_Tok("break", group=stack[-1], index=breaks))
            breaks += 1
        elif piece == CLOSE:
            toks.append(_Tok("close", group=stack.pop()))
        else:
            toks.append(_Tok("text", piece))
    return toks, kinds, depth


@dataclass
class Line:
    """A line of a broken equation: its column and its tokens; ``first``: the equation's first line."""

    col: int
    toks: list[_Tok] = field(repr=False)
    first: bool = False

    def text(self, upto: int | None = None) -> str:
        s = "".join(t.text for t in self.toks[:upto] if t.kind == "text")
        return s if self.first else s.lstrip()

    @property
    def width(self) -> int:
        return text_width(self.text().rstrip())

    @property
    def starts_at(self) -> int:
        """The index of the break that starts this line (-1 for the first line)."""
        return -1 if self.first else self.toks[0].index


def plan(marked: str, width: int, start: int = 0, first_width: int | None = None) -> list[Line]:
    """The lines of the marked unicode text ``marked`` that starts at column ``start``.

    Every line ends before column ``width`` where the breaks allow it (the first before
    ``first_width``, when given).
    """
    toks, kinds, depth = _tokens(marked)
    group_col: dict[int, int] = {}
    done: list[Line] = []
    todo = [Line(start, toks, True)]
    while todo:
        line = todo.pop(0)
        prefix = ""
        for t in line.toks:
            if t.kind == "text":
                prefix += t.text
            elif t.kind == "open":
                group_col[t.group] = line.col + text_width(prefix if line.first else prefix.lstrip())
        limit = first_width if line.first and first_width is not None else width
        if line.col + line.width <= limit:
            done.append(line)
            continue
        parts = _split(line, limit, width, kinds, depth, group_col, start)
        if parts is None:
            done.append(line)
        else:
            todo[:0] = parts
    return done


def _split(line: Line, limit: int, width: int, kinds: dict[int, str], depth: dict[int, int],
           group_col: dict[int, int], start: int) -> list[Line] | None:
    """``line`` broken at the breaks of its outermost sum or ⊙ (else product), filled greedily."""
    cands = [i for i, t in enumerate(line.toks) if t.kind == "break" and line.text(i).strip()]
    if not cands:
        return None
    g = min((line.toks[i].group for i in cands),
            key=lambda g: (_RANK[kinds[g]], depth[g], [line.toks[i].group for i in cands].index(g)))
    cuts = [i for i in cands if line.toks[i].group == g]
    col = group_col.get(g, start + 4)
    if col > start + max(8, (width - start) // 2):
        col = start + 4  # the first operand is far right: indent the continuation from the left
    segments = [line.toks[:cuts[0]]] + [line.toks[a:b] for a, b in zip(cuts, cuts[1:])] + [line.toks[cuts[-1]:]]
    out: list[Line] = []
    cur = Line(line.col, segments[0], line.first)
    for seg in segments[1:]:
        trial = Line(cur.col, cur.toks + seg, cur.first)
        if trial.col + trial.width <= (limit if not out else width):
            cur = trial
        else:
            out.append(cur)
            cur = Line(col, seg)
    out.append(cur)
    return out if len(out) > 1 else None


def break_levels(marked: str, width: int, start: int = 0) -> dict[int, int]:
    """The breaks :func:`plan` chooses for the marked text: break number → indentation level
    (0, 1, … in the order of their columns)."""
    lines = plan(marked, width, start)
    cols = sorted({ln.col for ln in lines if not ln.first})
    return {ln.starts_at: cols.index(ln.col) for ln in lines if not ln.first}


# --- LaTeX -------------------------------------------------------------------------------------

_LEFT_RIGHT = re.compile(r"\\(left|right)(?![A-Za-z])\s*(\\[A-Za-z]+|\\.|.)")


def split_latex(marked: str, breaks: dict[int, int]) -> list[str]:
    r"""The marked LaTeX ``marked`` cut at ``breaks`` (:func:`break_levels`): the first row as it
    continues a row, the others beginning with their indentation (``\qquad {}``); each row's
    ``\left``/``\right`` pairs balanced (``\left.``, ``\right.``).  A break inside braces is not taken.

    >>> s = r"\operatorname{tr}\left(" + OPEN["sum"] + "A" + BREAK + " + B" + CLOSE + r"\right)"
    >>> split_latex(s, {0: 0})
    ['\\operatorname{tr}\\left(A\\right.', '\\qquad\\left. {} + B\\right)']
    """
    if not breaks:
        return [unmark(marked)]
    rows: list[str] = []
    row = ""
    lefts = 0  # \left delimiters open
    braces = 0
    index = 0
    pos = 0
    while pos < len(marked):
        ch = marked[pos]
        if ch == BREAK:
            if index in breaks and braces == 0:
                rows.append(row + r"\right." * lefts)
                row = r"\qquad" + r"\quad" * breaks[index] + r"\left." * lefts + " {}"
            index += 1
            pos += 1
            continue
        if ch in MARKS:
            pos += 1
            continue
        m = _LEFT_RIGHT.match(marked, pos)
        if m:
            lefts += 1 if m.group(1) == "left" else -1
            row += m.group(0)
            pos = m.end()
            continue
        if ch == "\\" and pos + 1 < len(marked):
            row += marked[pos:pos + 2]
            pos += 2
            continue
        braces += {"{": 1, "}": -1}.get(ch, 0)
        row += ch
        pos += 1
    rows.append(row)
    return [re.sub(r"\{\}\s+", "{} ", r.rstrip()) for r in rows]


def unmark(s: str) -> str:
    """``s`` without the break markers (of the text and LaTeX printers, and of MathML)."""
    return re.sub(r"<!--tg:[a-z:]+-->", "", "".join(ch for ch in s if ch not in MARKS))


# --- MathML ------------------------------------------------------------------------------------

_SCRIPTS = {"msup", "msub", "msubsup", "mover", "munder", "munderover"}
_SPLITTABLE = {"mrow", "mstyle", "mpadded", "mphantom"} | _SCRIPTS
_XML_TOKEN = re.compile(r"<!--tg:([a-z:]+)-->|(<[^>]*>)|([^<]+)")


def split_mathml(marked: str, breaks: dict[int, int]) -> list[str]:
    """The marked MathML ``marked`` (without ``<math>``) cut at ``breaks`` (:func:`break_levels`):
    each row well formed, the rows after the first beginning with their indentation (an
    ``<mspace>``).  A script's base broken across rows keeps the script on its last row, as
    ``(A + B)ᵀ`` does in text; a break inside a fraction or a root is not taken.

    >>> s = "<msup><mrow><mo>(</mo><mrow><!--tg:open:sum--><mi>A</mi><!--tg:break--><mo>+</mo><mi>B</mi>"
    >>> rows = split_mathml(s + "<!--tg:close--></mrow><mo>)</mo></mrow><mi>T</mi></msup>", {0: 0})
    >>> rows[0]
    '<mrow><mrow><mo>(</mo><mrow><mi>A</mi></mrow></mrow></mrow>'
    >>> rows[1]
    '<mspace width="2em"/><msup><mrow><mrow><mo form="infix">+</mo><mi>B</mi></mrow><mo>)</mo></mrow><mi>T</mi></msup>'
    """
    if not breaks:
        return [unmark(marked)]
    rows: list[list[str]] = [[]]
    stack: list[list] = []  # [name, open tag, its place in the current row, complete children]
    index = 0
    leading = False  # at the start of a continuation row
    for m in _XML_TOKEN.finditer(marked):
        mark, tag, text = m.groups()
        row = rows[-1]
        if mark is not None:
            if mark == "break":
                if index in breaks and all(e[0] in _SPLITTABLE and (e[0] not in _SCRIPTS or e[3] == 0)
                                           for e in stack):
                    for e in reversed(stack):
                        if e[0] in _SCRIPTS:  # the script stays with the rest of its base
                            row[e[2]] = "<mrow>"
                            row.append("</mrow>")
                        else:
                            row.append(f"</{e[0]}>")
                    row = [f'<mspace width="{2 + breaks[index]}em"/>']
                    rows.append(row)
                    for e in stack:
                        e[2] = len(row)
                        row.append(e[1])
                    leading = True
                index += 1
            continue
        if text is not None:
            row.append(text)
            continue
        if leading and tag == "<mo>":
            tag = '<mo form="infix">'  # + at the start of a line: spaced as the binary operator it is
        leading = False
        name = re.match(r"</?([A-Za-z0-9]+)", tag).group(1)
        if tag.startswith("</"):
            stack.pop()
            if stack:
                stack[-1][3] += 1
        elif tag.endswith("/>"):
            if stack:
                stack[-1][3] += 1
        else:
            stack.append([name, tag, len(row), 0])
        row.append(tag)
    return ["".join(r) for r in rows]


# --- prose -------------------------------------------------------------------------------------

_CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_CLOSING = "）〉》」』】，。、：；！？)"  # never at the start of a line: kept with the character before
_WORDS = re.compile(f"[{_CJK}][{_CLOSING}]*|[^\\s{_CJK}]+|\\s+")


def longest_word(text: str) -> int:
    """The width of the widest piece of ``text`` that :func:`wrap_words` keeps on one line.

    >>> longest_word("max rel. error"), longest_word("形状相容")
    (5, 2)
    """
    return max((text_width(w) for w in _WORDS.findall(text) if not w.isspace()), default=0)


def wrap_words(text: str, width: int, indent: str = "", first_indent: str | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken at spaces and between CJK characters.

    A word longer than a line is cut.

    >>> wrap_words("each formula under every reading", 16, indent="  ")
    ['  each formula', '  under every', '  reading']
    >>> wrap_words("原文的每个公式按其记号的每种解读", 10)
    ['原文的每个', '公式按其记', '号的每种解', '读']
    """
    first = indent if first_indent is None else first_indent
    lines: list[str] = []
    indent_width = text_width(indent)
    cur, cur_width = first, text_width(first)   # the line so far and its columns, kept as it grows
    cur_has_word = False
    for w in _WORDS.findall(text):
        if w.isspace():
            if cur_has_word:
                cur += " "
                cur_width += 1
            continue
        w_width = text_width(w)
        if cur_has_word and cur_width + w_width > width:
            lines.append(cur.rstrip())
            cur, cur_width, cur_has_word = indent, indent_width, False
        while cur_width + w_width > width and len(w) > 1 and not cur_has_word:
            cut, used = 1, cur_width + text_width(w[0])
            while cut < len(w) and used + text_width(w[cut]) <= width:
                used += text_width(w[cut])
                cut += 1
            lines.append(cur + w[:cut])
            w = w[cut:]
            w_width = text_width(w)
            cur, cur_width = indent, indent_width
        cur += w
        cur_width += w_width
        cur_has_word = True
    if cur_has_word or not lines:
        lines.append(cur.rstrip())
    return lines
