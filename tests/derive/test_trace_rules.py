"""derive.trace_rules, one rule at a time: where it applies, the trace it returns has the value of the
trace it was given (NumPy written by hand, random non-square data, the differential dX replaced by a
random direction V); elsewhere it returns its input unchanged."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import HadamardProduct, MatAdd, MatMul, MatrixSymbol, Trace, Transpose

from derive.differential import MatrixDifferential
from derive.trace_rules import (
    DISTRIBUTE, READ_OFF, TRACE_CYCLIC, TRACE_HADAMARD, TRACE_LINEARITY, TRACE_RULES, TRACE_TRANSPOSE,
    TRANSPOSE_PRODUCT,
)
from tests.oracle import evaluate

n, d, m, k = 4, 3, 5, 2
X, V = MatrixSymbol("X", n, d), MatrixSymbol("V", n, d)      # V: the direction dX takes
W, VW = MatrixSymbol("W", d, m), MatrixSymbol("VW", d, m)
A, B = MatrixSymbol("A", k, n), MatrixSymbol("B", m, k)
P, Q = MatrixSymbol("P", k, d), MatrixSymbol("Q", n, k)
R, C = MatrixSymbol("R", n, d), MatrixSymbol("C", n, d)
dX, dW = MatrixDifferential(X), MatrixDifferential(W)

rng = np.random.default_rng(7)
VALUES = {s: rng.standard_normal(s.shape) for s in (X, V, W, VW, A, B, P, Q, R, C)}
v = {s.name: a for s, a in VALUES.items()}


def value(e) -> float:
    """The value of a scalar holding dX and dW, with dX = V and dW = VW (SymPy with explicit matrices)."""
    return float(evaluate(e.xreplace({dX: V, dW: VW}), VALUES))


# rule, the trace it applies to, the value of that trace by hand, and a trace it leaves unchanged
CASES = [
    (DISTRIBUTE, Trace(MatMul(A, MatAdd(MatMul(dX, W), MatMul(X, dW)), B)),
     np.trace(v["A"] @ (v["V"] @ v["W"] + v["X"] @ v["VW"]) @ v["B"]),
     Trace(MatMul(A, dX, W, B))),
    (TRACE_LINEARITY, Trace(MatAdd(MatMul(P.T, Q.T, dX), MatMul(2, dX.T, Q, P))),
     np.trace(v["P"].T @ v["Q"].T @ v["V"]) + 2 * np.trace(v["V"].T @ v["Q"] @ v["P"]),
     Trace(MatMul(P.T, Q.T, dX))),
    (TRACE_LINEARITY, Trace(MatMul(-3, Q.T, dX, P.T)),
     -3 * np.trace(v["Q"].T @ v["V"] @ v["P"].T),
     Trace(MatMul(3, Q.T, dX, P.T))),
    (TRACE_TRANSPOSE, Trace(MatMul(P, dX.T, Q)),
     np.trace(v["P"] @ v["V"].T @ v["Q"]),
     Trace(MatMul(Q.T, dX, P.T))),
    (TRANSPOSE_PRODUCT, Trace(MatMul(B.T, Transpose(MatMul(dX, W)), Q)),
     np.trace(v["B"].T @ (v["V"] @ v["W"]).T @ v["Q"]),
     Trace(MatMul(A, dX, W, B))),
    (TRACE_HADAMARD, Trace(MatMul(R.T, HadamardProduct(C, dX))),
     np.trace(v["R"].T @ (v["C"] * v["V"])),
     Trace(MatMul(R.T, dX))),
    (TRACE_HADAMARD, Trace(MatMul(2, B, A, HadamardProduct(MatMul(X, W), MatMul(dX, W), MatMul(R, W)))),
     2 * np.trace(v["B"] @ v["A"] @ ((v["X"] @ v["W"]) * (v["V"] @ v["W"]) * (v["R"] @ v["W"]))),
     Trace(MatMul(R.T, HadamardProduct(C, dX), W, B, P))),
    (TRACE_CYCLIC, Trace(MatMul(A, dX, W, B)),
     np.trace(v["A"] @ v["V"] @ v["W"] @ v["B"]),
     Trace(MatMul(W, B, A, dX))),
]


@pytest.mark.parametrize(("rule", "t", "by_hand", "_"), CASES, ids=[c[0].key for c in CASES])
def test_applies_and_keeps_the_value(rule, t, by_hand, _) -> None:
    out = rule(t)
    assert out != t
    assert value(out) == pytest.approx(float(by_hand), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize(("rule", "_", "__", "unchanged"), CASES, ids=[c[0].key for c in CASES])
def test_returns_its_input_unchanged_where_it_does_not_apply(rule, _, __, unchanged) -> None:
    assert rule(unchanged) == unchanged


def test_every_trace_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(TRACE_RULES)


def test_cyclic_moves_the_differential_to_the_end() -> None:
    out = TRACE_CYCLIC(Trace(MatMul(A, dX, W, B)))
    assert out == Trace(MatMul(W, B, A, dX))


def test_trace_hadamard_takes_the_weight_out_of_the_product() -> None:
    # tr(Rᵀ(C ⊙ dX)) = tr((R ⊙ C)ᵀ dX): the differential ends up alone on the right
    out = TRACE_HADAMARD(Trace(MatMul(R.T, HadamardProduct(C, dX))))
    assert isinstance(out, Trace) and out.arg.args[-1] == dX


def test_read_off_gives_the_gradient() -> None:
    # tr(R dX) = ⟨Rᵀ, dX⟩: G = Rᵀ, of the shape of X
    G = READ_OFF(Trace(MatMul(2, P.T, Q.T, dX)))
    assert G.shape == X.shape
    assert float(np.sum(evaluate(G, VALUES) * v["V"])) == pytest.approx(
        2 * np.trace(v["P"].T @ v["Q"].T @ v["V"]), rel=1e-12)


def test_read_off_returns_none_before_the_differential_is_last() -> None:
    assert READ_OFF(Trace(MatMul(Q.T, dX, P.T))) is None
