"""Independent numeric oracles for the tests.

``evaluate`` substitutes explicit SymPy matrices and lets SymPy compute entry by
entry (it shares no code with ``numeric/``); ``fd_directional`` is the central
finite difference of f along a direction.
"""
from __future__ import annotations

import numpy as np
import sympy
from sympy import ImmutableMatrix, MatrixExpr, MatrixSymbol
from sympy.matrices.expressions.hadamard import HadamardPower

_t = sympy.Dummy("t")

DIMS = {"n": 4, "d": 3, "m": 5, "k": 2}


def dim_values(expr: sympy.Basic, dims: dict[str, int] | None = None) -> dict[sympy.Symbol, int]:
    dims = dims or DIMS
    return {s: dims[s.name] for s in expr.atoms(sympy.Symbol)
            if s.name in dims and not isinstance(s, sympy.Dummy)}


def random_values(symbols, rng: np.random.Generator, dims: dict[str, int] | None = None,
                  positive_definite: tuple = ()) -> dict[MatrixSymbol, np.ndarray]:
    dims = dims or DIMS
    out = {}
    for s in symbols:
        shape = tuple(int(sympy.sympify(x).subs({sympy.Symbol(k, integer=True, positive=True): v
                                                    for k, v in dims.items()})) for x in s.shape)
        a = rng.standard_normal(shape)
        if s in positive_definite:
            a = a @ a.T + shape[0] * np.eye(shape[0])
        out[s] = a
    return out


def evaluate(expr: sympy.Basic, values: dict[MatrixSymbol, np.ndarray],
             dims: dict[str, int] | None = None) -> np.ndarray:
    """The value of ``expr`` at ``values``, computed by SymPy with explicit matrices."""
    subs_dims = dim_values(expr, dims)
    concrete = {}
    for s, v in values.items():
        concrete[s.subs(subs_dims) if subs_dims else s] = ImmutableMatrix(v)
    e = expr.subs(subs_dims) if subs_dims else expr
    e = e.replace(lambda x: isinstance(x, HadamardPower),
                  lambda x: x.base.applyfunc(sympy.Lambda(_t, _t ** x.exp)))
    for special in e.atoms(sympy.OneMatrix, sympy.Identity, sympy.ZeroMatrix):
        concrete[special] = ImmutableMatrix(special.as_explicit())
    e = e.xreplace(concrete).doit()
    if isinstance(e, (MatrixExpr, sympy.MatrixBase)):
        return np.array(sympy.Matrix(e).evalf(), dtype=float)
    return np.array(float(sympy.N(e)))


def fd_directional(f: sympy.Basic, X: MatrixSymbol, values: dict, direction: np.ndarray,
                   eps: float = 1e-6, dims: dict[str, int] | None = None) -> float:
    plus, minus = dict(values), dict(values)
    plus[X] = values[X] + eps * direction
    minus[X] = values[X] - eps * direction
    return float(np.squeeze(evaluate(f, plus, dims) - evaluate(f, minus, dims))) / (2 * eps)


def check_against_fd(f, X, G, values, rng, directions: int = 2, dims=None) -> float:
    """Max relative error between ⟨G, V⟩ and the central difference of f along V."""
    g = evaluate(G, values, dims)
    assert g.shape == values[X].shape, f"gradient shape {g.shape} != {values[X].shape}"
    worst = 0.0
    for _ in range(directions):
        V = rng.standard_normal(values[X].shape)
        fd = fd_directional(f, X, values, V, dims=dims)
        an = float(np.sum(g * V))
        worst = max(worst, abs(fd - an) / max(1.0, abs(fd), abs(an)))
    return worst
