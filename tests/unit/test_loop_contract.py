"""The contract of closing the loop: recommendations and reviews, outcomes, overdue
reminders, delivery results and JTAI decisions; one path seals and opens each of them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import Reason, open_envelope, sign_envelope
from schemas.errors import EnvelopeError, SchemaError, SignatureError
from schemas.events import (
    Progress,
    RecommendationMade,
    RecommendationReviewed,
    Theme,
    decode_event,
    encode_event,
)
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JtaiDecision, JtaiDecisionRecorded
from schemas.outcomes import (
    DeliveryRecorded,
    DeliveryStatus,
    Outcome,
    OutcomeOverdue,
    OutcomeRecorded,
    overdue_id,
)
from schemas.records import cloudevents_headers, signed_headers
from schemas.signed import (
    ALL_TYPES,
    FEED_TYPES,
    JTAI_TOPIC_TYPES,
    OUTCOME_TOPIC_TYPES,
    PROGRAMME_TOPIC_TYPES,
    SignedEvent,
    accepted_on,
    decode_signed,
    encode_signed,
    open_signed,
    seal_signed,
)
from schemas.topics import Topics
from tests.factories import NOW, concern, inbound, key_for, trust_of

KEYS = {owner: key_for(owner) for owner in (*(i.value for i in Inspectorate), "liaison")}
TRUST = trust_of(*KEYS.values())
EARLIER = NOW - dt.timedelta(days=3)
FINDING = uuid.UUID("6f1c0d2e-0c5e-4e0e-9b1e-2b0b1c8d6e77")


def recommendation(**overrides: Any) -> RecommendationMade:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "hmicfrs",
        "occurred_at": EARLIER,
        "area": "E08000025",
        "programme": "ncpi",
        "subject_agencies": ["police"],
        "theme": "child_criminal_exploitation",
        "summary": "Agree a safety plan with partners for every child at risk.",
        "recipient": "police",
        "force": "E23000014",
    }
    return RecommendationMade.model_validate(fields | overrides)


def review(**overrides: Any) -> RecommendationReviewed:
    fields: dict[str, Any] = recommendation().model_dump(exclude={"type", "review_by"}) | {
        "id": uuid.uuid4(),
        "recommendation_id": FINDING,
        "progress": "not_progressing",
        "summary": "Not improving as quickly as we would like.",
    }
    return RecommendationReviewed.model_validate(fields | overrides)


def outcome(**overrides: Any) -> OutcomeRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "hmicfrs",
        "occurred_at": NOW - dt.timedelta(hours=2),
        "area": "E08000025",
        "theme": "neglect",
        "programme": "ncpi",
        "finding_id": FINDING,
        "finding_type": "uk.inspectorate.concern.raised.v1",
        "finding_source": "ofsted",
        "finding_programme": "ilacs",
        "outcome": "informs_scheduling",
        "note": "Brings forward the force's next inspection.",
    }
    return OutcomeRecorded.model_validate(fields | overrides)


def overdue() -> OutcomeOverdue:
    return OutcomeOverdue(
        id=overdue_id(FINDING, Programme.CLAS),
        occurred_at=NOW - dt.timedelta(hours=1),
        area="E08000025",
        theme=Theme.NEGLECT,
        programme=Programme.CLAS,
        finding_id=FINDING,
        finding_type="uk.inspectorate.concern.raised.v1",
        finding_source=Inspectorate.OFSTED,
        finding_programme=Programme.ILACS,
        routed_at=NOW - dt.timedelta(days=20),
        due_at=NOW - dt.timedelta(days=6),
        working_days=10,
    )


def decision(**overrides: Any) -> JtaiDecisionRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "ofsted",
        "occurred_at": NOW - dt.timedelta(hours=1),
        "consideration_id": FINDING,
        "area": "E08000025",
        "theme": "neglect",
        "decision": "select",
        "reason": "Concerns from three inspectorates; no JTAI here since 2023.",
    }
    return JtaiDecisionRecorded.model_validate(fields | overrides)


def delivered(**overrides: Any) -> DeliveryRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "cqc",
        "occurred_at": NOW - dt.timedelta(minutes=5),
        "area": "E08000025",
        "programme": "clas",
        "event_id": FINDING,
        "status": "delivered",
        "attempts": 1,
    }
    return DeliveryRecorded.model_validate(fields | overrides)


SAMPLES: list[SignedEvent] = [
    concern(),
    recommendation(),
    review(),
    outcome(),
    overdue(),
    decision(),
    delivered(),
]


def record_of(event: SignedEvent, *, topic: str = "t.liaison.outcomes") -> Any:
    sealed = seal_signed(event, KEYS[str(event.source)], NOW)
    return inbound(sealed.envelope, signed_headers(event), topic=topic)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_every_signed_type_seals_and_opens_to_itself(event: SignedEvent) -> None:
    opened = open_signed(record_of(event), TRUST, NOW, ALL_TYPES)
    assert opened.event == event
    assert opened.payload == encode_signed(event)
    assert decode_signed(encode_signed(event)) == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_a_key_signs_only_for_its_owner(event: SignedEvent) -> None:
    other = next(k for owner, k in KEYS.items() if owner != str(event.source))
    with pytest.raises(SignatureError):
        seal_signed(event, other, NOW)
    # Signed by hand with another owner's key: refused on opening.
    forged = sign_envelope(event.type, encode_signed(event), other)
    with pytest.raises(EnvelopeError) as refused:
        open_signed(inbound(forged, signed_headers(event)), TRUST, NOW, ALL_TYPES)
    assert refused.value.reason is Reason.WRONG_INSPECTORATE


def test_a_topic_accepts_only_the_types_it_carries() -> None:
    with pytest.raises(EnvelopeError) as refused:
        open_signed(record_of(outcome()), TRUST, NOW, {"uk.inspectorate.concern.raised.v1"})
    assert refused.value.reason is Reason.WRONG_TOPIC
    # An outcome on an events topic never decodes as an inspectorate event.
    with pytest.raises(EnvelopeError) as as_event:
        open_envelope(record_of(outcome()), TRUST, NOW)
    assert as_event.value.reason is Reason.SCHEMA_INVALID


def test_what_each_topic_carries() -> None:
    topics = Topics("t.")
    assert accepted_on(topics.feed, topics) == FEED_TYPES
    assert accepted_on(topics.jtai, topics) == JTAI_TOPIC_TYPES
    assert accepted_on(topics.outcomes, topics) == OUTCOME_TOPIC_TYPES
    assert accepted_on(topics.programme(Programme.CLAS), topics) == PROGRAMME_TOPIC_TYPES
    assert "uk.inspectorate.recommendation.reviewed.v1" in accepted_on(
        topics.events(Inspectorate.HMICFRS), topics
    )
    assert accepted_on(topics.audit, topics) == frozenset()
    assert accepted_on("liaison.feed.areas", topics) == frozenset()  # another prefix's


def test_a_recommendation_to_the_police_names_the_force_that_polices_the_area() -> None:
    assert recommendation().force == "E23000014"  # West Midlands polices Birmingham
    with pytest.raises(ValueError, match="force is required"):
        recommendation(force=None)
    with pytest.raises(ValueError, match="does not police E08000025"):
        recommendation(force="E23000032")  # Kent
    with pytest.raises(ValueError, match="only for a recommendation to the police"):
        recommendation(subject_agencies=["health"], recipient="health")
    with pytest.raises(ValueError, match="recipient must be one of subject_agencies"):
        recommendation(subject_agencies=["health"])


def test_a_review_round_trips_on_the_wire_and_keeps_its_progress() -> None:
    made = review(progress=Progress.ACHIEVED)
    assert decode_event(encode_event(made)) == made


def test_an_outcome_is_for_a_programme_of_its_source_and_never_to_the_publishers_own() -> None:
    assert outcome().outcome is Outcome.INFORMS_SCHEDULING
    with pytest.raises(ValueError, match="not run by hmicfrs"):
        outcome(programme="clas")
    with pytest.raises(ValueError, match="never routed to a programme of its own publisher"):
        outcome(source="ofsted", programme="focused_visit")
    assert outcome(source="cqc", programme="jtai").programme is Programme.JTAI
    with pytest.raises(ValueError, match="not run by ofsted"):
        outcome(finding_programme="clas")


def test_an_outcome_note_passes_the_minimisation_lint() -> None:
    with pytest.raises(ValueError, match="note"):
        outcome(note="Discussed with Oliver Smith, born 03/04/2015.")


def test_an_overdue_reminder_has_one_id_per_finding_and_programme() -> None:
    assert overdue_id(FINDING, Programme.CLAS) == overdue_id(FINDING, Programme.CLAS)
    assert overdue_id(FINDING, Programme.CLAS) != overdue_id(FINDING, Programme.NCPI)
    assert str(overdue_id(FINDING, Programme.CLAS)) == str(
        uuid.uuid5(uuid.UUID("0b7b7f39-6a0c-4b8e-9d55-5b1f8e2a4c61"), f"{FINDING}|clas")
    )
    with pytest.raises(ValueError, match="overdue_id"):
        OutcomeOverdue.model_validate(overdue().model_dump() | {"id": uuid.uuid4()})


def test_a_delivery_result_gives_an_error_exactly_when_refused() -> None:
    assert delivered().status is DeliveryStatus.DELIVERED
    with pytest.raises(ValueError, match="last_error"):
        delivered(status="refused")
    refused = delivered(status="refused", attempts=8, last_error="http_503")
    assert refused.last_error == "http_503"
    with pytest.raises(ValueError, match="last_error"):
        delivered(last_error="http_503")


def test_a_jtai_decision_reason_passes_the_lint() -> None:
    assert decision().decision is JtaiDecision.SELECT
    with pytest.raises(ValueError, match="reason"):
        decision(reason="Call 07700 900123 about the family.")


def test_cloudevents_headers_repeat_the_signed_fields() -> None:
    event = outcome()
    assert dict(cloudevents_headers(event)) == {
        "ce_specversion": b"1.0",
        "ce_id": str(event.id).encode(),
        "ce_source": b"urn:liaison:hmicfrs",
        "ce_type": b"uk.inspectorate.finding.outcome_recorded.v1",
        "ce_time": event.occurred_at.isoformat().encode(),
        "content-type": b"application/vnd.dsse.envelope.v1+json",
    }


def test_a_record_without_cloudevents_headers_still_opens() -> None:
    event = outcome()
    sealed = seal_signed(event, KEYS["hmicfrs"], NOW)
    headers = tuple((n, v) for n, v in signed_headers(event) if not n.startswith("ce_"))
    assert open_signed(inbound(sealed.envelope, headers), TRUST, NOW, ALL_TYPES).event == event


def test_sealing_refuses_a_time_in_the_future() -> None:
    with pytest.raises(SchemaError, match="future"):
        seal_signed(decision(occurred_at=NOW + dt.timedelta(hours=1)), KEYS["ofsted"], NOW)


@given(st.binary(max_size=2048))
def test_any_bytes_are_refused_with_a_reason_never_an_exception(value: bytes) -> None:
    with pytest.raises(EnvelopeError) as refused:
        open_signed(inbound(value), TRUST, NOW, ALL_TYPES)
    assert isinstance(refused.value.reason, Reason)


@given(st.sampled_from(SAMPLES), st.binary(min_size=1, max_size=64), st.integers(0, 400))
def test_any_change_to_a_signed_record_is_refused(
    event: SignedEvent, junk: bytes, where: int
) -> None:
    record = record_of(event)
    value = record.value
    at = where % len(value)
    changed = value[:at] + junk + value[at + 1 :]
    if changed == value:
        return
    with pytest.raises(EnvelopeError):
        open_signed(inbound(changed, record.headers), TRUST, NOW, ALL_TYPES)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(
    st.sampled_from(SAMPLES),
    st.dictionaries(
        st.sampled_from(sorted({f for e in SAMPLES for f in type(e).model_fields})), JSON
    ),
)
def test_any_changed_fields_decode_or_list_their_problems(
    event: SignedEvent, changes: dict[str, object]
) -> None:
    document = json.loads(encode_signed(event)) | changes
    try:
        decoded: SignedEvent | SchemaError = decode_signed(json.dumps(document))
    except SchemaError as exc:
        decoded = exc
    assert str(decoded) if isinstance(decoded, SchemaError) else decoded.type in ALL_TYPES


@pytest.mark.parametrize(
    "extra",
    [
        (("CE_TYPE", b"uk.inspectorate.jtai.decision_recorded.v1"),),
        (("Ce_Source", b"urn:liaison:hmicfrs"),),
        (("ce_subject", b"anything a reader would take as an attribute"),),
        (("Content-Type", b"text/plain"),),
        (("ce_type", b"uk.inspectorate.finding.outcome_recorded.v1"),),  # repeated, equal
        (("event_id", str(uuid.uuid4()).encode()),),  # a contract header repeated
    ],
)
def test_cloudevents_headers_in_another_case_extra_or_repeated_are_refused(
    extra: tuple[tuple[str, bytes], ...],
) -> None:
    event = outcome()
    sealed = seal_signed(event, KEYS["hmicfrs"], NOW)
    for headers in ((*extra, *signed_headers(event)), (*signed_headers(event), *extra)):
        with pytest.raises(EnvelopeError) as refused:
            open_signed(inbound(sealed.envelope, headers), TRUST, NOW, ALL_TYPES)
        assert refused.value.reason is Reason.HEADER_MISMATCH


def test_an_outcome_or_decision_may_name_an_area_that_has_ended_since() -> None:
    # Barnsley's old code ended on 2025-04-30; a finding about it from before then still
    # gets its outcome, reminder and JTAI decision afterwards.
    assert outcome(area="E08000016").area == "E08000016"
    assert decision(area="E08000016").area == "E08000016"
    with pytest.raises(ValueError, match="not the GSS code"):
        outcome(area="E08999999")
