"""Test-wide settings: Hypothesis runs a fixed, derandomized set of examples on every run (locally
and in CI alike) and keeps no example database, so that a run never depends on an earlier one.

``TRACEGRAD_HYPOTHESIS=explore`` draws new random examples instead (and prints the seed of a
failure), for looking for new failures; what it finds becomes an explicit test."""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("TRACEGRAD_HYPOTHESIS", "deterministic"))
