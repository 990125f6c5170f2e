"""One array-API kernel for every library, against the kernels printed per library (issue 13).

:class:`ArrayApiBackend` prints the schedule of :func:`numeric.compile` once, as code that asks
``array_api_compat.array_namespace(*arrays)`` for the namespace ``xp`` at each call and calls only
functions of the array API standard (``xp.tanh``, ``xp.sum(a, axis=0, keepdims=True)``,
``xp.linalg.solve``, ``a.T``, ``@``).  The same module then runs on NumPy, PyTorch, JAX (also under
``jax.jit``) and array-api-strict.  Its argument checks are the shape checks of
:mod:`numeric.numpy_checks` with a dtype vote written against the standard, as cheap as the
per-library ones.  ``benchmarks/bench_kernels.py --array-api`` times it beside the printed kernels;
run alone, this script checks it on every installed library against hand-written NumPy and prints
the first lines of its body.

    python benchmarks/bench_array_api.py

The measurement decided against it as a backend (docs/benchmarks.md): it is never faster than the
printed kernel, and on NumPy's small sizes ``array_namespace`` and the wrapped functions of
``array_api_compat.numpy`` cost more than the 5 % the NumPy target leaves.  It stays a benchmark.
"""
from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from typing import ClassVar
from pathlib import Path

import sympy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numeric import numpy_checks  # noqa: E402
from numeric.backend import Backend, KernelModule  # noqa: E402
from numeric.ir import Node  # noqa: E402
from numeric.numpy_backend import NumericPrinter  # noqa: E402
from numeric.registry import ATOM, MUL  # noqa: E402

# The module's checks: the namespace of the arguments, the count, the shapes (numpy_checks'
# library-neutral _check_shape), one float dtype (float32 and float64 kept when all agree).
_CHECKS = '''
from array_api_compat import array_namespace


def _prepare(arrays, spec, signature, dtype):
    if len(arrays) != len(spec):
        raise TypeError(f"{signature} takes {len(spec)} arguments, got {len(arrays)}")
    xp = array_namespace(*arrays)
    dims = {}
    votes = set()
    for a, (name, shape) in zip(arrays, spec):
        _check_shape(a, name, shape, dims)
        votes.add(a.dtype if a.dtype in (xp.float32, xp.float64) else xp.float64)
    if dtype is None:
        dtype = votes.pop() if len(votes) == 1 else xp.float64
    return [a if a.dtype == dtype else xp.astype(a, dtype) for a in arrays], dtype, xp
'''


class ArrayApiPrinter(NumericPrinter):
    """Array-API code: ``xp.`` functions, reductions as functions with ``axis``/``keepdims``."""

    _CALLS: ClassVar[dict[str, str | None]] = {"sumall": "sum", "inv": "linalg.inv", "det": "linalg.det", "solve": "linalg.solve",
              "kron": None, "diagflat": None, "trace": None, "slogdet": None}

    def _op(self, node: Node) -> tuple[str, int]:
        if node.op == "vdot":
            a, b = node.args
            return f"xp.sum({self._wrap(a, MUL)} * {self._wrap(b, MUL, strict=True)})", ATOM
        if node.op in self._CALLS:
            name = self._CALLS[node.op]
            if name is None:
                raise NotImplementedError(f"{node.op} is not written for the array API here")
            return f"xp.{name}({', '.join(self.emit(a) for a in node.args)})", ATOM
        if node.op in ("vec", "commutation", "gram", "adddiag", "expm", "spdpow", "spdpowv", "matpowv",
                       "matpow", "multidot", "copy", "bcastcopy"):
            raise NotImplementedError(f"{node.op} is not written for the array API here")
        return super()._op(node)

    def _np(self, name: str) -> str:
        return f"xp.{name}"

    def _op_sum0(self, node: Node) -> tuple[str, int]:
        return f"xp.sum({self.emit(node.args[0])}, axis=0, keepdims=True)", ATOM

    def _op_sum1(self, node: Node) -> tuple[str, int]:
        return f"xp.sum({self.emit(node.args[0])}, axis=1, keepdims=True)", ATOM

    def _op_max(self, node: Node) -> tuple[str, int]:
        return f"xp.max({self.emit(node.args[0])}, axis={node.attr}, keepdims=True)", ATOM


class ArrayApiBackend(Backend):
    """Kernels as modules that import array_api_compat only; ``xp`` is looked up at each call."""

    name = "array_api"
    reserved = frozenset({"xp", "array_namespace", "_SPEC", "_DTYPE", "_prepare", "_check_shape",
                          "_shape_error", "_shape_text"})

    def printer(self, names: Mapping[Node, str], dim_code: Mapping[sympy.Basic, str]) -> ArrayApiPrinter:
        return ArrayApiPrinter(names=dict(names), dim_code=dict(dim_code), dtype_code=self.dtype_name,
                               module="xp")

    def prologue(self, kernel: KernelModule) -> str:
        shared = "\n\n".join(inspect.getsource(getattr(numpy_checks, n))
                             for n in ("_shape_text", "_check_shape", "_shape_error"))
        return "\n".join([_CHECKS.strip(), "", "", shared, "", "", f"_SPEC = {kernel.spec!r}", "_DTYPE = None"])

    def entry(self, kernel: KernelModule) -> list[str]:
        return [f"    ({', '.join(kernel.params)},), {self.dtype_name}, xp = "
                f"_prepare(arrays, _SPEC, {kernel.signature!r}, _DTYPE)"]

    def scalar_result(self, code: str) -> str:
        return code

    def cast(self, code: str) -> str:
        return f"xp.astype({code}, {self.dtype_name})"


ARRAY_API = ArrayApiBackend()


def main() -> None:
    import importlib.util

    import numpy as np

    import bench_kernels as bk

    kernel = bk.seed_kernel(ARRAY_API)
    body = kernel.source[kernel.source.index("    _t0"):]
    print(body)
    for size in bk.SIZES[:1]:
        for dt in bk.DTYPES:
            data = bk.make_data(size, dt)
            want = bk.hand_backprop(*data)
            libraries = {"numpy": lambda a: a}
            if importlib.util.find_spec("array_api_strict"):
                import array_api_strict
                libraries["array_api_strict"] = array_api_strict.asarray
            if importlib.util.find_spec("torch"):
                import torch
                libraries["torch"] = torch.from_numpy
            if importlib.util.find_spec("jax"):
                import jax
                jax.config.update("jax_enable_x64", True)
                libraries["jax"] = jax.numpy.asarray
                libraries["jax.jit"] = jax.numpy.asarray
            for lib, convert in libraries.items():
                fn = jax.jit(kernel) if lib == "jax.jit" else kernel
                got = fn(*[convert(a) for a in data])
                err = max(float(np.max(np.abs(np.asarray(g, np.float64) - np.asarray(w, np.float64))))
                          / max(1.0, float(np.max(np.abs(w)))) for g, w in zip(got, want))
                print(f"{size} {dt} {lib}: largest relative difference from hand NumPy {err:.1e}")


if __name__ == "__main__":
    main()
