"""The tracegrad command: output of the seed derivation, options, one-line errors."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from derive import cli
from derive.cli import Command, main, parse_dims

ROOT = Path(__file__).resolve().parents[1]
W1_TEXT = "2Xᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]"


def _table(out: str) -> dict[str, tuple[str, str]]:
    """gradient → (shape, expression) from the summary table."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s+∂f/∂(\w+)\s{2,}(\S+)\s{2,}(.+)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tracegrad: error: ")
    assert "Traceback" not in err
    return lines[0]


# --- the default: the seed network ----------------------------------------------------------------

def test_default_prints_derivation_then_table(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("Y", "Ypred", "W2", "b2", "H", "h", "W1", "b1"):
        assert f"\nDerive ∂f/∂{name}\n" in out
    table = out[out.index("In summary"):]
    assert _table(table) == {
        "W1": ("d×m", W1_TEXT),
        "b1": ("1×m", "2𝟏ₙᵀ[((Ypred - Y)W2ᵀ) ⊙ σ(h) ⊙ (𝟏 - σ(h))]"),
        "W2": ("m×k", "2Hᵀ(Ypred - Y)"),
        "b2": ("1×k", "2𝟏ₙᵀ(Ypred - Y)"),
    }


def test_chinese_text(capsys) -> None:
    assert main(["--lang", "zh"]) == 0
    out = capsys.readouterr().out
    for word in ("问题描述", "推导过程", "推导 ∂f/∂W1", "方程两边取微分得到", "由 ∂f/∂h", "综上所述"):
        assert word in out


def test_dims_and_bias(capsys) -> None:
    assert main(["--dims", "n=4,d=3,m=5,k=2"]) == 0
    rows = _table(capsys.readouterr().out)
    assert {k: v[0] for k, v in rows.items()} == {"W1": "3×5", "b1": "1×5", "W2": "5×2", "b2": "1×2"}
    assert main(["--bias", "full", "--dims", "n=4"]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["b1"][0] == "4×m" and rows["b2"][0] == "4×k"


@pytest.mark.parametrize("fmt, lang, marker", [
    ("latex", "en", r"\documentclass[11pt]{article}"),
    ("latex", "zh", r"\documentclass[11pt]{ctexart}"),
    ("markdown", "en", "## In summary"),
    ("markdown", "zh", "## 综上所述"),
])
def test_formats(capsys, fmt, lang, marker) -> None:
    assert main(["--format", fmt, "--lang", lang]) == 0
    out = capsys.readouterr().out
    assert marker in out
    assert r"\odot" in out


def test_output_file_and_format_from_suffix(capsys, tmp_path) -> None:
    tex = tmp_path / "seed.tex"
    assert main(["-o", str(tex), "--lang", "zh"]) == 0
    assert capsys.readouterr().out == ""
    assert tex.read_text(encoding="utf-8").startswith("% !TEX program = xelatex")
    md = tmp_path / "seed.md"
    assert main(["--output", str(md)]) == 0
    assert md.read_text(encoding="utf-8").startswith("# Derivative expressions")
    txt = tmp_path / "seed.tex.txt"
    assert main(["-o", str(txt), "--format", "text"]) == 0
    assert "In summary" in txt.read_text(encoding="utf-8")


# --- errors: one line, status 2 ------------------------------------------------------------------

@pytest.mark.parametrize("dims", ["n=x", "n=0", "n=-3", "n=1.5", "z=3", "n64", "=4", "n=4,n=5", "", ","])
def test_malformed_dims(capsys, dims) -> None:
    assert main(["--dims", dims]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--dims" in _one_error_line(captured.err)


@pytest.mark.parametrize("argv", [["--format", "pdf"], ["--lang", "fr"], ["--bias", "col"], ["--nope"],
                                  ["extra"], ["--dims"]])
def test_bad_options(capsys, argv) -> None:
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err)


def test_unwritable_output(capsys, tmp_path) -> None:
    assert main(["-o", str(tmp_path / "missing" / "x.tex")]) == 2
    assert "cannot write" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("exc", [TypeError("bad type"), ValueError("bad\nvalue"),
                                 NotImplementedError("no rule for Foo")])
def test_errors_from_derive(monkeypatch, capsys, exc) -> None:
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr("derive.networks.seed_network", boom)
    assert main([]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == "tracegrad: error: " + " ".join(str(exc).split())


def test_missing_backprop_is_reported(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "derive.backprop", None)  # import raises ImportError
    assert main([]) == 1
    assert "derive.backprop is not available" in _one_error_line(capsys.readouterr().err)


def test_help(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--format" in out and "--dims" in out


def test_parse_dims() -> None:
    assert parse_dims("n=64,d=32,m=16,k=4") == {"n": 64, "d": 32, "m": 16, "k": 4}
    assert parse_dims(" k = 2 ") == {"k": 2}
    with pytest.raises(argparse.ArgumentTypeError, match="unknown dimension 'q'"):
        parse_dims("q=1")


# --- subcommands ------------------------------------------------------------------------------------

def test_a_registered_subcommand_is_dispatched(monkeypatch, capsys) -> None:
    seen: list[argparse.Namespace] = []

    def add_arguments(p: argparse.ArgumentParser) -> None:
        cli.add_output_options(p, inherit=True)
        p.add_argument("name")

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(cli, "COMMANDS", [Command("echo", "test command", add_arguments, run)])
    assert main(["echo", "W1", "--lang", "zh"]) == 0
    assert main(["--lang", "zh", "echo", "b1"]) == 0  # an option before the command still counts
    assert main(["echo", "W2"]) == 0
    assert [(a.command, a.name, a.lang) for a in seen] == [("echo", "W1", "zh"), ("echo", "b1", "zh"),
                                                           ("echo", "W2", "en")]
    assert main(["echo"]) == 2
    _one_error_line(capsys.readouterr().err)


# --- python -m derive -----------------------------------------------------------------------------------

def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derive", *args], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8", timeout=120)


def test_python_m_derive() -> None:
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    assert set(_table(proc.stdout)) == {"W1", "b1", "W2", "b2"}
    assert proc.stderr == ""


def test_python_m_derive_bad_dims() -> None:
    proc = _run("--dims", "n=x")
    assert proc.returncode == 2
    assert proc.stdout == ""
    _one_error_line(proc.stderr)


# --- web page and PDF ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_html_output(capsys, tmp_path, lang) -> None:
    out = tmp_path / "seed.html"
    assert main(["-o", str(out), "--lang", lang]) == 0  # the format from the suffix
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in page
    assert page.count("<details") == 8 and "<math" in page and "<script" not in page
    assert main(["--format", "html", "--lang", lang]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")
    assert main(["-o", str(tmp_path / "seed.htm"), "--dims", "n=4"]) == 0
    assert (tmp_path / "seed.htm").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_pdf_needs_an_output_file(capsys) -> None:
    assert main(["--format", "pdf"]) == 2
    assert "give -o FILE.pdf" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pdf_output(capsys, tmp_path, lang) -> None:
    from derive.render import latex_engine
    from tests.derive.render.conftest import tex_engine

    tex_engine(latex_engine(lang))
    out = tmp_path / "seed.pdf"
    assert main(["-o", str(out), "--lang", lang]) == 0, capsys.readouterr().err
    assert out.read_bytes()[:5] == b"%PDF-"
    assert capsys.readouterr().out == ""


def test_pdf_without_tex_is_one_line_naming_the_packages(monkeypatch, capsys, tmp_path) -> None:
    import derive.render.pdf as pdf

    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    assert main(["--format", "pdf", "-o", str(tmp_path / "seed.pdf")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == ("tracegrad: error: pdflatex not found; install the Debian packages texlive-latex-base "
                    "texlive-latex-recommended (and texlive-xetex texlive-lang-chinese fonts-noto-cjk "
                    "for --lang zh)")
    assert main(["--lang", "zh", "-o", str(tmp_path / "seed.pdf")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith("tracegrad: error: xelatex not found; install")
    assert not (tmp_path / "seed.pdf").exists()


def test_pdf_compile_failure_is_one_line(monkeypatch, capsys, tmp_path) -> None:
    import derive.render.pdf as pdf

    def fail(*args, **kwargs):
        raise pdf.TexCompileError("pdflatex failed: Undefined control sequence.")

    monkeypatch.setattr(pdf, "write_pdf", fail)
    assert main(["-o", str(tmp_path / "seed.pdf")]) == 1
    assert _one_error_line(capsys.readouterr().err) == \
        "tracegrad: error: pdflatex failed: Undefined control sequence."


def test_pdf_unwritable_output(capsys, tmp_path) -> None:
    from derive.render.latex import latex_engine
    from tests.derive.render.conftest import tex_engine

    tex_engine(latex_engine("en"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["-o", str(blocker / "seed.pdf")]) == 2
    assert "cannot write" in _one_error_line(capsys.readouterr().err)


def test_output_piped_into_head_ends_quietly() -> None:
    proc = subprocess.run(f"{sys.executable} -m derive | head -3", shell=True, cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.stdout.count("\n") == 3
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
