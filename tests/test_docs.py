"""The committed seed derivation in docs/ is what the code writes today (regenerate with
``python docs/make_docs.py``), and the user guide's examples run."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", DOCS / "make_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(_make_docs().generated()))
def test_committed_copy_is_current(name: str) -> None:
    expected = _make_docs().generated()[name]
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == expected, f"docs/{name} is stale: run python docs/make_docs.py"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_committed_pdf_is_there(lang: str) -> None:
    pdf = DOCS / f"seed-derivation.{lang}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    tex = DOCS / f"seed-derivation.{lang}.tex"
    assert pdf.stat().st_size > 20_000 and tex.exists()
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
        assert pages >= 4


def test_markdown_has_the_seed_sections() -> None:
    zh = (DOCS / "seed-derivation.zh.md").read_text(encoding="utf-8")
    for word in ("问题描述", "推导过程", "综上所述", "得到"):
        assert word in zh
    en = (DOCS / "seed-derivation.en.md").read_text(encoding="utf-8")
    assert en.count("$$") % 2 == 0 and "In summary" in en


def test_the_readmes_first_python_example_runs_as_written(tmp_path) -> None:
    # copied into a fresh interpreter as a new user would: it defines its data and calls the kernel
    import re
    import sys
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    check = ("\nassert np.isfinite(f) and gW1.shape == W1.shape and gb2.shape == b2.shape"
             "\nH = 1 / (1 + np.exp(-(X @ W1 + b1))); R = H @ W2 + b2 - Y"
             "\nassert abs(f - np.sum(R * R)) < 1e-9 * abs(f)"
             "\nassert np.allclose(gW2, 2 * H.T @ R, rtol=1e-10)\n")
    proc = subprocess.run([sys.executable, "-c", block + check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
