"""The one publishing path every inspectorate's producer shares.

validate -> minimisation lint -> seal -> produce: ``Publisher`` seals an event with its
inspectorate's key (``seal`` validates the exact bytes it signs, lint included, against
the publisher's clock), builds the record (envelope value, keyed by area, to
``liaison.events.<inspectorate>``) and hands it to a ``RecordSink``, returning only when
the sink says the broker acknowledged it. The sink is the seam to Kafka: ``services/``
provides an idempotent ``acks=all`` producer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

import structlog

from schemas.envelope import Sealed, seal
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.keys import SigningKey
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

    def __init__(
        self,
        sink: RecordSink,
        topics: Topics,
        key: SigningKey,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._sink = sink
        self._topics = topics
        self._key = key
        self._clock = clock
        self._log = structlog.get_logger("liaison.producer")

    def clock(self) -> dt.datetime:
        """The publisher's current time."""
        return self._clock()

    def seal(self, event: ConcernRaised | ExceptionalPracticeIdentified) -> Sealed:
        """Validate and sign ``event`` (``SchemaError`` or ``SignatureError`` say why not)."""
        return seal(event, self._key, self._clock())

    async def publish(self, event: ConcernRaised | ExceptionalPracticeIdentified) -> Delivery:
        """Seal and publish ``event``; return where it was stored once Kafka acknowledged it."""
        return await self.send(self.seal(event))

    async def send(self, sealed: Sealed) -> Delivery:
        """Publish an already sealed event; return once Kafka acknowledged it."""
        event = sealed.event
        record = event_record(event, sealed.envelope, self._topics)
        delivery = await self._sink.send(record)
        self._log.info(
            "event_published",
            event_id=str(event.id),
            inspectorate=event.source.value,
            area=event.area,
            keyid=sealed.keyid,
            topic=record.topic,
            partition=delivery.partition,
            offset=delivery.offset,
        )
        return delivery
