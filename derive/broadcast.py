"""Broadcasts and the sums of their columns: the identities that bring the backward of a normalisation
(batch norm, layer norm) to the compact form courses write.

A term of an r×c expression is read as c·(𝟏r) ⊙ (u𝟏ᵀ) ⊙ M₁^∘p₁ ⊙ …: a number, Hadamard powers of row
vectors broadcast down the rows (𝟏γ, 𝟏σ, 𝟏𝟏ᵀG = 𝟏(𝟏ᵀG)), of column vectors broadcast along the columns
(σ𝟏ᵀ, G𝟏𝟏ᵀ) and of matrices.  Three identities act on such sums:

* a broadcast factor comes out of a column sum: 𝟏ᵀ(A ⊙ 𝟏v) = (𝟏ᵀA) ⊙ v, and out of a row sum:
  (A ⊙ u𝟏ᵀ)𝟏 = (A𝟏) ⊙ u (:data:`BROADCAST_SUM`, which also distributes 𝟏ᵀ and ⊙ over sums);
* a fact of the network (:attr:`derive.networks.Network.assumptions`) that a matrix's columns (rows) sum
  to zero, 𝟏ᵀX̂ = 0, removes a term;
* a factor shared by every term comes out: 𝟏v ⊙ A + 𝟏v ⊙ B = 𝟏v ⊙ (A + B) (:data:`FACTOR_BROADCAST`).

The stage X̂ = C ⊙ (𝟏σ)^∘−1 is named back where C meets a negative power of 𝟏σ (C ⊙ 𝟏σ^∘−2 =
X̂ ⊙ 𝟏σ^∘−1).  :func:`broadcast_steps` writes the steps that take a sum-over-uses gradient there.
Every function returns its input unchanged where it does not apply.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import sympy
from sympy import Eq, MatAdd, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, ZeroMatrix
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from derive.fold import NAME_STAGE
from derive.laws import Gradient, Laws, matrices
from derive.rules import Rule
from derive.simplify import scale, split_coeff

__all__ = ["BROADCAST_SUM", "COLS_SUM_TO_ZERO", "FACTOR_BROADCAST", "ROWS_SUM_TO_ZERO", "broadcast_steps",
           "normalise"]

_ROW, _COL, _MAT = 0, 1, 2   # where a factor sits in a term


@dataclass
class _Term:
    coeff: sympy.Expr
    parts: tuple[dict, dict, dict] = field(default_factory=lambda: ({}, {}, {}))

    def key(self) -> tuple:
        return tuple(frozenset(p.items()) for p in self.parts)

    def times(self, other: _Term) -> _Term:
        parts = tuple(dict(p) for p in self.parts)
        for mine, theirs in zip(parts, other.parts):
            for b, q in theirs.items():
                mine[b] = mine.get(b, sympy.Integer(0)) + q
                if mine[b] == 0:
                    del mine[b]
        return _Term(self.coeff * other.coeff, parts)

    def power(self, p: sympy.Expr) -> _Term | None:
        if not (p.is_integer or self.coeff.is_positive):
            return None
        return _Term(self.coeff ** p, tuple({b: q * p for b, q in part.items()} for part in self.parts))


@dataclass
class _Context:
    zeros: frozenset | dict = frozenset()   # (_ROW, S): 𝟏ᵀS = 0, the columns of S sum to zero; (_COL, S): S𝟏 = 0
    hats: tuple = ()                    # (S, A, want): the stage S = A ⊙ broadcasts^∘want
    used: list = field(default_factory=list)   # the rule keys of the facts that removed a term


def _opaque(e: MatrixExpr) -> _Term:
    r, c = e.shape
    where = _ROW if r == 1 and c != 1 else _COL if c == 1 and r != 1 else _MAT
    parts: tuple[dict, dict, dict] = ({}, {}, {})
    parts[where][e] = sympy.Integer(1)
    return _Term(sympy.Integer(1), parts)


def _opaque_sum(terms: list[_Term], shape: tuple) -> _Term:
    """The sum ``terms`` as one factor, with one sign for 𝟏 − T and T − 𝟏 (the first term by name positive)."""
    terms = sorted(terms, key=lambda t: str(t.key()))
    sign = -1 if terms[0].coeff.is_negative else 1
    t = _opaque(MatAdd(*[_build(_Term(sign * x.coeff, x.parts), shape) for x in terms]))
    return _Term(sympy.Integer(sign), t.parts)


def _combine(terms: list[_Term]) -> list[_Term]:
    out: dict[tuple, _Term] = {}
    for t in terms:
        k = t.key()
        out[k] = _Term(out[k].coeff + t.coeff, t.parts) if k in out else t
    return [t for t in out.values() if t.coeff != 0]


def _name(t: _Term, ctx: _Context) -> _Term:
    """C ⊙ (𝟏σ)^∘q = X̂ ⊙ (𝟏σ)^∘(q+1) for a stage X̂ = C ⊙ (𝟏σ)^∘−1 (q ≤ −1)."""
    for S, A, want in ctx.hats:
        mats = t.parts[_MAT]
        if mats.get(A) != 1 or not all(
                (q := t.parts[w].get(b)) is not None and (q / p).is_positive and abs(q) >= abs(p)
                for (w, b), p in want.items()):
            continue
        parts = tuple(dict(p) for p in t.parts)
        del parts[_MAT][A]
        parts[_MAT][S] = parts[_MAT].get(S, sympy.Integer(0)) + 1
        for (w, b), p in want.items():
            parts[w][b] -= p
            if parts[w][b] == 0:
                del parts[w][b]
        t = _Term(t.coeff, parts)
    return t


def _sum_out(terms: list[_Term], shape: tuple, axis: int, ctx: _Context) -> list[_Term]:
    """𝟏ᵀM (axis _ROW: the row vector of column sums) or M𝟏 (axis _COL) of the sum ``terms``: the factors
    broadcast along the summed direction come out, 𝟏ᵀ(A ⊙ 𝟏v) = (𝟏ᵀA) ⊙ v."""
    r, c = shape
    other = _COL if axis == _ROW else _ROW
    out = []
    for t in terms:
        rest = _Term(sympy.Integer(1), tuple({} if w == axis else dict(p) for w, p in enumerate(t.parts)))
        parts: tuple[dict, dict, dict] = ({}, {}, {})
        parts[axis].update(t.parts[axis])
        if not rest.parts[other] and not rest.parts[_MAT]:
            out.append(_Term(t.coeff * (r if axis == _ROW else c), parts))
            continue
        inner = _build(rest, shape)
        if (axis, inner) in ctx.zeros:
            ctx.used.append((axis, inner))
            continue
        base = MatMul(OneMatrix(1, r), inner) if axis == _ROW else MatMul(inner, OneMatrix(c, 1))
        parts[axis][base] = parts[axis].get(base, sympy.Integer(0)) + 1
        out.append(_Term(t.coeff, parts))
    return out


def _parse(e: MatrixExpr, ctx: _Context) -> list[_Term]:
    terms = _parse_node(e, ctx)
    return _combine([_name(t, ctx) for t in terms]) if ctx.hats else _combine(terms)


def _parse_node(e: MatrixExpr, ctx: _Context) -> list[_Term]:
    if isinstance(e, ZeroMatrix):
        return []
    if isinstance(e, OneMatrix):
        return [_Term(sympy.Integer(1))]
    if isinstance(e, MatAdd):
        return [t for a in e.args for t in _parse(a, ctx)]
    if isinstance(e, HadamardProduct):
        out = [_Term(sympy.Integer(1))]
        for a in e.args:
            terms = _parse(a, ctx)
            if len(terms) > 1 and not any(t.parts[_ROW] or t.parts[_COL] for t in terms):
                terms = [_opaque_sum(terms, a.shape)]   # G ⊙ (𝟏 − tanh(B)∘²): a sum with no broadcast stays a factor
            out = [x.times(y) for x in out for y in terms]
        return out
    if isinstance(e, HadamardPower):
        base = _parse(e.base, ctx)
        raised = base[0].power(e.exp) if len(base) == 1 else None
        return [raised] if raised is not None else [_opaque(e)]
    if isinstance(e, MatMul):
        return _parse_product(e, ctx)
    return [_opaque(e)]


def _parse_product(e: MatMul, ctx: _Context) -> list[_Term]:
    """c·M, 𝟏v (v down the rows), u𝟏ᵀ (u along the columns), 𝟏ᵀM and M𝟏 (the sums of M's columns, rows)."""
    r, c = e.shape
    k, core = split_coeff(e)
    if k != 1:
        return [_Term(k * t.coeff, t.parts) for t in _parse(core, ctx)]
    L = list(core.args) if isinstance(core, MatMul) else [core]
    first, last = L[0], L[-1]
    if len(L) > 1 and isinstance(first, OneMatrix):
        rest = L[1] if len(L) == 2 else MatMul(*L[1:])
        if first.shape[1] == 1 and r != 1 and c != 1:
            return _parse(rest, ctx)
        if r == 1 and first.shape[1] != 1 and c != 1:
            return _sum_out(_parse(rest, ctx), rest.shape, _ROW, ctx)
    if len(L) > 1 and isinstance(last, OneMatrix):
        rest = L[0] if len(L) == 2 else MatMul(*L[:-1])
        if last.shape[0] == 1 and r != 1 and c != 1:
            return _parse(rest, ctx)
        if c == 1 and last.shape[0] != 1 and r != 1:
            return _sum_out(_parse(rest, ctx), rest.shape, _COL, ctx)
    return [_opaque_product(L)]


def _opaque_product(factors: list[MatrixExpr]) -> _Term:
    """A product AB as one factor, the numbers and signs of its factors in front: [(T − 𝟏) ⊙ C]Vᵀ is
    −[(𝟏 − T) ⊙ C]Vᵀ, one form wherever it comes from."""
    coeff, args = sympy.Integer(1), []
    for f in factors:
        if isinstance(f, (HadamardProduct, MatAdd)):
            terms = _parse(f, _Context())
            t = terms[0] if len(terms) == 1 else _opaque_sum(terms, f.shape) if terms else None
            if t is not None:
                coeff *= t.coeff
                f = _build(_Term(sympy.Integer(1), t.parts), f.shape)
        args.append(f)
    return _Term(coeff, _opaque(MatMul(*args)).parts)


# SymPy's str of a product is slow (it negates the product to see its sign) and sorting asks again
_text = lru_cache(maxsize=4096)(str)


def _factors(part: dict) -> list[MatrixExpr]:
    # γ ⊙ σ^∘−1 ⊙ 𝟏ᵀG: names before sums, positive powers first
    order = sorted(part.items(), key=lambda i: (isinstance(i[0], MatMul), bool(i[1].is_negative), _text(i[0])))
    return [b if q == 1 else HadamardPower(b, q) for b, q in order]


def _broadcast(part: dict, shape: tuple, axis: int) -> list[MatrixExpr]:
    """The factors of ``part`` as one broadcast: 𝟏v down the rows (axis _ROW), u𝟏ᵀ along the columns."""
    if not part:
        return []
    v = _factors(part)
    r, c = shape
    if (r, c)[axis] == 1:   # already of the shape: a row (column) vector's own factors
        return v
    v0 = v[0] if len(v) == 1 else HadamardProduct(*v)
    inner = v0.args if isinstance(v0, MatMul) else (v0,)   # 𝟏(𝟏ᵀG) is 𝟏𝟏ᵀG
    return [MatMul(OneMatrix(r, 1), *inner) if axis == _ROW else MatMul(*inner, OneMatrix(1, c))]


def _build(t: _Term, shape: tuple) -> MatrixExpr:
    factors = (_factors(t.parts[_MAT]) + _broadcast(t.parts[_ROW], shape, _ROW)
               + _broadcast(t.parts[_COL], shape, _COL))
    core = OneMatrix(*shape) if not factors else factors[0] if len(factors) == 1 else HadamardProduct(*factors)
    return scale(t.coeff, core)


def _build_sum(terms: list[_Term], shape: tuple) -> MatrixExpr:
    if not terms:
        return ZeroMatrix(*shape)
    built = [_build(t, shape) for t in sorted(terms, key=lambda t: not t.coeff.is_positive)]
    return built[0] if len(built) == 1 else MatAdd(*built)


def _common(terms: list[_Term]) -> _Term | None:
    """The broadcast factors every term holds (to the power of least size, one sign) and a number to pull
    out (1/n of nG − …), or None."""
    if len(terms) < 2:
        return None
    shared: tuple[dict, dict, dict] = ({}, {}, {})
    for w in (_ROW, _COL):
        for b, q in terms[0].parts[w].items():
            qs = [t.parts[w].get(b) for t in terms]
            if all(x is not None and (sympy.sympify(x) / q).is_positive for x in qs):
                shared[w][b] = min(qs, key=abs)
    k = sympy.Integer(1)
    for c0 in {sympy.Abs(t.coeff): None for t in terms}:
        if c0 != 1 and all(sympy.fraction(sympy.together(t.coeff / c0))[1] == 1 for t in terms):
            k = c0
            break
    if not shared[_ROW] and not shared[_COL] and k == 1:
        return None
    return _Term(k, shared)


def normalise(e: MatrixExpr, zeros: Sequence = (), hats: Sequence = (), factor: bool = False,
              used: list | None = None) -> MatrixExpr:
    """``e`` as a sum of broadcast terms, the broadcasts taken out of every column (row) sum; ``zeros``:
    ``(axis, S)`` for 𝟏ᵀS = 0 (axis 0) or S𝟏 = 0 (axis 1); ``hats``: ``(S, A, want)`` stages to name;
    ``factor``: the shared broadcast factor taken out.  ``used`` collects the zero facts that applied.

    >>> from sympy import MatrixSymbol
    >>> A, g = MatrixSymbol("A", 4, 3), MatrixSymbol("g", 1, 3)
    >>> from derive.notation import in_notation
    >>> print(in_notation(normalise(MatMul(OneMatrix(1, 4), HadamardProduct(A, MatMul(OneMatrix(4, 1), g))))))
    g ⊙ (𝟏₄ᵀA)
    >>> print(in_notation(normalise(MatMul(OneMatrix(1, 4), A), zeros=[(0, A)])))
    0
    """
    ctx = _Context(zeros=zeros if isinstance(zeros, dict) else frozenset(zeros), hats=tuple(hats))
    terms = _parse(e, ctx)
    if used is not None:
        used.extend(ctx.used)
    if factor:
        shared = _common(terms)
        if shared is not None:
            inner = [t.times(_Term(1 / shared.coeff, tuple({b: -q for b, q in p.items()} for p in shared.parts)))
                     for t in terms]
            outside = _build(_Term(sympy.Integer(1), shared.parts), e.shape)
            body = _build_sum(inner, e.shape)
            core = body if isinstance(outside, OneMatrix) else HadamardProduct(outside, body)
            return scale(shared.coeff, core)
    return _build_sum(terms, e.shape)


# ----------------------------------------------------------------------------- the facts and the rules

def zero_facts(assumptions: Sequence) -> dict:
    """(axis, S) → rule key, for the assumptions 𝟏ᵀS = 0 (axis 0) and S𝟏 = 0 (axis 1).

    >>> from derive.layers import layer
    >>> Z, g = MatrixSymbol("Z", 4, 3), MatrixSymbol("g", 1, 3)
    >>> sorted((axis, S.name, rule) for (axis, S), rule in zero_facts(layer("layernorm").expand("Y", Z, g, g)
    ...                                                                 .assumptions).items())
    [(1, 'Y_C', 'rows_sum_to_zero'), (1, 'Y_hat', 'rows_sum_to_zero')]
    """
    out = {}
    for pattern, replacement, rule in assumptions:
        if not isinstance(replacement, ZeroMatrix) or len(pattern) != 2:
            continue
        a, b = pattern
        if isinstance(a, OneMatrix) and a.shape[0] == 1:
            out[(_ROW, b)] = rule
        elif isinstance(b, OneMatrix) and b.shape[1] == 1:
            out[(_COL, a)] = rule
    return out


def stage_hats(stages: Sequence[tuple[MatrixSymbol, MatrixExpr]]) -> tuple:
    """The stages S = A ⊙ (broadcasts)^∘−p (X̂ = C ⊙ (𝟏σ)^∘−1) as :func:`normalise` names them.

    >>> from derive.layers import layer
    >>> Z, g = MatrixSymbol("Z", 4, 3), MatrixSymbol("g", 1, 3)
    >>> [(S.name, A.name) for S, A, _ in stage_hats(layer("batchnorm").expand("Y", Z, g, g).stages)]
    [('Y_hat', 'Y_C')]
    """
    out = []
    for S, definition in stages:
        if not isinstance(definition, HadamardProduct):
            continue
        terms = _parse(definition, _Context())
        if len(terms) != 1 or terms[0].coeff != 1:
            continue
        parts = terms[0].parts
        if len(parts[_MAT]) != 1 or not (parts[_ROW] or parts[_COL]):
            continue
        (A, q), = parts[_MAT].items()
        want = {(w, b): p for w in (_ROW, _COL) for b, p in parts[w].items()}
        if q == 1 and all(p.is_negative for p in want.values()):
            out.append((S, A, want))
    return tuple(out)


_A, _C = matrices("A C")   # n×n, as every law's matrices (the law tests set n)
_n = _d = _A.shape[0]
_v, _u = MatrixSymbol("v", 1, _d), MatrixSymbol("u", _n, 1)
_1n, _1d = OneMatrix(_n, 1), OneMatrix(_d, 1)

BROADCAST_SUM = Rule(
    "broadcast_sum",
    Laws(Eq(MatMul(_1n.T, HadamardProduct(_A, MatMul(_1n, _v))), HadamardProduct(MatMul(_1n.T, _A), _v),
            evaluate=False),
         Eq(MatMul(HadamardProduct(_A, MatMul(_u, _1d.T)), _1d), HadamardProduct(MatMul(_A, _1d), _u),
            evaluate=False)),
    {"en": "expand; a broadcast factor comes out of a column (row) sum",
     "zh": "展开；广播因子提到列（行）和之外"},
    normalise)
COLS_SUM_TO_ZERO = Rule(
    "cols_sum_to_zero", Eq(MatMul(_1n.T, _C), ZeroMatrix(1, _d), evaluate=False),
    {"en": "the columns of the centred matrix sum to zero (so do those of the normalised one)",
     "zh": "中心化矩阵的各列之和为零（归一化后的矩阵亦然）"})
ROWS_SUM_TO_ZERO = Rule(
    "rows_sum_to_zero", Eq(MatMul(_C, _1d), ZeroMatrix(_n, 1), evaluate=False),
    {"en": "the rows of the centred matrix sum to zero (so do those of the normalised one)",
     "zh": "中心化矩阵的各行之和为零（归一化后的矩阵亦然）"})
FACTOR_BROADCAST = Rule(
    "factor_broadcast",
    Eq(MatAdd(HadamardProduct(MatMul(_1n, _v), _A), HadamardProduct(MatMul(_1n, _v), _C)),
       HadamardProduct(MatMul(_1n, _v), MatAdd(_A, _C)), evaluate=False),
    {"en": "take out the common factor", "zh": "提取公因子"},
    lambda e: normalise(e, factor=True))


def _normalisation_stages(stages: Sequence, facts: dict, hats: tuple) -> set:
    """The stages from a centred matrix to its normalised one (C, var, σ, X̂), whose gradients are
    substituted; not those after X̂ (the layer's output and what follows: G stays G)."""
    named = {S for _, S in facts} | {S for S, _, _ in hats}
    normalised = {S for S, _, _ in hats}
    family: set = set()
    for S, definition in stages:
        holds = definition.atoms(MatrixSymbol)
        if S in named or (holds & family and not holds & normalised):
            family.add(S)
    return family


def _size(e: sympy.Basic) -> int:
    return sum(1 for _ in sympy.preorder_traversal(e))


def broadcast_steps(total: MatrixExpr, upstream: dict, stages: Sequence,
                    assumptions: Sequence) -> list[tuple[str, MatrixExpr]]:
    """The steps (rule key, ∂f/∂v) after a sum over uses that bring ∂f/∂v to its compact form, for a
    network whose assumptions say that the columns (rows) of a matrix sum to zero; [] otherwise.

    ``upstream``: the known gradients, by variable, substituted for the ∂f/∂Z symbols of ``total``.
    The steps are kept only when a fact removed a term and the result is no larger than ``total``
    with the gradients substituted.

    >>> A = MatrixSymbol("A", 4, 3)
    >>> broadcast_steps(A - MatMul(sympy.Rational(1, 4), OneMatrix(4, 1), OneMatrix(1, 4), A), {}, (), ())
    []
    """
    facts = zero_facts(assumptions)
    if not facts:
        return []
    steps: list[tuple[str, MatrixExpr]] = []
    e = total
    hats = stage_hats(stages)
    family = _normalisation_stages(stages, facts, hats)
    for _ in range(len(family)):   # ∂f/∂C, ∂f/∂σ …, each in terms of the next, down to ∂f/∂X̂
        symbols = {g: upstream[g.wrt] for g in e.atoms(Gradient) if g.wrt in family and g.wrt in upstream}
        if not symbols:
            break
        e = e.xreplace(symbols)
    if e != total:
        steps.append(("substitute", e))   # derive.steps.SUBSTITUTE
    expanded = normalise(e)
    used: list = []
    zeroed = normalise(e, zeros=facts, used=used)
    named = normalise(e, zeros=facts, hats=hats)
    factored = normalise(e, zeros=facts, hats=hats, factor=True)
    if not used or _size(factored) > _size(e):
        return []
    for rule, x in ((BROADCAST_SUM.key, expanded), (facts[used[0]], zeroed), (NAME_STAGE.key, named),
                    (FACTOR_BROADCAST.key, factored)):
        if x != (steps[-1][1] if steps else total):
            steps.append((rule, x))
    return steps
