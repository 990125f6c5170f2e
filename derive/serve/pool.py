"""The worker pool of the web app: derivations run in separate processes, each request within a
time limit and every worker within a memory limit, so that no input blocks other users.

* ``size`` worker processes (forked from a server process that has imported tracegrad, so that a
  new one starts in milliseconds) each run :func:`derive.serve.jobs.run` on one request at a time;
* a request waits at most ``queue_timeout`` seconds for a free worker, and at most ``max_waiting``
  requests wait at once (:class:`PoolBusy`);
* a request that takes longer than its time limit gets :class:`PoolTimeout`: its worker is killed
  with everything it started (its process group: a TeX engine too) and replaced;
* a worker's address space is bounded by ``memory_limit`` bytes (``RLIMIT_AS``): a request that
  needs more fails with ``MemoryError`` in the worker, a "too large" answer; a worker that dies
  anyway is replaced and the request answered :class:`PoolCrash`.

The app's async handlers ``await pool.run(job, spec)``: the wait for the worker happens in a
thread, never in the event loop.
"""
from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import resource
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["RUNNER", "PoolBusy", "PoolCrash", "PoolError", "PoolTimeout", "WorkerPool"]

RUNNER = "derive.serve.jobs:run"
"""The function a worker calls, ``module:function``, ``(job, spec) -> (ok, result)``; imported by name
in the worker (and in the forkserver, ahead of the workers), so that this module imports no work."""
# one thread per worker process for the numerical libraries: fewer threads, a smaller address space
_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class PoolError(Exception):
    """A request the pool could not run to its end."""


class PoolBusy(PoolError):
    """Every worker stayed busy for the whole of the queue's wait."""


class PoolTimeout(PoolError):
    """The request ran past its time limit; its worker was replaced."""


class PoolCrash(PoolError):
    """The worker died during the request (past its memory limit, or killed); it was replaced."""


def _serve(conn: Any, memory_limit: int | None, runner: str) -> None:
    """A worker's loop: ``(job, spec)`` in, ``(ok, result)`` out, until ``None`` or the pipe closes."""
    os.setsid()   # a process group of its own: a timeout kills what it started as well
    module, _, name = runner.partition(":")
    run = getattr(importlib.import_module(module), name)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job, spec = message
        try:
            reply = run(job, spec)
        except MemoryError:   # past the limit outside the job's own handlers
            reply = (False, {"error": "too large: it needs more memory than this server allows",
                             "kind": "too_large", "status": 422, "line": None, "column": None, "field": None})
        try:
            conn.send(reply)
        except MemoryError:
            conn.send((False, {"error": "too large: the answer needs more memory than this server allows",
                               "kind": "too_large", "status": 422, "line": None, "column": None, "field": None}))


class _Worker:
    def __init__(self, ctx: Any, memory_limit: int | None, runner: str) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, memory_limit, runner), daemon=True,
                                name="tracegrad-worker")
        self.proc.start()
        child.close()

    def call(self, job: str, spec: Any, timeout: float) -> tuple[bool, Any]:
        self.conn.send((job, spec))
        if not self.conn.poll(timeout):
            raise PoolTimeout(job)
        return self.conn.recv()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # the worker and what it started (a TeX engine)
        except (ProcessLookupError, PermissionError, TypeError):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


def _context(runner: str) -> Any:
    """forkserver (a server process that imported the runner once forks each worker), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([runner.partition(":")[0]])
        return ctx
    return multiprocessing.get_context("spawn")


class WorkerPool:
    """``size`` worker processes; :meth:`run` a job in one of them within ``time_limit`` seconds.

    >>> pool = WorkerPool(size=2, time_limit=5.0)
    >>> pool.size, pool.time_limit, pool.started
    (2, 5.0, False)
    """

    def __init__(self, size: int = 2, time_limit: float = 10.0, memory_limit: int | None = 2 << 30,
                 queue_timeout: float = 30.0, runner: str = RUNNER, max_waiting: int = 64) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one worker, got size={size}")
        self.size, self.time_limit, self.memory_limit = size, float(time_limit), memory_limit
        self.queue_timeout, self.runner = float(queue_timeout), runner
        self.max_waiting, self.waiting = max_waiting, 0   # requests waiting for a worker: at most max_waiting
        self.started = False
        self.replaced = 0    # workers replaced after a timeout or a crash
        self._workers: list[_Worker] = []
        self._idle: asyncio.Queue[_Worker] | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._ctx: Any = None

    def start(self) -> None:
        """Start the workers (in the event loop that will call :meth:`run`)."""
        if self.started:
            return
        self._ctx = _context(self.runner)
        saved = {name: os.environ.get(name) for name in _THREAD_ENV}
        try:   # the environment the forkserver (started with the first worker) and the workers get
            for name in _THREAD_ENV:
                os.environ.setdefault(name, "1")
            self._workers = [_Worker(self._ctx, self.memory_limit, self.runner) for _ in range(self.size)]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self._idle = asyncio.Queue()
        for w in self._workers:
            self._idle.put_nowait(w)
        self._threads = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="tracegrad-pool")
        self.started = True

    def close(self) -> None:
        """Stop every worker."""
        if not self.started:
            return
        for w in self._workers:
            w.stop()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self._workers, self.started = [], False

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        fresh = _Worker(self._ctx, self.memory_limit, self.runner)
        self._workers = [fresh if w is worker else w for w in self._workers]
        self.replaced += 1
        return fresh

    def _call(self, worker: _Worker, job: str, spec: Any, timeout: float) -> tuple[_Worker, Any]:
        """In a thread: the job's reply, or the error, and the worker to put back (a fresh one after a
        timeout or a crash)."""
        try:
            return worker, worker.call(job, spec, timeout)
        except PoolTimeout as e:
            return self._replace(worker), e
        except (EOFError, OSError, ConnectionError):
            return self._replace(worker), PoolCrash(job)

    async def run(self, job: str, spec: Any, time_limit: float | None = None) -> tuple[bool, Any]:
        """``(ok, result)`` of ``job`` on ``spec`` in a worker; raises :class:`PoolBusy`,
        :class:`PoolTimeout` or :class:`PoolCrash`."""
        if not self.started or self._idle is None:
            raise RuntimeError("the worker pool is not started")
        if self._idle.empty() and self.waiting >= self.max_waiting:
            raise PoolBusy(f"{self.waiting} requests are already waiting for a worker")
        self.waiting += 1
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.queue_timeout)
        except asyncio.TimeoutError:
            raise PoolBusy(f"every worker stayed busy for {self.queue_timeout:g} s") from None
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, self._call, worker, job, spec,
                                      self.time_limit if time_limit is None else time_limit)
        idle = self._idle

        def give_back(f: asyncio.Future) -> None:   # however the request ends, even if its client left
            idle.put_nowait(f.result()[0])

        future.add_done_callback(give_back)
        _, outcome = await asyncio.shield(future)
        if isinstance(outcome, PoolError):
            raise outcome
        return outcome
