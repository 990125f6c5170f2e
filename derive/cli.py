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

Every error a user can cause ends in one line, ``tracegrad: error: …``, and exit status 2 (a file or
standard output that cannot be written included); Ctrl-C ends in ``tracegrad: interrupted`` and exit
status 130; an error of tracegrad itself in one line and exit status 1.  Output that the terminal's
encoding cannot show (``PYTHONIOENCODING=ascii``) is written with backslash escapes (``\\u2299``).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from collections.abc import Callable, Sequence

__all__ = [
    "COMMANDS",
    "CliError",
    "Command",
    "add_item_list",
    "add_network_options",
    "add_output_options",
    "build_parser",
    "emit",
    "emit_backprop",
    "main",
    "parse_dims",
    "render",
    "seed_network_from",
    "version",
]

PROG = "tracegrad"
FORMATS = ("text", "markdown", "latex", "html", "pdf")
LANGS = ("en", "zh")
SEED_DIMS = ("n", "d", "m", "k")
_SUFFIX_FORMATS = {".tex": "latex", ".md": "markdown", ".markdown": "markdown", ".txt": "text",
                   ".html": "html", ".htm": "html", ".pdf": "pdf"}


class CliError(Exception):
    """A user error: reported as one line and exit status 2."""


class _StdoutError(CliError):
    """Standard output is closed or cannot be written (a full disk, /dev/full)."""


# a single-dash argument with a character no option name has ("-tr(A)", "-2*X'*Y") is an expression
_NOT_AN_OPTION = re.compile(r"-.*[^\w=-]")


class _Parser(argparse.ArgumentParser):
    """argparse, with errors raised as :class:`CliError`, an argument such as ``-tr(A)`` taken for an
    expression rather than an option, and the lists of :func:`add_item_list` ending at the first
    argument that is not an item (so that ``--shape X=n,d "tr(X'*X)"`` leaves the expression)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        # --help and --version: argparse would write to standard error when standard output is
        # closed, and swallow the error of a full disk
        if not message:
            return
        if file is None:
            raise _StdoutError("standard output is closed")
        try:
            file.write(message)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _StdoutError(f"cannot write to standard output: {e.strerror or e}") from e

    def _parse_optional(self, arg_string: str) -> Any:
        if (not arg_string.startswith("--") and _NOT_AN_OPTION.match(arg_string)
                and arg_string[:2] not in self._option_string_actions):
            return None  # a positional argument
        return super()._parse_optional(arg_string)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        if args is None:
            args = sys.argv[1:]
        return super().parse_known_args(_split_item_lists(list(args), getattr(self, "_item_lists", {})),
                                        namespace)


def _split_item_lists(args: list[str], lists: dict[str, re.Pattern[str]]) -> list[str]:
    """``--shape X=n,d W=d,m expr`` → ``--shape=X=n,d --shape=W=d,m expr``: argparse gives a list
    option every argument up to the next option, the expression included."""
    out: list[str] = []
    flag = None
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        if flag is not None and not a.startswith("-") and lists[flag].fullmatch(a):
            out.append(f"{flag}={a}")
            continue
        flag = None
        name = a.partition("=")[0]
        if name in lists:
            flag = name
            if a == name:
                continue  # --shape: its items follow
        out.append(a)
    return out


def add_item_list(p: argparse.ArgumentParser, flag: str, item: str, **kwargs: Any) -> None:
    """``flag ITEM ITEM ...``: the items are the arguments that follow and match the regular
    expression ``item``, so that a positional argument may follow the list (``--shape X=n,d expr``)."""
    p.add_argument(flag, action="extend", nargs="+", **kwargs)
    if not hasattr(p, "_item_lists"):
        p._item_lists = {}  # type: ignore[attr-defined]
    p._item_lists[flag] = re.compile(item)  # type: ignore[attr-defined]


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
        suffix = Path(args.output).suffix.lower()
        if suffix not in _SUFFIX_FORMATS:
            known = ", ".join(dict.fromkeys(_SUFFIX_FORMATS))
            raise CliError(f"-o {args.output}: {f'unknown suffix {suffix}' if suffix else 'no suffix'}; "
                           f"the suffixes are {known} (or give --format {'|'.join(FORMATS)})")
        return _SUFFIX_FORMATS[suffix]
    return "text"


def render(bp: Any, fmt: str, lang: str, checks: Any = None) -> str:
    """A ``Backprop`` in one of the text :data:`FORMATS` (all but pdf, which :func:`emit_backprop` writes),
    followed by ``checks`` (``derive.render.checks.Checks``) where given."""
    from derive.render import backprop_latex, backprop_markdown, backprop_text
    from derive.render.html import backprop_html

    if fmt == "pdf":
        raise CliError("the pdf format is written to a file: give -o FILE.pdf")
    if fmt == "html":
        return backprop_html(bp, lang=lang, audit=checks is not None, checks=checks)
    renderers = {"text": backprop_text, "markdown": backprop_markdown, "latex": backprop_latex}
    return renderers[fmt](bp, lang=lang, checks=checks)


def emit_backprop(bp: Any, args: argparse.Namespace, checks: Any = None) -> None:
    """Write ``bp`` (and ``checks``) in the format of ``args`` (``--format`` or the suffix of ``-o``)."""
    fmt = _format(args)
    if fmt != "pdf":
        emit(render(bp, fmt, args.lang, checks), args)
        return
    if not args.output:
        raise CliError("the pdf format is written to a file: give -o FILE.pdf")
    from derive.render.pdf import TexCompileError, TexNotFoundError, write_pdf

    try:
        write_pdf(bp, args.output, lang=args.lang, checks=checks)
    except (TexNotFoundError, TexCompileError) as e:
        raise CliError(str(e)) from e
    except OSError as e:
        raise CliError(_os_error(e, args.output)) from e


def _os_error(e: OSError, path: str) -> str:
    """``cannot write PATH: reason``, however the OSError was made."""
    message = e.strerror or str(e)
    return message if message.startswith("cannot write") else f"cannot write {path}: {message}"


def emit(text: str, args: argparse.Namespace) -> None:
    """Write ``text`` to ``-o FILE`` or to standard output."""
    if getattr(args, "output", None):
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise CliError(_os_error(e, args.output)) from e
        return
    if sys.stdout is None:  # started with standard output closed (tracegrad >&-)
        raise _StdoutError("standard output is closed (give -o FILE to write to a file)")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:  # > /dev/full
        raise _StdoutError(f"cannot write to standard output: {e.strerror or e}") from e


def _run_seed(args: argparse.Namespace) -> int:
    net = seed_network_from(args)
    bp = _backprop()(net)
    # every format ends with the numbers: a gradient check and the audit of the seed's formulas
    from derive.render.checks import network_checks

    emit_backprop(bp, args, checks=network_checks(bp))
    return 0


def version() -> str:
    """tracegrad's version: the installed package's, else ``derive.__version__``."""
    from importlib import metadata

    try:
        return metadata.version("tracegrad")
    except metadata.PackageNotFoundError:
        from derive import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser: the seed derivation's options at the top level, then one subparser per command."""
    parser = _Parser(
        prog=PROG,
        description="Derive gradients of matrix expressions step by step with trace differentials. "
                    "With no command: the seed network h = XW1 + 1b1, H = σ(h), Ypred = HW2 + 1b2, "
                    "f = ‖Y − Ypred‖²_F.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
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


def _say(line: str) -> None:
    """``line`` on standard error, where there is one."""
    if sys.stderr is not None:
        try:
            print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass  # standard error is gone too: the exit status says it


def _fail(message: str, status: int = 2) -> int:
    _say(f"{PROG}: error: {' '.join(message.split())}")
    return status


def _discard_stdout() -> None:
    """Point the standard output at /dev/null, so that the interpreter's last flush of what could not
    be written (a closed pipe, a full disk) raises nothing at exit."""
    try:
        fd = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):
        return
    os.dup2(null, fd)
    os.close(null)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tracegrad`` with ``argv`` (default: the process's arguments); returns the exit status.

    >>> main(["--dims", "n=x"])
    2
    """
    stdout = sys.stdout
    errors = getattr(stdout, "errors", None)
    try:
        if errors == "strict" and "utf" not in (getattr(stdout, "encoding", "") or "").lower():
            stdout.reconfigure(errors="backslashreplace")  # PYTHONIOENCODING=ascii: ⊙ as \u2299
        try:
            status = _run(argv)
            if sys.stdout is not None:
                sys.stdout.flush()  # --help or --version into a full disk fails here, not at exit
            return status
        except BrokenPipeError:
            # the reader went away (tracegrad | head): stop quietly, as other command-line tools do
            _discard_stdout()
            return 0
        except OSError as e:  # the flush above
            _discard_stdout()
            return _fail(f"cannot write to standard output: {e.strerror or e}")
        except _StdoutError as e:
            _discard_stdout()
            return _fail(str(e))
        finally:
            if errors == "strict" and sys.stdout is stdout and stdout.errors != errors:
                stdout.reconfigure(errors=errors)
    except KeyboardInterrupt:
        return _interrupted()


def _interrupted() -> int:
    """Ctrl-C: one line and exit status 130 (128 + SIGINT), as a shell reports it."""
    try:  # a second Ctrl-C while the line is written must not end in a traceback
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        previous = None
    try:
        _say(f"{PROG}: interrupted")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except SystemExit as e:  # --help and --version exit through argparse
        return e.code if isinstance(e.code, int) else 0
    except _StdoutError:
        raise
    except CliError as e:
        return _fail(str(e))
    except (TypeError, ValueError, NotImplementedError) as e:
        return _fail(str(e) or type(e).__name__)
    except RuntimeError as e:
        return _fail(str(e), status=1)
    except BrokenPipeError:
        raise
    except OSError as e:  # a file that cannot be written, wherever it is opened
        return _fail(f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}")
    except Exception as e:  # a defect of tracegrad: still one line
        if os.environ.get("TRACEGRAD_TRACEBACK"):
            raise
        return _fail(f"internal error ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                     "set TRACEGRAD_TRACEBACK=1 for the traceback", status=1)


def _register_commands() -> None:
    from derive.commands import COMMANDS as subcommands

    COMMANDS.extend(c for c in subcommands if c.name not in {x.name for x in COMMANDS})


_register_commands()
