"""The audit record contract: one closed model per action on the bus.

Every action on the bus (an event published, quarantined, routed; a key rotated; a feed
read by an analyst; a replay run by an auditor) becomes one audit record on
``liaison.audit``. The audit service binds each record into an RFC 9162 Merkle tree, so
auditors can verify years later that no record was changed, dropped or inserted.

Records are frozen, closed pydantic models decoded through a discriminated union on
``action``, whose values (``event.published``, ...) are stable wire strings listed in
``ACTIONS``. A record names the events it concerns by id (``event_ids``) and carries only
what its action needs: never an event's summary or any other free text about a child.

Evolution: a stored record is never rewritten. A field may be added only as optional
(old records still decode); a change of meaning needs a new action string.

Bytes, not objects, are what the log proves: ``encode_record`` gives one canonical byte
string per record (compact JSON, sorted keys, ``None`` left out, ``at`` in UTC), and the
leaf that is hashed is ``leaf_data(seq, record_bytes)``, built from the stored bytes
exactly as they are.

Anyone can write to the topic, so a reader judges each value on its own:
``judge_record`` takes any bytes and returns either the record or an ``InvalidRecord``
with a stable reason code (``InvalidReason``); it never raises. The audit service keeps
an invalid value as a leaf all the same (the tree must match the log), marked invalid.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, ClassVar, Final, Literal, TypeAlias
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from schemas._problems import check_size, plain
from schemas.envelope import pae, parse_dsse, sign_envelope
from schemas.errors import EnvelopeError, Problem, SchemaError
from schemas.events import GssCode, Theme
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JtaiDecision, JtaiTrigger
from schemas.keys import OWNERS, SigningKey, TrustedKey, TrustStore, entitled
from schemas.outcomes import Outcome

__all__ = [
    "ACTIONS",
    "AT_TOLERANCE",
    "AUDIT_RECORD_TYPE",
    "EARLIEST_AT",
    "LATEST_AT",
    "MAX_RECORD_BYTES",
    "ActorKind",
    "AnalystAdded",
    "AnalystRevoked",
    "AnalystScope",
    "AuditRecord",
    "CheckpointPublished",
    "ConsiderationEmitted",
    "DeliveryRefused",
    "DuplicateIgnored",
    "EnvelopeDelivered",
    "EventPublished",
    "EventQuarantined",
    "EventRouted",
    "EventUnrouted",
    "FeedRead",
    "FeedRefused",
    "InboxRead",
    "InvalidReason",
    "InvalidRecord",
    "JtaiDecided",
    "KeyGenerated",
    "KeyRevoked",
    "KeyRotated",
    "Leaf",
    "OutcomeGiven",
    "QuarantineRedriven",
    "ReminderRaised",
    "ReplayRun",
    "RouteTaken",
    "SealedRecord",
    "VerificationFailed",
    "check_actor",
    "decode_leaf",
    "decode_record",
    "encode_record",
    "judge_record",
    "judge_sealed",
    "judge_sealed_as_claimed",
    "leaf_data",
    "seal_record",
    "split_leaf",
    "unsealed",
]

MAX_RECORD_BYTES: Final = 64 * 1024
"""Largest accepted audit record; a larger input is refused before it is parsed."""

EARLIEST_AT: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""No record is older than this (the bus did not exist); an earlier ``at`` is refused."""
LATEST_AT: Final = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
"""Every ``at`` is before this: far enough for any clock, near enough that converting any
offset to UTC stays inside Python's dates (``9999-12-31T23:59:59-23:59`` would not)."""


class ActorKind(StrEnum):
    """Who acted: the part of an actor string before the colon."""

    INSPECTORATE = "inspectorate"
    """An inspectorate's system (``inspectorate:ofsted``); the name is its wire value."""
    ROUTER = "router"
    """A router instance (``router:0``)."""
    AUDIT = "audit"
    """The audit service itself (``audit:0``)."""
    ANALYST = "analyst"
    """A person reading feeds (``analyst:a.khan``)."""
    AUDITOR = "auditor"
    """A person verifying or replaying the log (``auditor:j.smith``)."""
    OPERATOR = "operator"
    """A person or tool operating the bus (``operator:cli``)."""


_ACTOR: Final = re.compile(r"(?P<kind>[a-z]+):(?P<name>[A-Za-z0-9][A-Za-z0-9._@+-]*)")
_INSPECTORATES: Final = frozenset(i.value for i in Inspectorate)
_KINDS: Final = frozenset(k.value for k in ActorKind)


# Messages name the rule broken, never the text that broke it: whatever a record holds
# may end up in a log.


_KIND_LIST: Final = ", ".join(k.value for k in ActorKind)


def _check_actor(value: str) -> str:
    match = _ACTOR.fullmatch(value)
    kinds = _KIND_LIST
    if match is None:
        msg = (
            f"must be <kind>:<name> with kind one of {kinds} and a name of letters, digits"
            " and . _ @ + - (e.g. 'analyst:a.khan')"
        )
        raise ValueError(msg)
    if match["kind"] not in _KINDS:
        msg = f"its kind (before the colon) must be one of {kinds}"
        raise ValueError(msg)
    if match["kind"] == ActorKind.INSPECTORATE and match["name"] not in _INSPECTORATES:
        msg = f"must name an inspectorate ({', '.join(sorted(_INSPECTORATES))})"
        raise ValueError(msg)
    return value


def check_actor(value: str) -> str:
    """``value`` if it is an actor string (``<kind>:<name>``); ``SchemaError`` if not."""
    try:
        return _check_actor(value)
    except ValueError as exc:
        raise SchemaError(f"actor: {exc}", [Problem("actor", str(exc))]) from None


def _check_key_owner(value: str) -> str:
    if value not in OWNERS:
        msg = "must be an inspectorate or a part of Liaison (" + ", ".join(sorted(OWNERS)) + ")"
        raise ValueError(msg)
    return value


def _check_unicode(value: str) -> str:
    # JSON's \ud800 escapes are refused by the parser, but a record built in Python could
    # still hold a lone surrogate, which no UTF-8 encoder writes: refuse it here, not when
    # the record is encoded on its way to the log.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (not Unicode text)") from None
    return value


Actor: TypeAlias = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_check_actor)
]
"""``<kind>:<name>``, e.g. ``inspectorate:ofsted``, ``router:0``, ``analyst:a.khan``."""

# Kafka's own limits on topic names: 249 characters of letters, digits, '.', '_', '-'.
Topic: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
# Kafka's own integers: a partition is an int32, an offset an int64; counts are held to
# int64 as well, so any JSON reader (Java, Go) can hold every stored number.
_INT64_MAX: Final = 2**63 - 1
Partition: TypeAlias = Annotated[int, Field(ge=0, le=2**31 - 1)]
Offset: TypeAlias = Annotated[int, Field(ge=0, le=_INT64_MAX)]
KeyId: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyOwner: TypeAlias = Annotated[str, AfterValidator(_check_key_owner)]
ReasonCode: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Sha256Hex: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Detail: TypeAlias = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(_check_unicode)
]
RuleName: TypeAlias = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_check_unicode)
]
Filters: TypeAlias = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_check_unicode)],
    Annotated[str, StringConstraints(max_length=500), AfterValidator(_check_unicode)],
]
Count: TypeAlias = Annotated[int, Field(ge=0, le=_INT64_MAX)]
View: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]


class _Record(BaseModel):
    """Fields common to every record (``action`` is narrowed by each record class)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Whether a record of this action is about at least one event.
    _about_events: ClassVar[bool] = False

    action: str
    at: AwareDatetime = Field(description="When the action happened.")
    actor: Actor = Field(description="Who acted, as <kind>:<name>.")
    event_ids: tuple[UUID, ...] = Field(
        default=(),
        validate_default=True,
        description="The events this record concerns (ids only, never content).",
    )

    @field_validator("at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        # One instant, one spelling: the same record must always encode to the same bytes.
        span = f"must be from {EARLIEST_AT.year} up to (not including) {LATEST_AT.year}"
        try:
            utc = value.astimezone(dt.UTC)
        except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
            raise ValueError(span) from None
        if not EARLIEST_AT <= utc < LATEST_AT:
            raise ValueError(span)
        return utc

    @field_validator("event_ids")
    @classmethod
    def _event_ids(cls, value: tuple[UUID, ...]) -> tuple[UUID, ...]:
        if cls._about_events and not value:
            raise ValueError("must name the event(s) this record is about")
        if len(set(value)) != len(value):
            raise ValueError("lists an event id more than once")
        return value


class EventPublished(_Record):
    """An inspectorate's signed event was appended to its topic."""

    _about_events: ClassVar[bool] = True

    action: Literal["event.published"] = "event.published"
    topic: Topic
    partition: Partition
    offset: Offset
    keyid: KeyId = Field(description="The key that signed the envelope.")
    inspectorate: Inspectorate


class EventQuarantined(_Record):
    """A record was refused and put on the quarantine topic; ``event_ids`` may be empty
    when no event id could be read from it."""

    action: Literal["event.quarantined"] = "event.quarantined"
    reason: ReasonCode = Field(description="A stable code, e.g. 'bad_signature'.")
    source_topic: Topic
    partition: Partition
    offset: Offset
    detail: Detail = Field(description="Plain English; never repeats event content.")
    raw_sha256: Sha256Hex | None = Field(
        default=None,
        description=(
            "SHA-256 (lowercase hex) of the refused record's raw value, which the quarantine"
            " topic keeps only for a while; absent in records written before it existed."
        ),
    )


class RouteTaken(BaseModel):
    """One destination of a routing decision and every rule that sent the event there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: Topic
    rules: tuple[RuleName, ...] = ()


class EventRouted(_Record):
    """One routing decision: every destination an event was sent to, and why."""

    _about_events: ClassVar[bool] = True

    action: Literal["event.routed"] = "event.routed"
    inspectorate: Inspectorate
    area: GssCode
    destinations: tuple[RouteTaken, ...] = Field(min_length=1)

    @field_validator("destinations")
    @classmethod
    def _one_per_topic_sorted(cls, value: tuple[RouteTaken, ...]) -> tuple[RouteTaken, ...]:
        topics = [d.topic for d in value]
        if len(set(topics)) != len(topics):
            raise ValueError("lists a topic more than once")
        # route() returns a set: sorting here gives one encoding for one decision.
        return tuple(sorted(value, key=lambda d: d.topic))


class EventUnrouted(_Record):
    """No rule matched an event: it went to the unrouted topic."""

    _about_events: ClassVar[bool] = True

    action: Literal["event.unrouted"] = "event.unrouted"
    inspectorate: Inspectorate
    area: GssCode


class DuplicateIgnored(_Record):
    """An event id already routed arrived again and was not routed twice."""

    _about_events: ClassVar[bool] = True

    action: Literal["event.duplicate_ignored"] = "event.duplicate_ignored"
    inspectorate: Inspectorate


class ConsiderationEmitted(_Record):
    """The bus asked for an area to be considered for a JTAI; ``event_ids`` are the
    contributing events."""

    _about_events: ClassVar[bool] = True

    action: Literal["jtai.consideration_emitted"] = "jtai.consideration_emitted"
    consideration_id: UUID
    area: GssCode
    theme: Theme
    trigger: JtaiTrigger


class KeyGenerated(_Record):
    """A new signing key was generated and its public half trusted."""

    action: Literal["key.generated"] = "key.generated"
    keyid: KeyId
    owner: KeyOwner


class KeyRotated(_Record):
    """``keyid`` became its owner's active key; ``retired_keyids`` stopped signing."""

    action: Literal["key.rotated"] = "key.rotated"
    keyid: KeyId
    owner: KeyOwner
    retired_keyids: tuple[KeyId, ...] = ()


class KeyRevoked(_Record):
    """A key was revoked: nothing appended from now on verifies with it."""

    action: Literal["key.revoked"] = "key.revoked"
    keyid: KeyId
    owner: KeyOwner
    reason: Detail


AnalystName: TypeAlias = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_check_unicode)
]


class FeedRead(_Record):
    """An analyst read a feed; ``event_ids`` are the events returned."""

    action: Literal["feed.read"] = "feed.read"
    analyst: AnalystName
    purpose: Detail = Field(description="Why the analyst read the feed, in their words.")
    filters: Filters = Field(default_factory=dict)
    returned: Count
    view: View | None = Field(
        default=None,
        description="Where it was shown: 'terminal.feed', 'dashboard.overview', ... (none:"
        " a read through the reader API).",
    )


class FeedRefused(_Record):
    """The reader service refused an analyst's read (outside their scope, an unknown
    area or theme...); nothing was returned."""

    action: Literal["feed.refused"] = "feed.refused"
    analyst: AnalystName
    purpose: Detail = Field(description="Why the analyst asked, in their words.")
    filters: Filters = Field(default_factory=dict)
    reason: ReasonCode = Field(description="A stable code, e.g. 'out_of_scope'.")
    detail: Detail = Field(description="Plain English; names the rule, not the data.")
    view: View | None = Field(default=None, description="Where it was asked (as in feed.read).")


class AnalystScope(BaseModel):
    """What an analyst may read: areas (GSS codes), regions and themes; empty means none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    areas: tuple[GssCode, ...] = ()
    regions: tuple[Annotated[str, StringConstraints(min_length=1, max_length=100)], ...] = ()
    themes: tuple[Theme, ...] = ()


class AnalystAdded(_Record):
    """An operator issued an analyst a credential for the reader service, with a scope."""

    action: Literal["analyst.added"] = "analyst.added"
    analyst: AnalystName
    scope: AnalystScope
    credential_sha256: Sha256Hex = Field(description="SHA-256 of the credential, never itself.")


class AnalystRevoked(_Record):
    """An operator withdrew an analyst's credential."""

    action: Literal["analyst.revoked"] = "analyst.revoked"
    analyst: AnalystName
    reason: Detail


class ReplayRun(_Record):
    """An auditor replayed events and checked their signatures."""

    action: Literal["replay.run"] = "replay.run"
    filters: Filters = Field(default_factory=dict)
    verified: Count
    unverifiable: Count


class QuarantineRedriven(_Record):
    """A quarantined record (by its offset on the quarantine topic) was produced again."""

    action: Literal["quarantine.redriven"] = "quarantine.redriven"
    quarantine_id: Offset
    source_topic: Topic


class VerificationFailed(_Record):
    """Verifying the audit log found a problem; ``position`` is the leaf, when known."""

    action: Literal["audit.verification_failed"] = "audit.verification_failed"
    position: Annotated[int, Field(ge=0, le=_INT64_MAX)] | None = None
    detail: Detail


class CheckpointPublished(_Record):
    """A signed checkpoint (tree size and root hash) was published."""

    action: Literal["audit.checkpoint_published"] = "audit.checkpoint_published"
    size: Count
    root_hex: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class InboxRead(_Record):
    """A receiving team read its programme's inbox (or an operator the unrouted list):
    receipt of the findings shown, named in ``event_ids``."""

    action: Literal["inbox.read"] = "inbox.read"
    queue: Topic = Field(description="The topic read (liaison.programme.<p>, ...).")
    filters: Filters = Field(default_factory=dict)
    returned: Count


class OutcomeGiven(_Record):
    """A receiving programme recorded what it did with a finding (the signed
    ``OutcomeRecorded`` event); ``event_ids`` are the finding's and the outcome's."""

    _about_events: ClassVar[bool] = True

    action: Literal["outcome.recorded"] = "outcome.recorded"
    outcome_id: UUID
    programme: Programme
    outcome: Outcome


class ReminderRaised(_Record):
    """No outcome came within the working days allowed: the bus raised one reminder."""

    _about_events: ClassVar[bool] = True

    action: Literal["outcome.reminder_raised"] = "outcome.reminder_raised"
    reminder_id: UUID
    programme: Programme


class JtaiDecided(_Record):
    """The JTAI programme recorded a decision on a consideration; ``event_ids`` are the
    decision's, the consideration's and its contributing findings'."""

    _about_events: ClassVar[bool] = True

    action: Literal["jtai.decision_recorded"] = "jtai.decision_recorded"
    decision_id: UUID
    consideration_id: UUID
    area: GssCode
    theme: Theme
    decision: JtaiDecision


class EnvelopeDelivered(_Record):
    """``serve deliver`` posted a routed envelope to the programme's own system."""

    _about_events: ClassVar[bool] = True

    action: Literal["delivery.delivered"] = "delivery.delivered"
    programme: Programme
    attempts: Count


class DeliveryRefused(_Record):
    """Every try to post a routed envelope to the programme's system failed; the
    envelope is kept in its queue and the inbox shows the refusal."""

    _about_events: ClassVar[bool] = True

    action: Literal["delivery.refused"] = "delivery.refused"
    programme: Programme
    attempts: Count
    reason: ReasonCode = Field(description="The last failure: http_503, timeout, ...")


_RECORD_TYPES: Final = (
    EventPublished,
    EventQuarantined,
    EventRouted,
    EventUnrouted,
    DuplicateIgnored,
    ConsiderationEmitted,
    KeyGenerated,
    KeyRotated,
    KeyRevoked,
    FeedRead,
    ReplayRun,
    QuarantineRedriven,
    VerificationFailed,
    CheckpointPublished,
    FeedRefused,
    AnalystAdded,
    AnalystRevoked,
    InboxRead,
    OutcomeGiven,
    ReminderRaised,
    JtaiDecided,
    EnvelopeDelivered,
    DeliveryRefused,
)

AuditRecord: TypeAlias = Annotated[
    EventPublished
    | EventQuarantined
    | EventRouted
    | EventUnrouted
    | DuplicateIgnored
    | ConsiderationEmitted
    | KeyGenerated
    | KeyRotated
    | KeyRevoked
    | FeedRead
    | ReplayRun
    | QuarantineRedriven
    | VerificationFailed
    | CheckpointPublished
    | FeedRefused
    | AnalystAdded
    | AnalystRevoked
    | InboxRead
    | OutcomeGiven
    | ReminderRaised
    | JtaiDecided
    | EnvelopeDelivered
    | DeliveryRefused,
    Field(discriminator="action"),
]
"""Any audit record, decoded by its ``action``."""

ACTIONS: Final[tuple[str, ...]] = tuple(
    str(cls.model_fields["action"].default) for cls in _RECORD_TYPES
)
"""Every action's wire string, in the order the README lists them."""

_RECORD: Final[TypeAdapter[AuditRecord]] = TypeAdapter(AuditRecord)


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""``json.dumps`` with these options, built once (it builds one per call)."""


def encode_record(record: AuditRecord) -> bytes:
    """The record's canonical bytes: compact UTF-8 JSON, sorted keys, ``None`` left out.

    The same record always gives the same bytes, whatever order its fields were given in.
    """
    return _CANONICAL.encode(record.model_dump(mode="json", exclude_none=True)).encode()


class InvalidReason(StrEnum):
    """Why a value on the audit topic is not an audit record: stable codes, stored with the
    value's invalid leaf."""

    EMPTY = "empty"
    """No bytes at all (a tombstone, or a producer that sent nothing)."""
    TOO_LARGE = "too_large"
    """Over ``MAX_RECORD_BYTES``; not parsed."""
    NOT_JSON = "not_json"
    """Not UTF-8 JSON: any other bytes, a lone surrogate escape, nesting too deep for the
    parser, a number too large to represent."""
    NOT_AN_OBJECT = "not_an_object"
    """JSON, but not an object."""
    UNKNOWN_ACTION = "unknown_action"
    """An object with no ``action``, or one this version of the contract does not know."""
    INVALID_FIELDS = "invalid_fields"
    """A known action whose fields break the contract (missing, unknown, wrong type, out
    of range: a date whose UTC conversion overflows, for instance)."""
    UNSIGNED = "unsigned"
    """Not a signed audit value (a bare record, or another DSSE payload type)."""
    UNKNOWN_KEY = "unknown_key"
    """Signed by a key the bus does not trust."""
    BAD_SIGNATURE = "bad_signature"
    """The signature does not verify."""
    KEY_NOT_VALID = "key_not_valid"
    """Signed by a key that was not valid when the value was appended (revoked, retired,
    not yet valid)."""
    NOT_ENTITLED = "not_entitled"
    """The signer may not speak for the record's actor (e.g. a publisher's key signing
    ``analyst:...``)."""
    BACKDATED = "backdated"
    """The record's ``at`` is far from when the broker appended it."""
    NOT_APPEND_TIME = "not_append_time"
    """The value is not stamped with the broker's append time (``liaison.audit`` is not
    configured ``LogAppendTime``): its time is the producer's claim, so neither key
    validity nor ``at`` can be judged; ``liaison topics apply`` sets the topic right."""


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """A value that is not an audit record: why (``reason``) and every problem found
    (``error``, whose message never repeats the value's text).

    ``signer`` is the key id of a trusted key whose signature over the value verified
    (a record signed by a revoked key, by a key not entitled to its actor, back-dated...);
    None when no trusted key's signature verified.
    """

    reason: InvalidReason
    error: SchemaError
    signer: str | None = None


def judge_record(data: bytes | str) -> AuditRecord | InvalidRecord:
    """The record in ``data``, or why it is not one; never raises, whatever ``data`` holds."""
    if not data:
        return InvalidRecord(InvalidReason.EMPTY, SchemaError("invalid audit record: empty"))
    if isinstance(data, str):
        try:
            data = data.encode()
        except UnicodeEncodeError:
            error = SchemaError("invalid audit record: not valid JSON (a lone surrogate)")
            return InvalidRecord(InvalidReason.NOT_JSON, error)
    try:
        check_size(data, "audit record", MAX_RECORD_BYTES)
    except SchemaError as exc:
        return InvalidRecord(InvalidReason.TOO_LARGE, exc)
    try:
        return _RECORD.validate_json(data, strict=True)
    except ValidationError as exc:
        return InvalidRecord(_reason(exc), _schema_error(exc))
    except (ArithmeticError, RecursionError) as exc:
        # The validators are written not to raise these, and a fuzz test holds them to it;
        # this is the last line that keeps one hostile record from stopping a reader.
        message = f"invalid audit record: a value is out of range ({type(exc).__name__})"
        return InvalidRecord(InvalidReason.INVALID_FIELDS, SchemaError(message))


def decode_record(data: bytes | str) -> AuditRecord:
    """Parse and validate one stored record; raise ``SchemaError`` listing every problem.

    Decoding is strict (``"5"`` is not a number), so a record decodes only if its stored
    JSON has exactly the types the contract says. ``judge_record`` is the same without
    the exception.
    """
    judged = judge_record(data)
    if isinstance(judged, InvalidRecord):
        raise judged.error
    return judged


def _reason(exc: ValidationError) -> InvalidReason:
    kinds = {error["type"] for error in exc.errors(include_url=False, include_input=False)}
    if "json_invalid" in kinds:
        return InvalidReason.NOT_JSON
    if kinds & {"model_attributes_type", "model_type", "dict_type"}:
        return InvalidReason.NOT_AN_OBJECT
    if kinds & {"union_tag_invalid", "union_tag_not_found"}:
        return InvalidReason.UNKNOWN_ACTION
    return InvalidReason.INVALID_FIELDS


def _schema_error(exc: ValidationError) -> SchemaError:
    # schemas._problems words the problems, but knows only events' ``type`` tag: an audit
    # record's tag is ``action``, and pydantic puts it first in each path.
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        if loc and loc[0] in ACTIONS:
            error["loc"] = loc[1:]
        kind = error["type"]
        if kind == "union_tag_invalid":
            problem = Problem("action", "must be one of " + ", ".join(map(repr, ACTIONS)))
        elif kind == "union_tag_not_found":
            problem = Problem("action", "is required (it says what kind of record this is)")
        elif kind == "extra_forbidden":
            problem = Problem(plain(error).path, "is not a field of this audit record")
        else:
            problem = plain(error)
        problems.append(problem)
    return SchemaError("invalid audit record: " + "; ".join(map(str, problems)), problems)


# ---- leaves ---------------------------------------------------------------------------
#
# The Merkle tree hashes leaf data, and leaf data is ``b"<seq>\n" + record bytes``:
# - the sequence number is bound into the leaf hash, so a record cannot be moved to
#   another position (or shown twice) without changing the tree;
# - the record bytes are used exactly as stored, never re-serialised, so a verifier years
#   later hashes what was written even if this library then encodes differently.
# The first newline ends the number (digits never contain one), so any record bytes,
# newlines included, split back exactly; the number has no leading zeros, so each leaf
# has one form.

_SEQ: Final = re.compile(rb"0|[1-9][0-9]{0,18}")


def leaf_data(seq: int, record_bytes: bytes) -> bytes:
    """The bytes hashed for leaf ``seq``: ``b"<seq>\\n" + record_bytes``."""
    if seq < 0:
        msg = f"a leaf's sequence number cannot be negative (got {seq})"
        raise SchemaError(msg)
    # Any bytes, even none or not a valid record: the log keeps whatever appeared on the
    # topic, so that a bad record is reported by verification rather than leaving a gap.
    return b"%d\n" % seq + record_bytes


def split_leaf(data: bytes) -> tuple[int, bytes]:
    """The sequence number and the exact record bytes of leaf data; ``SchemaError`` if
    it is not ``b"<seq>\\n<record>"``."""
    head, newline, record = data.partition(b"\n")
    if not newline or _SEQ.fullmatch(head) is None:
        raise SchemaError("leaf data must start with a sequence number and a newline")
    return int(head), record


class Leaf(BaseModel):
    """One position in the audit log and the record stored there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: Annotated[int, Field(ge=0)]
    record: AuditRecord


def decode_leaf(data: bytes) -> Leaf:
    """Split leaf data and decode its record; ``SchemaError`` if either is malformed."""
    seq, record = split_leaf(data)
    return Leaf(seq=seq, record=decode_record(record))


# ---- signed records --------------------------------------------------------------------
#
# What is appended to ``liaison.audit`` is a DSSE envelope (as events are) whose payload is
# the record's canonical bytes (``encode_record``), signed by the key of the component
# that wrote it. The leaf is built from the envelope's bytes exactly as they arrived, so
# the tree proves who signed each record too. ``judge_sealed`` is the audit service's
# whole decision for one value: it verifies the signature against the trust store at the
# broker's append time, checks that the signer may speak for the record's ``actor``
# (``schemas.keys.entitled``) and that ``at`` is the append time give or take
# ``AT_TOLERANCE``; anything else is an invalid leaf with its reason.

AUDIT_RECORD_TYPE: Final = "uk.liaison.audit.record.v1"
"""The DSSE ``payloadType`` of a signed audit record."""

AT_TOLERANCE: Final = dt.timedelta(minutes=10)
"""How far a record's ``at`` may be from the broker's append time (clocks and batching)."""


def seal_record(record: AuditRecord, key: SigningKey) -> bytes:
    """The value to append for ``record``: a DSSE envelope signed by ``key``.

    ``SchemaError`` if ``key``'s owner may not sign for the record's actor.
    """
    if not entitled(key.owner, record.actor):
        msg = f"a key of {key.owner} cannot sign an audit record whose actor is {record.actor}"
        raise SchemaError(msg)
    return sign_envelope(AUDIT_RECORD_TYPE, encode_record(record), key)


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A verified audit record, its exact payload bytes and the key that signed it."""

    record: AuditRecord
    payload: bytes
    key: TrustedKey


def unsealed(data: bytes) -> bytes | None:
    """The record bytes inside a signed audit value, unverified (for showing a leaf the
    audit service has already judged); None if ``data`` is not a signed audit value."""
    try:
        payload_type, payload, _keyid, _sig = parse_dsse(data)
    except EnvelopeError:
        return None
    return payload if payload_type == AUDIT_RECORD_TYPE else None


def _invalid(reason: InvalidReason, message: str, signer: str | None = None) -> InvalidRecord:
    return InvalidRecord(reason, SchemaError(f"invalid audit record: {message}"), signer)


_SHAPELESS: Final = frozenset(
    {InvalidReason.EMPTY, InvalidReason.TOO_LARGE, InvalidReason.NOT_JSON,
     InvalidReason.NOT_AN_OBJECT}
)  # fmt: skip


def _signed(data: bytes, keys: TrustStore, where: str) -> tuple[bytes, TrustedKey] | InvalidRecord:
    """The payload of a signed audit value and the key in ``keys`` whose signature over it
    verifies; why not, if not. Nothing of the payload is parsed here."""
    try:
        payload_type, payload, keyid, sig = parse_dsse(data)
    except EnvelopeError:
        judged = judge_record(data)  # a bare record, or no record at all: say which
        if isinstance(judged, InvalidRecord) and judged.reason in _SHAPELESS:
            return judged
        return _invalid(InvalidReason.UNSIGNED, "not signed (not a DSSE envelope)")
    if payload_type != AUDIT_RECORD_TYPE:
        return _invalid(InvalidReason.UNSIGNED, f"payloadType is not {AUDIT_RECORD_TYPE}")
    key = keys.get(keyid)
    if key is None:
        return _invalid(InvalidReason.UNKNOWN_KEY, f"no {where} has the signature's key id")
    try:
        key.verifier().verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        return _invalid(InvalidReason.BAD_SIGNATURE, "the signature does not verify")
    return payload, key


def _claimed(payload: bytes, key: TrustedKey) -> AuditRecord | InvalidRecord:
    """The record a verified payload holds, if its signer may speak for its actor."""
    judged = judge_record(payload)
    if isinstance(judged, InvalidRecord):
        return InvalidRecord(judged.reason, judged.error, key.keyid)
    if not entitled(key.owner, judged.actor):
        return _invalid(
            InvalidReason.NOT_ENTITLED,
            # The actor's kind only: its name may be a person's.
            f"a key of {key.owner} may not sign for a {judged.actor.partition(':')[0]} actor",
            key.keyid,
        )
    return judged


def judge_sealed(
    data: bytes, appended_at: dt.datetime, trust: TrustStore
) -> SealedRecord | InvalidRecord:
    """The signed record in ``data``, or why it is not one; never raises.

    ``appended_at`` is the broker's append time of the value (``LogAppendTime``).
    """
    if not data:
        return _invalid(InvalidReason.EMPTY, "empty")
    signed = _signed(data, trust, "trusted key")
    if isinstance(signed, InvalidRecord):
        return signed
    payload, key = signed
    refused = key.refuses_at(appended_at)
    if refused is not None:
        return _invalid(InvalidReason.KEY_NOT_VALID, refused, key.keyid)
    judged = _claimed(payload, key)
    if isinstance(judged, InvalidRecord):
        return judged
    try:
        off = abs(judged.at - appended_at)
    except (OverflowError, ArithmeticError):
        off = LATEST_AT - EARLIEST_AT
    if off > AT_TOLERANCE:
        return _invalid(
            InvalidReason.BACKDATED,
            f"its time is {off} from when it was appended (at most {AT_TOLERANCE})",
            key.keyid,
        )
    return SealedRecord(judged, payload, key)


def judge_sealed_as_claimed(data: bytes, signers: TrustStore) -> SealedRecord | InvalidRecord:
    """The signed record in ``data`` judged with no append time (a proof checked offline,
    with the signers' public keys the auditor holds); never raises.

    As ``judge_sealed`` but the key must be valid at the record's own ``at``, the only
    time an offline checker can see: weaker, since a key's holder can date a record
    before the key's revocation (``audit verify``, which sees append times, refuses it).
    """
    signed = _signed(data, signers, "key given")
    if isinstance(signed, InvalidRecord):
        return signed
    payload, key = signed
    judged = _claimed(payload, key)
    if isinstance(judged, InvalidRecord):
        return judged
    refused = key.refuses_at(judged.at)
    if refused is not None:
        return _invalid(InvalidReason.KEY_NOT_VALID, f"at the record's time: {refused}", key.keyid)
    return SealedRecord(judged, payload, key)
