"""The names of a write-up, as the language's LaTeX lexer (:mod:`derive.lang.latex`) reads them, and
what the grader does with them that the language does not: match a write-up's name to the network's
(``h_sigmoid`` is the stage ``H = sigmoid(h)`` of a program), split names written together before
any is declared (``XW_1`` in a problem statement is X W1), and write a definition as the program
text the network is built from.  Nothing here parses an expression: the language does.

>>> name_of(r"h_{\\text{sigmoid}}"), name_of("W_2"), name_of(r"\\hat{Y}"), name_of("XW + b")
('h_sigmoid', 'W2', 'Yhat', None)
>>> gradient_of(r"\\frac{\\partial f}{\\partial Y_{pred}}")
('f', 'Y_pred')
"""
from __future__ import annotations

import re

from derive.lang import ExpressionError
from derive.lang.functions import is_elementwise
from derive.lang.latex import latex_tokens
from derive.networks import Network

__all__ = ["alias", "gradient_of", "name_of", "notation", "program_text", "split_name", "words"]

_SLASH = re.compile(r"^\s*(?:∂|\\partial)\s*(\S+?)\s*/\s*(?:∂|\\partial)\s*(.+?)\s*$", re.S)
_CAPITALS = re.compile(r"([A-Z])([A-Z][A-Za-z]*[0-9]*)")


def _tokens(latex: str) -> list:
    return [t for t in latex_tokens(latex) if t.kind != "end"]


def words(latex: str) -> list[str]:
    """The names the lexer reads in ``latex`` (raises :class:`ExpressionError` where it cannot).

    >>> words(r"tr[2(Y_{pred} - Y)^T h_{sigmoid}d(W_2)]")
    ['tr', 'Y_pred', 'Y', 'h_sigmoid', 'd', 'W2']
    """
    return [t.text for t in _tokens(latex) if t.kind == "name"]


def name_of(latex: str) -> str | None:
    """The one name ``latex`` is (``W_1`` → W1, ``Y_{pred}`` → Y_pred), or None."""
    try:
        toks = _tokens(latex)
    except ExpressionError:
        return None
    return toks[0].text if len(toks) == 1 and toks[0].kind == "name" else None


def gradient_of(latex: str) -> tuple[str, str] | None:
    """``\\frac{\\partial f}{\\partial W_1}`` (or ``∂f/∂W1``) → ``("f", "W1")``; None for anything else."""
    m = _SLASH.match(latex)
    if m:
        f, x = name_of(m.group(1)), name_of(m.group(2))
        return (f, x) if f and x else None
    try:
        toks = _tokens(latex)
    except ExpressionError:
        return None
    if len(toks) != 1 or toks[0].kind != "grad":
        return None
    f, x = toks[0].text.split("/")
    return f, x


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


def _split_capitals(word: str, names: set[str]) -> list[str]:
    """``XW1`` → X, W1 where XW1 is not a name: capitals written together are several names."""
    if word in names or not re.fullmatch(r"[A-Z]{2,}[0-9]*", word):
        return [word]
    m = _CAPITALS.fullmatch(word)
    assert m is not None
    return [m.group(1), *_split_capitals(m.group(2), names)]


def program_text(latex: str, names: set[str]) -> tuple[str, list[str]]:
    """The right-hand side of a problem statement's definition as the program's text (the language's
    canonical tokens, written out), and its names; capitals written together are split (no name is
    declared yet for the language to split them by).  Raises :class:`ExpressionError`.

    >>> program_text(r"h_{sigmoid}W_2 + b_2", set())[0]
    'h_sigmoid W2 + b2'
    >>> program_text(r"||Y - Y_{pred}||_F^2", {"Y_pred"})
    ('norm2 ( Y - Y_pred ) ^ 2', ['norm2', 'Y', 'Y_pred'])
    >>> program_text(r"XW_1 + b_1", set())[1]
    ['X', 'W1', 'b1']
    """
    out: list[str] = []
    found: list[str] = []
    for t in _tokens(latex):
        if t.kind == "grad":
            raise ExpressionError("a derivative ∂…/∂… in a definition", t.column, t.source, latex, "unsupported")
        if t.kind == "name":
            parts = _split_capitals(t.text, names)
            out += parts
            found += parts
        elif t.kind == "ones":
            out.append(f"𝟏_({t.text})" if t.text else "𝟏")
        elif t.kind == "sup" and t.text == "^-T":
            out.append("⁻ᵀ")
        else:
            out.append(t.text)
    return " ".join(out), found


_SYMBOLS = {".*": "⊙", "./": "⊘", "*": "·", "-": "−"}
_SPACED = {"+", "−", "⊙", "⊘", "·", "/"}


def _notation_side(latex: str) -> str:
    try:
        toks = _tokens(latex)
    except ExpressionError:
        return re.sub(r"\\([A-Za-z]+)", r"\1", latex).replace("$", "")
    out = ""
    prev = None
    for t in toks:
        if t.kind == "grad":
            f, x = t.text.split("/")
            word = f"∂{f}/∂{x}"
        elif t.kind == "ones":
            word = "𝟏" + (f"_{t.text}" if t.text else "")
        elif t.kind == "op" and t.text == "'":
            word = "′" if prev is not None and prev.kind == "name" and is_elementwise(prev.text) else "ᵀ"
        else:
            word = _SYMBOLS.get(t.text, t.text) if t.kind == "op" else t.text
        binary = word in _SPACED and prev is not None and not (prev.kind == "op" and prev.text in "([,")
        if binary:
            out += f" {word} "
        elif out and not out.endswith(" ") and prev is not None and (
                (t.kind == "name" and (prev.kind == "name" or (prev.text == "'" and ("_" in t.text or t.text == "d"))))
                or (prev.text == "'" and t.text == "[")):     # Aᵀ d(B), Aᵀ [B ⊙ C]: room to wrap
            out += " " + word
        else:
            out += word
        prev = t
    return out.strip()


def notation(latex: str) -> str:
    """The write-up's LaTeX in the tool's notation, where TeX is not typeset (the terminal, a table's
    cell on a web page): the language's tokens written out (a text it cannot read loses only its
    backslashes).

    >>> notation(r"\\frac{\\partial f}{\\partial W_1} = 2X^T(Y_{pred} - Y)W_2^T \\odot \\sigma'(h)")
    '∂f/∂W1 = 2Xᵀ(Y_pred − Y)W2ᵀ ⊙ sigmoid′(h)'
    >>> notation(r"tr[2(Y_{pred} - Y)^T h_{sigmoid}d(W_2)]")
    'tr(2(Y_pred − Y)ᵀ h_sigmoid d(W2))'
    """
    return " = ".join(_notation_side(side) for side in latex.split(" = "))


def alias(word: str, net: Network) -> str | None:
    """The network's name for a name of the write-up: the same spelt with or without underscores
    (Y_pred for Ypred), or the stage a name like h_sigmoid means (H = sigmoid(h)); None."""
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

    from derive.elementwise import elementwise_function, function_record

    key = word.replace("_", "").lower()
    same = [n for n in net.symbols if n.replace("_", "").lower() == key]
    if len(same) == 1:
        return same[0]
    if "_" in word:
        base, fn = word.rsplit("_", 1)
        for Z, definition in net.stages:
            if isinstance(definition, ElementwiseApplyFunction) and getattr(definition.expr, "name", None) == base:
                record = function_record(elementwise_function(definition))
                if record is not None and record.name == fn:
                    return Z.name
    return None
