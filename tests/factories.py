"""Valid events for tests, with any field overridden."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from schemas.events import ConcernRaised, ExceptionalPracticeIdentified

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def concern(**overrides: Any) -> ConcernRaised:
    """An Ofsted concern about the front door in Birmingham, unless overridden."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "ofsted",
        "occurred_at": NOW - dt.timedelta(hours=1),
        "area": "E08000025",
        "programme": "ilacs",
        "subject_agencies": ["local_authority"],
        "theme": "neglect",
        "summary": "Referrals wait too long for a decision.",
        "finding": "area_for_improvement",
        "severity": 2,
        "immediate_risk": False,
    }
    fields.update(overrides)
    return ConcernRaised.model_validate(fields)


def good_practice(**overrides: Any) -> ExceptionalPracticeIdentified:
    """Exceptional practice found by CQC in Kent, unless overridden."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "cqc",
        "occurred_at": NOW - dt.timedelta(hours=1),
        "area": "E10000016",
        "programme": "clas",
        "subject_agencies": ["health"],
        "theme": "mental_health",
        "summary": "Same-day mental health consultation for every child in care.",
    }
    fields.update(overrides)
    return ExceptionalPracticeIdentified.model_validate(fields)


def utc_now() -> dt.datetime:
    """The real clock, for publishing in integration tests."""
    return dt.datetime.now(dt.UTC)
