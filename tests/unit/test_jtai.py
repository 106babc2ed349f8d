"""The JTAI watch (consumers/jtai.py) and the consideration it emits (schemas/jtai.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.jtai import JTAI_NAMESPACE, JtaiWatch, consideration_id
from schemas.errors import ConfigurationError, SchemaError
from schemas.events import (
    MAX_EVENT_BYTES,
    Classification,
    ConcernRaised,
    InspectorateEvent,
    Progress,
    RecommendationReviewed,
    Theme,
)
from schemas.inspectorates import PROGRAMMES, Inspectorate
from schemas.jtai import (
    JTAI_CONSIDERATION_REQUESTED,
    JtaiConsiderationRequested,
    JtaiTrigger,
    decode_consideration,
    encode_consideration,
)
from tests.factories import concern, good_practice
from tests.loop_factories import recommendation, review

T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
WINDOW = dt.timedelta(days=180)
BIRMINGHAM = "E08000025"
KENT = "E10000016"

Raised = JtaiConsiderationRequested


def at(days: float, source: str = "ofsted", **overrides: Any) -> ConcernRaised:
    """A concern ``days`` after T0 from ``source`` (about neglect in Birmingham by default)."""
    programme = PROGRAMMES[Inspectorate(source)][0].value
    return concern(
        source=source,
        programme=programme,
        occurred_at=T0 + dt.timedelta(days=days),
        **overrides,
    )


def observe_all(watch: JtaiWatch, concerns: Iterable[InspectorateEvent]) -> list[Raised]:
    """Every consideration raised while ``watch`` observes ``concerns`` in order."""
    return [r for c in concerns if (r := watch.observe(c)) is not None]


# Known cases -----------------------------------------------------------------------------


def test_two_inspectorates_raise_exactly_one_consideration() -> None:
    watch = JtaiWatch(WINDOW)
    ofsted, cqc = at(0, "ofsted"), at(30, "cqc")
    assert watch.observe(ofsted) is None
    raised = watch.observe(cqc)
    assert raised is not None
    assert raised.type == JTAI_CONSIDERATION_REQUESTED
    assert raised.source == "liaison"
    assert raised.trigger is JtaiTrigger.SEVERAL_INSPECTORATES
    assert (raised.area, raised.theme) == (BIRMINGHAM, Theme.NEGLECT)
    assert raised.occurred_at == cqc.occurred_at
    assert (raised.window_start, raised.window_end) == (T0, T0 + WINDOW)
    assert raised.contributing_event_ids == (ofsted.id, cqc.id)
    assert raised.contributing_inspectorates == (Inspectorate.CQC, Inspectorate.OFSTED)
    assert raised.classification is Classification.OFFICIAL_SENSITIVE
    assert (
        raised.rationale
        == "Concerns about neglect in E08000025 from cqc and ofsted within 180 days"
    )


def test_a_third_concern_in_the_same_window_raises_nothing() -> None:
    watch = JtaiWatch(WINDOW)
    assert len(observe_all(watch, [at(0, "ofsted"), at(30, "cqc")])) == 1
    assert watch.observe(at(60, "hmicfrs")) is None
    assert watch.observe(at(179, "hmi_probation", severity=4)) is None


def test_one_inspectorate_twice_raises_nothing() -> None:
    watch = JtaiWatch(WINDOW)
    assert observe_all(watch, [at(0, "ofsted"), at(30, "ofsted"), at(60, "ofsted")]) == []


@pytest.mark.parametrize(
    "other",
    [{"theme": "front_door"}, {"area": KENT}],
    ids=["other theme", "other area"],
)
def test_other_themes_and_areas_do_not_combine(other: dict[str, str]) -> None:
    watch = JtaiWatch(WINDOW)
    assert observe_all(watch, [at(0, "ofsted"), at(30, "cqc", **other)]) == []


@pytest.mark.parametrize(
    ("gap", "combines"),
    [
        (WINDOW + dt.timedelta(days=1), False),
        (WINDOW, False),  # half-open: exactly one window apart is two windows
        (WINDOW - dt.timedelta(seconds=1), True),
    ],
)
@pytest.mark.parametrize("in_order", [True, False])
def test_concerns_combine_only_within_one_window(
    gap: dt.timedelta, *, combines: bool, in_order: bool
) -> None:
    pair = [at(0, "ofsted"), concern(source="cqc", programme="clas", occurred_at=T0 + gap)]
    raised = observe_all(JtaiWatch(WINDOW), pair if in_order else reversed(pair))
    assert len(raised) == (1 if combines else 0)


def test_late_arrival_counts_on_either_side_of_its_time() -> None:
    watch = JtaiWatch(WINDOW)
    first, third, late = at(0, "ofsted"), at(100, "ofsted"), at(50, "cqc")
    assert observe_all(watch, [third, first]) == []
    raised = watch.observe(late)
    assert raised is not None
    assert raised.window_start == T0
    assert raised.contributing_event_ids == (first.id, late.id, third.id)
    assert raised.occurred_at == late.occurred_at


def test_a_severity_4_concern_alone_triggers() -> None:
    severe = at(10, severity=4)
    raised = JtaiWatch(WINDOW).observe(severe)
    assert raised is not None
    assert raised.trigger is JtaiTrigger.SEVERITY_4
    assert raised.contributing_event_ids == (severe.id,)
    assert raised.contributing_inspectorates == (Inspectorate.OFSTED,)
    assert raised.window_start == severe.occurred_at
    assert raised.rationale == "A severity 4 concern about neglect in E08000025 from ofsted"


def test_immediate_risk_alone_triggers() -> None:
    raised = JtaiWatch(WINDOW).observe(at(10, "hmicfrs", immediate_risk=True))
    assert raised is not None
    assert raised.trigger is JtaiTrigger.IMMEDIATE_RISK
    assert raised.rationale == "An immediate-risk concern about neglect in E08000025 from hmicfrs"


def test_severity_4_wins_over_immediate_risk() -> None:
    raised = JtaiWatch(WINDOW).observe(at(10, severity=4, immediate_risk=True))
    assert raised is not None
    assert raised.trigger is JtaiTrigger.SEVERITY_4


def test_a_severe_concern_lists_the_open_concerns_in_its_window() -> None:
    watch = JtaiWatch(WINDOW)
    after, severe = at(30, "cqc"), at(0, "ofsted", severity=4)
    assert watch.observe(after) is None
    raised = watch.observe(severe)
    assert raised is not None
    assert raised.contributing_event_ids == (severe.id, after.id)
    assert raised.contributing_inspectorates == (Inspectorate.CQC, Inspectorate.OFSTED)
    assert raised.rationale == (
        "A severity 4 concern about neglect in E08000025 from ofsted;"
        " 1 other concern from cqc in the 180 days from it"
    )


def test_after_the_window_a_new_pair_triggers_again() -> None:
    watch = JtaiWatch(WINDOW)
    first = observe_all(watch, [at(0, "ofsted"), at(10, "cqc")])
    assert watch.observe(at(200, "hmicfrs")) is None
    second = watch.observe(at(210, "ofsted"))
    assert second is not None
    assert second.window_start == T0 + dt.timedelta(days=200)
    assert second.id != first[0].id
    assert second.contributing_inspectorates == (Inspectorate.HMICFRS, Inspectorate.OFSTED)


def test_a_concern_already_counted_does_not_count_again_after_the_window() -> None:
    # The CQC concern is in the first window; with HMICFRS after that window it is not a
    # fresh pair, so nothing is raised.
    watch = JtaiWatch(WINDOW)
    assert len(observe_all(watch, [at(0, "ofsted"), at(170, "cqc")])) == 1
    assert watch.observe(at(200, "hmicfrs")) is None


@pytest.mark.parametrize("emission_first", [True, False])
def test_replayed_history_raises_nothing_more(*, emission_first: bool) -> None:
    history = [at(0, "ofsted"), at(30, "cqc")]
    (emitted,) = observe_all(JtaiWatch(WINDOW), history)
    restarted = JtaiWatch(WINDOW)
    if emission_first:
        restarted.replay_emission(emitted)
    for c in history:
        restarted.replay_finding(c)
    if not emission_first:
        restarted.replay_emission(emitted)
    assert restarted.observe(at(60, "hmicfrs")) is None


def test_without_the_replayed_emission_the_window_is_raised_again_with_the_same_id() -> None:
    history = [at(0, "ofsted"), at(30, "cqc")]
    (emitted,) = observe_all(JtaiWatch(WINDOW), history)
    forgetful = JtaiWatch(WINDOW)
    for c in history:
        forgetful.replay_finding(c)
    again = forgetful.observe(at(60, "hmicfrs"))
    assert again is not None
    assert again.id == emitted.id


def test_the_id_is_deterministic() -> None:
    pair = [at(0, "ofsted"), at(30, "cqc")]
    (one,) = observe_all(JtaiWatch(WINDOW), pair)
    (other,) = observe_all(JtaiWatch(WINDOW), reversed(pair))
    expected = uuid.uuid5(JTAI_NAMESPACE, "E08000025|neglect|2026-06-01T00:00:00+00:00")
    assert one.id == other.id == expected
    assert consideration_id(BIRMINGHAM, Theme.NEGLECT, T0) == expected


def test_the_id_does_not_depend_on_how_the_offset_is_written() -> None:
    london = dt.timezone(dt.timedelta(hours=1))
    severe = concern(occurred_at=dt.datetime(2026, 6, 1, 1, 0, tzinfo=london), severity=4)
    raised = JtaiWatch(WINDOW).observe(severe)
    assert raised is not None
    assert raised.window_start.utcoffset() == dt.timedelta(0)
    assert raised.id == consideration_id(BIRMINGHAM, Theme.NEGLECT, T0)
    assert consideration_id(BIRMINGHAM, Theme.NEGLECT, T0.astimezone(london)) == raised.id


def test_a_duplicate_id_counts_once() -> None:
    watch = JtaiWatch(WINDOW)
    ofsted = at(0, "ofsted")
    same_id_other_source = ofsted.model_copy(update={"source": Inspectorate.CQC})
    assert watch.observe(ofsted) is None
    assert watch.observe(ofsted) is None
    assert watch.observe(same_id_other_source) is None
    assert watch.retained == 1
    cqc = at(30, "cqc")
    raised = watch.observe(cqc)
    assert raised is not None
    assert raised.contributing_event_ids == (ofsted.id, cqc.id)


def test_the_rationale_never_repeats_a_concerns_text() -> None:
    summary = "Referrals about a named family wait eleven weeks."
    watch = JtaiWatch(WINDOW)
    raised = observe_all(
        watch,
        [
            at(0, "ofsted", summary=summary),
            at(1, "cqc", summary=summary),
            at(300, "hmicfrs", summary=summary, severity=4),
            at(301, "ofsted", summary=summary),
        ],
    )
    assert len(raised) == 2
    for r in raised:
        assert summary not in r.rationale
        assert "eleven" not in r.rationale


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (dt.timedelta(days=1), "within 1 day"),
        (dt.timedelta(hours=36), "within 36 hours"),
        (dt.timedelta(minutes=90), "within 90 minutes"),
        (dt.timedelta(seconds=90), "within 90 seconds"),
    ],
)
def test_the_rationale_states_the_window(window: dt.timedelta, words: str) -> None:
    pair = [at(0, "ofsted"), concern(source="cqc", programme="clas", occurred_at=T0)]
    (raised,) = observe_all(JtaiWatch(window), pair)
    assert raised.rationale.endswith(words)


def test_three_inspectorates_are_listed_with_commas_and_and() -> None:
    watch = JtaiWatch(WINDOW, min_inspectorates=3)
    raised = observe_all(watch, [at(0, "ofsted"), at(1, "cqc"), at(2, "hmicfrs")])
    assert [r.rationale for r in raised] == [
        "Concerns about neglect in E08000025 from cqc, hmicfrs and ofsted within 180 days"
    ]


@pytest.mark.parametrize(
    ("window", "minimum"),
    [(dt.timedelta(0), 2), (-WINDOW, 2), (WINDOW, 1), (WINDOW, 6)],
)
def test_settings_that_could_never_work_are_refused(window: dt.timedelta, minimum: int) -> None:
    with pytest.raises(ConfigurationError):
        JtaiWatch(window, min_inspectorates=minimum)


def test_memory_stays_bounded() -> None:
    watch = JtaiWatch(WINDOW)
    for month in range(120):
        watch.observe(at(30 * month, "ofsted"))
        # Everything within two windows of the newest (13 months), nothing older.
        assert watch.retained <= 13
    assert watch.retained == 13


def test_a_severe_concern_later_than_the_horizon_is_still_assessed() -> None:
    watch = JtaiWatch(WINDOW)
    watch.observe(at(1000, "ofsted"))
    raised = watch.observe(at(0, "cqc", severity=4))
    assert raised is not None
    assert raised.window_start == T0


# What arrival order can change (consumers/jtai.py proves no rule avoids these) -----------

SHORT = dt.timedelta(days=10)


def test_arrival_order_can_change_which_window_is_claimed() -> None:
    a, b, c = at(0, "ofsted"), at(9, "cqc"), at(18, "hmicfrs")

    def starts(order: Sequence[ConcernRaised]) -> list[dt.datetime]:
        return [r.window_start for r in observe_all(JtaiWatch(SHORT), order)]

    day = dt.timedelta(days=1)
    assert starts([a, b, c]) == [T0]
    assert starts([b, c, a]) == [T0 + 9 * day]
    assert starts([a, c, b]) == [T0]  # b completes two windows; the earliest is claimed


def test_arrival_order_can_change_how_many_considerations() -> None:
    x, y, p = at(10, "hmicfrs"), at(19, "hmi_prisons"), at(3, "ofsted")
    s = at(15, "cqc", severity=4)
    assert len(observe_all(JtaiWatch(SHORT), [p, x, s, y])) == 2
    assert len(observe_all(JtaiWatch(SHORT), [x, y, p, s])) == 1


# The consideration on the wire -------------------------------------------------------------


def a_consideration(**overrides: Any) -> JtaiConsiderationRequested:
    """A valid consideration, with any field overridden."""
    fields: dict[str, Any] = {
        "id": consideration_id(BIRMINGHAM, Theme.NEGLECT, T0),
        "occurred_at": T0 + dt.timedelta(days=30),
        "area": BIRMINGHAM,
        "theme": "neglect",
        "window_start": T0,
        "window_end": T0 + WINDOW,
        "trigger": "several_inspectorates",
        "contributing_event_ids": [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))],
        "contributing_inspectorates": ["cqc", "ofsted"],
        "rationale": "Concerns about neglect in E08000025 from cqc and ofsted within 180 days",
    }
    fields.update(overrides)
    return JtaiConsiderationRequested.model_validate(fields)


def test_round_trips_through_encode_and_decode() -> None:
    (raised,) = observe_all(JtaiWatch(WINDOW), [at(0, "ofsted"), at(30, "cqc")])
    data = encode_consideration(raised)
    assert b" " not in data.split(b'"rationale"')[0]  # compact JSON
    decoded = decode_consideration(data)
    assert decoded == raised
    assert decode_consideration(data.decode()) == raised
    assert consideration_id(decoded.area, decoded.theme, decoded.window_start) == decoded.id
    assert json.loads(data)["type"] == "uk.inspectorate.jtai.consideration_requested.v1"


def test_refuses_unknown_fields() -> None:
    data = json.loads(encode_consideration(a_consideration()))
    data["summary"] = "text copied from a concern"
    with pytest.raises(SchemaError) as caught:
        decode_consideration(json.dumps(data))
    assert [(p.path, p.reason) for p in caught.value.problems] == [
        ("summary", "is not a field of this event type")
    ]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"type": "uk.inspectorate.concern.raised.v1"}, "type"),
        ({"source": "ofsted"}, "source"),
        ({"area": "E07000001"}, "area"),
        ({"theme": "weather"}, "theme"),
        ({"trigger": "hunch"}, "trigger"),
        ({"contributing_event_ids": []}, "contributing_event_ids"),
        ({"contributing_event_ids": [str(uuid.UUID(int=1))] * 2}, "contributing_event_ids"),
        ({"contributing_inspectorates": []}, "contributing_inspectorates"),
        ({"contributing_inspectorates": ["ofsted", "cqc"]}, "contributing_inspectorates"),
        ({"contributing_inspectorates": ["cqc", "cqc"]}, "contributing_inspectorates"),
        ({"rationale": ""}, "rationale"),
        ({"rationale": "x" * 1001}, "rationale"),
        ({"rationale": "Call 07700 900123"}, "rationale"),
        ({"window_start": "2026-06-01T00:00:00"}, "window_start"),
    ],
)
def test_refuses_bad_fields_naming_them(change: dict[str, Any], path: str) -> None:
    data = json.loads(encode_consideration(a_consideration()))
    data.update(change)
    with pytest.raises(SchemaError) as caught:
        decode_consideration(json.dumps(data))
    assert [p.path for p in caught.value.problems] == [path]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"window_end": "2026-06-01T00:00:00Z"}, "window_end must be after window_start"),
        ({"occurred_at": "2027-01-01T00:00:00Z"}, "occurred_at must fall in"),
        ({"occurred_at": "2026-05-31T00:00:00Z"}, "occurred_at must fall in"),
        ({"contributing_inspectorates": ["ofsted"]}, "needs two or more inspectorates"),
    ],
)
def test_refuses_inconsistent_considerations(change: dict[str, Any], reason: str) -> None:
    data = json.loads(encode_consideration(a_consideration()))
    data.update(change)
    with pytest.raises(SchemaError, match=reason):
        decode_consideration(json.dumps(data))


def test_one_inspectorate_is_enough_for_a_single_concern_trigger() -> None:
    single = a_consideration(trigger="severity_4", contributing_inspectorates=["ofsted"])
    assert single.trigger is JtaiTrigger.SEVERITY_4


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b"{}", b"x" * (MAX_EVENT_BYTES + 1)],
    ids=["empty", "not json", "array", "empty object", "oversized"],
)
def test_refuses_what_is_not_a_consideration(data: bytes) -> None:
    with pytest.raises(SchemaError):
        decode_consideration(data)


def test_considerations_are_frozen() -> None:
    consideration = a_consideration()
    with pytest.raises(ValueError, match="frozen"):
        consideration.rationale = "changed"  # type: ignore[misc]


# Properties -------------------------------------------------------------------------------

# Coarse steps of time and mostly one area and theme, so that the edge cases (concerns at
# one instant, exactly one window apart, in the same stream) come up often.
STEP = dt.timedelta(hours=60)
STEPS_IN_WINDOW = 4
HYPO_WINDOW = STEPS_IN_WINDOW * STEP

_Spec = tuple[Inspectorate, str, Theme, int, int, bool]
_SPEC = st.tuples(
    st.sampled_from(list(Inspectorate)),
    st.sampled_from([BIRMINGHAM, BIRMINGHAM, BIRMINGHAM, KENT]),
    st.sampled_from([Theme.NEGLECT, Theme.NEGLECT, Theme.NEGLECT, Theme.FRONT_DOOR]),
    st.integers(min_value=0, max_value=2 * STEPS_IN_WINDOW),
    st.sampled_from([1, 2, 3, 4]),
    st.sampled_from([False, False, False, True]),
)


def _build(specs: Sequence[_Spec], spread: int = 1) -> list[ConcernRaised]:
    """Concerns from ``specs``, their times multiplied by ``spread``."""
    # Ids from the position, not uuid4: hypothesis needs each example to be reproducible.
    return [
        concern(
            id=uuid.UUID(int=i + 1),
            source=source,
            programme=PROGRAMMES[source][0],
            area=area,
            theme=theme,
            occurred_at=T0 + steps * spread * STEP,
            severity=severity,
            immediate_risk=risk,
        )
        for i, (source, area, theme, steps, severity, risk) in enumerate(specs)
    ]


def _key(item: ConcernRaised | Raised) -> tuple[str, Theme]:
    return item.area, item.theme


def _severe(c: ConcernRaised) -> bool:
    return c.severity == 4 or c.immediate_risk


def _has_trigger(concerns: Sequence[ConcernRaised], window: dt.timedelta, k: int) -> bool:
    """Brute force: a severe concern, or ``k`` inspectorates fitting in one window."""
    return any(_severe(c) for c in concerns) or any(
        len({o.source for o in concerns if c.occurred_at <= o.occurred_at < c.occurred_at + window})
        >= k
        for c in concerns
    )


def _first_seen(arrivals: Iterable[ConcernRaised]) -> list[ConcernRaised]:
    seen: dict[uuid.UUID, ConcernRaised] = {}
    for c in arrivals:
        seen.setdefault(c.id, c)
    return list(seen.values())


def _check_sound_and_complete(
    observed: Sequence[ConcernRaised], raised: Sequence[Raised], window: dt.timedelta, k: int
) -> None:
    """The guarantees consumers/jtai.py proves for every arrival order."""
    by_id = {c.id: c for c in observed}
    for i, r in enumerate(raised):
        members = [by_id[e] for e in r.contributing_event_ids]
        assert all(_key(m) == _key(r) for m in members)
        assert members == sorted(members, key=lambda m: (m.occurred_at, m.id))
        assert r.window_end - r.window_start == window
        assert members[0].occurred_at == r.window_start
        assert all(r.window_start <= m.occurred_at < r.window_end for m in members)
        assert r.contributing_inspectorates == tuple(sorted({m.source for m in members}))
        if r.trigger is JtaiTrigger.SEVERAL_INSPECTORATES:
            assert len(r.contributing_inspectorates) >= k
        else:
            trigger = next(m for m in members if m.occurred_at == r.occurred_at and _severe(m))
            assert r.occurred_at == r.window_start
            assert (trigger.severity == 4) == (r.trigger is JtaiTrigger.SEVERITY_4)
        assert r.id == consideration_id(r.area, r.theme, r.window_start)
        earlier = [e for e in raised[:i] if _key(e) == _key(r)]
        # Neither raised by nor counting a concern inside a window already claimed, so
        # never the same window twice.
        for when in (r.occurred_at, *(m.occurred_at for m in members)):
            assert not any(e.window_start <= when < e.window_end for e in earlier)
        assert r.window_start not in {e.window_start for e in earlier}
    # Nothing left unraised: the concerns no consideration covers hold no trigger.
    for key in {_key(c) for c in observed}:
        claimed = [(r.window_start, r.window_end) for r in raised if _key(r) == key]
        uncovered = [
            c
            for c in observed
            if _key(c) == key and not any(s <= c.occurred_at < e for s, e in claimed)
        ]
        assert not _has_trigger(uncovered, window, k)


def _keys_with_a_trigger(
    concerns: Sequence[ConcernRaised], window: dt.timedelta, k: int
) -> set[tuple[str, Theme]]:
    keys = {_key(c) for c in concerns}
    return {key for key in keys if _has_trigger([c for c in concerns if _key(c) == key], window, k)}


@given(
    specs=st.lists(_SPEC, min_size=1, max_size=12),
    k=st.integers(min_value=2, max_value=3),
    data=st.data(),
)
def test_every_arrival_order_is_sound_and_complete(
    specs: list[_Spec], k: int, data: st.DataObject
) -> None:
    concerns = _build(specs)
    arrivals = list(data.draw(st.permutations(concerns)))
    for copy in data.draw(st.lists(st.sampled_from(concerns), max_size=4)):
        arrivals.insert(data.draw(st.integers(min_value=0, max_value=len(arrivals))), copy)

    raised = observe_all(JtaiWatch(HYPO_WINDOW, k), arrivals)

    _check_sound_and_complete(concerns, raised, HYPO_WINDOW, k)
    # Whether an area and theme gets a consideration does not depend on the order.
    assert {_key(r) for r in raised} == _keys_with_a_trigger(concerns, HYPO_WINDOW, k)
    # Duplicates change nothing: the same as seeing each concern once, when first seen.
    assert raised == observe_all(JtaiWatch(HYPO_WINDOW, k), _first_seen(arrivals))


@given(specs=st.lists(_SPEC, min_size=1, max_size=15))
def test_in_order_arrival_claims_disjoint_ascending_windows(specs: list[_Spec]) -> None:
    concerns = sorted(_build(specs, spread=5), key=lambda c: (c.occurred_at, c.id))
    raised = observe_all(JtaiWatch(HYPO_WINDOW), concerns)
    _check_sound_and_complete(concerns, raised, HYPO_WINDOW, 2)
    for key in {_key(r) for r in raised}:
        mine = [r for r in raised if _key(r) == key]
        assert all(a.window_end <= b.window_start for a, b in itertools.pairwise(mine))


@given(
    specs=st.lists(_SPEC, min_size=1, max_size=15),
    lateness=st.lists(st.integers(min_value=0, max_value=STEPS_IN_WINDOW - 1), min_size=15),
)
def test_forgetting_old_concerns_changes_nothing_for_bounded_lateness(
    specs: list[_Spec], lateness: list[int]
) -> None:
    # Spread over ten windows, each concern arriving less than one window late: a concern
    # is observed after every concern due before it, so it is never a window behind.
    concerns = _build(specs, spread=5)
    arrival = sorted(
        range(len(concerns)), key=lambda i: (concerns[i].occurred_at + lateness[i] * STEP, i)
    )
    watch = JtaiWatch(HYPO_WINDOW)
    raised = observe_all(watch, (concerns[i] for i in arrival))

    _check_sound_and_complete(concerns, raised, HYPO_WINDOW, 2)
    newest = {
        key: max(c.occurred_at for c in concerns if _key(c) == key) for key in map(_key, concerns)
    }
    within = [c for c in concerns if c.occurred_at >= newest[_key(c)] - 2 * HYPO_WINDOW]
    assert watch.retained == len(within)


@given(
    specs=st.lists(_SPEC, min_size=1, max_size=12),
    data=st.data(),
)
def test_a_restarted_watch_carries_on_as_if_it_never_stopped(
    specs: list[_Spec], data: st.DataObject
) -> None:
    concerns = _build(specs, spread=2)
    arrivals = list(data.draw(st.permutations(concerns)))
    split = data.draw(st.integers(min_value=0, max_value=len(arrivals)))
    running = JtaiWatch(HYPO_WINDOW)
    before = [(c, running.observe(c)) for c in arrivals[:split]]

    history: list[ConcernRaised | Raised] = [c for c, _ in before]
    history += [r for _, r in before if r is not None]
    restarted = JtaiWatch(HYPO_WINDOW)
    for item in data.draw(st.permutations(history)):
        if isinstance(item, ConcernRaised):
            restarted.replay_finding(item)
        else:
            restarted.replay_emission(item)

    assert restarted.retained == running.retained
    for c in arrivals[split:]:
        assert restarted.observe(c) == running.observe(c)


# Recommendations reviewed as not progressing count like concerns ---------------------------


def reviewed(days: float, source: str = "hmicfrs", **overrides: Any) -> RecommendationReviewed:
    """A review ``days`` after T0 by ``source`` of its recommendation to the local authority
    (neglect in Birmingham), judged not progressing unless overridden."""
    programme = PROGRAMMES[Inspectorate(source)][0].value
    fields: dict[str, Any] = {
        "source": source,
        "programme": programme,
        "occurred_at": T0 + dt.timedelta(days=days),
        "recipient": "local_authority",
        "subject_agencies": ["local_authority"],
        "progress": "not_progressing",
    }
    return review(**fields | overrides)


def test_an_ofsted_concern_and_an_hmicfrs_not_progressing_review_raise_one_consideration() -> None:
    watch = JtaiWatch(WINDOW)
    ofsted, hmicfrs = at(0, "ofsted"), reviewed(30, "hmicfrs")
    assert watch.observe(ofsted) is None
    raised = watch.observe(hmicfrs)
    assert raised is not None
    assert raised.trigger is JtaiTrigger.SEVERAL_INSPECTORATES
    assert (raised.area, raised.theme) == (BIRMINGHAM, Theme.NEGLECT)
    assert (raised.window_start, raised.window_end) == (T0, T0 + WINDOW)
    assert raised.occurred_at == hmicfrs.occurred_at
    assert raised.contributing_event_ids == (ofsted.id, hmicfrs.id)
    assert raised.contributing_inspectorates == (Inspectorate.HMICFRS, Inspectorate.OFSTED)
    assert raised.id == consideration_id(BIRMINGHAM, Theme.NEGLECT, T0)
    assert raised.rationale == (
        "Concerns and recommendations reviewed as not progressing about neglect in E08000025"
        " from hmicfrs and ofsted within 180 days"
    )
    assert watch.observe(at(60, "cqc")) is None  # the window is claimed


def test_the_review_may_come_first() -> None:
    hmicfrs, ofsted = reviewed(0, "hmicfrs"), at(30, "ofsted")
    (raised,) = observe_all(JtaiWatch(WINDOW), [hmicfrs, ofsted])
    assert raised.contributing_event_ids == (hmicfrs.id, ofsted.id)


@pytest.mark.parametrize("progress", ["achieved", "progressing", "no_longer_applicable"])
def test_other_reviews_never_count(progress: str) -> None:
    watch = JtaiWatch(WINDOW)
    assert watch.observe(at(0, "ofsted")) is None
    assert watch.observe(reviewed(30, "hmicfrs", progress=progress)) is None
    assert watch.retained == 1
    cqc = at(60, "cqc")
    raised = watch.observe(cqc)
    assert raised is not None
    assert len(raised.contributing_event_ids) == 2
    assert cqc.id in raised.contributing_event_ids


def test_recommendations_and_exceptional_practice_never_count() -> None:
    watch = JtaiWatch(WINDOW)
    made = recommendation(occurred_at=T0, source="cqc", programme="clas", recipient="health",
                          subject_agencies=["health"])  # fmt: skip
    practice = good_practice(occurred_at=T0, area=BIRMINGHAM, theme="neglect")
    assert watch.observe(at(0, "ofsted")) is None
    assert watch.observe(made) is None
    assert watch.observe(practice) is None
    watch.replay_finding(made)
    watch.replay_finding(practice)
    assert watch.retained == 1


def test_a_review_is_never_a_trigger_on_its_own() -> None:
    watch = JtaiWatch(WINDOW)
    assert watch.observe(reviewed(0, "hmicfrs")) is None
    assert watch.observe(reviewed(1, "hmicfrs")) is None  # one inspectorate, however often
    raised = watch.observe(reviewed(2, "hmi_probation"))
    assert raised is not None
    assert raised.trigger is JtaiTrigger.SEVERAL_INSPECTORATES
    assert raised.rationale == (
        "Recommendations reviewed as not progressing about neglect in E08000025 from"
        " hmi_probation and hmicfrs within 180 days"
    )


def test_a_severe_concern_names_a_review_in_its_window_as_a_finding() -> None:
    hmicfrs, severe = reviewed(10, "hmicfrs"), at(0, "ofsted", severity=4)
    (raised,) = observe_all(JtaiWatch(WINDOW), [hmicfrs, severe])
    assert raised.trigger is JtaiTrigger.SEVERITY_4
    assert raised.contributing_event_ids == (severe.id, hmicfrs.id)
    assert raised.rationale == (
        "A severity 4 concern about neglect in E08000025 from ofsted; 1 other finding from"
        " hmicfrs in the 180 days from it"
    )


_Mixed = tuple[Inspectorate, str, Theme, int, int, bool, Progress | None]
# A concern's spec, and a progress judgement for a review instead (None: a concern).
_MIXED: st.SearchStrategy[_Mixed] = st.tuples(_SPEC, st.sampled_from([None, None, *Progress])).map(
    lambda pair: (*pair[0], pair[1])
)


def _mixed(specs: Sequence[_Mixed]) -> list[InspectorateEvent]:
    """Concerns (progress None) and reviews judged ``progress`` from ``specs``; a review
    ignores the spec's severity and risk (it has neither)."""
    findings: list[InspectorateEvent] = []
    for i, (source, area, theme, steps, severity, risk, progress) in enumerate(specs):
        fields: dict[str, Any] = {
            "id": uuid.UUID(int=i + 1),
            "source": source,
            "programme": PROGRAMMES[source][0],
            "area": area,
            "theme": theme,
            "occurred_at": T0 + steps * STEP,
        }
        if progress is None:
            findings.append(concern(**fields, severity=severity, immediate_risk=risk))
        else:
            findings.append(
                review(
                    **fields,
                    progress=progress,
                    recipient="local_authority",
                    subject_agencies=["local_authority"],
                )
            )
    return findings


def _as_concerns(findings: Iterable[InspectorateEvent]) -> list[ConcernRaised]:
    """What the watch should make of ``findings``: concerns as they are, a not-progressing
    review as a concern of its reviewer that is neither severe nor urgent, nothing else."""
    counted: list[ConcernRaised] = []
    for f in findings:
        if isinstance(f, ConcernRaised):
            counted.append(f)
        elif isinstance(f, RecommendationReviewed) and f.progress is Progress.NOT_PROGRESSING:
            counted.append(
                concern(
                    **f.model_dump(include={"id", "source", "programme", "area", "theme"}),
                    occurred_at=f.occurred_at,
                    severity=3,
                    immediate_risk=False,
                )
            )
    return counted


def _without_rationale(raised: Iterable[Raised]) -> list[dict[str, Any]]:
    return [r.model_dump(exclude={"rationale"}) for r in raised]


@given(
    specs=st.lists(_MIXED, min_size=1, max_size=12),
    k=st.integers(min_value=2, max_value=3),
    data=st.data(),
)
def test_a_not_progressing_review_counts_exactly_like_a_concern(
    specs: list[_Mixed], k: int, data: st.DataObject
) -> None:
    findings = _mixed(specs)
    arrivals = list(data.draw(st.permutations(findings)))
    raised = observe_all(JtaiWatch(HYPO_WINDOW, k), arrivals)
    counted = _as_concerns(arrivals)
    assert _without_rationale(raised) == _without_rationale(
        observe_all(JtaiWatch(HYPO_WINDOW, k), counted)
    )
    _check_sound_and_complete(counted, raised, HYPO_WINDOW, k)
    others = {f.id for f in findings if isinstance(f, RecommendationReviewed)} - {
        c.id for c in counted
    }
    assert not any(others & set(r.contributing_event_ids) for r in raised)


@given(specs=st.lists(_MIXED, min_size=1, max_size=12), data=st.data())
def test_a_restarted_watch_replays_reviews_too(specs: list[_Mixed], data: st.DataObject) -> None:
    findings = _mixed(specs)
    arrivals = list(data.draw(st.permutations(findings)))
    split = data.draw(st.integers(min_value=0, max_value=len(arrivals)))
    running = JtaiWatch(HYPO_WINDOW)
    before = [(f, running.observe(f)) for f in arrivals[:split]]

    history: list[InspectorateEvent | Raised] = [f for f, _ in before]
    history += [r for _, r in before if r is not None]
    restarted = JtaiWatch(HYPO_WINDOW)
    for item in data.draw(st.permutations(history)):
        if isinstance(item, JtaiConsiderationRequested):
            restarted.replay_emission(item)
        else:
            restarted.replay_finding(item)

    assert restarted.retained == running.retained
    for f in arrivals[split:]:
        assert restarted.observe(f) == running.observe(f)
