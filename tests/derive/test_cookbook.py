"""Matrix Cookbook identities (Petersen & Pedersen, version of November 15, 2012): the
engine against the closed form typed from the Cookbook (in NumPy) and against central
finite differences.

Each numbered case id is ``eq<N>-…`` with N the Cookbook's equation number.  Shapes are
non-square and all different (n=4, d=3, m=5, k=2) wherever the identity allows; a
matrix is symmetric (``sym``) or symmetric positive definite (``spd``) only where the
identity itself asks for it.  Vectors are n×1 matrices.

Covered: the first-order scalar-by-matrix (and scalar-by-vector) identities of sections
2.1-2.5 — 49, 51-54, 57, 58 (determinants); 61-64 (inverses); 69-72 (2.4.1); 76-78,
81-88 (2.4.2); 91, 92, 94 (2.4.3); 96 (2.4.4); 99-104 (2.5.1); 106-120 (2.5.2);
121-123 (2.5.3); 124-127 (2.5.4) — and, from 2.6/2.7, 129, 131 (two-norm) and 132
(Frobenius norm).

Numbering: the equations were counted in a Markdown transcription of the 2012 text
(eric-wieser/lean-matrix-cookbook, md/main.md) between fixed points — the Lean port's
eq_33..eq_46 (the differential rules and 2.1.1) and eq_145 (first equation of chapter 3),
and the Cookbook's own cross-references ("a special case of the result in equation 119"
under 132; "see (142)", the diagonal case, in 2.8.2) — and agree with the "Cookbook example
N" comments of SymPy's matrices/expressions/tests/test_derivatives.py (61-64, 69-72, 77,
78, 81-83, 99-127).  Section 2.3 has three numbers (66, 67, 68), so 2.4.1 starts at 69.

Skipped, with the reason:

* 46, 48 — derivatives of det(Y(x)) with respect to a scalar x (46 is the rule
  ``d_determinant`` itself) and a second derivative; not scalar-by-matrix first order.
* 47, 50 — Σ_k ∂det(X)/∂X_ik X_jk = δ_ij det(X): an element-wise relation, not a gradient.
* 55, 56 — pseudo-inverse X⁺.
* 59, 60 — ∂Y⁻¹/∂x (matrix by scalar; the rule ``d_inverse`` itself) and its element-wise
  form ∂(X⁻¹)_kl/∂X_ij (matrix-valued).
* 65 — ∂J/∂A = −A⁻ᵀ ∂J/∂W A⁻ᵀ for a generic J: a relation, no closed form.
* 66, 67, 68 — eigenvalues (the Tr/det right-hand sides of 66 and 67 are cases 99 and 49).
* 73, 74, 75, 79, 80, 90 — element-wise ∂(matrix)/∂X_ij: matrix-valued, not scalar.
* 89 — complex (xᴴ, conjugates).
* 93 — sᵀAr for generic s(x), r(x): a chain-rule template, no closed form.
* 95, 97 — 95 defines f (no derivative); 97 is its Hessian (second order).
* 98 — ∂Tr(F(X))/∂X = f(X)ᵀ for a matrix function F.
* 105 and the Tr(X⊗X) form of 120 — Kronecker products (120 is covered by Tr(X)Tr(X)).
* 128 — Tr(sin X), a matrix function.
* 130 — vector-valued (∂(x−a)/‖x−a‖₂ / ∂x).
* 133-144 (2.8) — structured matrices (symmetric, diagonal, Toeplitz), out of scope.

Errata and transcription slips met here (the engine agrees with finite differences in each):

* 92 — transcribed as Σ_r [X^{n−1−r} a bᵀ (Xⁿ)ᵀ X^r + (X^r)ᵀ Xⁿ a bᵀ (X^{n−1−r})ᵀ]; the first
  term is the transpose of the right one, (X^r)ᵀ Xⁿ b aᵀ (X^{n−1−r})ᵀ.  The case uses the
  corrected first term (the printed form is off by O(1) even for a = b).
* 94 — the first denominator reads xᵀBBx in the transcription; it is xᵀBᵀBx (B need not
  be square, and the quotient's derivative has xᵀBᵀBx there).
* 127 — stated for B and C symmetric; the closed form also needs A symmetric (with a
  general A the right answer has (A+XᵀCX)⁻¹ and its transpose in both terms).  A is
  symmetric here.
* 82 — the transcription garbles the first term (DᵀXbᵀcᵀ); it is DᵀXbcᵀ + DXcbᵀ.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import pytest
import sympy
from sympy import Determinant, Identity, Inverse, MatrixSymbol, OneMatrix, Trace, Transpose
from sympy.matrices.expressions.hadamard import HadamardProduct

import derive
from tests.oracle import check_against_fd, evaluate

n, d, m, k = 4, 3, 5, 2
inv, det, T, mpow = np.linalg.inv, np.linalg.det, np.transpose, np.linalg.matrix_power
P = 3  # the integer power used for X^k / X^n identities (58, 91, 92, 121, 122)


@dataclass
class Case:
    id: str
    f: Callable[[dict], sympy.Basic]          # symbols -> scalar expression
    wrt: str
    closed: Callable[[dict], np.ndarray]      # values -> the Cookbook's ∂f/∂X
    shapes: dict
    spd: tuple = ()                           # symbols that must be symmetric positive definite
    sym: tuple = ()                           # symbols that must be symmetric (the identity says so)
    xfail: str = ""                           # a known engine failure, reported (strict xfail)


S = dict  # shorthand for shape tables


def col(r: int) -> tuple[int, int]:
    """The shape of a column vector of length r."""
    return (r, 1)


def _tr(e: sympy.Basic) -> sympy.Basic:
    """A 1×1 matrix product as a scalar."""
    return Trace(e)


CASES = [
    # ---- 2.1.2 determinants, linear forms (49, 51)
    Case("eq49-det(X)", lambda s: Determinant(s["X"]), "X", lambda v: det(v["X"]) * inv(v["X"]).T,
         S(X=(n, n))),
    Case("eq51-det(AXB)", lambda s: Determinant(s["A"] * s["X"] * s["B"]), "X",
         lambda v: det(v["A"] @ v["X"] @ v["B"]) * inv(v["X"]).T, S(A=(n, n), X=(n, n), B=(n, n))),
    # ---- 2.1.3 square forms (52-54)
    Case("eq52-det(X'AX)-square", lambda s: Determinant(s["X"].T * s["A"] * s["X"]), "X",
         lambda v: 2 * det(v["X"].T @ v["A"] @ v["X"]) * inv(v["X"]).T, S(X=(n, n), A=(n, n))),
    Case("eq53-det(X'AX)-A-symmetric", lambda s: Determinant(s["X"].T * s["A"] * s["X"]), "X",
         lambda v: 2 * det(v["X"].T @ v["A"] @ v["X"]) * v["A"] @ v["X"] @ inv(v["X"].T @ v["A"] @ v["X"]),
         S(X=(n, d), A=(n, n)), sym=("A",)),
    Case("eq54-det(X'AX)", lambda s: Determinant(s["X"].T * s["A"] * s["X"]), "X",
         lambda v: det(v["X"].T @ v["A"] @ v["X"]) * (
             v["A"] @ v["X"] @ inv(v["X"].T @ v["A"] @ v["X"])
             + v["A"].T @ v["X"] @ inv(v["X"].T @ v["A"].T @ v["X"])),
         S(X=(n, d), A=(n, n))),
    # ---- 2.1.4 other nonlinear forms (57, 58); log needs det > 0, hence an SPD X
    Case("eq57-log|det(X)|", lambda s: sympy.log(Determinant(s["X"])), "X", lambda v: inv(v["X"]).T,
         S(X=(n, n)), spd=("X",)),
    Case("eq58-det(X^k)", lambda s: Determinant(s["X"] ** P), "X",
         lambda v: P * det(mpow(v["X"], P)) * inv(v["X"]).T, S(X=(n, n))),
    # ---- 2.2 inverses (61-64)
    Case("eq61-a'X^-1b", lambda s: s["a"].T * Inverse(s["X"]) * s["b"], "X",
         lambda v: -inv(v["X"]).T @ v["a"] @ v["b"].T @ inv(v["X"]).T, S(a=col(n), X=(n, n), b=col(n))),
    Case("eq62-det(X^-1)", lambda s: Determinant(Inverse(s["X"])), "X",
         lambda v: -det(inv(v["X"])) * inv(v["X"]).T, S(X=(n, n))),
    Case("eq63-tr(AX^-1B)", lambda s: Trace(s["A"] * Inverse(s["X"]) * s["B"]), "X",
         lambda v: -(inv(v["X"]) @ v["B"] @ v["A"] @ inv(v["X"])).T, S(A=(k, n), X=(n, n), B=(n, k))),
    Case("eq64-tr((X+A)^-1)", lambda s: Trace(Inverse(s["X"] + s["A"])), "X",
         lambda v: -(inv(v["X"] + v["A"]) @ inv(v["X"] + v["A"])).T, S(X=(n, n), A=(n, n))),
    # ---- 2.4.1 first order (69-72), 1×1 products treated as scalars
    Case("eq69-x'a", lambda s: s["x"].T * s["a"], "x", lambda v: v["a"], S(x=col(n), a=col(n))),
    Case("eq69-a'x", lambda s: s["a"].T * s["x"], "x", lambda v: v["a"], S(x=col(n), a=col(n))),
    Case("eq70-a'Xb", lambda s: s["a"].T * s["X"] * s["b"], "X", lambda v: v["a"] @ v["b"].T,
         S(a=col(n), X=(n, d), b=col(d))),
    Case("eq71-a'X'b", lambda s: s["a"].T * s["X"].T * s["b"], "X", lambda v: v["b"] @ v["a"].T,
         S(a=col(d), X=(n, d), b=col(n))),
    Case("eq72-a'Xa", lambda s: s["a"].T * s["X"] * s["a"], "X", lambda v: v["a"] @ v["a"].T,
         S(a=col(n), X=(n, n))),
    Case("eq72-a'X'a", lambda s: s["a"].T * s["X"].T * s["a"], "X", lambda v: v["a"] @ v["a"].T,
         S(a=col(n), X=(n, n))),
    # ---- 2.4.2 second order (76-78, 81-88)
    # 76: ∂/∂X_ij Σ_klmn X_kl X_mn = 2 Σ_kl X_kl, i.e. f = (1ᵀX1)², every entry of ∂f/∂X is 2 Σ X.
    Case("eq76-(sum X)^2", lambda s: _tr(OneMatrix(1, n) * s["X"] * OneMatrix(d, 1)) ** 2, "X",
         lambda v: 2 * v["X"].sum() * np.ones((n, d)), S(X=(n, d))),
    Case("eq77-b'X'Xc", lambda s: s["b"].T * s["X"].T * s["X"] * s["c"], "X",
         lambda v: v["X"] @ (v["b"] @ v["c"].T + v["c"] @ v["b"].T), S(b=col(d), X=(n, d), c=col(d))),
    Case("eq78-(Bx+b)'C(Dx+d)",
         lambda s: Transpose(s["B"] * s["x"] + s["b"]) * s["C"] * (s["D"] * s["x"] + s["d"]), "x",
         lambda v: (v["B"].T @ v["C"] @ (v["D"] @ v["x"] + v["d"])
                    + v["D"].T @ v["C"].T @ (v["B"] @ v["x"] + v["b"])),
         S(B=(m, n), x=col(n), b=col(m), C=(m, k), D=(k, n), d=col(k))),
    Case("eq81-x'Bx", lambda s: s["x"].T * s["B"] * s["x"], "x", lambda v: (v["B"] + v["B"].T) @ v["x"],
         S(x=col(n), B=(n, n))),
    Case("eq82-b'X'DXc", lambda s: s["b"].T * s["X"].T * s["D"] * s["X"] * s["c"], "X",
         lambda v: v["D"].T @ v["X"] @ v["b"] @ v["c"].T + v["D"] @ v["X"] @ v["c"] @ v["b"].T,
         S(b=col(d), X=(n, d), D=(n, n), c=col(d))),
    Case("eq83-(Xb+c)'D(Xb+c)",
         lambda s: Transpose(s["X"] * s["b"] + s["c"]) * s["D"] * (s["X"] * s["b"] + s["c"]), "X",
         lambda v: (v["D"] + v["D"].T) @ (v["X"] @ v["b"] + v["c"]) @ v["b"].T,
         S(X=(n, d), b=col(d), c=col(n), D=(n, n))),
    # 84-88 assume W symmetric
    Case("eq84-d/ds(x-As)'W(x-As)", lambda s: _wq(s, s["x"] - s["A"] * s["s"]), "s",
         lambda v: -2 * v["A"].T @ v["W"] @ (v["x"] - v["A"] @ v["s"]),
         S(x=col(n), A=(n, k), s=col(k), W=(n, n)), sym=("W",)),
    Case("eq85-d/dx(x-s)'W(x-s)", lambda s: _wq(s, s["x"] - s["s"]), "x",
         lambda v: 2 * v["W"] @ (v["x"] - v["s"]), S(x=col(n), s=col(n), W=(n, n)), sym=("W",)),
    Case("eq86-d/ds(x-s)'W(x-s)", lambda s: _wq(s, s["x"] - s["s"]), "s",
         lambda v: -2 * v["W"] @ (v["x"] - v["s"]), S(x=col(n), s=col(n), W=(n, n)), sym=("W",)),
    Case("eq87-d/dx(x-As)'W(x-As)", lambda s: _wq(s, s["x"] - s["A"] * s["s"]), "x",
         lambda v: 2 * v["W"] @ (v["x"] - v["A"] @ v["s"]),
         S(x=col(n), A=(n, k), s=col(k), W=(n, n)), sym=("W",)),
    Case("eq88-d/dA(x-As)'W(x-As)", lambda s: _wq(s, s["x"] - s["A"] * s["s"]), "A",
         lambda v: -2 * v["W"] @ (v["x"] - v["A"] @ v["s"]) @ v["s"].T,
         S(x=col(n), A=(n, k), s=col(k), W=(n, n)), sym=("W",)),
    # ---- 2.4.3 higher order and non-linear (91, 92, 94)
    Case("eq91-a'X^nb", lambda s: s["a"].T * s["X"] ** P * s["b"], "X",
         lambda v: sum(mpow(v["X"], r).T @ v["a"] @ v["b"].T @ mpow(v["X"], P - 1 - r).T for r in range(P)),
         S(a=col(n), X=(n, n), b=col(n))),
    # 92 as printed has its first term transposed (see the module docstring): corrected here.
    Case("eq92-a'(X^n)'X^nb", lambda s: s["a"].T * Transpose(s["X"] ** P) * s["X"] ** P * s["b"], "X",
         lambda v: sum(mpow(v["X"], r).T @ mpow(v["X"], P) @ v["b"] @ v["a"].T @ mpow(v["X"], P - 1 - r).T
                       + mpow(v["X"], r).T @ mpow(v["X"], P) @ v["a"] @ v["b"].T @ mpow(v["X"], P - 1 - r).T
                       for r in range(P)),
         S(a=col(n), X=(n, n), b=col(n))),
    Case("eq94-(Ax)'(Ax)/(Bx)'(Bx)",
         lambda s: _tr(s["x"].T * s["A"].T * s["A"] * s["x"]) / _tr(s["x"].T * s["B"].T * s["B"] * s["x"]),
         "x",
         lambda v: (2 * v["A"].T @ v["A"] @ v["x"] / _q(v["x"], v["B"])
                    - 2 * _q(v["x"], v["A"]) * v["B"].T @ v["B"] @ v["x"] / _q(v["x"], v["B"]) ** 2),
         S(x=col(n), A=(m, n), B=(k, n))),
    # ---- 2.4.4 gradient (96)
    Case("eq96-x'Ax+b'x", lambda s: s["x"].T * s["A"] * s["x"] + s["b"].T * s["x"], "x",
         lambda v: (v["A"] + v["A"].T) @ v["x"] + v["b"], S(x=col(n), A=(n, n), b=col(n))),
    # ---- 2.5.1 traces, first order (99-104)
    Case("eq99-tr(X)", lambda s: Trace(s["X"]), "X", lambda v: np.eye(n), S(X=(n, n))),
    Case("eq100-tr(XA)", lambda s: Trace(s["X"] * s["A"]), "X", lambda v: v["A"].T, S(X=(n, d), A=(d, n))),
    Case("eq101-tr(AXB)", lambda s: Trace(s["A"] * s["X"] * s["B"]), "X",
         lambda v: v["A"].T @ v["B"].T, S(A=(k, n), X=(n, d), B=(d, k))),
    Case("eq102-tr(AX'B)", lambda s: Trace(s["A"] * s["X"].T * s["B"]), "X",
         lambda v: v["B"] @ v["A"], S(A=(k, d), X=(n, d), B=(n, k))),
    Case("eq103-tr(X'A)", lambda s: Trace(s["X"].T * s["A"]), "X", lambda v: v["A"], S(X=(n, d), A=(n, d))),
    Case("eq104-tr(AX')", lambda s: Trace(s["A"] * s["X"].T), "X", lambda v: v["A"], S(X=(n, d), A=(n, d))),
    # ---- 2.5.2 traces, second order (106-120)
    Case("eq106-tr(X^2)", lambda s: Trace(s["X"] ** 2), "X", lambda v: 2 * v["X"].T, S(X=(n, n))),
    Case("eq107-tr(X^2B)", lambda s: Trace(s["X"] ** 2 * s["B"]), "X",
         lambda v: (v["X"] @ v["B"] + v["B"] @ v["X"]).T, S(X=(n, n), B=(n, n))),
    Case("eq108-tr(X'BX)", lambda s: Trace(s["X"].T * s["B"] * s["X"]), "X",
         lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], S(X=(n, d), B=(n, n))),
    Case("eq109-tr(BXX')", lambda s: Trace(s["B"] * s["X"] * s["X"].T), "X",
         lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], S(X=(n, d), B=(n, n))),
    Case("eq110-tr(XX'B)", lambda s: Trace(s["X"] * s["X"].T * s["B"]), "X",
         lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"], S(X=(n, d), B=(n, n))),
    Case("eq111-tr(XBX')", lambda s: Trace(s["X"] * s["B"] * s["X"].T), "X",
         lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], S(X=(n, d), B=(d, d))),
    Case("eq112-tr(BX'X)", lambda s: Trace(s["B"] * s["X"].T * s["X"]), "X",
         lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], S(X=(n, d), B=(d, d))),
    Case("eq113-tr(X'XB)", lambda s: Trace(s["X"].T * s["X"] * s["B"]), "X",
         lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"], S(X=(n, d), B=(d, d))),
    Case("eq114-tr(AXBX)", lambda s: Trace(s["A"] * s["X"] * s["B"] * s["X"]), "X",
         lambda v: v["A"].T @ v["X"].T @ v["B"].T + v["B"].T @ v["X"].T @ v["A"].T,
         S(A=(d, n), X=(n, d), B=(d, n))),
    Case("eq115-tr(X'X)", lambda s: Trace(s["X"].T * s["X"]), "X", lambda v: 2 * v["X"], S(X=(n, d))),
    Case("eq115-tr(XX')", lambda s: Trace(s["X"] * s["X"].T), "X", lambda v: 2 * v["X"], S(X=(n, d))),
    Case("eq116-tr(B'X'CXB)", lambda s: Trace(s["B"].T * s["X"].T * s["C"] * s["X"] * s["B"]), "X",
         lambda v: v["C"].T @ v["X"] @ v["B"] @ v["B"].T + v["C"] @ v["X"] @ v["B"] @ v["B"].T,
         S(B=(d, k), X=(n, d), C=(n, n))),
    Case("eq117-tr(X'BXC)", lambda s: Trace(s["X"].T * s["B"] * s["X"] * s["C"]), "X",
         lambda v: v["B"] @ v["X"] @ v["C"] + v["B"].T @ v["X"] @ v["C"].T, S(X=(n, d), B=(n, n), C=(d, d))),
    Case("eq118-tr(AXBX'C)", lambda s: Trace(s["A"] * s["X"] * s["B"] * s["X"].T * s["C"]), "X",
         lambda v: v["A"].T @ v["C"].T @ v["X"] @ v["B"].T + v["C"] @ v["A"] @ v["X"] @ v["B"],
         S(A=(k, n), X=(n, d), B=(d, d), C=(n, k))),
    Case("eq119-tr((AXB+C)(AXB+C)')",
         lambda s: Trace((s["A"] * s["X"] * s["B"] + s["C"]) * Transpose(s["A"] * s["X"] * s["B"] + s["C"])),
         "X",
         lambda v: 2 * v["A"].T @ (v["A"] @ v["X"] @ v["B"] + v["C"]) @ v["B"].T,
         S(A=(k, n), X=(n, d), B=(d, m), C=(k, m))),
    Case("eq120-tr(X)tr(X)", lambda s: Trace(s["X"]) * Trace(s["X"]), "X",
         lambda v: 2 * np.trace(v["X"]) * np.eye(n), S(X=(n, n))),
    # ---- 2.5.3 traces, higher order (121-123)
    Case("eq121-tr(X^k)", lambda s: Trace(s["X"] ** P), "X", lambda v: P * mpow(v["X"], P - 1).T,
         S(X=(n, n))),
    Case("eq122-tr(AX^k)", lambda s: Trace(s["A"] * s["X"] ** P), "X",
         lambda v: sum((mpow(v["X"], r) @ v["A"] @ mpow(v["X"], P - r - 1)).T for r in range(P)),
         S(A=(n, n), X=(n, n))),
    Case("eq123-tr(B'X'CXX'CXB)",
         lambda s: Trace(s["B"].T * s["X"].T * s["C"] * s["X"] * s["X"].T * s["C"] * s["X"] * s["B"]), "X",
         lambda v: (v["C"] @ v["X"] @ v["X"].T @ v["C"] @ v["X"] @ v["B"] @ v["B"].T
                    + v["C"].T @ v["X"] @ v["B"] @ v["B"].T @ v["X"].T @ v["C"].T @ v["X"]
                    + v["C"] @ v["X"] @ v["B"] @ v["B"].T @ v["X"].T @ v["C"] @ v["X"]
                    + v["C"].T @ v["X"] @ v["X"].T @ v["C"].T @ v["X"] @ v["B"] @ v["B"].T),
         S(B=(d, k), X=(n, d), C=(n, n))),
    # ---- 2.5.4 traces, other (124-127); 125-127 assume B and C symmetric
    Case("eq124-tr(AX^-1B)", lambda s: Trace(s["A"] * Inverse(s["X"]) * s["B"]), "X",
         lambda v: -inv(v["X"]).T @ v["A"].T @ v["B"].T @ inv(v["X"]).T, S(A=(k, n), X=(n, n), B=(n, k))),
    Case("eq125-tr((X'CX)^-1A)", lambda s: Trace(Inverse(s["X"].T * s["C"] * s["X"]) * s["A"]), "X",
         lambda v: -(v["C"] @ v["X"] @ _ixcx(v)) @ (v["A"] + v["A"].T) @ _ixcx(v),
         S(X=(n, d), C=(n, n), A=(d, d)), sym=("C",)),
    Case("eq126-tr((X'CX)^-1(X'BX))",
         lambda s: Trace(Inverse(s["X"].T * s["C"] * s["X"]) * (s["X"].T * s["B"] * s["X"])), "X",
         lambda v: (-2 * v["C"] @ v["X"] @ _ixcx(v) @ v["X"].T @ v["B"] @ v["X"] @ _ixcx(v)
                    + 2 * v["B"] @ v["X"] @ _ixcx(v)),
         S(X=(n, d), C=(n, n), B=(n, n)), sym=("B", "C")),
    Case("eq127-tr((A+X'CX)^-1(X'BX))",
         lambda s: Trace(Inverse(s["A"] + s["X"].T * s["C"] * s["X"]) * (s["X"].T * s["B"] * s["X"])), "X",
         lambda v: (-2 * v["C"] @ v["X"] @ _iaxcx(v) @ v["X"].T @ v["B"] @ v["X"] @ _iaxcx(v)
                    + 2 * v["B"] @ v["X"] @ _iaxcx(v)),
         S(X=(n, d), A=(d, d), C=(n, n), B=(n, n)), sym=("A", "B", "C")),
    # ---- 2.6 two-norm (129, 131)
    Case("eq129-||x-a||_2", lambda s: sympy.sqrt(_tr(Transpose(s["x"] - s["a"]) * (s["x"] - s["a"]))), "x",
         lambda v: (v["x"] - v["a"]) / np.linalg.norm(v["x"] - v["a"]), S(x=col(n), a=col(n))),
    Case("eq131-||x||_2^2", lambda s: s["x"].T * s["x"], "x", lambda v: 2 * v["x"], S(x=col(n))),
    # ---- 2.7.1 Frobenius norm (132): ∂‖X‖²_F/∂X = ∂Tr(XXᴴ)/∂X = 2X
    Case("eq132-frobenius_sq(X)", lambda s: derive.frobenius_sq(s["X"]), "X", lambda v: 2 * v["X"],
         S(X=(n, d))),
    Case("eq132-tr(XX^H)", lambda s: Trace(s["X"] * s["X"].T), "X", lambda v: 2 * v["X"], S(X=(n, d))),
    # ---- no Cookbook number of their own
    # ‖AX − B‖²_F: the special case of 119 with B → I, C → −B (the Cookbook's remark under 132)
    Case("special-119-frobenius_sq(AX-B)", lambda s: derive.frobenius_sq(s["A"] * s["X"] - s["B"]), "X",
         lambda v: 2 * v["A"].T @ (v["A"] @ v["X"] - v["B"]), S(A=(m, n), X=(n, d), B=(m, d))),
    # trace identities used by the engine for ⊙ and elementwise functions
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

# The equation numbers covered, and how many numbered cases there are (several numbers
# have two cases: both sides of 69, 72, 115 and 132).
COOKBOOK_EQUATIONS = (
    49, 51, 52, 53, 54, 57, 58, 61, 62, 63, 64, 69, 70, 71, 72, 76, 77, 78, 81, 82, 83, 84, 85, 86, 87, 88,
    91, 92, 94, 96, 99, 100, 101, 102, 103, 104, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116,
    117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 129, 131, 132,
)
COOKBOOK_COUNT = 65


def _wq(s: dict, r: sympy.Basic) -> sympy.Basic:
    """rᵀ W r, the weighted quadratic form of 84-88."""
    return Transpose(r) * s["W"] * r


def _q(x: np.ndarray, A: np.ndarray) -> float:
    """xᵀAᵀAx as a float."""
    return float((x.T @ A.T @ A @ x).item())


def _ixcx(v: dict) -> np.ndarray:
    return inv(v["X"].T @ v["C"] @ v["X"])


def _iaxcx(v: dict) -> np.ndarray:
    return inv(v["A"] + v["X"].T @ v["C"] @ v["X"])


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
        elif name in case.sym:
            a = (a + a.T) / 2  # symmetric, not definite
        elif shape[0] == shape[1] and shape[0] > 1:
            a = a + shape[0] * np.eye(shape[0])  # well conditioned for inverses
        values[syms[name]] = a
    return rng, syms, values


def _params() -> list:
    return [pytest.param(c, id=c.id,
                         marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
            for c in CASES]


@pytest.mark.parametrize("case", _params())
def test_cookbook_closed_form_and_finite_differences(case: Case) -> None:
    rng, syms, values = _setup(case)
    f, X = case.f(syms), syms[case.wrt]
    G = derive.gradient(f, X)
    assert G.shape == X.shape
    got = evaluate(G, values)
    expected = case.closed({s.name: v for s, v in values.items()})
    assert expected.shape == X.shape
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    assert check_against_fd(f, X, G, values, rng) < 1e-6


def _number(case_id: str) -> int | None:
    match = re.fullmatch(r"eq(\d+)-.+", case_id)
    return int(match.group(1)) if match else None


def test_cookbook_table_has_equation_numbers() -> None:
    numbered = [c for c in CASES if _number(c.id) is not None]
    assert len(numbered) == COOKBOOK_COUNT
    assert tuple(sorted({_number(c.id) for c in numbered})) == COOKBOOK_EQUATIONS
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    # every other id says what it is instead of carrying a number
    assert all(c.id.split("-")[0] in {"special", "hadamard", "elementwise", "bias", "identity"}
               for c in CASES if _number(c.id) is None)
