"""JTAI triage (consumers/jtai_desk.py): the view of considerations, findings, outcomes and
decisions, and the decision a JTAI team member records."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Sequence
from random import Random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import services.cli.jtai as jtai_cli
from consumers.jtai import consideration_id
from consumers.jtai_desk import (
    SUMMARY_WIDTH,
    IgnoredReason,
    TriageView,
    decide,
    item_json,
    select,
    selected_areas,
    selected_themes,
    triage,
    trim,
)
from schemas.audit import JtaiDecided, decode_record, encode_record
from schemas.errors import SchemaError
from schemas.events import (
    ConcernRaised,
    Finding,
    InspectorateEvent,
    Progress,
    RecommendationReviewed,
    Theme,
)
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import (
    OPEN_DECISIONS,
    JtaiConsiderationRequested,
    JtaiDecision,
    JtaiDecisionRecorded,
    JtaiTrigger,
)
from schemas.outcomes import Outcome, OutcomeOverdue, OutcomeRecorded, overdue_id
from schemas.signed import SignedEvent, decode_signed, encode_signed
from tests.factories import NOW, concern

BIRMINGHAM = "E08000025"
KENT = "E10000016"
T0 = NOW - dt.timedelta(days=20)


def raised(*contributors: InspectorateEvent, **overrides: Any) -> JtaiConsiderationRequested:
    """The consideration the bus raises for ``contributors`` (their area and theme)."""
    first = min(contributors, key=lambda c: c.occurred_at)
    last = max(contributors, key=lambda c: c.occurred_at)
    fields: dict[str, Any] = {
        "id": consideration_id(first.area, first.theme, first.occurred_at),
        "occurred_at": last.occurred_at,
        "area": first.area,
        "theme": first.theme,
        "window_start": first.occurred_at,
        "window_end": first.occurred_at + dt.timedelta(days=180),
        "trigger": JtaiTrigger.SEVERAL_INSPECTORATES,
        "contributing_event_ids": tuple(c.id for c in contributors),
        "contributing_inspectorates": tuple(sorted({c.source for c in contributors})),
        "rationale": "Concerns about neglect from two inspectorates within 180 days.",
    }
    fields.update(overrides)
    return JtaiConsiderationRequested.model_validate(fields)


def decision(
    consideration: JtaiConsiderationRequested,
    choice: JtaiDecision,
    at: dt.datetime,
    **overrides: Any,
) -> JtaiDecisionRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "cqc",
        "occurred_at": at,
        "consideration_id": consideration.id,
        "area": consideration.area,
        "theme": consideration.theme,
        "decision": choice,
        "reason": "Evidence from two inspectorates in one window.",
    }
    fields.update(overrides)
    return JtaiDecisionRecorded.model_validate(fields)


def outcome_for(
    finding: ConcernRaised, source: str, programme: str, result: Outcome, at: dt.datetime, **o: Any
) -> OutcomeRecorded:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": source,
        "occurred_at": at,
        "area": finding.area,
        "theme": finding.theme,
        "programme": programme,
        "finding_id": finding.id,
        "finding_type": finding.type,
        "finding_source": finding.source,
        "finding_programme": finding.programme,
        "outcome": result,
        "note": "Informs when we next look at the area.",
    }
    fields.update(o)
    return OutcomeRecorded.model_validate(fields)


def ofsted_concern(**overrides: Any) -> ConcernRaised:
    return concern(
        occurred_at=T0,
        finding="cause_of_concern",
        severity=3,
        subject_agencies=["police"],
        **overrides,
    )


def cqc_concern(**overrides: Any) -> ConcernRaised:
    return concern(
        source="cqc",
        programme="clas",
        occurred_at=T0 + dt.timedelta(days=3),
        subject_agencies=["health"],
        **overrides,
    )


# Known answers ---------------------------------------------------------------------------


def test_a_consideration_shows_area_name_contributors_and_their_outcomes() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    ncpi = outcome_for(ofsted, "hmicfrs", "ncpi", Outcome.INFORMS_SCHEDULING, T0 + dt.timedelta(1))
    view = triage([cqc, c, ncpi, ofsted])

    (item,) = view.items
    assert item.consideration == c
    assert (item.area_name, item.region) == ("Birmingham", "West Midlands")
    assert item.is_open
    assert item.current is None
    assert item.decisions == ()
    assert item.event_ids == (c.id, ofsted.id, cqc.id)
    first, second = item.contributors
    assert first.found
    assert (first.id, first.publisher, first.type) == (ofsted.id, Inspectorate.OFSTED, ofsted.type)
    assert (first.finding, first.severity, first.progress) == (Finding.CAUSE_OF_CONCERN, 3, None)
    assert first.occurred_at == T0
    assert first.summary == ofsted.summary
    (given,) = first.outcomes
    assert (given.programme, given.outcome, given.at) == (
        Programme.NCPI,
        Outcome.INFORMS_SCHEDULING,
        T0 + dt.timedelta(1),
    )
    assert given.source is Inspectorate.HMICFRS
    assert second.id == cqc.id
    assert second.outcomes == ()
    assert view.ignored == ()


def test_a_contributor_missing_from_the_feed_is_listed_by_id() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    (item,) = triage([raised(ofsted, cqc), ofsted]).items
    assert [c.found for c in item.contributors] == [True, False]
    missing = item.contributors[1]
    assert missing.id == cqc.id
    assert missing.publisher is None
    assert item_json(item)["contributors"] == [
        item_json(item)["contributors"][0],  # type: ignore[index]
        {"id": str(cqc.id), "found": False},
    ]


def test_a_review_shows_its_progress() -> None:
    review = RecommendationReviewed.model_validate(
        {
            "id": str(uuid.uuid4()),
            "source": "hmicfrs",
            "occurred_at": T0,
            "area": BIRMINGHAM,
            "programme": "ncpi",
            "subject_agencies": ["police"],
            "theme": "neglect",
            "summary": "The force has not improved as quickly as we would like.",
            "recipient": "police",
            "force": "E23000014",
            "recommendation_id": str(uuid.uuid4()),
            "progress": "not_progressing",
        }
    )
    ofsted = ofsted_concern()
    (item,) = triage([raised(ofsted, review), ofsted, review]).items
    shown = item.contributors[1]
    assert (shown.progress, shown.finding, shown.severity) == (Progress.NOT_PROGRESSING, None, None)
    assert item_json(item)["contributors"][1]["progress"] == "not_progressing"  # type: ignore[index]


def test_latest_decision_stands_and_select_or_decline_close_it() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    shortlist = decision(c, JtaiDecision.SHORTLIST, NOW - dt.timedelta(days=2))
    selected = decision(c, JtaiDecision.SELECT, NOW - dt.timedelta(days=1))
    (item,) = triage([c, selected, shortlist]).items
    assert [d.id for d in item.decisions] == [shortlist.id, selected.id]
    assert item.current is not None
    assert item.current.decision is JtaiDecision.SELECT
    assert not item.is_open
    view = triage([c, selected, shortlist])
    assert select(view) == ()
    assert select(view, include_decided=True) == view.items

    deferred = decision(c, JtaiDecision.DEFER, NOW)  # a later defer reopens it
    assert triage([c, selected, deferred, shortlist]).items[0].is_open


def test_shortlist_and_defer_keep_it_open() -> None:
    c = raised(ofsted_concern(), cqc_concern())
    for choice in (JtaiDecision.SHORTLIST, JtaiDecision.DEFER):
        (item,) = triage([c, decision(c, choice, NOW)]).items
        assert item.is_open
    (item,) = triage([c, decision(c, JtaiDecision.DECLINE, NOW)]).items
    assert not item.is_open


def test_ties_in_time_are_broken_by_the_larger_id() -> None:
    c = raised(ofsted_concern(), cqc_concern())
    low = decision(c, JtaiDecision.SELECT, NOW, id=uuid.UUID(int=1))
    high = decision(c, JtaiDecision.DECLINE, NOW, id=uuid.UUID(int=2))
    for order in ([low, high], [high, low]):
        (item,) = triage([c, *order]).items
        assert item.current is not None
        assert item.current.id == high.id


def test_decisions_that_do_not_match_a_consideration_are_ignored_and_counted() -> None:
    c = raised(ofsted_concern(), cqc_concern())
    unknown = decision(c, JtaiDecision.SELECT, NOW, consideration_id=uuid.uuid4())
    elsewhere = decision(c, JtaiDecision.SELECT, NOW, area=KENT)
    other_theme = decision(c, JtaiDecision.DECLINE, NOW, theme="front_door")
    view = triage([unknown, c, elsewhere, other_theme])
    (item,) = view.items
    assert item.decisions == ()
    assert item.is_open
    reasons = {i.decision_id: i.reason for i in view.ignored}
    assert reasons == {
        unknown.id: IgnoredReason.UNKNOWN_CONSIDERATION,
        elsewhere.id: IgnoredReason.AREA_DISAGREES,
        other_theme.id: IgnoredReason.THEME_DISAGREES,
    }
    assert selected_areas(view) == {}


def test_outcomes_that_disagree_with_the_finding_do_not_count_and_the_latest_stands() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    early = outcome_for(ofsted, "hmicfrs", "ncpi", Outcome.NOTED_NO_ACTION, T0 + dt.timedelta(1))
    later = outcome_for(ofsted, "hmicfrs", "ncpi", Outcome.ADDED_TO_SCOPE, T0 + dt.timedelta(2))
    peel = outcome_for(ofsted, "hmicfrs", "peel", Outcome.NOT_RELEVANT, T0 + dt.timedelta(1))
    wrong_area = outcome_for(
        ofsted, "hmicfrs", "peel", Outcome.REFERRED_TO_JTAI, T0 + dt.timedelta(3), area=KENT
    )
    (item,) = triage([c, ofsted, cqc, later, wrong_area, early, peel]).items
    shown = [(o.programme, o.outcome) for o in item.contributors[0].outcomes]
    assert shown == [
        (Programme.PEEL, Outcome.NOT_RELEVANT),
        (Programme.NCPI, Outcome.ADDED_TO_SCOPE),
    ]


def test_other_types_and_repeats_are_left_out() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    overdue = OutcomeOverdue(
        id=overdue_id(ofsted.id, Programme.PEEL),
        occurred_at=NOW,
        area=ofsted.area,
        theme=ofsted.theme,
        programme=Programme.PEEL,
        finding_id=ofsted.id,
        finding_type=ofsted.type,
        finding_source=ofsted.source,
        finding_programme=ofsted.programme,
        routed_at=T0,
        due_at=T0 + dt.timedelta(days=14),
        working_days=10,
    )
    view = triage([c, c, ofsted, overdue, ofsted, cqc])
    assert len(view.items) == 1
    assert view.items[0].contributors[0].outcomes == ()  # a reminder is not an outcome
    assert triage([]) == TriageView(())


def test_a_consideration_raised_twice_keeps_one_copy_whatever_the_order() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    once = raised(ofsted, cqc)
    again = once.model_copy(update={"occurred_at": once.occurred_at + dt.timedelta(hours=1)})
    assert triage([once, again]) == triage([again, once])
    assert triage([again, once]).items[0].consideration == once


def test_filters_by_area_and_theme() -> None:
    birmingham = raised(ofsted_concern(), cqc_concern())
    k1 = ofsted_concern(area=KENT, theme="front_door")
    k2 = cqc_concern(area=KENT, theme="front_door")
    kent = raised(k1, k2)
    view = triage([birmingham, kent])
    assert [i.consideration for i in select(view, area=KENT)] == [kent]
    assert [i.consideration for i in select(view, theme=Theme.NEGLECT)] == [birmingham]
    assert select(view, area=KENT, theme=Theme.NEGLECT) == ()
    assert view.find(kent.id) is not None
    assert view.find(uuid.uuid4()) is None


def test_selected_areas_names_the_theme_and_time_of_the_selection() -> None:
    birmingham = raised(ofsted_concern(), cqc_concern())
    other = raised(
        ofsted_concern(theme="front_door"),
        cqc_concern(theme="front_door"),
    )
    kent = raised(ofsted_concern(area=KENT), cqc_concern(area=KENT))
    when = NOW - dt.timedelta(hours=3)
    view = triage(
        [
            birmingham,
            other,
            kent,
            decision(birmingham, JtaiDecision.SELECT, when),
            decision(other, JtaiDecision.SELECT, when),  # same time: the first theme wins
            decision(kent, JtaiDecision.SHORTLIST, when),
        ]
    )
    assert selected_areas(view) == {BIRMINGHAM: (Theme.FRONT_DOOR, when)}
    later = decision(birmingham, JtaiDecision.SELECT, NOW)
    assert selected_areas(triage([*view_events(view), later])) == {BIRMINGHAM: (Theme.NEGLECT, NOW)}


def view_events(view: TriageView) -> list[SignedEvent]:
    """The considerations and decisions a view was built from (rebuilt from it)."""
    events: list[SignedEvent] = []
    for item in view.items:
        c = item.consideration
        events.append(c)
        events.extend(
            decision(c, d.decision, d.at, id=d.id, source=d.source, reason=d.reason)
            for d in item.decisions
        )
    return events


def test_item_json_is_plain_json_with_the_decision_history() -> None:
    c = raised(ofsted_concern(), cqc_concern())
    made = decision(c, JtaiDecision.SHORTLIST, NOW)
    (item,) = triage([c, made]).items
    document = item_json(item)
    assert document["id"] == str(c.id)
    assert (document["area"], document["area_name"], document["region"]) == (
        BIRMINGHAM,
        "Birmingham",
        "West Midlands",
    )
    assert document["open"] is True
    assert document["decision"] == {
        "id": str(made.id),
        "by": "cqc",
        "at": NOW.isoformat(),
        "decision": "shortlist",
        "reason": made.reason,
    }
    assert document["contributing_inspectorates"] == ["cqc", "ofsted"]


def test_trim_keeps_short_text_and_cuts_long_text_on_one_line() -> None:
    assert trim("Referrals  wait\ntoo long.") == "Referrals wait too long."
    long = "word " * 100
    cut = trim(long)
    assert len(cut) == SUMMARY_WIDTH
    assert cut.endswith("…")
    assert trim("abcdef", 4) == "abc…"


# Deciding --------------------------------------------------------------------------------


def test_decide_builds_the_decision_and_its_audit_record() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    decision_id = uuid.uuid4()
    decided = decide(
        c,
        decision_id=decision_id,
        source=Inspectorate.HMICFRS,
        decision=JtaiDecision.SELECT,
        reason="Evidence from two inspectorates in one window.",
        at=NOW,
    )
    event = decided.event
    assert (event.id, event.source, event.occurred_at) == (decision_id, Inspectorate.HMICFRS, NOW)
    assert (event.consideration_id, event.area, event.theme) == (c.id, c.area, c.theme)
    assert decode_signed(encode_signed(event)) == event
    audit = decided.audit
    assert isinstance(audit, JtaiDecided)
    assert audit.actor == "inspectorate:hmicfrs"
    assert audit.event_ids == (decision_id, c.id, ofsted.id, cqc.id)
    assert (audit.decision_id, audit.consideration_id, audit.decision) == (
        decision_id,
        c.id,
        JtaiDecision.SELECT,
    )
    assert decode_record(encode_record(audit)) == audit
    assert b"Evidence" not in encode_record(audit)  # the reason never reaches the audit log


@pytest.mark.parametrize(
    ("reason", "rule"),
    [
        ("The case of Amelia Jones, aged 9, shows the front door fails.", "child_name"),
        ("A child (DOB 12/03/2011) waited three weeks.", "date_of_birth"),
    ],
)
def test_decide_refuses_personal_data_in_the_reason_naming_the_rule(reason: str, rule: str) -> None:
    c = raised(ofsted_concern(), cqc_concern())
    with pytest.raises(SchemaError) as caught:
        decide(
            c,
            decision_id=uuid.uuid4(),
            source=Inspectorate.CQC,
            decision=JtaiDecision.DECLINE,
            reason=reason,
            at=NOW,
        )
    message = str(caught.value)
    assert message.startswith("reason contains")
    assert f"rule {rule}" in message
    assert "Amelia" not in message
    assert "2011" not in message


@pytest.mark.parametrize("reason", ["", "x" * 2001])
def test_decide_refuses_an_empty_or_overlong_reason(reason: str) -> None:
    c = raised(ofsted_concern(), cqc_concern())
    with pytest.raises(SchemaError, match=r"^invalid decision: reason: "):
        decide(
            c,
            decision_id=uuid.uuid4(),
            source=Inspectorate.CQC,
            decision=JtaiDecision.DECLINE,
            reason=reason,
            at=NOW,
        )


# Properties: the view depends on the set of events, never on their order --------------

CONSIDERATIONS = (
    raised(ofsted_concern(), cqc_concern()),
    raised(ofsted_concern(area=KENT), cqc_concern(area=KENT)),
)


@st.composite
def decisions(draw: st.DrawFn) -> list[JtaiDecisionRecorded]:
    made = []
    for _ in range(draw(st.integers(0, 8))):
        target = draw(st.sampled_from(CONSIDERATIONS))
        unknown = draw(st.booleans()) and draw(st.booleans())
        made.append(
            decision(
                target,
                draw(st.sampled_from(JtaiDecision)),
                NOW - dt.timedelta(hours=draw(st.integers(0, 3))),  # ties are likely
                id=uuid.UUID(int=draw(st.integers(1, 2**32))),
                source=draw(st.sampled_from(Inspectorate)),
                consideration_id=uuid.uuid4() if unknown else target.id,
            )
        )
    unique = {d.id: d for d in made}  # one decision per id (a repeat is the same event)
    return list(unique.values())


@given(decisions(), st.randoms(use_true_random=False))
def test_order_of_decisions_does_not_matter_and_the_latest_stands(
    made: list[JtaiDecisionRecorded], random: Random
) -> None:
    events: list[SignedEvent] = [*CONSIDERATIONS, *made]
    shuffled = list(events)
    random.shuffle(shuffled)
    view = triage(events)
    assert triage(shuffled) == view
    known = {c.id for c in CONSIDERATIONS}
    assert len(view.ignored) == sum(d.consideration_id not in known for d in made)
    for item in view.items:
        mine = [d for d in made if d.consideration_id == item.consideration.id]
        latest = max(mine, key=lambda d: (d.occurred_at, d.id), default=None)
        current = item.current
        assert (current.id if current else None) == (latest.id if latest else None)
        assert item.is_open == (latest is None or latest.decision in OPEN_DECISIONS)
        assert (item in select(view)) == item.is_open
        chosen = selected_areas(view).get(item.consideration.area)
        if latest is not None and latest.decision is JtaiDecision.SELECT:
            assert chosen == (item.consideration.theme, latest.occurred_at)
        else:
            assert chosen is None


def _repeats(events: Sequence[SignedEvent]) -> list[SignedEvent]:
    return [*events, *events]


@given(decisions())
def test_repeating_every_event_changes_nothing(made: list[JtaiDecisionRecorded]) -> None:
    events: list[SignedEvent] = [*CONSIDERATIONS, *made]
    assert triage(_repeats(events)) == triage(events)


# One id, two publishers ---------------------------------------------------------------------


def test_one_id_from_two_publishers_shows_neither_finding_and_is_counted() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    impostor = cqc_concern(id=ofsted.id, summary="Not what Ofsted found.")
    view = triage([c, ofsted, cqc, impostor])
    (item,) = view.items
    assert [x.found for x in item.contributors] == [False, True]  # neither shown as Ofsted's
    assert view.conflicts == (ofsted.id,)
    assert triage([c, impostor, cqc, ofsted]) == view


def test_one_outcome_id_from_two_publishers_counts_for_neither() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    ncpi = outcome_for(ofsted, "hmicfrs", "ncpi", Outcome.ADDED_TO_SCOPE, T0 + dt.timedelta(1))
    clas = outcome_for(
        ofsted, "cqc", "clas", Outcome.NOT_RELEVANT, T0 + dt.timedelta(2), id=ncpi.id
    )
    view = triage([c, ofsted, cqc, ncpi, clas])
    assert view.items[0].contributors[0].outcomes == ()
    assert view.conflicts == (ncpi.id,)


def test_one_decision_id_from_two_publishers_is_ignored() -> None:
    c = raised(ofsted_concern(), cqc_concern())
    mine = decision(c, JtaiDecision.SELECT, NOW, source="cqc")
    theirs = decision(c, JtaiDecision.DECLINE, NOW, source="ofsted", id=mine.id)
    view = triage([c, mine, theirs])
    assert view.items[0].decisions == ()
    assert {(i.decision_id, i.reason) for i in view.ignored} == {
        (mine.id, IgnoredReason.ID_CONFLICT)
    }
    assert len(view.ignored) == 2
    assert selected_areas(view) == {}
    assert triage([c, theirs, mine]) == view


# What a read shows, and what marks an inbox ---------------------------------------------------


def test_showing_an_item_names_its_outcomes_and_decisions_too() -> None:
    ofsted, cqc = ofsted_concern(), cqc_concern()
    c = raised(ofsted, cqc)
    ncpi = outcome_for(ofsted, "hmicfrs", "ncpi", Outcome.INFORMS_SCHEDULING, T0 + dt.timedelta(1))
    first = decision(c, JtaiDecision.SHORTLIST, NOW - dt.timedelta(days=1))
    then = decision(c, JtaiDecision.SELECT, NOW)
    (item,) = triage([c, ofsted, cqc, ncpi, first, then]).items
    assert item.shown_ids == (c.id, ofsted.id, cqc.id, ncpi.id, first.id, then.id)


def test_selected_themes_are_every_theme_an_area_is_selected_on() -> None:
    neglect = raised(ofsted_concern(), cqc_concern())
    front = raised(ofsted_concern(theme="front_door"), cqc_concern(theme="front_door"))
    kent = raised(ofsted_concern(area=KENT), cqc_concern(area=KENT))
    one = decision(neglect, JtaiDecision.SELECT, NOW - dt.timedelta(hours=2))
    two = decision(front, JtaiDecision.SELECT, NOW - dt.timedelta(hours=1))
    view = triage([neglect, front, kent, one, two, decision(kent, JtaiDecision.DEFER, NOW)])
    assert selected_themes(view) == {
        BIRMINGHAM: ((Theme.FRONT_DOOR, two.id), (Theme.NEGLECT, one.id))
    }
    unknown = decision(neglect, JtaiDecision.SELECT, NOW, consideration_id=uuid.uuid4())
    assert selected_themes(triage([neglect, unknown])) == {}


# What the terminal shows -------------------------------------------------------------------

HOSTILE = "Late \x1b[2J\x1b]0;owned\x07 [bold red]urgent[/] :warning: \x9b31m\u202edone\r"


def _plain_console() -> Console:
    return Console(file=io.StringIO(), width=400, color_system=None, emoji=True)


def _printed(console: Console) -> str:
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def _assert_shown_safely(output: str) -> None:
    assert not any(c in output for c in "\x1b\x07\x9b\u202e\r")
    assert "\ufffd[2J" in output
    assert "[bold red]urgent[/]" in output
    assert ":warning:" in output


def test_jtai_list_and_show_print_hostile_text_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    ofsted, cqc = ofsted_concern(summary="Referrals wait. " + HOSTILE), cqc_concern()
    c = raised(ofsted, cqc, rationale="Two inspectorates. " + HOSTILE)
    made = decision(c, JtaiDecision.SHORTLIST, NOW, reason="Evidence. " + HOSTILE)
    (item,) = triage([c, ofsted, cqc, made]).items
    console = _plain_console()
    monkeypatch.setattr(jtai_cli, "_wide", lambda: console)
    jtai_cli._show(item)
    shown = _printed(console)
    _assert_shown_safely(shown)
    assert "owned" in shown  # shown, defused
    listed = _plain_console()
    listed.print(jtai_cli._table((item,), "1 open JTAI consideration"))
    assert not any(c in _printed(listed) for c in "\x1b\x07\x9b\u202e\r")
