"""Test-wide settings: Hypothesis runs a fixed, derandomized set of examples on every run (locally
and in CI alike) and keeps no example database, so that a run never depends on an earlier one.

``TRACEGRAD_HYPOTHESIS=explore`` draws new random examples instead (and prints the seed of a
failure), for looking for new failures; what it finds becomes an explicit test."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from tests.oracle import seed_data

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("TRACEGRAD_HYPOTHESIS", "deterministic"))


@pytest.fixture
def seed_values() -> dict[str, np.ndarray]:
    """The seed network's test data at n=4, d=3, m=5, k=2 (row biases, float64, seed 0): :func:`tests.oracle.seed_data`."""
    return seed_data()
