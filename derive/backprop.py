"""The staged derivation: one section per variable, as the seed document is written.

Each section starts from the gradient of the stage just downstream,
df = tr(G_Zᵀ dZ), substitutes Z's definition and derives on, keeping the
intermediates (Ŷ, H, h) as symbols.  The summary expands the results in the inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import MatrixExpr, MatrixSymbol

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.engine import derivation, derive_from, gradient_form, validate
from derive.networks import Network
from derive.notation import in_notation
from derive.steps import F, Derivation, Displayed, Gradient, Step

# An upstream gradient larger than this (in SymPy nodes) is written as the symbol ∂f/∂Z,
# which keeps every section of a deep network the same size.
INLINE_UPSTREAM_NODES = 60

__all__ = ["Backprop", "backprop", "staged_section"]


@dataclass(frozen=True)
class Backprop(Displayed):
    """The sections of a staged derivation and the summary of the parameter gradients."""

    network: Network
    sections: tuple[Derivation, ...]
    summary: tuple[tuple[MatrixSymbol, MatrixExpr, MatrixExpr], ...]

    def section(self, name: str) -> Derivation:
        for s in self.sections:
            if s.wrt.name == name:
                return s
        raise KeyError(f"no section for {name}; sections: {[s.wrt.name for s in self.sections]}")

    def gradients(self, expanded: bool = True) -> dict[MatrixSymbol, MatrixExpr]:
        """Parameter → gradient, in the inputs (``expanded``) or with the intermediates."""
        return {p: in_notation(full if expanded else staged) for p, staged, full in self.summary}

    def to_latex(self, lang: str = "en", standalone: bool = True) -> str:
        from derive.render import backprop_latex

        return backprop_latex(self, lang=lang, standalone=standalone)

    def to_markdown(self, lang: str = "en") -> str:
        from derive.render import backprop_markdown

        return backprop_markdown(self, lang=lang)

    def to_text(self, lang: str = "en") -> str:
        from derive.render import backprop_text

        return backprop_text(self, lang=lang)


def _size(e: sympy.Basic) -> int:
    return sum(1 for _ in sympy.preorder_traversal(e))


def staged_section(net: Network, Z: MatrixSymbol, G_Z: MatrixExpr, X: MatrixSymbol,
                   direct: sympy.Expr = sympy.S.Zero) -> Derivation:
    """∂f/∂X from the downstream gradient G_Z = ∂f/∂Z, where Z's definition holds X.

    ``direct`` is the part of the loss that holds X itself (a weight-decay term).
    """
    definition = dict(net.stages)[Z]
    dF = ScalarDifferential(F)
    shown = G_Z if _size(G_Z) <= INLINE_UPSTREAM_NODES else Gradient(F, Z)
    start = gradient_form(shown, MatrixDifferential(Z))
    if direct != 0:
        start = start + ScalarDifferential(direct)
    steps = [Step("chain", dF, start),
             Step("substitute", dF, start.xreplace({MatrixDifferential(Z): MatrixDifferential(definition)}))]
    G = derive_from(steps[-1].rhs, X, steps)
    return Derivation(function=net.loss, wrt=X, steps=tuple(steps), result=G,
                      definitions=net.stages, upstream=(Z, G_Z))


def backprop(net: Network) -> Backprop:
    """The staged derivation of every parameter gradient of ``net``.

    >>> from derive import seed_network
    >>> bp = backprop(seed_network())
    >>> [s.wrt.name for s in bp.sections]
    ['Y', 'Ypred', 'W2', 'b2', 'H', 'h', 'W1', 'b1']
    >>> bp.section("W2").result
    2Hᵀ(Ypred - Y)
    """
    if not isinstance(net, Network):
        raise TypeError(f"backprop() takes a derive.Network (e.g. seed_network()), got {type(net).__name__}")
    stage_symbols = [s for s, _ in net.stages]
    last = stage_symbols[-1]
    validate(net.loss, last)
    data_loss = sympy.Add(*[t for t in sympy.Add.make_args(net.loss) if t.has(last)])
    sections: list[Derivation] = []
    known: dict[MatrixSymbol, MatrixExpr] = {}
    for v in [x for x in net.inputs if data_loss.has(x)] + [last]:
        dv = derivation(data_loss, v, net.assumptions)
        sections.append(Derivation(function=dv.function, wrt=v, steps=dv.steps, result=dv.result,
                                   definitions=net.stages))
        known[v] = dv.result
    for Z, definition in reversed(net.stages):
        params = [p for p in net.params if definition.has(p)]
        upstream = [s for s in stage_symbols if s != Z and definition.has(s)]
        for X in params + upstream:
            direct = sympy.Add(*[t for t in sympy.Add.make_args(net.loss) if t.has(X) and not t.has(last)])
            section = staged_section(net, Z, known[Z], X, direct)
            sections.append(section)
            known[X] = section.result
    # ∂f/∂Z symbols in deep sections stand for gradients derived before them (downstream first)
    resolved: dict[MatrixSymbol, MatrixExpr] = {}
    for section in sections:
        G = section.result
        if G.has(Gradient):
            G = G.xreplace({g: resolved[g.wrt] for g in G.atoms(Gradient)})
        resolved[section.wrt] = G
    expanded = {p: net.expand(resolved[p]) for p in net.params if p in known}
    summary = tuple((p, known[p], expanded[p]) for p in net.params if p in known)
    return Backprop(network=net, sections=tuple(sections), summary=summary)


