"""The ``tracegrad`` command.

With no command it derives the seed network's gradients step by step and prints them::

    tracegrad                                  # text in the terminal, then the gradient table
    tracegrad --lang zh --format latex -o seed.tex
    tracegrad --format pdf -o seed.pdf             # runs pdflatex (xelatex for --lang zh)
    tracegrad -o seed.html                         # one self-contained page, mathematics as MathML
    tracegrad --bias full --dims n=64,d=32,m=16,k=4

Subcommands are registered in :data:`COMMANDS`, one :class:`Command` each (``derive.commands``); a
command reuses the shared options of :mod:`derive.cli_options`: :func:`add_output_options` /
:func:`add_network_options` (with ``inherit=True``, so that options given before the command name
still count) and :func:`seed_network_from` / :func:`emit`.

Every error a user can cause ends in one line, ``tracegrad: error: …``, and exit status 2 (a file or
standard output that cannot be written included); Ctrl-C ends in ``tracegrad: interrupted`` and exit
status 130; an error of tracegrad itself in one line and exit status 1.  Output that the terminal's
encoding cannot show (``PYTHONIOENCODING=ascii``) is written with backslash escapes (``\\u2299``).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from derive.cli_options import (
    PROG, CliError, Command, OptionParser, StdoutError, add_item_list, add_network_options,
    add_output_options, emit, emit_backprop, parse_dims, render, seed_network_from,
)
from derive.commands import COMMANDS as _SUBCOMMANDS

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

# The subcommands (derive.commands).  To add one, append Command(name, help, add_arguments, run) there.
COMMANDS: list[Command] = list(_SUBCOMMANDS)


def _run_seed(args: argparse.Namespace) -> int:
    from derive.backprop import backprop

    net = seed_network_from(args)
    bp = backprop(net)
    # every format ends with the numbers: a gradient check and the audit of the seed's formulas
    from derive.render.checks import network_checks

    emit_backprop(bp, args, checks=network_checks(bp, langs=(args.lang,)))
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
    parser = OptionParser(
        prog=PROG,
        description="Derive gradients of matrix expressions step by step with trace differentials. "
                    "With no command: the seed network h = XW1 + 1b1, H = σ(h), Ypred = HW2 + 1b2, "
                    "f = ‖Y − Ypred‖²_F.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    add_output_options(parser)
    add_network_options(parser)
    parser.set_defaults(run=_run_seed)
    if COMMANDS:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OptionParser)
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
        except StdoutError as e:
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
    except StdoutError:
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
