"""A programme's inbox from verified records (consumers.inbox): rows, outcomes, overdue,
delivery, JTAI selection, what came back about our own findings, reminders, unrouted.

The records "the router would produce" carry its route attestation (``liaison_route``,
signed by the bus key); copies without one, or with one for another queue, count for
nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import hashlib
import io
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import services.cli.inbox as inbox_cli
from consumers.inbox import (
    ID_CONFLICT,
    UNTRUSTED_TIME,
    Inbox,
    InboxQuery,
    build_inbox,
    build_unrouted,
    due_at,
    due_reminders,
    refusal_counts,
    returned_document,
    row_document,
    unrouted_document,
)
from consumers.jtai import consideration_id
from consumers.router import HEADER_REASON, HEADER_RULES
from schemas.audit import check_actor
from schemas.envelope import Reason
from schemas.errors import EnvelopeError
from schemas.events import RecommendationMade, Theme
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.jtai import JtaiConsiderationRequested, JtaiDecisionRecorded, JtaiTrigger
from schemas.keys import BUS, SigningKey
from schemas.outcomes import (
    DeliveryRecorded,
    OutcomeOverdue,
    OutcomeRecorded,
    overdue_id,
)
from schemas.records import InboundRecord, signed_headers
from schemas.route import HEADER_ROUTE, Route, attest_route
from schemas.signed import ALL_TYPES, OpenedSigned, SignedEvent, open_signed, seal_signed
from schemas.topics import Topics
from services.audit_log import operator
from services.cli._display import cell, clean
from tests.factories import NOW, concern, good_practice, key_for, trust_of

TOPICS = Topics("t.")
PEEL = Programme.PEEL
KEYS = {owner: key_for(owner) for owner in (*(i.value for i in Inspectorate), BUS)}
TRUST = trust_of(*KEYS.values(), valid_from=NOW - dt.timedelta(days=400))
ROUTED = NOW - dt.timedelta(hours=1)

Verified = tuple[InboundRecord, OpenedSigned]


def record(
    event: SignedEvent,
    topic: str,
    at: dt.datetime = ROUTED,
    extra: tuple[tuple[str, bytes], ...] = (),
) -> Verified:
    """``event`` sealed by its source's key, appended to ``topic`` at ``at``, verified."""
    sealed = seal_signed(event, KEYS[str(event.source)], max(at, event.occurred_at))
    inbound = InboundRecord(
        topic=topic, partition=0, offset=0, timestamp_ms=int(at.timestamp() * 1000),
        key=event.area.encode(), value=sealed.envelope,
        headers=(*signed_headers(event), *extra), timestamp_type=1,
    )  # fmt: skip
    return inbound, open_signed(inbound, TRUST, NOW, ALL_TYPES)


RULES = ("police-concerns", "severe")
REASON = "about the police"


def with_route(
    verified: Verified,
    *,
    rules: tuple[str, ...] = RULES,
    reason: str = REASON,
    topic: str | None = None,
    key: SigningKey | None = None,
) -> Verified:
    """``verified`` with the router's route attestation for it (for ``topic``, signed by
    ``key``: the record's own topic and the bus key unless a test forges another)."""
    inbound, opened = verified
    event = opened.event
    route = Route(
        event_id=event.id, event_type=event.type, signer=opened.key.owner,
        value_sha256=hashlib.sha256(inbound.value).hexdigest(),
        topic=topic or inbound.topic, rules=rules, reason=reason,
    )  # fmt: skip
    header = (HEADER_ROUTE, attest_route(route, key or KEYS[BUS]))
    return dataclasses.replace(inbound, headers=(*inbound.headers, header)), opened


def copied(event: SignedEvent, programme: Programme = PEEL, at: dt.datetime = ROUTED) -> Verified:
    """``event`` put on ``programme``'s queue by someone other than the router: a genuine
    signed envelope with made-up rules and reason headers, and no route."""
    made_up = ((HEADER_RULES, b"police-concerns"), (HEADER_REASON, b"urgent: act now"))
    return record(event, TOPICS.programme(programme), at, made_up)


def routed(event: SignedEvent, programme: Programme = PEEL, at: dt.datetime = ROUTED) -> Verified:
    """``event`` as the router puts it on ``programme``'s queue (plain headers that are
    not the signed ones: only the route's count)."""
    plain = ((HEADER_RULES, b"plain-rule"), (HEADER_REASON, b"plain headers are not read"))
    return with_route(record(event, TOPICS.programme(programme), at, plain))


def police_concern(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "subject_agencies": ["police", "local_authority"],
        "finding": "cause_of_concern",
        "severity": 3,
        "occurred_at": ROUTED - dt.timedelta(days=1),
    }
    return concern(**{**fields, **overrides})


def outcome(finding: Any, **overrides: Any) -> OutcomeRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "hmicfrs",
        "occurred_at": NOW - dt.timedelta(minutes=30),
        "area": finding.area,
        "theme": finding.theme,
        "programme": "peel",
        "finding_id": finding.id,
        "finding_type": finding.type,
        "finding_source": finding.source,
        "finding_programme": finding.programme,
        "outcome": "informs_scheduling",
        "note": "Brought forward the force's inspection.",
    }
    return OutcomeRecorded.model_validate({**fields, **overrides})


def reminder(finding: Any, programme: Programme = PEEL, at: dt.datetime = ROUTED) -> OutcomeOverdue:
    return OutcomeOverdue(
        id=overdue_id(finding.id, programme), source=BUS, occurred_at=NOW - dt.timedelta(minutes=5),
        area=finding.area, theme=finding.theme, programme=programme, finding_id=finding.id,
        finding_type=finding.type, finding_source=finding.source,
        finding_programme=finding.programme, routed_at=at, due_at=due_at(at, 10),
        working_days=10,
    )  # fmt: skip


def delivery(finding: Any, status: str, attempts: int, minutes: int = 10) -> DeliveryRecorded:
    return DeliveryRecorded.model_validate(
        {
            "id": uuid.uuid4(),
            "source": "hmicfrs",
            "occurred_at": NOW - dt.timedelta(minutes=minutes),
            "area": finding.area,
            "programme": "peel",
            "event_id": finding.id,
            "status": status,
            "attempts": attempts,
            "last_error": "http_503" if status == "refused" else None,
        }
    )


def decision(
    consideration: uuid.UUID,
    choice: str,
    minutes: int,
    area: str = "E08000025",
    theme: str = "neglect",
    **overrides: Any,
) -> JtaiDecisionRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "cqc",
        "occurred_at": NOW - dt.timedelta(minutes=minutes),
        "consideration_id": consideration,
        "area": area,
        "theme": theme,
        "decision": choice,
        "reason": "Evidence from three inspectorates.",
    }
    return JtaiDecisionRecorded.model_validate({**fields, **overrides})


def consideration(area: str = "E08000025", theme: str = "neglect") -> JtaiConsiderationRequested:
    """The bus's consideration of ``area`` on ``theme`` (published to liaison.jtai)."""
    start = NOW - dt.timedelta(days=3)
    return JtaiConsiderationRequested.model_validate(
        {
            "id": consideration_id(area, Theme(theme), start), "occurred_at": start,
            "area": area, "theme": theme, "window_start": start,
            "window_end": start + dt.timedelta(days=180),
            "trigger": JtaiTrigger.SEVERAL_INSPECTORATES,
            "contributing_event_ids": (uuid.uuid4(), uuid.uuid4()),
            "contributing_inspectorates": ("cqc", "ofsted"),
            "rationale": "Concerns about neglect from two inspectorates within 180 days.",
        }
    )  # fmt: skip


def inbox(
    *records: Verified,
    now: dt.datetime = NOW,
    programme: Programme = PEEL,
    reader: Inspectorate | None = None,
) -> Inbox:
    return build_inbox(programme, TOPICS, list(records), now, trust=TRUST, reader=reader)


def test_a_routed_finding_is_a_row_with_area_force_rules_reason_and_due_date() -> None:
    finding = police_concern()
    built = inbox(routed(finding))
    (row,) = built.rows
    assert row.finding == finding
    assert row.routed_at == ROUTED
    assert row.area_name == "Birmingham"
    assert row.police_force == "West Midlands"
    assert row.rules == ("police-concerns", "severe")  # the route's, not the plain headers'
    assert row.reason == "about the police"
    assert row.kind == "concern"
    assert row.outcome is None
    assert row.due_date == dt.date(2026, 12, 4)  # 10 working days after Sunday 22 November
    assert not row.overdue
    assert row.delivery is None
    assert row.jtai_selected == ()
    assert built.queue == "t.liaison.programme.peel"


def test_a_finding_not_about_the_police_names_no_force() -> None:
    (row,) = inbox(routed(concern(subject_agencies=["health"]))).rows
    assert row.police_force is None


def test_a_recommendation_to_the_police_names_its_force() -> None:
    made = RecommendationMade.model_validate(
        {
            "id": uuid.uuid4(), "source": "ofsted", "occurred_at": ROUTED, "area": "E08000025",
            "programme": "ilacs", "subject_agencies": ["police"], "theme": "neglect",
            "summary": "Improve joint triage of referrals.", "recipient": "police",
            "force": "E23000014",
        }
    )  # fmt: skip
    (row,) = inbox(routed(made)).rows
    assert row.kind == "recommendation"
    assert row.police_force == "West Midlands"
    assert row_document(row)["recipient"] == "police"


def test_a_finding_with_no_outcome_after_its_working_days_is_overdue() -> None:
    finding = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    routed_at = NOW - dt.timedelta(days=30)
    (row,) = inbox(routed(finding, at=routed_at)).rows
    assert row.overdue
    assert row.due_at <= NOW
    # At the due date's last moment it is not overdue yet.
    (row,) = inbox(routed(finding, at=routed_at), now=row.due_at - dt.timedelta(seconds=1)).rows
    assert not row.overdue


def test_the_latest_outcome_of_this_programme_stands_and_other_programmes_do_not_count() -> None:
    finding = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    first = outcome(finding, occurred_at=NOW - dt.timedelta(minutes=50), outcome="noted_no_action")
    later = outcome(finding, occurred_at=NOW - dt.timedelta(minutes=20))
    other = outcome(finding, programme="ncpi", occurred_at=NOW - dt.timedelta(minutes=10))
    records = [
        routed(finding, at=NOW - dt.timedelta(days=30)),
        record(later, TOPICS.outcomes),
        record(first, TOPICS.outcomes),
        record(other, TOPICS.outcomes),
        record(later, TOPICS.outcomes),  # a repeat counts once
    ]
    built = inbox(*records)
    assert built.select(InboxQuery()).rows == ()  # decided: not in the default list
    everything = built.select(InboxQuery(include_decided=True))
    (row,) = everything.rows
    assert [o.id for o in row.outcomes] == [first.id, later.id]
    assert row.outcome == later
    assert not row.overdue  # decided, however late


def test_outcomes_at_the_same_time_go_to_the_one_appended_last() -> None:
    finding = police_concern()
    when = NOW - dt.timedelta(minutes=10)
    one = outcome(finding, occurred_at=when, outcome="added_to_scope")
    two = outcome(finding, occurred_at=when, outcome="not_relevant")
    for first, second in ((one, two), (two, one)):
        built = inbox(
            routed(finding), record(first, TOPICS.outcomes), record(second, TOPICS.outcomes)
        ).select(InboxQuery(include_decided=True))
        assert built.rows[0].outcome == second


def test_delivery_refused_after_its_tries_is_shown_and_a_later_success_replaces_it() -> None:
    finding = police_concern()
    refused = delivery(finding, "refused", 5, minutes=20)
    (row,) = inbox(routed(finding), record(refused, TOPICS.delivery)).rows
    assert row.delivery == refused
    assert row_document(row)["delivery_refused"] is True
    delivered = delivery(finding, "delivered", 1, minutes=5)
    (row,) = inbox(
        routed(finding), record(refused, TOPICS.delivery), record(delivered, TOPICS.delivery)
    ).rows
    assert row.delivery == delivered
    assert row.deliveries == (refused, delivered)
    assert row_document(row)["delivery_refused"] is False


def test_a_redelivery_after_a_refusal_shows_as_delivered() -> None:
    # `serve deliver` names every result of one event and programme with the same id
    # (delivery_id): the last on the log stands, whatever the clocks said.
    finding = police_concern()
    same = uuid.uuid4()
    refused = delivery(finding, "refused", 8, minutes=5).model_copy(update={"id": same})
    delivered = delivery(finding, "delivered", 1, minutes=20).model_copy(update={"id": same})
    records = [
        routed(finding),
        record(refused, TOPICS.delivery),
        record(delivered, TOPICS.delivery),
    ]
    (row,) = inbox(*records).rows
    assert row.delivery == delivered
    assert row.deliveries == (refused, delivered)
    assert row_document(row)["delivery_refused"] is False
    # A repeat of the very same refusal, later on the log, stands again.
    (row,) = inbox(*records, record(refused, TOPICS.delivery)).rows
    assert row.delivery == refused
    assert row.deliveries == (delivered, refused)


def test_on_the_jtai_queue_only_the_readers_own_deliveries_count() -> None:
    finding = police_concern()

    def jtai_delivery(source: str, status: str) -> DeliveryRecorded:
        given = delivery(finding, status, 3).model_dump()
        return DeliveryRecorded.model_validate({**given, "source": source, "programme": "jtai"})

    records = [
        routed(finding, JTAI),
        record(jtai_delivery("cqc", "delivered"), TOPICS.delivery),
        record(jtai_delivery("ofsted", "refused"), TOPICS.delivery),
    ]
    (mine,) = inbox(*records, programme=JTAI, reader=Inspectorate.CQC).rows
    assert mine.delivery is not None
    assert mine.delivery.status.value == "delivered"
    (theirs,) = inbox(*records, programme=JTAI, reader=Inspectorate.OFSTED).rows
    assert theirs.delivery is not None
    assert theirs.delivery.status.value == "refused"


def test_an_area_is_jtai_selected_while_a_consideration_latest_decision_is_select() -> None:
    finding = police_concern(theme="domestic_abuse")
    one = consideration()
    made = decision(one.id, "select", 40)
    selected = [
        record(one, TOPICS.jtai),
        record(decision(one.id, "shortlist", 50), TOPICS.jtai),
        record(made, TOPICS.jtai),
    ]
    (row,) = inbox(routed(finding), *selected).rows
    assert row.jtai_selected == (Theme.NEGLECT,)  # the area's selection, whatever the theme
    assert row.jtai_decisions == (made.id,)
    assert row_document(row)["jtai_selected"] is True
    declined = [*selected, record(decision(one.id, "decline", 30), TOPICS.jtai)]
    assert inbox(routed(finding), *declined).rows[0].jtai_selected == ()
    # A decision appended later but made earlier does not overturn the latest.
    late = [*selected, record(decision(one.id, "decline", 45), TOPICS.jtai)]
    assert inbox(routed(finding), *late).rows[0].jtai_selected == (Theme.NEGLECT,)
    kent = consideration(area="E10000016")
    elsewhere = [
        record(kent, TOPICS.jtai),
        record(decision(kent.id, "select", 10, area=kent.area), TOPICS.jtai),
    ]
    assert inbox(routed(finding), *elsewhere).rows[0].jtai_selected == ()


def test_only_a_decision_tied_to_a_verified_consideration_marks_an_area_selected() -> None:
    finding = police_concern()
    one = consideration()
    no_consideration = decision(uuid.uuid4(), "select", 10)  # names the area, decides nothing
    other_theme = decision(one.id, "select", 10, theme="front_door")
    assert inbox(routed(finding), record(no_consideration, TOPICS.jtai)).rows[0].jtai_selected == ()
    marked = inbox(routed(finding), record(one, TOPICS.jtai), record(other_theme, TOPICS.jtai))
    assert marked.rows[0].jtai_selected == ()
    # The same tie-break as `liaison jtai list`: at the same time the larger id stands.
    low = decision(one.id, "select", 10, id=uuid.UUID(int=1))
    high = decision(one.id, "decline", 10, id=uuid.UUID(int=2))
    for order in ((low, high), (high, low)):
        tied = inbox(
            routed(finding), record(one, TOPICS.jtai), *(record(d, TOPICS.jtai) for d in order)
        )
        assert tied.rows[0].jtai_selected == ()
    # A consideration copied onto another topic (the feed, say) counts for nothing.
    elsewhere = inbox(routed(finding), record(one, TOPICS.feed), record(low, TOPICS.jtai))
    assert elsewhere.rows[0].jtai_selected == ()


def test_a_finding_routed_twice_is_one_row_routed_when_first_appended() -> None:
    finding = police_concern()
    earlier = ROUTED - dt.timedelta(minutes=5)
    built = inbox(routed(finding), routed(finding, at=earlier))
    (row,) = built.rows
    assert row.routed_at == earlier


def test_records_of_other_queues_are_not_rows() -> None:
    finding = police_concern()
    assert inbox(routed(finding, Programme.NCPI)).rows == ()
    assert inbox(record(finding, TOPICS.feed)).rows == ()


def test_outcomes_and_reminders_about_our_own_findings_come_back_once_each() -> None:
    ours = police_concern()  # Ofsted's, published under ilacs
    given = outcome(ours)  # HMICFRS's peel outcome, routed back to ilacs
    late = reminder(ours)  # the bus's reminder that peel owes one
    built = inbox(
        routed(given, Programme.ILACS),
        record(late, TOPICS.outcomes, at=NOW - dt.timedelta(minutes=2)),
        routed(late, Programme.ILACS, at=NOW - dt.timedelta(minutes=1)),
        record(given, TOPICS.outcomes),  # not routed back yet: not counted twice
        programme=Programme.ILACS,
    )
    assert [item.event for item in built.returned] == [given, late]
    assert [item.kind for item in built.returned] == ["outcome", "reminder"]
    assert built.rows == ()
    assert built.shown_ids() == (given.id, late.id)
    assert returned_document(built.returned[0])["note"] == given.note
    # Outcomes are not rows of the programme that recorded them.
    assert inbox(routed(given, Programme.ILACS)).returned == ()
    # An outcome put on the queue by anyone but the router does not come back.
    forged = inbox(copied(given, Programme.ILACS), programme=Programme.ILACS)
    assert forged.returned == ()
    assert dict(forged.refused) == {"route_unproven": 1}


def test_queries_filter_rows_and_returned_items() -> None:
    a = police_concern(area="E08000025", theme="neglect")
    b = police_concern(area="E10000016", theme="domestic_abuse")
    c = concern(source="cqc", programme="clas", subject_agencies=["police"], area="E10000016")
    old = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    built = inbox(routed(a), routed(b), routed(c), routed(old, at=NOW - dt.timedelta(days=30)))

    def ids(query: InboxQuery) -> set[uuid.UUID]:
        return {row.id for row in built.select(query).rows}

    assert ids(InboxQuery()) == {a.id, b.id, c.id, old.id}
    assert ids(InboxQuery(area="E10000016")) == {b.id, c.id}
    assert ids(InboxQuery(theme=Theme.DOMESTIC_ABUSE)) == {b.id}
    assert ids(InboxQuery(source=Inspectorate.CQC)) == {c.id}
    assert ids(InboxQuery(overdue_only=True)) == {old.id}
    assert InboxQuery(area="E10000016", overdue_only=True).filters() == {
        "area": "E10000016",
        "overdue": "true",
    }
    assert InboxQuery(include_decided=True, theme=Theme.NEGLECT).filters() == {
        "all": "true",
        "theme": "neglect",
    }


def test_only_reminders_come_back_with_overdue_only() -> None:
    ours = police_concern()
    built = inbox(
        routed(outcome(ours), Programme.ILACS),
        record(reminder(ours), TOPICS.outcomes),
        programme=Programme.ILACS,
    ).select(InboxQuery(overdue_only=True))
    assert [item.kind for item in built.returned] == ["reminder"]


def test_one_reminder_is_owed_per_overdue_finding_and_none_once_raised() -> None:
    old = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    routed_at = NOW - dt.timedelta(days=30)
    fresh = police_concern()
    decided = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    records = [
        routed(old, at=routed_at),
        routed(fresh),
        routed(decided, at=routed_at),
        record(outcome(decided), TOPICS.outcomes),
    ]
    owed = due_reminders(inbox(*records), NOW)
    (raised,) = owed.raised
    assert owed.skipped == ()
    assert raised.id == overdue_id(old.id, PEEL)
    assert raised.finding_id == old.id
    assert raised.routed_at == routed_at
    assert raised.due_at == due_at(routed_at, 10)
    assert raised.working_days == 10
    assert raised.source == BUS
    assert raised.occurred_at == NOW
    # Once the reminder is on liaison.outcomes, nothing more is owed.
    again = due_reminders(inbox(*records, record(raised, TOPICS.outcomes, at=NOW)), NOW)
    assert again.raised == ()
    row = inbox(*records, record(raised, TOPICS.outcomes, at=NOW)).row(old.id)
    assert row is not None
    assert row.reminder == raised


def test_the_working_days_allowed_decide_what_is_overdue() -> None:
    finding = police_concern(occurred_at=NOW - dt.timedelta(days=10))
    routed_at = NOW - dt.timedelta(days=7)  # Sunday 15 November
    short = build_inbox(
        PEEL, TOPICS, [routed(finding, at=routed_at)], NOW, trust=TRUST, working_days=3
    )
    long = build_inbox(
        PEEL, TOPICS, [routed(finding, at=routed_at)], NOW, trust=TRUST, working_days=10
    )
    assert short.rows[0].overdue
    assert not long.rows[0].overdue
    assert due_reminders(short, NOW).raised[0].working_days == 3


def test_refusals_are_counted_by_reason() -> None:
    dummy = routed(police_concern())[0]
    refused = [
        (dummy, EnvelopeError(Reason.BAD_SIGNATURE, "x")),
        (dummy, EnvelopeError(Reason.BAD_SIGNATURE, "y")),
        (dummy, EnvelopeError(Reason.UNKNOWN_KEY, "z")),
    ]
    counts = refusal_counts(refused)
    assert counts == {"bad_signature": 2, "unknown_key": 1}
    built = build_inbox(PEEL, TOPICS, [], NOW, trust=TRUST, refused=counts)
    assert dict(built.refused) == counts


def test_documents_are_json() -> None:
    finding = police_concern()
    row = (
        inbox(routed(finding), record(outcome(finding), TOPICS.outcomes))
        .select(InboxQuery(include_decided=True))
        .rows[0]
    )
    document = json.loads(json.dumps(row_document(row, history=True)))
    assert document["id"] == str(finding.id)
    assert (document["kind"], document["finding_kind"]) == ("finding", "concern")
    assert document["area_name"] == "Birmingham"
    assert document["police_force"] == "West Midlands"
    assert document["finding"] == "cause_of_concern"
    assert document["severity"] == 3
    assert document["outcome"]["outcome"] == "informs_scheduling"
    assert len(document["outcomes"]) == 1
    assert document["rules"] == ["police-concerns", "severe"]


def test_unrouted_lists_each_finding_once_since_a_time() -> None:
    topic = TOPICS.unrouted
    first = good_practice()
    second = police_concern()
    records = [
        with_route(record(first, topic, NOW - dt.timedelta(days=2))),
        with_route(record(second, topic, NOW - dt.timedelta(hours=2))),
        with_route(record(second, topic, NOW - dt.timedelta(hours=1))),
        record(outcome(second), TOPICS.outcomes),
    ]
    every = build_unrouted(topic, records, trust=TRUST, now=NOW)
    assert [r.finding.id for r in every.rows] == [first.id, second.id]
    assert every.rows[0].area_name == "Kent"
    assert every.rows[1].police_force == "West Midlands"
    assert every.shown_ids() == (first.id, second.id)
    recent = build_unrouted(topic, records, trust=TRUST, now=NOW, since=NOW - dt.timedelta(days=1))
    assert [r.finding.id for r in recent.rows] == [second.id]
    document = unrouted_document(recent.rows[0])
    assert (document["kind"], document["finding_kind"]) == ("unrouted", "concern")


FINDINGS = [police_concern(occurred_at=NOW - dt.timedelta(days=50)) for _ in range(3)]
OUTCOMES = [
    outcome(FINDINGS[i % 3], occurred_at=NOW - dt.timedelta(minutes=m), outcome=o)
    for i, (m, o) in enumerate(
        [(5, "added_to_scope"), (9, "not_relevant"), (5, "noted_no_action"), (1, "added_to_scope")]
    )
]
POOL: list[Verified] = [
    *(routed(f, at=NOW - dt.timedelta(days=20 + i)) for i, f in enumerate(FINDINGS)),
    *(record(o, TOPICS.outcomes) for o in OUTCOMES),
    record(reminder(FINDINGS[2], at=NOW - dt.timedelta(days=22)), TOPICS.outcomes),
    record(delivery(FINDINGS[0], "refused", 3), TOPICS.delivery),
    record(decision(uuid.uuid4(), "select", 3), TOPICS.jtai),
    copied(police_concern()),  # never a row, whatever the order
]


@settings(max_examples=200)
@given(st.permutations(POOL), st.integers(min_value=1, max_value=40))
def test_any_order_gives_one_row_per_finding_and_the_latest_outcome(
    records: list[Verified], days: int
) -> None:
    built = build_inbox(PEEL, TOPICS, records, NOW, trust=TRUST, working_days=days)
    assert dict(built.refused) == {"route_unproven": 1}
    everything = built.select(InboxQuery(include_decided=True))
    assert sorted(r.id for r in everything.rows) == sorted(f.id for f in FINDINGS)
    for row in everything.rows:
        mine = [o for o in OUTCOMES if o.finding_id == row.id]
        if mine:
            latest = max(o.occurred_at for o in mine)
            assert row.outcome is not None
            assert row.outcome.occurred_at == latest
            assert not row.overdue
        else:
            assert row.overdue == (row.due_at <= NOW)
    owed = due_reminders(built, NOW)
    assert len({r.id for r in owed.raised}) == len(owed.raised)
    assert all(built.row(r.finding_id) is not None for r in owed.raised)
    assert FINDINGS[2].id not in {r.finding_id for r in owed.raised}  # reminded already
    assert len(set(built.shown_ids())) == len(built.shown_ids())


def test_an_outcome_key_signing_is_the_receivers() -> None:
    # Sanity of the test's own fixtures: an outcome is sealed by its source's key.
    key: SigningKey = KEYS["hmicfrs"]
    assert key.owner == outcome(police_concern()).source


# -- what reaching a queue proves: nothing without the router's route -------------------------


def test_a_genuine_finding_copied_onto_a_queue_is_no_row_and_is_owed_no_reminder() -> None:
    old = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    at = NOW - dt.timedelta(days=30)
    peel = TOPICS.programme(PEEL)
    for verified in (
        copied(old, at=at),  # made-up rules and reason headers, no route
        with_route(record(old, peel, at), topic=TOPICS.programme(Programme.NCPI)),  # NCPI's
        with_route(record(old, peel, at), key=key_for(BUS)),  # a bus key nobody trusts
    ):
        built = inbox(verified)
        assert built.rows == ()
        assert built.row(old.id) is None
        assert dict(built.refused) == {"route_unproven": 1}
        assert due_reminders(built, NOW).raised == ()
    # The same finding routed by the router is a row, with the route's rules and reason.
    (row,) = inbox(copied(old, at=at), routed(old, at=at)).rows
    assert (row.rules, row.reason) == (RULES, REASON)


def test_rules_and_reason_shown_are_the_routes_never_the_plain_headers() -> None:
    finding = police_concern()
    verified = with_route(
        copied(finding), rules=("jtai.severity_4",), reason="severity 4 concern"
    )  # the copy's made-up plain headers say otherwise
    (row,) = inbox(verified).rows
    assert (row.rules, row.reason) == (("jtai.severity_4",), "severity 4 concern")
    assert row_document(row)["reason"] == "severity 4 concern"


def test_unrouted_lists_only_what_the_router_put_there() -> None:
    topic = TOPICS.unrouted
    lost, planted = police_concern(), good_practice()
    records = [with_route(record(lost, topic)), record(planted, topic)]
    unrouted = build_unrouted(topic, records, trust=TRUST, now=NOW)
    assert [r.finding.id for r in unrouted.rows] == [lost.id]
    assert dict(unrouted.refused) == {"route_unproven": 1}


# -- one id, two publishers ----------------------------------------------------------------------


def test_one_id_from_two_publishers_is_a_conflict_and_neither_is_shown() -> None:
    ofsted = police_concern()
    cqc = concern(id=ofsted.id, source="cqc", programme="clas", subject_agencies=["police"])
    given = outcome(ofsted)
    built = inbox(routed(ofsted), routed(cqc), record(given, TOPICS.outcomes))
    assert built.select(InboxQuery(include_decided=True)).rows == ()
    assert dict(built.refused) == {ID_CONFLICT: 2}
    assert due_reminders(built, NOW).raised == ()
    # Alone, CQC's finding is a row, and an outcome about Ofsted's is not its outcome.
    alone = inbox(routed(cqc), record(given, TOPICS.outcomes))
    (row,) = alone.select(InboxQuery(include_decided=True)).rows
    assert (row.finding, row.outcome) == (cqc, None)


def test_one_id_on_two_publishers_outcomes_routed_back_shows_neither() -> None:
    ours = police_concern()
    hmicfrs = outcome(ours)
    cqc = outcome(ours, id=hmicfrs.id, source="cqc", programme="clas")
    built = inbox(
        routed(hmicfrs, Programme.ILACS), routed(cqc, Programme.ILACS), programme=Programme.ILACS
    )
    assert built.returned == ()
    assert dict(built.refused) == {ID_CONFLICT: 2}


# -- time: only the broker's ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp_ms", "timestamp_type"),
    [
        (int(ROUTED.timestamp() * 1000), 0),  # the producer's CreateTime: back-dated at will
        (-1, 1),
        (10**17, 1),  # past any date
        (253_402_300_799_000, 1),  # 9999-12-31: its due date is past any date
    ],
)
def test_a_record_whose_time_is_not_the_brokers_is_refused_never_a_traceback(
    timestamp_ms: int, timestamp_type: int
) -> None:
    def odd(verified: Verified) -> Verified:
        changed = dataclasses.replace(
            verified[0], timestamp_ms=timestamp_ms, timestamp_type=timestamp_type
        )
        return changed, verified[1]

    finding = police_concern()
    built = inbox(odd(routed(finding)))
    assert built.rows == ()
    assert dict(built.refused) == {UNTRUSTED_TIME: 1}
    unrouted = odd(with_route(record(finding, TOPICS.unrouted)))
    assert build_unrouted(TOPICS.unrouted, [unrouted], trust=TRUST, now=NOW).rows == ()


@settings(max_examples=100)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(-1, 2))
def test_any_timestamp_is_a_row_or_a_refusal(timestamp_ms: int, timestamp_type: int) -> None:
    queued, opened = routed(police_concern())
    odd = dataclasses.replace(queued, timestamp_ms=timestamp_ms, timestamp_type=timestamp_type)
    built = inbox((odd, opened))
    assert len(built.rows) + sum(built.refused.values()) == 1


# -- receipts name everything shown ------------------------------------------------------------


def test_the_receipt_names_every_event_shown() -> None:
    finding = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    at = NOW - dt.timedelta(days=30)
    first = outcome(finding, occurred_at=NOW - dt.timedelta(minutes=50))
    later = outcome(finding, occurred_at=NOW - dt.timedelta(minutes=20))
    late = reminder(finding, at=at)
    refused, delivered = delivery(finding, "refused", 8), delivery(finding, "delivered", 1)
    one = consideration()
    made = decision(one.id, "select", 5)
    built = inbox(
        routed(finding, at=at),
        *(record(o, TOPICS.outcomes) for o in (first, later, late)),
        *(record(d, TOPICS.delivery) for d in (refused, delivered)),
        *(record(e, TOPICS.jtai) for e in (one, made)),
    ).select(InboxQuery(include_decided=True))
    (row,) = built.rows
    assert built.shown_ids() == (finding.id, later.id, late.id, delivered.id, made.id)
    assert row.shown_ids(history=True) == (
        finding.id, first.id, later.id, late.id, refused.id, delivered.id, made.id,
    )  # fmt: skip


# -- what the terminal shows ---------------------------------------------------------------------

HOSTILE = "Late \x1b[2J\x1b]0;owned\x07 [bold red]urgent[/] :warning: \x9b31m\u202edone\r"


def plain_console() -> Console:
    """A console without colours: any ESC in what it prints would come from the data."""
    return Console(file=io.StringIO(), width=400, color_system=None, emoji=True)


def printed(console: Console) -> str:
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def rendered(*renderables: Any) -> str:
    """What a console without colours prints for ``renderables``."""
    console = plain_console()
    for renderable in renderables:
        console.print(renderable)
    return printed(console)


def assert_shown_safely(output: str) -> None:
    assert not any(c in output for c in "\x1b\x07\x9b\u202e\r")
    assert "\ufffd[2J" in output  # the escape shown as a visible mark
    assert "[bold red]urgent[/]" in output  # text, never markup
    assert ":warning:" in output  # never an emoji


def test_clean_replaces_control_characters_and_keeps_newlines_only_when_asked() -> None:
    assert (
        clean("a\x00b\tc\x1bd\x7fe\x85f\u202eg\nh")
        == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh"
    )
    assert clean("one\ntwo\r\n", multiline=True) == "one\ntwo\ufffd\n"
    assert clean("Caf\u00e9 \u2013 na\u00efve \u2713") == "Caf\u00e9 \u2013 na\u00efve \u2713"
    assert cell("[b]x[/b]").plain == "[b]x[/b]"


def test_the_inbox_tables_show_hostile_text_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    finding = police_concern(summary="Referrals wait. " + HOSTILE)
    ours = police_concern()
    given = outcome(ours, note="Seen. " + HOSTILE)
    built = inbox(
        with_route(copied(finding, Programme.ILACS), reason=HOSTILE, rules=(HOSTILE,)),
        routed(given, Programme.ILACS),
        programme=Programme.ILACS,
    )
    (row,) = built.rows
    assert_shown_safely(rendered(inbox_cli._rows_table(built, everything=False)))
    assert_shown_safely(rendered(inbox_cli._returned_table(built)))
    console = plain_console()
    monkeypatch.setattr(inbox_cli, "_wide", lambda: console)
    inbox_cli._print_row(row)
    assert_shown_safely(printed(console))
    unrouted = build_unrouted(
        TOPICS.unrouted, [with_route(record(finding, TOPICS.unrouted))], trust=TRUST, now=NOW
    )
    assert_shown_safely(rendered(inbox_cli._unrouted_table(unrouted)))


def test_the_inbox_table_marks_an_overdue_finding() -> None:
    finding = police_concern(occurred_at=NOW - dt.timedelta(days=40))
    built = inbox(routed(finding, at=NOW - dt.timedelta(days=30)))
    (row,) = built.rows
    assert f"OVERDUE (due {row.due_date:%Y-%m-%d})" in rendered(
        inbox_cli._rows_table(built, everything=False)
    )


# -- the operator's actor ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "actor"),
    [
        ("jsmith", "operator:jsmith"),
        ("Jane Doe", "operator:Jane-Doe"),
        ("CORP\\jdoe", "operator:CORP-jdoe"),
        ("José", "operator:Jos-"),
        ("-x", "operator:x"),
        ("   ", "operator:unknown"),
        ("", "operator:unknown"),
    ],
)
def test_the_operator_actor_is_always_valid(
    login: str, actor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: login)
    assert operator() == actor
    assert check_actor(operator()) == actor


def test_the_operator_actor_without_a_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert operator() == "operator:unknown"
    assert operator("auditor") == "auditor:unknown"
    monkeypatch.setattr(getpass, "getuser", lambda: "x" * 500)
    assert len(check_actor(operator())) <= 200
