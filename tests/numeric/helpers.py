"""Independent oracles for the numeric tests: plain NumPy typed by hand, and central differences.

Nothing here imports ``numeric``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy import MatrixSymbol

n, d, m, k = (sympy.Symbol(s, integer=True, positive=True) for s in "ndmk")
DIMS = {n: 4, d: 3, m: 5, k: 2}


def shape_of(s: MatrixSymbol, dims: dict = DIMS) -> tuple[int, int]:
    return tuple(int(sympy.sympify(x).subs(dims)) for x in s.shape)


def random_arrays(symbols: Sequence[MatrixSymbol], rng: np.random.Generator, dims: dict = DIMS,
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


def fd_directional(f: Callable[..., float], arrays: list[np.ndarray], i: int, V: np.ndarray,
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
        g[idx] = fd_directional(f, arrays, i, E, eps)
    return g


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


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
