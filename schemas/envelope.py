"""Signed envelopes: DSSE v1 with Ed25519, sealed by publishers, opened by every reader.

Wire format (the Kafka record value), JSON::

    {"payload": "<base64 of the exact event JSON bytes>",
     "payloadType": "<the event's type>",
     "signatures": [{"keyid": "<hex SHA-256 of the raw public key>", "sig": "<base64>"}]}

The signature covers DSSE's pre-authentication encoding (``pae``) of payloadType and
payload. ``open`` verifies those bytes before it parses them and never re-serialises
anything before verifying. Exactly one signature is accepted: each event has exactly
one publisher.

``open`` refuses a record with a stable reason code (``Reason``); the caller quarantines
it. Which key was good is judged at the record's broker append time (``LogAppendTime``)
when the record carries one, else at the reader's ``now`` (later, so never more lenient).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import DuplicateKeyError, EnvelopeError, SchemaError, SignatureError
from schemas.events import (
    CLOCK_SKEW,
    MAX_EVENT_BYTES,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    InspectorateEvent,
    JtaiRequest,
    RecommendationMade,
    RecommendationReviewed,
    decode_event,
    encode_event,
    validate_event,
)
from schemas.jtai import (
    JtaiConsiderationRequested,
    JtaiDecisionRecorded,
    decode_consideration,
    encode_consideration,
)
from schemas.keys import SigningKey, TrustedKey, TrustStore
from schemas.outcomes import DeliveryRecorded, OutcomeOverdue, OutcomeRecorded
from schemas.records import (
    HEADER_AREA,
    HEADER_EVENT_ID,
    HEADER_SOURCE,
    HEADER_TYPE,
    Headed,
    InboundRecord,
    cloudevents_headers,
    event_headers,
    header_map,
)
from schemas.wire import strict_loads

__all__ = [
    "LOG_APPEND_TIME",
    "MAX_ENVELOPE_BYTES",
    "DsseEnvelope",
    "DsseSignature",
    "Opened",
    "OpenedConsideration",
    "Reason",
    "Sealed",
    "SealedConsideration",
    "Verified",
    "check_claims",
    "open",
    "open_consideration",
    "open_envelope",
    "pae",
    "parse_dsse",
    "refused_payload",
    "seal",
    "seal_consideration",
    "sign_envelope",
    "verify",
]

LOG_APPEND_TIME: Final = 1
"""Kafka's timestamp type for a time set by the broker when it appended the record."""

MAX_ENVELOPE_BYTES: Final = MAX_EVENT_BYTES * 4 // 3 + 1024
"""The largest envelope that can carry a largest event (base64 plus the signature)."""

Event = InspectorateEvent


class DsseSignature(BaseModel):
    """One signature of an envelope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keyid: str = Field(description="Lowercase hex SHA-256 of the signer's raw Ed25519 key.")
    sig: str = Field(description="Base64 Ed25519 signature of PAE(payloadType, payload).")


class DsseEnvelope(BaseModel):
    """The record value on every events, programme, JTAI and feed topic (documentation).

    ``open`` parses envelopes itself, strictly; this model describes them for AsyncAPI.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    payload: str = Field(
        description="Base64 of the exact event JSON bytes (see schemas/json/ for the events)."
    )
    payloadType: str = Field(  # noqa: N815 - DSSE's field name
        description="The event's type, e.g. uk.inspectorate.concern.raised.v1."
    )
    signatures: list[DsseSignature] = Field(min_length=1, max_length=1)


class Reason(StrEnum):
    """Why a record was refused: stable codes for quarantine, logs and audit."""

    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    NOT_DSSE = "not_dsse"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    KEY_REVOKED = "key_revoked"
    KEY_NOT_VALID = "key_not_valid"
    WRONG_INSPECTORATE = "wrong_inspectorate"
    TYPE_MISMATCH = "type_mismatch"
    SCHEMA_INVALID = "schema_invalid"
    HEADER_MISMATCH = "header_mismatch"
    DUPLICATE_KEY = "duplicate_key"
    """A JSON object in the envelope or the signed payload repeats a key."""
    ROUTE_UNPROVEN = "route_unproven"
    """A record on a queue without a valid route attestation from the router."""
    WRONG_TOPIC = "wrong_topic"
    """A verified envelope of a type this topic does not carry."""
    ID_CONFLICT = "id_conflict"
    """Another inspectorate's verified event already has this event id."""
    WRONG_PARTITION = "wrong_partition"
    """A verified event on a partition its area's key does not give (every area-keyed
    topic is placed by Kafka's default partitioner, so one router judges an area)."""
    UNPARSEABLE = "unparseable"
    """The Kafka client could not parse the record (e.g. a header name that is not UTF-8)."""
    INTERNAL_ERROR = "internal_error"
    """Judging the record failed in a way Liaison did not foresee (a bug, kept, not lost)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len SP type SP len SP body``."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A validated event, the exact payload bytes signed, and the envelope JSON."""

    event: Event
    payload: bytes
    envelope: bytes
    keyid: str


@functools.lru_cache(maxsize=256)
def _json_text(text: str) -> bytes:
    """``text`` as a JSON string, as ``json.dumps`` writes it (ASCII, escaped)."""
    return json.dumps(text).encode()


def sign_envelope(payload_type: str, payload: bytes, key: SigningKey) -> bytes:
    """The DSSE envelope JSON of ``payload`` signed by ``key`` (no validation: see ``seal``).

    The bytes are those of ``json.dumps`` of the envelope with compact separators, written
    directly: base64 needs no escaping, and the type and key id (a few values, cached) are
    escaped by ``json.dumps`` itself.
    """
    signature = key.sign(pae(payload_type, payload))
    return b'{"payload":"%b","payloadType":%b,"signatures":[{"keyid":%b,"sig":"%b"}]}' % (
        base64.b64encode(payload),
        _json_text(payload_type),
        _json_text(key.keyid),
        base64.b64encode(signature),
    )


def seal(event: Event, key: SigningKey, now: dt.datetime) -> Sealed:
    """Validate ``event`` against the contract and ``now``, and sign it with ``key``.

    A key signs only for its owner: sealing another inspectorate's event is refused.
    """
    if key.owner != event.source.value:
        msg = f"a key of {key.owner} cannot sign an event whose source is {event.source.value}"
        raise SignatureError(Reason.WRONG_INSPECTORATE, msg)
    payload = encode_event(event)
    validate_event(payload, now=now)
    return Sealed(event, payload, sign_envelope(event.type, payload, key), key.keyid)


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified event, the key that vouched for it and the time that was judged."""

    event: Event
    payload: bytes
    key: TrustedKey
    judged_at: dt.datetime


def _b64(value: object, what: str) -> bytes:
    """Strict, canonical base64 (standard or URL-safe): one text per byte string."""
    if not isinstance(value, str):
        raise EnvelopeError(Reason.NOT_DSSE, f"{what} is not a base64 string")
    try:
        if "-" in value or "_" in value:
            raw = base64.urlsafe_b64decode(value.encode())
            canonical = base64.urlsafe_b64encode(raw).decode()
        else:
            raw = base64.b64decode(value.encode(), validate=True)
            canonical = base64.b64encode(raw).decode()
    except (binascii.Error, ValueError):
        raise EnvelopeError(Reason.NOT_DSSE, f"{what} is not valid base64") from None
    if canonical != value:
        raise EnvelopeError(Reason.NOT_DSSE, f"{what} is not canonical base64")
    return raw


_KEYID: Final = re.compile(r"[0-9a-f]{64}")
_PAYLOAD_TYPE: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+){1,15}")
_MAX_PAYLOAD_TYPE: Final = 128


def _parse(value: bytes) -> tuple[str, bytes, str, bytes]:
    """The envelope's four parts, strictly; refuse anything else with a reason code.

    Messages name what is wrong, never what the record holds (a key id, a type or a key
    taken from input may be any text).
    """
    if len(value) > MAX_ENVELOPE_BYTES:
        msg = f"record is {len(value)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit"
        raise EnvelopeError(Reason.OVERSIZED, msg)
    try:
        document: Any = strict_loads(value)
    except DuplicateKeyError:
        raise EnvelopeError(Reason.DUPLICATE_KEY, "the envelope repeats a key") from None
    except SchemaError as exc:
        raise EnvelopeError(Reason.MALFORMED_JSON, f"the record is {exc}") from None
    if not isinstance(document, dict) or set(document) != {
        "payload",
        "payloadType",
        "signatures",
    }:
        raise EnvelopeError(
            Reason.NOT_DSSE, "not a DSSE envelope (payload, payloadType, signatures)"
        )
    payload_type = document["payloadType"]
    signatures = document["signatures"]
    if (
        not isinstance(payload_type, str)
        or len(payload_type) > _MAX_PAYLOAD_TYPE
        or not _PAYLOAD_TYPE.fullmatch(payload_type)
    ):
        raise EnvelopeError(Reason.NOT_DSSE, "payloadType is not a type name")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise EnvelopeError(Reason.NOT_DSSE, "an envelope carries exactly one signature")
    (signature,) = signatures
    if not isinstance(signature, dict) or set(signature) - {"keyid", "sig"}:
        raise EnvelopeError(Reason.NOT_DSSE, "a signature has exactly keyid and sig")
    keyid = signature.get("keyid")
    if not isinstance(keyid, str) or not _KEYID.fullmatch(keyid):
        raise EnvelopeError(Reason.NOT_DSSE, "the signature's keyid is not a key id (64 hex)")
    payload = _b64(document["payload"], "payload")
    sig = _b64(signature.get("sig"), "sig")
    return payload_type, payload, keyid, sig


def parse_dsse(value: bytes) -> tuple[str, bytes, str, bytes]:
    """A one-signature DSSE envelope's payloadType, payload, keyid and signature, strictly;
    ``EnvelopeError`` with a reason code if ``value`` is not one. Nothing is verified."""
    return _parse(value)


@dataclass(frozen=True, slots=True)
class Verified:
    """An envelope whose signature verified, before its payload is parsed."""

    payload_type: str
    payload: bytes
    key: TrustedKey
    judged_at: dt.datetime


def _appended_at(record: InboundRecord) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        # Only a broker sets LogAppendTime; one out of range is judged as no time at all.
        raise EnvelopeError(
            Reason.KEY_NOT_VALID, "the record's append time is out of range"
        ) from None


def verify(record: InboundRecord, trust: TrustStore, now: dt.datetime) -> Verified:
    """Check shape, key id, signature over the exact payload bytes, and key validity.

    Key validity is judged at the record's append time (``LogAppendTime``), else ``now``.
    Nothing of the payload is parsed here.
    """
    payload_type, payload, keyid, sig = _parse(record.value)
    key = trust.get(keyid)
    if key is None:
        raise SignatureError(Reason.UNKNOWN_KEY, "no trusted key has the signature's key id")
    try:
        key.verifier().verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        raise SignatureError(Reason.BAD_SIGNATURE, "the signature does not verify") from None
    judged_at = _appended_at(record) if record.timestamp_type == LOG_APPEND_TIME else now
    refused = key.refuses_at(judged_at)
    if refused is not None:
        reason = Reason.KEY_REVOKED if key.revoked_at is not None else Reason.KEY_NOT_VALID
        raise SignatureError(reason, f"{refused}; record judged at {judged_at.isoformat()}")
    return Verified(payload_type, payload, key, judged_at)


_CONTRACT_HEADERS: Final = frozenset({HEADER_TYPE, HEADER_SOURCE, HEADER_AREA, HEADER_EVENT_ID})


def check_claims(record: InboundRecord, verified: Verified, claimed: Headed) -> None:
    """The parsed payload agrees with the envelope's type, the key's owner and the headers."""
    kind, source, headers = claimed.type, str(claimed.source), event_headers(claimed)
    if kind != verified.payload_type:
        raise EnvelopeError(Reason.TYPE_MISMATCH, "payloadType differs from the event's type")
    if source != verified.key.owner:
        msg = f"a key of {verified.key.owner} signed an event whose source is {source}"
        raise SignatureError(Reason.WRONG_INSPECTORATE, msg)
    present = header_map(record.headers)
    for name, expected in headers:
        if present.get(name) != expected:
            raise EnvelopeError(
                Reason.HEADER_MISMATCH, f"header {name!r} disagrees with the signed event"
            )
    # CloudEvents headers are optional (records published before them have none), but
    # when present they must agree with the signed event: a reader may filter on them,
    # and CloudEvents SDKs read header names in any case, the last repeat winning. So any
    # header a CloudEvents reader would take as an attribute must be exactly one we write,
    # and no contract or CloudEvents header may repeat.
    expected_ce = dict(cloudevents_headers(claimed))
    seen: set[str] = set()
    for name, value in record.headers:
        folded = name.lower()
        attribute = folded.startswith("ce_") or folded == "content-type"
        if attribute and expected_ce.get(name) != value:
            raise EnvelopeError(
                Reason.HEADER_MISMATCH, "a CloudEvents header disagrees with the signed event"
            )
        if attribute or name in _CONTRACT_HEADERS:
            if folded in seen:
                raise EnvelopeError(Reason.HEADER_MISMATCH, "a contract header is repeated")
            seen.add(folded)


_CONTRACT_NAMES: Final = frozenset(
    name
    for model in (
        ConcernRaised,
        ExceptionalPracticeIdentified,
        JtaiRequest,
        JtaiConsiderationRequested,
        JtaiDecisionRecorded,
        RecommendationMade,
        RecommendationReviewed,
        OutcomeRecorded,
        OutcomeOverdue,
        DeliveryRecorded,
    )
    for name in model.model_fields
)
_MAX_DETAIL: Final = 480


def _safe_path(path: str) -> str:
    """A field path with every part that is not a contract name replaced: the name of an
    unknown field is input text, and may be anything (a child's name, say)."""
    parts = (
        p if p in _CONTRACT_NAMES or p.isdecimal() else "<unknown field>" for p in path.split(".")
    )
    return ".".join(parts) if path else path


def refused_payload(exc: SchemaError) -> EnvelopeError:
    """The refusal of a verified payload that does not meet the contract, naming only
    rules and field positions (kept forever in the audit log)."""
    if isinstance(exc, DuplicateKeyError):
        return EnvelopeError(Reason.DUPLICATE_KEY, "the signed payload repeats a key")
    problems = "; ".join(
        f"{_safe_path(p.path)}: {p.reason}" if p.path else p.reason for p in exc.problems
    )
    if len(problems) > _MAX_DETAIL:
        problems = problems[: _MAX_DETAIL - 3] + "..."
    return EnvelopeError(Reason.SCHEMA_INVALID, f"invalid event: {problems}")


def open_envelope(record: InboundRecord, trust: TrustStore, now: dt.datetime) -> Opened:
    """Verify and decode one inspectorate event; raise ``EnvelopeError`` with a ``Reason``.

    Order: envelope shape, key id, signature over the exact payload bytes, key validity
    at the append time, then (only now) the payload is parsed: contract, type, key owner,
    headers.
    """
    verified = verify(record, trust, now)
    try:
        event = decode_event(verified.payload)
    except SchemaError as exc:
        raise refused_payload(exc) from None
    check_claims(record, verified, event)
    return Opened(event, verified.payload, verified.key, verified.judged_at)


@dataclass(frozen=True, slots=True)
class SealedConsideration:
    """A JTAI consideration signed by the bus."""

    event: JtaiConsiderationRequested
    payload: bytes
    envelope: bytes
    keyid: str


@dataclass(frozen=True, slots=True)
class OpenedConsideration:
    """A verified JTAI consideration and the bus key that vouched for it."""

    event: JtaiConsiderationRequested
    payload: bytes
    key: TrustedKey
    judged_at: dt.datetime


def seal_consideration(
    event: JtaiConsiderationRequested, key: SigningKey, now: dt.datetime
) -> SealedConsideration:
    """Sign a JTAI consideration with the bus's own key (only the bus signs these)."""
    if key.owner != event.source:
        msg = f"a key of {key.owner} cannot sign a consideration whose source is {event.source}"
        raise SignatureError(Reason.WRONG_INSPECTORATE, msg)
    if event.occurred_at > now + CLOCK_SKEW:
        raise SchemaError("occurred_at: is in the future")
    payload = encode_consideration(event)
    return SealedConsideration(event, payload, sign_envelope(event.type, payload, key), key.keyid)


def open_consideration(
    record: InboundRecord, trust: TrustStore, now: dt.datetime
) -> OpenedConsideration:
    """Verify and decode a JTAI consideration, exactly as ``open_envelope`` does an event."""
    verified = verify(record, trust, now)
    try:
        event = decode_consideration(verified.payload)
    except SchemaError as exc:
        raise refused_payload(exc) from None
    check_claims(record, verified, event)
    return OpenedConsideration(event, verified.payload, verified.key, verified.judged_at)


open = open_envelope  # the contract's name; `open_envelope` reads better in code
"""``open(record, trust, now)``: the name the design gives ``open_envelope``."""
