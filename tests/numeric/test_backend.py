"""The backend seam: a second backend is one class; the schedule is shared, the printing is not.

``NpBackend`` below is a backend for a NumPy imported as ``np`` (the way JAX's or CuPy's
printers differ from NumPy's: the module name), with argument handling of its own (plain
conversion to float64, no checks).  Its kernels are compared with backprop written by hand.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy import Determinant, Inverse, MatrixSymbol, Trace, log

import numeric
from derive import gradient
from derive.networks import seed_network
from numeric.backend import Backend, KernelModule
from numeric.ir import Node
from numeric.numpy_backend import NumericPrinter
from tests.oracle import random_arrays, rel_err, seed_backprop


class NpBackend(Backend):
    """``import numpy as np``; arguments converted to float64 arrays, nothing checked."""

    name = "np"
    reserved = frozenset({"np"})

    def printer(self, names: Mapping[Node, str], dim_code: Mapping[sympy.Basic, str]) -> NumericPrinter:
        return NumericPrinter(names=dict(names), dim_code=dict(dim_code), dtype_code=self.dtype_name, module="np")

    def prologue(self, kernel: KernelModule) -> str:
        return "import numpy as np"

    def entry(self, kernel: KernelModule) -> list[str]:
        params = "".join(f"{p}, " for p in kernel.params)
        return [f"    {params}= (np.asarray(a, dtype=np.float64) for a in arrays)",
                f"    {self.dtype_name} = np.dtype(np.float64)"]

    def scalar_result(self, code: str) -> str:
        return f"float({code})"

    def cast(self, code: str) -> str:
        return f"np.asarray({code}, dtype={self.dtype_name})"


NP = NpBackend()
NET = seed_network(bias="row")
SEED_EXPRS = [NET.f, *(gradient(NET.f, p) for p in NET.params)]
SEED_ARGS = [*NET.inputs, *NET.params]


def _statements(source: str) -> list[str]:
    """The lines of the kernel's body after its argument handling."""
    lines = source.splitlines()
    return lines[next(i for i, ln in enumerate(lines) if ln.startswith("    _t0 = ")):]


def test_seed_kernel_through_a_second_backend_matches_hand_backprop() -> None:
    kernel = numeric.compile(SEED_EXPRS, SEED_ARGS, backend=NP, name="seed_np")
    assert "numpy." not in kernel.source and "np.tanh(" in kernel.source and "_prepare" not in kernel.source
    rng = np.random.default_rng(5)
    arrays = random_arrays(SEED_ARGS, rng)
    got = kernel(*[a.tolist() for a in arrays])   # this backend's own conversion: lists are fine
    want = seed_backprop(*arrays)
    assert isinstance(got[0], float) and abs(got[0] - want[0]) <= 1e-12 * want[0]
    for g, w in zip(got[1:], want[1:]):
        assert g.shape == w.shape and rel_err(g, w) < 1e-12


def test_the_schedule_is_shared_and_only_the_printing_differs() -> None:
    ours = numeric.compile(SEED_EXPRS, SEED_ARGS, backend=NP, name="seed_np")
    default = numeric.compile(SEED_EXPRS, SEED_ARGS, name="seed_np")
    assert default.temporaries == ours.temporaries == 9   # with G = −2R, shared by the four gradients
    mine = _statements(ours.source)
    theirs = _statements(default.source)
    # the same temporaries in the same order, deleted at the same points (NumPy's own backend computes
    # an elementwise chain in place on the array its statement makes: more lines, the same variables)
    def plan(lines):
        return [ln.split(" = ")[0] if " = " in ln else ln for ln in lines
                if ln.startswith("    del ") or (" = " in ln and ln.startswith("    _t"))]
    assert plan(mine[:-1]) == plan(theirs[:-1]) and len(plan(mine)) == 9 + 4
    assert mine[-1] == "    return (float(_t2), _t5, _t6, _t7, _t8)"
    assert theirs[-1] == "    return (_dt.type(_t2), _t5, _t6, _t7, _t8)"


def test_linear_algebra_and_templates_take_the_module_name() -> None:
    n = sympy.Symbol("n", integer=True, positive=True)
    S, B = MatrixSymbol("S", n, n), MatrixSymbol("B", n, 2)
    x = sympy.Symbol("x")
    exprs = [Inverse(S) * B, log(Determinant(S)), Trace(B.T * B), B.applyfunc(sympy.Lambda(x, sympy.sin(x)))]
    kernel = numeric.compile(exprs, [S, B], backend=NP)
    assert "numpy." not in kernel.source
    for call in ("np.linalg.solve(", "np.linalg.slogdet(", "np.vdot(", "np.sin("):
        assert call in kernel.source
    rng = np.random.default_rng(1)
    s = rng.standard_normal((4, 4))
    s = s @ s.T + 4 * np.eye(4)
    b = rng.standard_normal((4, 2))
    solve, logdet, tr, sin = kernel(s, b)
    assert rel_err(solve, np.linalg.inv(s) @ b) < 1e-12
    assert abs(logdet - np.log(np.linalg.det(s))) < 1e-12
    assert abs(tr - np.sum(b * b)) < 1e-12 and rel_err(sin, np.sin(b)) < 1e-15


def test_a_backend_reserves_its_own_names() -> None:
    X = MatrixSymbol("X", 2, 2)
    with pytest.raises(ValueError, match="kernel name 'np' is taken by the generated module"):
        numeric.compile(2 * X, [X], backend=NP, name="np")
    assert numeric.compile(2 * X, [X], name="np")(np.eye(2)).tolist() == [[2.0, 0.0], [0.0, 2.0]]
    np_arg = MatrixSymbol("np", 2, 2)
    out = numeric.compile(2 * np_arg, [np_arg], backend=NP)
    assert "_a0" in out.source and out(np.eye(2)).tolist() == [[2.0, 0.0], [0.0, 2.0]]


def test_numeric_imports_nothing_from_derive() -> None:
    root = Path(numeric.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name == "derive" or name.startswith("derive.") for name in names), path.name
