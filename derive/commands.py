"""The ``tracegrad`` subcommands: ``grad``, ``jac``, ``hess``, ``check``, ``audit``, ``grade``, ``codegen`` and ``serve``.

Each is a :class:`derive.cli_options.Command`; ``derive.cli`` registers :data:`COMMANDS`.  They
parse, derive and render through the library; the only thing here is the plumbing.
"""
from __future__ import annotations

import argparse
import re
from typing import Any

from derive.cli_options import (
    CliError, Command, add_item_list, add_network_options, add_output_options, cannot_write, emit, emit_backprop,
    output_format, seed_network_from,
)

__all__ = ["COMMANDS", "derivations_document", "expression_kernel", "gradient_derivations", "parse_shapes",
           "program_kernel", "second_order_derivations"]

_SHAPE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([A-Za-z0-9_]+),([A-Za-z0-9_]+)$")


def parse_shapes(items: list[str]) -> dict[str, tuple]:
    """``["X=n,d", "b1=1,m", "c="]`` → ``{"X": ("n", "d"), "b1": (1, "m"), "c": ()}``.

    >>> parse_shapes(["X=n,d", "b1=1,m", "lam="])
    {'X': ('n', 'd'), 'b1': (1, 'm'), 'lam': ()}
    """
    out: dict[str, tuple] = {}
    for item in items:
        for part in item.split():
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=", part):
                out[part[:-1]] = ()
                continue
            m = _SHAPE.match(part)
            if not m:
                raise CliError(f"--shape: expected NAME=ROWS,COLS such as X=n,d or b1=1,m (NAME= for a "
                               f"scalar), got {part!r}")
            name, r, c = m.groups()
            out[name] = tuple(int(x) if x.isdigit() else x for x in (r, c))
    return out


def derivations_document(derivs: list, fmt: str, lang: str, title: str) -> str:
    """Several derivations as one document in ``fmt`` (text, markdown, latex or html)."""
    from derive.render import FORMATS, derivations_document as document

    if fmt not in FORMATS:
        raise CliError(f"the {fmt} format is not available for this command")
    return FORMATS[fmt](document(derivs, lang, title))


# ----------------------------------------------------------------------------- grad

def _grad_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("expression", nargs="?",
                   help="the scalar function, e.g. \"norm2(Y - X*W)^2\", or a program: declarations and "
                        "assignments separated by ';' or newlines, e.g. \"X: n×d; Y: n×k; param W: d×k; "
                        "E = X*W - Y; f = norm2(E)^2\"")
    p.add_argument("-f", "--file", metavar="NET.tg", help="read the program from NET.tg (- for standard input)")
    p.add_argument("--wrt", help="comma-separated variables, e.g. W1,b1 (required for an expression; for a "
                                 "program, default: its param declarations)")
    add_item_list(p, "--shape", r"[^\s=]+=\S*(\s+[^\s=]+=\S*)*", default=[], metavar="NAME=ROWS,COLS",
                  help="shapes, e.g. X=n,d W1=d,m b1=1,m (NAME= for a scalar); others are inferred; "
                       "before or after the expression")
    p.add_argument("--codegen", metavar="FILE.py", help="also write a NumPy module computing f and the gradients")
    add_output_options(p, inherit=True)


def gradient_derivations(parsed: Any, wrt: str, lang: str = "en", before: Any = None) -> list:
    """The derivations of ∂f/∂X for each X of ``wrt`` (comma-separated names) of the parsed scalar
    expression ``parsed`` (:func:`derive.parse.parse`), as ``tracegrad grad`` derives them; its notes in
    ``lang``.  ``before`` (no argument) runs after the checks of ``wrt``, before the derivation.  A user
    error raises :class:`CliError`.

    >>> from derive.parse import parse
    >>> [d.result for d in gradient_derivations(parse("tr(X'*A*X)", {"X": ("n", "k")}), "X")]
    [AX + AᵀX]
    """
    import sympy

    import derive

    f = parsed.expr
    if isinstance(f, sympy.MatrixExpr) and f.shape != (1, 1):
        from derive.render.printer import shape_text

        raise CliError(f"the expression is a {shape_text(f.shape)} matrix; a gradient needs a scalar function")
    names = [w.strip() for w in wrt.split(",") if w.strip()]
    if not names:
        raise CliError(f"--wrt: no variable in {wrt!r}; give the matrices to differentiate by, e.g. --wrt W1,b1")
    unknown = [w for w in names if w not in parsed.symbols or not isinstance(parsed.symbols[w], sympy.MatrixSymbol)]
    if unknown:
        matrices = [k for k, v in parsed.symbols.items() if isinstance(v, sympy.MatrixSymbol)]
        raise CliError(f"--wrt {', '.join(unknown)}: not a matrix in the expression; it has {', '.join(matrices)}")
    if before is not None:
        before()
    notes = tuple(n.say(lang) for n in parsed.notes)
    derivs = []
    for name in names:
        dv = derive.derivation(f, parsed.symbols[name])
        derivs.append(type(dv)(function=dv.function, wrt=dv.wrt, steps=dv.steps, result=dv.result,
                               notes=notes))
    return derivs


def _run_grad(args: argparse.Namespace) -> int:
    from derive.parse import parse
    from derive.program import is_program

    if args.file is not None:
        if args.expression is not None:
            raise CliError("give the program either with -f FILE or as text, not both")
        return _run_program(args, _read_program(args.file), f"{'<stdin>' if args.file == '-' else args.file}: ")
    if args.expression is None:
        raise CliError("give the expression (or a program as text, or -f NET.tg)")
    if is_program(args.expression):
        return _run_program(args, args.expression, "")
    if args.wrt is None:
        raise CliError("--wrt is required for an expression: the variables to differentiate by, e.g. --wrt W1,b1")
    shapes = parse_shapes(args.shape)
    parsed = parse(args.expression, shapes, syntax="cli")
    f = parsed.expr
    derivs = gradient_derivations(parsed, args.wrt, args.lang, before=lambda: _format_of(args))
    fmt = _format_of(args)
    module = expression_kernel(f, derivs, parsed, list(shapes)) if args.codegen else None
    title = f"f = {args.expression}"
    if fmt == "pdf":
        _write_pdf(derivations_document(derivs, "latex", args.lang, title), args)
        text = ""
    else:
        text = derivations_document(derivs, fmt, args.lang, title)
    if fmt == "text":
        from derive.render.printer import math_text, shape_text

        rows = [(math_text(d.steps[-1].lhs), shape_text(d.wrt.shape), math_text(d.result)) for d in derivs]
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        text += "\n" + "\n".join(f"  {a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows) + "\n"
    if fmt != "pdf":
        emit(text, args)
    if module is not None:
        _export(*module, args.codegen, name="f_and_gradients")
    return 0


# ------------------------------------------------------------------------------ jac, hess

def _second_order_arguments(p: argparse.ArgumentParser, hess: bool) -> None:
    what = "the scalar function, e.g. \"x'*A*x\"" if hess else "the matrix- or vector-valued function, e.g. \"sigmoid(W*x)\""
    p.add_argument("expression", help=what)
    p.add_argument("--wrt", required=True, help="comma-separated variables, e.g. x or X,W")
    add_item_list(p, "--shape", r"[^\s=]+=\S*(\s+[^\s=]+=\S*)*", default=[], metavar="NAME=ROWS,COLS",
                  help="shapes, e.g. X=n,d x=d,1 (others are inferred); before or after the expression")
    if hess:
        p.add_argument("--direction", metavar="V",
                       help="a Hessian-vector product: d(∂f/∂X) along the new matrix V (the shape of X), "
                            "without forming the Hessian")
    add_output_options(p, inherit=True)


def _jac_arguments(p: argparse.ArgumentParser) -> None:
    _second_order_arguments(p, hess=False)


def _hess_arguments(p: argparse.ArgumentParser) -> None:
    _second_order_arguments(p, hess=True)


def second_order_derivations(parsed: Any, wrt: str, hess: bool, direction: str | None = None) -> list:
    """The Hessians (``hess``; with ``direction``, the Hessian-vector products along a new matrix of
    that name) of the parsed scalar expression, or the Jacobians of the parsed matrix expression, by
    each of ``wrt`` (comma-separated names), as ``tracegrad hess`` and ``jac`` derive them.  A user
    error raises :class:`CliError`.

    >>> from derive.parse import parse
    >>> [d.result for d in second_order_derivations(parse("x'*A*x", {"x": ("n", 1)}), "x", hess=True)]
    [A + Aᵀ]
    """
    import sympy

    from derive.jacobian import hessian, hvp, jacobian
    from derive.render.printer import shape_text

    f = parsed.expr
    scalar = not isinstance(f, sympy.MatrixExpr) or f.shape == (1, 1)
    if hess and not scalar:
        raise CliError(f"the expression is a {shape_text(f.shape)} matrix; a Hessian needs a scalar function "
                       "(tracegrad jac gives the Jacobian of a matrix function)")
    if not hess and scalar:
        raise CliError("the expression is a scalar; its Jacobian is the gradient: use tracegrad grad")
    names = [w.strip() for w in wrt.split(",") if w.strip()]
    unknown = [w for w in names if not isinstance(parsed.symbols.get(w), sympy.MatrixSymbol)]
    if unknown or not names:
        matrices = [k for k, v in parsed.symbols.items() if isinstance(v, sympy.MatrixSymbol)]
        named = ", ".join(unknown) if unknown else repr(wrt)
        raise CliError(f"--wrt {named}: not a matrix in the expression; it has "
                       f"{', '.join(matrices)}")
    if direction is not None and (not direction.isidentifier() or direction in parsed.symbols):
        raise CliError(f"--direction {direction!r}: give a new name (a letter, then letters or digits) that "
                       "the expression does not use")
    derivs = []
    for name in names:
        X = parsed.symbols[name]
        if not hess:
            derivs.append(jacobian(f, X))
        elif direction is not None:
            derivs.append(hvp(f, X, sympy.MatrixSymbol(direction, *X.shape)))
        else:
            derivs.append(hessian(f, X))
    return derivs


def _run_second_order(args: argparse.Namespace, hess: bool) -> int:
    from derive.parse import parse
    from derive.render.printer import math_text, shape_text

    parsed = parse(args.expression, parse_shapes(args.shape), syntax="cli")
    derivs = second_order_derivations(parsed, args.wrt, hess, getattr(args, "direction", None))
    fmt = _format_of(args)
    title = f"{'f' if hess else 'F'} = {args.expression}"
    if fmt == "pdf":
        _write_pdf(derivations_document(derivs, "latex", args.lang, title), args)
        return 0
    text = derivations_document(derivs, fmt, args.lang, title)
    if fmt == "text":
        rows = [(math_text(d.target), shape_text(d.result.shape), math_text(d.result)) for d in derivs]
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        text += "\n" + "\n".join(f"  {a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows) + "\n"
    emit(text, args)
    return 0


def _read_program(path: str, limit: int | None = None) -> str:
    """The text of the program file ``path`` (``-``: standard input), refused beyond the limit
    (``limit`` characters, default: a program's)."""
    import sys

    from derive.limits import MAX_PROGRAM_LENGTH

    limit = MAX_PROGRAM_LENGTH if limit is None else limit
    try:
        if path == "-":
            text = sys.stdin.read(limit + 1)
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(limit + 1)
    except UnicodeDecodeError as e:
        raise CliError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from e
    return text


def _run_program(args: argparse.Namespace, text: str, where: str) -> int:
    """``grad`` of a program: the staged derivation (derive.backprop), with a gradient check."""
    from derive.backprop import backprop
    from derive.program import ProgramError, program

    wrt = None
    if args.wrt is not None:
        wrt = [w.strip() for w in args.wrt.split(",") if w.strip()]
        if not wrt:
            raise CliError(f"--wrt: no variable in {args.wrt!r}; give the matrices to differentiate by")
    try:
        net = program(text, parse_shapes(args.shape), wrt=wrt, syntax="cli")
    except ProgramError as e:
        raise CliError(f"{where}{e}") from e
    bp = backprop(net)
    _format_of(args)   # a pdf without -o is refused before the work below
    if args.codegen:
        _export(*program_kernel(bp), args.codegen, name="f_and_gradients")
    emit_backprop(bp, args, checks=_program_checks(bp))
    return 0


def program_kernel(bp: Any) -> tuple[list, list]:
    """The expressions (f, then ∂f/∂P for each parameter P) and the arguments (the inputs, the
    parameters, the free scalars) of a program's kernel module (``grad -f NET.tg --codegen``)."""
    net = bp.network
    grads = bp.gradients(expanded=True)
    params = list(net.params)
    scalars = sorted(_free_scalars(net.f), key=str)
    return [net.f] + [grads[p] for p in params], list(net.inputs) + params + scalars


def _free_scalars(e: Any) -> list:
    """The scalar symbols of ``e`` that are no dimension (``lam: scalar``)."""
    import sympy

    return [s for s in e.free_symbols if isinstance(s, sympy.Symbol) and not s.is_integer]


def _program_checks(bp: Any) -> Any:
    """The gradient check of a program's derivation, or None where it cannot run (a free scalar, data
    outside a function's domain)."""
    import warnings

    import numpy as np

    from derive.render.checks import Checks, gradient_check

    net = bp.network
    if _free_scalars(net.f):
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            check = gradient_check(bp)
        except (ValueError, TypeError, ArithmeticError, NotImplementedError):
            return None
    if check.max_error is not None and not np.isfinite(check.max_error):
        return None
    return Checks(check, ())


def expression_kernel(f: Any, derivs: list, parsed: Any, declared: list[str]) -> tuple[list, list]:
    """The expressions and arguments of ``--codegen``'s module, checked before anything is printed.

    The arguments are the names of ``--shape`` in order, then those whose shapes were inferred,
    in order of use; a scalar name (declared ``NAME=``) is a scalar argument.
    """
    import sympy

    from derive.render.printer import math_text
    from numeric.compile import generate

    args_order = sorted(parsed.symbols.values(),
                        key=lambda s: declared.index(s.name) if s.name in declared else len(declared))
    bad = [s.name for s in args_order if not isinstance(s, (sympy.MatrixSymbol, sympy.Symbol))]
    if bad:
        raise CliError(f"--codegen: {', '.join(bad)} can be neither a matrix nor a scalar argument")
    exprs = [f] + [d.result for d in derivs]
    sizes = {x for s in args_order if isinstance(s, sympy.MatrixSymbol) for x in s.shape}
    scalars = {s for s in args_order if isinstance(s, sympy.Symbol)}
    for label, e in [("f", f)] + [(math_text(d.steps[-1].lhs), d.result) for d in derivs]:
        loose = sorted(str(x) for x in e.free_symbols - sizes - scalars
                       if isinstance(x, sympy.Symbol) and not isinstance(x, sympy.MatrixSymbol))
        if loose:
            raise CliError(
                f"--codegen: {label} depends on the dimension {', '.join(loose)}, which is the size of no "
                f"matrix argument, so the module could not know it; declare a matrix of that size "
                f"with --shape or give the dimension as a number")
    try:
        generate(exprs, args_order, name="f_and_gradients")
    except (ValueError, TypeError, NotImplementedError) as e:
        raise CliError(f"--codegen: no NumPy module for this function: {e}") from e
    return exprs, args_order


def _export(exprs: list, args: list, path: str, name: str, backend: str = "numpy") -> Any:
    """``numeric.export``, with a file that cannot be written reported as one line."""
    from derive.render.printer import loss_text
    from numeric import export

    try:  # the docstrings in tracegrad's notation
        return export(exprs, args, path, name=name, describe=loss_text, backend=backend)
    except OSError as e:
        raise CliError(cannot_write(e, path)) from e


def _format_of(args: argparse.Namespace) -> str:
    fmt = output_format(args)
    if fmt == "pdf" and not args.output:
        raise CliError("the pdf format is written to a file: give -o FILE.pdf")
    return fmt


def _write_pdf(tex: str, args: argparse.Namespace) -> None:
    from derive.render.pdf import TexCompileError, TexNotFoundError, compile_tex, with_fontset

    try:
        compile_tex(with_fontset(tex, args.lang), args.output, args.lang)
    except (TexNotFoundError, TexCompileError) as e:
        raise CliError(str(e)) from e
    except OSError as e:  # the folder of -o cannot be created or written
        raise CliError(cannot_write(e, args.output)) from e


# ---------------------------------------------------------------------------- check

def _check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("answer", help="your formula, e.g. \"2*X'*(((Ypred - Y)*W2') .* sigmoid(h) .* (1 - sigmoid(h)))\" "
                                  "or in LaTeX, \"2X^T[(Y_{pred} - Y)W_2^T \\odot \\sigma'(h)]\"")
    p.add_argument("--wrt", required=True, help="the variable: an input, a parameter or an intermediate "
                                                "(h, H, Ypred), e.g. W1")
    p.add_argument("--net", default="seed", metavar="seed|NET.tg",
                   help="the network: seed (default) or a program file (see grad -f)")
    p.add_argument("--syntax", choices=("auto", "latex", "ascii"), default="auto",
                   help="the answer's notation: auto (default: LaTeX when it has a backslash, ^{ or _{), "
                        "latex or ascii (tracegrad's expression language)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the test data")
    p.add_argument("--lang", choices=("en", "zh"), default=argparse.SUPPRESS, help="language (default: en)")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--hessian", action="store_true", help="the answer is the Hessian of the scalar --f by "
                                                              "the vector --wrt (compared on random data)")
    order.add_argument("--jacobian", action="store_true", help="the answer is the Jacobian ∂ vec F/∂(vec x)ᵀ of "
                                                               "--f by --wrt (compared on random data)")
    p.add_argument("--f", metavar="EXPRESSION", help="the function of --hessian or --jacobian, e.g. "
                                                    "\"sum(softplus(X*w)) - y'*X*w\"")
    add_item_list(p, "--shape", r"[^\s=]+=\S*(\s+[^\s=]+=\S*)*", default=[], metavar="NAME=ROWS,COLS",
                  help="with --f: shapes, e.g. X=n,d w=d,1 (others are inferred)")
    add_network_options(p, inherit=True)


def _run_check(args: argparse.Namespace) -> int:
    """Exit status 0 for a right answer, 1 for a wrong one; a user error (syntax, unknown name or
    variable) raises and ends in status 2."""
    from derive.check import check_answer

    if args.hessian or args.jacobian:
        return _run_check_second(args)
    if args.f is not None or args.shape:
        raise CliError("--f and --shape go with --hessian or --jacobian")
    result = check_answer(args.answer, args.wrt, _check_network(args), seed=args.seed, lang=args.lang,
                          syntax=args.syntax)
    emit(str(result) + "\n", argparse.Namespace(output=None))
    return 0 if result.correct else 1


def _run_check_second(args: argparse.Namespace) -> int:
    """check --hessian / --jacobian: the answer against the derived matrix on random data."""
    from derive.check_second import check_hessian, check_jacobian

    if args.f is None:
        raise CliError(f"--{'hessian' if args.hessian else 'jacobian'} needs the function: --f EXPRESSION")
    check = check_hessian if args.hessian else check_jacobian
    try:
        result = check(args.answer, args.f, args.wrt, parse_shapes(args.shape), seed=args.seed, syntax="cli")
    except ValueError as err:
        raise CliError(str(err)) from None
    emit(str(result) + "\n", argparse.Namespace(output=None))
    return 0 if result.ok else 1


def _check_network(args: argparse.Namespace) -> Any:
    """The network of ``check --net``: the seed (with --bias and --dims), or the program in a file."""
    if args.net == "seed":
        return seed_network_from(args)
    from derive.program import ProgramError, program

    if args.dims:
        raise CliError("--dims applies to the seed network; a program's dimensions are its own")
    try:
        return program(_read_program(args.net), syntax="cli")
    except ProgramError as e:
        raise CliError(f"{args.net}: {e}") from e


# ---------------------------------------------------------------------------- audit

def _audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed of the test data")
    p.add_argument("--lang", choices=("en", "zh"), default=argparse.SUPPRESS, help="language (default: en)")
    p.add_argument("--format", choices=("text", "markdown", "html", "json"), default=None,
                   help="output format (default: text, or from the suffix of -o: .md, .html, .json)")
    p.add_argument("-o", "--output", metavar="FILE", default=argparse.SUPPRESS,
                   help="write the verdicts to FILE")


def _run_audit(args: argparse.Namespace) -> int:
    """``tracegrad audit`` is ``tracegrad grade seed``: the verdicts on the seed write-up's formulas
    come from the write-up itself (its problem statement, its chains, its results)."""
    args.writeup, args.net, args.shape = "seed", None, []
    return _run_grade(args)


# ---------------------------------------------------------------------------- grade

def _grade_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("writeup", help="the write-up: Markdown with $$ … $$ display math, or a LaTeX file (- for "
                                   "standard input; 'seed' for the seed write-up shipped with tracegrad)")
    p.add_argument("--net", metavar="NET.tg", help="the network as a program (default: the write-up's own "
                                                   "problem statement; 'seed' for the seed network)")
    add_item_list(p, "--shape", r"[^\s=]+=\S*(\s+[^\s=]+=\S*)*", default=[], metavar="NAME=ROWS,COLS",
                  help="shapes of the problem statement's names, e.g. X=n,d b1=1,m; others are declared in the "
                       "text (X \\in \\mathbb{R}^{n \\times d}) or inferred")
    p.add_argument("--format", choices=("text", "markdown", "html", "json"), default=None,
                   help="output format (default: text, or from the suffix of -o: .md, .html, .json)")
    p.add_argument("--lang", choices=("en", "zh"), default=argparse.SUPPRESS, help="language (default: en)")
    p.add_argument("-o", "--output", metavar="FILE", default=argparse.SUPPRESS, help="write to FILE")
    p.add_argument("--seed", type=int, default=0, help="random seed of the test data")


def _run_grade(args: argparse.Namespace) -> int:
    """Exit status 0 when every checked equation holds, 1 when any is wrong, 2 for unusable input."""
    from derive.grading import GradeError, grade
    from derive.grading.report import write
    from derive.limits import MAX_PROGRAM_LENGTH

    from derive.grading import seed_writeup

    limit = 20 * MAX_PROGRAM_LENGTH
    text = seed_writeup() if args.writeup == "seed" else _read_program(args.writeup, limit)
    if len(text) > limit:
        raise CliError(f"{args.writeup}: the write-up is longer than {limit} characters")
    net, net_name = None, ""
    if args.net is not None:
        net_name = args.net
        net = _SEED_PROGRAM if args.net == "seed" else _read_program(args.net)
    fmt = args.format or {".md": "markdown", ".html": "html", ".json": "json"}.get(
        _suffix(getattr(args, "output", None)), "text")
    try:
        report = grade(text, net=net, net_name=net_name, shapes=parse_shapes(args.shape), lang=args.lang,
                       seed=args.seed, source="<stdin>" if args.writeup == "-" else args.writeup)
    except GradeError as e:
        raise CliError(f"{args.writeup}: {e}") from None
    emit(write(report, fmt), args)
    return report.status


_SEED_PROGRAM = """X: n×d; Y: n×k
param W1: d×m; param b1: 1×m; param W2: m×k; param b2: 1×k
h = X*W1 + b1
H = sigmoid(h)
Ypred = H*W2 + b2
f = norm2(Y - Ypred)^2"""


def _suffix(path: str | None) -> str:
    import os

    return os.path.splitext(path)[1].lower() if path else ""


# -------------------------------------------------------------------------- codegen

def _codegen_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="FILE.py", help="the module to write")
    p.add_argument("-f", "--file", metavar="NET.tg", help="a program (a network) instead of the seed network "
                                                          "(- for standard input)")
    p.add_argument("--backend", choices=("numpy", "torch", "jax", "cupy"), default="numpy",
                   help="the array library the module imports (default numpy); torch also writes a "
                        "torch.autograd.Function and an nn.Module, jax a jax.custom_vjp loss")
    p.add_argument("--name", help="the function's name (default: seed_loss_and_gradients, or loss_and_gradients "
                                  "for a program); for torch and jax the loss's (default: seed_loss, or loss)")
    add_network_options(p, inherit=True)


def _run_codegen(args: argparse.Namespace) -> int:
    from derive.backprop import backprop
    from derive.kernel_stages import export_network
    from numeric.array_backends import backend_named

    try:
        backend_named(args.backend)
    except ImportError as e:
        raise CliError(str(e)) from e
    if args.file is not None:
        from derive.program import ProgramError, program

        where = "<stdin>" if args.file == "-" else args.file
        try:
            net = program(_read_program(args.file), syntax="cli")
        except ProgramError as e:
            raise CliError(f"{where}: {e}") from e
    else:
        net = seed_network_from(args)
    autograd = args.backend in ("torch", "jax")
    base = "seed_loss" if args.file is None else "loss"
    name = args.name or (base if autograd else f"{base}_and_gradients")
    scalars = sorted(_free_scalars(net.f), key=str)
    try:
        if autograd:
            path = export_network(net, args.output, backend=args.backend, name=name)
        else:
            grads = backprop(net).gradients(expanded=True)
            path = _export([net.f] + [grads[p] for p in net.params], [*net.inputs, *net.params, *scalars],
                           args.output, name=name, backend=args.backend)
    except OSError as e:
        raise CliError(cannot_write(e, args.output)) from e
    except ValueError as e:
        raise CliError(f"codegen: {e}") from e
    grads_text = f"(f, {', '.join('∂f/∂' + p.name for p in net.params)})"
    call = f"{name}({', '.join(s.name for s in [*net.inputs, *net.params, *scalars])})"
    what = f"{call} -> f; {name}_and_gradients -> {grads_text}" if autograd else f"{call} -> {grads_text}"
    emit(f"wrote {path}: {what}\n", argparse.Namespace(output=None))
    return 0


# ---------------------------------------------------------------------------- serve

def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this "
                                                        "computer only)")
    p.add_argument("--port", type=_port, default=8000, help="the port (default: 8000)")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--workers", type=_positive, default=2, help="worker processes deriving at once (default: 2)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS",
                   help="the most seconds one request may take (default: 10; a PDF: 60)")
    p.add_argument("--cache", type=_count, default=256, metavar="N",
                   help="answers kept for requests asked again, e.g. a class opening the same example "
                        "(default: 256; 0: none)")


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {value!r}")
    return int(value)


def _count(value: str) -> int:
    if not value.isdigit() or int(value) > 100_000:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 100000, got {value!r}")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of workers from 1 to 64, got {value!r}")
    return int(value)


def _run_serve(args: argparse.Namespace) -> int:
    """Serve the web app with uvicorn until Ctrl-C."""
    import threading
    import webbrowser

    try:
        import uvicorn

        from derive.serve.app import create_app
    except ImportError as e:
        raise CliError(f"tracegrad serve needs the serve extra ({e.name} is missing): "
                       "pip install 'tracegrad[serve]'") from None
    if not args.time_limit > 0:
        raise CliError(f"--time-limit must be positive, got {args.time_limit:g}")
    app = create_app(pool_size=args.workers, time_limit=args.time_limit, cache_size=args.cache)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    print(f"tracegrad serve: {url} (Ctrl-C to stop)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tracegrad serve: listening on {args.host}: other computers can reach this server", flush=True)
    if args.open:
        threading.Timer(1.5, webbrowser.open, [url]).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


COMMANDS: list[Command] = [
    Command("grad", "derive the gradients of an expression typed in tracegrad's expression language, or "
                    "of a program (a network, -f NET.tg) step by step, stage by stage",
            _grad_arguments, _run_grad),
    Command("jac", "derive the Jacobian ∂ vec F/∂(vec X)ᵀ of a matrix- or vector-valued expression step by step "
                   "(d vec F = J d vec X)",
            _jac_arguments, lambda args: _run_second_order(args, hess=False)),
    Command("hess", "derive the Hessian of a scalar expression step by step (or, with --direction V, the "
                    "Hessian-vector product)",
            _hess_arguments, lambda args: _run_second_order(args, hess=True)),
    Command("check", "check a hand-written gradient (ASCII or LaTeX) of the seed network or a program and say "
                     "where it goes wrong",
            _check_arguments, _run_check),
    Command("audit", "grade the seed write-up (tracegrad grade seed): its formulas under every reading",
            _audit_arguments, _run_audit),
    Command("grade", "grade a whole write-up (Markdown or LaTeX): every result, every step of every chain",
            _grade_arguments, _run_grade),
    Command("codegen", "write the seed network's (or a program's) loss and gradients as a standalone module for "
                       "NumPy, PyTorch, JAX or CuPy",
            _codegen_arguments, _run_codegen),
    Command("serve", "start the web app: type an expression or a program and watch its derivation, check an "
                     "answer, grade a write-up (http://127.0.0.1:8000/)",
            _serve_arguments, _run_serve),
]
