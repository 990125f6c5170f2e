"""``python -m derive`` and the ``tracegrad`` command: :func:`derive.cli.main`.

:func:`run` is the entry point of the ``tracegrad`` script: it answers Ctrl-C while the command
loads as :func:`derive.cli.main` does while it runs (one line, exit status 130), so that this
module and ``derive/__init__.py`` are all that loads before Ctrl-C is handled.
"""
from __future__ import annotations

import signal
import sys


def run() -> int:
    """Run ``tracegrad`` with the process's arguments; returns the exit status."""
    try:
        from derive.cli import main

        status = main()
        # done: a Ctrl-C now has nothing to interrupt, and must not kill the interpreter as it shuts
        # down (silently, by SIGINT: Python restores the default action then)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return status
    except KeyboardInterrupt:  # before main() could answer it
        if sys.stderr is not None:
            sys.stderr.write("tracegrad: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(run())
