"""The checker's factors: whether (a part of) an answer is a multiple of a gradient, with the factor
fitted as a formula in the dimensions over the draws."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product as cartesian

import mpmath
import numpy as np
import sympy
from sympy import (
    Identity, MatrixExpr, MatrixSymbol, OneMatrix, ZeroMatrix,
)

from derive.limits import CHECK_MAX_BITS as MAX_BITS
from derive.checking.evaluate import Evaluator
from derive.checking.problem import Draw, formula_text


def numbers_in(A: sympy.Basic) -> list[sympy.Number]:
    """The numbers written in ``A``, not those in the shapes of its matrices."""
    out: list[sympy.Number] = []

    def walk(e: sympy.Basic) -> None:
        if isinstance(e, sympy.Number):
            out.append(e)
        elif not isinstance(e, (MatrixSymbol, OneMatrix, ZeroMatrix, Identity, sympy.Lambda)):
            for a in e.args:
                walk(a)

    walk(A)
    return out


def literal_bits(A: sympy.Basic) -> int:
    """The bits of the longest number in ``A`` (numerator or denominator)."""
    bits = 0
    for r in numbers_in(A):
        if r.is_Rational:
            bits = max(bits, abs(int(r.p)).bit_length(), int(r.q).bit_length())
        elif r.is_Float:
            bits = max(bits, r._prec)
    return bits


def scalar_bits(A: sympy.Basic, draw: Draw) -> int:
    """The binary exponent of the largest or smallest number ``A`` computes from numbers and dimensions
    alone at ``draw`` (2^(−100·n) at n = 3: 300; exp(−1000): 1443), which the precision must exceed."""
    size = {d: sympy.Integer(v) for d, v in draw.dims}
    bits = 0
    for node in sympy.preorder_traversal(A):
        if (isinstance(node, MatrixExpr) or node.is_Atom or not isinstance(node, sympy.Expr)
                or node.has(MatrixExpr, sympy.Dummy)):
            continue
        value = node.xreplace(size)
        if value.free_symbols:
            continue
        try:
            x = mpmath.mpf(sympy.N(value, 20)) if value.is_real else mpmath.mpf(0)
        except (TypeError, ValueError, OverflowError):
            continue
        if x != 0 and mpmath.isfinite(x):
            bits = max(bits, abs(int(mpmath.mag(x))))
    return min(bits, MAX_BITS)


def largest_number(A: sympy.Basic) -> float | None:
    big = max((abs(float(r)) for r in numbers_in(A) if r.is_finite and r.is_real), default=0.0)
    return min(big, 1e12) if big > 5 else None


# ------------------------------------------------------------------- factors and parts

def _unit(v: np.ndarray):
    """(v / max|v| as floats, max|v|) of midpoints, or None when an entry is undefined."""
    if not all(mpmath.isfinite(x) for x in v.flat):
        return None
    M = max(abs(x) for x in v.flat)
    if M == 0:
        return np.zeros(v.shape), M
    return np.array([[float(x / M) for x in row] for row in v]), M


def _ratio(s: np.ndarray, g: np.ndarray, bits: int):
    """c with s = c·g to within 2^(−bits/2) of s (an mpf), "skip" where both vanish, or None.

    A float test screens; the factor and the residual are then computed in ``bits``-bit arithmetic, so
    that a part off by 2⁻³⁰⁰ is not taken for an exact one."""
    if s.shape != g.shape:
        return None
    us, ug = _unit(s), _unit(g)
    if us is None or ug is None:
        return None
    (us, Ms), (ug, Mg) = us, ug
    if Mg == 0:
        return "skip" if Ms == 0 else None
    if Ms == 0:
        return mpmath.mpf(0)
    c = float(np.vdot(us, ug) / np.vdot(ug, ug))
    if np.max(np.abs(us - c * ug)) > 1e-9:
        return None
    with mpmath.workprec(bits):
        c = mpmath.fsum(x * y for x, y in zip(s.flat, g.flat)) / mpmath.fsum(y * y for y in g.flat)
        if max(abs(x - c * y) for x, y in zip(s.flat, g.flat)) > mpmath.ldexp(Ms, -(bits // 2)):
            return None
    return c


def common_ratios(values: Iterable[tuple[np.ndarray, np.ndarray]], evs: Sequence[Evaluator]) -> list | None:
    """Per draw, the factor c with part = c·gradient: None unless it exists at every draw where the
    gradient does not vanish and is the same at draws with the same dimensions.  ``values`` may be
    lazy: the first draw without a factor ends the search."""
    out, by_dims = [], {}
    for (s, g), ev in zip(values, evs):
        c = _ratio(s, g, ev.bits)
        if c is None:
            return None
        out.append(c)
        if c == "skip":
            continue
        seen = by_dims.setdefault(ev.draw.dims, c)
        if abs(seen - c) > mpmath.ldexp(max(abs(seen), abs(c)), -(ev.bits // 2)):
            return None
    return out if any(c != "skip" for c in out) else None


def _small_rational(x: float, max_den: int = 64) -> Fraction | None:
    q = Fraction(x).limit_denominator(max_den)
    return q if abs(float(q) - x) <= 1e-9 * max(1.0, abs(x)) and abs(q.numerator) <= 10_000 else None


def fit_factor(draws: Sequence[Draw], ratios: Sequence) -> sympy.Expr | None:
    """The simplest formula in the dimensions equal to the ratios at every draw, or None.

    Tried in order: q·∏ dᵉ (e ∈ −2…2), a·∏ dᵉ + c, Σ aᵢdᵢ + c and q·∏ dᵉ·(d + c) (e ∈ −1…1,
    c ∈ −6…6), with q, a, c small rationals; within a family the fewest and lowest powers win.

    >>> n, k = sympy.symbols("n k", integer=True, positive=True)
    >>> sets = ((4, 2), (7, 3), (3, 5), (2, 6))
    >>> draws = [Draw(((n, a), (k, b)), 1.0, (0,)) for a, b in sets]
    >>> fit_factor(draws, [1 / (a * b) for a, b in sets]), fit_factor(draws, [a - 3 for a, b in sets])
    (1/(k*n), n - 3)
    >>> fit_factor(draws, [a * b - 7 for a, b in sets]), fit_factor(draws, [(a - 1) * b for a, b in sets])
    (k*n - 7, k*(n - 1))
    """
    pts = [(dict(dr.dims), float(r)) for dr, r in zip(draws, ratios) if r != "skip"]
    if not pts:
        return None
    dims = [d for d, _ in draws[0].dims]
    V = np.array([[vals[d] for d in dims] for vals, _ in pts], dtype=float).reshape(len(pts), len(dims))
    R = np.array([r for _, r in pts])
    if not np.all(np.isfinite(R)):
        return None                  # an infinite or undefined ratio is no factor
    points = _Points(dims, V, R)
    for family in (_monomial_fit, _affine_fit, _linear_fit, _shifted_fit):
        f = family(points)
        if f is not None:
            return f
    return None


@dataclass(frozen=True, eq=False)
class _Points:
    """The draws' dimensions ``V`` (points × dimensions) and the ratios ``R`` at them."""

    dims: list
    V: np.ndarray
    R: np.ndarray

    def monomials(self, span: range) -> tuple[np.ndarray, np.ndarray]:
        """The exponent rows ``E`` of every monomial with exponents in ``span``, and their values."""
        exps = list(cartesian(span, repeat=len(self.dims)))
        E = np.array(exps, dtype=float).reshape(len(exps), len(self.dims))
        return E, np.prod(self.V[None, :, :] ** E[:, None, :], axis=2)          # (candidates, points)

    def expr(self, q: Fraction, exps: np.ndarray) -> sympy.Expr:
        return _rational(q) * sympy.Mul(*[d ** int(e) for d, e in zip(self.dims, exps)])


def _rational(q: Fraction) -> sympy.Rational:
    return sympy.Rational(q.numerator, q.denominator)


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.all(np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(b)), axis=-1)


def _simplest(found: list) -> sympy.Expr | None:
    return min(found, key=lambda f: f[0])[1] if found else None


def _monomial_fit(p: _Points) -> sympy.Expr | None:
    """q·M: the ratio over the monomial M is one small rational q."""
    E, B = p.monomials(range(-2, 3))
    Q = p.R[None, :] / B
    found = []
    for c in np.nonzero(_close(Q, Q[:, :1]))[0]:
        q = _small_rational(float(Q[c, 0]))
        if q is not None:
            found.append(((np.abs(E[c]).sum(), len(str(q))), p.expr(q, E[c])))
    return _simplest(found)


def _affine_fit(p: _Points) -> sympy.Expr | None:
    """a·M + c, by least squares on each monomial M."""
    if len(p.R) < 3:
        return None
    E, B = p.monomials(range(-2, 3))
    mb, mr = B.mean(axis=1), p.R.mean()
    var = ((B - mb[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = ((B - mb[:, None]) * (p.R - mr)[None, :]).sum(axis=1) / var
    c0 = mr - a * mb
    ok = (var > 0) & _close(a[:, None] * B + c0[:, None], p.R[None, :])
    found = []
    for i in np.nonzero(ok)[0]:
        qa, qc = _small_rational(float(a[i])), _small_rational(float(round(c0[i], 9)))
        if qa is not None and qc is not None and qa != 0:
            found.append(((np.abs(E[i]).sum() + 1, len(str(qa)) + len(str(qc))), p.expr(qa, E[i]) + _rational(qc)))
    return _simplest(found)


def _linear_fit(p: _Points) -> sympy.Expr | None:
    """Σ aᵢdᵢ + c, by least squares."""
    if len({tuple(row) for row in p.V}) <= len(p.dims) + 1:
        return None
    M = np.hstack([p.V, np.ones((len(p.R), 1))])
    coef = np.linalg.lstsq(M, p.R, rcond=None)[0]
    qs = [_small_rational(float(round(x, 9))) for x in coef]
    if not (all(q is not None for q in qs) and _close(M @ coef, p.R)):
        return None
    return sympy.Add(*[_rational(q) * t for q, t in zip(qs, [*p.dims, sympy.Integer(1)])])


def _shifted_fit(p: _Points) -> sympy.Expr | None:
    """q·M·(d + c), c ∈ −6…6."""
    E, B = p.monomials(range(-1, 2))
    R = p.R
    found = []
    for i in range(len(p.dims)):
        for shift in range(-6, 7):
            lin = p.V[:, i] + shift
            keep = lin != 0
            if shift == 0 or np.any(~keep & (R != 0)) or not keep.any():
                continue
            Q = R[None, keep] / (B * lin[None, :])[:, keep]
            for c in np.nonzero(_close(Q, Q[:, :1]))[0]:
                q = _small_rational(float(Q[c, 0]))
                if q is not None:
                    found.append(((np.abs(E[c]).sum() + 2, len(str(q))), p.expr(q, E[c]) * (p.dims[i] + shift)))
    return _simplest(found)


def _constant(ratios: Sequence) -> sympy.Expr | None:
    """The common value of the ratios when they are all one number (a long one: 1.00000001)."""
    values = [r for r in ratios if r != "skip"]
    if values and all(abs(r - values[0]) <= 1e-12 * abs(values[0]) for r in values):
        return sympy.Float(mpmath.nstr(values[0], 12))
    return None


def _near_one(ratios: Sequence) -> str | None:
    """'1 + 4.91e-91' for ratios that float arithmetic cannot tell from 1 (a literal 1 + 2^-300)."""
    values = [r for r in ratios if r != "skip"]
    if not values or not all(abs(r - 1) <= 1e-9 for r in values):
        return None
    first = values[0] - 1
    if first == 0 or not all(abs(r - 1 - first) <= 1e-6 * abs(first) for r in values):
        return None
    return f"1 {'+' if first > 0 else '−'} {mpmath.nstr(abs(first), 3)}"


def _factor(draws: Sequence[Draw], ratios: Sequence, bits: int) -> sympy.Expr | None:
    """The factor as a formula in the dimensions (or a long constant), checked in ``bits``-bit arithmetic:
    a float fit of 1 does not stand for 1 + 2^(−100·n)."""
    f = fit_factor(draws, ratios)
    if f is None:
        return _constant(ratios)
    with mpmath.workprec(bits):
        for draw, r in zip(draws, ratios):
            if r == "skip":
                continue
            value = mpmath.mpf(sympy.N(f.xreplace({d: sympy.Integer(v) for d, v in draw.dims}), bits // 3))
            if abs(value - r) > mpmath.ldexp(abs(r), -(bits // 2)):
                return None
    return f


def _ratio_text(r) -> str:
    if r != 1 and abs(r - 1) <= 1e-9:
        return f"1 {'+' if r > 1 else '−'} {mpmath.nstr(abs(r - 1), 3)}"
    return f"{float(r):.6g}"


def _factor_text(f: sympy.Expr) -> str:
    text = formula_text(f) if not f.is_Float else mpmath.nstr(mpmath.mpf(f), 12)
    return f"({text})" if isinstance(f, sympy.Add) else text


def factor_line(draws: Sequence[Draw], ratios: Sequence, bits: int, grad: str, say: Callable[..., str]) -> str:
    near = _near_one(ratios)
    if near is not None:
        return say("check_factor_constant", grad=grad, factor=near)
    f = _factor(draws, ratios, bits)
    if f is None:
        seen: dict = {}
        for d, r in zip(draws, ratios):
            if r != "skip":
                seen.setdefault(d.dims, r)
        names = ", ".join(str(d) for d, _ in draws[0].dims) or "—"
        shown = "; ".join(f"({', '.join(str(v) for _, v in dims)}): {_ratio_text(r)}"
                          for dims, r in list(seen.items())[:4])
        return say("check_factor_other", grad=grad, dims=names, ratios=f"({names}) = {shown}"
                   + ("; …" if len(seen) > 4 else ""))
    if f == 0:
        return say("check_factor_zero", grad=grad)
    if f == -1:
        return say("check_factor_sign", grad=grad)
    key = "check_factor_constant" if f.is_Number else "check_factor_dims"
    return say(key, grad=grad, factor=_factor_text(f))


def part_factor(draws: Sequence[Draw], ratios: Sequence, bits: int) -> str:
    near = _near_one(ratios)
    if near is not None:
        return near
    f = _factor(draws, ratios, bits)
    if f is not None:
        return _factor_text(f)
    values = [r for r in ratios if r != "skip"]
    return f"{_ratio_text(values[0])}, {_ratio_text(values[-1])}, …"

