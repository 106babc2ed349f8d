"""Every signed type of the contract, sealed and opened by one path.

Inspectorate events (``schemas.events``), the bus's JTAI considerations and the JTAI
programme's decisions (``schemas.jtai``), programmes' outcomes, the bus's overdue
reminders and delivery results (``schemas.outcomes``) all travel as one-signature DSSE
envelopes. ``open_signed`` verifies one exactly as ``schemas.envelope.open_envelope``
verifies an event (shape, key id, signature over the exact payload bytes, key validity at
the broker's append time, then the payload: contract, type, signer's owner, headers) and
accepts only the types a topic carries (``accept``); anything else is refused with a
``Reason`` code.

Who may sign what: a key signs only for the ``source`` its owner is, so an
inspectorate's key signs its events, outcomes, JTAI decisions and delivery results, and
the bus's key (owner ``liaison``) its considerations and overdue reminders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Final, TypeAlias

from pydantic import Field, TypeAdapter, ValidationError

from schemas._problems import check_size, schema_error
from schemas.envelope import (
    Reason,
    check_claims,
    refused_payload,
    sign_envelope,
    verify,
)
from schemas.errors import EnvelopeError, SchemaError, SignatureError
from schemas.events import (
    CLOCK_SKEW,
    CODEC,
    FINDING_TYPES,
    MAX_EVENT_BYTES,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    RecommendationMade,
    RecommendationReviewed,
)
from schemas.inspectorates import JTAI, Programme
from schemas.jtai import (
    JTAI_CONSIDERATION_REQUESTED,
    JTAI_DECISION_RECORDED,
    JtaiConsiderationRequested,
    JtaiDecisionRecorded,
)
from schemas.keys import SigningKey, TrustedKey, TrustStore
from schemas.outcomes import (
    DELIVERY_RECORDED,
    OUTCOME_OVERDUE,
    OUTCOME_RECORDED,
    DeliveryRecorded,
    OutcomeOverdue,
    OutcomeRecorded,
)
from schemas.records import InboundRecord
from schemas.topics import Topics
from schemas.wire import strict_loads

__all__ = [
    "ALL_TYPES",
    "DELIVERY_TOPIC_TYPES",
    "FEED_TYPES",
    "JTAI_TOPIC_TYPES",
    "OUTCOME_TOPIC_TYPES",
    "PROGRAMME_TOPIC_TYPES",
    "OpenedSigned",
    "SealedSigned",
    "SignedEvent",
    "accepted_on",
    "decode_signed",
    "encode_signed",
    "open_signed",
    "seal_signed",
]

SignedEvent: TypeAlias = (
    ConcernRaised
    | ExceptionalPracticeIdentified
    | RecommendationMade
    | RecommendationReviewed
    | JtaiConsiderationRequested
    | JtaiDecisionRecorded
    | OutcomeRecorded
    | OutcomeOverdue
    | DeliveryRecorded
)
"""Any signed event of the contract."""

_SIGNED: Final[TypeAdapter[SignedEvent]] = TypeAdapter(
    Annotated[SignedEvent, Field(discriminator="type")]
)

ALL_TYPES: Final = frozenset(
    {
        *FINDING_TYPES,
        JTAI_CONSIDERATION_REQUESTED,
        JTAI_DECISION_RECORDED,
        OUTCOME_RECORDED,
        OUTCOME_OVERDUE,
        DELIVERY_RECORDED,
    }
)
"""Every signed type."""

# What each kind of topic carries (the router and every reader hold topics to these).
PROGRAMME_TOPIC_TYPES: Final = frozenset({*FINDING_TYPES, OUTCOME_RECORDED, OUTCOME_OVERDUE})
"""``liaison.programme.<p>``: findings routed to it, and outcomes of its own findings
routed back to it (with their overdue reminders)."""
JTAI_TOPIC_TYPES: Final = frozenset(
    {*PROGRAMME_TOPIC_TYPES, JTAI_CONSIDERATION_REQUESTED, JTAI_DECISION_RECORDED}
)
"""``liaison.jtai``: the JTAI programme's queue, its considerations and its decisions."""
FEED_TYPES: Final = frozenset({*FINDING_TYPES, OUTCOME_RECORDED})
"""``liaison.feed.areas``: every verified finding and every outcome recorded."""
OUTCOME_TOPIC_TYPES: Final = frozenset({OUTCOME_RECORDED, OUTCOME_OVERDUE})
"""``liaison.outcomes``: what programmes did with findings, and overdue reminders."""
DELIVERY_TOPIC_TYPES: Final = frozenset({DELIVERY_RECORDED})
"""``liaison.delivery``: results of ``liaison serve deliver``."""


def accepted_on(topic: str, topics: Topics) -> frozenset[str]:
    """The signed types ``topic`` (a name under ``topics``) carries; empty for a topic of
    no signed events (the audit log, quarantine, keys)."""
    by_topic = {
        topics.feed: FEED_TYPES,
        topics.jtai: JTAI_TOPIC_TYPES,
        topics.outcomes: OUTCOME_TOPIC_TYPES,
        topics.delivery: DELIVERY_TOPIC_TYPES,
        topics.unrouted: frozenset(FINDING_TYPES),
        **{name: frozenset(FINDING_TYPES) for name in topics.all_events()},
        **{topics.programme(p): PROGRAMME_TOPIC_TYPES for p in Programme if p is not JTAI},
    }
    return by_topic.get(topic, frozenset())


def encode_signed(event: SignedEvent) -> bytes:
    """The event's canonical JSON bytes (what is signed)."""
    return event.model_dump_json(exclude_none=True).encode()


def decode_signed(data: bytes | str, *, now: dt.datetime | None = None) -> SignedEvent:
    """Parse and validate any signed type strictly; ``SchemaError`` lists every problem.

    Inspectorate events go through their codec (``schemas.events``: upcasters, the
    publisher's clock check when ``now`` is given); the rest through their models, with
    ``occurred_at`` no later than ``now`` plus the clock skew when ``now`` is given.
    """
    check_size(data, "event", MAX_EVENT_BYTES)
    document = strict_loads(data)
    if not isinstance(document, dict):
        raise SchemaError("an event must be a JSON object")
    if document.get("type") in FINDING_TYPES:
        return CODEC.decode_parsed(data, document, now=now)
    try:
        event = _SIGNED.validate_json(data, strict=True)
    except ValidationError as exc:
        raise schema_error(exc, "event", tuple(sorted(ALL_TYPES))) from None
    if now is not None and event.occurred_at > now + CLOCK_SKEW:
        raise SchemaError(f"occurred_at: is in the future (more than {CLOCK_SKEW} after now)")
    return event


@dataclass(frozen=True, slots=True)
class SealedSigned:
    """A validated event, the exact payload bytes signed, and the envelope JSON."""

    event: SignedEvent
    payload: bytes
    envelope: bytes
    keyid: str


def seal_signed(event: SignedEvent, key: SigningKey, now: dt.datetime) -> SealedSigned:
    """Validate ``event`` (against ``now``) and sign it with ``key``, whose owner must be
    the event's ``source``."""
    if key.owner != str(event.source):
        msg = f"a key of {key.owner} cannot sign an event whose source is {event.source}"
        raise SignatureError(Reason.WRONG_INSPECTORATE, msg)
    payload = encode_signed(event)
    decode_signed(payload, now=now)
    return SealedSigned(event, payload, sign_envelope(event.type, payload, key), key.keyid)


@dataclass(frozen=True, slots=True)
class OpenedSigned:
    """A verified signed event, the key that vouched for it and the time that was judged."""

    event: SignedEvent
    payload: bytes
    key: TrustedKey
    judged_at: dt.datetime


def open_signed(
    record: InboundRecord, trust: TrustStore, now: dt.datetime, accept: Collection[str]
) -> OpenedSigned:
    """Verify and decode one signed record of a type in ``accept``; raise
    ``EnvelopeError`` with a ``Reason`` otherwise (``wrong_topic`` for a verified envelope
    of a type the topic does not carry)."""
    verified = verify(record, trust, now)
    if verified.payload_type not in accept:
        raise EnvelopeError(Reason.WRONG_TOPIC, "a signed type this topic does not carry")
    try:
        event = decode_signed(verified.payload)
    except SchemaError as exc:
        raise refused_payload(exc) from None
    check_claims(record, verified, event)
    return OpenedSigned(event, verified.payload, verified.key, verified.judged_at)
