"""The checks that close the default run (derive.render.checks): a gradient check against
central differences and the audit of the seed document's formulas (the grade of the seed write-up,
derive.grading), in every format the derivation is written in (text, Markdown, LaTeX and the PDF,
HTML; en and zh), each written from the grade's entries; and the terminal output within 100 columns."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

import derive
from derive.cli import main
from derive.grading import grade, seed_writeup
from derive.render.blocks import Tex, plain
from derive.render.document import audit_table
from derive.render.checks import GradientCheck, gradient_check, network_checks
from derive.render.locale import get_locale
from derive.render.printer import text_width
from tests.derive.render.conftest import compile_tex, tex_engine


UNDER = {"en": "correct under a reading", "zh": "某种理解下正确"}
CHECK = {"en": "Gradient check (random non-square data n=4, d=3, m=5, k=2", "zh": "梯度检验（随机非方阵数据 n=4, d=3, m=5, k=2"}


@pytest.fixture(scope="module")
def table():
    """The audit table of the document, en: the seed write-up's results and its lines not plainly right."""
    return audit_table([grade(seed_writeup(), source="seed")], "en")


def _cell(c) -> str:
    return c.text if isinstance(c, Tex) else plain((c,))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_default_terminal_output_fits_100_columns(capsys, lang) -> None:
    assert main(["--lang", lang]) == 0
    out = capsys.readouterr().out
    assert max(text_width(line) for line in out.splitlines()) <= 100
    assert "|---|" not in out and "─" in out  # an aligned table, not a Markdown one
    assert CHECK[lang] in " ".join(out.split()).replace("， ", "，")


def _blocks(lines: list[str]) -> list[list[str]]:
    blocks, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks + ([cur] if cur else [])


def test_audit_table_columns_line_up(capsys, table) -> None:
    """Read back through the columns of the header rule, each cell is the row's data."""
    assert main([]) == 0
    out = capsys.readouterr().out
    lines = out[out.index("  equation"):].splitlines()
    rule = next(i for i, line in enumerate(lines) if "─" in line)
    spans = [(m.start(), m.end()) for m in re.finditer("─+", lines[rule])]
    head = [plain(h) for h in table.header]
    cells = [[_cell(c[0]) for c in row.cells] for row in table.rows]
    rows = table.rows

    def read(block: list[str]) -> list[str]:
        return [" ".join(part for line in block if (part := line[a:b].strip())) for a, b in spans]

    assert read(lines[:rule]) == [" ".join(h.split()) for h in head]
    blocks = _blocks(lines[rule + 1:])
    assert len(blocks) == len(rows)
    assert [read(b) for b in blocks] == [[" ".join(c.split()) for c in row] for row in cells]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("suffix", [".txt", ".md", ".tex", ".html"])
def test_every_format_ends_with_the_checks(tmp_path, table, lang, suffix) -> None:
    path = tmp_path / f"seed{suffix}"
    assert main(["--lang", lang, "-o", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    loc = get_locale(lang)
    flat = " ".join(text.split()).replace("， ", "，")
    assert loc.say("checks") in text and CHECK[lang] in flat
    assert ("passed" if lang == "en" else "通过") in flat
    checks = text[text.index(loc.say("checks")):]
    rows = table.rows
    if suffix != ".txt":  # in the terminal a verdict may wrap in its column (see the test above)
        assert flat.count(UNDER[lang]) == sum(r.status == "partial" for r in rows) == 8
    if suffix == ".md":
        assert checks.count("| $\\frac{\\partial f}") == sum("frac{\\partial f}" in r.cells[0][0].latex
                                                           for r in rows) == 14
    if suffix == ".tex":
        assert "\\begin{longtable}" in text and "\\usepackage{array,longtable}" in text
    if suffix == ".html":
        audit = text[text.index('id="audit"'):]
        assert audit[:audit.index("</section>")].count("<tr>") == len(rows) + 1
        assert 'id="checks"' in text and 'href="#checks"' in text


def test_rows_are_rendered_from_their_data_not_from_markdown(tmp_path, monkeypatch) -> None:
    def no_markdown(*args, **kwargs):
        raise AssertionError("the audit was read back from its Markdown table")

    from derive.grading import report

    monkeypatch.setattr(report, "markdown", no_markdown)
    for suffix in (".txt", ".md", ".tex", ".html"):
        assert main(["-o", str(tmp_path / f"seed{suffix}")]) == 0


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pdf_has_the_checks_and_fits_the_page(tmp_path, lang) -> None:
    from derive.render.latex import latex_engine
    from derive.render.pdf import tex_document

    engine = latex_engine(lang)
    tex_engine(engine)
    bp = derive.backprop(derive.seed_network())
    compile_tex(tex_document(bp, lang, checks=network_checks(bp)), engine, tmp_path)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    too_wide = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(too_wide, default=0.0) <= 3.0, too_wide
    assert main(["--lang", lang, "-o", str(tmp_path / "seed.pdf")]) == 0
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(tmp_path / "seed.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
        # a verdict may wrap in its column: compared without the spaces
        assert get_locale(lang).say("checks") in text and "".join(UNDER[lang].split()) in "".join(text.split())


def test_gradient_check_fails_for_wrong_gradients() -> None:
    bp = derive.backprop(derive.seed_network())
    right = gradient_check(bp)
    assert right.passed and right.max_error < 1e-6
    wrong = dataclasses.replace(bp, summary=tuple((p, 2 * s, 2 * e) for p, s, e in bp.summary))
    gc = gradient_check(wrong)
    assert not gc.passed and gc.max_error > 0.1
    assert gc.sentence(get_locale("en")).endswith("FAILED.")
    assert gc.sentence(get_locale("zh")).endswith("未通过。")


@pytest.mark.parametrize("loss", ["frobenius", "softmax_cross_entropy"])
def test_other_networks_get_a_gradient_check_and_no_audit(loss) -> None:
    # softmax cross-entropy: the derivation assumes each row of Y sums to 1, and so does the data
    net = derive.networks.mlp([3, 5, 4, 2], activation="tanh", loss=loss, n="n")
    checks = network_checks(derive.backprop(net))
    assert checks.audit == () and checks.gradient.passed, checks.gradient
    assert len({v for _, v in checks.gradient.dims}) == len(checks.gradient.dims)  # all sizes differ


def test_an_assumption_the_data_cannot_meet_skips_the_check() -> None:
    bp = derive.backprop(derive.networks.mlp([3, 5, 2], loss="softmax_cross_entropy"))
    (pattern, replacement, _), = bp.network.assumptions
    odd = dataclasses.replace(bp, network=dataclasses.replace(bp.network, assumptions=((pattern, replacement, "odd"),)))
    gc = gradient_check(odd)
    assert gc.max_error is None and not gc.passed and "odd" in gc.sentence(get_locale("en"))


def test_a_network_too_large_to_check_says_so(capsys) -> None:
    bp = derive.backprop(derive.seed_network(n=10**12))
    gc = gradient_check(bp)
    assert gc.max_error is None and gc.too_large == ("X", 3 * 10**12) and not gc.passed
    assert "skipped" in gc.sentence(get_locale("en"))
    assert "跳过" in GradientCheck((), None, too_large=("X", 10**7)).sentence(get_locale("zh"))
