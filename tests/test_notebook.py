"""docs/tutorial.ipynb runs from top to bottom: it derives, compiles, trains, plots and checks."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def _require(module: str):
    if os.environ.get("TRACEGRAD_REQUIRE_NOTEBOOK") == "1":
        return __import__(module)
    return pytest.importorskip(module)


def test_tutorial_notebook_executes() -> None:
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    _require("ipykernel")
    _require("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs are not committed"
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent.parent)}}).execute()
    elapsed = time.perf_counter() - start
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "training accuracy 100%" in text or "training accuracy 9" in text
    assert "max relative error of the four gradients" in text
    # Newton's method with the compiled Hessian converges to ‖∇f‖ < 1e-10, quadratically at the end
    assert "∇²f(w) = Aᵀdiag(σ(Aw) ⊙ (𝟏ₙ - σ(Aw)))A" in text
    norms = [float(line.rsplit("= ", 1)[1]) for line in text.splitlines() if line.startswith("Newton iteration")]
    assert 3 <= len(norms) <= 12 and norms[-1] < 1e-10 and norms[-1] < norms[-2] ** 1.5
    # the step listing is in tracegrad's notation, not SymPy's
    listing = [line for line in text.splitlines() if line.endswith("]") and "  [" in line]
    assert "∂f/∂W1 = 2Xᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]  [read off the gradient]" in listing
    assert not [line for line in listing
                if any(w in line for w in ("Lambda", "Sigmoid", "_x", ".T", "*", "d(W1)", "MatMul"))]
    assert "Lambda(" not in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the loss curve and surface are plotted"
    assert any("text/latex" in o.get("data", {}) for o in outputs), "derivations render as math"
    print(f"\ntutorial.ipynb executed in {elapsed:.1f} s")
