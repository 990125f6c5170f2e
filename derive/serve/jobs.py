"""The work behind the web app's endpoints: plain functions of a checked request, run in the worker
processes of :mod:`derive.serve.pool`.

Each job takes a request already checked by :mod:`derive.serve.api` (a dict of plain values) and
returns a JSON-able dict (the PDF job: bytes).  They derive, render, check, grade and generate code
through the library and the ``tracegrad`` commands' helpers (:mod:`derive.commands`); nothing a
user types is evaluated: programs and expressions go through the expression language's parser.

A user's mistake raises :class:`ServeError` (or an error of the library, which :func:`run` turns
into one): a one-line message, the ``line`` and ``column`` it names, a ``kind`` (``"input"`` or
``"too_large"``) and an HTTP status.

The web app bounds one more thing than the command line: a matrix power ``A^p`` writes ``p`` terms
by the product rule, and a page of 100-term steps helps no class, so :data:`MAX_MATRIX_POWER` is
smaller than :data:`derive.limits.MAX_MATRIX_POWER`.
"""
from __future__ import annotations

import html
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy.random  # noqa: F401  (imported ahead of the work: a worker near its memory limit cannot load it)
import sympy

from derive.backprop import backprop
from derive.check import check_answer
from derive.cli_options import CliError
from derive.commands import expression_kernel, gradient_derivations, program_kernel, second_order_derivations
from derive.grading import GradeError, grade
from derive.grading.report import html_page, text as report_text
from derive.lang.errors import ExpressionError
from derive.limits import LimitError
from derive.parse import parse
from derive.program import ProgramError, program
from derive.render import FORMATS, derivations_document, network_document
from derive.render.html import write_html
from derive.render.latex import write_latex
from derive.render.pdf import TexCompileError, TexNotFoundError, compile_tex, with_fontset
from derive.render.printer import loss_text, math_text

__all__ = ["JOBS", "MAX_MATRIX_POWER", "ServeError", "run"]

MAX_MATRIX_POWER = 16
"""|p| of a matrix power ``A^p`` the web app derives (the command line: derive.limits.MAX_MATRIX_POWER)."""

class ServeError(Exception):
    """A request the app cannot answer: ``message`` (one line), the ``line`` and ``column`` of the
    ``field`` it names, ``kind`` (input, too_large, unavailable) and the HTTP ``status``.

    >>> ServeError("column 3: unexpected ')'", line=1, column=3, field="expression").as_dict()["column"]
    3
    """

    def __init__(self, message: str, kind: str = "input", status: int = 422, line: int | None = None,
                 column: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message, self.kind, self.status = message, kind, status
        self.line, self.column, self.field = line, column, field

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "kind": self.kind, "status": self.status, "line": self.line,
                "column": self.column, "field": self.field}


def _too_large(message: str, field: str | None = None, line: int | None = None,
               column: int | None = None) -> ServeError:
    return ServeError(f"too large: {message}", "too_large", 422, line, column, field)


def _shapes(spec: Mapping[str, Any]) -> dict[str, tuple]:
    """``{"X": ["n", "d"], "c": []}`` → ``{"X": ("n", "d"), "c": ()}`` (digits as numbers)."""
    return {name: tuple(int(d) if isinstance(d, int) or (d.isascii() and d.isdigit()) else d for d in shape)
            for name, shape in (spec.get("shapes") or {}).items()}


_POWER = re.compile(r"\^\s*\(?\s*([+-]?\s*[0-9]+)")


def _check_powers(text: str, exprs: Sequence[sympy.Basic], field: str) -> None:
    """Refuse a matrix power beyond :data:`MAX_MATRIX_POWER`, at the column of its exponent where
    the text shows it."""
    for e in exprs:
        for node in sympy.preorder_traversal(e):
            if isinstance(node, sympy.MatPow) and node.exp.is_Integer and abs(int(node.exp)) > MAX_MATRIX_POWER:
                line = column = None
                for m in _POWER.finditer(text):
                    if abs(int(m.group(1).replace(" ", ""))) > MAX_MATRIX_POWER:
                        before = text[:m.start()]
                        line, column = before.count("\n") + 1, m.start() - (before.rfind("\n") + 1) + 1
                        break
                raise _too_large(f"the matrix power {math_text(node)} writes {abs(int(node.exp))} terms by the "
                                 f"product rule; this server derives powers up to {MAX_MATRIX_POWER}",
                                 field, line, column)


# ------------------------------------------------------------------------------------------ inputs

def _network(spec: Mapping[str, Any], *, seed_default: bool = False) -> tuple[Any, str]:
    """The network of a request: its program, its expression (as the one-line program ``f = …``), or
    ``"seed"`` (the seed network, for :func:`derive.check.check_answer`) where ``seed_default``; and
    the field that holds it."""
    if spec.get("program") is not None:
        text, field = spec["program"], "program"
        try:
            net = program(text, _shapes(spec), wrt=spec.get("wrt") or None)
        except ProgramError as e:
            raise _input_error(e, field) from None
    elif spec.get("expression") is not None:
        text, field = spec["expression"].replace("\n", " "), "expression"
        for mark in (";", "#"):   # read as the one-line program "f = …", these would start a statement
            if mark in text:
                column = text.index(mark) + 1
                raise ServeError(f"column {column}: {mark!r} in an expression: a formula is one expression "
                                 "(give a program for statements)", line=1, column=column, field=field)
        if not spec.get("wrt"):
            raise ServeError("give wrt: the matrices to differentiate by, e.g. [\"W\"]", field="wrt")
        try:
            net = program("f = " + text, _shapes(spec), wrt=spec["wrt"])
        except ProgramError as e:   # the expression stands after "f = " on line 1
            raise _input_error(e, field, column=max(1, e.column - 4)) from None
    elif seed_default:
        return "seed", "program"
    else:
        raise ServeError("give a program or an expression", field="program")
    _check_powers(text, [net.f, *(d for _, d in net.stages)], field)
    return net, field


def _input_error(e: ExpressionError, field: str, column: int | None = None) -> ServeError:
    line = getattr(e, "line", 1)
    column = e.column if column is None else column
    where = f"line {line}, column {column}" if field == "program" else f"column {column}"
    if isinstance(e, LimitError):
        return _too_large(f"{where}: {e.message}", field, line, column)
    return ServeError(f"{where}: {e.message}", line=line, column=column, field=field)


def _parsed(spec: Mapping[str, Any]) -> Any:
    text = spec["expression"]
    try:
        parsed = parse(text, _shapes(spec))
    except ExpressionError as e:
        raise _input_error(e, "expression") from None
    _check_powers(text, [parsed.expr], "expression")
    return parsed


def _wrt_text(spec: Mapping[str, Any]) -> str:
    if not spec.get("wrt"):
        raise ServeError("give wrt: the matrices to differentiate by, e.g. [\"W\"]", field="wrt")
    return ",".join(spec["wrt"])


def _derivations(spec: Mapping[str, Any]) -> tuple[Any, list]:
    """The parsed expression of a request and its derivations (gradients, or Hessians for order 2)."""
    parsed = _parsed(spec)
    try:
        if spec.get("order", 1) == 2:
            return parsed, second_order_derivations(parsed, _wrt_text(spec), hess=True)
        return parsed, gradient_derivations(parsed, _wrt_text(spec), spec["lang"])
    except CliError as e:   # the command line's words: its option --wrt is this request's field wrt
        raise ServeError(str(e).replace("--wrt", "wrt"), field="wrt") from None


# -------------------------------------------------------------------------------------------- jobs

def derive_job(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The staged derivation: an HTML fragment, the standalone LaTeX document, the results as text
    (and the document in ``format`` where that is not html)."""
    lang = spec["lang"]
    if spec.get("program") is not None:
        if spec.get("order", 1) != 1:
            raise ServeError("order 2 (a Hessian) is derived for an expression, not a program", field="order")
        net, _ = _network(spec)
        bp = backprop(net)
        doc = network_document(bp, lang, None)
        results = {p.name: math_text(g) for p, g in bp.gradients(expanded=False).items()}
    elif spec.get("expression") is not None:
        _, derivs = _derivations(spec)
        doc = derivations_document(derivs, lang, f"f = {spec['expression']}")
        results = {d.wrt.name: math_text(d.result) for d in derivs}
    else:
        raise ServeError("give a program or an expression", field="program")
    out: dict[str, Any] = {"title": doc.title, "html": write_html(doc, fragment=True), "latex": write_latex(doc),
                           "hessians" if spec.get("order", 1) == 2 else "gradients": results}
    if spec["format"] != "html":
        out["document"] = FORMATS[spec["format"]](doc)
    out["format"] = spec["format"]
    return out


def check_job(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict on an answer for ∂f/∂wrt of the request's network (default: the seed)."""
    net, _ = _network(spec, seed_default=True)
    try:
        result = check_answer(spec["answer"], spec["variable"], net, lang=spec["lang"], syntax=spec["syntax"])
    except ExpressionError as e:
        raise _input_error(e, "answer") from None
    except LimitError as e:
        raise _too_large(str(e), "answer") from None
    except ValueError as e:    # an unknown variable
        raise ServeError(str(e), field="wrt") from None
    details = "".join(f"<li>{html.escape(d)}</li>" for d in result.details)
    cls = "ok" if result.correct else "bad"
    return {"correct": result.correct, "verdict": result.verdict, "details": list(result.details),
            "diagnosis_text": str(result),
            "diagnosis_html": f'<p class="verdict {cls}">{html.escape(result.verdict)}</p>'
                              + (f"<ul>{details}</ul>" if details else "")}


def grade_job(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The report on a write-up: every result and every step of every chain."""
    try:
        report = grade(spec["text"], net=spec.get("program"), net_name="program" if spec.get("program") else "",
                       shapes=_shapes(spec), lang=spec["lang"], source=spec.get("filename") or "write-up")
    except GradeError as e:
        raise ServeError(str(e), field="text") from None
    wrong = [e.line for e in report.entries if e.verdict in ("wrong", "shape-error")]
    return {"report_html": html_page(report, fragment=True), "report_text": report_text(report),
            "first_wrong_line": min(wrong) if wrong else None, "counts": report.counts(),
            "entries": [e.as_dict() for e in report.entries]}


def codegen_job(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A standalone module computing f and its gradients, for the NumPy, PyTorch or JAX backend."""
    from numeric.array_backends import CUPY, JAX, TORCH
    from numeric.export import module_source
    from numeric.numpy_backend import NUMPY

    if spec.get("program") is not None:
        net, _ = _network(spec)
        exprs, args = program_kernel(backprop(net))
    elif spec.get("expression") is not None:
        if spec.get("order", 1) != 1:
            raise ServeError("codegen writes f and its gradients: order must be 1", field="order")
        parsed, derivs = _derivations(spec)
        try:
            exprs, args = expression_kernel(parsed.expr, derivs, parsed, list(_shapes(spec)))
        except CliError as e:
            raise ServeError(str(e).removeprefix("--codegen: "), field="expression") from None
    else:
        raise ServeError("give a program or an expression", field="program")
    backend = {"numpy": NUMPY, "torch": TORCH, "jax": JAX, "cupy": CUPY}[spec["backend"]]
    try:
        source = module_source(exprs, args, "f_and_gradients", describe=loss_text, backend=backend)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise ServeError(f"no {spec['backend']} module for this function: {e}") from None
    return {"source": source, "filename": "tracegrad_kernel.py", "backend": spec["backend"],
            "function": "f_and_gradients", "arguments": [a.name for a in args]}


def pdf_job(spec: Mapping[str, Any]) -> bytes:
    """The derivation as a PDF, compiled in a temporary directory within ``time_limit`` seconds."""
    lang = spec["lang"]
    if spec.get("program") is not None:
        net, _ = _network(spec)
        tex = write_latex(network_document(backprop(net), lang, None))
    elif spec.get("expression") is not None:
        _, derivs = _derivations(spec)
        tex = write_latex(derivations_document(derivs, lang, f"f = {spec['expression']}"))
    else:
        raise ServeError("give a program or an expression", field="program")
    with tempfile.TemporaryDirectory(prefix="tracegrad-serve-") as tmp:
        out = Path(tmp) / "derivation.pdf"
        try:
            compile_tex(with_fontset(tex, lang), out, lang, timeout=spec.get("time_limit", 60))
        except TexNotFoundError as e:
            raise ServeError(f"no PDF on this server: {e}", "unavailable", 501) from None
        except TexCompileError as e:
            raise ServeError(f"the PDF could not be built: {e}", "internal", 500) from None
        return out.read_bytes()


JOBS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "derive": derive_job, "check": check_job, "grade": grade_job, "codegen": codegen_job, "pdf": pdf_job,
}


def run(job: str, spec: Mapping[str, Any]) -> tuple[bool, Any]:
    """Run ``job`` on ``spec``: ``(True, result)``, or ``(False, error dict)`` for any error, a
    mistake of the user's or of tracegrad's (one line, never a traceback).

    >>> run("check", {"answer": "2*H'*(Ypred - Y)", "variable": "W2", "lang": "en", "syntax": "auto"})[1]["correct"]
    True
    >>> ok, err = run("derive", {"expression": "tr(X^100)", "shapes": {"X": ["n", "n"]}, "wrt": ["X"],
    ...                          "lang": "en", "format": "html"})
    >>> ok, err["kind"], err["column"]
    (False, 'too_large', 5)
    """
    try:
        return True, JOBS[job](spec)
    except ServeError as e:
        return False, e.as_dict()
    except ProgramError as e:
        return False, _input_error(e, "program").as_dict()
    except ExpressionError as e:
        return False, _input_error(e, "expression").as_dict()
    except (LimitError, MemoryError, RecursionError) as e:
        what = "it needs more memory than this server allows" if isinstance(e, MemoryError) else (
            "it nests too deeply" if isinstance(e, RecursionError) else str(e))
        return False, _too_large(what).as_dict()
    except (CliError, ValueError, TypeError, NotImplementedError, ArithmeticError) as e:
        return False, ServeError(str(e).splitlines()[0] if str(e) else type(e).__name__).as_dict()
    except Exception as e:   # a defect of tracegrad: still one line
        first = str(e).splitlines()[0] if str(e) else ""
        return False, ServeError(f"internal error ({type(e).__name__}: {first})", "internal", 500).as_dict()
