"""The document model: built once from the data, then written by each format from its blocks alone.

A writer defined here (an outline of the document, one line per block) renders the seed document
without any other help, which is what adding a format takes; the real writers are shown to read
nothing but the blocks by writing a document after the builder has been made to fail.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import derive
from derive.render import blocks as B
from derive.render import document as builder
from derive.render import outline as outline_module
from derive.render.html import write_html
from derive.render.latex import write_latex
from derive.render.locale import get_locale
from derive.render.markdown import write_markdown
from derive.render.text import write_text

ROOT = Path(__file__).resolve().parents[3]
WRITERS = {"text": write_text, "markdown": write_markdown, "latex": write_latex, "html": write_html}


class OutlineWriter(B.Writer):
    """A format written for this test: one line per block, indented by depth, from the blocks only."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()

    def lines(self, blocks, depth: int) -> list[str]:
        return [line for b in blocks for line in self.block(b, depth)]

    def block(self, b, depth: int) -> list[str]:
        self.kinds.add(type(b).__name__)
        return super().block(b, depth)

    def _line(self, depth: int, *words: str) -> list[str]:
        return ["  " * depth + " ".join(words)]

    def section(self, b, depth):
        return self._line(depth, "section", b.anchor, B.plain(b.title)) + self.lines(b.blocks, depth + 1)

    def details(self, b, depth):
        return self._line(depth, "details", b.anchor) + self.lines(b.blocks, depth + 1)

    def group(self, b, depth):
        return self._line(depth, "group", b.role or "-") + self.lines(b.blocks, depth + 1)

    def paragraph(self, b, depth):
        return self._line(depth, "paragraph", b.role or "-", str(len(b.content)))

    def remarks(self, b, depth):
        return self._line(depth, "remarks", str(len(b.items)))

    def equations(self, b, depth):
        return self._line(depth, "equations", str(len(b.rows)), "loss" if any(r.loss for r in b.rows) else "-")

    def loss_display(self, b, depth):
        return self._line(depth, "loss")

    def shapes(self, b, depth):
        return self._line(depth, "shapes", *(str(len(g)) for _, g in b.groups))

    def steps(self, b, depth):
        rules = [r.rule for r in b.rows] + ([b.result.rule] if b.result is not None else [])
        return self._line(depth, "steps", *rules)

    def table(self, b, depth):
        return self._line(depth, "table", b.style, str(len(b.rows)))

    def rule_list(self, b, depth):
        return self._line(depth, "rules", "|".join(name for name, _ in b.items))


@pytest.fixture(scope="module")
def seed_bp():
    return derive.backprop(derive.seed_network())


def test_a_new_writer_renders_the_seed_document_from_its_blocks(seed_bp) -> None:
    doc = builder.network_document(seed_bp, "en")
    writer = OutlineWriter()
    lines = writer.lines(doc.blocks, 0)
    sections = [ln.split()[1] for ln in lines if ln.startswith("section")]
    assert sections == ["problem", "derivation", "summary"]
    assert lines[-1].startswith("rules ")
    # one derivation per variable, in the order of backprop(); each holds its steps in order
    details = [ln.split()[1] for ln in lines if ln.strip().startswith("details")]
    assert details == [f"d-{d.wrt.name}" for d in seed_bp.sections]
    steps = [ln.split()[1:] for ln in lines if ln.strip().startswith("steps")]
    expected = []
    for d in seed_bp.sections:   # the seed's Y and Ypred start from f: "f = …" before "take the differential"
        rules = [s.rule for s in d.steps]
        cut = rules.index("differential") if d.upstream is None and "differential" in rules else 0
        expected += ([rules[:cut]] if cut else []) + [rules[cut:]]
    assert steps == expected
    # the problem statement: 3 stages and the loss; inputs, parameters, intermediates; 𝟏ₙ and 𝟏
    assert "  equations 4 loss" in lines and "  shapes 2 4 3" in lines and "  remarks 2" in lines
    assert "  table gradients 4" in lines
    used = list(dict.fromkeys(s.rule for d in seed_bp.sections for s in d.steps))
    assert lines[-1] == "rules " + "|".join(get_locale("en").rule(k) for k in used)
    # every kind of block the seed document has was written by the writer's own methods
    assert writer.kinds == {"Section", "Equations", "Shapes", "Remarks", "Paragraph", "LossDisplay", "Details",
                            "Steps", "Table", "Group", "RuleList"}


def test_every_block_kind_has_a_method_in_every_writer() -> None:
    from derive.render.html import HtmlWriter
    from derive.render.latex import LatexWriter
    from derive.render.markdown import MarkdownWriter
    from derive.render.text import TextWriter

    kinds = {cls.kind for cls in vars(B).values()
             if isinstance(cls, type) and cls.__module__ == B.__name__ and "kind" in vars(cls)}
    assert len(kinds) == 11
    for writer in (TextWriter, MarkdownWriter, LatexWriter, HtmlWriter, OutlineWriter):
        assert all(callable(getattr(writer, k, None)) for k in kinds), writer


def test_a_writer_without_a_method_says_so() -> None:
    with pytest.raises(NotImplementedError, match=r"^Writer does not write Remarks blocks$"):
        B.Writer().block(B.Remarks(()), 0)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_writers_read_nothing_but_the_blocks(seed_bp, monkeypatch, lang) -> None:
    """Written from a document built beforehand, each format is what the one-call renderer writes,
    while the builder, the outline and the rules table are unavailable."""
    from derive.render import backprop_html, backprop_latex, backprop_markdown, backprop_text

    expected = {"text": backprop_text(seed_bp, lang), "markdown": backprop_markdown(seed_bp, lang),
                "latex": backprop_latex(seed_bp, lang), "html": backprop_html(seed_bp, lang, audit=False)}
    doc = builder.network_document(seed_bp, lang)

    def fail(*args, **kwargs):
        raise AssertionError("a writer went back to the data")

    for name in ("network_document", "derivation_block", "derivation_steps", "outline", "say", "rule_list"):
        monkeypatch.setattr(builder, name, fail)
    monkeypatch.setattr(outline_module, "outline", fail)
    monkeypatch.setattr(builder, "RULES", {})
    for fmt, write in WRITERS.items():
        assert write(doc) == expected[fmt], fmt


def test_the_document_is_built_once_per_rendering(seed_bp, monkeypatch) -> None:
    from derive.render import backprop_markdown

    calls = {"document": 0, "outline": 0}
    real_document, real_outline = builder.network_document, builder.outline

    def document(*args, **kwargs):
        calls["document"] += 1
        return real_document(*args, **kwargs)

    def outline(*args, **kwargs):
        calls["outline"] += 1
        return real_outline(*args, **kwargs)

    monkeypatch.setattr("derive.render.markdown.network_document", document)
    monkeypatch.setattr(builder, "outline", outline)
    backprop_markdown(seed_bp, "en")
    assert calls == {"document": 1, "outline": len(seed_bp.sections)}


def test_blocks_are_data() -> None:
    """Frozen dataclasses of expressions, words and other blocks: nothing to call."""
    for cls in (c for c in vars(B).values() if isinstance(c, type) and c.__module__ == B.__name__):
        if cls is B.Writer:
            continue
        assert cls.__dataclass_params__.frozen, cls
        assert not [f.name for f in fields(cls) if "Callable" in str(f.type)], cls


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_several_derivations_have_one_outline_in_every_format(lang) -> None:
    import sympy

    X, W, Y = sympy.MatrixSymbol("X", 4, 3), sympy.MatrixSymbol("W", 3, 2), sympy.MatrixSymbol("Y", 4, 2)
    R = Y - X * W
    derivs = [derive.derivation(sympy.Trace(R.T * R), W), derive.derivation(sympy.Trace(R.T * R), X)]
    doc = builder.derivations_document(derivs, lang, "f = ‖Y − XW‖²")
    loc = get_locale(lang)
    words = [loc.say("derivation"), loc.say("derive", grad="")]
    for fmt, write in WRITERS.items():
        out = write(doc)
        at = [out.find(w) for w in words] + [out.rfind(loc.say("derive", grad=""))]
        assert -1 not in at and at == sorted(at), fmt
        assert out.count(loc.say("derive", grad="")) == 2, fmt
        if fmt != "text":  # the terminal names each rule beside its step and lists no laws
            assert out.rfind(loc.say("rules")) > at[-1], fmt


def test_audit_rows_through_one_adapter() -> None:
    from derive.grading import grade, seed_writeup
    from derive.grading.names import notation

    reports = [grade(seed_writeup(), lang=lang) for lang in ("en", "zh")]
    table = builder.audit_table(reports, "zh")
    shown = [e for e in reports[1].entries if e.kind == "result" or e.verdict != "correct"]
    assert table.style == "audit" and len(table.rows) == len(shown) == 19 and len(table.header) == 6
    status = {"correct": "ok", "correct-under-reading": "partial", "wrong": "bad", "shape-error": "bad",
              "uncheckable": ""}
    for e, row in zip(shown, table.rows):
        assert row.status == status[e.verdict]
        assert row.cells[0][0] == B.Tex(e.latex, notation(e.latex)) and B.plain(row.cells[2]) == str(e.line)
    assert {row.status for row in table.rows} == {"ok", "partial", ""}
    assert B.plain(table.header[-1]) == "结论"

def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("module", ["steps", "backprop", "display"])
def test_data_modules_import_no_renderer(module) -> None:
    imported = _imports(ROOT / "derive" / f"{module}.py")
    assert not [m for m in imported if m.startswith("derive.render")], imported


def test_display_without_importing_render_first() -> None:
    """A fresh interpreter: the data is made and shown; derive.render is loaded by the first display."""
    code = "\n".join([
        "import sys",
        "from sympy import MatrixSymbol",
        "from derive.steps import F, Derivation, Gradient, Step",
        "from derive.backprop import backprop",
        "from derive.networks import seed_network",
        "assert 'derive.render' not in sys.modules",
        "Y = MatrixSymbol('Y', 3, 2)",
        "d = Derivation(F, Y, (Step('read_off', Gradient(F, Y), 2 * Y),), 2 * Y)",
        "print(d.steps[0])",
        "print(d._repr_latex_())",
        "bp = backprop(seed_network())",
        "print(bp.to_latex(lang='zh').splitlines()[0])",
        "print(bp._repr_markdown_().splitlines()[0])",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "∂f/∂Y = 2Y  [read off the gradient]",
        r"$\displaystyle \begin{aligned}",
        r"\Rightarrow \frac{\partial f}{\partial Y} &= 2Y && \text{read off the gradient}",
        r"\end{aligned}$",
        "% !TEX program = xelatex",
        "# Derivative expressions",
    ]


def test_jupyter_and_str_use_the_registered_functions(seed_bp) -> None:
    from derive.render import backprop_markdown, backprop_text, derivation_latex, derivation_markdown

    d = seed_bp.section("W1")
    assert d._repr_markdown_() == derivation_markdown(d) and str(d) == d.to_text()
    assert d._repr_latex_() == "$\\displaystyle " + derivation_latex(d, inline=True) + "$"
    assert seed_bp._repr_markdown_() == backprop_markdown(seed_bp) and str(seed_bp) == backprop_text(seed_bp)
    assert not hasattr(seed_bp, "_repr_latex_")  # a whole document is shown as Markdown


def test_an_unregistered_format_is_a_lookup_error() -> None:
    from derive.display import display

    with pytest.raises(LookupError, match="no braille display for Step"):
        display(derive.backprop(derive.seed_network()).sections[0].steps[0], "braille")
