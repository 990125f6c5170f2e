"""numeric.register_function: an elementwise function by SymPy class name, compiled from its template."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import Lambda, MatrixSymbol, OneMatrix

import numeric
from numeric import registry
from numeric.ir import UnsupportedExpression
from numeric.registry import ADD, ATOM, MUL, POW, UNARY
from tests.oracle import d, m, n, random_arrays, rel_err

# GELU, tanh form: the template reads its argument three times
GELU = "0.5 * {x} * (1 + numpy.tanh(0.7978845608028654 * ({x} + 0.044715 * {x} ** 3)))"


def np_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


class Gelu(sympy.Function):
    pass


class Cube(sympy.Function):
    pass


@pytest.fixture
def registered():
    # derive registers its own Gelu: put back what was there, so that later tests still find it
    saved = {name: registry._FUNCTIONS.get(name) for name in ("Gelu", "Cube")}
    registry.register_function("Gelu", GELU)
    registry.register_function("Cube", "{x} ** 3", scalar=lambda x: x ** 3)
    yield
    for name, before in saved.items():
        if before is None:
            registry._FUNCTIONS.pop(name, None)
        else:
            registry._FUNCTIONS[name] = before


def _apply(fn, A):
    x = sympy.Dummy("x")
    return A.applyfunc(Lambda(x, fn(x)))


def test_a_registered_function_compiles_and_its_argument_is_computed_once(registered) -> None:
    X, W = MatrixSymbol("X", n, d), MatrixSymbol("W", d, m)
    kernel = numeric.compile(_apply(Gelu, X * W), [X, W])
    assert kernel.source.count("@") == 1 and "_t0 = X @ W" in kernel.source
    x, w = random_arrays([X, W], np.random.default_rng(0))
    assert rel_err(kernel(x, w), np_gelu(x @ w)) < 1e-14
    assert kernel(x.astype(np.float32), w.astype(np.float32)).dtype == np.float32


def test_parentheses_follow_the_template(registered) -> None:
    X = MatrixSymbol("X", n, d)
    kernel = numeric.compile([_apply(Cube, X + OneMatrix(n, d)), _apply(Cube, 2 * X)], [X])
    x = random_arrays([X], np.random.default_rng(1))[0]
    a, b = kernel(x)
    assert rel_err(a, (x + 1) ** 3) < 1e-14 and rel_err(b, (2 * x) ** 3) < 1e-14
    assert "(1.0 + X) ** 3" in kernel.source and "(2.0 * X) ** 3" in kernel.source


def test_constants_fold_with_the_scalar_function_or_the_template(registered) -> None:
    assert registry.function("Cube").value(2.0) == 8.0
    assert registry.function("Gelu").value(1.0) == pytest.approx(np_gelu(1.0), rel=1e-15)
    X = MatrixSymbol("X", 2, 2)
    kernel = numeric.compile(X * Gelu(sympy.Integer(1)), [X])
    assert "tanh" not in kernel.source and kernel(np.eye(2))[0, 0] == pytest.approx(np_gelu(1.0), rel=1e-15)


@pytest.mark.parametrize("template, precedence, contexts", [
    ("numpy.exp({x})", ATOM, (None,)),
    ("0.5 * numpy.tanh(0.5 * {x}) + 0.5", ADD, ((MUL, True),)),
    ("{x} ** 3", POW, ((POW, True),)),
    ("2 ** {x}", POW, ((POW, False),)),
    ("-{x}", UNARY, ((UNARY, False),)),
    ("{x} - 1", ADD, ((ADD, False),)),
    ("1 - {x}", ADD, ((ADD, True),)),
    ("{x}.T", ATOM, ((ATOM, False),)),
    ("numpy.heaviside({x}, 0) * {x}", MUL, (None, (MUL, True))),
])
def test_template_parsing(template, precedence, contexts) -> None:
    registry.register_function("Probe", template)
    try:
        f = registry.function("Probe")
        assert (f.precedence, f.contexts, f.reads) == (precedence, contexts, len(contexts))
    finally:
        registry._FUNCTIONS.pop("Probe")


@pytest.mark.parametrize("name, template, message", [
    ("Probe", "numpy.exp(x)", "must be a string with {x}"),
    ("Probe", "numpy.exp({x}", "is not a Python expression"),
    ("Probe", "__import__('os').getcwd() + {x}", "numpy.* calls only, not __import__"),
    ("Probe", "[{x}][0]", "numpy.* calls only, not Subscript"),
    ("Probe", "({x} > 0) * 1", "numpy.* calls only, not Compare"),
    ("Probe", "(1).__class__ + {x}", "numpy.* calls only, not __class__"),
    ("not a name", "numpy.exp({x})", "must be the __name__ of its SymPy class"),
])
def test_bad_registrations_are_refused(name, template, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        registry.register_function(name, template)
    assert registry.function("Probe") is None


def test_an_unregistered_function_is_named() -> None:
    class Unknown(sympy.Function):
        pass

    X = MatrixSymbol("X", 2, 2)
    with pytest.raises(UnsupportedExpression, match="function Unknown has no NumPy translation in numeric"):
        numeric.compile(_apply(Unknown, X), [X])


def test_check_gradient_without_a_gradient_needs_one_registered(monkeypatch) -> None:
    X = MatrixSymbol("X", 2, 2)
    monkeypatch.setattr(registry, "_GRADIENT", [])
    with pytest.raises(ValueError, match="no gradient given: pass grad="):
        numeric.check_gradient(sympy.Trace(X.T * X), X, {X: np.eye(2)})
    registry.register_gradient(lambda f, w: 2 * w)
    assert numeric.check_gradient(sympy.Trace(X.T * X), X, {X: np.eye(2) + 0.5}) < 1e-8
