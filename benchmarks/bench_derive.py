"""Derivation cost against depth.

For L = 1, 2, 4, 8, 16, 32 hidden layers (tanh, row biases, Frobenius loss): the
time of the full staged derivation (every section, all parameter gradients) and of
rendering it as a LaTeX document, and the ratio to L = 1 (target: ≤ 1.5·L, and
L = 32 under 30 s).  SymPy's own ``MatrixExpr.diff`` is timed on the same loss for
∂f/∂W₁, with what it returns (an error, or a result we check numerically).

    python benchmarks/bench_derive.py [--max-depth 32] [--repeat 3]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import derive
from derive.networks import mlp


def network(L: int):
    return mlp(["d"] + [f"m{i}" for i in range(1, L + 1)] + ["k"], activation="tanh")


def time_derivation(L: int, repeat: int) -> tuple[float, float, int]:
    best_derive = best_total = float("inf")
    size = 0
    for _ in range(repeat):
        derive.engine._derivation.cache_clear()
        net = network(L)
        t0 = time.perf_counter()
        bp = derive.backprop(net)
        t1 = time.perf_counter()
        tex = bp.to_latex(lang="en")
        t2 = time.perf_counter()
        best_derive = min(best_derive, t1 - t0)
        best_total = min(best_total, t2 - t0)
        size = len(tex)
    return best_derive, best_total, size


def sympy_diff(L: int) -> str:
    """What SymPy's own ``MatrixExpr.diff`` does for ∂f/∂W1: an error, or a result checked numerically."""
    import numpy as np
    import sympy

    import numeric

    net = network(L)
    t0 = time.perf_counter()
    try:
        out = net.f.diff(net.W1)
    except Exception as exc:
        return f"{type(exc).__name__} after {time.perf_counter() - t0:.2f} s"
    elapsed = time.perf_counter() - t0
    ours = derive.backprop(net).gradients()[net.W1]
    args = list(net.inputs) + list(net.params)
    rng = np.random.default_rng(0)
    sizes = {}
    for a in args:
        for x in a.shape:
            sizes.setdefault(x, int(x) if x.is_Integer else 2 + len(sizes))
    values = [rng.standard_normal(tuple(sizes[x] for x in a.shape)) for a in args]
    try:
        theirs, mine = numeric.compile([sympy.sympify(out), ours], args)(*values)
    except Exception as exc:
        return f"returned {type(out).__name__} in {elapsed:.2f} s; not evaluable ({type(exc).__name__})"
    if theirs.shape != mine.shape:
        return f"returned {type(out).__name__} of shape {theirs.shape}, expected {mine.shape}"
    agree = np.allclose(theirs, mine, rtol=1e-9, atol=1e-12)
    return f"returned {type(out).__name__} in {elapsed:.2f} s, {'agrees' if agree else 'WRONG'} numerically"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-depth", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    depths = [L for L in (1, 2, 4, 8, 16, 32) if args.max_depth >= L]
    print(f"# tracegrad derivation cost vs depth — Python {platform.python_version()}, {platform.machine()}")
    print("| L | sections | derive (s) | derive + LaTeX (s) | ratio to L=1 | target 1.5·L | LaTeX chars | SymPy .diff ∂f/∂W1 |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    for L in depths:
        t_derive, t_total, size = time_derivation(L, args.repeat)
        base = base or t_total
        sections = len(derive.backprop(network(L)).sections)
        print(f"| {L} | {sections} | {t_derive:.3f} | {t_total:.3f} | {t_total / base:.1f} | {1.5 * L:.1f} | "
              f"{size} | {sympy_diff(L) if L <= 4 else 'not run'} |", flush=True)


# ----- compile time against depth (issue 10, requirement 5) -----------------------------------------
def compile_times(depths=(2, 4, 8, 16, 32, 64)) -> list[tuple[int, float, float, int]]:
    """For each depth L: seconds of ``numeric.compile`` of the loss and every parameter gradient of the
    tanh ``mlp`` with L hidden layers, from the expanded gradients and from the staged program
    (``derive.kernel_stages``), and the kernel's temporaries.  The derivation is not timed here."""
    import numeric
    from derive.kernel_stages import kernel_stages
    from numeric.compile import _CACHE

    numeric.compile(sympy_warm_up(), [])  # the first compile of a process loads what the others reuse
    out = []
    for L in depths:
        net = network(L)
        bp = derive.backprop(net)
        grads = bp.gradients()
        args = [*net.inputs, *net.params]
        _CACHE.clear()
        t0 = time.perf_counter()
        kernel = numeric.compile([net.f, *(grads[p] for p in net.params)], args)
        t1 = time.perf_counter()
        stages, outputs, stage_args = kernel_stages(bp)
        numeric.compile(outputs, stage_args, stages=stages)
        out.append((L, t1 - t0, time.perf_counter() - t1, kernel.temporaries))
    return out


def sympy_warm_up():
    import sympy

    return sympy.Integer(1)


def compile_table(depths=(2, 4, 8, 16, 32, 64)) -> str:
    rows = ["| L | compile, expanded gradients (s) | compile, staged program (s) | temporaries |",
            "|---|---|---|---|"]
    for L, expanded, staged, temps in compile_times(depths):
        rows.append(f"| {L} | {expanded:.3f} | {staged:.3f} | {temps} |")
    return "\n".join(rows)


if __name__ == "__main__" and "--compile" in sys.argv:  # python benchmarks/bench_derive.py --compile
    print("# numeric.compile time vs depth (tanh mlp, loss + all parameter gradients; target L=64 < 10 s)")
    print(compile_table())
    sys.exit(0)


if __name__ == "__main__":
    main()
