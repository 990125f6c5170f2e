"""derive.check.check_answer and ``tracegrad check --net NET.tg`` on programs (derive.program): softmax
regression and a 3-layer tanh net, answers in LaTeX and in the ASCII language, for parameters and
intermediates.  The right answers are right by an independent oracle first: the same formula written
by hand in NumPy against central finite differences of the loss written by hand in NumPy
(tests.oracle), at non-square dimensions n=4, d=3, m=5, k=2.  The wrong ones (a dropped transpose,
a missing σ′/tanh′, a sign, a factor) are wrong by construction and must be diagnosed."""
from __future__ import annotations

import numpy as np
import pytest

from derive import program
from derive.check import check_answer
from derive.cli import main
from tests.oracle import fd_gradient, rel_err

SOFTMAX = """X: n×d; Y: n×k
param W: d×k; param b: 1×k
Z = X*W + b
f = cross_entropy(Z, Y)
"""
TANH3 = """X: n×d; Y: n×k
param W1: d×m; param b1: 1×m
param W2: m×m; param b2: 1×m
param W3: m×k; param b3: 1×k
Z1 = X*W1 + b1; A1 = tanh(Z1)
Z2 = A1*W2 + b2; A2 = tanh(Z2)
Yhat = A2*W3 + b3
f = norm2(Yhat - Y)^2 / n
"""
N, D, M, K = 4, 3, 5, 2


# ------------------------------------------------------------------ the oracles, by hand in NumPy

def _softmax(Z: np.ndarray) -> np.ndarray:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _softmax_data(rng: np.random.Generator) -> dict:
    Y = rng.random((N, K)) + 0.1
    return {"X": rng.standard_normal((N, D)), "Y": Y / Y.sum(axis=1, keepdims=True),
            "W": rng.standard_normal((D, K)), "b": rng.standard_normal((1, K))}


def _softmax_loss(X, Y, W, b) -> float:
    Z = X @ W + b
    return float(-np.sum(Y * (Z - np.log(np.sum(np.exp(Z), axis=1, keepdims=True)))))


def _tanh3_data(rng: np.random.Generator) -> dict:
    shapes = {"X": (N, D), "Y": (N, K), "W1": (D, M), "b1": (1, M), "W2": (M, M), "b2": (1, M),
              "W3": (M, K), "b3": (1, K)}
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


def _tanh3_forward(X, Y, W1, b1, W2, b2, W3, b3) -> dict:
    Z1 = X @ W1 + b1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2 + b2
    A2 = np.tanh(Z2)
    return {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2, "Yhat": A2 @ W3 + b3}


def _tanh3_loss(X, Y, W1, b1, W2, b2, W3, b3) -> float:
    return float(np.sum((_tanh3_forward(X, Y, W1, b1, W2, b2, W3, b3)["Yhat"] - Y) ** 2) / X.shape[0])


def _tanh3_answers(v: dict) -> dict:
    """The right answers below, written again by hand in NumPy."""
    fw = _tanh3_forward(**v)
    G3 = 2 / N * (fw["Yhat"] - v["Y"])
    GZ2 = (G3 @ v["W3"].T) * (1 - fw["A2"] ** 2)
    GZ1 = (GZ2 @ v["W2"].T) * (1 - fw["A1"] ** 2)
    return {"W3": fw["A2"].T @ G3, "b3": G3.sum(axis=0, keepdims=True), "W2": fw["A1"].T @ GZ2,
            "b2": GZ2.sum(axis=0, keepdims=True), "W1": v["X"].T @ GZ1, "b1": GZ1.sum(axis=0, keepdims=True)}


def test_the_oracles_agree_with_finite_differences() -> None:
    v = _tanh3_data(np.random.default_rng(0))
    names = list(v)
    answers = _tanh3_answers(v)
    for p, G in answers.items():
        assert rel_err(G, fd_gradient(_tanh3_loss, list(v.values()), names.index(p))) < 1e-6
    s = _softmax_data(np.random.default_rng(1))
    GW = s["X"].T @ (_softmax(s["X"] @ s["W"] + s["b"]) - s["Y"])
    assert rel_err(GW, fd_gradient(_softmax_loss, list(s.values()), 2)) < 1e-6


# ------------------------------------------------------------------------------ the API

G3 = r"\frac{2}{n}(\hat{Y} - Y)"
GZ2 = r"[\frac{2}{n}(\hat{Y} - Y)W_3^T] \odot (1 - A_2 \odot A_2)"
GZ1 = r"\{[" + GZ2 + r"]W_2^T \odot \tanh'(Z_1)\}"

RIGHT = [
    (SOFTMAX, r"X^T(\mathrm{softmax}(Z) - Y)", "W"),
    (SOFTMAX, "X'*(softmax(Z) - Y)", "W"),
    (SOFTMAX, r"\mathbf{1}^T(\operatorname{softmax}(Z) - Y)", "b"),
    (SOFTMAX, r"\mathrm{softmax}(Z) - Y", "Z"),
    (TANH3, r"\frac{2}{n}A_2^T(\hat{Y} - Y)", "W3"),
    (TANH3, r"\mathbf{1}_n^T" + G3, "b3"),
    (TANH3, G3 + "W_3^T", "A2"),
    (TANH3, GZ2, "Z2"),
    (TANH3, r"[\frac{2}{n}(\hat{Y} - Y)W_3^T] \odot \tanh'(Z_2)", "Z2"),
    (TANH3, r"A_1^T[" + GZ2 + "]", "W2"),
    (TANH3, r"X^T" + GZ1, "W1"),
    (TANH3, r"\mathbf{1}^T" + GZ1, "b1"),
    (TANH3, "2/n*X'*((((Yhat - Y)*W3') .* (1 - A2.^2))*W2' .* (1 - A1.^2))", "W1"),
]


@pytest.mark.parametrize("net, answer, wrt", RIGHT, ids=[f"{w}:{a}" for _, a, w in RIGHT])
def test_right_answers_are_accepted(net: str, answer: str, wrt: str) -> None:
    r = check_answer(answer, wrt, program(net))
    assert r.correct, str(r)
    assert r.verdict.startswith(f"correct: the answer equals ∂f/∂{wrt}")


def test_right_answers_are_right_by_the_oracle() -> None:
    """The LaTeX answers for the parameters of TANH3, evaluated by the checker's parse through
    numeric's kernels, equal the hand-written NumPy gradients."""
    from numeric import compile as compile_kernel

    from derive.checking.problem import answer_shapes, problem_of
    from derive.lang import parse

    net = program(TANH3)
    shapes = answer_shapes(net, problem_of(net).scalars)
    v = _tanh3_data(np.random.default_rng(2))
    want = _tanh3_answers(v)
    args = list(net.inputs) + list(net.params)
    for _, answer, wrt in (x for x in RIGHT if x[0] is TANH3 and x[2] in want):
        expr = net.expand(parse(answer, shapes, infer=False, syntax="auto").expr)
        got = compile_kernel(expr, args)(*[v[a.name] for a in args])
        assert rel_err(got, want[wrt]) < 1e-10, answer


def test_a_dropped_transpose_is_the_transposed_shape_or_does_not_conform() -> None:
    net = program(TANH3)
    r = check_answer(r"\frac{2}{n}(\hat{Y} - Y)^T A_2", "W3", net)
    assert not r.correct and "wrong shape" in r.verdict
    assert "transposed shape" in " ".join(r.details)
    r = check_answer(r"X" + GZ1, "W1", net)
    assert not r.correct and r.verdict.startswith("the answer does not conform")


def test_a_missing_derivative_names_the_step() -> None:
    net = program(TANH3)
    r = check_answer(r"X^T\{[" + GZ2 + r"]W_2^T\}", "W1", net)       # tanh′(Z1) forgotten
    text = str(r)
    assert not r.correct
    assert "∂f/∂A1 is right" in text
    assert "the step from ∂f/∂A1 to ∂f/∂Z1 is where the answer first differs" in text
    r = check_answer(r"A_1^T[\frac{2}{n}(\hat{Y} - Y)W_3^T]", "W2", net)   # tanh′(Z2) forgotten
    assert "the step from ∂f/∂A2 to ∂f/∂Z2 is where the answer first differs" in str(r)


def test_a_sign_error_and_a_factor() -> None:
    r = check_answer(r"X^T(Y - \mathrm{softmax}(Z))", "W", program(SOFTMAX))
    assert not r.correct and "the answer is −1 times ∂f/∂W: a sign error" in r.details
    net = program(TANH3)
    r = check_answer(r"-A_1^T[" + GZ2 + "]", "W2", net)
    assert not r.correct and "−1 times ∂f/∂W2: a sign error" in str(r)
    r = check_answer(r"2A_2^T(\hat{Y} - Y)", "W3", net)         # the 1/n lost
    assert not r.correct and "the answer is n times ∂f/∂W3" in str(r)


def test_an_ambiguous_answer_is_checked_under_each_reading() -> None:
    net = program(TANH3)
    r = check_answer(r"A_1^T[\frac{2}{n}(\hat{Y} - Y)W_3^T] \odot (1 - A_2 \odot A_2)", "W2", net)
    assert r.correct and r.reading == "tighter"
    assert r.verdict.startswith("under the reading ⊙ tighter than product: A_1^T[[")
    assert any("⊙ looser than product" in d and "does not conform" in d for d in r.details)
    r = check_answer(r"-A_1^T[\frac{2}{n}(\hat{Y} - Y)W_3^T] \odot \tanh'(Z_2)", "W2", net, lang="zh")
    assert not r.correct and r.reading == "tighter" and "符号错误" in str(r)


def test_unknown_variable_and_names() -> None:
    net = program(SOFTMAX)
    with pytest.raises(ValueError, match="not a variable of the network"):
        check_answer("X", "V", net)
    from derive.lang import ExpressionError

    with pytest.raises(ExpressionError, match="unknown name"):
        check_answer(r"X^T(P - Y)", "W", net)


# ------------------------------------------------------------------------------ the CLI

@pytest.fixture
def tanh3_file(tmp_path):
    path = tmp_path / "tanh3.tg"
    path.write_text(TANH3, encoding="utf-8")
    return str(path)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_on_a_program(capsys, tanh3_file) -> None:
    status, out, _ = _run(capsys, r"X^T" + GZ1, "--wrt", "W1", "--net", tanh3_file)
    assert status == 0 and out.startswith("correct: the answer equals ∂f/∂W1")
    status, out, _ = _run(capsys, r"X^T\{[" + GZ2 + r"]W_2^T\}", "--wrt", "W1", "--net", tanh3_file)
    assert status == 1 and "the step from ∂f/∂A1 to ∂f/∂Z1" in out
    status, _, _ = _run(capsys, "2/n*A2'*(Yhat - Y)", "--wrt", "W3", "--net", tanh3_file, "--syntax", "ascii")
    assert status == 0
    status, out, _ = _run(capsys, r"\frac{2}{n}A_2^T(\hat{Y} - Y)", "--wrt", "A2", "--net", tanh3_file,
                          "--lang", "zh")
    assert status == 1 and out.startswith("维度错误：∂f/∂A2 为 n×m，答案为 m×k")


def test_cli_latex_on_the_seed_default(capsys) -> None:
    status, out, _ = _run(capsys, r"2X^T[(Y_{pred} - Y)W_2^T \odot \sigma'(h)]", "--wrt", "W1")
    assert status == 0 and out.startswith("correct")
    status, out, _ = _run(capsys, r"2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)", "--wrt", "h", "--syntax", "latex")
    assert status == 0 and out.startswith("under the reading ⊙ looser than product")


@pytest.mark.parametrize("argv, words", [
    ((r"X^\top Y", "--wrt", "W1", "--syntax", "ascii"), "unexpected character '\\\\'"),
    ((r"X^T(Y", "--wrt", "W1", "--syntax", "latex"), "never closed"),
    (("X", "--wrt", "W1", "--net", "/nonexistent/net.tg"), "cannot read /nonexistent/net.tg"),
    (("X", "--wrt", "W1", "--syntax", "tex"), "invalid choice"),
])
def test_cli_errors_are_one_line(capsys, argv, words) -> None:
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    assert words in err and "Traceback" not in err, err
    if "tex" not in argv:    # argparse's own usage line comes first for a bad choice
        assert err.count("\n") == 1, err


def test_cli_a_bad_program_file(capsys, tmp_path) -> None:
    path = tmp_path / "bad.tg"
    path.write_text("X: n×d\nparam W: d×k\nf = norm2(X*W\n", encoding="utf-8")
    status, out, err = _run(capsys, "X", "--wrt", "W", "--net", str(path))
    assert status == 2 and out == "" and err.count("\n") == 1 and str(path) in err

