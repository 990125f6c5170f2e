"""Benchmark: logistic regression's loss and gradient over an X larger than memory, with Dask.

f(w) = Σ softplus(Xw) − yᵀXw and ∂f/∂w = Xᵀσ(Xw) − Xᵀy are derived by tracegrad and compiled with
``backend="dask"``.  X (rows × cols, float64) is generated chunk by chunk from a seeded RNG
(``dask.array.random``) and never materialised; y ~ Bernoulli(σ(X w*)) is computed from each
chunk of X.  One ``dask.compute`` reduces it all to f and ∂f/∂w: each chunk's partial products,
then a tree reduction.  It runs on a ``dask.distributed.LocalCluster`` started here (``--workers``
processes of ``--threads`` threads, each with ``--memory-limit``), or unchanged on any scheduler
(``--scheduler tcp://host:8786``).

Peak memory is the largest sum, sampled every 50 ms, of the resident memory of this process and
every process it started (the scheduler runs in this process; the nannies and the workers are its
children); on a remote scheduler, this process's plus the workers' own reports (coarser: their
heartbeats).  The comparison is the compiled NumPy kernel on the largest slice of the same X that
fits in the same memory budget (``--budget``), in memory, best of 3; the Dask kernel's result on
that slice is checked against the NumPy kernel's.

    python benchmarks/bench_dask.py [--rows 40000000] [--cols 100] [--chunk-rows 250000]
        [--scheduler tcp://…] [--markdown docs/benchmarks-dask.md]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GiB = 2.0 ** 30


def logistic_program() -> tuple[list[Any], list[Any]]:
    """([f, ∂f/∂w], [X, w, y]) for f = Σ softplus(Xw) − yᵀXw, derived by tracegrad."""
    import derive
    from derive.parse import parse_expression
    from sympy import MatrixSymbol

    f = parse_expression("sum(softplus(X*w)) - y'*X*w", {"X": ("n", "d"), "w": ("d", 1), "y": ("n", 1)})
    syms = {s.name: s for s in f.atoms(MatrixSymbol)}
    return [f, derive.gradient(f, syms["w"])], [syms["X"], syms["w"], syms["y"]]


def _labels(x: np.ndarray, w_true: np.ndarray, seed: int, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """y ~ Bernoulli(σ(x w*)) for one chunk of X, from an RNG seeded by the chunk's index."""
    rng = np.random.default_rng([seed, 1, block_id[0]])
    p = 0.5 * np.tanh(0.5 * (x @ w_true)) + 0.5
    return (rng.random(p.shape) < p).astype(x.dtype)


def logistic_data(rows: int, cols: int, chunk_rows: int, seed: int = 0, dtype: str = "float64"):
    """(X, y, w*): X rows × cols standard normal, y ~ Bernoulli(σ(X w*)), lazily, chunked by rows."""
    import dask.array as da

    w_true = np.random.default_rng([seed, 2]).standard_normal((cols, 1)) / np.sqrt(cols)
    X = da.random.default_rng(seed).standard_normal((rows, cols), chunks=(chunk_rows, cols), dtype=dtype)
    y = X.map_blocks(_labels, w_true.astype(dtype), seed, chunks=(X.chunks[0], (1,)), dtype=dtype)
    return X, y, w_true


@contextlib.contextmanager
def cluster(scheduler: str | None, workers: int, threads: int, memory_limit: str, processes: bool = True):
    """A ``distributed.Client``: of a LocalCluster started here (``scheduler`` None) or of ``scheduler``."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=threads, memory_limit=memory_limit,
                      processes=processes, dashboard_address=":0") as local, Client(local) as client:
        yield client


class PeakMemory:
    """The largest total resident memory of this process and its descendants (and, for a remote
    cluster, of the workers as they report it), sampled in a thread while in the ``with`` block."""

    def __init__(self, client: Any = None, remote: bool = False, interval: float = 0.05):
        self.client, self.remote, self.interval = client, remote, interval
        self.peak = 0.0
        self._stop = threading.Event()

    def sample(self) -> float:
        import psutil

        me = psutil.Process()
        total = 0.0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        if self.remote:
            workers = self.client.scheduler_info().get("workers", {}).values()
            total += sum(w.get("metrics", {}).get("memory", 0) for w in workers)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval if not self.remote else 0.5):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> PeakMemory:
        self.peak = self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def _bytes(limit: str) -> float:
    """``"1.5GiB"`` in bytes (dask's parser)."""
    from dask.utils import parse_bytes

    return float(parse_bytes(limit))


def numpy_rows(cols: int, budget: float, rows: int) -> int:
    """The rows of the largest slice whose X, y and the kernel's per-row temporaries fit in ``budget``."""
    return int(min(rows, budget // (8 * (cols + 8))))


def run(rows: int, cols: int, chunk_rows: int, *, scheduler: str | None = None, workers: int = 2,
        threads: int = 1, memory_limit: str = "1.5GiB", budget: float = 4 * GiB, processes: bool = True,
        seed: int = 0, repeat: int = 3) -> dict[str, Any]:
    """Time the Dask kernel on all ``rows`` and the NumPy kernel on the largest slice within ``budget``."""
    import dask.array as da

    import numeric
    from numeric.dask_backend import compute

    exprs, args = logistic_program()
    dask_kernel = numeric.compile(exprs, args, backend="dask")
    numpy_kernel = numeric.compile(exprs, args)
    X, y, _ = logistic_data(rows, cols, chunk_rows, seed)
    w = np.full((cols, 1), 0.01)
    out: dict[str, Any] = {"rows": rows, "cols": cols, "chunk_rows": chunk_rows,
                           "chunk_MiB": chunk_rows * cols * 8 / 2**20, "chunks": X.numblocks[0],
                           "X_GB": rows * cols * 8 / 1e9, "scheduler": scheduler or "LocalCluster",
                           "workers": workers, "threads_per_worker": threads, "memory_limit": memory_limit,
                           "load_before": os.getloadavg()[0]}
    with cluster(scheduler, workers, threads, memory_limit, processes) as client:
        out["workers"] = len(client.scheduler_info()["workers"])
        with PeakMemory(client, remote=bool(scheduler)) as peak:
            start = time.perf_counter()
            f, g = compute(dask_kernel(X, w, y), scheduler=client)
            out["dask_s"] = time.perf_counter() - start
        out["peak_GiB"] = peak.peak / GiB
        out["dask_rows_per_s"] = rows / out["dask_s"]
        out["load_after"] = os.getloadavg()[0]
        out["loss"] = float(f.item())
        out["grad_norm"] = float(np.linalg.norm(g))
        s = numpy_rows(cols, budget, rows)
        if chunk_rows < s < rows:  # whole chunks
            s -= s % chunk_rows
        f_s, g_s = compute(dask_kernel(X[:s], w, y[:s]), scheduler=client)
        start = time.perf_counter()  # generating the slice alone: what the gradient adds to it
        compute((X[:s].sum(), y[:s].sum()), scheduler=client)
        out["generate_rows_per_s"] = s / (time.perf_counter() - start)
        # the kernel alone: on rows already in the workers' memory (a quarter of their limit: with a
        # third, the kernel ran 10-20x slower here, the workers near their memory thresholds)
        p = min(s, int(_bytes(memory_limit) * out["workers"] / 4 // (8 * (cols + 1))))
        if chunk_rows < p < rows:
            p -= p % chunk_rows
        Xp, yp = client.persist([X[:p], y[:p]])
        from distributed import wait

        wait([Xp, yp])
        out["persisted_spilled"] = sum(client.run(lambda dask_worker: len(getattr(dask_worker.data, "slow", ()))).values())
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            compute(dask_kernel(Xp, w, yp), scheduler=client)
            best = min(best, time.perf_counter() - start)
        del Xp, yp
        out.update(persisted_rows=p, persisted_s=best, persisted_rows_per_s=p / best)
    # the slice in this process (dask's RNG is seeded per chunk: the same numbers as on the workers)
    X_s, y_s = np.empty((s, cols)), np.empty((s, 1))
    da.store([X[:s], y[:s]], [X_s, y_s], scheduler="threads", num_workers=threads * workers)  # chunk by chunk
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f_np, g_np = numpy_kernel(X_s, w, y_s)
        times.append(time.perf_counter() - start)
    del X_s, y_s
    scale = max(1.0, float(np.max(np.abs(g_np))))
    out.update(numpy_rows=s, numpy_GB=s * cols * 8 / 1e9, numpy_s=min(times), numpy_rows_per_s=s / min(times),
               slice_max_rel_diff=max(float(np.max(np.abs(g_s - g_np))) / scale,
                                      abs(float(f_s.item()) - float(f_np.item())) / max(1.0, abs(float(f_np.item())))))
    return out


def markdown(r: dict[str, Any]) -> str:
    where = (f"a LocalCluster of {r['workers']} worker processes × {r['threads_per_worker']} thread, memory "
             f"limit {r['memory_limit']} each" if r["scheduler"] == "LocalCluster" else f"scheduler {r['scheduler']}")
    return "\n".join([
        "# Dask: logistic regression's gradient over an X larger than memory",
        "",
        "Generated by `python benchmarks/bench_dask.py --markdown docs/benchmarks-dask.md` "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{where}; load average {r.get('load_before', float('nan')):.1f} before the Dask run, "
        f"{r.get('load_after', float('nan')):.1f} after it: the machine was shared).",
        "",
        "f(w) = Σ softplus(Xw) − yᵀXw and ∂f/∂w = Xᵀσ(Xw) − Xᵀy, derived by tracegrad and compiled with "
        "`backend=\"dask\"`; X is standard normal, generated chunk by chunk from a seeded RNG inside the "
        "computation and never materialised, y ~ Bernoulli(σ(Xw*)) computed from each chunk.  One "
        "`dask.compute` gives f and ∂f/∂w (per-chunk partial products, then a tree reduction).  Peak "
        "memory: the largest total resident memory of the benchmark process (client and scheduler) and "
        "every process it started (nannies, workers), sampled every 50 ms.  NumPy: the compiled NumPy "
        "kernel on the largest slice of the same X that fits in the same 4 GiB budget, in memory (its "
        "generation not timed), best of 3; the Dask kernel on a slice already in the workers' memory "
        "(`persist`, a quarter of their memory limit), best of 3: the kernel's own speed, without generating X.",
        "",
        "| run | rows | X | chunk | time | rows/s | peak memory |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| Dask, X generated lazily | {r['rows']:,} × {r['cols']} | {r['X_GB']:.1f} GB | "
        f"{r['chunk_rows']:,} rows ({r['chunk_MiB']:.0f} MiB) × {r['chunks']} | {r['dask_s']:.1f} s | "
        f"{r['dask_rows_per_s']:,.0f} | {r['peak_GiB']:.2f} GiB |",
        f"| Dask, X persisted in the workers' memory | {r['persisted_rows']:,} × {r['cols']} | "
        f"{r['persisted_rows'] * r['cols'] * 8 / 1e9:.1f} GB | the same | {r['persisted_s']:.2f} s | "
        f"{r['persisted_rows_per_s']:,.0f} | — |",
        f"| NumPy kernel, in memory | {r['numpy_rows']:,} × {r['cols']} | {r['numpy_GB']:.1f} GB | — | "
        f"{r['numpy_s']:.2f} s | {r['numpy_rows_per_s']:,.0f} | (X alone {r['numpy_GB'] / GiB * 1e9:.2f} GiB) |",
        "",
        f"Generating X and y alone (summed, on the NumPy slice's rows, on the same workers): "
        f"{r['generate_rows_per_s']:,.0f} rows/s, against {r['dask_rows_per_s']:,.0f} rows/s for generating "
        "them and computing f and ∂f/∂w.",
        "",
        f"Loss f = {r['loss']:.6g}, ‖∂f/∂w‖ = {r['grad_norm']:.6g} at w = 0.01·𝟏.  On the NumPy slice the Dask "
        f"kernel's loss and gradient agree with the NumPy kernel's to {r['slice_max_rel_diff']:.1e} (relative).",
        "",
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40_000_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    ap.add_argument("--scheduler", help="a scheduler address (tcp://host:8786); default: a LocalCluster here")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per worker")
    ap.add_argument("--memory-limit", default="1.5GiB", help="per worker of the LocalCluster")
    ap.add_argument("--budget", type=float, default=4.0, help="GiB: the NumPy slice's memory budget")
    ap.add_argument("--in-process", action="store_true", help="LocalCluster workers as threads of this process")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--from-json", type=Path, help="print (and --markdown) the figures of an earlier run")
    a = ap.parse_args(argv)
    if a.from_json:
        r = json.loads(a.from_json.read_text(encoding="utf-8"))
        print(markdown(r))
        if a.markdown:
            a.markdown.write_text(markdown(r), encoding="utf-8")
        return r
    if min(a.rows, a.cols, a.chunk_rows, a.workers, a.threads) < 1:
        ap.error("--rows, --cols, --chunk-rows, --workers and --threads must be positive")
    r = run(a.rows, a.cols, a.chunk_rows, scheduler=a.scheduler, workers=a.workers, threads=a.threads,
            memory_limit=a.memory_limit, budget=a.budget * GiB, processes=not a.in_process)
    print(markdown(r))
    if a.markdown:
        a.markdown.write_text(markdown(r), encoding="utf-8")
    if a.json:
        a.json.write_text(json.dumps(r, indent=1), encoding="utf-8")
    return r


if __name__ == "__main__":
    main()
