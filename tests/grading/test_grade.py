"""tracegrad grade: extraction, the LaTeX bridge, values and differentials, chains, the catalogue of
rules, the writers and the command."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import derive
from derive.cli import main
from derive.grading import GradeError, grade
from derive.grading.evaluate import evaluate, points
from derive.grading.extract import equations
from derive.grading.names import alias, gradient_of, name_of, program_text
from derive.lang import ExpressionError

from derive.grading.report import write

LSQ = r"""# Least squares

$X \in \mathbb{R}^{n \times d}$, $Y \in \mathbb{R}^{n \times k}$, $W \in \mathbb{R}^{d \times k}$.

$$E = XW - Y$$

$$f = \|E\|_F^2$$

$$\begin{aligned}
df &= \mathrm{tr}(2E^T dE) \\
   &= \mathrm{tr}(2E^T X dW) \\
   &= \mathrm{tr}(2(X^TE)^T dW)
\end{aligned}$$

$$\Rightarrow \frac{\partial f}{\partial W} = 2X^T E$$
"""


def test_extraction_lines_steps_and_continuations() -> None:
    text = "intro $a$ and $x = 1$\n\n$$f = \\|A\\|_F^2$$\n\n$$= \\mathrm{tr}(A^TA)$$\n\\[ y = 2 \\]\n"
    groups = equations(text)
    assert [(g.line, [t.latex for t in g.terms], g.inline) for g in groups] == [
        (1, ["x", "1"], True), (3, ["f", "\\|A\\|_F^2", "\\mathrm{tr}(A^TA)"], False), (6, ["y", "2"], False)]
    assert [t.line for t in groups[1].terms] == [3, 3, 5]
    rows = equations(LSQ)[-2]
    assert [t.line for t in rows.terms] == [10, 10, 11, 12]


def test_names_are_read_by_the_language_and_matched_to_the_network() -> None:
    assert name_of(r"h_{\text{sigmoid}}") == "h_sigmoid" and name_of(r"X^T") is None
    assert gradient_of(r"\frac{\partial f}{\partial W_{1}}") == ("f", "W1") and gradient_of("X + Y") is None
    net = derive.program("X: n×d; Y: n×k\nparam W1: d×m; param W2: m×k\nh = X*W1\nH = sigmoid(h)\n"
                         "Ypred = H*W2\nf = norm2(Ypred - Y)^2")
    assert [alias(w, net) for w in ("Y_pred", "h_sigmoid", "h_tanh", "Q")] == ["Ypred", "H", None, None]
    text, found = program_text(r"\sigma(XW_1) \odot \mathbf{1}", set())
    assert found == ["sigmoid", "X", "W1"] and text == "sigmoid ( X W1 ) .* 𝟏"
    with pytest.raises(ExpressionError, match=r"\\int"):       # the language's one-line error
        program_text(r"\int X", set())


def test_a_grade_through_the_language_with_a_programs_stage_names() -> None:
    """--net: the write-up's h_sigmoid is the program's H, its differential held like H's."""
    prog = ("X: n×d; Y: n×k\nparam W1: d×m; param W2: m×k\nh = X*W1\nH = sigmoid(h)\nYpred = H*W2\n"
            "f = norm2(Ypred - Y)^2")
    text = (r"$$\begin{aligned} df &= \mathrm{tr}[2(Y_{pred} - Y)^T \mathrm{d}Y_{pred}] \\"
            r" &= \mathrm{tr}[2(Y_{pred} - Y)^T \mathrm{d}(h_{sigmoid}) W_2] \end{aligned}$$" "\n\n"
            r"$$\frac{\partial f}{\partial h_{sigmoid}} = 2(Y_{pred} - Y)W_2^T$$" "\n")
    r = grade(text, net=prog, net_name="net.tg")
    assert [(e.line, e.step, e.verdict) for e in r.entries] == [(1, 1, "correct"), (1, 2, "correct"),
                                                                 (3, 0, "correct")]
    assert "everything but H" in r.entries[1].message


def test_forward_mode_against_finite_differences() -> None:
    net = derive.program("X: n×d; Y: n×k\nparam W1: d×m; param W2: m×k\nH = tanh(X*W1)\nP = softmax(H*W2)\n"
                         "f = norm2(P - Y)^2")
    for p in points(net, "f", 2, seed=3):
        _, slope = evaluate(net.loss, p)
        eps = 1e-6
        moved = {**p.values, **{s: p.values[s] + eps * d for s, d in p.directions.items()}}
        back = {**p.values, **{s: p.values[s] - eps * d for s, d in p.directions.items()}}
        fd = (evaluate(net.loss, type(p)(net, "f", p.sizes, moved, {}, p.pool))[0]
              - evaluate(net.loss, type(p)(net, "f", p.sizes, back, {}, p.pool))[0]) / (2 * eps)
        assert abs(fd - slope) <= 1e-6 * max(1.0, abs(slope))
        assert len(set(p.sizes.values())) == len(p.sizes)        # non-square, all different


def test_least_squares_all_correct_and_a_misordered_product_located() -> None:
    r = grade(LSQ)
    assert [(e.line, e.step, e.kind, e.verdict) for e in r.entries] == [
        (5, 0, "definition", "correct"), (7, 0, "definition", "correct"), (10, 1, "chain", "correct"),
        (11, 2, "chain", "correct"), (12, 3, "chain", "correct"), (15, 0, "result", "correct")]
    bad = grade(LSQ.replace(r"\mathrm{tr}(2E^T X dW)", r"\mathrm{tr}(2X E^T dW)"))
    flagged = [(e.line, e.step, e.verdict) for e in bad.entries if e.verdict in ("wrong", "shape-error")]
    assert flagged == [(11, 2, "shape-error")]


def test_cyclic_rule_on_square_matrices() -> None:
    text = ("$A \\in \\mathbb{R}^{n \\times n}$, $B \\in \\mathbb{R}^{n \\times n}$, $X \\in \\mathbb{R}^{n \\times n}$\n\n"
            "$$f = \\mathrm{tr}(AXB)$$\n\n$$df = \\mathrm{tr}(A dX B) = \\mathrm{tr}(A B dX)$$\n")
    r = grade(text)
    step = [e for e in r.entries if e.kind == "chain"]
    assert [(e.step, e.verdict) for e in step] == [(1, "correct"), (2, "wrong")]
    assert step[1].rule == "cyclic" and "tr(ABC) = tr(CAB)" in step[1].message


def test_transpose_and_sign_rules() -> None:
    flipped = grade(LSQ.replace(r"&= \mathrm{tr}(2E^T X dW)", r"&= \mathrm{tr}(-2E^T X dW)"))
    e = next(e for e in flipped.entries if e.verdict == "wrong")
    assert (e.line, e.rule) == (11, "sign")
    square = LSQ.replace("d \\times k", "d \\times d").replace("n \\times k", "n \\times d")
    dropped = grade(square.replace(r"&= \mathrm{tr}(2(X^TE)^T dW)", r"&= \mathrm{tr}(2(X^TE) dW)"))
    e = next(e for e in dropped.entries if e.verdict == "wrong")
    assert (e.line, e.rule) == (12, "transpose")


def test_grade_against_a_program_and_a_tex_file() -> None:
    net = "X: n×d; Y: n×k\nparam W: d×k\nE = X*W - Y\nf = norm2(E)^2"
    tex = ("\\documentclass{article}\\begin{document}\n% a comment with $x = 1$\n"
           "\\begin{align}\ndf &= \\mathrm{tr}(2E^T X dW) \\\\\n&= \\mathrm{tr}(2(X^TE)^T dW)\n\\end{align}\n"
           "\\[ \\frac{\\partial f}{\\partial W} = 2X^T(XW - Y) \\]\n\\end{document}\n")
    r = grade(tex, net=net, net_name="lsq.tg")
    assert [(e.line, e.step, e.verdict) for e in r.entries] == [(4, 1, "correct"), (5, 2, "correct"), (7, 0, "correct")]
    assert r.network == "the network from lsq.tg"


def test_unusable_input() -> None:
    with pytest.raises(GradeError, match="no equation"):
        grade("just prose")
    with pytest.raises(GradeError, match="defines no network"):
        grade("$$\\frac{\\partial f}{\\partial W} = 2X$$")


def test_writers() -> None:
    r = grade(LSQ, lang="zh")
    md = write(r, "markdown")
    assert "| 行 | 步 | 类别 | 结论 | 等式 | 说明 |" in md and "= 2X^T E$ |" in md
    page = write(r, "html")
    assert page.startswith("<!DOCTYPE html>") and page.count("<math") == len(r.entries) == 6
    assert 'title="\\frac{\\partial f}{\\partial W} = 2X^T E"' in page and "<code>" not in page
    assert "<mfrac><mrow><mi>&#8706;</mi><mi>f</mi></mrow>" in page     # ∂f/∂W as MathML
    assert "行 15 · 结果 · 正确" in write(r, "text")
    rows = json.loads(write(r, "json"))
    assert list(rows[0])[:7] == ["line", "step", "latex", "kind", "verdict", "readings", "message"]


@pytest.mark.parametrize(("edit", "status"), [(None, 0), ((r"= 2X^T E$$", r"= X^T E$$"), 1)])
def test_cli_exit_status(tmp_path, capsys, edit, status) -> None:
    path = tmp_path / "w.md"
    path.write_text(LSQ if edit is None else LSQ.replace(*edit), encoding="utf-8")
    assert main(["grade", str(path)]) == status
    out = capsys.readouterr().out
    assert "Grade of" in out
    if status:
        assert "the answer is 1/2 times ∂f/∂W" in out


def test_cli_unusable_input_is_status_2(tmp_path, capsys) -> None:
    path = tmp_path / "w.md"
    path.write_text("no math here", encoding="utf-8")
    assert main(["grade", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no equation" in err


def test_cli_as_a_process() -> None:
    out = subprocess.run([sys.executable, "-m", "derive", "grade", "-", "--format", "json"], input=LSQ,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [r["verdict"] for r in json.loads(out.stdout)] == ["correct"] * 6


def test_product_rule_term_missing() -> None:
    # A appears twice: holding one A fixed is no reading, the term of the other is missing
    text = ("$A \\in \\mathbb{R}^{n \\times n}$, $X \\in \\mathbb{R}^{n \\times n}$\n\n$$f = \\mathrm{tr}(AXA)$$\n\n"
            "$$df = \\mathrm{tr}(d(AXA)) = \\mathrm{tr}(dA\\, XA)$$\n\n$$\\frac{\\partial f}{\\partial A} = (XA + AX)^T$$\n")
    chain = [e for e in grade(text).entries if e.kind == "chain"]
    assert [(e.step, e.verdict, e.rule) for e in chain] == [(1, "correct", ""), (2, "wrong", "product")]
