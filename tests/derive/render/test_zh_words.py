"""No English word in the Chinese documents: text, Markdown, LaTeX and HTML of the seed network and
of an mlp (softmax cross-entropy, weight decay) hold ASCII words only as mathematics: symbol names,
function names (tr, σ's relatives), the program's name.

Prose is separated from mathematics by each format's own delimiters ($…$, \\[…\\], align*, <math>),
and the words inside mathematics that are prose (``\\text{…}``, ``\\tag*{…}``, MathML ``<mtext>``)
are scanned as prose.
"""
from __future__ import annotations

import html
import re

import pytest

import derive
from derive.networks import mlp

# mathematics that may appear in prose position (the terminal text has no math delimiters)
FUNCTIONS = {"tr", "det", "exp", "log", "tanh", "relu", "softplus", "step", "softmax", "sigmoid"}
PROGRAM = {"tracegrad"}
# the seed write-up's own names, quoted by the audit (its grade): h_sigmoid for H, Y_pred, and its stray
# line from another exercise, Z = XW, h = max(Z, 0)
SEED_DOCUMENT_NAMES = {"h_sigmoid", "Y_pred", "Z", "W", "max"}


def _networks():
    return {
        "seed": derive.seed_network(),
        "mlp": mlp([3, 4, 2], activation="tanh", loss="softmax_cross_entropy", weight_decay="lambda"),
    }


def _names(net) -> set[str]:
    names = {s.name for s in net.inputs + net.params} | {s.name for s, _ in net.stages}
    return names | {"d" + s for s in names} | {"f", "df", "F"}


def _is_product(word: str, allowed: set[str]) -> bool:
    """Whether ``word`` is allowed names written side by side (XW1, A1W2: a matrix product)."""
    ok = [True] + [False] * len(word)
    for end in range(1, len(word) + 1):
        ok[end] = any(ok[start] and word[start:end] in allowed for start in range(end))
    return ok[-1]


def _words(text: str, allowed: set[str]) -> list[str]:
    """ASCII words of two or more letters that are not allowed names (or products of them)."""
    return sorted({w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text)
                   if sum(ch.isalpha() for ch in w) > 1 and not _is_product(w, allowed)})


_MATH_TEXT = re.compile(r"\\(?:text|tag\*?)\{((?:[^{}]|\{[^{}]*\})*)\}")


def _prose_of_tex(tex: str) -> str:
    """The prose of a LaTeX or Markdown document: math removed, except its \\text and \\tag words."""
    tex = re.sub(r"(?m)(?<!\\)%.*$", "", tex)  # comments
    inside: list[str] = []

    def math(m: re.Match) -> str:
        inside.extend(_MATH_TEXT.findall(m.group(0)))
        return " "

    envs = r"align\*|gather\*|aligned|equation\*|gathered"
    tex = re.sub(rf"\\begin\{{({envs})\}}.*?\\end\{{\1\}}", math, tex, flags=re.S)
    tex = re.sub(r"\$\$.*?\$\$|\\\[.*?\\\]|\$.*?\$", math, tex, flags=re.S)
    if r"\begin{document}" in tex:
        preamble, tex = tex.split(r"\begin{document}", 1)
        inside += re.findall(r"\\title\{([^}]*)\}", preamble)
    tex = re.sub(r"\\(begin|end)\{[^}]*\}(\{[^}]*\})?", " ", tex)  # environment names, tabular columns
    tex = tex + "\n" + "\n".join(inside)
    return re.sub(r"\\[A-Za-z]+\*?", " ", tex)  # commands: \section*, \item, \hline, \small


def _prose_of_html(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    inside = re.findall(r"<mtext[^>]*>(.*?)</mtext>", page, flags=re.S)
    page = re.sub(r"<math\b.*?</math>", " ", page, flags=re.S)
    page = re.sub(r"<!--.*?-->|<[^>]+>", " ", page, flags=re.S)
    return html.unescape(page + "\n" + "\n".join(inside))


def _documents(bp):
    yield "text", bp.to_text(lang="zh")
    yield "markdown", _prose_of_tex(bp.to_markdown(lang="zh"))
    yield "latex", _prose_of_tex(bp.to_latex(lang="zh"))
    from derive.render import backprop_html

    yield "html", _prose_of_html(backprop_html(bp, lang="zh"))  # with the audit, for the seed


@pytest.mark.parametrize("name", ["seed", "mlp"])
def test_chinese_documents_hold_no_english_words(name: str) -> None:
    net = _networks()[name]
    bp = derive.backprop(net)
    allowed = _names(net) | FUNCTIONS | PROGRAM | SEED_DOCUMENT_NAMES
    found = {fmt: _words(text, allowed) for fmt, text in _documents(bp)}
    assert found == {fmt: [] for fmt in found}


def test_the_scan_finds_english_words() -> None:
    """The scanner itself: English in prose, in \\text{} inside math and in <mtext> is found."""
    allowed = {"W1"}
    assert _words(_prose_of_tex(r"推导 $W_1 \text{ for } x$ and more"), allowed) == ["and", "for", "more"]
    assert _words(_prose_of_tex(r"\[\operatorname{tr}(A)\] 中文 \section*{Summary}"), allowed) == ["Summary"]
    assert _words(_prose_of_html("<p>由 <math><mi>W</mi><mtext>each row</mtext></math></p>"), allowed) \
        == ["each", "row"]
    assert _words("  df = tr(XW1 dW1)  [product rule]", {"X", "W1", "dW1", "df", "tr"}) == ["product", "rule"]
