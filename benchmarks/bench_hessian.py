"""Benchmark: compiled Hessians and Hessian-vector products against jax.hessian, torch.func.hessian,
jax.jvp∘grad and PyTorch's double backward.

Each case is a scalar function typed in the expression language (the seed network from
``derive.seed_network()``); ``derive.hessian(f, x)`` (a vector x) or ``derive.hvp(f, X, V)`` derives the
second derivative symbolically and ``numeric.compile`` turns it into one NumPy kernel.  The peers get the
same f written in their own array language and differentiate it twice by automatic differentiation:

* Hessian rows: ``jax.jit(jax.hessian(f))`` and ``torch.func.hessian(f)``;
* HVP rows: ``jax.jit`` of ``jax.jvp(jax.grad(f), (x,), (v,))`` and PyTorch's double backward
  (``torch.autograd.grad`` of ⟨∇f, v⟩ with ``create_graph=True``).

"NumPy" is the same second derivative written by hand (closed forms; the seed HVP as forward-over-reverse
by hand).  Every kernel's output is compared with it before it is timed.  Times are the minimum over
repeats, tracegrad and NumPy interleaved in this process, each peer in a process of its own (their thread
pools slow NumPy's BLAS down in a shared one); peers that are not installed are skipped with a note.

    python benchmarks/bench_hessian.py [--quick] [--markdown docs/benchmarks-hessian.md]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_layers import arguments, best_of, installed, machine, peer_threads  # noqa: E402


@dataclass(frozen=True)
class Case:
    """A scalar function f(x; data…): its text in the expression language (None: the seed network), the
    shapes (``x`` the variable first), the benchmark and ``--quick`` sizes."""

    name: str
    text: str | None
    shapes: dict[str, tuple]
    sizes: dict[str, int]
    quick: dict[str, int]


CASES = (
    Case("xᵀAx", "x'*A*x", {"x": ("n", 1), "A": ("n", "n")}, {"n": 2048}, {"n": 40}),
    Case("logistic regression", "sum(softplus(X*w)) - y'*X*w",
         {"w": ("d", 1), "X": ("n", "d"), "y": ("n", 1)}, {"n": 2048, "d": 256}, {"n": 50, "d": 7}),
    Case("softmax cross-entropy", "log(sum(exp(z))) - y'*z", {"z": ("k", 1), "y": ("k", 1)},
         {"k": 1000}, {"k": 30}),
    Case("seed network (in W1)", None,
         {"W1": ("d", "m"), "X": ("n", "d"), "Y": ("n", "k"), "b1": (1, "m"), "W2": ("m", "k"), "b2": (1, "k")},
         {"n": 256, "d": 784, "m": 128, "k": 10}, {"n": 6, "d": 5, "m": 4, "k": 3}),
)
#: (case, kind): Hessians of the vector cases, HVPs of all
ROWS = tuple((c.name, "hessian") for c in CASES if c.text is not None) + tuple((c.name, "hvp") for c in CASES)


def case_named(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def _var(case: Case) -> str:
    return next(iter(case.shapes))


# ----- data -----------------------------------------------------------------------------------------
def make_data(case: Case, sizes: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float64 data for f, and a direction ``V`` of the variable's shape."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in case.shapes.items():
        shape = tuple(sizes[x] if isinstance(x, str) else x for x in shape)
        a = rng.standard_normal(shape)
        if name in ("W1", "W2", "w"):
            a /= np.sqrt(shape[0])
        out[name] = a
    if "y" in out and case.name.startswith("logistic"):
        out["y"] = (rng.random(out["y"].shape) < 0.5).astype(float)
    if "y" in out and case.name.startswith("softmax"):
        out["y"] = np.eye(out["y"].shape[0])[:, [3 % out["y"].shape[0]]]
    out["V"] = rng.standard_normal(out[_var(case)].shape)
    return out


# ----- tracegrad ------------------------------------------------------------------------------------
def kernel_for(case: Case, kind: str):
    """The compiled Hessian (or HVP) of the case and its argument names."""
    from sympy import MatrixSymbol

    import derive
    import numeric
    from derive.parse import parse_expression

    if case.text is None:
        net = derive.seed_network()
        f, symbols = net.f, {s.name: s for s in (*net.inputs, *net.params)}
    else:
        f = parse_expression(case.text, case.shapes)
        symbols = {s.name: s for s in f.atoms(MatrixSymbol)}
    x = symbols[_var(case)]
    if kind == "hessian":
        H = derive.hessian(f, x).result
        names = list(case.shapes)
    else:
        V = MatrixSymbol("V", *x.shape)
        H = derive.hvp(f, x, V).result
        symbols["V"] = V
        names = [*case.shapes, "V"]
    return numeric.compile(H, [symbols[k] for k in names], name=f"{kind}_{_var(case)}"), names


def _sigmoid(a):
    return 0.5 * np.tanh(0.5 * a) + 0.5


def hand(case: Case, kind: str) -> Callable[[dict], np.ndarray]:
    """The second derivative written by hand in NumPy (the reference and the "NumPy" column)."""
    if case.name == "xᵀAx":
        if kind == "hessian":
            return lambda D: D["A"] + D["A"].T
        return lambda D: D["A"] @ D["V"] + D["A"].T @ D["V"]
    if case.name.startswith("logistic"):
        def s(D):
            p = _sigmoid(D["X"] @ D["w"])
            return p * (1 - p)
        if kind == "hessian":
            return lambda D: (D["X"] * s(D)).T @ D["X"]
        return lambda D: D["X"].T @ (s(D) * (D["X"] @ D["V"]))
    if case.name.startswith("softmax"):
        def p(D):
            e = np.exp(D["z"] - D["z"].max())
            return e / e.sum()
        if kind == "hessian":
            def H(D):
                q = p(D)
                out = -q * q.T
                out.flat[::q.shape[0] + 1] += q[:, 0]
                return out
            return H

        def hv(D):
            q = p(D)
            return q * D["V"] - q * (q.T @ D["V"])
        return hv

    def seed_hvp(D):   # forward-over-reverse by hand
        X, Y, W1, b1, W2, b2, V = (D[k] for k in ("X", "Y", "W1", "b1", "W2", "b2", "V"))
        H = _sigmoid(X @ W1 + b1)
        s1 = H * (1 - H)
        GH = 2 * (H @ W2 + b2 - Y) @ W2.T
        dh = X @ V
        dH = s1 * dh
        dGH = 2 * (dH @ W2) @ W2.T
        return X.T @ (dGH * s1 + GH * s1 * (1 - 2 * H) * dh)
    return seed_hvp


def tracegrad_step(case: Case, kind: str):
    kernel, names = kernel_for(case, kind)
    return lambda D: kernel(*[D[k] for k in names])


# ----- the peers ------------------------------------------------------------------------------------
def peer_function(case: Case, lib: str):
    """f(x, data…) in the peer's array language (vectors 1-D)."""
    if lib == "JAX":
        import jax
        import jax.numpy as xp
        softplus, sigmoid, lse = jax.nn.softplus, jax.nn.sigmoid, jax.nn.logsumexp
    else:
        import torch as xp
        softplus, sigmoid, lse = xp.nn.functional.softplus, xp.sigmoid, xp.logsumexp
    if case.name == "xᵀAx":
        return lambda x, A: x @ (A @ x)
    if case.name.startswith("logistic"):
        return lambda w, X, y: softplus(X @ w).sum() - y @ (X @ w)
    if case.name.startswith("softmax"):
        return lambda z, y: lse(z, 0) - y @ z
    return lambda W1, X, Y, b1, W2, b2: ((Y - (sigmoid(X @ W1 + b1) @ W2 + b2)) ** 2).sum()


def _peer_arrays(case: Case, D: dict) -> list[np.ndarray]:
    """The variable, the data and the direction; column vectors flattened."""
    names = [*case.shapes, "V"]
    return [D[k][:, 0] if case.shapes.get(k, case.shapes[_var(case)])[1] == 1 else D[k] for k in names]


def jax_step(case: Case, kind: str, D: dict):
    import jax

    jax.config.update("jax_enable_x64", True)
    f = peer_function(case, "JAX")
    if kind == "hessian":
        fn = jax.jit(jax.hessian(f))
    else:
        fn = jax.jit(lambda x, *rest: jax.jvp(lambda y: jax.grad(f)(y, *rest[:-1]), (x,), (rest[-1],))[1])
    arrays = [jax.numpy.asarray(a) for a in _peer_arrays(case, D)]
    if kind == "hessian":
        arrays = arrays[:-1]
    return lambda _D: jax.block_until_ready(fn(*arrays))


def torch_step(case: Case, kind: str, D: dict):
    import torch

    f = peer_function(case, "PyTorch")
    arrays = [torch.from_numpy(np.ascontiguousarray(a)) for a in _peer_arrays(case, D)]
    x, rest, v = arrays[0], arrays[1:-1], arrays[-1]
    if kind == "hessian":
        hess = torch.func.hessian(f)
        return lambda _D: hess(x, *rest)

    def hvp(_D):   # double backward
        y = x.detach().requires_grad_()
        (g,) = torch.autograd.grad(f(y, *rest), y, create_graph=True)
        return torch.autograd.grad(g, y, grad_outputs=v)[0]
    return hvp


def peer_result(lib: str, case: Case, kind: str, D: dict) -> np.ndarray:
    """The peer's answer as a NumPy array of the kernel's shape (for the check)."""
    step = (jax_step if lib == "JAX" else torch_step)(case, kind, D)
    out = np.asarray(step(D), dtype=np.float64)
    n = D[_var(case)].size
    return out.reshape(n, n) if kind == "hessian" else out.reshape(D[_var(case)].shape)


def _peer_main(lib: str, case_name: str, kind: str, quick: bool, repeat: int) -> None:
    case = case_named(case_name)
    D = make_data(case, case.quick if quick else case.sizes)
    peer_threads(lib)
    step = (torch_step if lib == "PyTorch" else jax_step)(case, kind, D)
    want = hand(case, kind)(D)
    got = np.asarray(step(D), dtype=np.float64).reshape(want.shape)   # also the warm-up (jit, caches)
    err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
    print(json.dumps({"time": _best_time(step, D, repeat, 0.5 if quick else 30.0), "err": err}))


def _best_time(step: Callable, D: dict, repeat: int, budget: float) -> float:
    """The minimum over up to ``repeat`` calls, stopping after ``budget`` seconds once 3 calls are timed,
    or once 1 is when a call takes longer than the budget's tenth (torch.func.hessian of xᵀAx: a minute)."""
    best = float("inf")
    start = time.perf_counter()
    for i in range(repeat):
        t0 = time.perf_counter()
        step(D)
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget and (i >= 2 or best > budget / 10):
            break
        if best > budget / 10 and time.perf_counter() - start > budget / 10 * 2:
            break
    return best


def peer_time(lib: str, case: Case, kind: str, quick: bool, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--peer", lib, "--case", case.name, "--kind", kind,
           "--repeat", str(repeat), *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"note: {lib} failed on {case.name} ({kind}): {last}", flush=True)
        return {"time": float("nan"), "err": float("nan")}
    return json.loads(out.stdout.strip().splitlines()[-1])


PEER_METHOD = {("JAX", "hessian"): "jax.jit(jax.hessian)", ("PyTorch", "hessian"): "torch.func.hessian",
               ("JAX", "hvp"): "jax.jit(jvp∘grad)", ("PyTorch", "hvp"): "double backward"}


# ----- the run --------------------------------------------------------------------------------------
def run(quick: bool, repeat: int, rows=ROWS, peers: bool = True) -> tuple[list[dict], dict]:
    libs = {"JAX": installed("jax") if peers else None, "PyTorch": installed("torch") if peers else None}
    for lib, version in libs.items():
        if version is None:
            print(f"note: {lib} is not installed; its column is skipped", flush=True)
    out = []
    for case_name, kind in rows:
        case = case_named(case_name)
        sizes = case.quick if quick else case.sizes
        D = make_data(case, sizes)
        t0 = time.perf_counter()
        tg = tracegrad_step(case, kind)
        compile_s = time.perf_counter() - t0
        ref = hand(case, kind)
        got, want = tg(D), ref(D)
        err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
        assert got.shape == want.shape and err < 1e-8, f"{case.name} {kind}: kernel and NumPy differ by {err}"
        row = {"case": case.name, "kind": kind, "sizes": sizes, "compile": compile_s, "err": err}
        row.update(best_of({"tracegrad": tg, "NumPy": ref}, D, repeat, 0.5 if quick else 30.0))
        for lib, version in libs.items():
            if version:
                r = peer_time(lib, case, kind, quick, repeat)
                row[lib], row[lib + " err"] = r["time"], r["err"]
        print(f"{case.name} {kind}: " + ", ".join(f"{k} {row[k] * 1e3:.2f} ms" for k in
                                                 ("tracegrad", "NumPy", "JAX", "PyTorch") if k in row), flush=True)
        out.append(row)
    return out, libs


def _ms(t: float) -> str:
    return "—" if t != t else f"{t * 1e3:.2f}" if t < 10 else f"{t * 1e3:.0f}"


def table(rows: list[dict], libs: dict) -> str:
    cols = ["NumPy", *(lib for lib, v in libs.items() if v)]
    head = ["case", "sizes", "second derivative", "tracegrad (ms)", *(f"{c} (ms)" for c in cols),
            *(f"{c} / tracegrad" for c in cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in r["sizes"].items())
        what = "Hessian" if r["kind"] == "hessian" else "HVP"
        cells = [r["case"], sizes, what, _ms(r["tracegrad"])]
        for c in cols:
            method = PEER_METHOD.get((c, r["kind"]))
            cells.append(_ms(r[c]) + (f" ({method})" if method else ""))
        cells += ["—" if r[c] != r[c] else f"{r[c] / r['tracegrad']:.2f}×" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: issue 12's goals: (case, kind, peer or "best", the least peer/tracegrad ratio)
GOALS = (("xᵀAx", "hessian", "JAX", 10.0), ("xᵀAx", "hessian", "PyTorch", 5.0),
         ("logistic regression", "hessian", "JAX", 2.0),
         *((c.name, "hvp", "best", 1 / 1.2) for c in CASES))


def goals(rows: list[dict]) -> list[str]:
    """One line per goal: the measured ratio and whether it is met (peers not run: skipped)."""
    out = []
    for case, kind, peer, least in GOALS:
        r = next((r for r in rows if r["case"] == case and r["kind"] == kind), None)
        peers = [p for p in ("JAX", "PyTorch") if r is not None and r.get(p, float("nan")) == r.get(p)]
        if r is None or not peers or (peer != "best" and peer not in peers):
            continue
        t = min(r[p] for p in peers) if peer == "best" else r[peer]
        ratio = t / r["tracegrad"]
        who = "the better of JAX and PyTorch" if peer == "best" else PEER_METHOD[(peer, kind)]
        what = "Hessian" if kind == "hessian" else "HVP"
        out.append(f"- {case} {what}: {ratio:.2f}× {who} (goal ≥ {least:.2f}×: "
                   f"{'met' if ratio >= least else 'NOT met'})")
    return out


def document(rows: list[dict], libs: dict, repeat: int) -> str:
    versions = "; ".join(f"{p} {v}" if v else f"{p} not installed" for p, v in libs.items())
    compile_times = ", ".join(f"{r['case']} {r['kind']} {r['compile']:.2f} s" for r in rows)
    errs = ", ".join(f"{r['case']} {r['kind']} {r['err']:.1e}" for r in rows)
    peer_errs = "; ".join(f"{r['case']} {r['kind']}: " + ", ".join(f"{lib} {r[lib + ' err']:.1e}" for lib in libs
                                                                  if lib + " err" in r) for r in rows)
    return f"""# Benchmarks: compiled Hessians and Hessian-vector products against JAX and PyTorch

Generated by `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_hessian.py --markdown docs/benchmarks-hessian.md`
(one thread per library: the machine's two cores are shared with other jobs).

Each case is a scalar function typed in the expression language (`benchmarks/bench_hessian.py`,
`CASES`): f(x) = xᵀAx; logistic regression f(w) = Σ softplus(Xw) − yᵀXw; softmax cross-entropy
f(z) = log Σ exp(z) − yᵀz (y one-hot); the seed network f = ‖Y − (σ(XW1 + 𝟏b1)W2 + 𝟏b2)‖²_F in W1
at MNIST size.  "tracegrad" is the kernel `numeric.compile` makes from `derive.hessian(f, x).result`
(A + Aᵀ; Xᵀdiag(σ ⊙ (𝟏 − σ))X, computed as Xᵀ(s ⊙ X) without forming diag; the softmax Hessian
diag(p) − ppᵀ) or from `derive.hvp(f, X, V).result` (d(∂f/∂X) along V: never the Hessian).  "NumPy" is
the same second derivative written by hand (closed forms; forward-over-reverse by hand for the seed
network).  The peers differentiate f twice: Hessians by `jax.jit(jax.hessian(f))` and
`torch.func.hessian(f)`, HVPs by `jax.jit` of `jax.jvp(jax.grad(f), (x,), (v,))` and PyTorch's double
backward.  All float64.  Times: minimum over up to {repeat} rounds; tracegrad and NumPy interleaved in
one process, each peer in a process of its own.  "peer / tracegrad" > 1 means tracegrad is faster.
Goals of issue 12: ≥ 10× jax.hessian and ≥ 5× torch.func.hessian on xᵀAx, ≥ 2× jax.hessian on logistic
regression, HVPs within 1.2× of the better peer (a ratio ≥ 0.83×).

Peers: {versions}.  Machine: {machine()}.

{table(rows, libs)}

Goals of issue 12, as measured in this run (the machine is shared: a ratio near 1× can fall either side
of a goal from one run to the next; the Hessian rows of xᵀAx and logistic regression are far from it):

{chr(10).join(goals(rows)) or "- (no peer was run)"}

Compile (derive + compile) times: {compile_times}.
Largest difference from the hand-written NumPy (relative to the largest entry): tracegrad {errs};
peers {peer_errs}.
"""


def main(argv: list[str] | None = None) -> None:
    ap = arguments(__doc__)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    repeat = ns.repeat or (3 if ns.quick else 20)
    if ns.peer:
        _peer_main(ns.peer, ns.case, ns.kind, ns.quick, repeat)
        return
    rows, libs = run(ns.quick, repeat, peers=not ns.no_peers)
    print(table(rows, libs))
    if ns.markdown:
        ns.markdown.write_text(document(rows, libs, repeat), encoding="utf-8")


if __name__ == "__main__":
    main()
