"""The seam between a kernel's schedule and the array library that runs it.

:func:`numeric.compile.generate` lowers the expressions (:mod:`numeric.lower`) and orders the
computation (:mod:`numeric.schedule`) without knowing the library; a :class:`Backend` then
writes the Python module: a printer for the nodes (the library's functions), the checks and
conversions of the arguments, and the module around them.  The NumPy backend is
:mod:`numeric.numpy_backend`; another library is one module with a subclass, as SymPy's
``JaxPrinter`` and ``CuPyPrinter`` set their ``_module``.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sympy
from sympy import MatrixSymbol

from numeric.ir import Node

__all__ = ["Backend", "KernelModule", "NodePrinter"]


class NodePrinter(Protocol):
    """What a backend's printer does: code for a node, by name where it has one."""

    def emit(self, node: Node) -> str:
        """Code for ``node``: its variable's name if it has one, else its expression."""

    def define(self, node: Node) -> str:
        """The expression that computes ``node`` (not its own variable)."""


@dataclass(frozen=True)
class KernelModule:
    """Everything a backend needs to write one kernel's module.

    ``params`` are the Python names of ``args`` inside the function; ``spec`` is
    ``((name, (dim0, dim1) or None), ...)`` with a dimension an int or the name of a symbol;
    ``body`` the statements, ``results`` the returned expressions; ``dtype`` a NumPy dtype that
    forces the computation's dtype, or None.
    """

    name: str
    doc: str
    args: tuple[MatrixSymbol | sympy.Symbol, ...]
    params: tuple[str, ...]
    spec: tuple[tuple[str, tuple[int | str, ...] | None], ...]
    dtype: Any
    body: tuple[str, ...]
    results: tuple[str, ...]
    is_list: bool

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(a.name for a in self.args)})"


class Backend:
    """How a scheduled kernel becomes a Python module for one array library.

    A subclass gives the printer of nodes (:meth:`printer`), the module's prologue (imports,
    argument checks), the function's first lines (:meth:`entry`: check and convert ``arrays``,
    bind each parameter and :attr:`dtype_name`, the dtype of the computation), and the
    conversions of the results.  The rest is Python and shared.
    """

    #: a short name, for messages and the kernel cache
    name: str = "backend"
    #: the module-level names of the generated module (a kernel may not take one)
    reserved: frozenset[str] = frozenset()
    #: the local variable that holds the dtype of the computation
    dtype_name: str = "_dt"
    #: whether the printer writes a function of dimensions (√d, log n) on a scalar of the computation's
    #: dtype (``NumericPrinter.number_format``); where it does not, such a value is a float64 that may
    #: promote float32 arrays, and the kernel casts its outputs back
    typed_numbers: bool = False

    def printer(self, names: Mapping[Node, str], dim_code: Mapping[sympy.Basic, str]) -> NodePrinter:
        """A printer that writes ``names[node]`` for named nodes and ``dim_code[d]`` for a dimension."""
        raise NotImplementedError

    def prologue(self, kernel: KernelModule) -> str:
        """The module's source before the function: imports, helpers, constants."""
        raise NotImplementedError

    def entry(self, kernel: KernelModule) -> list[str]:
        """The function's first lines (indented): check and convert ``arrays``, bind the parameters."""
        raise NotImplementedError

    def scalar_result(self, code: str) -> str:
        """A scalar output, as a scalar of the computation's dtype."""
        raise NotImplementedError

    def cast(self, code: str) -> str:
        """An array output, cast to the computation's dtype (where a function of numbers only may
        have changed it)."""
        raise NotImplementedError

    def shape_code(self, param: str, axis: int) -> str:
        """The length of the argument ``param`` along ``axis``."""
        return f"{param}.shape[{axis}]"

    def assign(self, var: str, code: str) -> str:
        return f"{var} = {code}"

    def statements(self, var: str, node: Node, printer: NodePrinter, in_place: bool) -> list[str]:
        """The statements that compute ``node`` into the variable ``var``: one assignment here; a
        backend may compute an elementwise chain in place on an array the statement has just created
        (``in_place`` is False where that could change a dtype: see :func:`numeric.schedule.schedule`)."""
        return [self.assign(var, printer.define(node))]

    def delete(self, variables: Sequence[str]) -> str:
        return f"del {', '.join(variables)}"

    def source(self, kernel: KernelModule) -> str:
        """The module's source: the prologue, then ``def name(*arrays)``."""
        results = kernel.results
        ret = f"({', '.join(results)}{',' if len(results) == 1 else ''})" if kernel.is_list else results[0]
        lines = [
            f"def {kernel.name}(*arrays):",
            textwrap.indent(f'"""{kernel.doc}"""', "    "),
            *self.entry(kernel),
            *("    " + line for line in kernel.body),
            f"    return {ret}",
        ]
        return "\n".join([self.prologue(kernel).rstrip(), "", "", *lines, ""])
