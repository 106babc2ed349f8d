"""Kafka records as plain values: what producers send and consumers receive.

Keeping records as data (no client objects) lets the decisions about them stay pure:
the producer builds an ``OutboundRecord``, the router turns an ``InboundRecord`` into
more ``OutboundRecord``s, and only ``services/`` talks to the broker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from schemas.events import InspectorateEvent
from schemas.inspectorates import Inspectorate
from schemas.topics import Topics

__all__ = [
    "CE_CONTENT_TYPE",
    "CE_SOURCE_PREFIX",
    "HEADER_AREA",
    "HEADER_EVENT_ID",
    "HEADER_SOURCE",
    "HEADER_TYPE",
    "Headed",
    "Headers",
    "InboundRecord",
    "OutboundRecord",
    "cloudevents_headers",
    "event_headers",
    "event_record",
    "header_map",
    "signed_headers",
    "signed_record",
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


class Headed(Protocol):
    """Any signed event of the contract: it has a type, a source, an area and an id."""

    @property
    def type(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def id(self) -> UUID: ...
    @property
    def occurred_at(self) -> dt.datetime: ...


def event_headers(event: Headed) -> Headers:
    """The headers that repeat an event's type, source, area and id for filtering."""
    return (
        (HEADER_TYPE, event.type.encode()),
        (HEADER_SOURCE, str(event.source).encode()),
        (HEADER_AREA, event.area.encode()),
        (HEADER_EVENT_ID, str(event.id).encode()),
    )


CE_SOURCE_PREFIX = "urn:liaison:"
"""CloudEvents ``source`` of a record: this prefix and the signer (``urn:liaison:ofsted``)."""
CE_CONTENT_TYPE = "application/vnd.dsse.envelope.v1+json"
"""The record value's media type: a DSSE envelope (its payload is the event's JSON)."""


def cloudevents_headers(event: Headed) -> Headers:
    """CloudEvents 1.0 Kafka protocol binding, binary mode: ``ce_*`` attributes and the
    value's ``content-type``, so CloudEvents SDKs read Liaison's records as events.

    They repeat signed fields; readers check them against the signed event when present
    (records published before they existed have none).
    """
    return (
        ("ce_specversion", b"1.0"),
        ("ce_id", str(event.id).encode()),
        ("ce_source", f"{CE_SOURCE_PREFIX}{event.source}".encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("content-type", CE_CONTENT_TYPE.encode()),
    )


def signed_headers(event: Headed) -> Headers:
    """Every header of a signed record: the contract's four, then the CloudEvents ones."""
    return (*event_headers(event), *cloudevents_headers(event))


def signed_record(topic: str, event: Headed, envelope: bytes) -> OutboundRecord:
    """A signed envelope as a record to ``topic``, keyed by the event's area."""
    return OutboundRecord(
        topic=topic, key=event.area.encode(), value=envelope, headers=signed_headers(event)
    )


def event_record(event: InspectorateEvent, envelope: bytes, topics: Topics) -> OutboundRecord:
    """The record an inspectorate publishes: its envelope, keyed by area, to its own topic."""
    return signed_record(topics.events(Inspectorate(event.source)), event, envelope)
