"""Load test of ``tracegrad serve``: many clients at once on loopback, a pathological input among them.

Starts ``python -m derive serve`` (uvicorn, the worker pool) on 127.0.0.1 at a free port in a
subprocess, then sends ``--requests`` requests from ``--clients`` concurrent clients (threads, one
HTTP connection each): a mix of the editor's examples (``/api/derive``), answers to check
(``/api/check``, right and wrong) and an expression, with one pathological input every 50 requests
(``tr(X^100)``, a 5,000-term sum, 1,000 nested brackets, in turn), which must be refused as "too
large" (422).  Reports the errors (anything else than 200, or than the intended refusal), the
latency percentiles p50/p95/p99 of the ordinary requests and of the refusals, and the throughput.

    python benchmarks/bench_serve.py [--requests 500] [--clients 20] [--workers 2] \\
        [--markdown docs/benchmarks-serve.md]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from derive.serve.examples import EXAMPLES  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_layers import machine  # noqa: E402

SEED = next(e["program"] for e in EXAMPLES if e["id"] == "seed")
LSQ = {"expression": "norm2(X*W - Y)^2", "shapes": {"X": ["n", "d"], "W": ["d", "k"], "Y": ["n", "k"]},
       "wrt": ["W"]}
PATHOLOGICAL = [
    ("tr(X^100)", {"expression": "tr(X^100)", "shapes": {"X": ["n", "n"]}, "wrt": ["X"]}),
    ("5,000-term sum", {"expression": " + ".join(["tr(X)"] * 5000), "shapes": {"X": ["n", "n"]}, "wrt": ["X"]}),
    ("1,000 nested brackets", {"expression": "(" * 1000 + "tr(X)" + ")" * 1000, "shapes": {"X": ["n", "n"]},
                               "wrt": ["X"]}),
]


@dataclass(frozen=True)
class Job:
    label: str
    path: str
    body: dict
    status: int            # the expected status
    kind: str = ""         # the expected error kind, for a refusal


def _example(e: dict) -> Job:
    fields = {k: e[k] for k in ("program", "expression", "shapes", "wrt", "order") if k in e}
    return Job(f"derive {e['id']}", "/api/derive", fields, 200)


ORDINARY = [
    *(_example(e) for e in EXAMPLES),
    Job("derive expression", "/api/derive", LSQ, 200),
    Job("check right", "/api/check", {"program": SEED, "answer": "2*H'*(Ypred - Y)", "wrt": "W2"}, 200),
    Job("check wrong", "/api/check", {"program": SEED, "answer": "2*X'*((Ypred - Y)*W2')", "wrt": "W1"}, 200),
    Job("check latex", "/api/check", {"answer": r"2X^T[(Y_{pred} - Y)W_2^T \odot \sigma'(h)]", "wrt": "W1"}, 200),
    Job("derive zh", "/api/derive", {"program": SEED, "lang": "zh"}, 200),
]


def plan(requests: int) -> list[Job]:
    """The requests in order: the ordinary ones in turn, and the 11th, 61st, 111th, … a pathological input.

    >>> [j.label for j in plan(100)].count("too large: tr(X^100)")
    1
    """
    out, bad = [], 0
    for i in range(requests):
        if i % 50 == 10:
            label, body = PATHOLOGICAL[bad % len(PATHOLOGICAL)]
            out.append(Job(f"too large: {label}", "/api/derive", body, 422, "too_large"))
            bad += 1
        else:
            out.append(ORDINARY[i % len(ORDINARY)])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, cache: int = 256, timeout: float = 120.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.Popen([sys.executable, "-m", "derive", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--cache", str(cache)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not answer within {timeout:g} s")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 99)
    (2.0, 4.0)
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def run(requests: int, clients: int, workers: int, cache: int = 256) -> dict:
    """Start the server (keeping ``cache`` answers), warm its workers, send the requests, stop it; the
    figures."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, workers, cache)
    local = threading.local()
    try:
        with httpx.Client(base_url=base, timeout=120.0) as warm:
            for _ in range(workers):   # every worker once: the first derivation fills its caches
                warm.post("/api/derive", json=LSQ)

        def send(job: Job) -> dict:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, timeout=120.0)
            start = time.perf_counter()
            try:
                r = local.client.post(job.path, json=job.body)
                status, kind = r.status_code, (r.json().get("kind", "") if r.status_code != 200 else "")
            except httpx.HTTPError as e:
                status, kind = 0, type(e).__name__
            seconds = time.perf_counter() - start
            ok = status == job.status and kind == job.kind
            return {"label": job.label, "status": status, "kind": kind, "seconds": seconds, "ok": ok,
                    "refusal": job.status != 200}

        jobs = plan(requests)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            results = list(pool.map(send, jobs))
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    ordinary = [r["seconds"] for r in results if not r["refusal"]]
    refusals = [r for r in results if r["refusal"]]
    errors = [r for r in results if not r["ok"]]
    return {
        "requests": requests, "clients": clients, "workers": workers, "cache": cache, "wall_s": wall,
        "throughput": requests / wall, "errors": len(errors),
        "error_examples": [f"{r['label']}: {r['status']} {r['kind']}" for r in errors[:5]],
        "refusals": len(refusals), "refusals_ok": sum(r["ok"] for r in refusals),
        "p50": percentile(ordinary, 50), "p95": percentile(ordinary, 95), "p99": percentile(ordinary, 99),
        "refusal_p50": percentile([r["seconds"] for r in refusals], 50),
        "refusal_max": max((r["seconds"] for r in refusals), default=float("nan")),
        "labels": sorted({r["label"] for r in results}),
    }


def document(runs: list[dict]) -> str:
    """The figures of one run per cache setting, as Markdown."""
    ms = lambda s: f"{1000 * s:.0f} ms"
    r = runs[0]
    caches = ",".join(str(x["cache"]) for x in runs)
    head = "| | " + " | ".join(f"answers kept: {x['cache']}" + (" (default)" if x["cache"] == 256 else "")
                               for x in runs) + " |"
    rows = [
        ("errors", lambda x: f"**{x['errors']}**"),
        ("intended refusals (\"too large\", 422)", lambda x: f"{x['refusals_ok']} of {x['refusals']}"),
        ("latency p50 / p95 / p99 (ordinary requests)", lambda x: f"{ms(x['p50'])} / {ms(x['p95'])} / {ms(x['p99'])}"),
        ("latency of a refusal: median / slowest", lambda x: f"{ms(x['refusal_p50'])} / {ms(x['refusal_max'])}"),
        ("throughput", lambda x: f"{x['throughput']:.1f} requests/s ({x['wall_s']:.1f} s in all)"),
    ]
    table = "\n".join([head, "|---" * (len(runs) + 1) + "|",
                       *(f"| {label} | " + " | ".join(cell(x) for x in runs) + " |" for label, cell in rows)])
    return f"""# Benchmark: `tracegrad serve` under load

Generated by `python benchmarks/bench_serve.py --requests {r['requests']} --clients {r['clients']} --workers {r['workers']} --cache {caches} --markdown docs/benchmarks-serve.md`.

The server (`tracegrad serve`: uvicorn, {r['workers']} worker processes, 10 s and 2 GiB per request) runs on
127.0.0.1 in a process of its own; {r['clients']} clients (threads, one HTTP connection each) send
{r['requests']} requests between them, each as soon as its previous one is answered: the editor's examples
(`/api/derive`: {', '.join(e['id'] for e in EXAMPLES)}), an expression, the seed in Chinese, and answers to check
(`/api/check`, right, wrong and in LaTeX), with one pathological input every 50 requests (`tr(X^100)`,
a 5,000-term sum, 1,000 nested brackets, in turn), which the server must refuse as "too large" (422).
An error is any other answer than 200 for an ordinary request, or than the 422 "too_large" refusal.
"Answers kept" is `tracegrad serve --cache N`: the server answers a request asked again (the same
fields) from the answers it keeps, and one asked while the same is being worked on waits for that
work; with 0 every request is derived, checked or refused by a worker.

Machine: {machine()} (the figure of threads is this script's; the server's workers run one each).

{table}

The latency includes the wait for a free worker (with {r['clients']} clients and {r['workers']} workers most of it,
without kept answers); that wait is bounded (30 s, then 503 "busy").  A text longer than the
parser's limits (the 5,000-term sum, the 1,000 brackets) is refused before it waits for a worker;
`tr(X^100)` is refused by the worker as soon as it is parsed.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--workers", type=int, default=2, help="the server's worker processes")
    p.add_argument("--cache", default="256", metavar="N[,N…]",
                   help="answers the server keeps (tracegrad serve --cache); several: one run each (e.g. 256,0)")
    p.add_argument("--markdown", metavar="FILE.md", help="write the figures as Markdown (docs/benchmarks-serve.md)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.requests < 1 or args.clients < 1 or args.workers < 1:
        p.error("--requests, --clients and --workers must be positive")
    try:
        caches = [int(x) for x in args.cache.split(",")]
    except ValueError:
        p.error(f"--cache: expected numbers such as 256 or 256,0, got {args.cache!r}")
    runs = [run(args.requests, args.clients, args.workers, cache) for cache in caches]
    for r in runs:
        if args.json:
            print(json.dumps(r, indent=2))
            continue
        print(f"{r['requests']} requests, {r['clients']} clients, {r['workers']} workers, {r['cache']} answers kept: "
              f"{r['errors']} errors, {r['refusals_ok']}/{r['refusals']} intended refusals; p50 {1000 * r['p50']:.0f} ms, "
              f"p95 {1000 * r['p95']:.0f} ms, p99 {1000 * r['p99']:.0f} ms; {r['throughput']:.1f} requests/s")
        for line in r["error_examples"]:
            print("  error:", line)
    if args.markdown:
        Path(args.markdown).write_text(document(runs), encoding="utf-8")
    return 1 if any(r["errors"] for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
