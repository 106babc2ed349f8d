"""The one publishing path every inspectorate's producer shares.

``Publisher`` turns a validated event into its record and hands it to a ``RecordSink``,
returning only when the sink says the broker acknowledged it. The sink is the seam to
Kafka (``services/`` provides an idempotent ``acks=all`` producer); signing slots in
between the event and the record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

import structlog

from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, validate_event
from schemas.records import OutboundRecord, event_record
from schemas.topics import Topics

__all__ = ["Delivery", "Publisher", "RecordSink"]


class Delivery(Protocol):
    """Where the broker stored a record."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class RecordSink(Protocol):
    """Produces records; ``send`` returns once the broker has acknowledged the record."""

    async def send(self, record: OutboundRecord) -> Delivery: ...


class Publisher:
    """Publishes events to their inspectorate's events topic through a sink."""

    def __init__(self, sink: RecordSink, topics: Topics, clock: Callable[[], dt.datetime]) -> None:
        self._sink = sink
        self._topics = topics
        self._clock = clock
        self._log = structlog.get_logger("liaison.producer")

    async def publish(self, event: ConcernRaised | ExceptionalPracticeIdentified) -> Delivery:
        """Publish ``event``; return where it was stored once Kafka acknowledged it.

        The exact bytes to be sent are validated first (contract, reference data,
        minimisation, not in the future by ``clock``); ``SchemaError`` says why not.
        """
        record = event_record(event, self._topics)
        validate_event(record.value, now=self._clock())
        delivery = await self._sink.send(record)
        self._log.info(
            "event_published",
            event_id=str(event.id),
            inspectorate=event.source.value,
            area=event.area,
            topic=record.topic,
            partition=delivery.partition,
            offset=delivery.offset,
        )
        return delivery
