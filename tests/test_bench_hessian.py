"""benchmarks/bench_hessian.py: its --quick run, and its compiled Hessians and HVPs against central finite
differences of f written by hand in NumPy (the hand-written references of the benchmark against them too).

Shapes all different (n=6, d=5, m=4, k=3 for the seed network; n=7, d=4 for logistic regression).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_hessian as bh

SIZES = {"xᵀAx": {"n": 5}, "logistic regression": {"n": 7, "d": 4}, "softmax cross-entropy": {"k": 6},
         "seed network (in W1)": {"n": 6, "d": 5, "m": 4, "k": 3}}


def _softplus(a):
    return np.logaddexp(0.0, a)


def f_numpy(case, D) -> float:
    """f written by hand in NumPy (forward only)."""
    if case.name == "xᵀAx":
        return (D["x"].T @ D["A"] @ D["x"]).item()
    if case.name.startswith("logistic"):
        return _softplus(D["X"] @ D["w"]).sum() - (D["y"].T @ D["X"] @ D["w"]).item()
    if case.name.startswith("softmax"):
        z = D["z"]
        return np.log(np.exp(z - z.max()).sum()) + z.max() - (D["y"].T @ z).item()
    P = bh._sigmoid(D["X"] @ D["W1"] + D["b1"]) @ D["W2"] + D["b2"]
    return float(((D["Y"] - P) ** 2).sum())


def _fd_second(case, D, U, V, eps=1e-4) -> float:
    """Uᵀ∇²f V by central differences of f twice (a mixed second difference)."""
    x = bh._var(case)

    def f(a, b):
        E = dict(D)
        E[x] = D[x] + a * U + b * V
        return f_numpy(case, E)
    return (f(eps, eps) - f(eps, -eps) - f(-eps, eps) + f(-eps, -eps)) / (4 * eps * eps)


@pytest.mark.parametrize("row", bh.ROWS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_kernel_meets_second_differences(row) -> None:
    case, kind = bh.case_named(row[0]), row[1]
    D = bh.make_data(case, SIZES[case.name], seed=5)
    got = bh.tracegrad_step(case, kind)(D)
    ref = bh.hand(case, kind)(D)
    x = D[bh._var(case)]
    rng = np.random.default_rng(1)
    for _ in range(3):
        U = rng.standard_normal(x.shape)
        if kind == "hessian":
            V = rng.standard_normal(x.shape)
            want = _fd_second(case, D, U, V)
            for H in (got, ref):
                assert H.shape == (x.size, x.size)
                assert abs(float(U.ravel() @ H @ V.ravel()) - want) < 1e-5 * max(1.0, abs(want))
        else:
            want = _fd_second(case, D, U, D["V"])
            for hv in (got, ref):
                assert hv.shape == x.shape
                assert abs(float(np.vdot(U, hv)) - want) < 1e-5 * max(1.0, abs(want))
    if kind == "hessian":
        assert np.allclose(got, got.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("row", bh.ROWS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_kernels_form_no_diagonal_no_kronecker_and_hvps_no_hessian(row) -> None:
    case, kind = bh.case_named(row[0]), row[1]
    kernel, _ = bh.kernel_for(case, kind)
    body = kernel.source[kernel.source.rindex("_prepare(arrays"):]   # the kernel's body, after its docstring
    for built in ("diagflat", "numpy.diag(", "eye", "kron", "outer", "ones", "broadcast_to"):
        assert built not in body, built
    if kind == "hvp":   # the largest array an HVP kernel makes has the variable's shape or the data's
        D = bh.make_data(case, SIZES[case.name], seed=2)
        assert bh.tracegrad_step(case, kind)(D).shape == D[bh._var(case)].shape


def test_softmax_hessian_is_stable_at_huge_logits() -> None:
    case = bh.case_named("softmax cross-entropy")
    D = bh.make_data(case, {"k": 6}, seed=3)
    D["z"] = D["z"] * 1000.0   # exp overflows float64 unless the maximum is subtracted first
    got = bh.tracegrad_step(case, "hessian")(D)   # RuntimeWarning is an error
    assert np.all(np.isfinite(got))
    assert np.allclose(got, bh.hand(case, "hessian")(D), atol=1e-12)


def test_quick_run_prints_the_table(capsys) -> None:
    rows, libs = bh.run(quick=True, repeat=1, peers=False)
    assert [(r["case"], r["kind"]) for r in rows] == list(bh.ROWS)
    text = bh.document(rows, libs, 1)
    assert "| xᵀAx | n=40 | Hessian |" in text and "NumPy / tracegrad" in text
    assert "PyTorch not installed" in text and "JAX not installed" in text
    assert "note: JAX is not installed" in capsys.readouterr().out


def test_peers_are_skipped_or_agree_with_the_kernel() -> None:
    """Where JAX or PyTorch is installed, their second derivatives of the same f agree with the
    hand-written reference (the benchmark compares like with like)."""
    for lib, module in (("JAX", "jax"), ("PyTorch", "torch")):
        if bh.installed(module) is None:
            continue
        for name, kind in bh.ROWS:
            case = bh.case_named(name)
            D = bh.make_data(case, SIZES[name], seed=4)
            want = bh.hand(case, kind)(D)
            got = bh.peer_result(lib, case, kind, D)
            assert np.allclose(got, want, rtol=1e-9, atol=1e-9), (lib, name, kind)


def test_goals_say_met_or_not_met_from_the_ratio() -> None:
    rows = [{"case": "xᵀAx", "kind": "hessian", "tracegrad": 0.01, "JAX": 0.05, "PyTorch": float("nan")},
            {"case": "seed network (in W1)", "kind": "hvp", "tracegrad": 0.013, "JAX": 0.01, "PyTorch": 0.03}]
    assert bh.goals(rows) == [
        "- xᵀAx Hessian: 5.00× jax.jit(jax.hessian) (goal ≥ 10.00×: NOT met)",
        "- seed network (in W1) HVP: 0.77× the better of JAX and PyTorch (goal ≥ 0.83×: NOT met)"]
    rows[0]["JAX"] = 0.2
    assert bh.goals(rows)[0].endswith("(goal ≥ 10.00×: met)")
