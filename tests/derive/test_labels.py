"""Rule labels a teacher would sign, across every section of the seed network (both readings of the
bias), mlp networks, networks whose stages fan out and the Cookbook cases:

* d(−A) = −dA and d(λA) = λ dA are "constant multiple", never "product rule";
* a line that only regroups (drops brackets, re-associates) the line above is not a step;
* a given kind of rewrite always gets the same rule: combining like terms is always "collect terms"
  (tr(AᵀdY) + tr(dYᵀA) = 2 tr(AᵀdY) is labelled one way in ∂f/∂Y and in ∂f/∂Ypred), and the same
  local rewrite (the changed part of the line, constants abstracted) never gets two rules.

The kinds are recognised here from the lines themselves, not from the engine's code.
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import pytest
import sympy
from sympy import Lambda, MatAdd, MatMul, MatrixExpr, MatrixSymbol, Trace
from sympy.matrices.expressions.hadamard import HadamardProduct

import derive
from derive.differential import MatrixDifferential, ScalarDifferential, has_differential
from derive.networks import mlp
from derive.render.printer import math_text
from derive.steps import F, Derivation
from tests.derive.test_cookbook import CASES, _setup

DF = ScalarDifferential(F)
_D = (MatrixDifferential, ScalarDifferential)


def _sections(name: str, net: derive.Network) -> list[tuple[str, Derivation]]:
    """Every section, and for a variable with several uses each use's derivation."""
    out = []
    for s in derive.backprop(net).sections:
        out.append((f"{name}:{s.wrt.name}", s))
        out += [(f"{name}:{s.wrt.name}:use{i}", c) for i, c in enumerate(s.contributions)]
    return out


@lru_cache(maxsize=1)
def corpus() -> tuple[tuple[str, Derivation], ...]:
    from tests.derive.test_backprop import NAMED

    out = []
    for bias in ("row", "full"):
        out += _sections(f"seed-{bias}", derive.seed_network(bias=bias))
    for i, net in enumerate([
            mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy", weight_decay="lambda"),
            mlp([3, 5, 4, 2], activation=["relu", "softplus"], loss="mse"),
            mlp([3, 4, 2], activation="sigmoid", bias="full", weight_decay=0.01)]):
        out += _sections(f"mlp{i}", net)
    for name, (build, _) in NAMED.items():  # stage graphs with fan-out: tied weights, a skip, an RNN
        out += _sections(name, build()[0])
    for case in CASES:
        if not case.xfail:
            _, syms, _ = _setup(case)
            out.append((f"cookbook:{case.id}", derive.derivation(case.f(syms), syms[case.wrt])))
    return tuple(out)


def _df_pairs():
    """(section name, wrt, line before, line after, rule) for consecutive lines of every df chain."""
    for name, d in corpus():
        for s0, s1 in zip(d.steps, d.steps[1:]):
            if s0.lhs == DF and s1.lhs == DF:
                yield name, d.wrt, s0.rhs, s1.rhs, s1.rule


# --- constant multiple -----------------------------------------------------------------------

def _outermost_differentials(e: sympy.Basic) -> set[sympy.Basic]:
    if isinstance(e, _D):
        return {e}
    return set().union(*[_outermost_differentials(a) for a in e.args]) if e.args else set()


def _is_constant_multiple(e: sympy.Basic, X: MatrixSymbol) -> bool:
    """λA or λa with λ a scalar free of X and a single factor that holds X."""
    if isinstance(e, MatMul):
        scalars = [a for a in e.args if not isinstance(a, MatrixExpr)]
        mats = [a for a in e.args if isinstance(a, MatrixExpr)]
        return len(mats) == 1 and bool(scalars) and not any(s.has(X) for s in scalars)
    if isinstance(e, sympy.Mul):
        return sum(1 for a in e.args if a.has(X)) == 1
    return False


def test_constant_multiple_is_its_own_rule() -> None:
    seen = 0
    for name, X, before, after, rule in _df_pairs():
        if not rule.startswith("d_"):
            continue
        expanded = _outermost_differentials(before) - _outermost_differentials(after)
        constant = [_is_constant_multiple(e.arg, X) for e in expanded]
        assert expanded, (name, rule)
        if all(constant):
            seen += 1
            assert rule == "d_constant_multiple", (name, math_text(before), rule)
        else:
            assert rule != "d_constant_multiple", (name, math_text(before))
    assert seen >= 10


def test_seed_ypred_section_names_the_constant_multiple() -> None:
    ypred = derive.backprop(derive.seed_network()).section("Ypred")
    steps = {math_text(s.rhs): s.rule for s in ypred.steps}
    assert steps["tr((-dYpred)ᵀ(Y - Ypred) - (Y - Ypred)ᵀ dYpred)"] == "d_constant_multiple"
    assert [s.rule for s in ypred.steps].count("d_product") == 1  # d((Y − Ŷ)ᵀ(Y − Ŷ)) only


# --- no step that only regroups ----------------------------------------------------------------

def _flat(e: sympy.Basic) -> str:
    """``e`` with associative operations flattened, as text: regrouping does not change it."""
    if not e.args or isinstance(e, (MatrixSymbol, Lambda)):
        return sympy.srepr(e)
    assoc = (MatMul, MatAdd, HadamardProduct, sympy.Add, sympy.Mul)
    args: list[sympy.Basic] = []
    for a in e.args:
        if isinstance(e, assoc) and type(a) is type(e):
            args.extend(a.args)
        else:
            args.append(a)
    if isinstance(e, MatMul):  # scalar factors of a product, wherever they stand
        scalars = sympy.Mul(*[a for a in args if not isinstance(a, MatrixExpr)])
        parts = [sympy.srepr(scalars)] + [_flat(a) for a in args if isinstance(a, MatrixExpr)]
    else:
        parts = [_flat(a) for a in args]
    if isinstance(e, (MatAdd, sympy.Add, sympy.Mul)) and not isinstance(e, MatMul):
        parts.sort()
    return f"{type(e).__name__}({', '.join(parts)})"


def test_no_line_only_regroups_the_line_above() -> None:
    for name, _, before, after, rule in _df_pairs():
        assert math_text(before) != math_text(after), (name, rule, math_text(after))
        assert _flat(before) != _flat(after), (name, rule, math_text(before), math_text(after))


def test_flat_sees_regrouping() -> None:
    A, B, C = (MatrixSymbol(s, 2, 2) for s in "ABC")
    assert _flat(MatMul(2, A, MatMul(B, C))) == _flat(MatMul(2, MatMul(A, B), C))
    assert _flat(MatMul(A, B)) != _flat(MatMul(B, A))


# --- one kind of rewrite, one rule -------------------------------------------------------------

def _traces_with_differential(e: sympy.Basic) -> int:
    return sum(1 for t in sympy.preorder_traversal(e) if isinstance(t, Trace) and has_differential(t))


def _is_scalar_times_trace(e: sympy.Basic) -> bool:
    if not isinstance(e, sympy.Mul):
        return False
    holding = [a for a in e.args if has_differential(a)]
    return len(holding) == 1 and isinstance(holding[0], Trace)


def _kind(before: sympy.Basic, after: sympy.Basic, rule: str) -> str | None:
    if not rule.startswith("d_") and _traces_with_differential(after) < _traces_with_differential(before):
        return "combine terms"  # tr(A dX) + tr(A dX) = 2 tr(A dX); tr(A dX) + tr(B dX) = tr((A + B) dX)
    if _is_scalar_times_trace(before) and isinstance(after, Trace):
        return "scalar into the trace"  # c tr(A dX) = tr(cA dX)
    return None


def test_each_kind_of_rewrite_gets_one_rule() -> None:
    rules: dict[str, set[str]] = defaultdict(set)
    for _, _, before, after, rule in _df_pairs():
        kind = _kind(before, after, rule)
        if kind:
            rules[kind].add(rule)
    assert dict(rules) == {"combine terms": {"collect"}, "scalar into the trace": {"trace_linearity"}}


def _region(a: sympy.Basic, b: sympy.Basic) -> tuple[sympy.Basic, sympy.Basic]:
    """The smallest parts of two lines that hold all their differences."""
    while (type(a) is type(b) and a.args and len(a.args) == len(b.args)
           and not isinstance(a, (MatrixSymbol, Lambda, *_D))):
        differ = [i for i, (x, y) in enumerate(zip(a.args, b.args)) if x != y]
        if len(differ) != 1:
            break
        a, b = a.args[differ[0]], b.args[differ[0]]
    return a, b


def _pattern(a: sympy.Basic, b: sympy.Basic, X: MatrixSymbol) -> str:
    """``a → b`` with every sub-expression free of X written as a placeholder (the same one for
    the same sub-expression): the shape of the rewrite."""
    names: dict[sympy.Basic, str] = {}

    def walk(e: sympy.Basic) -> str:
        if e == X:
            return "X"
        if isinstance(e, _D):
            return f"d({walk(e.arg)})"
        if not e.has(X) and not has_differential(e) and not isinstance(e, sympy.Number):
            return names.setdefault(e, f"P{len(names)}")
        if not e.args:
            return str(e)
        return f"{type(e).__name__}({', '.join(walk(x) for x in e.args)})"

    return f"{walk(a)} -> {walk(b)}"


def test_the_same_rewrite_gets_the_same_rule_everywhere() -> None:
    rules: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for name, X, before, after, rule in _df_pairs():
        p = _pattern(*_region(before, after), X)
        rules[p].add(rule)
        where.setdefault((p, rule), name)
    conflicts = {p: {r: where[p, r] for r in rs} for p, rs in rules.items() if len(rs) > 1}
    assert not conflicts
    assert len(rules) > 300  # the corpus covers many rewrites


@pytest.mark.parametrize("wrt", ["Y", "Ypred"])
def test_like_terms_are_collected_the_same_way_in_both_sections(wrt: str) -> None:
    section = derive.backprop(derive.seed_network()).section(wrt)
    rules = [s.rule for s in section.steps]
    # … + tr(AᵀdY) + tr(AᵀdY) [trace of a transpose/linearity] → 2 tr(AᵀdY) [collect] → tr(2AᵀdY) [linearity]
    assert rules[-3:] == ["collect", "trace_linearity", "read_off"]
    assert rules.count("collect") == 1
