"""derive.check_answer: right answers pass, the seed's own formulas get the audit's verdicts,
and typical wrong answers get the diagnosis a teacher would give."""
from __future__ import annotations

import pytest

from derive.check import check_answer
from derive.parse import ExpressionError

SIG_PRIME = "sigmoid(h) .* (1 - sigmoid(h))"
W1_RIGHT = f"2*X'*(((Ypred - Y)*W2') .* {SIG_PRIME})"


@pytest.mark.parametrize("answer,wrt", [
    (W1_RIGHT, "W1"),
    (f"2*ones(1, n)*(((Ypred - Y)*W2') .* {SIG_PRIME})", "b1"),
    ("2*H'*(Ypred - Y)", "W2"),
    ("2*ones(1, n)*(Ypred - Y)", "b2"),
    ("2*sigmoid(X*W1 + b1)'*(sigmoid(X*W1 + b1)*W2 + b2 - Y)", "W2"),   # in the inputs alone
    ("2*(Y - Ypred)", "Y"),
])
def test_right_answers(answer: str, wrt: str) -> None:
    result = check_answer(answer, wrt)
    assert result.correct, str(result)
    assert result.max_error < 1e-8


# The seed document's formulas in the expression language, with the audit's verdict per bias reading
# (numeric.reference.audit: "correct", "correct for bias n×m only", "correct for row bias only",
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


def test_wrong_sigmoid_derivative_is_located_at_the_h_section() -> None:
    r = check_answer("2*X'*(((Ypred - Y)*W2') .* sigmoid(h))", "W1")
    assert not r.correct
    text = "\n".join(r.details)
    assert "∂f/∂H is right" in text
    assert "no part of the answer equals ∂f/∂h" in text
    assert "counterexample (" in text and "entry (1,1)" in text


def test_missing_factor_two() -> None:
    r = check_answer(f"X'*(((Ypred - Y)*W2') .* {SIG_PRIME})", "W1")
    assert not r.correct
    assert any("is 1/2 times ∂f/∂W1" in d for d in r.details)


def test_unknown_variable_and_bad_syntax() -> None:
    with pytest.raises(ValueError, match="not a variable of the network"):
        check_answer("2*X", "W3")
    with pytest.raises(ExpressionError, match="column"):
        check_answer("2*X'*(Ypred - ", "W1")
    with pytest.raises(ExpressionError, match="unknown name 'Ypre'"):
        check_answer("2*H'*(Ypre - Y)", "W2")


def test_an_input_without_a_section_is_not_offered() -> None:
    # X has no section of its own (the loss holds it only through h): a clear error, not a KeyError
    with pytest.raises(ValueError, match=r"'X' is not a variable of the network; choose from W1, b1, W2, b2, Y$"):
        check_answer("2*X", "X")


def test_an_answer_that_overflows_is_wrong_without_warnings() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = check_answer("2*H'*(Ypred - Y) .* exp(1000*ones(m, k))", "W2")
        undefined = check_answer("2*H'*(Ypred - Y) ./ zeros(m, k)", "W2")
    assert not undefined.correct and "divides elementwise by zeros(m, k), a zero matrix" in undefined.details[0]
    assert not r.correct
    assert not any("times ∂f/∂W2" in d for d in r.details)     # inf is no constant factor
    assert any("entry (1,1) of the answer is inf" in d for d in r.details)


def test_softmax_network_answer_uses_rows_that_sum_to_one() -> None:
    from derive.networks import mlp

    net = mlp(["d", "k"], loss="softmax_cross_entropy")
    softmax = "exp(Z1) ./ (exp(Z1)*ones(k, 1)*ones(1, k))"
    assert check_answer(f"X'*({softmax} - Y)", "W1", net).correct
    # the gradient before using Y𝟏 = 𝟏 is right too, on data whose rows of Y sum to one
    assert check_answer(f"X'*((Y*ones(k, 1)*ones(1, k)) .* {softmax} - Y)", "W1", net).correct
    assert not check_answer(f"X'*({softmax} + Y)", "W1", net).correct
