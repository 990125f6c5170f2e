"""``numeric.check_gradient``: a gradient expression against central differences.

As autograd's ``check_grads``: along random directions V, the directional
derivative ⟨G, V⟩ = tr(Gᵀ V) must equal (f(X + εV) − f(X − εV)) / 2ε.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sympy
from sympy import MatrixExpr, MatrixSymbol

__all__ = ["check_gradient"]


def check_gradient(f: sympy.Expr, wrt: MatrixSymbol | Sequence[MatrixSymbol],
                   values: Mapping[MatrixSymbol | str, np.ndarray], *, grad: MatrixExpr | Sequence | None = None,
                   directions: int = 3, eps: float = 1e-6, seed: int = 0) -> float:
    """Max relative error of ∂f/∂``wrt`` against central differences of ``f``.

    ``values`` maps every matrix symbol of ``f`` (or its name) to an array.  The
    gradient is ``grad`` if given (one expression, or one per symbol in ``wrt``),
    else ``derive.gradient(f, wrt)``.  Both are compiled with ``numeric.compile`` and
    evaluated in float64.  The error along a direction V is
    |fd − ⟨G, V⟩| / max(|fd|, |⟨G, V⟩|, 1e-8); the maximum over ``directions`` random
    directions (and over ``wrt``) is returned.

    >>> from sympy import MatrixSymbol, Trace
    >>> import numpy as np
    >>> A, X = MatrixSymbol("A", 3, 2), MatrixSymbol("X", 3, 2)
    >>> rng = np.random.default_rng(0)
    >>> vals = {A: rng.standard_normal((3, 2)), X: rng.standard_normal((3, 2))}
    >>> check_gradient(Trace(A.T * X), X, vals, grad=A) < 1e-8
    True
    >>> check_gradient(Trace(A.T * X), X, vals, grad=2 * A) > 0.1
    True
    """
    from numeric.compile import compile as compile_kernel

    wrts = [wrt] if isinstance(wrt, MatrixSymbol) else list(wrt)
    if grad is None:
        grads = [_derive_gradient(f, w) for w in wrts]
    elif isinstance(grad, (list, tuple)):
        grads = list(grad)
    else:
        grads = [grad]
    if len(grads) != len(wrts):
        raise ValueError(f"{len(grads)} gradient expressions for {len(wrts)} variables")
    by_name = {(k.name if isinstance(k, MatrixSymbol) else str(k)): np.asarray(v, dtype=np.float64)
               for k, v in values.items()}
    symbols = sorted({s for e in [f, *grads] for s in e.atoms(MatrixSymbol)} | set(wrts),
                     key=lambda s: s.name)
    missing = [s.name for s in symbols if s.name not in by_name]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    arrays = [by_name[s.name] for s in symbols]
    kernel = compile_kernel([f, *grads], symbols, dtype=np.float64)
    f_only = compile_kernel(f, symbols, dtype=np.float64)
    _, *gvals = kernel(*arrays)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for w, g in zip(wrts, gvals):
        i = symbols.index(w)
        if g.shape != arrays[i].shape:
            raise ValueError(f"gradient for {w.name} has shape {g.shape}, {w.name} has {arrays[i].shape}")
        for _ in range(directions):
            V = rng.standard_normal(arrays[i].shape)
            plus, minus = list(arrays), list(arrays)
            plus[i] = arrays[i] + eps * V
            minus[i] = arrays[i] - eps * V
            fd = (float(f_only(*plus)) - float(f_only(*minus))) / (2 * eps)
            an = float(np.sum(g * V))
            worst = max(worst, abs(fd - an) / max(abs(fd), abs(an), 1e-8))
    return worst


def _derive_gradient(f: sympy.Expr, wrt: MatrixSymbol) -> MatrixExpr:
    import derive

    gradient = getattr(derive, "gradient", None)
    if gradient is None:  # until derive/__init__.py exports it
        from derive.engine import gradient
    return gradient(f, wrt)
