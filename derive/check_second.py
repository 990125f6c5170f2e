"""Check a typed Hessian or Jacobian against the derived one, numerically on random data.

``check_hessian("X'*diag(sigmoid(X*w) .* (1 - sigmoid(X*w)))*X", "sum(softplus(X*w)) - y'*X*w", "w",
{"X": ("n", "d"), "w": ("d", 1), "y": ("n", 1)})`` parses the function and the answer with the expression
language, derives ∂²f/∂w∂wᵀ (:func:`derive.hessian`; :func:`check_jacobian`: ∂ vec F/∂(vec x)ᵀ by
:func:`derive.jacobian`), compiles both and compares them on random data at several sets of dimensions
(all different, none 1).  It says whether the answer is right, and when it is not, whether it is the
transpose or a multiple of the right one; unlike :func:`derive.check.check_answer` it does not locate
the step where a derivation went wrong, and it decides in floating point (relative tolerance 1e-8), not
in interval arithmetic.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
from sympy import MatrixSymbol

import numeric
from derive.dims import shape_text
from derive.jacobian import hessian, jacobian
from derive.lang import parse
from derive.notation import in_notation

__all__ = ["SecondOrderCheck", "check_hessian", "check_jacobian"]

#: sizes given to the named dimensions, one set per draw (all different, none 1)
DIM_SETS = ((5, 3, 4, 7, 6, 2), (4, 6, 3, 5, 2, 7), (7, 2, 5, 3, 4, 6))
RTOL = 1e-8


@dataclass(frozen=True)
class SecondOrderCheck:
    """The verdict: ``ok``, the derived matrix in the project's notation, the largest relative difference
    over the draws, and a one-paragraph message."""

    ok: bool
    expected: str
    max_rel_error: float
    message: str

    def __str__(self) -> str:
        return self.message


def check_hessian(answer: str, f: str, wrt: str, shapes: Mapping[str, Sequence], *,
                  seed: int = 0, syntax: str = "python") -> SecondOrderCheck:
    """Is ``answer`` the Hessian ∂²f/∂x∂xᵀ of the scalar ``f`` by the vector ``wrt``?

    >>> shapes = {"A": ("n", "n"), "x": ("n", 1)}
    >>> check_hessian("A + A'", "x'*A*x", "x", shapes).ok
    True
    >>> print(check_hessian("2*A", "x'*A*x", "x", shapes).message.split(" (")[0])
    wrong: the answer differs from ∂²f/∂x∂xᵀ = A + Aᵀ
    >>> print(check_hessian("2*A'", "x'*A*x", "x", {"A": ("n", "n"), "x": ("n", 1), "S": ("n", "n")}).ok)
    False
    """
    return _check(answer, f, wrt, shapes, "hessian", seed, syntax)


def check_jacobian(answer: str, F: str, wrt: str, shapes: Mapping[str, Sequence], *,
                   seed: int = 0, syntax: str = "python") -> SecondOrderCheck:
    """Is ``answer`` the Jacobian ∂ vec F/∂(vec x)ᵀ (numerator layout) of ``F`` by ``wrt``?

    >>> shapes = {"W": ("m", "d"), "x": ("d", 1)}
    >>> check_jacobian("diag(sigmoid(W*x) .* (1 - sigmoid(W*x)))*W", "sigmoid(W*x)", "x", shapes).ok
    True
    >>> check_jacobian("W'", "W*x", "x", shapes).message
    'wrong: the answer is d×m, ∂F/∂xᵀ = W is m×d.'
    """
    return _check(answer, F, wrt, shapes, "jacobian", seed, syntax)


def _check(answer: str, f: str, wrt: str, shapes: Mapping[str, Sequence], kind: str,
           seed: int, syntax: str = "python") -> SecondOrderCheck:
    """Raises :class:`derive.lang.ExpressionError` for a text that does not parse or shapes that do not
    conform, ``ValueError`` for a variable that is not in f."""
    parsed = parse(f, shapes, syntax=syntax)   # shapes missing from ``shapes`` inferred from f
    known = {**shapes, **{k: tuple(v.shape) for k, v in parsed.symbols.items() if isinstance(v, MatrixSymbol)}}
    F, A = parsed.expr, parse(answer, known, infer=False, syntax=syntax).expr
    symbols = {s.name: s for e in (F, A) for s in e.atoms(MatrixSymbol)}
    if wrt not in symbols or wrt not in parsed.symbols:
        raise ValueError(f"{wrt} is not a matrix of the function; it has "
                         f"{', '.join(k for k, v in parsed.symbols.items() if isinstance(v, MatrixSymbol))}")
    x = symbols[wrt]
    if kind == "hessian":
        derived = hessian(F, x)
        name = f"∂²f/∂{wrt}∂{wrt}ᵀ"
    else:
        derived = jacobian(F, x)
        name = f"∂F/∂{wrt}ᵀ"
    expected = derived.result
    shown = str(in_notation(expected))
    if not isinstance(A, sympy.MatrixExpr):
        A = sympy.Identity(1) * A
    if sympy.Tuple(*A.shape) != sympy.Tuple(*expected.shape):
        return SecondOrderCheck(False, shown, float("inf"),
                                f"wrong: the answer is {shape_text(A.shape)}, {name} = {shown} is "
                                f"{shape_text(expected.shape)}.")
    args = sorted(symbols.values(), key=lambda s: s.name)
    kernel = numeric.compile([A, expected], args)
    dims = sorted({d for s in args for d in s.shape if isinstance(d, sympy.Symbol)}, key=str)
    rng = np.random.default_rng(seed)
    worst, transposed, ratios = 0.0, 0.0, []
    for sizes in DIM_SETS:
        value = dict(zip(dims, sizes))
        data = [rng.standard_normal(tuple(int(sympy.sympify(d).subs(value)) for d in s.shape)) for s in args]
        got, want = kernel(*data)
        scale = max(1.0, float(np.max(np.abs(want))))
        worst = max(worst, float(np.max(np.abs(got - want))) / scale)
        if got.shape[0] == got.shape[1]:
            transposed = max(transposed, float(np.max(np.abs(got - want.T))) / scale)
        else:
            transposed = float("inf")
        flat = want.ravel()
        i = int(np.argmax(np.abs(flat)))
        ratios.append(float(got.ravel()[i] / flat[i]) if flat[i] != 0 else float("nan"))
    if worst <= RTOL:
        return SecondOrderCheck(True, shown, worst,
                                f"right: the answer equals {name} = {shown} on random data at "
                                f"{len(DIM_SETS)} sets of dimensions (largest relative difference {worst:.1e}).")
    lines = [f"wrong: the answer differs from {name} = {shown} (largest relative difference {worst:.1e})."]
    if transposed <= RTOL:
        lines.append(f"It is the transpose of {name}.")
    else:
        c = ratios[0]
        multiple = all(abs(r - c) <= 1e-8 * max(1.0, abs(c)) for r in ratios) and c == c
        if multiple and _is_multiple(kernel, args, dims, c, rng):
            lines.append(f"It is {c:.6g} times {name}.")
    lines.append("(This check compares values; it does not locate the step where a derivation went wrong.)")
    return SecondOrderCheck(False, shown, worst, "\n".join(lines))


def _is_multiple(kernel, args, dims, c: float, rng) -> bool:
    """The answer equals c times the derived matrix on fresh data (all the draws' dimensions)."""
    for sizes in DIM_SETS:
        value = dict(zip(dims, sizes))
        data = [rng.standard_normal(tuple(int(sympy.sympify(d).subs(value)) for d in s.shape)) for s in args]
        got, want = kernel(*data)
        if np.max(np.abs(got - c * want)) > 1e-8 * max(1.0, float(np.max(np.abs(want)))):
            return False
    return True
