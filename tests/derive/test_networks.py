"""derive.networks: the seed network and mlp against forward passes written by hand in NumPy and
central differences, and the validation of hand-built networks (one clear error naming the stage)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import MatMul, MatrixSymbol, OneMatrix

import derive
from derive.networks import Network, frobenius_sq, mlp, seed_network, softmax_cross_entropy
from tests.oracle import evaluate, fd_gradient, random_values, rel_err, seed_backprop, seed_loss

DIMS = dict(n=4, d=3, m=5, k=2)


@pytest.mark.parametrize("bias", ["row", "full"])
def test_seed_loss_is_the_hand_written_forward_pass(bias) -> None:
    net = seed_network(**DIMS, bias=bias)
    values = random_values(net.inputs + net.params, np.random.default_rng(3))
    v = {s.name: a for s, a in values.items()}
    want = seed_loss(v["X"], v["Y"], v["W1"], v["b1"], v["W2"], v["b2"])
    assert float(evaluate(net.f, values)) == pytest.approx(want, rel=1e-12)


def test_seed_gradients_against_central_differences() -> None:
    net = seed_network(**DIMS)
    values = random_values(net.inputs + net.params, np.random.default_rng(4))
    arrays = [values[s] for s in net.inputs + net.params]       # X, Y, W1, b1, W2, b2
    hand = seed_backprop(*arrays)
    for i, p in enumerate(net.params, start=2):
        G = evaluate(derive.gradient(net.f, p), values)
        assert rel_err(G, fd_gradient(seed_loss, arrays, i)) < 1e-6, p.name
        assert rel_err(G, hand[i - 1]) < 1e-10, p.name


def test_softmax_cross_entropy_is_the_numpy_formula() -> None:
    Y, Z = MatrixSymbol("Y", 4, 3), MatrixSymbol("Z", 4, 3)
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 3))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    got = float(evaluate(softmax_cross_entropy(Y, Z), {Y: y, Z: z}))
    assert got == pytest.approx(-float(np.sum(y * np.log(p))), rel=1e-12)


def test_mlp_depth_widths_and_names() -> None:
    net = mlp([3, 5, 6, 2], activation=["tanh", "relu"], n=4)
    assert [p.name for p in net.params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert [tuple(p.shape) for p in net.params] == [(3, 5), (1, 5), (5, 6), (1, 6), (6, 2), (1, 2)]
    assert [s.name for s, _ in net.stages] == ["Z1", "A1", "Z2", "A2", "Ypred"]


def test_mlp_gradient_of_a_middle_layer_against_central_differences() -> None:
    net = mlp([3, 5, 2], activation="tanh", n=4)
    values = random_values(net.inputs + net.params, np.random.default_rng(6))
    order = list(net.inputs + net.params)                          # X, Y, W1, b1, W2, b2

    def loss(X, Y, W1, b1, W2, b2):
        return float(np.sum((Y - (np.tanh(X @ W1 + b1) @ W2 + b2)) ** 2))

    arrays = [values[s] for s in order]
    for i, p in enumerate(order):
        if p in net.params:
            G = evaluate(derive.gradient(net.f, p), values)
            assert rel_err(G, fd_gradient(loss, arrays, i)) < 1e-6, p.name


# --- validation ------------------------------------------------------------------------------------

X, W, V = MatrixSymbol("X", 4, 3), MatrixSymbol("W", 3, 2), MatrixSymbol("V", 2, 2)
H, Z = MatrixSymbol("H", 4, 2), MatrixSymbol("Z", 4, 2)


@pytest.mark.parametrize("inputs, params, stages, loss, message", [
    ((X,), (W, W), ((H, MatMul(X, W)),), None, "W is declared twice"),
    ((X,), (W,), ((X, X),), None, "redefines the input X"),
    ((X,), (W,), ((H, MatMul(X, W)), (H, MatMul(X, W))), None, "already defined by stage 1"),
    ((X,), (W,), ((H, X),), None, "H is 4×2 but its definition X is 4×3"),
    ((X,), (W, V), ((H, MatMul(X, W)),), None, "parameter V is used by no stage"),
    ((X,), (W,), ((H, MatMul(X, W)), (Z, H)), "H", "stage Z is used by no later stage"),
    ((X,), (W,), ((H, MatMul(MatrixSymbol("Q", 4, 3), W)),), None, "uses Q, which is not an input"),
    ((X,), (W,), ((H, MatMul(X, MatrixSymbol("W", 3, 3), OneMatrix(3, 2))),), None, "uses W as 3×3, but W is 3×2"),
    ((X,), (W,), ((H, Z), (Z, H + MatMul(X, W))), None, "the stages form a cycle"),
])
def test_a_malformed_network_is_one_error_naming_the_place(inputs, params, stages, loss, message) -> None:
    f = frobenius_sq(stages[-1][0] if loss is None else {"H": H}[loss])
    with pytest.raises(ValueError, match=message):
        Network(inputs, params, stages, f)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="tuple of MatrixSymbols"):
        Network([X], (W,), ((H, MatMul(X, W)),), frobenius_sq(H))
    with pytest.raises(ValueError, match="dimension n must be a positive integer"):
        seed_network(n=0)
    with pytest.raises(ValueError, match="unknown activation 'gelu2'"):
        mlp([3, 4, 2], activation="gelu2")
    with pytest.raises(ValueError, match="2 hidden layers need 2 activations"):
        mlp([3, 4, 4, 2], activation=["tanh"])
    assert seed_network(n=sympy.Symbol("n", integer=True, positive=True)).X.shape[0].name == "n"
