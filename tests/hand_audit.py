"""The tests' oracle for the grade of the seed write-up (issue 11: the seed audit comes from the seed;
``tracegrad audit`` is ``tracegrad grade seed``): the seed document's hand-written gradients, each
formula transcribed literally in NumPy (typed by hand, not read from the document), under each
reading of its notation → one :class:`AuditRow` with a :class:`Verdict`.

The seed network (a course write-up, in Chinese) is

    h = X W₁ + b₁,   H = sigmoid(h),   Ŷ = H W₂ + b₂,   f = ‖Y − Ŷ‖²_F,

with X n×d, Y n×k, W₁ d×m, W₂ m×k.  Its notation leaves two things open:

* the bias: b₁, b₂ are either rows (1×m, 1×k) broadcast over the batch, or
  full n×m, n×k matrices (the formula h = XW₁ + b₁ read literally);
* how ⊙ binds in ``2Xᵀ(Ŷ − Y)W₂ᵀ ⊙ sigmoid'(h)``: looser than the matrix product
  (``[2Xᵀ(Ŷ − Y)W₂ᵀ] ⊙ σ'(h)``), tighter (``2Xᵀ(Ŷ − Y)[W₂ᵀ ⊙ σ'(h)]``), or as the
  document's own preceding line ``tr[2[(Ŷ − Y)W₂ᵀ ⊙ σ'(h)]ᵀ X dW₁]`` implies
  (``2Xᵀ[((Ŷ − Y)W₂ᵀ) ⊙ σ'(h)]``).

Every formula is evaluated under every reading on random non-square data and
compared with central finite differences of f computed here in plain NumPy
(no SymPy).  A reading whose shapes do not conform raises no exception: it is
recorded as such.  (The document also has a stray line "令 Z = XW, h = max(Z, 0)"
from another exercise; it plays no part in the formulas.)

Rows are data: a reading is a key of the locale table (:mod:`derive.render.locale`) with the
mathematics it fills in, a verdict an enum; :func:`audit_table` gives their words in a
language, and every format writes the rows from them.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy import MatrixSymbol, OneMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct

from derive.elementwise import sigmoid as sigmoid_matrix
from derive.render.locale import LANGUAGES, PROSE, Locale, get_locale
from numeric import compile as compile_kernel

__all__ = [
    "AUDIT_DIMS",
    "FORMULAS",
    "AuditRow",
    "Formula",
    "Reading",
    "Verdict",
    "audit",
    "audit_table",
    "fd_gradient",
    "format_audit",
    "forward",
    "loss",
    "random_values",
    "sigmoid",
    "sigmoid_prime",
]

Arrays = dict[str, np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{−x}), without overflow.

    >>> sigmoid(np.array([0.0, 1e4, -1e4])).tolist()
    [0.5, 1.0, 0.0]
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(x: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x)(1 − σ(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def forward(v: Arrays) -> Arrays:
    """h, H (= h_sigmoid), Ypred for values X, Y, W1, b1, W2, b2 (b rows or full)."""
    h = v["X"] @ v["W1"] + v["b1"]
    H = sigmoid(h)
    Ypred = H @ v["W2"] + v["b2"]
    return {"h": h, "H": H, "Ypred": Ypred}


def loss(v: Arrays) -> float:
    """f = ‖Y − Ypred‖²_F.  With ``v["Ypred"]`` or ``v["H"]`` given, f of that variable."""
    if "Ypred" in v:
        Ypred = v["Ypred"]
    elif "H" in v:
        Ypred = v["H"] @ v["W2"] + v["b2"]
    else:
        Ypred = forward(v)["Ypred"]
    R = v["Y"] - Ypred
    return float(np.sum(R * R))


def fd_gradient(f: Callable[[Arrays], float], v: Arrays, name: str, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂v[name] by central differences, entry by entry.

    >>> v = {"A": np.array([[1.0, 2.0]])}
    >>> np.round(fd_gradient(lambda w: float(np.sum(w["A"] ** 2)), v, "A"), 6).tolist()
    [[2.0, 4.0]]
    """
    x = v[name]
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        g[idx] = (f({**v, name: plus}) - f({**v, name: minus})) / (2 * eps)
    return g


# ----- the formulas, literally, one function per reading -------------------------------------
# Each takes the values and the forward pass and returns an array (NumPy raises ValueError
# when the shapes of a reading do not conform).

def _R(v: Arrays, fw: Arrays) -> np.ndarray:
    return fw["Ypred"] - v["Y"]          # (Ypred − Y)


def _sp(fw: Arrays) -> np.ndarray:
    return sigmoid_prime(fw["h"])        # sigmoid'(h)


class Verdict(enum.Enum):
    """What the audit concludes of a formula under one reading."""

    CORRECT = "correct"
    FULL_BIAS_ONLY = "full_bias_only"      # right when the bias is a full n×m (n×k) matrix, not a row
    ROW_BIAS_ONLY = "row_bias_only"        # right when the bias is a row broadcast over the batch
    WRONG = "wrong"
    NOT_CONFORMING = "not_conforming"      # the shapes of the reading do not conform
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Reading:
    """How the notation of a formula is read: a key of the locale table (``audit_reading_<key>``)
    and the mathematics it fills in (the formula as so read, or the variable f is a function of)."""

    key: str
    math: str = ""

    def words(self, loc: Locale) -> str:
        """The reading in the language of ``loc``.

        >>> Reading("tighter", "A[B ⊙ C]").words(get_locale("zh"))
        '⊙ 优先级高于矩阵乘：A[B ⊙ C]'
        """
        return loc.say(f"audit_reading_{self.key}", math=self.math)


AS_WRITTEN = Reading("as_written")
SUMMED = Reading("summed")


@dataclass(frozen=True)
class Formula:
    variable: str              # Y, Ypred, W2, b2, H, h, W1, b1
    text: str                  # the formula as the document writes it
    latex: str
    reading: Reading           # how the notation is read
    compute: Callable[[Arrays, Arrays], np.ndarray]
    wrt_value: str = "param"   # "param": f of the inputs; "Ypred"/"H": f of that intermediate


_LOOSE_H, _TIGHT_H = "[2(Ypred − Y)W2ᵀ] ⊙ σ'(h)", "2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]"
_DH = r"\frac{\partial f}{\partial h} = 2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)"
_DW1 = r"\frac{\partial f}{\partial W_1} = 2X^T(Y_{pred} - Y)W_2^T \odot sigmoid'(h)"
_DB1 = r"\frac{\partial f}{\partial b_1} = 2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)"
_W1_TEXT, _H_TEXT = "∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)", "∂f/∂h = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)"
_B1_TEXT = "∂f/∂b1 = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)"

FORMULAS: tuple[Formula, ...] = (
    Formula("Y", "∂f/∂Y = 2(Y − Ypred)", r"\frac{\partial f}{\partial Y} = 2(Y - Y_{pred})",
            AS_WRITTEN, lambda v, fw: 2 * (v["Y"] - fw["Ypred"])),
    Formula("Ypred", "∂f/∂Ypred = 2(Ypred − Y)",
            r"\frac{\partial f}{\partial Y_{pred}} = 2(Y_{pred} - Y)",
            Reading("as_written_of", "Ypred"), lambda v, fw: 2 * _R(v, fw), "Ypred"),
    Formula("W2", "∂f/∂W2 = 2 h_sigmoidᵀ(Ypred − Y)",
            r"\frac{\partial f}{\partial W_2} = 2h_{sigmoid}^T[(Y_{pred} - Y)]",
            AS_WRITTEN, lambda v, fw: 2 * fw["H"].T @ _R(v, fw)),
    Formula("b2", "∂f/∂b2 = 2(Ypred − Y)", r"\frac{\partial f}{\partial b_2} = 2(Y_{pred} - Y)",
            AS_WRITTEN, lambda v, fw: 2 * _R(v, fw)),
    Formula("b2", "∂f/∂b2 = 2·1ᵀ(Ypred − Y)", r"\frac{\partial f}{\partial b_2} = 2\,\mathbf{1}^T(Y_{pred} - Y)",
            SUMMED, lambda v, fw: 2 * np.sum(_R(v, fw), axis=0, keepdims=True)),
    Formula("H", "∂f/∂h_sigmoid = 2(Ypred − Y)W2ᵀ",
            r"\frac{\partial f}{\partial h_{sigmoid}} = 2(Y_{pred} - Y)W_2^T",
            Reading("as_written_of", "h_sigmoid"), lambda v, fw: 2 * _R(v, fw) @ v["W2"].T, "H"),
    Formula("h", _H_TEXT, _DH, Reading("looser", _LOOSE_H),
            lambda v, fw: (2 * _R(v, fw) @ v["W2"].T) * _sp(fw), "h"),
    Formula("h", _H_TEXT, _DH, Reading("tighter", _TIGHT_H),
            lambda v, fw: 2 * _R(v, fw) @ (v["W2"].T * _sp(fw)), "h"),
    Formula("W1", _W1_TEXT, _DW1, Reading("looser", "[2Xᵀ(Ypred − Y)W2ᵀ] ⊙ σ'(h)"),
            lambda v, fw: (2 * v["X"].T @ _R(v, fw) @ v["W2"].T) * _sp(fw)),
    Formula("W1", _W1_TEXT, _DW1, Reading("tighter", "2Xᵀ(Ypred − Y)[W2ᵀ ⊙ σ'(h)]"),
            lambda v, fw: 2 * v["X"].T @ _R(v, fw) @ (v["W2"].T * _sp(fw))),
    Formula("W1", _W1_TEXT, _DW1, Reading("previous_line", "2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ'(h)]"),
            lambda v, fw: 2 * v["X"].T @ ((_R(v, fw) @ v["W2"].T) * _sp(fw))),
    Formula("b1", _B1_TEXT, _DB1, Reading("looser", _LOOSE_H),
            lambda v, fw: (2 * _R(v, fw) @ v["W2"].T) * _sp(fw)),
    Formula("b1", _B1_TEXT, _DB1, Reading("tighter", _TIGHT_H),
            lambda v, fw: 2 * _R(v, fw) @ (v["W2"].T * _sp(fw))),
    Formula("b1", "∂f/∂b1 = 2·1ᵀ[(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)]",
            r"\frac{\partial f}{\partial b_1} = 2\,\mathbf{1}^T[(Y_{pred} - Y)W_2^T \odot sigmoid'(h)]",
            SUMMED, lambda v, fw: 2 * np.sum((_R(v, fw) @ v["W2"].T) * _sp(fw), axis=0, keepdims=True)),
)


@dataclass(frozen=True)
class AuditRow:
    """One formula under one reading, checked under both bias readings."""

    formula: str
    latex: str
    reading: Reading
    shapes: dict[str, str]              # result shape per bias reading ("row", "full"; "—" if not conforming)
    conforms: bool                      # the shapes conform (under some bias reading)
    max_error: float | None             # worst relative error where the shape matches ∂f/∂var
    verdict: Verdict
    errors: dict[str, float | None]     # per bias reading
    full_bias: str = "n×m"              # the shape of the full bias the verdict may name

    def cells(self, loc: Locale) -> list[str]:
        """The row as words: formula, reading, shapes, conforms, max. relative error, verdict."""
        shapes = " / ".join(self.shapes[b] for b in ("row", "full") if b in self.shapes)
        err = "—" if self.max_error is None else f"{self.max_error:.1e}"
        return [self.formula, self.reading.words(loc), shapes, loc.say("audit_yes" if self.conforms else "audit_no"),
                err, loc.say(f"audit_verdict_{self.verdict.value}", shape=self.full_bias)]


AUDIT_DIMS = (4, 3, 5, 2)  # n, d, m, k of the audit's random data
CORRECT_TOL = 1e-6
WRONG_TOL = 1e-3
_COLUMNS = ("formula", "reading", "shape", "conforms", "error", "verdict")


def random_values(rng: np.random.Generator, dims: tuple[int, int, int, int], bias: str) -> Arrays:
    """Random X, Y, W1, b1, W2, b2 for ``bias`` "row" (1×m, 1×k) or "full" (n×m, n×k)."""
    n, d, m, k = dims
    rb = 1 if bias == "row" else n
    return {"X": rng.standard_normal((n, d)), "Y": rng.standard_normal((n, k)),
            "W1": rng.standard_normal((d, m)), "b1": rng.standard_normal((rb, m)),
            "W2": rng.standard_normal((m, k)), "b2": rng.standard_normal((rb, k))}


def _target(formula: Formula, v: Arrays, fw: Arrays) -> tuple[Arrays, str]:
    """The values of which f is a function for this formula, and the variable's name."""
    var = formula.variable
    if var in ("Ypred", "H"):
        base = {"Y": v["Y"], "W2": v["W2"], "b2": v["b2"], var: fw[var]}
        return base, var
    if var == "h":
        return {**v, "h": fw["h"]}, "h"
    return v, var


def _loss_of(var: str) -> Callable[[Arrays], float]:
    if var == "h":
        return lambda w: loss({**w, "H": sigmoid(w["h"])})
    return loss


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _kernel_gradients(bias: str, dims: tuple[int, int, int, int]) -> Callable[[Arrays], Arrays]:
    """∂f/∂W1, b1, W2, b2 by numeric.compile from hand-typed SymPy gradients."""
    n, d, m, k = (sympy.Symbol(s, integer=True, positive=True) for s in "ndmk")
    X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, k)
    W1, W2 = MatrixSymbol("W1", d, m), MatrixSymbol("W2", m, k)
    rb = 1 if bias == "row" else n
    b1, b2 = MatrixSymbol("b1", rb, m), MatrixSymbol("b2", rb, k)
    lift1 = OneMatrix(n, 1) * b1 if bias == "row" else b1
    lift2 = OneMatrix(n, 1) * b2 if bias == "row" else b2
    S = sigmoid_matrix(X * W1 + lift1)
    R = S * W2 + lift2 - Y
    Gh = HadamardProduct(R * W2.T, S, OneMatrix(n, m) - S)
    sum_rows = (lambda G: OneMatrix(1, n) * G) if bias == "row" else (lambda G: G)
    kern = compile_kernel([2 * X.T * Gh, 2 * sum_rows(Gh), 2 * S.T * R, 2 * sum_rows(R)],
                          [X, Y, W1, b1, W2, b2])
    names = ("W1", "b1", "W2", "b2")
    return lambda v: dict(zip(names, kern(*(v[s] for s in ("X", "Y", "W1", "b1", "W2", "b2")))))


def audit(net: Any = None, *, seed: int = 0, dims: tuple[int, int, int, int] = AUDIT_DIMS,
          compiled: bool = False) -> list[AuditRow]:
    """Evaluate every formula of the seed document under every reading.

    ``net`` is None or the seed network (``derive.seed_network()``); another network has no
    write-up to audit, and no rows.  Each row is checked under the row-bias and the full-bias
    reading against central finite differences of f (plain NumPy).  With ``compiled=True``,
    rows for the ``numeric.compile`` kernel of the correct gradients are added.

    >>> rows = audit()
    >>> [(r.formula.split(" =")[0], r.verdict.name) for r in rows][:4]
    [('∂f/∂Y', 'CORRECT'), ('∂f/∂Ypred', 'CORRECT'), ('∂f/∂W2', 'CORRECT'), ('∂f/∂b2', 'FULL_BIAS_ONLY')]
    """
    if net is not None and getattr(net, "name", None) != "seed":
        return []
    data = {}
    for bias in ("row", "full"):
        v = random_values(np.random.default_rng(seed), dims, bias)
        data[bias] = (v, forward(v))
    fd_cache: dict[tuple[str, str], np.ndarray] = {}

    def fd(bias: str, formula: Formula) -> np.ndarray:
        v, fw = data[bias]
        target, var = _target(formula, v, fw)
        if (bias, var) not in fd_cache:
            fd_cache[bias, var] = fd_gradient(_loss_of(var), target, var)
        return fd_cache[bias, var]

    rows = [_formula_row(formula, data, fd) for formula in FORMULAS]
    if compiled:
        for bias in ("row", "full"):
            v, _ = data[bias]
            grads = _kernel_gradients(bias, dims)(v)
            for var in ("W1", "b1", "W2", "b2"):
                ref = fd_gradient(loss, v, var)
                err = _relative(grads[var], ref) if grads[var].shape == ref.shape else None
                rows.append(_row(f"numeric.compile: ∂f/∂{var}", "", Reading(f"compiled_{bias}"), var, True,
                                 {bias: err}, {bias: "×".join(map(str, grads[var].shape))}))
    return rows


def _formula_row(formula: Formula, data: dict[str, tuple[Arrays, Arrays]],
                 fd: Callable[[str, Formula], np.ndarray]) -> AuditRow:
    errors: dict[str, float | None] = {}
    shapes: dict[str, str] = {}
    conforms = False
    for bias in ("row", "full"):
        v, fw = data[bias]
        try:
            with np.errstate(all="raise"):
                G = np.asarray(formula.compute(v, fw))
        except ValueError:
            errors[bias], shapes[bias] = None, "—"
            continue
        conforms = True
        shapes[bias] = f"{G.shape[0]}×{G.shape[1]}"
        ref = fd(bias, formula)
        errors[bias] = _relative(G, ref) if G.shape == ref.shape else None
    return _row(formula.text, formula.latex, formula.reading, formula.variable, conforms, errors, shapes)


def _verdict(conforms: bool, errors: dict[str, float | None]) -> Verdict:
    def ok(bias: str) -> bool:
        e = errors.get(bias)
        return e is not None and e < CORRECT_TOL

    def bad(bias: str) -> bool:
        e = errors.get(bias)
        return e is None or e > WRONG_TOL

    both = set(errors) == {"row", "full"}
    if not conforms:
        return Verdict.NOT_CONFORMING
    if all(ok(b) for b in errors):
        return Verdict.CORRECT
    if both and ok("full") and bad("row"):
        return Verdict.FULL_BIAS_ONLY
    if both and ok("row") and bad("full"):
        return Verdict.ROW_BIAS_ONLY
    if all(bad(b) for b in errors):
        return Verdict.WRONG
    return Verdict.INCONCLUSIVE


def _row(text: str, latex: str, reading: Reading, variable: str, conforms: bool, errors: dict[str, float | None],
         shapes: dict[str, str]) -> AuditRow:
    measured = [e for e in errors.values() if e is not None]
    return AuditRow(text, latex, reading, shapes, conforms, max(measured) if measured else None,
                    _verdict(conforms, errors), errors, "n×k" if variable == "b2" else "n×m")


def audit_table(rows: Sequence[AuditRow], lang: str = "en") -> tuple[list[str], list[list[str]]]:
    """The audit's column headings and each row's cells as words, in English or Chinese:
    formula, reading, shape (row bias / n×m bias), conforms, max. relative error, verdict.

    >>> head, cells = audit_table(audit()[:1])
    >>> head[0], cells[0][-1]
    ('formula', 'correct')
    """
    loc = get_locale(lang)
    return [loc.say(f"audit_col_{c}") for c in _COLUMNS], [r.cells(loc) for r in rows]


def format_audit(rows: Sequence[AuditRow], lang: str = "en") -> str:
    """The audit as a Markdown table, in English (``"en"``) or Chinese (``"zh"``).

    >>> print(format_audit(audit()[:1]).splitlines()[0])
    | formula | reading | shape (row bias / n×m bias) | conforms | max rel. error | verdict |
    """
    head, cells = audit_table(rows, lang)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def _check_words() -> None:
    """Every reading and verdict has its words in every language (checked at import)."""
    keys = {f"audit_reading_{f.reading.key}" for f in FORMULAS} | {f"audit_verdict_{v.value}" for v in Verdict}
    keys |= {f"audit_reading_compiled_{b}" for b in ("row", "full")} | {f"audit_col_{c}" for c in _COLUMNS}
    missing = sorted(f"{lang}:{k}" for lang in LANGUAGES for k in keys if k not in PROSE[lang])
    if missing:
        raise RuntimeError(f"the locale table lacks the audit's words {', '.join(missing)}")


_check_words()
