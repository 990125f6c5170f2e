"""Benchmark: compiled layer kernels against hand-written NumPy, PyTorch eager and jax.jit(grad).

Each layer is a program of raw matrix algebra typed in the expression language
(``derive.parse``), one line per stage; the loss is f = tr(Rᵀ·out) for a fixed random R (so
∂f/∂out = R, as inside a network).  ``derive.backprop`` derives the staged backward pass and
``numeric.compile(..., stages=...)`` compiles the loss and the gradients of every parameter into
one kernel (:func:`derive.kernel_stages.kernel_stages`).  The same loss and gradients are timed,
side by side in one process, as written by hand in NumPy, with PyTorch autograd (eager, CPU) and
with ``jax.jit(jax.value_and_grad)``; peers that are not installed are skipped with a note.
Times are the minimum over repeats (the machine is shared).

    python benchmarks/bench_layers.py [--quick] [--markdown docs/benchmarks-layers.md]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EPS = 1e-5


# ----- the layers as programs -------------------------------------------------------------------
def _norm_lines(z: str, out: str, axis: str) -> list[str]:
    """Batch norm (statistics per column, ``axis="rows"``) or layer norm (per row) of ``z``."""
    if axis == "rows":   # over the batch: 1ₙᵀZ/n
        mean, bc = "ones(1,n)*{}/n", "ones(n,1)*{}"
    else:                # over the features: Z𝟏_d/d
        mean, bc = "{}*ones(d,1)/d", "{}*ones(1,d)"
    p = out
    return [f"{p}_mu = {mean.format(z)}",
            f"{p}_c = {z} - {bc.format(p + '_mu')}",
            f"{p}_v = {mean.format(f'({p}_c .* {p}_c)')}",
            f"{p}_s = ({p}_v + 0.00001).^(-1/2)",
            f"{p}_hat = {p}_c .* ({bc.format(p + '_s')})",
            f"{out} = {p}_hat .* (ones(n,1)*{p}_gamma) + ones(n,1)*{p}_beta"]


def _attention_lines(x: str, out: str, d: int) -> list[str]:
    scale = float(1 / np.sqrt(d))
    return [f"Q = {x}*Wq", f"K = {x}*Wk", f"V = {x}*Wv",
            f"S = {scale!r}*Q*K'", "P = softmax(S)", f"{out} = P*V"]


@dataclass(frozen=True)
class Layer:
    """A layer: its program, the shapes of its inputs and parameters (``n``, ``d``, ``f`` named), the
    names of the parameters, the hand-written NumPy step (arguments in the order of ``shapes``), the sizes
    of the benchmark and of ``--quick``."""

    name: str
    lines: Callable[[dict], list[str]]
    shapes: dict[str, tuple]
    params: tuple[str, ...]
    hand: Callable[..., tuple]
    sizes: dict[str, int]
    quick: dict[str, int]
    batch: int = 1   # sequences per step (attention): a loop over the batch for the kernel and NumPy


# hand-written NumPy: forward, f = ⟨R, out⟩, and the backward pass one writes by hand
def _bn_fwd(Z, gamma, beta, axis):
    mu = Z.mean(axis=axis, keepdims=True)
    C = Z - mu
    s = 1.0 / np.sqrt((C * C).mean(axis=axis, keepdims=True) + EPS)
    Xh = C * s
    return Xh, s, gamma * Xh + beta


def _bn_bwd(G, Xh, s, gamma, axis):
    """∂f/∂Z, ∂f/∂γ, ∂f/∂β from G = ∂f/∂Y: the compact form (1/N)s(NĜ − ΣĜ − X̂Σ(Ĝ ⊙ X̂))."""
    N = G.shape[axis]
    Gh = G * gamma
    dZ = (s / N) * (N * Gh - Gh.sum(axis=axis, keepdims=True) - Xh * (Gh * Xh).sum(axis=axis, keepdims=True))
    return dZ, (G * Xh).sum(axis=0, keepdims=True), G.sum(axis=0, keepdims=True)


def hand_batchnorm(Z, R, gamma, beta):
    Xh, s, Y = _bn_fwd(Z, gamma, beta, 0)
    return (np.vdot(R, Y), *_bn_bwd(R, Xh, s, gamma, 0))


def hand_layernorm(Z, R, gamma, beta):
    Xh, s, Y = _bn_fwd(Z, gamma, beta, 1)
    return (np.vdot(R, Y), *_bn_bwd(R, Xh, s, gamma, 1))


def _attn_fwd(X, Wq, Wk, Wv):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    c = 1.0 / np.sqrt(Wq.shape[1])
    S = (Q @ K.T) * c
    E = np.exp(S - S.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    return Q, K, V, P, c, P @ V


def _attn_bwd(G, X, Q, K, V, P, c):
    dV = P.T @ G
    dP = G @ V.T
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True)) * c
    dQ, dK = dS @ K, dS.T @ Q
    return X.T @ dQ, X.T @ dK, X.T @ dV, (dQ, dK, dV)


def hand_attention(X, R, Wq, Wk, Wv):
    Q, K, V, P, c, O = _attn_fwd(X, Wq, Wk, Wv)
    return (np.vdot(R, O), *_attn_bwd(R, X, Q, K, V, P, c)[:3])


def hand_transformer(X, R, ln1_gamma, ln1_beta, Wq, Wk, Wv, Wo, ln2_gamma, ln2_beta, W1, b1, W2, b2):
    H1h, s1, H1 = _bn_fwd(X, ln1_gamma, ln1_beta, 1)
    Q, K, V, P, c, A = _attn_fwd(H1, Wq, Wk, Wv)
    X2 = X + A @ Wo
    H2h, s2, H2 = _bn_fwd(X2, ln2_gamma, ln2_beta, 1)
    U = H2 @ W1 + b1
    M = np.maximum(U, 0)
    Y = X2 + M @ W2 + b2
    f = np.vdot(R, Y)
    dW2, db2 = M.T @ R, R.sum(axis=0, keepdims=True)
    dU = (R @ W2.T) * (U > 0)
    dW1, db1 = H2.T @ dU, dU.sum(axis=0, keepdims=True)
    dX2, dg2, dbt2 = _bn_bwd(dU @ W1.T, H2h, s2, ln2_gamma, 1)
    dX2 += R
    dWo = A.T @ dX2
    dWq, dWk, dWv, (dQ, dK, dV) = _attn_bwd(dX2 @ Wo.T, H1, Q, K, V, P, c)
    dH1 = dQ @ Wq.T + dK @ Wk.T + dV @ Wv.T
    _, dg1, dbt1 = _bn_bwd(dH1, H1h, s1, ln1_gamma, 1)
    return f, dg1, dbt1, dWq, dWk, dWv, dWo, dg2, dbt2, dW1, db1, dW2, db2


def torch_layer(name: str):
    import torch
    import torch.nn.functional as F

    def bn(Z, R, gamma, beta):
        return (R * F.batch_norm(Z, None, None, gamma[0], beta[0], training=True, eps=EPS)).sum()

    def ln(Z, R, gamma, beta):
        return (R * F.layer_norm(Z, (Z.shape[1],), gamma[0], beta[0], eps=EPS)).sum()

    def attention(X, R, Wq, Wk, Wv):   # X: batch × seq × d
        Q, K, V = X @ Wq, X @ Wk, X @ Wv
        P = torch.softmax((Q @ K.transpose(-1, -2)) / np.sqrt(Wq.shape[1]), dim=-1)
        return (R * (P @ V)).sum()

    def transformer(X, R, g1, bt1, Wq, Wk, Wv, Wo, g2, bt2, W1, b1, W2, b2):
        d = X.shape[1]
        H1 = F.layer_norm(X, (d,), g1[0], bt1[0], eps=EPS)
        P = torch.softmax((H1 @ Wq) @ (H1 @ Wk).T / np.sqrt(d), dim=-1)
        X2 = X + (P @ (H1 @ Wv)) @ Wo
        H2 = F.layer_norm(X2, (d,), g2[0], bt2[0], eps=EPS)
        return (R * (X2 + torch.relu(H2 @ W1 + b1) @ W2 + b2)).sum()

    return {"batch norm": bn, "layer norm": ln, "self-attention": attention, "transformer block": transformer}[name]


def jax_layer(name: str):
    import jax
    import jax.numpy as jnp

    def norm(Z, gamma, beta, axis):
        mu = Z.mean(axis, keepdims=True)
        C = Z - mu
        return C / jnp.sqrt((C * C).mean(axis, keepdims=True) + EPS) * gamma + beta

    def bn(Z, R, gamma, beta):
        return jnp.vdot(R, norm(Z, gamma, beta, 0))

    def ln(Z, R, gamma, beta):
        return jnp.vdot(R, norm(Z, gamma, beta, 1))

    def attention(X, R, Wq, Wk, Wv):
        Q, K, V = X @ Wq, X @ Wk, X @ Wv
        P = jax.nn.softmax((Q @ jnp.swapaxes(K, -1, -2)) / np.sqrt(Wq.shape[1]), axis=-1)
        return jnp.vdot(R, P @ V)

    def transformer(X, R, g1, bt1, Wq, Wk, Wv, Wo, g2, bt2, W1, b1, W2, b2):
        d = X.shape[1]
        H1 = norm(X, g1, bt1, 1)
        P = jax.nn.softmax((H1 @ Wq) @ (H1 @ Wk).T / np.sqrt(d), axis=-1)
        X2 = X + (P @ (H1 @ Wv)) @ Wo
        H2 = norm(X2, g2, bt2, 1)
        return jnp.vdot(R, X2 + jax.nn.relu(H2 @ W1 + b1) @ W2 + b2)

    return {"batch norm": bn, "layer norm": ln, "self-attention": attention, "transformer block": transformer}[name]


def _transformer_lines(sizes: dict) -> list[str]:
    return [*_norm_lines("X", "ln1", "cols"), *_attention_lines("ln1", "A", sizes["d"]),
            "X2 = X + A*Wo", *_norm_lines("X2", "ln2", "cols"),
            "U = ln2*W1 + ones(n,1)*b1", "M = relu(U)", "Yo = X2 + M*W2 + ones(n,1)*b2"]


_NORM_SHAPES = {"Z": ("n", "d"), "R": ("n", "d"), "out_gamma": (1, "d"), "out_beta": (1, "d")}
LAYERS = (
    Layer("batch norm", lambda s: _norm_lines("Z", "out", "rows"), _NORM_SHAPES, ("out_gamma", "out_beta"),
          hand_batchnorm, {"n": 4096, "d": 1024}, {"n": 64, "d": 32}),
    Layer("layer norm", lambda s: _norm_lines("Z", "out", "cols"), _NORM_SHAPES, ("out_gamma", "out_beta"),
          hand_layernorm, {"n": 4096, "d": 1024}, {"n": 64, "d": 32}),
    Layer("self-attention", lambda s: _attention_lines("X", "out", s["d"]),
          {"X": ("n", "d"), "R": ("n", "d"), "Wq": ("d", "d"), "Wk": ("d", "d"), "Wv": ("d", "d")},
          ("Wq", "Wk", "Wv"), hand_attention, {"n": 512, "d": 64}, {"n": 32, "d": 16}, batch=8),
    Layer("transformer block", _transformer_lines,
          {"X": ("n", "d"), "R": ("n", "d"), "ln1_gamma": (1, "d"), "ln1_beta": (1, "d"), "Wq": ("d", "d"),
           "Wk": ("d", "d"), "Wv": ("d", "d"), "Wo": ("d", "d"), "ln2_gamma": (1, "d"), "ln2_beta": (1, "d"),
           "W1": ("d", "f"), "b1": (1, "f"), "W2": ("f", "d"), "b2": (1, "d")},
          ("ln1_gamma", "ln1_beta", "Wq", "Wk", "Wv", "Wo", "ln2_gamma", "ln2_beta", "W1", "b1", "W2", "b2"),
          hand_transformer, {"n": 256, "d": 256, "f": 1024}, {"n": 16, "d": 8, "f": 12}),
)


def network(layer: Layer, sizes: dict):
    """The layer as a ``derive.Network``: each line of its program a stage, f = tr(Rᵀ·out)."""
    import sympy
    from sympy import MatrixSymbol

    from derive.networks import Network
    from derive.parse import parse

    shapes = dict(layer.shapes)
    stages = []
    for line in layer.lines(sizes):
        name, text = (t.strip() for t in line.split("=", 1))
        p = parse(text, shapes, infer=False)
        shapes[name] = p.shape
        stages.append((MatrixSymbol(name, *p.shape), p.expr))
    symbols = {s.name: s for _, e in stages for s in e.atoms(MatrixSymbol)}
    symbols["R"] = parse("R", shapes, infer=False).expr
    wrt = _wrt(layer)
    return Network(inputs=tuple(symbols[k] for k in layer.shapes if k not in wrt),
                   params=tuple(symbols[k] for k in wrt), stages=tuple(stages),
                   loss=sympy.Trace(symbols["R"].T * stages[-1][0]), name=layer.name)


def _wrt(layer: Layer) -> tuple[str, ...]:
    """The names a step differentiates by: the parameters, and the input Z of a norm."""
    return (("Z",) if "Z" in layer.shapes else ()) + layer.params


def kernel_for(layer: Layer, sizes: dict):
    """The compiled kernel (loss and gradients of every parameter) and its argument names."""
    import derive
    import numeric
    from derive.kernel_stages import kernel_stages

    stages, outputs, args = kernel_stages(derive.backprop(network(layer, sizes)))
    return numeric.compile(outputs, args, stages=stages, name="step"), [a.name for a in args]


def make_data(layer: Layer, sizes: dict, dtype, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in layer.shapes.items():
        shape = tuple(sizes[x] if isinstance(x, str) else x for x in shape)
        if layer.batch > 1 and name in ("X", "R"):
            shape = (layer.batch, *shape)
        a = rng.standard_normal(shape)
        if name.startswith("W"):
            a /= np.sqrt(shape[0])
        if name.endswith("gamma"):
            a = 1.0 + 0.1 * a
        out[name] = a.astype(dtype)
    return out


# ----- the implementations as steps over one data dict --------------------------------------------
def _batched(step: Callable, data: dict, names: list[str], batch: int):
    """Σ over the batch of the per-sequence step (loss and parameter gradients)."""
    per = [data[k] for k in names]
    total = None
    for b in range(batch):
        out = step(*[a[b] if k in ("X", "R") else a for k, a in zip(names, per)])
        total = list(out) if total is None else [t + o for t, o in zip(total, out)]
    return total


def tracegrad_step(layer: Layer, sizes: dict):
    kernel, names = kernel_for(layer, sizes)
    if layer.batch > 1:
        return lambda data: _batched(kernel, data, names, layer.batch)
    return lambda data: kernel(*[data[k] for k in names])


def numpy_step(layer: Layer):
    names = list(layer.shapes)
    if layer.batch > 1:
        return lambda data: _batched(layer.hand, data, names, layer.batch)
    return lambda data: layer.hand(*[data[k] for k in names])


def torch_step(layer: Layer, data: dict):
    import torch

    loss = torch_layer(layer.name)
    names = list(layer.shapes)
    wrt = _wrt(layer)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()}

    def step(_data):
        leaves = {k: t.requires_grad_() if k in wrt else t for k, t in tensors.items()}
        f = loss(*[leaves[k] for k in names])
        return f, torch.autograd.grad(f, [leaves[k] for k in wrt])
    return step


def jax_step(layer: Layer, data: dict):
    import jax

    jax.config.update("jax_enable_x64", True)
    loss = jax_layer(layer.name)
    names = list(layer.shapes)
    wrt = tuple(names.index(k) for k in _wrt(layer))
    fn = jax.jit(jax.value_and_grad(loss, argnums=wrt))
    arrays = [jax.numpy.asarray(data[k]) for k in names]
    return lambda _data: jax.block_until_ready(fn(*arrays))


def installed(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    return __import__(module).__version__


def best_of(fns: dict[str, Callable], data: dict, repeat: int, budget: float) -> dict[str, float]:
    """The minimum time of each function over ``repeat`` rounds, the functions interleaved in each round
    (so that a busy moment of the shared machine hits all of them), stopping after ``budget`` seconds."""
    for fn in fns.values():
        fn(data)  # warm-up (jit, caches)
    best = dict.fromkeys(fns, float("inf"))
    start = time.perf_counter()
    for i in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(data)
            best[name] = min(best[name], time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() - start > budget:
            break
    return best


def check(tg_out, np_out, dtype) -> float:
    """Max relative difference between the kernel's outputs and the hand-written ones."""
    worst = 0.0
    for a, b in zip(tg_out, np_out):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        worst = max(worst, float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))))
    return worst


def run(quick: bool, repeat: int, layers=LAYERS, dtypes=("float32", "float64"),
        peers: bool = True) -> tuple[list[dict], dict]:
    """Time tracegrad and NumPy here, each peer in its own process (PyTorch's and JAX's thread pools
    slow NumPy's BLAS down in a process they share), row by row."""
    peers = {"PyTorch": installed("torch") if peers else None, "JAX": installed("jax") if peers else None}
    for peer, version in peers.items():
        if version is None:
            print(f"note: {peer} is not installed; its column is skipped", flush=True)
    rows = []
    for layer in layers:
        sizes = layer.quick if quick else layer.sizes
        t0 = time.perf_counter()
        tg = tracegrad_step(layer, sizes)
        compile_s = time.perf_counter() - t0
        hand = numpy_step(layer)
        for dt in dtypes:
            data = make_data(layer, sizes, dt)
            tg_out, np_out = tg(data), hand(data)
            assert all(np.asarray(o).dtype == np.dtype(dt) for o in tg_out), "the kernel changed the dtype"
            err = check(tg_out, np_out, dt)
            assert err < (1e-8 if dt == "float64" else 1e-2), f"{layer.name} {dt}: kernel and NumPy differ by {err}"
            row = {"layer": layer.name, "dtype": dt, "sizes": sizes, "batch": layer.batch,
                   "compile": compile_s, "err": err}
            row.update(best_of({"tracegrad": tg, "NumPy": hand}, data, repeat, 0.5 if quick else 60.0))
            for peer, version in peers.items():
                if version:
                    row[peer] = peer_time(peer, layer, dt, quick, repeat)
            print(f"{layer.name} {dt}: " + ", ".join(f"{k} {row[k] * 1e3:.2f} ms" for k in
                                                    ("tracegrad", "NumPy", "PyTorch", "JAX") if k in row), flush=True)
            rows.append(row)
    return rows, peers


def peer_time(peer: str, layer: Layer, dt: str, quick: bool, repeat: int) -> float:
    """The best time of ``peer`` (PyTorch, JAX) for one row, measured in a process of its own."""
    import json
    import subprocess

    cmd = [sys.executable, __file__, "--peer", peer, "--layer", layer.name, "--dtype", dt,
           "--repeat", str(repeat), *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _threads() -> int:
    """The threads each library may use: ``OMP_NUM_THREADS`` (set it, with OPENBLAS_NUM_THREADS, to 1 for
    steady single-core figures on a shared machine), else every core of this process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(os.environ.get("OMP_NUM_THREADS", cores))


def peer_threads(peer: str) -> None:
    """Give the peer (PyTorch, JAX) :func:`_threads` threads, before its first computation."""
    threads = _threads()
    if peer == "PyTorch":
        import torch
        torch.set_num_threads(threads)
    elif threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options of a benchmark with peers: --quick, --repeat, --markdown, --no-peers, and --peer (one
    row of a peer in a process of its own)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (seconds)")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--markdown", type=Path, help="write the results to this Markdown file")
    ap.add_argument("--no-peers", action="store_true", help="time tracegrad and NumPy only")
    ap.add_argument("--peer", choices=("PyTorch", "JAX"), help=argparse.SUPPRESS)
    return ap


def _peer_main(peer: str, name: str, dt: str, quick: bool, repeat: int) -> None:
    import json

    layer = next(layer for layer in LAYERS if layer.name == name)
    data = make_data(layer, layer.quick if quick else layer.sizes, dt)
    peer_threads(peer)
    step = (torch_step if peer == "PyTorch" else jax_step)(layer, data)
    print(json.dumps(best_of({peer: step}, data, repeat, 0.5 if quick else 60.0)[peer]))


def table(rows: list[dict], peers: dict) -> str:
    cols = ["NumPy", *(p for p, v in peers.items() if v)]
    head = ["layer", "sizes", "dtype", "tracegrad (ms)", *(f"{c} (ms)" for c in cols),
            *(f"tracegrad/{c}" for c in cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in r["sizes"].items()) + (f", batch {r['batch']}" if r["batch"] > 1 else "")
        cells = [r["layer"], sizes, r["dtype"], f"{r['tracegrad'] * 1e3:.2f}",
                 *(f"{r[c] * 1e3:.2f}" for c in cols), *(f"{r['tracegrad'] / r[c]:.2f}×" for c in cols)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {cores} cores, {_threads()} thread(s) per library (shared with other processes: load average "
            f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}), Python {platform.python_version()}, "
            f"NumPy {np.__version__}")


def document(rows: list[dict], peers: dict, repeat: int) -> str:
    versions = "; ".join(f"{p} {v}" if v else f"{p} not installed" for p, v in peers.items())
    compile_times = ", ".join(f"{r['layer']} {r['compile']:.2f} s" for r in rows if r["dtype"] == "float32")
    return f"""# Benchmarks: layer kernels against NumPy, PyTorch and JAX

Generated by `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_layers.py --markdown docs/benchmarks-layers.md`
(one thread per library: the machine's two cores are shared with other jobs, and two threads each
there gave times that varied tenfold between runs).

Each row times one step: the loss f = tr(Rᵀ·out) (R fixed and random, so ∂f/∂out = R as inside
a network) and the gradients of every parameter (and of Z for the two norms).  "tracegrad" is the
kernel `numeric.compile` makes from the layer typed as raw matrix algebra in the expression
language, derived stage by stage by `derive.backprop` (`benchmarks/bench_layers.py`, `LAYERS`);
"NumPy" is the forward and backward pass written by hand; PyTorch is eager autograd on the CPU
(`F.batch_norm`, `F.layer_norm`, batched matmuls); JAX is `jax.jit(jax.value_and_grad)`.
Attention runs the batch of 8 sequences as a loop for tracegrad and NumPy, batched for PyTorch and
JAX.  Times: minimum over up to {repeat} rounds; tracegrad and NumPy interleaved in one process, each peer in a process of its own (their thread pools slow NumPy's BLAS down in a shared one).  Goals of issue 10: ≤ 1.10× NumPy
and ≤ 1.0× PyTorch at every row.  Compile (derive + compile) times: {compile_times}.

Peers: {versions}.  Machine: {machine()}.

{table(rows, peers)}
"""


def main(argv: list[str] | None = None) -> None:
    ap = arguments(__doc__)
    ap.add_argument("--layer", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    repeat = ns.repeat or (3 if ns.quick else 10)
    if ns.peer:
        _peer_main(ns.peer, ns.layer, ns.dtype, ns.quick, repeat)
        return
    rows, peers = run(ns.quick, repeat, peers=not ns.no_peers)
    print(table(rows, peers))
    if ns.markdown:
        ns.markdown.write_text(document(rows, peers, repeat), encoding="utf-8")


if __name__ == "__main__":
    main()
