"""The checks that close a network's derivation, as data that every format writes.

* the gradient check: the derivation's own gradients (``bp.gradients()``), compiled, against
  central differences of f along random directions, on random non-square data;
* for the seed network, the audit of the seed document's hand-written formulas
  (``derive.grading``: the grade of the seed write-up, from its own text).

:func:`network_checks` computes them (numeric code, imported when it runs): the command line
computes the checks and hands them to the renderers as ``checks=``; the document builder
(:func:`derive.render.document.checks_section`) makes them blocks, the audit rows through one
adapter (:func:`derive.render.document.audit_table`), and every format writes those blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence
from functools import lru_cache

import sympy

from derive.dims import concrete_shape
from derive.limits import MAX_CHECK_ENTRIES  # a larger matrix (numeric --dims) is not checked
from derive.render.locale import Locale

__all__ = [
    "CHECK_SIZES",
    "MAX_CHECK_ENTRIES",
    "Checks",
    "GradientCheck",
    "gradient_check",
    "network_checks",
    "seed_audit",
]

CHECK_SIZES = {"n": 4, "d": 3, "m": 5, "k": 2}
"""Sizes of the symbolic dimensions in the gradient check; other names get 6, 7, 8, … in order."""
TOLERANCE = 1e-5


@dataclass(frozen=True)
class GradientCheck:
    """The derivation's gradients against central differences.

    ``dims``: the sizes given to the symbolic dimensions; ``max_error``: the largest relative
    error over the parameters and directions, None when the check was skipped (``too_large``
    names the matrix and its number of entries; ``assumption`` the rule of an assumption of
    the network that the random data cannot be made to meet).
    """

    dims: tuple[tuple[str, int], ...]
    max_error: float | None
    tolerance: float = TOLERANCE
    too_large: tuple[str, int] | None = None
    assumption: str | None = None  # a network assumption (rule key) the random data cannot meet

    @property
    def passed(self) -> bool:
        return self.max_error is not None and self.max_error < self.tolerance

    def words(self, loc: Locale) -> tuple[str, dict[str, str]]:
        """The locale's key for the sentence and its fields (words and numbers).

        >>> from derive.render.locale import get_locale
        >>> GradientCheck((("n", 4),), 1e-9).words(get_locale("en"))
        ('grad_check', {'dims': 'n=4', 'error': '1.0e-09', 'verdict': 'passed'})
        """
        if self.too_large is not None:
            name, entries = self.too_large
            return "grad_check_too_large", {"name": name, "entries": f"{entries:,}", "limit": f"{MAX_CHECK_ENTRIES:,}"}
        if self.assumption is not None:
            return "grad_check_assumption", {"rule": loc.rule(self.assumption)}
        dims = ", ".join(f"{k}={v}" for k, v in self.dims) or loc.say("grad_check_own_dims")
        verdict = loc.say("grad_check_passed" if self.passed else "grad_check_failed")
        return "grad_check", {"dims": dims, "error": f"{self.max_error:.1e}", "verdict": verdict}

    def sentence(self, loc: Locale, escape: Callable[[str], str] | None = None) -> str:
        """"Gradient check (random non-square data n=4, …): max relative error 6.0e-09, passed."

        ``escape`` is applied to the words of the sentence and its fields.

        >>> from derive.render.locale import get_locale
        >>> GradientCheck((("n", 4),), 1e-9).sentence(get_locale("zh"))
        '梯度检验（随机非方阵数据 n=4，中心差分，沿随机方向）：最大相对误差 1.0e-09，通过。'
        """
        key, fields = self.words(loc)
        if escape is not None:
            fields = {k: escape(v) for k, v in fields.items()}
        return loc.say(key, escape=escape, **fields)


@dataclass(frozen=True)
class Checks:
    """What the renderers write after the summary: a gradient check and the seed's audit rows."""

    gradient: GradientCheck | None = None
    # the grade of the seed write-up, one derive.grading.Report per language (read only by
    # derive.render.document.audit_table)
    audit: tuple[Any, ...] = ()


def _sizes(dims: tuple[sympy.Symbol, ...]) -> dict[sympy.Symbol, int]:
    out: dict[sympy.Symbol, int] = {}
    spare = iter(range(6, 10_000))
    for s in dims:
        out[s] = CHECK_SIZES.get(s.name) or next(x for x in spare if x not in CHECK_SIZES.values())
    return out


def gradient_check(bp: Any, seed: int = 0) -> GradientCheck:
    """The gradients of ``bp`` (in the inputs) against central differences of ``bp.network.f``.

    >>> import derive
    >>> gc = gradient_check(derive.backprop(derive.seed_network()))
    >>> gc.dims, gc.passed
    ((('n', 4), ('d', 3), ('m', 5), ('k', 2)), True)
    """
    import numpy as np

    from numeric import check_gradient

    net = bp.network
    symbols = list(net.inputs) + list(net.params)
    order = _order(symbols)
    named = list(CHECK_SIZES)
    sizes = _sizes(tuple(sorted(order, key=lambda d: (named.index(d.name) if d.name in named else len(named),
                                                      order.index(d)))))
    dims = tuple((d.name, v) for d, v in sizes.items())
    shapes = {s: concrete_shape(s.shape, sizes) for s in symbols}
    for s, shape in shapes.items():
        entries = int(np.prod(shape, dtype=object))
        if entries > MAX_CHECK_ENTRIES:
            return GradientCheck(dims, None, too_large=(s.name, entries))
    rng = np.random.default_rng(seed)
    values = {s: rng.standard_normal(shapes[s]) for s in symbols}
    stages = {Z for Z, _ in net.stages}
    for pattern, _, rule in getattr(net, "assumptions", ()):
        if all(m in stages for m in pattern if isinstance(m, sympy.MatrixSymbol)):
            continue   # a fact about stages (a centred matrix's columns sum to zero) holds at any data
        if rule != "rows_sum_to_one":
            return GradientCheck(dims, None, assumption=rule)
        # the derivation assumed that each row of Y sums to one (a distribution): so must the data
        rows = rng.uniform(0.1, 1.0, shapes[pattern[0]])
        values[pattern[0]] = rows / rows.sum(axis=1, keepdims=True)
    grads = bp.gradients(expanded=True)
    err = check_gradient(net.f, list(net.params), values, grad=[grads[p] for p in net.params], seed=seed)
    return GradientCheck(dims, float(err))


def _order(symbols: list) -> list[sympy.Symbol]:
    """The symbolic dimensions in order of first use."""
    seen: list[sympy.Symbol] = []
    for s in symbols:
        for x in s.shape:
            for d in sorted(sympy.sympify(x).free_symbols, key=str):
                if d not in seen:
                    seen.append(d)
    return seen


def seed_audit(bp: Any, seed: int = 0, langs: Sequence[str] | None = None) -> Checks:
    """The grade of the seed write-up (``tracegrad grade seed``), in each of ``langs`` (default: every
    language), for the seed network; for another network, nothing.  No gradient check."""
    if getattr(bp.network, "name", None) != "seed":
        return Checks()
    from derive.render.locale import LANGUAGES

    return Checks(None, tuple(_seed_grade(lang, seed) for lang in (langs or LANGUAGES)))


@lru_cache(maxsize=8)
def _seed_grade(lang: str, seed: int) -> Any:
    """The grade of the built-in seed write-up (fixed text: graded once per process and language)."""
    from derive.grading import grade, seed_writeup

    return grade(seed_writeup(), lang=lang, seed=seed, source="seed")


def network_checks(bp: Any, seed: int = 0, audit: bool = True, langs: Sequence[str] | None = None) -> Checks:
    """The gradient check of ``bp`` (a ``derive.backprop.Backprop``) and, for the seed network
    (``audit``), the audit rows in each of ``langs`` (default: every language).
    """
    rows = seed_audit(bp, seed, langs) if audit else Checks()
    return Checks(gradient_check(bp, seed), rows.audit)
