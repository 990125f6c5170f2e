"""benchmarks/bench_layers.py: its --quick run, and its layer kernels against finite differences.

Oracles: each layer's loss written by hand in NumPy (forward only) differentiated by central
differences along random directions; the kernels' sources for what they must not build.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_layers as bl

FD_SIZES = {"batch norm": {"n": 5, "d": 4}, "layer norm": {"n": 5, "d": 4},
            "self-attention": {"n": 6, "d": 4}, "transformer block": {"n": 5, "d": 4, "f": 7}}


@pytest.mark.parametrize("layer", bl.LAYERS, ids=lambda layer: layer.name)
def test_layer_kernel_meets_finite_differences(layer) -> None:
    sizes = FD_SIZES[layer.name]
    data = bl.make_data(layer, sizes, "float64", seed=3)
    outputs = bl.tracegrad_step(layer, sizes)(data)
    hand = bl.numpy_step(layer)

    def f(values):
        return float(hand(values)[0])

    assert abs(float(outputs[0]) - f(data)) < 1e-10 * max(1.0, abs(f(data)))
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name, G in zip(bl._wrt(layer), outputs[1:]):
        assert G.shape == data[name].shape
        for _ in range(2):
            V = rng.standard_normal(G.shape)
            plus, minus = dict(data), dict(data)
            plus[name], minus[name] = data[name] + eps * V, data[name] - eps * V
            fd = (f(plus) - f(minus)) / (2 * eps)
            assert abs(np.vdot(G, V) - fd) < 1e-6 * max(1.0, abs(fd)), name


@pytest.mark.parametrize("layer", bl.LAYERS, ids=lambda layer: layer.name)
def test_layer_kernels_build_no_ones_matrix_and_no_diagonal(layer) -> None:
    kernel, _ = bl.kernel_for(layer, FD_SIZES[layer.name])
    body = kernel.source[kernel.source.index("_prepare(arrays"):]
    for built in ("ones", "full(", "eye", "diag", "broadcast_to", "outer", "tile", "repeat"):
        assert built not in body, built


def test_attention_kernel_is_stable_at_huge_logits_and_keeps_float32() -> None:
    layer = next(layer for layer in bl.LAYERS if layer.name == "self-attention")
    sizes = FD_SIZES[layer.name]
    kernel, names = bl.kernel_for(layer, sizes)
    data = bl.make_data(layer, sizes, "float32", seed=1)
    data["X"] = data["X"] * np.float32(300.0)  # logits of order ±1e4
    out = kernel(*[data[k][0] if k in ("X", "R") else data[k] for k in names])  # RuntimeWarning is an error
    assert all(np.asarray(o).dtype == np.float32 and np.all(np.isfinite(o)) for o in out)
    want = bl.hand_attention(*[data[k][0].astype(np.float64) if k in ("X", "R") else data[k].astype(np.float64)
                               for k in names])
    for got, expected in zip(out, want):
        assert np.max(np.abs(got - expected)) <= 1e-3 * max(1.0, float(np.max(np.abs(expected))))


def test_quick_run_prints_the_table(capsys) -> None:
    rows, peers = bl.run(quick=True, repeat=1, peers=False)
    assert [(r["layer"], r["dtype"]) for r in rows] == [(layer.name, dt) for layer in bl.LAYERS
                                                      for dt in ("float32", "float64")]
    text = bl.document(rows, peers, 1)
    assert "| batch norm | n=64, d=32 | float32 |" in text and "tracegrad/NumPy" in text
    assert "PyTorch not installed" in text
    assert "note: PyTorch is not installed" in capsys.readouterr().out
