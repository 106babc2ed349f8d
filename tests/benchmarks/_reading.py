"""What the harness reads back from Kafka: committed records only (``read_committed``).

``follow`` waits until every expected event id is on a topic (the feed); ``read_range``
and ``count_range`` read what was appended between two positions.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.records import HEADER_EVENT_ID
from services.kafka import Position, client_options
from services.settings import Settings
from tests.benchmarks._procs import BenchError

__all__ = ["Appended", "count_range", "follow", "read_range"]

_BATCH: Final = 2000


@dataclass(slots=True)
class Appended:
    """Per event id, the broker's append time (ms) of each copy found."""

    times: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    records: int = 0

    def add(self, raw: Any) -> None:
        """Note one aiokafka record."""
        self.records += 1
        for name, value in raw.headers:
            if name == HEADER_EVENT_ID:
                self.times[value.decode()].append(raw.timestamp)
                return

    def first(self) -> dict[str, int]:
        """Each id's first append time."""
        return {event_id: min(times) for event_id, times in self.times.items()}

    def duplicates(self) -> int:
        """Copies beyond the first, over every id."""
        return sum(len(times) - 1 for times in self.times.values())


@asynccontextmanager
async def _consumer(settings: Settings, start: Position) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic, p in sorted(start)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start[(tp.topic, tp.partition)])
        yield consumer
    finally:
        await consumer.stop()


async def follow(
    settings: Settings,
    start: Position,
    expected: set[str],
    timeout_s: float,
    what: str,
    *,
    alive: Callable[[], None] | None = None,
) -> tuple[Appended, float]:
    """Read from ``start`` until every id of ``expected`` has been seen; the records and
    ``time.time()`` when the last one was read. ``BenchError`` after ``timeout_s``;
    ``alive()`` is called each round (it raises if a process the wait depends on died)."""
    found = Appended()
    async with _consumer(settings, start) as consumer:
        deadline = time.monotonic() + timeout_s
        missing = set(expected)
        while missing:
            if time.monotonic() > deadline:
                msg = (
                    f"{what}: {len(expected) - len(missing)} of {len(expected)} events on the"
                    f" feed after {timeout_s:.0f} s"
                )
                raise BenchError(msg)
            if alive is not None:
                alive()
            batch = await consumer.getmany(timeout_ms=200, max_records=_BATCH)
            for records in batch.values():
                for raw in records:
                    found.add(raw)
            missing.difference_update(found.times.keys() & missing)
        return found, time.time()


async def read_range(settings: Settings, start: Position, end: Position) -> Appended:
    """Every committed record between ``start`` and ``end`` (both per partition)."""
    found = Appended()
    await _read(settings, start, end, found.add)
    return found


async def count_range(settings: Settings, start: Position, end: Position) -> dict[str, int]:
    """How many committed records each topic got between ``start`` and ``end``."""
    counts: defaultdict[str, int] = defaultdict(int)

    def note(raw: Any) -> None:
        counts[raw.topic] += 1

    await _read(settings, start, end, note)
    return {topic: counts.get(topic, 0) for topic in sorted({t for t, _ in start})}


async def _read(
    settings: Settings, start: Position, end: Position, note: Callable[[Any], None]
) -> None:
    wanted = {tp: end[tp] for tp in start if end.get(tp, 0) > start[tp]}
    if not wanted:
        return
    async with _consumer(settings, {tp: start[tp] for tp in wanted}) as consumer:
        deadline = time.monotonic() + 120
        left = dict(wanted)
        while left:
            if time.monotonic() > deadline:
                raise BenchError(f"reading back {len(left)} partitions took over 120 s")
            batch = await consumer.getmany(timeout_ms=200, max_records=_BATCH)
            for tp, records in batch.items():
                for raw in records:
                    if raw.offset < wanted[(tp.topic, tp.partition)]:
                        note(raw)
            for key in list(left):
                position = await consumer.position(TopicPartition(*key))
                if position >= left[key]:
                    del left[key]
        await asyncio.sleep(0)


def topics_of(position: Position) -> Sequence[str]:
    """The topics a position covers."""
    return sorted({topic for topic, _ in position})
