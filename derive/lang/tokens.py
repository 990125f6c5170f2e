"""The tokenizer of the expression language: the tool's notation and what people type
(Unicode operators, superscript powers, 𝟏ₙ, Greek names) as canonical tokens."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import sympy

from derive.lang.errors import ExpressionError, ExpressionLimitError
from derive.limits import MAX_LITERAL_DIGITS


@dataclass(frozen=True)
class _Token:
    kind: str   # "num", "name", "op", "sup" (a superscript power), "ones" (𝟏, 𝟏ₙ), "end"
    text: str   # canonical: '−' is "-", 'ᵀ' is "'", 'λ' is "lambda", '²' is "^2"
    pos: int    # 0-based offset
    src: str = ""   # the text as typed, where it differs from ``text``

    @property
    def column(self) -> int:
        return self.pos + 1

    @property
    def source(self) -> str:
        return self.src or self.text


_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_TAIL = re.compile(r"[A-Za-z0-9_]*")
_IDENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SINGLE = frozenset("+-*/^'(),[]")
_SPACES = frozenset(" \t\r\n\u00a0\u2009\u202f")
# The tool's own notation and what people type, as the operators of the language.
_UNICODE_OPS = {
    "−": "-", "–": "-",                          # minus sign, en dash
    "@": "*", "×": "*", "·": "*", "⋅": "*",      # products
    "⊙": ".*", "∘": ".*", "⊘": "./",             # Hadamard product and division
    "ᵀ": "'", "⊤": "'", "’": "'",                # transpose
}
_SUPERSCRIPT_DIGITS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6",
                       "⁷": "7", "⁸": "8", "⁹": "9"}
_SUBSCRIPT_CHARS = dict(zip("₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", "0123456789aehijklmnoprstuvx"))
_ONE = "𝟏"
# Lower-case Greek letters are the names the text printer writes them for (λ for lambda); σ is
# the sigmoid function.
_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
          "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu",
          "ξ": "xi", "π": "pi", "ρ": "rho", "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi",
          "ψ": "psi", "ω": "omega"}
_FUNCTION_ALIASES = {"σ": "sigmoid"}


def _superscript(text: str, i: int) -> tuple[str, int] | None:
    """(exponent, end) of a superscript power at ``i``: ``²`` → "2", ``⁻¹`` → "-1", ``⁻ᵀ`` → "-T"."""
    j = i
    sign = ""
    if j < len(text) and text[j] in "⁻⁺":
        sign = "-" if text[j] == "⁻" else ""
        j += 1
        if sign and j < len(text) and text[j] == "ᵀ":
            return "-T", j + 1
    k = j
    while k < len(text) and text[k] in _SUPERSCRIPT_DIGITS:
        k += 1
    if k == j:
        return None
    return sign + "".join(_SUPERSCRIPT_DIGITS[ch] for ch in text[j:k]), k


def _ones_subscript(text: str, i: int) -> tuple[str, int]:
    """(dimension, end) of the subscript after 𝟏 at ``i``: 𝟏ₙ, 𝟏_n, 𝟏_(m1); "" for none."""
    j = i
    while j < len(text) and text[j] in _SUBSCRIPT_CHARS:
        j += 1
    if j > i:
        return "".join(_SUBSCRIPT_CHARS[ch] for ch in text[i:j]), j
    if text.startswith("_(", i):
        m = _IDENT.match(text, i + 2)
        if m and text.startswith(")", m.end()):
            return m.group(), m.end() + 1
    if text.startswith("_", i) and i + 1 < len(text) and text[i + 1] in _IDENT_CHARS:
        return text[i + 1], i + 2
    return "", i


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens on demand, so that errors come out left to right."""
    i, n = 0, len(text)
    while i < n:
        if text[i] in _SPACES:
            i += 1
            continue
        tok, i = _ascii_token(text, i) or _notation_token(text, i)
        yield tok
    yield _Token("end", "", n)


def _ascii_token(text: str, i: int) -> tuple[_Token, int] | None:
    """(token, end) of a name, number or ASCII operator at ``i``; None for another character."""
    ch, nxt, n = text[i], text[i + 1:i + 2], len(text)
    if ch in _IDENT_CHARS and not ch.isdigit():
        m = _IDENT.match(text, i)
        assert m is not None
        return _Token("name", m.group(), i), m.end()
    if (ch.isdigit() and ch in _IDENT_CHARS) or (ch == "." and nxt.isdigit() and nxt in _IDENT_CHARS):
        m = _NUMBER.match(text, i)
        assert m is not None
        return _Token("num", m.group(), i), m.end()
    if ch == ".":
        if nxt in ("*", "/", "^"):
            return _Token("op", "." + nxt, i), i + 2
        if nxt == "T" and not (i + 2 < n and text[i + 2] in _IDENT_CHARS):
            return _Token("op", ".T", i), i + 2
        raise ExpressionError("unexpected character '.': expected '.*', './', '.^', '.T' or a number",
                              i + 1, ".", text, "syntax")
    if ch == "*" and nxt == "*":
        raise ExpressionError("'**' is not an operator: write '^' for powers", i + 1, "**", text, "syntax")
    if ch in _SINGLE:
        return _Token("op", ch, i), i + 1
    return None


def _notation_token(text: str, i: int) -> tuple[_Token, int]:
    """(token, end) of the tool's notation at ``i``: ∘², ⊙, ², 𝟏ₙ, σ, Greek names."""
    ch = text[i]
    if ch == "∘" and _superscript(text, i + 1):
        exponent, end = _superscript(text, i + 1)
        if exponent == "-T":
            raise ExpressionError("'∘⁻ᵀ' is not a power", i + 1, text[i:end], text, "syntax")
        return _Token("sup", ".^" + exponent, i, text[i:end]), end
    if ch == "∘" and text.startswith("^", i + 1):   # X∘^c, the printer's Hadamard power by a non-digit
        return _Token("op", ".^", i, "∘^"), i + 2
    if ch in _UNICODE_OPS:
        return _Token("op", _UNICODE_OPS[ch], i, ch), i + 1
    if _superscript(text, i):
        exponent, end = _superscript(text, i)
        return _Token("sup", "^" + exponent, i, text[i:end]), end
    if ch == _ONE:
        dim, end = _ones_subscript(text, i + 1)
        return _Token("ones", dim, i, text[i:end]), end
    if ch in _FUNCTION_ALIASES:
        return _Token("name", _FUNCTION_ALIASES[ch], i, ch), i + 1
    if ch in _GREEK:
        m = _IDENT_TAIL.match(text, i + 1)
        assert m is not None
        return _Token("name", _GREEK[ch] + m.group(), i, text[i:m.end()]), m.end()
    raise ExpressionError(f"unexpected character {ch!r}", i + 1, ch, text, "syntax")


def _number(tok: _Token, text: str) -> sympy.Rational:
    mantissa, _, exponent = tok.text.lower().partition("e")
    digits = len(mantissa.replace(".", "").lstrip("0"))
    if digits > MAX_LITERAL_DIGITS or (exponent and abs(int(exponent)) > MAX_LITERAL_DIGITS):
        raise ExpressionLimitError(f"number {tok.text!r} is too large or too long (at most {MAX_LITERAL_DIGITS} "
                                   "digits and exponents up to e300, derive.limits.MAX_LITERAL_DIGITS)",
                                   tok.column, tok.text, text)
    f = Fraction(tok.text)
    return sympy.Rational(f.numerator, f.denominator)
