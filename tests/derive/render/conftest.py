"""Fixtures for the renderers: the seed document's derivation written out by hand as Step data.

``hand_backprop()`` builds the eight sections of the seed document (Y, Ypred, W2, b2, H, h, W1,
b1) and the summary directly from SymPy objects, so the renderers are tested without
derive.backprop.  ``real_backprop`` is the output of derive.backprop (skipped where that
module does not exist yet).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from sympy import MatAdd, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose
from sympy.matrices.expressions.hadamard import HadamardProduct

from derive.differential import MatrixDifferential as D, ScalarDifferential
from derive.elementwise import sigmoid
from derive.networks import Network, seed_network
from derive.steps import F, Derivation, Gradient, Step

SECTION_ORDER = ["Y", "Ypred", "W2", "b2", "H", "h", "W1", "b1"]


@dataclass(frozen=True)
class HandBackprop:
    network: Network
    sections: tuple[Derivation, ...]
    summary: tuple[tuple[MatrixSymbol, MatrixExpr, MatrixExpr], ...]


def _from_loss(net: Network, wrt: MatrixSymbol, dM: MatrixExpr, G: MatrixExpr) -> Derivation:
    """∂f/∂Y or ∂f/∂Ypred from f = tr(MᵀM), M = Y − Ypred, with dM the differential of M."""
    s = net.symbols
    M = MatAdd(s["Y"], MatMul(-1, s["Ypred"]))
    df = ScalarDifferential(F)
    steps = (
        Step("definition", F, net.loss),
        Step("differential", df, ScalarDifferential(net.loss)),
        Step("d_trace", df, Trace(D(MatMul(Transpose(M), M)))),
        Step("d_product", df, Trace(MatAdd(MatMul(D(Transpose(M)), M), MatMul(Transpose(M), D(M))))),
        Step("d_sum", df, Trace(MatAdd(MatMul(Transpose(dM), M), MatMul(Transpose(M), dM)))),
        Step("collect", df, Trace(MatMul(2, Transpose(G), D(wrt)))),
        Step("read_off", Gradient(F, wrt), MatMul(2, G)),
    )
    return Derivation(net.loss, wrt, steps, MatMul(2, G), net.stages)


def _staged(net: Network, Z: MatrixSymbol, G_Z: MatrixExpr, X: MatrixSymbol,
            middle: list[tuple[str, MatrixExpr]], result: MatrixExpr) -> Derivation:
    """A section from df = tr(G_Zᵀ dZ); ``middle``: (rule, trace argument) after substituting Z."""
    df = ScalarDifferential(F)
    definition = dict(net.stages)[Z]
    steps = [Step("chain", df, Trace(MatMul(Transpose(G_Z), D(Z)))),
             Step("substitute", df, Trace(MatMul(Transpose(G_Z), D(definition))))]
    steps += [Step(rule, df, Trace(arg)) for rule, arg in middle]
    steps.append(Step("read_off", Gradient(F, X), result))
    return Derivation(net.loss, X, tuple(steps), result, net.stages, upstream=(Z, G_Z))


def hand_backprop(bias: str = "row") -> HandBackprop:
    """The seed document's derivation, step by step, written by hand."""
    net = seed_network(bias=bias)
    s = net.symbols
    X, Y, W1, b1, W2, b2, h, H, P = (s[k] for k in ("X", "Y", "W1", "b1", "W2", "b2", "h", "H", "Ypred"))
    n, m = h.shape
    one_n = OneMatrix(n, 1)
    E = MatAdd(MatMul(-1, Y), P)  # Ypred - Y, stored negative-first as SymPy stores it
    sec_Y = _from_loss(net, Y, D(Y), MatAdd(Y, MatMul(-1, P)))
    sec_P = _from_loss(net, P, MatMul(-1, D(P)), E)
    G_P = MatMul(2, E)
    ones = one_n if bias == "row" else None  # what a bias is multiplied by

    def through(factor: MatrixExpr | None, dX: MatrixExpr) -> MatrixExpr:
        return dX if factor is None else MatMul(factor, dX)

    sec_W2 = _staged(net, P, G_P, W2, [("d_product", MatMul(2, Transpose(E), H, D(W2)))],
                     MatMul(2, Transpose(H), E))
    G_b2 = MatMul(2, Transpose(one_n), E) if bias == "row" else MatMul(2, E)
    sec_b2 = _staged(net, P, G_P, b2, [("d_product", MatMul(2, Transpose(E), through(ones, D(b2))))], G_b2)
    G_H = MatMul(2, E, Transpose(W2))
    sec_H = _staged(net, P, G_P, H, [("d_product", MatMul(2, Transpose(E), D(H), W2)),
                                     ("trace_cyclic", MatMul(2, W2, Transpose(E), D(H)))], G_H)
    one_minus = MatAdd(OneMatrix(n, m), MatMul(-1, sigmoid(h)))
    local = HadamardProduct(sigmoid(h), one_minus)
    core = HadamardProduct(MatMul(E, Transpose(W2)), sigmoid(h), one_minus)
    G_h = MatMul(2, core)
    sec_h = _staged(net, H, G_H, h, [
        ("d_elementwise", MatMul(Transpose(G_H), HadamardProduct(local, D(h)))),
        ("trace_hadamard", MatMul(2, Transpose(core), D(h)))], G_h)
    sec_W1 = _staged(net, h, G_h, W1, [("d_product", MatMul(2, Transpose(core), X, D(W1)))],
                     MatMul(2, Transpose(X), core))
    G_b1 = MatMul(2, Transpose(one_n), core) if bias == "row" else G_h
    sec_b1 = _staged(net, h, G_h, b1, [("d_product", MatMul(2, Transpose(core), through(ones, D(b1))))], G_b1)
    sections = (sec_Y, sec_P, sec_W2, sec_b2, sec_H, sec_h, sec_W1, sec_b1)
    staged = {W1: sec_W1.result, b1: sec_b1.result, W2: sec_W2.result, b2: sec_b2.result}
    summary = tuple((p, staged[p], net.expand(staged[p])) for p in net.params)
    return HandBackprop(net, sections, summary)


@pytest.fixture(scope="session")
def hand_bp() -> HandBackprop:
    return hand_backprop()


@pytest.fixture(scope="session")
def real_bp():
    """derive.backprop(seed_network()): these tests wait for derive/backprop.py."""
    from derive.backprop import backprop

    return backprop(seed_network())


def tex_engine(engine: str) -> str:
    """The path of ``engine``, or skip when it is not installed.

    With TRACEGRAD_REQUIRE_TEX=1 (set by CI, which installs TeX Live) a missing engine fails.
    """
    missing = pytest.fail if os.environ.get("TRACEGRAD_REQUIRE_TEX") == "1" else pytest.skip
    path = shutil.which(engine)
    if path is None:
        missing(f"{engine} is not installed")
    if engine == "xelatex":
        kpsewhich = shutil.which("kpsewhich")
        if kpsewhich and not subprocess.run([kpsewhich, "ctexart.cls"], capture_output=True,
                                            text=True).stdout:
            missing("ctex (ctexart.cls) is not installed")
    return path


def compile_tex(tex: str, engine: str, tmp_path: Path) -> Path:
    """Compile ``tex`` with ``engine``; fail with the end of the log if it does not compile."""
    path = tex_engine(engine)
    src = tmp_path / "doc.tex"
    src.write_text(tex, encoding="utf-8")
    proc = subprocess.run([path, "-interaction=nonstopmode", "-halt-on-error", src.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          errors="replace")
    pdf = tmp_path / "doc.pdf"
    log_file = tmp_path / "doc.log"
    log = log_file.read_text(errors="replace") if log_file.exists() else proc.stdout
    assert proc.returncode == 0 and pdf.exists(), f"{engine} failed:\n{log[-3000:]}"
    return pdf
