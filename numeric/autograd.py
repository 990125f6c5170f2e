"""``numeric.export_autograd``: a loss and its derived gradients as a module that PyTorch or JAX
differentiate with those gradients (not by tracing the forward pass).

The module imports its library only.  It holds the kernel ``<name>_and_gradients(*arrays)`` (the loss
and every gradient from one schedule: the forward pass once, each upstream gradient once), and

* for PyTorch, ``<Name>Function``, a ``torch.autograd.Function`` whose forward runs that kernel,
  returns the loss and saves the gradients, and whose backward returns them times ``grad_output``;
  ``<name>(*arrays)`` is its ``apply``; ``<Name>Module``, a ``torch.nn.Module`` holding the
  parameters (the arguments with a gradient) as ``nn.Parameter``, whose ``forward`` takes the
  other arguments (the data) and returns the loss;
* for JAX, ``<name>(*arrays)``, a ``jax.custom_vjp`` function: its forward rule returns the loss
  with the gradients as residuals, its backward rule scales them by the cotangent; it runs under
  ``jax.jit``, ``jax.grad`` and ``jax.value_and_grad``.

An argument that is differentiated but has no derived gradient (data that requires grad, or an
argument ``jax.grad`` is asked about) is refused with a line naming it, never given a zero
gradient.  The gradients are constants to the library: the result is differentiable once
(PyTorch refuses a second ``backward`` through it; ``jax.hessian`` of it would be wrong, so the
JAX module's gradients carry no derivative of their own either).
"""
from __future__ import annotations

import keyword
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy
from sympy import MatrixExpr, MatrixSymbol

from numeric import registry
from numeric.array_backends import backend_named
from numeric.compile import Stages, _default_doc, _identifier, generate
from numeric.export import _module_doc

__all__ = ["export_autograd"]

_LIBRARIES = ("torch", "jax")


def export_autograd(loss: sympy.Basic, gradients: Mapping[MatrixSymbol | sympy.Symbol, sympy.Basic],
                    args: Sequence[MatrixSymbol | sympy.Symbol], path: str | os.PathLike[str],
                    name: str = "loss", *, backend: str = "torch", stages: Stages = (), dtype: Any = None,
                    describe: Callable[[sympy.Basic], str] | None = None) -> Path:
    """Write a module to ``path`` in which ``backend`` (``"torch"`` or ``"jax"``) differentiates
    ``loss`` by ``gradients`` (argument → the expression of ∂loss/∂argument, the argument's shape).

    ``args`` are all the arguments in order (data and parameters, as for :func:`numeric.compile`),
    ``stages`` a program, ``describe`` writes the expressions in the docstrings.  Returns the path.
    What the module defines is in this module's docstring.

    >>> import importlib.util, tempfile
    >>> from sympy import MatrixSymbol, Symbol, Trace
    >>> n = Symbol("n", integer=True, positive=True)
    >>> X, Y, W = MatrixSymbol("X", n, 3), MatrixSymbol("Y", n, 2), MatrixSymbol("W", 3, 2)
    >>> R = X * W - Y                                    # f = ‖XW − Y‖², ∂f/∂W = 2Xᵀ(XW − Y)
    >>> p = export_autograd(Trace(R.T * R), {W: 2 * X.T * R}, [X, Y, W],
    ...                     tempfile.mkdtemp() + "/lsq.py", name="lsq", backend="torch")
    >>> spec = importlib.util.spec_from_file_location("lsq", p)
    >>> lsq = importlib.util.module_from_spec(spec); spec.loader.exec_module(lsq)
    >>> import torch
    >>> model = lsq.LsqModule(torch.zeros(3, 2, dtype=torch.float64))
    >>> loss = model(torch.ones(4, 3, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64))
    >>> loss.backward()
    >>> loss.item(), model.W.grad.tolist()
    (8.0, [[-8.0, -8.0], [-8.0, -8.0], [-8.0, -8.0]])

    The same for JAX: ``lsq`` is a ``jax.custom_vjp`` function.

    >>> p = export_autograd(Trace(R.T * R), {W: 2 * X.T * R}, [X, Y, W],
    ...                     tempfile.mkdtemp() + "/lsq_jax.py", name="lsq", backend="jax")
    >>> spec = importlib.util.spec_from_file_location("lsq_jax", p)
    >>> lsq = importlib.util.module_from_spec(spec); spec.loader.exec_module(lsq)
    >>> import jax, jax.numpy as jnp
    >>> jax.jit(jax.grad(lsq.lsq, argnums=2))(jnp.ones((4, 3)), jnp.ones((4, 2)), jnp.zeros((3, 2))).tolist()
    [[-8.0, -8.0], [-8.0, -8.0], [-8.0, -8.0]]
    """
    if backend not in _LIBRARIES:
        raise ValueError(f"export_autograd writes a torch or a jax module, not {backend!r} "
                         f"(numeric.export writes a kernel for any backend)")
    args = tuple(args)
    loss = sympy.sympify(loss)
    if isinstance(loss, MatrixExpr) and tuple(loss.shape) != (1, 1):
        raise ValueError(f"the loss is a {loss.shape[0]}×{loss.shape[1]} matrix; autograd needs a scalar loss")
    # (a 1×1 loss is returned as a scalar: what loss.backward() and jax.grad differentiate)
    params = _gradient_order(gradients, args)
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ValueError(f"name {name!r} must be a Python identifier that does not start with '_'")
    library = backend_named(backend)
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    defined = {name, f"{name}_and_gradients", f"{camel}Function", f"{camel}Module", f"_{name}_fwd",
               f"_{name}_bwd", "_NAMES", "_PARAMS", "_as_argument", "_parameter"}
    taken = sorted(defined & library.reserved)
    if taken:
        raise ValueError(f"name {name!r}: {taken[0]} is taken by the generated module; choose another name")
    exprs = (loss, *(sympy.sympify(gradients[a]) for a in params))
    describe = describe or registry.notation()
    kernel = f"{name}_and_gradients"
    gen = generate(exprs, args, is_list=True, dtype=None if dtype is None else np.dtype(dtype), name=kernel,
                   backend=library, stages=stages, doc=_default_doc(exprs, args, True, describe))
    reserved = library.reserved | defined | {"self", "super", "ctx"}
    names: set[str] = set()
    idents = [_identifier(a, i, names, reserved) for i, a in enumerate(args)]
    positions = tuple(args.index(a) for a in params)
    header = _module_doc(exprs, args, True, kernel, describe, backend, what="numeric.export_autograd")
    header = header[:-3].rstrip() + "\n\n" + _API[backend].format(name=name, camel=camel, kernel=kernel) + '"""'
    if backend == "torch":
        _check_attributes([idents[i] for i in positions])
        body = _torch_source(name, camel, kernel, args, idents, positions)
    else:
        body = _jax_source(name, kernel)
    exported = [name, kernel, *([f"{camel}Function", f"{camel}Module"] if backend == "torch" else [])]
    path = Path(path)
    path.write_text(f"{header}\n{gen.source}\n\n_NAMES = {tuple(a.name for a in args)!r}\n"
                    f"_PARAMS = {positions!r}  # the arguments with a derived gradient, by position\n\n\n"
                    f"{body}\n\n__all__ = {exported!r}\n", encoding="utf-8")
    return path


def _gradient_order(gradients: Mapping[MatrixSymbol | sympy.Symbol, sympy.Basic],
                    args: tuple[MatrixSymbol | sympy.Symbol, ...]) -> list[MatrixSymbol | sympy.Symbol]:
    """The arguments that have a gradient, in the order of ``args``; each gradient of its shape."""
    if not gradients:
        raise ValueError("no gradients: give at least one argument's gradient")
    for a, g in gradients.items():
        if a not in args:
            raise ValueError(f"gradient of {a}: {a} is not an argument "
                             f"(the arguments are {', '.join(x.name for x in args)})")
        want = tuple(a.shape) if isinstance(a, MatrixSymbol) else None
        g = sympy.sympify(g)
        got = tuple(g.shape) if isinstance(g, MatrixExpr) else None
        if want != got:
            shape = lambda s: "a scalar" if s is None else f"{s[0]}×{s[1]}"
            raise ValueError(f"gradient of {a}: {shape(got)}, but {a} is {shape(want)}")
    return [a for a in args if a in gradients]


def _check_attributes(params: list[str]) -> None:
    """A parameter's attribute must not hide one of ``torch.nn.Module``'s (``training``, ``forward`` …)."""
    import torch

    for p in params:
        if hasattr(torch.nn.Module, p):
            raise ValueError(f"parameter {p}: torch.nn.Module has an attribute of that name; rename the parameter")


_API = {
    "torch": """\
Autograd:
    {name}(*arrays) = {camel}Function.apply(*arrays): the loss, which loss.backward()
        differentiates by the derived gradients ({kernel} computes the loss and every
        gradient in one pass; backward multiplies the saved gradients by grad_output).
        Differentiable once; an argument without a derived gradient must not require grad.
    {camel}Module(*parameters): a torch.nn.Module holding the parameters as
        nn.Parameter (copies of the initial values given); module(*data) is the loss.
""",
    "jax": """\
Autograd:
    {name}(*arrays): the loss, a jax.custom_vjp function: jax.grad and jax.value_and_grad
        use the derived gradients ({kernel} computes the loss and every gradient in one
        pass); it runs under jax.jit.  Differentiable once; differentiating by an
        argument without a derived gradient is refused.
""",
}


def _torch_source(name: str, camel: str, kernel: str, args: tuple, idents: list[str],
                  positions: tuple[int, ...]) -> str:
    params = [idents[i] for i in positions]
    data = [idents[i] for i in range(len(args)) if i not in positions]
    call = ", ".join(f"self.{v}" if i in positions else v for i, v in enumerate(idents))
    init = "\n".join(f"        self.{p} = _parameter({p})" for p in params)
    return f'''def _as_argument(g, a):
    """The gradient ``g`` in the shape and dtype of its argument ``a``."""
    return g.reshape(a.shape).to(a.dtype) if isinstance(a, torch.Tensor) else g


def _parameter(value):
    """An nn.Parameter holding a copy of ``value``; a Python number or an integer array becomes float64."""
    value = torch.as_tensor(value, dtype=torch.float64 if isinstance(value, (int, float)) else None)
    if not value.is_floating_point():
        value = value.to(torch.float64)
    return torch.nn.Parameter(value.detach().clone())


class {camel}Function(torch.autograd.Function):
    """The loss, differentiated by its derived gradients: ``{camel}Function.apply({", ".join(a.name for a in args)})``."""

    @staticmethod
    def forward(ctx, *arrays):
        for i, needs in enumerate(ctx.needs_input_grad):
            if needs and i not in _PARAMS:
                raise ValueError(f"argument {{_NAMES[i]}} requires grad, but there is no derived gradient for it "
                                 f"(only for {{', '.join(_NAMES[j] for j in _PARAMS)}}): detach it")
        value, *grads = {kernel}(*arrays)
        ctx.save_for_backward(*(_as_argument(g, arrays[i]) for i, g in zip(_PARAMS, grads)))
        return value.reshape(())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        out = [None] * len(_NAMES)
        for i, g in zip(_PARAMS, ctx.saved_tensors):
            out[i] = grad_output * g
        return tuple(out)


def {name}(*arrays):
    """The loss of ``{name}({", ".join(a.name for a in args)})``; ``backward()`` gives the derived gradients."""
    return {camel}Function.apply(*arrays)


class {camel}Module(torch.nn.Module):
    """The loss as a module: the parameters {", ".join(params)} are ``nn.Parameter`` (copies of the
    values given), ``module({", ".join(data)})`` is the loss."""

    def __init__(self, {", ".join(params)}):
        super().__init__()
{init}

    def forward(self{"".join(", " + d for d in data)}):
        return {camel}Function.apply({call})
'''


def _jax_source(name: str, kernel: str) -> str:
    return f'''import jax.custom_derivatives


def _as_argument(g, a):
    """The gradient ``g`` in the shape and dtype of its argument ``a``."""
    return jnp.reshape(g, jnp.shape(a)).astype(jnp.result_type(a))


@jax.custom_vjp
def {name}(*arrays):
    """The loss; ``jax.grad`` differentiates it by the derived gradients."""
    return {kernel}(*arrays)[0].reshape(())


def _{name}_fwd(*primals):
    for i, p in enumerate(primals):
        if p.perturbed and i not in _PARAMS:
            raise ValueError(f"argument {{_NAMES[i]}} is differentiated, but there is no derived gradient for it "
                             f"(only for {{', '.join(_NAMES[j] for j in _PARAMS)}})")
    arrays = [p.value for p in primals]
    value, *grads = {kernel}(*arrays)
    return value.reshape(()), tuple(_as_argument(g, arrays[i]) for i, g in zip(_PARAMS, grads))


def _{name}_bwd(grads, g):
    out = [None] * len(_NAMES)
    if not isinstance(g, jax.custom_derivatives.SymbolicZero):
        for i, gi in zip(_PARAMS, grads):
            out[i] = (g * gi).astype(gi.dtype)
    return tuple(out)


{name}.defvjp(_{name}_fwd, _{name}_bwd, symbolic_zeros=True)
'''
