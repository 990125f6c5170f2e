"""Networks as SymPy expressions: the seed two-layer network.

A network keeps its intermediates twice: as symbols (``h``, ``H``, ``Ypred``),
which the staged derivation keeps in its steps, and as definitions in terms of
the previous stages, so that ``net.f`` is the loss in terms of the inputs alone.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import sympy
from sympy import MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose

from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from derive.dims import dimension, shape_text
from derive.elementwise import elementwise_functions, exp, log, sigmoid
from derive.undefined import check_defined
from derive.steps import ROWS_SUM_TO_ONE, F

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "Network",
    "frobenius_sq",
    "log_softmax_rows",
    "mlp",
    "seed_network",
    "softmax_cols",
    "softmax_cross_entropy",
    "softmax_rows",
]


def frobenius_sq(M: MatrixExpr) -> sympy.Expr:
    """‖M‖²_F written as tr(Mᵀ M).

    >>> from sympy import MatrixSymbol
    >>> frobenius_sq(MatrixSymbol("A", 4, 3))
    Trace(A.T*A)
    """
    if not isinstance(M, MatrixExpr):
        raise TypeError(f"frobenius_sq() takes a SymPy matrix expression, got {type(M).__name__}")
    return Trace(MatMul(Transpose(M), M))


@dataclass(frozen=True)
class Network:
    """A network as a graph of named stages.

    ``stages`` lists ``(symbol, definition)`` in forward (topological) order; each definition
    uses inputs, parameters and earlier stage symbols, any of them any number of times, and
    ``loss`` may use any of them.  A malformed network is a ``ValueError`` naming the stage.
    """

    inputs: tuple[MatrixSymbol, ...]
    params: tuple[MatrixSymbol, ...]
    stages: tuple[tuple[MatrixSymbol, MatrixExpr], ...]
    loss: sympy.Expr
    bias: str = "row"
    name: str = "network"
    assumptions: tuple[tuple[tuple[MatrixExpr, ...], MatrixExpr, str], ...] = ()

    def __post_init__(self) -> None:
        _check_network(self)

    def uses(self, v: MatrixSymbol) -> tuple[sympy.Basic, ...]:
        """Where ``v`` is used: the stage symbols whose definitions hold it, in forward order, then
        the loss (as the symbol f) if it holds ``v`` itself.

        >>> net = seed_network()
        >>> net.uses(net.X), net.uses(net.Ypred_symbol)
        ((h,), (f,))
        """
        return _uses_table(self).get(v, ())

    def expand(self, e: sympy.Basic) -> sympy.Basic:
        """``e`` with every stage symbol replaced by its definition, recursively."""
        return e.xreplace(_expanded_stages(self))

    @property
    def f(self) -> sympy.Expr:
        """The loss in terms of inputs and parameters."""
        return self.expand(self.loss)

    @property
    def symbols(self) -> dict[str, MatrixSymbol]:
        out = {s.name: s for s in self.inputs + self.params}
        out.update({s.name: s for s, _ in self.stages})
        return out

    @property
    def dims(self) -> tuple[sympy.Symbol, ...]:
        """The symbolic dimensions of the inputs and parameters, in order of first use."""
        seen: list[sympy.Symbol] = []
        for s in self.inputs + self.params:
            for dim in s.shape:
                if isinstance(dim, sympy.Symbol) and dim not in seen:
                    seen.append(dim)
        return tuple(seen)

    def __getattr__(self, name: str):
        # net.W1, net.h (expanded), net.h_symbol ...
        symbols = object.__getattribute__(self, "symbols")
        stages = dict((s.name, dfn) for s, dfn in object.__getattribute__(self, "stages"))
        if name.endswith("_symbol") and name[:-7] in symbols:
            return symbols[name[:-7]]
        if name in stages:
            return self.expand(symbols[name])
        if name in symbols:
            return symbols[name]
        raise AttributeError(name)


def _check_network(net: Network) -> None:
    """Raise a ``ValueError`` naming the stage where ``net`` is not a well-formed graph of stages."""
    _check_types(net)
    declared = _declared(net)
    position: dict[str, int] = {}
    for i, (Z, _) in enumerate(net.stages):
        position.setdefault(Z.name, i)
    for i, (Z, definition) in enumerate(net.stages):
        earlier = position[Z.name] + 1 if position[Z.name] != i else None
        _check_stage(f"stage {Z.name} (stage {i + 1} of {len(net.stages)})", Z, definition, declared, earlier)
    _check_order(net, position)
    _check_names(net, declared, position)
    if not net.loss.atoms(MatrixSymbol):
        raise ValueError("the loss uses no input, parameter or stage")
    for Z, _ in net.stages:
        if not net.uses(Z):
            raise ValueError(f"stage {Z.name} is used by no later stage and not by the loss")
    for p in net.params:
        if not net.uses(p):
            raise ValueError(f"parameter {p.name} is used by no stage and not by the loss")


def _check_types(net: Network) -> None:
    for kind, group in (("inputs", net.inputs), ("params", net.params)):
        if not isinstance(group, tuple) or not all(isinstance(s, MatrixSymbol) for s in group):
            raise TypeError(f"Network {kind} must be a tuple of MatrixSymbols, got {group!r}")
    if not isinstance(net.stages, tuple) or not all(
            isinstance(st, tuple) and len(st) == 2 and isinstance(st[0], MatrixSymbol) for st in net.stages):
        raise TypeError("Network stages must be a tuple of (MatrixSymbol, definition) pairs")
    if not isinstance(net.loss, sympy.Basic):
        raise TypeError(f"the loss must be a SymPy expression, got {type(net.loss).__name__}")


def _declared(net: Network) -> dict[str, tuple[str, MatrixSymbol]]:
    """name → ("input" or "parameter", symbol); a name declared twice is an error."""
    declared: dict[str, tuple[str, MatrixSymbol]] = {}
    for kind, group in (("input", net.inputs), ("parameter", net.params)):
        for s in group:
            if s.name in declared:
                raise ValueError(f"{s.name} is declared twice (as {declared[s.name][0]} and {kind})")
            declared[s.name] = (kind, s)
    return declared


def _check_stage(where: str, Z: MatrixSymbol, definition: sympy.Basic, declared: dict, earlier: int | None) -> None:
    """One stage ``Z = definition``; ``earlier`` is the number of an earlier stage of the same name."""
    if Z.name in declared:
        raise ValueError(f"{where} redefines the {declared[Z.name][0]} {Z.name}")
    if Z.name == F.name:
        raise ValueError(f"{where}: {F.name} is the loss; give the stage another name")
    if earlier is not None:
        raise ValueError(f"{where}: {Z.name} is already defined by stage {earlier}")
    if not isinstance(definition, MatrixExpr):
        raise TypeError(f"{where}: the definition must be a matrix expression, got {definition!r}")
    try:
        check_defined(definition)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if tuple(definition.shape) != tuple(Z.shape):
        raise ValueError(f"{where}: {Z.name} is {shape_text(Z.shape)} but its definition {definition} "
                         f"is {shape_text(definition.shape)}")


def _check_names(net: Network, declared: dict, position: dict[str, int]) -> None:
    """Every matrix a stage or the loss uses is an input, a parameter or a stage, of its shape."""
    for what, e in [(f"stage {Z.name}", d) for Z, d in net.stages] + [("the loss", net.loss)]:
        for s in sorted(e.atoms(MatrixSymbol), key=lambda s: s.name):
            known = declared.get(s.name, (None, None))[1]
            if known is None and s.name in position:
                known = net.stages[position[s.name]][0]
            if known is None:
                raise ValueError(f"{what} uses {s.name}, which is not an input, a parameter or a stage; "
                                 "declare it in inputs (data) or params")
            if known != s:
                raise ValueError(f"{what} uses {s.name} as {shape_text(s.shape)}, but {s.name} is "
                                 f"{shape_text(known.shape)}")


def _check_order(net: Network, position: dict[str, int]) -> None:
    """Stages use only earlier stages: a cycle, or a stage listed before one it uses, is an error."""
    deps = {Z.name: sorted({s.name for s in d.atoms(MatrixSymbol) if s.name in position},
                           key=position.__getitem__) for Z, d in net.stages}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in deps[name]:
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise ValueError(f"stage {dep}: the stages form a cycle: {' → '.join(cycle)} "
                                 "(each uses the next)")
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for Z, _ in net.stages:
        if Z.name not in state:
            visit(Z.name, [Z.name])
    for Z, _ in net.stages:
        later = [d for d in deps[Z.name] if position[d] >= position[Z.name]]
        if later:
            raise ValueError(f"stage {Z.name} (stage {position[Z.name] + 1}) uses {later[0]}, which is defined "
                             f"later (stage {position[later[0]] + 1}): list the stages in forward order")


def _cached(build: Callable[[Network], dict]) -> Callable[[Network], dict]:
    """``build(net)``, computed once per network and kept on it (outside its fields: equality,
    hashing and ``dataclasses.replace`` ignore it).  Not an lru_cache, whose every lookup hashes
    the stages and compares an equal network's trees."""
    def cached(net: Network) -> dict:
        cache = net.__dict__.setdefault("_derived", {})
        if build not in cache:
            cache[build] = build(net)
        return cache[build]

    cached.__doc__ = build.__doc__
    return cached


@_cached
def _uses_table(net: Network) -> dict[MatrixSymbol, tuple[sympy.Basic, ...]]:
    """Every matrix symbol → its uses (:meth:`Network.uses`), found in one pass over the stages."""
    table: dict[MatrixSymbol, list[sympy.Basic]] = {}
    for Z, definition in net.stages:
        for s in definition.atoms(MatrixSymbol):
            table.setdefault(s, []).append(Z)
    for s in net.loss.atoms(MatrixSymbol):
        table.setdefault(s, []).append(F)
    return {s: tuple(uses) for s, uses in table.items()}


@_cached
def _expanded_stages(net: Network) -> dict[MatrixSymbol, MatrixExpr]:
    """Each stage symbol → its definition in the inputs (built once, sharing sub-trees)."""
    out: dict[MatrixSymbol, MatrixExpr] = {}
    for sym, definition in net.stages:
        out[sym] = definition.xreplace(out)
    return out


def seed_network(n="n", d="d", m="m", k="k", bias: str = "row") -> Network:
    """The seed document's network: h = XW₁ + 1b₁, H = σ(h), Ŷ = HW₂ + 1b₂, f = ‖Y − Ŷ‖²_F.

    ``bias="row"`` broadcasts 1×m and 1×k rows over the batch with a ones vector;
    ``bias="full"`` is the literal reading, b₁ n×m and b₂ n×k.

    >>> net = seed_network(n=4, d=3, m=5, k=2)
    >>> net.W1.shape, net.b1.shape, net.h_symbol.shape
    ((3, 5), (1, 5), (4, 5))
    """
    if bias not in ("row", "full"):
        raise ValueError(f"bias must be 'row' or 'full', got {bias!r}")
    n, d, m, k = (dimension(v, s) for v, s in ((n, "n"), (d, "d"), (m, "m"), (k, "k")))
    X = MatrixSymbol("X", n, d)
    Y = MatrixSymbol("Y", n, k)
    W1 = MatrixSymbol("W1", d, m)
    W2 = MatrixSymbol("W2", m, k)
    h, H, Ypred = MatrixSymbol("h", n, m), MatrixSymbol("H", n, m), MatrixSymbol("Ypred", n, k)
    if bias == "row":
        b1, b2 = MatrixSymbol("b1", 1, m), MatrixSymbol("b2", 1, k)
        bias1, bias2 = MatMul(OneMatrix(n, 1), b1), MatMul(OneMatrix(n, 1), b2)
    else:
        b1, b2 = MatrixSymbol("b1", n, m), MatrixSymbol("b2", n, k)
        bias1, bias2 = b1, b2
    stages = (
        (h, MatMul(X, W1) + bias1),
        (H, sigmoid(h)),
        (Ypred, MatMul(H, W2) + bias2),
    )
    return Network(inputs=(X, Y), params=(W1, b1, W2, b2), stages=stages,
                   loss=frobenius_sq(Y - Ypred), bias=bias, name="seed")


def softmax_rows(Z: MatrixExpr) -> MatrixExpr:
    """Row-wise softmax exp(Z) ⊙ [(exp(Z)𝟏ₖ)^∘−1 𝟏ₖᵀ]: each row of the result sums to 1.

    >>> from sympy import MatrixSymbol
    >>> softmax_rows(MatrixSymbol("Z", 4, 3)).shape
    (4, 3)
    """
    return _softmax(Z, rows=True)


def softmax_cols(Z: MatrixExpr) -> MatrixExpr:
    """Column-wise softmax exp(Z) ⊙ [𝟏ₙ(𝟏ₙᵀexp(Z))^∘−1]: each column sums to 1 (softmax of a vector z).

    >>> from sympy import MatrixSymbol
    >>> softmax_cols(MatrixSymbol("z", 5, 1)).shape
    (5, 1)
    """
    return _softmax(Z, rows=False)


def _softmax(Z: MatrixExpr, rows: bool) -> MatrixExpr:
    """exp(Z) ⊙ [(exp(Z)𝟏)^∘−1 𝟏ᵀ] (rows), exp(Z) ⊙ [𝟏(𝟏ᵀexp(Z))^∘−1] (columns)."""
    E = exp(Z)
    if rows:
        k = Z.shape[1]
        return HadamardProduct(E, MatMul(HadamardPower(MatMul(E, OneMatrix(k, 1)), -1), OneMatrix(1, k)))
    n = Z.shape[0]
    return HadamardProduct(E, MatMul(OneMatrix(n, 1), HadamardPower(MatMul(OneMatrix(1, n), E), -1)))


def log_softmax_rows(Z: MatrixExpr) -> MatrixExpr:
    """Row-wise log-softmax Z − log(exp(Z)𝟏ₖ)𝟏ₖᵀ.

    >>> from sympy import MatrixSymbol
    >>> log_softmax_rows(MatrixSymbol("Z", 4, 3)).shape
    (4, 3)
    """
    k = Z.shape[1]
    return Z - MatMul(log(MatMul(exp(Z), OneMatrix(k, 1))), OneMatrix(1, k))


def log_softmax_cols(Z: MatrixExpr) -> MatrixExpr:
    """Column-wise log-softmax Z − 𝟏ₙlog(𝟏ₙᵀexp(Z)) (log-softmax of a vector z).

    >>> from sympy import MatrixSymbol
    >>> log_softmax_cols(MatrixSymbol("z", 5, 1)).shape
    (5, 1)
    """
    n = Z.shape[0]
    return Z - MatMul(OneMatrix(n, 1), log(MatMul(OneMatrix(1, n), exp(Z))))


def softmax_cross_entropy(Y: MatrixExpr, Z: MatrixExpr) -> sympy.Expr:
    """−tr(Yᵀ log softmax(Z)), summed over the rows (the batch).

    >>> from sympy import MatrixSymbol
    >>> softmax_cross_entropy(MatrixSymbol("Y", 4, 3), MatrixSymbol("Z", 4, 3)).is_commutative
    True
    """
    return -Trace(MatMul(Transpose(Y), log_softmax_rows(Z)))


class _Activations(Mapping):
    """The activations by name: every elementwise function (derive.elementwise, read at each lookup,
    so that one defined later is seen) and "identity" (None: no function)."""

    def __getitem__(self, name: str) -> Callable[[MatrixExpr], MatrixExpr] | None:
        return None if name == "identity" else elementwise_functions()[name]

    def __iter__(self) -> Iterator[str]:
        yield from elementwise_functions()
        yield "identity"

    def __len__(self) -> int:
        return len(elementwise_functions()) + 1


ACTIVATIONS: Mapping[str, Callable[[MatrixExpr], MatrixExpr] | None] = _Activations()
LOSSES = ("frobenius", "mse", "softmax_cross_entropy")


def mlp(widths, activation="sigmoid", bias: str = "row", loss: str = "frobenius",
        weight_decay=None, n="n") -> Network:
    """A fully connected network of any depth.

    ``widths = [d, m₁, …, k]`` (integers or names); layer l computes
    Z_l = A_{l−1}W_l + 𝟏b_l and A_l = φ_l(Z_l); the last layer is linear.
    ``activation`` is one name for every hidden layer or a list, one per hidden layer.
    ``loss``: "frobenius" ‖Y − Ŷ‖²_F, "mse" the same over n·k, or
    "softmax_cross_entropy" (row-wise, Y one-hot or with rows summing to 1).
    ``weight_decay`` λ adds λ Σ_l ‖W_l‖²_F.

    >>> net = mlp([3, 5, 5, 2], activation=["tanh", "relu"], loss="softmax_cross_entropy")
    >>> [s.name for s, _ in net.stages]
    ['Z1', 'A1', 'Z2', 'A2', 'Z3']
    """
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(f"widths needs at least an input and an output width, got {widths!r}")
    if bias not in ("row", "full"):
        raise ValueError(f"bias must be 'row' or 'full', got {bias!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    L = len(widths) - 1
    if isinstance(activation, str):
        acts = [activation] * (L - 1)
    elif isinstance(activation, (list, tuple)):
        acts = list(activation)
    else:
        raise ValueError(f"activation must be a name ({', '.join(ACTIVATIONS)}) or a list of names, "
                         f"got {activation!r}")
    if len(acts) != L - 1:
        raise ValueError(f"{L - 1} hidden layers need {L - 1} activations, got {len(acts)}")
    for a in acts:
        if a not in ACTIVATIONS:
            raise ValueError(f"unknown activation {a!r}; choose from {', '.join(ACTIVATIONS)}")
    nn = dimension(n, "n")
    dims = [dimension(w, f"widths[{i}]") for i, w in enumerate(widths)]
    X = MatrixSymbol("X", nn, dims[0])
    Y = MatrixSymbol("Y", nn, dims[-1])
    params, stages = [], []
    A: MatrixExpr = X
    for l in range(1, L + 1):
        W = MatrixSymbol(f"W{l}", dims[l - 1], dims[l])
        b = MatrixSymbol(f"b{l}", 1, dims[l]) if bias == "row" else MatrixSymbol(f"b{l}", nn, dims[l])
        params += [W, b]
        out_name = f"Z{l}" if (l < L or loss == "softmax_cross_entropy") else "Ypred"
        Z = MatrixSymbol(out_name, nn, dims[l])
        stages.append((Z, MatMul(A, W) + (MatMul(OneMatrix(nn, 1), b) if bias == "row" else b)))
        A = Z
        if l < L and ACTIVATIONS[acts[l - 1]] is not None:
            A = MatrixSymbol(f"A{l}", nn, dims[l])
            stages.append((A, ACTIVATIONS[acts[l - 1]](Z)))
    out = stages[-1][0]
    assumptions: tuple = ()
    if loss == "softmax_cross_entropy":
        f = softmax_cross_entropy(Y, out)
        assumptions = (((Y, OneMatrix(dims[-1], 1)), OneMatrix(nn, 1), ROWS_SUM_TO_ONE.key),)
    else:
        f = frobenius_sq(Y - out)
        if loss == "mse":
            f = f / (nn * dims[-1])
    if weight_decay is not None:
        lam = sympy.Symbol(weight_decay) if isinstance(weight_decay, str) else sympy.sympify(weight_decay)
        f = f + lam * sympy.Add(*[frobenius_sq(W) for W in params[::2]])
    return Network(inputs=(X, Y), params=tuple(params), stages=tuple(stages), loss=f, bias=bias,
                   name="mlp", assumptions=assumptions)
