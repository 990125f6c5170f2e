"""Layers: the named functions of matrices that courses backpropagate by hand.

A layer is one :class:`Layer` record: its name in the language, its arguments and their shapes,
what it is called in every language, and ``expand``, which writes one application as named
sub-stages of the primitives the engine derives (products, sums, ⊙, elementwise functions, 𝟏).
A program that assigns a layer call, ``P = softmax(Z)``, gets those sub-stages as stages of its
network, each with its own section in the staged derivation; inside a larger expression the call
is inlined (:meth:`Expansion.inline`).

Conventions (as PyTorch users expect them; Z is n×d, one example per row):

* ``mean_rows(Z)`` is the mean *of the rows* — the average over the n rows (the batch), 1×d,
  ``Z.mean(0)``, what batch norm uses; ``mean_cols(Z)`` the mean of the columns, n×1,
  ``Z.mean(1, keepdim=True)``, what layer norm uses.  ``var_rows``/``var_cols`` likewise, with 1/n
  (1/d), as batch and layer norm compute them in training mode (``unbiased=False``).
* ``softmax``, ``logsoftmax``: row-wise; of a column z (k×1), the vector's own softmax down the
  column (row by row it would be 1 everywhere, which nobody means).  ``cross_entropy(Z, Y) =
  −Σ Y ⊙ logsoftmax(Z)``, summed over the batch, assuming the rows of Y sum to one.
* ``batchnorm(Z, gamma, beta, eps)``: statistics per column over the batch; ``layernorm`` per row;
  gamma and beta are 1×d; eps is a scalar, 1/100000 (PyTorch's 1e-5) when left out.
* ``attention(Q, K, V, M)``: softmax(QKᵀ/√d + M)V with d the columns of Q; the optional n×m
  matrix M is added to the scores: a causal mask is 0 on and below the diagonal and a large
  negative number (−1e9) above it.
* ``hinge(Z, Y)`` = Σ relu(𝟏 − Y ⊙ Z), labels ±1; ``svm_loss(Z, Y, delta)`` the multiclass SVM
  (CS231n) Σ relu(Z − s𝟏ᵀ + Δ) − nΔ with s = (Z ⊙ Y)𝟏 the correct-class scores, Y one-hot, Δ = 1
  when left out (the −nΔ removes the correct classes' own margins, Δ each).
* ``dropout(Z, M, p)``: Z ⊙ M with a fixed 0/1 mask M, scaled by 1/(1 − p) when p is given.

>>> from sympy import MatrixSymbol
>>> Z = MatrixSymbol("Z", 4, 3)
>>> e = layer("softmax").expand("P", Z)
>>> [s.name for s, _ in e.stages], e.loss is None
(['P'], True)
>>> layer("batchnorm").stage_names("Y")
('Y_mu', 'Y_C', 'Y_var', 'Y_sigma', 'Y_hat', 'Y')
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import sympy
from sympy import HadamardPower, HadamardProduct, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose

__all__ = ["Expansion", "Layer", "check_arguments", "define_layer", "layer", "layers"]

Shape = tuple  # () for a scalar, else (rows, cols): each a dimension letter ("n") or 1


@dataclass(frozen=True)
class Expansion:
    """One application of a layer as sub-stages.

    ``stages``: ``(symbol, definition)`` in forward order; for a matrix-valued layer the last
    symbol is the output (named as the program names it).  ``loss``: for a scalar-valued layer
    (``cross_entropy``, ``svm_loss``), its value in terms of the stages, else None.
    ``assumptions``: as :attr:`derive.networks.Network.assumptions` (rows of Y summing to one).
    """

    stages: tuple[tuple[MatrixSymbol, MatrixExpr], ...]
    loss: sympy.Expr | None = None
    assumptions: tuple = ()

    def inline(self) -> sympy.Basic:
        """The layer's value with every sub-stage replaced by its definition."""
        out: dict[MatrixSymbol, MatrixExpr] = {}
        for symbol, definition in self.stages:
            out[symbol] = definition.xreplace(out)
        if self.loss is not None:
            return self.loss.xreplace(out)
        return out[self.stages[-1][0]]


@dataclass(frozen=True)
class Layer:
    """A named layer: ``expand(out_name, *args)`` builds an :class:`Expansion`.

    ``arguments`` names the arguments in order (``("Z", "gamma", "beta", "eps")``); the last
    ``optional`` of them may be left out.  ``names`` maps a language code to what the layer is
    called in it.  ``scalar``: whether the layer's value is a scalar (a loss).
    ``signature``: each argument's shape, dimensions as letters shared between arguments
    (``(("n", "d"), (1, "d"), (1, "d"), ())``); ``output``: the value's shape in those letters
    (``()`` for a scalar).  ``suffixes``: the sub-stages before the output, named
    ``{out_name}_{suffix}`` (see :meth:`stage_names`).
    """

    name: str
    arguments: tuple[str, ...]
    build: Callable[..., Expansion]
    names: Mapping[str, str] = field(default_factory=dict)
    optional: int = 0
    scalar: bool = False
    signature: tuple[Shape, ...] = ()
    output: Shape = ()
    suffixes: tuple[str, ...] = ()

    def expand(self, out_name: str, *args: sympy.Basic) -> Expansion:
        """The layer applied to ``args``, its output named ``out_name``; a ``ValueError`` names
        the argument of the wrong number or shape."""
        least = len(self.arguments) - self.optional
        if not least <= len(args) <= len(self.arguments):
            wanted = str(least) if not self.optional else f"{least} to {len(self.arguments)}"
            raise ValueError(f"{self.name}({', '.join(self.arguments)}) takes {wanted} arguments, "
                             f"got {len(args)}")
        if self.signature:
            check_arguments(self, args)
        return self.build(out_name, *args)

    def stage_names(self, out_name: str) -> tuple[str, ...]:
        """The names of the stages ``expand(out_name, …)`` writes (a scalar layer's value is the loss,
        not a stage)."""
        return tuple(f"{out_name}_{s}" for s in self.suffixes) + (() if self.scalar else (out_name,))

    @property
    def call(self) -> str:
        """How the layer is written: ``batchnorm(Z, gamma, beta[, eps])``."""
        least = len(self.arguments) - self.optional
        shown = ", ".join(self.arguments[:least])
        if self.optional:
            shown += "[, " + ", ".join(self.arguments[least:]) + "]"
        return f"{self.name}({shown})"


def _shape_text(shape: tuple) -> str:
    return "a scalar" if shape == () else f"{shape[0]}×{shape[1]}"


def check_arguments(record: Layer, args: tuple) -> dict[str, sympy.Expr]:
    """The dimensions of ``record.signature`` read from ``args``; a ``ValueError`` names the first
    argument whose shape does not fit.

    >>> from sympy import MatrixSymbol
    >>> Z, g = MatrixSymbol("Z", 4, 3), MatrixSymbol("gamma", 1, 5)
    >>> check_arguments(layer("batchnorm"), (Z, g, g))
    Traceback (most recent call last):
    ...
    ValueError: batchnorm(Z, gamma, beta[, eps]): gamma is 1×5 but must be 1×d, and d = 3 (the columns of Z)
    """
    dims: dict[str, tuple[sympy.Expr, str]] = {}
    for name, want, value in zip(record.arguments, record.signature, args):
        where = f"{record.call}: {name}"
        if want == ():
            if isinstance(value, MatrixExpr) or not isinstance(value, sympy.Expr):
                raise ValueError(f"{where} must be a scalar, got {_describe(value)}")
            continue
        if not isinstance(value, MatrixExpr):
            raise ValueError(f"{where} must be a {want[0]}×{want[1]} matrix, got a scalar")
        for axis, (letter, got) in enumerate(zip(want, value.shape)):
            if letter == 1:
                if got != 1:
                    raise ValueError(f"{where} is {_shape_text(value.shape)} but must be "
                                     f"{want[0]}×{want[1]}")
            elif letter in dims and dims[letter][0] != got:
                raise ValueError(f"{where} is {_shape_text(value.shape)} but must be {want[0]}×{want[1]}, "
                                 f"and {letter} = {dims[letter][0]} ({dims[letter][1]})")
            else:
                dims.setdefault(letter, (got, f"the {('rows', 'columns')[axis]} of {name}"))
    return {letter: v for letter, (v, _) in dims.items()}


def _describe(value: object) -> str:
    return _shape_text(value.shape) if isinstance(value, MatrixExpr) else type(value).__name__


_LAYERS: dict[str, Layer] = {}


def define_layer(record: Layer) -> Layer:
    """Register ``record`` under its name; the language and programs read the registry."""
    from derive.elementwise import elementwise_functions

    if record.name in _LAYERS:
        raise ValueError(f"a layer named {record.name!r} is already defined")
    if record.name in elementwise_functions():
        raise ValueError(f"{record.name!r} is an elementwise function; give the layer another name")
    _LAYERS[record.name] = record
    return record


def layers() -> Mapping[str, Layer]:
    """Every layer by name (read at each call, so a layer defined later is seen)."""
    return MappingProxyType(_LAYERS)


def layer(name: str) -> Layer:
    """The layer called ``name``."""
    try:
        return _LAYERS[name]
    except KeyError:
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(sorted(_LAYERS))}") from None


# ----------------------------------------------------------------------------- the primitives they use

def _ones(r, c) -> MatrixExpr:
    return OneMatrix(r, c)


def _mean_over_rows(Z: MatrixExpr) -> MatrixExpr:
    """(1/n)𝟏ₙᵀZ, 1×d."""
    n = Z.shape[0]
    return MatMul(sympy.Integer(1) / n, _ones(1, n), Z)


def _mean_over_cols(Z: MatrixExpr) -> MatrixExpr:
    """(1/d)Z𝟏_d, n×1."""
    d = Z.shape[1]
    return MatMul(sympy.Integer(1) / d, Z, _ones(d, 1))


def _total(M: MatrixExpr) -> sympy.Expr:
    """Σ of the entries, tr(𝟏ᵀM𝟏) as the language's sum() writes it."""
    r, c = M.shape
    factors = ([_ones(1, r)] if r != 1 else []) + [M] + ([_ones(c, 1)] if c != 1 else [])
    return Trace(MatMul(*factors)) if len(factors) > 1 else Trace(M)


def _stage(name: str, definition: MatrixExpr) -> tuple[MatrixSymbol, MatrixExpr]:
    return MatrixSymbol(name, *definition.shape), definition


EPS = sympy.Rational(1, 100000)
"""The default eps of batchnorm and layernorm: PyTorch's 1e-5, exact."""


# ----------------------------------------------------------------------------- built-in layers

def _is_column(Z: MatrixExpr) -> bool:
    """Z is a column vector (k×1, k not 1), whose softmax is taken down the column."""
    return Z.shape[1] == 1 and Z.shape[0] != 1


def _softmax(out: str, Z: MatrixExpr) -> Expansion:
    from derive.networks import softmax_cols, softmax_rows

    return Expansion(stages=(_stage(out, softmax_cols(Z) if _is_column(Z) else softmax_rows(Z)),))


def _log_softmax(Z: MatrixExpr) -> MatrixExpr:
    """Z − log(exp(Z)𝟏)𝟏ᵀ by rows; of a column z, z − 𝟏 log(𝟏ᵀexp(z))."""
    from derive.networks import log_softmax_cols, log_softmax_rows

    return log_softmax_cols(Z) if _is_column(Z) else log_softmax_rows(Z)


def _logsoftmax(out: str, Z: MatrixExpr) -> Expansion:
    return Expansion(stages=(_stage(out, _log_softmax(Z)),))


def _cross_entropy(out: str, Z: MatrixExpr, Y: MatrixExpr) -> Expansion:
    from derive.networks import softmax_cross_entropy
    from derive.steps import ROWS_SUM_TO_ONE

    if _is_column(Z):   # one example as a column: −yᵀ log softmax(z), y not assumed to sum to one
        return Expansion(stages=(), loss=-Trace(MatMul(Transpose(Y), _log_softmax(Z))))
    n, k = Z.shape
    return Expansion(stages=(), loss=softmax_cross_entropy(Y, Z),
                     assumptions=(((Y, _ones(k, 1)), _ones(n, 1), ROWS_SUM_TO_ONE.key),))


def _mean_rows(out: str, Z: MatrixExpr) -> Expansion:
    return Expansion(stages=(_stage(out, _mean_over_rows(Z)),))


def _mean_cols(out: str, Z: MatrixExpr) -> Expansion:
    return Expansion(stages=(_stage(out, _mean_over_cols(Z)),))


def _var_rows(out: str, Z: MatrixExpr) -> Expansion:
    n = Z.shape[0]
    mu = _stage(f"{out}_mu", _mean_over_rows(Z))
    C = _stage(f"{out}_C", Z - MatMul(_ones(n, 1), mu[0]))
    return Expansion(stages=(mu, C, _stage(out, _mean_over_rows(HadamardPower(C[0], 2)))))


def _var_cols(out: str, Z: MatrixExpr) -> Expansion:
    d = Z.shape[1]
    mu = _stage(f"{out}_mu", _mean_over_cols(Z))
    C = _stage(f"{out}_C", Z - MatMul(mu[0], _ones(1, d)))
    return Expansion(stages=(mu, C, _stage(out, _mean_over_cols(HadamardPower(C[0], 2)))))


def _affine(out: str, hat: MatrixSymbol, gamma: MatrixExpr, beta: MatrixExpr) -> tuple[MatrixSymbol, MatrixExpr]:
    """Y = X̂ ⊙ (𝟏ₙγ) + 𝟏ₙβ."""
    n = hat.shape[0]
    return _stage(out, HadamardProduct(hat, MatMul(_ones(n, 1), gamma)) + MatMul(_ones(n, 1), beta))


def _centred(before: tuple, centred: tuple, after: tuple) -> tuple:
    """The facts that the centred matrices' columns (``before`` = (𝟏ₙᵀ,): 𝟏ₙᵀC = 0) or rows
    (``after`` = (𝟏_d,): C𝟏_d = 0) sum to zero, as :attr:`Expansion.assumptions`."""
    from derive.broadcast import COLS_SUM_TO_ZERO, ROWS_SUM_TO_ZERO

    rule = (COLS_SUM_TO_ZERO if before else ROWS_SUM_TO_ZERO).key
    out = []
    for M in centred:
        zero = sympy.ZeroMatrix(1, M.shape[1]) if before else sympy.ZeroMatrix(M.shape[0], 1)
        out.append(((*before, M, *after), zero, rule))
    return tuple(out)


def _batchnorm(out: str, Z: MatrixExpr, gamma: MatrixExpr, beta: MatrixExpr, eps: sympy.Expr = EPS) -> Expansion:
    n, d = Z.shape
    mu = _stage(f"{out}_mu", _mean_over_rows(Z))                                   # 1×d
    C = _stage(f"{out}_C", Z - MatMul(_ones(n, 1), mu[0]))                           # centred, n×d
    var = _stage(f"{out}_var", _mean_over_rows(HadamardPower(C[0], 2)))              # 1×d
    sigma = _stage(f"{out}_sigma", HadamardPower(var[0] + MatMul(eps, _ones(1, d)), sympy.S.Half))
    hat = _stage(f"{out}_hat", HadamardProduct(C[0], HadamardPower(MatMul(_ones(n, 1), sigma[0]), -1)))
    return Expansion(stages=(mu, C, var, sigma, hat, _affine(out, hat[0], gamma, beta)),
                     assumptions=_centred((_ones(1, n),), (C[0], hat[0]), ()))


def _layernorm(out: str, Z: MatrixExpr, gamma: MatrixExpr, beta: MatrixExpr, eps: sympy.Expr = EPS) -> Expansion:
    n, d = Z.shape
    mu = _stage(f"{out}_mu", _mean_over_cols(Z))                                   # n×1
    C = _stage(f"{out}_C", Z - MatMul(mu[0], _ones(1, d)))
    var = _stage(f"{out}_var", _mean_over_cols(HadamardPower(C[0], 2)))              # n×1
    sigma = _stage(f"{out}_sigma", HadamardPower(var[0] + MatMul(eps, _ones(n, 1)), sympy.S.Half))
    hat = _stage(f"{out}_hat", HadamardProduct(C[0], HadamardPower(MatMul(sigma[0], _ones(1, d)), -1)))
    return Expansion(stages=(mu, C, var, sigma, hat, _affine(out, hat[0], gamma, beta)),
                     assumptions=_centred((), (C[0], hat[0]), (_ones(d, 1),)))


def _attention(out: str, Q: MatrixExpr, K: MatrixExpr, V: MatrixExpr, M: MatrixExpr | None = None) -> Expansion:
    from derive.networks import softmax_rows

    d = Q.shape[1]
    scores = MatMul(sympy.sqrt(d) ** -1, Q, Transpose(K))
    S = _stage(f"{out}_S", scores if M is None else scores + M)
    P = _stage(f"{out}_P", softmax_rows(S[0]))
    return Expansion(stages=(S, P, _stage(out, MatMul(P[0], V))))


def _hinge(out: str, Z: MatrixExpr, Y: MatrixExpr) -> Expansion:
    from derive.elementwise import relu

    M = _stage(f"{out}_M", relu(_ones(*Z.shape) - HadamardProduct(Y, Z)))
    return Expansion(stages=(M,), loss=_total(M[0]))


def _svm_loss(out: str, Z: MatrixExpr, Y: MatrixExpr, delta: sympy.Expr = sympy.S.One) -> Expansion:
    from derive.elementwise import relu

    n, k = Z.shape
    s = _stage(f"{out}_s", MatMul(HadamardProduct(Z, Y), _ones(k, 1)))               # n×1
    M = _stage(f"{out}_M", relu(Z - MatMul(s[0], _ones(1, k)) + MatMul(delta, _ones(n, k))))
    return Expansion(stages=(s, M), loss=_total(M[0]) - n * delta)


def _dropout(out: str, Z: MatrixExpr, M: MatrixExpr, p: sympy.Expr | None = None) -> Expansion:
    if p is not None and p.is_number and not (0 <= p < 1):
        raise ValueError(f"dropout(Z, M[, p]): p is the probability of dropping, 0 ≤ p < 1, got {p}")
    value = HadamardProduct(Z, M)
    return Expansion(stages=(_stage(out, value if p is None else MatMul(1 / (1 - p), value)),))


_MATRIX = (("n", "d"),)
for _record in (
    Layer("softmax", ("Z",), _softmax, {"en": "softmax (row-wise)", "zh": "softmax（按行）"},
          signature=_MATRIX, output=("n", "d")),
    Layer("logsoftmax", ("Z",), _logsoftmax, {"en": "log-softmax (row-wise)", "zh": "log-softmax（按行）"},
          signature=_MATRIX, output=("n", "d")),
    Layer("cross_entropy", ("Z", "Y"), _cross_entropy, {"en": "softmax cross-entropy", "zh": "softmax 交叉熵"},
          scalar=True, signature=(("n", "k"), ("n", "k")), output=()),
    Layer("mean_rows", ("Z",), _mean_rows, {"en": "mean of the rows", "zh": "各行的平均"},
          signature=_MATRIX, output=(1, "d")),
    Layer("mean_cols", ("Z",), _mean_cols, {"en": "mean of the columns", "zh": "各列的平均"},
          signature=_MATRIX, output=("n", 1)),
    Layer("var_rows", ("Z",), _var_rows, {"en": "variance over the rows", "zh": "沿行的方差"},
          signature=_MATRIX, output=(1, "d"), suffixes=("mu", "C")),
    Layer("var_cols", ("Z",), _var_cols, {"en": "variance over the columns", "zh": "沿列的方差"},
          signature=_MATRIX, output=("n", 1), suffixes=("mu", "C")),
    Layer("batchnorm", ("Z", "gamma", "beta", "eps"), _batchnorm, {"en": "batch normalisation", "zh": "批归一化"},
          optional=1, signature=(("n", "d"), (1, "d"), (1, "d"), ()), output=("n", "d"),
          suffixes=("mu", "C", "var", "sigma", "hat")),
    Layer("layernorm", ("Z", "gamma", "beta", "eps"), _layernorm, {"en": "layer normalisation", "zh": "层归一化"},
          optional=1, signature=(("n", "d"), (1, "d"), (1, "d"), ()), output=("n", "d"),
          suffixes=("mu", "C", "var", "sigma", "hat")),
    Layer("attention", ("Q", "K", "V", "M"), _attention,
          {"en": "scaled dot-product attention", "zh": "缩放点积注意力"}, optional=1,
          signature=(("n", "d"), ("m", "d"), ("m", "e"), ("n", "m")), output=("n", "e"), suffixes=("S", "P")),
    Layer("hinge", ("Z", "Y"), _hinge, {"en": "hinge loss", "zh": "合页损失"}, scalar=True,
          signature=(("n", "k"), ("n", "k")), output=(), suffixes=("M",)),
    Layer("svm_loss", ("Z", "Y", "delta"), _svm_loss, {"en": "multiclass SVM loss", "zh": "多类 SVM 损失"},
          optional=1, scalar=True, signature=(("n", "k"), ("n", "k"), ()), output=(), suffixes=("s", "M")),
    Layer("dropout", ("Z", "M", "p"), _dropout, {"en": "dropout (fixed mask)", "zh": "dropout（固定掩码）"},
          optional=1, signature=(("n", "d"), ("n", "d"), ()), output=("n", "d")),
):
    define_layer(_record)
