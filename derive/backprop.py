"""The staged derivation: one section per variable, as the seed document is written.

Each section starts from the gradient of the stage just downstream,
df = tr(G_Zᵀ dZ), substitutes Z's definition and derives on, keeping the
intermediates (Ŷ, H, h) as symbols.  The summary expands the results in the inputs.

The stages may form any DAG: a variable used by several stages (tied weights, a skip
connection, a weight shared across time steps), or by a stage and the loss, gets one
derivation per use, ∂f/∂X⁽ᵘ⁾, and then their sum ∂f/∂X = Σᵤ ∂f/∂X⁽ᵘ⁾ (the multivariable
chain rule, the step "sum_over_uses").
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import MatAdd, MatrixExpr, MatrixSymbol

from derive.broadcast import broadcast_steps
from derive.differential import MatrixDifferential, ScalarDifferential
from derive.engine import derivation, derive_from, gradient_form, validate
from derive.fold import NAME_STAGE, name_stages
from derive.networks import Network
from derive.notation import in_notation
from derive.display import Displayed, display
from derive.steps import CHAIN, SUBSTITUTE, SUM_OVER_USES, F, Derivation, Gradient, Step, Use

# An upstream gradient larger than this (in SymPy nodes) is written as the symbol ∂f/∂Z,
# which keeps every section of a deep network the same size.
INLINE_UPSTREAM_NODES = 60
# The summary holds a parameter's gradient in the inputs when it has at most this many nodes (the
# documents show the expansions only when each has at most 400: derive.render.document); a larger
# one is None there, and Backprop.gradients() expands it when asked.
SUMMARY_EXPANSION_MAX_NODES = 1000

__all__ = ["Backprop", "backprop", "staged_section"]


@dataclass(frozen=True)
class Backprop(Displayed):
    """The sections of a staged derivation and the summary of the parameter gradients.

    ``summary``: (parameter, its gradient with the intermediates, the same in the inputs), the
    last None where that is longer than SUMMARY_EXPANSION_MAX_NODES (a deep network):
    :meth:`gradients` expands it when asked.

    Data only: ``to_text``, ``to_markdown``, ``to_latex(lang, standalone=True)``, ``str`` and the
    Jupyter display are the functions ``derive.render`` registers (:mod:`derive.display`).
    """

    network: Network
    sections: tuple[Derivation, ...]
    summary: tuple[tuple[MatrixSymbol, MatrixExpr, MatrixExpr | None], ...]

    def to_latex(self, lang: str = "en", standalone: bool = True) -> str:
        r"""The whole derivation as LaTeX; ``standalone``: a document with its preamble."""
        return display(self, "latex", lang=lang, standalone=standalone)

    def section(self, name: str) -> Derivation:
        for s in self.sections:
            if s.wrt.name == name:
                return s
        raise KeyError(f"no section for {name}; sections: {[s.wrt.name for s in self.sections]}")

    def gradients(self, expanded: bool = True) -> dict[MatrixSymbol, MatrixExpr]:
        """Parameter → gradient, in the inputs (``expanded``) or with the intermediates."""
        if not expanded:
            return {p: in_notation(staged) for p, staged, _ in self.summary}
        resolved = _resolved(self.sections) if any(full is None for _, _, full in self.summary) else {}
        return {p: in_notation(self.network.expand(resolved[p]) if full is None else full)
                for p, _, full in self.summary}

    def gradient(self, name: str | MatrixSymbol, expanded: bool = True) -> MatrixExpr:
        """∂f/∂v for any variable with a section (a parameter, an intermediate, an input the loss
        holds), in the inputs (``expanded``) or with the intermediates.

        >>> from derive import seed_network
        >>> backprop(seed_network()).gradient("Ypred", expanded=False)
        2(Ypred - Y)
        """
        v = self.section(name if isinstance(name, str) else name.name).wrt
        G = _resolved(self.sections)[v]
        return in_notation(self.network.expand(G) if expanded else G)


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
    steps = [Step(CHAIN.key, dF, start),
             Step(SUBSTITUTE.key, dF, start.xreplace({MatrixDifferential(Z): MatrixDifferential(definition)}))]
    G = derive_from(steps[-1].rhs, X, steps, assumptions=net.assumptions)
    named = name_stages(G, net.stages)   # P ⊙ (G − (G ⊙ P)𝟏𝟏ᵀ), not exp(Z) and its row sums
    if named is not G:   # the step before reading off: df = tr((P ⊙ …)ᵀ dZ)
        G = in_notation(named)
        read_off = steps.pop()
        steps += [Step(NAME_STAGE.key, dF, gradient_form(G, MatrixDifferential(X))), Step(read_off.rule, read_off.lhs, G)]
    return Derivation(function=net.loss, wrt=X, steps=tuple(steps), result=G,
                      definitions=net.stages, upstream=(Z, G_Z))


def _resolved(sections: tuple[Derivation, ...] | list[Derivation]) -> dict[MatrixSymbol, MatrixExpr]:
    """Each section's result with the ∂f/∂Z symbols of deep sections replaced by the gradients they
    stand for (derived before them: downstream first)."""
    resolved: dict[MatrixSymbol, MatrixExpr] = {}
    for section in sections:
        G = section.result
        if G.has(Gradient):
            G = G.xreplace({g: resolved[g.wrt] for g in G.atoms(Gradient)})
        resolved[section.wrt] = G
    return resolved


def _loss_section(net: Network, v: MatrixSymbol) -> Derivation:
    """∂f/∂v from the terms of the loss that hold v (the others are constant in v)."""
    part = sympy.Add(*[t for t in sympy.Add.make_args(net.loss) if t.has(v)])
    dv = derivation(part, v, net.assumptions)
    return Derivation(function=dv.function, wrt=v, steps=dv.steps, result=dv.result, definitions=net.stages)


def _sum_section(net: Network, v: MatrixSymbol, uses: tuple[sympy.Basic, ...],
                 parts: list[Derivation], known: dict | None = None) -> Derivation:
    """∂f/∂v for a v with several uses: each part derives ∂f/∂v⁽ᵘ⁾; the step sums them.  Where the
    network knows that a matrix's columns (rows) sum to zero, steps after the sum bring it to its
    compact form (:func:`derive.broadcast.broadcast_steps`, batch and layer norm)."""
    contributions = []
    for u, part in zip(uses, parts):
        own, copy = Gradient(F, v), Gradient(F, Use(v, u))
        steps = tuple(Step(s.rule, copy if s.lhs == own else s.lhs, s.rhs) for s in part.steps)
        contributions.append(Derivation(function=part.function, wrt=v, steps=steps, result=part.result,
                                        definitions=part.definitions, upstream=part.upstream,
                                        notes=part.notes))
    terms = [p.result for p in parts if not p.result.is_ZeroMatrix] or [parts[0].result]
    total = terms[0] if len(terms) == 1 else MatAdd(*terms)
    steps = [Step(SUM_OVER_USES.key, Gradient(F, v), total)]
    steps += [Step(rule, Gradient(F, v), G)
              for rule, G in broadcast_steps(total, known or {}, net.stages, net.assumptions)]
    return Derivation(function=net.loss, wrt=v, steps=tuple(steps),
                      result=in_notation(steps[-1].rhs), definitions=net.stages, contributions=tuple(contributions))


def backprop(net: Network) -> Backprop:
    """The staged derivation of every parameter gradient of ``net``.

    Sections go from the loss back to the inputs: first the variables only the loss uses, then,
    stage by stage from the last, the variables whose last-derived use is that stage.

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
    variables = list(net.inputs) + stage_symbols + list(net.params)
    validate(net.loss, next(v for v in variables if net.loss.has(v)))
    sections: list[Derivation] = []
    known: dict[MatrixSymbol, MatrixExpr] = {}

    def add(v: MatrixSymbol) -> None:
        uses = net.uses(v)
        parts = [_loss_section(net, v) if u == F else staged_section(net, u, known[u], v) for u in uses]
        section = parts[0] if len(parts) == 1 else _sum_section(net, v, uses, parts, known)
        sections.append(section)
        known[v] = section.result

    only_loss = [v for v in list(net.inputs) + stage_symbols[::-1] + list(net.params) if net.uses(v) == (F,)]
    for v in only_loss:
        add(v)
    inputs = {x for x in net.inputs if F in net.uses(x)}
    for Z, definition in reversed(net.stages):
        held = definition.atoms(MatrixSymbol)
        for v in ([p for p in net.params if p in held] + [s for s in stage_symbols if s != Z and s in held]
                  + [x for x in net.inputs if x in held and x in inputs]):
            if net.uses(v)[0] == Z:   # every other use of v comes later, so it is derived already
                add(v)
    resolved = _resolved(sections)
    summary = tuple((p, known[p], _expansion(net, resolved[p])) for p in net.params)
    return Backprop(network=net, sections=tuple(sections), summary=summary)


def _expansion(net: Network, G: MatrixExpr) -> MatrixExpr | None:
    """``G`` in the inputs when that is at most SUMMARY_EXPANSION_MAX_NODES nodes, else None (it
    grows with the square of the depth: a deep network's would cost more than its derivation)."""
    limit = SUMMARY_EXPANSION_MAX_NODES
    definitions = dict(net.stages)
    sizes: dict[sympy.Basic, int] = {}

    def size(e: sympy.Basic, depth: int) -> int:
        """The node count of ``e`` expanded (as sympy.preorder_traversal counts), or limit + 1 when
        larger; a node deeper than ``limit`` means a larger tree."""
        if depth > limit:
            return limit + 1
        if e not in sizes:
            if e in definitions:
                n = size(definitions[e], depth)
            else:
                n = 1
                for a in e.args:
                    n += size(a, depth + 1)
                    if n > limit:
                        break
            sizes[e] = min(n, limit + 1)
        return sizes[e]

    if not any(s in definitions for s in G.atoms(MatrixSymbol)):
        return G   # in the inputs already
    return net.expand(G) if size(G, 0) <= limit else None
