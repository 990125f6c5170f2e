"""Test-wide settings: in CI (CI=true) hypothesis runs a fixed, derandomized set of examples,
so that a run on main is reproducible; locally it explores new examples each run."""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
