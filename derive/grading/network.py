"""The network a write-up is about: from ``--net`` (a program) or from its own problem statement.

The problem statement is the definitions ``name = expression`` from the start of the document up to
the first one that defines a scalar (the loss).  Shapes come from ``--shape``, from declarations in
the text (``X \\in \\mathbb{R}^{n \\times d}``), or are inferred from use; a name whose shape stays
open gets fresh dimensions (n, d, m, k, p, …) in the order names are met.  A name added as a whole
term of a sum whose shape was inferred as a full matrix (``h = XW_1 + b_1``: b₁ n×m) may also be a row
broadcast over the batch: the write-up does not say, so both readings are networks to grade against.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy

from derive.grading.extract import Group
from derive.grading.names import name_of, program_text
from derive.lang import FUNCTIONS
from derive.lang.errors import ExpressionError
from derive.networks import Network
from derive.program import program
from derive.render.locale import LANGUAGES, get_locale

__all__ = ["Problem", "StatementError", "from_program", "from_statement"]

_FRESH = ("n", "d", "m", "k", "p", "q", "r", "s", "t", "u", "v", "w")
_UNUSED = re.compile(r"(\w+) is assigned but never used")
_OPEN = re.compile(r"unknown name '(\w+)': its shape cannot be inferred \(only (\S+?)×(\S+?)\)")
_DECLARED = re.compile(
    r"((?:\\[A-Za-z]+(?:\{[^}]*\})?|(?<![A-Za-z\\])[A-Za-z])(?:_\{[^}]*\}|_[A-Za-z0-9])?)\s*\\in\s*\\mathbb\{R\}\^\{([^}]*)\}")
_TIMES = re.compile(r"\\times|×|,|\*|\\cdot")


class StatementError(ValueError):
    """The write-up defines no network the grader can use."""


@dataclass(frozen=True)
class Problem:
    """The network(s) to grade against: one per reading of the statement (``labels``), the loss's name,
    the definitions' group indices and the names the statement defines."""

    networks: tuple[Network, ...]
    labels: tuple[dict[str, str], ...]
    loss: str
    definitions: tuple[int, ...]
    names: frozenset[str]
    macros: tuple[tuple[str, str], ...] = ()      # (name, its LaTeX): definitions the loss does not use

    @property
    def net(self) -> Network:
        return self.networks[0]

    def shapes(self) -> dict[str, tuple]:
        return {name: tuple(s.shape) for name, s in self.net.symbols.items()}


def declared_shapes(text: str) -> dict[str, tuple]:
    """``X \\in \\mathbb{R}^{n \\times d}`` in the text → ``{"X": ("n", "d")}``.

    >>> declared_shapes(r"$X \\in \\mathbb{R}^{n \\times d}$, $W_1 \\in \\mathbb{R}^{d \\times m}$")
    {'X': ('n', 'd'), 'W1': ('d', 'm')}
    """
    out: dict[str, tuple] = {}
    for m in _DECLARED.finditer(text):
        dims = [x.strip().strip("{}") for x in _TIMES.split(m.group(2))]
        if len(dims) == 2 and all(re.fullmatch(r"[A-Za-z0-9]+", x) for x in dims):
            name = name_of(m.group(1))
            if name is not None:
                out[name] = tuple(int(x) if x.isdigit() else x for x in dims)
    return out


def from_program(text: str, shapes: Mapping[str, Sequence] | None = None) -> Problem:
    """A program (``--net net.tg``) as the network to grade against."""
    net = program(text, shapes)
    return Problem((net,), (dict.fromkeys(LANGUAGES, ""),), "f", (), frozenset(net.symbols))


def _assignments(groups: Sequence[Group]) -> list[tuple[int, str, str]]:
    """(group index, name, right-hand side) of the leading definitions ``name = expression``."""
    out = []
    for i, g in enumerate(groups):
        if len(g.terms) != 2 or "\\partial" in g.terms[1].latex or g.arrow:
            break
        name = name_of(g.terms[0].latex)
        if name is None:
            break
        if any(name == n for _, n, _ in out):
            break
        out.append((i, name, g.terms[1].latex))
    return out


def _summands(tokens: list[str]) -> set[str]:
    """Names that are whole terms of a top-level sum."""
    out, depth, term = set(), 0, []
    for t in tokens + ["+"]:
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        if depth == 0 and t in ("+", "-"):
            if len(term) == 1 and re.fullmatch(r"[A-Za-z_]\w*", term[0]):
                out.add(term[0])
            term = []
        elif not (depth == 0 and t in ("+", "-")):
            term.append(t)
    return out


def _shape_text(shape: tuple) -> str:
    return "×".join(str(x) for x in shape)


def _build(assign: list[tuple[str, str]], shapes: dict[str, tuple], params: set[str]) -> tuple[Network, dict]:
    """The program of the assignments, fresh dimensions given to shapes left open; returns the network
    and the shapes it settled on.  A definition the loss does not use is left out of the program (the
    write-up uses it as a name for its expression: see ``Problem.macros``)."""
    shapes = dict(shapes)
    assign = list(assign)
    used = {str(x) for s in shapes.values() for x in s}
    fresh = [x for x in _FRESH if x not in used and all(x != n for n, _ in assign)]
    for _ in range(40):
        decl = [f"{n}: {_shape_text(s)}" for n, s in shapes.items() if s]
        text = "\n".join(decl + [f"{n} = {rhs}" for n, rhs in assign])
        try:
            net = program(text, wrt=sorted(params) or None)
            return net, {**{s.name: tuple(str(x) for x in s.shape) for s in net.inputs + net.params}, **shapes}
        except ExpressionError as e:
            unused = _UNUSED.search(str(e))
            if unused and any(n == unused.group(1) for n, _ in assign):
                assign = [(n, rhs) for n, rhs in assign if n != unused.group(1)]
                continue
            m = _OPEN.search(str(e))
            if not m or not fresh:
                raise StatementError(str(e)) from None
            name, r, c = m.groups()
            r = r if r != "?" else fresh.pop(0)
            c = c if c != "?" else fresh.pop(0)
            shapes[name] = (r, c)
    raise StatementError("the shapes of the problem statement cannot be settled")


def from_statement(groups: Sequence[Group], text: str, shapes: Mapping[str, Sequence] | None = None,
                   wrt: Sequence[str] = ()) -> Problem:
    """The network the write-up's problem statement defines (see the module)."""
    assign = _assignments(groups)
    if not assign:
        raise StatementError("the write-up defines no network (no definitions name = expression before "
                             "its derivations); give one with --net")
    known = {**declared_shapes(text), **{k: tuple(v) for k, v in (shapes or {}).items()}}
    names = {n for _, n, _ in assign} | set(known)
    ascii_assign: list[tuple[str, str]] = []
    tokens: dict[str, list[str]] = {}
    latex: dict[str, str] = {}
    last_error: Exception | None = None
    for count, (_, name, rhs) in enumerate(assign, 1):
        try:
            text, found = program_text(rhs, names)
        except ExpressionError as e:
            raise StatementError(f"the definition of {name} cannot be read: {e}") from None
        if _differential(found, names):
            break
        ascii_assign.append((name, text))
        tokens[name] = [{"[": "(", "]": ")"}.get(w, w) for w in text.split()]
        latex[name] = rhs
        defined = {n for n, _ in ascii_assign}
        leaves = {w for items in tokens.values() for w in items if re.fullmatch(r"[A-Za-z_]\w*", w)}
        functions = set(FUNCTIONS) | {"max"}
        params = {w for w in wrt if w in leaves and w not in defined} or {w for w in leaves - defined
                                                                          if w not in functions}
        try:
            full, settled = _build(ascii_assign, known, params)
        except StatementError as e:
            last_error = e
            continue
        macros = tuple((n, latex[n]) for n, _ in ascii_assign[:-1]
                       if n not in {s.name for s, _ in full.stages})
        if not isinstance(full.loss, sympy.Expr) or len(full.stages) + len(macros) != count - 1:
            continue
        nets, labels = [full], [dict.fromkeys(LANGUAGES, "")]
        rows = {w for n in defined for w in _summands(tokens[n]) if w not in defined and w not in known
                and w in settled and settled[w][0] != "1" and w in {s.name for s in full.params + full.inputs}}
        if rows:
            row_shapes = {**{k: v for k, v in settled.items() if k in known or k in rows},
                          **{w: (1, settled[w][1]) for w in rows}}
            row_shapes.update({k: v for k, v in settled.items() if k not in row_shapes})
            try:
                nets.append(_build(ascii_assign, row_shapes, params)[0])
                labels = [_bias_label(rows, settled, "full"), _bias_label(rows, settled, "row")]
            except StatementError:
                pass
        return Problem(tuple(nets), tuple(labels), name, tuple(i for i, _, _ in assign[:count]),
                       frozenset(defined), macros)
    raise StatementError(f"the problem statement defines no scalar loss{': ' + str(last_error) if last_error else ''}")


def _differential(found: list[str], names: set[str]) -> bool:
    """Whether a right-hand side holds a differential (dX, d(…)): the statement has ended."""
    return any(w == "d" or (w.startswith("d") and w[1:] in names) for w in found) and "d" not in names


def _bias_label(rows: set[str], shapes: dict, how: str) -> dict[str, str]:
    """The words of a reading of the network: each bias in ``rows`` a full matrix or a row."""
    out = {}
    for lang in LANGUAGES:
        say = get_locale(lang).say
        out[lang] = say("grade_list_sep").join(
            say("grade_bias_full", name=n, shape=_shape_text(shapes[n])) if how == "full" else
            say("grade_bias_row", name=n, cols=str(shapes[n][1])) for n in sorted(rows))
    return out
