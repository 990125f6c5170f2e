"""tracegrad.numeric: SymPy matrix expressions compiled to fast NumPy kernels.

* :func:`compile` — expressions → :class:`Kernel` (CSE across outputs, argument checks);
* :func:`export` — the same kernel as a standalone module (NumPy, PyTorch, JAX or CuPy);
* :func:`export_autograd` — a loss whose PyTorch (``autograd.Function``, ``nn.Module``) or JAX
  (``custom_vjp``) derivative is its derived gradients, as a standalone module;
* :func:`check_gradient` — a gradient expression against central differences;
* :func:`register_function` — the NumPy code of an elementwise SymPy function, by class name.
  numeric imports nothing from derive: derive registers its functions, with
  :func:`register_gradient` its gradient (the default of ``check_gradient``), and with
  :func:`register_notation` its notation (kernels' docstrings and messages: ``2Xᵀ[…]``);
* a backend (:class:`Backend`) writes the kernels' modules; NumPy's is the default,
  ``compile(..., backend="torch" | "jax" | "auto")`` prints the same schedule for PyTorch or JAX
  (:mod:`numeric.array_backends`; the extras ``tracegrad[torch]``, ``tracegrad[jax]``);
  ``backend="cupy"`` for CuPy (``tracegrad[cupy]``);
  ``backend="dask"`` builds lazy dask arrays (:mod:`numeric.dask_backend`, ``tracegrad[dask]``).

>>> from sympy import MatrixSymbol
>>> import numpy as np
>>> X = MatrixSymbol("X", 2, 3)
>>> compile(2 * X, [X])(np.ones((2, 3))).tolist()
[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
"""
from __future__ import annotations

from numeric.autograd import export_autograd
from numeric.backend import Backend
from numeric.check import check_gradient
from numeric.compile import Kernel, compile
from numeric import dask_backend  # noqa: F401  (registers backend="dask"; imports dask only when used)
from numeric.export import export
from numeric.numpy_backend import NumericPrinter, NumPyBackend
from numeric.registry import register_function, register_gradient, register_notation

__all__ = ["Backend", "Kernel", "NumPyBackend", "NumericPrinter", "check_gradient", "compile", "export",
           "export_autograd", "register_function", "register_gradient", "register_notation"]
