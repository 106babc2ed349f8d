"""The router closes the loop (issue 11): outcomes and overdue reminders from
``liaison.outcomes`` go back to the publisher, reviews count towards a JTAI, routed records
carry CloudEvents headers, and ``Router.step`` still never raises."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.router import HEADER_REASON, HEADER_RULES, BatchOutcome, Router, plan, plan_outcome
from schemas.audit import (
    ConsiderationEmitted,
    DuplicateIgnored,
    EventQuarantined,
    EventRouted,
    EventUnrouted,
    decode_record,
    encode_record,
)
from schemas.envelope import open_envelope, sign_envelope
from schemas.errors import EnvelopeError
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.outcomes import OUTCOME_OVERDUE, OUTCOME_RECORDED
from schemas.records import (
    InboundRecord,
    OutboundRecord,
    event_headers,
    header_map,
    signed_headers,
)
from schemas.route import HEADER_ROUTE, check_route
from schemas.signed import encode_signed, open_signed
from schemas.topics import Topics
from services.rules_file import load_rules
from tests.factories import NOW, concern, inbound, key_for, sealed_inbound, trust_of
from tests.loop_factories import (
    outcome_overdue,
    outcome_recorded,
    recommendation,
    review,
    signed_inbound,
)

TOPICS = Topics("t.")
OFSTED = key_for("ofsted")
CQC = key_for("cqc")
HMICFRS = key_for("hmicfrs")
BUS = key_for("liaison")
TRUST = trust_of(OFSTED, CQC, HMICFRS, BUS)
RULES = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml")
NOTE = "The scheduling board brought the next visit forward after reading this."
"""A team's own words: they must never reach an audit record or a log line."""
CHILD = "Amelia Jones 943 476 5919"
"""Text standing for a child's details in forged input: never in an audit record or log."""


def router() -> Router:
    return Router(TOPICS, RULES, BUS, "router:0")


def on_events(event: Any, key: Any) -> InboundRecord:
    return signed_inbound(event, key, topic=TOPICS.events(event.source))


def on_outcomes(event: Any, key: Any) -> InboundRecord:
    return signed_inbound(event, key, topic=TOPICS.outcomes)


def verdicts(outcome: BatchOutcome) -> list[Any]:
    kinds = (EventQuarantined, DuplicateIgnored, EventRouted, EventUnrouted)
    return [a for a in outcome.audit if isinstance(a, kinds)]


def said(outcome: BatchOutcome) -> str:
    return "\n".join(encode_record(a).decode() for a in outcome.audit) + "\n".join(
        repr(line) for line in outcome.logs
    )


# -- findings: CloudEvents headers, finding types only ---------------------------------------------


def test_routed_records_carry_the_event_s_contract_and_cloudevents_headers() -> None:
    event = concern(subject_agencies=["police"], finding="cause_of_concern")
    record = sealed_inbound(event, OFSTED)  # published before ce_* headers existed
    decision = plan(record, TOPICS, TRUST, NOW, RULES.rules, bus_key=BUS)
    assert decision.refused is None
    for out in decision.outbound:
        names = [name for name, _ in out.headers]
        assert tuple(out.headers[: len(signed_headers(event))]) == signed_headers(event)
        router_s = {HEADER_RULES, HEADER_REASON, HEADER_ROUTE}
        assert set(names) - {n for n, _ in signed_headers(event)} <= router_s
        headers = header_map(out.headers)
        assert headers["ce_id"] == str(event.id).encode()
        assert headers["ce_source"] == b"urn:liaison:ofsted"
        assert headers["ce_type"] == event.type.encode()
        assert headers["ce_specversion"] == b"1.0"
        assert out.value == record.value


def test_a_record_whose_cloudevents_headers_lie_is_quarantined() -> None:
    event = concern(subject_agencies=["police"])
    record = on_events(event, OFSTED)
    lying = tuple((n, b"urn:liaison:cqc" if n == "ce_source" else v) for n, v in record.headers)
    outcome = router().step([inbound(record.value, lying)], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "header_mismatch"


def test_an_outcome_published_on_an_events_topic_is_quarantined_as_wrong_topic() -> None:
    misplaced = signed_inbound(
        outcome_recorded(), HMICFRS, topic=TOPICS.events(Inspectorate.HMICFRS)
    )
    outcome = router().step([misplaced], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "wrong_topic"
    assert [o.topic for o in outcome.outbound] == [TOPICS.quarantine]


def test_a_finding_published_on_the_outcomes_topic_is_quarantined_as_wrong_topic() -> None:
    outcome = router().step([on_outcomes(concern(), OFSTED)], TRUST, NOW)
    (verdict,) = verdicts(outcome)
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "wrong_topic"
    assert verdict.source_topic == TOPICS.outcomes


def test_recommendations_and_reviews_are_routed_by_the_rules() -> None:
    made = recommendation()
    reviewed = review(recommendation_id=made.id)
    outcome = router().step([on_events(made, HMICFRS), on_events(reviewed, HMICFRS)], TRUST, NOW)
    routed = verdicts(outcome)
    assert [type(v) for v in routed] == [EventRouted, EventRouted]
    assert {d.topic for d in routed[1].destinations} == {
        TOPICS.programme(Programme.ILACS),
        TOPICS.jtai,
        TOPICS.feed,
    }
    jtai = next(o for o in outcome.outbound if o.topic == TOPICS.jtai)
    assert header_map(jtai.headers)[HEADER_RULES] == b"review.not_progressing.jtai"


# -- route attestations ----------------------------------------------------------------------------


def consumed(out: OutboundRecord) -> InboundRecord:
    """``out`` as a reader of its topic receives it (appended by the broker at NOW)."""
    return inbound(out.value, out.headers, topic=out.topic)


QUEUES = ("t.liaison.programme.", TOPICS.jtai, TOPICS.unrouted)


def test_every_record_to_a_queue_carries_the_route_the_router_signed() -> None:
    police = concern(subject_agencies=["police"], finding="cause_of_concern", severity=4)
    nowhere = concern(subject_agencies=["education"])
    reviewed = review()
    recorded = outcome_recorded(finding_id=police.id)
    reminder = outcome_overdue(finding_id=nowhere.id)
    outcome = router().step(
        [
            on_events(police, OFSTED),
            on_events(nowhere, OFSTED),
            on_events(reviewed, HMICFRS),
            on_outcomes(recorded, HMICFRS),
            on_outcomes(reminder, BUS),
        ],
        TRUST,
        NOW,
    )
    queued = [o for o in outcome.outbound if o.topic.startswith(QUEUES)]
    considerations = [
        o
        for o in queued
        if header_map(o.headers).get("type") == JTAI_CONSIDERATION_REQUESTED.encode()
    ]
    assert considerations  # the severity 4 concern raised one: published, not routed
    routed = [o for o in queued if o not in considerations]
    assert {o.topic for o in routed} >= {
        "t.liaison.programme.ncpi", "t.liaison.programme.peel", "t.liaison.programme.ilacs",
        TOPICS.jtai, TOPICS.unrouted,
    }  # fmt: skip
    for out in routed:
        headers = header_map(out.headers)
        event_id = headers["event_id"].decode()
        route = check_route(consumed(out), TRUST, NOW, event_id=event_id)
        assert route.topic == out.topic
        assert route.reason.encode() == headers[HEADER_REASON]
        assert ",".join(route.rules).encode() == headers.get(HEADER_RULES, b"")
        assert route.event_type == headers["type"].decode()
    by_id = {header_map(o.headers)["event_id"]: o for o in routed if o.topic == TOPICS.unrouted}
    unrouted = check_route(
        consumed(by_id[str(nowhere.id).encode()]), TRUST, NOW, event_id=nowhere.id
    )
    assert (unrouted.rules, unrouted.reason) == ((), "no routing rule matched")
    for out in (o for o in outcome.outbound if o.topic == TOPICS.feed):
        assert HEADER_ROUTE not in header_map(out.headers)
    for out in considerations:
        assert HEADER_ROUTE not in header_map(out.headers)


def test_a_routed_outcome_s_route_names_its_signer_and_no_rule() -> None:
    recorded = outcome_recorded()
    decision = plan_outcome(on_outcomes(recorded, HMICFRS), TOPICS, TRUST, NOW, bus_key=BUS)
    back = consumed(decision.outbound[0])
    route = check_route(back, TRUST, NOW, event_id=recorded.id)
    assert (route.signer, route.rules, route.event_type) == ("hmicfrs", (), OUTCOME_RECORDED)
    assert route.reason == "outcome of your finding recorded by ncpi"
    assert HEADER_RULES not in header_map(back.headers)


def test_a_routed_record_copied_to_another_queue_has_no_valid_route() -> None:
    event = concern(subject_agencies=["police"])
    (ncpi,) = [
        o
        for o in plan(
            on_events(event, OFSTED), TOPICS, TRUST, NOW, RULES.rules, bus_key=BUS
        ).outbound
        if o.topic == "t.liaison.programme.ncpi"
    ]
    copy = inbound(ncpi.value, ncpi.headers, topic="t.liaison.programme.peel")
    with pytest.raises(EnvelopeError) as caught:
        check_route(copy, TRUST, NOW, event_id=event.id)
    assert caught.value.reason == "route_unproven"


# -- outcomes and reminders ------------------------------------------------------------------------


def test_an_outcome_goes_back_to_the_publisher_s_programme_and_to_the_feed() -> None:
    finding = concern(subject_agencies=["police"])
    recorded = outcome_recorded(finding_id=finding.id, note=NOTE)
    record = on_outcomes(recorded, HMICFRS)
    outcome = router().step([on_events(finding, OFSTED), record], TRUST, NOW)

    back = [o for o in outcome.outbound if o.value == record.value]
    assert [o.topic for o in back] == [TOPICS.programme(recorded.finding_programme), TOPICS.feed]
    assert [o.topic for o in back] == ["t.liaison.programme.ilacs", "t.liaison.feed.areas"]
    for out in back:
        assert out.key == b"E08000025"
        assert tuple(out.headers[: len(signed_headers(recorded))]) == signed_headers(recorded)
    assert header_map(back[0].headers)[HEADER_REASON] == (
        b"outcome of your finding recorded by ncpi"
    )
    assert HEADER_REASON not in header_map(back[1].headers)

    routed = verdicts(outcome)[-1]
    assert isinstance(routed, EventRouted)
    assert routed.event_ids == (recorded.id, finding.id)
    assert routed.inspectorate == "hmicfrs"
    assert {d.topic for d in routed.destinations} == {"t.liaison.programme.ilacs", TOPICS.feed}
    assert NOTE not in said(outcome)


def test_an_overdue_reminder_goes_to_the_publisher_s_programme_only() -> None:
    reminder = outcome_overdue(finding_programme="ilacs")
    record = on_outcomes(reminder, BUS)
    outcome = router().step([record], TRUST, NOW)
    (out,) = outcome.outbound[:1]
    assert [o.topic for o in outcome.outbound] == ["t.liaison.programme.ilacs"]
    assert out.value == record.value
    assert header_map(out.headers)[HEADER_REASON] == (
        b"no outcome recorded by ncpi within 20 working days"
    )
    (routed,) = verdicts(outcome)
    assert isinstance(routed, EventRouted)
    assert routed.event_ids == (reminder.id, reminder.finding_id)
    assert routed.inspectorate == "ofsted"  # the bus's reminder, for Ofsted's finding


def test_a_jtai_finding_s_outcome_goes_back_to_the_jtai_queue() -> None:
    recorded = outcome_recorded(finding_programme="jtai")
    decision = plan_outcome(on_outcomes(recorded, HMICFRS), TOPICS, TRUST, NOW, bus_key=BUS)
    assert [o.topic for o in decision.outbound] == [TOPICS.jtai, TOPICS.feed]


def test_a_repeated_outcome_is_ignored_and_another_signer_s_reuse_is_quarantined() -> None:
    recorded = outcome_recorded()
    reused = outcome_recorded(
        id=recorded.id, source="cqc", programme="clas", finding_source="ofsted"
    )
    outcome = router().step(
        [on_outcomes(recorded, HMICFRS), on_outcomes(recorded, HMICFRS), on_outcomes(reused, CQC)],
        TRUST,
        NOW,
    )
    kinds = [(type(v).__name__, getattr(v, "reason", None)) for v in verdicts(outcome)]
    assert kinds == [
        ("EventRouted", None),
        ("DuplicateIgnored", None),
        ("EventQuarantined", "id_conflict"),
    ]
    duplicate = verdicts(outcome)[1]
    assert duplicate.event_ids == (recorded.id, recorded.finding_id)
    assert sum(o.topic == TOPICS.feed for o in outcome.outbound) == 1


def test_an_outcome_reusing_a_finding_s_id_is_an_id_conflict() -> None:
    finding = concern(source="hmicfrs", programme="ncpi", subject_agencies=["local_authority"])
    clash = outcome_recorded(id=finding.id)
    outcome = router().step([on_events(finding, HMICFRS), on_outcomes(clash, HMICFRS)], TRUST, NOW)
    (_, refused) = verdicts(outcome)
    assert isinstance(refused, EventQuarantined)
    assert refused.reason == "id_conflict"
    assert "another kind" in refused.detail


def test_an_outcome_naming_the_wrong_publisher_of_a_routed_finding_is_quarantined() -> None:
    finding = concern(subject_agencies=["police"])  # Ofsted's
    wrong = outcome_recorded(finding_id=finding.id, finding_source="cqc", finding_programme="clas")
    outcome = router().step([on_events(finding, OFSTED), on_outcomes(wrong, HMICFRS)], TRUST, NOW)
    (_, refused) = verdicts(outcome)
    assert isinstance(refused, EventQuarantined)
    assert refused.reason == "id_conflict"
    assert refused.event_ids == (wrong.id, finding.id)
    assert not any(o.topic == TOPICS.programme(Programme.CLAS) for o in outcome.outbound)


def test_an_outcome_naming_itself_as_its_finding_is_an_id_conflict() -> None:
    itself = outcome_recorded()
    itself = itself.model_copy(update={"finding_id": itself.id})
    (verdict,) = verdicts(router().step([on_outcomes(itself, HMICFRS)], TRUST, NOW))
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "id_conflict"
    assert verdict.event_ids == (itself.id,)


def test_an_outcome_signed_by_another_inspectorate_is_quarantined() -> None:
    forged = sign_envelope(OUTCOME_RECORDED, encode_signed(outcome_recorded()), CQC)
    record = inbound(forged, signed_headers(outcome_recorded()), topic=TOPICS.outcomes)
    (verdict,) = verdicts(router().step([record], TRUST, NOW))
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason in {"wrong_inspectorate", "header_mismatch"}


def test_a_reminder_signed_by_an_inspectorate_is_quarantined() -> None:
    reminder = outcome_overdue()
    forged = sign_envelope(OUTCOME_OVERDUE, encode_signed(reminder), OFSTED)
    record = inbound(forged, signed_headers(reminder), topic=TOPICS.outcomes)
    (verdict,) = verdicts(router().step([record], TRUST, NOW))
    assert isinstance(verdict, EventQuarantined)
    assert verdict.reason == "wrong_inspectorate"


# -- the JTAI watch and replay ---------------------------------------------------------------------


def neglect_concern() -> Any:
    return concern(subject_agencies=["local_authority"], occurred_at=NOW - dt.timedelta(days=3))


def hmicfrs_review(progress: str = "not_progressing") -> Any:
    return review(progress=progress, occurred_at=NOW - dt.timedelta(days=1))


def test_an_ofsted_concern_and_an_hmicfrs_not_progressing_review_raise_a_consideration() -> None:
    ofsted, reviewed = neglect_concern(), hmicfrs_review()
    outcome = router().step([on_events(ofsted, OFSTED), on_events(reviewed, HMICFRS)], TRUST, NOW)
    (emitted,) = [a for a in outcome.audit if isinstance(a, ConsiderationEmitted)]
    assert emitted.event_ids == (ofsted.id, reviewed.id)
    (record,) = [
        o
        for o in outcome.outbound
        if header_map(o.headers).get("type") == JTAI_CONSIDERATION_REQUESTED.encode()
    ]
    assert record.topic == TOPICS.jtai
    consideration = open_signed(
        inbound(record.value, record.headers, topic=TOPICS.jtai), TRUST, NOW, {record_type(record)}
    ).event
    assert header_map(record.headers)["ce_id"] == str(consideration.id).encode()
    assert header_map(record.headers)["ce_source"] == b"urn:liaison:liaison"


def record_type(record: Any) -> str:
    return str(json.loads(record.value)["payloadType"])


def test_an_achieved_review_raises_nothing() -> None:
    outcome = router().step(
        [on_events(neglect_concern(), OFSTED), on_events(hmicfrs_review("achieved"), HMICFRS)],
        TRUST,
        NOW,
    )
    assert not [a for a in outcome.audit if isinstance(a, ConsiderationEmitted)]


def test_replay_remembers_reviews_for_the_watch_and_outcomes_only_by_id() -> None:
    ofsted, reviewed = neglect_concern(), hmicfrs_review()
    recorded = outcome_recorded(finding_id=ofsted.id)
    before = router()
    before.step([on_events(reviewed, HMICFRS), on_outcomes(recorded, HMICFRS)], TRUST, NOW)

    rebuilt = router()
    # What the service reads back from the feed: findings and outcomes, verified.
    rebuilt.remember(open_envelope(on_events(reviewed, HMICFRS), TRUST, NOW))
    rebuilt.remember(open_signed(on_outcomes(recorded, HMICFRS), TRUST, NOW, {OUTCOME_RECORDED}))
    assert rebuilt.routed == 2

    outcome = rebuilt.step([on_outcomes(recorded, HMICFRS), on_events(ofsted, OFSTED)], TRUST, NOW)
    # Ofsted's concern about its own ILACS area routes nowhere else; the watch still sees it.
    assert [type(v) for v in verdicts(outcome)] == [DuplicateIgnored, EventUnrouted]
    (emitted,) = [a for a in outcome.audit if isinstance(a, ConsiderationEmitted)]
    assert set(emitted.event_ids) == {ofsted.id, reviewed.id}


def test_an_outcome_on_the_feed_never_counts_towards_a_jtai() -> None:
    rebuilt = router()
    for _ in range(3):
        rebuilt.remember(
            open_signed(on_outcomes(outcome_recorded(), HMICFRS), TRUST, NOW, {OUTCOME_RECORDED})
        )
    outcome = rebuilt.step([on_events(neglect_concern(), OFSTED)], TRUST, NOW)
    assert not [a for a in outcome.audit if isinstance(a, ConsiderationEmitted)]


# -- never raises, with outcome records too --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def outcome_topic_records(draw: st.DrawFn) -> InboundRecord:
    """Records of liaison.outcomes: valid, mutated, foreign types, signed junk."""
    recorded = outcome_recorded(note=NOTE)
    valid = on_outcomes(recorded, HMICFRS)
    kind = draw(st.sampled_from(["valid", "mutated", "signed", "signed_field", "finding"]))
    value, headers = valid.value, valid.headers
    if kind == "mutated":
        mutated = bytearray(value)
        for _ in range(draw(st.integers(1, 4))):
            mutated[draw(st.integers(0, len(mutated) - 1))] = draw(st.integers(0, 255))
        value = bytes(mutated)
    elif kind in {"signed", "signed_field"}:
        document: Any = draw(json_values)
        if kind == "signed_field":
            document = json.loads(encode_signed(recorded))
            document[draw(st.sampled_from([*document, "extra", CHILD]))] = draw(json_values)
        payload_type = draw(st.sampled_from([OUTCOME_RECORDED, OUTCOME_OVERDUE]))
        value = sign_envelope(payload_type, json.dumps(document).encode(), HMICFRS)
    elif kind == "finding":
        value = sealed_inbound(concern(), OFSTED).value
        headers = event_headers(concern())
    if draw(st.booleans()):
        headers = tuple(draw(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)))))
    return InboundRecord(
        topic=TOPICS.outcomes,
        partition=draw(st.integers(0, 2)),
        offset=draw(st.integers(0, 2**63 - 1)),
        timestamp_ms=draw(st.integers(-1, 2**45)),
        key=draw(st.none() | st.binary(max_size=20)),
        value=value,
        headers=tuple(headers),
        timestamp_type=draw(st.sampled_from([0, 1])),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(outcome_topic_records(), min_size=1, max_size=6))
def test_step_never_raises_on_outcome_records_and_judges_each_once(
    records: list[InboundRecord],
) -> None:
    finding = concern()
    good = on_events(finding, OFSTED)
    mine = on_outcomes(outcome_recorded(finding_id=finding.id), HMICFRS)
    outcome = router().step([good, *records, mine], TRUST, NOW)
    judged = verdicts(outcome)
    assert len(judged) == len(records) + 2
    assert isinstance(judged[-1], EventRouted)
    for record in outcome.audit:
        assert decode_record(encode_record(record)) == record
    quarantined = [a for a in judged if isinstance(a, EventQuarantined)]
    assert all(a.reason != "internal_error" for a in quarantined)
    assert NOTE not in said(outcome)
    assert CHILD not in said(outcome)
    # What is forwarded is what was consumed, byte for byte, and nothing else.
    consumed = {good.value, mine.value, *(r.value for r in records)}
    for out in outcome.outbound:
        if out.topic not in {TOPICS.quarantine, TOPICS.jtai}:
            assert out.value in consumed
