"""The LaTeX dialect of the expression language (derive.lang, ``syntax="latex"``): every construct
students write reads as the ASCII language's parse of the same formula (compared structurally, and
numerically by SymPy with explicit matrices, tests.oracle.evaluate, at non-square dimensions
n=4, d=3, m=5, k=2); σ′ and tanh′ against their closed forms in NumPy; the readings of ⊙ against the
product; bad LaTeX is a one-line error with a column; the seed write-up's own formulas parse."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy import MatrixSymbol

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.lang import ExpressionError, is_latex, parse, readings, syntax_check
from derive.laws import Gradient
from derive.render.locale import get_locale
from tests.oracle import DIMS, evaluate, np_sigmoid, random_values

SHAPES = {"X": ("n", "d"), "Y": ("n", "k"), "W1": ("d", "m"), "b1": (1, "m"), "W2": ("m", "k"), "b2": (1, "k"),
          "h": ("n", "m"), "H": ("n", "m"), "Ypred": ("n", "k"), "Yhat": ("n", "k"), "Z": ("n", "m"),
          "A": ("n", "m"), "B": ("m", "k"), "C": ("n", "m"), "S": ("m", "m"), "c": ()}
SEED = Path("/work/shared/seed/000_4129d02100056eea.txt")
if not SEED.exists():   # the repository's copy where the shared folder is absent
    SEED = Path(__file__).resolve().parents[2] / "docs" / "seed.txt"


def _latex(text: str, shapes: dict = SHAPES):
    return parse(text, shapes, syntax="latex")


def _values(*exprs: sympy.Basic, seed: int = 0) -> dict:
    syms = sorted({s for e in exprs for s in e.free_symbols if isinstance(s, MatrixSymbol)}, key=str)
    return random_values(syms, np.random.default_rng(seed))


def _numerically_equal(a: sympy.Basic, b: sympy.Basic) -> bool:
    for seed in (0, 1):
        v = _values(a, b, seed=seed)
        x, y = evaluate(a, v), evaluate(b, v)
        if x.shape != y.shape or not np.allclose(x, y, rtol=1e-10, atol=1e-12):
            return False
    return True


# (LaTeX as students write it, the same formula in the ASCII language)
PAIRS = [
    (r"2X^T[(Y_{pred} - Y)W_2^T \odot \sigma'(h)]",
     "2*X'*(((Ypred - Y)*W2') .* (sigmoid(h) .* (1 - sigmoid(h))))"),
    (r"X^\top Y", "X'*Y"), (r"X^{T} Y", "X'*Y"), (r"X^T Y", "X'*Y"), (r"X^{\top}Y", "X'*Y"),
    (r"X^\intercal Y", "X'*Y"), (r"X^{\mathsf{T}} Y", "X'*Y"),
    (r"A \odot C", "A .* C"), (r"A \circ C", "A .* C"), (r"A^T \cdot C", "A'*C"), (r"A^T \times C", "A'*C"),
    (r"\sigma(h)", "sigmoid(h)"), (r"\sigma'(h)", "sigmoid(h) .* (1 - sigmoid(h))"),
    (r"sigmoid'(h)", "sigmoid(h) .* (1 - sigmoid(h))"), (r"\text{sigmoid}'(h)", "sigmoid(h) .* (1 - sigmoid(h))"),
    (r"\tanh'(Z)", "1 - tanh(Z).^2"), (r"\sigma^{\prime}(h)", "sigmoid(h) .* (1 - sigmoid(h))"),
    (r"\sigma^\prime(h) + (W_1^{\prime} X^\prime)^\prime", "sigmoid(h) .* (1 - sigmoid(h)) + X*W1"),
    (r"\mathrm{tr}(A^T C)", "tr(A'*C)"), (r"\operatorname{tr}(A^T C)", "tr(A'*C)"), (r"tr[A^T C]", "tr(A'*C)"),
    (r"A^TC", "A'*C"), (r"A \odot C^{\circ -1/2}", "A .* C.^(-1/2)"), (r"A^{\circ 2}", "A.^2"),
    (r"\mathrm{tr}\left[A^T C\right]", "tr(A'*C)"), (r"\operatorname{Tr}\{A^T C\}", "tr(A'*C)"),
    (r"tr\{(Y - Y_{pred})^T(Y - Y_{pred})\}", "tr((Y - Ypred)'*(Y - Ypred))"),
    (r"\|Y - Y_{pred}\|_F^2", "norm2(Y - Ypred)^2"), (r"||Y - Y_{pred}||_F^2", "norm2(Y - Ypred)^2"),
    (r"\left\|A\right\|_{F}^{2}", "norm2(A)^2"), (r"\lVert A \rVert_F^2", "norm2(A)^2"),
    (r"\left( A + C \right) B", "(A + C)*B"), (r"\left[ A + C \right] B", "(A + C)*B"),
    (r"\{A + C\} B", "(A + C)*B"), (r"\bigl(A + C\bigr) B", "(A + C)*B"), (r"{A + C} B", "(A + C)*B"),
    (r"\frac{1}{2} A", "(1/2)*A"), (r"\frac{A}{c}", "A/c"), (r"\frac{2}{n}A^T C", "(2/n)*A'*C"),
    (r"\dfrac{A + C}{2}", "(A + C)/2"), (r"\frac{\|A\|_F^2}{n}", "norm2(A)^2/n"),
    (r"\mathbf{1}^T A", "ones(n, 1)'*A"), (r"\mathbf{1}_n^T A", "ones(n, 1)'*A"),
    (r"\boldsymbol{1}^T A", "ones(n, 1)'*A"), (r"\mathbb{1}_{n}^T A", "ones(n, 1)'*A"),
    (r"A \mathbf{1}", "A*ones(m, 1)"), (r"\mathbf{1} - \sigma(h)", "ones(n, m) - sigmoid(h)"),
    (r"1 - \sigma(h)", "ones(n, m) - sigmoid(h)"),
    (r"W_1", "W1"), (r"W_{1}", "W1"), (r"Y_{pred}", "Ypred"), (r"Y_{\text{pred}}", "Ypred"), (r"\hat{Y}", "Yhat"),
    (r"\hat Y - Y", "Yhat - Y"), (r"XW_1 + b_1", "X*W1 + b1"), (r"h_{sigmoid}", "sigmoid(h)"),
    (r"2\,X^T\;(Y_{pred} - Y)\quad ~", "2*X'*(Ypred - Y)"), (r"\exp(A) + \log(C) + \ln(A)", "exp(A) + log(C) + log(A)"),
    (r"\tanh(Z)", "tanh(Z)"), (r"\max(Z, 0)", "relu(Z)"), (r"\max(0, Z)", "relu(Z)"), (r"max(Z, 0)", "relu(Z)"),
    (r"- X^{-1}", "-X^-1"), (r"S^{-1} S^2", "S^-1*S^2"), (r"S^{-T}", "(S^-1)'"),
]


@pytest.mark.parametrize("latex, ascii_", PAIRS, ids=[p[0] for p in PAIRS])
def test_latex_reads_as_the_ascii_formula(latex: str, ascii_: str) -> None:
    shapes = {**SHAPES, "X": ("n", "n")} if "X^{-1}" in latex else SHAPES
    got, want = _latex(latex, shapes).expr, parse(ascii_, shapes).expr
    assert got == want or _numerically_equal(got, want), (got, want)


def test_derivatives_of_elementwise_functions_against_numpy() -> None:
    h = MatrixSymbol("h", *(sympy.Symbol(s, integer=True, positive=True) for s in "nm"))
    v = {h: np.random.default_rng(3).standard_normal((DIMS["n"], DIMS["m"]))}
    s = np_sigmoid(v[h])
    assert np.allclose(evaluate(_latex(r"\sigma'(h)").expr, v), s * (1 - s))
    assert np.allclose(evaluate(_latex(r"\tanh'(h)").expr, v), 1 - np.tanh(v[h]) ** 2)
    assert np.allclose(evaluate(_latex(r"\max(h, 0)").expr, v), np.maximum(v[h], 0))


def test_a_declared_alias_reads_as_itself() -> None:
    shapes = {**SHAPES, "h_sigmoid": ("n", "m")}
    assert _latex(r"2h_{sigmoid}^T[(Y_{pred} - Y)]", shapes).expr == parse("2*h_sigmoid'*(Ypred - Y)", shapes).expr
    notes = " ".join(str(n) for n in _latex(r"h_{sigmoid}").notes)
    assert "h_sigmoid read as sigmoid(h)" in notes


def test_differentials() -> None:
    X, W1 = _latex("X").expr, _latex("W_1").expr
    assert _latex(r"\mathrm{d}X").expr == MatrixDifferential(X)
    assert _latex("dX").expr == MatrixDifferential(X)
    assert _latex(r"(dY_{pred})^T").expr == parse("Ypred", SHAPES).expr.T.func(MatrixDifferential(_latex("Ypred").expr))
    assert _latex(r"d(XW_1 + b_1)").expr == MatrixDifferential(parse("X*W1 + b1", SHAPES).expr)
    assert _latex(r"\mathrm{d}(W_1)").expr == MatrixDifferential(W1)
    assert _latex("df").expr == ScalarDifferential(sympy.Symbol("f"))
    inner = parse("tr((Y - Ypred)'*(Y - Ypred))", SHAPES).expr
    assert _latex(r"d\{tr[(Y - Y_{pred})^T(Y - Y_{pred})]\}").expr == ScalarDifferential(inner)
    assert _latex(r"tr\{d[(Y - Y_{pred})^T(Y - Y_{pred})]\}").expr == sympy.Trace(
        MatrixDifferential(parse("(Y - Ypred)'*(Y - Ypred)", SHAPES).expr))
    # a product with the differential of a parameter, and the ASCII language reads dW2 and d(...) too
    assert _latex(r"tr[2(Y_{pred} - Y)^T h_{sigmoid} d(W_2)]").expr == parse(
        "tr(2*(Ypred - Y)'*sigmoid(h)*dW2)", SHAPES).expr
    no_d = {k: v for k, v in SHAPES.items() if k in ("X", "W1", "b1")}
    no_d["X"] = ("n", "p")
    no_d["W1"] = ("p", "m")
    assert parse("d(X*W1 + b1)", no_d).expr == MatrixDifferential(parse("X*W1 + b1", no_d).expr)
    # where d is a dimension the ASCII language keeps it one (d*(…)); LaTeX reads the differential
    with pytest.raises(ExpressionError, match="for a product write d"):
        parse("d(W1)", SHAPES)
    # a declared d is a variable, not the differential
    assert parse("d*X", {"d": (), "X": (2, 3)}).expr == sympy.Symbol("d") * MatrixSymbol("X", 2, 3)


def test_gradients() -> None:
    W1 = _latex("W_1").expr
    assert _latex(r"\frac{\partial f}{\partial W_1}").expr == Gradient(sympy.Symbol("f"), W1)
    g = _latex(r"\frac{\partial f}{\partial Y_{pred}} - 2(Y_{pred} - Y)").expr
    assert Gradient(sympy.Symbol("f"), _latex("Ypred").expr) in g.args
    assert _latex(r"\frac{\partial f}{\partial \hat{Y}}").expr == Gradient(sympy.Symbol("f"), _latex("Yhat").expr)
    g = parse(r"\frac{\partial f}{\partial \gamma}", {"gamma": (1, "m")}, syntax="latex").expr   # a Greek name
    assert g == Gradient(sympy.Symbol("f"), sympy.MatrixSymbol("gamma", 1, sympy.Symbol("m", integer=True, positive=True)))
    with pytest.raises(ExpressionError, match="not one variable"):
        _latex(r"\frac{\partial f}{\partial h_{sigmoid}}")


# ------------------------------------------------------------------------- readings

def test_readings_of_hadamard_against_the_product() -> None:
    text = r"2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)"          # the seed's ∂f/∂h
    rs = readings(text, SHAPES)
    assert [r.key for r in rs] == ["looser", "tighter"]
    assert rs[0].parsed is not None and rs[1].parsed is None and rs[1].error.kind == "shape"
    assert rs[0].parsed.expr == parse("(2*(Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h))", SHAPES).expr
    assert rs[0].text == r"[2(Y_{pred} - Y)W_2^T] \odot sigmoid'(h)"
    assert rs[1].text == r"2(Y_{pred} - Y)[W_2^T \odot sigmoid'(h)]"
    # both readings conform: a (3×4)(4×5) product against a 4×5 (tighter) or 3×5 (looser) matrix
    shapes = {"P": (3, 4), "Q": (4, 5), "R": (4, 5), "T3": (3, 5)}
    tight = readings(r"P Q \odot R", shapes)
    assert tight[1].parsed.expr == parse("P*(Q .* R)", shapes).expr and tight[0].parsed is None
    both = readings(r"P Q \odot T3", shapes)
    assert both[0].parsed.expr == parse("(P*Q) .* T3", shapes).expr and both[1].parsed is None
    inside = readings(r"2X^T[(Y_{pred} - Y)W_2^T \odot \sigma'(h)]", SHAPES)    # inside brackets too
    assert [r.key for r in inside] == ["looser", "tighter"] and inside[1].error is not None
    assert inside[0].parsed.expr == _latex(r"2X^T[((Y_{pred} - Y)W_2^T) \odot \sigma'(h)]").expr
    assert inside[1].text == r"2X^T[(Y_{pred} - Y)[W_2^T \odot \sigma'(h)]]"
    longer = readings(r"P Q \odot R \odot R U", {**shapes, "U": (5, 2)})
    assert longer[-1].parsed.expr == parse("P*(Q .* R .* R)*U", {**shapes, "U": (5, 2)}).expr
    assert [r.key for r in longer] == ["looser", "between", "between", "tighter"]
    # ⊙ over part of a longer product: the seed's ∂f/∂W1, right as its line before it reads it
    w1 = readings(r"2X^T(Y_{pred} - Y)W_2^T \odot sigmoid'(h)", SHAPES)
    assert [r.key for r in w1] == ["looser", "between", "tighter"]
    assert w1[1].text == r"2X^T[(Y_{pred} - Y)W_2^T \odot sigmoid'(h)]"
    assert w1[1].parsed.expr == _latex(r"2X^T[((Y_{pred} - Y)W_2^T) \odot \sigma'(h)]").expr
    signed = readings(r"-P Q \odot R", shapes)
    assert signed[1].parsed.expr == parse("-P*(Q .* R)", shapes).expr
    # the words are the audit's (tests.hand_audit), in both languages
    for lang in ("en", "zh"):
        for r in rs:
            assert get_locale(lang).say(f"audit_reading_{r.key}", math=r.text)


def test_a_stray_closing_bracket_at_the_end_is_dropped_with_a_note() -> None:
    p = parse(r"tr[A^T C]\}", SHAPES, syntax="latex")          # the seed's line 61: d\{tr[…] split over two lines
    assert p.expr == parse("tr(A'*C)", SHAPES).expr
    assert [n.kind for n in p.notes] == ["stray-bracket"] and "\\}" in str(p.notes[0])


def test_unambiguous_texts_have_one_reading() -> None:
    for text in (r"2X^T[((Y_{pred} - Y)W_2^T) \odot \sigma'(h)]", r"(A \odot C) B", r"X^T Y", r"(A^T A) \odot S"):
        rs = readings(text, SHAPES)
        assert [r.key for r in rs] == ["as_written"] and rs[0].parsed is not None
    bad = readings(r"X^T(Y", SHAPES)
    assert len(bad) == 1 and bad[0].error is not None and bad[0].error.kind == "syntax"


# --------------------------------------------------------------------------- errors

BAD = [
    (r"\frac{a}", 8, "\\frac takes two groups"),
    (r"\foo X", 1, "unknown LaTeX command '\\\\foo'"),
    (r"X^T (Y", 5, "never closed"),
    (r"\left( X^T Y", 6, "never closed"),
    (r"A \} + C", 3, "no matching"),
    (r"(A + C]", 7, "expected ')'"),
    (r"|A|", 1, "not supported"),
    (r"X = Y", 3, "'='"),
    (r"\operatorname{diag}(A)", 1, "diag"),
    (r"\sum_i A", 1, "not supported"),
    (r"A \odot", 3, "expected an operand"),
    (r"W_{}", 2, "subscript"),
    (r"\frac{\partial^2 f}{\partial W_1^2}", 1, "derivative"),
    (r"\max(A, C)", 1, "max(Z, 0)"),
]


@pytest.mark.parametrize("text, column, words", BAD, ids=[b[0] for b in BAD])
def test_bad_latex_is_a_one_line_error_with_a_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as info:
        _latex(text)
    e = info.value
    message = str(e)
    assert "\n" not in message and "Traceback" not in message and "sympy" not in message.lower()
    assert e.column == column, message
    assert words in message, message
    if e.kind in ("syntax", "unsupported"):
        with pytest.raises(ExpressionError):
            syntax_check(text, list(SHAPES), syntax="latex")


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("XYW_12^T{}()[]|\\' +-") + [
    "\\odot", "\\frac", "\\left(", "\\right)", "\\sigma", "\\mathbf{1}", "\\partial", "d", "_{pred}", "\\|"]),
    max_size=12).map("".join))
def test_any_text_parses_or_is_an_expression_error(text: str) -> None:
    try:
        _latex(text)
    except ExpressionError as e:
        assert "\n" not in str(e)
    try:
        readings(text, SHAPES)
    except ExpressionError:   # readings never raises ExpressionError
        raise AssertionError(text) from None


def test_the_dialect_is_detected() -> None:
    assert is_latex(r"X^\top", "auto") and is_latex("W_{1}", "auto") and is_latex("X^{T}", "auto")
    assert not is_latex("X'*Y", "auto") and is_latex("X'*Y", "latex") and not is_latex(r"\odot", "ascii")
    assert parse(r"X^\top Y", SHAPES, syntax="auto").expr == parse("X'*Y", SHAPES).expr
    with pytest.raises(ValueError, match="syntax must be one of"):
        parse("X", SHAPES, syntax="tex")


# ------------------------------------------------------------------------ the seed

def _display_sides(text: str) -> list[tuple[int, str]]:
    """(line, side) for each side of each equation in the seed's $…$ and $$…$$."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", line):
            math = m[0] or m[1]
            math = re.sub(r"\\begin\{aligned\}|\\end\{aligned\}|\\Rightarrow|\\text\{由 \}", "", math)
            for row in math.split("\\\\"):
                out += [(lineno, s.strip()) for s in re.split(r"&?=", row) if s.strip()]
    return out


@pytest.mark.skipif(not SEED.exists(), reason="the seed write-up is not here")
def test_the_seed_formulas_parse() -> None:
    shapes = {k: v for k, v in SHAPES.items() if k in ("X", "Y", "W1", "b1", "W2", "b2", "h", "H", "Ypred")}
    shapes["h_sigmoid"] = ("n", "m")
    sides = _display_sides(SEED.read_text(encoding="utf-8"))
    failed = []
    for _line, side in sides:
        rs = readings(side, shapes)
        if not any(r.parsed for r in rs):
            failed.append((side, str(rs[0].error)))
    known = {
        # a row bias: its differential is 1ₙ·d(b), which the write-up leaves out
        r"tr[2(Y_{pred} - Y)^T d(b_2)]", r"tr[2[(Y_{pred} - Y)W_2^T \odot sigmoid'(h)]^T d(b_1)]",
        # the chain rule as a product of Jacobians; the stray line from another exercise
        r"\frac{\partial f}{\partial h_{sigmoid}} \cdot \frac{\partial h_{sigmoid}}{\partial h}", "Z", "XW",
        "max(Z, 0)",
    }
    assert {s for s, _ in failed} == known, failed
    assert len(sides) - len(failed) >= 80
    assert all("\n" not in e for _, e in failed)
    # the stray \} the student left after tr[…] is dropped with a note
    stray = readings(r"tr[(dY)^T(Y - Y_{pred}) + (Y - Y_{pred})^T dY]\}", shapes)
    assert [n.kind for n in stray[0].parsed.notes][-1] == "stray-bracket"
    # the seed's ∂f/∂W1 conforms only with ⊙ over (Y_pred - Y)W2ᵀ, as the line before it reads (tests.hand_audit)
    w1 = readings(r"2X^T(Y_{pred} - Y)W_2^T \odot sigmoid'(h)", shapes)
    assert [r.key for r in w1 if r.parsed is not None] == ["between"]
    # the bias-summed form reads: the differential of a row bias broadcast over the batch
    full = {**shapes, "b1": ("n", "m"), "b2": ("n", "k")}
    assert readings(r"tr[2(Y_{pred} - Y)^T d(b_2)]", full)[0].parsed is not None
