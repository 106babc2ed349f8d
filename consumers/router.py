"""The router's decision for one consumed record, as data: what to produce where.

``plan`` is pure. ``services/`` consumes, calls it, and produces what it returns, so the
same decision serves the faststream service, the demo and (later) the transactional path.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from consumers.routing import Destination, route
from consumers.rules import Rule
from schemas.envelope import Opened, open_envelope
from schemas.errors import EnvelopeError
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.inspectorates import Programme
from schemas.keys import TrustStore
from schemas.records import InboundRecord, OutboundRecord, event_headers
from schemas.topics import Topics

__all__ = [
    "HEADER_REASON",
    "HEADER_RULES",
    "Plan",
    "plan",
    "quarantine_record",
]

HEADER_RULES = "liaison_rules"
"""Comma-separated ids of the rules that sent the event to this topic."""
HEADER_REASON = "liaison_reason"
"""One line: why the event was sent to this topic."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the router does with one record: the records to produce and why."""

    outbound: tuple[OutboundRecord, ...]
    opened: Opened | None
    destinations: frozenset[Destination]
    refused: EnvelopeError | None = None

    @property
    def event(self) -> ConcernRaised | ExceptionalPracticeIdentified | None:
        """The verified event, or None when the record was refused."""
        return self.opened.event if self.opened is not None else None


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
        headers=(*event_headers(event), *extra),
    )


def quarantine_record(
    record: InboundRecord, topics: Topics, refused: EnvelopeError, now: dt.datetime
) -> OutboundRecord:
    """What goes to ``liaison.quarantine`` for a refused record: enough to judge and redrive it.

    The raw key, value and headers are kept byte for byte (hex), with the record's origin,
    the reason code, a plain-English detail (never event content) and the time.
    """
    body = {
        "reason": refused.reason,
        "detail": str(refused),
        "quarantined_at": now.isoformat(),
        "source_topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "timestamp_type": record.timestamp_type,
        "raw_key_hex": (record.key or b"").hex(),
        "raw_value_hex": record.value.hex(),
        "raw_headers_hex": [[name, value.hex()] for name, value in record.headers],
    }
    return OutboundRecord(
        topic=topics.quarantine,
        key=f"{record.topic}/{record.partition}/{record.offset}".encode(),
        value=json.dumps(body, sort_keys=True).encode(),
        headers=(("reason", str(refused.reason).encode()),),
    )


def plan(
    record: InboundRecord,
    topics: Topics,
    trust: TrustStore,
    now: dt.datetime,
    rules: Iterable[Rule],
) -> Plan:
    """Decide what to produce for one record from an events topic.

    The envelope is opened first (signature, key, payload, headers); a record that fails
    goes to quarantine with the reason. A verified event goes to the area feed and to
    every programme a rule sends it to (one record per programme, naming every rule), or
    to ``liaison.unrouted`` when no rule matches. The signed bytes are forwarded as they
    came: the router cannot alter or forge an event.
    """
    try:
        opened = open_envelope(record, trust, now)
    except EnvelopeError as refused:
        return Plan(
            outbound=(quarantine_record(record, topics, refused, now),),
            opened=None,
            destinations=frozenset(),
            refused=refused,
        )
    event = opened.event
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
            _forward(record, event, topics.unrouted, ((HEADER_REASON, b"no routing rule matched"),))
        )
    return Plan(outbound=tuple(outbound), opened=opened, destinations=destinations)
