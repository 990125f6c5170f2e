"""The seed network: every gradient against finite differences and against the
backprop formulas written by hand in NumPy, both bias readings, symbolic and
integer dimensions; the staged derivation agrees with the direct one."""
from __future__ import annotations

import numpy as np
import pytest
import sympy

import derive
from tests.oracle import check_against_fd, evaluate, random_values

DIMS = dict(n=4, d=3, m=5, k=2)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def hand_backprop(v: dict, bias: str) -> dict[str, np.ndarray]:
    """Backprop written by hand in NumPy, the oracle for the seed network."""
    X, Y, W1, b1, W2, b2 = (v[s] for s in ("X", "Y", "W1", "b1", "W2", "b2"))
    H = _sig(X @ W1 + b1)
    E = H @ W2 + b2 - Y
    Gh = 2 * (E @ W2.T) * H * (1 - H)
    reduce = (lambda G: G.sum(axis=0, keepdims=True)) if bias == "row" else (lambda G: G)
    return {"W1": X.T @ Gh, "b1": reduce(Gh), "W2": 2 * H.T @ E, "b2": reduce(2 * E), "Y": -2 * E, "X": Gh @ W1.T}


@pytest.fixture(params=["row", "full"])
def bias(request):
    return request.param


@pytest.mark.parametrize("symbolic", [True, False], ids=["symbolic-dims", "integer-dims"])
def test_seed_gradients_match_hand_backprop_and_fd(bias: str, symbolic: bool) -> None:
    net = derive.seed_network(bias=bias) if symbolic else derive.seed_network(**DIMS, bias=bias)
    rng = np.random.default_rng(1)
    values = random_values(net.inputs + net.params, rng)
    expected = hand_backprop({s.name: a for s, a in values.items()}, bias)
    for v in net.params + net.inputs:
        G = derive.gradient(net.f, v)
        assert G.shape == v.shape
        np.testing.assert_allclose(evaluate(G, values), expected[v.name], rtol=1e-9, atol=1e-12)
        assert check_against_fd(net.f, v, G, values, rng) < 1e-6


def test_staged_backprop_equals_direct_gradient(bias: str) -> None:
    net = derive.seed_network(bias=bias)
    bp = derive.backprop(net)
    assert [s.wrt.name for s in bp.sections] == ["Y", "Ypred", "W2", "b2", "H", "h", "W1", "b1"]
    rng = np.random.default_rng(2)
    values = random_values(net.inputs + net.params, rng)
    expected = hand_backprop({s.name: a for s, a in values.items()}, bias)
    for p, staged, expanded in bp.summary:
        assert staged.has(net.Ypred_symbol) or staged.has(net.H_symbol) or staged.has(net.h_symbol)
        np.testing.assert_allclose(evaluate(expanded, values), expected[p.name], rtol=1e-9, atol=1e-12)
        # the staged result, with the intermediates evaluated from the forward pass
        np.testing.assert_allclose(evaluate(net.expand(staged), values), expected[p.name], rtol=1e-9)


def test_staged_sections_keep_intermediates_as_symbols() -> None:
    net = derive.seed_network()
    bp = derive.backprop(net)
    w1 = bp.section("W1")
    assert w1.upstream[0] == net.h_symbol
    assert w1.steps[0].rule == "chain" and w1.steps[-1].rule == "read_off"
    # no step expands an intermediate into the inputs (as the summary does: bp.gradients() holds σ(XW1 + 1b1))
    assert not any(s.rhs.has(net.H) or s.rhs.has(net.Ypred) for s in w1.steps)
    assert bp.gradients()[net.W1].has(net.H)
    assert w1.result.has(net.h_symbol) and w1.result.has(net.Ypred_symbol)
    h = bp.section("h")
    assert "trace_hadamard" in [s.rule for s in h.steps]


def test_seed_results_in_the_forms_people_write() -> None:
    net = derive.seed_network()
    bp = derive.backprop(net)
    Y, P, H, X, W2 = net.Y, net.Ypred_symbol, net.H_symbol, net.X, net.W2
    diff = P - Y
    assert bp.section("Ypred").result == sympy.MatMul(2, diff)
    assert bp.section("W2").result == sympy.MatMul(2, H.T, diff)
    assert bp.section("H").result == sympy.MatMul(2, diff, W2.T)
    w1 = bp.section("W1").result
    c, core = derive.simplify.split_coeff(w1)
    assert c == 2 and core.args[0] == X.T
    had = core.args[1]
    assert (isinstance(had, sympy.HadamardProduct) and had.args[0] == diff * W2.T) or diff * W2.T in had.args
    b1 = bp.section("b1").result
    assert sympy.OneMatrix(1, net.X.shape[0]) in derive.simplify.split_coeff(b1)[1].args


def test_derivation_steps_are_data() -> None:
    net = derive.seed_network()
    dv = derive.derivation(net.f, net.W2)
    assert dv.result == derive.gradient(net.f, net.W2)
    assert dv.steps[0].rule == "definition"
    assert dv.steps[-1].lhs == derive.Gradient(derive.steps.F, net.W2)
    for step in dv.steps:
        assert step.rule in derive.RULES
        assert isinstance(step.rhs, sympy.Basic)
