"""derive.check_answer: right answers in many forms pass, wrong answers never do, and the diagnosis
names the factor, the first step that differs and a small counterexample.

The oracles are independent of the checker: the seed network's gradients written by hand in NumPy
(``_numpy_gradients``), the compiled kernels of ``numeric`` for the checker's own evaluator, and
wrong answers that are wrong by construction (a factor that is 1 only at the default dimensions, a
term that vanishes on small data, a perturbation of 10⁻⁸).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.check import DIM_ROWS, check_answer
from derive.networks import mlp, seed_network
from derive.parse import ExpressionError, parse

SIG_PRIME = "sigmoid(h) .* (1 - sigmoid(h))"
W1_RIGHT = f"2*X'*(((Ypred - Y)*W2') .* {SIG_PRIME})"
W2_RIGHT = "2*H'*(Ypred - Y)"
SHAPES = {"X": ("n", "d"), "Y": ("n", "k"), "W1": ("d", "m"), "b1": (1, "m"), "W2": ("m", "k"),
          "b2": (1, "k"), "h": ("n", "m"), "H": ("n", "m"), "Ypred": ("n", "k")}


# ------------------------------------------------------------------------------ oracles

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_gradients(v: dict) -> dict:
    """The seed network's forward pass and backprop, by hand (row bias)."""
    h = v["X"] @ v["W1"] + v["b1"]
    H = _sigmoid(h)
    Ypred = H @ v["W2"] + v["b2"]
    G_Ypred = 2 * (Ypred - v["Y"])
    G_H = G_Ypred @ v["W2"].T
    G_h = G_H * H * (1 - H)
    return {"h": G_h, "H": G_H, "Ypred": G_Ypred, "Y": -G_Ypred, "W2": H.T @ G_Ypred,
            "b2": G_Ypred.sum(axis=0, keepdims=True), "W1": v["X"].T @ G_h,
            "b1": G_h.sum(axis=0, keepdims=True), "X": G_h @ v["W1"].T,
            "_h": h, "_H": H, "_Ypred": Ypred}


def _numpy_answer(text: str, v: dict) -> np.ndarray:
    """``text`` evaluated in float64 by numeric's compiled kernel (not by the checker)."""
    from numeric import compile as compile_kernel

    net = seed_network()
    expr = net.expand(parse(text, SHAPES, infer=False).expr)
    args = list(net.inputs) + list(net.params)
    with np.errstate(all="ignore"):
        return np.asarray(compile_kernel(expr, args)(*[v[a.name] for a in args]), dtype=float)


def _default_draw(rng: np.random.Generator, scale: float = 1.0, dims=(4, 3, 5, 2)) -> dict:
    n, d, m, k = dims
    shapes = {"X": (n, d), "Y": (n, k), "W1": (d, m), "b1": (1, m), "W2": (m, k), "b2": (1, k)}
    return {name: scale * rng.standard_normal(s) for name, s in shapes.items()}


def _agrees_on_one_draw(text: str, wrt: str, seed: int = 0) -> bool:
    """What a checker comparing on one draw at default dimensions and scale would say: the old one took
    4, 3, 5, 2 in the order the dimensions first appear (n, d, k, m), so k = 5 and m = 2 there."""
    for dims in ((4, 3, 5, 2), (4, 3, 2, 5)):
        v = _default_draw(np.random.default_rng(seed), dims=dims)
        want = _numpy_gradients(v)[wrt]
        got = _numpy_answer(text, v)
        if np.all(np.isfinite(got)) and np.max(np.abs(got - want)) <= 1e-7 * max(1.0, np.max(np.abs(want))):
            return True
    return False


# ------------------------------------------------------------------------- right answers

RIGHT = [
    (W1_RIGHT, "W1"),
    (f"2*ones(1, n)*(((Ypred - Y)*W2') .* {SIG_PRIME})", "b1"),
    (W2_RIGHT, "W2"),
    ("2*ones(1, n)*(Ypred - Y)", "b2"),
    ("2*sigmoid(X*W1 + b1)'*(sigmoid(X*W1 + b1)*W2 + b2 - Y)", "W2"),   # in the inputs alone
    ("2*(Y - Ypred)", "Y"),
    # the same gradients written otherwise
    ("2*H'*Ypred - 2*H'*Y", "W2"),
    ("(2*(Ypred - Y)'*H)'", "W2"),
    ("H'*(Ypred - Y) + H'*(Ypred - Y)", "W2"),
    ("-2*H'*(Y - Ypred)", "W2"),
    ("4*H'*(Ypred - Y)/2", "W2"),
    ("2*eye(m)*H'*(Ypred - Y)*eye(k)", "W2"),
    ("n/n*2*H'*((Ypred - Y) .* ones(n, k))", "W2"),
    ("2*(1 ./ (1 + exp(-h)))'*(Ypred - Y)", "W2"),
    ("2*(H'*(Ypred + 1e9) - H'*(Y + 1e9))", "W2"),            # cancellation of 1e9: float64 loses 8 digits
    ("2*(H'*(Ypred + 1e15) - H'*(Y + 1e15))", "W2"),          # and here all of them
    ("2*(H'*(Ypred + exp(400)) - H'*(Y + exp(400)))", "W2"),  # so would 128 and 256 bits: intervals see it
    ("2*ones(1, n)*Ypred - 2*ones(1, n)*Y", "b2"),
    ("2*X'*((Ypred - Y)*W2' .* H .* (1 - H))", "W1"),
    ("2*X'*((Ypred - Y)*W2' .* (sigmoid(h) - sigmoid(h).^2))", "W1"),
    ("2*X'*(((Ypred - Y)*W2') .* exp(-h) ./ (1 + exp(-h)).^2)", "W1"),
    ("2*X'*(((Ypred - Y)*W2') .* exp(h) ./ (1 + exp(h)).^2)", "W1"),   # exp(h) overflows float64 at large h
    ("X'*(((Ypred - Y)*W2') .* (2*sigmoid(h)) .* (1 - sigmoid(h)))", "W1"),
    ("(2*((W2*(Ypred - Y)')' .* H .* (1 - H))'*X)'", "W1"),
    ("-2*(Ypred - Y)", "Y"),
    # intermediates
    ("2*(Ypred - Y)", "Ypred"),
    ("2*(Ypred - Y)*W2'", "H"),
    (f"2*((Ypred - Y)*W2') .* {SIG_PRIME}", "h"),
    ("2*((Ypred - Y)*W2') .* H .* (1 - H)", "h"),
    (f"2*(((Ypred - Y)*W2') .* {SIG_PRIME})*W1'", "X"),
]


@pytest.mark.parametrize("answer,wrt", RIGHT, ids=[f"{w}:{a}" for a, w in RIGHT])
def test_right_answers(answer: str, wrt: str) -> None:
    result = check_answer(answer, wrt)
    assert result.correct, str(result)
    assert result.max_error < 1e-20
    assert "compared on 12 random draws" in result.details[0] or "compared on 14 random draws" in result.details[0]


def test_right_answers_are_right_by_the_numpy_oracle() -> None:
    # the list above is right by an oracle that is not the checker: hand-written backprop in NumPy
    v = _default_draw(np.random.default_rng(3), dims=(5, 4, 6, 3))
    grads = _numpy_gradients(v)
    for answer, wrt in RIGHT:
        if "1e15" in answer or "exp(400)" in answer:
            continue                      # float64 cannot evaluate it; the checker can
        got = _numpy_answer(answer, v)
        np.testing.assert_allclose(got, grads[wrt], rtol=1e-6, atol=1e-6, err_msg=answer)


def test_cancellation_defeats_float64_but_not_the_checker() -> None:
    # in float64 the right answer is off by far more than any fixed tolerance would allow
    v = _default_draw(np.random.default_rng(0))
    got = _numpy_answer("2*(H'*(Ypred + 1e15) - H'*(Y + 1e15))", v)
    assert np.max(np.abs(got - _numpy_gradients(v)["W2"])) > 1e-3
    assert check_answer("2*(H'*(Ypred + 1e15) - H'*(Y + 1e15))", "W2").correct


# --------------------------------------------------------------------- never a false accept

TRAPS = [
    f"(n-3)*{W2_RIGHT}",
    f"n/4*{W2_RIGHT}",
    f"(d-2)*{W2_RIGHT}",
    f"(k-4)*{W2_RIGHT}",
    f"(m-1)*{W2_RIGHT}",
    f"{W2_RIGHT} + (n-4)*H'*Y",
    f"2^(n*d - 12)*{W2_RIGHT}",
    f"{W2_RIGHT} + relu(h - 100)'*Y",
    f"(1 + 1e-8)*{W2_RIGHT}",
    f"{W2_RIGHT} + 1e-8*H'*(Ypred - Y)",
    f"(1 - 1e-12)*{W2_RIGHT}",
    "2*(H'*(Ypred + 1e9) - H'*(Y + 1e9))*(1 + 1e-8)",
    "2*(H'*(Ypred + 1e9) - H'*(Y + 1e9)) + 1e-8*H'*(Ypred - Y)",
    f"(1 + 2^(-300))*{W2_RIGHT}",                  # beyond any fixed precision: the answer's numbers set it
    f"(1 + 2^(-100*n))*{W2_RIGHT}",                # a number computed from the dimensions: likewise
    f"{W2_RIGHT} + exp(-1000)*H'*Y",                # or from a function
    "2*(H'*(Ypred + exp(400)) - H'*(Y + exp(400))) + 1e-8*H'*Y",
]


@pytest.mark.parametrize("answer", TRAPS)
def test_answers_right_on_one_draw_are_rejected(answer: str) -> None:
    # (numeric's kernel cannot compute 2^(-100*n) with an integer n: that one has no float oracle)
    if not any(x in answer for x in ("1e-12", "1e9", "100*n", "exp(400)")):
        # each is a trap: at the default dimensions and scale it agrees with the gradient
        assert _agrees_on_one_draw(answer, "W2"), answer
    result = check_answer(answer, "W2")
    assert not result.correct, str(result)


def test_an_answer_beyond_every_precision_is_not_confirmed() -> None:
    # right, but exp(100·y²) at data of scale 10 cancels more bits than MAX_BITS holds: never accepted
    r = check_answer("2*(H'*(Ypred + exp(100*Y.^2)) - H'*(Y + exp(100*Y.^2)))", "W2")
    assert not r.correct
    assert r.verdict.startswith("not confirmed: at n=4, d=3, m=5, k=2, data scale 10 the answer and ∂f/∂W2 "
                                "agree only to within the rounding error of")


def test_a_term_that_vanishes_at_one_draws_data_is_rejected() -> None:
    from derive.checking.problem import draw_data, draws_for, problem_of

    net = seed_network()
    problem = problem_of(net)
    first = draws_for(net, 0, None)[0]
    v = {s.name: a for s, a in draw_data(net, problem.scalars, first).items()}
    threshold = float(np.max(v["X"] @ v["W1"] + v["b1"])) + 0.01
    answer = f"{W2_RIGHT} + relu(h - {threshold:.4f})'*Y"
    # zero at the first draw's data, so the first draw alone accepts it
    assert np.all(_numpy_answer(f"relu(h - {threshold:.4f})'*Y", v) == 0)
    assert not check_answer(answer, "W2").correct


def test_every_dimension_varies_independently_of_the_others() -> None:
    columns = list(zip(*DIM_ROWS))
    for i, a in enumerate(columns[:4]):
        assert len(set(a)) >= 5, a
        for b in columns[i + 1:4]:
            # no difference, ratio or product of two dimensions is the same at every draw
            assert len({x - y for x, y in zip(a, b)}) >= 5 and len({x / y for x, y in zip(a, b)}) >= 5
            assert len({x * y for x, y in zip(a, b)}) >= 5
    assert all(len(set(row)) == len(row) for row in DIM_ROWS[:-1])    # non-square


# ---------------------------------------------------------------------------- diagnosis

def test_forgotten_sigma_prime_names_the_step_to_h() -> None:
    for answer in ("2*X'*((Ypred - Y)*W2')", "2*X'*(Ypred - Y)*W2'"):
        r = check_answer(answer, "W1")
        assert not r.correct
        text = "\n".join(r.details)
        assert "∂f/∂H is right (as 2(Ypred - Y)W2ᵀ)" in text, text
        assert "the step from ∂f/∂H to ∂f/∂h is where the answer first differs" in text, text
        assert "∂f/∂h is right" not in text


def test_a_product_where_the_hadamard_product_belongs() -> None:
    r = check_answer("2*X'*((Ypred - Y)*W2')*(sigmoid(h)' * (1 - sigmoid(h)))", "W1")
    text = "\n".join(r.details)
    assert not r.correct
    assert "∂f/∂H is right" in text and "the step from ∂f/∂H to ∂f/∂h" in text, text
    r = check_answer("2*X'*(((Ypred - Y)*W2') * (sigmoid(h)' .* (1 - sigmoid(h))'))", "W1")
    assert not r.correct


def test_wrong_sigmoid_derivative_is_located_at_the_h_section() -> None:
    r = check_answer("2*X'*(((Ypred - Y)*W2') .* sigmoid(h))", "W1")
    assert not r.correct
    text = "\n".join(r.details)
    assert "∂f/∂H is right" in text
    assert "no part of the answer equals ∂f/∂h" in text
    assert "counterexample (" in text and "entry (" in text


@pytest.mark.parametrize("answer,wrt", [
    ("2*H'*(Y - Ypred)", "W2"),
    (f"2*X'*(((Y - Ypred)*W2') .* {SIG_PRIME})", "W1"),
    ("-2*H'*(Ypred - Y)", "W2"),
])
def test_a_sign_error_is_a_sign_error(answer: str, wrt: str) -> None:
    r = check_answer(answer, wrt)
    text = "\n".join(r.details)
    assert f"the answer is −1 times ∂f/∂{wrt}: a sign error" in text
    assert "∂f/∂Ypred is right" not in text
    if "Y - Ypred" in answer:
        assert "the first step already differs: the answer's 2(Y - Ypred) is -1 times ∂f/∂Ypred" in text


def test_a_sign_error_and_a_forgotten_step() -> None:
    r = check_answer("2*X'*((Y - Ypred)*W2')", "W1")
    text = "\n".join(r.details)
    assert "is right" not in text
    assert "∂f/∂H appears up to a factor: the answer's 2(Y - Ypred)W2ᵀ is -1 times ∂f/∂H" in text
    assert "the step from ∂f/∂H to ∂f/∂h is where the answer first differs" in text


def test_missing_factor_two_is_placed_at_the_first_step() -> None:
    r = check_answer(f"X'*(((Ypred - Y)*W2') .* {SIG_PRIME})", "W1")
    assert not r.correct
    assert r.details[0] == "the answer is 1/2 times ∂f/∂W1: a constant factor is wrong"
    assert "the answer's Ypred - Y is 1/2 times ∂f/∂Ypred" in r.details[1]


def test_a_wrong_last_step() -> None:
    r = check_answer(f"{W2_RIGHT} + (n-4)*H'*Y", "W2")
    assert r.details[:2] == ("∂f/∂Ypred is right (as 2(Ypred - Y))",
                             "the last step, from ∂f/∂Ypred to ∂f/∂W2, is where the answer first differs")


@pytest.mark.parametrize("answer,factor", [
    ("H'*(Ypred - Y)/(n*k)", "1/(2·k·n)"),
    (f"(n-3)*{W2_RIGHT}", "(n - 3)"),
    (f"n/4*{W2_RIGHT}", "n/4"),
    (f"(1 + 1e-8)*{W2_RIGHT}", "1.00000001"),
])
def test_a_factor_depending_on_the_dimensions_is_fitted(answer: str, factor: str) -> None:
    r = check_answer(answer, "W2")
    assert r.details[0].startswith(f"the answer is {factor} times ∂f/∂W2"), r.details[0]


def test_a_mean_loss_missing_its_one_over_nk() -> None:
    net = mlp(["d", "m", "k"], loss="mse")
    assert check_answer("2*A1'*(Ypred - Y)/(n*k)", "W2", net).correct
    r = check_answer("2*A1'*(Ypred - Y)", "W2", net)
    assert r.details[0] == "the answer is k·n times ∂f/∂W2: a factor depending on the dimensions is wrong"
    r = check_answer("2*A1'*(Ypred - Y)/n", "W2", net)
    assert r.details[0].startswith("the answer is k times ∂f/∂W2")


def test_a_factor_that_is_no_simple_function_says_so() -> None:
    r = check_answer(f"2^(n*d - 12)*{W2_RIGHT}", "W2")
    assert "by a factor that is no simple function of n, d, m, k: (n, d, m, k) = (4, 3, 5, 2): 1;" in r.details[0]
    r = check_answer(f"(1 + 2^(-100*n))*{W2_RIGHT}", "W2")
    assert "(n, d, m, k) = (4, 3, 5, 2): 1 + 3.87e-121; (7, 5, 2, 3): 1 + 1.9e-211" in r.details[0]
    assert "is right" not in str(r)
    r = check_answer(f"(1 + 2^(-300))*{W2_RIGHT}", "W2")
    assert r.details[0] == "the answer is 1 + 4.91e-91 times ∂f/∂W2: a constant factor is wrong"


@pytest.mark.parametrize("answer,factor", [
    ("(n*k - 7)", "(k·n - 7)"), ("(n + k - 5)", "(k + n - 5)"), ("(n-1)*k", "k·(n - 1)"), ("3", "3"),
])
def test_factor_families(answer: str, factor: str) -> None:
    r = check_answer(f"{answer}*{W2_RIGHT}", "W2")
    assert r.details[0].startswith(f"the answer is {factor} times ∂f/∂W2"), r.details[0]


# -------------------------------------------------------------------------- counterexamples

def _check_counterexample(r, wrt: str, answer: str) -> None:
    """The counterexample's numbers, recomputed by hand in NumPy."""
    info = r.counterexample
    v = {k: np.array(x, dtype=float) for k, x in info["data"].items()}
    want = _numpy_gradients(v)[wrt]
    got = _numpy_answer(answer, v)
    i, j = info["entry"]
    assert got[i - 1, j - 1] == pytest.approx(info["answer"], rel=1e-9, abs=1e-12)
    assert want[i - 1, j - 1] == pytest.approx(info["expected"], rel=1e-9, abs=1e-12)
    assert abs(got[i - 1, j - 1] - want[i - 1, j - 1]) > 1e-6


def test_counterexample_at_the_smallest_dimensions_not_all_ones() -> None:
    answer = "2*X'*((Ypred - Y)*W2')"
    r = check_answer(answer, "W1")
    assert r.counterexample["dims"] == {"n": 1, "d": 1, "m": 1, "k": 2}
    _check_counterexample(r, "W1", answer)
    data = [x for rows in r.counterexample["data"].values() for row in rows for x in row]
    assert len(set(data)) > 1                                   # not all-ones data


def test_counterexample_skips_dimensions_where_the_answer_happens_to_be_right() -> None:
    answer = f"(k-1)*{W2_RIGHT}"               # right wherever k = 2, as at the smallest candidate
    r = check_answer(answer, "W2")
    assert r.counterexample["dims"] == {"n": 1, "d": 1, "m": 2, "k": 1}
    _check_counterexample(r, "W2", answer)


def test_counterexample_for_a_term_that_needs_large_data() -> None:
    answer = f"{W2_RIGHT} + relu(h - 100)'*Y"
    r = check_answer(answer, "W2")
    assert sum(r.counterexample["dims"].values()) == 5
    _check_counterexample(r, "W2", answer)


def test_an_answer_that_divides_by_zero_is_wrong_without_warnings() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = check_answer("2*H'*(Ypred - Y) ./ zeros(m, k)", "W2")
    assert not r.correct
    assert "undefined" in r.verdict and "divides elementwise by zeros(m, k), a zero matrix" in r.verdict
    assert r.details[0].splitlines()[1].index("^") == len("2*H'*(Ypred - Y) ")


# ------------------------------------------------------------------------ shapes, names, language

# The seed document's formulas in the expression language, with the audit's verdict per bias reading
# (tests.hand_audit.audit: "correct", "correct for bias n×m only", "correct for row bias only",
# "shapes do not conform").
SEED_FORMULAS = [
    ("2*(Y - Ypred)", "Y", {"row": True, "full": True}),
    ("2*H'*(Ypred - Y)", "W2", {"row": True, "full": True}),
    ("2*(Ypred - Y)", "b2", {"row": False, "full": True}),
    ("2*ones(1, n)*(Ypred - Y)", "b2", {"row": True, "full": False}),
    (f"2*(Ypred - Y)*W2' .* {SIG_PRIME}", "b1", {"row": False, "full": True}),
    (f"2*ones(1, n)*((Ypred - Y)*W2' .* {SIG_PRIME})", "b1", {"row": True, "full": False}),
    (f"2*X'*(Ypred - Y)*W2' .* {SIG_PRIME}", "W1", {"row": False, "full": False}),   # ⊙ looser: no conform
    (f"2*X'*(Ypred - Y)*(W2' .* {SIG_PRIME})", "W1", {"row": False, "full": False}),  # ⊙ tighter: no conform
]


@pytest.mark.parametrize("answer,wrt,verdicts", SEED_FORMULAS, ids=[f"{w}:{a}" for a, w, _ in SEED_FORMULAS])
def test_seed_formulas_agree_with_the_audit(answer: str, wrt: str, verdicts: dict) -> None:
    for bias, right in verdicts.items():
        assert check_answer(answer, wrt, bias=bias).correct is right, (bias, str(check_answer(answer, wrt, bias=bias)))


def test_missing_transpose_is_a_shape_error_naming_the_operator() -> None:
    r = check_answer(f"2*X*(((Ypred - Y)*W2') .* {SIG_PRIME})", "W1")
    assert not r.correct
    assert "does not conform: ∂f/∂W1 is d×m" in r.verdict
    assert "'*' joins 2*X (n×d) with" in r.verdict and "(n×m)" in r.verdict


def test_missing_ones_vector_for_a_bias() -> None:
    r = check_answer(f"2*(((Ypred - Y)*W2') .* {SIG_PRIME})", "b1")
    assert r.verdict == "wrong shape: ∂f/∂b1 is 1×m, the answer is n×m"
    assert any("row broadcast over the batch" in d and "𝟏ᵀ" in d for d in r.details)


def test_hadamard_and_product_swapped() -> None:
    r = check_answer(f"2*X'*(((Ypred - Y) .* W2') * {SIG_PRIME})", "W1")
    assert not r.correct
    assert "'.*' joins (Ypred - Y) (n×k) with W2' (k×m)" in r.verdict


def test_unknown_variable_and_bad_syntax() -> None:
    with pytest.raises(ValueError, match="not a variable of the network"):
        check_answer("2*X", "W3")
    with pytest.raises(ExpressionError, match="column"):
        check_answer("2*X'*(Ypred - ", "W1")
    with pytest.raises(ExpressionError, match="unknown name 'Ypre'"):
        check_answer("2*H'*(Ypre - Y)", "W2")


def test_every_input_parameter_and_intermediate_is_a_variable() -> None:
    with pytest.raises(ValueError, match=r"'Z' is not a variable of the network; "
                                         r"choose from X, Y, W1, b1, W2, b2, Ypred, H, h$"):
        check_answer("2*X", "Z")
    assert not check_answer("2*(Ypred - Y)*W2'", "h").correct
    assert check_answer("2*(Ypred - Y)*W2'", "H").correct


def test_an_answer_that_overflows_is_wrong_without_warnings() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not check_answer("2*H'*(Ypred - Y) .* exp(1000*ones(m, k))", "W2").correct


def test_softmax_network_answer_uses_rows_that_sum_to_one() -> None:
    net = mlp(["d", "k"], loss="softmax_cross_entropy")
    softmax = "exp(Z1) ./ (exp(Z1)*ones(k, 1)*ones(1, k))"
    assert check_answer(f"X'*({softmax} - Y)", "W1", net).correct
    # the gradient before using Y𝟏 = 𝟏 is right too, on data whose rows of Y sum to one exactly
    assert check_answer(f"X'*((Y*ones(k, 1)*ones(1, k)) .* {softmax} - Y)", "W1", net).correct
    assert not check_answer(f"X'*({softmax} + Y)", "W1", net).correct


def test_a_network_with_a_scalar_parameter_and_one_with_numeric_dimensions() -> None:
    net = mlp(["d", "m", "k"], weight_decay="lam")
    assert check_answer("2*A1'*(Ypred - Y) + 2*lam*W2", "W2", net).correct
    assert not check_answer("2*A1'*(Ypred - Y) + lam*W2", "W2", net).correct
    fixed = seed_network(n=4, d=3, m=5, k=2)
    assert check_answer(W2_RIGHT, "W2", fixed).correct
    r = check_answer("2*H'*(Y - Ypred)", "W2", fixed)
    assert r.details[0] == "the answer is −1 times ∂f/∂W2: a sign error"
    assert r.details[-2].startswith("counterexample: X=[[")


@pytest.mark.parametrize("activation,right,wrong", [
    ("tanh", "2*X'*(((Ypred - Y)*W2') .* (1 - A1.^2))", "2*X'*(((Ypred - Y)*W2') .* (1 - A1))"),
    ("relu", "2*X'*(((Ypred - Y)*W2') .* step(Z1))", "2*X'*((Ypred - Y)*W2')"),
    ("softplus", "2*X'*(((Ypred - Y)*W2') .* sigmoid(Z1))", "2*X'*(((Ypred - Y)*W2') .* A1)"),
])
def test_other_activations(activation: str, right: str, wrong: str) -> None:
    net = mlp(["d", "m", "k"], activation=activation)
    assert check_answer(right, "W1", net).correct
    r = check_answer(wrong, "W1", net)
    assert not r.correct
    assert "∂f/∂A1 is right" in r.details[0] and "the step from ∂f/∂A1 to ∂f/∂Z1" in r.details[1]


def test_a_decimal_in_the_network_is_that_decimal() -> None:
    net = mlp(["d", "m", "k"], weight_decay=0.01)
    assert check_answer("2*A1'*(Ypred - Y) + 0.02*W2", "W2", net).correct
    assert not check_answer("2*A1'*(Ypred - Y) + 0.0200000001*W2", "W2", net).correct


def test_a_deeper_network_names_the_layer() -> None:
    net = mlp(["d", "m", "p", "k"])
    right = "2*X'*(((((Ypred - Y)*W3') .* A2 .* (1 - A2))*W2') .* A1 .* (1 - A1))"
    assert check_answer(right, "W1", net).correct
    r = check_answer("2*X'*((((Ypred - Y)*W3') .* A2 .* (1 - A2))*W2')", "W1", net)
    assert r.details[0].startswith("∂f/∂A1 is right")
    assert r.details[1].startswith("the step from ∂f/∂A1 to ∂f/∂Z1 is where the answer first differs")


def test_dimensions_too_large_to_evaluate_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 20000 entries"):
        check_answer(W2_RIGHT, "W2", seed_network(n=10**12))


_ENGLISH = re.compile(r"\b(the|answer|wrong|right|correct|step|times|first|differs|counterexample|entry|"
                      r"part|factor|error|compared|draws|shape|undefined|sign|of|is)\b")


@pytest.mark.parametrize("answer,wrt", [
    (W2_RIGHT, "W2"), ("2*X'*((Ypred - Y)*W2')", "W1"), ("2*H'*(Y - Ypred)", "W2"),
    ("H'*(Ypred - Y)/(n*k)", "W2"), ("2*X'*((Y - Ypred)*W2')", "W1"), ("2*(Ypred - Y)", "b2"),
    ("2*H'*(Ypred - Y) ./ zeros(m, k)", "W2"), (f"2*(((Ypred - Y)*W2') .* {SIG_PRIME})", "b1"),
    (f"2^(n*d - 12)*{W2_RIGHT}", "W2"), (f"(1 + 1e-8)*{W2_RIGHT}", "W2"), (f"{W2_RIGHT} + (n-4)*H'*Y", "W2"),
])
def test_chinese_messages_have_no_english_words(answer: str, wrt: str) -> None:
    zh = check_answer(answer, wrt, lang="zh")
    en = check_answer(answer, wrt)
    assert zh.correct == en.correct and len(zh.details) == len(en.details)
    text = str(zh)
    assert not _ENGLISH.search(text), text
    assert re.search(r"[\u4e00-\u9fff]", zh.verdict)
    with pytest.raises(ValueError, match="不是该网络的变量"):
        check_answer(answer, "Q", lang="zh")


# ------------------------------------------------------------------- the checker's evaluator

EXPRESSIONS = [
    "inv(X'*X)*X'", "det(W2'*W2)*W2", "logdet(X'*X)*W1", "(X'*X)^3*W1", "(X'*X)^-2*W1", "X.^3 - (1 + X.^2).^0.5",
    "tanh(X) + relu(X - 0.3) + softplus(X) + step(X) + exp(X) .* log(1 + X.^2)", "tr(W1*W1')*X",
    "sum(X)*X", "norm2(X)^2*X", "sqrt(norm2(Y))*Y", "sigmoid(X*W1 + b1)*W2 + b2 - Y", "X ./ (1 + X.^2)",
    "eye(n)*X + zeros(n, d) + ones(n, 1)*ones(1, d)",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_the_evaluator_agrees_with_the_compiled_kernel(text: str) -> None:
    from derive.checking.evaluate import evaluator_at
    from derive.checking.problem import Draw, draw_data, problem_of

    net = seed_network()
    problem = problem_of(net)
    by_name = {d.name: d for d in net.dims}
    draw = Draw(tuple((by_name[c], v) for c, v in zip("ndmk", (5, 3, 4, 2))), 1.0, (11,))
    v = {s.name: a for s, a in draw_data(net, problem.scalars, draw).items()}
    got = np.array(evaluator_at(problem, draw, 128)(parse(text, SHAPES, infer=False).expr).tolist(), dtype=float)
    np.testing.assert_allclose(got, _numpy_answer(text, v), rtol=1e-9, atol=1e-12)


def test_the_checker_gradients_agree_with_numpy_backprop() -> None:
    from derive.checking.evaluate import evaluator_at
    from derive.checking.problem import Draw, draw_data, problem_of

    net = seed_network()
    problem = problem_of(net)
    by_name = {d.name: d for d in net.dims}
    draw = Draw(tuple((by_name[c], v) for c, v in zip("ndmk", (6, 2, 3, 7))), 3.0, (5,))
    v = {s.name: a for s, a in draw_data(net, problem.scalars, draw).items()}
    want = _numpy_gradients(v)
    ev = evaluator_at(problem, draw, 128)
    for name, X in problem.variables().items():
        got = np.array(ev(problem.gradient(X)).tolist(), dtype=float)
        np.testing.assert_allclose(got, want[name], rtol=1e-9, atol=1e-12, err_msg=name)


# ----------------------------------------------------------------------- property: no false accept

_RIGHT_FORMS = {
    "W2": ["2*H'*(Ypred - Y)", "2*H'*Ypred - 2*H'*Y"],
    "b2": ["2*ones(1, n)*(Ypred - Y)"],
    "W1": [W1_RIGHT, "2*X'*((Ypred - Y)*W2' .* H .* (1 - H))"],
    "b1": [f"2*ones(1, n)*(((Ypred - Y)*W2') .* {SIG_PRIME})"],
    "H": ["2*(Ypred - Y)*W2'"],
    "h": ["2*((Ypred - Y)*W2') .* H .* (1 - H)"],
}
# a term of each variable's shape: {c} is a threshold, so the term vanishes while the data is small
_TERMS = {
    "W2": ["H'*Y", "relu(h - {c})'*Y", "H'*relu(Y - {c})"],
    "b2": ["ones(1, n)*Y", "ones(1, n)*relu(Y - {c})"],
    "W1": ["X'*H", "X'*relu(h - {c})"],
    "b1": ["ones(1, n)*H", "ones(1, n)*relu(h - {c})"],
    "H": ["H", "relu(h - {c})"],
    "h": ["h", "relu(h - {c})"],
}
# scalars that are 1 (or 0) at the default dimensions n=4, d=3, m=5, k=2 and not elsewhere
_ONE_AT_DEFAULTS = ["(n-3)", "n/4", "(d-2)", "d/3", "(k-1)", "k/2", "(m-4)", "m/5", "2^(n*d - 12)",
                    "(n*k - 7)", "(m - d - 1)", "(n + k - 5)", "2^(m - 5)"]
_ZERO_AT_DEFAULTS = ["(n-4)", "(d-3)", "(k-2)", "(m-5)", "(n*d - 12)", "(m - n - 1)"]


@st.composite
def _wrong_answers(draw) -> tuple[str, str, str]:
    wrt = draw(st.sampled_from(sorted(_RIGHT_FORMS)))
    right = draw(st.sampled_from(_RIGHT_FORMS[wrt]))
    kind = draw(st.sampled_from(["dims factor", "vanishing term", "tiny factor", "tiny term", "sign",
                                 "transpose", "swap"]))
    term = draw(st.sampled_from(_TERMS[wrt])).format(c=draw(st.sampled_from([2, 10, 100, 1000])))
    if kind == "dims factor":
        return wrt, kind, f"{draw(st.sampled_from(_ONE_AT_DEFAULTS))}*({right})"
    if kind == "vanishing term":
        coef = draw(st.sampled_from(_ZERO_AT_DEFAULTS + ["1", "1/3"]))
        if coef in ("1", "1/3") and "relu" not in term:
            term = _TERMS[wrt][-1].format(c=100)
        return wrt, kind, f"{right} + {coef}*{term}"
    if kind == "tiny factor":
        e = draw(st.integers(6, 12))
        sign = draw(st.sampled_from(["+", "-"]))
        return wrt, kind, f"(1 {sign} 1e-{e})*({right})"
    if kind == "tiny term":
        return wrt, kind, f"{right} + 1e-{draw(st.integers(6, 10))}*{term}"
    if kind == "sign":
        flipped = right.replace("(Ypred - Y)", "(Y - Ypred)", 1)
        return wrt, kind, flipped if flipped != right else f"-({right})"
    if kind == "transpose":
        marks = [i for i, ch in enumerate(right) if ch == "'"]
        if not marks:
            return wrt, kind, f"({right})'"
        i = draw(st.sampled_from(marks))
        return wrt, kind, right[:i] + right[i + 1:]
    ops = [mo.start() for mo in re.finditer(r"\.\*|(?<![.])\*", right)]
    i = draw(st.sampled_from(ops))
    swapped = right[:i] + ("*" if right[i] == "." else ".*") + right[i + (2 if right[i] == "." else 1):]
    return wrt, kind, swapped


def _wrong_by_the_oracle(answer: str, wrt: str) -> bool:
    """Whether ``answer`` differs from the hand-written gradient on some plain float64 draw (used where
    wrongness is not by construction: a moved transpose or ⊙ may give an equivalent formula)."""
    try:
        expr = parse(answer, SHAPES, infer=False).expr
    except ExpressionError:
        return True
    if not isinstance(expr, sympy.MatrixExpr) or expr.shape != parse(wrt, SHAPES, infer=False).expr.shape:
        return True
    for seed, dims in ((1, (5, 4, 6, 3)), (2, (3, 2, 4, 6))):
        v = _default_draw(np.random.default_rng(seed), dims=dims)
        g = _numpy_gradients(v)
        want = g[wrt]
        got = _numpy_answer(answer, v)
        if got.shape != want.shape or np.max(np.abs(got - want)) > 1e-6 * max(1.0, np.max(np.abs(want))):
            return True
    return False


@settings(derandomize=True, max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_wrong_answers())
def test_no_wrong_answer_is_accepted(case: tuple[str, str, str]) -> None:
    wrt, kind, answer = case
    if kind in ("transpose", "swap") and not _wrong_by_the_oracle(answer, wrt):
        return                                   # the mutation happened to keep the gradient
    try:
        result = check_answer(answer, wrt)
    except ExpressionError:
        return                                   # the mutation broke the syntax: not accepted either
    assert not result.correct, (kind, answer, str(result))


# ------------------------------------------------------------------ property: no traceback

_PARTS = ["H'*Y", "W2", "ones(m, k)", "inv(W2*W2' + eye(m))*W2", "(W2*W2')^2*W2", "W2.^-1", "log(W2)", "W2.^0.5",
          "sqrt(tr(W2'*W2))*W2", "step(W2)", "det(W2'*W2)*W2", "logdet(W2'*W2)*W2", "(W2 - W2) ./ (W2 - W2)",
          "inv(zeros(m, m))*W2", "exp(1000*W2)", "exp(-1000*W2)", "sqrt(-1)*W2", "(H'*H)^-1*W2", "2^n*W2",
          "log(n - 4)*W2", "relu(W2) - softplus(W2) .* tanh(W2)"]


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(_PARTS), min_size=1, max_size=3), st.lists(st.sampled_from([" + ", " - ", " .* "]),
                                                                             min_size=2, max_size=2))
def test_any_answer_gets_a_verdict_not_a_traceback(parts: list[str], ops: list[str]) -> None:
    answer = parts[0]
    for op, part in zip(ops, parts[1:]):
        answer = f"({answer}){op}({part})"
    try:
        result = check_answer(answer, "W2")
    except ExpressionError:
        return
    assert result.verdict and isinstance(result.correct, bool)
