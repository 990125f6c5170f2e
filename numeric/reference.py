"""The seed document's hand-written gradients, transcribed literally in NumPy, and audited.

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
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

__all__ = [
    "AUDIT_DIMS",
    "FORMULAS",
    "AuditRow",
    "audit",
    "audit_table",
    "fd_gradient",
    "format_audit",
    "forward",
    "loss",
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


@dataclass(frozen=True)
class Formula:
    variable: str              # Y, Ypred, W2, b2, H, h, W1, b1
    text: str                  # the formula as the document writes it
    latex: str
    reading: str               # how the notation is read
    compute: Callable[[Arrays, Arrays], np.ndarray]
    wrt_value: str = "param"   # "param": f of the inputs; "Ypred"/"H": f of that intermediate


FORMULAS: tuple[Formula, ...] = (
    Formula("Y", "∂f/∂Y = 2(Y − Ypred)", r"\frac{\partial f}{\partial Y} = 2(Y - Y_{pred})",
            "as written", lambda v, fw: 2 * (v["Y"] - fw["Ypred"])),
    Formula("Ypred", "∂f/∂Ypred = 2(Ypred − Y)",
            r"\frac{\partial f}{\partial Y_{pred}} = 2(Y_{pred} - Y)",
            "as written (f as a function of Ypred)", lambda v, fw: 2 * _R(v, fw), "Ypred"),
    Formula("W2", "∂f/∂W2 = 2 h_sigmoidᵀ(Ypred − Y)",
            r"\frac{\partial f}{\partial W_2} = 2h_{sigmoid}^T[(Y_{pred} - Y)]",
            "as written", lambda v, fw: 2 * fw["H"].T @ _R(v, fw)),
    Formula("b2", "∂f/∂b2 = 2(Ypred − Y)", r"\frac{\partial f}{\partial b_2} = 2(Y_{pred} - Y)",
            "as written", lambda v, fw: 2 * _R(v, fw)),
    Formula("b2", "∂f/∂b2 = 2·1ᵀ(Ypred − Y)", r"\frac{\partial f}{\partial b_2} = 2\,\mathbf{1}^T(Y_{pred} - Y)",
            "corrected: summed over the batch", lambda v, fw: 2 * np.sum(_R(v, fw), axis=0, keepdims=True)),
    Formula("H", "∂f/∂h_sigmoid = 2(Ypred − Y)W2ᵀ",
            r"\frac{\partial f}{\partial h_{sigmoid}} = 2(Y_{pred} - Y)W_2^T",
            "as written (f as a function of h_sigmoid)", lambda v, fw: 2 * _R(v, fw) @ v["W2"].T, "H"),
    Formula("h", "∂f/∂h = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial h} = 2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "⊙ looser than product: [2(Ypred − Y)W2ᵀ] ⊙ σ'(h)",
            lambda v, fw: (2 * _R(v, fw) @ v["W2"].T) * _sp(fw), "h"),
    Formula("h", "∂f/∂h = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial h} = 2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "⊙ tighter than product: 2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]",
            lambda v, fw: 2 * _R(v, fw) @ (v["W2"].T * _sp(fw)), "h"),
    Formula("W1", "∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial W_1} = 2X^T(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "⊙ looser than product: [2Xᵀ(Ypred − Y)W2ᵀ] ⊙ σ'(h)",
            lambda v, fw: (2 * v["X"].T @ _R(v, fw) @ v["W2"].T) * _sp(fw)),
    Formula("W1", "∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial W_1} = 2X^T(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "⊙ tighter than product: 2Xᵀ(Ypred − Y)[W2ᵀ ⊙ σ'(h)]",
            lambda v, fw: 2 * v["X"].T @ _R(v, fw) @ (v["W2"].T * _sp(fw))),
    Formula("W1", "∂f/∂W1 = 2Xᵀ(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial W_1} = 2X^T(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "as the derivation's line before it: 2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ'(h)]",
            lambda v, fw: 2 * v["X"].T @ ((_R(v, fw) @ v["W2"].T) * _sp(fw))),
    Formula("b1", "∂f/∂b1 = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial b_1} = 2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "⊙ looser than product: [2(Ypred − Y)W2ᵀ] ⊙ σ'(h)",
            lambda v, fw: (2 * _R(v, fw) @ v["W2"].T) * _sp(fw)),
    Formula("b1", "∂f/∂b1 = 2(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)",
            r"\frac{\partial f}{\partial b_1} = 2(Y_{pred} - Y)W_2^T \odot sigmoid'(h)",
            "⊙ tighter than product: 2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]",
            lambda v, fw: 2 * _R(v, fw) @ (v["W2"].T * _sp(fw))),
    Formula("b1", "∂f/∂b1 = 2·1ᵀ[(Ypred − Y)W2ᵀ ⊙ sigmoid'(h)]",
            r"\frac{\partial f}{\partial b_1} = 2\,\mathbf{1}^T[(Y_{pred} - Y)W_2^T \odot sigmoid'(h)]",
            "corrected: summed over the batch",
            lambda v, fw: 2 * np.sum((_R(v, fw) @ v["W2"].T) * _sp(fw), axis=0, keepdims=True)),
)


@dataclass(frozen=True)
class AuditRow:
    """One formula under one reading, checked under both bias readings."""

    formula: str
    latex: str
    reading: str
    conforms: bool                      # the shapes conform (under some bias reading)
    max_error: float | None             # worst relative error where the shape matches ∂f/∂var
    verdict: str
    errors: dict[str, float | None]     # per bias reading: "row", "full"
    shapes: dict[str, str]              # result shape per bias reading ("—" if not conforming)


AUDIT_DIMS = (4, 3, 5, 2)  # n, d, m, k of the audit's random data
CORRECT_TOL = 1e-6
WRONG_TOL = 1e-3


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
    import sympy
    from sympy import MatrixSymbol, OneMatrix
    from sympy.matrices.expressions.hadamard import HadamardProduct

    from numeric.compile import compile as compile_kernel

    n, d, m, k = (sympy.Symbol(s, integer=True, positive=True) for s in "ndmk")
    X, Y = MatrixSymbol("X", n, d), MatrixSymbol("Y", n, k)
    W1, W2 = MatrixSymbol("W1", d, m), MatrixSymbol("W2", m, k)
    rb = 1 if bias == "row" else n
    b1, b2 = MatrixSymbol("b1", rb, m), MatrixSymbol("b2", rb, k)
    lift1 = OneMatrix(n, 1) * b1 if bias == "row" else b1
    lift2 = OneMatrix(n, 1) * b2 if bias == "row" else b2
    S = _sigmoid_matrix(X * W1 + lift1)
    R = S * W2 + lift2 - Y
    Gh = HadamardProduct(R * W2.T, S, OneMatrix(n, m) - S)
    sum_rows = (lambda G: OneMatrix(1, n) * G) if bias == "row" else (lambda G: G)
    kern = compile_kernel([2 * X.T * Gh, 2 * sum_rows(Gh), 2 * S.T * R, 2 * sum_rows(R)],
                          [X, Y, W1, b1, W2, b2])
    names = ("W1", "b1", "W2", "b2")
    return lambda v: dict(zip(names, kern(*(v[s] for s in ("X", "Y", "W1", "b1", "W2", "b2")))))


def _sigmoid_matrix(A):
    from derive.elementwise import sigmoid as sigmoid_matrix

    return sigmoid_matrix(A)


def audit(seed: int = 0, dims: tuple[int, int, int, int] = AUDIT_DIMS, *,
          compiled: bool = False) -> list[AuditRow]:
    """Evaluate every formula of the seed document under every reading.

    Each row is checked under the row-bias and the full-bias reading against central
    finite differences of f (plain NumPy).  With ``compiled=True``, rows for the
    ``numeric.compile`` kernel of the correct gradients are added.

    >>> rows = audit()
    >>> [(r.formula.split(" =")[0], r.verdict) for r in rows][:4]
    [('∂f/∂Y', 'correct'), ('∂f/∂Ypred', 'correct'), ('∂f/∂W2', 'correct'), ('∂f/∂b2', 'correct for bias n×k only')]
    """
    rows: list[AuditRow] = []
    data = {}
    for bias in ("row", "full"):
        rng = np.random.default_rng(seed)
        v = random_values(rng, dims, bias)
        data[bias] = (v, forward(v))
    fd_cache: dict[tuple[str, str], np.ndarray] = {}

    def fd(bias: str, formula: Formula) -> tuple[np.ndarray, str]:
        v, fw = data[bias]
        target, var = _target(formula, v, fw)
        key = (bias, var)
        if key not in fd_cache:
            fd_cache[key] = fd_gradient(_loss_of(var), target, var)
        return fd_cache[key], var

    for formula in FORMULAS:
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
            ref, _ = fd(bias, formula)
            errors[bias] = _relative(G, ref) if G.shape == ref.shape else None
        rows.append(_row(formula.text, formula.latex, formula.reading, conforms, errors, shapes, dims))

    if compiled:
        for bias in ("row", "full"):
            v, fw = data[bias]
            grads = _kernel_gradients(bias, dims)(v)
            for var in ("W1", "b1", "W2", "b2"):
                ref = fd_gradient(loss, v, var)
                err = _relative(grads[var], ref) if grads[var].shape == ref.shape else None
                errors = {bias: err}
                shapes = {bias: "×".join(map(str, grads[var].shape))}
                rows.append(_row(f"numeric.compile: ∂f/∂{var}", "", f"compiled kernel, bias {bias}",
                                 True, errors, shapes, dims))
    return rows


def _row(text: str, latex: str, reading: str, conforms: bool, errors: dict[str, float | None],
         shapes: dict[str, str], dims: tuple[int, int, int, int]) -> AuditRow:
    measured = [e for e in errors.values() if e is not None]
    max_error = max(measured) if measured else None

    def ok(bias: str) -> bool:
        e = errors.get(bias)
        return e is not None and e < CORRECT_TOL

    def bad(bias: str) -> bool:
        e = errors.get(bias)
        return e is None or e > WRONG_TOL

    if not conforms:
        verdict = "shapes do not conform"
    elif all(ok(b) for b in errors):
        verdict = "correct"
    elif set(errors) == {"row", "full"} and ok("full") and bad("row"):
        full_shape = "n×k" if "b2" in text else "n×m"
        verdict = f"correct for bias {full_shape} only"
    elif set(errors) == {"row", "full"} and ok("row") and bad("full"):
        verdict = "correct for row bias only"
    elif all(bad(b) for b in errors):
        verdict = "wrong"
    else:
        verdict = "inconclusive"
    return AuditRow(text, latex, reading, conforms, max_error, verdict, errors, shapes)


_ZH = {
    "correct": "正确",
    "wrong": "错误",
    "shapes do not conform": "形状不相容",
    "correct for bias n×m only": "仅当偏置为 n×m 时正确",
    "correct for bias n×k only": "仅当偏置为 n×k 时正确",
    "correct for row bias only": "仅当偏置为行向量时正确",
    "inconclusive": "无法判定",
}
_ZH_READING = {
    "as written": "按原文",
    "as written (f as a function of Ypred)": "按原文（f 视为 Ypred 的函数）",
    "as written (f as a function of h_sigmoid)": "按原文（f 视为 h_sigmoid 的函数）",
    "corrected: summed over the batch": "修正：对批次求和",
    "⊙ looser than product: [2(Ypred − Y)W2ᵀ] ⊙ σ'(h)": "⊙ 优先级低于矩阵乘：[2(Ypred − Y)W2ᵀ] ⊙ σ'(h)",
    "⊙ tighter than product: 2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]": "⊙ 优先级高于矩阵乘：2(Ypred − Y)[W2ᵀ ⊙ σ'(h)]",
    "⊙ looser than product: [2Xᵀ(Ypred − Y)W2ᵀ] ⊙ σ'(h)": "⊙ 优先级低于矩阵乘：[2Xᵀ(Ypred − Y)W2ᵀ] ⊙ σ'(h)",
    "⊙ tighter than product: 2Xᵀ(Ypred − Y)[W2ᵀ ⊙ σ'(h)]": "⊙ 优先级高于矩阵乘：2Xᵀ(Ypred − Y)[W2ᵀ ⊙ σ'(h)]",
    "as the derivation's line before it: 2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ'(h)]":
        "按前一行推导：2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ'(h)]",
    "compiled kernel, bias row": "编译内核，行偏置",
    "compiled kernel, bias full": "编译内核，n×m 偏置",
}


def audit_table(rows: list[AuditRow], lang: str = "en") -> tuple[list[str], list[list[str]]]:
    """The audit's column headings and each row's cells as words, in English or Chinese:
    formula, reading, shape (row bias / n×m bias), conforms, max. relative error, verdict.

    >>> head, cells = audit_table(audit()[:1])
    >>> head[0], cells[0][-1]
    ('formula', 'correct')
    """
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
    zh = lang == "zh"
    head = (["公式", "解读", "结果形状（行偏置 / n×m 偏置）", "形状相容", "最大相对误差", "结论"] if zh else
            ["formula", "reading", "shape (row bias / n×m bias)", "conforms", "max rel. error", "verdict"])
    cells = []
    for r in rows:
        shapes = " / ".join(r.shapes.get(b, "") for b in ("row", "full") if b in r.shapes)
        err = "—" if r.max_error is None else f"{r.max_error:.1e}"
        yes_no = ("是" if r.conforms else "否") if zh else ("yes" if r.conforms else "no")
        reading = _ZH_READING.get(r.reading, r.reading) if zh else r.reading
        verdict = _ZH.get(r.verdict, r.verdict) if zh else r.verdict
        cells.append([r.formula, reading, shapes, yes_no, err, verdict])
    return head, cells


def format_audit(rows: list[AuditRow], lang: str = "en") -> str:
    """The audit as a Markdown table, in English (``"en"``) or Chinese (``"zh"``).

    >>> print(format_audit(audit()[:1]).splitlines()[0])
    | formula | reading | shape (row bias / n×m bias) | conforms | max rel. error | verdict |
    """
    head, cells = audit_table(rows, lang)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)
