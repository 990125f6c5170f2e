"""A deep network's summary: the gradients in the inputs are kept only when short (they grow with
the square of the depth), and ``Backprop.gradients()`` still gives every one, right."""
from __future__ import annotations

import numpy as np

import derive
import numeric
from derive.backprop import SUMMARY_EXPANSION_MAX_NODES
from derive.limits import size_exceeds
from derive.networks import mlp
from derive.render.document import show_expanded

WIDTHS = [3, 5, 4, 6, 2, 7, 3, 4, 5, 3, 2]   # d, m1 … m9, k: ten layers, nine tanh
N = 4


def forward_loss(v: dict) -> float:
    """The loss, written by hand in NumPy."""
    A = v["X"]
    L = len(WIDTHS) - 1
    for l in range(1, L + 1):
        Z = A @ v[f"W{l}"] + v[f"b{l}"]
        A = np.tanh(Z) if l < L else Z
    return float(np.sum((v["Y"] - A) ** 2))


def test_deep_summary_keeps_short_expansions_and_gradients_meet_finite_differences() -> None:
    net = mlp(WIDTHS, activation="tanh", n=N)
    bp = derive.backprop(net)
    kept = {p: full for p, _, full in bp.summary}
    assert kept[net.W1] is None                      # XW1 … nested ten deep: too long to keep
    assert kept[net.params[-1]] is not None          # ∂f/∂b10 = 2·𝟏ᵀ(Ypred − Y): short
    for p, full in kept.items():                     # kept exactly when short
        whole = net.expand(bp.gradient(p, expanded=False))
        assert (full is None) == (size_exceeds(whole, SUMMARY_EXPANSION_MAX_NODES) is not None), p
        assert full is None or full == whole, p
    assert not show_expanded(bp)
    rng = np.random.default_rng(6)
    values = {s: rng.standard_normal(tuple(int(x) for x in s.shape)) for s in net.inputs + net.params}
    named = {s.name: a for s, a in values.items()}
    grads = bp.gradients()
    assert list(grads) == list(net.params)
    kernel = numeric.compile(list(grads.values()), list(net.inputs + net.params))
    out = kernel(*values.values())
    for p, g in zip(net.params, out):
        V = rng.standard_normal(g.shape)
        eps = 1e-6
        plus, minus = dict(named), dict(named)
        plus[p.name] = named[p.name] + eps * V
        minus[p.name] = named[p.name] - eps * V
        fd = (forward_loss(plus) - forward_loss(minus)) / (2 * eps)
        assert abs(np.sum(g * V) - fd) <= 1e-6 * max(1.0, abs(fd)), p


def test_uses_are_the_stages_that_hold_a_symbol() -> None:
    """Network.uses (one pass over the stages, kept) against a scan of every definition."""
    from tests.derive.test_transformer_block import transformer_block

    for net in (transformer_block(), mlp(WIDTHS, activation="tanh", n=N), derive.seed_network()):
        for v in net.inputs + net.params + tuple(s for s, _ in net.stages):
            scan = [Z for Z, definition in net.stages if definition.has(v)]
            scan += [derive.networks.F] if net.loss.has(v) else []
            assert net.uses(v) == tuple(scan), v
