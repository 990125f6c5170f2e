"""The checker's problem (a network's values and gradients as expressions) and its draws: the
dimensions and data at which an answer is evaluated (see :mod:`derive.check`)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy
from sympy import (
    MatrixExpr, MatrixSymbol,
)

from derive.backprop import Backprop, backprop
from derive.dims import concrete_shape
from derive.engine import gradient
from derive.networks import Network, seed_network
from derive.render.locale import get_locale
from derive.render.printer import math_text


# Row j: the j-th dimension set, the value of the network's i-th symbolic dimension in column i.
# Every column takes five or more values; no row repeats a value (non-square), except the last,
# which has dimensions of 1 (a batch of one, a single output).
DIM_ROWS: tuple[tuple[int, ...], ...] = (
    (4, 3, 5, 2, 6, 7, 8, 9),
    (7, 5, 2, 3, 4, 6, 9, 8),
    (3, 6, 4, 5, 2, 8, 7, 9),
    (2, 4, 7, 6, 3, 5, 9, 8),
    (6, 2, 3, 7, 5, 4, 8, 9),
    (5, 7, 6, 4, 8, 2, 3, 9),
    (1, 2, 3, 1, 4, 5, 6, 7),
)
# (dimension row, data scale) of each draw
_PLAN = ((0, 1.0), (0, 10.0), (1, 1.0), (1, 0.1), (2, 3.0), (2, 1.0), (3, 1.0), (3, 10.0),
         (4, 1.0), (4, 0.1), (5, 1.0), (6, 1.0))
_FIXED_PLAN = ((0, 1.0), (0, 10.0), (0, 0.1), (0, 3.0))   # a network whose dimensions are all numbers


# ------------------------------------------------------------------------------ the problem

@dataclass(frozen=True, eq=False)
class Problem:
    """A network's values and gradients, as expressions the evaluator reads."""

    net: Network
    bp: Backprop
    definitions: dict          # stage symbol → its definition
    gradients: dict            # variable → ∂f/∂variable (may hold stage symbols and ∂f/∂Z symbols)
    scalars: tuple             # scalar symbols of the loss that are not dimensions (a weight decay λ)

    def variables(self) -> dict[str, MatrixSymbol]:
        net = self.net
        syms = list(net.inputs) + list(net.params) + [s for s, _ in reversed(net.stages)]
        return {s.name: s for s in syms}

    def gradient(self, X: MatrixSymbol) -> MatrixExpr:
        if X not in self.gradients:
            # an input the loss holds only through the stages (X): derived in one piece, shown with the
            # intermediates' names
            net = self.net
            G = gradient(net.f, X)
            names = {net.expand(s): s for s, _ in net.stages}
            self.gradients[X] = G.xreplace(names)
        return self.gradients[X]


@lru_cache(maxsize=16)
def problem_of(net: Network) -> Problem:
    bp = backprop(net)
    dims = set(net.dims)
    scalars = tuple(sorted((s for s in sympy.sympify(net.loss).free_symbols
                            if isinstance(s, sympy.Symbol) and s not in dims), key=str))
    gradients = {s.wrt: s.result for s in bp.sections}
    gradients.update(bp.gradients(expanded=False))        # a parameter's total gradient: the summary's
    return Problem(net, bp, dict(net.stages), gradients, scalars)


def network_of(net: Network | str, bias: str, lang: str) -> Network:
    if isinstance(net, Network):
        return net
    if net == "seed":
        return seed_network(bias=bias)
    raise ValueError(get_locale(lang).say("check_unknown_network", name=repr(net)))


def answer_shapes(net: Network, scalars: Sequence[sympy.Symbol]) -> dict[str, tuple]:
    syms = list(net.inputs) + list(net.params) + [s for s, _ in net.stages]
    out: dict[str, tuple] = {s.name: tuple(s.shape) for s in syms}
    out.update({s.name: () for s in scalars})
    return out


# ------------------------------------------------------------------------------- the draws

@dataclass(frozen=True)
class Draw:
    """One evaluation point: the dimensions, the scale of the data and the seed it is drawn with."""

    dims: tuple[tuple[sympy.Symbol, int], ...]
    scale: float
    seed: tuple[int, ...]
    integers: bool = False

    def label(self) -> str:
        return ", ".join(f"{d}={v}" for d, v in self.dims)


def dim_value(row: int, i: int) -> int:
    values = DIM_ROWS[row]
    return values[i] if i < len(values) else 2 + (3 * i + 5 * row) % 9


def ordered_dims(net: Network) -> list[sympy.Symbol]:
    """The network's dimensions, the seed's n, d, m, k first (so that the first draw is 4, 3, 5, 2)."""
    first = ("n", "d", "m", "k")
    return sorted(net.dims, key=lambda d: (first.index(d.name) if d.name in first else len(first),
                                           net.dims.index(d)))


def draws_for(net: Network, seed: int, large: float | None) -> list[Draw]:
    dims = ordered_dims(net)
    plan = list(_PLAN if dims else _FIXED_PLAN)
    if large is not None:
        # beyond the answer's largest number L: the data itself, and a product of two data, exceed L
        plan += [(1, 3.0 * math.sqrt(large)), (2, 3.0 * large)]
    return [Draw(tuple((d, dim_value(row, i)) for i, d in enumerate(dims)), scale, (seed, j))
            for j, (row, scale) in enumerate(plan)]


def stochastic_rows(rng: np.random.Generator, shape: tuple[int, int], integers: bool) -> np.ndarray:
    """Positive rows that sum to exactly 1 (dyadic entries), for a Y assumed to hold probabilities."""
    r, k = shape
    hi = 3 if integers else 1024
    w = rng.integers(1, hi + 1, (r, k)).astype(float)
    total = 2.0 ** math.ceil(math.log2(k * hi + 1))
    w[:, -1] = total - w[:, :-1].sum(axis=1)
    return rng.permuted(w, axis=1) / total


@lru_cache(maxsize=256)
def draw_data(net: Network, scalars: tuple, draw: Draw) -> dict:
    rng = np.random.default_rng(list(draw.seed))
    vals: dict = {}
    for s in list(net.inputs) + list(net.params):
        shape = concrete_shape(s.shape, dict(draw.dims))
        if draw.integers:
            v = rng.integers(-2, 3, shape).astype(float)
            while v.size > 1 and np.all(v == v.flat[0]):        # never all ones, nor any constant matrix
                v = rng.integers(-2, 3, shape).astype(float)
        else:
            v = rng.standard_normal(shape)
        vals[s] = v * draw.scale
    for pattern, _, rule in net.assumptions:
        if rule == "rows_sum_to_one":
            # the derivation assumed each row of Y sums to one: so must the data, exactly
            Y = pattern[0]
            vals[Y] = stochastic_rows(rng, vals[Y].shape, draw.integers)
    for s in scalars:
        vals[s] = float(rng.integers(1, 4)) if draw.integers else float(rng.uniform(0.5, 2.0))
    return vals



def formula_text(e: sympy.Basic) -> str:
    """``e`` in tracegrad's notation, as the checker's messages show it."""
    return math_text(e)
