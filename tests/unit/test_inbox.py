"""A programme's inbox from verified records (consumers.inbox): rows, outcomes, overdue,
delivery, JTAI selection, what came back about our own findings, reminders, unrouted."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.inbox import (
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
from consumers.router import HEADER_REASON, HEADER_RULES
from schemas.envelope import Reason
from schemas.errors import EnvelopeError
from schemas.events import RecommendationMade, Theme
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JtaiDecisionRecorded
from schemas.keys import BUS, SigningKey
from schemas.outcomes import (
    DeliveryRecorded,
    OutcomeOverdue,
    OutcomeRecorded,
    overdue_id,
)
from schemas.records import InboundRecord, signed_headers
from schemas.signed import ALL_TYPES, OpenedSigned, SignedEvent, open_signed, seal_signed
from schemas.topics import Topics
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


def routed(event: SignedEvent, programme: Programme = PEEL, at: dt.datetime = ROUTED) -> Verified:
    """``event`` as the router puts it on ``programme``'s queue."""
    headers = ((HEADER_RULES, b"police-concerns,severe"), (HEADER_REASON, b"about the police"))
    return record(event, TOPICS.programme(programme), at, headers)


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
    consideration: uuid.UUID, choice: str, minutes: int, area: str = "E08000025"
) -> JtaiDecisionRecorded:
    return JtaiDecisionRecorded.model_validate(
        {
            "id": uuid.uuid4(),
            "source": "cqc",
            "occurred_at": NOW - dt.timedelta(minutes=minutes),
            "consideration_id": consideration,
            "area": area,
            "theme": "neglect",
            "decision": choice,
            "reason": "Evidence from three inspectorates.",
        }
    )


def inbox(*records: Verified, now: dt.datetime = NOW, programme: Programme = PEEL) -> Inbox:
    return build_inbox(programme, TOPICS, list(records), now)


def test_a_routed_finding_is_a_row_with_area_force_rules_reason_and_due_date() -> None:
    finding = police_concern()
    built = inbox(routed(finding))
    (row,) = built.rows
    assert row.finding == finding
    assert row.routed_at == ROUTED
    assert row.area_name == "Birmingham"
    assert row.police_force == "West Midlands"
    assert row.rules == ("police-concerns", "severe")
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
        routed(finding), record(delivered, TOPICS.delivery), record(refused, TOPICS.delivery)
    ).rows
    assert row.delivery == delivered
    assert row.deliveries == (refused, delivered)


def test_an_area_is_jtai_selected_while_a_consideration_latest_decision_is_select() -> None:
    finding = police_concern(theme="domestic_abuse")
    one, two = uuid.uuid4(), uuid.uuid4()
    selected = [
        record(decision(one, "shortlist", 50), TOPICS.jtai),
        record(decision(one, "select", 40), TOPICS.jtai),
    ]
    (row,) = inbox(routed(finding), *selected).rows
    assert row.jtai_selected == (Theme.NEGLECT,)  # the area's selection, whatever the theme
    assert row_document(row)["jtai_selected"] is True
    declined = [*selected, record(decision(one, "decline", 30), TOPICS.jtai)]
    assert inbox(routed(finding), *declined).rows[0].jtai_selected == ()
    # A decision appended later but made earlier does not overturn the latest.
    late = [*selected, record(decision(one, "decline", 45), TOPICS.jtai)]
    assert inbox(routed(finding), *late).rows[0].jtai_selected == (Theme.NEGLECT,)
    elsewhere = [record(decision(two, "select", 10, area="E10000016"), TOPICS.jtai)]
    assert inbox(routed(finding), *elsewhere).rows[0].jtai_selected == ()


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
        record(given, TOPICS.programme(Programme.ILACS)),
        record(late, TOPICS.outcomes, at=NOW - dt.timedelta(minutes=2)),
        record(late, TOPICS.programme(Programme.ILACS), at=NOW - dt.timedelta(minutes=1)),
        record(given, TOPICS.outcomes),  # not routed back yet: not counted twice
        programme=Programme.ILACS,
    )
    assert [item.event for item in built.returned] == [given, late]
    assert [item.kind for item in built.returned] == ["outcome", "reminder"]
    assert built.rows == ()
    assert built.shown_ids() == (given.id, late.id)
    assert returned_document(built.returned[0])["note"] == given.note
    # Outcomes are not rows of the programme that recorded them.
    assert inbox(record(given, TOPICS.programme(Programme.ILACS))).returned == ()


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
        record(outcome(ours), TOPICS.programme(Programme.ILACS)),
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
    short = build_inbox(PEEL, TOPICS, [routed(finding, at=routed_at)], NOW, working_days=3)
    long = build_inbox(PEEL, TOPICS, [routed(finding, at=routed_at)], NOW, working_days=10)
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
    built = build_inbox(PEEL, TOPICS, [], NOW, refused=counts)
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
        record(first, topic, NOW - dt.timedelta(days=2)),
        record(second, topic, NOW - dt.timedelta(hours=2)),
        record(second, topic, NOW - dt.timedelta(hours=1)),
        record(outcome(second), TOPICS.outcomes),
    ]
    every = build_unrouted(topic, records)
    assert [r.finding.id for r in every.rows] == [first.id, second.id]
    assert every.rows[0].area_name == "Kent"
    assert every.rows[1].police_force == "West Midlands"
    assert every.shown_ids() == (first.id, second.id)
    recent = build_unrouted(topic, records, since=NOW - dt.timedelta(days=1))
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
]


@settings(max_examples=200)
@given(st.permutations(POOL), st.integers(min_value=1, max_value=40))
def test_any_order_gives_one_row_per_finding_and_the_latest_outcome(
    records: list[Verified], days: int
) -> None:
    built = build_inbox(PEEL, TOPICS, records, NOW, working_days=days)
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
