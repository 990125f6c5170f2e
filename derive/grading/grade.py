"""Grade a whole write-up: every equation it can read, checked; the first wrong line of each chain
located, with the rule the student probably meant there.

``grade(text)`` reads the equations (:mod:`derive.grading.extract`), takes the network from ``net``
(a program) or from the write-up's problem statement (:mod:`derive.grading.network`), and gives one
:class:`Entry` per equation or chain step:

* a result ``∂f/∂V = G`` is checked by :func:`derive.check.check_answer` under every reading of its
  notation (⊙ against the matrix product: ⊙ taking each trailing part of the product before it) and
  of the network (a bias written ``+ b`` an n×m matrix or a row): ``correct`` when it holds as
  written under every reading of the network, ``correct-under-reading`` when only under some,
  else ``shape-error`` or ``wrong`` with the checker's diagnosis;
* a chain ``df = A = B = …``: each line is compared with the last line that held, as a linear
  function of the differentials, at random data and random differentials (:mod:`.evaluate`); a line
  whose differentials are all of one variable V is also compared with the differentials of
  everything but V held at zero (the write-up drops the others: d(HW₂ + b₂) = H dW₂ in the W₂
  section).  A line that breaks the chain is ``wrong``, with the rule probably meant (:data:`RULES`);
* a definition after the problem statement is checked against the network; lines with names the
  problem never defines, derivatives of matrices by matrices or prose are ``uncheckable``, with why.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sympy
from sympy import HadamardProduct, MatMul, MatrixExpr, MatrixSymbol, Trace, Transpose

from derive.differential import MatrixDifferential, ScalarDifferential
from derive.grading.evaluate import Point, Unevaluable, close, evaluate, points
from derive.grading.extract import Group, equations
from derive.grading.names import alias, gradient_of, name_of, notation, split_name, words
from derive.grading.network import Problem, StatementError, from_program, from_statement
from derive.lang import ExpressionError, parse
from derive.lang import Reading as LangReading
from derive.lang import readings as lang_readings
from derive.laws import Gradient
from derive.networks import Network
from derive.render.locale import LANGUAGES, get_locale

__all__ = ["KINDS", "RULES", "VERDICTS", "Entry", "GradeError", "Reading", "Report", "grade"]

KINDS = ("result", "chain", "definition", "other")
VERDICTS = ("correct", "correct-under-reading", "wrong", "shape-error", "uncheckable")
HOLDS = ("correct", "correct-under-reading")


class GradeError(ValueError):
    """Unusable input: no equations, or no network to grade against."""


@dataclass(frozen=True)
class Reading:
    """One reading of an equation (notation × network) and its verdict; ``key`` the notation's
    reading (:class:`derive.lang.Reading`: as_written, looser, between, tighter)."""

    label: str
    verdict: str
    message: str = ""
    key: str = ""

    def as_dict(self) -> dict:
        return {"reading": self.label, "verdict": self.verdict, "message": self.message,
                **({"key": self.key} if self.key else {})}


@dataclass(frozen=True)
class Entry:
    """The verdict on one equation (``step`` 0) or one line of a chain (``step`` 1, 2, …)."""

    line: int
    step: int
    latex: str
    kind: str
    verdict: str
    readings: tuple[Reading, ...] = ()
    message: str = ""
    rule: str = ""
    # the equation as SymPy for the HTML's MathML: (lhs, rhs), or (one side,) for a line of a chain
    math: tuple[sympy.Basic, ...] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"line": self.line, "step": self.step, "latex": self.latex, "kind": self.kind,
                "verdict": self.verdict, "readings": [r.as_dict() for r in self.readings],
                "message": self.message, **({"rule": self.rule} if self.rule else {})}


@dataclass(frozen=True)
class Report:
    """All entries of a write-up, in source order, and what the network was."""

    source: str
    entries: tuple[Entry, ...]
    network: str = ""
    lang: str = "en"

    @property
    def status(self) -> int:
        """0 when every checked equation holds, 1 when any is wrong or does not conform."""
        return 1 if any(e.verdict in ("wrong", "shape-error") for e in self.entries) else 0

    def counts(self) -> dict[str, int]:
        return {v: sum(e.verdict == v for e in self.entries) for v in VERDICTS}


# --------------------------------------------------------------------------- words

RULES = ("sign", "factor", "transpose", "cyclic", "sigma", "odot", "product")


def _say(lang: str, key: str, **kw: str) -> str:
    """The words ``grade_<key>`` of :mod:`derive.render.locale` in ``lang``."""
    return get_locale(lang).say(f"grade_{key}", **kw)


# --------------------------------------------------------------------------- reading expressions

class _Unreadable(ValueError):
    def __init__(self, key: str, **kw: str):
        super().__init__(key)
        self.key, self.kw = key, kw


_DIFFERENTIALS = (MatrixDifferential, ScalarDifferential)


@dataclass
class _Context:
    """What the grading of one write-up knows: the problem, the names, the write-up's own shorthands
    (``local``: name → LaTeX), the random points and caches."""

    problem: Problem
    lang: str
    seed: int
    names: set[str] = field(default_factory=set)
    local: dict[str, str] = field(default_factory=dict)
    pts: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)
    shorthands: dict = field(default_factory=dict)
    parsed: dict = field(default_factory=dict)

    def parse(self, latex: str, shapes: Mapping[str, tuple], infer: bool = False):
        """:func:`derive.lang.parse` of the write-up's ``latex`` with ``shapes``, each text read once
        per set of shapes (grading reads a line for its value, its notes and its unknown names)."""
        key = (latex, tuple(shapes.items()), infer)
        if key not in self.parsed:
            try:
                self.parsed[key] = parse(latex, shapes, syntax="latex", infer=infer)
            except ExpressionError as e:
                self.parsed[key] = e
        found = self.parsed[key]
        if isinstance(found, ExpressionError):
            raise found.with_traceback(None)
        return found

    def words(self, latex: str) -> list[str]:
        """The names of ``latex`` (the language's lexer); prose and products of Jacobians refused."""
        if "\\partial" in latex or "∂" in latex:
            raise _Unreadable("jacobian", what=_partials(latex))
        if re.search(r"\\text\{[^}]*[^\x00-\x7f ]", latex):
            raise _Unreadable("prose")
        try:
            return words(latex)
        except ExpressionError as e:
            raise _Unreadable("unreadable", error=str(e).splitlines()[0]) from None

    def alias(self, word: str) -> str | None:
        """The network's name for a name of the write-up (:func:`derive.grading.names.alias`)."""
        if word in self.names:
            return word
        if word not in self.cache:
            self.cache[word] = alias(word, self.problem.net)
        return self.cache[word]

    def macros(self, n: int) -> dict[str, sympy.Basic]:
        """The write-up's shorthands (the statement's and its own) as expressions over network ``n``."""
        defs = [*self.problem.macros, *self.local.items()]
        key = (n, len(defs))
        if key not in self.shorthands:
            out: dict[str, sympy.Basic] = {}
            for name, latex in defs:
                shapes, subs = self._shapes(n, words(latex), out)
                out[name] = self.parse(latex, shapes).expr.xreplace(subs)
            self.shorthands[key] = out
        return self.shorthands[key]

    def _shapes(self, n: int, names: Sequence[str], macros: Mapping[str, sympy.Basic]) -> tuple[dict, dict]:
        """The shapes the language reads ``names`` with over network ``n``, and what to put in place of
        the write-up's own names afterwards (its shorthands, its aliases of the network's names)."""
        net = self.problem.networks[n]
        shapes: dict[str, tuple] = {name: tuple(s.shape) for name, s in net.symbols.items()}
        shapes[self.problem.loss] = ()
        subs: dict = {}
        for name, e in macros.items():
            shapes[name] = tuple(e.shape) if isinstance(e, MatrixExpr) else ()
            subs[_symbol(name, shapes[name])] = e
        for w in names:
            a = None if w in shapes else self.alias(w)
            if a is not None and a in net.symbols:
                shapes[w] = shapes[a]
                subs[_symbol(w, shapes[a])] = net.symbols[a]
        return shapes, subs

    def shapes(self, n: int, latex: str) -> tuple[dict, dict]:
        return self._shapes(n, self.words(latex), self.macros(n))

    def read(self, latex: str, n: int) -> sympy.Basic:
        """``latex`` as a SymPy expression over network ``n`` (raises :class:`ExpressionError`)."""
        shapes, subs = self.shapes(n, latex)
        e = self.parse(latex, shapes).expr
        return e.xreplace(subs) if subs else e

    def readings(self, latex: str, n: int) -> list[tuple[LangReading, sympy.Basic | None]]:
        """Every reading of ⊙ against the product in ``latex`` (:func:`derive.lang.readings`)."""
        shapes, subs = self.shapes(n, latex)
        return [(r, None if r.parsed is None else r.parsed.expr.xreplace(subs) if subs else r.parsed.expr)
                for r in lang_readings(latex, shapes, syntax="latex", infer=False)]

    def notes(self, latex: str) -> list[str]:
        """The language's notes on ``latex`` that say something was mended (a stray bracket)."""
        try:
            shapes, _ = self.shapes(0, latex)
            return [n.say(self.lang) for n in self.parse(latex, shapes).notes
                    if n.kind == "stray-bracket"]
        except (ExpressionError, _Unreadable):
            return []

    def unknown(self, latex: str) -> list[str]:
        """The names of ``latex`` the problem never defines (XW with X known: W)."""
        shapes, _ = self.shapes(0, latex)
        missing: list[str] = []
        for _ in range(8):
            try:
                missing += self.parse(latex, shapes, infer=True).inferred
                break
            except ExpressionError as e:
                if e.kind != "unknown-name" or not e.token or e.token in shapes:
                    break
                missing.append(e.token)
                shapes[e.token] = ()
        out = [p for w in missing for p in split_name(w, self.names) if p not in self.names]
        return list(dict.fromkeys(out))

    def points(self, i: int) -> list[Point]:
        if i not in self.pts:
            self.pts[i] = _points(self.problem.networks[i], self.problem.loss, self.seed)
        return self.pts[i]

    def held(self, i: int, var: MatrixSymbol) -> list[Point]:
        """The points of network ``i`` with every differential but ``var``'s held at zero."""
        key = (i, var)
        if key not in self.pts:
            self.pts[key] = _HELD.setdefault((tuple(id(p) for p in self.points(i)), var),
                                             [p.held(var) for p in self.points(i)])
        return self.pts[key]


def _symbol(name: str, shape: tuple) -> sympy.Basic:
    return MatrixSymbol(name, *shape) if shape else sympy.Symbol(name)


_POINTS: dict = {}
_HELD: dict = {}


def _points(net: Network, loss: str, seed: int) -> list[Point]:
    """Three random points of ``net``, the same objects for the same network (so values are cached
    across write-ups on one network: the versions of a test write-up)."""
    key = (str(net.stages), str(net.loss), str([(s, s.shape) for s in net.inputs + net.params]),
           str(net.params), loss, seed)
    if key not in _POINTS:
        if len(_POINTS) > 64:
            _POINTS.clear()
            _HELD.clear()
            _VALUES.clear()
        _POINTS[key] = points(net, loss, 3, seed)
    return _POINTS[key]


def _partials(latex: str) -> str:
    inner = r"((?:[^{}]|\{[^{}]*\})*)"
    found = re.findall(r"\\frac\s*\{\s*\\partial\s*" + inner + r"\}\s*\{\s*\\partial\s*" + inner + r"\}", latex)
    return ", ".join(f"∂{name_of(a) or a.strip()}/∂{name_of(b) or b.strip()}" for a, b in found) or "∂"


_VALUES: dict = {}


def _values(e: sympy.Basic, pts: Sequence[Point]) -> list:
    """``e`` at each point (cached: the points of one network are made once, see ``_Context.points``)."""
    key = (e, tuple(id(p) for p in pts))
    if key in _VALUES:
        return _VALUES[key]
    out = []
    for p in pts:
        v = np.asarray(evaluate(e, p)[0], dtype=float)
        out.append(v.reshape(()) if v.size == 1 else v)
    if len(_VALUES) > 20000:
        _VALUES.clear()
    _VALUES[key] = out
    return out


def _same(a: sympy.Basic, b: sympy.Basic, pts: Sequence[Point]) -> bool:
    try:
        return all(close(x, y) for x, y in zip(_values(a, pts), _values(b, pts)))
    except (Unevaluable, ValueError, np.linalg.LinAlgError):
        return False


def _differential_vars(e: sympy.Basic) -> set:
    return {d.arg for d in e.atoms(MatrixDifferential)} | {d.arg for d in e.atoms(ScalarDifferential)}


# --------------------------------------------------------------------------- results

_CHECKS: dict = {}
_SHAPE_KINDS = ("shape",)


def _check(expr: sympy.Basic, wrt: str, net: Network, lang: str, seed: int):
    from derive.check import check_expression

    key = (expr, wrt, net, lang, seed)   # a Network is frozen: hashed and compared by its SymPy fields
    if key not in _CHECKS:
        if len(_CHECKS) > 2000:
            _CHECKS.clear()
        try:
            _CHECKS[key] = check_expression(expr, wrt, net, seed=seed, lang=lang)
        except (ExpressionError, ValueError, TypeError) as e:
            _CHECKS[key] = e
    return _CHECKS[key]


def _verdict_of(result, wrt: MatrixSymbol) -> str:
    if isinstance(result, Exception):
        return "uncheckable"
    if result.correct:
        return "correct"
    A = result.answer
    if A is None or not isinstance(A, MatrixExpr) or tuple(A.shape) != tuple(wrt.shape):
        return "shape-error"
    return "wrong"


def _message(result) -> str:
    if isinstance(result, Exception):
        return str(result).splitlines()[0]
    return "; ".join([result.verdict, *result.details[:3]])


def _reading_label(lang: str, r: LangReading) -> str:
    if r.key == "as_written":
        return _say(lang, "as_written")
    return get_locale(lang).say(f"audit_reading_{r.key}", math=notation(r.text))


def _result(ctx: _Context, latex: str, var: str, line: int, step: int) -> Entry:
    lang, problem = ctx.lang, ctx.problem
    var = ctx.alias(var) or var
    if var not in problem.net.symbols:
        return Entry(line, step, latex, "result", "uncheckable", (), _say(lang, "not_variable", name=var))
    try:
        missing = ctx.unknown(latex)
        options = [ctx.readings(latex, n) for n in range(len(problem.networks))]
    except _Unreadable as e:
        return Entry(line, step, latex, "result", "uncheckable", (), _say(lang, e.key, **e.kw))
    if missing:
        return Entry(line, step, latex, "result", "uncheckable", (), _say(lang, "unknown", names=", ".join(missing)))
    readings: list[Reading] = []
    table: dict[tuple[int, int], str] = {}
    for r, first in enumerate(options[0]):
        label = _reading_label(lang, first[0])
        for n, net in enumerate(problem.networks):
            reading, expr = options[n][r]
            if expr is None:
                error = reading.error
                v = "shape-error" if error.kind in _SHAPE_KINDS else "uncheckable"
                message = str(error).splitlines()[0]
            else:
                res = _check(expr, var, net, lang, ctx.seed)
                v, message = _verdict_of(res, net.symbols[var]), _message(res)
            table[r, n] = v
            where = problem.labels[n][lang]
            readings.append(Reading(_say(lang, "under", reading=label, network=where) if where else label, v,
                                    message, reading.key))
    nets = range(len(problem.networks))
    mended = ctx.notes(latex)
    notes = _say(lang, "noted", notes="; ".join(mended)) if mended else ""
    if all(table.get((0, n)) == "correct" for n in nets):   # as the language reads it (⊙ looser)
        return Entry(line, step, latex, "result", "correct", tuple(readings), readings[0].message + notes)
    good = [r for r in readings if r.verdict == "correct"]
    if good:
        return Entry(line, step, latex, "result", "correct-under-reading", tuple(readings),
                     _say(lang, "only_under", readings=" / ".join(r.label for r in good)) + notes)
    first_reading = readings[0]
    verdict = "uncheckable" if all(r.verdict == "uncheckable" for r in readings) else \
        "shape-error" if all(r.verdict in ("shape-error", "uncheckable") for r in readings) else "wrong"
    conforming = next((r for r in readings if r.verdict == "wrong"), first_reading)
    return Entry(line, step, latex, "result", verdict, tuple(readings),
                 (conforming if verdict == "wrong" else first_reading).message + notes)


def _math(expr: sympy.Basic) -> str:
    from derive.checking.problem import formula_text

    try:
        return formula_text(expr)
    except Exception:
        return sympy.sstr(expr)


# --------------------------------------------------------------------------- chains

@dataclass
class _Line:
    latex: str
    line: int
    exprs: list | None = None      # one per network, None where it does not parse
    error: Entry | None = None


def _read_line(ctx: _Context, latex: str, line: int, step: int, kind: str) -> _Line:
    try:
        missing = ctx.unknown(latex)
    except _Unreadable as e:
        return _Line(latex, line, None, Entry(line, step, latex, kind, "uncheckable", (), _say(ctx.lang, e.key, **e.kw)))
    if missing:
        return _Line(latex, line, None, Entry(line, step, latex, kind, "uncheckable", (),
                                              _say(ctx.lang, "unknown", names=", ".join(missing))))
    exprs: list = []
    first_error: ExpressionError | None = None
    for n in range(len(ctx.problem.networks)):
        try:
            exprs.append(ctx.read(latex, n))
        except ExpressionError as e:
            exprs.append(None)
            first_error = first_error or e
    if first_error is not None and all(x is None for x in exprs):
        return _Line(latex, line, None, Entry(line, step, latex, kind, "shape-error" if first_error.kind in
                                              ("shape", "conform") else "uncheckable", (),
                                              _say(ctx.lang, "unreadable", error=str(first_error).splitlines()[0])))
    return _Line(latex, line, exprs)


def _compare(ctx: _Context, a: _Line, b: _Line) -> tuple[list[bool], str]:
    """Per network: does b follow from a; and the variable held, if any."""
    out, held = [], ""
    for n, (x, y) in enumerate(zip(a.exprs, b.exprs)):
        if x is None or y is None:
            out.append(False)
            continue
        pts = ctx.points(n)
        if _same(x, y, pts):
            out.append(True)
            continue
        vs = _differential_vars(y)
        if len(vs) == 1:
            (v,) = vs
            if isinstance(v, MatrixSymbol) and v in ctx.problem.networks[n].symbols.values():
                try:
                    hp = ctx.held(n, v)
                except (Unevaluable, ValueError):
                    hp = []
                if hp and _same(x, y, hp):
                    out.append(True)
                    held = v.name
                    continue
        out.append(False)
    return out, held


def _chain(ctx: _Context, g: Group, kind: str) -> list[Entry]:
    lang, entries = ctx.lang, []
    lone = len(g.terms) == 2
    lines = [_read_line(ctx, t.latex, t.line, 0 if lone else j, kind) for j, t in enumerate(g.terms)]
    anchor = lines[0] if lines[0].exprs is not None else None
    anchor_line = lines[0].line
    for j in range(1, len(lines)):
        b, step = lines[j], 0 if lone else j
        latex = g.terms[j].latex
        if b.error is not None:
            entries.append(b.error if j > 1 or lines[0].error is None else _merge(lines[0].error, b))
            continue
        if anchor is None:
            err = lines[0].error
            entries.append(Entry(b.line, step, latex, kind, "uncheckable", (), err.message if err else ""))
            anchor, anchor_line = b, b.line
            continue
        ok, held = _compare(ctx, anchor, b)
        readings = tuple(Reading(ctx.problem.labels[n][lang], "correct" if o else "wrong")
                         for n, o in enumerate(ok)) if len(set(ok)) > 1 else ()
        if all(ok) or (any(ok) and len(ok) > 1):
            msg = _say(lang, "follows_held", var=held) if held else \
                _say(lang, "follows") if anchor is lines[j - 1] else _say(lang, "follows_from", line=str(anchor_line))
            if not all(ok):
                msg = _say(lang, "only_under", readings=" / ".join(r.label for r in readings if r.verdict == "correct"))
            mended = ctx.notes(latex)
            if mended:
                msg += _say(lang, "noted", notes="; ".join(mended))
            entries.append(Entry(b.line, step, latex, kind, "correct" if all(ok) else "correct-under-reading",
                                 readings, msg))
            anchor, anchor_line = b, b.line
            continue
        rule = _diagnose(ctx, anchor, b)
        entries.append(Entry(b.line, step, latex, kind, "wrong", readings,
                             _say(lang, "breaks", line=str(anchor_line)) + "; " + _say(lang, f"rule_{rule[0]}", **rule[1]),
                             rule[0]))
    return entries


def _merge(first: Entry, b: _Line) -> Entry:
    return Entry(b.line, first.step if first.step else 0, b.latex, first.kind, first.verdict, (), first.message)


# --------------------------------------------------------------------------- the catalogue

def _diagnose(ctx: _Context, a: _Line, b: _Line) -> tuple[str, dict]:
    n = next(i for i, (x, y) in enumerate(zip(a.exprs, b.exprs)) if x is not None and y is not None) \
        if any(x is not None and y is not None for x, y in zip(a.exprs, b.exprs)) else None
    if n is None:
        return "none", {}
    x, y, pts = a.exprs[n], b.exprs[n], ctx.points(n)
    vs = _differential_vars(y)
    if len(vs) == 1 and isinstance(next(iter(vs)), MatrixSymbol):
        try:
            pts = ctx.held(n, next(iter(vs)))
        except (Unevaluable, ValueError):
            pass
    for name, rule in _CATALOGUE:
        found = rule(x, y, pts, ctx.problem.networks[n])
        if found is not None:
            return name, found
    return "none", {}


def _ratio(x, y, pts) -> float | None:
    try:
        xs, ys = _values(x, pts), _values(y, pts)
    except (Unevaluable, ValueError):
        return None
    ratios = []
    for u, v in zip(xs, ys):
        if u.shape != v.shape or not np.any(np.abs(u) > 1e-9):
            return None
        k = float(np.sum(u * v) / np.sum(u * u))
        if not close(v, k * u, 1e-6):
            return None
        ratios.append(k)
    return ratios[0] if ratios and all(abs(r - ratios[0]) < 1e-6 * max(1, abs(r)) for r in ratios) else None


def _sign(x, y, pts, net):
    r = _ratio(x, y, pts)
    return {} if r is not None and abs(r + 1) < 1e-6 else None


def _factor(x, y, pts, net):
    r = _ratio(x, y, pts)
    if r is None or abs(r - 1) < 1e-6:
        return None
    q = sympy.nsimplify(r, rational=True, tolerance=1e-6)
    return {"factor": str(q)}


def _subexpressions(e: sympy.Basic) -> list:
    return [s for s in sympy.preorder_traversal(e) if isinstance(s, MatrixExpr)]


def _try(x, pts, candidates) -> str | None:
    for what, y2 in candidates:
        try:
            if y2 is not None and _same(x, y2, pts):
                return what
        except (ValueError, TypeError, sympy.ShapeError):
            continue
    return None


def _replacements(y, make):
    for s in _subexpressions(y):
        if isinstance(s, (MatrixDifferential,)):
            continue
        try:
            new = make(s)
            if new is None:
                continue
            yield s, y.xreplace({s: new})
        except (ValueError, TypeError, sympy.ShapeError):
            continue


def _transpose(x, y, pts, net):
    def make(s):
        if isinstance(s, Transpose):
            return s.arg if s.arg.shape == s.shape else None
        return Transpose(s) if s.shape[0] == s.shape[1] or (isinstance(s, MatrixSymbol) and False) else None
    found = _try(x, pts, ((_math(s), y2) for s, y2 in _replacements(y, make)))
    if found is None:
        # a dropped transpose that changes the shape: the whole line transposed
        found = _try(x, pts, ((_math(y), Transpose(y)),)) if isinstance(y, MatrixExpr) else None
    return {"what": found} if found is not None else None


def _trace_factors(e: sympy.Basic):
    traces = [t for t in sympy.preorder_traversal(e) if isinstance(t, Trace)]
    if len(traces) != 1 or not isinstance(traces[0].arg, MatMul):
        return None
    return traces[0], [a for a in traces[0].arg.args if isinstance(a, MatrixExpr)]


def _cyclic(x, y, pts, net):
    fx, fy = _trace_factors(x), _trace_factors(y)
    if fx is None or fy is None or sorted(map(str, fx[1])) != sorted(map(str, fy[1])) or len(fy[1]) < 3:
        return None
    order = [str(a) for a in fx[1]]
    rotations = [order[i:] + order[:i] for i in range(len(order))]
    if [str(a) for a in fy[1]] in rotations:
        return None
    return {"order": " ".join(_math(a) for a in fy[1])}


def _sigma(x, y, pts, net):
    from derive.elementwise import elementwise_derivative
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

    for _, definition in net.stages:
        if not isinstance(definition, ElementwiseApplyFunction):
            continue
        D = elementwise_derivative(definition)
        for S, put in _parts(y):
            if S.shape == D.shape and S.has(MatrixDifferential):
                try:
                    if _same(x, put(HadamardProduct(D, S)), pts):
                        return {}
                except (ValueError, TypeError, sympy.ShapeError):
                    continue
    return None


def _parts(y: sympy.Basic):
    """Each matrix sub-expression of ``y``, contiguous runs of a product's factors included, with a
    function that puts another expression in its place."""
    for node in _subexpressions(y):
        yield node, lambda new, node=node: y.xreplace({node: new})
        if isinstance(node, MatMul):
            args = node.args
            for i in range(len(args)):
                for j in range(i + 2, len(args) + 1):
                    if (i, j) == (0, len(args)) or not all(isinstance(a, MatrixExpr) for a in args[i:j]):
                        continue
                    part = MatMul(*args[i:j])
                    yield part, lambda new, node=node, i=i, j=j: y.xreplace(
                        {node: MatMul(*node.args[:i], new, *node.args[j:])})


def _odot(x, y, pts, net):
    def make(s):
        if isinstance(s, MatMul):
            mats = [a for a in s.args if isinstance(a, MatrixExpr)]
            coeff = [a for a in s.args if not isinstance(a, MatrixExpr)]
            if len(mats) == 2 and mats[0].shape == mats[1].shape:
                return sympy.Mul(*coeff) * HadamardProduct(*mats) if coeff else HadamardProduct(*mats)
        return None
    return {} if _try(x, pts, (("", y2) for _, y2 in _replacements(y, make))) is not None else None


def _product(x, y, pts, net):
    """The line is the line before with one term of the product rule left out of a d(AB)."""
    for dd in x.atoms(MatrixDifferential):
        arg = dd.arg
        if not isinstance(arg, (MatMul, HadamardProduct)):
            continue
        mats = [i for i, a in enumerate(arg.args) if isinstance(a, MatrixExpr)]
        terms = [arg.func(*[MatrixDifferential(a) if j == i else a for j, a in enumerate(arg.args)])
                 for i in mats]
        for drop in range(len(terms)):
            rest = [t for k, t in enumerate(terms) if k != drop]
            if rest and _same(x.xreplace({dd: sympy.MatAdd(*rest) if len(rest) > 1 else rest[0]}), y, pts):
                return {}
    return None


_CATALOGUE: tuple[tuple[str, Callable], ...] = (
    ("sign", _sign), ("factor", _factor), ("transpose", _transpose), ("cyclic", _cyclic), ("sigma", _sigma),
    ("odot", _odot), ("product", _product),
)


# --------------------------------------------------------------------------- the write-up

def grade(text: str, *, net: str | None = None, net_name: str = "", shapes: Mapping[str, Sequence] | None = None,
          lang: str = "en", seed: int = 0, source: str = "") -> Report:
    """Grade the write-up ``text`` (Markdown or LaTeX) against ``net`` (a program's text) or the network
    its problem statement defines.  Raises :class:`GradeError` for unusable input.

    >>> r = grade("$$f = \\\\|XW - Y\\\\|_F^2$$\\n\\n$$\\\\frac{\\\\partial f}{\\\\partial W} = 2X^T(XW - Y)$$\\n",
    ...           shapes={"X": ("n", "d"), "W": ("d", "k")})
    >>> [(e.line, e.kind, e.verdict) for e in r.entries]
    [(1, 'definition', 'correct'), (3, 'result', 'correct')]
    """
    if lang not in LANGUAGES:
        raise GradeError(f"--lang: {lang!r} is not one of en, zh")
    groups = equations(text)
    if not groups:
        raise GradeError("the write-up holds no equation ($$ … $$, \\[ … \\], aligned or $…$ with =)")
    wrt = [g2[1] for g in groups for t in g.terms if (g2 := gradient_of(t.latex))]
    try:
        problem = from_program(net, shapes) if net is not None else from_statement(groups, text, shapes, wrt)
    except (StatementError, ExpressionError) as e:
        raise GradeError(str(e)) from None
    ctx = _Context(problem, lang, seed)
    ctx.names = set(problem.names) | {s for n in problem.networks for s in n.symbols} | {m for m, _ in problem.macros}
    entries: list[Entry] = []
    for i, g in enumerate(groups):
        entries += _group(ctx, i, g)
    where = _say(lang, "network_program", source=net_name) if net is not None else _say(lang, "network")
    return Report(source, tuple(entries), where, lang)


def _group(ctx: _Context, i: int, g: Group) -> list[Entry]:
    """The entries of one equation or chain, each with its mathematics where it reads."""
    return [replace(e, math=_math_of(ctx, g, e)) for e in _entries(ctx, i, g)]


def _side(ctx: _Context, latex: str) -> sympy.Basic:
    grad = gradient_of(latex)
    if grad is not None:
        var = ctx.alias(grad[1]) or grad[1]
        return Gradient(sympy.Symbol(grad[0]), ctx.problem.net.symbols[var])
    shapes, subs = ctx._shapes(0, words(latex), ctx.macros(0))
    e = ctx.parse(latex, shapes).expr
    return e.xreplace(subs) if subs else e


def _math_of(ctx: _Context, g: Group, e: Entry) -> tuple[sympy.Basic, ...] | None:
    """The entry's equation as SymPy: both sides of a lone equation, the line of a chain; None where
    a side does not read (the report shows its LaTeX)."""
    try:
        if len(g.terms) == 2:
            return _side(ctx, g.terms[0].latex), _side(ctx, g.terms[1].latex)
        if 0 < e.step < len(g.terms):
            return (_side(ctx, g.terms[e.step].latex),)
    except (ExpressionError, _Unreadable, KeyError, ValueError, TypeError):
        pass
    return None


def _entries(ctx: _Context, i: int, g: Group) -> list[Entry]:
    lang, problem = ctx.lang, ctx.problem
    lone = len(g.terms) == 2
    head = g.terms[0].latex
    if len(g.terms) == 1:
        t = g.terms[0]
        return [Entry(t.line, 0, t.latex, "other", "uncheckable", (), _say(lang, "prose"))]
    if i in problem.definitions:
        name = problem.names and _name(head)
        return [Entry(g.terms[1].line, 0, f"{head} = {g.terms[1].latex}", "definition", "correct", (),
                      _say(lang, "statement", name=str(name)))]
    grad = gradient_of(head)
    if grad is not None:
        out = []
        for j, t in enumerate(g.terms[1:], 1):
            step = 0 if lone else j
            latex = f"{head} = {t.latex}" if lone else t.latex
            out.append(_result(ctx, t.latex, grad[1], t.line, step)
                       if "\\partial" not in t.latex else
                       Entry(t.line, step, latex, "result", "uncheckable", (), _say(lang, "jacobian", what=_partials(t.latex))))
            if lone:
                out[-1] = Entry(**{**out[-1].__dict__, "latex": latex})
        return out
    name = _name(head)
    if name is not None and lone and not _is_differential(ctx, head):
        return [_definition(ctx, g, name)]
    entries = _chain(ctx, g, "chain")
    if lone:
        entries = [Entry(**{**e.__dict__, "latex": f"{head} = {e.latex}"}) for e in entries]
    return entries


def _readable(ctx: _Context, latex: str) -> bool:
    """Whether ``latex`` reads over the network and holds no differential (a shorthand's body)."""
    try:
        return not ctx.read(latex, 0).has(*_DIFFERENTIALS)
    except (ExpressionError, _Unreadable):
        return False


def _is_differential(ctx: _Context, latex: str) -> bool:
    try:
        return ctx.read(latex, 0).has(*_DIFFERENTIALS)
    except (ExpressionError, _Unreadable):
        return False


def _name(latex: str) -> str | None:
    return name_of(latex)


def _definition(ctx: _Context, g: Group, name: str) -> Entry:
    lang = ctx.lang
    head, rhs = g.terms[0], g.terms[1]
    latex = f"{head.latex} = {rhs.latex}"
    line = rhs.line
    try:
        missing = ctx.unknown(rhs.latex)
    except _Unreadable as e:
        return Entry(line, 0, latex, "definition", "uncheckable", (), _say(lang, e.key, **e.kw))
    name = ctx.alias(name) or name
    if name not in ctx.names and name != ctx.problem.loss and not missing and _readable(ctx, rhs.latex):
        ctx.local[name] = rhs.latex
        ctx.names.add(name)
        return Entry(line, 0, latex, "definition", "correct", (), _say(lang, "shorthand", name=name))
    if name not in ctx.names and name != ctx.problem.loss:
        return Entry(line, 0, latex, "definition", "uncheckable", (),
                     _say(lang, "defines_unknown", names=", ".join(dict.fromkeys([name, *missing]))))
    if missing:
        return Entry(line, 0, latex, "definition", "uncheckable", (), _say(lang, "unknown", names=", ".join(missing)))
    entries = _chain(ctx, g, "definition")
    e = entries[0]
    if e.verdict in HOLDS:
        return Entry(line, 0, latex, "definition", e.verdict, e.readings, _say(lang, "restates", name=name))
    return Entry(line, 0, latex, "definition", e.verdict, e.readings,
                 _say(lang, "differs", name=name) if e.verdict == "wrong" else e.message)
