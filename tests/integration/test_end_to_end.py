"""An event published by one inspectorate reaches another's programme queue via the router."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer

from consumers.router import HEADER_REASON, HEADER_RULES
from producers.publisher import Publisher
from schemas.inspectorates import Inspectorate, Programme
from schemas.records import HEADER_EVENT_ID, InboundRecord, event_record, header_map
from services.kafka import end_offsets, kafka_sink, read_from
from services.router_service import build_router
from services.settings import Settings
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka


def ids(records: Sequence[InboundRecord]) -> list[str]:
    return [header_map(r.headers)[HEADER_EVENT_ID].decode() for r in records]


async def test_ofsted_police_concern_reaches_hmicfrs_ncpi_through_the_router(
    kafka: Settings,
) -> None:
    topics = kafka.topics
    watched = [topics.programme(p) for p in Programme if p is not Programme.JTAI] + [
        topics.jtai,
        topics.unrouted,
        topics.feed,
        topics.quarantine,
    ]
    start = await end_offsets(kafka, watched)
    event = concern(subject_agencies=["police"], theme="front_door")

    router = build_router(kafka)
    await router.start()
    try:
        async with kafka_sink(kafka) as sink:
            delivery = await Publisher(sink, topics, clock=utc_now).publish(event)
        assert delivery.offset >= 0

        def done(records: Sequence[InboundRecord]) -> bool:
            return {r.topic for r in records} >= {topics.programme(Programme.NCPI), topics.feed}

        records = await read_from(kafka, start, until=done, timeout_s=30)
    finally:
        await router.stop()

    by_topic = {r.topic: r for r in records}
    assert set(by_topic) == {topics.programme(Programme.NCPI), topics.feed}
    ncpi = by_topic[topics.programme(Programme.NCPI)]
    assert ncpi.value == event_record(event, topics).value  # unchanged bytes
    assert ncpi.key == b"E08000025"
    headers = header_map(ncpi.headers)
    assert headers[HEADER_EVENT_ID] == str(event.id).encode()
    assert headers[HEADER_RULES] == b"police.ncpi"
    assert headers[HEADER_REASON].startswith(b"concern about police practice")


async def test_a_poison_record_is_quarantined_and_the_stream_keeps_flowing(
    kafka: Settings,
) -> None:
    topics = kafka.topics
    watched = [topics.programme(Programme.CLAS), topics.quarantine]
    start = await end_offsets(kafka, watched)
    before = concern(subject_agencies=["health"])
    after = concern(subject_agencies=["health"])

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for event in (before, None, after):
            if event is None:
                await producer.send_and_wait(
                    topics.events(Inspectorate.OFSTED), b"{not an event", key=b"E08000025"
                )
                continue
            record = event_record(event, topics)
            await producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
    finally:
        await producer.stop()

    router = build_router(kafka)
    await router.start()
    try:

        def done(records: Sequence[InboundRecord]) -> bool:
            return len(records) >= 3

        records = await read_from(kafka, start, until=done, timeout_s=30)
    finally:
        await router.stop()

    clas = [r for r in records if r.topic == topics.programme(Programme.CLAS)]
    assert sorted(ids(clas)) == sorted([str(before.id), str(after.id)])
    (refused,) = [r for r in records if r.topic == topics.quarantine]
    body = json.loads(refused.value)
    assert body["reason"].startswith("schema_invalid")
    assert bytes.fromhex(body["raw_value_hex"]) == b"{not an event"
    assert body["source_topic"] == topics.events(Inspectorate.OFSTED)
