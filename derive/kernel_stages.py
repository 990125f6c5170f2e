"""The staged backward pass of a network, as a program for ``numeric.compile(..., stages=...)``.

A hook between :mod:`derive.backprop` and :mod:`numeric` (which imports nothing from derive):
the forward stages of the network, then one stage ∂f/∂Z per section of the backward pass that a
parameter's gradient needs, each in terms of earlier stages, so that a kernel computes every
activation and every upstream gradient once.  The expanded gradients
(``Backprop.gradients()``) compile to the same kernel; this form skips the expansion.
"""
from __future__ import annotations

import sympy
from sympy import MatrixSymbol

from derive.backprop import Backprop
from derive.laws import F, Gradient

__all__ = ["kernel_stages"]


def kernel_stages(bp: Backprop) -> tuple[tuple[tuple[sympy.Basic, sympy.Basic], ...], list[sympy.Basic],
                                         list[MatrixSymbol]]:
    """``(stages, outputs, args)`` for ``numeric.compile(outputs, args, stages=stages)``: the loss and
    ∂f/∂p for each parameter p, as functions of the inputs then the parameters.

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
    return tuple(net.stages) + backward, outputs, [*net.inputs, *net.params]
