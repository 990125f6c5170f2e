"""The staged backward pass of a network, as a program for ``numeric.compile(..., stages=...)``.

A hook between :mod:`derive.backprop` and :mod:`numeric` (which imports nothing from derive):
the forward stages of the network, then one stage ∂f/∂Z per section of the backward pass that a
parameter's gradient needs, each in terms of earlier stages, so that a kernel computes every
activation and every upstream gradient once.  The expanded gradients
(``Backprop.gradients()``) compile to the same kernel; this form skips the expansion.
:func:`export_network` writes a network's kernel as a module for NumPy, PyTorch, JAX or CuPy.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import sympy
from sympy import MatrixSymbol

from derive.backprop import Backprop
from derive.laws import F, Gradient

if TYPE_CHECKING:
    from derive.networks import Network

__all__ = ["export_network", "kernel_stages"]


def kernel_stages(bp: Backprop) -> tuple[tuple[tuple[sympy.Basic, sympy.Basic], ...], list[sympy.Basic],
                                         list[MatrixSymbol]]:
    """``(stages, outputs, args)`` for ``numeric.compile(outputs, args, stages=stages)``: the loss and
    ∂f/∂p for each parameter p, as functions of the inputs, the parameters, then the scalar symbols
    (a weight decay λ) in alphabetical order.

    >>> import numpy as np, numeric
    >>> from derive import backprop, seed_network
    >>> stages, outputs, args = kernel_stages(backprop(seed_network()))
    >>> [str(z) for z, _ in stages][:3], len(outputs), [a.name for a in args]
    (['h', 'H', 'Ypred'], 5, ['X', 'Y', 'W1', 'b1', 'W2', 'b2'])
    >>> step = numeric.compile(outputs, args, stages=stages)
    >>> f, dW1, db1, dW2, db2 = step(*(np.ones(s) for s in [(4, 3), (4, 2), (3, 5), (1, 5), (5, 2), (1, 2)]))
    >>> dW1.shape, db2.shape
    ((3, 5), (1, 2))
    """
    net = bp.network
    needed: set[MatrixSymbol] = set(net.params)
    for section in reversed(bp.sections):  # upstream first: a section needs later-derived ones
        if section.wrt in needed:
            needed |= {g.wrt for g in section.result.atoms(Gradient)}
    backward = tuple((Gradient(F, s.wrt), s.result) for s in bp.sections if s.wrt in needed)
    outputs: list[sympy.Basic] = [net.loss, *(Gradient(F, p) for p in net.params)]
    args = [*net.inputs, *net.params]
    # scalar symbols (a weight decay λ, a scale s) that are not dimensions: arguments after the parameters
    used = {x for e in [net.loss, *(d for _, d in net.stages)] for x in e.free_symbols}
    scalars = sorted((x for x in used if type(x) is sympy.Symbol and not x.is_integer and x not in args), key=str)
    return tuple(net.stages) + backward, outputs, [*args, *scalars]


def export_network(network: Network | Backprop | str, path: str | os.PathLike[str], *, backend: str = "torch",
                   name: str = "loss") -> Path:
    """Write a network's loss and derived gradients as a module for ``backend`` (one call from a
    program, a :class:`~derive.networks.Network` or its :class:`~derive.backprop.Backprop` to
    training code); returns the path.

    ``"torch"`` and ``"jax"`` write :func:`numeric.export_autograd`'s module: ``<name>(*arrays)``
    differentiated by the derived gradients, and for torch ``<Name>Function`` (a
    ``torch.autograd.Function``) and ``<Name>Module`` (a ``torch.nn.Module`` holding the parameters);
    ``"numpy"`` and ``"cupy"`` write :func:`numeric.export`'s kernel.  Every module has
    ``<name>_and_gradients(*arrays)``: the loss and the gradient of each parameter, in one pass.  The
    arguments are the network's inputs, then its parameters, then any scalar of the loss (a weight
    decay λ), each in declaration order.

    >>> import importlib.util, tempfile
    >>> p = export_network("X: n×d; y: n×1; param w: d×1; f = norm2(X*w - y)^2",
    ...                    tempfile.mkdtemp() + "/lsq.py", backend="numpy", name="lsq")
    >>> spec = importlib.util.spec_from_file_location("lsq", p)
    >>> lsq = importlib.util.module_from_spec(spec); spec.loader.exec_module(lsq)
    >>> import numpy as np
    >>> f, g = lsq.lsq_and_gradients(np.ones((4, 3)), np.ones((4, 1)), np.zeros((3, 1)))
    >>> float(f), g.ravel().tolist()                    # ‖Xw − y‖² = 4, 2Xᵀ(Xw − y) = −8
    (4.0, [-8.0, -8.0, -8.0])
    """
    import numeric
    from derive.backprop import backprop
    from derive.networks import Network
    from derive.render.printer import loss_text

    if isinstance(network, str):
        from derive.program import program

        network = program(network)
    bp = backprop(network) if isinstance(network, Network) else network
    stages, outputs, args = kernel_stages(bp)
    if backend in ("torch", "jax"):
        gradients = dict(zip(bp.network.params, outputs[1:]))
        return numeric.export_autograd(outputs[0], gradients, args, path, name, backend=backend, stages=stages,
                                       describe=loss_text)
    return numeric.export(outputs, args, path, f"{name}_and_gradients", backend=backend, stages=stages,
                          describe=loss_text)
