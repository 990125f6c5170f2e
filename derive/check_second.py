"""Check a typed Hessian or Jacobian against the derived one, numerically on random data.

``check_hessian("X'*diag(sigmoid(X*w) .* (1 - sigmoid(X*w)))*X", "sum(softplus(X*w)) - y'*X*w", "w",
{"X": ("n", "d"), "w": ("d", 1), "y": ("n", 1)})`` parses the function and the answer with the expression
language, derives ∂²f/∂w∂wᵀ (:func:`derive.hessian`; :func:`check_jacobian`: ∂ vec F/∂(vec x)ᵀ by
:func:`derive.jacobian`), compiles both and compares them on random data at several sets of dimensions
(all different, none 1).  It says whether the answer is right, and when it is not, whether it is the
transpose or a multiple of the right one, and where it differs, term by term: each term of the answer
against each term of the derived matrix (equal, a wrong sign, a factor, a transpose, or none of them),
and the derived terms the answer lacks.  It decides in floating point (relative tolerance 1e-8), not
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
        got, want = kernel(*_draw(args, dims, sizes, rng))
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
    lines += _locate(A, expected, args, dims, name, seed)
    return SecondOrderCheck(False, shown, worst, "\n".join(lines))


def _draw(args: list, dims: list, sizes: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Standard normal values of ``args`` with the named dimensions ``dims`` at ``sizes``."""
    value = dict(zip(dims, sizes))
    return [rng.standard_normal(tuple(int(sympy.sympify(d).subs(value)) for d in s.shape)) for s in args]


def _terms(e: sympy.Basic) -> list[sympy.Basic]:
    return list(e.args) if isinstance(e, sympy.MatAdd) else [e]


def _locate(A: sympy.MatrixExpr, expected: sympy.MatrixExpr, args: list, dims: list, name: str,
            seed: int) -> list[str]:
    """Which terms of the answer are wrong: each term of the answer against each term of the derived
    matrix, on random data at two sets of dimensions: equal, a multiple (a sign or a factor), the
    transpose, or none of them; and the derived matrix's terms that no answer term matches."""
    answer, derived = _terms(A), _terms(expected)
    kernel = numeric.compile([*answer, *derived], args)
    rng = np.random.default_rng(seed + 1)
    draws = []
    for sizes in DIM_SETS[:2]:
        out = [np.asarray(v, dtype=float) for v in kernel(*_draw(args, dims, sizes, rng))]
        draws.append((out[:len(answer)], out[len(answer):]))
    relations = {(i, j): r for i in range(len(answer)) for j in range(len(derived))
                 if (r := _relation([(a[i], e[j]) for a, e in draws])) is not None}
    pairs: dict[int, tuple[int, tuple[str, float]]] = {}
    for (i, j), r in sorted(relations.items(), key=lambda item: _rank(item[1])):
        if i not in pairs and j not in {jj for jj, _ in pairs.values()}:
            pairs[i] = (j, r)
    lines = []
    for i, a in enumerate(answer):
        if i not in pairs:
            lines.append(f"The term {in_notation(a)} of the answer is not a term of {name}.")
        elif (line := _term_line(in_notation(a), in_notation(derived[pairs[i][0]]), *pairs[i][1], name)):
            lines.append(line)
    used = {j for j, _ in pairs.values()}
    missing = [str(in_notation(e)) for j, e in enumerate(derived) if j not in used]
    if missing:
        lines.append(f"{name} has {'the term' if len(missing) == 1 else 'the terms'} {', '.join(missing)}, "
                     "which the answer lacks.")
    return lines


def _relation(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[str, float] | None:
    """How an answer term relates to a derived term on every draw ``(answer value, derived value)``:
    ("times", c) for c times it, ("transpose", c) for c times its transpose; the closest, or None."""
    found = []
    for how in ("times", "transpose"):
        cs = []
        for a, e in pairs:
            e = e.T if how == "transpose" else e
            k = int(np.argmax(np.abs(e))) if a.shape == e.shape else -1
            if k < 0 or e.flat[k] == 0:
                break
            c = float(a.flat[k] / e.flat[k])
            if np.max(np.abs(a - c * e)) > 1e-8 * max(1.0, float(np.max(np.abs(e)))):
                break
            cs.append(c)
        else:
            if all(abs(c - cs[0]) <= 1e-8 * max(1.0, abs(cs[0])) for c in cs):
                found.append((how, cs[0]))
    return min(found, key=_rank) if found else None


def _rank(r: tuple[str, float]) -> tuple[bool, bool]:
    """Equal first, then multiples, then transposes."""
    return abs(r[1] - 1.0) > 1e-8 or r[0] != "times", r[0] != "times"


def _term_line(answer: object, derived: object, how: str, c: float, name: str) -> str | None:
    if how == "times" and abs(c - 1.0) <= 1e-8:
        return None
    if how == "transpose" and abs(c - 1.0) <= 1e-8:
        return f"The term {answer} is the transpose of the term {derived} of {name}."
    if abs(c + 1.0) <= 1e-8:
        return f"The term {answer} has the wrong sign: {name} has {derived}."
    return (f"The term {answer} is {c:.6g} times the term {derived} of {name}"
            + (" (transposed)." if how == "transpose" else "."))


def _is_multiple(kernel, args, dims, c: float, rng) -> bool:
    """The answer equals c times the derived matrix on fresh data (all the draws' dimensions)."""
    for sizes in DIM_SETS:
        got, want = kernel(*_draw(args, dims, sizes, rng))
        if np.max(np.abs(got - c * want)) > 1e-8 * max(1.0, float(np.max(np.abs(want)))):
            return False
    return True
