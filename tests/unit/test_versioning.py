"""How a v2 of an event is introduced: an upcaster from v1, and stored v1 still decodes.

The v2 here is an example (not part of the contract): it replaces v1's single
``severity`` number with a named ``grade``. Real v2s follow the same three steps:
a new model with a new wire ``type``, an upcaster keyed by the old type, a codec with both.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field, TypeAdapter

from schemas.errors import SchemaError
from schemas.events import (
    CONCERN_RAISED,
    ConcernRaised,
    EventCodec,
    ExceptionalPracticeIdentified,
    encode_event,
)
from schemas.versioning import Upcasters
from tests.factories import concern, good_practice

CONCERN_RAISED_V2 = "uk.inspectorate.concern.raised.v2"
GRADES = {1: "low", 2: "moderate", 3: "high", 4: "critical"}


class ConcernRaisedV2(ConcernRaised):
    """Example v2: ``grade`` in words instead of ``severity`` as a number."""

    type: Literal["uk.inspectorate.concern.raised.v2"] = CONCERN_RAISED_V2  # type: ignore[assignment]
    severity: int | None = None  # type: ignore[assignment]
    grade: Literal["low", "moderate", "high", "critical"]


def concern_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    severity = data.pop("severity")
    return {**data, "type": CONCERN_RAISED_V2, "grade": GRADES[severity]}


V2 = EventCodec(
    TypeAdapter(
        Annotated[ConcernRaisedV2 | ExceptionalPracticeIdentified, Field(discriminator="type")]
    ),
    Upcasters({CONCERN_RAISED: concern_v1_to_v2}),
)


def test_stored_v1_concern_decodes_as_v2() -> None:
    stored = encode_event(concern(severity=3))  # bytes as written years ago
    assert json.loads(stored)["type"] == CONCERN_RAISED
    event = V2.decode(stored)
    assert isinstance(event, ConcernRaisedV2)
    assert event.grade == "high"
    assert event.type == CONCERN_RAISED_V2


def test_current_types_pass_through_untouched() -> None:
    practice = good_practice()
    assert V2.decode(encode_event(practice)) == practice


def test_upcast_v1_still_gets_every_check() -> None:
    data = json.loads(encode_event(concern()))
    data["area"] = "E10000006"
    with pytest.raises(SchemaError, match="area"):
        V2.decode(json.dumps(data))


def test_an_upcaster_loop_is_an_error_not_a_hang() -> None:
    loop = Upcasters(
        {"a.v1": lambda d: {**d, "type": "a.v2"}, "a.v2": lambda d: {**d, "type": "a.v1"}}
    )
    with pytest.raises(SchemaError, match="loop"):
        loop.upcast({"type": "a.v1"})
