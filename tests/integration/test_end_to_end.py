"""Signed events from one inspectorate reach another's programme queue via the router."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer

from consumers.router import HEADER_REASON, HEADER_RULES
from producers.publisher import Publisher
from schemas.envelope import seal, sign_envelope
from schemas.events import ConcernRaised, encode_event
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import SigningKey
from schemas.records import HEADER_EVENT_ID, InboundRecord, OutboundRecord, event_record, header_map
from services.kafka import end_offsets, read_from, transactional_sink
from services.keys_admin import revoke
from services.settings import Settings
from tests.conftest import router_for
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka


def ids(records: Sequence[InboundRecord]) -> list[str]:
    return [header_map(r.headers)[HEADER_EVENT_ID].decode() for r in records]


async def produce_raw(settings: Settings, records: Sequence[OutboundRecord]) -> None:
    """Publish records as they are, bypassing Liaison's producer (as an attacker could)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(r.topic, r.value, key=r.key, headers=list(r.headers))
    finally:
        await producer.stop()


def sealed(event: ConcernRaised, key: SigningKey, settings: Settings) -> OutboundRecord:
    return event_record(event, seal(event, key, utc_now()).envelope, settings.topics)


async def test_ofsted_police_concern_reaches_hmicfrs_ncpi_through_the_router(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    watched = [topics.programme(p) for p in Programme if p is not Programme.JTAI]
    watched += [topics.jtai, topics.unrouted, topics.feed, topics.quarantine]
    start = await end_offsets(kafka, watched)
    event = concern(subject_agencies=["police"], theme="front_door")

    router = router_for(kafka, signing)
    await router.start()
    try:
        async with transactional_sink(kafka, "ofsted") as sink:
            publisher = Publisher(sink, topics, signing["ofsted"], clock=utc_now)
            delivery = await publisher.publish(event)
        assert delivery.offset >= 0

        def done(records: Sequence[InboundRecord]) -> bool:
            return {r.topic for r in records} >= {topics.programme(Programme.NCPI), topics.feed}

        records = await read_from(kafka, start, until=done, timeout_s=30)
    finally:
        await router.stop()

    by_topic = {r.topic: r for r in records}
    assert set(by_topic) == {topics.programme(Programme.NCPI), topics.feed}
    ncpi = by_topic[topics.programme(Programme.NCPI)]
    envelope = json.loads(ncpi.value)
    assert envelope["signatures"][0]["keyid"] == signing["ofsted"].keyid
    assert ncpi.key == b"E08000025"
    headers = header_map(ncpi.headers)
    assert headers[HEADER_EVENT_ID] == str(event.id).encode()
    assert headers[HEADER_RULES] == b"police.ncpi"
    assert headers[HEADER_REASON].startswith(b"concern about police practice")


def tamper(record: OutboundRecord) -> OutboundRecord:
    """The same record with one character of the signed payload changed."""
    doc = json.loads(record.value)
    payload = base64.b64decode(doc["payload"]).replace(b'"severity":2', b'"severity":1')
    doc["payload"] = base64.b64encode(payload).decode()
    return OutboundRecord(record.topic, record.key, json.dumps(doc).encode(), record.headers)


def signed_by_another(event: ConcernRaised, key: SigningKey, settings: Settings) -> OutboundRecord:
    """``event`` (another inspectorate's) signed by hand with ``key``, on the event's topic."""
    envelope = sign_envelope(event.type, encode_event(event), key)
    return event_record(event, envelope, settings.topics)


async def test_tampered_and_wrong_inspectorate_records_are_quarantined_others_delivered(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.programme(Programme.CLAS), topics.quarantine])
    ofsted = signing["ofsted"]
    before, middle, impostor, after = (concern(subject_agencies=["health"]) for _ in range(4))
    tampered = tamper(sealed(middle, ofsted, kafka))
    wrong = signed_by_another(impostor, signing["hmi_prisons"], kafka)
    await produce_raw(
        kafka, [sealed(before, ofsted, kafka), tampered, wrong, sealed(after, ofsted, kafka)]
    )

    router = router_for(kafka, signing)
    await router.start()
    try:

        def done(records: Sequence[InboundRecord]) -> bool:
            return len(records) >= 4

        records = await read_from(kafka, start, until=done, timeout_s=30)
    finally:
        await router.stop()

    clas = [r for r in records if r.topic == topics.programme(Programme.CLAS)]
    assert sorted(ids(clas)) == sorted([str(before.id), str(after.id)])
    refused = [json.loads(r.value) for r in records if r.topic == topics.quarantine]
    assert sorted(body["reason"] for body in refused) == ["bad_signature", "wrong_inspectorate"]
    for body in refused:
        assert body["source_topic"] == topics.events(Inspectorate.OFSTED)
        assert body["quarantined_at"]
    assert {bytes.fromhex(body["raw_value_hex"]) for body in refused} == {
        tampered.value,
        wrong.value,
    }


async def test_revocation_is_judged_by_the_brokers_append_time(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.programme(Programme.CLAS), topics.quarantine])
    ofsted = signing["ofsted"]
    before, after = (concern(subject_agencies=["health"]) for _ in range(2))
    async with transactional_sink(kafka, "ofsted") as sink:
        publisher = Publisher(sink, topics, ofsted, clock=utc_now)
        await publisher.publish(before)
        await revoke(kafka, ofsted.keyid, "test: key compromised", utc_now())  # root-signed
        # Sealed now, by the stolen key, with a claimed occurred_at long before revocation:
        await publisher.publish(after.model_copy(update={"occurred_at": before.occurred_at}))

    router = router_for(kafka, signing)
    await router.start()
    try:
        records = await read_from(kafka, start, until=lambda r: len(r) >= 2, timeout_s=30)
    finally:
        await router.stop()
    assert ids([r for r in records if r.topic == topics.programme(Programme.CLAS)]) == [
        str(before.id)
    ]
    (refused,) = [json.loads(r.value) for r in records if r.topic == topics.quarantine]
    assert refused["reason"] == "key_revoked"
    assert refused["timestamp_type"] == 1  # the broker's LogAppendTime was judged
