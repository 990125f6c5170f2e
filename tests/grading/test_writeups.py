"""Write-ups nobody tuned the grader for (issue 11, requirement 5): softmax regression, a three-layer
tanh network and batch normalisation, in English and Chinese, each correct and with one injected
error per version.  The grader must flag nothing in the correct versions and locate each injected
error at its line (and step, for a chain): the first flagged entry is the injected one."""
from __future__ import annotations

from pathlib import Path

import pytest

from derive.grading import grade

HERE = Path(__file__).parent / "writeups"
NETWORKS = ("softmax", "tanh3", "batchnorm")
LANGS = ("en", "zh")
FLAGGED = ("wrong", "shape-error")

# (what is injected, line, step (None: a lone equation), the text on that line, what replaces it)
INJECTIONS: dict[str, list[tuple[str, int, int | None, str, str]]] = {
    "softmax": [
        ("dropped transpose", 32, 4, r"\mathrm{tr}[(X^T(P - Y))^T dW]", r"\mathrm{tr}[(X^T(P - Y)) dW]"),
        ("wrong chain step", 24, 3, r"\mathrm{tr}(P^T dZ) - \mathrm{tr}(Y^T dZ)", r"\mathrm{tr}(P^T dZ) + \mathrm{tr}(Y^T dZ)"),
        ("derivative factor forgotten", 24, 2, r"(\exp(Z) \odot dZ)\mathbf{1}_k", r"(dZ)\mathbf{1}_k"),
        ("bias not summed", 40, 0, r"\frac{\partial f}{\partial b} = \mathbf{1}_n^T(P - Y)", r"\frac{\partial f}{\partial b} = P - Y"),
        ("sign flip", 28, 0, r"\frac{\partial f}{\partial Z} = P - Y", r"\frac{\partial f}{\partial Z} = Y - P"),
        ("factor", 32, 3, r"\mathrm{tr}[(P - Y)^T X dW]", r"\mathrm{tr}[2(P - Y)^T X dW]"),
        ("⊙ as a product", 24, 2, r"(\exp(Z) \odot dZ)", r"(\exp(Z) dZ)"),
    ],
    "tanh3": [
        ("dropped transpose", 33, 2, r"\mathrm{tr}[2W_3(Z - Y)^T dH_2]", r"\mathrm{tr}[2W_3(Z - Y) dH_2]"),
        ("wrong chain step", 33, 3, r"((1 - H_2 \odot H_2) \odot d(", r"((1 + H_2 \odot H_2) \odot d("),
        ("σ′ forgotten", 43, 2, r"((1 - H_1 \odot H_1) \odot X dW_1)", r"(X dW_1)"),
        ("bias not summed", 29, 0, r"= 2\mathbf{1}_n^T(Z - Y)", r"= 2(Z - Y)"),
        ("sign flip", 25, 0, r"= 2H_2^T(Z - Y)", r"= 2H_2^T(Y - Z)"),
        ("factor", 23, 1, r"df &= \mathrm{tr}[2(Z - Y)^T dZ]", r"df &= \mathrm{tr}[(Z - Y)^T dZ]"),
        ("⊙ as a product", 35, 0, r"H_1^T[2(Z - Y)W_3^T \odot (1", r"H_1^T[2(Z - Y)W_3^T (1"),
    ],
    "batchnorm": [
        ("dropped transpose", 28, 3, r"\hat{X})^T \mathbf{1}_n d\gamma", r"\hat{X}) \mathbf{1}_n d\gamma"),
        ("wrong chain step", 28, 2, r"d\gamma) \odot \hat{X})]", r"d\gamma) \odot C)]"),
        ("layer factor forgotten", 40, 1, r"((\mathbf{1}_n\gamma) \odot d\hat{X})", r"d\hat{X}"),
        ("bias not summed", 36, 0, r"= 2\mathbf{1}_n^T(B - T)", r"= 2(B - T)"),
        ("sign flip", 24, 0, r"= 2(B - T)", r"= 2(T - B)"),
        ("factor", 30, 0, r"= 2\mathbf{1}_n^T[(B - T)", r"= \mathbf{1}_n^T[(B - T)"),
        ("⊙ as a product", 42, 0, r"2(B - T) \odot (\mathbf{1}_n\gamma)", r"2(B - T)(\mathbf{1}_n\gamma)"),
    ],
}


def _text(network: str, lang: str) -> str:
    return (HERE / f"{network}.{lang}.md").read_text(encoding="utf-8")


def inject(text: str, line: int, old: str, new: str) -> str:
    lines = text.split("\n")
    assert lines[line - 1].count(old) == 1, (line, old)
    lines[line - 1] = lines[line - 1].replace(old, new)
    return "\n".join(lines)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("network", NETWORKS)
def test_correct_writeups_flag_nothing(network: str, lang: str) -> None:
    report = grade(_text(network, lang), lang=lang)
    assert report.status == 0
    assert [(e.line, e.step, e.verdict) for e in report.entries if e.verdict != "correct"] == []
    assert sum(e.kind == "result" for e in report.entries) >= 3


CASES = [(network, lang, *case) for network in NETWORKS for lang in LANGS for case in INJECTIONS[network]]


@pytest.mark.parametrize(("network", "lang", "what", "line", "step", "old", "new"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_injected_error_is_located(network: str, lang: str, what: str, line: int, step: int | None,
                                   old: str, new: str) -> None:
    report = grade(inject(_text(network, lang), line, old, new), lang=lang)
    flagged = [e for e in report.entries if e.verdict in FLAGGED]
    assert report.status == 1
    assert flagged, what
    first = flagged[0]
    assert (first.line, first.step) == (line, step), (what, [(e.line, e.step, e.verdict, e.message) for e in flagged])
    # nothing is left unchecked that the correct version checks
    assert not [e for e in report.entries if e.verdict == "uncheckable"]
