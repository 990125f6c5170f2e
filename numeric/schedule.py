"""The order of a kernel's computation, independent of the array library that runs it.

From the output nodes of a graph (:mod:`numeric.ir`): which nodes become temporaries (those
read more than once, and the outputs), in which order they are computed, after which
statement each temporary array can be deleted, and the dtype rule (whether the outputs must
be cast back to the computation's dtype).  A backend (:mod:`numeric.backend`) prints it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from numeric import registry
from numeric.ir import Node

__all__ = ["Schedule", "schedule"]

# nodes that are never worth a variable: they print as a name or a number
_TRIVIAL = ("arg", "const", "dim")
# nodes whose value is an array (from the arguments), not a Python number
_ARRAY_OPS = ("arg", "eye")
# nodes that apply a library function, whose result on Python numbers is a float64 unless the printer
# gives them a scalar of the computation's dtype (Backend.typed_numbers; numpy.power of two numbers never)
_FUNCTION_OPS = ("fn", "pow", "powv")
_TYPED_OPS = ("fn", "pow")


@dataclass(frozen=True)
class Schedule:
    """The statements of a kernel: ``temporaries[i]`` is computed by statement i into the
    variable ``names[temporaries[i]]``; after statement i the variables ``deletions[i]`` are
    read no more; ``recast``: the outputs are cast back to the computation's dtype.

    >>> from sympy import MatrixSymbol
    >>> from numeric.lower import Builder
    >>> X = MatrixSymbol("X", 3, 2)
    >>> b = Builder([X])
    >>> s = schedule([b.output(b.lower(X.T * X + X.T * X * X.T * X))])
    >>> [s.names[t] for t in s.temporaries], s.deletions, s.recast
    (['_t0', '_t1'], {1: ('_t0',)}, False)
    """

    temporaries: tuple[Node, ...]
    names: Mapping[Node, str]
    deletions: Mapping[int, tuple[str, ...]]
    outputs: tuple[Node, ...]
    recast: bool


def _reads(node: Node) -> list[Node]:
    """The arguments of ``node``, each as often as its code reads it (a function's template may
    read its argument more than once)."""
    if node.op == "fn":
        return list(node.args) * registry.function(node.attr).reads
    return list(node.args)


def _topological(outputs: Sequence[Node]) -> tuple[list[Node], dict[Node, int]]:
    """The nodes reachable from ``outputs``, each after its arguments, and how often each is read."""
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
        stack.extend((a, False) for a in reversed(_reads(node)))
    return order, uses


def _temporaries_read(node: Node, temps: set[Node]) -> set[Node]:
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


def _may_change_dtype(nodes: Sequence[Node], typed_numbers: bool = False) -> bool:
    """True if a library function is applied to Python numbers only (its float64 result would
    promote float32 arrays); then outputs are cast back."""
    on_array: dict[Node, bool] = {}
    for node in nodes:  # topological order
        on_array[node] = node.op in _ARRAY_OPS or any(on_array.get(a, False) for a in node.args)
        if node.op in _FUNCTION_OPS and not on_array[node] and not (typed_numbers and node.op in _TYPED_OPS):
            return True
    return False


def schedule(outputs: Sequence[Node], typed_numbers: bool = False) -> Schedule:
    """The statements that compute ``outputs`` (nodes of one graph), temporaries named ``_t0``, ``_t1``, …;
    ``typed_numbers``: the backend computes functions of dimensions in the arrays' dtype."""
    outputs = tuple(outputs)
    order, uses = _topological(outputs)
    temps = [n for n in order if (uses[n] > 1 or n in outputs) and n.op not in _TRIVIAL]
    names = {node: f"_t{i}" for i, node in enumerate(temps)}
    # delete a temporary array after the statement that last reads it
    last_use: dict[Node, int] = {}
    temp_set = set(temps)
    for idx, node in enumerate(temps):
        for t in _temporaries_read(node, temp_set):
            last_use[t] = idx
    deletions: dict[int, list[Node]] = {}
    for t, idx in last_use.items():
        if t.shape is not None and t not in outputs:
            deletions.setdefault(idx, []).append(t)
    return Schedule(tuple(temps), names,
                    {idx: tuple(names[t] for t in sorted(ts, key=temps.index)) for idx, ts in deletions.items()},
                    outputs, _may_change_dtype(order, typed_numbers))
