"""``numeric.compile``: SymPy matrix expressions → one NumPy function.

All SymPy work happens here, once: lowering to the shared graph of
:mod:`numeric.ir` (common subexpressions of all outputs become one node), ordering the
computation (:mod:`numeric.schedule`: temporaries, deletions, the dtype rule), then
printing by a backend (:mod:`numeric.backend`; by default NumPy's,
:mod:`numeric.numpy_backend`) into the source of a small Python module, which is
executed.  A kernel call runs NumPy only: the argument checks of
:mod:`numeric.numpy_checks`, then one statement per temporary.

Arguments are matrix symbols (2-D arrays at run time) and scalar symbols (a
``sympy.Symbol`` that is not a dimension: a real number at run time, such as a
weight-decay λ).
"""
from __future__ import annotations

import builtins
import keyword
import linecache
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy import MatrixExpr, MatrixSymbol

from numeric import registry
from numeric.array_backends import backend_named, library_of
from numeric.backend import Backend, KernelModule
from numeric.ir import shape_text
from numeric.lower import Builder
from numeric.numpy_backend import NUMPY
from numeric.schedule import schedule

__all__ = ["AutoKernel", "Generated", "Kernel", "compile", "generate"]

_CACHE: dict[tuple, Kernel] = {}
_CACHE_SIZE = 256
_COUNTER = [0]


@dataclass(frozen=True)
class Generated:
    """Source of a kernel module and what it was made from."""

    source: str
    name: str
    args: tuple[MatrixSymbol | sympy.Symbol, ...]
    exprs: tuple[sympy.Basic, ...]
    is_list: bool
    temporaries: int
    stages: tuple[tuple[sympy.Basic, sympy.Basic], ...] = ()


class Kernel:
    """A compiled NumPy function of matrix expressions.

    ``kernel(*arrays)`` checks the arrays against the argument shapes, converts
    them (and scalar arguments) to one float dtype and returns one array (a NumPy scalar for a scalar
    expression), or a tuple for a list of expressions.
    """

    def __init__(self, generated: Generated, fn: Callable[..., Any]):
        self._fn = fn
        if type(self) is Kernel:
            # a class of its own whose __call__ is the generated function: kernel(*arrays) calls it with
            # no Python frame in between (a third of a microsecond, on a call of 20 µs)
            self.__class__ = type("Kernel", (Kernel,), {"__call__": staticmethod(fn), "__module__": __name__,
                                                        "__qualname__": "Kernel", "__doc__": Kernel.__doc__})
        self.source: str = generated.source
        self.name: str = generated.name
        self.args: tuple[MatrixSymbol | sympy.Symbol, ...] = generated.args
        self.exprs: tuple[sympy.Basic, ...] = generated.exprs
        self.is_list: bool = generated.is_list
        self.temporaries: int = generated.temporaries
        self.stages: tuple[tuple[sympy.Basic, sympy.Basic], ...] = generated.stages

    def __call__(self, *arrays: Any) -> Any:
        return self._fn(*arrays)

    def __repr__(self) -> str:
        args = ", ".join(f"{a.name}: {_arg_str(a)}" for a in self.args)
        outs = ", ".join(shape_text(e.shape if isinstance(e, MatrixExpr) else None) for e in self.exprs)
        if self.is_list:
            outs = f"({outs})"
        return f"<Kernel {self.name}({args}) -> {outs}, {self.temporaries} temporaries>"


def _arg_str(a: MatrixSymbol | sympy.Symbol) -> str:
    return shape_text(a.shape if isinstance(a, MatrixSymbol) else None)


Stages = Sequence[tuple[sympy.Basic, sympy.Basic]]


def compile(exprs: sympy.Basic | Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol], *,
            stages: Stages = (), dtype: Any = None, name: str = "kernel",
            backend: Backend | str = NUMPY) -> Kernel:
    """Compile ``exprs`` (one expression or a list) into a NumPy kernel of ``args``.

    ``args`` are matrix symbols and scalar symbols (``sympy.Symbol``, not a
    dimension: the kernel takes a real number, or an array of size 1, there).
    ``dtype`` (float32 or float64) forces the dtype of the computation; by default
    float32 arguments stay float32, float64 stays, float16 is computed in float32,
    integers or mixed dtypes become float64, and longdouble is refused; scalar
    arguments take the arrays' dtype (a Python float does not make float32 arrays
    float64).  Every argument becomes a plain ``numpy.ndarray`` (``numpy.matrix``
    is converted, so ``*`` in it means nothing special); masked arrays, ragged
    lists, complex and object arrays are refused with an error naming the argument.
    ``backend`` writes the kernel's module (:mod:`numeric.backend`): a :class:`Backend`, or
    ``"numpy"`` (the default), ``"torch"``, ``"jax"``, ``"cupy"`` (:mod:`numeric.array_backends`: the
    arguments are that library's arrays, and so are the results), ``"dask"`` (lazy dask arrays, computed
    by the caller: :mod:`numeric.dask_backend`), or ``"auto"``: the library of each call's arguments, a
    kernel compiled for it on its first call.

    ``stages`` is a program: ``(symbol, definition)`` pairs in order, each definition in the
    arguments and earlier symbols; ``exprs`` may use every symbol.  A symbol is a matrix symbol
    or any other SymPy atom of a value (a derive ``Gradient(F, Z)`` too); it is computed once,
    where its definition stands, as the forward pass and the upstream gradients of a network
    are: hand the stages of a network and of its backward pass rather than their expansions,
    which repeat each stage in every later one.  (Expanded expressions are compiled as fast:
    equal subexpressions are one computation either way.)

    >>> from sympy import MatrixSymbol, Symbol, Trace
    >>> import numpy as np
    >>> n = Symbol("n", integer=True, positive=True)
    >>> A, B = MatrixSymbol("A", n, 2), MatrixSymbol("B", n, 2)
    >>> k = compile([Trace(A.T * B), 2 * A], [A, B])
    >>> f, g = k(np.ones((3, 2)), np.full((3, 2), 2.0))
    >>> float(f), g.shape
    (12.0, (3, 2))
    >>> k(np.ones((3, 2)), np.ones((4, 2)))
    Traceback (most recent call last):
    ...
    ValueError: argument B: expected shape (n, 2) = (3, 2) from A, got (4, 2)

    A program: H = tanh(XW), f = ‖H‖², ∂f/∂W = Xᵀ(2H ⊙ (1 − H ⊙ H)), with H computed once.

    >>> from sympy import HadamardProduct, OneMatrix, tanh
    >>> X, W, H = MatrixSymbol("X", n, 3), MatrixSymbol("W", 3, 2), MatrixSymbol("H", n, 2)
    >>> program = [(H, (X * W).applyfunc(tanh))]
    >>> grad = X.T * HadamardProduct(2 * H, OneMatrix(n, 2) - HadamardProduct(H, H))
    >>> step = compile([Trace(H.T * H), grad], [X, W], stages=program)
    >>> x, w = np.ones((4, 3)), np.full((3, 2), 0.1)
    >>> f, g = step(x, w)
    >>> h = np.tanh(x @ w)
    >>> bool(np.isclose(f, (h * h).sum())), bool(np.allclose(g, x.T @ (2 * h * (1 - h * h))))
    (True, True)
    >>> step.source.count("numpy.tanh")
    1
    """
    if isinstance(backend, str):
        if backend == "auto":
            return AutoKernel(exprs, args, stages=stages, dtype=dtype, name=name)
        backend = backend_named(backend)
    is_list = isinstance(exprs, (list, tuple))
    exprs_t = tuple(sympy.sympify(e) for e in (exprs if is_list else [exprs]))
    args_t = tuple(args)
    stages_t = _stages(stages)
    dt = None if dtype is None else np.dtype(dtype)
    key = (exprs_t, args_t, stages_t, is_list, dt, name, backend)
    kernel = _CACHE.get(key)
    if kernel is not None:
        return kernel
    gen = generate(exprs_t, args_t, is_list=is_list, dtype=dt, name=name, backend=backend, stages=stages_t)
    kernel = Kernel(gen, _load(gen))
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = kernel
    return kernel


class AutoKernel:
    """A kernel for whichever library its arguments come from (``compile(..., backend="auto")``):
    the kernel for NumPy, torch or JAX compiled on the first call with that library's arrays.

    >>> from sympy import MatrixSymbol
    >>> import numpy as np
    >>> X = MatrixSymbol("X", 2, 3)
    >>> compile(2 * X, [X], backend="auto")(np.ones((2, 3))).tolist()
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    def __init__(self, exprs: Any, args: Sequence[MatrixSymbol | sympy.Symbol], **options: Any):
        self._exprs, self._args, self._options = exprs, list(args), options
        self._kernels: dict[str, Kernel] = {}
        self.kernel("numpy")  # argument errors now, not at the first call

    def kernel(self, library: str) -> Kernel:
        """The kernel for ``library`` (``"numpy"``, ``"torch"``, ``"jax"``), compiled once."""
        kernel = self._kernels.get(library)
        if kernel is None:
            kernel = self._kernels[library] = compile(self._exprs, self._args, backend=library, **self._options)
        return kernel

    def __call__(self, *arrays: Any) -> Any:
        return self.kernel(library_of(arrays))(*arrays)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.kernel("numpy"), attr)


def _load(gen: Generated) -> Callable[..., Any]:
    _COUNTER[0] += 1
    filename = f"<numeric kernel {gen.name} #{_COUNTER[0]}>"
    linecache.cache[filename] = (len(gen.source), None, gen.source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": f"numeric_kernel_{_COUNTER[0]}"}
    exec(builtins.compile(gen.source, filename, "exec"), namespace)
    return namespace[gen.name]


def _check_args(args: Sequence[MatrixSymbol | sympy.Symbol]) -> None:
    seen: set[str] = set()
    dims: dict[sympy.Basic, str] = {}
    for a in args:
        scalar = isinstance(a, sympy.Symbol) and not isinstance(a, sympy.Dummy)
        if not (isinstance(a, MatrixSymbol) or scalar):
            raise TypeError(f"arguments must be SymPy MatrixSymbols or scalar Symbols, got "
                            f"{type(a).__name__} {a!r}")
        if a.name in seen:
            raise ValueError(f"argument {a.name} is listed twice")
        seen.add(a.name)
        if scalar:
            continue
        for d in a.shape:
            if not (d.is_Integer or d.is_Symbol):
                raise ValueError(f"argument {a.name}: dimension {d} must be an integer or a symbol")
            if d.is_Symbol:
                dims.setdefault(d, a.name)
    for a in args:
        if isinstance(a, sympy.Symbol) and a in dims:
            raise ValueError(f"argument {a.name} is a dimension (of {dims[a]}): dimensions are read from "
                             f"the arrays' shapes, not passed")


def _dim_table(args: Sequence[MatrixSymbol | sympy.Symbol], names: dict[MatrixSymbol | sympy.Symbol, str],
               backend: Backend) -> dict[sympy.Basic, str]:
    """The code for each symbolic dimension: the length of the first argument that has it."""
    table: dict[sympy.Basic, str] = {}
    for a in args:
        if not isinstance(a, MatrixSymbol):
            continue
        for axis, d in enumerate(a.shape):
            if d.is_Symbol and d not in table:
                table[d] = backend.shape_code(names[a], axis)
    return table


def _unique_nodes(exprs: Sequence[sympy.Basic]) -> list[sympy.Basic]:
    """Every distinct subexpression of ``exprs``, once each, after its arguments: a walk of the shared
    graph, linear in its size where ``preorder_traversal``, ``atoms`` and ``free_symbols`` walk the
    tree (each use of a shared subexpression again)."""
    seen: set[sympy.Basic] = set()
    out: list[sympy.Basic] = []
    stack: list[tuple[sympy.Basic, bool]] = [(e, False) for e in reversed(exprs)]
    while stack:
        e, done = stack.pop()
        if done:
            out.append(e)
            continue
        if e in seen:
            continue
        seen.add(e)
        stack.append((e, True))
        stack.extend((a, False) for a in reversed(e.args) if isinstance(a, sympy.Basic))
    return out


def _free_dims(nodes: Sequence[sympy.Basic]) -> set[sympy.Symbol]:
    """The symbols of ``nodes`` (from :func:`_unique_nodes`): of the matrices' shapes, and the
    free scalar symbols."""
    dims: set[sympy.Symbol] = set()
    for e in nodes:
        if isinstance(e, MatrixExpr) and e.is_symbol:
            for d in e.shape:
                if isinstance(d, sympy.Basic):
                    dims |= {s for s in d.free_symbols if isinstance(s, sympy.Symbol)}
        elif isinstance(e, sympy.Symbol) and not isinstance(e, sympy.Dummy):
            dims.add(e)
    return dims


def _tree_sizes(exprs: Sequence[sympy.Basic], limit: int) -> dict[sympy.Basic, int]:
    """The number of nodes of each subexpression of ``exprs`` as a tree (each use of a shared
    subexpression counted), capped at ``limit``: one walk of the shared graph."""
    size: dict[sympy.Basic, int] = {}
    for node in _unique_nodes(exprs):  # every node after its arguments
        size[node] = min(limit, 1 + sum(size.get(a, 1) for a in node.args))
    return size


def _identifier(a: MatrixSymbol | sympy.Symbol, i: int, taken: set[str], reserved: frozenset[str]) -> str:
    name = a.name
    ok = name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_") \
        and name != "arrays" and name not in reserved
    if not ok or name in taken:
        name = f"_a{i}"
    taken.add(name)
    return name


def _check_generate(name: str, dtype: np.dtype | None, args: Sequence[MatrixSymbol | sympy.Symbol],
                    backend: Backend) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"kernel name {name!r} is not a Python identifier")
    if name in backend.reserved:
        raise ValueError(f"kernel name {name!r} is taken by the generated module; choose another name")
    if dtype is not None and dtype.char not in "fd":
        raise ValueError(f"dtype {dtype} is not supported: kernels compute in float32 or float64")
    _check_args(args)


def _stages(stages: Stages) -> tuple[tuple[sympy.Basic, sympy.Basic], ...]:
    """``stages`` as a tuple of (symbol, definition) pairs of SymPy objects."""
    out = []
    for i, pair in enumerate(stages):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"stage {i}: expected a (symbol, definition) pair, got {type(pair).__name__}")
        sym, definition = pair
        if not (isinstance(sym, sympy.Basic) and (sym.is_Atom or isinstance(sym, MatrixExpr))):
            raise TypeError(f"stage {i}: the name of a stage must be a SymPy symbol, got {type(sym).__name__}")
        out.append((sym, sympy.sympify(definition)))
    return tuple(out)


def _lower_stages(builder: Builder, stages: Sequence[tuple[sympy.Basic, sympy.Basic]],
                  args: Sequence[MatrixSymbol | sympy.Symbol]) -> None:
    """Bind each stage's symbol to the node of its definition, in order: every later use of the
    symbol (in a definition or an output) is that one node."""
    for sym, definition in stages:
        if sym in args or sym in builder.bound:
            where = "an argument" if sym in args else "defined twice"
            raise ValueError(f"stage {sym}: the name is {where}")
        node = builder.lower(definition)
        shape = tuple(sym.shape) if isinstance(sym, MatrixExpr) else None
        if node.shape != shape and not (shape is None and node.shape is None):
            raise ValueError(f"stage {sym}: the name is {shape_text(shape)}, its definition "
                             f"{shape_text(node.shape)}")
        builder.bind(sym, node)


def generate(exprs: Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol], *, is_list: bool = True,
             dtype: np.dtype | None = None, name: str = "kernel", doc: str | None = None,
             backend: Backend = NUMPY, stages: Stages = ()) -> Generated:
    """The source of a standalone module defining ``name(*arrays)``, written by ``backend``.

    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 2, 3)
    >>> print(generate([X.T * X], [X], is_list=False).source.splitlines()[-2])
        _t0 = X.T @ X
    """
    _check_generate(name, dtype, args, backend)
    exprs = tuple(sympy.sympify(e) for e in exprs)
    stages = _stages(stages)
    taken: set[str] = set()
    params = {a: _identifier(a, i, taken, backend.reserved) for i, a in enumerate(args)}
    dims = _dim_table(args, params, backend)
    known = lambda d: d in dims or d in params or not d.is_integer
    everything = (*exprs, *(d for _, d in stages), *(z for z, _ in stages))
    if not all(map(known, _free_dims(_unique_nodes(everything)))):  # one walk for all; then name the culprit
        for e in everything:
            missing = {d for d in _free_dims(_unique_nodes([e])) if not known(d)}
            if missing:
                raise ValueError(f"dimension {', '.join(sorted(map(str, missing)))} of {_describe(e, registry.notation())} "
                                 f"does not appear in the shape of any argument")
    builder = Builder(args)
    _lower_stages(builder, stages, args)
    plan = schedule(builder.share_scale([builder.output(o) for o in
                                         builder.stabilize([builder.lower(e) for e in exprs])]),
                    backend.typed_numbers)
    printer = backend.printer({**{builder.arg_nodes[a]: params[a] for a in args}, **plan.names}, dims)
    body: list[str] = []
    for idx, node in enumerate(plan.temporaries):
        body.extend(backend.statements(plan.names[node], node, printer, not plan.recast))
        if idx in plan.deletions:
            body.append(backend.delete(plan.deletions[idx]))
    results = []
    for o in plan.outputs:
        ref = printer.emit(o)
        if o.shape is None:
            results.append(backend.scalar_result(ref))
        else:
            results.append(backend.cast(ref) if plan.recast else ref)
    spec = tuple((a.name, tuple(int(d) if d.is_Integer else str(d) for d in a.shape)
                  if isinstance(a, MatrixSymbol) else None) for a in args)
    module = KernelModule(name, doc or _default_doc(exprs, args, is_list), tuple(args),
                          tuple(params[a] for a in args), spec, dtype, tuple(body), tuple(results), is_list)
    return Generated(backend.source(module), name, tuple(args), exprs, is_list, len(plan.temporaries), stages)


def _default_doc(exprs: Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol],
                 is_list: bool, describe: Callable[[sympy.Basic], str] | None = None) -> str:
    describe = describe or registry.notation()
    lines = ["Generated by numeric.compile.", "", "Arguments:"]
    for a in args:
        lines.append(f"    {a.name}: {_arg_str(a)}")
    lines.append("Returns:")
    sizes = _tree_sizes(exprs, _DESCRIBE_NODES + 1)
    for e in exprs:
        shape = shape_text(e.shape if isinstance(e, MatrixExpr) else None)
        text = _describe(e, describe, sizes)
        lines.append(f"    {shape}: {text}")
    return "\n".join(lines).replace('"""', "'''").replace("\\", "\\\\") + "\n"


# an expression larger than this (nodes of its tree) is not printed in a docstring or a message:
# SymPy's printer costs more than the whole compilation there (1.4 s for the loss of a 16-layer
# mlp), and the first 300 characters say little
_DESCRIBE_NODES = 150


def _describe(e: sympy.Basic, describe: Callable[[sympy.Basic], str],
              sizes: dict[sympy.Basic, int] | None = None) -> str:
    """``describe(e)`` cut to 300 characters, or a line naming its size where ``e`` is too large to print.

    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 2, 2)
    >>> _describe(X * X, str)
    'X**2'
    >>> big = X
    >>> for i in range(40):
    ...     big = MatrixSymbol(f"W{i}", 2, 2) * big + X
    >>> _describe(big, str)
    'an expression of 2×2 with more than 150 operations (not printed)'
    """
    size = (sizes or _tree_sizes([e], _DESCRIBE_NODES + 1))[e]
    if size > _DESCRIBE_NODES:
        shape = shape_text(e.shape if isinstance(e, MatrixExpr) else None)
        return f"an expression of {shape} with more than {_DESCRIBE_NODES} operations (not printed)"
    text = describe(e)
    return text if len(text) <= 300 else text[:297] + "..."
