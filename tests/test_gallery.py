"""The gallery (docs/gallery/): every program's gradients meet central finite differences of a
forward pass written by hand in NumPy, and the committed documents are what the script writes.

The forward passes below follow the layers' definitions as PyTorch computes them (batch and layer
norm with the 1/n variance, ε = 1e-5; attention softmax(QKᵀ/√e)V; the multiclass SVM over the wrong
classes), written without tracegrad.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.oracle import fd_directional_arrays, np_attention, np_logsoftmax, np_norm, np_sigmoid

GALLERY = Path(__file__).resolve().parent.parent / "docs" / "gallery"
DIMS = {"n": 4, "d": 3, "m": 5, "k": 2, "e": 6, "v": 7, "w": 8}


def _sq(a):
    return float(np.sum(a ** 2))


def _svm(Z, Y):
    correct = (Z * Y).sum(axis=1, keepdims=True)
    margins = np.maximum(0.0, Z - correct + 1.0) * (1 - Y)
    return float(margins.sum())


FORWARD = {
    "seed": lambda X, Y, W1, b1, W2, b2: _sq(Y - (np_sigmoid(X @ W1 + b1) @ W2 + b2)),
    "softmax_regression": lambda X, Y, W, b: -float(np.sum(Y * np_logsoftmax(X @ W + b))),
    "svm": lambda X, Y, W, b: _svm(X @ W + b, Y),
    "batchnorm": lambda X, Y, W1, gamma, beta, W2:
        _sq(Y - np.maximum(0.0, np_norm(X @ W1, gamma, beta, 0)) @ W2),
    "layernorm": lambda X, Y, W1, gamma, beta, W2: _sq(Y - np.tanh(np_norm(X @ W1, gamma, beta, 1)) @ W2),
    "dropout": lambda X, Y, M, W1, b1, W2: _sq(Y - (np.maximum(0.0, X @ W1 + b1) * M / 0.5) @ W2),
    "residual": lambda X, Y, W1, b1, W2: _sq(Y - (X + np.maximum(0.0, X @ W1 + b1) @ W2)),
    "attention": lambda X, Y, Wq, Wk, Wv: _sq(Y - np_attention(X @ Wq, X @ Wk, X @ Wv)),
    "rnn": lambda X1, X2, X3, Y, Wx, Wh, Wy: _sq(
        Y - np.tanh(X3 @ Wx + np.tanh(X2 @ Wx + np.tanh(X1 @ Wx) @ Wh) @ Wh) @ Wy),
    "autoencoder": lambda X, W, b: _sq(X - np_sigmoid(X @ W + b) @ W.T),
    "word2vec": lambda y, v, U: -float(np.sum(y * np_logsoftmax(v @ U.T))),
}


def _transformer(X, Y, g1, c1, Wq, Wk, Wv, Wo, g2, c2, W1, W2):
    L1 = np_norm(X, g1, c1, 1)
    R1 = X + np_attention(L1 @ Wq, L1 @ Wk, L1 @ Wv) @ Wo
    R2 = R1 + np.maximum(0.0, np_norm(R1, g2, c2, 1) @ W1) @ W2
    return _sq(Y - R2)


FORWARD["transformer"] = _transformer
# Data that meets each program's assumptions: one-hot labels, a 0/1 mask.
ONE_HOT = {"softmax_regression": "Y", "svm": "Y", "word2vec": "y"}
MASKS = {"dropout": "M"}


def _make_gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", GALLERY / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = tuple(p.stem for p in sorted(GALLERY.glob("*.tg")))


def test_every_gallery_case_has_a_forward_pass() -> None:
    assert set(CASES) == set(FORWARD), "each gallery program needs its forward pass written here"
    assert len(CASES) >= 12


def _data(case: str, symbols, rng: np.random.Generator) -> list[np.ndarray]:
    from tests.oracle import shape_of

    arrays = []
    for s in symbols:
        shape = shape_of(s, DIMS)
        if s.name == ONE_HOT.get(case):
            a = np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
        elif s.name == MASKS.get(case):
            a = (rng.random(shape) < 0.6).astype(float)
        else:
            a = rng.standard_normal(shape)
        arrays.append(a)
    return arrays


@pytest.fixture(scope="module")
def derived() -> dict:
    return _make_gallery().derivations()


@pytest.mark.parametrize("case", CASES)
def test_gallery_gradients_meet_finite_differences(case: str, derived: dict) -> None:
    import numeric
    from derive.kernel_stages import kernel_stages

    bp = derived[case]
    net = bp.network
    stages, outputs, args = kernel_stages(bp)
    kernel = numeric.compile(outputs, args, stages=stages)
    rng = np.random.default_rng(sum(map(ord, case)))
    arrays = _data(case, args, rng)
    forward = FORWARD[case]
    names = [a.name for a in args]
    assert list(forward.__code__.co_varnames[:len(names)]) == names
    f, *grads = kernel(*arrays)
    assert abs(float(f) - forward(*arrays)) <= 1e-10 * max(1.0, abs(forward(*arrays)))
    worst = 0.0
    for p, G in zip(net.params, grads):
        i = args.index(p)
        for _ in range(2):
            V = rng.standard_normal(arrays[i].shape)
            fd = fd_directional_arrays(forward, arrays, i, V)
            an = float(np.sum(G * V))
            worst = max(worst, abs(fd - an) / max(1.0, abs(fd), abs(an)))
    assert worst < 1e-6, f"{case}: max relative error {worst:.2e}"


@pytest.mark.parametrize("name", ["README.md"] + [f"{c}.{lang}.{ext}" for c in CASES
                                                   for lang in ("en", "zh") for ext in ("md", "html")])
def test_committed_gallery_is_current(name: str, derived: dict, generated: dict) -> None:
    path = GALLERY / name
    assert path.exists(), f"docs/gallery/{name} is missing: run python docs/gallery/make_gallery.py"
    assert path.read_text(encoding="utf-8") == generated[name], \
        f"docs/gallery/{name} is stale: run python docs/gallery/make_gallery.py"


@pytest.fixture(scope="module")
def generated(derived: dict) -> dict:
    return _make_gallery().generated(derived)


@pytest.mark.parametrize("case", CASES)
def test_gallery_pdfs_are_committed(case: str) -> None:
    for lang in ("en", "zh"):
        pdf = GALLERY / f"{case}.{lang}.pdf"
        assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF"), f"docs/gallery/{pdf.name} is missing"
