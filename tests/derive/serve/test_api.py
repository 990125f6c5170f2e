"""The web app's JSON API (docs/api.md) through Starlette's test client: every endpoint, every class of
error, and the answers against independent oracles (the seed's gradients in the project's notation;
the generated NumPy module against central finite differences of a forward pass written by hand)."""
from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():   # Starlette ≥ 1.x would rather have httpx2; httpx still serves
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from derive.cli import main
from derive.grading import seed_writeup
from derive.serve.app import create_app
from derive.serve.jobs import MAX_MATRIX_POWER
from tests.oracle import fd_gradient, np_logsoftmax, rel_err, seed_data, seed_loss

ROOT = Path(__file__).resolve().parents[3]
SEED = (ROOT / "docs" / "gallery" / "seed.tg").read_text(encoding="utf-8")
# the seed write-up's ∂f/∂W1 in the project's notation (README, docs/seed-derivation.en.md)
SEED_W1 = "2Xᵀ[((Ypred − Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 − σ(h))]"
LSQ = {"expression": "norm2(X*W - Y)^2", "shapes": {"X": ["n", "d"], "W": ["d", "k"], "Y": ["n", "k"]},
       "wrt": ["W"]}
PATHOLOGICAL = {
    "power": {"expression": "tr(X^100)", "shapes": {"X": ["n", "n"]}, "wrt": ["X"]},
    "sum": {"expression": " + ".join(["tr(X)"] * 5000), "shapes": {"X": ["n", "n"]}, "wrt": ["X"]},
    "nesting": {"expression": "(" * 1000 + "tr(X)" + ")" * 1000, "shapes": {"X": ["n", "n"]}, "wrt": ["X"]},
    "program sum": {"program": "X: n×d; param W: d×k\nf = " + " + ".join(["sum(X*W)"] * 5000)},
}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(pool_size=2, time_limit=30.0)) as c:
        yield c


def _error(r, status: int, kind: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["kind"] == kind, body
    assert set(body) >= {"error", "kind", "line", "column", "field"}
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body


# ------------------------------------------------------------------------------------ page, examples

def test_page_and_static_files_are_served_with_a_strict_policy(client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert client.get("/static/index.html").status_code == 200
    # no network: every script, style and font is the app's own (or inline data)
    for kind, url in re.findall(r'<(?:script|link|img|iframe)\b[^>]*?\b(src|href)="([^"]*)"', r.text):
        assert url.startswith(("/static/", "data:")), (kind, url)
        if url.startswith("/static/"):
            served = client.get(url)
            assert served.status_code == 200
            assert not re.search(r"""(?:url\(|@import|src=|fetch\()\s*['"]?(?:https?:)?//""", served.text), url
    _error(client.get("/static/missing.js"), 404, "input")
    _error(client.get("/api/nowhere"), 404, "input")
    _error(client.get("/api/derive"), 405, "input")


def test_examples_are_the_gallery_programs_and_a_hessian_and_each_derives(client) -> None:
    examples = client.get("/api/examples").json()
    ids = [e["id"] for e in examples]
    assert ids == ["seed", "softmax_regression", "batchnorm", "attention", "logistic_hessian"]
    for e in examples:
        assert e["title"].isascii() and any("\u4e00" <= c <= "\u9fff" for c in e["title_zh"]), e
        if "program" in e:
            assert e["program"] == (ROOT / "docs" / "gallery" / f"{e['id']}.tg").read_text(encoding="utf-8")

    def derive(e: dict):
        return client.post("/api/derive", json={k: e[k] for k in ("program", "expression", "shapes", "wrt", "order")
                                                if k in e})

    with ThreadPoolExecutor(2) as pool:   # both workers at once
        for e, r in zip(examples, pool.map(derive, examples)):
            assert r.status_code == 200, (e["id"], r.text)
            assert r.json()["hessians" if e["kind"] == "hessian" else "gradients"]


def test_a_defect_of_tracegrad_is_still_one_line_of_json(monkeypatch) -> None:
    monkeypatch.setattr("derive.serve.api.EXAMPLES", [object()])   # not JSON: the handler fails
    with TestClient(create_app(pool_size=1), raise_server_exceptions=False) as c:
        body = _error(c.get("/api/examples"), 500, "internal")
        assert body["error"].startswith("internal error (TypeError")


def test_health(client) -> None:
    assert client.get("/api/health").json()["workers"] == 2


# ------------------------------------------------------------------------------------------- derive

def test_derive_the_seed_program(client) -> None:
    r = client.post("/api/derive", json={"program": SEED})
    assert r.status_code == 200
    body = r.json()
    assert body["gradients"]["W1"].replace("-", "−") == SEED_W1
    assert body["gradients"]["W2"].replace("-", "−") == "2Hᵀ(Ypred − Y)"
    assert set(body["gradients"]) == {"W1", "b1", "W2", "b2"}
    html = body["html"]
    assert html.count("<details") == 8 and "<math" in html and "<script" not in html and "<html" not in html
    assert (r'data-latex="\Rightarrow \frac{\partial f}{\partial W_1} = 2X^T\left[\left((Y_{pred} - Y)W_2^T\right) '
            r'\odot \sigma(h) \odot (\mathbf{1} - \sigma(h))\right]"') in html
    assert body["latex"].startswith("% !TEX") and r"\begin{document}" in body["latex"]
    assert "document" not in body


def test_derive_in_chinese_and_in_every_format(client) -> None:
    zh = client.post("/api/derive", json={"program": SEED, "lang": "zh"}).json()
    assert "推导" in zh["html"] and "ctexart" in zh["latex"]
    for fmt, mark in (("markdown", "#"), ("latex", r"\begin{document}"), ("text", "df")):
        body = client.post("/api/derive", json={**LSQ, "format": fmt}).json()
        assert body["format"] == fmt and mark in body["document"]


def test_derive_an_expression_and_a_hessian(client) -> None:
    body = client.post("/api/derive", json={**LSQ, "wrt": "W"}).json()
    assert body["gradients"] == {"W": "2Xᵀ(XW - Y)"}
    body = client.post("/api/derive", json={"expression": "x'*A*x", "shapes": {"x": ["n", 1], "A": ["n", "n"]},
                                           "wrt": ["x"], "order": 2}).json()
    assert body["hessians"] == {"x": "A + Aᵀ"}   # the Matrix Cookbook's (81)
    logistic = {"expression": "sum(softplus(X*w)) - y'*X*w", "shapes": {"X": ["n", "d"], "w": ["d", 1],
                                                                       "y": ["n", 1]}, "wrt": ["w"], "order": 2}
    # Xᵀ diag(p ⊙ (1 − p)) X with p = σ(Xw): logistic regression's Hessian
    assert client.post("/api/derive", json=logistic).json()["hessians"] == {"w": "Xᵀdiag(σ(Xw) ⊙ (𝟏ₙ - σ(Xw)))X"}


# -------------------------------------------------------------------------------------- input errors

def test_a_syntax_error_names_its_line_and_column(client) -> None:
    body = _error(client.post("/api/derive", json={"program": "X: n×d\nparam W: d×k\nf = sum(X*W"}), 422, "input")
    assert (body["line"], body["column"], body["field"]) == (3, 8, "program")
    body = _error(client.post("/api/derive", json={**LSQ, "expression": "norm2(X*W - Y))^2"}), 422, "input")
    assert (body["line"], body["column"], body["field"]) == (1, 15, "expression")


def test_an_unknown_name_and_a_shape_mismatch(client) -> None:
    body = _error(client.post("/api/derive", json={"program": "X: n×d\nparam W: d×k\nf = sum(X*V)"}), 422, "input")
    assert (body["line"], body["column"]) == (3, 11) and "unknown name 'V'" in body["error"]
    body = _error(client.post("/api/derive", json={"program": "X: n×d\nparam W: d×k\nf = sum(X*W*X)"}),
                  422, "input")
    assert (body["line"], body["column"]) == (3, 12) and "matrix product" in body["error"]
    body = _error(client.post("/api/derive", json={**LSQ, "wrt": ["Q"]}), 422, "input")
    assert "Q" in body["error"] and body["field"] == "wrt"
    _error(client.post("/api/derive", json={**LSQ, "expression": "X*W"}), 422, "input")   # not a scalar


@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_pathological_inputs_are_refused_quickly_as_too_large(client, case: str) -> None:
    start = time.perf_counter()
    body = _error(client.post("/api/derive", json=PATHOLOGICAL[case]), 422, "too_large")
    assert time.perf_counter() - start < 5
    assert body["error"].startswith("too large:") and body["column"] is not None
    if case == "power":
        assert body["column"] == 5 and str(MAX_MATRIX_POWER) in body["error"]


def test_bad_json_and_wrong_field_types(client) -> None:
    _error(client.post("/api/derive", content=b"{not json", headers={"content-type": "application/json"}),
           400, "input")
    _error(client.post("/api/derive", content="[1, 2]"), 400, "input")
    _error(client.post("/api/derive", content=b"\xff\xfe"), 400, "input")
    _error(client.post("/api/derive", content=b"[" * 100_000), 400, "input")
    _error(client.post("/api/derive", content=b'{"order": ' + b"9" * 5000 + b"}"), 400, "input")
    cases = [({"program": 5}, "program"), ({"expression": ["tr(X)"]}, "expression"),
             ({**LSQ, "shapes": [["n", "d"]]}, "shapes"), ({**LSQ, "shapes": {"X": ["n"]}}, "shapes"),
             ({**LSQ, "shapes": {"X": ["n", -1]}}, "shapes"), ({**LSQ, "wrt": 3}, "wrt"),
             # digits that are not ASCII, or a number past any size: refused as dimensions, not a 500
             ({**LSQ, "shapes": {"X": ["²", "d"]}}, "shapes"), ({**LSQ, "shapes": {"X": ["١٢", "d"]}}, "shapes"),
             ({**LSQ, "shapes": {"X": ["9" * 5000, "d"]}}, "shapes"),
             ({**LSQ, "wrt": ["W 1"]}, "wrt"), ({**LSQ, "order": 3}, "order"), ({**LSQ, "order": True}, "order"),
             ({"program": SEED, **LSQ}, "expression"), ({}, "program"), ({"program": SEED, "order": 2}, "order")]
    for fields, field in cases:
        assert _error(client.post("/api/derive", json=fields), 422, "input")["field"] == field, fields


def test_unsupported_lang_format_backend_and_syntax(client) -> None:
    assert _error(client.post("/api/derive", json={**LSQ, "lang": "fr"}), 422, "input")["field"] == "lang"
    assert _error(client.post("/api/derive", json={**LSQ, "format": "pdf"}), 422, "input")["field"] == "format"
    assert _error(client.post("/api/codegen", json={**LSQ, "backend": "fortran"}), 422, "input")["field"] == "backend"
    assert _error(client.post("/api/check", json={"answer": "W2", "wrt": "W2", "syntax": "mathml"}),
                  422, "input")["field"] == "syntax"


def test_bodies_over_the_limit_are_refused_before_they_are_read(client) -> None:
    body = _error(client.post("/api/derive", content=b"x" * (256 * 1024 + 1)), 413, "body_too_large")
    assert "262144" in body["error"]

    def chunks():   # no Content-Length: refused while reading
        for _ in range(40):
            yield b" " * 8192
    _error(client.post("/api/derive", content=chunks()), 413, "body_too_large")
    big = b"$$f = \\|W\\|_F^2$$\n" * (1024 * 1024 // 16)
    _error(client.post("/api/grade", files={"file": ("big.md", big)}), 413, "body_too_large")


# -------------------------------------------------------------------------------------------- check

def test_check_a_right_and_a_wrong_answer(client) -> None:
    right = client.post("/api/check", json={"answer": "2*H'*(Ypred - Y)", "wrt": "W2"}).json()
    assert right["correct"] is True
    latex = client.post("/api/check", json={"answer": r"2X^T[(Y_{pred} - Y)W_2^T \odot \sigma'(h)]", "wrt": "W1",
                                            "syntax": "latex", "program": SEED}).json()
    assert latex["correct"] is True
    wrong = client.post("/api/check", json={"answer": "2*X'*((Ypred - Y)*W2')", "wrt": "W1"}).json()
    assert wrong["correct"] is False and wrong["diagnosis_text"] and 'class="verdict bad"' in wrong["diagnosis_html"]
    zh = client.post("/api/check", json={"answer": "2*X'*((Ypred - Y)*W2')", "wrt": "W1", "lang": "zh"}).json()
    assert zh["correct"] is False and zh["diagnosis_text"] != wrong["diagnosis_text"]
    lsq = client.post("/api/check", json={**LSQ, "answer": "2*X'*(X*W - Y)", "wrt": "W"}).json()
    assert lsq["correct"] is True
    assert client.post("/api/check", json={**LSQ, "answer": "X'*(X*W - Y)", "wrt": "W"}).json()["correct"] is False


def test_check_errors(client) -> None:
    body = _error(client.post("/api/check", json={"answer": "2*H'*(Ypred - Y", "wrt": "W2"}), 422, "input")
    assert body["field"] == "answer" and body["column"] == 6 and "never closed" in body["error"]
    assert _error(client.post("/api/check", json={"answer": "W2", "wrt": "Q"}), 422, "input")["field"] == "wrt"
    assert _error(client.post("/api/check", json={"wrt": "W2"}), 422, "input")["field"] == "answer"
    assert _error(client.post("/api/check", json={"answer": 2, "wrt": "W2"}), 422, "input")["field"] == "answer"
    assert _error(client.post("/api/check", json={**LSQ, "answer": "2*X'*(X*W - Y)", "wrt": "W", "order": 2}),
                  422, "input")["field"] == "order"
    body = _error(client.post("/api/check", json={**LSQ, "expression": "norm2(X*W - Y)^2; g = 1", "answer": "W",
                                                  "wrt": "W"}), 422, "input")
    assert (body["field"], body["column"]) == ("expression", 17)


# -------------------------------------------------------------------------------------------- grade

WRITEUP = ("$$f = \\|XW - Y\\|_F^2$$\n\n"
           "$$\\frac{\\partial f}{\\partial W} = 2X^T(XW - Y)$$\n\n"
           "$$\\frac{\\partial f}{\\partial W} = X^T(XW - Y)$$\n")


def test_grade_a_write_up_as_json_and_as_an_upload(client) -> None:
    shapes = {"X": ["n", "d"], "W": ["d", "k"]}
    body = client.post("/api/grade", json={"text": WRITEUP, "shapes": shapes}).json()
    assert body["first_wrong_line"] == 5
    assert [e["verdict"] for e in body["entries"]] == ["correct", "correct", "wrong"]
    assert "<table" in body["report_html"] and "<html" not in body["report_html"] and body["report_text"]
    right = WRITEUP.rsplit("$$\n\n", 1)[0] + "$$\n"
    up = client.post("/api/grade", files={"file": ("lsq.md", right.encode())},
                     data={"lang": "zh", "program": "X: n×d; Y: n×k\nparam W: d×k\nf = norm2(X*W - Y)^2"})
    assert up.status_code == 200, up.text
    assert up.json()["first_wrong_line"] is None and "lsq.md" in up.json()["report_text"]


def test_grade_errors(client) -> None:
    assert _error(client.post("/api/grade", json={"text": "no mathematics"}), 422, "input")["field"] == "text"
    _error(client.post("/api/grade", files={"file": ("x.md", b"\xff\xfe\x00")}), 422, "input")
    _error(client.post("/api/grade", files={"other": ("x.md", b"$$f = 1$$")}), 422, "input")
    _error(client.post("/api/grade", json={"text": 3}), 422, "input")


# ------------------------------------------------------------------------------------------ codegen

def _module(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "tracegrad_kernel.py", "exec"), namespace)   # the generated module, not user text
    return namespace


def test_codegen_numpy_meets_finite_differences_of_a_forward_pass_by_hand(client) -> None:
    body = client.post("/api/codegen", json={"program": SEED}).json()
    assert body["filename"] == "tracegrad_kernel.py" and body["arguments"] == ["X", "Y", "W1", "b1", "W2", "b2"]
    kernel = _module(body["source"])[body["function"]]
    data = seed_data(n=4, d=3, m=5, k=2, seed=7)
    arrays = list(data.values())
    f, *grads = kernel(*arrays)
    assert f == pytest.approx(seed_loss(*arrays), rel=1e-12)
    for i, g in zip(range(2, 6), grads):   # W1, b1, W2, b2
        assert rel_err(g, fd_gradient(seed_loss, arrays, i)) < 1e-6


def test_codegen_of_softmax_regression_meets_finite_differences(client) -> None:
    """Another network (the softmax-regression example): cross-entropy of one-hot labels, by hand."""
    example = next(e for e in client.get("/api/examples").json() if e["id"] == "softmax_regression")
    body = client.post("/api/codegen", json={"program": example["program"]}).json()
    assert body["arguments"] == ["X", "Y", "W", "b"]
    rng = np.random.default_rng(5)
    n, d, k = 6, 4, 3
    X, W, b = rng.standard_normal((n, d)), rng.standard_normal((d, k)), rng.standard_normal((1, k))
    Y = np.eye(k)[rng.integers(0, k, n)]

    def loss(X, Y, W, b) -> float:
        return float(-np.sum(Y * np_logsoftmax(X @ W + b)))

    f, G_W, G_b = _module(body["source"])[body["function"]](X, Y, W, b)
    assert f == pytest.approx(loss(X, Y, W, b), rel=1e-12)
    assert rel_err(G_W, fd_gradient(loss, [X, Y, W, b], 2)) < 1e-6
    assert rel_err(G_b, fd_gradient(loss, [X, Y, W, b], 3)) < 1e-6


def test_codegen_of_an_expression_and_for_torch_and_jax(client) -> None:
    body = client.post("/api/codegen", json=LSQ).json()
    rng = np.random.default_rng(3)
    X, W, Y = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    f, G = _module(body["source"])["f_and_gradients"](X, W, Y)
    loss = lambda X, W, Y: float(np.sum((X @ W - Y) ** 2))
    assert f == pytest.approx(loss(X, W, Y)) and rel_err(G, fd_gradient(loss, [X, W, Y], 1)) < 1e-6
    for backend, library in (("torch", "import torch"), ("jax", "import jax"), ("cupy", "import cupy")):
        source = client.post("/api/codegen", json={"program": SEED, "backend": backend}).json()["source"]
        assert library in source and "needs NumPy" not in source
        compile(source, "tracegrad_kernel.py", "exec")
    hessian = {"expression": "x'*A*x", "shapes": {"x": ["n", 1], "A": ["n", "n"]}, "wrt": ["x"], "order": 2}
    assert _error(client.post("/api/codegen", json=hessian), 422, "input")["field"] == "order"


# ---------------------------------------------------------------------------------------------- pdf

def _build_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("tracegrad-serve-*")}


def test_pdf_is_built_in_a_temporary_directory_that_goes_away(client) -> None:
    before = _build_dirs()
    r = client.post("/api/pdf", json=LSQ)
    if shutil.which("pdflatex") is None:   # CI installs TeX Live: there the bytes are checked
        _error(r, 501, "unavailable")
        return
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")
    assert r.content.rstrip().endswith(b"%%EOF") and _build_dirs() <= before
    _error(client.post("/api/pdf", json=PATHOLOGICAL["power"]), 422, "too_large")


# ------------------------------------------------------------------------------ time limit, load

def _slow_writeup() -> str:
    """The seed write-up eight times over: its grade takes several seconds even with warm caches
    (one copy takes about 0.7 s warm, four 2.5 s on this project's 2-core CI machine)."""
    return "\n\n".join([seed_writeup()] * 8)


def test_a_request_past_the_time_limit_is_answered_and_blocks_no_one() -> None:
    """A slow request (eight copies of the seed write-up's grade take seconds) times out with 408 while a quick one
    from another user is answered by the other worker; the slow one's worker is replaced."""
    with TestClient(create_app(pool_size=2, time_limit=1.5)) as c:
        assert c.post("/api/derive", json=LSQ).status_code == 200   # the workers are up
        slow: dict = {}

        def grade() -> None:
            slow["response"] = c.post("/api/grade", json={"text": _slow_writeup()})
            slow["done"] = time.perf_counter()

        thread = threading.Thread(target=grade)
        thread.start()
        time.sleep(0.2)
        quick = c.post("/api/check", json={**LSQ, "answer": "2*X'*(X*W - Y)", "wrt": "W"})
        quick_done = time.perf_counter()
        thread.join()
        assert quick.status_code == 200 and quick.json()["correct"] is True
        assert quick_done < slow["done"]
        body = _error(slow["response"], 408, "timeout")
        assert body["error"].startswith("too large:") and "1.5 s" in body["error"]
        assert c.get("/api/health").json()["replaced"] == 1
        assert c.post("/api/derive", json={**LSQ, "lang": "zh"}).status_code == 200   # not a kept answer


def test_requests_queue_for_a_worker_within_a_bounded_wait() -> None:
    with TestClient(create_app(pool_size=1, time_limit=1.0, queue_timeout=0.2)) as c:
        out: dict = {}
        thread = threading.Thread(target=lambda: out.setdefault("r", c.post("/api/grade", json={"text": _slow_writeup()})))
        thread.start()
        time.sleep(0.3)
        body = _error(c.post("/api/derive", json=LSQ), 503, "busy")
        assert "busy" in body["error"]
        thread.join()
        _error(out["r"], 408, "timeout")


def test_the_same_request_is_worked_on_once() -> None:
    with TestClient(create_app(pool_size=2)) as c:
        fields = {**LSQ, "wrt": "W", "lang": "zh"}
        with ThreadPoolExecutor(4) as pool:   # at once: the later ones wait for the first one's answer
            answers = list(pool.map(lambda _: c.post("/api/derive", json=fields), range(4)))
        assert all(a.status_code == 200 for a in answers) and len({a.text for a in answers}) == 1
        again = c.post("/api/derive", json=fields)
        assert again.text == answers[0].text and c.get("/api/health").json()["cache_hits"] == 4
        _error(c.post("/api/derive", json=PATHOLOGICAL["power"]), 422, "too_large")
        _error(c.post("/api/derive", json=PATHOLOGICAL["power"]), 422, "too_large")
        assert c.get("/api/health").json()["cache_hits"] == 5
    with TestClient(create_app(pool_size=1, cache_size=0)) as c:
        c.post("/api/derive", json=fields)
        c.post("/api/derive", json=fields)
        assert c.get("/api/health").json()["cache_hits"] == 0


# -------------------------------------------------------------------------------------------- CLI

def test_the_serve_command_parses_its_options(capsys) -> None:
    assert main(["serve", "--help"]) == 0
    assert "--open" in capsys.readouterr().out
    assert main(["serve", "--port", "70000"]) == 2
    assert "port" in capsys.readouterr().err


def test_the_kept_answers_are_bounded_in_bytes() -> None:
    import asyncio

    from derive.serve.api import AnswerCache

    cache, calls = AnswerCache(size=100, max_bytes=3000, max_entry=1500), []

    async def answer(n: int):
        calls.append(n)
        return True, {"html": "x" * n}

    async def scenario():
        await cache.run("big", lambda: answer(2000))      # over max_entry: worked on, not kept
        await cache.run("big", lambda: answer(2000))
        for i in range(4):                                  # 4 × ~1 kB: the oldest leaves past 3000 bytes
            await cache.run(f"k{i}", lambda: answer(1000))
        await cache.run("k3", lambda: answer(1000))
        await cache.run("k0", lambda: answer(1000))

    asyncio.run(scenario())
    assert calls == [2000, 2000, 1000, 1000, 1000, 1000, 1000] and cache.hits == 1
    assert cache.bytes <= 3000 and len(cache._done) == 2
