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


# ----- benchmarks/bench_kernels.py and bench_array_api.py -----------------------------------------
import bench_kernels as bk  # noqa: E402


def test_kernel_benchmark_numpy_rows_and_page() -> None:
    """A NumPy-only run on tiny sizes: the kernel was checked against hand_backprop in it, and the page
    has the row, the targets and the note that no GPU rows were run."""
    size = (6, 4, 5, 3)
    rows, version = bk.numpy_rows([size], ["float32"], repeat=1, retries=0, array_api=False, quick=True)
    row = rows[bk._key(size, "float32")]
    assert row["kernel"] > 0 and row["peer"] > 0 and row["runs"] == 1
    text = bk.render({"numpy": (version, rows), "torch": (None, None)}, [size], ["float32"], {"cpu": "test"},
                     bk.seed_kernel("numpy"), 1, array_api=False)
    assert "| 6, 4, 5, 3 | float32 |" in text and "NumPy ratio" in text and "PyTorch not installed" in text
    assert "No GPU was lent" in text and "_t0 = " in text


def test_hand_backprop_meets_finite_differences() -> None:
    """The benchmark's reference (its hand-written backprop) against central differences of its loss."""
    arrays = bk.make_data((5, 4, 3, 2), "float64", seed=2)
    _, *grads = bk.hand_backprop(*arrays)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for i, G in zip(range(2, 6), grads):
        V = rng.standard_normal(G.shape)
        plus, minus = list(arrays), list(arrays)
        plus[i], minus[i] = arrays[i] + eps * V, arrays[i] - eps * V
        fd = (bk.hand_backprop(*plus)[0] - bk.hand_backprop(*minus)[0]) / (2 * eps)
        assert abs(np.vdot(G, V) - fd) < 1e-6 * max(1.0, abs(fd))


@pytest.mark.parametrize("library", ["numpy", "array_api_strict"])
def test_array_api_kernel_meets_hand_backprop(library) -> None:
    pytest.importorskip("array_api_compat")
    lib = pytest.importorskip(library)
    import bench_array_api

    kernel = bk.seed_kernel(bench_array_api.ARRAY_API)
    assert ", xp = _prepare(" in kernel.source and "numpy." not in kernel.source[kernel.source.index("_t0 ="):]
    for dt in ("float64", "float32"):
        arrays = bk.make_data((6, 4, 5, 3), dt, seed=1)
        got = kernel(*[lib.asarray(a) for a in arrays])
        assert all(str(g.dtype).endswith(dt) for g in got)
        bk.check_agreement([np.asarray(g) for g in got], bk.hand_backprop(*arrays), dt)
    with pytest.raises(ValueError, match=r"argument Y: expected shape \(n, k\) = \(6, 3\) from X, got \(5, 3\)"):
        kernel(*[lib.asarray(a) for a in arrays[:1]], lib.asarray(np.ones((5, 3))),
               *[lib.asarray(a) for a in arrays[2:]])
