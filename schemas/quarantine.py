"""Quarantine records: what ``liaison.quarantine`` holds for each refused record, typed.

Wire format (the Kafka record value), one JSON object with sorted keys::

    {"detail": "unknown_key: no trusted key has this id", "offset": 7, "partition": 1,
     "quarantined_at": "2026-11-22T12:00:00.123456+00:00",
     "raw_headers_hex": [["type", "756b2e..."]], "raw_key_hex": "4530...",
     "raw_sha256": "<hex SHA-256 of the raw value>", "raw_value_hex": "7b22...",
     "reason": "unknown_key", "source_topic": "liaison.events.ofsted",
     "timestamp_ms": 1795348800123, "timestamp_type": 1}

``raw_sha256`` is absent from records written before it existed. A redrive is recorded
on the same topic by a *redrive marker*: header ``redrive_of`` (the quarantine id, in
decimal) and a value ``{"redriven_at": ..., "to": ...}``.

Anyone able to write to the quarantine topic can put anything there, so every record is
judged on its own: ``decode_quarantined`` parses strictly (``schemas.wire``) into a
frozen, closed, bounded model and raises ``QuarantineRecordError`` for anything else,
with a message that never repeats the input; ``listing`` never raises, whatever the
records hold, and lists an unreadable one as such, with no content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Self, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails

from schemas.errors import Problem, QuarantineRecordError, SchemaError
from schemas.records import InboundRecord
from schemas.wire import DATETIME_PATTERN, Rfc3339, strict_loads

__all__ = [
    "HEADER_REDRIVE_OF",
    "MAX_DETAIL_CHARS",
    "MAX_QUARANTINE_RECORD_BYTES",
    "MAX_RAW_HEADERS",
    "MAX_RAW_HEADER_NAME_CHARS",
    "MAX_RAW_HEADER_VALUE_BYTES",
    "MAX_RAW_KEY_BYTES",
    "MAX_RAW_VALUE_BYTES",
    "QuarantineEntry",
    "QuarantinedRecord",
    "RedriveMarker",
    "decode_marker",
    "decode_quarantined",
    "encode_quarantined",
    "listing",
    "quarantined",
]

HEADER_REDRIVE_OF: Final = "redrive_of"
"""Header of a redrive marker: the quarantine id (offset) of the record redriven."""

MAX_RAW_VALUE_BYTES: Final = 256 * 1024
"""Raw value bytes kept: far above the largest envelope, far below Kafka's message limit."""
MAX_RAW_KEY_BYTES: Final = 1024
MAX_RAW_HEADERS: Final = 32
MAX_RAW_HEADER_NAME_CHARS: Final = 256
MAX_RAW_HEADER_VALUE_BYTES: Final = 1024
MAX_DETAIL_CHARS: Final = 1000
MAX_QUARANTINE_RECORD_BYTES: Final = 1024 * 1024
"""No record over this is read: every record ``encode_quarantined`` writes is below it."""

_DATETIME: Final = re.compile(DATETIME_PATTERN)
_MARKER_ID: Final = re.compile(r"(?:0|[1-9][0-9]{0,17})")


def _unicode(value: str) -> str:
    # JSON can carry an unpaired surrogate ("\ud800"); it is not text and cannot be written.
    try:
        value.encode()
    except UnicodeEncodeError:
        msg = "holds an unpaired surrogate (not Unicode text)"
        raise ValueError(msg) from None
    return value


def _writable(value: dt.datetime) -> dt.datetime:
    # A value built in Python must encode to a text decode accepts (no seconds in the offset).
    if not _DATETIME.fullmatch(value.isoformat()):
        msg = "must be writable as an RFC 3339 date-time (an offset in whole minutes)"
        raise ValueError(msg)
    return value


_HEX: Final = r"^(?:[0-9a-f]{2})*$"  # lowercase, whole bytes: one text per byte string


Instant: TypeAlias = Annotated[Rfc3339, AfterValidator(_writable)]
Topic: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
ReasonCode: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Detail: TypeAlias = Annotated[
    str, StringConstraints(max_length=MAX_DETAIL_CHARS), AfterValidator(_unicode)
]
HeaderName: TypeAlias = Annotated[
    str, StringConstraints(max_length=MAX_RAW_HEADER_NAME_CHARS), AfterValidator(_unicode)
]
RawValueHex: TypeAlias = Annotated[
    str, StringConstraints(max_length=2 * MAX_RAW_VALUE_BYTES, pattern=_HEX)
]
RawKeyHex: TypeAlias = Annotated[
    str, StringConstraints(max_length=2 * MAX_RAW_KEY_BYTES, pattern=_HEX)
]
RawHeaderHex: TypeAlias = Annotated[
    str, StringConstraints(max_length=2 * MAX_RAW_HEADER_VALUE_BYTES, pattern=_HEX)
]
Sha256Hex: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class _Closed(BaseModel):
    # Strict: no coercion ("1" is not 1, true is not 1, a list is not a tuple).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class QuarantinedRecord(_Closed):
    """One refused record as kept on ``liaison.quarantine``: its raw bytes, origin and why."""

    reason: ReasonCode = Field(description="The stable reason code (schemas.envelope.Reason).")
    detail: Detail = Field(description="Plain English; never repeats the record's content.")
    quarantined_at: Instant
    source_topic: Topic = Field(description="The topic the record was consumed from.")
    partition: int = Field(ge=0, le=2**31 - 1)
    offset: int = Field(ge=0, le=2**63 - 1)
    timestamp_ms: int = Field(ge=-1, le=2**63 - 1)
    timestamp_type: int = Field(ge=0, le=1, description="0 CreateTime, 1 LogAppendTime.")
    raw_key_hex: RawKeyHex
    raw_value_hex: RawValueHex
    raw_headers_hex: tuple[tuple[HeaderName, RawHeaderHex], ...] = Field(max_length=MAX_RAW_HEADERS)
    raw_sha256: Sha256Hex | None = Field(
        default=None, description="Hex SHA-256 of the whole raw value (absent in old records)."
    )

    @property
    def raw_value(self) -> bytes:
        """The raw value bytes as kept."""
        return bytes.fromhex(self.raw_value_hex)

    def raw_value_intact(self) -> bool:
        """Whether the kept raw value is the one whose SHA-256 was recorded (if one was)."""
        return (
            self.raw_sha256 is None or hashlib.sha256(self.raw_value).hexdigest() == self.raw_sha256
        )

    def original(self) -> InboundRecord:
        """The refused record as it was consumed."""
        return InboundRecord(
            topic=self.source_topic,
            partition=self.partition,
            offset=self.offset,
            timestamp_ms=self.timestamp_ms,
            key=bytes.fromhex(self.raw_key_hex) or None,
            value=self.raw_value,
            headers=tuple((name, bytes.fromhex(value)) for name, value in self.raw_headers_hex),
            timestamp_type=self.timestamp_type,
        )

    def to_bytes(self) -> bytes:
        """The record value on ``liaison.quarantine`` (JSON, keys sorted)."""
        body: dict[str, Any] = {
            "reason": self.reason,
            "detail": self.detail,
            "quarantined_at": self.quarantined_at.isoformat(),
            "source_topic": self.source_topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "timestamp_type": self.timestamp_type,
            "raw_key_hex": self.raw_key_hex,
            "raw_value_hex": self.raw_value_hex,
            "raw_headers_hex": [[name, value] for name, value in self.raw_headers_hex],
        }
        if self.raw_sha256 is not None:
            body["raw_sha256"] = self.raw_sha256
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse a record value; raise ``QuarantineRecordError`` (see ``decode_quarantined``)."""
        document = _document(data, "not a quarantine record")
        if isinstance(document.get("raw_headers_hex"), list):
            # JSON has arrays, the model tuples; only the shape changes, types are checked.
            document["raw_headers_hex"] = tuple(
                tuple(pair) if isinstance(pair, list) else pair
                for pair in document["raw_headers_hex"]
            )
        return _validated(cls, document, "not a quarantine record")


_M = TypeVar("_M", bound=_Closed)


class RedriveMarker(_Closed):
    """The value of a redrive marker: when the record was redriven and to which topic."""

    redriven_at: Instant
    to: Topic

    def to_bytes(self) -> bytes:
        """The marker's record value (JSON, keys sorted)."""
        return json.dumps(
            {"redriven_at": self.redriven_at.isoformat(), "to": self.to}, sort_keys=True
        ).encode()


def _document(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object, parsed strictly and within the size limit."""
    if len(data) > MAX_QUARANTINE_RECORD_BYTES:
        raise QuarantineRecordError(
            f"{what}: {len(data)} bytes, over the {MAX_QUARANTINE_RECORD_BYTES}-byte limit"
        )
    try:
        document = strict_loads(data)
    except SchemaError as exc:
        raise QuarantineRecordError(f"{what}: {exc}", exc.problems) from None
    if not isinstance(document, dict):
        raise QuarantineRecordError(f"{what}: not a JSON object")
    return document


def _validated(model: type[_M], document: dict[str, Any], what: str) -> _M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = [_plain(error, model.model_fields) for error in exc.errors()]
        message = "; ".join(str(problem) for problem in problems[:5])
        raise QuarantineRecordError(f"{what}: {message}", problems) from None


def _plain(error: ErrorDetails, fields: Iterable[str]) -> Problem:
    """A pydantic error as a path and reason that never repeat input (nor its key names)."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden" or not loc or loc[0] not in set(fields):
        return Problem("", "a member that is not a field of this record")
    path = ".".join(str(part) for part in loc)
    if error["type"] == "missing":
        return Problem(path, "is required")
    return Problem(path, error["msg"].removeprefix("Value error, "))


def encode_quarantined(record: QuarantinedRecord) -> bytes:
    """The record value on ``liaison.quarantine`` (the same bytes as ``record.to_bytes()``)."""
    return record.to_bytes()


def decode_quarantined(data: bytes) -> QuarantinedRecord:
    """Parse a record value from ``liaison.quarantine``, strictly.

    Raises ``QuarantineRecordError`` (and nothing else) for anything that is not exactly a
    quarantine record: over the size limit, not UTF-8 JSON, duplicate keys, unpaired
    surrogates, deep nesting, wrong types, out-of-range numbers, non-canonical hex.
    """
    return QuarantinedRecord.from_bytes(data)


def decode_marker(data: bytes) -> RedriveMarker:
    """Parse a redrive marker's value; raise ``QuarantineRecordError``."""
    return _validated(
        RedriveMarker, _document(data, "not a redrive marker"), "not a redrive marker"
    )


def _cut_text(text: str, limit: int) -> str:
    """``text`` as Unicode (unpaired surrogates replaced), at most ``limit`` characters."""
    text = text.encode(errors="replace").decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quarantined(
    record: InboundRecord, reason: str, detail: str, now: dt.datetime
) -> QuarantinedRecord:
    """The quarantine record of a refused ``record``: its raw parts, origin and why.

    Total for anything a consumer can receive: raw parts beyond the bounds above are cut
    (and ``raw_sha256`` is of the whole value, so a cut record never redrives), header
    names are made Unicode, and ``detail`` is cut to ``MAX_DETAIL_CHARS``. ``reason`` is a
    reason code and ``now`` an aware time: the caller's, so a wrong one is a bug and raises.
    """
    return QuarantinedRecord(
        reason=reason,
        detail=_cut_text(detail, MAX_DETAIL_CHARS),
        quarantined_at=now,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        timestamp_type=record.timestamp_type,
        raw_key_hex=(record.key or b"")[:MAX_RAW_KEY_BYTES].hex(),
        raw_value_hex=record.value[:MAX_RAW_VALUE_BYTES].hex(),
        raw_headers_hex=tuple(
            (
                _cut_text(name, MAX_RAW_HEADER_NAME_CHARS),
                value[:MAX_RAW_HEADER_VALUE_BYTES].hex(),
            )
            for name, value in record.headers[:MAX_RAW_HEADERS]
        ),
        raw_sha256=hashlib.sha256(record.value).hexdigest(),
    )


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One record on ``liaison.quarantine`` that is not a redrive marker, by its offset.

    ``record`` is None when the record cannot be read (it is listed, without content).
    ``redriven`` is set by a marker; ``redriven_at`` is None when that marker's own value
    cannot be read (the record still counts as redriven: never twice).
    """

    id: int
    record: QuarantinedRecord | None
    redriven: bool = False
    redriven_at: dt.datetime | None = None


def _marker_target(record: InboundRecord) -> int | None:
    """The quarantine id a redrive marker names; None if ``record`` is not a marker.

    Raises ``QuarantineRecordError`` for a marker header that is not an earlier offset
    (a true marker always follows the record it names).
    """
    values = [value for name, value in record.headers if name == HEADER_REDRIVE_OF]
    if not values:
        return None
    text = values[0].decode(errors="replace")
    if len(values) != 1 or not _MARKER_ID.fullmatch(text):
        raise QuarantineRecordError("a redrive marker names no quarantine id")
    target = int(text)
    if target >= record.offset:
        raise QuarantineRecordError("a redrive marker names a later record")
    return target


def listing(records: Iterable[InboundRecord]) -> tuple[QuarantineEntry, ...]:
    """Every refused record of the quarantine topic, by offset, with whether it was redriven.

    ``records`` are the topic's records in offset order. Never raises: a record that is
    neither a quarantine record nor a redrive marker is an entry with no content.
    """
    entries: dict[int, QuarantineEntry] = {}
    redriven: dict[int, dt.datetime | None] = {}
    for record in records:
        try:
            target = _marker_target(record)
            if target is None:
                entries[record.offset] = QuarantineEntry(
                    record.offset, decode_quarantined(record.value)
                )
                continue
        except QuarantineRecordError:
            entries[record.offset] = QuarantineEntry(record.offset, None)
            continue
        try:
            at: dt.datetime | None = decode_marker(record.value).redriven_at
        except QuarantineRecordError:
            at = None
        redriven.setdefault(target, at)  # the first marker is the redrive
    return tuple(
        QuarantineEntry(entry.id, entry.record, entry.id in redriven, redriven.get(entry.id))
        for entry in entries.values()
    )
