"""Issue 9 on the real broker: a hostile corpus in one batch between good events from
several inspectorates. Every good event is delivered exactly once, every bad record is
quarantined and audited with a reason code, the router and the audit service keep
running, and ``audit verify`` is OK."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from schemas.audit import EventQuarantined, decode_record, unsealed
from schemas.envelope import seal, sign_envelope
from schemas.events import (
    CONCERN_RAISED,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    encode_event,
)
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import AUDIT, SigningKey
from schemas.records import HEADER_EVENT_ID, InboundRecord, OutboundRecord, event_record, header_map
from services.audit_service import AuditService, open_store
from services.kafka import end_offsets, read_from
from services.settings import Settings
from tests.conftest import router_for, run_liaison
from tests.factories import concern, good_practice, utc_now
from tests.integration.test_end_to_end import produce_raw
from tests.unit.test_router_step import CHILD, HOSTILE

pytestmark = pytest.mark.kafka

READ_ALL_S = 8.0
"""How long a final read of everything committed takes at most, with room for a loaded
machine (the amounts are tiny; the time is for a consumer to start and fetch)."""


def signed(payload: bytes, key: SigningKey, settings: Settings) -> OutboundRecord:
    """A payload of any content, validly signed by ``key``, on the key owner's topic."""
    return OutboundRecord(
        topic=settings.topics.events(Inspectorate(key.owner)),
        key=b"E08000025",
        value=sign_envelope(CONCERN_RAISED, payload, key),
    )


def good(
    event: ConcernRaised | ExceptionalPracticeIdentified, key: SigningKey, settings: Settings
) -> OutboundRecord:
    return event_record(event, seal(event, key, utc_now()).envelope, settings.topics)


def hostile(settings: Settings, signing: dict[str, SigningKey]) -> list[bytes]:
    """Every case of issue 9 that reaches the router, and a few more."""
    ofsted = signing["ofsted"]
    clean = json.loads(encode_event(concern(summary="clean")))
    smuggled = encode_event(concern(summary="clean")).replace(
        b'"summary":"clean"', b'"summary":"NHS 943 476 5919, born 1/2/2019","summary":"clean"'
    )
    lax = [
        {"immediate_risk": "false"},
        {"severity": 2.0},
        {"id": uuid.uuid4().hex},
        {"occurred_at": "2026-10-14 09:30:00+01:00"},
        {"occurred_at": "0001-01-01T00:00:00+23:59"},
        {CHILD: "an unknown field named like a child"},
    ]
    signed_payloads = [smuggled] + [json.dumps(clean | change).encode() for change in lax]
    return [
        *HOSTILE.values(),
        b"x" * 200_000,  # over the envelope limit
        b"y" * 900_000,  # near Kafka's own limit: its hex must not exceed it in quarantine
        *(signed(p, ofsted, settings).value for p in signed_payloads),
    ]


async def test_a_hostile_batch_loses_nothing_and_stops_nothing(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    first = concern(subject_agencies=["police"])
    police = {"subject_agencies": ["police"]}
    goods = [
        good(first, signing["ofsted"], kafka),
        good(concern(source="cqc", programme="clas", **police), signing["cqc"], kafka),
        good(good_practice(source="hmicfrs", programme="peel"), signing["hmicfrs"], kafka),
        good(concern(source="hmi_prisons", programme="custody", **police),
             signing["hmi_prisons"], kafka),
    ]  # fmt: skip
    bad = hostile(kafka, signing)
    # CQC's key signing an event that reuses an Ofsted event's id: an id conflict.
    conflict = good(concern(id=first.id, source="cqc", programme="clas"), signing["cqc"], kafka)
    # A junk record on the feed claiming a later event's id: it must not hide that event.
    later = concern(source="hmi_probation", programme="youth_justice", subject_agencies=["police"])
    junk_feed = OutboundRecord(
        topics.feed, b"E08000025", b"junk", ((HEADER_EVENT_ID, str(later.id).encode()),)
    )
    ofsted_topic = topics.events(Inspectorate.OFSTED)
    batch = [goods[0], goods[1]]
    batch += [OutboundRecord(ofsted_topic, b"E08000025", value) for value in bad]
    batch += [goods[2], goods[3]]
    watched = [topics.feed, topics.quarantine, topics.programme(Programme.NCPI), topics.audit]
    start = await end_offsets(kafka, watched)
    # Everything is on the log before the router starts, so it comes in one batch.
    await produce_raw(kafka, [junk_feed, *batch])

    router = router_for(kafka, signing)
    await router.start()
    try:

        def arrived(wanted: int) -> Callable[[Sequence[InboundRecord]], bool]:
            # Feed copies (and the junk record) and quarantined records.
            return lambda records: (
                sum(r.topic in {topics.feed, topics.quarantine} for r in records) >= wanted
            )

        await read_from(kafka, start, until=arrived(len(goods) + 1 + len(bad)), timeout_s=60)
        # The router is still routing after the batch: a later event is delivered too, and
        # CQC's event reusing the (by now routed) Ofsted event's id is an id conflict.
        await produce_raw(kafka, [conflict, good(later, signing["hmi_probation"], kafka)])
        bad.append(conflict.value)
        await read_from(kafka, start, until=arrived(len(goods) + 2 + len(bad)), timeout_s=60)
        assert not router.failed.is_set()
    finally:
        await router.stop()
    # Everything the router committed, read whole (a duplicate would show up here).
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=READ_ALL_S)

    check_delivered(kafka, records, [*goods, good(later, signing["hmi_probation"], kafka)], bad)
    audits = [decode_record(unsealed(r.value) or b"") for r in records if r.topic == topics.audit]
    refused = [a for a in audits if isinstance(a, EventQuarantined)]
    assert len(refused) == len(bad)
    reasons = Counter(a.reason for a in refused)
    assert reasons["duplicate_key"] >= 2  # the envelope and the signed payload
    assert reasons["schema_invalid"] == 6
    assert reasons["id_conflict"] == 1
    assert reasons["oversized"] == 2
    assert all(a.raw_sha256 for a in refused)
    permanent = b"\n".join(r.value for r in records if r.topic == topics.audit)
    assert CHILD.encode() not in permanent
    assert b"943 476 5919" not in permanent
    await audit_service_stores_and_verifies(kafka, signing)


def check_delivered(
    settings: Settings,
    records: Sequence[InboundRecord],
    goods: Sequence[OutboundRecord],
    bad: Sequence[bytes],
) -> None:
    """Each good event on the feed exactly once, the police ones in NCPI; each bad one in
    quarantine."""
    topics = settings.topics
    feed = [r for r in records if r.topic == topics.feed and r.value != b"junk"]
    delivered = Counter(header_map(r.headers)[HEADER_EVENT_ID].decode() for r in feed)
    assert delivered == Counter(header_map(g.headers)[HEADER_EVENT_ID].decode() for g in goods)
    ncpi = [r for r in records if r.topic == topics.programme(Programme.NCPI)]
    assert len(ncpi) == 4  # the police concerns of Ofsted, CQC, HMI Prisons, HMI Probation
    quarantined = [r for r in records if r.topic == topics.quarantine]
    assert len(quarantined) == len(bad)


async def audit_service_stores_and_verifies(
    settings: Settings, signing: dict[str, SigningKey]
) -> str:
    """The audit service stores every record it can parse, and the auditor's check
    agrees; what the check printed."""
    on_log = await read_from(
        settings, {(settings.topics.audit, 0): 0}, until=lambda _: False, timeout_s=READ_ALL_S
    )
    records = sum(record.parsed for record in on_log)
    with open_store(settings) as store:
        service = AuditService(settings, store, signing[AUDIT])
        await service.start()
        try:
            for _ in range(150):
                if store.size() >= records:
                    break
                await asyncio.sleep(0.2)
        finally:
            await service.stop()
        assert store.size() == records
    verified = await run_liaison(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout
    return verified.stdout


async def write_unparseable(settings: Settings, topic: str, count: int) -> None:
    """``count`` records with a header name that is not UTF-8, in one producer batch."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration._unparseable",
        settings.bootstrap_servers, topic, "E08000025", str(count),
        env={**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out + err).decode()


async def test_a_record_the_kafka_client_cannot_parse_is_quarantined_not_a_stop(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    ofsted_topic = topics.events(Inspectorate.OFSTED)
    before = concern(subject_agencies=["police"])
    after = concern(subject_agencies=["police"])
    watched = [topics.feed, topics.quarantine, topics.audit]
    start = await end_offsets(kafka, watched)
    await produce_raw(kafka, [good(before, signing["ofsted"], kafka)])
    await write_unparseable(kafka, ofsted_topic, 3)  # one producer batch of three
    await produce_raw(kafka, [good(after, signing["ofsted"], kafka)])

    router = router_for(kafka, signing)
    await router.start()
    try:

        def arrived(records: Sequence[InboundRecord]) -> bool:
            return sum(r.topic in {topics.feed, topics.quarantine} for r in records) >= 5

        records = await read_from(kafka, start, until=arrived, timeout_s=60)
        assert not router.failed.is_set()
    finally:
        await router.stop()

    feed = [r for r in records if r.topic == topics.feed]
    assert [header_map(r.headers)[HEADER_EVENT_ID] for r in feed] == [
        str(before.id).encode(),
        str(after.id).encode(),
    ]
    audits = [decode_record(unsealed(r.value) or b"") for r in records if r.topic == topics.audit]
    refused = [a for a in audits if isinstance(a, EventQuarantined)]
    assert [a.reason for a in refused] == ["unparseable"] * 3
    assert len({a.offset for a in refused}) == 3
    await audit_service_stores_and_verifies(kafka, signing)


async def route_one(settings: Settings, signing: dict[str, SigningKey]) -> None:
    """Publish one event and route it (so its audit records are on the log)."""
    start = await end_offsets(settings, [settings.topics.feed])
    await produce_raw(settings, [good(concern(), signing["ofsted"], settings)])
    router = router_for(settings, signing)
    await router.start()
    try:
        await read_from(settings, start, until=lambda r: len(r) >= 1, timeout_s=60)
    finally:
        await router.stop()


async def test_the_audit_service_and_verify_judge_an_unparseable_audit_record(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    await route_one(kafka, signing)
    await write_unparseable(kafka, kafka.topics.audit, 2)
    await route_one(kafka, signing)
    verified = await audit_service_stores_and_verifies(kafka, signing)
    assert "cannot parse" in verified
    with open_store(kafka) as store:
        assert store.invalid_count() == 0  # no leaf: nothing of them can be read
