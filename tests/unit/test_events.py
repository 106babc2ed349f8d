from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import LiaisonError, SchemaError
from schemas.events import (
    CONCERN_RAISED,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    Theme,
    decode_event,
    encode_event,
)
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate, Programme
from tests.factories import NOW, concern, good_practice


def test_decode_picks_the_type_from_the_discriminator() -> None:
    assert isinstance(decode_event(encode_event(concern())), ConcernRaised)
    assert isinstance(decode_event(encode_event(good_practice())), ExceptionalPracticeIdentified)


def test_wire_type_strings_are_stable() -> None:
    assert json.loads(encode_event(concern()))["type"] == "uk.inspectorate.concern.raised.v1"
    assert (
        json.loads(encode_event(good_practice()))["type"]
        == "uk.inspectorate.exceptional_practice.identified.v1"
    )


def test_unknown_fields_are_refused() -> None:
    data = json.loads(encode_event(concern()))
    data["child_name"] = "x"
    with pytest.raises(SchemaError, match="child_name"):
        decode_event(json.dumps(data))


def test_schema_error_is_a_liaison_value_error() -> None:
    with pytest.raises(SchemaError) as caught:
        decode_event(b"{}")
    assert isinstance(caught.value, LiaisonError)
    assert isinstance(caught.value, ValueError)


def test_programme_must_belong_to_the_source() -> None:
    with pytest.raises(ValueError, match="not run by ofsted"):
        concern(programme="ncpi")
    assert concern(programme="jtai").programme is Programme.JTAI


def test_jtai_request_needs_a_rationale() -> None:
    with pytest.raises(ValueError, match="rationale is required"):
        concern(jtai={"requested": True})
    assert concern(jtai={"requested": False}).jtai is not None


def test_events_are_frozen() -> None:
    event = concern()
    with pytest.raises(ValueError, match="frozen"):
        event.severity = 3  # type: ignore[misc]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        concern(occurred_at=dt.datetime(2026, 1, 1))  # noqa: DTZ001


@st.composite
def concerns(draw: st.DrawFn) -> ConcernRaised:
    source = draw(st.sampled_from(list(Inspectorate)))
    return ConcernRaised(
        type=CONCERN_RAISED,
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        source=source,
        occurred_at=NOW - dt.timedelta(seconds=draw(st.integers(0, 10**8))),
        area=draw(st.from_regex(r"E(06|08|09|10)\d{6}", fullmatch=True)),
        programme=draw(st.sampled_from([*PROGRAMMES[source], Programme.JTAI])),
        subject_agencies=tuple(draw(st.lists(st.sampled_from(list(Agency)), min_size=1))),
        theme=draw(st.sampled_from(list(Theme))),
        summary=draw(st.text(min_size=1, max_size=200)),
        finding=draw(st.sampled_from(list(Finding))),
        severity=draw(st.integers(1, 4)),
        immediate_risk=draw(st.booleans()),
        children_affected=draw(st.none() | st.integers(0, 10_000)),
    )


@given(concerns())
def test_round_trip_model_json_model(event: ConcernRaised) -> None:
    assert decode_event(encode_event(event)) == event
