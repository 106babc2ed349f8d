"""The router closes the loop on the real broker: an outcome goes back to the publisher
and into the feed, a "not progressing" review raises a JTAI consideration with another
inspectorate's concern, and every routed record carries the event's CloudEvents headers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from consumers.router import HEADER_REASON, HEADER_RULES
from producers.publisher import Publisher
from schemas.audit import OutcomeGiven, unsealed
from schemas.events import (
    ConcernRaised,
    InspectorateEvent,
    RecommendationMade,
    RecommendationReviewed,
)
from schemas.inspectorates import Programme
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED, JtaiConsiderationRequested
from schemas.keys import SigningKey
from schemas.outcomes import OutcomeRecorded
from schemas.records import (
    HEADER_EVENT_ID,
    HEADER_TYPE,
    InboundRecord,
    header_map,
    signed_headers,
    signed_record,
)
from schemas.route import check_route
from schemas.signed import JTAI_TOPIC_TYPES, open_signed, seal_signed
from services.audit_log import audit_outbound
from services.kafka import end_offsets, read_from, transactional_sink
from services.settings import Settings
from services.trust import load_trust
from tests.conftest import router_for
from tests.factories import concern, utc_now
from tests.loop_factories import outcome_recorded, recommendation, review

pytestmark = pytest.mark.kafka

LEEDS = "E08000035"


def event_id(record: InboundRecord) -> str:
    return header_map(record.headers).get(HEADER_EVENT_ID, b"").decode()


def audit_documents(records: Sequence[InboundRecord], audit_topic: str) -> list[dict[str, Any]]:
    return [json.loads(unsealed(r.value) or b"null") for r in records if r.topic == audit_topic]


async def publish_findings(
    settings: Settings, keys: dict[str, SigningKey], events: Sequence[InspectorateEvent]
) -> None:
    """Each event by its inspectorate's Publisher, with its event.published record."""
    for event in events:
        async with transactional_sink(settings, event.source.value) as sink:
            key = keys[event.source.value]
            await Publisher(sink, settings.topics, key, clock=utc_now).publish(event)


async def publish_outcome(settings: Settings, key: SigningKey, outcome: OutcomeRecorded) -> bytes:
    """The receiving inspectorate's outcome on liaison.outcomes, sealed with its key, and
    its outcome.recorded audit record, in one transaction (as ``inbox decide`` does)."""
    sealed = seal_signed(outcome, key, utc_now())
    given = OutcomeGiven(
        at=utc_now(),
        actor=f"inspectorate:{key.owner}",
        event_ids=(outcome.finding_id, outcome.id),
        outcome_id=outcome.id,
        programme=outcome.programme,
        outcome=outcome.outcome,
    )
    async with transactional_sink(settings, key.owner) as sink, sink.transaction() as t:
        sent = [
            await t.send(signed_record(settings.topics.outcomes, outcome, sealed.envelope)),
            await t.send(audit_outbound(settings, given, key)),
        ]
        for delivery in sent:
            await delivery
    return sealed.envelope


def is_consideration(record: InboundRecord) -> bool:
    return header_map(record.headers).get(HEADER_TYPE) == JTAI_CONSIDERATION_REQUESTED.encode()


@dataclass(frozen=True, slots=True)
class Loop:
    """What one walk round the loop published."""

    ofsted: ConcernRaised
    made: RecommendationMade
    reviewed: RecommendationReviewed
    recorded: OutcomeRecorded


def the_loop(now: dt.datetime) -> Loop:
    # Ofsted's concern about the police and neglect in Leeds: to HMICFRS's NCPI.
    ofsted = concern(
        area=LEEDS, subject_agencies=["police"], theme="neglect",
        occurred_at=now - dt.timedelta(days=20),
    )  # fmt: skip
    # HMICFRS's recommendation to West Yorkshire Police and its review: to Ofsted's ILACS;
    # the review, not progressing, to the JTAI queue too.
    made = recommendation(area=LEEDS, occurred_at=now - dt.timedelta(days=10))
    reviewed = review(
        area=LEEDS, recommendation_id=made.id, progress="not_progressing",
        occurred_at=now - dt.timedelta(days=1),
    )  # fmt: skip
    # HMICFRS's NCPI says what it did with Ofsted's concern.
    recorded = outcome_recorded(
        area=LEEDS, finding_id=ofsted.id, occurred_at=now - dt.timedelta(minutes=1)
    )
    return Loop(ofsted, made, reviewed, recorded)


async def test_outcome_goes_back_and_a_not_progressing_review_counts_towards_a_jtai(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    ilacs, ncpi = topics.programme(Programme.ILACS), topics.programme(Programme.NCPI)
    watched = [ilacs, ncpi, topics.jtai, topics.feed, topics.audit, topics.quarantine]
    start = await end_offsets(kafka, watched)
    loop = the_loop(utc_now())
    outcome_id = str(loop.recorded.id)

    def reached_ncpi(records: Sequence[InboundRecord]) -> bool:
        return any(r.topic == ncpi and event_id(r) == str(loop.ofsted.id) for r in records)

    def complete(records: Sequence[InboundRecord]) -> bool:
        seen = {(r.topic, event_id(r)) for r in records}
        audited = any(
            d["action"] == "event.routed" and outcome_id in d["event_ids"]
            for d in audit_documents(records, topics.audit)
        )
        return (
            {(ilacs, outcome_id), (topics.feed, outcome_id)} <= seen
            and any(is_consideration(r) for r in records)
            and audited
        )

    router = router_for(kafka, signing)
    await router.start()
    try:
        await publish_findings(kafka, signing, [loop.ofsted, loop.made, loop.reviewed])
        await read_from(kafka, start, until=reached_ncpi, timeout_s=30)
        envelope = await publish_outcome(kafka, signing["hmicfrs"], loop.recorded)
        records = await read_from(kafka, start, until=complete, timeout_s=60)
    finally:
        await router.stop()

    assert not [r for r in records if r.topic == topics.quarantine]
    check_outcome_went_back(kafka, records, loop, envelope)
    check_routed_headers(kafka, records, loop)
    await check_routes(kafka, records)
    await check_consideration(kafka, records, loop)
    check_audit(kafka, records, loop)


def check_outcome_went_back(
    settings: Settings, records: Sequence[InboundRecord], loop: Loop, envelope: bytes
) -> None:
    """The outcome, bytes unchanged, reached the publisher's programme queue and the feed."""
    topics = settings.topics
    ilacs = topics.programme(Programme.ILACS)
    back = [r for r in records if event_id(r) == str(loop.recorded.id)]
    assert sorted(r.topic for r in back) == sorted([ilacs, topics.feed])
    for r in back:
        assert r.value == envelope
        assert r.key == LEEDS.encode()
    to_ofsted = next(r for r in back if r.topic == ilacs)
    assert header_map(to_ofsted.headers)[HEADER_REASON] == (
        b"outcome of your finding recorded by ncpi"
    )


def check_routed_headers(settings: Settings, records: Sequence[InboundRecord], loop: Loop) -> None:
    """Routed records carry the event's contract and CloudEvents headers, rebuilt from it."""
    topics = settings.topics
    ilacs, ncpi = topics.programme(Programme.ILACS), topics.programme(Programme.NCPI)
    by_id: dict[str, Any] = {
        str(e.id): e for e in (loop.ofsted, loop.made, loop.reviewed, loop.recorded)
    }
    routed = [r for r in records if r.topic in {ilacs, ncpi, topics.jtai, topics.feed}]
    for r in routed:
        if event_id(r) in by_id:  # (the consideration is the router's own: checked apart)
            expected = dict(signed_headers(by_id[event_id(r)]))
            headers = header_map(r.headers)
            assert {name: headers.get(name) for name in expected} == expected
    assert {(r.topic, event_id(r)) for r in routed if r.topic != topics.feed} >= {
        (ncpi, str(loop.ofsted.id)),
        (ilacs, str(loop.made.id)),
        (ilacs, str(loop.reviewed.id)),
        (topics.jtai, str(loop.reviewed.id)),
    }
    (review_to_jtai,) = [
        r for r in routed if r.topic == topics.jtai and event_id(r) == str(loop.reviewed.id)
    ]
    assert header_map(review_to_jtai.headers)[HEADER_RULES] == b"review.not_progressing.jtai"


async def check_routes(settings: Settings, records: Sequence[InboundRecord]) -> None:
    """Every record the router put on a programme's queue carries its signed route, which
    verifies under the bus key at the broker's append time and names that record."""
    topics = settings.topics
    queues = {topics.programme(p) for p in Programme}
    trust = await load_trust(settings)
    queued = [r for r in records if r.topic in queues and not is_consideration(r)]
    assert queued
    for r in queued:
        route = check_route(r, trust, utc_now(), event_id=event_id(r))
        headers = header_map(r.headers)
        assert route.reason.encode() == headers[HEADER_REASON]
        assert ",".join(route.rules).encode() == headers.get(HEADER_RULES, b"")


async def check_consideration(
    settings: Settings, records: Sequence[InboundRecord], loop: Loop
) -> None:
    """The review raised a JTAI consideration together with Ofsted's concern."""
    (record,) = [r for r in records if is_consideration(r)]
    trust = await load_trust(settings)
    consideration = open_signed(record, trust, utc_now(), JTAI_TOPIC_TYPES).event
    assert isinstance(consideration, JtaiConsiderationRequested)
    assert set(consideration.contributing_event_ids) == {loop.ofsted.id, loop.reviewed.id}
    assert [i.value for i in consideration.contributing_inspectorates] == ["hmicfrs", "ofsted"]
    assert dict(signed_headers(consideration)).items() <= dict(record.headers).items()


def check_audit(settings: Settings, records: Sequence[InboundRecord], loop: Loop) -> None:
    """Routing of each finding and of the outcome (naming the finding, so `audit who-saw
    <finding>` shows it), the outcome given, and the consideration emitted."""
    topics = settings.topics
    audit = audit_documents(records, topics.audit)
    routed = [d for d in audit if d["action"] == "event.routed"]
    ids = [set(d["event_ids"]) for d in routed]
    for finding in (loop.ofsted, loop.made, loop.reviewed):
        assert {str(finding.id)} in ids
    (outcome_routed,) = [d for d in routed if str(loop.recorded.id) in d["event_ids"]]
    assert set(outcome_routed["event_ids"]) == {str(loop.recorded.id), str(loop.ofsted.id)}
    assert outcome_routed["actor"].startswith("router:")
    assert {d["topic"] for d in outcome_routed["destinations"]} == {
        topics.programme(Programme.ILACS),
        topics.feed,
    }
    assert any(
        d["action"] == "outcome.recorded" and d["actor"] == "inspectorate:hmicfrs" for d in audit
    )
    emitted = [d for d in audit if d["action"] == "jtai.consideration_emitted"]
    assert [set(d["event_ids"]) for d in emitted] == [{str(loop.ofsted.id), str(loop.reviewed.id)}]
