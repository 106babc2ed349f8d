"""Valid events for tests, with any field overridden."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from schemas.envelope import seal
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.keys import SigningKey, TrustStore
from schemas.records import Headers, InboundRecord, event_headers

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


def key_for(owner: str) -> SigningKey:
    """A fresh signing key (keys for tests are generated, never committed)."""
    return SigningKey.generate(owner)


def trust_of(
    *keys: SigningKey, valid_from: dt.datetime = NOW - dt.timedelta(days=30)
) -> TrustStore:
    """A trust store with each key active from ``valid_from``."""
    return TrustStore(keys=tuple(k.trusted(valid_from=valid_from) for k in keys))


def inbound(
    value: bytes,
    headers: Headers = (),
    *,
    topic: str = "t.liaison.events.ofsted",
    appended_at: dt.datetime = NOW,
    timestamp_type: int = 1,
) -> InboundRecord:
    """A consumed record, appended by the broker at ``appended_at``."""
    return InboundRecord(
        topic=topic,
        partition=1,
        offset=42,
        timestamp_ms=int(appended_at.timestamp() * 1000),
        key=b"E08000025",
        value=value,
        headers=headers,
        timestamp_type=timestamp_type,
    )


def sealed_inbound(
    event: ConcernRaised | ExceptionalPracticeIdentified,
    key: SigningKey,
    *,
    appended_at: dt.datetime = NOW,
) -> InboundRecord:
    """``event`` sealed with ``key`` as the router would consume it."""
    sealed = seal(event, key, NOW)
    return inbound(sealed.envelope, event_headers(event), appended_at=appended_at)
