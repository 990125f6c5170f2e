"""The document model: a rendered derivation as a list of format-neutral blocks.

:mod:`derive.render.document` builds a :class:`Document` once from a ``Backprop`` (with its
checks and audit rows) or from a list of derivations; the writers (:mod:`~derive.render.text`,
:mod:`~derive.render.markdown`, :mod:`~derive.render.latex` and so the PDF,
:mod:`~derive.render.html`) each turn blocks into their format and read nothing else.  As in
Pandoc, blocks hold inline spans: words (:class:`Text`) and mathematics (:class:`Math`,
:class:`Equation` …) that every writer typesets with its own printer.  A new section is a change
to the builder; a new format is one new :class:`Writer`.

Blocks nest: a :class:`Section` (a titled part of the document), a :class:`Details` (one
derivation, "Derive ∂f/∂X"), a :class:`Group` (a part of a derivation, such as one use of a
variable used more than once) hold blocks; the others are leaves.

>>> from sympy import MatrixSymbol
>>> W = MatrixSymbol("W", 3, 2)
>>> doc = Document("T", (Section((Text("Problem"),), (Paragraph((Text("Find "), Math(W), Text("."))),),
...                              "problem"),), "en")
>>> [type(b).__name__ for b in walk(doc.blocks)]
['Section', 'Paragraph']
>>> plain(doc.blocks[0].title)
'Problem'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Iterator

from sympy import Basic, MatrixSymbol

__all__ = [
    "Block", "Details", "Document", "Equation", "EquationRow", "Equations", "Group", "Inline", "Inlines",
    "Link", "LossDisplay", "Math", "MathList", "Paragraph", "Remarks", "RuleList", "Section", "Shape",
    "Shapes", "StepRow", "Steps", "Table", "TableRow", "Tex", "Text", "Writer", "plain", "walk",
]


# --- inline spans ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Text:
    """Words (each writer escapes them for its format)."""

    text: str


@dataclass(frozen=True)
class Math:
    """An expression in running text."""

    expr: Basic


@dataclass(frozen=True)
class MathList:
    """Expressions listed in one formula, separated by commas: ``W1, b1, W2, b2``."""

    exprs: tuple[Basic, ...]


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs`` in running text."""

    lhs: Basic
    rhs: Basic


@dataclass(frozen=True)
class Shape:
    """A shape ``rows×cols``."""

    shape: tuple[Basic, Basic]


@dataclass(frozen=True)
class Tex:
    """A formula given only as LaTeX (a rule's law, an audit formula); ``text`` is its plain form."""

    latex: str
    text: str = ""


@dataclass(frozen=True)
class Link:
    """``content`` linking to the block whose anchor is ``target`` (where the format has links)."""

    target: str
    content: tuple[Inline, ...]


Inline = Text | Math | MathList | Equation | Shape | Tex | Link
Inlines = tuple[Inline, ...]


def plain(spans: Inlines) -> str:
    """The words of ``spans``, the mathematics left out (a title for a navigation bar).

    >>> plain((Text("Derive "), Math(MatrixSymbol("W", 2, 2))))
    'Derive '
    """
    return "".join(s.text if isinstance(s, Text) else plain(s.content) if isinstance(s, Link) else ""
                   for s in spans)


# --- blocks ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Paragraph:
    """Running text; ``role`` "note" marks a remark set apart (a smaller, muted note on the web)."""

    content: Inlines
    role: str = ""
    kind = "paragraph"


@dataclass(frozen=True)
class Remarks:
    """Short remarks: one line each in the terminal, one paragraph elsewhere."""

    items: tuple[Inlines, ...]
    kind = "remarks"


@dataclass(frozen=True)
class EquationRow:
    """``lhs = rhs``; ``loss``: ``rhs`` is the loss (written ‖M‖²_F where it is one)."""

    lhs: Basic
    rhs: Basic
    loss: bool = False


@dataclass(frozen=True)
class Equations:
    """Displayed equations with their equals signs aligned, after the sentence ``lead``."""

    rows: tuple[EquationRow, ...]
    lead: Inlines = ()
    kind = "equations"


@dataclass(frozen=True)
class LossDisplay:
    """The loss displayed as f = ‖M‖²_F = tr(MᵀM) (or f = loss), after the sentence ``lead``."""

    loss: Basic
    lead: Inlines = ()
    kind = "loss_display"


@dataclass(frozen=True)
class Shapes:
    """Every symbol's shape once, by group (``label``: inputs, parameters, intermediates)."""

    groups: tuple[tuple[Inlines, tuple[MatrixSymbol, ...]], ...]
    lead: Inlines = ()
    kind = "shapes"


@dataclass(frozen=True)
class StepRow:
    """One line of a step block: ``lhs = rhs`` by the rule ``rule`` (named ``rule_name``);
    ``lhs`` None: the same as the row above; ``is_result``: ⇒ ∂f/∂X = G."""

    lhs: Basic | None
    rhs: Basic
    rule: str
    rule_name: str
    is_result: bool = False


@dataclass(frozen=True)
class Steps:
    """Equation rows, each beside the rule that produced it.

    ``result`` (⇒ ∂f/∂X = G), where given, ends the block: the terminal and the web page write
    it as the last row; LaTeX and Markdown after the sentence ``obtain``, as a display.
    """

    rows: tuple[StepRow, ...]
    result: StepRow | None = None
    obtain: Inlines = ()
    kind = "steps"


@dataclass(frozen=True)
class TableRow:
    """A row of cells; ``status`` "ok", "partial" or "bad" grades it (an audit verdict)."""

    cells: tuple[Inlines, ...]
    status: str = ""


@dataclass(frozen=True)
class Table:
    """A table with a header row; ``style`` "gradients" (the summary: a formula column) or
    "audit" (the seed audit: columns of words)."""

    header: tuple[Inlines, ...]
    rows: tuple[TableRow, ...]
    style: str = "gradients"
    kind = "table"


@dataclass(frozen=True)
class RuleList:
    """The rules a document uses, each with its law: a section of its own, titled ``title``."""

    title: Inlines
    items: tuple[tuple[str, Tex], ...]
    anchor: str = "rules"
    kind = "rule_list"


@dataclass(frozen=True)
class Group:
    """Blocks that belong together under a ``label`` (a use of a variable: ``role`` "use"), or,
    unlabelled, that continue the block before them (indented in the terminal)."""

    blocks: tuple[Block, ...]
    label: Inlines = ()
    role: str = ""
    kind = "group"


@dataclass(frozen=True)
class Details:
    """One derivation ("Derive ∂f/∂X" and its steps); ``preview`` is its result G (the web
    page shows it in the collapsed summary line)."""

    title: Inlines
    blocks: tuple[Block, ...]
    anchor: str
    preview: Basic
    kind = "details"


@dataclass(frozen=True)
class Section:
    """A titled part of the document (problem statement, derivation, summary, checks …)."""

    title: Inlines
    blocks: tuple[Block, ...]
    anchor: str = ""
    kind = "section"


Block = (Paragraph | Remarks | Equations | LossDisplay | Shapes | Steps | Table | RuleList | Group | Details
         | Section)


@dataclass(frozen=True)
class Document:
    """A titled list of blocks, in one language (``lang`` chooses fonts, engines and page words)."""

    title: str
    blocks: tuple[Block, ...]
    lang: str = "en"


def walk(blocks: tuple[Block, ...]) -> Iterator[Block]:
    """Every block, depth first, each before those it holds."""
    for b in blocks:
        yield b
        yield from walk(getattr(b, "blocks", ()))


class Writer:
    """A format: one method per block ``kind`` (``paragraph``, ``steps`` …), called by :meth:`block`.

    ``depth`` is the nesting of the block (0 at the top of a document or of a derivation shown
    alone); what a method returns is the writer's own business (lines, a string).
    """

    def block(self, b: Block, depth: int) -> Any:
        method = getattr(self, b.kind, None)
        if method is None:
            raise NotImplementedError(f"{type(self).__name__} does not write {type(b).__name__} blocks")
        return method(b, depth)
