"""tracegrad.numeric: SymPy matrix expressions compiled to fast NumPy kernels.

* :func:`compile` — expressions → :class:`Kernel` (CSE across outputs, argument checks);
* :func:`export` — the same kernel as a standalone NumPy module;
* :func:`check_gradient` — a gradient expression against central differences;
* :mod:`numeric.reference` — the seed document's formulas in NumPy, audited.

>>> from sympy import MatrixSymbol
>>> import numpy as np
>>> X = MatrixSymbol("X", 2, 3)
>>> compile(2 * X, [X])(np.ones((2, 3))).tolist()
[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
"""
from __future__ import annotations

from numeric.check import check_gradient
from numeric.compile import Kernel, compile
from numeric.export import export
from numeric.printer import NumericPrinter

__all__ = ["Kernel", "NumericPrinter", "check_gradient", "compile", "export"]
