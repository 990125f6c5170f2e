"""``tracegrad grad`` on a program (``-f NET.tg`` or the text inline): the staged derivation in every
format and language, ``--wrt``, ``--shape``, ``--codegen`` and one-line errors with line and column."""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from derive.cli import main
from tests.derive.test_program import SEED, TANH3
from tests.oracle import fd_gradient, rel_err
from tests.test_cli import _one_error_line, _table

SMALL = "X: n×d; Y: n×k; param W: d×m; param V: m×k; H = tanh(X*W); f = norm2(H*V - Y)^2"


def _out(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "seed.tg"
    path.write_text(SEED, encoding="utf-8")
    return str(path)


def test_the_seed_program_gives_the_seed_derivation(capsys, seed_file):
    program = _out(capsys, "grad", "-f", seed_file)
    seed = _out(capsys)
    # the same document, checks included; only the audit of the seed document's own formulas is the seed's
    assert seed.startswith(program.rstrip("\n"))
    assert "Audit" in seed[len(program):] and "Audit" not in program
    assert _out(capsys, "grad", SEED) == program   # the text inline
    assert set(_table(program)) == {"W1", "b1", "W2", "b2"}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("fmt, marker", [("text", "∂f/∂W"), ("markdown", "## "), ("latex", r"\documentclass"),
                                         ("html", "<!DOCTYPE html>")])
def test_every_format_and_language(capsys, fmt, marker, lang):
    out = _out(capsys, "grad", SMALL, "--format", fmt, "--lang", lang)
    assert marker in out
    assert ("passed" if lang == "en" else "通过") in out          # the closing gradient check
    assert ("In summary" if lang == "en" else "综上所述") in out
    assert ("W" in out) and ("V" in out)


@pytest.mark.parametrize("lang, engine", [("en", "pdflatex"), ("zh", "xelatex")])
def test_pdf(tmp_path, lang, engine):
    if shutil.which(engine) is None:
        pytest.skip(f"{engine} is not installed")
    out = tmp_path / f"net.{lang}.pdf"
    assert main(["grad", SMALL, "--lang", lang, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")


def test_wrt_and_shape(capsys):
    assert set(_table(_out(capsys, "grad", SEED, "--wrt", "W2"))) == {"W2"}
    # an undeclared name: its shape from --shape, or inferred
    out = _out(capsys, "grad", "param W: d×k; E = X*W - Y; f = norm2(E)^2", "--shape", "X=n,d")
    assert _table(out)["W"][0] == "d×k"
    assert set(_table(_out(capsys, "grad", "E = X*W - Y; f = norm2(E)^2", "--shape", "X=n,d", "Y=n,k",
                           "--wrt", "W,Y"))) == {"W", "Y"}


def test_long_expansions_are_omitted_and_said(capsys):
    out = _out(capsys, "grad", TANH3)
    assert "In terms of the inputs:" not in out
    assert "alone are omitted: at least one is longer than 100" in out
    assert "In terms of the inputs:" in _out(capsys, "grad", SEED)


def test_codegen(capsys, tmp_path):
    path = tmp_path / "grads.py"
    _out(capsys, "grad", SMALL, "--codegen", str(path))
    spec = importlib.util.spec_from_file_location("grads", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in ((4, 3), (4, 2), (3, 5), (5, 2))]   # X, Y, W, V

    def forward(X, Y, W, V):
        return np.sum((np.tanh(X @ W) @ V - Y) ** 2)

    f, gW, gV = module.f_and_gradients(*arrays)
    assert float(f) == pytest.approx(forward(*arrays))
    assert rel_err(gW, fd_gradient(forward, arrays, 2)) < 1e-6
    assert rel_err(gV, fd_gradient(forward, arrays, 3)) < 1e-6


@pytest.mark.parametrize("argv, words", [
    (["grad", "X: n×d\nparam W: d×k\nf = sum(X*V)"], "line 3, column 11: unknown name 'V'"),
    (["grad", "X: n×d; param W: d×k; f = X*W"], "line 1, column 23: the last assignment is the loss"),
    (["grad", SMALL, "--wrt", "H"], "--wrt H: not an input or parameter of the program"),
    (["grad", "norm2(Y - X*W)^2", "--shape", "X=n,d", "Y=n,k"], "--wrt is required for an expression"),
    (["grad"], "give the expression"),
    (["grad", "-f", "/nonexistent/net.tg"], "cannot read /nonexistent/net.tg"),
    (["grad", SMALL, "--format", "pdf"], "give -o FILE.pdf"),
])
def test_errors_are_one_line(capsys, argv, words):
    assert main(argv) == 2
    assert words in _one_error_line(capsys.readouterr().err)


def test_a_file_error_names_the_file(capsys, tmp_path, seed_file):
    bad = tmp_path / "bad.tg"
    bad.write_text(SEED.replace("H = sigmoid(h)", "H = sigmoid(g)"), encoding="utf-8")
    assert main(["grad", "-f", str(bad)]) == 2
    assert f"{bad}: line 4, column 13: unknown name 'g'" in _one_error_line(capsys.readouterr().err)
    assert main(["grad", "-f", seed_file, "f = sum(X)"]) == 2
    assert "not both" in _one_error_line(capsys.readouterr().err)


def test_an_expression_keeps_its_behaviour(capsys):
    out = _out(capsys, "grad", "norm2(Y - X*W)^2", "--wrt", "W", "--shape", "X=n,d", "Y=n,k")
    assert out.startswith("f = norm2(Y - X*W)^2")
    assert "∂f/∂W" in out
