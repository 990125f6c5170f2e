"""Derivation cost against depth.

For L = 1, 2, 4, 8, 16, 32 hidden layers (tanh, row biases, Frobenius loss): the
time of the full staged derivation (every section, all parameter gradients) and of
rendering it as a LaTeX document, and the ratio to L = 1 (target: ≤ 1.5·L, and
L = 32 under 30 s).  SymPy's own ``MatrixExpr.diff`` is timed on the same loss for
∂f/∂W₁, with what it returns (an error, or a result we check numerically).

Issue 10, requirement 6: (a) the transformer block (layer norm, self-attention, a tanh MLP, two
residuals; 8 parameters), as a program and as a Network of raw matrix algebra, derived and
rendered to LaTeX (target < 1 s), and, with ``--unstaged``, the raw loss derived in one piece; (b) time against program length, 2 … 64
stages of affine/tanh pairs (target: 64 stages ≤ 40 × 2 stages).

    python benchmarks/bench_derive.py [--max-depth 32] [--repeat 3] [--unstaged]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import derive
from derive import broadcast
from derive.networks import mlp

# The transformer block as a program: layer norm, single-head self-attention, a tanh MLP, two residuals.
TRANSFORMER = """
X: n×d; Y: n×d
param Wq: d×a; param Wk: d×a; param Wv: d×a; param Wo: a×d
param W1: d×m; param W2: m×d; param gamma: 1×d; param beta: 1×d
L = layernorm(X, gamma, beta, 0.01)
Q = L*Wq; K = L*Wk; V = L*Wv
A = attention(Q, K, V)
R1 = X + A*Wo
H = tanh(R1*W1)
R2 = R1 + H*W2
f = norm2(R2 - Y)^2
"""


def network(L: int):
    return mlp(["d"] + [f"m{i}" for i in range(1, L + 1)] + ["k"], activation="tanh")


def time_derivation(L: int, repeat: int) -> tuple[float, float, int]:
    return time_network(lambda: network(L), repeat)


def chain(stages: int):
    """A program of ``stages`` lines: Z_l = A_{l−1}W_l + 𝟏b_l, A_l = tanh(Z_l), …, f = ‖A − Y‖²_F."""
    import sympy
    from sympy import MatMul, MatrixSymbol, OneMatrix

    from derive.elementwise import tanh
    from derive.networks import frobenius_sq

    n = sympy.Symbol("n", integer=True, positive=True)
    widths = [sympy.Symbol(f"m{i}", integer=True, positive=True) for i in range(stages // 2 + 1)]
    X, Y = MatrixSymbol("X", n, widths[0]), MatrixSymbol("Y", n, widths[-1])
    A, params, lines = X, [], []
    for l in range(1, stages // 2 + 1):
        W, b = MatrixSymbol(f"W{l}", widths[l - 1], widths[l]), MatrixSymbol(f"b{l}", 1, widths[l])
        Z = MatrixSymbol(f"Z{l}", n, widths[l])
        lines.append((Z, MatMul(A, W) + MatMul(OneMatrix(n, 1), b)))
        A = MatrixSymbol(f"A{l}", n, widths[l])
        lines.append((A, tanh(Z)))
        params += [W, b]
    return derive.Network(inputs=(X, Y), params=tuple(params), stages=tuple(lines),
                          loss=frobenius_sq(Y - A), name="chain")


def time_network(make, repeat: int) -> tuple[float, float, int]:
    """Best of ``repeat``: (backprop, backprop + LaTeX, LaTeX characters), caches cleared each time."""
    best_derive = best_total = float("inf")
    size = 0
    for _ in range(repeat):
        for cached in (derive.engine._derivation, derive.engine._trace_terms, broadcast._text):
            cached.cache_clear()   # a cold derivation
        net = make()
        t0 = time.perf_counter()
        bp = derive.backprop(net)
        t1 = time.perf_counter()
        tex = bp.to_latex(lang="en")
        t2 = time.perf_counter()
        best_derive, best_total, size = min(best_derive, t1 - t0), min(best_total, t2 - t0), len(tex)
    return best_derive, best_total, size


def transformer_report(repeat: int, unstaged: bool) -> None:
    """(a) The transformer block, staged, derived and rendered to LaTeX; optionally in one piece."""
    from tests.derive.test_transformer_block import transformer_block

    time_network(transformer_block, 1)   # warm up the imports and the printers
    net = transformer_block()
    print(f"\n# the transformer block ({len(net.params)} parameters) — target: derive + LaTeX < 1 s")
    print("| form | stages | derive (s) | derive + LaTeX (s) | LaTeX chars |")
    print("|---|---|---|---|---|")
    for label, make in (("program (layernorm, attention layers)", lambda: derive.program(TRANSFORMER)),
                        ("Network of raw matrix algebra", transformer_block)):
        t_derive, t_total, size = time_network(make, repeat)
        print(f"| {label} | {len(make().stages)} | {t_derive:.3f} | {t_total:.3f} | {size} |", flush=True)
    if unstaged:
        f = net.f
        for label, params in (("∂f/∂Wq", net.params[:1]), ("all 8", net.params)):
            derive.engine._derivation.cache_clear()
            t0 = time.perf_counter()
            try:
                for p in params:
                    derive.derivation(f, p)
                outcome = f"{time.perf_counter() - t0:.3f}"
            except Exception as exc:   # the limits refuse it: report what and when
                outcome = f"{type(exc).__name__} after {time.perf_counter() - t0:.2f} s"
            print(f"| raw Network in one piece (derivation of net.f), {label} | | {outcome} | | |", flush=True)


def length_report(repeat: int, longest: int) -> None:
    """(b) Derivation + LaTeX time against program length."""
    lengths = [s for s in (2, 4, 8, 16, 32, 64) if s <= longest]
    time_network(lambda: chain(4), 1)
    print("\n# time vs program length (affine/tanh pairs) — target: 64 stages ≤ 40 × 2 stages")
    print("| stages | derive (s) | derive + LaTeX (s) | ratio to 2 stages | LaTeX chars |")
    print("|---|---|---|---|---|")
    base = None
    for s in lengths:
        # best of more runs for the short ones, whose few milliseconds a busy machine disturbs most
        t_derive, t_total, size = time_network(lambda s=s: chain(s), max(repeat, min(16, 64 // s)))
        base = base or t_total
        print(f"| {s} | {t_derive:.3f} | {t_total:.3f} | {t_total / base:.1f} | {size} |", flush=True)


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
    ap.add_argument("--max-length", type=int, default=64, help="the longest program of (b)")
    ap.add_argument("--unstaged", action="store_true",
                    help="also derive the transformer block's loss in one piece (about a minute before issue 10)")
    ap.add_argument("--compile", action="store_true", help="only the numeric.compile time against depth")
    args = ap.parse_args(argv)
    if args.compile:
        compile_report()
        return
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
    transformer_report(args.repeat, args.unstaged)
    length_report(args.repeat, args.max_length)
    compile_report()


def compile_report() -> None:
    print("\n# numeric.compile time vs depth (tanh mlp, loss + all parameter gradients; target L=64 < 10 s)")
    print(compile_table(), flush=True)


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


if __name__ == "__main__":
    main()
