"""Exported modules for every backend (``numeric.export(..., backend=)``), the autograd modules of
``numeric.export_autograd`` (a ``torch.autograd.Function`` and ``nn.Module``; a ``jax.custom_vjp``)
and the CuPy backend.

Oracles: each library's own autodiff (torch.autograd, jax.grad) of forward passes written by hand
here, ``torch.autograd.gradcheck`` (finite differences), and for NumPy and CuPy the seed network's
backward pass written by hand in NumPy (:mod:`tests.oracle`).  Shapes are non-square and all
different (n=4, d=3, m=5, k=2), data random float64.  Tests of a library are skipped where it is
missing.  There is no GPU here: the CuPy module's code is run with NumPy standing in for CuPy
(:func:`cupy_standin`), which executes the generated code's logic, not CuPy itself.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sympy import MatrixSymbol, Symbol, Trace, log
from sympy import Determinant, Inverse

import numeric
from derive import backprop, export_network, seed_network
from derive.kernel_stages import kernel_stages
from derive.networks import mlp
from numeric.array_backends import CUPY, library_of
from numeric.compile import generate
from tests.numeric.test_backends import jax_x64  # noqa: F401 (the fixture: jax_enable_x64 on, then restored)
from tests.oracle import seed_backprop, seed_data, seed_loss

N, D, M, K = 4, 3, 5, 2
CASES = ["seed", "softmax-ce"]


def program(case):
    net = seed_network() if case == "seed" else mlp(["d", "m", "k"], loss="softmax_cross_entropy")
    return kernel_stages(backprop(net))


def data(case, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    Y = rng.standard_normal((N, K)) if case == "seed" else np.eye(K)[rng.integers(0, K, size=N)]
    return [X, Y, *(rng.standard_normal(s) for s in [(D, M), (1, M), (M, K), (1, K)])]


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(case, backend, tmp_path, name="loss"):
    """The case's loss and gradients exported for ``backend`` with export_autograd (torch, jax)."""
    stages, outs, args = program(case)
    params = args[2:]
    path = numeric.export_autograd(outs[0], dict(zip(params, outs[1:])), args, tmp_path / f"{case.replace('-', '_')}_"
                                   f"{backend}.py", name, backend=backend, stages=stages)
    return load(path)


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def imports(path) -> set[str]:
    """The top-level modules that the source at ``path`` imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add((node.module or "").split(".")[0])
    return out


# ------------------------------------------------------------------------ torch

def torch_loss(torch, case, X, Y, W1, b1, W2, b2):
    """The forward pass written by hand in torch."""
    H = torch.sigmoid(X @ W1 + b1)
    if case == "seed":
        return ((Y - (H @ W2 + b2)) ** 2).sum()
    return -(Y * torch.log_softmax(H @ W2 + b2, dim=1)).sum()


@pytest.mark.parametrize("case", CASES)
def test_torch_function_matches_autograd_of_a_hand_written_forward(case, tmp_path):
    torch = pytest.importorskip("torch")
    module = export(case, "torch", tmp_path)
    arrays = data(case)
    mine = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(arrays)]
    theirs = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(arrays)]
    value = module.loss(*mine)
    value.backward()
    expected = torch_loss(torch, case, *theirs)
    expected.backward()
    assert value.dtype == torch.float64 and value.shape == ()
    assert max_abs(value.detach(), expected.detach()) < 1e-12
    for a, b in zip(mine[2:], theirs[2:]):
        assert a.grad.shape == a.shape and a.grad.dtype == torch.float64
        assert max_abs(a.grad, b.grad) < 1e-12
    assert mine[0].grad is None and mine[1].grad is None


def test_torch_gradcheck_on_a_small_case(tmp_path):
    torch = pytest.importorskip("torch")
    module = export("softmax-ce", "torch", tmp_path)
    arrays = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(data("softmax-ce", seed=2))]
    assert torch.autograd.gradcheck(module.LossFunction.apply, tuple(arrays), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_torch_grad_output_scales_the_gradients(tmp_path):
    torch = pytest.importorskip("torch")
    module = export("seed", "torch", tmp_path)
    arrays = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(data("seed"))]
    (3.0 * module.loss(*arrays)).backward()
    theirs = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(data("seed"))]
    (3.0 * torch_loss(torch, "seed", *theirs)).backward()
    assert all(max_abs(a.grad, b.grad) < 1e-11 for a, b in zip(arrays[2:], theirs[2:]))


def test_torch_module_trains_with_an_optimizer(tmp_path):
    torch = pytest.importorskip("torch")
    module = export("softmax-ce", "torch", tmp_path)
    X, Y, *params = (torch.from_numpy(a) for a in data("softmax-ce"))
    model = module.LossModule(*params)
    assert [n for n, _ in model.named_parameters()] == ["W1", "b1", "W2", "b2"]
    assert all(isinstance(p, torch.nn.Parameter) and p.dtype == torch.float64 for p in model.parameters())
    assert model.W1.data_ptr() != params[0].data_ptr()          # a copy of the initial value
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    before = model(X, Y)
    before.backward()
    optimizer.step()
    # the step the hand-written forward's autograd takes
    leaves = [p.clone().requires_grad_(True) for p in params]
    torch_loss(torch, "softmax-ce", X, Y, *leaves).backward()
    for p, leaf in zip(model.parameters(), leaves):
        assert max_abs(p.detach(), leaf.detach() - 0.1 * leaf.grad) < 1e-12
    assert model(X, Y).item() < before.item()


def test_torch_float32_stays_float32(tmp_path):
    torch = pytest.importorskip("torch")
    module = export("seed", "torch", tmp_path)
    X, Y, *params = (torch.from_numpy(a).float() for a in data("seed"))
    model = module.LossModule(*params)
    value = model(X, Y)
    value.backward()
    assert value.dtype == torch.float32 and all(p.grad.dtype == torch.float32 for p in model.parameters())
    leaves = [p.clone().double().requires_grad_(True) for p in params]
    torch_loss(torch, "seed", X.double(), Y.double(), *leaves).backward()
    assert all(max_abs(p.grad, leaf.grad) < 1e-4 * max(1.0, float(leaf.grad.abs().max()))
               for p, leaf in zip(model.parameters(), leaves))


def test_torch_refuses_data_that_requires_grad_and_a_second_derivative(tmp_path):
    torch = pytest.importorskip("torch")
    module = export("seed", "torch", tmp_path)
    arrays = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(data("seed"))]
    X = arrays[0].clone().requires_grad_(True)
    with pytest.raises(ValueError, match=r"^argument X requires grad, but there is no derived gradient for it "
                                         r"\(only for W1, b1, W2, b2\): detach it$"):
        module.loss(X, *arrays[1:])
    (g,) = torch.autograd.grad(module.loss(*arrays), [arrays[2]], create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


# ------------------------------------------------------------------------ jax

def jax_loss(case, X, Y, W1, b1, W2, b2):
    """The forward pass written by hand in jax.numpy."""
    import jax.nn
    H = jax.nn.sigmoid(X @ W1 + b1)
    if case == "seed":
        return ((Y - (H @ W2 + b2)) ** 2).sum()
    return -(Y * jax.nn.log_softmax(H @ W2 + b2, axis=1)).sum()


@pytest.mark.parametrize("case", CASES)
def test_jax_custom_vjp_under_jit_grad_matches_grad_of_a_hand_written_forward(case, request, tmp_path):
    jax = request.getfixturevalue("jax_x64")
    import jax.numpy as jnp
    module = export(case, "jax", tmp_path)
    arrays = [jnp.asarray(a) for a in data(case)]
    argnums = (2, 3, 4, 5)
    grads = jax.jit(jax.grad(module.loss, argnums=argnums))(*arrays)
    expected = jax.grad(lambda *a: jax_loss(case, *a), argnums=argnums)(*arrays)
    for got, want in zip(grads, expected):
        assert got.shape == want.shape and got.dtype == jnp.float64 and max_abs(got, want) < 1e-12
    value, _ = jax.jit(jax.value_and_grad(module.loss, argnums=argnums))(*arrays)
    assert max_abs(value, jax_loss(case, *arrays)) < 1e-12
    assert max_abs(jax.jit(module.loss)(*arrays), value) < 1e-12
    # the cotangent scales the gradients
    scaled = jax.grad(lambda *a: -2.5 * module.loss(*a), argnums=argnums)(*arrays)
    assert all(max_abs(s, -2.5 * w) < 1e-11 for s, w in zip(scaled, expected))


def test_jax_float32_stays_float32(tmp_path):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    if jax.config.jax_enable_x64:
        pytest.skip("jax_enable_x64 is on")
    module = export("softmax-ce", "jax", tmp_path)
    arrays = [jnp.asarray(a, dtype=jnp.float32) for a in data("softmax-ce")]
    value, grads = jax.jit(jax.value_and_grad(module.loss, argnums=(2, 3, 4, 5)))(*arrays)
    assert value.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in grads)
    expected = jax.grad(lambda *a: jax_loss("softmax-ce", *a), argnums=(2, 3, 4, 5))(*arrays)
    assert all(max_abs(g, w) < 1e-4 for g, w in zip(grads, expected))


def test_jax_refuses_a_gradient_by_data(request, tmp_path):
    jax = request.getfixturevalue("jax_x64")
    import jax.numpy as jnp
    module = export("seed", "jax", tmp_path)
    arrays = [jnp.asarray(a) for a in data("seed")]
    with pytest.raises(ValueError, match=r"^argument X is differentiated, but there is no derived gradient"):
        jax.grad(module.loss, argnums=0)(*arrays)


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_a_one_by_one_loss_and_a_scalar_parameter(library, request, tmp_path):
    """Logistic regression, whose loss sum(softplus(Xw)) − yᵀXw is 1×1 (returned as a scalar), and
    λ‖XW − Y‖² with λ a parameter too (∂/∂λ = ‖XW − Y‖², a Python number to start from)."""
    pytest.importorskip(library)
    if library == "jax":
        request.getfixturevalue("jax_x64")
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((7, 3)), rng.integers(0, 2, (7, 1)).astype(float)
    w = rng.standard_normal((3, 1))
    logreg = load(export_network("X: n×d; y: n×1; param w: d×1; f = sum(softplus(X*w)) - y'*X*w",
                                 tmp_path / f"logreg_{library}.py", backend=library))
    n = Symbol("n", integer=True, positive=True)
    A, B, W, lam = MatrixSymbol("A", n, 3), MatrixSymbol("B", n, 2), MatrixSymbol("W", 3, 2), Symbol("lam")
    R = A * W - B
    scaled = load(numeric.export_autograd(lam * Trace(R.T * R), {W: 2 * lam * A.T * R, lam: Trace(R.T * R)},
                                          [A, B, W, lam], tmp_path / f"scaled_{library}.py", backend=library))
    a, b, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    r = a @ c - b
    if library == "torch":
        import torch
        wt = torch.from_numpy(w).requires_grad_(True)
        value = logreg.loss(torch.from_numpy(X), torch.from_numpy(y), wt)
        value.backward()
        value, grad_w = value.detach(), wt.grad
        model = scaled.LossModule(torch.from_numpy(c), 0.7)
        assert model.lam.dtype == torch.float64 and model.lam.shape == ()
        model(torch.from_numpy(a), torch.from_numpy(b)).backward()
        grad_c, grad_lam = model.W.grad, model.lam.grad
    else:
        import jax
        value, grad_w = jax.value_and_grad(logreg.loss, argnums=2)(X, y, w)
        grad_c, grad_lam = jax.jit(jax.grad(scaled.loss, argnums=(2, 3)))(a, b, c, 0.7)
    assert tuple(value.shape) == ()
    assert abs(float(value) - (np.sum(np.logaddexp(0, X @ w)) - (y.T @ X @ w).item())) < 1e-12
    assert max_abs(grad_w, X.T @ (1 / (1 + np.exp(-X @ w)) - y)) < 1e-12
    assert max_abs(grad_c, 1.4 * a.T @ r) < 1e-12 and abs(float(grad_lam) - np.sum(r * r)) < 1e-12


# ------------------------------------------------------------------------ the modules stand alone

BLOCKER = """
import sys

class Blocked:
    '''An import of SymPy or of tracegrad's packages fails.'''
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sympy", "mpmath", "lark", "derive", "numeric", "tracegrad"):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Blocked())
"""


def run_alone(path, script, arrays, extra=""):
    """Run ``script`` with the module at ``path`` imported as ``mod``, tracegrad and SymPy unimportable;
    its output (JSON of ``out``) is returned."""
    code = BLOCKER + extra + textwrap.dedent(f"""
        import json
        sys.path.insert(0, {str(path.parent)!r})
        import numpy as np
        mod = __import__({path.stem!r})
        arrays = [np.array(a) for a in json.loads(sys.stdin.read())]
    """) + textwrap.dedent(script) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps([a.tolist() for a in arrays]),
                          capture_output=True, text=True, cwd=str(path.parent))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_exported_module_needs_only_its_library(backend, tmp_path):
    if backend != "numpy":
        pytest.importorskip(backend)
    arrays = list(seed_data().values())
    path = export_network(seed_network(), tmp_path / f"seed_{backend}.py", backend=backend, name="seed_loss")
    assert imports(path) == {backend}
    script = {
        "numpy": """
            f, *g = mod.seed_loss_and_gradients(*arrays)
            out = [float(f), *(x.tolist() for x in g)]
        """,
        "torch": """
            import torch
            t = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(arrays)]
            f = mod.seed_loss(*t)
            f.backward()
            out = [float(f), *(x.grad.tolist() for x in t[2:])]
        """,
        "jax": """
            import jax
            jax.config.update("jax_enable_x64", True)
            f, g = jax.jit(jax.value_and_grad(mod.seed_loss, argnums=(2, 3, 4, 5)))(*arrays)
            out = [float(f), *(np.asarray(x).tolist() for x in g)]
        """,
    }[backend]
    f, *grads = run_alone(path, script, arrays)
    assert abs(f - seed_loss(*arrays)) < 1e-12 * max(1.0, abs(f))
    for got, want in zip(grads, seed_backprop(*arrays)[1:]):
        assert max_abs(got, want) < 1e-12


# ------------------------------------------------------------------------ CuPy

@pytest.fixture
def cupy_standin(monkeypatch):
    """NumPy standing in for CuPy: there is no GPU here, and CuPy mirrors NumPy's API, so ``import cupy``
    in a generated module gets NumPy.  This runs the generated code's logic (the printer's choices,
    the argument checks, ``_multi_dot``, the copied matrix functions), not CuPy itself."""
    monkeypatch.setitem(sys.modules, "cupy", np)
    return np


def cupy_kernel(exprs, args, **options):
    # backend=CUPY (the object) rather than "cupy": the name checks that CuPy is installed
    return numeric.compile(exprs, args, backend=CUPY, **options)


@pytest.mark.parametrize("write", ["compile", "export", "export_network"])
def test_missing_cupy_is_one_line_naming_the_extra(write, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cupy" else real(name, *a))
    X = MatrixSymbol("X", 2, 3)
    call = {"compile": lambda: numeric.compile(2 * X, [X], backend="cupy"),
            "export": lambda: numeric.export(2 * X, [X], tmp_path / "m.py", backend="cupy"),
            "export_network": lambda: export_network(seed_network(), tmp_path / "m.py", backend="cupy")}[write]
    with pytest.raises(ImportError, match=r"^backend 'cupy' needs cupy, which is not installed: "
                                          r"pip install 'tracegrad\[cupy\]'$"):
        call()
    assert not (tmp_path / "m.py").exists()


@pytest.mark.parametrize("case", CASES)
def test_cupy_source_is_the_numpy_printer_with_cupy(case):
    stages, outs, args = program(case)
    text = generate(outs, args, backend=CUPY, stages=stages).source
    names = {node.id for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Name)}
    assert "cupy" in names and "numpy" not in names and "sympy" not in text and "import numpy" not in text
    assert cupy_calls(text) <= CUPY_API
    assert "cupy.tanh(" in text and "@" in text and ".get()" not in text and "asnumpy" not in text
    assert "return (cupy.asarray(" in text      # the loss a 0-d array on the device, not a host scalar
    if case == "softmax-ce":
        assert "max(axis=1, keepdims=True)" in text and "cupy.exp(" in text


@pytest.mark.parametrize("case", CASES)
def test_cupy_kernel_with_the_standin_matches_the_numpy_kernel(case, cupy_standin):
    stages, outs, args = program(case)
    arrays = data(case)
    got = cupy_kernel(outs, args, stages=stages)(*arrays)
    want = numeric.compile(outs, args, stages=stages)(*arrays)
    assert all(max_abs(g, w) < 1e-12 for g, w in zip(got, want))
    if case == "seed":
        oracle = [seed_loss(*arrays), *seed_backprop(*arrays)[1:]]
        assert all(max_abs(g, w) < 1e-12 for g, w in zip(got, oracle))
    f32 = cupy_kernel(outs, args, stages=stages)(*(a.astype(np.float32) for a in arrays))
    assert all(r.dtype == np.float32 for r in f32)


def test_cupy_linear_algebra_with_the_standin(cupy_standin):
    """log det, solve, a chain of four products (CuPy has no multi_dot: ``_multi_dot``), the matrix
    exponential (NumPy's Padé code with cupy), a scalar argument."""
    from derive.matrix_functions import expm
    n = Symbol("n", integer=True, positive=True)
    A, B, C, E = (MatrixSymbol(s, *shape) for s, shape in
                  [("A", (n, 3)), ("B", (3, 5)), ("C", (5, 2)), ("E", (2, 6))])
    S, lam = MatrixSymbol("S", 4, 4), Symbol("lam")
    exprs = [log(Determinant(S)), Inverse(S) * S.T, A * B * C * E, lam * Trace(expm(S / 8)), lam * S]
    args = [A, B, C, E, S, lam]
    rng = np.random.default_rng(5)
    values = [rng.standard_normal(s) for s in [(7, 3), (3, 5), (5, 2), (2, 6)]]
    G = rng.standard_normal((4, 4))
    values += [G @ G.T + 4 * np.eye(4), 0.7]
    kernel = cupy_kernel(exprs, args)
    assert "_multi_dot([" in kernel.source and "cupy.linalg.slogdet(" in kernel.source
    assert "cupy.linalg.solve(" in kernel.source and "def _expm(" in kernel.source
    assert "numpy" not in {node.id for node in ast.walk(ast.parse(kernel.source)) if isinstance(node, ast.Name)}
    assert cupy_calls(kernel.source) <= CUPY_API
    got = kernel(*values)
    want = numeric.compile(exprs, args)(*values)
    assert all(max_abs(g, w) < 1e-10 * max(1.0, float(np.max(np.abs(w)))) for g, w in zip(got, want))
    a, b, c, e = values[:4]
    assert max_abs(got[2], a @ b @ c @ e) < 1e-12


# CuPy's API as its reference documents it (docs.cupy.dev), for what the printer may call: the
# stand-in (NumPy) has more, e.g. linalg.multi_dot, which CuPy lacks
CUPY_API = {"abs", "arccos", "arcsin", "arctan", "cos", "cosh", "exp", "expm1", "heaviside", "log", "logaddexp",
            "maximum", "minimum", "sign", "sin", "sinh", "tan", "tanh", "sqrt", "power", "sum", "vdot", "trace",
            "kron", "diagflat", "eye", "full", "arange", "broadcast_to", "asarray", "float32", "float64", "ndarray",
            "nan", "inf", "linalg.solve", "linalg.inv", "linalg.det", "linalg.slogdet", "linalg.eigh",
            "linalg.matrix_power"}


def cupy_calls(source: str) -> set[str]:
    return set(re.findall(r"\bcupy\.((?:linalg\.)?\w+)", source))


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "leaky_relu", "elu", "gelu", "swish", "abs"])
def test_cupy_activations_and_a_scalar_argument_with_the_standin(activation, cupy_standin):
    net = mlp(["d", "m", "m", "k"], activation=activation, weight_decay="lambda")
    stages, outs, args = kernel_stages(backprop(net))
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in [(N, D), (N, K), (D, M), (1, M), (M, M), (1, M), (M, K), (1, K)]]
    kernel = cupy_kernel(outs, args, stages=stages)
    assert cupy_calls(kernel.source) <= CUPY_API
    got = kernel(*arrays, 0.3)
    want = numeric.compile(outs, args, stages=stages)(*arrays, 0.3)
    assert all(max_abs(g, w) < 1e-12 * max(1.0, float(np.max(np.abs(w)))) for g, w in zip(got, want))


def test_cupy_refuses_what_is_not_a_device_array(cupy_standin):
    X = MatrixSymbol("X", 2, 3)
    kernel = cupy_kernel(2 * X, [X])
    with pytest.raises(TypeError, match=r"^argument X: expected a cupy.ndarray \(backend 'cupy'\), got "
                                        r"builtins.list; move it to the GPU with cupy.asarray$"):
        kernel([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(ValueError, match=r"argument X: expected shape \(2, 3\)"):
        kernel(np.ones((3, 2)))


def test_library_of_knows_cupy_arrays_by_their_type_module():
    class FakeCupyArray:
        pass
    FakeCupyArray.__module__ = "cupy._core.core"
    assert library_of([np.ones(2), FakeCupyArray()]) == "cupy"
    FakeCupyArray.__module__ = "cupyx.scipy"
    assert library_of([FakeCupyArray()]) == "numpy"


def test_exported_cupy_module_runs_alone_with_the_standin(tmp_path):
    arrays = list(seed_data().values())
    stages, outs, args = program("seed")
    path = numeric.export(outs, args, tmp_path / "seed_cupy.py", "seed_loss_and_gradients", backend=CUPY,
                          stages=stages)
    assert imports(path) == {"cupy"}
    script = """
        f, *g = mod.seed_loss_and_gradients(*arrays)
        out = [float(f), *(x.tolist() for x in g)]
    """
    standin = "import numpy\nsys.modules['cupy'] = numpy  # no GPU here: NumPy stands in for CuPy\n"
    f, *grads = run_alone(path, script, arrays, extra=standin)
    assert abs(f - seed_loss(*arrays)) < 1e-12 * max(1.0, abs(f))
    assert all(max_abs(g, w) < 1e-12 for g, w in zip(grads, seed_backprop(*arrays)[1:]))


# ------------------------------------------------------------------------ API errors

def test_export_autograd_argument_errors(tmp_path):
    stages, outs, args = program("seed")
    W1 = args[2]
    with pytest.raises(ValueError, match="writes a torch or a jax module, not 'numpy'"):
        numeric.export_autograd(outs[0], {W1: outs[1]}, args, tmp_path / "m.py", backend="numpy")
    with pytest.raises(ValueError, match=r"^gradient of W1: 1×m, but W1 is d×m$"):
        numeric.export_autograd(outs[0], {W1: outs[2]}, args, tmp_path / "m.py", stages=stages, backend="jax")
    with pytest.raises(ValueError, match=r"^gradient of Z: Z is not an argument"):
        numeric.export_autograd(outs[0], {MatrixSymbol("Z", 3, 5): outs[1]}, args, tmp_path / "m.py",
                                backend="jax")
    with pytest.raises(ValueError, match="autograd needs a scalar loss"):
        numeric.export_autograd(args[0], {W1: outs[1]}, args, tmp_path / "m.py", backend="jax")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        numeric.export_autograd(outs[0], {W1: outs[1]}, args, tmp_path / "m.py", "2loss", backend="jax")


def test_codegen_command_writes_each_backend(tmp_path, capsys):
    from derive.cli import main
    torch = pytest.importorskip("torch")
    target = tmp_path / "seed_torch.py"
    assert main(["codegen", "--backend", "torch", "-o", str(target)]) == 0
    assert "seed_loss(X, Y, W1, b1, W2, b2) -> f" in capsys.readouterr().out
    module = load(target)
    arrays = data("seed")
    t = [torch.from_numpy(a).requires_grad_(i >= 2) for i, a in enumerate(arrays)]
    module.seed_loss(*t).backward()
    assert all(max_abs(x.grad, w) < 1e-12 for x, w in zip(t[2:], seed_backprop(*arrays)[1:]))
    program_file = tmp_path / "lsq.tg"
    program_file.write_text("X: n×d; y: n×1; param w: d×1; lam: scalar; f = norm2(X*w - y)^2 + lam*norm2(w)^2\n")
    target = tmp_path / "lsq.py"
    assert main(["codegen", "-f", str(program_file), "--backend", "torch", "-o", str(target)]) == 0
    module = load(target)
    rng = np.random.default_rng(4)
    X, y, w = rng.standard_normal((6, 3)), rng.standard_normal((6, 1)), rng.standard_normal((3, 1))
    model = module.LossModule(torch.from_numpy(w))
    model(torch.from_numpy(X), torch.from_numpy(y), 0.3).backward()
    assert max_abs(model.w.grad, 2 * X.T @ (X @ w - y) + 0.6 * w) < 1e-12


def test_codegen_command_numpy_from_a_program_and_jax(tmp_path, capsys):
    from derive.cli import main
    program_file = tmp_path / "logreg.tg"
    program_file.write_text("X: n×d; y: n×1; param w: d×1; f = sum(softplus(X*w)) - y'*X*w\n")
    target = tmp_path / "logreg.py"
    assert main(["codegen", "-f", str(program_file), "-o", str(target)]) == 0
    assert capsys.readouterr().out.endswith("loss_and_gradients(X, y, w) -> (f, ∂f/∂w)\n")
    assert imports(target) == {"numpy"}
    rng = np.random.default_rng(6)
    X, y, w = rng.standard_normal((7, 3)), rng.integers(0, 2, (7, 1)).astype(float), rng.standard_normal((3, 1))
    f, g = load(target).loss_and_gradients(X, y, w)
    p = 1 / (1 + np.exp(-X @ w))
    assert abs(f - (np.sum(np.log1p(np.exp(X @ w))) - (y.T @ X @ w).item())) < 1e-12
    assert max_abs(g, X.T @ (p - y)) < 1e-12
    if importlib.util.find_spec("jax") is not None:
        target = tmp_path / "logreg_jax.py"
        assert main(["codegen", "-f", str(program_file), "--backend", "jax", "-o", str(target)]) == 0
        assert imports(target) == {"jax"}


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_codegen_command_names_the_cupy_extra(tmp_path, capsys):
    from derive.cli import main
    assert main(["codegen", "--backend", "cupy", "-o", str(tmp_path / "g.py")]) == 2
    assert capsys.readouterr().err == ("tracegrad: error: backend 'cupy' needs cupy, which is not installed: "
                                       "pip install 'tracegrad[cupy]'\n")
    assert not (tmp_path / "g.py").exists()
