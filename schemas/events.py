"""The event contract: typed concern and exceptional-practice events.

Events are frozen, closed pydantic models decoded through a discriminated union on
``type``. The wire identifiers (``uk.inspectorate.concern.raised.v1``) are stable
strings, never Python import paths; a v2 is introduced beside v1 with an upcaster.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Annotated, Final, Generic, Literal, Self, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas._problems import check_size, schema_error
from schemas.errors import Problem, SchemaError
from schemas.inspectorates import JTAI, PROGRAMMES, Agency, Inspectorate, Programme
from schemas.minimisation import check_minimised, check_reference
from schemas.reference import check_area_at, police_force_of
from schemas.versioning import Upcasters
from schemas.wire import CanonicalUuid, Rfc3339, strict_loads

__all__ = [
    "CODEC",
    "CONCERN_RAISED",
    "EXCEPTIONAL_PRACTICE_IDENTIFIED",
    "FINDING_TYPES",
    "MAX_EVENT_BYTES",
    "RECOMMENDATION_MADE",
    "RECOMMENDATION_REVIEWED",
    "Classification",
    "ConcernRaised",
    "Event",
    "EventCodec",
    "ExceptionalPracticeIdentified",
    "Finding",
    "InspectorateEvent",
    "JtaiRequest",
    "Progress",
    "RecommendationMade",
    "RecommendationReviewed",
    "Theme",
    "decode_event",
    "encode_event",
    "validate_event",
]

MAX_EVENT_BYTES: Final = 64 * 1024
"""Largest accepted event JSON; a larger input is refused before it is parsed."""

CLOCK_SKEW: Final = dt.timedelta(minutes=5)
"""How far in the future ``occurred_at`` may be, for publishers' clocks running fast."""


CONCERN_RAISED: Final = "uk.inspectorate.concern.raised.v1"
EXCEPTIONAL_PRACTICE_IDENTIFIED: Final = "uk.inspectorate.exceptional_practice.identified.v1"
RECOMMENDATION_MADE: Final = "uk.inspectorate.recommendation.made.v1"
RECOMMENDATION_REVIEWED: Final = "uk.inspectorate.recommendation.reviewed.v1"
FINDING_TYPES: Final = (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    RECOMMENDATION_MADE,
    RECOMMENDATION_REVIEWED,
)
"""Every type an inspectorate publishes on its events topic (and the router routes)."""


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


GssCode: TypeAlias = Annotated[str, StringConstraints(pattern=r"^E(06|08|09|10)[0-9]{6}$")]
"""An English upper-tier local authority's GSS code (unitary, metropolitan, London, county)."""

Summary: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class JtaiRequest(BaseModel):
    """An inspectorate's request that an area be considered for a JTAI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requested: bool
    rationale: str | None = Field(default=None, min_length=1, max_length=4000)

    @field_validator("rationale")
    @classmethod
    def _rationale_minimised(cls, value: str | None) -> str | None:
        if value is not None:
            check_minimised(value, "jtai.rationale")
        return value

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
    id: CanonicalUuid
    source: Inspectorate
    occurred_at: Rfc3339
    area: GssCode
    programme: Programme
    subject_agencies: tuple[Agency, ...] = Field(min_length=1)
    theme: Theme
    summary: Summary
    evidence_refs: tuple[Annotated[str, StringConstraints(min_length=1, max_length=500)], ...] = ()
    classification: Classification = Classification.OFFICIAL_SENSITIVE

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        # Only a publisher's check has a clock; a stored event replayed later has none.
        now = info.context.get("now") if isinstance(info.context, dict) else None
        if isinstance(now, dt.datetime) and value > now + CLOCK_SKEW:
            msg = f"is in the future (more than {CLOCK_SKEW} after {now.isoformat()})"
            raise ValueError(msg)
        return value

    @field_validator("area")
    @classmethod
    def _live_upper_tier_area(cls, value: str, info: ValidationInfo) -> str:
        check_area_at(value, info.data.get("occurred_at"))
        return value

    @field_validator("programme")
    @classmethod
    def _programme_owned_by_source(cls, value: Programme, info: ValidationInfo) -> Programme:
        source = info.data.get("source")
        if not isinstance(source, Inspectorate) or value is JTAI or value in PROGRAMMES[source]:
            return value
        owned = ", ".join(p.value for p in PROGRAMMES[source])
        msg = f"{value.value!r} is not run by {source.value} (its programmes: {owned}, jtai)"
        raise ValueError(msg)

    @field_validator("summary")
    @classmethod
    def _summary_minimised(cls, value: str) -> str:
        check_minimised(value, "summary")
        return value

    @field_validator("evidence_refs")
    @classmethod
    def _references_minimised(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for position, reference in enumerate(value):
            check_reference(reference, f"evidence_refs.{position}")
        return value


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

    @field_validator("shareable_learning")
    @classmethod
    def _learning_minimised(cls, value: str | None) -> str | None:
        if value is not None:
            check_minimised(value, "shareable_learning")
        return value


class Progress(StrEnum):
    """How far an agency has got with a recommendation, as a progress review judged it."""

    ACHIEVED = "achieved"
    PROGRESSING = "progressing"
    NOT_PROGRESSING = "not_progressing"
    """"Not improving as quickly as we would like": counts towards JTAI consideration."""
    NO_LONGER_APPLICABLE = "no_longer_applicable"


PoliceForceCode: TypeAlias = Annotated[str, StringConstraints(pattern=r"^E23[0-9]{6}$")]
"""A police force area's GSS code in England (``E23000001`` is the Metropolitan Police)."""


class _Recommendation(_Event):
    """Fields common to a recommendation and its review: the agency it is made to."""

    recipient: Agency = Field(description="The agency the recommendation is made to.")
    force: PoliceForceCode | None = Field(
        default=None,
        description="The police force area, required when the recipient is the police:"
        " the force that polices the area (schemas.reference.police_force_of).",
    )

    @model_validator(mode="after")
    def _recipient_named(self) -> Self:
        if self.recipient not in self.subject_agencies:
            msg = "recipient must be one of subject_agencies"
            raise ValueError(msg)
        if self.recipient is Agency.POLICE:
            expected = police_force_of(self.area)
            if self.force is None:
                msg = f"force is required when the recipient is the police ({expected.code}"
                msg += f" polices {self.area})"
                raise ValueError(msg)
            if self.force != expected.code:
                msg = f"force {self.force} does not police {self.area} ({expected.code} does)"
                raise ValueError(msg)
        elif self.force is not None:
            msg = "force is only for a recommendation to the police"
            raise ValueError(msg)
        return self


class RecommendationMade(_Recommendation):
    """An inspectorate made a recommendation to a named agency in an area (``summary`` is
    the recommendation); a ``RecommendationReviewed`` later says how it is progressing."""

    type: Literal["uk.inspectorate.recommendation.made.v1"] = RECOMMENDATION_MADE
    review_by: dt.date | None = Field(
        default=None, description="When the inspectorate plans to review progress."
    )


class RecommendationReviewed(_Recommendation):
    """A progress review of a recommendation (a post-inspection review, say); ``summary``
    says what the review found. ``not_progressing`` counts towards JTAI consideration."""

    type: Literal["uk.inspectorate.recommendation.reviewed.v1"] = RECOMMENDATION_REVIEWED
    recommendation_id: CanonicalUuid = Field(description="The RecommendationMade reviewed.")
    progress: Progress


InspectorateEvent: TypeAlias = (
    ConcernRaised | ExceptionalPracticeIdentified | RecommendationMade | RecommendationReviewed
)
"""Any event an inspectorate publishes on its events topic."""

Event: TypeAlias = Annotated[InspectorateEvent, Field(discriminator="type")]
"""Any event of the contract, decoded by its ``type``."""

_EVENT: Final[TypeAdapter[InspectorateEvent]] = TypeAdapter(Event)

E = TypeVar("E")


def _schema_error(exc: ValidationError) -> SchemaError:
    return schema_error(exc, "event", FINDING_TYPES)


class EventCodec(Generic[E]):
    """Decodes events of one union of current types, upcasting older stored versions."""

    def __init__(self, adapter: TypeAdapter[E], upcasters: Upcasters | None = None) -> None:
        self._adapter = adapter
        self._upcasters = upcasters or Upcasters()

    def decode(self, data: bytes | str, *, now: dt.datetime | None = None) -> E:
        """Parse and validate one event; ``now`` (a publisher's clock) enables the time check.

        Input over ``MAX_EVENT_BYTES`` is refused before parsing. Decoding is strict
        (``schemas.wire``): duplicate keys (``DuplicateKeyError``), coercion of types and
        non-canonical UUIDs or date-times are refused. Every problem found is listed in
        the ``SchemaError``.
        """
        check_size(data, "event", MAX_EVENT_BYTES)
        return self.decode_parsed(data, strict_loads(data), now=now)

    def decode_parsed(
        self, data: bytes | str, document: object, *, now: dt.datetime | None = None
    ) -> E:
        """``decode`` of input the caller has already checked for size and parsed with
        ``schemas.wire.strict_loads`` (``document``): it is not parsed strictly again."""
        if not isinstance(document, dict):
            raise SchemaError(
                "an event must be a JSON object", [Problem("", "must be a JSON object")]
            )
        context = {"now": now} if now is not None else None
        if self._upcasters:
            # Stored older versions are lifted to the current one, then held to the same
            # strict JSON validation as a current event.
            data = json.dumps(self._upcasters.upcast(document))
        try:
            return self._adapter.validate_json(data, strict=True, context=context)
        except ValidationError as exc:
            raise _schema_error(exc) from None


CODEC: Final = EventCodec(_EVENT)
"""The codec of the current contract (no older versions exist yet)."""


def validate_event(data: bytes | str, *, now: dt.datetime) -> InspectorateEvent:
    """Check one event as a publisher must: size, contract, reference data, minimisation.

    ``now`` is the publisher's clock: ``occurred_at`` may not be later than ``now`` plus
    ``CLOCK_SKEW``. Raise ``SchemaError`` listing every problem with its field path.
    """
    return CODEC.decode(data, now=now)


def decode_event(data: bytes | str) -> InspectorateEvent:
    """Parse and validate one stored or received event (no clock: it may be years old)."""
    return CODEC.decode(data)


def encode_event(event: InspectorateEvent) -> bytes:
    """The event's canonical JSON bytes (what is published, and later signed)."""
    return event.model_dump_json(exclude_none=True).encode()
