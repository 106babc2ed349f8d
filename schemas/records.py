"""Kafka records as plain values: what producers send and consumers receive.

Keeping records as data (no client objects) lets the decisions about them stay pure:
the producer builds an ``OutboundRecord``, the router turns an ``InboundRecord`` into
more ``OutboundRecord``s, and only ``services/`` talks to the broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.inspectorates import Inspectorate
from schemas.topics import Topics

__all__ = [
    "HEADER_AREA",
    "HEADER_EVENT_ID",
    "HEADER_SOURCE",
    "HEADER_TYPE",
    "Headers",
    "InboundRecord",
    "OutboundRecord",
    "event_headers",
    "event_record",
    "header_map",
]

Headers = tuple[tuple[str, bytes], ...]

HEADER_TYPE = "type"
HEADER_SOURCE = "source"
HEADER_AREA = "area"
HEADER_EVENT_ID = "event_id"


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record to produce: topic, key (area GSS code), value bytes and headers."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """A record as consumed, with where it came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_type: int = 0
    """0: the producer's CreateTime; 1: the broker's LogAppendTime."""
    parsed: bool = True
    """False when the Kafka client could not parse the record (a header name that is not
    UTF-8): its key, value and headers are then unknown, and it is refused as such."""


def header_map(headers: Sequence[tuple[str, bytes]]) -> Mapping[str, bytes]:
    """Headers as a mapping (the last value wins when a name repeats)."""
    return dict(headers)


class _Headed(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def id(self) -> UUID: ...


def event_headers(event: _Headed) -> Headers:
    """The headers that repeat an event's type, source, area and id for filtering."""
    return (
        (HEADER_TYPE, event.type.encode()),
        (HEADER_SOURCE, str(event.source).encode()),
        (HEADER_AREA, event.area.encode()),
        (HEADER_EVENT_ID, str(event.id).encode()),
    )


def event_record(
    event: ConcernRaised | ExceptionalPracticeIdentified, envelope: bytes, topics: Topics
) -> OutboundRecord:
    """The record an inspectorate publishes: its envelope, keyed by area, to its own topic."""
    return OutboundRecord(
        topic=topics.events(Inspectorate(event.source)),
        key=event.area.encode(),
        value=envelope,
        headers=event_headers(event),
    )
