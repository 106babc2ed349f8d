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
"""

from __future__ import annotations

import datetime as dt
import json
import re
from enum import StrEnum
from typing import Annotated, ClassVar, Final, Literal, TypeAlias
from uuid import UUID

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
from schemas.errors import Problem, SchemaError
from schemas.events import GssCode, Theme
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiTrigger
from schemas.keys import BUS

__all__ = [
    "ACTIONS",
    "MAX_RECORD_BYTES",
    "ActorKind",
    "AuditRecord",
    "CheckpointPublished",
    "ConsiderationEmitted",
    "DuplicateIgnored",
    "EventPublished",
    "EventQuarantined",
    "EventRouted",
    "EventUnrouted",
    "FeedRead",
    "KeyGenerated",
    "KeyRevoked",
    "KeyRotated",
    "Leaf",
    "QuarantineRedriven",
    "ReplayRun",
    "RouteTaken",
    "VerificationFailed",
    "decode_leaf",
    "decode_record",
    "encode_record",
    "leaf_data",
    "split_leaf",
]

MAX_RECORD_BYTES: Final = 64 * 1024
"""Largest accepted audit record; a larger input is refused before it is parsed."""


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


def _check_actor(value: str) -> str:
    match = _ACTOR.fullmatch(value)
    kinds = ", ".join(k.value for k in ActorKind)
    if match is None:
        msg = (
            f"must be <kind>:<name> with kind one of {kinds} and a name of letters, digits"
            " and . _ @ + - (e.g. 'analyst:a.khan')"
        )
        raise ValueError(msg)
    if match["kind"] not in _KINDS:
        msg = f"kind {match['kind']!r} is not one of {kinds}"
        raise ValueError(msg)
    if match["kind"] == ActorKind.INSPECTORATE and match["name"] not in _INSPECTORATES:
        msg = f"{match['name']!r} is not an inspectorate ({', '.join(sorted(_INSPECTORATES))})"
        raise ValueError(msg)
    return value


def _check_key_owner(value: str) -> str:
    if value != BUS and value not in _INSPECTORATES:
        msg = f"{value!r} is not an inspectorate or {BUS!r}"
        raise ValueError(msg)
    return value


Actor: TypeAlias = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_check_actor)
]
"""``<kind>:<name>``, e.g. ``inspectorate:ofsted``, ``router:0``, ``analyst:a.khan``."""

# Kafka's own limits on topic names: 249 characters of letters, digits, '.', '_', '-'.
Topic: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
Partition: TypeAlias = Annotated[int, Field(ge=0)]
Offset: TypeAlias = Annotated[int, Field(ge=0)]
KeyId: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyOwner: TypeAlias = Annotated[str, AfterValidator(_check_key_owner)]
ReasonCode: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Detail: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=500)]
RuleName: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Filters: TypeAlias = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=100)],
    Annotated[str, StringConstraints(max_length=500)],
]
Count: TypeAlias = Annotated[int, Field(ge=0)]


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
        return value.astimezone(dt.UTC)

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


class FeedRead(_Record):
    """An analyst read a feed; ``event_ids`` are the events returned."""

    action: Literal["feed.read"] = "feed.read"
    analyst: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    purpose: Detail = Field(description="Why the analyst read the feed, in their words.")
    filters: Filters = Field(default_factory=dict)
    returned: Count


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
    position: Annotated[int, Field(ge=0)] | None = None
    detail: Detail


class CheckpointPublished(_Record):
    """A signed checkpoint (tree size and root hash) was published."""

    action: Literal["audit.checkpoint_published"] = "audit.checkpoint_published"
    size: Count
    root_hex: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


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
    | CheckpointPublished,
    Field(discriminator="action"),
]
"""Any audit record, decoded by its ``action``."""

ACTIONS: Final[tuple[str, ...]] = tuple(
    str(cls.model_fields["action"].default) for cls in _RECORD_TYPES
)
"""Every action's wire string, in the order the README lists them."""

_RECORD: Final[TypeAdapter[AuditRecord]] = TypeAdapter(AuditRecord)


def encode_record(record: AuditRecord) -> bytes:
    """The record's canonical bytes: compact UTF-8 JSON, sorted keys, ``None`` left out.

    The same record always gives the same bytes, whatever order its fields were given in.
    """
    data = record.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(data: bytes | str) -> AuditRecord:
    """Parse and validate one stored record; raise ``SchemaError`` listing every problem.

    Decoding is strict (``"5"`` is not a number), so a record decodes only if its stored
    JSON has exactly the types the contract says.
    """
    check_size(data, "audit record", MAX_RECORD_BYTES)
    try:
        return _RECORD.validate_json(data, strict=True)
    except ValidationError as exc:
        raise _schema_error(exc) from None


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
