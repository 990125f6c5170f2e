"""Doctest collection: the checks of an optional backend import its library (torch, jax); skipped where it is missing."""
import importlib.util

collect_ignore = [f"{library}_checks.py" for library in ("torch", "jax") if importlib.util.find_spec(library) is None]
