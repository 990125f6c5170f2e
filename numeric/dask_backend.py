"""The Dask backend: the NumPy backend's schedule printed for ``dask.array``, and :func:`compute`.

``numeric.compile(exprs, args, backend="dask")`` (or ``"auto"`` with a dask array among the
arguments) writes a module that imports dask and NumPy only.  A call checks the arguments' shapes
and dtypes (never their values) and returns **lazy** dask arrays: nothing is computed and nothing
is gathered on the client.  Compute them with ``dask.compute(*outputs)`` or with :func:`compute`
here, which computes all outputs of a call in one graph, so that the forward pass and each chunk
of X are computed once for the loss and every gradient, on the default scheduler, a
``dask.distributed.Client`` or a scheduler address (``"tcp://host:8786"``).

The sums over the rows of a row-chunked X stay chunked: 1ᵀG is ``G.sum(axis=0)`` and XᵀD a matrix
product, which dask computes as one partial result per chunk and a tree reduction of the partials.
Float32 stays float32.  Functions of a square matrix that dask.array lacks (det, slogdet, inv,
solve, kron, the matrix exponential, fractional and run-time powers) run as one NumPy call on one
worker, still lazily; the matrix is gathered into one chunk there (the rule: for parameter-sized
d×d matrices, not for a matrix as long as the data).  A NumPy ufunc that dask.array does not wrap
(``heaviside``) is applied per chunk; a NumPy function that is neither is refused when the kernel
is compiled, with one line naming the function and the backend.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy

from numeric import array_backends, numpy_checks, numpy_matfun
from numeric.array_backends import _ArrayBackend, _ArrayPrinter, _names
from numeric.backend import KernelModule
from numeric.ir import Node
from numeric.registry import ADD, ATOM

__all__ = ["DASK", "DaskBackend", "DaskPrinter", "close_clients", "compute"]

_COPIED = ("_as_ndarray", "_vote")  # more of numpy_checks, for the arguments that are NumPy arrays
_CONSTANTS = frozenset({"nan", "inf", "pi", "e"})
# IR operations printed as a call of a helper of numeric/dask_checks.py
_HELPERS = {"solve": "_solve", "diagflat": "_diagflat", "multidot": "_multi_dot"}


class DaskPrinter(_ArrayPrinter):
    """``dask.array`` code for ``numeric.ir`` nodes (NumPy's API, so mostly the NumPy printer's).

    >>> from sympy import MatrixSymbol, OneMatrix, Symbol
    >>> n = Symbol("n", integer=True, positive=True)
    >>> G = MatrixSymbol("G", n, 3)
    >>> DaskPrinter(module="da").doprint(2 * OneMatrix(1, n) * G)
    '2.0 * G.sum(axis=0, keepdims=True)'
    >>> DaskPrinter(module="da")._np("linalg.eigvals")
    Traceback (most recent call last):
    ...
    NotImplementedError: numpy.linalg.eigvals is not supported by the dask backend (use backend='numpy')
    """

    backend_name = "dask"

    def _np(self, name: str) -> str:
        """``da.name`` where dask.array has it; a NumPy constant; a NumPy ufunc applied per chunk."""
        import dask.array

        if name in _CONSTANTS:
            return f"numpy.{name}"
        if _attribute(dask.array, name) is not None:
            return super()._np(name)
        if isinstance(_attribute(numpy, name), numpy.ufunc):
            return f"_ufunc(numpy.{name})"
        raise NotImplementedError(f"numpy.{name} is not supported by the {self.backend_name} backend "
                                  f"(use backend='numpy')")

    def _op(self, node: Node) -> tuple[str, int]:
        helper = _HELPERS.get(node.op)
        if helper is not None:
            args = [self.emit(a) for a in node.args]
            return f"{helper}({'[' + ', '.join(args) + ']' if node.op == 'multidot' else ', '.join(args)})", ATOM
        if f"_op_{node.op}" in vars(DaskPrinter):  # before the NumPy printer's table of library calls
            return getattr(self, f"_op_{node.op}")(node)
        return super()._op(node)

    def _one_block(self, function: str, node: Node, *args: str, shape: str | None = None) -> tuple[str, int]:
        if shape is None:
            shape = "()" if node.shape is None else self._shape(node.shape)
        return f"_one_block({function}, {shape}, {self.dtype_code}, {', '.join(args)})", ATOM

    def _op_det(self, node: Node) -> tuple[str, int]:
        return self._one_block("numpy.linalg.det", node, self.emit(node.args[0]))

    def _op_slogdet(self, node: Node) -> tuple[str, int]:
        return self._one_block("_slogdet", node, self.emit(node.args[0]), shape="(2,)")

    def _op_inv(self, node: Node) -> tuple[str, int]:
        return self._one_block("numpy.linalg.inv", node, self.emit(node.args[0]))

    def _op_kron(self, node: Node) -> tuple[str, int]:
        return self._one_block("numpy.kron", node, *(self.emit(a) for a in node.args))

    def _op_expm(self, node: Node) -> tuple[str, int]:
        return self._one_block("_expm", node, self.emit(node.args[0]))

    def _op_spdpow(self, node: Node) -> tuple[str, int]:
        return self._one_block("_spd_power", node, self.emit(node.args[0]), repr(node.attr))

    def _op_spdpowv(self, node: Node) -> tuple[str, int]:
        return self._one_block("_spd_power", node, *(self.emit(a) for a in node.args))

    def _op_matpowv(self, node: Node) -> tuple[str, int]:
        return self._one_block("_matrix_power", node, *(self.emit(a) for a in node.args))

    def _op_matpow(self, node: Node) -> tuple[str, int]:
        return f"_matrix_power_int({self.emit(node.args[0])}, {int(node.attr)})", ATOM

    def _op_vec(self, node: Node) -> tuple[str, int]:
        # the columns stacked: the rows of Aᵀ (dask reshapes in C order only)
        return f"{self._wrap(node.args[0], ATOM)}.T.reshape(({self._dim(node.shape[0])}, 1))", ATOM

    def _op_commutation(self, node: Node) -> tuple[str, int]:
        m, n = (self._dim(d) for d in node.attr)
        rows = f"numpy.arange({m} * {n}).reshape(({m}, {n}), order='F').ravel()"
        return f"da.eye({m} * {n}, dtype={self.dtype_code})[{rows}]", ATOM

    def _op_full(self, node: Node) -> tuple[str, int]:
        # a scalar that may be a lazy 0-d array (da.full takes numbers only)
        return (f"da.zeros({self._shape(node.shape)}, dtype={self.dtype_code}) + "
                f"{self._wrap(node.args[0], ADD, strict=True)}", ADD)


def _attribute(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part, None)
    return module


class DaskBackend(_ArrayBackend):
    """Kernels as modules that import dask.array (and NumPy) only; results are lazy dask arrays."""

    name = library = extra = "dask"
    module = "da"
    checks = "dask_checks"
    printer_class = DaskPrinter
    reserved = frozenset({"dask", "da", "numpy", "_SPEC", "_DTYPE", *_COPIED}) | _names("dask_checks") \
        | {n for n in vars(numpy_matfun) if not n.startswith("__")}
    dtype_format = "numpy.dtype({!r})"
    number_format = "{dt}.type({code})"

    def prologue(self, kernel: KernelModule) -> str:
        text = super().prologue(kernel)
        head, _, tail = text.partition("\n\n\n_SPEC")
        copied = "\n\n".join(inspect.getsource(getattr(numpy_checks, n)) for n in _COPIED)
        matfun = inspect.getsource(numpy_matfun)
        matfun = matfun[matfun.index("import numpy") + len("import numpy"):].strip()
        uses_matfun = any(f in line for line in kernel.body + kernel.results
                          for f in ("_expm,", "_spd_power,", "_matrix_power,"))
        return "\n\n\n".join([head.rstrip(), copied.rstrip(), *([matfun] if uses_matfun else []),
                              "_SPEC" + tail])

    def scalar_result(self, code: str) -> str:
        return f"_result({code}, {self.dtype_name})"

    def cast(self, code: str) -> str:
        return f"_result({code}, {self.dtype_name})"


DASK = DaskBackend()
array_backends.register(DASK)


def compute(outputs: Any, *, scheduler: Any = None, **options: Any) -> Any:
    """Compute a kernel call's outputs (one dask array or a tuple) in **one** ``dask.compute``, so that
    what they share (the forward pass, each generated chunk of X) is computed once; NumPy results
    in the same structure, a scalar output as a NumPy scalar of its dtype.

    ``scheduler`` is what ``dask.compute`` takes (``"threads"``, ``"synchronous"``, a
    ``distributed.Client``), or a scheduler address (``"tcp://host:8786"``, ``"inproc://…"``): a
    client connected to it, kept for later calls.  None is dask's default (an active Client).

    >>> import dask.array as da
    >>> compute((da.ones((4, 2), chunks=2).sum(), da.zeros((1, 2))), scheduler="synchronous")
    (np.float64(8.0), array([[0., 0.]]))
    """
    import dask

    single = not isinstance(outputs, (tuple, list))
    values = dask.compute(*([outputs] if single else outputs), scheduler=_scheduler(scheduler), **options)
    values = tuple(v[()] if isinstance(v, numpy.ndarray) and v.ndim == 0 else v for v in values)
    return values[0] if single else values


_CLIENTS: dict[str, Any] = {}


def _scheduler(scheduler: Any) -> Any:
    """A ``distributed.Client`` for an address (one per address, reconnected once closed), else as given."""
    if not (isinstance(scheduler, str) and "://" in scheduler):
        return scheduler
    client = _CLIENTS.get(scheduler)
    if client is None or client.status in ("closing", "closed"):
        from distributed import Client

        client = _CLIENTS[scheduler] = Client(scheduler, set_as_default=False)
    return client


def close_clients(addresses: Sequence[str] | None = None) -> None:
    """Close the clients :func:`compute` opened (for ``addresses``, or all)."""
    for address in list(_CLIENTS if addresses is None else addresses):
        client = _CLIENTS.pop(address, None)
        if client is not None:
            client.close()
