"""stop_client finishes a close that aiokafka's stop() abandoned with a CancelledError of
its own fetch tasks (aio-libs/aiokafka#647), and passes on the caller's cancellation."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from services.kafka import stop_client


class _Inner:
    closed = False

    async def close(self) -> None:
        self.closed = True


class _Fetcher:
    def __init__(self, pending: set[asyncio.Task[None]]) -> None:
        self._pending_tasks = pending


class _Consumer:
    """What aiokafka 0.14's consumer does when a fetch task is in its retry backoff."""

    def __init__(self, pending: set[asyncio.Task[None]]) -> None:
        self._fetcher = _Fetcher(pending)
        self._client = _Inner()

    async def stop(self) -> None:
        for task in self._fetcher._pending_tasks:
            task.cancel()
            await task  # raises the task's CancelledError: the connections stay open
        await self._client.close()


async def _backoff() -> None:
    await asyncio.sleep(30)


async def test_a_cancelled_fetch_task_neither_escapes_nor_leaves_connections_open() -> None:
    pending = {asyncio.create_task(_backoff()) for _ in range(2)}
    await asyncio.sleep(0)
    consumer = _Consumer(pending)
    with pytest.raises(asyncio.CancelledError):
        await _Consumer({asyncio.create_task(_backoff())}).stop()  # what aiokafka does
    await stop_client(cast(Any, consumer))
    assert consumer._client.closed
    assert all(task.done() for task in pending)


async def test_the_callers_own_cancellation_is_passed_on() -> None:
    started = asyncio.Event()

    class _Slow(_Consumer):
        async def stop(self) -> None:
            started.set()
            await asyncio.sleep(30)

    stopping = asyncio.create_task(stop_client(cast(Any, _Slow(set()))))
    await started.wait()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
