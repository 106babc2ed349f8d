"""Valid recommendations, reviews, outcomes and overdue reminders for tests (issue 11),
with any field overridden; and any signed type sealed as the router would consume it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from schemas.events import RecommendationMade, RecommendationReviewed
from schemas.inspectorates import Agency, Programme
from schemas.keys import SigningKey
from schemas.outcomes import OutcomeOverdue, OutcomeRecorded, overdue_id
from schemas.records import InboundRecord, signed_headers
from schemas.reference import police_force_of
from schemas.signed import SignedEvent, seal_signed
from tests.factories import NOW, inbound

__all__ = [
    "outcome_overdue",
    "outcome_recorded",
    "recommendation",
    "review",
    "signed_inbound",
]


def _recommendation_fields(overrides: dict[str, Any]) -> dict[str, Any]:
    """HMICFRS's NCPI to the police in Birmingham about neglect, unless overridden; the
    force follows the area and recipient when neither names one."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "hmicfrs",
        "occurred_at": NOW - dt.timedelta(hours=1),
        "area": "E08000025",
        "programme": "ncpi",
        "subject_agencies": ["police"],
        "theme": "neglect",
        "summary": "Strategy discussions about neglect should include the police every time.",
        "recipient": "police",
    }
    fields.update(overrides)
    if "force" not in overrides and Agency(fields["recipient"]) is Agency.POLICE:
        fields["force"] = police_force_of(fields["area"]).code
    return fields


def recommendation(**overrides: Any) -> RecommendationMade:
    """A recommendation HMICFRS made to the police in Birmingham, unless overridden."""
    fields = _recommendation_fields(overrides)
    fields.setdefault("review_by", (NOW + dt.timedelta(days=180)).date())
    return RecommendationMade.model_validate(fields)


def review(**overrides: Any) -> RecommendationReviewed:
    """HMICFRS's review finding its recommendation to the police in Birmingham not
    progressing, unless overridden (``recommendation_id`` defaults to a fresh id)."""
    fields = _recommendation_fields(
        {"summary": "Progress on joint strategy discussions has been slow.", **overrides}
    )
    fields.setdefault("recommendation_id", uuid.uuid4())
    fields.setdefault("progress", "not_progressing")
    return RecommendationReviewed.model_validate(fields)


def outcome_recorded(**overrides: Any) -> OutcomeRecorded:
    """HMICFRS's NCPI says an Ofsted ILACS concern (about neglect in Birmingham) informs
    its scheduling, unless overridden."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "hmicfrs",
        "occurred_at": NOW - dt.timedelta(minutes=30),
        "area": "E08000025",
        "theme": "neglect",
        "programme": "ncpi",
        "finding_id": uuid.uuid4(),
        "finding_type": "uk.inspectorate.concern.raised.v1",
        "finding_source": "ofsted",
        "finding_programme": "ilacs",
        "outcome": "informs_scheduling",
        "note": "We will bring the force's next inspection forward.",
    }
    fields.update(overrides)
    return OutcomeRecorded.model_validate(fields)


def outcome_overdue(**overrides: Any) -> OutcomeOverdue:
    """The bus's reminder that NCPI owes an outcome for an Ofsted ILACS concern, unless
    overridden; its id is derived from the finding and programme."""
    fields: dict[str, Any] = {
        "occurred_at": NOW - dt.timedelta(minutes=10),
        "area": "E08000025",
        "theme": "neglect",
        "programme": "ncpi",
        "finding_id": uuid.uuid4(),
        "finding_type": "uk.inspectorate.concern.raised.v1",
        "finding_source": "ofsted",
        "finding_programme": "ilacs",
        "routed_at": NOW - dt.timedelta(days=30),
        "due_at": NOW - dt.timedelta(days=2),
        "working_days": 20,
    }
    fields.update(overrides)
    fields.setdefault(
        "id", overdue_id(uuid.UUID(str(fields["finding_id"])), Programme(fields["programme"]))
    )
    return OutcomeOverdue.model_validate(fields)


def signed_inbound(
    event: SignedEvent,
    key: SigningKey,
    *,
    topic: str,
    appended_at: dt.datetime = NOW,
) -> InboundRecord:
    """``event`` sealed with ``key`` (``seal_signed``) as a record of ``topic``, with the
    headers a publisher gives it (the contract's and the CloudEvents ones)."""
    sealed = seal_signed(event, key, NOW)
    return inbound(sealed.envelope, signed_headers(event), topic=topic, appended_at=appended_at)
