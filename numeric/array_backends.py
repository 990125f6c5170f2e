"""The PyTorch and JAX backends: the NumPy backend's schedule printed for another array library.

:class:`TorchBackend` writes ``torch`` code (``@``, ``.sum(dim=, keepdim=)``, ``torch.exp`` …,
``torch.linalg.solve``/``slogdet``); :class:`JaxBackend` writes ``jax.numpy`` code that ``jax.jit``
traces (no data-dependent Python branches, no in-place updates).  Both keep the stable
log-sum-exp and softmax forms of :mod:`numeric.numpy_backend` (the row maximum subtracted first).
Results are arrays of the caller's library on the caller's device; float32 stays float32.
The argument checks are those of :mod:`numeric.torch_checks` and :mod:`numeric.jax_checks`, with
the shape checks of :mod:`numeric.numpy_checks` (library-neutral), copied into each module.

:class:`CuPyBackend` is the NumPy printer with the ``cupy`` module (:class:`CuPyPrinter`).
:func:`backend_named` maps ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"`` to a backend; a library that is not
installed is a one-line error naming the extra to install.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
import inspect
import re
from collections.abc import Mapping
from typing import ClassVar

import sympy

from numeric import numpy_checks, numpy_matfun
from numeric.backend import Backend, KernelModule
from numeric.ir import Node, is_number
from numeric.numpy_backend import NUMPY, NumericPrinter, is_new_array, _fast_check, _lit, _num
from numeric.registry import ADD, ATOM, MUL

__all__ = ["CUPY", "JAX", "TORCH", "CuPyBackend", "CuPyPrinter", "JaxBackend", "JaxPrinter", "TorchBackend",
           "TorchPrinter", "backend_named"]

_SHARED = ("_shape_text", "_check_shape", "_shape_error")  # library-neutral checks of numpy_checks


class _ArrayPrinter(NumericPrinter):
    """A :class:`NumericPrinter` for another library: nodes it cannot print raise one clear line."""

    backend_name = "array"
    #: IR operation → the function a person knows it by, for the error
    unsupported: ClassVar[Mapping[str, str]] = {}

    def _op(self, node: Node) -> tuple[str, int]:
        if node.op in self.unsupported:
            raise NotImplementedError(f"{self.unsupported[node.op]} is not supported by the "
                                      f"{self.backend_name} backend (use backend='numpy')")
        return super()._op(node)

    def _op_gram(self, node: Node) -> tuple[str, int]:
        P, v = node.args
        return f"{self._wrap(P, ATOM)}.T @ ({self._wrap(v, MUL)} * {self._wrap(P, MUL, strict=True)})", MUL

    def _op_adddiag(self, node: Node) -> tuple[str, int]:
        M, v = node.args
        return f"{self._wrap(M, ADD)} + {self._np('diagflat')}({self.emit(v)})", ADD


# operations whose code makes a new array (never a view or an argument): a product may multiply into it


class TorchPrinter(_ArrayPrinter):
    """PyTorch code for ``numeric.ir`` nodes.

    >>> from sympy import MatrixSymbol, OneMatrix, Symbol
    >>> n = Symbol("n", integer=True, positive=True)
    >>> G = MatrixSymbol("G", n, 3)
    >>> TorchPrinter(module="torch").doprint(2 * OneMatrix(1, n) * G)
    '2.0 * G.sum(dim=0, keepdim=True)'
    """

    backend_name = "torch"
    unsupported: ClassVar[Mapping[str, str]] = {"spdpow": "the power of a symmetric positive definite matrix",
                   "spdpowv": "the power of a symmetric positive definite matrix",
                   "matpowv": "a matrix power by a run-time exponent",
                   "commutation": "the commutation matrix"}
    _HELPERS: ClassVar[Mapping[str, str]] = {"maximum": "_maximum", "minimum": "_minimum", "logaddexp": "_logaddexp",
                "heaviside": "_heaviside"}

    def _library(self, code: str) -> str:
        return re.sub(r"\bnumpy\.(\w+)", lambda m: self._HELPERS.get(m.group(1)) or self._np(m.group(1)), code)

    def _op(self, node: Node) -> tuple[str, int]:
        if node.op == "sumall":
            return f"{self._wrap(node.args[0], ATOM)}.sum()", ATOM
        if node.op == "vdot":
            a, b = node.args
            return f"({self._wrap(a, MUL)} * {self._wrap(b, MUL, strict=True)}).sum()", ATOM
        return super()._op(node)

    def _op_vec(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.T.reshape(({self._dim(node.shape[0])}, 1))", ATOM

    def _op_fn(self, node: Node) -> tuple[str, int]:
        # torch's own fused sigmoid (one pass, finite everywhere) for NumPy's warning-free tanh form
        if node.attr == "Sigmoid" and not is_number(node.args[0]):
            x = node.args[0]
            if x.rt == node.rt and x not in self.names and is_new_array(x):
                return f"{self._wrap(x, ATOM)}.sigmoid_()", ATOM   # into the array just computed
            return f"torch.sigmoid({self.emit(x)})", ATOM
        return super()._op_fn(node)

    def _op_mul(self, node: Node) -> tuple[str, int]:
        # torch has no temporary elision (NumPy reuses a temporary's buffer in a * b): a product whose
        # result has the shape of a factor just computed multiplies into that factor, in place
        c = node.attr
        fused = self._sigmoid_backward(node)
        if fused is not None:
            return fused, ATOM
        base = next((f for f in node.args if f.rt == node.rt and f not in self.names and is_new_array(f)), None)
        if base is None or len(node.args) + (c != 1.0) < 2:
            return super()._op_mul(node)
        rest = list(node.args)
        rest.remove(base)
        code = self._wrap(base, ATOM) + "".join(f".mul_({self.emit(f)})" for f in rest)
        return code + (f".mul_({_lit(c)})" if c != 1.0 else ""), ATOM

    def _sigmoid_backward(self, node: Node) -> str | None:
        """G ⊙ (𝟏 − Y) ⊙ Y (a sigmoid's derivative, for any Y) as torch's one fused pass, which
        computes it in that order (1 − y exact near 1), where G and Y have the result's shape."""
        for one_minus in node.args:
            if one_minus.op == "add" and one_minus.attr == (1.0, (-1.0,)) and one_minus.args[0] in node.args:
                y = one_minus.args[0]
                rest = list(node.args)
                rest.remove(one_minus)
                rest.remove(y)
                g = next((f for f in rest if f.rt == node.rt), None)
                if g is None or y.rt != node.rt:
                    return None
                rest.remove(g)
                code = f"torch.ops.aten.sigmoid_backward({self.emit(g)}, {self.emit(y)})"
                code += "".join(f".mul_({self.emit(f)})" for f in rest)
                return code + (f".mul_({_lit(node.attr)})" if node.attr != 1.0 else "")
        return None

    def _op_add(self, node: Node) -> tuple[str, int]:
        # A·B + c·C as one torch.addmm (the product and the sum in one pass over the result)
        const, coefs = node.attr
        if const == 0.0 and len(node.args) == 2:
            for i in (0, 1):
                mm, other = node.args[i], node.args[1 - i]
                if mm.op == "matmul" and mm not in self.names and other.rt is not None:
                    a, b = mm.args
                    scale = "".join(f", {k}={_num(c)}" for k, c in (("beta", coefs[1 - i]), ("alpha", coefs[i]))
                                    if c != 1.0)
                    return f"torch.addmm({self.emit(other)}, {self.emit(a)}, {self.emit(b)}{scale})", ATOM
        return super()._op_add(node)

    def _op_eye(self, node: Node) -> tuple[str, int]:
        return f"torch.eye({self._dim(node.shape[0])}, dtype={self.dtype_code}, device=_dev)", ATOM

    def _op_full(self, node: Node) -> tuple[str, int]:
        return (f"torch.zeros({self._shape(node.shape)}, dtype={self.dtype_code}, device=_dev) + "
                f"{self._wrap(node.args[0], ADD, strict=True)}", ADD)

    def _op_bcastcopy(self, node: Node) -> tuple[str, int]:
        return f"{self._op_bcast(node)[0]}.clone()", ATOM

    def _op_copy(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.clone()", ATOM

    def _op_sum0(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.sum(dim=0, keepdim=True)", ATOM

    def _op_sum1(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.sum(dim=1, keepdim=True)", ATOM

    def _op_max(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.amax(dim={node.attr}, keepdim=True)", ATOM

    def _op_expm(self, node: Node) -> tuple[str, int]:
        return f"torch.linalg.matrix_exp({self.emit(node.args[0])})", ATOM


class JaxPrinter(_ArrayPrinter):
    """``jax.numpy`` code for ``numeric.ir`` nodes (NumPy's API, so mostly the NumPy printer's)."""

    backend_name = "jax"
    unsupported: ClassVar[Mapping[str, str]] = {"spdpow": "the power of a symmetric positive definite matrix",
                   "spdpowv": "the power of a symmetric positive definite matrix",
                   "matpowv": "a matrix power by a run-time exponent"}

    def _op_expm(self, node: Node) -> tuple[str, int]:
        return f"jax.scipy.linalg.expm({self.emit(node.args[0])})", ATOM

    def _op_fn(self, node: Node) -> tuple[str, int]:
        # JAX's own sigmoid (lax.logistic, which XLA lowers as it likes; finite everywhere)
        if node.attr == "Sigmoid" and not is_number(node.args[0]):
            return f"jax.nn.sigmoid({self.emit(node.args[0])})", ATOM
        return super()._op_fn(node)


class CuPyPrinter(_ArrayPrinter):
    """CuPy code for ``numeric.ir`` nodes: NumPy's, with the ``cupy`` module (CuPy mirrors NumPy's API).

    CuPy lacks ``linalg.multi_dot`` (the helper ``_multi_dot`` of :mod:`numeric.cupy_checks` orders
    the chain instead); ``M + diag(v)`` and Pᵀdiag(v)P are written out as for the other libraries,
    and the matrix functions are those of :mod:`numeric.numpy_matfun` with ``cupy`` for ``numpy``.

    >>> from sympy import MatrixSymbol, Symbol
    >>> n = Symbol("n", integer=True, positive=True)
    >>> A, B, C = MatrixSymbol("A", n, 3), MatrixSymbol("B", 3, 5), MatrixSymbol("C", 5, 2)
    >>> CuPyPrinter(module="cupy").doprint(A * B * C)
    '_multi_dot([A, B, C])'
    """

    backend_name = "cupy"

    def _op_multidot(self, node: Node) -> tuple[str, int]:
        return f"_multi_dot([{', '.join(self.emit(a) for a in node.args)}])", ATOM


def _checks_source(module: str) -> str:
    """The source of ``numeric/<module>.py`` from its first import on (read, not imported: importing
    it would import its library), with the shared checks of :mod:`numeric.numpy_checks`."""
    source = (Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    source = source[source.index("import "):]
    copied = [inspect.getsource(getattr(numpy_checks, n)) for n in _SHARED]
    for module_name, names in re.findall(r"^from numeric\.(\w+) import ([\w, ]+)", source, re.MULTILINE):
        if module_name != "numpy_checks":   # the library-neutral helpers a checks module imports
            helpers = importlib.import_module(f"numeric.{module_name}")
            copied += [inspect.getsource(getattr(helpers, n.strip())) for n in names.split(",")]
    source = "\n".join(line for line in source.splitlines() if not line.startswith("from numeric"))
    return source.rstrip() + "\n\n\n" + "\n\n".join(copied)


def _names(module: str) -> frozenset[str]:
    """The module-level names that the source of ``numeric/<module>.py`` defines or imports."""
    return frozenset(re.findall(r"^(?:def |import (?:\w+\.)*|from \S+ import |)(\w+)",
                                _checks_source(module), re.MULTILINE)) | {"jax", "jnp", "torch"}


class _ArrayBackend(Backend):
    """A backend whose module is the checks of ``numeric/<checks>.py`` then the kernel, printed by
    ``printer_class`` with the library called ``module``; ``_prepare`` also returns ``bound`` (after
    the parameters), and results are made the library's arrays by ``as_array`` (a format of the code)."""

    library = extra = checks = module = ""
    printer_class: ClassVar[type[_ArrayPrinter]] = _ArrayPrinter
    dtype_format = ""    # the code of a fixed dtype, from its NumPy name
    bound = ""           # what _prepare binds after the dtype
    as_array = ""
    number_format = ""   # a Python number as a scalar of the computation's dtype (default: as_array)
    imports = ""         # more imports of the module

    @property
    def typed_numbers(self) -> bool:  # type: ignore[override]
        return bool(self.number_format or self.as_array)

    def printer(self, names: Mapping[Node, str], dim_code: Mapping[sympy.Basic, str]) -> _ArrayPrinter:
        return self.printer_class(names=dict(names), dim_code=dict(dim_code), dtype_code=self.dtype_name,
                                  module=self.module, number_format=self.number_format or self.as_array)

    def prologue(self, kernel: KernelModule) -> str:
        dtype = "None" if kernel.dtype is None else self.dtype_format.format(kernel.dtype.name)
        return "\n".join([_checks_source(self.checks), self.imports, "", "",
                          f"_SPEC = {kernel.spec!r}", f"_DTYPE = {dtype}"])

    def entry(self, kernel: KernelModule) -> list[str]:
        params = kernel.params
        unpack = f"({', '.join(params)}{',' if len(params) == 1 else ''})" if params else "_"
        return [f"    {unpack}, {self.dtype_name}{self.bound} = _prepare(arrays, _SPEC, {kernel.signature!r}, _DTYPE)"]

    def scalar_result(self, code: str) -> str:
        return self.as_array.format(code=code, dt=self.dtype_name)

    def cast(self, code: str) -> str:
        return self.as_array.format(code=code, dt=self.dtype_name)


class TorchBackend(_ArrayBackend):
    """Kernels as modules that import torch only; tensors stay on their device."""

    name = library = extra = module = "torch"
    checks = "torch_checks"
    printer_class = TorchPrinter
    reserved = frozenset({"torch", "_SPEC", "_DTYPE", "_dev"}) | _names("torch_checks")
    dtype_format = "torch.{}"
    bound = ", _dev"
    as_array = "torch.as_tensor({code}, dtype={dt}, device=_dev)"

    def entry(self, kernel: KernelModule) -> list[str]:
        # well-formed float tensors on one device skip _prepare (whose checks cost 20 µs a call)
        fast = _fast_check(kernel, self.dtype_name, "torch.Tensor", same={"device": "_dev"},
                           convert="torch.as_tensor({v}, dtype=_d, device=_dev)")
        return [*fast, "    " + super().entry(kernel)[0]]


class JaxBackend(_ArrayBackend):
    """Kernels as modules that import jax only, traceable by ``jax.jit``."""

    name = library = extra = "jax"
    module = "jnp"
    checks = "jax_checks"
    printer_class = JaxPrinter
    reserved = frozenset({"jax", "jnp", "_SPEC", "_DTYPE"}) | _names("jax_checks")
    dtype_format = "jnp.dtype({!r})"
    as_array = "jnp.asarray({code}, dtype={dt})"
    imports = "import jax.nn\nimport jax.scipy.linalg"


class CuPyBackend(_ArrayBackend):
    """Kernels as modules that import cupy only; arrays stay on their GPU (never copied to the host)."""

    name = library = extra = module = "cupy"
    checks = "cupy_checks"
    printer_class = CuPyPrinter
    reserved = frozenset({"cupy", "_SPEC", "_DTYPE"}) | _names("cupy_checks") | \
        frozenset(n for n in vars(numpy_matfun) if not n.startswith("__"))
    dtype_format = "cupy.{}"
    as_array = "cupy.asarray({code}, dtype={dt})"

    def prologue(self, kernel: KernelModule) -> str:
        prologue = super().prologue(kernel)
        if any(re.search(r"\b(_expm|_spd_power|_matrix_power)\(", line) for line in kernel.body + kernel.results):
            matfun = inspect.getsource(numpy_matfun)
            matfun = matfun[matfun.index("import numpy") + len("import numpy"):].strip()
            prologue += "\n\n" + re.sub(r"\bnumpy\.", "cupy.", _without_examples(matfun)) + "\n"
        return prologue


def _without_examples(source: str) -> str:
    """``source`` without its doctests (``>>>`` lines and their expected output), which run NumPy."""
    lines, example = [], False
    for line in source.splitlines():
        text = line.strip()
        if text.startswith(">>>"):
            example = True
        elif not (example and text and not text.startswith('"""')):
            example = False
            lines.append(line)
    return "\n".join(lines)


TORCH = TorchBackend()
JAX = JaxBackend()
CUPY = CuPyBackend()
_BY_NAME: dict[str, Backend] = {"numpy": NUMPY, "torch": TORCH, "jax": JAX, "cupy": CUPY}


def register(backend: Backend) -> None:
    """Make ``backend`` the one :func:`backend_named` returns for ``backend.name`` (the Dask backend,
    :mod:`numeric.dask_backend`, registers itself so)."""
    _BY_NAME[backend.name] = backend


def backend_named(name: str) -> Backend:
    """The backend called ``name`` (``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``); its library must be
    installed.

    >>> backend_named("numpy").name
    'numpy'
    >>> backend_named("fortran")
    Traceback (most recent call last):
    ...
    ValueError: unknown backend 'fortran': expected one of 'numpy', 'torch', 'jax', 'cupy', 'dask', 'auto'
    """
    backend = _BY_NAME.get(name)
    if backend is None:
        raise ValueError(f"unknown backend {name!r}: expected one of "
                         f"{', '.join(repr(n) for n in [*_BY_NAME, 'auto'])}")
    library = getattr(backend, "library", None)
    if library and importlib.util.find_spec(library) is None:
        raise ImportError(f"backend {name!r} needs {library}, which is not installed: "
                          f"pip install 'tracegrad[{backend.extra}]'")
    return backend


def library_of(arrays) -> str:
    """The backend name for the arrays of a call: ``"torch"`` for a torch tensor, ``"jax"`` for a JAX
    array (or tracer), ``"cupy"`` for a CuPy array (by its type's module: cupy need not be imported
    to ask), ``"dask"`` for a dask array, else ``"numpy"``.

    >>> import numpy
    >>> library_of([numpy.ones(2), 1.0])
    'numpy'
    """
    for a in arrays:
        module = type(a).__module__
        if module.startswith("torch"):
            return "torch"
        if module.startswith(("jax", "jaxlib")):
            return "jax"
        if module.split(".")[0] == "cupy":
            return "cupy"
        if module.split(".")[0] == "dask":
            return "dask"
    return "numpy"
