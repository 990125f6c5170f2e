"""Matrix Cookbook identities (Petersen & Pedersen, 2012): the engine against the closed
form typed from the Cookbook (in NumPy) and against central finite differences.

Each case id carries the Cookbook equation number.  Shapes are non-square and all
different (n=4, d=3, m=5, k=2) wherever the identity allows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import sympy
from sympy import Determinant, Identity, Inverse, MatrixSymbol, OneMatrix, Trace, Transpose
from sympy.matrices.expressions.hadamard import HadamardProduct

import derive
from tests.oracle import check_against_fd, evaluate

n, d, m, k = 4, 3, 5, 2
inv, det, T = np.linalg.inv, np.linalg.det, np.transpose


@dataclass
class Case:
    id: str
    f: Callable[[dict], sympy.Basic]          # symbols -> scalar expression
    wrt: str
    closed: Callable[[dict], np.ndarray]      # values -> the Cookbook's ∂f/∂X
    shapes: dict
    spd: tuple = ()                           # symbols that must be symmetric positive definite


S = dict  # shorthand for shape tables

CASES = [
    # ---- 2.4.1 traces: first order (100-105)
    Case("eq100-tr(X)", lambda s: Trace(s["X"]), "X", lambda v: np.eye(n), S(X=(n, n))),
    Case("eq101-tr(XA)", lambda s: Trace(s["X"] * s["A"]), "X", lambda v: v["A"].T, S(X=(n, d), A=(d, n))),
    Case("eq102-tr(AXB)", lambda s: Trace(s["A"] * s["X"] * s["B"]), "X",
         lambda v: v["A"].T @ v["B"].T, S(A=(k, n), X=(n, d), B=(d, k))),
    Case("eq103-tr(AX'B)", lambda s: Trace(s["A"] * s["X"].T * s["B"]), "X",
         lambda v: v["B"] @ v["A"], S(A=(k, d), X=(n, d), B=(n, k))),
    Case("eq104-tr(X'A)", lambda s: Trace(s["X"].T * s["A"]), "X", lambda v: v["A"], S(X=(n, d), A=(n, d))),
    Case("eq105-tr(AX')", lambda s: Trace(s["A"] * s["X"].T), "X", lambda v: v["A"], S(X=(n, d), A=(n, d))),
    # ---- 2.4.2 second order (107-122)
    Case("eq107-tr(X^2)", lambda s: Trace(s["X"] * s["X"]), "X", lambda v: 2 * v["X"].T, S(X=(n, n))),
    Case("eq108-tr(X^2B)", lambda s: Trace(s["X"] * s["X"] * s["B"]), "X",
         lambda v: (v["X"] @ v["B"] + v["B"] @ v["X"]).T, S(X=(n, n), B=(n, n))),
    Case("eq111-tr(X'BX)", lambda s: Trace(s["X"].T * s["B"] * s["X"]), "X",
         lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], S(X=(n, d), B=(n, n))),
    Case("eq112-tr(BXX')", lambda s: Trace(s["B"] * s["X"] * s["X"].T), "X",
         lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], S(X=(n, d), B=(n, n))),
    Case("eq113-tr(XX'B)", lambda s: Trace(s["X"] * s["X"].T * s["B"]), "X",
         lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], S(X=(n, d), B=(n, n))),
    Case("eq114-tr(XBX')", lambda s: Trace(s["X"] * s["B"] * s["X"].T), "X",
         lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], S(X=(n, d), B=(d, d))),
    Case("eq115-tr(BX'X)", lambda s: Trace(s["B"] * s["X"].T * s["X"]), "X",
         lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], S(X=(n, d), B=(d, d))),
    Case("eq116-tr(X'XB)", lambda s: Trace(s["X"].T * s["X"] * s["B"]), "X",
         lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], S(X=(n, d), B=(d, d))),
    Case("eq117-tr(AXBX)", lambda s: Trace(s["A"] * s["X"] * s["B"] * s["X"]), "X",
         lambda v: v["A"].T @ v["X"].T @ v["B"].T + v["B"].T @ v["X"].T @ v["A"].T,
         S(A=(d, n), X=(n, d), B=(d, n))),
    Case("eq118-tr(X'X)", lambda s: Trace(s["X"].T * s["X"]), "X", lambda v: 2 * v["X"], S(X=(n, d))),
    Case("eq119-tr(B'X'CXB)", lambda s: Trace(s["B"].T * s["X"].T * s["C"] * s["X"] * s["B"]), "X",
         lambda v: v["C"].T @ v["X"] @ v["B"] @ v["B"].T + v["C"] @ v["X"] @ v["B"] @ v["B"].T,
         S(B=(d, k), X=(n, d), C=(n, n))),
    Case("eq120-tr(X'BXC)", lambda s: Trace(s["X"].T * s["B"] * s["X"] * s["C"]), "X",
         lambda v: v["B"] @ v["X"] @ v["C"] + v["B"].T @ v["X"] @ v["C"].T, S(X=(n, d), B=(n, n), C=(d, d))),
    Case("eq121-tr(AXBX'C)", lambda s: Trace(s["A"] * s["X"] * s["B"] * s["X"].T * s["C"]), "X",
         lambda v: v["A"].T @ v["C"].T @ v["X"] @ v["B"].T + v["C"] @ v["A"] @ v["X"] @ v["B"],
         S(A=(k, n), X=(n, d), B=(d, d), C=(n, k))),
    Case("eq122-tr((AXB+C)(AXB+C)')",
         lambda s: Trace((s["A"] * s["X"] * s["B"] + s["C"]) * Transpose(s["A"] * s["X"] * s["B"] + s["C"])), "X",
         lambda v: 2 * v["A"].T @ (v["A"] @ v["X"] @ v["B"] + v["C"]) @ v["B"].T,
         S(A=(k, n), X=(n, d), B=(d, m), C=(k, m))),
    # ---- 2.4 / 2.5 linear and quadratic forms (69-81), 1×1 products treated as scalars
    Case("eq69-a'Xb", lambda s: s["a"].T * s["X"] * s["b"], "X", lambda v: v["a"] @ v["b"].T,
         S(a=(n, 1), X=(n, d), b=(d, 1))),
    Case("eq70-a'X'b", lambda s: s["a"].T * s["X"].T * s["b"], "X", lambda v: v["b"] @ v["a"].T,
         S(a=(d, 1), X=(n, d), b=(n, 1))),
    Case("eq71-a'Xa", lambda s: s["a"].T * s["X"] * s["a"], "X", lambda v: v["a"] @ v["a"].T,
         S(a=(n, 1), X=(n, n))),
    Case("eq77-b'X'Xc", lambda s: s["b"].T * s["X"].T * s["X"] * s["c"], "X",
         lambda v: v["X"] @ (v["b"] @ v["c"].T + v["c"] @ v["b"].T), S(b=(d, 1), X=(n, d), c=(d, 1))),
    Case("eq80-b'X'DXc", lambda s: s["b"].T * s["X"].T * s["D"] * s["X"] * s["c"], "X",
         lambda v: v["D"].T @ v["X"] @ v["b"] @ v["c"].T + v["D"] @ v["X"] @ v["c"] @ v["b"].T,
         S(b=(d, 1), X=(n, d), D=(n, n), c=(d, 1))),
    Case("eq81-(Xb+c)'D(Xb+c)", lambda s: Transpose(s["X"] * s["b"] + s["c"]) * s["D"] * (s["X"] * s["b"] + s["c"]),
         "X", lambda v: (v["D"] + v["D"].T) @ (v["X"] @ v["b"] + v["c"]) @ v["b"].T,
         S(X=(n, d), b=(d, 1), c=(n, 1), D=(n, n))),
    # ---- 2.6 Frobenius norm (eq. 130 in the 2012 edition: ∂‖X‖²_F/∂X = 2X)
    Case("eq130-frobenius_sq(X)", lambda s: derive.frobenius_sq(s["X"]), "X", lambda v: 2 * v["X"], S(X=(n, d))),
    Case("eq130-frobenius_sq(AX-B)", lambda s: derive.frobenius_sq(s["A"] * s["X"] - s["B"]), "X",
         lambda v: 2 * v["A"].T @ (v["A"] @ v["X"] - v["B"]), S(A=(m, n), X=(n, d), B=(m, d))),
    # ---- 2.1 determinants (49, 51, 57) and 2.2 inverses (61, 124)
    Case("eq49-det(X)", lambda s: Determinant(s["X"]), "X", lambda v: det(v["X"]) * inv(v["X"]).T, S(X=(n, n))),
    Case("eq51-det(AXB)", lambda s: Determinant(s["A"] * s["X"] * s["B"]), "X",
         lambda v: det(v["A"] @ v["X"] @ v["B"]) * inv(v["X"]).T, S(A=(n, n), X=(n, n), B=(n, n))),
    Case("eq57-log|det(X)|", lambda s: sympy.log(Determinant(s["X"])), "X", lambda v: inv(v["X"]).T,
         S(X=(n, n)), spd=("X",)),
    Case("eq61-a'X^-1b", lambda s: s["a"].T * Inverse(s["X"]) * s["b"], "X",
         lambda v: -inv(v["X"]).T @ v["a"] @ v["b"].T @ inv(v["X"]).T, S(a=(n, 1), X=(n, n), b=(n, 1))),
    Case("eq124-tr(AX^-1B)", lambda s: Trace(s["A"] * Inverse(s["X"]) * s["B"]), "X",
         lambda v: -(inv(v["X"]) @ v["B"] @ v["A"] @ inv(v["X"])).T, S(A=(k, n), X=(n, n), B=(n, k))),
    # ---- trace identities used by the engine for ⊙ and elementwise functions (no Cookbook number)
    Case("hadamard-tr(A'(B.X))", lambda s: Trace(s["A"].T * HadamardProduct(s["B"], s["X"])), "X",
         lambda v: v["A"] * v["B"], S(A=(n, d), B=(n, d), X=(n, d))),
    Case("elementwise-tr(A'sigmoid(X))", lambda s: Trace(s["A"].T * derive.sigmoid(s["X"])), "X",
         lambda v: v["A"] * _sig(v["X"]) * (1 - _sig(v["X"])), S(A=(n, d), X=(n, d))),
    Case("elementwise-tr(A'tanh(XW))", lambda s: Trace(s["A"].T * derive.tanh(s["X"] * s["W"])), "W",
         lambda v: v["X"].T @ (v["A"] * (1 - np.tanh(v["X"] @ v["W"]) ** 2)), S(A=(n, m), X=(n, d), W=(d, m))),
    Case("elementwise-tr(A'softplus(X))", lambda s: Trace(s["A"].T * derive.softplus(s["X"])), "X",
         lambda v: v["A"] * _sig(v["X"]), S(A=(n, d), X=(n, d))),
    Case("elementwise-tr(A'log(sigmoid(X)))", lambda s: Trace(s["A"].T * derive.log(derive.sigmoid(s["X"]))), "X",
         lambda v: v["A"] * (1 - _sig(v["X"])), S(A=(n, d), X=(n, d))),
    Case("elementwise-tr(A'exp(X))", lambda s: Trace(s["A"].T * s["X"].applyfunc(sympy.exp)), "X",
         lambda v: v["A"] * np.exp(v["X"]), S(A=(n, d), X=(n, d))),
    Case("bias-row-frobenius_sq(XW+1b-Y)", lambda s: derive.frobenius_sq(s["X"] * s["W"] + OneMatrix(n, 1) * s["b"] - s["Y"]),
         "b", lambda v: 2 * np.sum(v["X"] @ v["W"] + v["b"] - v["Y"], axis=0, keepdims=True),
         S(X=(n, d), W=(d, k), b=(1, k), Y=(n, k))),
    Case("identity-tr(X'IX)", lambda s: Trace(s["X"].T * Identity(n) * s["X"]), "X", lambda v: 2 * v["X"], S(X=(n, d))),
]


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _setup(case: Case, seed: int = 0):
    rng = np.random.default_rng(seed)
    syms = {name: MatrixSymbol(name, *shape) for name, shape in case.shapes.items()}
    values = {}
    for name, shape in case.shapes.items():
        a = rng.standard_normal(shape)
        if name in case.spd:
            a = a @ a.T + shape[0] * np.eye(shape[0])
        elif shape[0] == shape[1] and shape[0] > 1:
            a = a + shape[0] * np.eye(shape[0])  # well conditioned for inverses
        values[syms[name]] = a
    return rng, syms, values


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cookbook_closed_form_and_finite_differences(case: Case) -> None:
    rng, syms, values = _setup(case)
    f, X = case.f(syms), syms[case.wrt]
    G = derive.gradient(f, X)
    assert G.shape == X.shape
    got = evaluate(G, values)
    expected = case.closed({s.name: v for s, v in values.items()})
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    assert check_against_fd(f, X, G, values, rng) < 1e-6


def test_cookbook_table_has_equation_numbers() -> None:
    numbered = [c for c in CASES if c.id.startswith("eq")]
    assert len(numbered) >= 30
