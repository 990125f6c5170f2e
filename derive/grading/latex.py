"""LaTeX as students write it, read into the expression language's text.

This is the grader's bridge to :mod:`derive.lang` until the LaTeX dialect of the language package
(``parse(text, shapes, syntax="latex")``) is merged: it only rewrites tokens (``W_1`` → ``W1``,
``Y_{pred}`` → ``Y_pred``, ``X^T`` → ``X'``, ``\\odot`` → ``.*``, ``tr[…]`` → ``tr(…)``,
``||A||_F^2`` → ``norm2(A)^2``, ``sigmoid'(h)`` → ``(sigmoid(h) .* (1 - sigmoid(h)))``) and marks
differentials (``dX``, ``d(…)``, ``\\mathrm{d}X``); the expression language parses the result.
Nothing is evaluated.

>>> to_tokens(r"2X^T(Y_{pred} - Y)W_2^T \\odot sigmoid'(h)", {"X", "Y_pred", "Y", "W2", "h"}).text
"2 X'(Y_pred - Y)W2' .* (sigmoid(h) .* (1 - sigmoid(h)))"
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FUNCS", "LatexError", "Tokens", "gradient_of", "name_of", "to_tokens"]


class LatexError(ValueError):
    """Text the bridge cannot read (a construct of no matrix calculus it knows)."""


# the derivative of an elementwise function of x, in the expression language
DERIVATIVES = {
    "sigmoid": "(sigmoid({x}) .* (1 - sigmoid({x})))",
    "tanh": "(1 - tanh({x}).^2)",
    "exp": "exp({x})",
    "log": "(1 ./ ({x}))",
    "relu": "step({x})",
    "softplus": "sigmoid({x})",
}
FUNCS = ("sigmoid", "tanh", "relu", "softplus", "exp", "log", "tr", "softmax", "logsoftmax", "sum", "diag",
          "batchnorm", "layernorm", "max", "norm2", "sqrt", "mean_rows", "var_rows")
_COMMANDS = {
    r"\odot": ".*", r"\circ": ".*", r"\oslash": "./", r"\cdot": "*", r"\times": "*", r"\ast": "*",
    r"\sigma": "sigmoid", r"\tanh": "tanh", r"\exp": "exp", r"\log": "log", r"\ln": "log", r"\max": "max",
    r"\operatorname": "", r"\mathrm": "", r"\text": "", r"\textrm": "", r"\mathbf": "", r"\boldsymbol": "",
    r"\bm": "", r"\mathit": "",
    r"\gamma": "gamma", r"\beta": "beta", r"\mu": "mu", r"\epsilon": "eps", r"\varepsilon": "eps",
    r"\lambda": "lambda", r"\alpha": "alpha", r"\delta": "delta", r"\theta": "theta",
    r"\top": "T", r"\intercal": "T", r"\prime": "'", r"\minus": "-",
}
_DROP = {r"\left", r"\right", r"\big", r"\Big", r"\bigg", r"\Bigg", r"\,", r"\;", r"\!", r"\:", r"\quad",
         r"\qquad", r"\displaystyle", r"\limits", "&", "~"}
_ACCENTS = {r"\hat": "hat", r"\bar": "bar", r"\tilde": "tilde", r"\widehat": "hat", r"\widetilde": "tilde"}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\[{}|,;:! ]|\|\||[A-Za-z]+|[0-9]+(?:\.[0-9]+)?|\s+|.", re.S)
_OPEN, _CLOSE = "([{", ")]}"


@dataclass
class Tokens:
    """The expression-language text as tokens; ``diffs`` maps placeholder names to what they are
    differentials of (a name, or the text of a bracketed expression); ``notes`` says what was mended."""

    items: list[str]
    diffs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        out = ""
        for t in self.items:
            if (out and _wordy(out[-1]) and _wordy(t[0])) or (out and t in (".*", "./", "+", "-", "*", "=")) or out.endswith((".*", "./", " +", " -", "*")):
                out += " "
            out += t
        return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", out)).strip()


def _wordy(c: str) -> bool:
    return c.isalnum() or c == "_"


def _lex(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if not t.isspace()]


def _group(toks: list[str], i: int) -> tuple[list[str], int]:
    """The tokens of the braced group (or single token) at ``i`` and the index after it."""
    if i >= len(toks):
        raise LatexError("a command lacks its argument")
    if toks[i] != "{":
        t = toks[i]
        if len(t) > 1 and t[0].isalnum():   # X^TE is X^{T} E: a script takes one character
            toks[i:i + 1] = [t[0], t[1:]]
        return [toks[i]], i + 1
    depth, j = 0, i
    while j < len(toks):
        depth += toks[j] == "{"
        depth -= toks[j] == "}"
        if depth == 0:
            return toks[i + 1:j], j + 1
        j += 1
    raise LatexError("an unclosed brace")


def _plain(toks: list[str]) -> str:
    """A subscript's or accent's content as name characters (``\\text{sigmoid}`` → ``sigmoid``)."""
    out = "".join(_COMMANDS.get(t, t) if t.startswith("\\") else t for t in toks if t not in "{}")
    if not re.fullmatch(r"[A-Za-z0-9]*", out):
        raise LatexError(f"a subscript {''.join(toks)!r} is not a name")
    return out


def name_of(latex: str) -> str:
    """The variable a LaTeX name means: ``W_1`` → ``W1``, ``Y_{pred}`` → ``Y_pred``, ``\\hat{Y}`` → ``Yhat``.

    >>> name_of("h_{\\\\text{sigmoid}}"), name_of("W_2"), name_of("\\\\hat{Y}")
    ('h_sigmoid', 'W2', 'Yhat')
    """
    toks = _lex(latex)
    words = _words(toks)
    if len(words) != 1 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", words[0]):
        raise LatexError(f"{latex!r} is not a name")
    return words[0]


_STYLES = (r"\mathrm", r"\operatorname", r"\text", r"\textrm", r"\mathbf", r"\boldsymbol", r"\bm", r"\mathit")
_BARS = (r"\|", "||", r"\lVert", r"\rVert", r"\Vert", "‖")
_BRACES = {r"\{": "(", r"\}": ")", "{": "(", "}": ")"}
_UNICODE = {"−": "-", "⊙": ".*", "∘": ".*", "·": "*", "×": "*", "ᵀ": "'", "⊤": "'"}


def _accent(toks: list[str], i: int, out: list[str]) -> int:
    accent = _ACCENTS[toks[i]]
    body, i = _group(toks, i + 1)
    out.append(_plain(body) + accent)
    return i


def _style(toks: list[str], i: int, out: list[str]) -> int:
    t = toks[i]
    body, i = _group(toks, i + 1)
    word = _plain(body) if body else ""
    if t == r"\text" and not re.fullmatch(r"[A-Za-z0-9]+", word or "-"):
        raise LatexError("prose")
    out.append({"1": "𝟏"}.get(word, word))
    return i


def _frac(toks: list[str], i: int, out: list[str]) -> int:
    num, i = _group(toks, i + 1)
    den, i = _group(toks, i)
    if any("partial" in x for x in num + den):
        raise LatexError("a derivative ∂…/∂… inside an expression")
    out += ["(", "(", *_words(num), ")", "/", "(", *_words(den), ")", ")"]
    return i


def _sqrt(toks: list[str], i: int, out: list[str]) -> int:
    body, i = _group(toks, i + 1)
    out += ["sqrt", "(", *_words(body), ")"]
    return i


def _subscript(toks: list[str], i: int, out: list[str]) -> int:
    body, i = _group(toks, i + 1)
    content = _plain(body)
    if not out:
        raise LatexError("a subscript of nothing")
    if out[-1] == "‖" and content == "F":
        out.append("_F")
        return i
    prev = out.pop()
    head, last = (prev[:-1], prev[-1]) if re.fullmatch(r"[A-Za-z]+", prev) else ("", prev)
    if head:
        out.append(head)
    out.append(last + content if content.isdigit() else f"{last}_{content}")
    return i


def _superscript(toks: list[str], i: int, out: list[str]) -> int:
    body, i = _group(toks, i + 1)
    words = _words(body)
    if words in (["T"], ["'"]):
        out.append("'")
    elif words[:1] == [".*"]:         # A^{∘p}: the Hadamard power
        out += [".^", "(", *words[1:], ")"]
    elif words and all(w == "'" for w in words):
        out += words
    else:
        out += ["^", *(words if len(words) == 1 else ["(", *words, ")"])]
    return i


def _command(toks: list[str], i: int, out: list[str]) -> int:
    t = toks[i]
    if t == r"\partial":
        raise LatexError("a derivative ∂…/∂… inside an expression")
    if t not in _COMMANDS:
        raise LatexError(f"the command {t} is not read")
    if _COMMANDS[t]:
        out.append(_COMMANDS[t])
    return i + 1


def _handler(toks: list[str], i: int):
    t = toks[i]
    if t in _ACCENTS:
        return _accent
    if t in _STYLES and i + 1 < len(toks) and toks[i + 1] == "{":
        return _style
    return {r"\frac": _frac, r"\sqrt": _sqrt, "_": _subscript, "^": _superscript}.get(t)


def _words(toks: list[str]) -> list[str]:
    """Names, numbers, operators and brackets, with subscripts, accents and commands read."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        handler = _handler(toks, i)
        if handler is not None:
            i = handler(toks, i, out)
        elif t in _DROP:
            i += 1
        elif t in _BARS or t in _BRACES:
            out.append("‖" if t in _BARS else _BRACES[t])
            i += 1
        elif t.startswith("\\"):
            i = _command(toks, i, out)
        else:
            out.append(_UNICODE.get(t, t))
            i += 1
    return out


def _match(items: list[str], i: int) -> int:
    """Index of the bracket closing the one at ``i`` (any kind), or -1."""
    depth = 0
    for j in range(i, len(items)):
        if items[j] in _OPEN:
            depth += 1
        elif items[j] in _CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _balance(items: list[str], notes: list[str]) -> list[str]:
    """Brackets matched by kind-agnostic depth; stray closers at the end dropped (with a note)."""
    depth, out = 0, []
    for t in items:
        if t in _CLOSE:
            if depth == 0:
                notes.append(f"a stray '{t}' is ignored")
                continue
            depth -= 1
        elif t in _OPEN:
            depth += 1
        out.append(t)
    if depth:
        raise LatexError("unbalanced brackets")
    return ["(" if t in _OPEN else ")" if t in _CLOSE else t for t in out]


def _norms(items: list[str]) -> list[str]:
    """``‖A‖_F`` → ``norm2(A)``; ``‖A‖`` alone is the Frobenius norm too."""
    out: list[str] = []
    i = 0
    while i < len(items):
        if items[i] == "‖":
            j = items.index("‖", i + 1) if "‖" in items[i + 1:] else -1
            if j < 0:
                raise LatexError("an unclosed norm ‖…")
            out += ["norm2", "(", *_norms(items[i + 1:j]), ")"]
            i = j + 1 + (j + 1 < len(items) and items[j + 1] == "_F")
            continue
        out.append(items[i])
        i += 1
    return out


def _functions(items: list[str], names: set[str]) -> list[str]:
    """Split letter runs into function names and the rest; ``f'(x)`` → f's derivative."""
    out: list[str] = []
    for t in items:
        if re.fullmatch(r"[A-Z]{2,}", t) and t not in names:
            out += split_name(t, names)
            continue
        if re.fullmatch(r"[A-Za-z]+[A-Za-z0-9_]*", t) and t not in names:
            for fn in sorted(FUNCS, key=len, reverse=True):
                if t != fn and t.startswith(fn) and t not in names and t[len(fn):] in names:
                    out += [fn, t[len(fn):]]
                    break
            else:
                out.append(t)
            continue
        out.append(t)
    # f'(x) and f' x
    res: list[str] = []
    i = 0
    while i < len(out):
        t = out[i]
        if t in DERIVATIVES and i + 2 < len(out) and out[i + 1] == "'" and out[i + 2] == "(":
            j = _match(out, i + 2)
            if j < 0:
                raise LatexError("unbalanced brackets")
            inner = Tokens(_functions(out[i + 3:j], names)).text
            res += ["(", DERIVATIVES[t].format(x=inner)[1:-1] if DERIVATIVES[t].startswith("(") else
                    DERIVATIVES[t].format(x=inner), ")"]
            i = j + 1
            continue
        res.append(t)
        i += 1
    return res


def split_name(word: str, names: set[str]) -> list[str]:
    """A run of letters as the known names (or single letters) it is written with: ``XW`` → X, W.

    >>> split_name("XW", {"X"}), split_name("HW", {"HW"})
    (['X', 'W'], ['HW'])
    """
    if word in names:
        return [word]
    for cut in range(len(word) - 1, 0, -1):
        head = word[:cut]
        if head in names or len(head) == 1:
            return [head, *split_name(word[cut:], names)]
    return [word]


def _differentials(items: list[str], names: set[str], diffs: dict[str, str], loss: str) -> list[str]:
    """``d`` before a name or a bracket, ``dX`` for a known X: a placeholder ``d__k`` (see Tokens)."""
    out: list[str] = []
    i = 0
    while i < len(items):
        t = items[i]
        target = None
        if t == "d" and "d" not in names and i + 1 < len(items):
            nxt = items[i + 1]
            if nxt == "(":
                j = _match(items, i + 1)
                inner = _differentials(items[i + 2:j], names, diffs, loss)
                target, i = Tokens(inner).text, j + 1
            elif nxt in names or nxt == loss:
                target, i = nxt, i + 2
        elif t.startswith("d") and t not in names and (t[1:] in names or t[1:] == loss):
            target, i = t[1:], i + 1
        if target is None:
            out.append(t)
            i += 1
            continue
        key = f"d__{len(diffs)}"
        diffs[key] = target
        out.append(key)
    return out


def to_tokens(latex: str, names: set[str], loss: str = "f") -> Tokens:
    """``latex`` (one side of an equation) as expression-language tokens over the known ``names``."""
    notes: list[str] = []
    items = _words(_lex(latex.replace("\\\\", " ")))
    items = _balance(items, notes)
    items = _norms(items)
    items = _functions(items, names)
    diffs: dict[str, str] = {}
    items = _differentials(items, names, diffs, loss)
    return Tokens(items, diffs, notes)


_PARTIAL = re.compile(r"^\s*\\frac\s*\{\s*\\partial\s*(.+?)\s*\}\s*\{\s*\\partial\s*(.+?)\s*\}\s*$", re.S)
_PARTIAL_SLASH = re.compile(r"^\s*(?:∂|\\partial)\s*(\S+?)\s*/\s*(?:∂|\\partial)\s*(.+?)\s*$", re.S)


def gradient_of(latex: str) -> tuple[str, str] | None:
    """``\\frac{\\partial f}{\\partial W_1}`` → ``("f", "W1")``; None when ``latex`` is no derivative.

    >>> gradient_of(r"\\frac{\\partial f}{\\partial Y_{pred}}")
    ('f', 'Y_pred')
    """
    m = _PARTIAL.match(latex) or _PARTIAL_SLASH.match(latex)
    if not m:
        return None
    try:
        return name_of(m.group(1)), name_of(m.group(2))
    except LatexError:
        return None
