"""derive.elementwise: one record per function; a function defined here works everywhere, end to end.

Oracles: central finite differences of losses written by hand in NumPy, derivatives typed by hand
(mish′, gelu′, swish′ below), backprop written by hand, and SymPy's own entry-by-entry evaluation.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import pickle

import numpy as np
import pytest
import sympy
from sympy import Abs, MatrixSymbol, OneMatrix, Trace, ZeroMatrix
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

import derive
import numeric
from derive import elementwise as ew
from derive.check import check_answer
from derive.networks import ACTIVATIONS, mlp
from derive.parse import ExpressionError, format_expression, parse
from derive.render import (
    backprop_latex, backprop_markdown, backprop_text, derivation_latex, derivation_markdown, derivation_text,
    math_latex, math_text,
)
from derive.render.html import backprop_html, derivation_html
from derive.render.mathml import math_mathml
from tests.oracle import check_against_fd, evaluate

X, A = MatrixSymbol("X", 3, 4), MatrixSymbol("A", 3, 4)
SHAPES = {"X": ("n", "d"), "Y": ("n", "k"), "W1": ("d", "m"), "b1": (1, "m"), "W2": ("m", "k")}
SIZES = {"n": 4, "d": 3, "m": 5, "k": 2}


def np_sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5


def np_mish(x):
    return x * np.tanh(np.logaddexp(0, x))


def np_mish_prime(x):  # typed by hand: tanh(sp(x)) + x (1 − tanh²(sp(x))) σ(x), sp = softplus
    t = np.tanh(np.logaddexp(0, x))
    return t + x * (1 - t**2) * np_sigmoid(x)


def np_gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def np_gelu_prime(x):  # typed by hand: ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
    c = np.sqrt(2 / np.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2)


def np_swish(x):
    return x * np_sigmoid(x)


def np_swish_prime(x):  # typed by hand: σ(x) + xσ(x)(1 − σ(x))
    s = np_sigmoid(x)
    return s + x * s * (1 - s)


@pytest.fixture(scope="module")
def mish():
    """mish(x) = x·tanh(softplus(x)), defined the way a user would, and removed afterwards."""
    softplus = derive.elementwise_functions()["softplus"].scalar
    record = derive.define_elementwise("mish", lambda x: x * sympy.tanh(softplus(x)))
    yield record
    ew._forget("mish")


def _arrays(rng, names=("X", "Y", "W1", "b1", "W2")):
    return {k: rng.standard_normal(tuple(SIZES.get(d, d) for d in SHAPES[k])) for k in names}


def _loss(v, act):
    R = v["Y"] - act(v["X"] @ v["W1"] + v["b1"]) @ v["W2"]
    return float(np.sum(R * R))


def _fd(loss, v, name, V, eps=1e-6):
    plus, minus = dict(v), dict(v)
    plus[name], minus[name] = v[name] + eps * V, v[name] - eps * V
    return (loss(plus) - loss(minus)) / (2 * eps)


# ----------------------------------------------------------------------------- a user's function


def test_a_defined_function_parses_derives_and_meets_finite_differences(mish) -> None:
    p = parse("norm2(Y - mish(X*W1 + b1)*W2)^2", SHAPES)
    assert format_expression(p.expr) == "norm2(Y - mish(X*W1 + b1)*W2)^2"
    assert parse("mish(c)", {"c": ()}).expr == mish.scalar(sympy.Symbol("c"))
    rng = np.random.default_rng(0)
    v = _arrays(rng)
    Z = v["X"] @ v["W1"] + v["b1"]
    by_hand = {"W1": v["X"].T @ (-2 * (v["Y"] - np_mish(Z) @ v["W2"]) @ v["W2"].T * np_mish_prime(Z)),
               "b1": np.sum(-2 * (v["Y"] - np_mish(Z) @ v["W2"]) @ v["W2"].T * np_mish_prime(Z), axis=0,
                            keepdims=True)}
    values = {p.symbols[k]: a for k, a in v.items()}
    for name in ("W1", "b1"):
        G = derive.gradient(p.expr, p.symbols[name])
        g = evaluate(G, values, SIZES)
        np.testing.assert_allclose(g, by_hand[name], rtol=1e-9, atol=1e-12)
        V = rng.standard_normal(v[name].shape)
        fd = _fd(lambda w: _loss(w, np_mish), v, name, V)
        assert abs(fd - np.sum(g * V)) < 1e-6 * max(1.0, abs(fd))


def test_a_defined_function_renders_in_every_format_and_language(mish) -> None:
    p = parse("norm2(Y - mish(X*W1 + b1)*W2)^2", SHAPES)
    d = derive.derivation(p.expr, p.symbols["W1"])
    for text in (derivation_text(d), derivation_text(d, "zh")):
        assert "mish(" in text and "tanh(softplus(" in text and "σ(" in text
    for tex in (derivation_latex(d), derivation_latex(d, "zh"), derivation_markdown(d), derivation_markdown(d, "zh")):
        assert r"\operatorname{mish}" in tex and r"\operatorname{softplus}" in tex
    for page in (derivation_html(d), derivation_html(d, "zh")):
        assert "<mi>mish</mi>" in page and "<mi>softplus</mi>" in page
    everything = derivation_text(d) + derivation_latex(d) + derivation_html(d)
    assert not any(raw in everything for raw in ("Mish", "Softplus", "Lambda", "_x", "Dummy"))
    c = sympy.Symbol("c")  # the scalar function, outside a matrix
    assert (math_text(mish.scalar(c)), math_latex(mish.scalar(c) ** 2)) == (
        "mish(c)", r"\operatorname{mish}(c)^{2}")
    assert "<mi>mish</mi>" in math_mathml(mish.scalar(c))


def test_a_defined_function_is_an_activation_and_compiles_and_exports(mish, tmp_path) -> None:
    assert "mish" in ACTIVATIONS
    net = mlp([3, 5, 2], activation="mish", n=4)
    bp = derive.backprop(net)
    grads = bp.gradients()
    args = list(net.inputs) + list(net.params)
    exprs = [net.f] + [grads[q] for q in net.params]
    kernel = numeric.compile(exprs, args)
    path = numeric.export(exprs, args, tmp_path / "mish_kernel.py", name="mish_net")
    spec = importlib.util.spec_from_file_location("mish_kernel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(1)
    Xv, Yv = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    W1, b1, W2, b2 = (rng.standard_normal(s) for s in ((3, 5), (1, 5), (5, 2), (1, 2)))
    # forward and backward written by hand
    Z1 = Xv @ W1 + b1
    A1 = np_mish(Z1)
    R = A1 @ W2 + b2 - Yv
    dZ1 = 2 * R @ W2.T * np_mish_prime(Z1)
    expected = [np.sum(R * R), Xv.T @ dZ1, dZ1.sum(axis=0, keepdims=True), 2 * A1.T @ R,
                2 * R.sum(axis=0, keepdims=True)]
    for got in (kernel(Xv, Yv, W1, b1, W2, b2), module.mish_net(Xv, Yv, W1, b1, W2, b2)):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    assert "numpy.tanh(numpy.logaddexp(0," in path.read_text().replace("(numpy.logaddexp", "numpy.logaddexp")
    for render in (backprop_text, backprop_markdown, backprop_latex):
        assert "mish" in render(bp, "zh")
    assert "<mi>mish</mi>" in backprop_html(bp, audit=False)


def test_a_defined_function_is_checked_in_answers(mish) -> None:
    net = mlp([3, 4, 2], activation="mish")
    right = "2*X'*(((Ypred - Y)*W2') .* (tanh(softplus(Z1)) + Z1 .* (1 - tanh(softplus(Z1)).^2) .* sigmoid(Z1)))"
    assert check_answer(right, "W1", net).correct
    assert not check_answer("2*X'*(((Ypred - Y)*W2') .* mish(Z1))", "W1", net).correct


# ----------------------------------------------------------------------------- gelu and swish


@pytest.mark.parametrize("name, forward, prime", [("gelu", np_gelu, np_gelu_prime),
                                                   ("swish", np_swish, np_swish_prime)])
def test_gelu_and_swish_gradients_meet_closed_forms_and_finite_differences(name, forward, prime) -> None:
    record = derive.elementwise_functions()[name]
    rng = np.random.default_rng(2)
    vals = {X: 2 * rng.standard_normal((3, 4)), A: rng.standard_normal((3, 4))}
    f = Trace(A.T * record(X))
    G = derive.gradient(f, X)
    np.testing.assert_allclose(evaluate(G, vals), vals[A] * prime(vals[X]), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(evaluate(record(X), vals), forward(vals[X]), rtol=1e-12, atol=1e-14)
    assert check_against_fd(f, X, G, vals, rng) < 1e-6
    assert pickle.loads(pickle.dumps(G)) == G  # by name: gelu and swish are made at run time
    # in a network, through the language (the gradient computed by a kernel, the differences by hand)
    p = parse(f"norm2(Y - {name}(X*W1 + b1)*W2)^2", SHAPES)
    v = _arrays(rng)
    g = numeric.compile(derive.gradient(p.expr, p.symbols["W1"]), [p.symbols[k] for k in v])(*v.values())
    V = rng.standard_normal(v["W1"].shape)
    fd = _fd(lambda w: _loss(w, forward), v, "W1", V)
    assert abs(fd - np.sum(g * V)) < 1e-6 * max(1.0, abs(fd))


def test_gelu_and_swish_print_by_name() -> None:
    assert math_text(ew.gelu(X)) == "gelu(X)" and math_latex(ew.swish(X)) == r"\operatorname{swish}(X)"
    assert math_text(ew.swish.derivative(X)) == "X ⊙ σ(X) ⊙ (𝟏 - σ(X)) + σ(X)"
    net = mlp([3, 4, 2], activation=["gelu"])
    assert "gelu(Z1)" in backprop_text(derive.backprop(net))


# ----------------------------------------------------------------------------- the records


def test_built_in_derivatives_are_the_matrix_forms_typed_by_hand() -> None:
    one = OneMatrix(3, 4)
    expected = {"sigmoid": HadamardProduct(ew.sigmoid(X), one - ew.sigmoid(X)),
                "tanh": one - HadamardPower(ew.tanh(X), 2), "relu": ew.step(X), "step": ZeroMatrix(3, 4),
                "softplus": ew.sigmoid(X), "exp": ew.exp(X), "log": HadamardPower(X, -1)}
    for name, form in expected.items():
        assert sympy.srepr(derive.elementwise_functions()[name].derivative(X)) == sympy.srepr(form), name


def test_records_are_the_single_source() -> None:
    records = derive.elementwise_functions()
    assert {"sigmoid", "tanh", "relu", "softplus", "exp", "log", "step", "gelu", "swish"} <= set(records)
    assert set(records) | {"identity"} == set(ACTIVATIONS)
    for name, r in records.items():
        assert r.name == name and ew.function_record(r.scalar) is r
        assert r(X) == ew.canonicalize(X.applyfunc(r.scalar))
    assert (records["sigmoid"].text, records["sigmoid"].latex) == ("σ", r"\sigma")
    assert ew.function_record(sympy.sin) is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        records["relu"].latex = "r"  # type: ignore[misc]
    with pytest.raises(TypeError):
        records["relu"]["x"] = 1  # type: ignore[index]
    # the unit step is not a derivation step
    assert ew.step.scalar.__name__ == "UnitStep" and ew.step.scalar is not derive.Step


def test_defined_scalar_functions_evaluate_differentiate_and_rewrite() -> None:
    x = sympy.Symbol("x", real=True)
    assert ew.Sigmoid(0) == sympy.Rational(1, 2) and ew.UnitStep(0) == 0 and ew.Relu(-2) == 0
    assert float(ew.gelu.scalar(sympy.Float(1.5))) == pytest.approx(np_gelu(1.5), rel=1e-14)
    assert sympy.simplify(ew.gelu.scalar(x).diff(x) - sympy.diff(ew.gelu.scalar(x).rewrite("definition"), x)) == 0
    assert ew.swish.scalar(x).rewrite(ew.Sigmoid) == x * ew.Sigmoid(x)
    assert ew.Softplus(x).rewrite(sympy.exp) == sympy.log(1 + sympy.exp(x))


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="2x", fn=sympy.sin), "letters, digits and underscores"),
    (dict(name="tr", fn=sympy.sin), "function of the expression language"),
    (dict(name="identity", fn=sympy.sin), "function of the expression language"),
    (dict(name="relu", fn=sympy.sin), "already defined"),
    (dict(name="tanh2", fn=sympy.tanh), "tanh is already defined as 'tanh'"),
    (dict(name="f", fn=lambda x: 1 / 0), r"fn\(x\) failed: ZeroDivisionError"),
    (dict(name="f", fn=lambda x: "x + 1"), "must be a scalar SymPy expression of x alone"),
    (dict(name="f", fn=lambda x: x + sympy.Symbol("a")), "must be a scalar SymPy expression of x alone"),
    (dict(name="f", fn=lambda x: MatrixSymbol("M", 2, 2)), "must be a scalar SymPy expression"),
    (dict(name="f", fn=3), "fn must be callable"),
    (dict(name="f", fn=lambda x: sympy.Function("g")(x)), "cannot differentiate"),
    (dict(name="f", fn=lambda x: sympy.erf(x) + x), "give numpy="),
    (dict(name="f", fn=sympy.sin, numpy="numpy.sin(x)"), "must use {x}"),
    (dict(name="f", fn=sympy.sin, numpy="numpy.sin({x}"), "is not Python code"),
    (dict(name="f", fn=sympy.sin, numpy="os.system({x})"), "must use {x} and numpy"),
    (dict(name="f", fn=sympy.sin, numpy="numpy.sin({y})"), "is not Python code"),
    (dict(name="f", fn=sympy.sin, derivative=lambda x: [x]), r"derivative\(x\) must be a scalar"),
    (dict(name="f", fn=lambda x: x**2, class_name="Matrix"), "class name 'Matrix' is taken"),
])
def test_define_elementwise_refuses_bad_definitions_in_one_line(kwargs, message) -> None:
    before = dict(derive.elementwise_functions())
    with pytest.raises((ValueError, TypeError), match=message) as err:
        derive.define_elementwise(kwargs.pop("name"), kwargs.pop("fn"), **kwargs)
    assert "\n" not in str(err.value)
    assert dict(derive.elementwise_functions()) == before


def test_no_language_function_can_be_redefined() -> None:
    for name in derive.parse.FUNCTIONS:
        with pytest.raises(ValueError, match=r"already defined|function of the expression language"):
            derive.define_elementwise(name, lambda x: x**2)


def test_a_function_defined_later_is_seen_by_the_parser() -> None:
    with pytest.raises(ExpressionError, match="unknown function 'cube'"):
        parse("cube(X)", {"X": (2, 3)})
    cube = derive.define_elementwise("cube", lambda x: x**3)
    try:
        assert "cube" in derive.parse.FUNCTIONS and cube.numpy == "{x}**3"
        assert parse("cube(X)", {"X": (2, 3)}).expr == cube(MatrixSymbol("X", 2, 3))
        assert cube.derivative(X) == 3 * HadamardPower(X, 2)
    finally:
        ew._forget("cube")
    assert "cube" not in derive.parse.FUNCTIONS


def test_elementwise_abs_is_sign_for_real_entries() -> None:
    rng = np.random.default_rng(0)
    vals = {X: rng.standard_normal((3, 4)), A: rng.standard_normal((3, 4))}
    f = Trace(A.T * X.applyfunc(Abs))
    G = derive.gradient(f, X)
    assert not G.has(sympy.re, sympy.im, sympy.Derivative)
    np.testing.assert_allclose(evaluate(G, vals), vals[A] * np.sign(vals[X]), rtol=1e-12)
    assert check_against_fd(f, X, G, vals, rng) < 1e-6
