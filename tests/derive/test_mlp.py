"""Networks of any depth: every parameter gradient of 3-layer MLPs, for each activation
and loss, against central finite differences of a forward pass written by hand in NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import derive
from derive.networks import mlp
from tests.oracle import evaluate

WIDTHS = [3, 5, 4, 2]   # d, m1, m2, k
N = 4
ACT = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
    "softplus": lambda z: np.logaddexp(0, z), "identity": lambda z: z,
}


def forward_loss(v: dict, acts: list[str], loss: str, lam: float = 0.0) -> float:
    """The loss, written by hand in NumPy."""
    A = v["X"]
    L = len(WIDTHS) - 1
    for l in range(1, L + 1):
        Z = A @ v[f"W{l}"] + v[f"b{l}"]
        A = ACT[acts[l - 1]](Z) if l < L else Z
    Y = v["Y"]
    if loss == "softmax_cross_entropy":
        logp = A - np.log(np.exp(A).sum(axis=1, keepdims=True))
        f = -np.sum(Y * logp)
    else:
        f = np.sum((Y - A) ** 2)
        if loss == "mse":
            f /= Y.size
    return f + lam * sum(np.sum(v[f"W{l}"] ** 2) for l in range(1, L + 1))


def _values(net, loss: str, rng) -> dict:
    values = {}
    for s in net.inputs + net.params:
        shape = tuple(int(x) for x in s.shape)
        values[s] = rng.standard_normal(shape)
    if loss == "softmax_cross_entropy":
        Y = rng.random((N, WIDTHS[-1]))
        values[net.Y] = Y / Y.sum(axis=1, keepdims=True)    # rows sum to 1
    return values


def _fd(values, p, acts, loss, lam, direction, eps=1e-6) -> float:
    named = {s.name: a for s, a in values.items()}
    plus, minus = dict(named), dict(named)
    plus[p.name] = named[p.name] + eps * direction
    minus[p.name] = named[p.name] - eps * direction
    return (forward_loss(plus, acts, loss, lam) - forward_loss(minus, acts, loss, lam)) / (2 * eps)


CONFIGS = [(a, "frobenius") for a in ("sigmoid", "tanh", "relu", "softplus")] + [
    ("tanh", "mse"), ("sigmoid", "softmax_cross_entropy"), ("relu", "softmax_cross_entropy"),
    (["identity", "tanh"], "frobenius"),
]


@pytest.mark.parametrize("activation,loss", CONFIGS, ids=[f"{a}-{l}" for a, l in CONFIGS])
def test_mlp_gradients_against_finite_differences(activation, loss) -> None:
    acts = ([activation] * 2 if isinstance(activation, str) else list(activation)) + ["identity"]
    lam = 0.1 if loss == "mse" else 0.0
    net = mlp(WIDTHS, activation=activation, loss=loss, n=N, weight_decay=lam if lam else None)
    rng = np.random.default_rng(3)
    values = _values(net, loss, rng)
    bp = derive.backprop(net)
    grads = bp.gradients(expanded=True)
    assert list(grads) == list(net.params)
    for p in net.params:
        g = evaluate(grads[p], values)
        assert g.shape == values[p].shape
        V = rng.standard_normal(g.shape)
        fd = _fd(values, p, acts, loss, lam, V)
        assert abs(np.sum(g * V) - fd) <= 1e-6 * max(1.0, abs(fd)), p


def test_softmax_cross_entropy_gives_softmax_minus_y() -> None:
    net = mlp([3, 2], loss="softmax_cross_entropy", n=N)
    dv = derive.derivation(net.loss, net.Z1_symbol, net.assumptions)
    assert [s.rule for s in dv.steps[-2:]] == ["rows_sum_to_one", "read_off"]
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((N, 2))
    Y = rng.random((N, 2))
    Y /= Y.sum(axis=1, keepdims=True)
    softmax = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    got = evaluate(dv.result, {net.Z1_symbol: Z, net.Y: Y})
    np.testing.assert_allclose(got, softmax - Y, rtol=1e-10)


def test_deep_sections_refer_to_upstream_gradient_symbols() -> None:
    net = mlp(["d", "m1", "m2", "m3", "m4", "k"], activation="tanh")
    bp = derive.backprop(net)
    w1 = bp.section("W1")
    assert w1.steps[0].rule == "chain"
    assert len(bp.sections) == 2 + 4 * 2 + 4 * 2 + 2  # Y, Ypred; per layer W, b; A, Z per hidden layer
    assert all(s.steps[-1].rule == "read_off" for s in bp.sections)


def test_mlp_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="activation"):
        mlp([3, 4, 2], activation="mish")
    with pytest.raises(ValueError, match="2 hidden layers need 2 activations"):
        mlp([3, 4, 4, 2], activation=["tanh"])
    with pytest.raises(ValueError, match="loss"):
        mlp([3, 2], loss="hinge")
    with pytest.raises(ValueError, match="activation must be a name"):
        mlp([3, 4, 2], activation=None)
