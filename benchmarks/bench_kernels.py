"""Benchmark: the compiled seed-network kernel against hand-written NumPy backprop.

One kernel computes f and ∂f/∂W1, ∂f/∂b1, ∂f/∂W2, ∂f/∂b2 (row biases) from the
expressions of ``derive.gradient``.
The hand-written backprop is what one would write in NumPy.  Both run in this
process, calls interleaved; times are best-of, peak memory is measured with
tracemalloc (NumPy reports its array buffers to it).  PyTorch (autograd, CPU) and
JAX (jit of grad) are timed, when installed, each in its own subprocess.

    python benchmarks/bench_kernels.py [--quick] [--markdown docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [(64, 32, 16, 4), (1024, 256, 128, 10), (4096, 784, 256, 10)]
DTYPES = ["float64", "float32"]


def hand_backprop(X, Y, W1, b1, W2, b2):
    """f = ‖HW2 + b2 − Y‖², H = σ(XW1 + b1), and the four gradients, by hand."""
    H = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    R = H @ W2 + b2 - Y
    f = np.vdot(R, R)
    G = 2.0 * R
    dW2 = H.T @ G
    db2 = G.sum(axis=0, keepdims=True)
    Gh = (G @ W2.T) * H * (1.0 - H)
    dW1 = X.T @ Gh
    db1 = Gh.sum(axis=0, keepdims=True)
    return f, dW1, db1, dW2, db2


def seed_kernel():
    import numeric
    from derive import gradient
    from derive.networks import seed_network

    net = seed_network(bias="row")
    grads = [gradient(net.f, p) for p in net.params]
    origin = "derive.gradient"
    args = [*net.inputs, *net.params]
    kernel = numeric.compile([net.f, *grads], args, name="seed_step")
    return kernel, origin


def make_data(size, dtype, seed=0):
    n, d, m, k = size
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k))
    W1 = rng.standard_normal((d, m)) / np.sqrt(d)
    b1 = 0.1 * rng.standard_normal((1, m))
    W2 = rng.standard_normal((m, k)) / np.sqrt(m)
    b2 = 0.1 * rng.standard_normal((1, k))
    return [a.astype(dtype) for a in (X, Y, W1, b1, W2, b2)]


def calls_for(size):
    n, d, m, k = size
    flops = 2 * n * d * m * 2 + 6 * n * m * k
    return max(1, int(2e7 / flops))


def best_of_interleaved(fns, arrays, number, repeat):
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(number):
                fn(*arrays)
            best[i] = min(best[i], (time.perf_counter() - t0) / number)
    return best


def peak_memory(fn, arrays):
    fn(*arrays)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn(*arrays)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def check_agreement(kernel, arrays):
    got = kernel(*arrays)
    want = hand_backprop(*arrays)
    tol = 1e-9 if arrays[0].dtype == np.float64 else 2e-3
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        err = np.max(np.abs(g - w)) / max(1.0, np.max(np.abs(w)))
        assert err < tol, f"kernel and hand-written backprop disagree: {err:.2e}"


# Each framework runs in its own process (their thread pools disturb OpenBLAS in a shared one); the
# data and the call counts come from make_data and calls_for above, so every column times the same work.
_PROLOGUE = f"""
import json, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from bench_kernels import calls_for, make_data
sizes, dtypes, repeat = json.loads(sys.argv[1])
"""

_TORCH = _PROLOGUE + """
import torch
torch.set_num_threads({threads})
out = {{}}
for size in sizes:
    for dt in dtypes:
        X, Y, *params = make_data(size, dt)
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)
        ps = [torch.from_numpy(a).requires_grad_() for a in params]
        def step():
            W1, b1, W2, b2 = ps
            f = ((torch.sigmoid(X @ W1 + b1) @ W2 + b2 - Y) ** 2).sum()
            return f, torch.autograd.grad(f, ps)
        number = calls_for(size)
        best = float("inf")
        step()
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                step()
            best = min(best, (time.perf_counter() - t0) / number)
        out[",".join(map(str, size)) + "," + dt] = best
print(json.dumps(out))
"""

_JAX = _PROLOGUE + """
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
out = {}
def loss(params, X, Y):
    W1, b1, W2, b2 = params
    return jnp.sum((jax.nn.sigmoid(X @ W1 + b1) @ W2 + b2 - Y) ** 2)
step = jax.jit(jax.value_and_grad(loss))
for size in sizes:
    for dt in dtypes:
        X, Y, *params = (jnp.asarray(a) for a in make_data(size, dt))
        params = tuple(params)
        jax.block_until_ready(step(params, X, Y))
        number = calls_for(size)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                jax.block_until_ready(step(params, X, Y))
            best = min(best, (time.perf_counter() - t0) / number)
        out[",".join(map(str, size)) + "," + dt] = best
print(json.dumps(out))
"""


def run_framework(name, code, sizes, dtypes, repeat):
    module = {"torch": "torch", "jax": "jax"}[name]
    probe = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return None, None
    version = probe.stdout.strip()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps([sizes, dtypes, repeat])],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        print(f"{name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return version, None
    return version, json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info():
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg.get("Build Dependencies", {}).get("blas", {})
        blas = f"{b.get('name', '')} {b.get('version', '')}".strip()
    except Exception:  # pragma: no cover - older NumPy
        pass
    import sympy
    return {
        "cpu": cpu, "cores": cores, "python": platform.python_version(), "numpy": np.__version__,
        "sympy": sympy.__version__, "blas": blas, "os": f"{platform.system()} {platform.release()}",
        "load average at the end of the run (1, 5, 15 min)":
            ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other processes share the cores; "
            "best-of times are the least disturbed)",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--markdown", type=Path, help="write the result table to this Markdown file")
    ap.add_argument("--no-frameworks", action="store_true", help="skip PyTorch and JAX")
    ns = ap.parse_args(argv)
    repeat = 3 if ns.quick else 15

    kernel, origin = seed_kernel()
    rows = []
    for size in SIZES:
        for dt in DTYPES:
            arrays = make_data(size, dt)
            check_agreement(kernel, arrays)
            number = calls_for(size) * (1 if ns.quick else 2)
            tk, th = best_of_interleaved([kernel, hand_backprop], arrays, number, repeat)
            mk, mh = peak_memory(kernel, arrays), peak_memory(hand_backprop, arrays)
            rows.append({"size": size, "dtype": dt, "kernel": tk, "hand": th,
                         "mem_kernel": mk, "mem_hand": mh})
            print(f"{size} {dt}: kernel {tk * 1e3:.3f} ms, hand {th * 1e3:.3f} ms, ratio {tk / th:.3f}; "
                  f"peak {mk / 2**20:.2f} / {mh / 2**20:.2f} MiB = {mk / mh:.3f}", flush=True)

    frameworks = {}
    if not ns.no_frameworks:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        for name, code in (("torch", _TORCH.format(threads=threads)), ("jax", _JAX)):
            version, times = run_framework(name, code, SIZES, DTYPES, max(3, repeat // 2))
            frameworks[name] = (version, times)
            print(f"{name}: {version or 'not installed'}", flush=True)

    table = render(rows, frameworks, machine_info(), origin, kernel, repeat)
    print(table)
    if ns.markdown:
        ns.markdown.write_text(table, encoding="utf-8")


def render(rows, frameworks, info, origin, kernel, repeat) -> str:
    head = ["n, d, m, k", "dtype", "kernel (ms)", "hand NumPy (ms)", "time ratio", "peak MiB kernel / hand",
            "memory ratio"]
    fw_cols = [name for name, (v, t) in frameworks.items() if t]
    head += [f"{'PyTorch' if n == 'torch' else 'JAX'} (ms)" for n in fw_cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        n, d, m, k = r["size"]
        cells = [f"{n}, {d}, {m}, {k}", r["dtype"], f"{r['kernel'] * 1e3:.3f}", f"{r['hand'] * 1e3:.3f}",
                 f"{r['kernel'] / r['hand']:.2f}×",
                 f"{r['mem_kernel'] / 2**20:.2f} / {r['mem_hand'] / 2**20:.2f}",
                 f"{r['mem_kernel'] / r['mem_hand']:.2f}×"]
        for name in fw_cols:
            t = frameworks[name][1].get(f"{n},{d},{m},{k},{r['dtype']}")
            cells.append("—" if t is None else f"{t * 1e3:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    fw_note = "; ".join(f"{'PyTorch' if n == 'torch' else 'JAX'} {v or 'not installed'}"
                        for n, (v, _) in frameworks.items()) or "not run"
    body = kernel.source[kernel.source.index("    if len(arrays)"):]
    body = body[body.index("    _t0"):] if "    _t0" in body else body
    info_lines = "\n".join(f"- {k}: {v}" for k, v in info.items())
    return textwrap.dedent("""\
        # Benchmarks: compiled seed-network kernel

        Generated by `python benchmarks/bench_kernels.py --markdown docs/benchmarks.md`.

        One call computes f = ‖Y − Ŷ‖²_F and ∂f/∂W1, ∂f/∂b1, ∂f/∂W2, ∂f/∂b2 for the seed
        network (row biases).  "kernel" is `numeric.compile` of the expressions from
        {origin}; "hand NumPy" is the backprop one writes by hand
        (`hand_backprop` in the script).  Both run in one process, calls interleaved,
        best of {repeat} runs; argument checks are included in the kernel's time.  Peak
        memory is the tracemalloc peak of one call above the inputs.  Weights are scaled
        1/√fan-in.  Frameworks: {fw_note}; each timed in its own subprocess (jit/graph
        warm-up excluded).

        Targets: time ratio ≤ 1.10 at the two larger sizes and ≤ 1.5 at the smallest;
        memory ratio ≤ 1.2.

        {table}

        Machine:
        {info}

        The generated body (float64 and float32 share it):

        ```python
        {body}
        ```
        """).format(origin=origin, repeat=repeat, fw_note=fw_note, table="\n".join(lines),
                    info=info_lines, body=body.rstrip().replace("\n", "\n"))


if __name__ == "__main__":
    main()
