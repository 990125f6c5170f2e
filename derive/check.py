"""Check a hand-written gradient against the engine's, and say where it goes wrong.

``check_answer("2*X'*(((Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h)))", "W1")`` parses the
answer with the expression language (the network's intermediates may be used by name), checks its
shape against ∂f/∂W1 and compares its value with the engine's gradient.  Any input, parameter or
intermediate of the network may be the variable.

The comparison must never accept a wrong answer, so it decides in interval arithmetic:

* **draws** — every dimension takes several values, each varied independently of the others
  (:data:`DIM_ROWS`: non-square, away from the defaults, one draw with dimensions of 1), and the data
  several scales (0.1 to 10, and beyond the largest number written in the answer, so that a term
  such as ``relu(h - 100)`` that vanishes on small data is seen); most dimension sets are drawn twice;
* **precision** — the answer and the gradient are evaluated in P-bit interval arithmetic (mpmath's
  ``iv``; P ≥ 128, with twice the bits of the longest number the answer writes or computes from the
  dimensions): every entry is an interval that encloses its exact value, whatever rounding and
  cancellation the formula holds (``H'*(Ypred + 1e9) - H'*(Y + 1e9)``).  The answer differs when an
  entry's interval is disjoint from the gradient's, or undefined (0⁻¹) where the gradient is not: a
  proof.  It agrees when no entry differs and every interval is narrower than 2^(−3P/4) of the
  largest value.  Otherwise P grows fourfold, up to :data:`MAX_BITS`, and an answer still undecided
  there is "not confirmed", never accepted.  An answer off by 10⁻⁸ (or 2⁻³⁰⁰) of its size differs.

When the answer is wrong, the report says

* whether it is a multiple of the gradient, with the factor as a function of the dimensions fitted
  over the draws (``1/(k·n)``, ``−1``: a sign error), not a number read off one draw;
* the first step of the staged derivation where it differs.  The answer is *right up to* ∂f/∂v when
  one of its parts, times the scalars the answer multiplies that part by, equals ∂f/∂v: the part
  is the correct chain from the loss to v, and the rest of the answer is what was done after it.
  The parts tried are the answer's sub-expressions that enter it linearly (not inside σ, an inverse
  or a power), including contiguous sub-products (``(Ypred - Y)*W2'`` inside ``2*X'*(Ypred - Y)*W2'``)
  and partial sums;
* a counterexample at the smallest dimensions where the two differ, with small integer data (not
  all dimensions 1 when a larger example shows it).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sympy
from sympy import MatrixExpr, MatrixSymbol

from derive.checking.evaluate import compare, evaluator_at
from derive.checking.fit import common_ratios, factor_line, largest_number, literal_bits, scalar_bits
from derive.checking.intervals import Unsupported
from derive.checking.locate import chain, counterexample, locate
from derive.checking.problem import (
    DIM_ROWS, Draw, Problem, answer_shapes, draws_for, formula_text, network_of, problem_of,
)
from derive.dims import concrete_shape, shape_text
from derive.limits import CHECK_MAX_BITS, CHECK_MAX_DIM, CHECK_MAX_ENTRIES
from derive.networks import Network
from derive.lang import ExpressionError, Reading, is_latex, parse, readings, syntax_check
from derive.laws import Gradient
from derive.render.locale import get_locale

__all__ = ["DIM_ROWS", "MAX_BITS", "CheckResult", "check_answer", "check_expression"]

BASE_BITS = 120
# precisions are rounded up to these (then ×4), so that answers share the network's cached values
_LEVELS = (128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
# Limits (derive.limits): the interval arithmetic runs in Python, so the matrices of one draw hold at
# most MAX_ENTRIES entries and no dimension exceeds MAX_DIM (a larger --dims is refused with a
# message); an answer still undecided at MAX_BITS is "not confirmed".
MAX_BITS = CHECK_MAX_BITS
MAX_ENTRIES = CHECK_MAX_ENTRIES
MAX_DIM = CHECK_MAX_DIM


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
    reading: str = ""          # the reading of an ambiguous LaTeX answer this verdict is under (its key)

    def __str__(self) -> str:
        return "\n".join((self.verdict, *("  " + d for d in self.details)))



def check_answer(answer: str, wrt: str | MatrixSymbol, net: Network | str = "seed", *,
                 bias: str = "row", seed: int = 0, lang: str = "en", syntax: str = "auto") -> CheckResult:
    """Check ``answer`` (expression-language text, or LaTeX) as ∂f/∂``wrt`` of ``net``.

    ``net`` is ``"seed"`` or any :class:`~derive.networks.Network` (``derive.program(text)``);
    ``wrt`` any input, parameter or intermediate of it (the expected gradient is backprop's
    section result).  ``syntax`` is the answer's dialect: ``"auto"`` (the default) reads LaTeX
    where the answer has a backslash, ``^{`` or ``_{``; ``"latex"``, ``"ascii"``.  A LaTeX answer
    whose ⊙ is ambiguous against the product is checked under every reading
    (:func:`derive.lang.readings`): it is right when one reading is, and the verdict names the
    reading.  A syntax error or an unknown name raises :class:`derive.parse.ExpressionError`, an
    unknown variable ``ValueError``; an answer whose shapes do not conform is a wrong answer.
    ``lang`` ("en" or "zh") is the language of the verdict.

    >>> check_answer("2*H'*(Ypred - Y)", "W2").correct
    True
    >>> r = check_answer("2*(Ypred - Y)", "b2")
    >>> r.correct, r.verdict
    (False, 'wrong shape: ∂f/∂b2 is 1×k, the answer is n×k')
    >>> print(check_answer("H'*(Ypred - Y)/(n*k)", "W2").details[0])
    the answer is 1/(2·k·n) times ∂f/∂W2: a factor depending on the dimensions is wrong
    >>> check_answer(r"2h_{sigmoid}^T(Y_{pred} - Y)", "W2").correct
    True
    """
    say, problem, X = _variable(wrt, net, bias, lang)
    net, name = problem.net, X.name
    grad = f"∂f/∂{name}"
    want = shape_text(X.shape)
    shapes = answer_shapes(net, problem.scalars)
    dialect = _dialect(answer, tuple(shapes), syntax)        # a syntax error is the user's to fix: it raises
    expected = problem.gradient(X)
    if dialect == "latex":
        options = readings(answer, shapes, syntax="latex", infer=False)
        if len(options) > 1:
            return _under_readings(options, answer, problem, X, expected, seed, say)
    try:
        A = parse(answer, shapes, infer=False, syntax=dialect).expr
    except ExpressionError as exc:
        return _refused(exc, answer, grad, want, expected, say)
    return _check_expr(A, problem, X, expected, seed, say)


def check_expression(answer: sympy.Basic, wrt: str | MatrixSymbol, net: Network | str = "seed", *,
                     bias: str = "row", seed: int = 0, lang: str = "en") -> CheckResult:
    """Check an answer already built (a SymPy expression over the network's symbols, as
    :func:`derive.lang.parse` gives it with the network's shapes) as ∂f/∂``wrt`` of ``net``: the
    verdict :func:`check_answer` gives the text it was parsed from.

    >>> from derive.lang import parse
    >>> from derive.checking.problem import answer_shapes, network_of, problem_of
    >>> net = network_of("seed", "row", "en")
    >>> shapes = answer_shapes(net, problem_of(net).scalars)
    >>> check_expression(parse("2*H'*(Ypred - Y)", shapes).expr, "W2", net).correct
    True
    """
    say, problem, X = _variable(wrt, net, bias, lang)
    return _check_expr(answer, problem, X, problem.gradient(X), seed, say)


def _variable(wrt: str | MatrixSymbol, net: Network | str, bias: str, lang: str
              ) -> tuple[Callable[..., str], Problem, MatrixSymbol]:
    """The words of ``lang``, the checking problem of ``net`` and its variable ``wrt`` (``ValueError``
    naming the variables when ``wrt`` is none of them)."""
    say = get_locale(lang).say
    problem = problem_of(network_of(net, bias, lang))
    name = wrt.name if isinstance(wrt, MatrixSymbol) else wrt
    variables = problem.variables()
    if name not in variables:
        raise ValueError(say("check_unknown_variable", name=repr(name), choices=", ".join(variables)))
    return say, problem, variables[name]


def _dialect(answer: str, names: tuple[str, ...], syntax: str) -> str:
    """The answer's dialect, "latex" or "python", after checking its syntax: under ``"auto"`` a text
    that is not LaTeX-looking but is LaTeX only (``X^T(Y - P)``) is LaTeX."""
    dialect = "latex" if is_latex(answer, syntax) else "python"
    try:
        syntax_check(answer, names, syntax=dialect)
    except ExpressionError:
        if syntax != "auto" or dialect == "latex":
            raise
        try:
            syntax_check(answer, names, syntax="latex")
        except ExpressionError:
            pass
        else:
            return "latex"
        raise
    return dialect


def _refused(exc: ExpressionError, answer: str, grad: str, want: str, expected: MatrixExpr,
             say: Callable[..., str]) -> CheckResult:
    """The verdict on an answer that cannot be built: an unknown name or a limit raises, an undefined
    answer and one whose shapes do not conform are wrong."""
    if exc.kind in ("unknown-name", "limit"):
        raise exc
    if exc.kind == "undefined":
        where = f"{answer}\n{' ' * (exc.column - 1)}^"
        return CheckResult(False, say("check_undefined_answer", grad=grad, column=str(exc.column),
                                      error=exc.message), (where,), None, expected)
    return CheckResult(False, say("check_conform", grad=grad, want=want, error=str(exc)),
                       (exc.caret(),), None, expected)


def _under_readings(options: list[Reading], answer: str, problem: Problem, X: MatrixSymbol,
                    expected: MatrixExpr, seed: int, say: Callable[..., str]) -> CheckResult:
    """An ambiguous answer checked under each reading: the first right one, else the first whose
    shape is right (its diagnosis), else the first; the others' verdicts follow as details."""
    grad, want = f"∂f/∂{X.name}", shape_text(X.shape)
    results = []
    for r in options:
        if r.error is not None:
            result = _refused(r.error, answer, grad, want, expected, say)
        else:
            result = _check_expr(r.parsed.expr, problem, X, expected, seed, say)
        words = say(f"audit_reading_{r.key}", math=r.text)
        results.append((r, words, result))
    def rank(res: CheckResult) -> int:   # right, else wrong in value (diagnosed), else a shape error
        shaped = isinstance(res.answer, MatrixExpr) and tuple(res.answer.shape) == tuple(X.shape)
        return 0 if res.correct else 1 if shaped else 2

    chosen = min(range(len(results)), key=lambda i: rank(results[i][2]))
    r, words, res = results[chosen]
    others = tuple(say("check_other_reading", reading=w, verdict=o.verdict)
                   for i, (_, w, o) in enumerate(results) if i != chosen)
    return CheckResult(res.correct, say("check_under_reading", reading=words, verdict=res.verdict),
                       res.details + others, res.answer, res.expected, res.max_error, res.counterexample, r.key)


def _check_expr(A: sympy.Basic, problem: Problem, X: MatrixSymbol, expected: MatrixExpr, seed: int,
                say: Callable[..., str]) -> CheckResult:
    """The verdict on the built answer ``A``: its shape, then its value at the draws."""
    grad, want, name = f"∂f/∂{X.name}", shape_text(X.shape), X.name
    net = problem.net
    # ∂f/∂V in the answer: only the gradients of stages that depend on X, which backprop reaches first
    allowed = chain(problem, X)
    used = sorted({g.wrt.name for g in A.atoms(Gradient) if g.wrt not in allowed})
    if used:
        return CheckResult(False, say("check_uses_gradient", grad=grad, used=", ".join(f"∂f/∂{u}" for u in used),
                                      allowed=", ".join(f"∂f/∂{s.name}" for s in allowed) or "—"), (), A, expected)
    if not isinstance(A, MatrixExpr):
        return CheckResult(False, say("check_scalar", grad=grad, want=want), (), A, expected)
    if tuple(A.shape) != tuple(X.shape):
        details = []
        if X.shape[0] == 1 and A.shape[0] != 1 and A.shape[1] == X.shape[1]:
            details.append(say("check_row_bias", name=name, cols=str(X.shape[1])))
        if tuple(A.shape) == tuple(reversed(X.shape)):
            details.append(say("check_transposed"))
        return CheckResult(False, say("check_shape", grad=grad, want=want, got=shape_text(A.shape)),
                           tuple(details), A, expected)
    draws = draws_for(net, seed, largest_number(A))
    _check_size(problem, draws, say)
    bits = BASE_BITS + 2 * literal_bits(A)
    try:
        return _judge(problem, A, X, expected, draws, bits, grad, say)
    except Unsupported as exc:
        raise ValueError(say("check_unsupported", what=str(exc))) from None


def _level(bits: int) -> int:
    return next((b for b in _LEVELS if b >= bits), bits)


def _check_size(problem: Problem, draws: Sequence[Draw], say: Callable[..., str]) -> None:
    net = problem.net
    syms = list(net.inputs) + list(net.params) + [s for s, _ in net.stages]
    for draw in draws:
        shapes = [concrete_shape(s.shape, dict(draw.dims)) for s in syms]
        entries = sum(r * c for r, c in shapes)
        largest = max(max(s) for s in shapes)
        if entries > MAX_ENTRIES or largest > MAX_DIM:
            raise ValueError(say("check_too_large", entries=str(entries), largest=str(largest),
                                 max_entries=str(MAX_ENTRIES), max_dim=str(MAX_DIM)))


def _judge(problem: Problem, A: MatrixExpr, X: MatrixSymbol, expected: MatrixExpr, draws: list[Draw],
           bits: int, grad: str, say: Callable[..., str]) -> CheckResult:
    verdicts, evaluators, used = [], [], _level(bits)
    failing = None
    for draw in draws:
        here = _level(max(bits, BASE_BITS + 2 * scalar_bits(A, draw)))
        v, ev, used_here = compare(problem, draw, A, expected, here)
        verdicts.append(v)
        evaluators.append(ev)
        used = max(used, used_here)
        if v.state in ("differ", "undecided"):
            failing = draw
            break
    expr = formula_text(expected)
    if failing is None:
        compared = [d for d, v in zip(draws, verdicts) if v.state == "equal"]
        if not compared:
            return CheckResult(False, say("check_undecided", grad=grad, where="—", bits=str(used)), (), A, expected)
        dims = list(dict.fromkeys(d.dims for d in compared))
        names = ", ".join(str(d) for d, _ in compared[0].dims)
        sets = ", ".join("(" + ", ".join(str(v) for _, v in ds) + ")" for ds in dims)
        scales = ", ".join(f"{s:g}" for s in sorted({d.scale for d in compared}))
        detail = say("check_compared", count=str(len(compared)),
                     dims=f"({names}) = {sets}" if names else say("check_fixed_dims"),
                     scales=scales, bits=str(used))
        return CheckResult(True, say("check_correct", grad=grad, expr=expr), (detail,), A, expected,
                           max(v.error for v in verdicts if v.state == "equal"))
    v = verdicts[-1]
    if v.state == "undecided":
        where = say("check_where", dims=failing.label() or say("check_fixed_dims"), scale=f"{failing.scale:g}")
        return CheckResult(False, say("check_undecided", grad=grad, where=where, bits=str(used)),
                           (), A, expected, v.error)
    # the diagnosis reads the answer's parts at every draw, in P-bit arithmetic
    for draw in draws[len(evaluators):]:
        evaluators.append(evaluator_at(problem, draw, used, expected))
    err = "∞" if math.isinf(v.error) else "—" if math.isnan(v.error) else f"{v.error:.2g}"
    details: list[str] = []
    whole = common_ratios(((ev(A), ev(expected)) for ev in evaluators), evaluators)
    if whole is not None:
        details.append(factor_line(draws, whole, min(ev.bits for ev in evaluators), grad, say))
    details += locate(problem, A, X, draws, evaluators, whole is not None, say)
    example = counterexample(problem, A, expected, grad, failing, used, say)
    if example:
        details += example[0]
    return CheckResult(False, say("check_wrong", grad=grad, expr=expr, err=err), tuple(details), A, expected,
                       v.error, example[1] if example else {})

