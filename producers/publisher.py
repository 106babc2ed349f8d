"""The one publishing path every inspectorate's producer shares.

validate -> minimisation lint -> seal -> produce, audited: ``Publisher`` seals an event
with its inspectorate's key (``seal`` validates the exact bytes it signs, lint included,
against the publisher's clock), builds the record (envelope value, keyed by area, to
``liaison.events.<inspectorate>``) and publishes it in a Kafka transaction together with
its ``event.published`` audit record (``schemas.audit.EventPublished``, signed by the
same inspectorate's key, to ``liaison.audit``). Readers of both topics read committed, so
they see an event and the record of its publication together, or neither.

One transaction per batch (``publish_batch``):

1. every event of the batch is sent, in order;
2. their deliveries (partition, offset: the broker assigns them before the commit) are
   awaited;
3. one ``event.published`` per event, naming that partition and offset, is sent;
4. the transaction commits. Any failure before the commit aborts it: nothing of the
   batch becomes visible, and publishing the batch again publishes it once.

There is no way to publish through a ``Publisher`` without the audit record: it takes
only a ``TransactionalSink``, and every send it makes is inside a transaction that also
carries the audit records. A library user opens the sink in ``services.kafka``::

    async with transactional_sink(settings, "ofsted") as sink:
        publisher = Publisher(sink, settings.topics, key, clock)
        await publisher.publish(event)  # the event and its event.published, one commit
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from itertools import islice
from typing import Final, Protocol, runtime_checkable

import structlog

from schemas.audit import EventPublished, seal_record
from schemas.envelope import Sealed, seal, sign_envelope
from schemas.errors import SchemaError
from schemas.events import MAX_EVENT_BYTES, InspectorateEvent, encode_event
from schemas.keys import SigningKey, entitled
from schemas.records import OutboundRecord, event_record
from schemas.topics import Topics

__all__ = [
    "BATCH",
    "Delivery",
    "Published",
    "Publisher",
    "Transaction",
    "TransactionalSink",
]

BATCH: Final = 500
"""Events per transaction by default: few commits, and a bounded amount to re-send (and
a bounded time the open transaction holds back readers) when one fails."""


class Delivery(Protocol):
    """Where the broker stored a record."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class Transaction(Protocol):
    """An open Kafka transaction: what is sent is visible to ``read_committed`` readers
    only once the transaction commits."""

    async def send(self, record: OutboundRecord) -> Awaitable[Delivery]:
        """Queue ``record`` (in order, after the records queued before it); the awaitable
        gives where the broker stored it, before the transaction commits."""
        ...


@runtime_checkable
class TransactionalSink(Protocol):
    """Opens transactions: ``transaction()`` commits when its block ends normally and
    aborts when the block raises (or when the commit itself fails)."""

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A new transaction for the duration of an ``async with`` block."""
        ...


@dataclass(frozen=True, slots=True)
class Published:
    """An event whose transaction committed, where it is, and its audit record."""

    sealed: Sealed
    topic: str
    partition: int
    offset: int
    audit: EventPublished


Event = InspectorateEvent


class Publisher:
    """Publishes events to their inspectorate's events topic, each with its
    ``event.published`` audit record in the same transaction."""

    def __init__(
        self,
        sink: TransactionalSink,
        topics: Topics,
        key: SigningKey,
        clock: Callable[[], dt.datetime],
    ) -> None:
        if not isinstance(sink, TransactionalSink):
            # A plain producer would publish events without their audit records.
            msg = "Publisher needs a TransactionalSink (services.kafka.transactional_sink)"
            raise TypeError(msg)
        self._sink = sink
        self._topics = topics
        self._key = key
        self._clock = clock
        self._log = structlog.get_logger("liaison.producer")

    def clock(self) -> dt.datetime:
        """The publisher's current time."""
        return self._clock()

    def seal(self, event: Event) -> Sealed:
        """Validate and sign ``event`` (``SchemaError`` or ``SignatureError`` say why not)."""
        return seal(event, self._key, self._clock())

    def seal_validated(self, event: Event) -> Sealed:
        """``seal`` of an event that ``schemas.events.validate_event`` returned against this
        publisher's clock: the same envelope, without validating the event a second time.

        Only for events that validated as they were read (``liaison publish`` checks
        each document first): the canonical bytes of such an event are valid too (the
        codec round-trips, ``tests/unit/test_publish_perf_validation.py``), and a later
        clock only widens the time check. What the first validation cannot vouch for
        goes through ``seal``, which refuses it as it always did: canonical bytes over
        ``MAX_EVENT_BYTES`` (defaults written out can take an event over it) and an
        event this key may not sign.
        """
        payload = encode_event(event)
        if len(payload) > MAX_EVENT_BYTES or self._key.owner != event.source.value:
            return self.seal(event)
        envelope = sign_envelope(event.type, payload, self._key)
        return Sealed(event, payload, envelope, self._key.keyid)

    async def publish(self, event: Event) -> Delivery:
        """Seal and publish ``event`` with its audit record (one transaction); return where
        it was stored once the transaction committed."""
        (published,) = await self.publish_batch([self.seal(event)])
        return published

    async def publish_all(
        self, sealed: Iterable[Sealed], batch: int = BATCH
    ) -> AsyncIterator[list[Published]]:
        """Publish already sealed events, ``batch`` to a transaction; yield each batch
        once its transaction committed (what was yielded stays published if a later
        batch fails)."""
        if batch < 1:
            msg = f"batch must be at least 1, not {batch}"
            raise ValueError(msg)
        items = iter(sealed)
        while chunk := list(islice(items, batch)):
            yield await self.publish_batch(chunk)

    async def publish_batch(self, sealed: Sequence[Sealed]) -> list[Published]:
        """Publish already sealed events and their audit records in one transaction;
        return once it committed. On any error nothing of the batch is visible.

        ``SchemaError`` before anything is sent if an event's source is not this
        publisher's inspectorate (its key may not sign that inspectorate's records).
        """
        if not sealed:
            return []
        records = [event_record(s.event, s.envelope, self._topics) for s in sealed]
        for s in sealed:  # refuse a foreign event before the transaction opens
            _check_actor(self._key, s)
        async with self._sink.transaction() as transaction:
            pending = [await transaction.send(record) for record in records]
            deliveries = [await delivery for delivery in pending]
            published = [
                Published(s, r.topic, d.partition, d.offset, self._audit_record(s, r.topic, d))
                for s, r, d in zip(sealed, records, deliveries, strict=True)
            ]
            audits = [await transaction.send(self._audit_outbound(p.audit)) for p in published]
            for audit in audits:
                await audit
        log = self._log.bind()  # once per batch, not once per event
        enabled = getattr(log, "is_enabled_for", None)
        if enabled is not None and not enabled(logging.INFO):
            return published  # a one-shot command logs at WARNING: skip building the lines
        for p in published:
            log.info(
                "event_published",
                event_id=str(p.sealed.event.id),
                inspectorate=p.sealed.event.source.value,
                area=p.sealed.event.area,
                keyid=p.sealed.keyid,
                topic=p.topic,
                partition=p.partition,
                offset=p.offset,
            )
        return published

    def _audit_record(self, sealed: Sealed, topic: str, delivery: Delivery) -> EventPublished:
        source = sealed.event.source
        return EventPublished(
            at=self._clock(),
            actor=_actor(sealed),
            event_ids=(sealed.event.id,),
            topic=topic,
            partition=delivery.partition,
            offset=delivery.offset,
            keyid=sealed.keyid,
            inspectorate=source,
        )

    def _audit_outbound(self, record: EventPublished) -> OutboundRecord:
        """The record ``services.audit_log.audit_outbound`` builds (the integration tests
        hold the two to the same bytes): keyed and headed by the action, sealed."""
        action = record.action.encode()
        return OutboundRecord(
            topic=self._topics.audit,
            key=action,
            value=seal_record(record, self._key),
            headers=(("action", action),),
        )


def _actor(sealed: Sealed) -> str:
    return f"inspectorate:{sealed.event.source.value}"


def _check_actor(key: SigningKey, sealed: Sealed) -> None:
    """``SchemaError`` if ``key`` may not sign the audit record of ``sealed``."""
    if not entitled(key.owner, _actor(sealed)):
        msg = (
            f"a key of {key.owner} cannot publish an event whose source is"
            f" {sealed.event.source.value}"
        )
        raise SchemaError(msg)
