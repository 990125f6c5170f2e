"""PDF output: the LaTeX document of :func:`~derive.render.latex.backprop_latex`, compiled.

English compiles with pdflatex, Chinese with xelatex and ctex (see
:func:`~derive.render.latex.latex_engine`), in a temporary directory; only the PDF is kept.
The Chinese document uses ctex's Fandol fonts (TeX Live's texlive-lang-chinese); where they are
missing and Noto CJK (fonts-noto-cjk) is installed, it uses Noto Serif/Sans CJK SC instead.
When the engine (or ctex) is missing, :class:`TexNotFoundError` names the Debian packages to install.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from derive.render.document import BackpropLike
from derive.render.latex import backprop_latex, latex_engine

__all__ = [
    "DEBIAN_PACKAGES",
    "TexCompileError",
    "TexNotFoundError",
    "cjk_fontset",
    "find_engine",
    "tex_document",
    "write_pdf",
]

DEBIAN_PACKAGES = {
    "en": "texlive-latex-base texlive-latex-recommended",
    "zh": "texlive-xetex texlive-lang-chinese fonts-noto-cjk",
}
TIMEOUT_S = 300


class TexNotFoundError(RuntimeError):
    """The TeX engine (or ctex) that a PDF needs is not installed."""


class TexCompileError(RuntimeError):
    """The TeX engine ran and failed; the message holds the first error of its log."""


def _install_hint() -> str:
    return (f"install the Debian packages {DEBIAN_PACKAGES['en']} "
            f"(and {DEBIAN_PACKAGES['zh']} for --lang zh)")


def _kpsewhich(name: str) -> str | None:
    exe = shutil.which("kpsewhich")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, name], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def find_engine(lang: str) -> str:
    """The path of the TeX engine for ``lang``; :class:`TexNotFoundError` when it (or ctex) is missing.

    >>> find_engine("fr")
    Traceback (most recent call last):
    ...
    ValueError: unknown language 'fr'; choose one of: en, zh
    """
    engine = latex_engine(lang)
    path = shutil.which(engine)
    if path is None:
        raise TexNotFoundError(f"{engine} not found; {_install_hint()}")
    if lang == "zh" and shutil.which("kpsewhich") and _kpsewhich("ctexart.cls") is None:
        raise TexNotFoundError(f"the ctex package (ctexart.cls) not found; {_install_hint()}")
    return path


def _has_font(family: str) -> bool:
    fc = shutil.which("fc-list")
    if fc is None:
        return False
    try:
        out = subprocess.run([fc, family], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


def cjk_fontset() -> str:
    """The Chinese fonts to use: ``"fandol"`` (ctex's default) or ``"noto"`` where Fandol is missing."""
    if _kpsewhich("FandolSong-Regular.otf") is None and _has_font("Noto Serif CJK SC"):
        return "noto"
    return "fandol"


_NOTO = "\n".join([
    r"\setCJKmainfont{Noto Serif CJK SC}",
    r"\setCJKsansfont{Noto Sans CJK SC}",
    r"\setCJKmonofont{Noto Sans Mono CJK SC}",
])


def tex_document(bp: BackpropLike, lang: str = "en", fontset: str = "auto", checks: Any = None) -> str:
    r"""The standalone LaTeX that :func:`write_pdf` compiles (with ``checks``, where given).

    ``fontset`` (Chinese only): ``"fandol"``, ``"noto"`` or ``"auto"`` (:func:`cjk_fontset`).
    """
    return with_fontset(backprop_latex(bp, lang=lang, standalone=True, checks=checks), lang, fontset)


def with_fontset(tex: str, lang: str, fontset: str = "auto") -> str:
    """``tex`` (a standalone document of ours) with the CJK fonts chosen, for Chinese."""
    if lang != "zh":
        return tex
    if fontset == "auto":
        fontset = cjk_fontset()
    if fontset not in ("fandol", "noto"):
        raise ValueError(f"unknown fontset {fontset!r}; choose fandol, noto or auto")
    head = r"\documentclass[11pt]{ctexart}"
    if fontset == "fandol":
        return tex.replace(head, r"\documentclass[11pt,fontset=fandol]{ctexart}", 1)
    return tex.replace(head, r"\documentclass[11pt,fontset=none]{ctexart}" + "\n" + _NOTO, 1)


def _first_error(log: str) -> str:
    m = re.search(r"^! (.*)$", log, re.M)
    if m:
        return m.group(1).strip()
    m = re.search(r"^.*(?:Fatal|Emergency stop).*$", log, re.M)
    return m.group(0).strip() if m else "no PDF was written"


def write_pdf(bp: BackpropLike, path: str | os.PathLike[str], lang: str = "en",
              fontset: str = "auto", checks: Any = None) -> Path:
    """Compile the derivation of ``bp`` to a PDF at ``path``; returns the path.

    Runs pdflatex (English) or xelatex (Chinese) once, in a temporary directory, on
    :func:`tex_document`; ``checks`` (:func:`derive.render.checks.network_checks`) adds the checks.  Raises :class:`TexNotFoundError` when the engine is missing and
    :class:`TexCompileError` when it fails.

    >>> from derive import seed_network
    >>> from derive.backprop import backprop
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "seed.pdf"
    >>> try:
    ...     ok = write_pdf(backprop(seed_network()), out).read_bytes()[:5] == b"%PDF-"
    ... except TexNotFoundError:
    ...     ok = True
    >>> ok
    True
    """
    return compile_tex(tex_document(bp, lang, fontset, checks), path, lang)


def compile_tex(tex: str, path: str | os.PathLike[str], lang: str = "en", timeout: float = TIMEOUT_S) -> Path:
    """Compile the standalone document ``tex`` with the engine for ``lang``; the PDF goes to ``path``.
    The engine runs at most ``timeout`` seconds."""
    engine = find_engine(lang)
    target = Path(path)
    with tempfile.TemporaryDirectory(prefix="tracegrad-tex-") as tmp:
        work = Path(tmp)
        (work / "doc.tex").write_text(tex, encoding="utf-8")
        try:
            proc = subprocess.run(
                [engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
                cwd=work, capture_output=True, text=True, errors="replace", timeout=timeout,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise TexCompileError(f"{Path(engine).name} took longer than {timeout:g} s") from e
        pdf = work / "doc.pdf"
        if proc.returncode != 0 or not pdf.exists():
            log_file = work / "doc.log"
            log = log_file.read_text(errors="replace") if log_file.exists() else proc.stdout
            raise TexCompileError(f"{Path(engine).name} failed: {_first_error(log)}")
        try:
            if target.parent != Path(""):
                target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pdf, target)
        except OSError as e:
            raise OSError(f"cannot write {target}: {e.strerror or e}") from e
    return target
