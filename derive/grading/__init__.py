"""Grading a whole write-up (``tracegrad grade WRITEUP.md``): extraction of its equations
(:mod:`.extract`), its LaTeX read into the expression language (:mod:`.latex`), the network from
``--net`` or its problem statement (:mod:`.network`), values and differentials at random data
(:mod:`.evaluate`), the verdicts (:mod:`.grade`) and their writers (:mod:`.report`)."""
from __future__ import annotations

from derive.grading.grade import Entry, GradeError, Reading, Report, grade

__all__ = ["Entry", "GradeError", "Reading", "Report", "grade"]
