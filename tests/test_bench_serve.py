"""benchmarks/bench_serve.py: a tiny load test (20 requests from 4 clients against a real
``tracegrad serve`` on loopback), one pathological input among them refused as "too large"."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_serve as bs


def test_the_plan_mixes_examples_checks_and_one_pathological_input_in_fifty() -> None:
    jobs = bs.plan(500)
    refusals = [j for j in jobs if j.status != 200]
    assert len(refusals) == 10 and all(j.kind == "too_large" for j in refusals)
    assert {j.label for j in refusals} == {f"too large: {label}" for label, _ in bs.PATHOLOGICAL}
    assert {j.path for j in jobs} == {"/api/derive", "/api/check"}
    assert {j.label for j in jobs} >= {"derive seed", "derive attention", "check wrong"}


def test_a_tiny_load_test_has_no_errors(tmp_path: Path) -> None:
    out = tmp_path / "serve.md"
    assert bs.main(["--requests", "20", "--clients", "4", "--cache", "0", "--markdown", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| errors | **0** |" in text and "| intended refusals (\"too large\", 422) | 1 of 1 |" in text
    assert "p50 / p95 / p99" in text and "requests/s" in text
