"""Batch and layer norm reach the compact form (derive.broadcast): the Z section ends in
(1/n)(𝟏(γ ⊙ σ^∘−1)) ⊙ (nG − 𝟏𝟏ᵀG − X̂ ⊙ 𝟏𝟏ᵀ(G ⊙ X̂)) (layer norm: its row-wise analogue with Ĝ = G ⊙ 𝟏γ),
named with the stages, and that form, evaluated at X̂ and σ computed by hand in NumPy, meets central finite
differences of a batch norm (layer norm) forward pass written by hand."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import MatMul, MatrixSymbol, OneMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct

import numeric
from derive import backprop
from derive.broadcast import (
    BROADCAST_SUM, COLS_SUM_TO_ZERO, FACTOR_BROADCAST, ROWS_SUM_TO_ZERO, normalise, stage_hats, zero_facts,
)
from derive.fold import NAME_STAGE
from derive.layers import layer
from derive.notation import in_notation
from derive.program import program
from tests.derive.test_layers import _network
from tests.oracle import fd_gradient, rel_err

n, d = 4, 3

COMPACT = {
    "batchnorm": "(1/4)[(𝟏₄[gamma ⊙ Y_sigma∘⁻¹]) ⊙ (4C - 𝟏₄𝟏₄ᵀC - [Y_hat ⊙ (𝟏₄𝟏₄ᵀ[C ⊙ Y_hat])])]",
    "layernorm": "(1/3)[(Y_sigma∘⁻¹𝟏₃ᵀ) ⊙ (3[C ⊙ (𝟏₄ gamma)] - [C ⊙ (𝟏₄ gamma)]𝟏₃𝟏₃ᵀ"
                 " - [Y_hat ⊙ ([C ⊙ Y_hat ⊙ (𝟏₄ gamma)]𝟏₃𝟏₃ᵀ)])]",
}


def _by_hand(Z, g, b, axis, eps=1e-5):
    """σ, X̂ and the output of batch norm (axis 0) or layer norm (axis 1), written out."""
    mu = Z.mean(axis=axis, keepdims=True)
    sigma = np.sqrt(((Z - mu) ** 2).mean(axis=axis, keepdims=True) + eps)
    hat = (Z - mu) / sigma
    return sigma, hat, hat * g + b


@pytest.mark.parametrize("name, axis, fact", [("batchnorm", 0, COLS_SUM_TO_ZERO), ("layernorm", 1, ROWS_SUM_TO_ZERO)])
def test_the_z_section_ends_in_the_compact_form(name: str, axis: int, fact) -> None:
    net, _ = _network(name, out="Y")
    section = backprop(net).section("Z")
    rules = [s.rule for s in section.steps]
    assert rules == ["sum_over_uses", "substitute", BROADCAST_SUM.key, fact.key, NAME_STAGE.key, FACTOR_BROADCAST.key]
    assert str(section.result) == COMPACT[name]
    assert str(section.steps[0].rhs) == ("∂f/∂Y_C - (1/4)𝟏₄𝟏₄ᵀ(∂f/∂Y_C)" if axis == 0
                                         else "∂f/∂Y_C - (1/3)(∂f/∂Y_C)𝟏₃𝟏₃ᵀ")
    # the compact form, at X̂ and σ by hand, against central differences of the forward pass by hand
    rng = np.random.default_rng(10 + axis)
    Z, g, b, C = (rng.standard_normal(s) for s in [(n, d), (1, d), (1, d), (n, d)])
    sigma, hat, _ = _by_hand(Z, g, b, axis)
    symbols = [MatrixSymbol("C", n, d), MatrixSymbol("gamma", 1, d), MatrixSymbol("Y_hat", n, d),
               MatrixSymbol("Y_sigma", *sigma.shape)]
    assert section.result.free_symbols <= set(symbols)
    got = numeric.compile(section.result, symbols)(C, g, hat, sigma)
    fd = fd_gradient(lambda Z: float(np.sum(C * _by_hand(Z, g, b, axis)[2])), [Z], 0)
    assert rel_err(got, fd) < 1e-6
    # and every step after the sum is the same matrix (each rewrite an identity of these stages)
    values = {"C": C, "gamma": g, "Y_hat": hat, "Y_sigma": sigma, "Y_C": hat * sigma}
    for step in section.steps[2:]:
        args = [MatrixSymbol(s, *values[s].shape) for s in sorted(values)]
        assert rel_err(numeric.compile(step.rhs, args)(*[values[s] for s in sorted(values)]), fd) < 1e-6, step.rule


def _tanh_after(B, V):
    return np.tanh(B)


def _residual(B, V):
    return np.tanh(B @ V) + B


@pytest.mark.parametrize("call, axis, after, then", [
    ("batchnorm(h, g, b)", 0, "tanh(B)", _tanh_after),
    ("layernorm(h, g, b, 1/100)", 1, "tanh(B)", _tanh_after),
    ("layernorm(h, g, b)", 1, "tanh(B*V) + B", _residual),   # B used twice: ∂f/∂B is a sum, G stays G
    ("batchnorm(h, g, b, 1/100)", 0, "tanh(B*V) + B", _residual),
])
def test_a_program_with_a_layer_after_a_product_meets_finite_differences(call: str, axis: int, after: str,
                                                                          then) -> None:
    """Held out: other names, a stage as the layer's input, more after it, n=4, d=3, m=5."""
    net = program(f"X: 4×3; C: 4×5\nparam W: 3×5; param g: 1×5; param b: 1×5; param V: 5×5\nh = X*W\n"
                  f"B = {call}\nH = {after}\nf = sum(C .* H) + sum(V .* V)")
    bp = backprop(net)
    h = bp.section("h")
    assert h.steps[-1].rule == FACTOR_BROADCAST.key
    text = str(h.result)
    assert "B_hat ⊙ (" in text and "B_sigma∘⁻¹" in text and "B_C" not in text and "∂f/∂" not in text
    assert text.startswith("(1/4)[(𝟏₄[g ⊙ B_sigma∘⁻¹]) ⊙ (4" if axis == 0 else "(1/5)[(B_sigma∘⁻¹𝟏₅ᵀ) ⊙ (5")
    rng = np.random.default_rng(3)
    X, C, W, g, b, V = (rng.standard_normal(s) for s in [(4, 3), (4, 5), (3, 5), (1, 5), (1, 5), (5, 5)])
    eps = float(sympy.Rational(call.split(", ")[-1].rstrip(")"))) if call.count(",") == 3 else 1e-5

    def loss(W):
        return float(np.sum(C * then(_by_hand(X @ W, g, b, axis, eps)[2], V)) + np.sum(V * V))

    args = [MatrixSymbol(s, *a.shape) for s, a in (("X", X), ("C", C), ("W", W), ("g", g), ("b", b), ("V", V))]
    got = numeric.compile(bp.gradient("W"), args)(X, C, W, g, b, V)
    assert rel_err(got, fd_gradient(loss, [W], 0)) < 1e-6


def test_the_layers_carry_the_facts() -> None:
    Z, g = MatrixSymbol("Z", n, d), MatrixSymbol("g", 1, d)
    bn = layer("batchnorm").expand("Y", Z, g, g)
    assert {(axis, S.name): rule for (axis, S), rule in zero_facts(bn.assumptions).items()} == {
        (0, "Y_C"): COLS_SUM_TO_ZERO.key, (0, "Y_hat"): COLS_SUM_TO_ZERO.key}
    ln = layer("layernorm").expand("Y", Z, g, g)
    assert {(axis, S.name) for axis, S in zero_facts(ln.assumptions)} == {(1, "Y_C"), (1, "Y_hat")}
    (hat, centred, want), = stage_hats(bn.stages)
    assert (hat.name, centred.name, [(w, b.name, p) for (w, b), p in want.items()]) == \
        ("Y_hat", "Y_C", [(0, "Y_sigma", -1)])


def test_normalise_is_an_identity_and_leaves_other_expressions_alone() -> None:
    A, B = MatrixSymbol("A", n, d), MatrixSymbol("B", n, d)
    v, u = MatrixSymbol("v", 1, d), MatrixSymbol("u", n, 1)
    assert normalise(A) == A and normalise(MatMul(A, B.T)) == MatMul(A, B.T)
    e = MatMul(OneMatrix(n, 1), OneMatrix(1, n), HadamardProduct(A + B, MatMul(OneMatrix(n, 1), v),
                                                                  MatMul(u, OneMatrix(1, d))))
    out = normalise(e)
    rng = np.random.default_rng(0)
    vals = [rng.standard_normal(s.shape) for s in (A, B, v, u)]
    k = numeric.compile([e, out], [A, B, v, u])
    before, after = k(*vals)
    assert rel_err(after, before) < 1e-12
    # v comes out of the column sum, u stays inside it
    assert str(in_notation(out)) == "𝟏₄[v ⊙ (𝟏₄ᵀ[(A + B) ⊙ (u𝟏₃ᵀ)])]"
    assert normalise(MatMul(OneMatrix(1, n), A), zeros=[(0, A)]) == sympy.ZeroMatrix(1, d)
    assert normalise(MatMul(A, OneMatrix(d, 1)), zeros=[(0, A)]) == MatMul(A, OneMatrix(d, 1))
