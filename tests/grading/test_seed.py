"""The seed audit comes from the seed (issue 11, requirement 4): ``grade`` on the seed write-up reaches,
from the document itself, the verdicts of the hand-typed audit (``tests.hand_audit.FORMULAS``: each formula
transcribed by hand in NumPy under each reading, against central finite differences), which is the
oracle here."""
from __future__ import annotations

import html
import json
import re

import pytest

from tests.hand_audit import FORMULAS, Verdict, audit
from derive.cli import main
from derive.grading import grade, seed_writeup

# the audit's variable → the write-up's lines of that result (the ⇒ line, restatements, the summary)
LINES = {"Y": (65,), "Ypred": (73,), "W2": (81, 129), "b2": (89, 131), "H": (97,), "h": (101, 105, 115),
         "W1": (111, 125), "b1": (121, 127)}
# the audit's readings of ⊙ → the language's (derive.lang.readings: ⊙ taking the whole product before
# it is the language's precedence, "looser"; the line before ∂f/∂W1 reads ⊙ over part of the product)
READING = {"as_written": ("as_written", "looser"), "as_written_of": ("as_written", "looser"),
           "looser": ("as_written", "looser"), "tighter": ("tighter",), "previous_line": ("between",)}


@pytest.fixture(scope="module")
def report():
    return grade(seed_writeup())


def _oracle() -> dict[tuple[str, str], Verdict]:
    rows = audit()
    assert len(rows) == len(FORMULAS)
    return {(f.variable, r.reading.key): r.verdict for r, f in zip(rows, FORMULAS) if r.reading.key != "summed"}


def test_every_result_line_is_graded_as_the_audit_says(report) -> None:
    by_line = {e.line: e for e in report.entries if e.kind == "result" and e.step in (0, 2)}
    for (var, key), verdict in _oracle().items():
        for line in LINES[var]:
            entry = by_line[line]
            found = [r for r in entry.readings if r.key in READING[key]]
            assert found, (line, key, [r.label for r in entry.readings])
            verdicts = {r.verdict for r in found}
            if verdict is Verdict.CORRECT:
                assert verdicts == {"correct"}, (line, key)
            elif verdict is Verdict.FULL_BIAS_ONLY:
                # correct with the bias an n×m (n×k) matrix, shapes that do not conform with a row
                assert [r.verdict for r in found] == ["correct", "shape-error"], (line, key)
                assert "matrix" in found[0].label and "row" in found[1].label
            elif verdict is Verdict.NOT_CONFORMING:
                assert verdicts == {"shape-error"}, (line, key)
            else:  # pragma: no cover - the audit has no other verdict on the document's formulas
                raise AssertionError(verdict)


def test_seed_verdicts_per_line(report) -> None:
    got = {(e.line, e.step): e.verdict for e in report.entries}
    under = {(85, 3), (89, 0), (111, 0), (117, 3), (121, 0), (125, 0), (127, 0), (131, 0)}
    unchecked = {(45, 0), (101, 1)}
    assert {k for k, v in got.items() if v == "correct-under-reading"} == under
    assert {k for k, v in got.items() if v == "uncheckable"} == unchecked
    assert {v for k, v in got.items() if k not in under | unchecked} == {"correct"}
    assert len(report.entries) == 47 and report.status == 0
    stray = [e for e in report.entries if e.line == 45]
    assert [e.latex for e in stray] == ["Z = XW", "h = max(Z, 0)"]
    assert "never uses: Z, W" in stray[0].message and "never defines: Z" in stray[1].message


def test_the_chains_hold_the_other_differentials_at_zero_where_the_writeup_does(report) -> None:
    msgs = {(e.line, e.step): e.message for e in report.entries}
    assert "everything but W2" in msgs[77, 3]           # d(h_sigmoid W2 + b2) = h_sigmoid dW2
    assert "everything but h_sigmoid" in msgs[93, 3]
    assert msgs[93, 4] == "follows from the line before"  # tr(A dH W2) = tr(W2 A dH): cyclic


def test_grade_seed_cli_json(capsys) -> None:
    assert main(["grade", "seed", "--format", "json", "--lang", "zh"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(r) >= {"line", "step", "latex", "kind", "verdict", "readings", "message"} for r in rows)
    assert {r["kind"] for r in rows} == {"definition", "chain", "result"}
    w1 = next(r for r in rows if r["line"] == 111)
    assert w1["verdict"] == "correct-under-reading" and len(w1["readings"]) == 6    # 3 of ⊙ × 2 of the bias
    assert [r["key"] for r in w1["readings"]] == ["looser"] * 2 + ["between"] * 2 + ["tighter"] * 2


def test_html_shows_the_equations_as_mathml_or_their_source(report) -> None:
    from derive.grading.report import write

    page = write(report, "html")
    codes = re.findall(r"<code>(.*?)</code>", page)
    # the stray line, the product of Jacobians, and ∂f/∂W1 as written (⊙ looser: shapes do not conform)
    assert codes[:3] == ["Z = XW", "h = max(Z, 0)", html.escape(r"\frac{\partial f}{\partial h_{sigmoid}} \cdot "
                                                                   r"\frac{\partial h_{sigmoid}}{\partial h}")]
    assert len(codes) == 5 and page.count("<math") == len(report.entries) - 5
