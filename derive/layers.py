"""Layers: the named functions of matrices that courses backpropagate by hand.

A layer is one :class:`Layer` record: its name in the language, its arguments, what it is called in
every language, and ``expand``, which writes one application as named sub-stages of the
primitives the engine derives (products, sums, ⊙, elementwise functions, 𝟏).  A program that
assigns a layer call, ``P = softmax(Z)``, gets those sub-stages as stages of its network, each
with its own section in the staged derivation; inside a larger expression the call is inlined.

>>> from sympy import MatrixSymbol
>>> Z = MatrixSymbol("Z", 4, 3)
>>> e = layer("softmax").expand("P", Z)
>>> [s.name for s, _ in e.stages], e.loss is None
(['P'], True)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import sympy
from sympy import MatrixExpr, MatrixSymbol

__all__ = ["Expansion", "Layer", "define_layer", "layer", "layers"]


@dataclass(frozen=True)
class Expansion:
    """One application of a layer as sub-stages.

    ``stages``: ``(symbol, definition)`` in forward order; for a matrix-valued layer the last
    symbol is the output (named as the program names it).  ``loss``: for a scalar-valued layer
    (``cross_entropy``, ``svm_loss``), its value in terms of the stages, else None.
    ``assumptions``: as :attr:`derive.networks.Network.assumptions` (rows of Y summing to one).
    """

    stages: tuple[tuple[MatrixSymbol, MatrixExpr], ...]
    loss: sympy.Expr | None = None
    assumptions: tuple = ()

    def inline(self) -> sympy.Basic:
        """The layer's value with every sub-stage replaced by its definition."""
        out: dict[MatrixSymbol, MatrixExpr] = {}
        for symbol, definition in self.stages:
            out[symbol] = definition.xreplace(out)
        if self.loss is not None:
            return self.loss.xreplace(out)
        return out[self.stages[-1][0]]


@dataclass(frozen=True)
class Layer:
    """A named layer: ``expand(out_name, *args)`` builds an :class:`Expansion`.

    ``arguments`` names the arguments in order (``("Z", "gamma", "beta", "eps")``); the last
    ``optional`` of them may be left out.  ``names`` maps a language code to what the layer is
    called in it.  ``scalar``: whether the layer's value is a scalar (a loss).
    """

    name: str
    arguments: tuple[str, ...]
    build: Callable[..., Expansion]
    names: Mapping[str, str] = field(default_factory=dict)
    optional: int = 0
    scalar: bool = False

    def expand(self, out_name: str, *args: sympy.Basic) -> Expansion:
        """The layer applied to ``args``, its output named ``out_name``."""
        least = len(self.arguments) - self.optional
        if not least <= len(args) <= len(self.arguments):
            wanted = str(least) if not self.optional else f"{least} to {len(self.arguments)}"
            raise ValueError(f"{self.name}({', '.join(self.arguments)}) takes {wanted} arguments, "
                             f"got {len(args)}")
        return self.build(out_name, *args)


_LAYERS: dict[str, Layer] = {}


def define_layer(record: Layer) -> Layer:
    """Register ``record`` under its name; the language and programs read the registry."""
    if record.name in _LAYERS:
        raise ValueError(f"a layer named {record.name!r} is already defined")
    _LAYERS[record.name] = record
    return record


def layers() -> Mapping[str, Layer]:
    """Every layer by name (read at each call, so a layer defined later is seen)."""
    return MappingProxyType(_LAYERS)


def layer(name: str) -> Layer:
    """The layer called ``name``."""
    try:
        return _LAYERS[name]
    except KeyError:
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(sorted(_LAYERS))}") from None


# ----------------------------------------------------------------------------- built-in layers

def _softmax(out_name: str, Z: MatrixExpr) -> Expansion:
    from derive.networks import softmax_rows

    return Expansion(stages=((MatrixSymbol(out_name, *Z.shape), softmax_rows(Z)),))


define_layer(Layer("softmax", ("Z",), _softmax, names={"en": "softmax (row-wise)", "zh": "softmax（按行）"}))
