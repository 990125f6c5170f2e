"""Name the stages in a gradient: the step that writes a result with the stage symbols P, σ … where
their definitions reappear, as a course writes a layer's backward.

The differential of the row softmax P = exp(Z) ⊙ [(exp(Z)𝟏)^∘−1 𝟏ᵀ] comes out of the engine in exp(Z)
and powers of the row sums s = exp(Z)𝟏; three identities bring it back to P:

* exp(Z) ⊙ ((X ⊙ s^∘−q)𝟏ᵀ) = softmax(Z) ⊙ ((X ⊙ s^∘(1−q))𝟏ᵀ)  (one power of s normalises exp(Z)),
* ((exp(Z) ⊙ H)𝟏) ⊙ s^∘−q = ((softmax(Z) ⊙ H)𝟏) ⊙ s^∘(1−q)  (a row sum normalised),
* softmax(Z) = P, B^∘q = σ^∘(q/r) for a stage σ = B^∘r, and A ⊙ B^∘q = X̂ ⊙ B^∘(q+1) for a stage
  X̂ = A ⊙ B^∘−1 (q ≤ −1): a product that holds a stage's factors holds the stage;

then a sum whose terms share the factor P is written P ⊙ (…):  ∂f/∂Z = P ⊙ (G − (G ⊙ P)𝟏𝟏ᵀ).
Each rewrite returns its input unchanged where it does not apply; :func:`name_stages` applies them
bottom-up, and only for networks with a softmax, a Hadamard-power or a Hadamard-product stage.
"""
from __future__ import annotations

from collections.abc import Sequence

import sympy
from sympy import Basic, Eq, Lambda, MatAdd, MatMul, MatrixExpr, MatrixSymbol, OneMatrix, Transpose
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.kronecker import KroneckerProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from derive.elementwise import elementwise_function, exp
from derive.kronecker import Diag, Vec
from derive.laws import Laws, matrices
from derive.rules import Rule
from derive.simplify import scale, split_coeff, tidy_hadamard

__all__ = ["NAME_SOFTMAX", "NAME_STAGE", "Softmax", "name_softmax", "name_stages", "softmax_of", "softmax_vector"]


def _exp_operand(e: Basic) -> MatrixExpr | None:
    if isinstance(e, ElementwiseApplyFunction) and elementwise_function(e) is exp.scalar:
        return e.expr
    return None


def _row_sums_of(e: Basic) -> MatrixExpr | None:
    """W when ``e`` is exp(W)𝟏 (the row sums of exp(W))."""
    if isinstance(e, MatMul) and len(e.args) == 2 and isinstance(e.args[1], OneMatrix) and e.args[1].shape[1] == 1:
        return _exp_operand(e.args[0])
    return None


def _hadamard_factors(e: MatrixExpr) -> list[MatrixExpr]:
    return list(e.args) if isinstance(e, HadamardProduct) else [e]


def _hadamard(factors: list[MatrixExpr], shape: tuple) -> MatrixExpr:
    if not factors:
        return OneMatrix(*shape)
    return factors[0] if len(factors) == 1 else tidy_hadamard(HadamardProduct(*factors))


def _power(f: MatrixExpr) -> tuple[MatrixExpr, sympy.Expr]:
    return (f.base, f.exp) if isinstance(f, HadamardPower) else (f, sympy.Integer(1))


def _raised(base: MatrixExpr, p: sympy.Expr) -> list[MatrixExpr]:
    return [] if p == 0 else [base if p == 1 else HadamardPower(base, p)]


def softmax_of(W: MatrixExpr) -> MatrixExpr:
    """The row softmax of W, as :func:`derive.networks.softmax_rows` writes it."""
    E, k = exp(W), W.shape[1]
    return HadamardProduct(E, MatMul(HadamardPower(MatMul(E, OneMatrix(k, 1)), -1), OneMatrix(1, k)))


def _normaliser_power(factors: list[MatrixExpr], W: MatrixExpr) -> int | None:
    """The index of a factor s^∘q, q < 0, with s the row sums of exp(W)."""
    for i, f in enumerate(factors):
        base, p = _power(f)
        if p.is_negative and _row_sums_of(base) == W:
            return i
    return None


def _named(W: MatrixExpr, softmaxes: dict[MatrixExpr, MatrixSymbol]) -> list[MatrixExpr]:
    P = softmaxes.get(W)
    return [P] if P is not None else _hadamard_factors(softmax_of(W))


def _normalise_broadcast(e: HadamardProduct, softmaxes: dict) -> MatrixExpr:
    """exp(W) ⊙ c((X ⊙ s^∘−q)𝟏ᵀ) = softmax(W) ⊙ c((X ⊙ s^∘(1−q))𝟏ᵀ), unless that is the softmax itself."""
    factors = _hadamard_factors(e)
    for i, f in enumerate(factors):
        W = _exp_operand(f)
        if W is None:
            continue
        for j, g in enumerate(factors):
            c, M = split_coeff(g)
            if j == i or not (isinstance(M, MatMul) and len(M.args) == 2 and isinstance(M.args[1], OneMatrix)
                              and M.args[1].shape[0] == 1):
                continue
            X = _hadamard_factors(M.args[0])
            at = _normaliser_power(X, W)
            if at is None:
                continue
            base, p = _power(X[at])
            rest = X[:at] + _raised(base, p + 1) + X[at + 1:]
            if not rest and W not in softmaxes:
                continue   # exp(W) ⊙ (s^∘−1 𝟏ᵀ) is softmax(W) as written
            kept = [x for m, x in enumerate(factors) if m not in (i, j)]
            broadcast = [] if not rest else [MatMul(_hadamard(rest, M.args[0].shape), M.args[1])]
            core = _hadamard(kept + _named(W, softmaxes) + broadcast, e.shape)
            return scale(c, core)
    return e


def _normalise_row_sum(e: HadamardProduct, softmaxes: dict) -> MatrixExpr:
    """((exp(W) ⊙ H)𝟏) ⊙ s^∘−q = ((softmax(W) ⊙ H)𝟏) ⊙ s^∘(1−q), in a column of n×1 factors."""
    factors = _hadamard_factors(e)
    for j, g in enumerate(factors):
        c, M = split_coeff(g)
        if not (isinstance(M, MatMul) and len(M.args) == 2 and isinstance(M.args[1], OneMatrix)
                and M.args[1].shape[1] == 1):
            continue
        H = _hadamard_factors(M.args[0])
        for i, h in enumerate(H):
            W = _exp_operand(h)
            at = None if W is None else _normaliser_power(factors, W)
            if at is None or at == j:
                continue
            base, p = _power(factors[at])
            summed = MatMul(_hadamard(H[:i] + H[i + 1:] + _named(W, softmaxes), M.args[0].shape), M.args[1])
            out = [summed if m == j else x for m, x in enumerate(factors) if m != at] + _raised(base, p + 1)
            core = _hadamard(out, e.shape)
            return scale(c, core)
    return e


def _factor_common(e: MatAdd, names: set[MatrixSymbol]) -> MatrixExpr:
    """P ⊙ A + c P ⊙ B = P ⊙ (A + cB) for a stage symbol P that is a Hadamard factor of every term."""
    parts = [split_coeff(t) for t in e.args]
    shared = set.intersection(*[set(_hadamard_factors(M)) for _, M in parts]) & names
    if not shared:
        return e
    P = sorted(shared, key=lambda s: s.name)[0]
    terms = []
    for c, M in parts:
        rest = list(_hadamard_factors(M))
        rest.remove(P)
        inner = _hadamard(rest, e.shape)
        terms.append(scale(c, inner))
    return HadamardProduct(P, MatAdd(*terms))


def _powers(e: HadamardPower, powers: dict[MatrixExpr, tuple[MatrixSymbol, sympy.Expr]]) -> MatrixExpr:
    """B^∘q = σ^∘(q/r) for a stage σ = B^∘r."""
    if e.base in powers:
        sigma, r = powers[e.base]
        q = e.exp / r
        return sigma if q == 1 else HadamardPower(sigma, q)
    return e


def _exponents(factors: list[MatrixExpr]) -> dict[MatrixExpr, sympy.Expr]:
    out: dict[MatrixExpr, sympy.Expr] = {}
    for f in factors:
        base, p = _power(f)
        out[base] = out.get(base, sympy.Integer(0)) + p
    return out


def _products(e: HadamardProduct, products: list[tuple[MatrixSymbol, dict]]) -> MatrixExpr:
    """A ⊙ B^∘q = X̂ ⊙ B^∘(q+1) for a stage X̂ = A ⊙ B^∘−1 (q ≤ −1): each factor of the stage's
    definition taken, with its power, out of the product."""
    have = _exponents(_hadamard_factors(e))
    changed = False
    for S, want in products:
        if all(b in have and (have[b] / p).is_positive and abs(have[b]) >= abs(p) for b, p in want.items()):
            first = next(iter(b for b in have if b in want))
            items: dict[MatrixExpr, sympy.Expr] = {}
            for b, q in have.items():
                if b == first:
                    items[S] = have.get(S, sympy.Integer(0)) + 1
                if b != S:   # S's own power among the factors is counted above, in the place of the first
                    items[b] = q - want.get(b, 0)
            have, changed = items, True
    if not changed:
        return e
    return _hadamard([f for b, q in have.items() for f in _raised(b, q)], e.shape)


def name_stages(e: Basic, stages: Sequence[tuple[MatrixSymbol, MatrixExpr]]) -> Basic:
    """``e`` written with the symbols of the softmax, Hadamard-power and Hadamard-product stages where
    their definitions reappear (see the module's identities); ``e`` itself when there are none.

    >>> from sympy import MatrixSymbol
    >>> Z, G, P = MatrixSymbol("Z", 4, 3), MatrixSymbol("G", 4, 3), MatrixSymbol("P", 4, 3)
    >>> s = MatMul(exp(Z), OneMatrix(3, 1))
    >>> dZ = HadamardProduct(G, softmax_of(Z)) - HadamardProduct(exp(Z), MatMul(HadamardProduct(
    ...     MatMul(HadamardProduct(exp(Z), G), OneMatrix(3, 1)), HadamardPower(s, -2)), OneMatrix(1, 3)))
    >>> from derive.notation import in_notation
    >>> print(in_notation(name_stages(dZ, [(P, softmax_of(Z))])))
    P ⊙ (G - [G ⊙ P]𝟏₃𝟏₃ᵀ)
    """
    softmaxes, powers, products = {}, {}, []
    for S, definition in stages:
        if isinstance(definition, HadamardProduct) and all(
                not isinstance(f, HadamardProduct) for f in definition.args):
            products.append((S, _exponents(list(definition.args))))
        W = _exp_operand(_hadamard_factors(definition)[0])
        if W is not None and definition == softmax_of(W):
            softmaxes[W] = S
        elif isinstance(definition, HadamardPower):
            powers[definition.base] = (S, definition.exp)
    if not softmaxes and not powers and not products and not any(
            isinstance(x, HadamardPower) and _row_sums_of(x.base) is not None for x in sympy.preorder_traversal(e)):
        return e
    names = set(softmaxes.values())

    def fold(x: Basic) -> Basic:
        if not isinstance(x, MatrixExpr) or not x.args or isinstance(x, (MatrixSymbol, Lambda)):
            return x
        args = [fold(a) for a in x.args]
        if any(a is not b for a, b in zip(args, x.args)):
            x = x.func(*args)
        if isinstance(x, HadamardProduct):
            for rewrite in (_normalise_row_sum, _normalise_broadcast):
                x = rewrite(x, softmaxes) if isinstance(x, HadamardProduct) else x
            x = _products(x, products) if isinstance(x, HadamardProduct) else x
            x = tidy_hadamard(x) if isinstance(x, HadamardProduct) else x   # P^∘−1 ⊙ P = 𝟏
        elif isinstance(x, HadamardPower):
            x = _powers(x, powers)
        elif isinstance(x, MatAdd) and names:
            x = _factor_common(x, names)
        return x

    # not tidy(): SymPy's MatAdd.doit would merge the 𝟏𝟏ᵀ of (G ⊙ P)𝟏𝟏ᵀ into one 𝟏
    out = fold(e)
    return e if out == e else out


_A, _B, _C = matrices("A B C")
_k = _A.shape[1]
_E = exp(_A)
_s = MatMul(_E, OneMatrix(_k, 1))

NAME_STAGE = Rule(
    "name_stage",
    Laws(Eq(HadamardProduct(_E, MatMul(HadamardProduct(MatMul(HadamardProduct(_E, _B), OneMatrix(_k, 1)),
                                                       HadamardPower(_s, -2)), OneMatrix(1, _k))),
            HadamardProduct(softmax_of(_A), MatMul(HadamardProduct(_B, softmax_of(_A)), OneMatrix(_k, 1),
                                                   OneMatrix(1, _k))), evaluate=False),
         Eq(MatAdd(HadamardProduct(_A, _B), MatMul(-1, HadamardProduct(_A, _C))),
            HadamardProduct(_A, MatAdd(_B, MatMul(-1, _C))), evaluate=False)),
    {"en": "write with the stages' names", "zh": "用中间量的名字表示"}, name_stages)


# --- the softmax of the variable in a Jacobian or a Hessian: p = softmax(z) ------------------------

class Softmax(HadamardProduct):
    """p = softmax(z) of a column (or row) z: the definition's own Hadamard product
    exp(z) ⊙ [𝟏(𝟏ᵀexp(z))^∘−1] (a row: exp(z) ⊙ [(exp(z)𝟏)^∘−1 𝟏ᵀ]), so that it evaluates as the
    definition does, printed as the name p by every printer (a leaf: no brackets)."""

    symbol = "p"
    _tracegrad_leaf = True

    def __new__(cls, *args):
        return Basic.__new__(cls, *args)

    @property
    def operand(self) -> MatrixExpr:
        return self.args[0].expr

    @property
    def definition(self) -> MatrixExpr:
        """The plain Hadamard product this name stands for."""
        return HadamardProduct(*self.args)

    def doit(self, **hints):
        # the name stays while z is a symbol; with explicit matrices it is its value
        args = [a.doit(**hints) for a in self.args]
        return HadamardProduct(*args).doit() if any(isinstance(a, sympy.MatrixBase) for a in args) else self

    def _eval_transpose(self):
        return None

    def _sympystr(self, printer) -> str:
        return self.symbol

    _tracegrad_text = _sympystr
    _tracegrad_latex = _sympystr

    def _tracegrad_mathml(self, printer):
        return printer._mi(self.symbol)


def softmax_vector(z: MatrixExpr) -> Softmax:
    """p = softmax(z) for a column z (n×1) or a row z (1×n).

    >>> from sympy import MatrixSymbol
    >>> p = softmax_vector(MatrixSymbol("z", 5, 1))
    >>> p, p.shape, p.definition.shape
    (p, (5, 1), (5, 1))
    """
    if z.shape[1] == 1:
        E, n = exp(z), z.shape[0]
        return Softmax(E, MatMul(OneMatrix(n, 1), HadamardPower(MatMul(OneMatrix(1, n), E), -1)))
    if z.shape[0] == 1:
        return Softmax(*softmax_of(z).args)
    raise ValueError(f"softmax_vector takes a column or a row, got {z} of shape {z.shape}")


def _normaliser(e: Basic, z: MatrixExpr) -> bool:
    """Whether ``e`` is the 1×1 sum s of exp(z): 𝟏ᵀexp(z) (a column z), exp(z)𝟏 (a row z), or its
    trace or entry."""
    if isinstance(e, (sympy.Trace, MatrixElement)):
        e = e.args[0]
    if not (isinstance(e, MatMul) and len(e.args) == 2 and e.shape == (1, 1)):
        return False
    ones = e.args[0] if z.shape[1] == 1 else e.args[1]
    E = e.args[1] if z.shape[1] == 1 else e.args[0]
    return isinstance(ones, OneMatrix) and _exp_operand(E) == z


def _exp_of(e: Basic, z: MatrixExpr) -> int:
    """1 for exp(z), −1 for exp(zᵀ) or exp(z)ᵀ, 0 for anything else."""
    if _exp_operand(e) == z:
        return 1
    if _exp_operand(e) == sympy.Transpose(z) or (isinstance(e, sympy.Transpose) and _exp_operand(e.arg) == z):
        return -1
    return 0


_LINEAR = (sympy.Transpose, sympy.Trace, MatrixElement, Diag, Vec)
_MULTILINEAR = (MatMul, sympy.Mul, HadamardProduct, KroneckerProduct)


def _power_of_sum(e: Basic, z: MatrixExpr) -> sympy.Expr | None:
    """q when ``e`` is s^q (s the sum of exp(z), q an integer), else None."""
    if _normaliser(e, z):
        return sympy.Integer(1)
    if isinstance(e, (HadamardPower, sympy.Pow)) and _normaliser(e.args[0], z) and e.args[1].is_Integer:
        return e.args[1]
    return None


def _monomial(e: Basic, z: MatrixExpr) -> tuple[int, sympy.Expr] | None:
    """(k, q) when ``e`` is multilinear in k occurrences of exp(z) times s^q (s = Σ exp(z)), else None."""
    if _exp_of(e, z):
        return 1, sympy.Integer(0)
    q = _power_of_sum(e, z)
    if q is not None:
        return 0, q
    if not e.has(z):
        return 0, sympy.Integer(0)
    if isinstance(e, (*_LINEAR, *_MULTILINEAR)):
        parts = [_monomial(a, z) for a in e.args if isinstance(a, Basic) and not isinstance(a, sympy.Integer)]
        if any(p is None for p in parts):
            return None
        return sum(k for k, _ in parts), sum((q for _, q in parts), sympy.Integer(0))
    return None


def _normalised(e: Basic, z: MatrixExpr, p: Softmax) -> Basic | None:
    """``e`` (a monomial of :func:`_monomial` with k = −q) with each exp(z) written as p and the powers
    of s left out: None where nothing but powers of s remains (the factor 1)."""
    kind = _exp_of(e, z)
    if kind:
        return p if kind == 1 else sympy.Transpose(p)
    if _power_of_sum(e, z) is not None:
        return None
    if not e.has(z):
        return e
    args = [_normalised(a, z, p) for a in e.args]
    kept = [a for a in args if a is not None]
    if not kept:
        return None
    if isinstance(e, HadamardProduct):
        kept = [a for a in kept if not isinstance(a, OneMatrix)] or kept[:1]
        return kept[0] if len(kept) == 1 else HadamardProduct(*kept)
    if isinstance(e, (MatMul, sympy.Mul, KroneckerProduct)):
        return kept[0] if len(kept) == 1 else e.func(*kept)
    if len(kept) != len(args):   # a linear operator of the factor 1: the 1×1 one
        return OneMatrix(1, 1)
    return e.func(*kept)


def name_softmax(e: Basic, z: MatrixExpr) -> Basic:
    """``e`` with every product that holds k factors exp(z) and s^−k (s = Σ exp(z), the column or
    row z) written with p = softmax(z): exp(z)/s = p, one power of s per exp(z).  ``e`` itself where
    there are none, or where z is not a column or a row.

    >>> from sympy import MatrixSymbol, Trace
    >>> from derive.kronecker import Diag
    >>> from derive.notation import in_notation
    >>> z = MatrixSymbol("z", 5, 1)
    >>> s = Trace(MatMul(OneMatrix(1, 5), exp(z)))
    >>> H = MatMul(1 / s, Diag(exp(z))) - MatMul(s ** -2, exp(z), exp(z).T)
    >>> print(in_notation(name_softmax(H, z)))
    diag(p) - ppᵀ
    """
    if not isinstance(z, MatrixSymbol) or 1 not in z.shape or z.shape == (1, 1):
        return e
    p = softmax_vector(z)

    def walk(x: Basic) -> Basic:
        if not isinstance(x, Basic) or not x.args or not x.has(z) or isinstance(x, Softmax):
            return x
        m = _monomial(x, z)
        if m is not None and m[0] > 0 and m[0] == -m[1]:
            out = _normalised(x, z, p)
            return x if out is None else out
        args = [walk(a) for a in x.args]
        return x if all(a is b for a, b in zip(args, x.args)) else x.func(*args)

    return walk(e)


_z = MatrixSymbol("z", _k, 1)
_p = softmax_vector(_z)
NAME_SOFTMAX = Rule(
    "name_softmax",
    Laws(Eq(_p.definition, _p, evaluate=False),
         Eq(MatMul(exp(_z), HadamardPower(MatMul(OneMatrix(1, _k), exp(_z)), -2), Transpose(exp(_z))),
            MatMul(_p, Transpose(_p)), evaluate=False)),
    {"en": "write with the softmax p", "zh": "用 softmax p 表示"}, name_softmax)
