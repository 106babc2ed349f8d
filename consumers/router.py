"""The router's whole decision, as data: what to produce where, what to audit, what to log.

``plan`` decides one record of an events topic and ``plan_outcome`` one of
``liaison.outcomes``; ``Router.step`` decides a batch of either (verification, routing,
duplicates, id conflicts, the JTAI watch and every audit record) and returns a
``BatchOutcome``. All are pure: ``services/`` consumes, calls ``step``, and commits what
it returns in one Kafka transaction, so one body of tests holds in memory and on Kafka.

What goes where:

- a verified finding (``schemas.events.FINDING_TYPES``) from an events topic goes to the
  area feed and to every programme a rule sends it to, or to ``liaison.unrouted``;
- a verified ``OutcomeRecorded`` from ``liaison.outcomes`` goes back to the programme the
  finding was published under (``finding_programme``, so to its publisher) and to the
  area feed; a verified ``OutcomeOverdue`` goes to that programme only;
- anything else, including a verified envelope of a type the topic does not carry (an
  outcome on an events topic, a finding on ``liaison.outcomes``: ``wrong_topic``), is
  quarantined with its reason code.

Every forwarded record is the signed value, bytes unchanged, keyed by area, with headers
rebuilt from the verified event (``schemas.records.signed_headers``: the contract's and
the CloudEvents ones). A record to a queue (a programme's, ``liaison.jtai`` or
``liaison.unrouted``) also carries the router's ``liaison_rules`` (when rules sent it) and
``liaison_reason``, and its route attestation (``liaison_route``, ``schemas.route``):
the event, its signer, the SHA-256 of the value, the queue, the rules and the reason,
signed by the bus key, so a reader can tell a record the router routed from a copy.

Invariants of ``Router.step``, pinned by a hypothesis fuzz test:

- it never raises, whatever the records hold (bytes, headers, sizes, Unicode, dates);
- every record gets exactly one verdict: routed, ignored as a duplicate, or quarantined
  with a reason code, and each verdict has its audit record;
- an id is remembered with its signer only from a verified envelope; the same id from
  another signer, or for another kind of event (a finding's id on an outcome), is
  quarantined (``id_conflict``), never dropped;
- nothing taken from a refused record's content reaches an audit record or a log line
  (reason codes, positions and the SHA-256 of the raw bytes only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias
from uuid import UUID

from consumers.copartition import partition_for
from consumers.jtai import Claimed, JtaiWatch, WatchChange
from consumers.router_state import LoadedState, RoutedId
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
from schemas.envelope import Opened, Reason, seal_consideration
from schemas.errors import EnvelopeError
from schemas.events import FINDING_TYPES, InspectorateEvent
from schemas.inspectorates import Programme
from schemas.jtai import JtaiConsiderationRequested
from schemas.keys import SigningKey, TrustStore
from schemas.outcomes import OutcomeOverdue, OutcomeRecorded
from schemas.quarantine import quarantined
from schemas.records import Headed, Headers, InboundRecord, OutboundRecord, signed_headers
from schemas.route import HEADER_ROUTE, Route, attest_route
from schemas.signed import OUTCOME_TOPIC_TYPES, OpenedSigned, open_signed
from schemas.topics import Topics

__all__ = [
    "HEADER_REASON",
    "HEADER_RULES",
    "BatchOutcome",
    "LogLine",
    "OutcomePlan",
    "Plan",
    "Router",
    "plan",
    "plan_outcome",
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


_MAX_REASON: Final = 2000  # a route's reason (schemas.route.Route)


@dataclass(frozen=True, slots=True)
class _Queue:
    """A queue a verified record goes to, why, and the key that attests it."""

    topic: str
    rules: tuple[str, ...]
    reason: str
    bus_key: SigningKey


@dataclass(frozen=True, slots=True)
class _Forwarded:
    """What every record forwarded for one verified event shares, derived once."""

    record: InboundRecord
    event: Headed
    signer: str
    headers: Headers
    value_sha256: str


def _forwarded(record: InboundRecord, event: Headed, signer: str) -> _Forwarded:
    return _Forwarded(
        record, event, signer, signed_headers(event), hashlib.sha256(record.value).hexdigest()
    )


def _forward(forwarded: _Forwarded, topic: str, extra: Headers = ()) -> OutboundRecord:
    """The original value, bytes unchanged, to ``topic``, keyed by area.

    Headers are the verified event's (``signed_headers``: the contract's four and the
    CloudEvents ones; those the record carried were checked equal to them), then
    ``extra``; other inbound headers are not carried.
    """
    return OutboundRecord(
        topic=topic,
        key=forwarded.event.area.encode(),
        value=forwarded.record.value,
        headers=(*forwarded.headers, *extra),
    )


def _to_queue(forwarded: _Forwarded, queue: _Queue) -> OutboundRecord:
    """``_forward`` to a queue, with the router's rules, reason and signed route."""
    event = forwarded.event
    reason = queue.reason
    if len(reason) > _MAX_REASON:  # many long reasons at once: the route holds 2000
        reason = reason[: _MAX_REASON - 3] + "..."
    route = Route(
        event_id=event.id,
        event_type=event.type,
        signer=forwarded.signer,
        value_sha256=forwarded.value_sha256,
        topic=queue.topic,
        rules=queue.rules,
        reason=reason,
    )
    rules = ((HEADER_RULES, ",".join(queue.rules).encode()),) if queue.rules else ()
    return _forward(
        forwarded,
        queue.topic,
        (
            *rules,
            (HEADER_REASON, reason.encode()),
            (HEADER_ROUTE, attest_route(route, queue.bus_key)),
        ),
    )


def _open_finding(record: InboundRecord, trust: TrustStore, now: dt.datetime) -> Opened:
    """Verify and decode a record of an events topic: a finding, and nothing else."""
    opened = open_signed(record, trust, now, FINDING_TYPES)
    event = opened.event
    if not isinstance(event, InspectorateEvent):  # pragma: no cover - FINDING_TYPES only
        raise EnvelopeError(Reason.WRONG_TOPIC, "a signed type this topic does not carry")
    return Opened(event, opened.payload, opened.key, opened.judged_at)


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
    *,
    bus_key: SigningKey,
) -> Plan:
    """Decide what to produce for one record from an events topic.

    The envelope is opened first (signature, key, payload, headers, and a finding type: a
    verified envelope of another type is ``wrong_topic``); a record that fails goes to
    quarantine with the reason. A verified event goes to the area feed and to
    every programme a rule sends it to (one record per programme, naming every rule), or
    to ``liaison.unrouted`` when no rule matches. The signed bytes are forwarded as they
    came: the router cannot alter or forge an event. ``bus_key`` signs each queue
    record's route attestation.
    """
    try:
        opened = _open_finding(record, trust, now)
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

    forwarded = _forwarded(record, event, opened.key.owner)
    outbound = [_forward(forwarded, topics.feed)]
    for programme, reasons in sorted(by_programme.items()):
        queue = _Queue(
            topics.programme(programme),
            tuple(d.rule for d in reasons),
            "; ".join(d.reason for d in reasons),
            bus_key,
        )
        outbound.append(_to_queue(forwarded, queue))
    if not by_programme:
        queue = _Queue(topics.unrouted, (), "no routing rule matched", bus_key)
        outbound.append(_to_queue(forwarded, queue))
    return Plan(outbound=tuple(outbound), opened=opened, destinations=destinations)


OutcomeEvent: TypeAlias = OutcomeRecorded | OutcomeOverdue
"""What ``liaison.outcomes`` carries."""


@dataclass(frozen=True, slots=True)
class OutcomePlan:
    """What the router does with one record of ``liaison.outcomes``."""

    outbound: tuple[OutboundRecord, ...]
    opened: OpenedSigned | None
    refused: EnvelopeError | None = None

    @property
    def outcome(self) -> OutcomeEvent | None:
        """The verified outcome or reminder, or None when the record was refused."""
        event = self.opened.event if self.opened is not None else None
        return event if isinstance(event, OutcomeRecorded | OutcomeOverdue) else None


def _outcome_reason(outcome: OutcomeEvent) -> str:
    """The ``liaison_reason`` of a routed outcome or reminder: one line, no free text."""
    if isinstance(outcome, OutcomeRecorded):
        return f"outcome of your finding recorded by {outcome.programme.value}"
    return (
        f"no outcome recorded by {outcome.programme.value} within {outcome.working_days}"
        " working days"
    )


def _open_outcome(
    record: InboundRecord, trust: TrustStore, now: dt.datetime
) -> tuple[OpenedSigned, OutcomeEvent]:
    """Verify and decode a record of ``liaison.outcomes``: an outcome or a reminder."""
    opened = open_signed(record, trust, now, OUTCOME_TOPIC_TYPES)
    outcome = opened.event
    if not isinstance(outcome, OutcomeRecorded | OutcomeOverdue):  # pragma: no cover
        raise EnvelopeError(Reason.WRONG_TOPIC, "a signed type this topic does not carry")
    return opened, outcome


def plan_outcome(
    record: InboundRecord,
    topics: Topics,
    trust: TrustStore,
    now: dt.datetime,
    *,
    bus_key: SigningKey,
) -> OutcomePlan:
    """Decide what to produce for one record of ``liaison.outcomes``.

    Opened as ``plan`` opens an event, accepting only ``OUTCOME_TOPIC_TYPES``. A verified
    ``OutcomeRecorded`` goes back to the programme its finding was published under (the
    publisher's queue, with a route attestation by ``bus_key`` and no rules) and to the
    area feed; a verified ``OutcomeOverdue`` to that programme only. The signed bytes are
    forwarded as they came.
    """
    try:
        opened, outcome = _open_outcome(record, trust, now)
    except EnvelopeError as refused:
        return OutcomePlan(
            outbound=(quarantine_record(record, topics, refused, now),),
            opened=None,
            refused=refused,
        )
    queue = _Queue(
        topics.programme(outcome.finding_programme), (), _outcome_reason(outcome), bus_key
    )
    forwarded = _forwarded(record, outcome, opened.key.owner)
    back = _to_queue(forwarded, queue)
    if isinstance(outcome, OutcomeOverdue):
        return OutcomePlan(outbound=(back,), opened=opened)
    feed = _forward(forwarded, topics.feed)
    return OutcomePlan(outbound=(back, feed), opened=opened)


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


_FINDING: Final = "finding"


def _routed_at(routed: RoutedId) -> int:
    return routed.at_ms


def _kind(event: InspectorateEvent | OutcomeEvent) -> str:
    """What an id names: any finding (one kind: a finding's type may not change its id's
    meaning), or an outcome's or a reminder's type."""
    return _FINDING if isinstance(event, InspectorateEvent) else event.type


class Router:
    """The router's state (ids routed, JTAI watch) and its decision for each batch.

    Pure: no I/O and no clock (``now`` is a parameter). ``step`` updates the state as it
    decides; a batch outcome that was not committed leaves the state ahead of the log, so
    the caller discards this ``Router`` and rebuilds one from the log (``remember`` and
    ``remember_consideration`` over what was committed).

    Records of ``topics.outcomes`` are outcomes and reminders (``plan_outcome``); records
    of any other topic are judged as an events topic's (``plan``).
    """

    def __init__(
        self,
        topics: Topics,
        rules: RuleSet,
        bus_key: SigningKey,
        actor: str,
        *,
        partitions: int = 0,
        log_changes: bool = False,
    ) -> None:
        """A router with no memory yet; ``actor`` names it in audit records.

        With ``partitions`` (the partition count of every area-keyed topic), a verified
        event on a partition other than its area's is refused (``wrong_partition``): the
        router that owns a partition number must see every event about its areas. With
        ``log_changes``, every change of state is kept for ``drain_changes``.
        """
        self._topics = topics
        self._rules = rules
        self._bus_key = bus_key
        self._actor = actor
        self._partitions = partitions
        self._log_changes = log_changes
        # id -> (signer, kind): who first used an id, verified, and for what.
        self._routed: dict[str, tuple[str, str]] = {}
        # (routed at, id) in the order remembered: what the dedupe horizon drops first.
        self._routed_order: deque[tuple[int, str]] = deque()
        self._new_ids: list[RoutedId] = []
        jtai = rules.jtai
        self._watch = JtaiWatch(
            dt.timedelta(days=jtai.window_days), jtai.min_inspectorates, log_changes=log_changes
        )

    @property
    def routed(self) -> int:
        """How many ids (of findings, outcomes and reminders) the router remembers."""
        return len(self._routed)

    def jtai_held(self) -> tuple[frozenset[UUID], frozenset[Claimed]]:
        """The JTAI watch's concerns (ids) and claimed windows now."""
        return self._watch.held()

    def remember(self, opened: Opened | OpenedSigned, at: dt.datetime | None = None) -> None:
        """Rebuild from a record already routed (a verified envelope from the feed, which
        the broker appended ``at``; default: when it was judged).

        A finding is remembered by id and replayed into the JTAI watch; an outcome only by
        id (outcomes never count towards a JTAI); any other type teaches nothing.
        """
        event = opened.event
        if (
            isinstance(event, InspectorateEvent | OutcomeRecorded | OutcomeOverdue)
            and event.id.hex not in self._routed
        ):
            self._note_routed(event.id, str(event.source), _kind(event), at or opened.judged_at)
        if isinstance(event, InspectorateEvent):
            self._watch.replay_finding(event)

    def restore(self, state: LoadedState, now: dt.datetime, horizon: dt.timedelta) -> list[str]:
        """Load the state a router kept before (``consumers.router_state``): the ids routed
        since ``now - horizon``, the JTAI watch's concerns and claimed windows. Nothing
        restored is logged as a change; the ids (hex) past the dedupe horizon are returned
        (for the caller to delete from its store), not loaded."""
        oldest, expired = _ms(now - horizon), []
        for routed in sorted(state.routed, key=_routed_at):
            if routed.at_ms < oldest:
                expired.append(routed.id)
            elif routed.id not in self._routed:
                self._routed[routed.id] = (routed.signer, routed.kind)
                self._routed_order.append((routed.at_ms, routed.id))
        for concern in state.evidence:
            self._watch.restore(concern)
        for window in state.claims:
            self._watch.restore_claim(window)
        self._watch.settle()
        return expired

    def expire(self, now: dt.datetime, horizon: dt.timedelta) -> list[str]:
        """Forget the ids routed before ``now - horizon``, and return them (hex)."""
        oldest, dropped = _ms(now - horizon), []
        while self._routed_order and self._routed_order[0][0] < oldest:
            _, stale = self._routed_order.popleft()
            self._routed.pop(stale, None)
            dropped.append(stale)
        return dropped

    def drain_changes(self) -> tuple[list[RoutedId], list[WatchChange]]:
        """The ids routed and the JTAI watch's changes since the last call (with
        ``log_changes``), in order; then forgets them."""
        ids, self._new_ids = self._new_ids, []
        return ids, self._watch.drain_changes()

    def _note_routed(self, event_id: UUID, signer: str, kind: str, at: dt.datetime) -> None:
        key = event_id.hex
        self._routed[key] = (signer, kind)
        at_ms = _ms(at)
        self._routed_order.append((at_ms, key))
        if self._log_changes:
            self._new_ids.append(RoutedId(key, signer, kind, at_ms))

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
        if record.topic == self._topics.outcomes:
            self._judge_outcome(record, trust, now, out)
            return
        decision = plan(record, self._topics, trust, now, self._rules.rules, bus_key=self._bus_key)
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
        conflict = self._conflict(event) or self._misplaced(record, event.area)
        if conflict is not None:
            self._quarantine(record, conflict, now, out, event_ids=(event.id,))
            return
        if event.id.hex in self._routed:
            out.audit.append(
                DuplicateIgnored(
                    at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source
                )
            )
            out.logs.append(LogLine("event_duplicate_ignored", warning=False, fields=context))
            return
        # Everything this record produces is built before the router remembers the id, so
        # a failure on the way (quarantined as internal_error) leaves it redrivable.
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
        self._watch_finding(event, now, context, out)
        self._note_routed(event.id, str(event.source), _FINDING, now)

    def _misplaced(self, record: InboundRecord, area: str) -> EnvelopeError | None:
        """The refusal of a verified record on a partition its area does not give."""
        if not self._partitions:
            return None
        expected = partition_for(area.encode(), self._partitions)
        if record.partition == expected:
            return None
        return EnvelopeError(
            Reason.WRONG_PARTITION,
            f"an event about this area belongs on partition {expected} (key it by its area"
            " and use Kafka's default partitioner)",
        )

    def _conflict(self, event: InspectorateEvent | OutcomeEvent) -> EnvelopeError | None:
        """The refusal of an id already used by another signer or for another kind."""
        earlier = self._routed.get(event.id.hex)
        if earlier is None or earlier == (str(event.source), _kind(event)):
            return None
        detail = (
            "another signer's event already has this event id"
            if earlier[0] != str(event.source)
            else "an event of another kind already has this event id"
        )
        return EnvelopeError(Reason.ID_CONFLICT, detail)

    def _judge_outcome(
        self, record: InboundRecord, trust: TrustStore, now: dt.datetime, out: _Verdicts
    ) -> None:
        decision = plan_outcome(record, self._topics, trust, now, bus_key=self._bus_key)
        outcome = decision.outcome
        if decision.refused is not None or outcome is None:
            refused = decision.refused or EnvelopeError(Reason.INTERNAL_ERROR, "no verdict")
            self._quarantine(record, refused, now, out)
            return
        ids = tuple(dict.fromkeys((outcome.id, outcome.finding_id)))  # each id once
        # A reminder is the bus's; the record names the inspectorate it is for.
        named = outcome.source if isinstance(outcome, OutcomeRecorded) else outcome.finding_source
        context = _context(record) | {
            "event_id": str(outcome.id),
            "finding_id": str(outcome.finding_id),
            "type": outcome.type,
            "source": str(outcome.source),
            "area": outcome.area,
        }
        conflict = (
            self._conflict(outcome)
            or self._misdirected(outcome)
            or self._misplaced(record, outcome.area)
        )
        if conflict is not None:
            self._quarantine(record, conflict, now, out, event_ids=ids)
            return
        if outcome.id.hex in self._routed:
            out.audit.append(
                DuplicateIgnored(at=now, actor=self._actor, event_ids=ids, inspectorate=named)
            )
            out.logs.append(LogLine("outcome_duplicate_ignored", warning=False, fields=context))
            return
        self._note_routed(outcome.id, str(outcome.source), _kind(outcome), now)
        out.outbound.extend(decision.outbound)
        out.audit.append(
            EventRouted(
                at=now, actor=self._actor, event_ids=ids, inspectorate=named, area=outcome.area,
                destinations=tuple(RouteTaken(topic=o.topic) for o in decision.outbound),
            )
        )  # fmt: skip
        out.logs.append(
            LogLine(
                "outcome_routed",
                warning=False,
                fields=context | {"destinations": [o.topic for o in decision.outbound]},
            )
        )

    def _misdirected(self, outcome: OutcomeEvent) -> EnvelopeError | None:
        """The refusal of an outcome naming a finding the router routed for another
        publisher (routed back, it would reach an inspectorate that never published it), or
        naming itself."""
        if outcome.id == outcome.finding_id:
            return EnvelopeError(Reason.ID_CONFLICT, "the outcome's id is its finding's id")
        known = self._routed.get(outcome.finding_id.hex)
        if known is None or known == (str(outcome.finding_source), _FINDING):
            return None
        return EnvelopeError(
            Reason.ID_CONFLICT,
            "the finding this names was published by another inspectorate, or is not a finding",
        )

    def _watch_finding(
        self,
        event: InspectorateEvent,
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
                headers=signed_headers(consideration),
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


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _context(record: InboundRecord) -> dict[str, object]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
