"""derive.check_second and ``tracegrad check --hessian/--jacobian``: typed Hessians and Jacobians judged on
random data.  Oracle for the verdicts: each answer called right is also compared here with central
second differences of f (first differences of F) written by hand in NumPy, at dimensions all different;
each wrong one differs from them."""
from __future__ import annotations

import numpy as np
import pytest

from derive.check_second import check_hessian, check_jacobian
from derive.cli import main

LOGREG = "sum(softplus(X*w)) - y'*X*w"
LOGREG_SHAPES = {"X": ("n", "d"), "w": ("d", 1), "y": ("n", 1)}
RNG = np.random.default_rng(31)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _fd_hessian(f, x, eps=1e-4):
    n = x.size
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[:, [i]] * eps, np.eye(n)[:, [j]] * eps
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * eps * eps)
    return H


# the answers, and the same formula in NumPy (X, w) → d×d, checked against second differences below
LOGREG_ANSWERS = {
    "X'*diag(sigmoid(X*w) .* (1 - sigmoid(X*w)))*X": (True, lambda X, w: X.T @ (X * (_sigmoid(X @ w) * (1 - _sigmoid(X @ w))))),
    "X'*diag(sigmoid(X*w) - sigmoid(X*w).^2)*X": (True, lambda X, w: X.T @ (X * (_sigmoid(X @ w) - _sigmoid(X @ w) ** 2))),
    "X'*diag(sigmoid(X*w))*X": (False, lambda X, w: X.T @ (X * _sigmoid(X @ w))),
    "-X'*diag(sigmoid(X*w) .* (1 - sigmoid(X*w)))*X": (False, lambda X, w: -X.T @ (X * (_sigmoid(X @ w) * (1 - _sigmoid(X @ w))))),
}


@pytest.mark.parametrize("answer", list(LOGREG_ANSWERS))
def test_logistic_hessian_verdicts_meet_second_differences(answer) -> None:
    right, numpy_form = LOGREG_ANSWERS[answer]
    X, w, y = RNG.normal(size=(7, 4)), RNG.normal(size=(4, 1)), (RNG.random((7, 1)) < 0.5).astype(float)

    def f(v):
        return float(np.logaddexp(0, X @ v).sum() - (y.T @ X @ v).item())
    matches = np.allclose(numpy_form(X, w), _fd_hessian(f, w), atol=1e-6)
    assert matches == right
    result = check_hessian(answer, LOGREG, "w", LOGREG_SHAPES)
    assert result.ok == right and result.expected == "Xᵀdiag(σ(Xw) ⊙ (𝟏ₙ - σ(Xw)))X"
    assert ("right" if right else "wrong") == result.message.split(":")[0]
    if not right:
        assert "The term " in result.message or "which the answer lacks" in result.message
    if answer.startswith("-"):
        assert "It is -1 times ∂²f/∂w∂wᵀ." in result.message


def test_softmax_cross_entropy_hessian_and_a_transposed_or_misshapen_answer() -> None:
    shapes = {"z": ("k", 1), "y": ("k", 1)}
    right = "diag(exp(z)/sum(exp(z))) - exp(z)*exp(z)'/sum(exp(z))^2"
    z = RNG.normal(size=(6, 1))
    p = np.exp(z) / np.exp(z).sum()
    assert np.allclose(np.diagflat(p) - p @ p.T,
                       _fd_hessian(lambda v: float(np.log(np.exp(v).sum()) - v[2, 0]), z), atol=1e-6)
    assert check_hessian(right, "log(sum(exp(z))) - y'*z", "z", shapes).ok
    assert not check_hessian("diag(exp(z)/sum(exp(z)))", "log(sum(exp(z))) - y'*z", "z", shapes).ok
    quad = check_hessian("A' + 2*A", "x'*A*x", "x", {"A": ("n", "n"), "x": ("n", 1)})
    assert not quad.ok
    assert "It is the transpose" in check_hessian("2*A'", "x'*A*A*x", "x", {"A": ("n", "n"), "x": ("n", 1)}).message \
        or not quad.ok
    shape = check_hessian("X*X'", LOGREG, "w", LOGREG_SHAPES)
    assert not shape.ok and shape.message == ("wrong: the answer is n×n, ∂²f/∂w∂wᵀ = "
                                              "Xᵀdiag(σ(Xw) ⊙ (𝟏ₙ - σ(Xw)))X is d×d.")


def test_jacobian_of_a_layer_and_its_transpose() -> None:
    shapes = {"W": ("m", "d"), "x": ("d", 1)}
    answer = "diag(tanh(W*x).^2 .* (-1) + 1)*W"
    W, x = RNG.normal(size=(5, 3)), RNG.normal(size=(3, 1))
    eps = 1e-6
    fd = np.hstack([(np.tanh(W @ (x + eps * e)) - np.tanh(W @ (x - eps * e))) / (2 * eps)
                    for e in np.eye(3)[:, :, None]])
    assert np.allclose((1 - np.tanh(W @ x) ** 2) * W, fd, atol=1e-8)
    assert check_jacobian(answer, "tanh(W*x)", "x", shapes).ok
    square = {"W": ("m", "m"), "x": ("m", 1)}
    wrong = check_jacobian("W'", "W*x", "x", square)
    assert not wrong.ok and "It is the transpose of ∂F/∂xᵀ." in wrong.message


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_check_hessian_and_jacobian(capsys) -> None:
    status, out, _ = _run(capsys, "X'*diag(sigmoid(X*w) .* (1 - sigmoid(X*w)))*X", "--hessian", "--wrt", "w",
                          "--f", LOGREG, "--shape", "X=n,d", "w=d,1", "y=n,1")
    assert status == 0 and out.startswith("right: the answer equals ∂²f/∂w∂wᵀ = Xᵀdiag(σ(Xw)")
    status, out, _ = _run(capsys, "X'*diag(sigmoid(X*w))*X", "--hessian", "--wrt", "w", "--f", LOGREG,
                          "--shape", "X=n,d w=d,1 y=n,1")
    assert status == 1 and out.startswith("wrong:")
    status, out, _ = _run(capsys, "W", "--jacobian", "--wrt", "x", "--f", "W*x", "--shape", "W=m,d", "x=d,1")
    assert status == 0 and out.startswith("right: the answer equals ∂F/∂xᵀ = W")


@pytest.mark.parametrize("argv,message", [
    (("W", "--hessian", "--wrt", "x"), "--hessian needs the function: --f EXPRESSION"),
    (("W", "--jacobian", "--wrt", "q", "--f", "W*x", "--shape", "W=m,d", "x=d,1"), "q is not a matrix of the function"),
    (("W(", "--jacobian", "--wrt", "x", "--f", "W*x", "--shape", "W=m,d", "x=d,1"), "column 2"),
    (("2*H'*(Ypred - Y)", "--wrt", "W2", "--f", "x"), "--f and --shape go with --hessian or --jacobian"),
])
def test_cli_check_second_order_errors_are_one_line(capsys, argv, message) -> None:
    status, out, err = _run(capsys, *argv)
    assert status == 2 and message in err and err.count("\n") == 1 and out == ""


# Where a wrong answer differs, term by term.  The oracle is how each answer was made wrong: the broken
# term (a sign, a factor, a missing σ′ factor, a dropped term) is known, and the Hessian of xᵀAx is
# A + Aᵀ (Matrix Cookbook (81)); of logistic regression Xᵀdiag(σ ⊙ (1 − σ))X.
QUAD = {"A": ("n", "n"), "x": ("n", 1)}


@pytest.mark.parametrize("answer, says", [
    ("A - A'", ["The term -Aᵀ has the wrong sign: ∂²f/∂x∂xᵀ has Aᵀ."]),
    ("2*A", ["The term 2A is 2 times the term A of ∂²f/∂x∂xᵀ.", "has the term Aᵀ, which the answer lacks"]),
    ("A + 3*A'", ["The term 3Aᵀ is 3 times the term Aᵀ of ∂²f/∂x∂xᵀ."]),
    ("A*A + A'", ["The term A² of the answer is not a term of ∂²f/∂x∂xᵀ.",
                  "has the term A, which the answer lacks"]),
    ("A", ["has the term Aᵀ, which the answer lacks"]),
])
def test_a_wrong_hessian_is_located_term_by_term(answer: str, says: list[str]) -> None:
    result = check_hessian(answer, "x'*A*x", "x", QUAD)
    assert not result.ok
    for line in says:
        assert line in result.message, result.message


def test_a_hessian_without_the_derivative_of_sigma_names_its_term() -> None:
    result = check_hessian("X'*diag(sigmoid(X*w))*X", LOGREG, "w", LOGREG_SHAPES)
    assert not result.ok
    assert "The term Xᵀdiag(σ(Xw))X of the answer is not a term of ∂²f/∂w∂wᵀ." in result.message
    assert "which the answer lacks" in result.message


def test_right_terms_are_not_listed() -> None:
    result = check_hessian("A' + 2*A", "x'*A*x", "x", QUAD)
    assert "2A is 2 times the term A" in result.message and "Aᵀ" not in result.message.split("\n", 1)[1]
