"""What an analyst asks the feed for (services/reader/query.py): values resolved or refused
with suggestions, refusals outside the scope, and what every view may show."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consumers.analysis import KINDS, FeedQuery, Item, Kind
from schemas.audit import AnalystScope
from schemas.errors import SchemaError
from schemas.events import Theme
from schemas.reference import local_authorities, regions
from services.reader.query import (
    build_query,
    in_scope,
    parse_feed_areas,
    parse_kinds,
    parse_severity,
    parse_sources,
    query_refusal,
    scoped_areas,
)
from services.reader.scope import OUT_OF_SCOPE, parse_regions, parse_themes

TODAY = dt.date(2026, 11, 29)
LEEDS, KENT, BRADFORD, CAMDEN = "E08000035", "E10000016", "E08000032", "E09000007"
NORTH_YORKSHIRE, OLD_NORTH_YORKSHIRE = "E06000065", "E10000023"
YORKSHIRE = "Yorkshire and The Humber"
LIVE = sorted(c for c, a in local_authorities().items() if a.terminated_on is None)
ALL = sorted(local_authorities())
REGION_NAMES = [r.name for r in regions().values()]


def one_area(value: str, today: dt.date = TODAY) -> tuple[str, ...]:
    return tuple(sorted(build_query(today=today, areas=[value]).areas))


# -- areas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Leeds", "leeds", " LEEDS ", "E08000035", "e08000035"])
def test_leeds_by_name_or_code(value: str) -> None:
    assert one_area(value) == (LEEDS,)


def test_a_name_means_the_live_authority_of_that_name() -> None:
    # North Yorkshire: the county until 31 March 2023, the unitary since.
    assert one_area("North Yorkshire") == (NORTH_YORKSHIRE,)
    assert parse_feed_areas(["North Yorkshire", "Leeds", "leeds", "Kent"], TODAY) == (
        NORTH_YORKSHIRE,
        LEEDS,
        KENT,
    )
    assert parse_feed_areas([], TODAY) == ()


def test_a_retired_code_names_its_successor() -> None:
    with pytest.raises(SchemaError) as refused:
        build_query(today=TODAY, areas=[OLD_NORTH_YORKSHIRE])
    message = str(refused.value)
    assert message.startswith("E10000023 (North Yorkshire) ended on 2023-03-31")
    assert "E06000065 North Yorkshire" in message
    assert message.endswith("nearest: E06000065")
    assert "\n" not in message


def test_a_retired_code_is_still_live_on_its_last_day() -> None:
    assert one_area(OLD_NORTH_YORKSHIRE, dt.date(2023, 3, 31)) == (OLD_NORTH_YORKSHIRE,)


def test_a_lower_tier_code_is_explained() -> None:
    with pytest.raises(SchemaError, match=r"'E07000123' is a lower-tier \(district\) code"):
        build_query(today=TODAY, areas=["E07000123"])


@pytest.mark.parametrize(
    ("value", "nearest"), [("Leedz", "Leeds"), ("Bradferd", "Bradford"), ("E0800035", LEEDS)]
)
def test_a_misspelt_area_is_named_with_suggestions(value: str, nearest: str) -> None:
    with pytest.raises(SchemaError) as refused:
        build_query(today=TODAY, areas=[value])
    message = str(refused.value)
    assert message.startswith(f"{value!r} is not an upper-tier local authority")
    assert "nearest: " in message
    assert nearest in message.split("nearest: ", 1)[1]


def test_a_retired_code_is_not_suggested_for_a_misspelling() -> None:
    with pytest.raises(SchemaError) as refused:
        build_query(today=TODAY, areas=["E1000002"])
    assert OLD_NORTH_YORKSHIRE not in str(refused.value)


def test_an_authority_not_yet_begun_is_not_live() -> None:
    before = dt.date(2025, 4, 1)
    assert parse_feed_areas(["Barnsley"], before) == ("E08000016",)
    scope = AnalystScope(regions=(YORKSHIRE,), themes=tuple(Theme))
    assert "E08000038" not in scoped_areas(scope, before)


# -- themes, regions, sources, kinds, severity ---------------------------------------------


def test_themes_and_regions() -> None:
    query = build_query(
        today=TODAY, themes=["Neglect", "domestic-abuse"], region_names=["london", "E12000003"]
    )
    assert query.themes == {Theme.NEGLECT, Theme.DOMESTIC_ABUSE}
    assert query.regions == {"London", YORKSHIRE}
    with pytest.raises(SchemaError, match=r"^'neglct' is not a theme; nearest: neglect"):
        build_query(today=TODAY, themes=["neglct"])
    with pytest.raises(SchemaError, match=r"^'Yorks' is not an English region"):
        build_query(today=TODAY, region_names=["Yorks"])


def test_sources_by_wire_value_in_any_case_or_words() -> None:
    assert parse_sources(["Ofsted", "HMI Probation", "hmi-prisons", " cqc "]) == {
        "ofsted",
        "hmi_probation",
        "hmi_prisons",
        "cqc",
    }
    with pytest.raises(SchemaError, match=r"^'ofstead' is not an inspectorate; nearest: ofsted"):
        parse_sources(["ofstead"])


def test_kinds_by_short_name_or_wire_type() -> None:
    assert parse_kinds(
        [
            "concern",
            "Exceptional practice",
            "exceptional-practice",
            "uk.inspectorate.finding.outcome_recorded.v1",
            "uk.inspectorate.jtai.decision_recorded.v1",
        ]
    ) == {"concern", "exceptional_practice", "outcome", "decision"}
    assert parse_kinds(KINDS) == set(KINDS.values())
    with pytest.raises(SchemaError, match=r"^'concerns' is not an event type; nearest: concern"):
        parse_kinds(["concerns"])
    with pytest.raises(SchemaError, match="is not an event type"):
        parse_kinds(["uk.inspectorate.outcome.overdue.v1"])


@pytest.mark.parametrize(
    ("value", "least"), [("1", 1), (" 4 ", 4), (3, 3), ("", None), (None, None)]
)
def test_severity(value: str | int | None, least: int | None) -> None:
    assert parse_severity(value) == least
    assert build_query(today=TODAY, severity=value).min_severity == least


@pytest.mark.parametrize("value", ["0", "5", "x", "-1", "2.5", 0, 5])
def test_a_severity_outside_one_to_four_is_refused(value: str | int) -> None:
    with pytest.raises(SchemaError, match=r"is not a severity: give 1, 2, 3 or 4"):
        build_query(today=TODAY, severity=value)


def test_a_window_must_end_after_it_starts() -> None:
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with pytest.raises(SchemaError, match="the end of the window must be after its start"):
        build_query(today=TODAY, since=start, until=start)
    query = build_query(today=TODAY, since=start, until=start + dt.timedelta(days=1))
    assert (query.since, query.until) == (start, start + dt.timedelta(days=1))


def test_nothing_asked_is_everything() -> None:
    assert build_query(today=TODAY) == FeedQuery()


# -- scope ---------------------------------------------------------------------------------

SCOPE = AnalystScope(areas=(LEEDS,), regions=("London",), themes=(Theme.NEGLECT,))


def test_inside_the_scope_is_not_refused() -> None:
    query = build_query(today=TODAY, areas=["Leeds", "Camden"], region_names=["London"])
    assert query_refusal(SCOPE, query) is None
    assert query_refusal(SCOPE, build_query(today=TODAY, themes=["neglect"])) is None
    assert query_refusal(SCOPE, FeedQuery()) is None


def test_an_area_outside_the_scope_is_refused_by_name() -> None:
    refused = query_refusal(SCOPE, build_query(today=TODAY, areas=["Kent", "Leeds"]))
    assert refused is not None
    assert refused.reason == OUT_OF_SCOPE
    assert refused.detail.startswith("area E10000016 (Kent, South East) is outside your scope")


def test_a_region_outside_the_scope_is_refused_even_when_some_of_its_areas_are_in() -> None:
    refused = query_refusal(SCOPE, build_query(today=TODAY, region_names=[YORKSHIRE]))
    assert refused is not None
    assert refused.reason == OUT_OF_SCOPE
    assert refused.detail.startswith(f"region {YORKSHIRE} is outside your scope")


def test_a_theme_outside_the_scope_is_refused() -> None:
    refused = query_refusal(SCOPE, build_query(today=TODAY, themes=["neglect", "early help"]))
    assert refused is not None
    assert refused.detail.startswith("theme early_help is outside your scope")


scopes = st.builds(
    AnalystScope,
    areas=st.lists(st.sampled_from(LIVE), max_size=6, unique=True).map(tuple),
    regions=st.lists(st.sampled_from(REGION_NAMES), max_size=3, unique=True).map(tuple),
    themes=st.lists(st.sampled_from(list(Theme)), max_size=5, unique=True).map(tuple),
)
queries = st.builds(
    FeedQuery,
    areas=st.frozensets(st.sampled_from(LIVE), max_size=4),
    regions=st.frozensets(st.sampled_from(REGION_NAMES), max_size=2),
    themes=st.frozensets(st.sampled_from(list(Theme)), max_size=3),
    kinds=st.frozensets(st.sampled_from(sorted(set(KINDS.values()))), max_size=2),
    min_severity=st.none() | st.integers(min_value=1, max_value=4),
)


@st.composite
def items(draw: st.DrawFn) -> Item:
    area = draw(st.sampled_from(ALL))
    authority = local_authorities()[area]
    kind: Kind = draw(st.sampled_from(sorted(set(KINDS.values()))))
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return Item(
        id=uuid.uuid4(),
        type=next(t for t, k in KINDS.items() if k == kind),
        kind=kind,
        source="ofsted",
        occurred_at=when,
        received_at=when,
        area=area,
        area_name=authority.name,
        region=authority.region.name,
        theme=draw(st.sampled_from(list(Theme))),
        summary="s",
        severity=draw(st.integers(min_value=1, max_value=4)) if kind == "concern" else None,
    )


def inside(scope: AnalystScope, item: Item) -> bool:
    """Need-to-know, written out plainly from the reference data."""
    region = local_authorities()[item.area].region.name
    return (item.area in scope.areas or region in scope.regions) and item.theme in scope.themes


@settings(max_examples=300)
@given(scopes, queries, items())
def test_nothing_outside_the_scope_is_ever_shown(
    scope: AnalystScope, query: FeedQuery, item: Item
) -> None:
    shown = in_scope(scope, query, item)
    assert shown == (inside(scope, item) and query.admits(item))
    # Whatever is asked, and even when nothing is asked.
    assert not in_scope(scope, FeedQuery(), item) or inside(scope, item)


@settings(max_examples=200)
@given(scopes, queries)
def test_a_query_is_refused_exactly_when_it_names_something_outside_the_scope(
    scope: AnalystScope, query: FeedQuery
) -> None:
    outside = (
        any(
            a not in scope.areas and local_authorities()[a].region.name not in scope.regions
            for a in query.areas
        )
        or any(r not in scope.regions for r in query.regions)
        or any(t not in scope.themes for t in query.themes)
    )
    refused = query_refusal(scope, query)
    assert (refused is not None) == outside
    if refused is not None:
        assert refused.reason == OUT_OF_SCOPE
        assert "outside your scope" in refused.detail


def test_scoped_areas_by_region_then_name_live_only() -> None:
    scope = AnalystScope(
        areas=(KENT, OLD_NORTH_YORKSHIRE, CAMDEN), regions=(YORKSHIRE,), themes=(Theme.NEGLECT,)
    )
    areas = scoped_areas(scope, TODAY)
    yorkshire = sorted(
        (a.name, c)
        for c, a in local_authorities().items()
        if a.region.name == YORKSHIRE and a.terminated_on is None
    )
    assert areas == (*(c for _, c in yorkshire), CAMDEN, KENT)
    assert OLD_NORTH_YORKSHIRE not in areas
    assert "E08000016" not in areas  # Barnsley's code until April 2025
    assert areas[:3] == ("E08000038", BRADFORD, "E08000033")  # Barnsley, Bradford, Calderdale
    assert scoped_areas(scope, dt.date(2023, 3, 31))[-1] == KENT
    assert OLD_NORTH_YORKSHIRE in scoped_areas(scope, dt.date(2023, 3, 31))


@settings(max_examples=100)
@given(scopes)
def test_scoped_areas_are_live_and_inside_the_scope(scope: AnalystScope) -> None:
    areas = scoped_areas(scope, TODAY)
    assert len(set(areas)) == len(areas)
    expected = {
        c
        for c, a in local_authorities().items()
        if a.terminated_on is None and (c in scope.areas or a.region.name in scope.regions)
    }
    assert set(areas) == expected
    order = [REGION_NAMES.index(local_authorities()[c].region.name) for c in areas]
    assert order == sorted(order)


# -- fuzz: any text is a value or one SchemaError ------------------------------------------


def value_or_schema_error(parse: Callable[..., object], *args: object) -> None:
    try:
        parse(*args)
    except SchemaError as refused:
        message = str(refused)
        assert message
        assert "\n" not in message


texts = st.text() | st.sampled_from(["", " ", ",", "E07", "E0700012X", "E12000003", "\x00"])


@given(texts)
def test_any_area_text(value: str) -> None:
    value_or_schema_error(parse_feed_areas, [value], TODAY)
    value_or_schema_error(lambda v: build_query(today=TODAY, areas=[v]), value)


@given(texts)
def test_any_region_theme_source_or_kind_text(value: str) -> None:
    for parse in (parse_regions, parse_themes, parse_sources, parse_kinds):
        value_or_schema_error(parse, [value])


@given(texts)
@example("\u00b2")
def test_any_severity_text(value: str) -> None:
    value_or_schema_error(parse_severity, value)
    value_or_schema_error(lambda v: build_query(today=TODAY, severity=v), value)
