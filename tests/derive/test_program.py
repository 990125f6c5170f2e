"""derive.program: networks typed as programs.

Every gradient of every program is compared with central finite differences of a forward pass
written by hand in NumPy, on non-square data (n=4, d=3, m=5, k=2); the seed program gives the
seed network's document; bad programs give one-line errors naming the line and column.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import sympy

import derive
from derive import limits
from derive.lang import ExpressionError
from derive.limits import LimitError
from derive.program import ProgramError, is_program, program
from numeric import compile as compile_kernel
from tests.oracle import DIMS, fd_gradient, np_sigmoid, rel_err

SEED = """X: n×d; Y: n×k                         # inputs (also X: n,d)
param W1: d×m; param b1: 1×m; param W2: m×k; param b2: 1×k
h = X*W1 + b1
H = sigmoid(h)
Ypred = H*W2 + b2
f = norm2(Y - Ypred)^2
"""

TANH3 = """# three layers, tanh, the loss named 'loss' and divided by a dimension
X: n,d; Y: n,k
param W1: d x m; param b1: 1 x m
param W2: m*m; param b2: 1*m
param W3: m×k; param b3: 1×k
Z1 = X*W1 + b1; A1 = tanh(Z1)
Z2 = A1*W2 + b2; A2 = tanh(Z2)
Yhat = A2*W3 + b3
loss = norm2(Yhat - Y)^2 / n
"""

RESIDUAL = """X: n×d; Y: n×k
param W1: d×m; param W2: m×m; param V: m×k
H = X*W1
U = tanh(H)
R = H + U*W2          # the skip connection: H used twice
O = R*V
r = norm2(W1)^2       # a scalar line: inlined into the loss
f = norm2(O - Y)^2 + 0.1*r
"""

AUTOENCODER = """X: n×d
param W: d×m; param c: 1×m
H = sigmoid(X*W + c)
R = H*W'              # tied weights: W and W' both used
f = norm2(R - X)^2
"""

SOFTMAX = """X: n×d; Y: n×k
param W: d×k; param b: 1×k
Z = X*W + b
P = softmax(Z)
f = -sum(Y .* log(P))
"""

ATTENTION = """X: n×d; Y: n×d
param Wq: d×k; param Wk: d×k; param Wv: d×d
Q = X*Wq; K = X*Wk; V = X*Wv     # X used four times (with the residual below)
S = Q*K'/sqrt(k)
P = softmax(S)
O = P*V + X
f = norm2(O - Y)^2
"""


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


# program, the NumPy forward pass written by hand (arguments in the order of `names`), names
CASES = {
    "seed": (SEED, lambda X, Y, W1, b1, W2, b2: np.sum((Y - (np_sigmoid(X @ W1 + b1) @ W2 + b2)) ** 2),
             ("X", "Y", "W1", "b1", "W2", "b2")),
    "tanh3": (TANH3, lambda X, Y, W1, b1, W2, b2, W3, b3: np.sum(
        (np.tanh(np.tanh(X @ W1 + b1) @ W2 + b2) @ W3 + b3 - Y) ** 2) / X.shape[0],
              ("X", "Y", "W1", "b1", "W2", "b2", "W3", "b3")),
    "residual": (RESIDUAL, lambda X, Y, W1, W2, V: np.sum(((X @ W1 + np.tanh(X @ W1) @ W2) @ V - Y) ** 2)
                 + 0.1 * np.sum(W1 ** 2), ("X", "Y", "W1", "W2", "V")),
    "autoencoder": (AUTOENCODER, lambda X, W, c: np.sum((np_sigmoid(X @ W + c) @ W.T - X) ** 2), ("X", "W", "c")),
    "attention": (ATTENTION, lambda X, Y, Wq, Wk, Wv: np.sum(
        (_softmax((X @ Wq) @ (X @ Wk).T / np.sqrt(Wq.shape[1])) @ (X @ Wv) + X - Y) ** 2),
                  ("X", "Y", "Wq", "Wk", "Wv")),
    "softmax": (SOFTMAX, lambda X, Y, W, b: -np.sum(Y * np.log(_softmax(X @ W + b))), ("X", "Y", "W", "b")),
}


def _data(net, names, rng):
    symbols = {s.name: s for s in net.inputs + net.params}
    sizes = {sympy.Symbol(k, integer=True, positive=True): v for k, v in DIMS.items()}
    out = [rng.standard_normal(tuple(int(sympy.sympify(x).xreplace(sizes)) for x in symbols[k].shape))
           for k in names]
    if "Y" in names and "P" in net.symbols:   # a distribution per row for the cross-entropy
        i = names.index("Y")
        out[i] = np.abs(out[i]) + 0.1
        out[i] /= out[i].sum(axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_every_gradient_meets_finite_differences_of_a_hand_written_forward_pass(case):
    text, forward, names = CASES[case]
    net = program(text)
    assert [p.name for p in net.params] == [k for k in names if f"param {k}:" in text]
    bp = derive.backprop(net)
    grads = bp.gradients(expanded=True)
    args = [net.symbols[k] for k in names]
    kernel = compile_kernel([net.f] + [grads[p] for p in net.params], args)
    arrays = _data(net, names, np.random.default_rng(3))
    f, *got = kernel(*arrays)
    assert float(f) == pytest.approx(forward(*arrays), rel=1e-12)   # the program means what it says
    for p, g in zip(net.params, got):
        fd = fd_gradient(forward, arrays, names.index(p.name))
        assert g.shape == fd.shape
        assert rel_err(g, fd) < 1e-6, p.name


def test_stages_fan_out_and_sections():
    net = program(RESIDUAL)
    assert [s.name for s, _ in net.stages] == ["H", "U", "R", "O"]
    assert net.uses(net.H_symbol) == (net.U_symbol, net.R_symbol)   # H feeds U and the skip connection R
    bp = derive.backprop(net)
    assert len(bp.section("H").contributions) == 2            # its gradient is the sum over its uses
    assert len(bp.section("W1").contributions) == 2           # the stage U and the loss's 0.1‖W1‖²
    ae = derive.backprop(program(AUTOENCODER))
    assert len(ae.section("W").contributions) == 2            # W in H and Wᵀ in R


def test_a_layer_call_is_expanded_into_stages():
    net = program(SOFTMAX)
    assert [s.name for s, _ in net.stages] == ["Z", "P"]
    assert net.stages[1][1] == derive.networks.softmax_rows(net.Z_symbol)
    assert [s.wrt.name for s in derive.backprop(net).sections] == ["Y", "P", "Z", "W", "b"]


def test_a_scalar_layer_on_the_last_line_is_the_loss(monkeypatch):
    from derive import layers
    from derive.layers import Expansion, Layer

    def build(out_name, Z):   # a scalar layer with a sub-stage: ‖exp(Z)‖²
        E = sympy.MatrixSymbol(f"{out_name}_E", *Z.shape)
        return Expansion(stages=((E, derive.exp(Z)),), loss=derive.frobenius_sq(E))

    monkeypatch.setitem(layers._LAYERS, "sqexp", Layer("sqexp", ("Z",), build, scalar=True))
    net = program("X: n×d; param W: d×k; Z = X*W; L = sqexp(Z)")
    assert [s.name for s, _ in net.stages] == ["Z", "L_E"]
    inlined = program("X: n×d; param W: d×k; Z = X*W; s = sqexp(Z); f = 2*s")   # not last: inlined
    assert [s.name for s, _ in inlined.stages] == ["Z"]
    text = "X: n×d; param W: d×k; L_E = X*W; L = sqexp(L_E)"
    with pytest.raises(ProgramError, match=f"line 1, column {text.index('sqexp') + 1}: sqexp names one of its "
                                           "steps L_E"):
        program(text)


def test_the_seed_program_gives_the_seed_document():
    from derive.render.html import backprop_html

    a, b = derive.backprop(program(SEED)), derive.backprop(derive.seed_network())
    assert [s.wrt for s in a.sections] == [s.wrt for s in b.sections]
    for x, y in zip(a.sections, b.sections):
        assert x == y, x.wrt
    assert a.summary == b.summary
    for lang in ("en", "zh"):
        assert a.to_text(lang=lang) == b.to_text(lang=lang)
        assert a.to_markdown(lang=lang) == b.to_markdown(lang=lang)
        assert a.to_latex(lang=lang) == b.to_latex(lang=lang)
        assert backprop_html(a, lang, audit=False) == backprop_html(b, lang, audit=False)
    assert program(SEED, name="seed") == derive.seed_network()


def test_declarations_shapes_and_wrt():
    net = program("E = X*W - Y; f = norm2(E)^2", {"X": ("n", "d"), "Y": ("n", "k")}, wrt=["W"])
    assert net.params[0].shape == net.X.shape[1:] + net.Y.shape[1:]   # W inferred d×k
    assert [s.name for s in net.inputs] == ["X", "Y"]
    both = program(SEED, wrt=["W2", "X"])
    assert [p.name for p in both.params] == ["W2", "X"]
    assert [s.name for s in both.inputs] == ["Y", "W1", "b1", "b2"]
    with pytest.raises(ValueError, match="--wrt h: not an input or parameter of the program"):
        program(SEED, wrt=["h"])
    lam = program("X: n×d; param W: d×k; lam: scalar; f = norm2(X*W)^2 + lam*norm2(W)^2")
    assert sympy.Symbol("lam") in lam.loss.free_symbols
    with pytest.raises(ProgramError, match="line 1, column 1: X is declared n×d but shapes gives"):
        program("X: n×d; param W: d×k; f = sum(X*W)", {"X": ("n", "k")})
    assert program("X: n×d; param W: d×k; f = sum(X*W)", {"X": ("n", "d")}).X.shape == program(
        "X: n×d; param W: d×k; f = sum(X*W)").X.shape
    one = program("x: 1×n; param w: n×1; f = x*w")   # a 1×1 last line is its trace
    assert isinstance(one.loss, sympy.Trace)


def test_is_program():
    assert not is_program("norm2(Y - X*W)^2")
    assert is_program("E = X*W")
    assert is_program("X: n×d")
    assert is_program("a\nb")


# text, line, column, kind, words of the message
BAD = [
    ("X: n×d\nparam W: d×k\nf = sum(X*V)", 3, 11, "unknown-name", "unknown name 'V'"),
    ("X: n×d; Y: n×k\nparam W: d×k\nf = X*W", 3, 1, "shape", "must be a scalar; f is n×k"),
    ("X: n×d\nparam W: d×k", 2, 13, "syntax", "no assignment"),
    ("X: n×d; param W: d×k\nX = X*W\nf = sum(X)", 2, 1, "syntax", "redefines the input X declared on line 1"),
    ("X: n×d; param W: k×d\nZ = X*W\nf = sum(Z)", 2, 6, "shape", "'*' joins X (n×d) with W (k×d)"),
    ("X: n×d; param W: d×k\nZ = X*W\nZ = 2*Z\nf = sum(Z)", 3, 1, "syntax", "Z is already assigned on line 2"),
    ("X: n×d; param W: d×k\n  Z = X*W $ 2\nf = sum(Z)", 2, 11, "syntax", "unexpected character '$'"),
    ("X: n×d; X: n×k\nparam W: d×k\nf = sum(X*W)", 1, 9, "syntax", "X is already declared on line 1"),
    ("X: n×q×d\nparam W: d×k\nf = sum(X*W)", 1, 4, "syntax", "expected a shape after 'X:'"),
    ("X: n×d; param W: d×k\nX*W\nf = sum(X*W)", 2, 1, "syntax", "expected a declaration"),
    ("X: n×d; param W: d×k\nZ = X*W; U = Z\nf = sum(Z)", 2, 10, "syntax", "U is assigned but never used"),
    ("X: n×d; param W: d×k\nf = X*W; g = sum(f)", 2, 1, "syntax", "f names the loss"),
    ("X: n×d; param W: d×k; param V: d×k\nf = sum(X*W)", 1, 29, "syntax", "parameter V is declared but never used"),
    ("X: n×d; param W: d×k\nZ = softmax(X*W, X)\nf = sum(Z)", 2, 5, "shape", "softmax(Z) takes 1 arguments"),
    ("X: n×d; param W: d×k\n2Z = X*W\nf = sum(Z)", 2, 1, "syntax", "the left of '=' must be a name"),
    ("X: n×d; param W: d×k\nZ = Z + X*W\nf = sum(Z)", 2, 1, "unknown-name", "Z is used in its own definition"),
    ("X: n×d; param W: d×k\nsum = X*W\nf = tr(sum)", 2, 1, "syntax", "'sum' is a function name"),
    ("X: n×d\nf = sum(X)", 2, 1, "unknown-name", "declares no parameter"),
    ("X: n×d; param W: d×k\nZ = X*W\nf = sum(Z) +", 3, 12, "syntax", "expected an operand"),
    ("X: n×d; param W: d×k\nZ =\nf = sum(Z)", 2, 4, "syntax", "expected an expression after '='"),
]


@pytest.mark.parametrize("text, line, column, kind, words", BAD)
def test_errors_name_the_line_and_column(text, line, column, kind, words):
    with pytest.raises(ProgramError) as info:
        program(text)
    e = info.value
    assert (e.line, e.column, e.kind) == (line, column, kind), str(e)
    assert str(e).startswith(f"line {line}, column {column}: ") and words in str(e)
    assert "\n" not in str(e)
    assert isinstance(e, ExpressionError)
    caret = e.caret().split("\n")
    assert caret[0] == text.split("\n")[line - 1] and caret[1].index("^") == column - 1


def test_program_error_pickles():
    e = ProgramError("boom", 2, 3, "x", "a\nb", "shape")
    back = pickle.loads(pickle.dumps(e))
    assert (str(back), back.line, back.kind) == ("line 2, column 3: boom", 2, "shape")


def test_programs_are_bounded():
    with pytest.raises(LimitError, match="MAX_PROGRAM_LENGTH"):
        program("# " + "x" * limits.MAX_PROGRAM_LENGTH)
    many = "\n".join(f"c{i}: scalar" for i in range(limits.MAX_PROGRAM_STATEMENTS + 1))
    with pytest.raises(ProgramError, match="MAX_PROGRAM_STATEMENTS") as info:
        program(many)
    assert info.value.line == limits.MAX_PROGRAM_STATEMENTS + 1 and isinstance(info.value, LimitError)
    with pytest.raises(TypeError):
        program(b"X: n,d")


def test_kernel_stages_take_the_programs_scalars_after_the_parameters() -> None:
    # a declared scalar used in the loss (λ) or in a stage (s) is an argument of the kernel
    import numpy as np
    import numeric
    from derive import backprop
    from derive.kernel_stages import kernel_stages
    rng = np.random.default_rng(4)
    X, Y, W = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    for text, by_hand in (
            ("Z = X*W\nf = norm2(Z - Y)^2 + lam*norm2(W)^2", lambda c: 2 * X.T @ (X @ W - Y) + 2 * c * W),
            ("Z = s*X*W\nf = sum(exp(Z) .* Y)", lambda c: c * X.T @ (np.exp(c * X @ W) * Y))):
        scalar = "lam" if "lam" in text else "s"
        net = program(f"X: n×d; Y: n×k\nparam W: d×k; {scalar}: scalar\n{text}")
        stages, outs, args = kernel_stages(backprop(net))
        assert [a.name for a in args] == ["X", "Y", "W", scalar]
        _, grad = numeric.compile(outs, args, stages=stages)(X, Y, W, 0.3)
        np.testing.assert_allclose(grad, by_hand(0.3), rtol=1e-12)
