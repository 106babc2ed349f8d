from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.errors import LiaisonError, SchemaError
from schemas.events import (
    CONCERN_RAISED,
    MAX_EVENT_BYTES,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    Theme,
    decode_event,
    encode_event,
    validate_event,
)
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate, Programme
from schemas.reference import local_authorities
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


LIVE_AREAS = sorted(code for code, la in local_authorities().items() if la.live_on(NOW.date()))


@st.composite
def concerns(draw: st.DrawFn) -> ConcernRaised:
    source = draw(st.sampled_from(list(Inspectorate)))
    return ConcernRaised(
        type=CONCERN_RAISED,
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        source=source,
        occurred_at=NOW - dt.timedelta(seconds=draw(st.integers(0, 10**7))),
        area=draw(st.sampled_from(LIVE_AREAS)),
        programme=draw(st.sampled_from([*PROGRAMMES[source], Programme.JTAI])),
        subject_agencies=tuple(draw(st.lists(st.sampled_from(list(Agency)), min_size=1))),
        theme=draw(st.sampled_from(list(Theme))),
        summary=draw(
            st.text(
                st.characters(exclude_characters="@0123456789", exclude_categories=["Cs"]),
                min_size=1,
                max_size=200,
            )
        ),
        finding=draw(st.sampled_from(list(Finding))),
        severity=draw(st.integers(1, 4)),
        immediate_risk=draw(st.booleans()),
        children_affected=draw(st.none() | st.integers(0, 10_000)),
    )


@given(concerns())
def test_round_trip_model_json_model(event: ConcernRaised) -> None:
    assert decode_event(encode_event(event)) == event


def test_validate_lists_every_problem_with_its_path() -> None:
    data = json.loads(encode_event(concern()))
    data.update(severity=9, theme="gossip", area="E08999999")
    del data["immediate_risk"]
    with pytest.raises(SchemaError) as caught:
        validate_event(json.dumps(data), now=NOW)
    paths = {problem.path for problem in caught.value.problems}
    assert {"severity", "theme", "area", "immediate_risk"} <= paths
    reasons = {problem.path: problem.reason for problem in caught.value.problems}
    assert reasons["immediate_risk"] == "is required"
    assert "E08999999" in reasons["area"]


def test_future_events_are_refused_with_clock_skew_allowed() -> None:
    soon = concern(occurred_at=NOW + dt.timedelta(minutes=4))
    assert validate_event(encode_event(soon), now=NOW) == soon
    late = concern(occurred_at=NOW + dt.timedelta(minutes=6))
    with pytest.raises(SchemaError, match="occurred_at: is in the future"):
        validate_event(encode_event(late), now=NOW)
    # a stored event has no clock to be checked against
    assert decode_event(encode_event(late)) == late


def test_terminated_area_names_its_successors() -> None:
    data = json.loads(encode_event(concern()))
    data["area"] = "E10000006"  # Cumbria, split on 2023-04-01
    with pytest.raises(SchemaError) as caught:
        validate_event(json.dumps(data), now=NOW)
    (problem,) = caught.value.problems
    assert problem.path == "area"
    assert "E06000063" in problem.reason
    assert "E06000064" in problem.reason


def test_area_is_judged_on_the_english_date_of_occurred_at() -> None:
    # 23:30 UTC on 31 March 2023 is 00:30 on 1 April in England: Cumberland exists.
    first_hour = dt.datetime(2023, 3, 31, 23, 30, tzinfo=dt.UTC)
    assert concern(area="E06000063", occurred_at=first_hour).area == "E06000063"
    with pytest.raises(ValueError, match="E10000006"):
        concern(area="E06000063", occurred_at=first_hour - dt.timedelta(hours=1))


def test_minimisation_names_the_rule_and_never_echoes_the_match() -> None:
    data = json.loads(encode_event(concern()))
    data["summary"] = "Contact the worker at jo.bloggs@example.org about the referral."
    with pytest.raises(SchemaError) as caught:
        validate_event(json.dumps(data), now=NOW)
    message = str(caught.value)
    assert "summary" in message
    assert "email" in message
    assert "jo.bloggs@example.org" not in message
    assert "jo.bloggs" not in repr(caught.value.problems)


def test_shareable_learning_is_linted_too() -> None:
    with pytest.raises(ValueError, match="shareable_learning"):
        good_practice(shareable_learning="Ring 07700 900123 to learn more.")


def test_oversized_input_is_refused_before_parsing() -> None:
    huge = b"{" + b" " * MAX_EVENT_BYTES + b"}"
    with pytest.raises(SchemaError, match="over the 65536-byte limit"):
        decode_event(huge)
    with pytest.raises(SchemaError, match="over the 65536-byte limit"):
        validate_event(huge, now=NOW)


def test_not_json_and_not_an_object_are_plain_errors() -> None:
    with pytest.raises(SchemaError, match="not valid JSON"):
        decode_event(b"{nope")
    with pytest.raises(SchemaError) as caught:
        decode_event(b"[1, 2]")
    assert caught.value.problems[0].reason == "must be a JSON object"


def test_missing_or_unknown_type_says_which_types_exist() -> None:
    data = json.loads(encode_event(concern()))
    data["type"] = "uk.inspectorate.concern.shouted.v1"
    with pytest.raises(SchemaError, match=r"type: must be 'uk\.inspectorate\.concern\.raised\.v1'"):
        decode_event(json.dumps(data))
    del data["type"]
    with pytest.raises(SchemaError, match="type: is required"):
        decode_event(json.dumps(data))


def test_jtai_rationale_is_linted_too() -> None:
    with pytest.raises(ValueError, match=r"jtai\.rationale contains an email address"):
        concern(jtai={"requested": True, "rationale": "ask jo@example.org"})


@pytest.mark.parametrize(
    "reference",
    [
        "NHS 943 476 5919",
        "mailto:duty.team@example.org",
        "born 01/02/2019",
        "B1 1AA",
        "https://example.org/records?dob=2019-02-01",
    ],
)
def test_evidence_refs_are_linted_like_free_text(reference: str) -> None:
    body = encode_event(concern(evidence_refs=["ILACS report, section 3"])).replace(
        b"ILACS report, section 3", reference.encode()
    )
    with pytest.raises(SchemaError) as caught:
        decode_event(body)
    assert [p.path for p in caught.value.problems] == ["evidence_refs"]
    assert reference not in str(caught.value)


def test_evidence_refs_that_are_report_urls_pass() -> None:
    refs = ["ILACS report, section 3", "https://reports.ofsted.gov.uk/provider/44/80512"]
    assert decode_event(encode_event(concern(evidence_refs=refs))).evidence_refs == tuple(refs)


@pytest.mark.parametrize("field", ["summary", "evidence_refs", "jtai", "shareable_learning"])
def test_text_that_is_not_unicode_is_refused_when_built_in_python(field: str) -> None:
    values: dict[str, Any] = {
        "summary": "\ud800",
        "evidence_refs": ["\ud800"],
        "jtai": {"requested": True, "rationale": "\ud800"},
        "shareable_learning": "\ud800",
    }
    build = good_practice if field == "shareable_learning" else concern
    with pytest.raises(ValidationError, match="unicode"):
        build(**{field: values[field]})
