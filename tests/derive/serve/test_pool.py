"""The worker pool (derive.serve.pool): each request in a separate process within a time and a memory
limit; a worker past its time limit or dead is replaced, and the other workers keep answering."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from derive.serve.pool import PoolBusy, PoolCrash, PoolTimeout, WorkerPool

RUNNER = "tests.derive.serve.pool_runner:run"


def _pool(**kw) -> WorkerPool:
    return WorkerPool(runner=RUNNER, **{"size": 2, "time_limit": 5.0, "memory_limit": 1 << 30, **kw})


def test_a_job_past_the_time_limit_is_killed_and_its_worker_replaced() -> None:
    async def scenario() -> None:
        pool = _pool(time_limit=0.5)
        pool.start()
        try:
            old = {w.proc.pid for w in pool._workers}
            slow = asyncio.ensure_future(pool.run("sleep", 30))
            await asyncio.sleep(0.1)
            start = time.perf_counter()
            assert await pool.run("echo", "other users") == (True, "other users")   # the other worker
            assert time.perf_counter() - start < 0.5
            with pytest.raises(PoolTimeout):
                await slow
            assert pool.replaced == 1
            assert await pool.run("echo", 1) == (True, 1)
            gone = old - {w.proc.pid for w in pool._workers}
            assert len(gone) == 1
            with pytest.raises(ProcessLookupError):   # killed, with its process group
                os.kill(gone.pop(), 0)
        finally:
            pool.close()
    asyncio.run(scenario())


def test_memory_past_the_limit_is_a_too_large_answer_and_the_worker_lives_on() -> None:
    async def scenario() -> None:
        pool = _pool(size=1, memory_limit=1 << 30)
        pool.start()
        try:
            ok, err = await pool.run("allocate", 2 << 30)
            assert not ok and err["kind"] == "too_large" and err["status"] == 422
            assert await pool.run("allocate", 1 << 20) == (True, 1 << 20)
            assert pool.replaced == 0
        finally:
            pool.close()
    asyncio.run(scenario())


def test_a_worker_that_dies_is_replaced_and_the_queue_wait_is_bounded() -> None:
    async def scenario() -> None:
        pool = _pool(size=1, queue_timeout=0.2)
        pool.start()
        try:
            with pytest.raises(PoolCrash):
                await pool.run("exit", None)
            assert pool.replaced == 1 and await pool.run("echo", 2) == (True, 2)
            slow = asyncio.ensure_future(pool.run("sleep", 1))
            await asyncio.sleep(0.05)
            with pytest.raises(PoolBusy):
                await pool.run("echo", 3)
            assert await slow == (True, 1)
        finally:
            pool.close()
    asyncio.run(scenario())


def test_the_number_of_waiting_requests_is_bounded() -> None:
    """With every worker busy and max_waiting requests already waiting, the next is refused at once."""
    async def scenario() -> None:
        pool = _pool(size=1, queue_timeout=5.0, max_waiting=2)
        pool.start()
        try:
            slow = asyncio.ensure_future(pool.run("sleep", 0.6))
            await asyncio.sleep(0.1)
            waiting = [asyncio.ensure_future(pool.run("echo", i)) for i in range(2)]
            await asyncio.sleep(0.05)
            assert pool.waiting == 2
            start = time.perf_counter()
            with pytest.raises(PoolBusy, match="2 requests are already waiting"):
                await pool.run("echo", 3)
            assert time.perf_counter() - start < 0.1
            assert await slow == (True, 0.6) and [await w for w in waiting] == [(True, 0), (True, 1)]
            assert pool.waiting == 0
        finally:
            pool.close()
    asyncio.run(scenario())


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        WorkerPool(size=0)
