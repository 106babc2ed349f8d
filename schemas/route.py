"""Proof that the router sent a record to a queue: a route attestation signed by the bus.

A programme's queue (``liaison.programme.<p>``, ``liaison.jtai``) is what a receiving
team reads as "routed to us". Having reached the topic proves nothing: anyone able to
write to it could copy a genuine signed finding there (one the rules kept from that
programme) with any ``liaison_rules`` / ``liaison_reason`` headers. So the router signs,
for every record it forwards to a queue, a ``Route``: the event's id and type, who signed
it, the SHA-256 of the exact value forwarded, the queue, and the rules and reason that
sent it there. It travels in the record's ``liaison_route`` header as a DSSE envelope
(payloadType ``uk.liaison.route.v1``) signed by the bus key (owner ``liaison``).

Readers (the inbox, ``serve deliver``) accept a record on a queue only with a route whose
signature verifies under a trusted bus key valid at the record's append time, and which
names that record's event, value and topic; the rules and reason shown are the signed
ones, never the plain headers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Final

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from schemas.envelope import LOG_APPEND_TIME, Reason, pae, parse_dsse, sign_envelope
from schemas.errors import EnvelopeError, SchemaError, SignatureError
from schemas.keys import BUS, SigningKey, TrustStore
from schemas.records import InboundRecord, header_map
from schemas.wire import CanonicalUuid, strict_loads

__all__ = [
    "HEADER_ROUTE",
    "ROUTE_TYPE",
    "Route",
    "attest_route",
    "check_route",
]

ROUTE_TYPE: Final = "uk.liaison.route.v1"
HEADER_ROUTE: Final = "liaison_route"
_MAX_ROUTE_BYTES: Final = 8 * 1024


class Route(BaseModel):
    """The router sent this exact value (by SHA-256) to ``topic``, for these rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: CanonicalUuid
    event_type: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    signer: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="Owner of the key that signed the forwarded envelope."
    )
    value_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    topic: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
    rules: tuple[Annotated[str, StringConstraints(min_length=1, max_length=200)], ...] = ()
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def attest_route(route: Route, key: SigningKey) -> bytes:
    """The ``liaison_route`` header value: ``route`` signed by the bus key."""
    if key.owner != BUS:
        msg = f"only the bus key signs routes, not a key of {key.owner}"
        raise SignatureError(Reason.WRONG_INSPECTORATE, msg)
    payload = route.model_dump_json().encode()
    return sign_envelope(ROUTE_TYPE, payload, key)


def _unproven(detail: str) -> EnvelopeError:
    return EnvelopeError(Reason.ROUTE_UNPROVEN, detail)


def check_route(
    record: InboundRecord, trust: TrustStore, now: dt.datetime, *, event_id: object
) -> Route:
    """The verified route of ``record`` (a record read from a queue), for ``event_id``.

    ``EnvelopeError`` with reason ``route_unproven`` when the header is missing or
    repeated, does not verify under a bus key trusted at the record's append time, or
    names another event, value or topic.
    """
    names = [name for name, _ in record.headers]
    if names.count(HEADER_ROUTE) != 1:
        raise _unproven("the record has no single route attestation from the router")
    value = header_map(record.headers)[HEADER_ROUTE]
    if len(value) > _MAX_ROUTE_BYTES:
        raise _unproven("the route attestation is too large")
    try:
        payload_type, payload, keyid, sig = parse_dsse(value)
    except EnvelopeError:
        raise _unproven("the route attestation is not a signed envelope") from None
    key = trust.get(keyid)
    if payload_type != ROUTE_TYPE or key is None or key.owner != BUS:
        raise _unproven("the route attestation is not signed by a bus key")
    try:
        key.verifier().verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        raise _unproven("the route attestation's signature does not verify") from None
    judged_at = now
    if record.timestamp_type == LOG_APPEND_TIME:
        try:
            judged_at = dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise _unproven("the record's append time is out of range") from None
    if key.refuses_at(judged_at) is not None:
        raise _unproven("the route attestation's key was not valid when it was appended")
    try:
        strict_loads(payload)
        route = Route.model_validate_json(payload, strict=True)
    except (SchemaError, ValidationError):
        raise _unproven("the route attestation does not parse") from None
    if str(route.event_id) != str(event_id) or route.topic != record.topic:
        raise _unproven("the route attestation names another event or topic")
    if route.value_sha256 != hashlib.sha256(record.value).hexdigest():
        raise _unproven("the route attestation names another value")
    return route
