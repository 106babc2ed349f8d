"""The bus's own event: an area and theme should be considered for a JTAI.

Liaison watches verified concerns and, when the evidence across inspectorates meets a
trigger (see ``consumers.jtai``), publishes a ``JtaiConsiderationRequested`` signed with
the bus's own key (owner ``schemas.keys.BUS``). It names the area, the theme, the window
of event time the evidence falls in, why it was raised and which concerns count; it never
repeats any concern's free text, so its ``rationale`` is generated plain English.

Like the inspectorates' events it is a frozen, closed model with a stable wire type
(``uk.inspectorate.jtai.consideration_requested.v1``); a v2 would be added beside it with
an upcaster, never by changing v1.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas._problems import check_size, schema_error
from schemas.errors import Problem, SchemaError
from schemas.events import (
    MAX_EVENT_BYTES,
    Classification,
    GssCode,
    Theme,
)
from schemas.inspectorates import Inspectorate
from schemas.keys import BUS
from schemas.minimisation import check_minimised
from schemas.reference import check_area_at, check_known_area
from schemas.wire import CanonicalUuid, Rfc3339, WindowEnd, strict_loads

__all__ = [
    "JTAI_CONSIDERATION_REQUESTED",
    "JTAI_DECISION_RECORDED",
    "OPEN_DECISIONS",
    "JtaiConsiderationRequested",
    "JtaiDecision",
    "JtaiDecisionRecorded",
    "JtaiTrigger",
    "decode_consideration",
    "encode_consideration",
]

JTAI_CONSIDERATION_REQUESTED: Final = "uk.inspectorate.jtai.consideration_requested.v1"
JTAI_DECISION_RECORDED: Final = "uk.inspectorate.jtai.decision_recorded.v1"


# "Several" inspectorates: fewer than two is one inspectorate's view, not a joint signal.
_SEVERAL: Final = 2


class JtaiTrigger(StrEnum):
    """Which rule raised the consideration."""

    SEVERAL_INSPECTORATES = "several_inspectorates"
    """Concerns from enough different inspectorates fell within one window."""
    SEVERITY_4 = "severity_4"
    """A single concern of the highest severity (this wins when it also reports risk)."""
    IMMEDIATE_RISK = "immediate_risk"
    """A single concern reporting immediate risk to children."""


Rationale = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class JtaiConsiderationRequested(BaseModel):
    """Liaison asks the inspectorates to consider ``area`` for a JTAI on ``theme``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["uk.inspectorate.jtai.consideration_requested.v1"] = JTAI_CONSIDERATION_REQUESTED
    id: CanonicalUuid
    source: Literal["liaison"] = BUS
    occurred_at: Rfc3339 = Field(
        description="When the concern that raised this consideration occurred."
    )
    area: GssCode
    theme: Theme
    window_start: Rfc3339 = Field(description="Earliest occurred_at among contributors.")
    window_end: WindowEnd = Field(description="window_start plus the window (exclusive).")
    trigger: JtaiTrigger
    contributing_event_ids: tuple[CanonicalUuid, ...] = Field(min_length=1)
    contributing_inspectorates: tuple[Inspectorate, ...] = Field(min_length=1)
    rationale: Rationale
    classification: Classification = Classification.OFFICIAL_SENSITIVE

    @field_validator("area")
    @classmethod
    def _live_upper_tier_area(cls, value: str, info: ValidationInfo) -> str:
        check_area_at(value, info.data.get("occurred_at"))
        return value

    @field_validator("contributing_event_ids")
    @classmethod
    def _ids_unique(cls, value: tuple[UUID, ...]) -> tuple[UUID, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists an event id more than once")
        return value

    @field_validator("contributing_inspectorates")
    @classmethod
    def _inspectorates_sorted_unique(
        cls, value: tuple[Inspectorate, ...]
    ) -> tuple[Inspectorate, ...]:
        # One canonical order, so two emissions of the same evidence encode identically.
        if list(value) != sorted(set(value)):
            raise ValueError("must be sorted and list each inspectorate once")
        return value

    @field_validator("rationale")
    @classmethod
    def _rationale_minimised(cls, value: str) -> str:
        # Generated text, but it travels to every inspectorate: keep the safety net on.
        check_minimised(value, "rationale")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        if not self.window_start <= self.occurred_at < self.window_end:
            raise ValueError("occurred_at must fall in [window_start, window_end)")
        several = self.trigger is JtaiTrigger.SEVERAL_INSPECTORATES
        if several and len(self.contributing_inspectorates) < _SEVERAL:
            raise ValueError("a several_inspectorates trigger needs two or more inspectorates")
        return self


def encode_consideration(event: JtaiConsiderationRequested) -> bytes:
    """The consideration's canonical JSON bytes (what is published, and later signed)."""
    return event.model_dump_json(exclude_none=True).encode()


def decode_consideration(data: bytes | str) -> JtaiConsiderationRequested:
    """Parse and validate one consideration; raise ``SchemaError`` listing every problem.

    Input over ``MAX_EVENT_BYTES`` is refused before it is parsed.
    """
    check_size(data, "consideration", MAX_EVENT_BYTES)
    document = strict_loads(data)
    if not isinstance(document, dict):
        raise SchemaError("a consideration must be a JSON object")
    if document.get("type") != JTAI_CONSIDERATION_REQUESTED:
        # The model's default serves those who build one; on the wire the type is required.
        msg = f"type: must be {JTAI_CONSIDERATION_REQUESTED!r}"
        raise SchemaError(msg, [Problem("type", f"must be {JTAI_CONSIDERATION_REQUESTED!r}")])
    try:
        return JtaiConsiderationRequested.model_validate_json(data, strict=True)
    except ValidationError as exc:
        raise schema_error(exc, "consideration") from None


class JtaiDecision(StrEnum):
    """What the JTAI programme decided about a consideration."""

    SHORTLIST = "shortlist"
    """Kept on the shortlist of candidate areas (the consideration stays open)."""
    SELECT = "select"
    """The area is selected for a JTAI on this theme."""
    DECLINE = "decline"
    """Not taken forward."""
    DEFER = "defer"
    """Looked at again later (the consideration stays open)."""


OPEN_DECISIONS: Final = frozenset({JtaiDecision.SHORTLIST, JtaiDecision.DEFER})
"""Decisions after which a consideration is still open (listed by ``liaison jtai list``)."""


class JtaiDecisionRecorded(BaseModel):
    """The JTAI programme's decision on a consideration, with its reason.

    Published on ``liaison.jtai`` by the inspectorate whose JTAI team member recorded it,
    signed with that inspectorate's key. The latest decision (by ``occurred_at``) stands.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["uk.inspectorate.jtai.decision_recorded.v1"] = JTAI_DECISION_RECORDED
    id: CanonicalUuid
    source: Inspectorate = Field(description="The inspectorate recording it (it signs).")
    occurred_at: Rfc3339
    consideration_id: CanonicalUuid
    area: GssCode
    theme: Theme
    decision: JtaiDecision
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    classification: Classification = Classification.OFFICIAL_SENSITIVE

    @field_validator("area")
    @classmethod
    def _known_area(cls, value: str) -> str:
        # Checked live at the consideration's time; an area that has ended since (a
        # reorganisation) must still be decided on.
        check_known_area(value)
        return value

    @field_validator("reason")
    @classmethod
    def _reason_minimised(cls, value: str) -> str:
        check_minimised(value, "reason")
        return value
