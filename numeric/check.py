"""``numeric.check_gradient``: a gradient expression against central differences.

As autograd's ``check_grads``: along random directions V, the directional
derivative ⟨G, V⟩ = tr(Gᵀ V) must equal (f(X + εV) − f(X − εV)) / 2ε.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sympy
from sympy import MatrixExpr, MatrixSymbol

from numeric.compile import compile as compile_kernel
from numeric.registry import default_gradient

__all__ = ["check_gradient"]


def check_gradient(f: sympy.Expr, wrt: MatrixSymbol | Sequence[MatrixSymbol],
                   values: Mapping[MatrixSymbol | str, np.ndarray], *, grad: MatrixExpr | Sequence | None = None,
                   directions: int = 3, eps: float = 1e-6, seed: int = 0) -> float:
    """Max relative error of ∂f/∂``wrt`` against central differences of ``f``.

    ``values`` maps every matrix symbol of ``f`` (or its name) to an array.  The
    gradient is ``grad`` if given (one expression, or one per symbol in ``wrt``),
    else that of the function registered with :func:`numeric.registry.register_gradient`
    (``derive.gradient``, once ``derive.engine`` is imported).  Both are compiled with ``numeric.compile`` and
    evaluated in float64.  The error along a direction V is
    |fd − ⟨G, V⟩| / max(|fd|, |⟨G, V⟩|, 1e-8); the maximum over ``directions`` random
    directions (and over ``wrt``) is returned.  ``f`` is a scalar or a 1×1 matrix
    expression.  A NaN or an infinity (in the values, f, the gradient or f at the
    perturbed points) is a failure, never an error of 0: it raises ``ValueError`` saying where.

    >>> from sympy import MatrixSymbol, Trace
    >>> import numpy as np
    >>> A, X = MatrixSymbol("A", 3, 2), MatrixSymbol("X", 3, 2)
    >>> rng = np.random.default_rng(0)
    >>> vals = {A: rng.standard_normal((3, 2)), X: rng.standard_normal((3, 2))}
    >>> check_gradient(Trace(A.T * X), X, vals, grad=A) < 1e-8
    True
    >>> check_gradient(Trace(A.T * X), X, vals, grad=2 * A) > 0.1
    True
    >>> check_gradient(Trace(A.T * X), X, vals, grad=A * float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: the gradient ∂f/∂X is not finite at the given values (nan at [0, 0])
    """
    wrts = [wrt] if isinstance(wrt, MatrixSymbol) else list(wrt)
    if isinstance(f, MatrixExpr) and tuple(f.shape) != (1, 1):
        raise ValueError(f"f must be scalar-valued (a scalar or a 1×1 matrix), got a "
                         f"{f.shape[0]}×{f.shape[1]} matrix")
    if grad is None:
        gradient = default_gradient()
        if gradient is None:
            raise ValueError("no gradient given: pass grad=, or import derive.engine (or use derive.gradient "
                             "once): derive's gradient is the default once its engine is imported")
        grads = [gradient(f, w) for w in wrts]
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
    for s, a in zip(symbols, arrays):
        if not np.isfinite(a).all():
            raise ValueError(f"the value of {s.name} is not finite ({_first_bad(a)}): a gradient check "
                             "needs finite values")
    kernel = compile_kernel([f, *grads], symbols, dtype=np.float64)
    f_only = compile_kernel(f, symbols, dtype=np.float64)
    with np.errstate(all="ignore"):  # a non-finite value is reported below, not warned about
        f0, *gvals = kernel(*arrays)
    _scalar(f0, "f at the given values")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for w, g in zip(wrts, gvals):
        i = symbols.index(w)
        if g.shape != arrays[i].shape:
            raise ValueError(f"gradient for {w.name} has shape {g.shape}, {w.name} has {arrays[i].shape}")
        if not np.isfinite(g).all():
            raise ValueError(f"the gradient ∂f/∂{w.name} is not finite at the given values ({_first_bad(g)})")
        for _ in range(directions):
            V = rng.standard_normal(arrays[i].shape)
            plus, minus = list(arrays), list(arrays)
            plus[i] = arrays[i] + eps * V
            minus[i] = arrays[i] - eps * V
            with np.errstate(all="ignore"):
                f_plus, f_minus = f_only(*plus), f_only(*minus)
            where = f"f at {w.name} ± {eps:g}·V (the central difference)"
            fd = (_scalar(f_plus, where) - _scalar(f_minus, where)) / (2 * eps)
            an = float(np.sum(g * V))
            worst = max(worst, abs(fd - an) / max(abs(fd), abs(an), 1e-8))
    return worst


def _scalar(v: np.ndarray | np.floating, what: str) -> float:
    """``v`` (a NumPy scalar or a 1×1 array) as a float; a NaN or an infinity is an error."""
    x = float(np.asarray(v).reshape(()))
    if not np.isfinite(x):
        raise ValueError(f"{what} is {x}: a gradient check needs a finite f")
    return x


def _first_bad(a: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    return f"{a[idx]} at {list(idx)}"
