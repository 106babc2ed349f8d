"""The router's decision for one consumed record, as data: what to produce where.

``plan`` is pure. ``services/`` consumes, calls it, and produces what it returns, so the
same decision serves the faststream service, the demo and (later) the transactional path.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from consumers.routing import Destination, route
from consumers.rules import DEFAULT_RULES, Rule
from schemas.errors import SchemaError
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, decode_event
from schemas.inspectorates import Programme
from schemas.records import (
    HEADER_AREA,
    HEADER_EVENT_ID,
    HEADER_SOURCE,
    HEADER_TYPE,
    InboundRecord,
    OutboundRecord,
    header_map,
)
from schemas.topics import Topics

__all__ = [
    "HEADER_REASON",
    "HEADER_RULES",
    "Plan",
    "plan",
]

HEADER_RULES = "liaison_rules"
"""Comma-separated ids of the rules that sent the event to this topic."""
HEADER_REASON = "liaison_reason"
"""One line: why the event was sent to this topic."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the router does with one record: the records to produce and why."""

    outbound: tuple[OutboundRecord, ...]
    event: ConcernRaised | ExceptionalPracticeIdentified | None
    destinations: frozenset[Destination]
    refused: str | None = None


def _forward(
    record: InboundRecord,
    event: ConcernRaised | ExceptionalPracticeIdentified,
    topic: str,
    extra: Iterable[tuple[str, bytes]] = (),
) -> OutboundRecord:
    """The original value, bytes unchanged, to ``topic``, keyed by area.

    Headers are the contract's four, rebuilt from the verified event (they were checked
    equal to the originals), plus the router's own; other inbound headers are not carried.
    """
    return OutboundRecord(
        topic=topic,
        key=event.area.encode(),
        value=record.value,
        headers=(
            (HEADER_TYPE, event.type.encode()),
            (HEADER_SOURCE, event.source.value.encode()),
            (HEADER_AREA, event.area.encode()),
            (HEADER_EVENT_ID, str(event.id).encode()),
            *extra,
        ),
    )


def _quarantine(record: InboundRecord, topics: Topics, reason: str) -> Plan:
    body = {
        "reason": reason,
        "source_topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "quarantined_from_timestamp_ms": record.timestamp_ms,
        "raw_key_hex": (record.key or b"").hex(),
        "raw_value_hex": record.value.hex(),
        "raw_headers_hex": [[name, value.hex()] for name, value in record.headers],
    }
    out = OutboundRecord(
        topic=topics.quarantine,
        key=record.key or b"",
        value=json.dumps(body, sort_keys=True).encode(),
        headers=(("reason", reason.encode()),),
    )
    return Plan(outbound=(out,), event=None, destinations=frozenset(), refused=reason)


def _header_mismatch(
    record: InboundRecord, event: ConcernRaised | ExceptionalPracticeIdentified
) -> str | None:
    headers = header_map(record.headers)
    expected = {
        HEADER_TYPE: event.type,
        HEADER_SOURCE: event.source.value,
        HEADER_AREA: event.area,
        HEADER_EVENT_ID: str(event.id),
    }
    for name, value in expected.items():
        if headers.get(name) != value.encode():
            return name
    return None


def plan(
    record: InboundRecord,
    topics: Topics,
    rules: Iterable[Rule] = DEFAULT_RULES,
) -> Plan:
    """Decide what to produce for one record from an events topic.

    A record that cannot be decoded, or whose headers disagree with its payload, goes to
    quarantine with the reason; a verified event goes to the area feed and to every
    programme a rule sends it to (one record per programme, naming every rule), or to
    ``liaison.unrouted`` when no rule matches.
    """
    try:
        event = decode_event(record.value)
    except SchemaError as exc:
        return _quarantine(record, topics, f"schema_invalid: {exc}")
    mismatch = _header_mismatch(record, event)
    if mismatch is not None:
        return _quarantine(record, topics, f"header_mismatch: {mismatch}")

    destinations = route(event, rules)
    by_programme: defaultdict[Programme, list[Destination]] = defaultdict(list)
    for destination in sorted(destinations):
        by_programme[destination.programme].append(destination)

    outbound = [_forward(record, event, topics.feed)]
    for programme, reasons in sorted(by_programme.items()):
        outbound.append(
            _forward(
                record,
                event,
                topics.programme(programme),
                (
                    (HEADER_RULES, ",".join(d.rule for d in reasons).encode()),
                    (HEADER_REASON, "; ".join(d.reason for d in reasons).encode()),
                ),
            )
        )
    if not by_programme:
        outbound.append(
            _forward(
                record,
                event,
                topics.unrouted,
                ((HEADER_REASON, b"no routing rule matched"),),
            )
        )
    return Plan(outbound=tuple(outbound), event=event, destinations=destinations)
