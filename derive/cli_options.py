"""The options and output plumbing that the ``tracegrad`` command and its subcommands share.

:func:`add_output_options` / :func:`add_network_options` declare the options (with ``inherit=True`` in a
subcommand, so that options given before the command name still count), :func:`parse_dims` reads
``--dims``, :func:`seed_network_from` builds the network they describe, :func:`emit` /
:func:`emit_backprop` write the result.  This module imports no subcommand: ``derive.cli`` (the command)
and ``derive.commands`` (the subcommands) both import it.
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
    "FORMATS",
    "LANGS",
    "PROG",
    "SEED_DIMS",
    "CliError",
    "Command",
    "OptionParser",
    "StdoutError",
    "add_item_list",
    "add_network_options",
    "add_output_options",
    "cannot_write",
    "emit",
    "emit_backprop",
    "output_format",
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


class StdoutError(CliError):
    """Standard output is closed or cannot be written (a full disk, /dev/full)."""


# a single-dash argument with a character no option name has ("-tr(A)", "-2*X'*Y") is an expression
_NOT_AN_OPTION = re.compile(r"-.*[^\w=-]")


class OptionParser(argparse.ArgumentParser):
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
            raise StdoutError("standard output is closed")
        try:
            file.write(message)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutError(f"cannot write to standard output: {e.strerror or e}") from e

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


def output_format(args: argparse.Namespace) -> str:
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
    fmt = output_format(args)
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
        raise CliError(cannot_write(e, args.output)) from e


def cannot_write(e: OSError, path: str) -> str:
    """``cannot write PATH: reason``, however the OSError was made."""
    message = e.strerror or str(e)
    return message if message.startswith("cannot write") else f"cannot write {path}: {message}"


def emit(text: str, args: argparse.Namespace) -> None:
    """Write ``text`` to ``-o FILE`` or to standard output."""
    if getattr(args, "output", None):
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise CliError(cannot_write(e, args.output)) from e
        return
    if sys.stdout is None:  # started with standard output closed (tracegrad >&-)
        raise StdoutError("standard output is closed (give -o FILE to write to a file)")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:  # > /dev/full
        raise StdoutError(f"cannot write to standard output: {e.strerror or e}") from e
