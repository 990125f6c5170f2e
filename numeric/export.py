"""``numeric.export``: a compiled kernel written out as a standalone module for one array library
(NumPy, PyTorch, JAX or CuPy), which imports that library only."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy import MatrixSymbol

from numeric import registry
from numeric.array_backends import backend_named
from numeric.backend import Backend
from numeric.compile import Stages, _default_doc, generate
from numeric.numpy_backend import NUMPY

__all__ = ["export", "module_source"]

# what a module's docstring says of its arguments, by backend
_LIBRARY_NOTES: dict[str, tuple[str, ...]] = {
    "numpy": ("This module needs NumPy only.  Arguments are 2-D arrays; dimensions named by",
              "letters must agree between arguments.  float32 inputs give float32 results;",
              "float16 is computed in float32, integers and mixed dtypes in float64.",
              "np.matrix arguments are converted to plain arrays; masked arrays are refused."),
    "torch": ("This module needs PyTorch (torch) only.  Arguments are 2-D tensors on one device;",
              "dimensions named by letters must agree between arguments.  Results are tensors on",
              "that device.  float32 stays float32, float64 float64; float16 and bfloat16 are",
              "computed in float32, integers and mixed dtypes in float64."),
    "jax": ("This module needs JAX only; its functions run under jax.jit.  Arguments are 2-D",
            "arrays; dimensions named by letters must agree between arguments.  Results are JAX",
            "arrays.  float32 stays float32 (float64 needs jax_enable_x64); float16 is computed",
            "in float32, integers and mixed dtypes in the widest float JAX allows."),
    "cupy": ("This module needs CuPy only.  Arguments are 2-D cupy arrays on one GPU (a NumPy",
             "array is refused, not copied over); dimensions named by letters must agree between",
             "arguments.  Results stay on that GPU.  float32 stays float32; float16 is computed",
             "in float32, integers and mixed dtypes in float64."),
}


def export(exprs: sympy.Basic | Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol],
           path: str | os.PathLike[str], name: str = "kernel", *, dtype: Any = None,
           describe: Callable[[sympy.Basic], str] | None = None, backend: Backend | str = NUMPY,
           stages: Stages = ()) -> Path:
    """Write a module defining ``name(*arrays)`` to ``path``; it imports one array library only:
    ``backend`` is ``"numpy"`` (the default), ``"torch"``, ``"jax"`` or ``"cupy"``
    (:mod:`numeric.array_backends`).

    The module checks its arguments as a compiled kernel does and returns the same
    values.  Its docstrings list what it returns, each expression written by
    ``describe`` (default: the registered notation, tracegrad's 2Xᵀ[… ⊙ σ(h)] once derive is
    imported, else ``str``).  ``stages`` is a program, as for :func:`numeric.compile`.
    Returns the path written.  For a loss that PyTorch or JAX differentiate with the
    derived gradients, see :func:`numeric.export_autograd`.

    >>> import tempfile, importlib.util
    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 2, 2)
    >>> p = export(X * X, [X], tempfile.mkdtemp() + "/square.py", name="square")
    >>> spec = importlib.util.spec_from_file_location("square", p)
    >>> mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    >>> mod.square([[1, 2], [3, 4]]).tolist()
    [[7.0, 10.0], [15.0, 22.0]]
    """
    if isinstance(backend, str):
        backend = backend_named(backend)
    path = Path(path)
    path.write_text(module_source(exprs, args, name, dtype=dtype, describe=describe, backend=backend,
                                  stages=stages), encoding="utf-8")
    return path


def module_source(exprs: sympy.Basic | Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol],
                  name: str = "kernel", *, dtype: Any = None, describe: Callable[[sympy.Basic], str] | None = None,
                  backend: Backend = NUMPY, stages: Stages = ()) -> str:
    """The text of the module :func:`export` writes, for ``backend`` (default NumPy; also
    ``numeric.array_backends.TORCH``, ``JAX`` or ``CUPY``: writing their source needs none of those libraries).

    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 2, 2)
    >>> "def square(" in module_source(X * X, [X], name="square")
    True
    """
    is_list = isinstance(exprs, (list, tuple))
    exprs_t = tuple(sympy.sympify(e) for e in (exprs if is_list else [exprs]))
    dt = None if dtype is None else np.dtype(dtype)
    describe = describe or registry.notation()
    gen = generate(exprs_t, tuple(args), is_list=is_list, dtype=dt, name=name, backend=backend, stages=stages,
                   doc=_default_doc(exprs_t, tuple(args), is_list, describe))
    header = _module_doc(exprs_t, tuple(args), is_list, name, describe, backend.name)
    return f'{header}\n{gen.source}\n__all__ = ["{name}"]\n'


def _module_doc(exprs: tuple, args: tuple, is_list: bool, name: str,
                describe: Callable[[sympy.Basic], str], library: str = "numpy", *,
                what: str = "numeric.export") -> str:
    call = f"{name}({', '.join(a.name for a in args)})"
    scalars = [a.name for a in args if not isinstance(a, MatrixSymbol)]
    notes = _LIBRARY_NOTES.get(library, (f"This module was written by the {library} backend.",))
    lines = [
        f"{call}: generated by tracegrad's {what}. Do not edit.",
        "",
        *notes,
        *([f"{', '.join(scalars)} {'is a scalar' if len(scalars) == 1 else 'are scalars'}: a real number "
           "(or an array of size 1), computed in the arrays' dtype."] if scalars else []),
        "",
        _default_doc(exprs, args, is_list, describe).replace("Generated by numeric.compile.\n\n", ""),
    ]
    if is_list:
        lines.append(f"The call returns a tuple of {len(exprs)} values in this order.")
    text = "\n".join(lines).rstrip() + "\n"
    return f'"""{text}"""'
