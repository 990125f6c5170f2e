"""The equations of a write-up (Markdown with ``$$ … $$``, ``\\[ … \\]``, ``\\begin{aligned}`` and inline
``$…$`` math, or a LaTeX file), each with its 1-based source line, grouped into chains.

A display block ``df &= A \\\\ &= B`` is one chain with terms df, A, B; a block that starts with
``=`` continues the chain of the block before it (``$$f = ‖…‖$$`` then ``$$= tr[…]$$``).  A leading
``\\Rightarrow`` (⇒, ``\\implies``) or prose (``\\text{由 }``) is removed and remembered.

>>> groups = equations("$$df = A \\\\\\\\ = B$$\\n\\ntext $x = 1$\\n")
>>> [(g.line, [t.latex for t in g.terms]) for g in groups]
[(1, ['df', 'A', 'B']), (3, ['x', '1'])]
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Group", "Term", "equations"]

_DISPLAY = re.compile(
    r"\$\$(?P<dollars>.+?)\$\$"
    r"|\\\[(?P<brackets>.+?)\\\]"
    r"|\\begin\{(?P<env>equation\*?|align\*?|aligned|gather\*?|eqnarray\*?)\}(?P<body>.+?)\\end\{(?P=env)\}"
    r"|(?<![\\$])\$(?P<inline>[^$\n]+?)\$(?!\$)", re.S)
_WRAPPERS = re.compile(r"\\(?:begin|end)\{(?:aligned|align\*?|split|gathered|equation\*?|array)\}(?:\{[^}]*\})?")
_ARROW = re.compile(r"^\s*(?:\\Rightarrow|\\implies|\\Longrightarrow|⇒|=>)\s*")
_PROSE = re.compile(r"^\s*\\text\{[^}]*\}\s*")
_COMMENT = re.compile(r"(?<!\\)%[^\n]*")


@dataclass(frozen=True)
class Term:
    """One side of an equality: its LaTeX and the 1-based line it is on."""

    latex: str
    line: int


@dataclass(frozen=True)
class Group:
    """Terms joined by ``=``: two for a lone equation, more for a chain.  ``inline`` for ``$…$``;
    ``arrow`` when the equation follows ⇒ (a result)."""

    terms: tuple[Term, ...]
    line: int
    inline: bool = False
    arrow: bool = False
    prose: str = ""

    @property
    def chain(self) -> bool:
        return len(self.terms) > 2


def _top_level_split(text: str, sep: str) -> list[tuple[str, int]]:
    """``text`` split at ``sep`` outside brackets, with each part's offset."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            if text.startswith(sep, i) and sep.startswith("\\") and depth == 0:
                parts.append((text[start:i], start))
                i += len(sep)
                start = i
                continue
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth <= 0 and text.startswith(sep, i) and not text.startswith("==", i) \
                and not (sep == "=" and i > 0 and text[i - 1] in "<>!:"):
            parts.append((text[start:i], start))
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append((text[start:], start))
    return parts


def equations(text: str) -> list[Group]:
    """Every equation of a write-up, in order, chains continued across blocks."""
    text = _COMMENT.sub(lambda m: " " * len(m.group()), text) if "\\documentclass" in text else text
    groups: list[Group] = []
    for m in _DISPLAY.finditer(text):
        inline = m.group("inline") is not None
        body = next(g for g in (m.group("dollars"), m.group("brackets"), m.group("body"), m.group("inline"))
                    if g is not None)
        start = m.start(next(k for k in ("dollars", "brackets", "body", "inline") if m.group(k) is not None))
        if inline and "=" not in body:
            continue
        clean = _WRAPPERS.sub(lambda w: " " * len(w.group()), body)
        terms: list[Term] = []
        arrow, prose, continued = False, "", False
        for r, (row, offset) in enumerate(_top_level_split(clean, "\\\\")):
            if not row.strip():
                continue
            line = text.count("\n", 0, start + offset + len(row) - len(row.lstrip())) + 1
            row = row.replace("&", " ")
            a = _ARROW.match(row)
            if a:
                arrow, row = True, row[a.end():]
            p = _PROSE.match(row)
            if p and not terms:
                prose, row = p.group(), row[p.end():]
            sides = [s.strip() for s, _ in _top_level_split(row, "=")]
            if r == 0 and not terms and sides and sides[0] == "" and len(sides) > 1:
                continued = True
            for i, s in enumerate(sides):
                if i == 0 and s == "" and (terms or continued):
                    continue
                terms.append(Term(s, line))
        if not terms:
            continue
        if continued and groups and not groups[-1].inline and not inline:
            prev = groups.pop()
            groups.append(Group(prev.terms + tuple(terms), prev.line, False, prev.arrow, prev.prose))
            continue
        groups.append(Group(tuple(terms), terms[0].line, inline, arrow, prose))
    return groups
