"""Liaison's records are CloudEvents (Kafka protocol binding, binary mode), read with the
official CloudEvents SDK from the real broker, and their ``ce_*`` headers cannot lie."""

from __future__ import annotations

import base64
import json

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from producers.publisher import Publisher
from schemas.envelope import Reason, open_envelope
from schemas.errors import EnvelopeError
from schemas.inspectorates import Inspectorate
from schemas.keys import SigningKey
from schemas.records import CE_CONTENT_TYPE, InboundRecord
from services.kafka import assigned, catch_up, inbound, transactional_sink
from services.settings import Settings
from services.trust import load_trust
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka


async def everything(settings: Settings, topic: str) -> list[InboundRecord]:
    records: list[InboundRecord] = []
    async with assigned(settings, topic) as consumer:
        async for batch in catch_up(consumer):
            records.extend(inbound(raw) for raw in batch)
    return records


def as_message(record: InboundRecord) -> KafkaMessage:
    return KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)


async def test_a_published_record_is_a_cloudevent_the_sdk_reads(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    event = concern(source="ofsted", programme="ilacs")
    async with transactional_sink(kafka, "ofsted") as sink:
        await Publisher(sink, kafka.topics, signing["ofsted"], utc_now).publish(event)

    (record,) = await everything(kafka, kafka.topics.events(Inspectorate.OFSTED))
    read = from_binary(as_message(record), JSONFormat())

    assert read.get_id() == str(event.id)
    assert read.get_type() == event.type == "uk.inspectorate.concern.raised.v1"
    assert read.get_source() == "urn:liaison:ofsted"
    assert read.get_specversion() == "1.0"
    assert read.get_time() == event.occurred_at
    assert read.get_datacontenttype() == CE_CONTENT_TYPE
    # The data is the DSSE envelope, signature intact: its payload is the event's JSON.
    data = read.get_data()
    assert data is not None
    envelope = data if isinstance(data, dict) else json.loads(data)
    assert json.loads(base64.b64decode(envelope["payload"]))["id"] == str(event.id)


async def test_a_ce_header_that_disagrees_with_the_signed_event_is_refused(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    event = concern(source="cqc", programme="clas")
    async with transactional_sink(kafka, "cqc") as sink:
        await Publisher(sink, kafka.topics, signing["cqc"], utc_now).publish(event)
    (record,) = await everything(kafka, kafka.topics.events(Inspectorate.CQC))
    trust = await load_trust(kafka)
    assert open_envelope(record, trust, utc_now()).event.id == event.id

    for name, lie in (("ce_type", b"uk.inspectorate.other.v1"), ("ce_source", b"urn:liaison:x")):
        headers = tuple((n, lie if n == name else v) for n, v in record.headers)
        forged = InboundRecord(
            record.topic, record.partition, record.offset, record.timestamp_ms,
            record.key, record.value, headers, record.timestamp_type,
        )  # fmt: skip
        with pytest.raises(EnvelopeError) as refused:
            open_envelope(forged, trust, utc_now())
        assert refused.value.reason is Reason.HEADER_MISMATCH
