"""The trace-differential engine: f → df → Σ tr(Gᵢᵀ dX) → ∂f/∂X = G.

1. take the differential of f and expand it one rule at a time
   (``derive.differential``);
2. rewrite the traces with the named identities of ``derive.trace_rules`` until
   every term reads tr(Rᵢ dX);
3. collect the terms and read off G = Σ Rᵢᵀ, tidied (``derive.simplify``).
Every rewrite that changes the equation is a ``Step``, named by its rule's record.  Steps 1 and 2
are ``sympy.strategies`` combinators over the rules: the first rule that changes df (``do_one``),
again until none does (``exhaust``, bounded).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import sympy
from sympy import (
    Basic, Identity, Lambda, MatAdd, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace,
    ZeroMatrix,
)
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.strategies.core import do_one

from derive.differential import (
    DIFFERENTIAL_RULES, MatrixDifferential, ScalarDifferential, UnsupportedExpressionError,
    assemble, expand_once, has_differential, substitute,
)
from derive.dims import shape_text
from derive.elementwise import canonicalize
from derive.limits import (
    MAX_EQUATION_NODES, MAX_FUNCTION_DEPTH, MAX_STEPS, MAX_TANH_DEPTH, LimitError, check_numbers,
    function_depth, size_exceeds,
)
from derive.notation import in_notation
from derive.rules import Rule
from derive.simplify import COLLECT, SIMPLIFY_PRODUCT, scale, split_coeff, term_count, tidy, transpose
from derive.structure import (
    NOTES, READ_OFF_SCALAR, SCALAR_OUT_OF_TRACE, check_structure, scalar_coefficient, scalar_out_of_trace,
    structured_steps,
)
from derive.steps import DEFINITION, DIFFERENTIAL, SCALAR_AS_TRACE, F, Derivation, Gradient, Step
from derive.trace_rules import READ_OFF, TRACE_LINEARITY, TRACE_RULES, read_off
from derive.undefined import check_defined
from numeric import register_gradient, register_notation

__all__ = ["derivation", "derive_from", "gradient", "validate"]

_LEAF_CLASSES = (MatrixSymbol, OneMatrix, Identity, ZeroMatrix, sympy.Symbol, sympy.Number,
                 sympy.NumberSymbol, sympy.Dummy)
_MAX_STEPS = MAX_STEPS


def _shape_error(e: Basic, parts: list[MatrixExpr], what: str) -> ValueError:
    shapes = ", ".join(f"{p} ({shape_text(p.shape)})" for p in parts)
    return ValueError(f"non-conformable shapes in {type(e).__name__} {e}: {what}: {shapes}")


def _check_node(e: Basic) -> None:
    if isinstance(e, (*_LEAF_CLASSES, MatrixDifferential, ScalarDifferential)):
        return
    if e is sympy.I:
        raise UnsupportedExpressionError("complex values are not supported: the function contains the "
                                         "imaginary unit i = sqrt(-1)")
    if not any(cls in DIFFERENTIAL_RULES for cls in type(e).__mro__):
        supported = ", ".join(sorted(c.__name__ for c in DIFFERENTIAL_RULES))
        raise UnsupportedExpressionError(
            f"unsupported SymPy class {type(e).__name__} in {e}; supported: {supported}, "
            "MatrixSymbol, OneMatrix, Identity, ZeroMatrix and numbers")
    mats = [a for a in e.args if isinstance(a, MatrixExpr)]
    if isinstance(e, MatMul):
        for a, b in zip(mats, mats[1:]):
            if a.shape[1] != b.shape[0]:
                raise _shape_error(e, [a, b], "columns of the left factor must equal rows of the right")
    elif isinstance(e, (MatAdd, HadamardProduct)):
        if any(m.shape != mats[0].shape for m in mats):
            raise _shape_error(e, mats, "all terms must have the same shape")
    elif isinstance(e, Trace) and e.arg.shape[0] != e.arg.shape[1]:
        raise ValueError(f"trace of a non-square matrix {e.arg} ({shape_text(e.arg.shape)})")


def validate(f: Basic, X: MatrixSymbol) -> Basic:
    """Check ``f`` and ``X``; return f as a scalar (a 1×1 matrix becomes its trace).

    >>> from sympy import MatrixSymbol, Trace
    >>> X = MatrixSymbol("X", 4, 3)
    >>> validate(Trace(X.T * X), X)
    Trace(X.T*X)
    """
    if not isinstance(X, (MatrixSymbol, sympy.Symbol)):
        raise TypeError(f"the variable must be a sympy MatrixSymbol, got {type(X).__name__} {X!r} (or a Symbol "
                        "for a scalar variable)")
    if not isinstance(f, Basic):
        raise TypeError(f"f must be a SymPy expression, got {type(f).__name__}")
    if isinstance(f, MatrixExpr):
        if f.shape != (1, 1):
            raise TypeError(f"f must be scalar-valued, got a {shape_text(f.shape)} matrix expression {f}")
    elif not isinstance(f, sympy.Expr):
        raise TypeError(f"f must be a scalar SymPy expression, got {type(f).__name__}")
    names = {s.name: s for s in f.atoms(MatrixSymbol)}
    if isinstance(X, sympy.Symbol) and not f.has(X):
        raise ValueError(f"{X.name} does not appear in f")
    if isinstance(X, MatrixSymbol) and X not in names.values():
        if X.name in names:
            other = names[X.name]
            raise ValueError(f"{X.name} appears in f with shape {shape_text(other.shape)}, "
                             f"not {shape_text(X.shape)}")
        raise ValueError(f"{X.name} does not appear in f; f depends on {', '.join(sorted(names)) or 'nothing'}")
    _walk_check(f)
    _check_vectorized(f)
    _check_limits(f)
    check_defined(f)
    return canonicalize(f)


def _check_vectorized(f: Basic) -> None:
    """Refuse a scalar f through ⊗, vec, diag or K: their differentials have rules (for Jacobians,
    ``derive.jacobian``), but no trace identity brings tr(R (dX ⊗ B)) to tr(Gᵀ dX)."""
    from derive.kronecker import Commutation, Diag, Vec
    from sympy.matrices.expressions.kronecker import KroneckerProduct

    found = sorted({type(a).__name__ for a in f.atoms(KroneckerProduct, Vec, Diag, Commutation)})
    if found:
        raise UnsupportedExpressionError(
            f"the gradient of a function of {', '.join(found)} is not derived by traces; "
            "derive.jacobian differentiates these (d vec F = J d vec X)")


def _check_limits(f: Basic) -> None:
    """Refuse, before any work, a function whose derivation would not end in reasonable time
    (the limits of :mod:`derive.limits`)."""
    check_numbers(f)   # before canonicalize, which evaluates powers of numbers
    depth = function_depth(f)
    if depth > MAX_FUNCTION_DEPTH:
        raise LimitError(
            f"f nests {depth} functions (σ, exp, inv, det, powers …) inside one another; one derivation "
            f"takes at most {MAX_FUNCTION_DEPTH} (derive.limits.MAX_FUNCTION_DEPTH), because each level "
            "copies the levels inside it into df: name the inner levels as the stages of a "
            "derive.Network and derive them with derive.backprop")
    tanhs = function_depth(f, (sympy.tanh,))
    if tanhs > MAX_TANH_DEPTH:
        raise LimitError(
            f"f nests tanh {tanhs} deep; SymPy's tanh takes time exponential in that nesting, and one "
            f"derivation takes at most {MAX_TANH_DEPTH} (derive.limits.MAX_TANH_DEPTH): name the inner "
            "levels as the stages of a derive.Network and derive them with derive.backprop")


def _bounded(e: Basic) -> Basic:
    """``e``, an equation of the derivation, when it is within MAX_EQUATION_NODES."""
    size = size_exceeds(e, MAX_EQUATION_NODES)
    if size is not None:
        raise LimitError(
            f"the derivation grows past {MAX_EQUATION_NODES} terms in one equation "
            "(derive.limits.MAX_EQUATION_NODES): f is too large to derive in one piece; name its "
            "inner parts as the stages of a derive.Network and derive them with derive.backprop")
    return e


def _walk_check(e: Basic) -> None:
    _check_node(e)
    if isinstance(e, _LEAF_CLASSES):
        return
    for a in e.args:
        if not isinstance(a, Lambda):
            _walk_check(a)


@lru_cache(maxsize=128)   # each trace rule asks again for the same df until one changes it
def _trace_terms(df: Basic, innermost: bool = True) -> tuple[Trace, ...]:
    """The traces that hold a differential; with ``innermost``, only those with no such trace inside."""
    return tuple(t for t in df.atoms(Trace) if has_differential(t)
                 and not (innermost and any(isinstance(a, Trace) and has_differential(a)
                                            for a in t.arg.atoms(Trace))))


def gradient_form(G: MatrixExpr, dX: MatrixExpr) -> Trace:
    """tr(Gᵀ dX) written as a person would: scalar out front, transpose pushed into products."""
    c, core = split_coeff(G)
    Gt = transpose(core)
    left = [m for m in (Gt.args if isinstance(Gt, MatMul) else (Gt,)) if not isinstance(m, Identity)]
    return Trace(scale(c, MatMul(*left, dX) if left else dX))


def _replace_product(e: Basic, pattern: tuple[MatrixExpr, ...], replacement: MatrixExpr) -> Basic:
    """Replace the run of factors ``pattern`` inside any product of ``e``."""
    if not e.args or isinstance(e, (MatrixSymbol, Lambda)):
        return e
    args = [_replace_product(a, pattern, replacement) for a in e.args]
    if isinstance(e, MatMul):
        c, core = split_coeff(MatMul(*args))
        mats = list(core.args) if isinstance(core, MatMul) else [core]
        p = len(pattern)
        i = 0
        while i + p <= len(mats):
            if tuple(mats[i:i + p]) == pattern:
                mats[i:i + p] = [replacement]
            i += 1
        return scale(c, mats[0] if len(mats) == 1 else MatMul(*mats))
    return e.func(*args)


Assumption = tuple[tuple[MatrixExpr, ...], MatrixExpr, str]


def derive_from(df: Basic, X: MatrixSymbol, steps: list[Step],
                wrt: frozenset | None = None, assumptions: tuple[Assumption, ...] = ()) -> MatrixExpr:
    """Continue a derivation from ``df`` (which holds unevaluated differentials) to G.

    Appends the steps to ``steps`` and returns G.
    """
    wrt = wrt or frozenset({X})
    df = _expand_differentials(steps, wrt)(df)
    df = _rewrite_traces(steps)(df)
    if df == 0:  # the terms cancel (tr(AB) − tr(BᵀAᵀ)) or none holds dX: a zero gradient is a result
        steps.append(Step(READ_OFF.key, Gradient(F, X), ZeroMatrix(*X.shape)))
        return in_notation(ZeroMatrix(*X.shape))
    simpler = {t: s for t in _trace_terms(df)
               if _factors(s := Trace(SIMPLIFY_PRODUCT(t.arg))) != _factors(t)}
    if simpler:
        df = _advance(steps, SIMPLIFY_PRODUCT, substitute(df, simpler))
    G = _bounded(_collect(df, X))
    check_numbers(G)
    dX = MatrixDifferential(X)
    final = gradient_form(G, dX)
    if not isinstance(G, ZeroMatrix) and final != df and _flat(final) != _flat(df):
        # several terms tr(AᵢᵀdX) become one; a single c·tr(A dX) takes its scalar inside
        terms = len(_linear_terms(_expand(df)))
        steps.append(Step((COLLECT if terms > 1 else TRACE_LINEARITY).key, ScalarDifferential(F), final))
    for pattern, replacement, rule in assumptions:  # on the last line, before reading off: Y𝟏ₖ = 𝟏ₙ
        simpler = tidy(_replace_product(G, pattern, replacement))
        if simpler != G:
            G = simpler
            steps.append(Step(rule, ScalarDifferential(F), gradient_form(G, dX)))
    steps.append(Step(READ_OFF.key, Gradient(F, X), G))
    return in_notation(G)


def _exhaust(rule: Callable[[Basic], Basic], what: str) -> Callable[[Basic], Basic]:
    """``sympy.strategies.exhaust`` with a bound: ``rule`` until it changes nothing, a RuntimeError
    after 2 × _MAX_STEPS changes (a rewrite that never ends)."""
    def run(e: Basic) -> Basic:
        for _ in range(2 * _MAX_STEPS):
            new = rule(e)
            if new == e:
                return e
            e = new
        raise RuntimeError(f"{what} did not terminate")

    return run


def _expand_differentials(steps: list[Step], wrt: frozenset) -> Callable[[Basic], Basic]:
    """df → df with every differential at a leaf, one step per rule application (``expand_once``)."""
    def expand(df: Basic) -> Basic:
        out = expand_once(df, wrt)
        return df if out is None else _advance(steps, *out)

    return _exhaust(expand, "derivation")


def _on_traces(rule: Rule, innermost: bool, steps: list[Step]) -> Callable[[Basic], Basic]:
    """df → df with ``rule`` applied to every trace of df that holds the differential (only those
    with no such trace inside, with ``innermost``); a change is a step unless it only regroups."""
    def apply(df: Basic) -> Basic:
        changed = {t: r for t in _trace_terms(df, innermost) if (r := rule(t)) != t}
        if not changed:
            return df
        if all(_flat(r) == _flat(t) for t, r in changed.items()):
            return substitute(df, changed)  # only regrouped: not a step
        return _advance(steps, rule, substitute(df, changed))

    return apply


def _rewrite_traces(steps: list[Step]) -> Callable[[Basic], Basic]:
    """df → Σ cᵢ tr(Rᵢ dX): the first trace rule that changes df, again and again.  Innermost traces
    first; once they are done, the traces around them: tr(tr(dX)·AᵀB) = tr(dX)·tr(AᵀB)."""
    return _exhaust(do_one(*[_on_traces(rule, innermost, steps)
                             for innermost in (True, False) for rule in TRACE_RULES]), "trace rewriting")


def _advance(steps: list[Step], rule: Rule, raw: Basic) -> Basic:
    """Record the line ``raw`` that ``rule`` gave; if like terms in it then combine (tr A + tr A
    = 2 tr A), that is a line of its own, "collect terms", whichever rule made them alike.
    Returns the expression the derivation continues from."""
    dF = ScalarDifferential(F)
    combined = COLLECT(_bounded(raw))
    if term_count(combined) < term_count(raw):
        steps += [Step(rule.key, dF, raw), Step(COLLECT.key, dF, combined)]
    else:
        steps.append(Step(rule.key, dF, combined))
    if len(steps) > _MAX_STEPS:
        raise RuntimeError("derivation did not terminate")
    return combined


def _factors(t: Trace) -> tuple:
    c, core = split_coeff(t.arg)
    return c, (core.args if isinstance(core, MatMul) else (core,))


def _flat(e: Basic) -> Basic:
    """``e`` with products and sums flattened: two lines that differ only in grouping are the same line."""
    if not e.args or isinstance(e, (MatrixSymbol, Lambda)):
        return e
    return assemble(e, [_flat(a) for a in e.args])


def _expand(df: Basic) -> Basic:
    return sympy.expand(df, deep=False, mul=True, multinomial=False, power_exp=False, power_base=False,
                        log=False)


def _linear_terms(e: Basic) -> list[Basic]:
    """``e`` as a list of terms, products distributed over every sum that holds the differential:
    tr(BX)·(tr(AᵀdX) + 2tr(XᵀdX)) is two terms (an expand that does not go deep leaves it one)."""
    if isinstance(e, sympy.Add):
        return [t for a in e.args for t in _linear_terms(a)]
    if isinstance(e, sympy.Mul) and has_differential(e):
        out: list[Basic] = [sympy.Integer(1)]
        for factor in e.args:
            parts = _linear_terms(factor) if has_differential(factor) else [factor]
            out = [o * p for o in out for p in parts]
        return out
    return [e]


def _collect(df: Basic, X: MatrixSymbol) -> MatrixExpr:
    parts: list[MatrixExpr] = []
    for term in _linear_terms(_expand(df)):
        if term == 0:
            continue
        traces = [a for a in sympy.Mul.make_args(term) if isinstance(a, Trace) and has_differential(a)]
        coeff = sympy.Mul(*[a for a in sympy.Mul.make_args(term) if a not in traces])
        if len(traces) != 1 or has_differential(coeff):
            raise RuntimeError(f"could not bring the term {term} into the form tr(Gᵀ dX)")
        G = read_off(traces[0])
        if G is None:
            raise RuntimeError(f"could not bring the term {term} into the form tr(Gᵀ dX)")
        parts.append(scale(coeff, G))
    if not parts:
        return ZeroMatrix(*X.shape)
    G = tidy(MatAdd(*parts)) if len(parts) > 1 else tidy(parts[0])
    if G.shape != X.shape:
        raise RuntimeError(f"internal error: gradient shape {G.shape} differs from {X} {X.shape}")
    return G


def derivation(f: Basic, X: MatrixSymbol | sympy.Symbol, assumptions: tuple[Assumption, ...] = (),
               structure: str | None = None) -> Derivation:
    """The step-by-step derivation of ∂f/∂X by trace differentials.

    ``structure="symmetric"`` (or ``"diagonal"``) derives the gradient of a symmetric (diagonal) X:
    the unconstrained G, then its projection sym(G) (I ⊙ G) with a step and a note that say why
    (:mod:`derive.structure`).  A sympy ``Symbol`` λ as X gives df = g dλ ⇒ ∂f/∂λ = g.

    >>> from sympy import MatrixSymbol
    >>> from derive import frobenius_sq
    >>> X, A = MatrixSymbol("X", 4, 3), MatrixSymbol("A", 4, 3)
    >>> dv = derivation(frobenius_sq(X - A), X)
    >>> [s.rule for s in dv.steps][:3]
    ['definition', 'differential', 'd_trace']
    >>> dv.result
    2(X - A)
    """
    return _derivation(*_cache_key(f, X, assumptions), structure)


def _cache_key(f: Basic, X: MatrixSymbol, assumptions) -> tuple:
    if not isinstance(f, Basic) or not isinstance(X, (MatrixSymbol, sympy.Symbol)):
        validate(f, X)  # the TypeError naming the argument, before the cache meets an unhashable one
    return f, X, tuple(assumptions)


@lru_cache(maxsize=256)
def _derivation(f: Basic, X: MatrixSymbol | sympy.Symbol, assumptions: tuple = (),
                structure: str | None = None) -> Derivation:
    if structure is not None:
        check_structure(X, structure)
    f = validate(f, X)
    steps: list[Step] = [Step(DEFINITION.key, F, f)]
    if isinstance(f, MatrixExpr):
        f = Trace(f)
        steps.append(Step(SCALAR_AS_TRACE.key, F, f))
    df = ScalarDifferential(f)
    steps.append(Step(DIFFERENTIAL.key, ScalarDifferential(F), df))
    if isinstance(X, sympy.Symbol):
        g = _derive_scalar(df, X, steps)
        return Derivation(function=f, wrt=X, steps=tuple(steps), result=g)
    G = derive_from(df, X, steps, assumptions=assumptions)
    if structure is None:
        return Derivation(function=f, wrt=X, steps=tuple(steps), result=G)
    more = [Step(key, Gradient(F, X), rhs) for key, rhs in structured_steps(G, X, structure)]
    return Derivation(function=f, wrt=X, steps=(*steps, *more), result=in_notation(more[-1].rhs),
                      notes=(NOTES[structure],))


def _derive_scalar(df: Basic, lam: sympy.Symbol, steps: list[Step]) -> Basic:
    """df → g dλ ⇒ ∂f/∂λ = g, for a scalar variable λ (:mod:`derive.structure`)."""
    df = _expand_differentials(steps, frozenset({lam}))(df)
    df = _rewrite_traces(steps)(df)
    out = substitute(df, {t: scalar_out_of_trace(t, lam) for t in _trace_terms(df, innermost=False)})
    if out != df:
        df = _advance(steps, SCALAR_OUT_OF_TRACE, out)
    g = tidy(scalar_coefficient(df, lam))
    check_numbers(g)
    final = sympy.Mul(g, ScalarDifferential(lam), evaluate=False)
    if final != df:
        steps.append(Step(COLLECT.key, ScalarDifferential(F), final))
    steps.append(Step(READ_OFF_SCALAR.key, Gradient(F, lam), g))
    return in_notation(g)


def gradient(f: Basic, X: MatrixSymbol | sympy.Symbol, assumptions: tuple[Assumption, ...] = (),
             structure: str | None = None) -> MatrixExpr:
    """∂f/∂X: the G with df = tr(Gᵀ dX), of the shape of X; with ``structure`` ("symmetric",
    "diagonal") the gradient in the space of such matrices (sym(G), I ⊙ G); for a Symbol λ, ∂f/∂λ.

    >>> from sympy import MatrixSymbol, Trace
    >>> X, A = MatrixSymbol("X", 4, 3), MatrixSymbol("A", 3, 4)
    >>> gradient(Trace(A * X), X)
    Aᵀ
    >>> S = MatrixSymbol("S", 4, 4)
    >>> gradient(Trace(A * S * A.T), S, structure="symmetric")
    AᵀA
    """
    return _derivation(*_cache_key(f, X, assumptions), structure).result


def _notation(e: Basic) -> str:
    from derive.render.printer import math_text

    return math_text(e)


# numeric.check_gradient checks this gradient when it is given none, and kernels' docstrings are
# written in tracegrad's notation (numeric imports nothing from derive)
register_gradient(gradient)
register_notation(_notation)
