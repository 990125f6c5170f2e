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

import re
from collections.abc import Callable

from numeric import ir, printer
from numeric.check import check_gradient
from numeric.compile import Kernel, compile
from numeric.export import export
from numeric.printer import NumericPrinter

__all__ = ["Kernel", "NumericPrinter", "check_gradient", "compile", "export", "register_function"]


def register_function(name: str, numpy: str, scalar: Callable[[float], float] | None = None) -> None:
    """Kernels compute the SymPy function class ``name`` (its ``__name__``) elementwise as ``numpy``,
    NumPy code with ``{x}``; ``scalar`` folds it at constants.  A name numeric knows keeps its code.

    >>> register_function("DoctestCube", "{x}**3")
    >>> from sympy import Function, MatrixSymbol, Lambda, Dummy
    >>> x, X = Dummy("x"), MatrixSymbol("X", 2, 3)
    >>> NumericPrinter().doprint((2 * X).applyfunc(Lambda(x, Function("DoctestCube")(x))))
    '(2 * X)**3'
    """
    # a stub over the tables of numeric.ir and numeric.printer until numeric's own registration lands
    ours = ir._SYMPY_FUNCTIONS.setdefault(name, name)
    if ours not in printer._FUNCTION_CODE:
        call = re.fullmatch(r"numpy\.\w+\(\{x\}(, [\w.]+)*\)", numpy) is not None
        printer._FUNCTION_CODE[ours] = (numpy, printer.ATOM if call else printer.ADD)
        if not call:
            printer._FUNCTION_ARG_PREC[ours] = printer.POW
    if scalar is not None:
        ir.FUNCTIONS.setdefault(ours, scalar)
    setattr(NumericPrinter, f"_print_{name}", NumericPrinter._print_matrix_calculus)
