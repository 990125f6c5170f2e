"""The torch printer's own spellings (torch.addmm, torch.sigmoid, the fused sigmoid derivative, products
into a fresh factor in place) against the NumPy kernel of the same expressions and against NumPy by hand;
the arguments are never written to.  Shapes all different (n=4, d=3, m=5, k=2).  Skipped without torch."""
from __future__ import annotations

import numpy as np
import pytest
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Symbol

import numeric
from derive import sigmoid
from tests.oracle import rel_err

torch = pytest.importorskip("torch")

N, D, M = 4, 3, 5
n = Symbol("n", integer=True, positive=True)
X, W, b, C, G = (MatrixSymbol("X", n, D), MatrixSymbol("W", D, M), MatrixSymbol("b", 1, M),
                 MatrixSymbol("C", n, M), MatrixSymbol("G", n, M))
ARGS = [X, W, b, C, G]


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in [(N, D), (D, M), (1, M), (N, M), (N, M)]]


def _cases():
    ones = OneMatrix(n, 1)
    return [  # (expression, its torch spelling, NumPy by hand)
        (sigmoid(X * W + ones * b), "torch.addmm(b, X, W).sigmoid_()",
         lambda x, w, bb, c, g: 1 / (1 + np.exp(-(x @ w + bb)))),
        (sigmoid(C), "torch.sigmoid(C)", lambda x, w, bb, c, g: 1 / (1 + np.exp(-c))),
        (X * W - 3 * C, "beta=", lambda x, w, bb, c, g: x @ w - 3 * c),
        (2 * (X * W) + C, "alpha=2", lambda x, w, bb, c, g: 2 * (x @ w) + c),
        (HadamardProduct(G, OneMatrix(n, M) - C, C), "torch.ops.aten.sigmoid_backward(G, C)",
         lambda x, w, bb, c, g: g * (1 - c) * c),
        (-2 * HadamardProduct(X * W, C, G), ".mul_(", lambda x, w, bb, c, g: -2 * (x @ w) * c * g),
        (HadamardProduct(C, G), "C * G", lambda x, w, bb, c, g: c * g),   # arguments only: nothing in place
    ]


@pytest.mark.parametrize("case", range(7))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_forms_meet_numpy_and_leave_the_arguments_alone(case, dtype) -> None:
    expr, spelling, by_hand = _cases()[case]
    kernel = numeric.compile(expr, ARGS, backend="torch")
    assert spelling in kernel.source[kernel.source.index("    _t0 = "):]
    arrays = _data(dtype, seed=case)
    tensors = [torch.from_numpy(a.copy()) for a in arrays]
    got = kernel(*tensors)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert got.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    assert rel_err(got.numpy(), by_hand(*arrays)) < tol
    assert rel_err(got.numpy(), numeric.compile(expr, ARGS)(*arrays)) < tol
    for t, a in zip(tensors, arrays):
        assert np.array_equal(t.numpy(), a)   # no argument was multiplied into


def test_a_function_whose_template_is_its_argument_is_not_a_fresh_factor() -> None:
    """Ident(X) ⊙ C: Ident's code is X itself, so the product may not multiply into it in place."""
    import sympy

    from numeric import registry

    registry.register_function("Ident", "{x}", scalar=lambda x: x)
    try:
        Xm, Cm = MatrixSymbol("X", 3, 4), MatrixSymbol("C", 3, 4)
        kernel = numeric.compile([HadamardProduct(Xm.applyfunc(sympy.Function("Ident")), Cm)], [Xm, Cm],
                                 backend="torch")
        rng = np.random.default_rng(5)
        x, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
        tx, tc = torch.tensor(x), torch.tensor(c)
        (got,) = kernel(tx, tc)
        assert torch.equal(tx, torch.tensor(x)) and torch.equal(tc, torch.tensor(c))   # arguments unchanged
        assert rel_err(got.numpy(), x * c) < 1e-15
    finally:
        del registry._FUNCTIONS["Ident"]
