"""The NumPy backend: the printer of nodes (``NumericPrinter``) and the argument checks.

:class:`NumPyBackend` writes a scheduled kernel (:mod:`numeric.schedule`) as a module that
imports NumPy only: the checks of :mod:`numeric.numpy_checks` (their source copied in), a
fast path for well-formed float arrays, then one statement per temporary.

``NumericPrinter`` subclasses SymPy's ``NumPyPrinter``.  Matrix expressions (and scalars built
from traces and determinants) are first lowered to the graph of :mod:`numeric.ir`, then
printed node by node; nodes bound to temporaries print as their names.  Used on its own
(``sympy.lambdify(..., printer=NumericPrinter)``) it prints one inline expression.  Every
library function is written ``self._np(name)``: a printer for another NumPy-like library sets
``_module`` (as SymPy's ``CuPyPrinter`` does), and elementwise functions are printed from their
registered templates (:mod:`numeric.registry`), whose ``numpy.`` prefix becomes ``_module``.

Numerical choices:

* tr(AᵀB) is ``vdot(A, B)``; tr(A) of a sum is the sum of traces; 1ᵀG is
  ``G.sum(axis=0, keepdims=True)`` (in a kernel ``_colsum(G)``, a BLAS product with a row of ones); ``Inverse(A)*B`` is ``solve(A, B)``;
  log det is ``slogdet``.
* log(exp(A)·𝟏) and the row softmax exp(A) ⊙ ((exp(A)·𝟏)^∘−1 𝟏ᵀ) subtract the row
  maximum first (the ``log_sum_exp`` and ``softmax`` rewrites of :mod:`numeric.ir`):
  ``m = A.max(axis=1, keepdims=True)``, ``e = numpy.exp(A - m)``, then
  ``numpy.log(e.sum(axis=1, keepdims=True)) + m`` and ``e / e.sum(...)``: finite and
  warning-free for logits of any size, the same dtype as A.
"""
from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Mapping, Sequence

import numpy
import sympy
from sympy import MatrixExpr, MatrixSymbol
from sympy.printing.numpy import NumPyPrinter

from numeric import numpy_checks, numpy_matfun, registry
from numeric.backend import Backend, KernelModule
from numeric.ir import Node, is_number
from numeric.lower import Builder
from numeric.registry import ADD, ATOM, MUL, POW, UNARY

__all__ = ["NUMPY", "NumPyBackend", "NumericPrinter"]

_PREFIX = re.compile(r"\bnumpy\.(\w+)")


def _num(c: float) -> str:
    if c != c or c in (float("inf"), float("-inf")):
        return f"float('{c}')"  # a folded log 0 or 0⁻¹: a Python float, so float32 stays float32
    if abs(c) < 1e15 and c == int(c):
        return str(int(c))
    return repr(c)


def _lit(c: float) -> str:
    """A coefficient or constant of elementwise arithmetic, written as a Python float (``2.0``):
    NumPy multiplies an array by a float about twice as fast as by an int, which it must first
    check against the array's dtype (noticeable on small arrays; the dtype is the array's either way)."""
    text = _num(c)
    return text + ".0" if text.lstrip("-").isdigit() else text


# IR operations that are one call of the array library with the node's arguments, in order
_CALLS = {"sumall": "sum", "vdot": "vdot", "trace": "trace", "solve": "linalg.solve",
          "inv": "linalg.inv", "det": "linalg.det", "slogdet": "linalg.slogdet", "kron": "kron",
          "diagflat": "diagflat"}

class NumericPrinter(NumPyPrinter):
    """NumPy code for SymPy matrix expressions and for ``numeric.ir`` nodes.

    >>> from sympy import MatrixSymbol, OneMatrix, Symbol
    >>> n = Symbol("n", integer=True, positive=True)
    >>> G = MatrixSymbol("G", n, 3)
    >>> NumericPrinter().doprint(2 * OneMatrix(1, n) * G)
    '2.0 * G.sum(axis=0, keepdims=True)'
    """

    printmethod = "_numericcode"

    def __init__(self, settings: dict | None = None, *, names: dict[Node, str] | None = None,
                 dim_code: dict[sympy.Basic, str] | None = None, dtype_code: str = "float",
                 module: str | None = None, helpers: bool = False, number_format: str | None = None):
        super().__init__(settings)
        #: whether the code may call the run-time helpers of numeric.numpy_checks (a kernel's module
        #: has them; code for ``lambdify`` does not)
        self.helpers = helpers
        #: a Python number (a function of dimensions) as a scalar of the computation's dtype ``{dt}``,
        #: for a library function applied to it: ``"{dt}.type({code})"`` in a NumPy kernel, which
        #: keeps float32 work float32 and lets torch's functions take it; None leaves it a number
        self.number_format = number_format
        if module is not None:
            self._module = module
        self.names: dict[Node, str] = names if names is not None else {}
        self.dim_code: dict[sympy.Basic, str] = dim_code or {}
        self.dtype_code = dtype_code

    # ----- nodes ----------------------------------------------------------------------------
    def emit(self, node: Node) -> str:
        """Code for ``node``: its temporary's name if it has one, else the expression."""
        return self._code(node)[0]

    def define(self, node: Node) -> str:
        """The expression that computes ``node`` (ignoring its own temporary name)."""
        return self._op(node)[0]

    def _op(self, node: Node) -> tuple[str, int]:
        """(code, precedence) of ``node``: a library call from :data:`_CALLS`, else its ``_op_`` method."""
        function = _CALLS.get(node.op)
        if function is not None:
            return f"{self._np(function)}({', '.join(self.emit(a) for a in node.args)})", ATOM
        return getattr(self, f"_op_{node.op}")(node)

    def _print_Node(self, node: Node) -> str:
        return self.emit(node)

    def _code(self, node: Node) -> tuple[str, int]:
        name = self.names.get(node)
        if name is not None:
            return name, ATOM
        return self._op(node)

    def _wrap(self, node: Node, prec: int, strict: bool = False) -> str:
        text, p = self._code(node)
        return f"({text})" if (p < prec or (strict and p == prec)) else text

    def _np(self, name: str) -> str:
        """The library's function ``name`` (``linalg.solve``): ``numpy.linalg.solve`` here."""
        return self._module_format(f"{self._module}.{name}")

    def _dim(self, d: sympy.Basic) -> str:
        if d in self.dim_code:
            return self.dim_code[d]
        return self._print(d.xreplace({s: sympy.Symbol(c) for s, c in self.dim_code.items()}))

    def _shape(self, shape) -> str:
        return f"({self._dim(shape[0])}, {self._dim(shape[1])})"

    def _op_arg(self, node: Node) -> tuple[str, int]:
        return node.attr, ATOM

    def _op_const(self, node: Node) -> tuple[str, int]:
        c = node.attr
        if c != c:
            return self._np("nan"), ATOM
        if c in (float("inf"), float("-inf")):
            return ("" if c > 0 else "-") + self._np("inf"), (ATOM if c > 0 else UNARY)
        text = _num(c)
        return text, (UNARY if c < 0 else ATOM)

    def _op_dim(self, node: Node) -> tuple[str, int]:
        return self._dim(node.attr), ATOM

    def _op_vec(self, node: Node) -> tuple[str, int]:
        # the columns stacked: Fortran order
        return f"{self._wrap(node.args[0], ATOM)}.reshape(({self._dim(node.shape[0])}, 1), order='F')", ATOM

    def _op_gram(self, node: Node) -> tuple[str, int]:
        return f"_gram({self.emit(node.args[0])}, {self.emit(node.args[1])})", ATOM

    def _op_adddiag(self, node: Node) -> tuple[str, int]:
        M, v = node.args
        # a product, a sum or a function of arrays is a new array nothing else reads: updated in place
        fresh = M not in self.names and M.op in ("add", "mul", "matmul", "multidot", "pow", "inv", "gram")
        return f"_add_diag({self.emit(M)}, {self.emit(v)}, {fresh})", ATOM

    def _op_commutation(self, node: Node) -> tuple[str, int]:
        # K_{m,n}: row j + i·n of the identity's rows i + j·m (K vec A = vec Aᵀ)
        m, n = (self._dim(d) for d in node.attr)
        rows = f"{self._np('arange')}({m} * {n}).reshape(({m}, {n}), order='F').ravel()"
        return f"{self._np('eye')}({m} * {n}, dtype={self.dtype_code})[{rows}]", ATOM

    def _op_eye(self, node: Node) -> tuple[str, int]:
        return f"{self._np('eye')}({self._dim(node.shape[0])}, dtype={self.dtype_code})", ATOM

    def _op_add(self, node: Node) -> tuple[str, int]:
        const, coefs = node.attr
        parts: list[tuple[bool, str]] = []  # (negative, text)
        if const != 0.0:
            parts.append((const < 0, _lit(abs(const))))
        for t, c in zip(node.args, coefs):
            if abs(c) == 1.0:
                parts.append((c < 0, self._wrap(t, ADD, strict=True)))
            else:
                parts.append((c < 0, f"{_lit(abs(c))} * {self._wrap(t, MUL, strict=True)}"))
        # start with a positive term where there is one
        first = next((i for i, (neg, _) in enumerate(parts) if not neg), 0)
        parts.insert(0, parts.pop(first))
        neg0, text = parts[0]
        out = f"-{text}" if neg0 else text
        for neg, t in parts[1:]:
            out += f" - {t}" if neg else f" + {t}"
        return out, ADD

    def _op_mul(self, node: Node) -> tuple[str, int]:
        # scalars first, then arrays smaller than the result (broadcast), then full-size ones: the small
        # products are formed before the big ones; among full arrays, fresh results
        # first, so that NumPy multiplies into that temporary instead of a new array
        order = sorted(node.args, key=lambda f: (f.rt is not None, f.rt == node.rt,
                                                 f in self.names or f.op in ("arg", "T")))
        c = node.attr
        if len(order) == 1 and c == 1.0:
            return self._code(order[0])
        texts = [self._wrap(order[0], MUL)] + [self._wrap(f, MUL, strict=True) for f in order[1:]]
        if c == -1.0:
            if len(texts) == 1:
                return f"-{self._wrap(order[0], UNARY)}", UNARY
            texts[0] = f"-{self._wrap(order[0], POW)}"
        elif c != 1.0:
            texts[0] = self._wrap(order[0], MUL, strict=True)
            texts.insert(0, _lit(c))
        return " * ".join(texts), (MUL if len(texts) > 1 else ATOM if c == 1.0 else UNARY)

    def _number(self, x: Node) -> str | None:
        """``x``, a function of dimensions alone, as a scalar of the computation's dtype
        (:attr:`number_format`); None for anything else, or where the printer has no such format."""
        if self.number_format and is_number(x):
            return self.number_format.format(code=self.emit(x), dt=self.dtype_code)
        return None

    def _op_pow(self, node: Node) -> tuple[str, int]:
        (x,), p = node.args, node.attr
        # a power of dimensions (1/√d) on a scalar of the dtype: float32 stays float32, a negative base
        # is NaN (Python's own ** would make it complex), 1/√0 is inf, and torch.sqrt takes it
        number = self._number(x)
        if p == 0.5:
            return f"{self._np('sqrt')}({number or self.emit(x)})", ATOM
        if p == -0.5:
            return f"1 / {self._np('sqrt')}({number or self.emit(x)})", MUL
        if p == -1.0:
            return f"1 / {number or self._wrap(x, MUL, strict=True)}", MUL
        exponent = _num(p) if p >= 0 else f"({_num(p)})"
        return f"{number or self._wrap(x, POW, strict=True)}**{exponent}", POW

    def _op_powv(self, node: Node) -> tuple[str, int]:
        a, b = node.args
        return f"{self._np('power')}({self.emit(a)}, {self.emit(b)})", ATOM

    def _op_fn(self, node: Node) -> tuple[str, int]:
        f = registry.function(node.attr)
        x = node.args[0]
        number = self._number(x)
        out = [self._library(f.pieces[0])]
        for context, piece in zip(f.contexts, f.pieces[1:]):
            arg = number if number is not None else self.emit(x) if context is None else self._wrap(x, *context)
            out += [arg, self._library(piece)]
        return "".join(out), f.precedence

    def _library(self, code: str) -> str:
        """Template code with each ``numpy.name`` written as this printer's library's ``name``."""
        return _PREFIX.sub(lambda m: self._np(m.group(1)), code)

    def _op_T(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.T", ATOM

    def _op_matmul(self, node: Node) -> tuple[str, int]:
        a, b = node.args
        return f"{self._wrap(a, MUL)} @ {self._wrap(b, MUL, strict=True)}", MUL

    def _op_multidot(self, node: Node) -> tuple[str, int]:
        return f"{self._np('linalg.multi_dot')}([{', '.join(self.emit(a) for a in node.args)}])", ATOM

    def _op_sum0(self, node: Node) -> tuple[str, int]:
        if self.helpers:
            return f"_colsum({self.emit(node.args[0])})", ATOM
        return f"{self._wrap(node.args[0], ATOM)}.sum(axis=0, keepdims=True)", ATOM

    def _op_sum1(self, node: Node) -> tuple[str, int]:
        if self.helpers:
            return f"_rowsum({self.emit(node.args[0])})", ATOM
        return f"{self._wrap(node.args[0], ATOM)}.sum(axis=1, keepdims=True)", ATOM

    def _op_max(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.max(axis={node.attr}, keepdims=True)", ATOM

    def _op_expshift(self, node: Node) -> tuple[str, int]:
        a, m = node.args
        return f"{self._np('exp')}({self.emit(a)} - {self._wrap(m, ADD, strict=True)})", ATOM

    # the matrix functions of numeric.numpy_matfun (its source copied into a module that calls them)
    def _op_expm(self, node: Node) -> tuple[str, int]:
        return f"_expm({self.emit(node.args[0])})", ATOM

    def _op_spdpow(self, node: Node) -> tuple[str, int]:
        return f"_spd_power({self.emit(node.args[0])}, {node.attr!r})", ATOM

    def _op_spdpowv(self, node: Node) -> tuple[str, int]:
        return f"_spd_power({self.emit(node.args[0])}, {self.emit(node.args[1])})", ATOM

    def _op_matpowv(self, node: Node) -> tuple[str, int]:
        return f"_matrix_power({self.emit(node.args[0])}, {self.emit(node.args[1])})", ATOM

    def _op_matpow(self, node: Node) -> tuple[str, int]:
        return f"{self._np('linalg.matrix_power')}({self.emit(node.args[0])}, {node.attr})", ATOM

    def _op_item(self, node: Node) -> tuple[str, int]:
        index = ", ".join(str(i) for i in node.attr)
        return f"{self._wrap(node.args[0], ATOM)}[{index}]", ATOM

    def _op_bcast(self, node: Node) -> tuple[str, int]:
        x = node.args[0]
        if x.rt is None:
            return self._op_full(node)
        return f"{self._np('broadcast_to')}({self.emit(x)}, {self._shape(node.shape)})", ATOM

    def _op_bcastcopy(self, node: Node) -> tuple[str, int]:
        return f"{self._op_bcast(node)[0]}.copy()", ATOM

    def _op_full(self, node: Node) -> tuple[str, int]:
        x = node.args[0]
        return f"{self._np('full')}({self._shape(node.shape)}, {self.emit(x)}, dtype={self.dtype_code})", ATOM

    def _op_copy(self, node: Node) -> tuple[str, int]:
        return f"{self._wrap(node.args[0], ATOM)}.copy()", ATOM

    # ----- SymPy expressions: lower, then print inline ----------------------------------------
    def _print_matrix_calculus(self, expr: sympy.Basic) -> str:
        symbols = sorted(expr.atoms(MatrixSymbol), key=lambda s: s.name)
        dims = {d for s in symbols for x in s.shape for d in sympy.sympify(x).free_symbols}
        # other free symbols (a λ) are scalar arguments, printed by name
        scalars = sorted((s for s in expr.free_symbols
                          if isinstance(s, sympy.Symbol) and not isinstance(s, sympy.Dummy) and s not in dims),
                         key=lambda s: s.name)
        builder = Builder([*symbols, *scalars])
        dim_code = dict(self.dim_code)
        for s in symbols:
            for axis, d in enumerate(s.shape):
                if not d.is_Integer:
                    dim_code.setdefault(d, f"{self._print(s)}.shape[{axis}]")
        node = builder.lower(expr)
        if isinstance(expr, MatrixExpr):
            node = builder.output(node)
        sub = type(self)(self._settings, dim_code=dim_code, dtype_code=self.dtype_code, module=self._module)
        sub.module_imports = self.module_imports
        arg_names = {builder.arg_nodes[s]: self._print(s) for s in [*symbols, *scalars]}
        sub.names.update(arg_names)
        return sub.emit(node)

    def _print_Function(self, expr: sympy.Basic) -> str:
        if registry.function(type(expr).__name__) is not None or expr.has(MatrixSymbol):
            return self._print_matrix_calculus(expr)
        return super()._print_Function(expr)


for _cls in ("MatMul", "MatAdd", "Transpose", "HadamardProduct", "HadamardPower",
             "ElementwiseApplyFunction", "Trace", "Inverse", "Determinant", "OneMatrix", "ZeroMatrix",
             "Identity", "MatPow", "MatrixElement"):
    setattr(NumericPrinter, f"_print_{_cls}", NumericPrinter._print_matrix_calculus)
del _cls


class NumPyBackend(Backend):
    """Kernels as modules that import NumPy only (:class:`numeric.backend.Backend`).

    ``module`` is the name the generated code calls the library by; the argument checks of
    :mod:`numeric.numpy_checks` are copied into the module ahead of the kernel.
    """

    name = "numpy"
    module = "numpy"
    typed_numbers = True
    reserved = frozenset({"numpy", "_SPEC", "_DTYPE"} | {n for n in vars(numpy_checks) if not n.startswith("__")}
                         | {n for n in vars(numpy_matfun) if not n.startswith("__")})

    def printer(self, names: Mapping[Node, str], dim_code: Mapping[sympy.Basic, str]) -> NumericPrinter:
        return NumericPrinter(names=dict(names), dim_code=dict(dim_code), dtype_code=self.dtype_name,
                              module=self.module, helpers=True, number_format="{dt}.type({code})")

    def prologue(self, kernel: KernelModule) -> str:
        checks = inspect.getsource(numpy_checks)
        checks = checks[checks.index("import numpy"):]
        if any(re.search(r"\b(_expm|_spd_power|_matrix_power)\(", line) for line in kernel.body + kernel.results):
            matfun = inspect.getsource(numpy_matfun)
            checks += "\n\n" + matfun[matfun.index("import numpy") + len("import numpy"):].strip() + "\n"
        dtype = "None" if kernel.dtype is None else f"numpy.dtype({kernel.dtype.name!r})"
        return "\n".join([checks.rstrip(), "", "", f"_SPEC = {kernel.spec!r}", f"_DTYPE = {dtype}"])

    def entry(self, kernel: KernelModule) -> list[str]:
        params = kernel.params
        unpack = f"({', '.join(params)}{',' if len(params) == 1 else ''}), {self.dtype_name}" if params \
            else f"_, {self.dtype_name}"
        return [*_fast_check(kernel, self.dtype_name),
                f"        {unpack} = _prepare(arrays, _SPEC, {kernel.signature!r}, _DTYPE)"]

    def statements(self, var: str, node: Node, printer: NumericPrinter, in_place: bool) -> list[str]:
        """``var = code``, or where ``node`` is an elementwise chain (a sum, a product, a function)
        on an array the statement itself creates, that array computed first into ``var`` and the
        chain applied to it in place (``_t = X @ W; _t += b; numpy.tanh(_t, out=_t)``): the same
        values (a function's template step by step, a sum or product term by term) without a new
        array per step, which on small arrays costs about as much as the arithmetic.

        Only an array nothing else reads is changed: a node without a variable of its own is read
        once, by its parent, and one of the operations of :data:`_NEW` (or a chain on one) makes a
        new array, never a view of an argument or of a temporary; only one whose run-time shape is
        the result's (broadcasting never changes the target's shape).  ``in_place`` is False
        where a function of numbers alone may make a float64 scalar: an operation in place would
        keep a float32 target where the expression would promote it.
        """
        chain = _chain(node, var, printer) if in_place else None
        if chain is None or len(chain) < 3:  # one operation saves little: the one expression is plainer
            return [self.assign(var, printer.define(node))]
        return chain

    def scalar_result(self, code: str) -> str:
        return f"{self.dtype_name}.type({code})"

    def cast(self, code: str) -> str:
        return f"_cast({code}, {self.dtype_name})"


NUMPY = NumPyBackend()

# IR operations whose NumPy code always returns a new array (on arrays: never a view of an argument)
_NEW = frozenset({"matmul", "multidot", "expshift", "solve", "inv", "pow"})


def _chain(node: Node, var: str, printer: NumericPrinter) -> list[str] | None:
    """Statements that compute the elementwise ``node`` into ``var``, in place on its first operand
    that is a new array of the result's shape; None where it has none (see ``NumPyBackend.statements``)."""
    if node.op == "fn":
        steps = _template_steps(node.attr)
        bases = [node.args[0]] if steps is not None else []
    elif node.op in ("add", "mul"):
        bases = list(node.args)
    else:
        return None
    for base in bases:
        if base.rt is None or base.rt != node.rt or base in printer.names:
            continue
        first = _chain(base, var, printer)
        if first is None and is_new_array(base):
            first = [f"{var} = {printer.define(base)}"]
        if first is None:
            continue
        if node.op == "fn":
            return first + [printer._library(step.format(v=var)) for step in steps]
        rest = list(node.args)
        i = rest.index(base)
        del rest[i]
        if node.op == "mul":
            return first + [f"{var} *= {printer.emit(f)}" for f in rest] + _scale(var, node.attr, printer)
        const, coefs = node.attr
        coefs = list(coefs)
        c = coefs.pop(i)
        out = list(first)
        if c == -1.0 and 1.0 in coefs:  # −base + t: t − base, as written
            j = coefs.index(1.0)
            out.append(f"{printer._np('subtract')}({printer.emit(rest[j])}, {var}, out={var})")
            del rest[j], coefs[j]
        else:
            out += _scale(var, c, printer)
        for t, c in zip(rest, coefs):
            op = "-=" if c < 0 else "+="
            term = printer.emit(t) if abs(c) == 1.0 else f"{_lit(abs(c))} * {printer._wrap(t, MUL, strict=True)}"
            out.append(f"{var} {op} {term}")
        if const != 0.0:
            out.append(f"{var} {'-=' if const < 0 else '+='} {_lit(abs(const))}")
        return out
    return None


def _scale(var: str, c: float, printer: NumericPrinter) -> list[str]:
    if c == 1.0:
        return []
    if c == -1.0:
        return [f"{printer._np('negative')}({var}, out={var})"]
    return [f"{var} *= {_lit(c)}"]


def is_new_array(node: Node) -> bool:
    """``node``'s code returns a new array (it is an array: its ``rt`` is not None), which a later
    step may change in place: the one rule of the NumPy and PyTorch printers' in-place steps.
    A function whose template is its argument (``"{x}"``) makes none."""
    if node.op in _NEW:
        return True
    if node.op == "mul":
        return len(node.args) > 1 or node.attr != 1.0
    if node.op == "add":
        const, coefs = node.attr
        return len(node.args) > 1 or const != 0.0 or coefs[0] != 1.0
    return node.op == "fn" and _template_steps(node.attr) is not None


_STEP_OPS = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/="}
_SWAPPED = {ast.Sub: "subtract", ast.Div: "divide"}


def _template_steps(name: str) -> tuple[str, ...] | None:
    """A function's NumPy template as steps in place on ``{v}`` (``"{v} *= 0.5"``,
    ``"numpy.tanh({v}, out={v})"``), innermost first, where it reads its argument once through
    arithmetic with numbers and calls of NumPy ufuncs that map float32 to float32 and float64 to
    float64 (each of which makes a new array); else None.

    >>> _template_steps("exp"), _template_steps("Heaviside")
    (('numpy.exp({v}, out={v})',), ('numpy.heaviside({v}, 0, out={v})',))
    """
    f = registry.function(name)
    if f is None or f.reads != 1:
        return None
    steps: list[str] = []

    def number(n: ast.AST) -> str | None:
        if isinstance(n, ast.Constant) and type(n.value) in (int, float):
            return repr(n.value)
        return None

    def walk(n: ast.AST) -> bool:
        if isinstance(n, ast.Name):
            return n.id == "__x__"
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return walk(n.operand) and not steps.append("numpy.negative({v}, out={v})")
        if isinstance(n, ast.BinOp) and type(n.op) in _STEP_OPS:
            if number(n.right) is not None and walk(n.left):
                return not steps.append(f"{{v}} {_STEP_OPS[type(n.op)]} {number(n.right)}")
            if number(n.left) is not None and walk(n.right):
                if type(n.op) in _SWAPPED:
                    steps.append(f"numpy.{_SWAPPED[type(n.op)]}({number(n.left)}, {{v}}, out={{v}})")
                else:  # + and * commute: the same value
                    steps.append(f"{{v}} {_STEP_OPS[type(n.op)]} {number(n.left)}")
                return True
            return False
        if (isinstance(n, ast.Call) and not n.keywords and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name) and n.func.value.id == "numpy"):
            ufunc = getattr(numpy, n.func.attr, None)
            if (not isinstance(ufunc, numpy.ufunc) or ufunc.nout != 1 or ufunc.nin != len(n.args)
                    or any(c * ufunc.nin + "->" + c not in ufunc.types for c in "fd")):
                return False
            texts = [number(a) for a in n.args]
            holes = [i for i, t in enumerate(texts) if t is None]
            if len(holes) != 1 or not walk(n.args[holes[0]]):
                return False
            texts[holes[0]] = "{v}"
            return not steps.append(f"numpy.{n.func.attr}({', '.join(texts)}, out={{v}})")
        return False

    # no step at all (a template that is its argument, "{x}"): no new array, nothing to do in place
    return tuple(steps) if walk(ast.parse(f.numpy.replace("{x}", "__x__"), mode="eval").body) and steps else None


def _fast_check(kernel: KernelModule, dt: str, array_type: str = "numpy.ndarray",
                same: Mapping[str, str] | None = None, convert: str = "_d.type({v})") -> list[str]:
    """Lines that accept well-formed float32 or float64 ndarrays (and Python floats
    for scalar arguments) without calling ``_prepare``: one chained test of the types, the dtypes
    compared by identity (NumPy's float dtypes are singletons, and ``==`` between dtypes costs a
    microsecond; another equal dtype object takes the slow path, which is as correct), the shapes
    unpacked once (which tests the rank too): under 1 µs for the seed network's six arguments,
    where a call on its smallest size takes 20 µs.

    Anything else (lists, subclasses, integers, mixed dtypes, bad shapes) goes to ``_prepare``,
    which converts or raises the error message.  Another library's backend names its array type,
    the attributes that must be equal on every array, each bound to a variable (``same``: torch's
    ``{"device": "_dev"}``), and the conversion of a scalar argument ``{v}``.
    """
    matrices = [(a, v) for a, v in zip(kernel.args, kernel.params) if isinstance(a, MatrixSymbol)]
    if not matrices:
        return ["    if True:"]
    n = len(kernel.args)
    vs = [v for _, v in matrices]
    scalars = [v for a, v in zip(kernel.args, kernel.params) if not isinstance(a, MatrixSymbol)]
    first = vs[0]
    types = " is ".join(f"type({v})" for v in vs) + f" is {array_type}"
    conds = [types, *(f"type({v}) is float" for v in scalars),
             f"((_d := {first}.dtype) is _F64 or _d is _F32)" if kernel.dtype is None else
             f"(_d := {first}.dtype) is _DTYPE"]
    if len(vs) > 1:
        conds.append("_d is " + " is ".join(f"{v}.dtype" for v in vs[1:]))
    conds += [f"({var} := {first}.{attr})" + "".join(f" == {v}.{attr}" for v in vs[1:])
              for attr, var in (same or {}).items()]
    sizes, equal = _shape_conditions(matrices)
    unpack = f"{', '.join(kernel.params)}{',' if n == 1 else ''} = arrays"
    lines = [f"    {dt} = None",
             f"    if len(arrays) == {n}:",
             f"        {unpack}",
             "        if (" + " and\n                ".join(conds) + "):",
             "            try:",
             f"                {sizes} = {', '.join(f'{v}.shape' for v in vs)}",
             "            except ValueError:  # an array that is not 2-D",
             "                pass",
             "            else:"]
    inner = "                "
    if equal:
        lines.append(f"{inner}if (" + " and\n                        ".join(equal) + "):")
        inner += "    "
    lines += [f"{inner}{dt} = _d", *(f"{inner}{v} = {convert.format(v=v)}" for v in scalars)]
    return [*lines, f"    if {dt} is None:"]


def _shape_conditions(matrices: Sequence[tuple[MatrixSymbol, str]]) -> tuple[str, list[str]]:
    """The targets that unpack the arguments' shapes (``(_n0, _n1), (_n2, _n3)``) and the tests that
    each literal dimension equals its size and each named one its first occurrence."""
    conds = []
    targets = []
    seen: dict[sympy.Basic, str] = {}
    for a, _ in matrices:
        pair = []
        for d in a.shape:
            here = f"_n{len(targets) * 2 + len(pair)}"
            pair.append(here)
            if d.is_Integer:
                conds.append(f"{here} == {int(d)}")
            elif d in seen:
                conds.append(f"{here} == {seen[d]}")
            else:
                seen[d] = here
        targets.append(f"({', '.join(pair)})")
    return ", ".join(targets), conds
