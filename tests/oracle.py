"""Independent numeric oracles for the tests (nothing here imports ``derive`` or ``numeric``).

``evaluate`` substitutes explicit SymPy matrices and lets SymPy compute entry by entry;
``fd_directional`` is the central finite difference of a SymPy f along a direction, and
``fd_directional_arrays`` / ``fd_gradient`` those of a NumPy function; ``seed_loss`` and
``seed_backprop`` are the seed network written by hand in NumPy, and ``seed_data`` its random test data.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy import ImmutableMatrix, MatrixExpr, MatrixSymbol
from sympy.matrices.expressions.hadamard import HadamardPower
from derive.kronecker import Commutation

_t = sympy.Dummy("t")

DIMS = {"n": 4, "d": 3, "m": 5, "k": 2}
n, d, m, k = (sympy.Symbol(s, integer=True, positive=True) for s in "ndmk")


def dim_values(expr: sympy.Basic, dims: dict[str, int] | None = None) -> dict[sympy.Symbol, int]:
    dims = dims or DIMS
    return {s: dims[s.name] for s in expr.atoms(sympy.Symbol)
            if s.name in dims and not isinstance(s, sympy.Dummy)}


def shape_of(s: MatrixSymbol, dims: dict[str, int] | None = None) -> tuple[int, ...]:
    """The shape of ``s`` with its dimensions (by name) at ``dims`` (default: :data:`DIMS`)."""
    sizes = dim_values(s, dims)
    return tuple(int(sympy.sympify(x).xreplace(sizes)) for x in s.shape)


def random_values(symbols, rng: np.random.Generator, dims: dict[str, int] | None = None,
                  positive_definite: tuple = ()) -> dict[MatrixSymbol, np.ndarray]:
    out = {}
    for s in symbols:
        shape = shape_of(s, dims)
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
    for special in e.atoms(sympy.OneMatrix, sympy.Identity, sympy.ZeroMatrix, Commutation):
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


# --- NumPy functions -----------------------------------------------------------------------------

def random_arrays(symbols: Sequence[MatrixSymbol], rng: np.random.Generator, dims: dict[str, int] | None = None,
                  positive: Sequence[str] = (), spd: Sequence[str] = (), dtype=np.float64) -> list[np.ndarray]:
    out = []
    for s in symbols:
        a = rng.standard_normal(shape_of(s, dims))
        if s.name in positive:
            a = np.abs(a) + 0.5
        if s.name in spd:
            a = a @ a.T + a.shape[0] * np.eye(a.shape[0])
        out.append(a.astype(dtype))
    return out


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def fd_directional_arrays(f: Callable[..., float], arrays: list[np.ndarray], i: int, V: np.ndarray,
                   eps: float = 1e-6) -> float:
    plus, minus = list(arrays), list(arrays)
    plus[i] = arrays[i] + eps * V
    minus[i] = arrays[i] - eps * V
    return (float(f(*plus)) - float(f(*minus))) / (2 * eps)


def fd_gradient(f: Callable[..., float], arrays: list[np.ndarray], i: int, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(arrays[i], dtype=np.float64)
    for idx in np.ndindex(*arrays[i].shape):
        E = np.zeros_like(arrays[i], dtype=np.float64)
        E[idx] = 1.0
        g[idx] = fd_directional_arrays(f, arrays, i, E, eps)
    return g


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# The layers as PyTorch computes them (row-wise softmax; batch and layer norm with the 1/n variance).
def np_softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def np_logsoftmax(Z):
    S = Z - Z.max(axis=1, keepdims=True)
    return S - np.log(np.exp(S).sum(axis=1, keepdims=True))


def np_norm(Z, g, b, axis, eps=1e-5):
    mu = Z.mean(axis=axis, keepdims=True)
    var = ((Z - mu) ** 2).mean(axis=axis, keepdims=True)
    return (Z - mu) / np.sqrt(var + eps) * g + b


def np_attention(Q, K, V, M=0.0):
    return np_softmax(Q @ K.T / np.sqrt(Q.shape[1]) + M) @ V


SEED_NAMES = ("X", "Y", "W1", "b1", "W2", "b2")


def seed_data(n: int = 4, d: int = 3, m: int = 5, k: int = 2, seed: int = 0, bias: str = "row",
              dtype=np.float64) -> dict[str, np.ndarray]:
    """The seed network's random test data: X, Y, W1, b1, W2, b2 (in that order, the order of the
    arguments), standard normal from ``default_rng(seed)``; row biases are 1×m and 1×k, full ones n×m, n×k.

    >>> {name: a.shape for name, a in seed_data().items()}
    {'X': (4, 3), 'Y': (4, 2), 'W1': (3, 5), 'b1': (1, 5), 'W2': (5, 2), 'b2': (1, 2)}
    """
    rows = 1 if bias == "row" else n
    shapes = [(n, d), (n, k), (d, m), (rows, m), (m, k), (rows, k)]
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(s).astype(dtype) for name, s in zip(SEED_NAMES, shapes)}


# The seed network in plain NumPy (row bias broadcasts, full bias adds).
def seed_loss(X, Y, W1, b1, W2, b2) -> float:
    H = np_sigmoid(X @ W1 + b1)
    R = Y - (H @ W2 + b2)
    return float(np.sum(R ** 2))


def seed_backprop(X, Y, W1, b1, W2, b2) -> tuple:
    """f = ‖Y − (σ(XW1 + b1)W2 + b2)‖²_F and ∂f/∂(W1, b1, W2, b2), backprop written by hand
    (row biases: their gradients sum over the rows)."""
    H = np_sigmoid(X @ W1 + b1)
    R = H @ W2 + b2 - Y
    G = 2.0 * R
    Gh = (G @ W2.T) * H * (1.0 - H)
    return float(np.sum(R ** 2)), X.T @ Gh, Gh.sum(axis=0, keepdims=True), H.T @ G, G.sum(axis=0, keepdims=True)
