"""The router's whole decision, as data: what to produce where, what to audit, what to log.

``plan`` decides one record; ``Router.step`` decides a batch (verification, routing,
duplicates, id conflicts, the JTAI watch and every audit record) and returns a
``BatchOutcome``. Both are pure: ``services/`` consumes, calls ``step``, and commits what
it returns in one Kafka transaction, so one body of tests holds in memory and on Kafka.

Invariants of ``Router.step``, pinned by a hypothesis fuzz test:

- it never raises, whatever the records hold (bytes, headers, sizes, Unicode, dates);
- every record gets exactly one verdict: routed, ignored as a duplicate, or quarantined
  with a reason code, and each verdict has its audit record;
- an event id is remembered with its source only from a verified envelope; the same id
  from another inspectorate is quarantined (``id_conflict``), never dropped;
- nothing taken from a refused record's content reaches an audit record or a log line
  (reason codes, positions and the SHA-256 of the raw bytes only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from consumers.jtai import JtaiWatch
from consumers.routing import Destination, route
from consumers.rules import Rule, RuleSet
from schemas.audit import (
    AuditRecord,
    ConsiderationEmitted,
    DuplicateIgnored,
    EventQuarantined,
    EventRouted,
    EventUnrouted,
    RouteTaken,
)
from schemas.envelope import Opened, Reason, open_envelope, seal_consideration
from schemas.errors import EnvelopeError
from schemas.events import ConcernRaised, InspectorateEvent
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import JtaiConsiderationRequested
from schemas.keys import SigningKey, TrustStore
from schemas.quarantine import quarantined
from schemas.records import InboundRecord, OutboundRecord, event_headers
from schemas.topics import Topics

__all__ = [
    "HEADER_REASON",
    "HEADER_RULES",
    "BatchOutcome",
    "LogLine",
    "Plan",
    "Router",
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
    def event(self) -> InspectorateEvent | None:
        """The verified event, or None when the record was refused."""
        return self.opened.event if self.opened is not None else None


def _forward(
    record: InboundRecord,
    event: InspectorateEvent,
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

    The raw key, value and headers are kept byte for byte (hex) for redrive, with their
    SHA-256, the record's origin, the reason code, a plain-English detail (never event
    content) and the time. The topic's retention is bounded: nothing personal stays forever.
    """
    kept = quarantined(record, str(refused.reason), str(refused), now)
    return OutboundRecord(
        topic=topics.quarantine,
        key=f"{record.topic}/{record.partition}/{record.offset}".encode(),
        value=kept.to_bytes(),
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


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line for the service's log once the batch is committed."""

    event: str
    warning: bool
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Everything one batch decides: produce ``outbound`` and append ``audit`` in one
    transaction with the batch's offsets, then log ``logs``."""

    outbound: tuple[OutboundRecord, ...]
    audit: tuple[AuditRecord, ...]
    logs: tuple[LogLine, ...]


_MAX_DETAIL = 500


@dataclass
class _Verdicts:
    outbound: list[OutboundRecord] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)


class Router:
    """The router's state (ids routed, JTAI watch) and its decision for each batch.

    Pure: no I/O and no clock (``now`` is a parameter). ``step`` updates the state as it
    decides; an outcome that was not committed leaves the state ahead of the log, so the
    caller discards this ``Router`` and rebuilds one from the log (``remember`` and
    ``remember_consideration`` over what was committed).
    """

    def __init__(self, topics: Topics, rules: RuleSet, bus_key: SigningKey, actor: str) -> None:
        """A router with no memory yet; ``actor`` names it in audit records."""
        self._topics = topics
        self._rules = rules
        self._bus_key = bus_key
        self._actor = actor
        self._routed: dict[UUID, Inspectorate] = {}
        jtai = rules.jtai
        self._watch = JtaiWatch(dt.timedelta(days=jtai.window_days), jtai.min_inspectorates)

    @property
    def routed(self) -> int:
        """How many event ids the router remembers."""
        return len(self._routed)

    def remember(self, opened: Opened) -> None:
        """Rebuild from an event already routed (a verified envelope from the feed)."""
        event = opened.event
        self._routed.setdefault(event.id, event.source)
        if isinstance(event, ConcernRaised):
            self._watch.replay_concern(event)

    def remember_consideration(self, consideration: JtaiConsiderationRequested) -> None:
        """Rebuild from a consideration already emitted (verified, from the JTAI queue)."""
        self._watch.replay_emission(consideration)

    def step(
        self, records: Sequence[InboundRecord], trust: TrustStore, now: dt.datetime
    ) -> BatchOutcome:
        """Judge every record of a batch on its own; never raise."""
        verdicts = _Verdicts()
        for record in records:
            one = _Verdicts()
            try:
                self._judge(record, trust, now, one)
            except Exception as exc:  # noqa: BLE001 - one record never takes its batch down
                # A bug, not an attack we foresaw: keep the record (quarantined, redrivable
                # once fixed) and say only what kind of failure it was.
                one = _Verdicts()
                failed = EnvelopeError(
                    Reason.INTERNAL_ERROR, f"judging the record failed ({type(exc).__name__})"
                )
                self._quarantine(record, failed, now, one)
            verdicts.outbound.extend(one.outbound)
            verdicts.audit.extend(one.audit)
            verdicts.logs.extend(one.logs)
        return BatchOutcome(tuple(verdicts.outbound), tuple(verdicts.audit), tuple(verdicts.logs))

    # -- one record ---------------------------------------------------------------------------

    def _judge(
        self, record: InboundRecord, trust: TrustStore, now: dt.datetime, out: _Verdicts
    ) -> None:
        if not record.parsed:
            unparseable = EnvelopeError(
                Reason.UNPARSEABLE,
                "the Kafka client could not parse the record (a header name that is not"
                " UTF-8, or a record after one in the same producer batch)",
            )
            self._quarantine(record, unparseable, now, out)
            return
        decision = plan(record, self._topics, trust, now, self._rules.rules)
        if decision.refused is not None or decision.opened is None:
            refused = decision.refused or EnvelopeError(Reason.INTERNAL_ERROR, "no verdict")
            self._quarantine(record, refused, now, out)
            return
        event = decision.opened.event
        context = _context(record) | {
            "event_id": str(event.id),
            "inspectorate": event.source.value,
            "area": event.area,
        }
        earlier = self._routed.get(event.id)
        if earlier is not None and earlier is not event.source:
            conflict = EnvelopeError(
                Reason.ID_CONFLICT, "another inspectorate's event already has this event id"
            )
            self._quarantine(record, conflict, now, out, event_ids=(event.id,))
            return
        if earlier is not None:
            out.audit.append(
                DuplicateIgnored(
                    at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source
                )
            )
            out.logs.append(LogLine("event_duplicate_ignored", warning=False, fields=context))
            return
        self._routed[event.id] = event.source
        out.outbound.extend(decision.outbound)
        out.audit.append(self._decision_record(decision, now))
        out.logs.append(
            LogLine(
                "event_routed",
                warning=False,
                fields=context
                | {
                    "destinations": sorted({d.programme.value for d in decision.destinations}),
                    "rules": sorted({d.rule for d in decision.destinations}),
                },
            )
        )
        if isinstance(event, ConcernRaised):
            self._watch_concern(event, now, context, out)

    def _watch_concern(
        self,
        event: ConcernRaised,
        now: dt.datetime,
        context: Mapping[str, object],
        out: _Verdicts,
    ) -> None:
        consideration = self._watch.observe(event)
        if consideration is None:
            return
        sealed = seal_consideration(consideration, self._bus_key, now)
        out.outbound.append(
            OutboundRecord(
                topic=self._topics.jtai,
                key=consideration.area.encode(),
                value=sealed.envelope,
                headers=event_headers(consideration),
            )
        )
        out.audit.append(
            ConsiderationEmitted(
                at=now,
                actor=self._actor,
                event_ids=consideration.contributing_event_ids,
                consideration_id=consideration.id,
                area=consideration.area,
                theme=consideration.theme,
                trigger=consideration.trigger,
            )
        )
        out.logs.append(
            LogLine(
                "jtai_consideration_requested",
                warning=False,
                fields=dict(context)
                | {
                    "consideration_id": str(consideration.id),
                    "trigger": consideration.trigger.value,
                    "contributors": [str(i) for i in consideration.contributing_event_ids],
                },
            )
        )

    def _quarantine(
        self,
        record: InboundRecord,
        refused: EnvelopeError,
        now: dt.datetime,
        out: _Verdicts,
        event_ids: tuple[UUID, ...] = (),
    ) -> None:
        """Quarantine and audit a refused record: reason code, position, hash; no content."""
        detail = str(refused)
        if len(detail) > _MAX_DETAIL:
            detail = detail[: _MAX_DETAIL - 3] + "..."
        out.outbound.append(quarantine_record(record, self._topics, refused, now))
        out.audit.append(
            EventQuarantined(
                at=now,
                actor=self._actor,
                event_ids=event_ids,
                reason=str(refused.reason),
                source_topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                detail=detail,
                raw_sha256=hashlib.sha256(record.value).hexdigest(),
            )
        )
        out.logs.append(
            LogLine("event_quarantined", warning=True, fields=_context(record) | {
                "reason": str(refused.reason),
            })
        )  # fmt: skip

    def _decision_record(self, decision: Plan, now: dt.datetime) -> AuditRecord:
        """One audit record per routing decision, naming every destination and rule."""
        event = decision.event
        assert event is not None  # noqa: S101 - only verified events are routed
        if not decision.destinations:
            return EventUnrouted(
                at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source,
                area=event.area,
            )  # fmt: skip
        rules: defaultdict[str, list[str]] = defaultdict(list)
        for destination in decision.destinations:
            rules[self._topics.programme(destination.programme)].append(destination.rule)
        taken = [RouteTaken(topic=topic, rules=tuple(sorted(r))) for topic, r in rules.items()]
        return EventRouted(
            at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source,
            area=event.area, destinations=(*taken, RouteTaken(topic=self._topics.feed)),
        )  # fmt: skip


def _context(record: InboundRecord) -> dict[str, object]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
