"""Read whole topics of signed envelopes and verify every record again.

The inbox, JTAI triage and the unrouted list show what is on a topic now: they read each
topic from its beginning to its end as it was when the read began (committed records
only), and open every record with today's trust store (``schemas.signed.open_signed``),
accepting only the types that topic carries. A record that does not verify is kept apart
with its reason, never shown as a finding and never dropped silently.

(Reading whole topics grows with history; bounded state is the scale-out issue's work.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.errors import EnvelopeError
from schemas.keys import TrustStore
from schemas.records import InboundRecord
from schemas.signed import OpenedSigned, open_signed
from services.kafka import (
    client_options,
    inbound,
    partition_counts,
    stop_client,
    tolerate_unparseable,
)
from services.settings import Settings

__all__ = ["SignedRead", "read_signed"]


@dataclass(slots=True)
class SignedRead:
    """What a read found, in each partition's log order: verified records and refusals."""

    verified: list[tuple[InboundRecord, OpenedSigned]] = field(default_factory=list)
    refused: list[tuple[InboundRecord, EnvelopeError]] = field(default_factory=list)


async def read_signed(
    settings: Settings,
    accept: Mapping[str, Collection[str]],
    trust: TrustStore,
    now: dt.datetime,
) -> SignedRead:
    """Every committed record of each topic in ``accept`` (topic -> signed types it
    carries), from the beginning to the end as of now, verified again."""
    topics = list(accept)
    counts = await partition_counts(settings, topics)
    consumer = tolerate_unparseable(
        AIOKafkaConsumer(
            **client_options(settings),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
    )
    await consumer.start()
    found = SignedRead()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(counts[t])]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        todo = {tp: ends[tp] for tp in partitions if starts[tp] < ends[tp]}
        for tp in todo:
            consumer.seek(tp, starts[tp])
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, records in batch.items():
                for raw in records:
                    if raw.offset >= ends[tp]:
                        todo.pop(tp, None)
                        break
                    record = inbound(raw)
                    try:
                        opened = open_signed(record, trust, now, accept[record.topic])
                    except EnvelopeError as exc:
                        found.refused.append((record, exc))
                    else:
                        found.verified.append((record, opened))
            # Every partition, not only those that returned records: one whose last records
            # are an aborted transaction (or its markers) returns nothing to a
            # read_committed reader, yet its position reaches the end.
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.pop(tp)
    finally:
        await stop_client(consumer)
    return found
