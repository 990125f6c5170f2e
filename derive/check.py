"""Check a hand-written gradient against the engine's, and say where it goes wrong.

``check_answer("2*X'*(((Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h)))", "W1")``
parses the answer with the expression language (the network's intermediates may be
used by name), checks its shape against ∂f/∂W1, compares it numerically on random
non-square data and, when it is wrong, names the first gradient of the engine's staged
derivation that no part of the answer reproduces, and gives a small counterexample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product as cartesian

import numpy as np
import sympy
from sympy import MatrixExpr, MatrixSymbol

from derive.backprop import Backprop, backprop
from derive.limits import LimitError
from derive.networks import Network, seed_network
from derive.parse import ExpressionError, _Parser, format_expression, parse

__all__ = ["CheckResult", "check_answer"]

TOLERANCE = 1e-8


@dataclass(frozen=True)
class CheckResult:
    """The verdict on an answer: ``correct``, a one-line ``verdict`` and further ``details``."""

    correct: bool
    verdict: str
    details: tuple[str, ...] = ()
    answer: sympy.Basic | None = None
    expected: MatrixExpr | None = None
    max_error: float | None = None
    counterexample: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join((self.verdict, *("  " + d for d in self.details)))


def _shape_text(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def _network(net: Network | str, bias: str) -> Network:
    if isinstance(net, Network):
        return net
    if net == "seed":
        return seed_network(bias=bias)
    raise ValueError(f"unknown network {net!r}; use 'seed' or pass a derive.Network")


def _shapes(net: Network) -> dict[str, tuple]:
    syms = list(net.inputs) + list(net.params) + [s for s, _ in net.stages]
    return {s.name: tuple(s.shape) for s in syms}


def _values(net: Network, sizes: dict, rng: np.random.Generator, integers: bool = False) -> dict:
    vals = {}
    for s in list(net.inputs) + list(net.params):
        shape = tuple(int(sympy.sympify(x).subs(sizes)) for x in s.shape)
        vals[s] = (rng.integers(-2, 3, shape).astype(float) if integers else rng.standard_normal(shape))
    for pattern, _, rule in net.assumptions:
        if rule == "rows_sum_to_one":
            # the derivation assumed each row of Y sums to one: so must the test data
            Y = pattern[0]
            rows = rng.integers(1, 4, vals[Y].shape).astype(float) if integers else rng.random(vals[Y].shape) + 0.1
            vals[Y] = rows / rows.sum(axis=1, keepdims=True)
    return vals


def _evaluate(exprs: list[sympy.Basic], net: Network, vals: dict) -> list[np.ndarray]:
    from numeric import compile as compile_kernel

    args = list(net.inputs) + list(net.params)
    # an answer may overflow or divide by zero (exp(1000*W2), ./ zeros): the verdict says so, NumPy need not
    with np.errstate(all="ignore"):
        kernel = compile_kernel([net.expand(e) for e in exprs], args)
        return [np.asarray(v, dtype=float) for v in kernel(*[vals[a] for a in args])]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _scale_factor(a: np.ndarray, b: np.ndarray) -> float | None:
    """c with a = c·b (c ≠ 0, 1), or None."""
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    denom = float(np.vdot(b, b))
    if denom == 0:
        return None
    c = float(np.vdot(a, b)) / denom
    if abs(c) < 1e-12 or abs(c - 1) < 1e-9 or _relative(a, c * b) > 1e-8:
        return None
    return c


def _subterms(e: sympy.Basic) -> list[MatrixExpr]:
    """Matrix-valued sub-expressions of ``e``, outermost first."""
    out: list[MatrixExpr] = []
    for node in sympy.preorder_traversal(e):
        if (isinstance(node, MatrixExpr) and not isinstance(node, (MatrixSymbol, sympy.OneMatrix,
                                                                   sympy.Identity))
                and node not in out):
            out.append(node)
    return out


def _chain(bp: Backprop, wrt: MatrixSymbol) -> list:
    """Sections from the loss down to ``wrt``: the gradients a correct answer passes through."""
    by_name = {s.wrt: s for s in bp.sections}
    chain = [by_name[wrt]]
    while chain[-1].upstream is not None:
        chain.append(by_name[chain[-1].upstream[0]])
    return list(reversed(chain))


def _fmt(e: sympy.Basic) -> str:
    from derive.render.printer import math_text

    return math_text(e)


def check_answer(answer: str, wrt: str | MatrixSymbol, net: Network | str = "seed", *,
                 bias: str = "row", seed: int = 0) -> CheckResult:
    """Check ``answer`` (expression-language text) as ∂f/∂``wrt`` of ``net``.

    A syntax error or an unknown name raises :class:`derive.parse.ExpressionError`; an answer whose
    shapes do not conform is a wrong answer.

    >>> check_answer("2*H'*(Ypred - Y)", "W2").correct
    True
    >>> r = check_answer("2*(Ypred - Y)", "b2")
    >>> r.correct, r.verdict
    (False, 'wrong shape: ∂f/∂b2 is 1×k, the answer is n×k')
    """
    net = _network(net, bias)
    name = wrt.name if isinstance(wrt, MatrixSymbol) else wrt
    bp = backprop(net)
    derived = dict((s.wrt, s.result) for s in bp.sections)
    # the variables with a section: the parameters and the inputs the loss holds itself (Y, not X)
    params = {p.name: p for p in list(net.params) + list(net.inputs) if p in derived}
    if name not in params:
        raise ValueError(f"{name!r} is not a variable of the network; choose from {', '.join(params)}")
    X = params[name]
    expected = derived[X]
    want = _shape_text(X.shape)
    shapes = _shapes(net)
    _Parser(answer, tuple(shapes)).parse()      # a syntax error is the user's to fix: it raises
    try:
        parsed = parse(answer, shapes, infer=False)
    except ExpressionError as exc:
        if exc.message.startswith("unknown name") or isinstance(exc, LimitError):
            raise
        return CheckResult(False, f"the answer does not conform: ∂f/∂{name} is {want}; {exc}",
                           (exc.caret(),), None, expected)
    A = parsed.expr
    if not isinstance(A, MatrixExpr):
        return CheckResult(False, f"wrong shape: ∂f/∂{name} is {want}, the answer is a scalar", (), A, expected)
    if tuple(A.shape) != tuple(X.shape):
        details = []
        if X.shape[0] == 1 and A.shape[0] != 1 and A.shape[1] == X.shape[1]:
            details.append(f"{name} is a 1×{X.shape[1]} row broadcast over the batch: its gradient sums "
                           f"the rows, 𝟏ᵀ(…)")
        if tuple(A.shape) == tuple(reversed(X.shape)):
            details.append("the answer has the transposed shape: a transpose is missing or extra")
        return CheckResult(False, f"wrong shape: ∂f/∂{name} is {want}, the answer is {_shape_text(A.shape)}",
                           tuple(details), A, expected)
    rng = np.random.default_rng(seed)
    dims = net.dims
    sizes = dict(zip(dims, (4, 3, 5, 2, 6, 7, 8, 9)))
    vals = _values(net, sizes, rng)
    chain = _chain(bp, X)
    resolved = bp.gradients(expanded=True) if X in net.params else {}
    staged = [s.result for s in chain]
    got, exp_val, *chain_vals = _evaluate([A, resolved.get(X, expected), *staged], net, vals)
    err = _relative(got, exp_val)
    if err <= TOLERANCE:
        return CheckResult(True, f"correct: the answer equals ∂f/∂{name} = {_fmt(expected)}", (),
                           A, expected, err)
    details = []
    c = _scale_factor(got, exp_val)
    if c is not None:
        details.append(f"the answer is {sympy.nsimplify(c, rational=True, tolerance=1e-6)} times ∂f/∂{name}: "
                       "a constant factor is wrong")
    details += _locate(A, chain, chain_vals, net, vals)
    details += _counterexample(A, resolved.get(X, expected), net, name)
    return CheckResult(False, f"wrong: the answer differs from ∂f/∂{name} = {_fmt(expected)} "
                              f"(max relative error {err:.2g})", tuple(details), A, expected, err)


def _locate(A: sympy.Basic, chain: list, chain_vals: list[np.ndarray], net: Network, vals: dict) -> list[str]:
    """Which gradients of the staged derivation the answer's parts reproduce, and the first it does not."""
    parts = _subterms(A)
    part_vals = _evaluate(parts, net, vals) if parts else []
    lines = []
    for section, G in zip(chain[:-1], chain_vals[:-1]):
        Z = section.wrt
        found = None
        for part, v in zip(parts, part_vals):
            if v.shape == G.shape and (_relative(v, G) <= TOLERANCE or _scale_factor(v, G) is not None):
                found = part
                break
        if found is None:
            lines.append(f"no part of the answer equals ∂f/∂{Z.name} = {_fmt(section.result)} "
                         f"(or a multiple of it): the step to ∂f/∂{Z.name} is where it first differs "
                         f"(the engine's section ∂f/∂{Z.name})")
            break
        lines.append(f"∂f/∂{Z.name} is right (as {format_expression(found)})")
    return lines


def _counterexample(A: sympy.Basic, expected: MatrixExpr, net: Network, name: str) -> list[str]:
    dims = net.dims
    for sizes in sorted(cartesian(range(1, 4), repeat=len(dims)), key=lambda s: (sum(s), s)):
        size_map = dict(zip(dims, sizes))
        vals = _values(net, size_map, np.random.default_rng(sum(sizes)), integers=True)
        got, want = _evaluate([A, expected], net, vals)
        with np.errstate(all="ignore"):
            diff = np.nan_to_num(np.abs(got - want), nan=np.inf)  # a nan entry differs too
        if np.max(diff) > 1e-9 * max(1.0, float(np.max(np.abs(want)))):
            i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
            setting = ", ".join(f"{d}={s}" for d, s in size_map.items())
            data = "; ".join(f"{s.name}={vals[s].tolist()}" for s in list(net.inputs) + list(net.params))
            return [f"counterexample ({setting}): {data}",
                    f"  entry ({i + 1},{j + 1}) of the answer is {got[i, j]:.6g}, of ∂f/∂{name} {want[i, j]:.6g}"]
    return []
