"""A programme's inbox, worked out from verified records: pure, no I/O, no clock.

What a receiving team sees (``liaison inbox``) is computed here from records that have
already been verified again on reading (``services.reading.read_signed``): the
programme's queue (``liaison.programme.<p>``, or ``liaison.jtai``), ``liaison.outcomes``,
``liaison.delivery`` and ``liaison.jtai``. ``build_inbox`` is the whole decision; the
caller reads, audits the read and prints.

What counts
-----------
Reaching a queue proves nothing: anyone able to write to it could copy a genuine signed
finding there. A record read from a queue (or from ``liaison.unrouted``) counts only with
the router's route attestation (``schemas.route.check_route``) for its verified event;
the rules and reason shown are the signed ones, never the plain ``liaison_rules`` /
``liaison_reason`` headers. Considerations and decisions on ``liaison.jtai`` are
published there directly (by the bus, by an inspectorate) and need none
(``needs_route``). A record without a valid route is refused (``route_unproven``).

Every time used is the broker's append time: a record whose timestamp is not
``LogAppendTime``, or is out of range, is refused (``untrusted_timestamp``).

An event is known by its publisher and id: one id used by two publishers is a conflict,
neither is shown (as the other or at all), and each copy is counted (``id_conflict``).
Refusals are counted by reason code in ``Inbox.refused``, never shown.

Rows
----
A *row* is one finding routed to programme P: a verified finding on P's queue with its
route. Its ``routed_at`` is the record's append time on the queue. A finding routed twice
is one row (the first appended).

* **Outcome**: the latest (by ``occurred_at``, then append order) ``OutcomeRecorded`` on
  ``liaison.outcomes`` whose ``programme`` is P and which names the row's finding (its
  publisher and id).
* **Due and overdue**: the outcome is due by the end of the N-th working day after the
  day it was routed (``due_date``), dates taken in Europe/London; working days are Monday
  to Friday except England and Wales bank holidays (the ``holidays`` library). A row with
  no outcome is overdue from the start of the day after (``due_at``).
* **Reminder**: the ``OutcomeOverdue`` whose id is ``overdue_id(finding, P)``, if raised.
* **Delivery**: the ``DeliveryRecorded`` results for P and the finding (``serve
  deliver``; for JTAI only the reading inspectorate's), the last on the log standing (a
  redelivery's success after a refusal shows as delivered).
* **JTAI**: the themes on which the finding's area is selected for a JTAI, as
  ``consumers.jtai_desk`` decides it (a decision tied to a verified consideration with
  the same area and theme, the latest standing).

"Outcomes of our findings"
--------------------------
``returned`` lists what came back about the findings P published (their
``programme`` is P): ``OutcomeRecorded`` routed back to P's queue (with a route), and the
overdue reminders about them (routed back, or on ``liaison.outcomes``), each once.

``due_reminders`` says which reminders are owed: one per overdue row with none yet. Its
ids are derived from the finding and the programme, so asking twice raises nothing twice.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import holidays
from pydantic import ValidationError

from consumers.jtai_desk import selected_themes, triage
from schemas.envelope import LOG_APPEND_TIME, Reason
from schemas.errors import EnvelopeError, SchemaError
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    RECOMMENDATION_MADE,
    RECOMMENDATION_REVIEWED,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    InspectorateEvent,
    RecommendationMade,
    RecommendationReviewed,
    Theme,
)
from schemas.inspectorates import JTAI, Agency, Inspectorate, Programme, owner_of
from schemas.jtai import JtaiConsiderationRequested, JtaiDecisionRecorded
from schemas.keys import BUS, TrustStore
from schemas.outcomes import (
    DeliveryRecorded,
    DeliveryStatus,
    OutcomeOverdue,
    OutcomeRecorded,
    overdue_id,
)
from schemas.records import InboundRecord
from schemas.reference import local_authorities, police_force_of
from schemas.route import Route, check_route
from schemas.signed import OpenedSigned, SignedEvent
from schemas.topics import Topics

__all__ = [
    "DEFAULT_WORKING_DAYS",
    "ID_CONFLICT",
    "LONDON",
    "MAX_WORKING_DAYS",
    "UNTRUSTED_TIME",
    "Inbox",
    "InboxQuery",
    "InboxRow",
    "Reminders",
    "Returned",
    "Unrouted",
    "UnroutedRow",
    "add_working_days",
    "appended_at",
    "build_inbox",
    "build_unrouted",
    "due_at",
    "due_date",
    "due_reminders",
    "finding_kind",
    "is_working_day",
    "log_time",
    "needs_route",
    "refusal_counts",
    "returned_document",
    "row_document",
    "unrouted_document",
]

DEFAULT_WORKING_DAYS: Final = 10
"""Working days a programme has to record an outcome before it is overdue."""
MAX_WORKING_DAYS: Final = 365
"""Most working days allowed (``OutcomeOverdue.working_days`` is held to it too)."""

LONDON: Final = ZoneInfo("Europe/London")
"""Days are counted in England's dates (GMT in winter, BST in summer)."""

UNTRUSTED_TIME: Final = "untrusted_timestamp"
"""Refusal code of a record whose timestamp is not the broker's append time, or out of
range."""
ID_CONFLICT: Final = str(Reason.ID_CONFLICT)
"""Refusal code of an event whose id another publisher used too."""

_LATEST_YEAR: Final = 9000
"""Append times from this year on are out of range (due dates must still fit a date)."""

_SATURDAY: Final = 5
_FINDINGS: Final = (
    ConcernRaised,
    ExceptionalPracticeIdentified,
    RecommendationMade,
    RecommendationReviewed,
)
_KIND: Final = MappingProxyType(
    {
        CONCERN_RAISED: "concern",
        EXCEPTIONAL_PRACTICE_IDENTIFIED: "exceptional_practice",
        RECOMMENDATION_MADE: "recommendation",
        RECOMMENDATION_REVIEWED: "recommendation_review",
    }
)

# -- working days ----------------------------------------------------------------------------


@functools.cache
def _bank_holidays() -> holidays.HolidayBase:
    # England (and Wales: the same days); observed days included (Boxing Day on a Saturday
    # is taken on the Monday). Years are filled in as they are asked about.
    return holidays.country_holidays("GB", subdiv="ENG")


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday, and not an England and Wales bank holiday."""
    return day.weekday() < _SATURDAY and day not in _bank_holidays()


def add_working_days(day: dt.date, days: int) -> dt.date:
    """The ``days``-th working day after ``day`` (``day`` itself never counts)."""
    if days < 1:
        msg = f"working days must be at least 1, not {days}"
        raise ValueError(msg)
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def due_date(routed_at: dt.datetime, working_days: int = DEFAULT_WORKING_DAYS) -> dt.date:
    """The day an outcome is due by: ``working_days`` working days after the London date
    of ``routed_at``."""
    return add_working_days(routed_at.astimezone(LONDON).date(), working_days)


def due_at(routed_at: dt.datetime, working_days: int = DEFAULT_WORKING_DAYS) -> dt.datetime:
    """When a finding with no outcome becomes overdue (UTC): the start of the London day
    after its ``due_date``."""
    after = due_date(routed_at, working_days) + dt.timedelta(days=1)
    return dt.datetime.combine(after, dt.time(0), tzinfo=LONDON).astimezone(dt.UTC)


# -- rows --------------------------------------------------------------------------------------


def appended_at(record: InboundRecord) -> dt.datetime:
    """The record's timestamp as a UTC time, whatever its type (see ``log_time``)."""
    return dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)


def log_time(record: InboundRecord) -> dt.datetime | None:
    """The broker's append time of ``record`` (UTC), or ``None`` when its timestamp is
    not ``LogAppendTime`` or is out of range: then no time of it can be trusted."""
    if record.timestamp_type != LOG_APPEND_TIME or record.timestamp_ms < 0:
        return None
    try:
        at = appended_at(record)
    except (OverflowError, OSError, ValueError):
        return None
    return at if at.year < _LATEST_YEAR else None


def needs_route(event: SignedEvent) -> bool:
    """Whether ``event``, read from a queue, counts only with the router's route: every
    type the router forwards (findings, outcomes, reminders), not the considerations and
    decisions published to ``liaison.jtai`` directly."""
    return not isinstance(event, JtaiConsiderationRequested | JtaiDecisionRecorded)


def finding_kind(event_type: str) -> str:
    """A short name for a finding's type (``concern``, ``recommendation``, ...)."""
    return _KIND.get(event_type, event_type)


def _area_name(code: str) -> str:
    authority = local_authorities().get(code)
    return authority.name if authority is not None else code


def _police_force(event: InspectorateEvent) -> str | None:
    """The police force's name when the finding is about the police."""
    about_police = Agency.POLICE in event.subject_agencies
    if isinstance(event, RecommendationMade | RecommendationReviewed):
        about_police = about_police or event.recipient is Agency.POLICE
    if not about_police:
        return None
    try:
        return police_force_of(event.area).name
    except SchemaError:  # an area the lookup does not hold: show none rather than fail
        return None


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One finding routed to the programme, and what became of it there."""

    finding: InspectorateEvent
    routed_at: dt.datetime
    rules: tuple[str, ...]
    reason: str
    area_name: str
    police_force: str | None
    due_date: dt.date
    due_at: dt.datetime
    overdue: bool
    outcomes: tuple[OutcomeRecorded, ...] = ()
    """Every outcome the programme recorded for it, oldest first (the last stands)."""
    reminder: OutcomeOverdue | None = None
    deliveries: tuple[DeliveryRecorded, ...] = ()
    """Every delivery result for it in log order (the last stands)."""
    jtai_selected: tuple[Theme, ...] = ()
    """Themes for which the finding's area is selected for a JTAI."""
    jtai_decisions: tuple[UUID, ...] = ()
    """The ``select`` decisions standing behind ``jtai_selected``."""

    @property
    def id(self) -> UUID:
        """The finding's event id."""
        return self.finding.id

    def shown_ids(self, *, history: bool = False) -> tuple[UUID, ...]:
        """The ids of the events showing the row shows, once each: the finding, its
        outcome (every one with ``history``), reminder, delivery result (every one with
        ``history``) and the JTAI decisions behind its mark."""
        ids = [self.id]
        outcomes = self.outcomes if history else self.outcomes[-1:]
        ids += [o.id for o in outcomes]
        if self.reminder is not None:
            ids.append(self.reminder.id)
        deliveries = self.deliveries if history else self.deliveries[-1:]
        ids += [d.id for d in deliveries]
        ids += self.jtai_decisions
        return tuple(dict.fromkeys(ids))

    @property
    def outcome(self) -> OutcomeRecorded | None:
        """The outcome that stands (the latest), if any."""
        return self.outcomes[-1] if self.outcomes else None

    @property
    def delivery(self) -> DeliveryRecorded | None:
        """The latest delivery result, if any."""
        return self.deliveries[-1] if self.deliveries else None

    @property
    def kind(self) -> str:
        """``concern``, ``exceptional_practice``, ``recommendation``, ..."""
        return finding_kind(self.finding.type)


@dataclass(frozen=True, slots=True)
class Returned:
    """Something that came back about one of the programme's own findings: an outcome
    another programme recorded, or the bus's overdue reminder."""

    event: OutcomeRecorded | OutcomeOverdue
    at: dt.datetime
    """When it was appended (to the programme's queue, or to ``liaison.outcomes``)."""

    @property
    def kind(self) -> str:
        """``outcome`` or ``reminder``."""
        return "outcome" if isinstance(self.event, OutcomeRecorded) else "reminder"


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """Which rows (and returned items) to show; ``None`` is any."""

    include_decided: bool = False
    area: str | None = None
    theme: Theme | None = None
    source: Inspectorate | None = None
    overdue_only: bool = False

    def shows(self, row: InboxRow) -> bool:
        """Whether ``row`` is shown."""
        finding = row.finding
        return (
            (self.include_decided or row.outcome is None)
            and (self.area is None or finding.area == self.area)
            and (self.theme is None or finding.theme is self.theme)
            and (self.source is None or finding.source is self.source)
            and (not self.overdue_only or row.overdue)
        )

    def shows_returned(self, item: Returned) -> bool:
        """Whether ``item`` is shown (``overdue_only`` keeps only reminders)."""
        event = item.event
        source = event.source if isinstance(event, OutcomeRecorded) else None
        return (
            (self.area is None or event.area == self.area)
            and (self.theme is None or event.theme is self.theme)
            and (self.source is None or source is self.source)
            and (not self.overdue_only or isinstance(event, OutcomeOverdue))
        )

    def filters(self) -> dict[str, str]:
        """The query as the audit record's ``filters`` (only what was asked)."""
        given: dict[str, str] = {}
        if self.include_decided:
            given["all"] = "true"
        if self.area is not None:
            given["area"] = self.area
        if self.theme is not None:
            given["theme"] = self.theme.value
        if self.source is not None:
            given["source"] = self.source.value
        if self.overdue_only:
            given["overdue"] = "true"
        return given


@dataclass(frozen=True, slots=True)
class Inbox:
    """A programme's inbox as of ``now``."""

    programme: Programme
    queue: str
    now: dt.datetime
    working_days: int
    rows: tuple[InboxRow, ...]
    """Findings routed to the programme, oldest first."""
    returned: tuple[Returned, ...] = ()
    """Outcomes and reminders about the programme's own findings, oldest first."""
    refused: Mapping[str, int] = field(default_factory=dict)
    """Records that did not verify on reading, counted by reason (never shown)."""

    def select(self, query: InboxQuery) -> Inbox:
        """The same inbox with only what ``query`` shows."""
        return replace(
            self,
            rows=tuple(r for r in self.rows if query.shows(r)),
            returned=tuple(r for r in self.returned if query.shows_returned(r)),
        )

    def row(self, finding_id: UUID) -> InboxRow | None:
        """The row of ``finding_id``, if it was routed to the programme."""
        return next((r for r in self.rows if r.id == finding_id), None)

    def shown_ids(self) -> tuple[UUID, ...]:
        """The ids of every event shown, once each (what a read's audit record names):
        each row's (``InboxRow.shown_ids``) and each returned item's."""
        ids = [i for r in self.rows for i in r.shown_ids()]
        ids += [item.event.id for item in self.returned]
        return tuple(dict.fromkeys(ids))


Verified: TypeAlias = Sequence[tuple[InboundRecord, OpenedSigned]]


_Timed = TypeVar("_Timed", OutcomeRecorded, DeliveryRecorded)
_Key: TypeAlias = tuple[str, UUID]
"""An event as readers know it: its publisher and its id."""


def _in_time_order(items: Iterable[tuple[int, _Timed]]) -> list[_Timed]:
    """Events by ``occurred_at``, ties in the order given (a stable sort)."""
    return [event for _, event in sorted(items, key=lambda pair: (pair[1].occurred_at, pair[0]))]


def _key(event: SignedEvent) -> _Key:
    return (str(event.source), event.id)


def _finding_key(event: OutcomeRecorded | OutcomeOverdue) -> _Key:
    return (str(event.finding_source), event.finding_id)


class _Refusals:
    """Records refused while building, counted by reason code."""

    def __init__(self, given: Mapping[str, int] | None) -> None:
        self.counts: dict[str, int] = dict(given or {})

    def add(self, code: str, n: int = 1) -> None:
        if n:
            self.counts[code] = self.counts.get(code, 0) + n

    def done(self) -> Mapping[str, int]:
        return MappingProxyType(dict(sorted(self.counts.items())))


_Held = TypeVar("_Held")


def _without_conflicts(held: dict[_Key, _Held], refusals: _Refusals) -> dict[_Key, _Held]:
    """``held`` less every event whose id another publisher used too (each copy counted
    as ``id_conflict``): neither is shown as the other."""
    publishers: dict[UUID, int] = {}
    for _, event_id in held:
        publishers[event_id] = publishers.get(event_id, 0) + 1
    kept = {key: value for key, value in held.items() if publishers[key[1]] == 1}
    refusals.add(ID_CONFLICT, len(held) - len(kept))
    return kept


@dataclass(frozen=True, slots=True)
class _Routed:
    """A finding on the queue with the route that proves the router put it there."""

    at: dt.datetime
    finding: InspectorateEvent
    route: Route


@dataclass(slots=True)
class _Gathered:
    """What the records say about one programme, gathered topic by topic."""

    programme: Programme
    reader: Inspectorate | None
    refusals: _Refusals
    routed: dict[_Key, _Routed] = field(default_factory=dict)
    outcomes: dict[_Key, dict[_Key, tuple[int, OutcomeRecorded]]] = field(default_factory=dict)
    reminders: dict[_Key, OutcomeOverdue] = field(default_factory=dict)
    deliveries: dict[UUID, dict[tuple[UUID, bytes], tuple[int, DeliveryRecorded]]] = field(
        default_factory=dict
    )
    jtai: list[SignedEvent] = field(default_factory=list)
    returned: dict[_Key, Returned] = field(default_factory=dict)

    def queue(self, at: dt.datetime, event: SignedEvent, route: Route) -> None:
        if isinstance(event, _FINDINGS):
            held = self.routed.get(_key(event))
            if held is None or at < held.at:
                self.routed[_key(event)] = _Routed(at, event, route)
        elif isinstance(event, OutcomeRecorded | OutcomeOverdue):
            self.returning(at, event)

    def returning(self, at: dt.datetime, event: OutcomeRecorded | OutcomeOverdue) -> None:
        if event.finding_programme is self.programme:
            self.returned.setdefault(_key(event), Returned(event, at))

    def outcome(self, position: int, at: dt.datetime, event: SignedEvent) -> None:
        if isinstance(event, OutcomeRecorded) and event.programme is self.programme:
            given = self.outcomes.setdefault(_finding_key(event), {})
            given.setdefault(_key(event), (position, event))
        elif isinstance(event, OutcomeOverdue):
            if event.programme is self.programme:
                self.reminders.setdefault(_finding_key(event), event)
            self.returning(at, event)

    def delivery(self, position: int, event: SignedEvent, payload: bytes) -> None:
        if not isinstance(event, DeliveryRecorded) or event.programme is not self.programme:
            return
        if self.programme is JTAI and self.reader is not None and event.source is not self.reader:
            return  # another inspectorate's delivery of the joint queue to its own system
        # The last on the log stands (a redelivery writes a result with the same id);
        # a repeat of the very same record is one result, at its last position.
        results = self.deliveries.setdefault(event.event_id, {})
        results.pop((event.id, payload), None)
        results[(event.id, payload)] = (position, event)


def _deliveries(results: Iterable[tuple[int, DeliveryRecorded]]) -> tuple[DeliveryRecorded, ...]:
    return tuple(event for _, event in sorted(results, key=lambda pair: pair[0]))


def _gather(
    gathered: _Gathered,
    topics: Topics,
    queue: str,
    verified: Verified,
    *,
    trust: TrustStore,
    now: dt.datetime,
) -> None:
    refusals = gathered.refusals
    read = {queue, topics.outcomes, topics.delivery, topics.jtai}
    for position, (record, opened) in enumerate(verified):
        if record.topic not in read:
            continue
        at = log_time(record)
        if at is None:
            refusals.add(UNTRUSTED_TIME)
            continue
        event = opened.event
        if record.topic == queue and needs_route(event):
            try:
                route = check_route(record, trust, now, event_id=event.id)
            except EnvelopeError as exc:
                refusals.add(str(exc.reason))
                continue
            gathered.queue(at, event, route)
        if record.topic == topics.outcomes:
            gathered.outcome(position, at, event)
        if record.topic == topics.delivery:
            gathered.delivery(position, event, opened.payload)
        if record.topic == topics.jtai and not needs_route(event):
            gathered.jtai.append(event)


def build_inbox(
    programme: Programme,
    topics: Topics,
    verified: Verified,
    now: dt.datetime,
    *,
    trust: TrustStore,
    working_days: int = DEFAULT_WORKING_DAYS,
    refused: Mapping[str, int] | None = None,
    reader: Inspectorate | None = None,
) -> Inbox:
    """The inbox of ``programme`` from verified records of its queue, ``liaison.outcomes``,
    ``liaison.delivery`` and ``liaison.jtai`` (records of other topics are ignored).

    ``trust`` checks the routes of the queue's records; ``reader`` is the inspectorate
    reading (for JTAI: only its own delivery results count). ``refused`` are the read's
    refusals, to which this adds its own (no route, untrusted time, id conflicts).
    """
    if not 1 <= working_days <= MAX_WORKING_DAYS:
        msg = f"working days must be from 1 to {MAX_WORKING_DAYS}, not {working_days}"
        raise ValueError(msg)
    queue = topics.programme(programme)
    refusals = _Refusals(refused)
    gathered = _Gathered(programme, reader, refusals)
    _gather(gathered, topics, queue, verified, trust=trust, now=now)
    selected = selected_themes(triage(gathered.jtai))
    rows = []
    for key, routed in _without_conflicts(gathered.routed, refusals).items():
        finding, at = routed.finding, routed.at
        given = tuple(_in_time_order(gathered.outcomes.get(key, {}).values()))
        due = due_at(at, working_days)
        selections = selected.get(finding.area, ())
        rows.append(
            InboxRow(
                finding=finding,
                routed_at=at,
                rules=routed.route.rules,
                reason=routed.route.reason,
                area_name=_area_name(finding.area),
                police_force=_police_force(finding),
                due_date=due_date(at, working_days),
                due_at=due,
                overdue=not given and now >= due,
                outcomes=given,
                reminder=gathered.reminders.get(key),
                deliveries=_deliveries(gathered.deliveries.get(finding.id, {}).values()),
                jtai_selected=tuple(theme for theme, _ in selections),
                jtai_decisions=tuple(decision for _, decision in selections),
            )
        )
    rows.sort(key=lambda r: (r.routed_at, str(r.id)))
    returned = _without_conflicts(gathered.returned, refusals).values()
    back = sorted(returned, key=lambda r: (r.at, str(r.event.id)))
    return Inbox(
        programme=programme,
        queue=queue,
        now=now,
        working_days=working_days,
        rows=tuple(rows),
        returned=tuple(back),
        refused=refusals.done(),
    )


def refusal_counts(refused: Iterable[tuple[InboundRecord, EnvelopeError]]) -> dict[str, int]:
    """Refused records counted by reason code."""
    counts: dict[str, int] = {}
    for _, error in refused:
        counts[str(error.reason)] = counts.get(str(error.reason), 0) + 1
    return dict(sorted(counts.items()))


# -- reminders -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reminders:
    """Reminders owed now, and overdue findings for which none can be built (why)."""

    raised: tuple[OutcomeOverdue, ...]
    skipped: tuple[tuple[UUID, str], ...] = ()


def due_reminders(inbox: Inbox, now: dt.datetime) -> Reminders:
    """One ``OutcomeOverdue`` (source ``liaison``) for each overdue row of ``inbox`` that
    has no reminder yet; ``occurred_at`` is ``now``."""
    raised, skipped = [], []
    for row in inbox.rows:
        if not row.overdue or row.reminder is not None:
            continue
        finding = row.finding
        if inbox.programme is not JTAI and owner_of(inbox.programme) is finding.source:
            skipped.append((row.id, "a finding on a queue of its own publisher's programme"))
            continue
        try:
            raised.append(
                OutcomeOverdue(
                    id=overdue_id(finding.id, inbox.programme),
                    source=BUS,
                    occurred_at=now,
                    area=finding.area,
                    theme=finding.theme,
                    programme=inbox.programme,
                    finding_id=finding.id,
                    finding_type=finding.type,
                    finding_source=finding.source,
                    finding_programme=finding.programme,
                    routed_at=row.routed_at,
                    due_at=row.due_at,
                    working_days=inbox.working_days,
                )
            )
        except ValidationError as exc:  # an area no longer live at `now`, say
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            skipped.append((row.id, problems))
    return Reminders(tuple(raised), tuple(skipped))


# -- unrouted --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnroutedRow:
    """A verified finding no routing rule took."""

    finding: InspectorateEvent
    at: dt.datetime
    area_name: str
    police_force: str | None

    @property
    def kind(self) -> str:
        """``concern``, ``exceptional_practice``, ..."""
        return finding_kind(self.finding.type)


@dataclass(frozen=True, slots=True)
class Unrouted:
    """The unrouted topic as of a read: its findings, oldest first, and refusals."""

    queue: str
    rows: tuple[UnroutedRow, ...]
    refused: Mapping[str, int] = field(default_factory=dict)

    def shown_ids(self) -> tuple[UUID, ...]:
        """The ids of the findings shown, once each."""
        return tuple(dict.fromkeys(r.finding.id for r in self.rows))


def build_unrouted(
    topic: str,
    verified: Verified,
    *,
    trust: TrustStore,
    now: dt.datetime,
    since: dt.datetime | None = None,
    refused: Mapping[str, int] | None = None,
) -> Unrouted:
    """The findings the router put on ``topic`` (appended at or after ``since``), each
    once; a record without its route, or whose time is not the broker's, is refused, and
    one id used by two publishers shows neither (see the module docstring)."""
    refusals = _Refusals(refused)
    found: dict[_Key, UnroutedRow] = {}
    for record, opened in verified:
        event = opened.event
        if record.topic != topic or not isinstance(event, _FINDINGS):
            continue
        at = log_time(record)
        if at is None:
            refusals.add(UNTRUSTED_TIME)
            continue
        try:
            check_route(record, trust, now, event_id=event.id)
        except EnvelopeError as exc:
            refusals.add(str(exc.reason))
            continue
        held = found.get(_key(event))
        if held is None or at < held.at:
            found[_key(event)] = UnroutedRow(
                event, at, _area_name(event.area), _police_force(event)
            )
    kept = _without_conflicts(found, refusals).values()
    rows = sorted(
        (r for r in kept if since is None or r.at >= since),
        key=lambda r: (r.at, str(r.finding.id)),
    )
    return Unrouted(topic, tuple(rows), refusals.done())


# -- documents (JSON Lines) ------------------------------------------------------------------


def _finding_fields(finding: InspectorateEvent) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": str(finding.id),
        "type": finding.type,
        "finding_kind": finding_kind(finding.type),
        "publisher": finding.source.value,
        "published_under": finding.programme.value,
        "occurred_at": finding.occurred_at.isoformat(),
        "area": finding.area,
        "theme": finding.theme.value,
        "subject_agencies": [a.value for a in finding.subject_agencies],
        "summary": finding.summary,
    }
    if isinstance(finding, ConcernRaised):
        fields.update(
            finding=finding.finding.value,
            severity=finding.severity,
            immediate_risk=finding.immediate_risk,
        )
    if isinstance(finding, RecommendationMade | RecommendationReviewed):
        fields.update(recipient=finding.recipient.value, force=finding.force)
    if isinstance(finding, RecommendationReviewed):
        fields.update(
            recommendation_id=str(finding.recommendation_id), progress=finding.progress.value
        )
    return fields


def _outcome_fields(outcome: OutcomeRecorded) -> dict[str, Any]:
    return {
        "id": str(outcome.id),
        "outcome": outcome.outcome.value,
        "note": outcome.note,
        "source": outcome.source.value,
        "programme": outcome.programme.value,
        "occurred_at": outcome.occurred_at.isoformat(),
    }


def _delivery_fields(delivery: DeliveryRecorded) -> dict[str, Any]:
    return {
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "occurred_at": delivery.occurred_at.isoformat(),
    }


def row_document(row: InboxRow, *, history: bool = False) -> dict[str, Any]:
    """One row as a JSON object (``history``: every outcome and delivery result too)."""
    document: dict[str, Any] = {"kind": "finding", **_finding_fields(row.finding)}
    document.update(
        routed_at=row.routed_at.isoformat(),
        area_name=row.area_name,
        police_force=row.police_force,
        rules=list(row.rules),
        reason=row.reason,
        outcome=_outcome_fields(row.outcome) if row.outcome else None,
        due_date=row.due_date.isoformat(),
        due_at=row.due_at.isoformat(),
        overdue=row.overdue,
        reminder_id=str(row.reminder.id) if row.reminder else None,
        delivery=_delivery_fields(row.delivery) if row.delivery else None,
        delivery_refused=bool(row.delivery and row.delivery.status is DeliveryStatus.REFUSED),
        jtai_selected=bool(row.jtai_selected),
        jtai_selected_themes=[t.value for t in row.jtai_selected],
    )
    if history:
        document["outcomes"] = [_outcome_fields(o) for o in row.outcomes]
        document["deliveries"] = [_delivery_fields(d) for d in row.deliveries]
    return document


def returned_document(item: Returned) -> dict[str, Any]:
    """One outcome or reminder about the programme's own finding, as a JSON object."""
    event = item.event
    document: dict[str, Any] = {
        "kind": item.kind,
        "id": str(event.id),
        "at": item.at.isoformat(),
        "finding_id": str(event.finding_id),
        "finding_type": event.finding_type,
        "area": event.area,
        "area_name": _area_name(event.area),
        "theme": event.theme.value,
        "programme": event.programme.value,
    }
    if isinstance(event, OutcomeRecorded):
        document.update(source=event.source.value, outcome=event.outcome.value, note=event.note)
    else:
        document.update(due_at=event.due_at.isoformat(), working_days=event.working_days)
    return document


def unrouted_document(row: UnroutedRow) -> dict[str, Any]:
    """One unrouted finding as a JSON object."""
    return {
        "kind": "unrouted",
        **_finding_fields(row.finding),
        "at": row.at.isoformat(),
        "area_name": row.area_name,
        "police_force": row.police_force,
    }
