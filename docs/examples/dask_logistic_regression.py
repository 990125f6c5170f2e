"""Full-batch gradient descent for logistic regression on data larger than memory, with Dask.

The loss f(w) = Σ softplus(Xw) − yᵀXw and its gradient ∂f/∂w = Xᵀσ(Xw) − Xᵀy are derived by
tracegrad and compiled once with ``backend="dask"``.  X (rows × cols) is generated chunk by chunk
from a seeded RNG and never materialised (``benchmarks/bench_dask.py``), y ~ Bernoulli(σ(Xw*)).
Each step is one ``dask.compute`` of the loss and the gradient together, on a LocalCluster started
here or on any scheduler (``--scheduler tcp://host:8786``), then w ← w − η ∂f/∂w / rows.

    python docs/examples/dask_logistic_regression.py [--rows 40000000] [--iterations 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numeric  # noqa: E402
from bench_dask import cluster, logistic_data, logistic_program  # noqa: E402
from numeric.dask_backend import compute  # noqa: E402


def main(argv: list[str] | None = None) -> tuple[list[float], np.ndarray]:
    """Train; return the mean loss at each step (before its update) and the final w."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40_000_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--step", type=float, default=4.0, help="η, on the mean loss (its curvature is at most ¼·‖X‖²/rows)")
    ap.add_argument("--scheduler", help="a scheduler address; default: a LocalCluster here")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1.5GiB")
    ap.add_argument("--in-process", action="store_true", help="LocalCluster workers as threads of this process")
    a = ap.parse_args(argv)
    if min(a.rows, a.cols, a.chunk_rows, a.iterations) < 1:
        ap.error("--rows, --cols, --chunk-rows and --iterations must be positive")

    exprs, args = logistic_program()
    step = numeric.compile(exprs, args, backend="dask")
    X, y, w_true = logistic_data(a.rows, a.cols, a.chunk_rows, seed=0)
    w = np.zeros((a.cols, 1))
    losses = []
    print(f"{a.rows:,} × {a.cols} rows in {X.numblocks[0]} chunks of {a.chunk_rows:,}; step η = {a.step}")
    with cluster(a.scheduler, a.workers, 1, a.memory_limit, processes=not a.in_process) as client:
        for i in range(a.iterations):
            start = time.perf_counter()
            f, g = compute(step(X, w, y), scheduler=client)   # lazy until here: one graph, X generated once
            losses.append(float(f.item()) / a.rows)
            w = w - a.step * g / a.rows
            cos = float((w.T @ w_true).item() / (np.linalg.norm(w) * np.linalg.norm(w_true)))
            print(f"step {i}: mean loss {losses[-1]:.6f}  ‖∂f/∂w‖/rows {np.linalg.norm(g) / a.rows:.3e}  "
                  f"cos(w, w*) after the step {cos:.4f}  ({time.perf_counter() - start:.1f} s)")
    return losses, w


if __name__ == "__main__":
    main()
