"""Every publication is audited in the same Kafka transaction as its events (real broker).

The ``event.published`` records are judged here straight from ``liaison.audit`` with
``schemas.audit.judge_sealed`` and the bus's trust store, as a reader of the log would,
and matched against the events they name on the events topics (read committed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from producers.publisher import Delivery, Publisher, Transaction, TransactionalSink
from schemas.audit import EventPublished, SealedRecord, judge_sealed
from schemas.envelope import Sealed
from schemas.errors import SchemaError
from schemas.events import ConcernRaised
from schemas.inspectorates import Inspectorate
from schemas.keys import SigningKey
from schemas.records import HEADER_EVENT_ID, InboundRecord, OutboundRecord, header_map
from services.audit_log import audit_outbound
from services.kafka import (
    assigned,
    catch_up,
    end_offsets,
    inbound,
    kafka_sink,
    transactional_sink,
)
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import run_liaison
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

AREAS = ("E08000025", "E10000016", "E06000023", "E08000003", "E09000012")
"""Areas whose keys spread over several partitions of an events topic."""


async def everything(settings: Settings, topic: str) -> list[InboundRecord]:
    """Every committed record of ``topic`` now, as a ``read_committed`` reader sees them."""
    records: list[InboundRecord] = []
    async with assigned(settings, topic) as consumer:
        async for batch in catch_up(consumer):
            records.extend(inbound(raw) for raw in batch)
    return records


@dataclass(frozen=True, slots=True)
class Audited:
    """One ``event.published`` as found on ``liaison.audit``: verified, and its record."""

    sealed: SealedRecord
    record: EventPublished
    raw: InboundRecord


def appended_at(record: InboundRecord) -> dt.datetime:
    """The time Kafka stamped on ``record`` (its append time on a LogAppendTime topic)."""
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


async def publications(settings: Settings) -> list[Audited]:
    """Every committed ``event.published`` on the audit log, each judged against the trust
    store (a value that does not verify fails the test, with its reason)."""
    trust = await load_trust(settings)
    found = []
    for raw in await everything(settings, settings.topics.audit):
        if header_map(raw.headers).get("action") != b"event.published":
            continue
        judged = judge_sealed(raw.value, appended_at(raw), trust)
        assert isinstance(judged, SealedRecord), judged.reason
        assert isinstance(judged.record, EventPublished)
        found.append(Audited(judged, judged.record, raw))
    return found


def event_id(record: InboundRecord) -> str:
    return header_map(record.headers)[HEADER_EVENT_ID].decode()


def assert_each_event_audited_once(
    events: Sequence[InboundRecord], audited: Sequence[Audited], keys: dict[str, SigningKey]
) -> None:
    """One ``event.published`` per event, naming exactly where that event is, signed by
    the key of the event's inspectorate for ``inspectorate:<it>``."""
    where = {(r.topic, r.partition, r.offset): event_id(r) for r in events}
    assert len(where) == len(events)
    named = [(a.record.topic, a.record.partition, a.record.offset) for a in audited]
    assert sorted(named) == sorted(where)  # each event once, nothing else
    for item in audited:
        record = item.record
        (only,) = record.event_ids
        assert str(only) == where[(record.topic, record.partition, record.offset)]
        key = keys[record.inspectorate.value]
        assert item.sealed.key.keyid == key.keyid  # sealed by the inspectorate's own key
        assert item.sealed.key.owner == record.inspectorate.value
        assert record.actor == f"inspectorate:{record.inspectorate.value}"
        assert record.keyid == key.keyid  # the key that signed the envelope
        assert record.topic.endswith(f"liaison.events.{record.inspectorate.value}")


def spread(count: int, source: str = "ofsted") -> list[ConcernRaised]:
    programme = {"ofsted": "ilacs", "cqc": "clas"}[source]
    return [
        concern(source=source, programme=programme, area=AREAS[i % len(AREAS)])
        for i in range(count)
    ]


# -- (b) a publication that fails before its commit leaves nothing visible ------------------


class InjectedError(RuntimeError):
    """The failure the tests inject into a transaction."""


class _Watched:
    """A transaction that notes whether it carried an audit record, and refuses the
    first one if told to."""

    def __init__(self, inner: Transaction, audit_topic: str, *, refuse: bool) -> None:
        self._inner = inner
        self._audit = audit_topic
        self._refuse = refuse
        self.audited = False

    async def send(self, record: OutboundRecord) -> Awaitable[Delivery]:
        if record.topic == self._audit:
            if self._refuse:
                raise InjectedError(record.topic)
            self.audited = True
        return await self._inner.send(record)


class FailingSink:
    """A real transactional sink whose transactions that carry audit records fail before
    they commit. ``where``: ``before_commit``, after every record was sent and
    acknowledged; ``before_audit_records``, when the first audit record is sent (the
    events already acknowledged). A transaction without audit records is not touched, so
    a publisher that committed its events apart from their audit records would show
    them."""

    def __init__(self, inner: TransactionalSink, audit_topic: str, where: str) -> None:
        self._inner = inner
        self._audit = audit_topic
        self._where = where

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._inner.transaction() as transaction:
            watched = _Watched(
                transaction, self._audit, refuse=self._where == "before_audit_records"
            )
            yield watched
            if watched.audited:
                raise InjectedError("before commit")


@pytest.mark.parametrize("where", ["before_commit", "before_audit_records"])
async def test_a_publication_failing_before_its_commit_shows_nothing_and_a_retry_shows_it_once(
    kafka: Settings, signing: dict[str, SigningKey], where: str
) -> None:
    topics = kafka.topics
    ofsted = topics.events(Inspectorate.OFSTED)
    start = await end_offsets(kafka, [ofsted, topics.audit])
    events = spread(12)
    async with transactional_sink(kafka, "ofsted") as sink:
        failing = Publisher(
            FailingSink(sink, topics.audit, where), topics, signing["ofsted"], utc_now
        )
        sealed = [failing.seal(e) for e in events]
        with pytest.raises(InjectedError):
            await failing.publish_batch(sealed)

        # The events were written (the log grew: the records and the abort marker) ...
        after = await end_offsets(kafka, [ofsted, topics.audit])
        grown = sum(after[tp] - start[tp] for tp in after if tp[0] == ofsted)
        assert grown > len(events)
        # ... and a read_committed reader sees neither them nor any audit record.
        assert await everything(kafka, ofsted) == []
        assert await publications(kafka) == []

        # The same sealed events again, through the same producer: published once.
        retried = await Publisher(sink, topics, signing["ofsted"], utc_now).publish_batch(sealed)

    committed = await everything(kafka, ofsted)
    assert sorted(map(event_id, committed)) == sorted(str(e.id) for e in events)
    audited = await publications(kafka)
    assert_each_event_audited_once(committed, audited, signing)
    assert sorted((p.partition, p.offset) for p in retried) == sorted(
        (a.record.partition, a.record.offset) for a in audited
    )


# -- (c) the library path --------------------------------------------------------------------


async def test_the_library_publisher_writes_event_published_with_the_event(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    event = concern(source="cqc", programme="clas")
    key = signing["cqc"]
    async with transactional_sink(kafka, "cqc") as sink:
        delivery = await Publisher(sink, kafka.topics, key, utc_now).publish(event)

    (stored,) = await everything(kafka, kafka.topics.events(Inspectorate.CQC))
    assert (stored.partition, stored.offset) == (delivery.partition, delivery.offset)
    (audited,) = await publications(kafka)
    assert_each_event_audited_once([stored], [audited], signing)
    # The record is the one services.audit_log builds for it, to the byte.
    expected = audit_outbound(kafka, audited.record, key)
    assert (audited.raw.key, audited.raw.value) == (expected.key, expected.value)
    assert audited.raw.headers == expected.headers


async def test_the_publisher_cannot_be_built_on_a_sink_without_transactions(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    async with kafka_sink(kafka) as plain:
        with pytest.raises(TypeError, match="TransactionalSink"):
            Publisher(plain, kafka.topics, signing["cqc"], utc_now)  # type: ignore[arg-type]  # the point


async def test_a_batch_with_another_inspectorates_event_is_refused_before_anything_is_sent(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    async with transactional_sink(kafka, "ofsted") as sink:
        ofsted = Publisher(sink, topics, signing["ofsted"], utc_now)
        cqc = Publisher(sink, topics, signing["cqc"], utc_now)
        mixed: list[Sealed] = [ofsted.seal(concern()), cqc.seal(spread(1, "cqc")[0])]
        with pytest.raises(SchemaError, match="a key of ofsted cannot publish"):
            await ofsted.publish_batch(mixed)
    # Not even an aborted transaction: the topic (fresh for this test) is empty.
    assert set((await end_offsets(kafka, [topics.events(Inspectorate.OFSTED)])).values()) == {0}
    assert await publications(kafka) == []


# -- (d) the demo --------------------------------------------------------------------------


async def test_the_demo_writes_event_published_for_each_event_it_publishes(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    demo = await run_liaison(kafka, "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr

    events = [
        record
        for inspectorate in Inspectorate
        for record in await everything(kafka, kafka.topics.events(inspectorate))
    ]
    assert len(events) == 15  # the scenario's findings
    assert {r.topic for r in events} == {kafka.topics.events(i) for i in Inspectorate}
    assert_each_event_audited_once(events, await publications(kafka), signing)
