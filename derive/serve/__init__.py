"""``tracegrad serve``: the interactive web app (a page and a JSON API, docs/api.md).

* :mod:`derive.serve.app`: :func:`~derive.serve.app.create_app`, the Starlette application;
* :mod:`derive.serve.api`: the endpoints, their fields and their errors;
* :mod:`derive.serve.pool`: the worker processes, with a time and memory limit per request;
* :mod:`derive.serve.jobs`: the work itself, through the library (run in the workers);
* :mod:`derive.serve.examples`: the examples of the editor;
* ``static/``: the page (HTML, script, style), served by the app: no CDN.

It needs the ``serve`` extra (Starlette, uvicorn, python-multipart): ``pip install 'tracegrad[serve]'``.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":   # Starlette is imported when the app is made, not with derive.serve
        from derive.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'derive.serve' has no attribute {name!r}")
