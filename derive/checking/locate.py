"""Where a wrong answer first differs along the chain from the loss, and a small counterexample."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations
from itertools import product as cartesian

import mpmath
import numpy as np
import sympy
from sympy import (
    MatAdd, MatMul, MatrixExpr, MatrixSymbol, Transpose,
)
from sympy.matrices.expressions.hadamard import HadamardProduct

from derive.checking.evaluate import Evaluator, compare
from derive.checking.fit import common_ratios, part_factor
from derive.checking.problem import Draw, Problem, draw_data, formula_text


def linear_parts(A: MatrixExpr) -> list[tuple[MatrixExpr, sympy.Expr]]:
    """Parts of ``A`` that enter it linearly, each with the scalar ``A`` multiplies it by.

    >>> from sympy import MatrixSymbol, MatMul
    >>> P, Q, R = MatrixSymbol("P", 2, 3), MatrixSymbol("Q", 3, 4), MatrixSymbol("R", 4, 2)
    >>> [(str(s), k) for s, k in linear_parts(MatMul(2, P, Q, R))][:3]
    [('2*P*Q*R', 1), ('P', 2), ('P*Q', 2)]
    """
    out: list[tuple[MatrixExpr, sympy.Expr]] = []
    seen: set = set()

    def add(S: MatrixExpr, kappa: sympy.Expr) -> None:
        if (S, kappa) not in seen:
            seen.add((S, kappa))
            out.append((S, kappa))

    def walk(e: MatrixExpr, kappa: sympy.Expr) -> None:
        add(e, kappa)
        if isinstance(e, Transpose):
            walk(e.arg, kappa)
        elif isinstance(e, MatMul):
            scalar = sympy.Mul(*[a for a in e.args if not isinstance(a, MatrixExpr)])
            mats = [a for a in e.args if isinstance(a, MatrixExpr)]
            k2 = kappa * scalar
            for i in range(len(mats)):
                for j in range(i + 1, len(mats) + 1):
                    if j - i == 1:
                        walk(mats[i], k2)
                    elif j - i < len(mats) or scalar != 1:
                        add(MatMul(*mats[i:j]), k2)
        elif isinstance(e, (MatAdd, HadamardProduct)):
            for a in e.args:
                walk(a, kappa)
            if 2 < len(e.args) <= 6:
                for r in range(2, len(e.args)):
                    for sub in combinations(e.args, r):
                        add(type(e)(*sub), kappa)

    walk(A, sympy.Integer(1))
    return out


def chain(problem: Problem, X: MatrixSymbol) -> list[MatrixSymbol]:
    """The stages whose value depends on ``X``, from the loss down: the gradients a correct answer
    passes through on its way to ∂f/∂X."""
    depends: dict[MatrixSymbol, bool] = {}
    for s, definition in problem.net.stages:
        depends[s] = definition.has(X) or any(definition.has(t) for t, dep in depends.items() if dep)
    return [s for s, _ in reversed(problem.net.stages) if depends[s] and s != X and s in problem.gradients]



def locate(problem: Problem, A: MatrixExpr, X: MatrixSymbol, draws: Sequence[Draw],
            evs: Sequence[Evaluator], multiple: bool, say: Callable[..., str]) -> list[str]:
    """Where the answer first differs, along the chain from the loss to X (module docstring)."""
    nodes = chain(problem, X)
    if not nodes:
        return []
    bits = min(ev.bits for ev in evs)
    cands = linear_parts(A)
    found = []                                      # per node: (strict part, loose part with its factor)
    for v in nodes:
        G = problem.gradient(v)
        strict = loose = None
        for S, kappa in cands:
            if tuple(S.shape) != tuple(v.shape):
                continue
            cs = common_ratios(((ev(S), ev(G)) for ev in evs), evs)
            if cs is None or any(c != "skip" and c == 0 for c in cs):
                continue
            eff = []
            for c, ev in zip(cs, evs):
                with mpmath.workprec(ev.bits):         # a product rounds: to the evaluation's precision
                    eff.append(c if c == "skip" else c * ev(kappa))
            shown = S if kappa == 1 else MatMul(kappa, *(S.args if isinstance(S, MatMul) else (S,)))
            if all(c == "skip" or abs(c - 1) <= mpmath.ldexp(1, -(ev.bits // 2)) for c, ev in zip(eff, evs)):
                strict = shown
                break
            if loose is None:
                loose = (shown, eff)
        found.append((v, G, strict, loose))
    deepest_strict = max((i for i, f in enumerate(found) if f[2] is not None), default=None)
    deepest_loose = max((i for i, f in enumerate(found) if f[2] is not None or f[3] is not None), default=None)
    # a wrong factor is followed along the exact matches; a wrong structure along the matches up to a factor
    deepest = deepest_strict if multiple else deepest_loose
    lines = []
    if deepest_strict is not None and deepest_strict <= (deepest if deepest is not None else -1):
        v, _, strict, _ = found[deepest_strict]
        lines.append(say("check_right_as", grad=f"∂f/∂{v.name}", expr=formula_text(strict)))
    if not multiple and deepest is not None and deepest != deepest_strict:
        v, _, _, (shown, eff) = found[deepest]
        lines.append(say("check_up_to_factor", grad=f"∂f/∂{v.name}", expr=formula_text(shown),
                         factor=part_factor(draws, eff, bits)))
    nxt = 0 if deepest is None else deepest + 1
    if nxt == len(found):
        v = found[deepest][0]
        lines.append(say("check_last_step", up=f"∂f/∂{v.name}", grad=f"∂f/∂{X.name}"))
        return lines
    w, G, _, loose = found[nxt]
    fields = dict(grad=f"∂f/∂{w.name}", expr=formula_text(G))
    if nxt == 0:
        key = "check_first_step"
    else:
        key = "check_step"
        fields["up"] = f"∂f/∂{found[deepest][0].name}"
    if loose is not None:
        key += "_factor"
        fields.update(part=formula_text(loose[0]), factor=part_factor(draws, loose[1], bits))
    lines.append(say(key, **fields))
    return lines


def counterexample(problem: Problem, A: MatrixExpr, G: MatrixExpr, grad: str, failing: Draw, bits: int,
                    say: Callable[..., str]) -> tuple[list[str], dict] | None:
    """The smallest dimensions (and small integer data) at which the answer and the gradient differ."""
    dims = [d for d, _ in failing.dims]
    tuples = sorted(cartesian(range(1, 4), repeat=len(dims)), key=lambda t: (sum(t), t))
    tuples = [t for t in tuples if any(x != 1 for x in t)][:40] + [(1,) * len(dims)]
    big = 10.0 ** math.ceil(math.log10(failing.scale)) if failing.scale > 1 else None
    tries = [(1.0, 0), (1.0, 1)] + ([(big, 0)] if big else [])
    candidates = [(t, s, k) for t in tuples for s, k in tries]
    candidates.append((tuple(v for _, v in failing.dims), failing.scale if failing.scale >= 1 else 1.0, 2))
    for t, scale, k in candidates:
        draw = Draw(tuple(zip(dims, t)), scale, (7, *t, k), integers=True)
        verdict, ev, _ = compare(problem, draw, A, G, bits)
        if verdict.state != "differ":
            continue
        net = problem.net
        data = draw_data(net, problem.scalars, draw)
        shown = "; ".join(f"{s.name}={_matrix_text(data[s])}" for s in list(net.inputs) + list(net.params))
        shown += "".join(f"; {s}={data[s]:g}" for s in problem.scalars)
        i, j = verdict.entry
        got, want = ev(A)[i, j], ev(G)[i, j]
        undefined = say("check_undefined")
        digits = 6
        if mpmath.isfinite(got) and mpmath.isfinite(want) and got != want:
            # enough digits to show the difference (a factor 1 + 10⁻¹² needs 14)
            digits = max(6, min(60, 2 - int(mpmath.log10(abs(got - want) / max(abs(got), abs(want))))))
        lines = [say("check_counterexample", dims=draw.label(), data=shown) if draw.dims
                 else say("check_counterexample_fixed", data=shown),
                 "  " + say("check_entry", i=str(i + 1), j=str(j + 1),
                            got=undefined if not mpmath.isfinite(got) else _show(got, digits), grad=grad,
                            want=undefined if not mpmath.isfinite(want) else _show(want, digits))]
        info = {"dims": dict((str(d), v) for d, v in draw.dims),
                "data": {s.name: data[s].tolist() for s in list(net.inputs) + list(net.params)},
                "entry": (i + 1, j + 1), "answer": float(got), "expected": float(want)}
        return lines, info
    return None


def _show(x: mpmath.mpf, digits: int) -> str:
    text = mpmath.nstr(x, digits)
    return text[:-2] if text.endswith(".0") else text


def _matrix_text(a: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{x:g}" for x in row) + "]" for row in a) + "]"
