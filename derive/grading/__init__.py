"""Grading a whole write-up (``tracegrad grade WRITEUP.md``): extraction of its equations
(:mod:`.extract`), its LaTeX read into the expression language (:mod:`.latex`), the network from
``--net`` or its problem statement (:mod:`.network`), values and differentials at random data
(:mod:`.evaluate`), the verdicts (:mod:`.grade`) and their writers (:mod:`.report`)."""
from __future__ import annotations

from importlib import resources

from derive.grading.grade import Entry, GradeError, Reading, Report, grade

__all__ = ["Entry", "GradeError", "Reading", "Report", "grade", "seed_writeup"]


def seed_writeup() -> str:
    """The seed write-up (a student's homework, in Chinese; ../shared/seed/000_4129d02100056eea.txt),
    shipped with the package.

    >>> "问题描述" in seed_writeup()
    True
    """
    return resources.files("derive.grading").joinpath("seed_writeup.md").read_text(encoding="utf-8")
