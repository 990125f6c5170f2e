"""Doctest collection: the checks of an optional backend import its library (torch, jax, cupy), and
``export_autograd``'s examples run torch and jax; skipped where one is missing."""
import importlib.util

collect_ignore = [f"{library}_checks.py" for library in ("torch", "jax", "cupy") if importlib.util.find_spec(library) is None]
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("jax") is None:
    collect_ignore.append("autograd.py")
