"""``numeric.compile``: SymPy matrix expressions → one NumPy function.

All SymPy work happens here, once: lowering to the shared graph of
:mod:`numeric.ir` (common subexpressions of all outputs become one node), then
printing with :class:`numeric.printer.NumericPrinter` into the source of a small
Python module, which is executed.  A kernel call runs NumPy only: the argument
checks of :mod:`numeric._runtime`, then one statement per temporary.

Arguments are matrix symbols (2-D arrays at run time) and scalar symbols (a
``sympy.Symbol`` that is not a dimension: a real number at run time, such as a
weight-decay λ).
"""
from __future__ import annotations

import builtins
import inspect
import keyword
import linecache
import textwrap
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy import MatrixExpr, MatrixSymbol

from numeric import _runtime
from numeric.ir import Builder, Node
from numeric.printer import NumericPrinter, argument_reads

__all__ = ["Generated", "Kernel", "compile", "generate"]

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


class Kernel:
    """A compiled NumPy function of matrix expressions.

    ``kernel(*arrays)`` checks the arrays against the argument shapes, converts
    them (and scalar arguments) to one float dtype and returns one array (a NumPy scalar for a scalar
    expression), or a tuple for a list of expressions.
    """

    def __init__(self, generated: Generated, fn: Callable[..., Any]):
        self._fn = fn
        self.source: str = generated.source
        self.name: str = generated.name
        self.args: tuple[MatrixSymbol | sympy.Symbol, ...] = generated.args
        self.exprs: tuple[sympy.Basic, ...] = generated.exprs
        self.is_list: bool = generated.is_list
        self.temporaries: int = generated.temporaries

    def __call__(self, *arrays: Any) -> Any:
        return self._fn(*arrays)

    def __repr__(self) -> str:
        args = ", ".join(f"{a.name}: {_arg_str(a)}" for a in self.args)
        outs = ", ".join(_shape_str(e.shape) if isinstance(e, MatrixExpr) else "scalar" for e in self.exprs)
        if self.is_list:
            outs = f"({outs})"
        return f"<Kernel {self.name}({args}) -> {outs}, {self.temporaries} temporaries>"


def _shape_str(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def _arg_str(a: MatrixSymbol | sympy.Symbol) -> str:
    return _shape_str(a.shape) if isinstance(a, MatrixSymbol) else "scalar"


def compile(exprs: sympy.Basic | Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol], *,
            dtype: Any = None, name: str = "kernel") -> Kernel:
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
    """
    is_list = isinstance(exprs, (list, tuple))
    exprs_t = tuple(sympy.sympify(e) for e in (exprs if is_list else [exprs]))
    args_t = tuple(args)
    dt = None if dtype is None else np.dtype(dtype)
    key = (exprs_t, args_t, is_list, dt, name)
    kernel = _CACHE.get(key)
    if kernel is not None:
        return kernel
    gen = generate(exprs_t, args_t, is_list=is_list, dtype=dt, name=name)
    kernel = Kernel(gen, _load(gen))
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = kernel
    return kernel


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


def _dim_table(args: Sequence[MatrixSymbol | sympy.Symbol],
               names: dict[MatrixSymbol | sympy.Symbol, str]) -> dict[sympy.Basic, str]:
    table: dict[sympy.Basic, str] = {}
    for a in args:
        if not isinstance(a, MatrixSymbol):
            continue
        for axis, d in enumerate(a.shape):
            if d.is_Symbol and d not in table:
                table[d] = f"{names[a]}.shape[{axis}]"
    return table


def _free_dims(e: sympy.Basic) -> set[sympy.Symbol]:
    dims: set[sympy.Symbol] = set()
    for m in e.atoms(MatrixExpr):
        for d in getattr(m, "shape", ()):
            if isinstance(d, sympy.Basic):
                dims |= {s for s in d.free_symbols if isinstance(s, sympy.Symbol)}
    return dims | {s for s in e.free_symbols if isinstance(s, sympy.Symbol) and not isinstance(s, sympy.Dummy)}


# the globals of a generated module: a kernel of one of these names would shadow it
_MODULE_NAMES = frozenset({"numpy", "_SPEC", "_DTYPE"} | {n for n in vars(_runtime) if not n.startswith("__")})


def _identifier(a: MatrixSymbol | sympy.Symbol, i: int, taken: set[str]) -> str:
    name = a.name
    ok = name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_") \
        and name not in ("numpy", "arrays")
    if not ok or name in taken:
        name = f"_a{i}"
    taken.add(name)
    return name


def generate(exprs: Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol], *, is_list: bool = True,
             dtype: np.dtype | None = None, name: str = "kernel", doc: str | None = None) -> Generated:
    """The source of a standalone NumPy module defining ``name(*arrays)``.

    >>> from sympy import MatrixSymbol
    >>> X = MatrixSymbol("X", 2, 3)
    >>> print(generate([X.T * X], [X], is_list=False).source.splitlines()[-2])
        _t0 = X.T @ X
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"kernel name {name!r} is not a Python identifier")
    if name in _MODULE_NAMES:
        raise ValueError(f"kernel name {name!r} is taken by the generated module; choose another name")
    if dtype is not None and dtype.char not in "fd":
        raise ValueError(f"dtype {dtype} is not supported: kernels compute in float32 or float64")
    _check_args(args)
    exprs = tuple(sympy.sympify(e) for e in exprs)
    taken: set[str] = set()
    names = {a: _identifier(a, i, taken) for i, a in enumerate(args)}
    dims = _dim_table(args, names)
    for e in exprs:
        missing = {d for d in _free_dims(e) if d not in dims and d not in names and d.is_integer}
        if missing:
            raise ValueError(f"dimension {', '.join(sorted(map(str, missing)))} of {e} does not appear "
                             f"in the shape of any argument")
    builder = Builder(args)
    outputs = [builder.output(builder.lower(e)) for e in exprs]

    # reference counts over the graph reachable from the outputs
    uses: dict[Node, int] = {}
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(o, False) for o in reversed(outputs)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        uses[node] = uses.get(node, 0) + 1
        if uses[node] > 1:
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))
    for n in order:  # a function whose code reads its argument twice: the argument is a temporary
        if n.op == "fn" and argument_reads(n.attr) > 1:
            uses[n.args[0]] += 1
    trivial = ("arg", "const", "dim")
    temps = [n for n in order if (uses[n] > 1 or n in outputs) and n.op not in trivial]

    printer = NumericPrinter(dim_code=dims, dtype_code="_dt")
    printer.names.update({builder.arg_nodes[a]: names[a] for a in args})
    statements: list[tuple[Node, str, str]] = []
    for i, node in enumerate(temps):
        var = f"_t{i}"
        statements.append((node, var, printer.define(node)))
        printer.names[node] = var

    # delete a temporary array after the statement that last reads it
    last_use: dict[Node, int] = {}
    temp_set = set(temps)
    for idx, (node, _, _) in enumerate(statements):
        for t in _reads(node, temp_set):
            last_use[t] = idx
    body: list[str] = []
    deletions: dict[int, list[str]] = {}
    for t, idx in last_use.items():
        if t.shape is not None and t not in outputs:
            deletions.setdefault(idx, []).append(printer.names[t])
    for idx, (_node, var, code) in enumerate(statements):
        body.append(f"{var} = {code}")
        if idx in deletions:
            body.append(f"del {', '.join(sorted(deletions[idx], key=lambda v: int(v[2:])))}")

    drift = _may_change_dtype(order)
    results = []
    for o in outputs:
        ref = printer.emit(o)
        if o.shape is None:
            results.append(f"_dt.type({ref})")
        else:
            results.append(f"_cast({ref}, _dt)" if drift else ref)
    ret = (f"({', '.join(results)}{',' if len(results) == 1 else ''})" if is_list else results[0])

    arg_list = ", ".join(names[a] for a in args)
    signature = f"{name}({', '.join(a.name for a in args)})"
    spec = tuple((a.name, tuple(int(d) if d.is_Integer else str(d) for d in a.shape)
                  if isinstance(a, MatrixSymbol) else None) for a in args)
    unpack = f"({arg_list}{',' if len(args) == 1 else ''}), _dt" if args else "_, _dt"
    fdoc = doc or _default_doc(exprs, args, is_list)
    lines = [
        f"def {name}(*arrays):",
        textwrap.indent(f'"""{fdoc}"""', "    "),
        *_fast_check(args, names, dtype),
        f"        {unpack} = _prepare(arrays, _SPEC, {signature!r}, _DTYPE)",
        *("    " + line for line in body),
        f"    return {ret}",
    ]
    runtime = inspect.getsource(_runtime)
    runtime = runtime[runtime.index("import numpy"):]
    dtype_code = "None" if dtype is None else f"numpy.dtype({dtype.name!r})"
    source = "\n".join([
        runtime.rstrip(), "", "",
        f"_SPEC = {spec!r}",
        f"_DTYPE = {dtype_code}",
        "", "",
        *lines, "",
    ])
    return Generated(source, name, tuple(args), exprs, is_list, len(temps))


def _fast_check(args: Sequence[MatrixSymbol | sympy.Symbol], names: dict[MatrixSymbol | sympy.Symbol, str],
                dtype: np.dtype | None) -> list[str]:
    """Lines that accept well-formed float32 or float64 ndarrays (and Python floats
    for scalar arguments) without calling ``_prepare``.

    Anything else (lists, subclasses, integers, mixed dtypes, bad shapes) goes to ``_prepare``,
    which converts or raises the error message.
    """
    matrices = [a for a in args if isinstance(a, MatrixSymbol)]
    if not matrices:
        return ["    if True:"]
    n = len(args)
    vs = [names[a] for a in matrices]
    scalars = [names[a] for a in args if not isinstance(a, MatrixSymbol)]
    first = vs[0]
    conds = [f"len(arrays) == {n}"]
    conds += [f"type({v}) is numpy.ndarray" for v in vs]
    conds += [f"type({v}) is float" for v in scalars]
    conds.append(f"{first}.dtype.char in 'fd'" if dtype is None else f"{first}.dtype == _DTYPE")
    conds += [f"{v}.dtype == {first}.dtype" for v in vs[1:]]
    conds += [f"{v}.ndim == 2" for v in vs]
    seen: dict[sympy.Basic, str] = {}
    for a, v in zip(matrices, vs):
        for axis, d in enumerate(a.shape):
            here = f"{v}.shape[{axis}]"
            if d.is_Integer:
                conds.append(f"{here} == {int(d)}")
            elif d in seen:
                conds.append(f"{here} == {seen[d]}")
            else:
                seen[d] = here
    unpack = f"{', '.join(names[a] for a in args)}{',' if n == 1 else ''} = arrays"
    test = " and\n            ".join(conds)
    return [f"    if len(arrays) == {n}:",
            f"        {unpack}",
            f"    if ({test}):",
            f"        _dt = {first}.dtype",
            *(f"        {v} = _dt.type({v})" for v in scalars),
            "    else:"]


def _may_change_dtype(nodes: Sequence[Node]) -> bool:
    """True if a NumPy function is applied to Python numbers only (its float64 result
    would promote float32 arrays); then outputs are cast back."""
    array_ops = {"arg", "eye"}
    on_array: dict[Node, bool] = {}
    drift = False
    for node in nodes:  # topological order
        on_array[node] = node.op in array_ops or any(on_array.get(a, False) for a in node.args)
        if node.op in ("fn", "pow", "powv") and not on_array[node]:
            drift = True
    return drift


def _reads(node: Node, temps: set[Node]) -> set[Node]:
    """Temporaries read by the statement that defines ``node`` (through inlined nodes)."""
    out: set[Node] = set()
    stack = list(node.args)
    while stack:
        n = stack.pop()
        if n in temps:
            out.add(n)
        else:
            stack.extend(n.args)
    return out


def _default_doc(exprs: Sequence[sympy.Basic], args: Sequence[MatrixSymbol | sympy.Symbol],
                 is_list: bool, describe: Callable[[sympy.Basic], str] = str) -> str:
    lines = ["Generated by numeric.compile.", "", "Arguments:"]
    for a in args:
        lines.append(f"    {a.name}: {_arg_str(a)}")
    lines.append("Returns:")
    for e in exprs:
        shape = _shape_str(e.shape) if isinstance(e, MatrixExpr) else "scalar"
        text = describe(e)
        if len(text) > 300:
            text = text[:297] + "..."
        lines.append(f"    {shape}: {text}")
    return "\n".join(lines).replace('"""', "'''").replace("\\", "\\\\") + "\n"
