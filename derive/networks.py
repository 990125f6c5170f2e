"""Networks as SymPy expressions: the seed two-layer network.

A network keeps its intermediates twice: as symbols (``h``, ``H``, ``Ypred``),
which the staged derivation keeps in its steps, and as definitions in terms of
the previous stages, so that ``net.f`` is the loss in terms of the inputs alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose

from derive.elementwise import sigmoid

__all__ = ["Network", "seed_network", "frobenius_sq"]


def frobenius_sq(M: MatrixExpr) -> sympy.Expr:
    """‖M‖²_F written as tr(Mᵀ M).

    >>> from sympy import MatrixSymbol
    >>> frobenius_sq(MatrixSymbol("A", 4, 3))
    Trace(A.T*A)
    """
    if not isinstance(M, MatrixExpr):
        raise TypeError(f"frobenius_sq() takes a SymPy matrix expression, got {type(M).__name__}")
    return Trace(MatMul(Transpose(M), M))


@dataclass(frozen=True)
class Network:
    """A network as a chain of named stages.

    ``stages`` lists ``(symbol, definition)`` in forward order; each definition uses
    inputs, parameters and earlier stage symbols.  ``loss`` uses the last ones.
    """

    inputs: tuple[MatrixSymbol, ...]
    params: tuple[MatrixSymbol, ...]
    stages: tuple[tuple[MatrixSymbol, MatrixExpr], ...]
    loss: sympy.Expr
    bias: str = "row"
    name: str = "network"

    def expand(self, e: sympy.Basic) -> sympy.Basic:
        """``e`` with every stage symbol replaced by its definition, recursively."""
        for sym, definition in reversed(self.stages):
            e = e.xreplace({sym: definition})
        return e

    @property
    def f(self) -> sympy.Expr:
        """The loss in terms of inputs and parameters."""
        return self.expand(self.loss)

    @property
    def symbols(self) -> dict[str, MatrixSymbol]:
        out = {s.name: s for s in self.inputs + self.params}
        out.update({s.name: s for s, _ in self.stages})
        return out

    @property
    def dims(self) -> tuple[sympy.Basic, ...]:
        seen: list[sympy.Basic] = []
        for s in self.inputs + self.params:
            for dim in s.shape:
                if dim not in seen:
                    seen.append(dim)
        return tuple(seen)

    def __getattr__(self, name: str):
        # net.W1, net.h (expanded), net.h_symbol ...
        symbols = object.__getattribute__(self, "symbols")
        stages = dict((s.name, dfn) for s, dfn in object.__getattribute__(self, "stages"))
        if name.endswith("_symbol") and name[:-7] in symbols:
            return symbols[name[:-7]]
        if name in stages:
            return self.expand(symbols[name])
        if name in symbols:
            return symbols[name]
        raise AttributeError(name)


def _dim(value, name: str):
    if isinstance(value, str):
        return sympy.Symbol(value, integer=True, positive=True)
    if isinstance(value, (int, sympy.Integer)) and not isinstance(value, bool) and int(value) > 0:
        return sympy.Integer(value)
    if isinstance(value, sympy.Symbol):
        return value
    raise ValueError(f"dimension {name} must be a positive integer or a name, got {value!r}")


def seed_network(n="n", d="d", m="m", k="k", bias: str = "row") -> Network:
    """The seed document's network: h = XW₁ + 1b₁, H = σ(h), Ŷ = HW₂ + 1b₂, f = ‖Y − Ŷ‖²_F.

    ``bias="row"`` broadcasts 1×m and 1×k rows over the batch with a ones vector;
    ``bias="full"`` is the literal reading, b₁ n×m and b₂ n×k.

    >>> net = seed_network(n=4, d=3, m=5, k=2)
    >>> net.W1.shape, net.b1.shape, net.h_symbol.shape
    ((3, 5), (1, 5), (4, 5))
    """
    if bias not in ("row", "full"):
        raise ValueError(f"bias must be 'row' or 'full', got {bias!r}")
    n, d, m, k = (_dim(v, s) for v, s in ((n, "n"), (d, "d"), (m, "m"), (k, "k")))
    X = MatrixSymbol("X", n, d)
    Y = MatrixSymbol("Y", n, k)
    W1 = MatrixSymbol("W1", d, m)
    W2 = MatrixSymbol("W2", m, k)
    h, H, Ypred = MatrixSymbol("h", n, m), MatrixSymbol("H", n, m), MatrixSymbol("Ypred", n, k)
    if bias == "row":
        b1, b2 = MatrixSymbol("b1", 1, m), MatrixSymbol("b2", 1, k)
        bias1, bias2 = MatMul(OneMatrix(n, 1), b1), MatMul(OneMatrix(n, 1), b2)
    else:
        b1, b2 = MatrixSymbol("b1", n, m), MatrixSymbol("b2", n, k)
        bias1, bias2 = b1, b2
    stages = (
        (h, MatMul(X, W1) + bias1),
        (H, sigmoid(h)),
        (Ypred, MatMul(H, W2) + bias2),
    )
    return Network(inputs=(X, Y), params=(W1, b1, W2, b2), stages=stages,
                   loss=frobenius_sq(Y - Ypred), bias=bias, name="seed")
