"""The ``tracegrad`` command.

With no command it derives the seed network's gradients step by step and prints them::

    tracegrad                                  # text in the terminal, then the gradient table
    tracegrad --lang zh --format latex -o seed.tex
    tracegrad --format pdf -o seed.pdf             # runs pdflatex (xelatex for --lang zh)
    tracegrad -o seed.html                         # one self-contained page, mathematics as MathML
    tracegrad --bias full --dims n=64,d=32,m=16,k=4

Subcommands are registered in :data:`COMMANDS`, one :class:`Command` each; a command reuses
:func:`add_output_options` / :func:`add_network_options` (with ``inherit=True``, so that options
given before the command name still count) and :func:`seed_network_from` / :func:`emit`.

Every error a user can cause ends in one line, ``tracegrad: error: …``, and exit status 2.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from collections.abc import Callable, Sequence

__all__ = [
    "COMMANDS",
    "CliError",
    "Command",
    "add_network_options",
    "add_output_options",
    "build_parser",
    "emit",
    "emit_backprop",
    "main",
    "parse_dims",
    "render",
    "seed_network_from",
]

PROG = "tracegrad"
FORMATS = ("text", "markdown", "latex", "html", "pdf")
LANGS = ("en", "zh")
SEED_DIMS = ("n", "d", "m", "k")
_SUFFIX_FORMATS = {".tex": "latex", ".md": "markdown", ".markdown": "markdown", ".txt": "text",
                   ".html": "html", ".htm": "html", ".pdf": "pdf"}


class CliError(Exception):
    """A user error: reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


@dataclass(frozen=True)
class Command:
    """A subcommand: ``add_arguments(parser)`` declares its options, ``run(args)`` returns the exit status."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# The subcommands.  To add one, append Command(name, help, add_arguments, run) here.
COMMANDS: list[Command] = []


_DIMENSION = re.compile(r"([0-9]+)(?:\^([0-9]+)|[eE]([0-9]+))?")


def _dimension(name: str, value: str) -> int:
    """A dimension written ``64``, ``10^6`` or ``1e6``, at most MAX_DIMENSION."""
    from derive.limits import MAX_DIMENSION

    m = _DIMENSION.fullmatch(value)
    if not m:
        raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {value!r}")
    if any(len(g or "") > 30 for g in m.groups()):   # a number this long is not a dimension
        number = MAX_DIMENSION + 1
    else:
        base, power, exp10 = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 0)
        # the size before the number is made: 10^9999 is refused, not computed
        log10 = math.log10(base) * power + exp10 if base else 0
        number = base ** power * 10 ** exp10 if log10 <= 30 else MAX_DIMENSION + 1
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {value!r}")
    if number > MAX_DIMENSION:
        shown = value if len(value) <= 20 else value[:17] + "..."
        raise argparse.ArgumentTypeError(f"{name}={shown} is more than 10^{round(math.log10(MAX_DIMENSION))}, "
                                         "the largest dimension (derive.limits.MAX_DIMENSION)")
    return number


def parse_dims(spec: str, names: Sequence[str] = SEED_DIMS) -> dict[str, int]:
    """``"n=64,d=32"`` → ``{"n": 64, "d": 32}``; dimensions left out stay symbolic.
    A value may be written ``10^6`` or ``1e6``.

    >>> parse_dims("n=64, d=32,m=16,k=4")
    {'n': 64, 'd': 32, 'm': 16, 'k': 4}
    >>> parse_dims("n=10^12,d=2e3")
    {'n': 1000000000000, 'd': 2000}
    >>> parse_dims("n=x")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: n must be a positive integer, got 'x'
    """
    out: dict[str, int] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise argparse.ArgumentTypeError(
                f"expected NAME=VALUE pairs such as n=64,d=32,m=16,k=4, got {item!r}")
        if name not in names:
            raise argparse.ArgumentTypeError(
                f"unknown dimension {name!r}; the dimensions are {', '.join(names)}")
        if name in out:
            raise argparse.ArgumentTypeError(f"dimension {name} is given twice")
        out[name] = _dimension(name, value)
    if not out:
        raise argparse.ArgumentTypeError(f"no dimensions in {spec!r}; expected e.g. n=64,d=32,m=16,k=4")
    return out


def _default(value: Any, inherit: bool) -> Any:
    # a subcommand's option that was not given must not overwrite the top level's value
    return argparse.SUPPRESS if inherit else value


def add_output_options(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """``--format``, ``--lang``, ``-o FILE``."""
    p.add_argument("--format", choices=FORMATS, default=_default(None, inherit),
                   help="output format (default: text, or from the suffix of -o: .tex, .md, .html, .pdf); "
                        "pdf needs -o and a TeX engine (pdflatex, or xelatex with ctex for --lang zh)")
    p.add_argument("--lang", choices=LANGS, default=_default("en", inherit),
                   help="language of the prose (default: en)")
    p.add_argument("-o", "--output", metavar="FILE", default=_default(None, inherit),
                   help="write to FILE instead of standard output")


def add_network_options(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """``--bias`` and ``--dims`` for the seed network."""
    p.add_argument("--bias", choices=("row", "full"), default=_default("row", inherit),
                   help="row: b is 1×m, broadcast by a ones column (default); full: b is n×m")
    p.add_argument("--dims", type=parse_dims, default=_default({}, inherit), metavar="n=64,d=32,m=16,k=4",
                   help="numeric dimensions (default: symbolic n, d, m, k)")


def seed_network_from(args: argparse.Namespace) -> Any:
    """The seed network with the ``--bias`` and ``--dims`` of ``args``."""
    from derive.networks import seed_network

    return seed_network(bias=args.bias, **args.dims)


def _backprop() -> Callable[[Any], Any]:
    try:
        from derive.backprop import backprop
    except ImportError as e:
        raise RuntimeError(f"derive.backprop is not available ({e})") from e
    return backprop


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output:
        return _SUFFIX_FORMATS.get(Path(args.output).suffix.lower(), "text")
    return "text"


def render(bp: Any, fmt: str, lang: str) -> str:
    """A ``Backprop`` in one of the text :data:`FORMATS` (all but pdf, which :func:`emit_backprop` writes)."""
    from derive.render import backprop_latex, backprop_markdown, backprop_text
    from derive.render.html import backprop_html

    if fmt == "pdf":
        raise CliError("the pdf format is written to a file: give -o FILE.pdf")
    renderers = {"text": backprop_text, "markdown": backprop_markdown, "latex": backprop_latex,
                 "html": backprop_html}
    return renderers[fmt](bp, lang=lang)


def emit_backprop(bp: Any, args: argparse.Namespace) -> None:
    """Write ``bp`` in the format of ``args`` (``--format`` or the suffix of ``-o``)."""
    fmt = _format(args)
    if fmt != "pdf":
        emit(render(bp, fmt, args.lang), args)
        return
    if not args.output:
        raise CliError("the pdf format is written to a file: give -o FILE.pdf")
    from derive.render.pdf import TexCompileError, TexNotFoundError, write_pdf

    try:
        write_pdf(bp, args.output, lang=args.lang)
    except TexNotFoundError as e:
        raise CliError(str(e)) from e
    except TexCompileError as e:
        raise RuntimeError(str(e)) from e
    except OSError as e:
        raise CliError(str(e)) from e


def emit(text: str, args: argparse.Namespace) -> None:
    """Write ``text`` to ``-o FILE`` or to standard output."""
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise CliError(f"cannot write {args.output}: {e.strerror or e}") from e
        return
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        # a terminal that cannot show ⊙ or 𝟏: write UTF-8 anyway
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


def _run_seed(args: argparse.Namespace) -> int:
    net = seed_network_from(args)
    bp = _backprop()(net)
    emit_backprop(bp, args)
    if _format(args) == "text" and not args.output:
        # the terminal run ends with the numbers: a gradient check and the audit of the seed's formulas
        from derive.commands import audit_intro
        from numeric.reference import audit, format_audit

        heading = {"en": ("Checks", "------"), "zh": ("检验", "----")}[args.lang]
        emit("\n" + "\n".join(heading) + "\n" + _closing_check(net, args) + "\n"
             + audit_intro(args.lang) + format_audit(audit(compiled=False), lang=args.lang) + "\n", args)
    return 0


def _closing_check(net: Any, args: argparse.Namespace) -> str:
    """The gradient check at the end of the default run: on the network derived, or, where
    ``--dims`` makes its arrays larger than MAX_CHECK_ENTRIES, at small sizes with a note saying why."""
    from derive.commands import SMALL_DIMS, seed_gradient_check
    from derive.limits import MAX_CHECK_ENTRIES

    sizes = sorted({**SMALL_DIMS, **args.dims}.values())
    if sizes[-1] * sizes[-2] <= MAX_CHECK_ENTRIES:
        return seed_gradient_check(net, args.lang, dims=args.dims)
    given = ", ".join(f"{k}={v}" for k, v in args.dims.items())
    if args.lang == "zh":
        why = (f"给定的维数（{given}）使检验的数组超过 {MAX_CHECK_ENTRIES:,} 个元素"
               "（derive.limits.MAX_CHECK_ENTRIES）：同一组公式以符号维数在小尺寸上检验。\n")
    else:
        why = (f"The dimensions given ({given}) make the check's arrays larger than {MAX_CHECK_ENTRIES:,} "
               "entries (derive.limits.MAX_CHECK_ENTRIES): the same formulas, with symbolic dimensions, "
               "are checked at small sizes.\n")
    from derive.networks import seed_network

    return why + seed_gradient_check(seed_network(bias=args.bias), args.lang)


def build_parser() -> argparse.ArgumentParser:
    """The parser: the seed derivation's options at the top level, then one subparser per command."""
    parser = _Parser(
        prog=PROG,
        description="Derive gradients of matrix expressions step by step with trace differentials. "
                    "With no command: the seed network h = XW1 + 1b1, H = σ(h), Ypred = HW2 + 1b2, "
                    "f = ‖Y − Ypred‖²_F.")
    add_output_options(parser)
    add_network_options(parser)
    parser.set_defaults(run=_run_seed)
    if COMMANDS:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
        for c in COMMANDS:
            sp = sub.add_parser(c.name, help=c.help, description=c.help)
            c.add_arguments(sp)
            sp.set_defaults(run=c.run)
    return parser


def _fail(message: str, status: int = 2) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tracegrad`` with ``argv`` (default: the process's arguments); returns the exit status.

    >>> main(["--dims", "n=x"])
    2
    """
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except SystemExit as e:  # --help and --version exit through argparse
        return e.code if isinstance(e.code, int) else 0
    except CliError as e:
        return _fail(str(e))
    except (TypeError, ValueError, NotImplementedError) as e:
        return _fail(str(e) or type(e).__name__)
    except RuntimeError as e:
        return _fail(str(e), status=1)
    except BrokenPipeError:
        # the reader went away (tracegrad | head): stop quietly, as other command-line tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _register_commands() -> None:
    from derive.commands import COMMANDS as subcommands

    COMMANDS.extend(c for c in subcommands if c.name not in {x.name for x in COMMANDS})


_register_commands()
