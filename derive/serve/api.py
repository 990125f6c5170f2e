"""The JSON API of the web app (docs/api.md): ``/api/examples``, ``/api/derive``, ``/api/check``,
``/api/grade``, ``/api/codegen``, ``/api/pdf``.

A handler reads the body within its size limit (413 before reading on: ``Content-Length``, or
while reading), checks every field's type and value here (422 naming the field), and hands the
request to the worker pool (:mod:`derive.serve.pool`), which runs :mod:`derive.serve.jobs`.
Every error is JSON: ``{"error", "kind", "line", "column", "field"}`` with a 4xx status (a defect
of tracegrad: 500).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from derive.limits import MAX_LENGTH, MAX_PROGRAM_LENGTH
from derive.serve.examples import EXAMPLES
from derive.serve.pool import PoolBusy, PoolCrash, PoolTimeout

__all__ = ["BACKENDS", "FORMATS", "LANGS", "SYNTAXES", "AnswerCache", "RequestError", "error_response", "handlers"]

LANGS = ("en", "zh")
FORMATS = ("html", "latex", "markdown", "text")
BACKENDS = ("numpy", "torch", "jax", "cupy")
SYNTAXES = ("auto", "ascii", "latex")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class RequestError(Exception):
    """A request refused before any work: ``status``, ``kind``, the ``field`` at fault and where in it."""

    def __init__(self, message: str, status: int = 422, kind: str = "input", field: str | None = None,
                 line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message, self.status, self.kind, self.field = message, status, kind, field
        self.line, self.column = line, column


def error_response(message: str, status: int, kind: str, line: int | None = None, column: int | None = None,
                   field: str | None = None) -> JSONResponse:
    """The JSON of every error."""
    return JSONResponse({"error": message, "kind": kind, "line": line, "column": column, "field": field},
                        status_code=status)


# ----------------------------------------------------------------------------------------- the body

async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) past ``limit`` bytes: at once when ``Content-Length`` says so, else as
    soon as the bytes read pass it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError("Content-Length is not a number", 400) from None
        if size > limit:
            raise RequestError(f"the request body is {size} bytes; the limit is {limit}", 413, "body_too_large")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise RequestError(f"the request body is longer than {limit} bytes, the limit", 413, "body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object."""
    body = await read_body(request, limit)
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError("the body is not UTF-8 text", 400, "input") from None
    except json.JSONDecodeError as e:
        raise RequestError(f"the body is not JSON: {e.msg} at line {e.lineno}, column {e.colno}", 400,
                           "input") from None
    except RecursionError:
        raise RequestError("the body's JSON is nested too deeply", 400, "input") from None
    except ValueError as e:   # a number of more digits than Python reads
        raise RequestError(f"the body is not usable JSON: {str(e).splitlines()[0]}", 400, "input") from None
    if not isinstance(data, dict):
        raise RequestError(f"the body must be a JSON object, got {type(data).__name__}", 400)
    return data


# ------------------------------------------------------------------------------------------- fields

def _text(data: Mapping[str, Any], field: str, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise RequestError(f"{field} is missing", field=field)
        return None
    if not isinstance(value, str):
        raise RequestError(f"{field} must be a string, got {type(value).__name__}", field=field)
    return value


def _choice(data: Mapping[str, Any], field: str, choices: tuple, default: Any) -> Any:
    value = data.get(field, default)
    if value is None:
        value = default
    if value not in choices or isinstance(value, bool):
        shown = json.dumps(value)[:40]
        raise RequestError(f"{field} {shown} is not supported; choose one of: {', '.join(map(str, choices))}",
                           field=field)
    return value


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or value[0].isdigit() or not set(value) <= _NAME_CHARS:
        raise RequestError(f"{field}: {json.dumps(value)[:40]} is not a name (letters, digits, _)", field=field)
    return value


def _wrt(data: Mapping[str, Any]) -> list[str] | None:
    """``["W1", "b1"]`` or ``"W1,b1"``."""
    value = data.get("wrt")
    if value is None:
        return None
    if isinstance(value, str):
        value = [w.strip() for w in value.split(",") if w.strip()]
    if not isinstance(value, list):
        raise RequestError(f"wrt must be a list of names, got {type(value).__name__}", field="wrt")
    return [_name(w, "wrt") for w in value]


def _shapes(data: Mapping[str, Any]) -> dict[str, list]:
    """``{"X": ["n", "d"], "b": [1, "m"], "c": []}``: two dimensions (a name or a positive integer), or
    none for a scalar."""
    value = data.get("shapes")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"shapes must be an object such as {{\"X\": [\"n\", \"d\"]}}, got "
                           f"{type(value).__name__}", field="shapes")
    if len(value) > 200:
        raise RequestError("more than 200 shapes", 422, "too_large", "shapes")
    out = {}
    for name, shape in value.items():
        _name(name, "shapes")
        if not isinstance(shape, list) or len(shape) not in (0, 2):
            raise RequestError(f"shapes.{name} must be [ROWS, COLS] (or [] for a scalar)", field="shapes")
        for d in shape:
            ok = (isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 10**15) or (
                isinstance(d, str) and (_is_size(d) or _is_name(d)))
            if not ok:
                raise RequestError(f"shapes.{name}: {json.dumps(d)[:40]} is no dimension (a name such as n, or "
                                   "a positive integer)", field="shapes")
        out[name] = shape
    return out


def _is_size(s: str) -> bool:
    """A dimension written as a number: ASCII digits only (not "²" or "١٢"), at most 10¹⁵."""
    return s.isascii() and s.isdigit() and len(s) <= 16 and 0 < int(s) <= 10**15


def _is_name(s: str) -> bool:
    return bool(s) and not s[0].isdigit() and set(s) <= _NAME_CHARS and len(s) <= 40


def _check_length(program: str | None, expression: str | None) -> None:
    """The length limits of derive.limits, checked here as the parser checks them, so that a text
    too long is refused without waiting for a worker."""
    if expression is not None and len(expression) > MAX_LENGTH:
        raise RequestError(f"too large: column {MAX_LENGTH + 1}: expression longer than {MAX_LENGTH} characters "
                           "(derive.limits.MAX_LENGTH)", 422, "too_large", "expression", 1, MAX_LENGTH + 1)
    if program is not None and len(program) > MAX_PROGRAM_LENGTH:
        line = program.count("\n", 0, MAX_PROGRAM_LENGTH) + 1
        column = MAX_PROGRAM_LENGTH - (program.rfind("\n", 0, MAX_PROGRAM_LENGTH) + 1) + 1
        raise RequestError(f"too large: line {line}, column {column}: program longer than {MAX_PROGRAM_LENGTH} "
                           "characters (derive.limits.MAX_PROGRAM_LENGTH)", 422, "too_large", "program", line, column)


def network_fields(data: Mapping[str, Any], required: bool = True) -> dict[str, Any]:
    """The fields that name what to derive: ``program``, or ``expression`` with ``shapes`` and
    ``wrt``; ``lang``; ``order`` (1, or 2 for a Hessian).

    >>> network_fields({"expression": "tr(X)", "wrt": "X"})["wrt"]
    ['X']
    """
    program, expression = _text(data, "program"), _text(data, "expression")
    if program is not None and expression is not None:
        raise RequestError("give a program or an expression, not both", field="expression")
    if required and program is None and expression is None:
        raise RequestError("give a program (\"program\": TEXT) or an expression (\"expression\": TEXT with "
                           "\"shapes\" and \"wrt\")", field="program")
    _check_length(program, expression)
    order = data.get("order", 1)
    if order not in (1, 2) or isinstance(order, bool):
        raise RequestError(f"order {json.dumps(order)[:20]} is not supported; choose 1 (gradient) or 2 (Hessian)",
                           field="order")
    return {"program": program, "expression": expression, "shapes": _shapes(data), "wrt": _wrt(data),
            "lang": _choice(data, "lang", LANGS, "en"), "order": order}


# ----------------------------------------------------------------------------------------- handlers

class AnswerCache:
    """The answers of the latest ``size`` distinct requests, at most ``max_bytes`` of them in all and
    none over ``max_entry`` bytes (a grade of a long write-up is not kept); requests are keyed by a
    SHA-256 of their fields.  A derivation, a check, a grade and a module are functions of the
    request's fields alone, so thirty students opening the same example cost one derivation; a
    request that arrives while the same one is being worked on waits for that answer.  Only answers
    and refusals of the input are kept: a timeout or a busy pool is not.

    >>> import asyncio
    >>> cache, calls = AnswerCache(2), []
    >>> async def work():
    ...     calls.append(1)
    ...     return True, {"x": 1}
    >>> asyncio.run(cache.run("k", work)) == asyncio.run(cache.run("k", work)) == (True, {"x": 1})
    True
    >>> len(calls)
    1
    """

    def __init__(self, size: int = 256, max_bytes: int = 64 << 20, max_entry: int = 1 << 20) -> None:
        self.size, self.max_bytes, self.max_entry, self.hits = size, max_bytes, max_entry, 0
        self.bytes = 0
        self._done: OrderedDict[str, tuple[bool, Any, int]] = OrderedDict()
        self._pending: dict[str, asyncio.Future] = {}

    async def run(self, key: str, make: Callable[[], Awaitable[tuple[bool, Any]]]) -> tuple[bool, Any]:
        if self.size <= 0:
            return await make()
        key = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        if key in self._done:
            self._done.move_to_end(key)
            self.hits += 1
            ok, result, _ = self._done[key]
            return ok, result
        task = self._pending.get(key)
        if task is None:   # a task of its own: a client that leaves cancels its wait, not the work
            task = asyncio.ensure_future(make())
            self._pending[key] = task
            task.add_done_callback(lambda t: self._finish(key, t))
        else:
            self.hits += 1
        return await asyncio.shield(task)

    def _finish(self, key: str, task: asyncio.Future) -> None:
        self._pending.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        ok, result = task.result()
        if ok or result.get("kind") in ("input", "too_large"):
            size = len(json.dumps(result, ensure_ascii=False))
            if size > self.max_entry:
                return
            self._done[key] = (ok, result, size)
            self.bytes += size
            while len(self._done) > self.size or self.bytes > self.max_bytes:
                self.bytes -= self._done.popitem(last=False)[1][2]


class Api:
    """The endpoints, bound to the app's pool, limits and cache of answers."""

    def __init__(self, pool: Any, max_body: int, max_upload: int, pdf_time_limit: float,
                 cache_size: int = 256) -> None:
        self.pool, self.max_body, self.max_upload = pool, max_body, max_upload
        self.pdf_time_limit = pdf_time_limit
        self.cache = AnswerCache(cache_size)
        # PDF builds (up to a minute each) may hold all workers but one: a derivation always finds one
        self._pdf_slots = asyncio.Semaphore(max(1, pool.size - 1))

    async def _run(self, job: str, spec: dict[str, Any], time_limit: float | None = None) -> Any:
        try:
            if job == "pdf":   # bytes, and rarely asked twice: not kept
                ok, result = await self.pool.run(job, spec, time_limit)
            else:
                key = job + json.dumps(spec, sort_keys=True, ensure_ascii=False)
                ok, result = await self.cache.run(key, lambda: self.pool.run(job, spec, time_limit))
        except PoolTimeout:
            limit = self.pool.time_limit if time_limit is None else time_limit
            raise RequestError(f"too large: the work took longer than {limit:g} s, this server's limit per "
                               "request; try a smaller input", 408, "timeout") from None
        except PoolBusy as e:
            raise RequestError(f"the server is busy ({e}); try again", 503, "busy") from None
        except PoolCrash:
            raise RequestError("too large: the work stopped (it needed more memory than this server allows)",
                               422, "too_large") from None
        if not ok:
            raise _JobError(result)
        return result

    async def examples(self, request: Request) -> Response:
        return JSONResponse(EXAMPLES)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "workers": self.pool.size, "replaced": self.pool.replaced,
                             "cache_hits": self.cache.hits})

    async def derive(self, request: Request) -> Response:
        data = await json_body(request, self.max_body)
        spec = network_fields(data)
        spec["format"] = _choice(data, "format", FORMATS, "html")
        if spec["order"] == 2 and spec["program"] is not None:
            raise RequestError("order 2 (a Hessian) is derived for an expression, not a program", field="order")
        return JSONResponse(await self._run("derive", spec))

    async def check(self, request: Request) -> Response:
        data = await json_body(request, self.max_body)
        spec = network_fields(data, required=False)
        spec["answer"] = _text(data, "answer", required=True)
        spec["syntax"] = _choice(data, "syntax", SYNTAXES, "auto")
        if spec["order"] != 1:
            raise RequestError("the web app checks gradients (order 1); check a Hessian with tracegrad check "
                               "--hessian", field="order")
        variable = data.get("variable", data.get("wrt_answer"))
        if variable is None:   # wrt: the variable of the answer ("W1"); for an expression, its first name
            variable = (spec["wrt"] or [None])[0]
        if variable is None:
            raise RequestError("wrt is missing: the variable of the answer, e.g. \"W1\"", field="wrt")
        spec["variable"] = _name(variable, "wrt")
        if spec["expression"] is None and spec["program"] is None:
            spec["wrt"] = None
        elif spec["program"] is not None and isinstance(data.get("wrt"), str) and "," not in data["wrt"]:
            spec["wrt"] = None   # "wrt": "W1" names the answer's variable; the program's params stay
        return JSONResponse(await self._run("check", spec))

    async def grade(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            spec = await self._upload(request)
        else:
            data = await json_body(request, self.max_upload)
            spec = {"text": _text(data, "text", required=True), "program": _text(data, "program"),
                    "shapes": _shapes(data), "lang": _choice(data, "lang", LANGS, "en"),
                    "filename": _text(data, "filename")}
        return JSONResponse(await self._run("grade", spec))

    async def _upload(self, request: Request) -> dict[str, Any]:
        body = await read_body(request, self.max_upload)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise RequestError("the upload has no file field \"file\"", field="file")
            raw = await upload.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestError(f"{upload.filename or 'the file'} is not UTF-8 text", field="file") from None
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return {"text": text, "program": fields.get("program") or None, "shapes": {},
                    "lang": _choice(fields, "lang", LANGS, "en"), "filename": upload.filename or "write-up"}
        finally:
            await form.close()

    async def codegen(self, request: Request) -> Response:
        data = await json_body(request, self.max_body)
        spec = network_fields(data)
        spec["backend"] = _choice(data, "backend", BACKENDS, "numpy")
        return JSONResponse(await self._run("codegen", spec))

    async def pdf(self, request: Request) -> Response:
        data = await json_body(request, self.max_body)
        spec = network_fields(data)
        spec["time_limit"] = self.pdf_time_limit
        try:
            await asyncio.wait_for(self._pdf_slots.acquire(), self.pool.queue_timeout)
        except asyncio.TimeoutError:
            raise RequestError("the server is busy (other PDFs are being built); try again", 503, "busy") from None
        try:
            pdf = await self._run("pdf", spec, self.pdf_time_limit + 5)
        finally:
            self._pdf_slots.release()
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="derivation.pdf"'})


class _JobError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("error", ""))
        self.error = error


def handle_errors(endpoint: Any) -> Any:
    """``endpoint`` with every refusal answered as the JSON of :func:`error_response`."""
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RequestError as e:
            return error_response(e.message, e.status, e.kind, e.line, e.column, e.field)
        except _JobError as e:
            err = e.error
            return error_response(err["error"], err.get("status", 422), err.get("kind", "input"), err.get("line"),
                                  err.get("column"), err.get("field"))
    wrapped.__name__ = getattr(endpoint, "__name__", "endpoint")
    return wrapped


def handlers(api: Api) -> dict[str, Any]:
    """Path → (method, endpoint) of every API route."""
    return {
        "/api/examples": ("GET", handle_errors(api.examples)),
        "/api/health": ("GET", handle_errors(api.health)),
        "/api/derive": ("POST", handle_errors(api.derive)),
        "/api/check": ("POST", handle_errors(api.check)),
        "/api/grade": ("POST", handle_errors(api.grade)),
        "/api/codegen": ("POST", handle_errors(api.codegen)),
        "/api/pdf": ("POST", handle_errors(api.pdf)),
    }
