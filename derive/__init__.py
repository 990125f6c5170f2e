"""tracegrad's derive package: gradients of SymPy matrix expressions by trace differentials.

>>> from derive import seed_network, gradient
>>> net = seed_network(n=4, d=3, m=5, k=2)
>>> gradient(net.f, net.W2).shape
(5, 2)
"""
from __future__ import annotations

from derive.backprop import Backprop, backprop
from derive.differential import (
    DIFFERENTIAL_RULES, MatrixDifferential, ScalarDifferential, UnsupportedExpressionError,
)
from derive.elementwise import exp, log, relu, sigmoid, softplus, step, tanh
from derive.engine import derivation, gradient
from derive.networks import Network, frobenius_sq, seed_network
from derive.steps import RULES, Derivation, Gradient, Step

__all__ = [
    "DIFFERENTIAL_RULES",
    "RULES",
    "Backprop",
    "Derivation",
    "Gradient",
    "MatrixDifferential",
    "Network",
    "ScalarDifferential",
    "Step",
    "UnsupportedExpressionError",
    "backprop",
    "derivation",
    "exp",
    "frobenius_sq",
    "gradient",
    "log",
    "relu",
    "seed_network",
    "sigmoid",
    "softplus",
    "step",
    "tanh",
]
