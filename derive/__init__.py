"""tracegrad's derive package: gradients of SymPy matrix expressions by trace differentials.

>>> from derive import seed_network, gradient
>>> net = seed_network(n=4, d=3, m=5, k=2)
>>> gradient(net.f, net.W2).shape
(5, 2)

The names below and the submodules (``derive.parse``, ``derive.check``, ``derive.networks``, ...)
are loaded on first use, so that ``import derive`` does not import SymPy: the ``tracegrad``
command starts, and answers Ctrl-C, before SymPy is loaded.

>>> import derive
>>> derive.parse.parse_expression("tr(X'*X)", {"X": ("n", "d")})
Trace(X.T*X)
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which tracegrad's start would wait for
if TYPE_CHECKING:
    from typing import Any

    from derive.backprop import Backprop, backprop
    from derive.differential import (
        DIFFERENTIAL_RULES, MatrixDifferential, ScalarDifferential, UnsupportedExpressionError,
    )
    from derive.elementwise import (
        define_elementwise, elementwise_functions, exp, log, relu, sigmoid, softplus, step, tanh,
    )
    from derive.engine import derivation, gradient
    from derive.jacobian import hessian, hvp, jacobian
    from derive.kernel_stages import export_network
    from derive.networks import Network, frobenius_sq, seed_network
    from derive.program import ProgramError, program
    from derive.steps import RULES, Derivation, Gradient, Step

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Backprop", "backprop"), "derive.backprop"),
    **dict.fromkeys(("DIFFERENTIAL_RULES", "MatrixDifferential", "ScalarDifferential",
                     "UnsupportedExpressionError"), "derive.differential"),
    **dict.fromkeys(("define_elementwise", "elementwise_functions", "exp", "log", "relu", "sigmoid", "softplus",
                     "step", "tanh"), "derive.elementwise"),
    **dict.fromkeys(("derivation", "gradient"), "derive.engine"),
    **dict.fromkeys(("hessian", "hvp", "jacobian"), "derive.jacobian"),
    "export_network": "derive.kernel_stages",
    **dict.fromkeys(("Network", "frobenius_sq", "seed_network"), "derive.networks"),
    **dict.fromkeys(("ProgramError", "program"), "derive.program"),
    **dict.fromkeys(("RULES", "Derivation", "Gradient", "Step"), "derive.steps"),
}

__all__ = [
    "DIFFERENTIAL_RULES",
    "RULES",
    "Backprop",
    "Derivation",
    "Gradient",
    "MatrixDifferential",
    "Network",
    "ProgramError",
    "ScalarDifferential",
    "Step",
    "UnsupportedExpressionError",
    "__version__",
    "backprop",
    "define_elementwise",
    "derivation",
    "elementwise_functions",
    "exp",
    "export_network",
    "frobenius_sq",
    "gradient",
    "hessian",
    "hvp",
    "jacobian",
    "log",
    "program",
    "relu",
    "seed_network",
    "sigmoid",
    "softplus",
    "step",
    "tanh",
]


def __getattr__(name: str) -> Any:
    """A public name or a submodule, imported on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    # Importing a submodule sets it as an attribute of the package; derive.backprop is also the
    # function of that name, which the submodule must not replace.
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
