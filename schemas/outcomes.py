"""What receiving programmes did with a finding, and the bus's reminder when they did not.

A programme team that received a finding (a concern, exceptional practice, a
recommendation or its review) records what it did with it as an ``OutcomeRecorded``,
signed by its own inspectorate's key and published on ``liaison.outcomes``. The router
verifies it and routes it back to the publishing inspectorate's programme queue (the
finding's ``programme``) and into the area feed. A team may record a later outcome for the
same finding: the latest (by ``occurred_at``) stands, every one is kept.

When a finding has no outcome after the configured number of working days, Liaison
publishes one ``OutcomeOverdue`` on ``liaison.outcomes``, signed by the bus's key
(owner ``liaison``); its id is derived from the finding and the programme, so it is raised
once however often the check runs.

``DeliveryRecorded`` is what ``liaison serve deliver`` writes to ``liaison.delivery``
after posting a routed envelope to a programme's own system: delivered, or refused after
its last try (never dropped). It is signed by the receiving inspectorate's key.

All are frozen, closed models with stable wire types; a v2 is added beside a v1, never by
changing it. None repeats a finding's free text; ``note`` is the receiving team's own
words and is held to the same minimisation lint as a summary.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.events import Classification, GssCode, Theme
from schemas.inspectorates import JTAI, PROGRAMMES, Inspectorate, Programme, owner_of
from schemas.keys import BUS
from schemas.minimisation import check_minimised
from schemas.reference import check_known_area
from schemas.wire import CanonicalUuid, Rfc3339

__all__ = [
    "DELIVERY_RECORDED",
    "OUTCOME_OVERDUE",
    "OUTCOME_RECORDED",
    "OVERDUE_NAMESPACE",
    "DeliveryRecorded",
    "DeliveryStatus",
    "Outcome",
    "OutcomeOverdue",
    "OutcomeRecorded",
    "overdue_id",
]

OUTCOME_RECORDED: Final = "uk.inspectorate.finding.outcome_recorded.v1"
OUTCOME_OVERDUE: Final = "uk.inspectorate.finding.outcome_overdue.v1"
DELIVERY_RECORDED: Final = "uk.inspectorate.delivery.recorded.v1"

OVERDUE_NAMESPACE: Final = uuid.UUID("0b7b7f39-6a0c-4b8e-9d55-5b1f8e2a4c61")
"""Namespace of overdue reminders' ids (fixed forever: changing it changes every id)."""


class Outcome(StrEnum):
    """What a programme did with a finding it received."""

    INFORMS_SCHEDULING = "informs_scheduling"
    """It informs when the programme next inspects the area."""
    ADDED_TO_SCOPE = "added_to_scope"
    """It is added to the scope of a planned inspection."""
    REFERRED_TO_JTAI = "referred_to_jtai"
    """The programme refers it to the JTAI programme."""
    NOTED_NO_ACTION = "noted_no_action"
    """Noted; no action now."""
    NOT_RELEVANT = "not_relevant"
    """Not relevant to this programme (a routing rule to review)."""


Note = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def _check_programme_of(source: object, programme: object) -> None:
    """``programme`` is run by ``source`` (JTAI is joint: any inspectorate acts for it)."""
    if not isinstance(source, Inspectorate) or not isinstance(programme, Programme):
        return
    if programme is JTAI or owner_of(programme) is source:
        return
    owned = ", ".join(p.value for p in PROGRAMMES[source])
    msg = f"{programme.value!r} is not run by {source.value} (its programmes: {owned}, jtai)"
    raise ValueError(msg)


class _AboutFinding(BaseModel):
    """Fields naming the finding, where it came from and the programme that received it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: CanonicalUuid
    occurred_at: Rfc3339
    area: GssCode = Field(description="The finding's area.")
    theme: Theme = Field(description="The finding's theme.")
    programme: Programme = Field(description="The programme that received the finding.")
    finding_id: CanonicalUuid = Field(description="The finding's event id.")
    finding_type: Annotated[str, StringConstraints(pattern=r"^uk\.inspectorate\.[a-z0-9_.]+$")]
    finding_source: Inspectorate = Field(description="The inspectorate that published it.")
    finding_programme: Programme = Field(
        description="The programme it was published under: the outcome is routed back there."
    )
    classification: Classification = Classification.OFFICIAL_SENSITIVE

    @field_validator("area")
    @classmethod
    def _known_area(cls, value: str) -> str:
        # The finding's area was checked at the finding's time; one that has ended since
        # (a reorganisation) must still be named by what is recorded about it.
        check_known_area(value)
        return value

    @model_validator(mode="after")
    def _finding_programme_owned(self) -> Self:
        _check_programme_of(self.finding_source, self.finding_programme)
        if self.programme is not JTAI and owner_of(self.programme) is self.finding_source:
            msg = "a finding is never routed to a programme of its own publisher"
            raise ValueError(msg)
        return self


class OutcomeRecorded(_AboutFinding):
    """A receiving programme says what it did with a finding, and why."""

    type: Literal["uk.inspectorate.finding.outcome_recorded.v1"] = OUTCOME_RECORDED
    source: Inspectorate = Field(description="The receiving inspectorate (it signs).")
    outcome: Outcome
    note: Note = Field(description="The team's reason, in its own words (minimised).")

    @field_validator("note")
    @classmethod
    def _note_minimised(cls, value: str) -> str:
        check_minimised(value, "note")
        return value

    @model_validator(mode="after")
    def _programme_run_by_source(self) -> Self:
        _check_programme_of(self.source, self.programme)
        return self


class OutcomeOverdue(_AboutFinding):
    """No outcome was recorded for a finding within the configured working days."""

    type: Literal["uk.inspectorate.finding.outcome_overdue.v1"] = OUTCOME_OVERDUE
    source: Literal["liaison"] = BUS
    routed_at: Rfc3339 = Field(description="When the finding reached the programme's queue.")
    due_at: Rfc3339 = Field(description="When its outcome was due.")
    working_days: int = Field(ge=1, le=365)

    @model_validator(mode="after")
    def _id_derived(self) -> Self:
        if self.id != overdue_id(self.finding_id, self.programme):
            raise ValueError("id must be overdue_id(finding_id, programme)")
        if self.due_at <= self.routed_at:
            raise ValueError("due_at must be after routed_at")
        return self


def overdue_id(finding_id: uuid.UUID, programme: Programme) -> uuid.UUID:
    """The one id of the reminder that ``programme`` owes an outcome for ``finding_id``."""
    return uuid.uuid5(OVERDUE_NAMESPACE, f"{finding_id}|{programme.value}")


class DeliveryStatus(StrEnum):
    """How a post of a routed envelope to a programme's own system ended."""

    DELIVERED = "delivered"
    REFUSED = "refused"
    """Every try failed; the envelope stays in the queue and the inbox shows it."""


class DeliveryRecorded(BaseModel):
    """``liaison serve deliver`` posted (or failed to post) a routed envelope to a
    programme's endpoint. Signed by the receiving inspectorate's key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["uk.inspectorate.delivery.recorded.v1"] = DELIVERY_RECORDED
    id: CanonicalUuid
    source: Inspectorate = Field(description="The receiving inspectorate (it signs).")
    occurred_at: Rfc3339
    area: GssCode
    programme: Programme
    event_id: CanonicalUuid = Field(description="The envelope's event id (idempotency key).")
    status: DeliveryStatus
    attempts: int = Field(ge=1, le=1000)
    last_error: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] | None = Field(
        default=None, description="A code: http_503, timeout, connect_error..."
    )
    classification: Classification = Classification.OFFICIAL

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_programme_of(self.source, self.programme)
        if (self.status is DeliveryStatus.REFUSED) != (self.last_error is not None):
            raise ValueError("last_error is given exactly when the delivery was refused")
        return self
