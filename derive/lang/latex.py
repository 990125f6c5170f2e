"""The LaTeX dialect's tokenizer: what students write in ``$…$`` as the language's canonical tokens.

``2X^T[(Y_{pred} - Y)W_2^T \\odot \\sigma'(h)]`` reads as the tokens of ``2X'[(Y_pred - Y)W2' .*
sigmoid'(h)]``, which the one grammar (grammar.lark) parses; every token keeps its column in the
LaTeX text, so errors point into what was written.  The mapping:

* names: a run of letters (and digits) with an optional subscript: ``W_1`` is ``W1``, ``Y_{pred}``
  is ``Y_pred`` (read as a declared ``Ypred``), ``h_{\\text{sigmoid}}`` is ``h_sigmoid``;
  ``\\hat{Y}`` is ``Yhat`` (``\\bar``, ``\\tilde`` alike); ``\\mathrm{X}``, ``\\mathbf{X}``,
  ``\\operatorname{X}`` … are the name X; Greek letters are their names, ``\\sigma`` is sigmoid;
* operators: ``\\odot \\circ`` are ``.*``, ``\\cdot \\times \\ast`` are ``*``, ``\\oslash`` is ``./``;
  ``A \\otimes B`` is ``kron(A, B)`` (within one term, an ordinary product binding tighter);
  ``\\operatorname{vec}``, ``\\mathrm{diag}``, ``\\diag`` … call vec, diag (kron, vec, diag of the language);
  ``^T``, ``^{T}``, ``^\\top``, ``^{\\mathsf{T}}`` the transpose, ``^{-1}`` a power, ``^{\\circ p}`` the
  Hadamard power ``.^(p)``, ``'`` after an
  elementwise function its derivative (``\\sigma'(h)``);
* brackets: ``\\left( \\right)``, ``\\big[``, ``\\{ \\}``, groups ``{…}``; a bracket after a function
  name is its call (``tr[…]``, ``\\mathrm{tr}\\{…\\}``); ``\\|A\\|_F`` and ``||A||_F`` are ``norm2(A)``;
* ``\\frac{a}{b}`` is ``(a)/(b)``; ``\\frac{\\partial f}{\\partial W_1}`` one GRADIENT token;
  ``\\mathbf{1}``, ``\\mathbf{1}_n``, ``\\boldsymbol{1}``, ``\\mathbb{1}`` the ones matrix;
  ``\\mathrm{d}`` the differential's d (``dX`` and ``d(…)`` are read by the parser, which knows
  the declared names);
* spacing (``\\, \\; \\quad ~``) and ``\\left``/``\\right`` sizes are skipped;
* a closing bracket with nothing open, followed by nothing but closing brackets (``tr[…]\\}``,
  the end of a ``d\\{…\\}`` split over two lines), is dropped with a :class:`Note`.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from derive.lang.errors import ExpressionError, Note
from derive.lang.tokens import _GREEK, _NUMBER, _notation_token, _Token

_SPACING = frozenset({",", ";", ":", "!", " ", "quad", "qquad", "enspace", "thinspace", "medspace",
                      "thickspace", "negthinspace", "displaystyle", "textstyle", "limits", "nolimits"})
_SIZES = frozenset({"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
                    "biggl", "biggr", "Biggl", "Biggr", "middle"})
_OPERATORS = {"odot": ".*", "circ": ".*", "cdot": "*", "times": "*", "ast": "*", "oslash": "./",
              "top": "'", "intercal": "'", "prime": "'", "otimes": "⊗"}
_FUNCTIONS = {"sigma": "sigmoid", "exp": "exp", "log": "log", "ln": "log", "tanh": "tanh", "tr": "tr",
              "Tr": "tr", "trace": "tr", "det": "det", "max": "max", "sqrt": "sqrt", "diag": "diag"}
_NAME_ALIASES = {"Tr": "tr", "trace": "tr", "ln": "log"}
_FONTS = frozenset({"mathrm", "text", "textrm", "textit", "mathit", "operatorname", "mathbf", "boldsymbol",
                    "bm", "mathsf", "mathbb", "mathcal", "textbf", "mathtt"})
_BOLD = frozenset({"mathbf", "boldsymbol", "bm", "mathbb", "textbf"})
_ACCENTS = {"hat": "hat", "widehat": "hat", "bar": "bar", "overline": "bar", "tilde": "tilde",
            "widetilde": "tilde", "vec": ""}
_UNSUPPORTED = {"sum": "\\sum is not supported: write sum(...) or a product with the ones vector 𝟏",
                "partial": "∂ is read only as \\frac{\\partial f}{\\partial X}",
                "min": "\\min is not supported"}
# the language's functions of derive.kronecker, called as \operatorname{vec}(X), \mathrm{diag}[x], \diag(x)
_CALLS = frozenset({"vec", "diag", "kron"})
_GREEK_NAMES = frozenset(_GREEK.values())
_CMD = re.compile(r"\\([A-Za-z]+|.)")
_RUN = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_TRANSPOSES = r"(?:\\top|\\intercal|\\prime|\\mathsf\{T\}|\\mathrm\{T\}|\\rm\s*T)(?![A-Za-z])"
_TRANSPOSE_GROUP = re.compile(r"\s*(?:\{\s*" + _TRANSPOSES + r"\s*\}|" + _TRANSPOSES + ")")
_GRAD_NAME = r"(?:\\(?:hat|bar|tilde|widehat)\s*\{?\s*[A-Za-z]\s*\}?|\\[A-Za-z]+|[A-Za-z][A-Za-z0-9]*)(?:_\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}|_[A-Za-z0-9])?"
_GRADIENT = re.compile(r"\\[dt]?frac\s*\{\s*\\partial\s*(" + _GRAD_NAME + r")\s*\}\s*\{\s*\\partial\s*("
                       + _GRAD_NAME + r")\s*\}")
_OPENERS = {"(": ")", "[": "]"}
_HADAMARD_POWER = re.compile(r"\s*\{\s*(?:\\circ|\\odot)(?![A-Za-z])\s*")
_STRAY_TAIL = re.compile(r"(?:\s|\\[}\])]|[)\]}]|\\right\s*[)\]]?)*")


def looks_like_latex(text: str) -> bool:
    """Whether ``text`` is LaTeX rather than the ASCII language: a backslash, ``^{`` or ``_{``.

    >>> looks_like_latex(r"X^\\top Y"), looks_like_latex("X'*Y"), looks_like_latex("W_{1}")
    (True, False, True)
    """
    return "\\" in text or "^{" in text or "_{" in text


def _group(text: str, i: int) -> tuple[str, int] | None:
    """(content, end) of the brace group ``{…}`` at ``i`` (balanced), or of one character."""
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":
        if text[i] == "\\":
            m = _CMD.match(text, i)
            return (m.group(), m.end()) if m else None
        return text[i], i + 1
    depth, j = 0, i
    while j < len(text):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j], j + 1
        j += 1
    return None


def _plain(content: str) -> str:
    """The letters of a subscript or font group: ``\\text{sigmoid}`` → ``sigmoid``."""
    return re.sub(r"\\[A-Za-z]+|[{}\s]", "", content)


class _LatexLexer:
    """One pass over a LaTeX text, yielding canonical tokens with their LaTeX columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stack: list[tuple[str, str, int]] = []   # (closer as written, canonical close, column)
        self.last: _Token | None = None
        self.notes: list[Note] = []

    def error(self, message: str, pos: int, token: str, kind: str = "syntax") -> ExpressionError:
        return ExpressionError(message, pos + 1, token, self.text, kind)

    def tokens(self) -> Iterator[_Token]:
        """The canonical tokens, ⊗ already rewritten as kron(…, …) (:func:`_kron_infix`)."""
        raw = self._raw_tokens()
        return _kron_infix(list(raw), self.text) if "otimes" in self.text else raw

    def _raw_tokens(self) -> Iterator[_Token]:
        for tok in self._tokens():
            self.last = tok
            yield tok
        yield _Token("end", "", len(self.text))

    def after_function(self) -> bool:
        last = self.last
        return last is not None and last.kind == "name" and (last.text in _FUNCTIONS.values() or last.text in _CALLS
                                                             or last.text in ("sigmoid", "relu", "softplus"))

    def open(self, pos: int, src: str, closer: str, close: str = ")") -> _Token:
        self.stack.append((closer, close, pos))
        text = "(" if close == ")" else "["
        return _Token("op", text, pos, src)

    def _tokens(self) -> Iterator[_Token]:  # noqa: C901 - one branch per construct, read in order
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            ch = text[i]
            if ch in " \t\r\n~&\u00a0":
                i += 1
                continue
            if ch.isdigit() or (ch == "." and text[i + 1:i + 2].isdigit()):
                m = _NUMBER.match(text, i)
                assert m is not None
                yield _Token("num", m.group(), i)
                i = m.end()
                continue
            if ch.isalpha() and ch.isascii():
                tok, i = self.name(i)
                yield tok
                continue
            if ch == "\\":
                toks, i = self.command(i)
                yield from toks
                continue
            if ch in "([":
                if self.after_function():
                    yield self.open(i, ch, _OPENERS[ch])
                else:
                    yield self.open(i, ch, _OPENERS[ch], _OPENERS[ch])
                i += 1
                continue
            if ch in ")]":
                yield from self.close(i, ch)
                i += 1
                continue
            if ch == "{":
                yield self.open(i, "{", "}")
                i += 1
                continue
            if ch == "}":
                toks, i = self.close_brace(i)
                yield from toks
                continue
            if ch == "|":
                if text.startswith("||", i):
                    yield from self.norm(i, "||")
                    i = self.after_norm(i + 2)
                    continue
                raise self.error("'|' is not supported (absolute value or determinant): write \\det(...) or "
                                 "\\|A\\|_F for the Frobenius norm", i, "|", "unsupported")
            if ch == "^":
                toks, i = self.superscript(i)
                yield from toks
                continue
            if ch == "_":
                raise self.error("unexpected subscript '_': a subscript belongs to a name (W_1, Y_{pred})", i, "_")
            if ch in "+-*/',=":
                if ch == "=":
                    raise self.error("unexpected '=': give one side of the equation", i, "=")
                yield _Token("op", ch, i)
                i += 1
                continue
            tok, i = _notation_token(text, i)
            yield tok

    def close(self, pos: int, ch: str) -> list[_Token]:
        if self.stack and self.stack[-1][0] == ch:
            _, close, _ = self.stack.pop()
            return [_Token("op", close, pos, ch)]
        if not self.stack and _STRAY_TAIL.fullmatch(self.text, pos + len(ch)):
            self.notes.append(Note("stray-bracket", pos + 1, f"a stray '{ch}' at the end is ignored",
                                   f"末尾多余的 '{ch}' 已忽略"))
            return []
        if ch in ("}", "\\}"):
            raise self.error(f"{ch!r} has no matching {ch[:-1] + '{'!r}", pos, ch)
        if self.stack and self.stack[-1][0] in ")]":
            want = self.stack[-1][0]
            opened = self.stack[-1][2]
            raise self.error(f"unexpected {ch!r}: expected {want!r} to close the "
                             f"{self.text[opened]!r} at column {opened + 1}", pos, ch)
        return [_Token("op", ch, pos)]   # the parser says what is wrong

    def close_brace(self, pos: int) -> tuple[list[_Token], int]:
        """A ``}``: a group's ``)``, or a ``\\frac`` numerator's ``)`` ``/`` and the denominator's ``(``."""
        if self.stack and self.stack[-1][:2] == ("}", "))"):    # the denominator's: the fraction's too
            self.stack.pop()
            return [_Token("op", ")", pos, "}"), _Token("op", ")", pos, "}")], pos + 1
        if not (self.stack and self.stack[-1][0] == "}" and self.stack[-1][1] == ""):
            return self.close(pos, "}"), pos + 1
        self.stack.pop()
        text, j = self.text, pos + 1
        while j < len(text) and text[j] in " \t":
            j += 1
        if not text.startswith("{", j):
            raise self.error("\\frac takes two groups: \\frac{a}{b}", pos, "}")
        self.stack.append(("}", "))", j))
        return [_Token("op", ")", pos, "}"), _Token("op", "/", pos, "}"), _Token("op", "(", j, "{")], j + 1

    def name(self, i: int) -> tuple[_Token, int]:
        """A run of letters with its subscript: ``W_1`` → W1, ``Y_{pred}`` → Y_pred."""
        m = _RUN.match(self.text, i)
        assert m is not None
        name, end = m.group(), m.end()
        return self.subscripted(name, i, end)

    def subscripted(self, name: str, i: int, end: int) -> tuple[_Token, int]:
        text = self.text
        if text.startswith("_", end):
            group = _group(text, end + 1)
            if group is None:
                raise self.error("a subscript '_' needs a name or a group {…}", end, "_")
            sub = _plain(group[0])
            if not sub or not re.fullmatch(r"[A-Za-z0-9]+", sub):
                raise self.error(f"subscript {text[end:group[1]]!r} is not a name", end, text[end:group[1]])
            name += sub if sub.isdigit() else "_" + sub
            end = group[1]
        name = _NAME_ALIASES.get(name, name)
        return _Token("name", name, i, text[i:end]), end

    def command(self, i: int) -> tuple[list[_Token], int]:
        text = self.text
        m = _CMD.match(text, i)
        if m is None:
            raise self.error("a lone '\\' at the end", i, "\\")
        cmd, end = m.group(1), m.end()
        src = m.group()
        if cmd in _SPACING or cmd in _SIZES or cmd in ("{", "}", "|", "Vert", "lVert", "rVert"):
            return self.delimiter(cmd, i, end)
        if cmd in ("frac", "dfrac", "tfrac"):
            return self.fraction(i, end)
        if cmd in _OPERATORS:
            return [_Token("op", _OPERATORS[cmd], i, src)], end
        if cmd in _UNSUPPORTED:
            raise self.error(_UNSUPPORTED[cmd], i, src, "unsupported")
        if cmd in _FUNCTIONS:
            return [_Token("name", _FUNCTIONS[cmd], i, src)], end
        if cmd in _GREEK_NAMES:
            return [self.subscripted(cmd, i, end)[0]], self.subscripted(cmd, i, end)[1]
        if cmd in _ACCENTS:
            group = _group(text, end)
            letters = _plain(group[0]) if group else ""
            if group is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", letters):
                raise self.error(f"{src} takes a name, as in {src}{{Y}}", i, src)
            tok, after = self.subscripted(letters + _ACCENTS[cmd], i, group[1])
            return [tok], after
        if cmd in _FONTS:
            return self.font(cmd, i, end)
        if cmd in ("\\",):
            raise self.error("unexpected line break '\\\\': give one line of the equation", i, src)
        raise self.error(f"unknown LaTeX command {src!r}", i, src, "unsupported")

    def delimiter(self, cmd: str, i: int, end: int) -> tuple[list[_Token], int]:
        """Spacing and sizes (skipped), ``\\{ \\}`` and the norm's ``\\|``."""
        src = self.text[i:end]
        if cmd in _SIZES and self.text.startswith(".", end):   # \left. and \right.: no delimiter
            return [], end + 1
        if cmd == "{":
            return [self.open(i, src, "\\}")], end
        if cmd == "}":
            return self.close(i, "\\}"), end
        if cmd in ("|", "Vert", "lVert", "rVert"):
            return list(self.norm(i, src)), self.after_norm(end)
        return [], end

    def font(self, cmd: str, i: int, end: int) -> tuple[list[_Token], int]:
        """``\\mathrm{tr}``, ``\\mathbf{1}_n``, ``\\mathrm{d}``, ``\\text{sigmoid}``, ``\\mathbf{X}``."""
        text = self.text
        group = _group(text, end)
        if group is None:
            raise self.error(f"\\{cmd} takes a group {{…}}", i, "\\" + cmd)
        content, after = group[0].strip(), group[1]
        src = text[i:after]
        if content == "1" and cmd in _BOLD:
            dim = ""
            if text.startswith("_", after):
                sub = _group(text, after + 1)
                if sub is None or not re.fullmatch(r"[A-Za-z0-9]+", _plain(sub[0])):
                    raise self.error("the ones vector's subscript is a dimension, as in \\mathbf{1}_n", after, "_")
                dim, after = _plain(sub[0]), sub[1]
            return [_Token("ones", dim, i, text[i:after])], after
        letters = _plain(content)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", letters):
            raise self.error(f"{src!r} is not a name", i, src)
        if letters in _UNSUPPORTED:
            raise self.error(_UNSUPPORTED[letters], i, src, "unsupported")
        tok, after = self.subscripted(letters, i, after)
        return [_Token("name", tok.text, i, text[i:after])], after

    def norm(self, i: int, src: str) -> Iterator[_Token]:
        """``\\|`` or ``||``: opens norm2( where no norm is open, closes it where one is."""
        if self.stack and self.stack[-1][0] in ("||", "\\|"):
            self.stack.pop()
            yield _Token("op", ")", i, src)
            return
        yield _Token("name", "norm2", i, src)
        self.stack.append(("||" if src == "||" else "\\|", ")", i))
        yield _Token("op", "(", i, src)

    def after_norm(self, end: int) -> int:
        """Skip the norm's subscript ``_F``, ``_{F}`` (the Frobenius norm is norm2)."""
        m = re.compile(r"\s*_\s*(?:\{\s*F\s*\}|F)").match(self.text, end)
        return m.end() if m else end

    def superscript(self, i: int) -> tuple[list[_Token], int]:
        text = self.text
        m = _TRANSPOSE_GROUP.match(text, i + 1)
        if m:
            return [_Token("op", "'", i, text[i:m.end()])], m.end()
        m = re.compile(r"\s*(?:\{\s*T\s*\}|T)").match(text, i + 1)
        if m:   # ^T, ^{T}: in LaTeX always the transpose; a script is one character, X^TE is X^{T} E
            return [_Token("op", "'", i, text[i:m.end()])], m.end()
        m = _HADAMARD_POWER.match(text, i + 1)
        if m:   # A^{\circ p}, A^{\circ -1/2}: the Hadamard power A.^(p)
            brace = text.index("{", i + 1)
            return [_Token("op", ".^", i, text[i:m.end()]), self.open(brace, "{", "}")], m.end()
        m = re.compile(r"\s*\{\s*-\s*T\s*\}").match(text, i + 1)
        if m:
            return [_Token("sup", "^-T", i, text[i:m.end()])], m.end()
        j = i + 1
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j].isdigit():   # ^23 is ^2 followed by 3, as in TeX
            return [_Token("op", "^", i), _Token("num", text[j], j)], j + 1
        return [_Token("op", "^", i)], i + 1

    def fraction(self, i: int, end: int) -> tuple[list[_Token], int]:
        """``\\frac{∂f}{∂X}`` (a gradient) or ``\\frac{a}{b}`` as ``(a)/(b)``."""
        text = self.text
        m = _GRADIENT.match(text, i)
        if m:
            f, wrt = (self.subscripted_text(g) for g in m.groups())
            return [_Token("grad", f"{f}/{wrt}", i, m.group())], m.end()
        group = _group(text, end)
        if group is None or not text[end:].lstrip().startswith("{"):
            raise self.error("\\frac takes two groups: \\frac{a}{b}", i, text[i:end])
        if group[0].lstrip().startswith("\\partial"):
            raise self.error("a derivative \\frac{\\partial …}{\\partial …} is read only as ∂f/∂X of one name "
                             "by one name", i, text[i:end], "unsupported")
        # \frac{a}{b} → ((a)/(b)): the numerator's } closes it and opens the denominator
        self.stack.append(("}", "", i))
        start = text.index("{", end)
        return [_Token("op", "(", i, text[i:end]), _Token("op", "(", start, "{")], start + 1

    def subscripted_text(self, written: str) -> str:
        lexer = _LatexLexer(written)
        toks = [t for t in lexer.tokens() if t.kind != "end"]
        if len(toks) != 1 or toks[0].kind != "name":
            raise self.error(f"{written!r} is not a name", 0, written)
        return toks[0].text


def latex_lexer(text: str) -> _LatexLexer:
    """The lexer of a LaTeX text: ``tokens()`` its canonical tokens, ``notes`` what it mended.

    >>> lexer = latex_lexer(r"tr[A^T B]\\}")
    >>> [t.text for t in lexer.tokens()], [str(n) for n in lexer.notes]
    (['tr', '(', 'A', "'", 'B', ')', ''], ["a stray '\\\\}' at the end is ignored"])
    """
    return _LatexLexer(text)


def latex_tokens(text: str) -> Iterator[_Token]:
    """The canonical tokens of a LaTeX text (see the module docstring).

    >>> [t.text for t in latex_tokens(r"2X^\\top[(Y_{pred} - Y)W_2^T \\odot \\sigma'(h)]")][:6]
    ['2', 'X', "'", '[', '(', 'Y_pred']
    >>> [t.text for t in latex_tokens(r"\\frac{a}{2}")]
    ['(', '(', 'a', ')', '/', '(', '2', ')', ')', '']
    """
    return _LatexLexer(text).tokens()


def _ends_operand(term: list[_Token]) -> bool:
    """Whether a + or − after ``term`` is binary (it follows an operand, not an operator)."""
    return bool(term) and (term[-1].kind != "op" or term[-1].text in (")", "]", "'"))


def _kron_infix(tokens: list[_Token], text: str) -> Iterator[_Token]:
    """``A \\otimes B`` as ``kron(A, B)``: in each term of a group (what lies between its brackets and
    its top-level ``+ - ,``) the factors left of ⊗ and those right of it, an ordinary product binding
    tighter (AC ⊗ BD is kron(AC, BD), A ⊗ B ⊗ C is kron(kron(A, B), C)).  A ⊗ beside ⊙ or ⊘ in one
    term, or without a factor on a side, is an error.

    >>> [t.text for t in latex_tokens(r"2A \\otimes B + C")][:-1]
    ['kron', '(', '2', 'A', ',', 'B', ')', '+', 'C']
    """
    out: list[_Token] = []
    stack: list[list[_Token]] = [[]]          # the open groups' tokens, innermost last

    def flush(group: list[_Token]) -> list[_Token]:
        done: list[_Token] = []
        term: list[_Token] = []
        for tok in group + [None]:
            if tok is None or (tok.kind == "op" and (tok.text == "," or (tok.text in "+-" and _ends_operand(term)))):
                done += _kron_term(term, text)
                if tok is not None:
                    done.append(tok)
                term = []
            else:
                term.append(tok)
        return done

    for tok in tokens:
        if tok.kind == "op" and tok.text in ("(", "["):
            stack[-1].append(tok)
            stack.append([])
        elif tok.kind == "op" and tok.text in (")", "]") and len(stack) > 1:
            inner = flush(stack.pop())
            stack[-1] += inner + [tok]
        elif tok.kind == "end":
            while len(stack) > 1:            # an unclosed group: the parser says so
                inner = flush(stack.pop())
                stack[-1] += inner
            out += flush(stack.pop()) + [tok]
        else:
            stack[-1].append(tok)
    return iter(out)


def _kron_term(term: list[_Token], text: str) -> list[_Token]:
    at = [i for i, t in enumerate(term) if t.kind == "op" and t.text == "⊗"]
    if not at:
        return term
    mixed = next((t for t in term if t.kind == "op" and t.text in (".*", "./")), None)
    if mixed is not None:
        raise ExpressionError("⊗ and ⊙ (or ⊘) in one product are ambiguous: bracket one of them, as in "
                              "(A \\odot B) \\otimes C", mixed.column, mixed.src or mixed.text, text, "syntax")
    parts, start = [], 0
    for i in at + [len(term)]:
        part = term[start:i]
        if not part:
            where = term[min(i, len(term) - 1)]
            raise ExpressionError("\\otimes needs a factor on each side, as in A \\otimes B", where.column,
                                  where.src or where.text, text, "syntax")
        parts.append(part)
        start = i + 1
    left, start = parts[0], term[0].pos
    for i, right in zip(at, parts[1:]):
        op, last = term[i], right[-1]
        written = text[start:last.pos + len(last.source)]   # "A \otimes B", as errors quote it
        left = [_Token("name", "kron", start, written), _Token("op", "(", op.pos, op.src), *left,
                _Token("op", ",", op.pos, op.src), *right, _Token("op", ")", last.pos, last.source)]
    return left
