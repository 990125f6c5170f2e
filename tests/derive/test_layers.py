"""The layers (derive.layers): every gradient of every layer, through a scalar loss sum(C ⊙ layer(...)) with a
random C, meets central finite differences of the layer's forward pass written by hand in NumPy; the softmax
and attention sections read in the named forms; the language calls them, with shape errors that name the
argument; compiled kernels stay finite and silent at logits ±1e4."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy
from sympy import MatMul, MatrixSymbol, Trace, Transpose

import numeric
from derive import Network, backprop
from derive.elementwise import elu, leaky_relu
from derive.fold import NAME_STAGE
from derive.lang import ExpressionError, parse
from derive.layers import EPS, Layer, define_layer, layer, layers
from tests.oracle import fd_gradient, np_attention, np_logsoftmax, np_norm, np_softmax, rel_err

n, d, m, e = 4, 3, 5, 2   # all different: rows, features, keys, values (k = d classes)


# ----------------------------------------------------------------------------- forward passes by hand

def np_svm(Z, Y, delta=1.0):
    s = (Z * Y).sum(axis=1, keepdims=True)
    return np.maximum(Z - s + delta, 0).sum() - Z.shape[0] * delta


# name, symbols (shapes), the call's arguments, differentiable arguments, forward by hand (NumPy arrays in order)
CASES = {
    "softmax": ({"Z": (n, d)}, ["Z"], ["Z"], lambda Z: np_softmax(Z)),
    "logsoftmax": ({"Z": (n, d)}, ["Z"], ["Z"], lambda Z: np_logsoftmax(Z)),
    "cross_entropy": ({"Z": (n, d), "Y": (n, d)}, ["Z", "Y"], ["Z"], lambda Z, Y: -(Y * np_logsoftmax(Z)).sum()),
    "mean_rows": ({"Z": (n, d)}, ["Z"], ["Z"], lambda Z: Z.mean(axis=0, keepdims=True)),
    "mean_cols": ({"Z": (n, d)}, ["Z"], ["Z"], lambda Z: Z.mean(axis=1, keepdims=True)),
    "var_rows": ({"Z": (n, d)}, ["Z"], ["Z"], lambda Z: Z.var(axis=0, keepdims=True)),
    "var_cols": ({"Z": (n, d)}, ["Z"], ["Z"], lambda Z: Z.var(axis=1, keepdims=True)),
    "batchnorm": ({"Z": (n, d), "gamma": (1, d), "beta": (1, d)}, ["Z", "gamma", "beta"], ["Z", "gamma", "beta"],
                  lambda Z, g, b: np_norm(Z, g, b, axis=0)),
    "layernorm": ({"Z": (n, d), "gamma": (1, d), "beta": (1, d)}, ["Z", "gamma", "beta"], ["Z", "gamma", "beta"],
                  lambda Z, g, b: np_norm(Z, g, b, axis=1)),
    "attention": ({"Q": (n, d), "K": (m, d), "V": (m, e)}, ["Q", "K", "V"], ["Q", "K", "V"], np_attention),
    "causal attention": ({"Q": (n, d), "K": (m, d), "V": (m, e), "M": (n, m)}, ["Q", "K", "V", "M"], ["Q", "K", "V"],
                         np_attention),
    "hinge": ({"Z": (n, d), "Y": (n, d)}, ["Z", "Y"], ["Z"], lambda Z, Y: np.maximum(1 - Y * Z, 0).sum()),
    "svm_loss": ({"Z": (n, d), "Y": (n, d)}, ["Z", "Y"], ["Z"], np_svm),
    "dropout": ({"Z": (n, d), "M": (n, d)}, ["Z", "M", sympy.Rational(1, 4)], ["Z"], lambda Z, M: Z * M / (1 - 0.25)),
}


def _data(name: str, shapes: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    vals = {s: rng.standard_normal(shape) for s, shape in shapes.items()}
    if name == "cross_entropy":
        Y = rng.random(shapes["Y"]) + 0.1
        vals["Y"] = Y / Y.sum(axis=1, keepdims=True)      # rows summing to one, as the derivation assumes
    if name == "svm_loss":
        vals["Y"] = np.eye(shapes["Y"][1])[rng.integers(0, shapes["Y"][1], shapes["Y"][0])]
    if name == "hinge":
        vals["Y"] = np.where(rng.random(shapes["Y"]) < 0.5, -1.0, 1.0)
    if name == "dropout":
        vals["M"] = (rng.random(shapes["M"]) < 0.75).astype(float)
    if name == "causal attention":
        vals["M"] = np.where(np.arange(m)[None, :] > np.arange(n)[:, None], -1e9, 0.0)
    return vals


def _network(name: str, out: str = "A"):
    """The layer applied to symbols, as a network with loss sum(C ⊙ layer(...)) (or the layer's own loss)."""
    shapes, call, wrt, _ = CASES[name]
    symbols = {s: MatrixSymbol(s, *shape) for s, shape in shapes.items()}
    args = [symbols[a] if isinstance(a, str) else a for a in call]
    record = layer(name.split()[-1])
    expansion = record.expand(out, *args)
    inputs = tuple(s for s in symbols.values() if s.name not in wrt)
    if record.scalar:
        loss = expansion.loss
    else:
        output = expansion.stages[-1][0]
        C = MatrixSymbol("C", *output.shape)
        inputs += (C,)
        loss = Trace(MatMul(Transpose(C), output))
    net = Network(inputs=inputs, params=tuple(symbols[w] for w in wrt), stages=expansion.stages, loss=loss,
                  assumptions=expansion.assumptions)
    return net, symbols


@pytest.mark.parametrize("name", list(CASES))
def test_every_gradient_meets_finite_differences_of_a_forward_pass_by_hand(name: str) -> None:
    shapes, call, wrt, forward = CASES[name]
    net, symbols = _network(name)
    bp = backprop(net)
    rng = np.random.default_rng(sorted(CASES).index(name.split()[-1]))
    vals = _data(name, shapes, rng)
    order = [a for a in call if isinstance(a, str)]
    C = rng.standard_normal(net.stages[-1][0].shape) if not layer(name.split()[-1]).scalar else None

    def loss(*arrays):
        out = forward(*arrays)
        return float(np.sum(C * out)) if C is not None else float(out)

    # the gradients in the inputs, compiled (the kernels are checked here too), against the hand-written loss
    args = [symbols[s] for s in order] + ([MatrixSymbol("C", *C.shape)] if C is not None else [])
    kernel = numeric.compile([net.f] + [bp.gradient(w) for w in wrt], args)
    got = kernel(*[vals[s] for s in order], *([C] if C is not None else []))
    assert float(got[0]) == pytest.approx(loss(*[vals[s] for s in order]), rel=1e-9, abs=1e-9)
    for w, G in zip(wrt, got[1:]):
        fd = fd_gradient(loss, [vals[s] for s in order], order.index(w))
        assert rel_err(G, fd) < 1e-6, (name, w)


def test_softmax_reads_p_times_g_minus_the_row_sums() -> None:
    net, _ = _network("softmax", out="P")
    section = backprop(net).section("Z")
    assert str(section.result) == "P ⊙ (C - [C ⊙ P]𝟏₃𝟏₃ᵀ)"
    assert [s.rule for s in section.steps[-2:]] == [NAME_STAGE.key, "read_off"]
    # the law of the step holds numerically: the form with P is the engine's form
    rng = np.random.default_rng(1)
    Z, C = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    P = np_softmax(Z)
    k = numeric.compile(section.result.xreplace(dict(net.stages)), [MatrixSymbol("Z", n, d), MatrixSymbol("C", n, d)])
    assert rel_err(k(Z, C), P * (C - (C * P).sum(axis=1, keepdims=True))) < 1e-12


def test_attention_reads_in_its_stages() -> None:
    net, _ = _network("attention", out="A")
    bp = backprop(net)
    assert [s.name for s, _ in net.stages] == ["A_S", "A_P", "A"]
    assert str(bp.section("V").result) == "A_Pᵀ C"
    assert str(bp.section("A_P").result) == "CVᵀ"
    # ∂f/∂S = P ⊙ (G − (G ⊙ P)𝟏𝟏ᵀ) with G = ∂f/∂P = CVᵀ
    assert str(bp.section("A_S").result) == "A_P ⊙ (CVᵀ - [(CVᵀ) ⊙ A_P]𝟏₅𝟏₅ᵀ)"
    assert str(bp.section("Q").result) == "sqrt(3)/3·[A_P ⊙ (CVᵀ - [(CVᵀ) ⊙ A_P]𝟏)]K"
    assert str(bp.section("K").result) == "sqrt(3)/3·[A_Pᵀ ⊙ (CVᵀ - [(CVᵀ) ⊙ A_P]𝟏)ᵀ]Q"


def test_batchnorm_meets_the_compact_form() -> None:
    net, _ = _network("batchnorm", out="Y")
    bp = backprop(net)
    assert [s.name for s, _ in net.stages] == list(layer("batchnorm").stage_names("Y"))
    # the steps to this form: tests/derive/test_broadcast.py
    assert str(bp.section("Z").result) == "(1/4)[(𝟏₄[gamma ⊙ Y_sigma∘⁻¹]) ⊙ (4C - 𝟏₄𝟏₄ᵀC - [Y_hat ⊙ (𝟏₄𝟏₄ᵀ[C ⊙ Y_hat])])]"
    assert str(bp.section("Y_var").result).endswith("⊙ Y_sigma∘⁻¹]")   # (var + ε)^∘−½ named 1/σ
    rng = np.random.default_rng(5)
    Z, g, b, G = (rng.standard_normal(s) for s in [(n, d), (1, d), (1, d), (n, d)])
    sigma = np.sqrt(Z.var(axis=0, keepdims=True) + 1e-5)
    hat = (Z - Z.mean(axis=0, keepdims=True)) / sigma
    # (1/n)(𝟏ₙ(γ ⊘ σ)) ⊙ (nG − 𝟏ₙ𝟏ₙᵀG − X̂ ⊙ 𝟏ₙ𝟏ₙᵀ(G ⊙ X̂))
    compact = (g / sigma) / n * (n * G - G.sum(axis=0, keepdims=True) - hat * (G * hat).sum(axis=0, keepdims=True))
    symbols = [MatrixSymbol(s, *a.shape) for s, a in (("Z", Z), ("gamma", g), ("beta", b), ("C", G))]
    kernel = numeric.compile(bp.gradient("Z"), symbols)
    assert rel_err(kernel(Z, g, b, G), compact) < 1e-10


@pytest.mark.parametrize("fn, slope", [(leaky_relu, lambda x: np.where(x > 0, 1.0, 0.01)),
                                       (elu, lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))))])
def test_leaky_relu_and_elu_kernels_and_derivatives(fn, slope) -> None:
    Z = MatrixSymbol("Z", n, d)
    x = np.array([[-3.0, -0.5, 0.2], [1.5, -1e4, 1e4], [0.7, -2.0, 3.0], [-0.1, 0.4, -7.0]])
    forward = {"leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
               "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))}[fn.name]
    from derive.elementwise import elementwise_derivative

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, prime = numeric.compile([fn(Z), elementwise_derivative(fn(Z))], [Z])(x)
    np.testing.assert_allclose(value, forward(x), rtol=1e-12)
    np.testing.assert_allclose(prime, slope(x), rtol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "logsoftmax", "cross_entropy", "attention"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_are_finite_and_silent_at_logits_1e4(name: str, dtype) -> None:
    shapes, call, wrt, _ = CASES[name]
    net, symbols = _network(name)
    bp = backprop(net)
    rng = np.random.default_rng(0)
    vals = _data(name, shapes, rng)
    for s in wrt:
        vals[s] = 1e4 * np.sign(vals[s]) if name != "attention" else 1e2 * vals[s]  # scores ~ ±1e4
    order = [a for a in call if isinstance(a, str)]
    C = rng.standard_normal(net.stages[-1][0].shape) if net.stages else None
    args = [symbols[s] for s in order] + ([MatrixSymbol("C", *C.shape)] if C is not None else [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = numeric.compile([net.f] + [bp.gradient(w) for w in wrt], args)(
            *[vals[s].astype(dtype) for s in order], *([C.astype(dtype)] if C is not None else []))
    assert all(np.all(np.isfinite(o)) and np.asarray(o).dtype == dtype for o in out), name


# ----------------------------------------------------------------------------- the language

SHAPES = {"Z": (n, d), "C": (n, d), "Y": (n, d), "gamma": (1, d), "beta": (1, d), "Q": (n, d), "K": (m, d),
          "V": (m, e), "M": (n, m), "D": (n, d), "eps": ()}
CALLS = {   # text → forward by hand of the same values
    "softmax(Z)": lambda v: np_softmax(v["Z"]),
    "logsoftmax(Z)": lambda v: np_logsoftmax(v["Z"]),
    "cross_entropy(Z, Y)": lambda v: -(v["Y"] * np_logsoftmax(v["Z"])).sum(),
    "mean_rows(Z)": lambda v: v["Z"].mean(0, keepdims=True),
    "mean_cols(Z)": lambda v: v["Z"].mean(1, keepdims=True),
    "var_rows(Z)": lambda v: v["Z"].var(0, keepdims=True),
    "var_cols(Z)": lambda v: v["Z"].var(1, keepdims=True),
    "batchnorm(Z, gamma, beta)": lambda v: np_norm(v["Z"], v["gamma"], v["beta"], 0),
    "batchnorm(Z, gamma, beta, 0.01)": lambda v: np_norm(v["Z"], v["gamma"], v["beta"], 0, eps=0.01),
    "layernorm(Z, gamma, beta, eps)": lambda v: np_norm(v["Z"], v["gamma"], v["beta"], 1, eps=v["eps"]),
    "attention(Q, K, V)": lambda v: np_attention(v["Q"], v["K"], v["V"]),
    "attention(Q, K, V, M)": lambda v: np_attention(v["Q"], v["K"], v["V"], v["M"]),
    "hinge(Z, Y)": lambda v: np.maximum(1 - v["Y"] * v["Z"], 0).sum(),
    "svm_loss(Z, Y)": lambda v: np_svm(v["Z"], v["Y"]),
    "svm_loss(Z, Y, 2)": lambda v: np_svm(v["Z"], v["Y"], 2.0),
    "dropout(Z, D)": lambda v: v["Z"] * v["D"],
    "dropout(Z, D, 0.5)": lambda v: v["Z"] * v["D"] * 2,
    "leaky_relu(Z)": lambda v: np.where(v["Z"] > 0, v["Z"], 0.01 * v["Z"]),
    "elu(Z)": lambda v: np.where(v["Z"] > 0, v["Z"], np.expm1(np.minimum(v["Z"], 0))),
}


@pytest.mark.parametrize("text", list(CALLS))
def test_each_layer_is_a_function_of_the_language(text: str) -> None:
    p = parse(f"2*{text}", SHAPES)
    rng = np.random.default_rng(2)
    v = {s: rng.standard_normal(shape) for s, shape in SHAPES.items() if shape}
    v["eps"] = 0.003
    v["Y"] = np.eye(d)[rng.integers(0, d, n)]
    args = [MatrixSymbol(s, *shape) if shape else sympy.Symbol(s) for s, shape in SHAPES.items()]
    args = [a for a in args if a in p.expr.free_symbols]
    value = numeric.compile(p.expr, args)(*[v[a.name] for a in args])
    assert rel_err(value, 2 * CALLS[text](v)) < 1e-12


def test_a_layer_call_has_its_shape_and_sits_inside_expressions() -> None:
    assert [str(x) for x in parse("softmax(X*W)", {"X": ("n", "d"), "W": ("d", "k")}).shape] == ["n", "k"]
    assert parse("mean_rows(Z)", SHAPES).shape == (1, d) and parse("var_cols(Z)", SHAPES).shape == (n, 1)
    assert parse("attention(Q, K, V)", SHAPES).shape == (n, e)
    assert parse("cross_entropy(Z, Y) + 1", SHAPES).shape is None   # a scalar
    # shapes inferred from the signature: gamma and beta are 1×d with d the columns of Z
    p = parse("sum(batchnorm(Z, g, b))", {"Z": (n, d)})
    assert p.symbols["g"].shape == (1, d) and p.symbols["b"].shape == (1, d)


@pytest.mark.parametrize("text, message", [
    ("batchnorm(Z, gamma)", "batchnorm() takes 3 to 4 arguments, got 2"),
    ("softmax(Z, Z)", "softmax() takes 1 argument, got 2"),
    ("batchnorm(Z, V, beta)", "gamma is 5×2 but must be 1×d"),
    ("attention(Q, V, K)", "K is 5×2 but must be m×d, and d = 3 (the columns of Q)"),
    ("attention(Q, K, V, Z)", "M is 4×3 but must be n×m"),
    ("cross_entropy(Z, Q')", "Y is 3×4 but must be n×k"),
    ("softmax(eps)", "'softmax' takes a matrix as Z (n×d), got eps (scalar)"),
    ("layernorm(Z, gamma, beta, Z)", "eps must be a scalar, got Z (4×3)"),
    ("dropout(Z, Y, 2)", "p is the probability of dropping, 0 ≤ p < 1, got 2"),
])
def test_layer_errors_name_the_argument_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as err:
        parse(text, SHAPES)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_registry() -> None:
    assert {"softmax", "logsoftmax", "cross_entropy", "mean_rows", "mean_cols", "var_rows", "var_cols",
            "batchnorm", "layernorm", "attention", "hinge", "svm_loss", "dropout"} <= set(layers())
    with pytest.raises(ValueError, match="already defined"):
        define_layer(layer("softmax"))
    with pytest.raises(ValueError, match="elementwise function"):
        define_layer(Layer("elu", ("Z",), lambda out, Z: None))
    with pytest.raises(ValueError, match=r"takes 3 to 4 arguments, got 1"):
        layer("batchnorm").expand("Y", MatrixSymbol("Z", n, d))
    assert layer("batchnorm").expand("Y", *(MatrixSymbol(s, *sh) for s, sh in [("Z", (n, d)), ("g", (1, d)),
                                                                             ("b", (1, d))])).stages[3][1].has(EPS)
    assert layer("svm_loss").stage_names("f") == ("f_s", "f_M")
    assert layer("attention").call == "attention(Q, K, V[, M])"


def test_a_softmax_stage_under_a_log_loss_cancels_to_p_minus_y() -> None:
    # P = softmax(Z), f = −Σ Y ⊙ log P written by hand (no assumption on Y): ∂f/∂Z = P ⊙ (Y𝟏𝟏ᵀ) − Y
    from sympy import HadamardProduct, OneMatrix

    from derive.elementwise import log

    Z, Y = MatrixSymbol("Z", n, d), MatrixSymbol("Y", n, d)
    (P, definition), = layer("softmax").expand("P", Z).stages
    loss = -Trace(MatMul(OneMatrix(1, n), HadamardProduct(Y, log(P)), OneMatrix(d, 1)))
    net = Network(inputs=(Y,), params=(Z,), stages=((P, definition),), loss=loss)
    bp = backprop(net)
    assert str(bp.section("Z").result) == "P ⊙ (Y𝟏₃𝟏₃ᵀ) - Y"
    rng = np.random.default_rng(4)
    z, y = rng.standard_normal((n, d)), rng.random((n, d))
    got = numeric.compile(bp.gradient("Z"), [Z, Y])(z, y)
    assert rel_err(got, fd_gradient(lambda z, y: -(y * np_logsoftmax(z)).sum(), [z, y], 0)) < 1e-6


def test_softmax_of_a_column_is_the_vectors_softmax() -> None:
    # row by row, the softmax of a k×1 column would be 1 everywhere (its Jacobian 0): a column z is
    # the vector whose softmax is taken, its Jacobian diag(p) − ppᵀ (Magnus & Neudecker)
    from derive.jacobian import jacobian
    from derive.render.printer import math_text

    k = 5
    p = parse("softmax(z)", {"z": (k, 1)})
    J = jacobian(p.expr, p.symbols["z"]).result
    assert math_text(J) == "diag(p) - ppᵀ"
    z = np.random.default_rng(7).standard_normal((k, 1))
    s = np_softmax(z.T).T
    np.testing.assert_allclose(numeric.compile([J], [p.symbols["z"]])(z)[0], np.diagflat(s) - s @ s.T,
                               rtol=1e-12, atol=1e-15)
    for text, want in (("softmax(z)", s), ("logsoftmax(z)", np_logsoftmax(z.T).T)):
        e = parse(text, {"z": (k, 1)})
        np.testing.assert_allclose(numeric.compile(e.expr, [e.symbols["z"]])(1e4 * z),
                                   np_softmax(1e4 * z.T).T if text == "softmax(z)" else np_logsoftmax(1e4 * z.T).T,
                                   rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(numeric.compile(e.expr, [e.symbols["z"]])(z), want, rtol=1e-12)
    rows = parse("softmax(Z)", {"Z": (4, k)})                       # a matrix: row by row, as before
    Z = np.random.default_rng(8).standard_normal((4, k))
    np.testing.assert_allclose(numeric.compile(rows.expr, [rows.symbols["Z"]])(Z), np_softmax(Z), rtol=1e-12)


@pytest.mark.parametrize("text", [
    "P = softmax(z); f = -sum(y .* log(P))",   # the stage P named in its own reciprocal's product
    "f = cross_entropy(z, y)",                  # one example as a column: −yᵀ log softmax(z)
    "L = logsoftmax(z); f = -sum(y .* L)",
])
def test_cross_entropy_of_one_column_meets_backprop_by_hand(text: str) -> None:
    from derive.program import program
    from derive.kernel_stages import kernel_stages
    stages, outs, args = kernel_stages(backprop(program(f"X: k×d; y: k×1; param w: d×1; z = X*w; {text}")))
    kernel = numeric.compile(outs, args, stages=stages)
    rng = np.random.default_rng(9)
    x, w, y = rng.standard_normal((5, 3)), rng.standard_normal((3, 1)), np.eye(5)[[2]].T
    for scale in (1.0, 1e4):
        z = scale * x @ w
        logp = np_logsoftmax(z.T).T
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            f, g = kernel(scale * x, y, w)
        assert float(f) == pytest.approx(float(-(y * logp).sum()), rel=1e-12)
        np.testing.assert_allclose(g, scale * x.T @ (np.exp(logp) - y), rtol=1e-10, atol=1e-9 * scale)


def test_a_stage_is_named_whatever_the_order_of_the_factors() -> None:
    from sympy import HadamardPower, HadamardProduct
    from derive.fold import _exponents, _products
    A, B, Y, S = (MatrixSymbol(s, 4, 3) for s in "ABYS")
    stage = [(S, _exponents([A, B]))]          # S = A ⊙ B: A ⊙ B ⊙ S∘⁻¹ ⊙ Y is Y
    assert _products(HadamardProduct(A, B, HadamardPower(S, -1), Y), stage) == Y
    assert _products(HadamardProduct(HadamardPower(S, -1), A, B, Y), stage) == Y
