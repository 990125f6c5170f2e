"""Jobs for the worker-pool tests (tests/derive/serve/test_pool.py), run in the pool's workers:
``RUNNER = "tests.derive.serve.pool_runner:run"``."""
from __future__ import annotations

import os
import time
from typing import Any


def run(job: str, spec: Any) -> tuple[bool, Any]:
    if job == "echo":
        return True, spec
    if job == "sleep":
        time.sleep(spec)
        return True, spec
    if job == "allocate":   # spec bytes at once: past the worker's memory limit, a MemoryError
        block = bytearray(spec)
        return True, len(block)
    if job == "exit":
        os._exit(3)
    return True, os.getpid()
