"""A derivation laid out as the seed document writes it, before any format.

:func:`outline` reads a :class:`~derive.steps.Derivation`: the gradient its section derives, the
upstream gradient it starts from, the definitions it substitutes, the lines of its step block
and its result, and names for long subexpressions that repeat (:func:`abbreviate`).  The
document builder (:mod:`derive.render.document`) turns an outline into blocks.  Nothing here
does algebra.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from collections.abc import Sequence

import sympy
from sympy import Basic, MatAdd, MatMul, MatrixExpr, MatrixSymbol, OneMatrix

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.render.printer import math_text
from derive.steps import F, Derivation, Gradient, Step

__all__ = ["ABBREVIATE_OVER", "Line", "Outline", "abbreviate", "outline", "step_lines", "substitute"]

# the rules whose line ends a section: ⇒ ∂f/∂X = G
RESULT_RULES = ("read_off", "sum_over_uses", "read_off_jacobian", "read_off_hessian", "hvp_direction",
                "read_off_scalar")


@dataclass(frozen=True)
class Line:
    """One line of a step block: ``lhs = rhs`` (``lhs`` None: the same as the line above)."""

    lhs: Basic | None
    rhs: Basic
    rule: str
    is_result: bool


@dataclass(frozen=True)
class Outline:
    """A derivation laid out as the seed document does.

    "Derive ∂f/∂X" · "From ∂f/∂Z = G_Z, where Z = …" (staged) or "Taking the differential
    of both sides" (from f) · the step block · "We obtain ∂f/∂X" · ⇒ ∂f/∂X = G.
    """

    gradient: Gradient
    upstream: tuple[Gradient, Basic] | None
    definitions: tuple[tuple[MatrixSymbol, MatrixExpr], ...]  # those the section substitutes
    lead: tuple[Line, ...]  # lines before "take the differential" (f = …), shown before the intro
    body: tuple[Line, ...]
    result: Line
    notes: tuple[str, ...]
    # a variable used more than once: (the use, a stage symbol or f; its outline ending in ∂f/∂X⁽ᵘ⁾),
    # in the order of the uses; ``result`` is then their sum
    contributions: tuple[tuple[Basic, Outline], ...] = ()
    # names for long subexpressions that repeat ("write Z = XW1 + 𝟏ₙb1"), used in the lines above
    abbreviations: tuple[tuple[MatrixSymbol, MatrixExpr], ...] = ()


def step_lines(steps: Sequence[Step]) -> list[Line]:
    """The lines of a step block; a left-hand side equal to the one above is left out.

    >>> from sympy import MatrixSymbol
    >>> from derive.differential import ScalarDifferential
    >>> Y = MatrixSymbol("Y", 2, 2)
    >>> df = ScalarDifferential(F)
    >>> [l.lhs for l in step_lines([Step("chain", df, Y), Step("collect", df, Y)])]
    [df, None]
    """
    lines: list[Line] = []
    prev: Basic | None = None
    for s in steps:
        lines.append(Line(None if s.lhs == prev else s.lhs, s.rhs, s.rule, s.rule in RESULT_RULES))
        prev = s.lhs
    return lines


def outline(d: Derivation, abbreviate_over: int | None = None) -> Outline:
    """The parts of ``d`` in document order.

    When a line is wider than ``abbreviate_over`` columns of text (default
    :data:`ABBREVIATE_OVER`), long subexpressions that repeat get names (:func:`abbreviate`).

    >>> from sympy import MatrixSymbol
    >>> Y = MatrixSymbol("Y", 2, 2)
    >>> s = outline(Derivation(F, Y, (Step("read_off", Gradient(F, Y), 2 * Y),), 2 * Y))
    >>> s.lead, s.body, s.result.rhs
    ((), (), 2*Y)
    """
    steps = list(d.steps)
    lead: list[Step] = []
    if d.upstream is None:
        first_d = next((i for i, s in enumerate(steps) if s.rule == "differential"), 0)
        lead, steps = steps[:first_d], steps[first_d:]
    if steps and steps[-1].rule in RESULT_RULES:
        last = steps.pop()
        result = Line(last.lhs, last.rhs, last.rule, True)
    else:
        result = Line(Gradient(F, d.wrt), d.result, "read_off", True)
    upstream = None
    definitions: tuple[tuple[MatrixSymbol, MatrixExpr], ...] = ()
    if d.upstream is not None:
        z, g = d.upstream
        upstream = (Gradient(F, z), g)
        # the one definition a staged section substitutes; the others are in the problem statement
        definitions = tuple((s, e) for s, e in d.definitions if s == z) or tuple(d.definitions)
    sec = Outline(
        gradient=Gradient(F, d.wrt) if getattr(d, "target", None) is None else d.target,
        upstream=upstream,
        definitions=definitions,
        lead=tuple(step_lines(lead)),
        body=tuple(step_lines(steps)),
        result=result,
        notes=tuple(d.notes),
        contributions=tuple((c.upstream[0] if c.upstream is not None else F, outline(c, abbreviate_over))
                            for c in d.contributions),
    )
    sec = abbreviate(sec, d, ABBREVIATE_OVER if abbreviate_over is None else abbreviate_over)
    named = _names(sec)
    return replace(sec, abbreviations=sec.abbreviations + named) if named else sec


def _names(sec: Outline) -> tuple[tuple[MatrixSymbol, MatrixExpr], ...]:
    """The definitions of the names the lines print (p = softmax(z): ``derive.fold.Softmax``)."""
    out: dict[MatrixSymbol, MatrixExpr] = {}
    for ln in (*sec.lead, *sec.body, sec.result):
        for node in sympy.preorder_traversal(ln.rhs):
            if getattr(node, "_tracegrad_leaf", False):
                out.setdefault(MatrixSymbol(node.symbol, *node.shape), node.definition)
    return tuple(out.items())


ABBREVIATE_OVER = 80
"""A section with a line wider than this (columns of its unicode text) names its long repeated
subexpressions; the seed network's sections, all narrower, are written out in full."""
ABBREVIATION_NAMES = ("Z", "R", "U", "V", "P", "Q", "S", "T", "A", "B", "C", "E", "G", "K", "L", "M", "N")
MAX_ABBREVIATIONS = 4
_SHORT = 10  # a subexpression shorter than this (columns) is not worth a name


def _nameable(e: Basic) -> bool:
    # sums and products of matrices only (pre-activations, residuals): σ(Z) ⊙ (𝟏 − σ(Z)) keeps
    # showing σ′ (a sum with the ones matrix 𝟏 is such a derivative), and −tanh(Z)∘² is not a
    # product worth a name
    if isinstance(e, MatMul):
        if len(e.as_coeff_matrices()[1]) < 2:
            return False
    elif not isinstance(e, MatAdd) or any(isinstance(t, OneMatrix) and 1 not in t.shape for t in e.args):
        return False
    return not e.has(MatrixDifferential, ScalarDifferential, Gradient)


def abbreviate(sec: Outline, d: Derivation | None = None, over: int = ABBREVIATE_OVER) -> Outline:
    """``sec`` with names for the long sums and products that repeat in its lines, while a line
    is wider than ``over`` columns: Z = XW1 + 𝟏ₙb1 makes σ(XW1 + 𝟏ₙb1) ⊙ (𝟏 − σ(XW1 + 𝟏ₙb1))
    read σ(Z) ⊙ (𝟏 − σ(Z)).  The one that saves the most text is named first; a name is a
    capital letter the derivation does not use (nor as the letter of Z1, Z4 …), and a name that
    does not shorten the widest line by ``_SHORT`` columns is not given.  Replacing each name by its
    definition (``sec.abbreviations``, each in terms of the ones before it) gives the lines back.

    >>> import derive
    >>> from sympy import MatrixSymbol, OneMatrix, Trace
    >>> from derive.elementwise import sigmoid
    >>> X, W1, b1 = MatrixSymbol("X", 4, 3), MatrixSymbol("W1", 3, 5), MatrixSymbol("b1", 1, 5)
    >>> W2, Y = MatrixSymbol("W2", 5, 2), MatrixSymbol("Y", 4, 2)
    >>> R = Y - sigmoid(X * W1 + OneMatrix(4, 1) * b1) * W2
    >>> sec = outline(derive.derivation(Trace(R.T * R), W1))
    >>> Z, definition = sec.abbreviations[0]
    >>> f"{Z} = {math_text(definition)}", "σ(Z) ⊙ (𝟏 - σ(Z)) ⊙ dZ" in math_text(sec.body[5].rhs)
    ('Z = XW1 + 𝟏₄b1', True)
    """
    lines = [*sec.lead, *sec.body, sec.result]
    used = {s.name for ln in lines for s in ln.rhs.atoms(MatrixSymbol)}
    if d is not None:
        used |= {s.name for s in d.function.atoms(MatrixSymbol)} | {s.name for s, _ in d.definitions}
    used |= {name[0] for name in used}  # not Z beside Z1, Z4
    exprs = [ln.rhs for ln in lines]
    named: list[tuple[MatrixSymbol, MatrixExpr]] = []
    texts: dict[Basic, str] = {}

    def text(e: Basic) -> str:
        if e not in texts:
            texts[e] = math_text(e)
        return texts[e]

    def length(e: Basic) -> int:
        return len(text(e))

    while max(map(length, exprs)) > over:
        counts: dict[Basic, int] = {}
        for e in exprs:
            for node in sympy.preorder_traversal(e):
                if _nameable(node):
                    counts[node] = counts.get(node, 0) + 1
        width = {e: w for e, c in counts.items() if c > 1 and (w := length(e)) >= _SHORT}
        # the one that saves the most, but an inner subexpression that repeats as often first:
        # Z = XW1 + 𝟏ₙb1 before σ(Z)W2 + …
        best = None
        for e in sorted(width, key=lambda e: ((counts[e] - 1) * (width[e] - 1), text(e)), reverse=True):
            rivals = [c for c in width if c != e and counts[c] >= counts[e] and width[c] < width[e]]
            if not rivals or not set(rivals) & set(sympy.preorder_traversal(e)):
                best = e
                break
        if best is None or len(named) == MAX_ABBREVIATIONS:
            break
        sym = MatrixSymbol(chr(0x2460 + len(named)), *best.shape)  # ①, ②, …: one column wide
        shorter = [substitute(e, {best: sym}) for e in exprs]
        if max(map(length, shorter)) > max(map(length, exprs)) - _SHORT:
            break  # a name that hardly shortens the widest line only adds a definition to read
        exprs = shorter
        named = [(s, substitute(e, {best: sym})) for s, e in named] + [(sym, best)]
    free = [n for n in ABBREVIATION_NAMES if n not in used]
    named = list(_in_order(named))
    for s, e in reversed(named[len(free):]):  # more than there are names: written out again
        exprs = [substitute(x, {s: e}) for x in exprs]
    named = named[:len(free)]
    if not named:
        return sec
    # the names in the order of the definitions: Z for the first, U for the next …
    rename = {s: MatrixSymbol(n, *s.shape) for (s, _), n in zip(named, free)}
    exprs = [substitute(e, rename) for e in exprs]
    it = iter(exprs)
    lead = tuple(replace(ln, rhs=next(it)) for ln in sec.lead)
    body = tuple(replace(ln, rhs=next(it)) for ln in sec.body)
    result = replace(sec.result, rhs=next(it))
    return replace(sec, lead=lead, body=body, result=result,
                   abbreviations=tuple((rename[s], substitute(e, rename)) for s, e in named))


def substitute(e: Basic, mapping: dict[Basic, Basic]) -> Basic:
    """``e`` with the subexpressions in ``mapping`` replaced, and nothing else changed: unlike
    ``xreplace`` it does not let SymPy combine what the replacement makes alike (the step
    −tr(A) − tr(A) stays two terms, as the derivation wrote it).

    >>> from sympy import MatrixSymbol, Trace
    >>> A, B = MatrixSymbol("A", 2, 2), MatrixSymbol("B", 2, 2)
    >>> substitute(-Trace(A) - Trace(B), {B: A})
    -Trace(A) - Trace(A)
    """
    if e in mapping:
        return mapping[e]
    if not e.args:
        return e
    args = [substitute(a, mapping) for a in e.args]
    if all(a is b for a, b in zip(args, e.args)):
        return e
    try:
        return e.func(*args, evaluate=False)
    except TypeError:  # a class that takes no evaluate= and does not combine its arguments
        return e.func(*args)


def _in_order(defs: list[tuple[MatrixSymbol, MatrixExpr]]) -> tuple[tuple[MatrixSymbol, MatrixExpr], ...]:
    """The definitions, each after those it uses."""
    out: list[tuple[MatrixSymbol, MatrixExpr]] = []
    rest = list(reversed(defs))  # the innermost were named last
    while rest:
        ready = next(x for x in rest if not (x[1].atoms(MatrixSymbol) & {s for s, _ in rest if s != x[0]}))
        out.append(ready)
        rest.remove(ready)
    return tuple(out)
