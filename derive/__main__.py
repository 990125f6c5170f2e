"""``python -m derive``: the ``tracegrad`` command."""
from __future__ import annotations

from derive.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
