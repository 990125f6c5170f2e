"""A rule as one record: its key, its law (SymPy objects), its name in every language, its function.

Each module defines the records of its rules beside their functions (``derive.differential``,
``derive.trace_rules``, ``derive.simplify``, and ``derive.steps`` for the steps that are not
rewrites); :data:`derive.steps.RULES` collects them.  A record is checked when it is made, so a
rule without a name in one of :data:`LANGUAGES`, or two rules with one key, fail at import.

A rule's function follows SymPy's ``strategies``: it returns its input unchanged where it does
not apply, so that :func:`by_class` and ``sympy.strategies`` (``do_one``, ``exhaust``) compose them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sympy import Basic
from sympy.strategies.core import switch

__all__ = ["LANGUAGES", "Rule", "by_class", "rule_table"]

LANGUAGES = ("en", "zh")
"""The languages every rule and every piece of prose is written in."""


@dataclass(frozen=True)
class Rule:
    """A named rule: ``key`` (what a ``Step`` records), ``law`` (the identity, as SymPy objects that
    every printer typesets), ``names`` (language → name) and ``rewrite``, its function (None for the
    steps that are not rewrites: the definition, the chain rule …).

    >>> from sympy import Eq, Symbol
    >>> a = Symbol("a")
    >>> r = Rule("double", Eq(a + a, 2 * a, evaluate=False), {"en": "double", "zh": "加倍"}, lambda e: e)
    >>> r.name("zh"), r.law
    ('加倍', Eq(2*a, 2*a))
    >>> Rule("double", a, {"en": "double"})
    Traceback (most recent call last):
    ...
    ValueError: rule 'double' has no name in zh
    """

    key: str
    law: Basic
    names: Mapping[str, str] = field(compare=False)
    rewrite: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.key.isidentifier():
            raise ValueError(f"rule key {self.key!r} is not an identifier")
        if not isinstance(self.law, Basic):
            raise TypeError(f"rule {self.key!r}: the law must be a SymPy object, got {type(self.law).__name__}")
        missing = [lang for lang in LANGUAGES if not str(self.names.get(lang, "")).strip()]
        if missing:
            raise ValueError(f"rule {self.key!r} has no name in {', '.join(missing)}")
        extra = sorted(set(self.names) - set(LANGUAGES))
        if extra:
            raise ValueError(f"rule {self.key!r} names languages that do not exist: {', '.join(extra)}")
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    def name(self, lang: str) -> str:
        """The rule's name in ``lang``."""
        return self.names[lang]

    def __call__(self, *args: Any) -> Any:
        if self.rewrite is None:
            raise TypeError(f"rule {self.key!r} is a step of a derivation, not a rewrite")
        return self.rewrite(*args)


def rule_table(rules: Iterable[Rule]) -> Mapping[str, Rule]:
    """key → rule, refusing two rules with one key (at import, where the table is made).

    >>> from sympy import Symbol
    >>> r = Rule("r", Symbol("a"), {"en": "r", "zh": "r"})
    >>> rule_table([r, r])
    Traceback (most recent call last):
    ...
    ValueError: two rules have the key 'r'
    """
    table: dict[str, Rule] = {}
    for r in rules:
        if r.key in table:
            raise ValueError(f"two rules have the key {r.key!r}")
        table[r.key] = r
    return MappingProxyType(table)


def by_class(table: Mapping[type, Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """A rule that dispatches on the class of its input, along the class's MRO (so subclasses, such
    as tracegrad's printable results, go where their SymPy class goes): ``sympy.strategies.typed``
    for class hierarchies.  Inputs of no class in ``table`` are returned unchanged.

    >>> from sympy import Add, Mul, Symbol
    >>> x = Symbol("x")
    >>> rule = by_class({Add: lambda e: "a sum", Mul: lambda e: "a product"})
    >>> rule(x + 1), rule(2 * x), rule(x)
    ('a sum', 'a product', x)
    """
    def key(e: Any) -> type | None:
        return next((cls for cls in type(e).__mro__ if cls in table), None)

    return switch(key, dict(table))
