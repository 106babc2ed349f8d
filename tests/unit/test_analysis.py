"""What analysts see (consumers/analysis.py): rows of every type, queries, the overview of
England, an area's timeline and recommendations, counts over time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.analysis import (
    KINDS,
    SUMMARY_WIDTH,
    FeedQuery,
    Item,
    Kind,
    Series,
    area_timeline,
    counts_over_time,
    kind_of,
    overview,
    project,
    recommendations,
    trim,
)
from consumers.jtai import consideration_id
from schemas.events import Theme
from schemas.jtai import JtaiConsiderationRequested, JtaiDecisionRecorded
from schemas.outcomes import DeliveryRecorded
from schemas.reference import local_authorities, regions
from tests.factories import NOW, concern, good_practice
from tests.loop_factories import outcome_overdue, outcome_recorded, recommendation, review

BIRMINGHAM, KENT, LEEDS, BRADFORD = "E08000025", "E10000016", "E08000035", "E08000032"
RECEIVED = NOW + dt.timedelta(seconds=3)
LIVE = sorted(c for c, a in local_authorities().items() if a.terminated_on is None)
REGION_NAMES = [r.name for r in regions().values()]


def consideration(**overrides: Any) -> JtaiConsiderationRequested:
    """The bus asks JTAI to consider neglect in Birmingham (two inspectorates' concerns)."""
    start = NOW - dt.timedelta(days=10)
    fields: dict[str, Any] = {
        "id": consideration_id(BIRMINGHAM, Theme.NEGLECT, start),
        "occurred_at": NOW - dt.timedelta(days=2),
        "area": BIRMINGHAM,
        "theme": "neglect",
        "window_start": start,
        "window_end": start + dt.timedelta(days=180),
        "trigger": "several_inspectorates",
        "contributing_event_ids": (uuid.uuid4(), uuid.uuid4()),
        "contributing_inspectorates": ("hmicfrs", "ofsted"),
        "rationale": "Concerns about neglect from two inspectorates within 180 days.",
    }
    fields.update(overrides)
    return JtaiConsiderationRequested.model_validate(fields)


def decision(about: JtaiConsiderationRequested, choice: str = "select") -> JtaiDecisionRecorded:
    return JtaiDecisionRecorded.model_validate(
        {
            "id": uuid.uuid4(),
            "source": "cqc",
            "occurred_at": NOW - dt.timedelta(hours=2),
            "consideration_id": about.id,
            "area": about.area,
            "theme": about.theme,
            "decision": choice,
            "reason": "Evidence from two inspectorates in one window.",
        }
    )


def projected(event: Any) -> Item:
    item = project(event, RECEIVED)
    assert item is not None
    return item


# -- rows ----------------------------------------------------------------------------------


def test_a_concern_as_a_row() -> None:
    event = concern(severity=3, immediate_risk=True, finding="cause_of_concern")
    item = projected(event)
    assert item == Item(
        id=event.id,
        type="uk.inspectorate.concern.raised.v1",
        kind="concern",
        source="ofsted",
        occurred_at=NOW - dt.timedelta(hours=1),
        received_at=RECEIVED,
        area=BIRMINGHAM,
        area_name="Birmingham",
        region="West Midlands",
        theme=Theme.NEGLECT,
        summary="Referrals wait too long for a decision.",
        severity=3,
        finding="cause_of_concern",
        immediate_risk=True,
        agencies=("local_authority",),
        programme="ilacs",
    )
    assert item.as_json() == {
        "id": str(event.id),
        "type": "uk.inspectorate.concern.raised.v1",
        "kind": "concern",
        "source": "ofsted",
        "occurred_at": "2026-11-22T11:00:00Z",
        "received_at": "2026-11-22T12:00:03Z",
        "area": BIRMINGHAM,
        "area_name": "Birmingham",
        "region": "West Midlands",
        "theme": "neglect",
        "severity": 3,
        "finding": "cause_of_concern",
        "immediate_risk": True,
        "subject_agencies": ["local_authority"],
        "summary": "Referrals wait too long for a decision.",
        "about": None,
        "status": None,
        "programme": "ilacs",
    }


def test_exceptional_practice_as_a_row() -> None:
    event = good_practice()
    item = projected(event)
    assert (item.kind, item.source, item.area, item.area_name, item.region) == (
        "exceptional_practice",
        "cqc",
        KENT,
        "Kent",
        "South East",
    )
    assert (item.severity, item.finding, item.about, item.status) == (None, None, None, None)
    assert (item.agencies, item.programme, item.theme) == (("health",), "clas", Theme.MENTAL_HEALTH)
    assert item.summary == event.summary


def test_a_recommendation_and_its_review_as_rows() -> None:
    made = recommendation()
    item = projected(made)
    assert (item.kind, item.source, item.status, item.agencies, item.programme) == (
        "recommendation",
        "hmicfrs",
        "police",
        ("police",),
        "ncpi",
    )
    assert item.about is None
    reviewed = review(recommendation_id=made.id, progress="progressing")
    row = projected(reviewed)
    assert (row.kind, row.about, row.status, row.summary) == (
        "review",
        made.id,
        "progressing",
        "Progress on joint strategy discussions has been slow.",
    )
    assert row.as_json()["about"] == str(made.id)


def test_an_outcome_as_a_row_shows_its_note_as_the_summary() -> None:
    event = outcome_recorded()
    item = projected(event)
    assert (item.kind, item.source, item.about, item.status, item.programme) == (
        "outcome",
        "hmicfrs",
        event.finding_id,
        "informs_scheduling",
        "ncpi",
    )
    assert item.summary == event.note
    assert item.severity is None


def test_a_jtai_consideration_and_decision_as_rows() -> None:
    asked = consideration()
    item = projected(asked)
    assert (item.kind, item.source, item.status, item.summary) == (
        "consideration",
        "liaison",
        "several_inspectorates",
        asked.rationale,
    )
    assert item.related == asked.contributing_event_ids
    assert item.as_json()["related"] == [str(i) for i in asked.contributing_event_ids]
    decided = projected(decision(asked, "decline"))
    assert (decided.kind, decided.source, decided.about, decided.status) == (
        "decision",
        "cqc",
        asked.id,
        "decline",
    )
    assert "related" not in decided.as_json()


def test_reminders_and_delivery_results_are_not_rows() -> None:
    assert project(outcome_overdue(), RECEIVED) is None
    finding = concern()
    delivered = DeliveryRecorded.model_validate(
        {
            "id": uuid.uuid4(),
            "source": "hmicfrs",
            "occurred_at": NOW,
            "area": finding.area,
            "programme": "peel",
            "event_id": finding.id,
            "status": "delivered",
            "attempts": 1,
        }
    )
    assert project(delivered, RECEIVED) is None


def test_every_kind_has_a_short_name_and_nothing_else_does() -> None:
    assert set(KINDS.values()) == {
        "concern",
        "exceptional_practice",
        "recommendation",
        "review",
        "outcome",
        "consideration",
        "decision",
    }
    assert kind_of("uk.inspectorate.outcome.overdue.v1") is None
    assert kind_of("uk.inspectorate.delivery.recorded.v1") is None
    assert kind_of("uk.inspectorate.concern.raised.v1") == "concern"


def test_trim_known_answers() -> None:
    assert trim("  one\n two\tthree  ") == "one two three"
    assert trim("a" * SUMMARY_WIDTH) == "a" * SUMMARY_WIDTH
    assert trim("a" * (SUMMARY_WIDTH + 1)) == "a" * (SUMMARY_WIDTH - 1) + "\u2026"
    assert trim("abc def", 5) == "abc\u2026"
    assert trim("", 5) == ""


@given(st.text(), st.integers(min_value=1, max_value=200))
def test_trim_is_one_line_and_never_wider(text: str, width: int) -> None:
    cut = trim(text, width)
    assert len(cut) <= width
    assert cut.split() == cut.split(" ") or cut == ""
    flat = " ".join(text.split())
    if len(flat) <= width:
        assert cut == flat
    else:
        assert cut.endswith("\u2026")
        assert flat.startswith(cut[:-1])


# -- queries -------------------------------------------------------------------------------

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
KIND_NAMES: list[Kind] = sorted(set(KINDS.values()))
SOURCES = ["ofsted", "cqc", "hmicfrs", "hmi_probation", "hmi_prisons", "liaison"]


def row(
    area: str = LEEDS,
    *,
    kind: Kind = "concern",
    theme: Theme = Theme.NEGLECT,
    occurred_at: dt.datetime = T0,
    **fields: Any,
) -> Item:
    """An item built directly (the projection has its own tests above)."""
    authority = local_authorities()[area]
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "type": next(t for t, k in KINDS.items() if k == kind),
        "kind": kind,
        "source": "ofsted",
        "occurred_at": occurred_at,
        "received_at": occurred_at + dt.timedelta(minutes=5),
        "area": area,
        "area_name": authority.name,
        "region": authority.region.name,
        "theme": theme,
        "summary": "s",
        "severity": 2 if kind == "concern" else None,
    }
    values.update(fields)
    return Item(**values)


def whens(days: int = 60) -> st.SearchStrategy[dt.datetime]:
    return st.integers(min_value=0, max_value=days * 24 * 60).map(
        lambda m: T0 + dt.timedelta(minutes=m)
    )


items = st.builds(
    lambda area, kind, theme, source, severity, when, delay: row(
        area,
        kind=kind,
        theme=theme,
        source=source,
        severity=severity if kind == "concern" else None,
        occurred_at=when,
        received_at=when + dt.timedelta(minutes=delay),
    ),
    st.sampled_from(LIVE),
    st.sampled_from(KIND_NAMES),
    st.sampled_from(list(Theme)),
    st.sampled_from(SOURCES),
    st.integers(min_value=1, max_value=4),
    whens(),
    st.integers(min_value=0, max_value=3000),
)

queries = st.builds(
    FeedQuery,
    areas=st.frozensets(st.sampled_from(LIVE), max_size=20),
    regions=st.frozensets(st.sampled_from(REGION_NAMES), max_size=3),
    themes=st.frozensets(st.sampled_from(list(Theme)), max_size=6),
    sources=st.frozensets(st.sampled_from(SOURCES), max_size=3),
    kinds=st.frozensets(st.sampled_from(KIND_NAMES), max_size=4),
    min_severity=st.none() | st.integers(min_value=1, max_value=4),
    since=st.none() | whens(),
    until=st.none() | whens(),
    received_since=st.none() | whens(),
)

UNASKED: dict[str, Any] = {
    "themes": frozenset(),
    "sources": frozenset(),
    "kinds": frozenset(),
    "min_severity": None,
    "since": None,
    "until": None,
    "received_since": None,
}


@settings(max_examples=300)
@given(queries, items, st.sets(st.sampled_from([*UNASKED, "place"])))
def test_dropping_conditions_never_unadmits(
    query: FeedQuery, item: Item, dropped: set[str]
) -> None:
    unasked: dict[str, Any] = {name: UNASKED[name] for name in dropped if name != "place"}
    if "place" in dropped:
        unasked.update(areas=frozenset(), regions=frozenset())
    fewer = dataclasses.replace(query, **unasked)
    if query.admits(item):
        assert fewer.admits(item)
    assert FeedQuery().admits(item)


@settings(max_examples=300)
@given(queries, items)
def test_a_query_admits_exactly_what_every_condition_admits(query: FeedQuery, item: Item) -> None:
    place = not (query.areas or query.regions) or (
        item.area in query.areas or item.region in query.regions
    )
    oracle = (
        place
        and (not query.themes or item.theme in query.themes)
        and (not query.sources or item.source in query.sources)
        and (not query.kinds or item.kind in query.kinds)
        and (query.min_severity is None or (item.severity or 0) >= query.min_severity)
        and (query.since is None or query.since <= item.occurred_at)
        and (query.until is None or item.occurred_at < query.until)
        and (query.received_since is None or query.received_since <= item.received_at)
    )
    assert query.admits(item) == oracle


def test_areas_and_regions_are_either_or() -> None:
    query = FeedQuery(areas=frozenset({KENT}), regions=frozenset({"Yorkshire and The Humber"}))
    assert query.admits(row(KENT))
    assert query.admits(row(BRADFORD))
    assert not query.admits(row(BIRMINGHAM))
    severe = FeedQuery(min_severity=3)
    assert not severe.admits(row(LEEDS, kind="outcome"))
    assert severe.admits(row(LEEDS, severity=3))
    assert not severe.admits(row(LEEDS, severity=2))
    window = FeedQuery(since=T0, until=T0 + dt.timedelta(days=1))
    assert window.admits(row(occurred_at=T0))
    assert not window.admits(row(occurred_at=T0 + dt.timedelta(days=1)))


def test_a_query_as_strings_for_the_audit_record() -> None:
    assert FeedQuery().as_strings() == {}
    query = FeedQuery(
        areas=frozenset({LEEDS, KENT}),
        regions=frozenset({"London", "North East"}),
        themes=frozenset({Theme.NEGLECT, Theme.DOMESTIC_ABUSE}),
        sources=frozenset({"ofsted"}),
        kinds=frozenset({"outcome", "concern"}),
        min_severity=3,
        since=dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        until=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        received_since=dt.datetime(2026, 6, 2, 12, 30, tzinfo=dt.UTC),
    )
    assert query.as_strings() == {
        "area": "E08000035,E10000016",
        "region": "London,North East",
        "theme": "domestic_abuse,neglect",
        "source": "ofsted",
        "type": "concern,outcome",
        "severity": ">=3",
        "since": "2026-06-01T00:00:00Z",
        "until": "2026-07-01T00:00:00Z",
        "received_since": "2026-06-02T12:30:00Z",
    }


def test_a_long_list_of_areas_is_cut_to_500_characters() -> None:
    strings = FeedQuery(areas=frozenset(LIVE)).as_strings()
    assert len(strings["area"]) == 500
    assert ",".join(sorted(LIVE)).startswith(strings["area"])


# -- the overview --------------------------------------------------------------------------

SOME_AREAS = [LEEDS, BRADFORD, KENT, BIRMINGHAM, "E09000001"]
SINCE, UNTIL = T0 + dt.timedelta(days=10), T0 + dt.timedelta(days=40)

area_items = st.builds(
    lambda area, kind, theme, severity, when: row(
        area,
        kind=kind,
        theme=theme,
        severity=severity if kind == "concern" else None,
        occurred_at=when,
    ),
    st.sampled_from(SOME_AREAS),
    st.sampled_from(["concern", "concern", "concern", "outcome", "exceptional_practice"]),
    st.sampled_from([Theme.NEGLECT, Theme.DOMESTIC_ABUSE, Theme.EARLY_HELP]),
    st.integers(min_value=1, max_value=4),
    whens(),
)


@settings(max_examples=200)
@given(
    st.lists(area_items, max_size=40),
    st.lists(st.integers(min_value=0, max_value=39), max_size=10),
    st.lists(st.sampled_from(SOME_AREAS), min_size=1, max_size=6),
    st.frozensets(st.sampled_from([Theme.NEGLECT, Theme.DOMESTIC_ABUSE]), max_size=2),
)
def test_overview_counts_every_concern_in_the_window_once(
    found: list[Item], repeats: list[int], asked: list[str], themes: frozenset[Theme]
) -> None:
    # Records read twice (a redelivery): the same item again.
    stream = found + [found[i] for i in repeats if i < len(found)]
    totals = overview(stream, asked, SINCE, UNTIL, themes=themes)
    assert [t.code for t in totals] == list(dict.fromkeys(asked))
    counted = {
        i.id: i
        for i in found
        if i.kind == "concern"
        and i.area in asked
        and SINCE <= i.occurred_at < UNTIL
        and (not themes or i.theme in themes)
    }
    assert sum(t.total for t in totals) == len(counted)
    for t in totals:
        mine = [i for i in counted.values() if i.area == t.code]
        assert t.total == len(mine) == sum(t.by_theme.values()) == len(t.event_ids)
        assert set(t.event_ids) == {i.id for i in mine}
        assert t.max_severity == max((i.severity or 0 for i in mine), default=0)
        assert t.severe == sum(1 for i in mine if (i.severity or 0) >= 3)
        assert list(t.by_theme.values()) == sorted(t.by_theme.values(), reverse=True)
        authority = local_authorities()[t.code]
        assert (t.name, t.region, t.jtai) == (authority.name, authority.region.name, "")


def test_overview_known_answer_and_jtai_marks() -> None:
    a = row(LEEDS, severity=4, occurred_at=SINCE)
    b = row(LEEDS, theme=Theme.EARLY_HELP, severity=1, occurred_at=UNTIL - dt.timedelta(seconds=1))
    late = row(LEEDS, occurred_at=UNTIL)
    early = row(LEEDS, occurred_at=SINCE - dt.timedelta(seconds=1))
    kent = row(KENT, severity=3, occurred_at=SINCE)
    totals = overview(
        [a, b, late, early, kent, a],
        [LEEDS, KENT, BRADFORD, BIRMINGHAM],
        SINCE,
        UNTIL,
        considered={LEEDS, KENT},
        selected={KENT, BRADFORD},
    )
    leeds, kent_t, bradford, birmingham = totals
    assert leeds.as_json() == {
        "code": LEEDS,
        "name": "Leeds",
        "region": "Yorkshire and The Humber",
        "by_theme": {"early_help": 1, "neglect": 1},
        "total": 2,
        "max_severity": 4,
        "severe": 1,
        "jtai": "considered",
    }
    assert leeds.event_ids == (a.id, b.id)
    assert (kent_t.total, kent_t.severe, kent_t.jtai) == (1, 1, "selected")
    assert (bradford.total, bradford.max_severity, bradford.jtai) == (0, 0, "selected")
    assert (birmingham.total, birmingham.by_theme, birmingham.jtai) == (0, {}, "")


# -- an area -------------------------------------------------------------------------------


def test_an_area_s_timeline_is_newest_first_once_each() -> None:
    old = row(LEEDS, kind="outcome", occurred_at=T0)
    new = row(LEEDS, occurred_at=T0 + dt.timedelta(days=2))
    twin_a = row(LEEDS, occurred_at=T0 + dt.timedelta(days=1), id=uuid.UUID(int=1))
    twin_b = row(LEEDS, occurred_at=T0 + dt.timedelta(days=1), id=uuid.UUID(int=2))
    elsewhere = row(KENT, occurred_at=T0 + dt.timedelta(days=3))
    timeline = area_timeline([old, twin_a, new, elsewhere, twin_b, new, old], LEEDS)
    assert timeline == (new, twin_b, twin_a, old)
    assert area_timeline([elsewhere], LEEDS) == ()


@given(st.lists(area_items, max_size=30))
def test_a_timeline_holds_every_item_of_the_area_in_order(found: list[Item]) -> None:
    timeline = area_timeline(found + found, LEEDS)
    assert {i.id for i in timeline} == {i.id for i in found if i.area == LEEDS}
    assert len(timeline) == len({i.id for i in timeline})
    keys = [(i.occurred_at, str(i.id)) for i in timeline]
    assert keys == sorted(keys, reverse=True)


def test_recommendations_with_their_publisher_s_reviews() -> None:
    first = projected(recommendation(occurred_at=NOW - dt.timedelta(days=30)))
    second = projected(recommendation(occurred_at=NOW - dt.timedelta(days=10)))
    early = projected(review(recommendation_id=first.id, occurred_at=NOW - dt.timedelta(days=20)))
    later = projected(review(recommendation_id=first.id, occurred_at=NOW - dt.timedelta(days=5)))
    # CQC cannot review HMICFRS's recommendation; a review about another area is not this one's.
    other_publisher = projected(
        review(
            recommendation_id=first.id,
            source="cqc",
            programme="clas",
            subject_agencies=["health"],
            recipient="health",
        )
    )
    other_area = projected(review(recommendation_id=second.id, area=KENT))
    orphan = projected(review())
    kent_rec = projected(recommendation(area=KENT))
    found = [later, other_publisher, first, orphan, early, second, other_area, kent_rec]
    assert recommendations(found, BIRMINGHAM) == ((second, ()), (first, (early, later)))
    assert recommendations(found, KENT) == ((kent_rec, ()),)
    assert recommendations(found, LEEDS) == ()


def test_a_review_read_twice_is_listed_once() -> None:
    made = projected(recommendation())
    reviewed = projected(review(recommendation_id=made.id))
    assert recommendations([made, reviewed, made, reviewed], BIRMINGHAM) == ((made, (reviewed,)),)


# -- counts over time ----------------------------------------------------------------------

START, END = dt.date(2026, 1, 5), dt.date(2026, 2, 2)


def on(day: dt.date, theme: Theme = Theme.NEGLECT, hour: int = 12, **fields: Any) -> Item:
    return row(
        LEEDS,
        theme=theme,
        occurred_at=dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC),
        **fields,
    )


def test_bucket_edges() -> None:
    monday = on(START, hour=0)
    sunday_night = row(LEEDS, occurred_at=dt.datetime(2026, 1, 11, 23, 59, 59, tzinfo=dt.UTC))
    next_monday = on(START + dt.timedelta(days=7), hour=0)
    last_day = on(END - dt.timedelta(days=1), theme=Theme.EARLY_HELP)
    after = on(END, hour=0)
    before = on(START - dt.timedelta(days=1), hour=23)
    # 00:30 in Paris is 23:30 the day before in UTC: before the start.
    abroad = row(
        LEEDS,
        occurred_at=dt.datetime(2026, 1, 5, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    outcome = on(START, kind="outcome")
    series = counts_over_time(
        [monday, sunday_night, next_monday, last_day, after, before, abroad, outcome, monday],
        START,
        END,
    )
    assert series == Series(
        starts=(
            dt.date(2026, 1, 5),
            dt.date(2026, 1, 12),
            dt.date(2026, 1, 19),
            dt.date(2026, 1, 26),
        ),
        counts={Theme.NEGLECT: (2, 1, 0, 0), Theme.EARLY_HELP: (0, 0, 0, 1)},
        bucket_days=7,
    )
    assert series.total == 4


def test_a_short_last_bucket_and_empty_ranges() -> None:
    series = counts_over_time([on(START + dt.timedelta(days=9))], START, START + dt.timedelta(10))
    assert series.starts == (START, START + dt.timedelta(days=7))
    assert series.counts == {Theme.NEGLECT: (0, 1)}
    assert counts_over_time([on(START)], START, START) == Series((), {}, 7)
    assert counts_over_time([on(START)], START, END, bucket_days=0) == Series((), {}, 1)
    assert counts_over_time([], START, END).counts == {}
    assert counts_over_time([], START, END).total == 0


@settings(max_examples=200)
@given(
    st.lists(area_items, max_size=40),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=31),
)
def test_counts_over_time_sum_to_the_concerns_in_range(
    found: list[Item], offset: int, length: int, bucket_days: int
) -> None:
    start = T0.date() + dt.timedelta(days=offset)
    end = start + dt.timedelta(days=length)
    series = counts_over_time(found + found[:3], start, end, bucket_days=bucket_days)
    concerns = {
        i.id
        for i in found
        if i.kind == "concern" and start <= i.occurred_at.astimezone(dt.UTC).date() < end
    }
    assert series.total == len(concerns)
    assert len(series.starts) == -(-length // bucket_days)
    assert series.starts[0] == start
    assert all(
        b - a == dt.timedelta(days=bucket_days) for a, b in itertools.pairwise(series.starts)
    )
    assert all(len(c) == len(series.starts) and sum(c) > 0 for c in series.counts.values())
    busiest = [(-sum(c), t.value) for t, c in series.counts.items()]
    assert busiest == sorted(busiest)


@pytest.mark.parametrize("kind", ["outcome", "exceptional_practice", "review", "decision"])
def test_only_concerns_are_counted(kind: Kind) -> None:
    assert counts_over_time([on(START, kind=kind)], START, END).total == 0
    assert overview([on(START, kind=kind)], [LEEDS], T0, UNTIL)[0].total == 0
