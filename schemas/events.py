"""The event contract: typed concern and exceptional-practice events.

Events are frozen, closed pydantic models decoded through a discriminated union on
``type``. The wire identifiers (``uk.inspectorate.concern.raised.v1``) are stable
strings, never Python import paths; a v2 is introduced beside v1 with an upcaster.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal, Self, TypeAlias
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from schemas.errors import SchemaError
from schemas.inspectorates import JTAI, PROGRAMMES, Agency, Inspectorate, Programme

__all__ = [
    "CONCERN_RAISED",
    "EXCEPTIONAL_PRACTICE_IDENTIFIED",
    "Classification",
    "ConcernRaised",
    "Event",
    "ExceptionalPracticeIdentified",
    "Finding",
    "JtaiRequest",
    "Theme",
    "decode_event",
    "encode_event",
]

CONCERN_RAISED: Final = "uk.inspectorate.concern.raised.v1"
EXCEPTIONAL_PRACTICE_IDENTIFIED: Final = "uk.inspectorate.exceptional_practice.identified.v1"


class Theme(StrEnum):
    """What a finding is about."""

    FRONT_DOOR = "front_door"
    DOMESTIC_ABUSE = "domestic_abuse"
    CHILD_SEXUAL_EXPLOITATION = "child_sexual_exploitation"
    CHILD_CRIMINAL_EXPLOITATION = "child_criminal_exploitation"
    MISSING_CHILDREN = "missing_children"
    NEGLECT = "neglect"
    CHILD_SEXUAL_ABUSE_IN_FAMILY = "child_sexual_abuse_in_family"
    SERIOUS_YOUTH_VIOLENCE = "serious_youth_violence"
    MENTAL_HEALTH = "mental_health"
    CHILDREN_IN_CARE = "children_in_care"
    CARE_LEAVERS = "care_leavers"
    CHILDREN_IN_CUSTODY = "children_in_custody"
    EARLY_HELP = "early_help"
    OTHER = "other"


class Finding(StrEnum):
    """How grave an inspectorate judged a concern."""

    CAUSE_OF_CONCERN = "cause_of_concern"
    AREA_FOR_IMPROVEMENT = "area_for_improvement"
    AREA_FOR_PRIORITY_ACTION = "area_for_priority_action"
    URGENT_NOTIFICATION = "urgent_notification"


class Classification(StrEnum):
    """Government Security Classification marking of the event."""

    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL-SENSITIVE"


GssCode: TypeAlias = Annotated[str, StringConstraints(pattern=r"^E(06|08|09|10)\d{6}$")]
"""An English upper-tier local authority's GSS code (unitary, metropolitan, London, county)."""

Summary: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class JtaiRequest(BaseModel):
    """An inspectorate's request that an area be considered for a JTAI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requested: bool
    rationale: str | None = Field(default=None, min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _rationale_when_requested(self) -> Self:
        if self.requested and not self.rationale:
            msg = "a rationale is required when a JTAI is requested"
            raise ValueError(msg)
        return self


class _Event(BaseModel):
    """Fields common to every event (``type`` is narrowed by each event class)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    type: str
    id: UUID
    source: Inspectorate
    occurred_at: AwareDatetime
    area: GssCode
    programme: Programme
    subject_agencies: tuple[Agency, ...] = Field(min_length=1)
    theme: Theme
    summary: Summary
    evidence_refs: tuple[Annotated[str, StringConstraints(min_length=1, max_length=500)], ...] = ()
    classification: Classification = Classification.OFFICIAL_SENSITIVE

    @model_validator(mode="after")
    def _programme_owned_by_source(self) -> Self:
        if self.programme is not JTAI and self.programme not in PROGRAMMES[self.source]:
            owned = ", ".join(p.value for p in PROGRAMMES[self.source])
            msg = (
                f"programme {self.programme.value!r} is not run by {self.source.value}"
                f" (its programmes: {owned}, or jtai)"
            )
            raise ValueError(msg)
        return self


class ConcernRaised(_Event):
    """An inspectorate found a concern about practice in an area."""

    type: Literal["uk.inspectorate.concern.raised.v1"] = CONCERN_RAISED
    finding: Finding
    severity: int = Field(ge=1, le=4)
    immediate_risk: bool
    children_affected: int | None = Field(default=None, ge=0)
    jtai: JtaiRequest | None = None


class ExceptionalPracticeIdentified(_Event):
    """An inspectorate found practice in an area that others should learn from."""

    type: Literal["uk.inspectorate.exceptional_practice.identified.v1"] = (
        EXCEPTIONAL_PRACTICE_IDENTIFIED
    )
    shareable_learning: Summary | None = None


Event: TypeAlias = Annotated[
    ConcernRaised | ExceptionalPracticeIdentified, Field(discriminator="type")
]
"""Any event of the contract, decoded by its ``type``."""

_EVENT: Final[TypeAdapter[ConcernRaised | ExceptionalPracticeIdentified]] = TypeAdapter(Event)


def decode_event(data: bytes | str) -> ConcernRaised | ExceptionalPracticeIdentified:
    """Parse and validate one event from JSON; raise ``SchemaError`` naming each problem."""
    try:
        return _EVENT.validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(event)'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise SchemaError(f"invalid event: {problems}") from None


def encode_event(event: ConcernRaised | ExceptionalPracticeIdentified) -> bytes:
    """The event's canonical JSON bytes (what is published, and later signed)."""
    return event.model_dump_json(exclude_none=True).encode()
