"""``liaison replay`` and ``liaison feed read``: re-read signed events and verify each again.

Replay finds its starting point per partition with Kafka's ``offsets_for_times`` (the
events topics are stamped with the broker's append time) and reads to the ``until``
time or to the end as it was when the replay began. Every envelope is opened again with
today's trust store (retired keys included, judged at each record's append time).
Records that no longer verify are returned separately, never dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import Opened, open_envelope
from schemas.errors import EnvelopeError
from schemas.inspectorates import Inspectorate
from schemas.keys import TrustStore
from schemas.records import HEADER_AREA, HEADER_TYPE, InboundRecord, header_map
from services.kafka import inbound, partition_counts, tolerate_unparseable
from services.settings import Settings

__all__ = ["Filters", "Replay", "replay_topics"]


@dataclass(frozen=True, slots=True)
class Filters:
    """What a replay or feed read selects; ``None`` selects everything."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    area: str | None = None
    theme: str | None = None
    source: Inspectorate | None = None
    type: str | None = None

    def as_strings(self) -> dict[str, str]:
        """The filters that are set, as text (for the audit record)."""
        values = {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "area": self.area,
            "theme": self.theme,
            "source": self.source.value if self.source else None,
            "type": self.type,
        }
        return {k: v for k, v in values.items() if v is not None}

    def admits(self, opened: Opened) -> bool:
        """Whether a verified event matches (its signed content decides, not headers)."""
        event = opened.event
        return (
            (self.area is None or event.area == self.area)
            and (self.theme is None or event.theme.value == self.theme)
            and (self.source is None or event.source is self.source)
            and (self.type is None or event.type == self.type)
        )

    def may_concern(self, record: InboundRecord) -> bool:
        """For a record that does not verify: whether its (unverified) headers could match."""
        headers = header_map(record.headers)
        area, kind = headers.get(HEADER_AREA), headers.get(HEADER_TYPE)
        return (self.area is None or area in (None, self.area.encode())) and (
            self.type is None or kind in (None, self.type.encode())
        )


@dataclass(slots=True)
class Replay:
    """What a replay found: verified events in log order, and records that failed."""

    verified: list[tuple[InboundRecord, Opened]] = field(default_factory=list)
    unverifiable: list[tuple[InboundRecord, EnvelopeError]] = field(default_factory=list)
    scanned: int = 0


async def replay_topics(
    settings: Settings,
    topics: Iterable[str],
    filters: Filters,
    trust: TrustStore,
    now: dt.datetime,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Replay:
    """Re-read ``topics`` within the filters' time window, verifying every record."""
    topics = list(topics)
    counts = await partition_counts(settings, topics)
    consumer = tolerate_unparseable(
        AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
    )
    await consumer.start()
    found = Replay()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(counts[t])]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await _starts(consumer, partitions, filters.since)
        todo = {tp: ends[tp] for tp in partitions if starts[tp] < ends[tp]}
        total = sum(ends[tp] - starts[tp] for tp in todo)
        for tp in todo:
            consumer.seek(tp, starts[tp])
        until_ms = int(filters.until.timestamp() * 1000) if filters.until else None
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, records in batch.items():
                for raw in records:
                    if raw.offset >= ends[tp] or (
                        until_ms is not None and raw.timestamp >= until_ms
                    ):
                        todo.pop(tp, None)
                        break
                    found.scanned += 1
                    _judge(inbound(raw), filters, trust, now, found)
                if tp in todo and await consumer.position(tp) >= ends[tp]:
                    todo.pop(tp)
            progress(found.scanned, total)
    finally:
        await consumer.stop()
    found.verified.sort(key=lambda item: (item[0].timestamp_ms, item[0].topic, item[0].offset))
    return found


def _judge(
    record: InboundRecord, filters: Filters, trust: TrustStore, now: dt.datetime, found: Replay
) -> None:
    try:
        opened = open_envelope(record, trust, now)
    except EnvelopeError as exc:
        if filters.may_concern(record):
            found.unverifiable.append((record, exc))
        return
    if filters.admits(opened):
        found.verified.append((record, opened))


async def _starts(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since: dt.datetime | None
) -> dict[TopicPartition, int]:
    beginnings = await consumer.beginning_offsets(partitions)
    if since is None:
        return dict(beginnings)
    ends = await consumer.end_offsets(partitions)
    found = await consumer.offsets_for_times(
        {tp: int(since.timestamp() * 1000) for tp in partitions}
    )
    # No record at or after `since` in a partition: start at its end (nothing to read).
    return {tp: found[tp].offset if found[tp] is not None else ends[tp] for tp in partitions}
