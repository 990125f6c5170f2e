"""derive.simplify, one rewrite at a time: where it applies, the expression it returns has the value of
the one it was given (NumPy written by hand on random non-square data); elsewhere it returns its input
unchanged.  Then tidy as a whole: it keeps the value, and tidying twice changes nothing."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import (
    HadamardPower, HadamardProduct, Identity, Inverse, MatAdd, MatMul, MatPow, MatrixSymbol, OneMatrix,
    Trace, Transpose,
)

from derive.differential import MatrixDifferential
from derive.simplify import (
    COLLECT, SIMPLIFY_PRODUCT, TIDY_RULES, negate, ones_multiple, scale, split_coeff, tidy, tidy_hadamard,
    tidy_hadamard_power, tidy_product, tidy_sum, tidy_transpose, transpose,
)
from tests.oracle import evaluate

n, d, m, k = 4, 3, 5, 2
A, B = MatrixSymbol("A", n, d), MatrixSymbol("B", n, d)
W, U = MatrixSymbol("W", d, m), MatrixSymbol("U", m, k)
Y, P = MatrixSymbol("Y", n, k), MatrixSymbol("Ypred", n, k)
S = MatrixSymbol("S", d, d)                                   # square, for powers and inverses
X, V = MatrixSymbol("X", n, d), MatrixSymbol("V", n, d)

rng = np.random.default_rng(11)
VALUES = {s: rng.standard_normal(s.shape) for s in (A, B, W, U, Y, P, X, V)}
VALUES[S] = rng.standard_normal((d, d)) + 3 * np.eye(d)        # well conditioned
v = {s.name: a for s, a in VALUES.items()}


def value(e) -> np.ndarray:
    return evaluate(e, VALUES)


# rule, an expression it applies to, the value by hand, an expression it leaves unchanged
CASES = [
    (tidy_transpose, Transpose(MatMul(2, A, W)), (2 * v["A"] @ v["W"]).T, Transpose(A)),
    (tidy_transpose, Transpose(HadamardProduct(A, B)), (v["A"] * v["B"]).T, Transpose(A)),
    (tidy_transpose, Transpose(Transpose(A)), v["A"], Transpose(A)),
    (tidy_product, MatMul(2, A, Identity(d), W), 2 * v["A"] @ v["W"], MatMul(A, W)),
    (tidy_product, MatMul(-2, Y - P), -2 * (v["Y"] - v["Ypred"]), MatMul(2, P - Y)),
    (tidy_product, MatMul(A, S, S, Inverse(S)), v["A"] @ v["S"], MatMul(A, S, W)),
    (tidy_hadamard, HadamardProduct(MatMul(2, A), OneMatrix(n, d), B), 2 * v["A"] * v["B"],
     HadamardProduct(A, B)),
    (tidy_hadamard, HadamardProduct(A, HadamardPower(A, 2), B), v["A"] ** 3 * v["B"], HadamardProduct(A, B)),
    (tidy_sum, MatAdd(A, A, B), 2 * v["A"] + v["B"], MatAdd(A, B)),
    # PS + QS = (P + Q)S where S holds a sum
    (tidy_sum, MatAdd(MatMul(A, MatAdd(W, W * U * U.T)), MatMul(B, MatAdd(W, W * U * U.T))),
     (v["A"] + v["B"]) @ (v["W"] + v["W"] @ v["U"] @ v["U"].T), MatAdd(MatMul(A, W), MatMul(B, W))),
    (tidy_hadamard_power, HadamardPower(A, 1), v["A"], HadamardPower(A, 2)),
    (tidy_hadamard_power, HadamardPower(HadamardPower(A, 2), -1), v["A"] ** -2.0,
     HadamardPower(HadamardPower(A, 2), sympy.Rational(1, 2))),                 # (A∘²)∘½ = |A|, not A
    # the power undone inside a repeated column: ((a∘⁻¹)𝟏ᵀ)∘⁻¹ = a𝟏ᵀ; a power of a repeated column stays
    (tidy_hadamard_power, HadamardPower(MatMul(HadamardPower(Y[:, 0], -1), OneMatrix(1, d)), -1),
     np.repeat(v["Y"][:, :1], d, axis=1), HadamardPower(MatMul(Y[:, 0], OneMatrix(1, d)), -2)),
    # a power of a product cancels against that product's factors beside it: (A ⊙ B) ⊙ (A ⊙ B)∘⁻¹ ⊙ X = X
    (tidy_hadamard, HadamardProduct(A, B, HadamardPower(HadamardProduct(A, B), -1), X), v["X"],
     HadamardProduct(X, HadamardPower(HadamardProduct(A, B), -1))),
    (SIMPLIFY_PRODUCT, MatMul(2, A, Inverse(S), Inverse(Inverse(S)), Identity(d), S, W),
     2 * v["A"] @ v["S"] @ v["W"], MatMul(A, S, W)),
    (SIMPLIFY_PRODUCT, MatMul(A, MatPow(S, 2), MatPow(S, -3), W), v["A"] @ np.linalg.inv(v["S"]) @ v["W"],
     MatMul(A, S.T, S, W)),
]


def _name(rule) -> str:
    return rule.key if hasattr(rule, "key") else rule.__name__


@pytest.mark.parametrize(("rule", "e", "by_hand", "_"), CASES, ids=[_name(c[0]) for c in CASES])
def test_applies_and_keeps_the_value(rule, e, by_hand, _) -> None:
    out = rule(e)
    assert out != e
    np.testing.assert_allclose(value(out), by_hand, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("rule", "_", "__", "unchanged"), CASES, ids=[_name(c[0]) for c in CASES])
def test_returns_its_input_unchanged_where_it_does_not_apply(rule, _, __, unchanged) -> None:
    assert rule(unchanged) == unchanged


def test_every_tidy_rule_has_a_case() -> None:
    assert set(TIDY_RULES.values()) <= {c[0] for c in CASES}


def test_the_sign_goes_into_the_difference() -> None:
    assert tidy_product(MatMul(-2, Y - P)) == MatMul(2, P - Y)


def test_products_of_the_same_base_merge_and_others_do_not() -> None:
    assert tidy_product(MatMul(A, S, S)) == MatMul(A, MatPow(S, 2))
    assert tidy_product(MatMul(A, S.T, S)) == MatMul(A, S.T, S)     # SᵀS is no power


def test_collect_combines_like_terms_of_a_scalar_sum() -> None:
    dX = MatrixDifferential(X)
    t = Trace(MatMul(A.T, dX))
    raw = sympy.Add(t, t, Trace(MatMul(B.T, dX)), evaluate=False)
    out = COLLECT(raw)
    assert out == 2 * t + Trace(MatMul(B.T, dX))
    concrete = {dX: V}
    by_hand = 2 * np.trace(v["A"].T @ v["V"]) + np.trace(v["B"].T @ v["V"])
    assert float(value(out.xreplace(concrete))) == pytest.approx(by_hand, rel=1e-12)
    unchanged = sympy.Add(t, Trace(MatMul(B.T, dX)))
    assert COLLECT(unchanged) == unchanged


TIDY = {
    "sign into a difference inside a transpose": MatMul(-1, Transpose(Y - P), Y),
    "transpose of a sum of transposed products": Transpose(MatAdd(MatMul(A, W).T.T, MatMul(B, W))),
    "nested products and scalars": MatMul(3, MatMul(A, MatMul(2, W)), U),
    "hadamard with ones and a scalar": HadamardProduct(MatMul(-1, Y - P), OneMatrix(n, k), MatMul(2, Y)),
    "like terms across a sum": MatAdd(MatMul(2, A, W), MatMul(-1, A, W), MatMul(B, W)),
    "power of one": MatMul(HadamardPower(A, 1), W),
}
TIDY_BY_HAND = {
    "sign into a difference inside a transpose": -(v["Y"] - v["Ypred"]).T @ v["Y"],
    "transpose of a sum of transposed products": (v["A"] @ v["W"] + v["B"] @ v["W"]).T,
    "nested products and scalars": 6 * v["A"] @ v["W"] @ v["U"],
    "hadamard with ones and a scalar": -2 * (v["Y"] - v["Ypred"]) * v["Y"],
    "like terms across a sum": v["A"] @ v["W"] + v["B"] @ v["W"],
    "power of one": v["A"] @ v["W"],
}


@pytest.mark.parametrize("name", list(TIDY))
def test_tidy_keeps_the_value_and_is_idempotent(name: str) -> None:
    out = tidy(TIDY[name])
    np.testing.assert_allclose(value(out), TIDY_BY_HAND[name], rtol=1e-10, atol=1e-12)
    assert tidy(out) == out


def test_tidy_leaves_a_tidy_expression_alone() -> None:
    e = MatMul(2, A.T, P - Y)
    assert tidy(e) == e


def test_helpers() -> None:
    c, M = split_coeff(MatMul(2, A, MatMul(3, W)))
    assert c == 6 and MatMul(A, W) == M
    assert scale(0, A).is_ZeroMatrix and scale(1, A) == A
    np.testing.assert_allclose(value(negate(MatMul(-2, A, W))), 2 * v["A"] @ v["W"])
    np.testing.assert_allclose(value(transpose(MatMul(2, A, W))), 2 * (v["A"] @ v["W"]).T)
    assert ones_multiple(MatMul(OneMatrix(n, 1), OneMatrix(1, d))) == 1
    assert ones_multiple(MatMul(OneMatrix(1, n), OneMatrix(n, 1))) == n
    assert ones_multiple(A) is None
