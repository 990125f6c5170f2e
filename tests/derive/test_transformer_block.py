"""A transformer block (layer norm, single-head self-attention, a tanh MLP, two residuals) as a
staged :class:`derive.Network` of raw matrix algebra: every parameter gradient that
:func:`derive.backprop` gives meets the central finite differences of a forward pass written
by hand in NumPy, on small shapes that all differ.  ``benchmarks/bench_derive.py`` times it.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import HadamardProduct, MatMul, MatrixSymbol, OneMatrix, Transpose
from sympy.matrices.expressions.hadamard import HadamardPower

import numeric
from derive import Network, backprop
from derive.elementwise import tanh
from derive.networks import frobenius_sq, softmax_rows

SIZES = {"n": 4, "d": 6, "a": 3, "m": 5}
EPS = sympy.Rational(1, 100)


def transformer_block(n="n", d="d", a="a", m="m") -> Network:
    """R₂ = R₁ + tanh(R₁W₁)W₂, R₁ = X + softmax(QKᵀ/√a)VW_o, Q, K, V = LN(X)W_q, W_k, W_v;
    LN(X) = X̂ ⊙ 𝟏γ + 𝟏β per row; f = ‖R₂ − Y‖²_F.  X, Y: n×d; W_q, W_k, W_v: d×a; W_o: a×d;
    W₁: d×m; W₂: m×d; γ, β: 1×d."""
    n, d, a, m = (sympy.Symbol(s, integer=True, positive=True) if isinstance(s, str) else sympy.Integer(s)
                  for s in (n, d, a, m))
    S = MatrixSymbol
    X, Y = S("X", n, d), S("Y", n, d)
    Wq, Wk, Wv, Wo = S("Wq", d, a), S("Wk", d, a), S("Wv", d, a), S("Wo", a, d)
    W1, W2, gamma, beta = S("W1", d, m), S("W2", m, d), S("gamma", 1, d), S("beta", 1, d)
    mu, Xc, var, Xhat, L = S("mu", n, 1), S("Xc", n, d), S("v", n, 1), S("Xhat", n, d), S("L", n, d)
    Q, K, V, Sc, P = S("Q", n, a), S("K", n, a), S("V", n, a), S("Sc", n, n), S("P", n, n)
    A, O, R1, H, Ha, M, R2 = (S("A", n, a), S("O", n, d), S("R1", n, d), S("H", n, m), S("Ha", n, m),
                              S("M", n, d), S("R2", n, d))
    ones_n, ones_d = OneMatrix(n, 1), OneMatrix(d, 1)
    stages = (
        (mu, MatMul(X, ones_d) / d),
        (Xc, X - MatMul(mu, Transpose(ones_d))),
        (var, MatMul(HadamardPower(Xc, 2), ones_d) / d),
        (Xhat, HadamardProduct(Xc, MatMul(HadamardPower(var + EPS * ones_n, -sympy.Rational(1, 2)),
                                          Transpose(ones_d)))),
        (L, HadamardProduct(Xhat, MatMul(ones_n, gamma)) + MatMul(ones_n, beta)),
        (Q, MatMul(L, Wq)),
        (K, MatMul(L, Wk)),
        (V, MatMul(L, Wv)),
        (Sc, MatMul(Q, Transpose(K)) / sympy.sqrt(a)),
        (P, softmax_rows(Sc)),
        (A, MatMul(P, V)),
        (O, MatMul(A, Wo)),
        (R1, X + O),
        (H, MatMul(R1, W1)),
        (Ha, tanh(H)),
        (M, MatMul(Ha, W2)),
        (R2, R1 + M),
    )
    return Network(inputs=(X, Y), params=(Wq, Wk, Wv, Wo, W1, W2, gamma, beta), stages=stages,
                   loss=frobenius_sq(R2 - Y), name="transformer")


def forward(v: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and the intermediates, written by hand in NumPy."""
    X, a = v["X"], v["Wq"].shape[1]
    mu = X.mean(axis=1, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=1, keepdims=True)
    Xhat = (X - mu) / np.sqrt(var + float(EPS))
    L = Xhat * v["gamma"] + v["beta"]
    Q, K, V = L @ v["Wq"], L @ v["Wk"], L @ v["Wv"]
    Sc = Q @ K.T / np.sqrt(a)
    E = np.exp(Sc - Sc.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    R1 = X + P @ V @ v["Wo"]
    Ha = np.tanh(R1 @ v["W1"])
    R2 = R1 + Ha @ v["W2"]
    stages = dict(mu=mu, Xc=X - mu, v=var, Xhat=Xhat, L=L, Q=Q, K=K, V=V, Sc=Sc, P=P, A=P @ V,
                  O=P @ V @ v["Wo"], R1=R1, H=R1 @ v["W1"], Ha=Ha, M=Ha @ v["W2"], R2=R2)
    return float(np.sum((R2 - v["Y"]) ** 2)), stages


@pytest.fixture(scope="module")
def derived():
    net = transformer_block(**SIZES)
    rng = np.random.default_rng(10)
    values = {s.name: rng.standard_normal(tuple(int(x) for x in s.shape)) for s in net.inputs + net.params}
    return net, backprop(net), values


def _fd(values: dict, name: str, direction: np.ndarray, eps: float = 1e-6) -> float:
    plus, minus = dict(values), dict(values)
    plus[name] = values[name] + eps * direction
    minus[name] = values[name] - eps * direction
    return (forward(plus)[0] - forward(minus)[0]) / (2 * eps)


def test_forward_pass_is_the_network(derived) -> None:
    """The hand-written forward pass computes the network's stages (so its differences test them)."""
    net, _, values = derived
    _, stages = forward(values)
    args = list(net.inputs + net.params) + [s for s, _ in net.stages]
    named = {**values, **stages}
    out = numeric.compile([definition for _, definition in net.stages], args)(*[named[s.name] for s in args])
    for (Z, _), value in zip(net.stages, out):
        np.testing.assert_allclose(value, stages[Z.name], rtol=1e-12, atol=1e-12, err_msg=Z.name)


@pytest.mark.parametrize("expanded", [False, True], ids=["staged", "expanded"])
def test_transformer_block_gradients_against_finite_differences(derived, expanded) -> None:
    """Each ∂f/∂p, with the intermediates (evaluated at the hand-written forward pass's values) and
    expanded in the inputs, meets central differences of the hand-written loss."""
    net, bp, values = derived
    _, stages = forward(values)
    grads = [bp.gradient(p, expanded=expanded) for p in net.params]
    args = list(net.inputs + net.params) + ([] if expanded else [s for s, _ in net.stages])
    named = {**values, **stages}
    out = numeric.compile(grads, args)(*[named[s.name] for s in args])
    rng = np.random.default_rng(11)
    for p, g in zip(net.params, out):
        assert g.shape == values[p.name].shape, p
        V = rng.standard_normal(g.shape)
        fd = _fd(values, p.name, V)
        assert abs(np.sum(g * V) - fd) <= 1e-6 * max(1.0, abs(fd)), p
