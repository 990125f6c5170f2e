"""How derivation data shows itself, without the data modules importing the code that draws it.

:class:`~derive.steps.Step`, :class:`~derive.steps.Derivation` and
:class:`~derive.backprop.Backprop` are data.  Their ``to_text``, ``to_markdown``, ``to_latex``,
``__str__`` and Jupyter methods (``_repr_markdown_``, ``_repr_latex_``, ``_repr_pretty_``) look up
a *display function* here, by the object's class and a format name.  ``derive.render``
registers its functions when it is imported; when none is registered yet, the first lookup
imports the package named by :data:`PROVIDER` (as pandas loads its plotting backend by name), so
that ``print(derivation)`` works without importing ``derive.render`` first while no data module
imports a renderer.

>>> class Note(Displayed):
...     def __init__(self, text: str) -> None:
...         self.text = text
>>> register(Note, "text", lambda note, lang="en": note.text.upper())
>>> str(Note("shown"))
'SHOWN'
"""
from __future__ import annotations

import importlib
from typing import Any
from collections.abc import Callable

__all__ = ["PROVIDER", "Displayed", "display", "register"]

PROVIDER = "derive.render"
"""The package that registers the display functions (imported on the first lookup that finds none)."""

# (module.qualname of a class, format) -> function(obj, **options) -> str
_FUNCTIONS: dict[tuple[str, str], Callable[..., str]] = {}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type | str, fmt: str, fn: Callable[..., str]) -> None:
    """Show instances of ``cls`` (a class, or its ``module.qualname``) in format ``fmt`` with ``fn``."""
    _FUNCTIONS[cls if isinstance(cls, str) else _name(cls), fmt] = fn


def _lookup(obj: object, fmt: str) -> Callable[..., str] | None:
    for cls in type(obj).__mro__:
        fn = _FUNCTIONS.get((_name(cls), fmt))
        if fn is not None:
            return fn
    return None


def display(obj: object, fmt: str, **options: Any) -> str:
    """``obj`` shown in format ``fmt`` ("text", "markdown", "latex", "latex_inline") by its display function.

    >>> display(object(), "braille")
    Traceback (most recent call last):
    ...
    LookupError: no braille display for object
    """
    fn = _lookup(obj, fmt)
    if fn is None:
        importlib.import_module(PROVIDER)  # registers the display functions
        fn = _lookup(obj, fmt)
    if fn is None:
        raise LookupError(f"no {fmt} display for {type(obj).__name__}")
    return fn(obj, **options)


class Displayed:
    """Shows itself through the display functions registered for its class: as text (``str``,
    IPython), as Markdown (Jupyter) and as LaTeX.  Subclasses hold data only."""

    def to_text(self, lang: str = "en", **options: Any) -> str:
        return display(self, "text", lang=lang, **options)

    def to_markdown(self, lang: str = "en", **options: Any) -> str:
        return display(self, "markdown", lang=lang, **options)

    def to_latex(self, lang: str = "en", **options: Any) -> str:
        return display(self, "latex", lang=lang, **options)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.to_text())
