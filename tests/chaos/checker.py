"""The checker: what every destination holds, judged against what the rules imply.

The judging (``expect``, ``judge``) is pure: it takes the events published and what was
read, and returns a ``Report`` with, per category, every case found (an event id, a
consideration, an audit offset) as one line. The reading (``observe``) is the only I/O:
every destination topic read ``read_committed`` from its start, and the audit service's
store.

Categories (each should be empty):

``lost``            an event in none of its destinations
``duplicated``      an event more than once in one destination
``torn``            an event in some of its destinations but not all
``misrouted``       an event in a destination the rules do not give it
``jtai_missing``    an (area, theme) whose published concerns hold a trigger, with no
                    consideration on the JTAI queue
``jtai_repeated``   a consideration id on the JTAI queue more than once
``jtai_unexpected`` a consideration for an (area, theme) whose concerns hold no trigger
``audit_missing``   an event with no routing-decision leaf (``event.routed`` or
                    ``event.unrouted``) or no ``event.published`` leaf; a consideration
                    with no ``jtai.consideration_emitted`` leaf; a committed record on
                    ``liaison.audit`` that is no leaf; a gap in the leaves' sequence
``audit_repeated``  an event with more than one routing-decision leaf; one publication
                    (topic, partition, offset) with more than one ``event.published``
                    leaf; a consideration with more than one emission leaf; one
                    committed audit record stored as more than one leaf
``audit_foreign``   a leaf for an offset that holds no committed audit record

Destinations are ``consumers.routing.route`` under the rules file: each programme queue
the event's destinations name (``liaison.jtai`` for the JTAI programme), or
``liaison.unrouted`` when there are none, and always ``liaison.feed.areas``.

JTAI: whether an (area, theme) gets any consideration does not depend on arrival order
(``consumers/jtai.py``, "What arrival order cannot change"), but how many and with which
windows does. So the expectation is the set of (area, theme) for which a
``JtaiWatch`` fed every published concern (in occurred_at order, so retention forgets
nothing that matters) raises at least one consideration; the check is that each of them
has at least one, that no other has any, and that no consideration id repeats.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from consumers.jtai import JtaiWatch
from consumers.routing import route
from consumers.rules import RuleSet
from schemas.audit import unsealed
from schemas.envelope import open_consideration
from schemas.errors import EnvelopeError
from schemas.events import InspectorateEvent
from schemas.inspectorates import Programme
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.records import HEADER_EVENT_ID, HEADER_TYPE, header_map
from schemas.topics import Topics
from services.audit_store import SqliteAuditStore
from services.kafka import assigned, catch_up, inbound
from services.settings import Settings
from services.trust import load_trust

__all__ = [
    "CATEGORIES",
    "AuditLeaf",
    "Consideration",
    "Expectation",
    "Observed",
    "Report",
    "expect",
    "judge",
    "leaf_of",
    "observe",
    "read_committed",
    "store_path",
]

CATEGORIES: Final = (
    "lost",
    "duplicated",
    "torn",
    "misrouted",
    "jtai_missing",
    "jtai_repeated",
    "jtai_unexpected",
    "audit_missing",
    "audit_repeated",
    "audit_foreign",
)

_ROUTING: Final = frozenset({"event.routed", "event.unrouted"})


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the published events imply: each event's destinations, and the (area, theme)
    pairs that must have a JTAI consideration."""

    destinations: Mapping[str, frozenset[str]]
    """Event id -> every topic it must be in, exactly once."""
    jtai: frozenset[tuple[str, str]]
    """(area, theme) pairs whose concerns hold a trigger."""


def expect(events: Iterable[InspectorateEvent], rules: RuleSet, topics: Topics) -> Expectation:
    """The expectation for ``events`` (unique ids) under ``rules``."""
    destinations: dict[str, frozenset[str]] = {}
    findings = []
    for event in events:
        queues = {topics.programme(d.programme) for d in route(event, rules.rules)}
        destinations[str(event.id)] = frozenset({*(queues or {topics.unrouted}), topics.feed})
        findings.append(event)
    watch = JtaiWatch(dt.timedelta(days=rules.jtai.window_days), rules.jtai.min_inspectorates)
    triggered = set()
    for event in sorted(findings, key=lambda e: (e.occurred_at, e.id)):
        raised = watch.observe(event)
        if raised is not None:
            triggered.add((raised.area, raised.theme.value))
    return Expectation(destinations, frozenset(triggered))


@dataclass(frozen=True, slots=True)
class Consideration:
    """A JTAI consideration read from the JTAI queue."""

    id: str
    area: str
    theme: str


@dataclass(frozen=True, slots=True)
class AuditLeaf:
    """What the checker reads of one leaf of the audit store."""

    seq: int
    offset: int
    """The Kafka offset on ``liaison.audit`` the leaf was made from."""
    action: str
    """The record's action, or ``""`` for an invalid leaf."""
    event_ids: tuple[str, ...] = ()
    subject: str = ""
    """``topic:partition:offset`` of an ``event.published``; the consideration id of a
    ``jtai.consideration_emitted``; empty otherwise."""


def leaf_of(seq: int, offset: int, payload: bytes | None) -> AuditLeaf:
    """An ``AuditLeaf`` from a leaf's unsealed record payload (``None``: not a record)."""
    try:
        data = json.loads(payload) if payload is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return AuditLeaf(seq, offset, "")
    action = str(data.get("action", ""))
    subject = ""
    if action == "event.published":
        subject = f"{data.get('topic')}:{data.get('partition')}:{data.get('offset')}"
    elif action == "jtai.consideration_emitted":
        subject = str(data.get("consideration_id", ""))
    ids = data.get("event_ids") or []
    return AuditLeaf(seq, offset, action, tuple(str(i) for i in ids), subject)


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything read after the run."""

    deliveries: Sequence[tuple[str, str]]
    """(event id, topic), one per finding or outcome record read from a destination."""
    considerations: Sequence[Consideration]
    audit_offsets: Sequence[int]
    """Offsets of the committed records on ``liaison.audit``."""
    leaves: Sequence[AuditLeaf]


@dataclass(frozen=True, slots=True)
class Report:
    """Per category, one line per case found (empty when all is well)."""

    cases: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """How many cases each category has (every category, zeros included)."""
        return {name: len(self.cases.get(name, ())) for name in CATEGORIES}

    @property
    def ok(self) -> bool:
        """Whether every count is zero."""
        return not any(self.counts.values())

    def render(self, examples: int = 3) -> str:
        """The counts, then the first few cases of each category that has any."""
        lines = ["checker:"]
        for name, count in self.counts.items():
            lines.append(f"  {name:<16} {count}")
        for name in CATEGORIES:
            lines.extend(f"  e.g. {name}: {c}" for c in list(self.cases.get(name, ()))[:examples])
        return "\n".join(lines)


def judge(expected: Expectation, observed: Observed) -> Report:
    """Every case of every category (see the module docstring)."""
    cases: dict[str, list[str]] = defaultdict(list)
    _deliveries(expected, observed, cases)
    _jtai(expected, observed, cases)
    _audit_events(expected, observed, cases)
    _audit_considerations(observed, cases)
    _audit_log(observed, cases)
    return Report({name: tuple(found) for name, found in cases.items() if found})


def _deliveries(expected: Expectation, observed: Observed, cases: dict[str, list[str]]) -> None:
    counts = Counter(observed.deliveries)
    where: defaultdict[str, set[str]] = defaultdict(set)
    for event_id, topic in counts:
        where[event_id].add(topic)
    for event_id, wanted in sorted(expected.destinations.items()):
        got = where.get(event_id, set())
        if not got & wanted:
            cases["lost"].append(f"{event_id} in none of {sorted(wanted)}")
        elif not wanted <= got:
            cases["torn"].append(f"{event_id} missing from {sorted(wanted - got)}")
        for topic in sorted(got - wanted):
            cases["misrouted"].append(f"{event_id} in {topic}")
        for topic in sorted(got):
            if counts[(event_id, topic)] > 1:
                cases["duplicated"].append(f"{event_id} {counts[(event_id, topic)]}x in {topic}")
    for event_id in sorted(set(where) - set(expected.destinations)):
        cases["misrouted"].append(f"{event_id} (never published) in {sorted(where[event_id])}")


def _jtai(expected: Expectation, observed: Observed, cases: dict[str, list[str]]) -> None:
    ids = Counter(c.id for c in observed.considerations)
    for cid, n in sorted(ids.items()):
        if n > 1:
            cases["jtai_repeated"].append(f"consideration {cid} {n}x")
    raised = {(c.area, c.theme) for c in observed.considerations}
    for area, theme in sorted(expected.jtai - raised):
        cases["jtai_missing"].append(f"{area} {theme}: its concerns hold a trigger")
    for area, theme in sorted(raised - expected.jtai):
        cases["jtai_unexpected"].append(f"{area} {theme}: its concerns hold no trigger")


def _audit_events(expected: Expectation, observed: Observed, cases: dict[str, list[str]]) -> None:
    """Each event has one routing-decision leaf and each of its publications one leaf."""
    leaves = observed.leaves
    decisions: Counter[str] = Counter()
    published: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for leaf in leaves:
        if leaf.action in _ROUTING and leaf.event_ids:
            decisions[leaf.event_ids[0]] += 1
        elif leaf.action == "event.published" and leaf.event_ids:
            published[leaf.event_ids[0]][leaf.subject] += 1
    for event_id in sorted(expected.destinations):
        if decisions[event_id] == 0:
            cases["audit_missing"].append(f"{event_id}: no routing-decision leaf")
        elif decisions[event_id] > 1:
            cases["audit_repeated"].append(
                f"{event_id}: {decisions[event_id]} routing-decision leaves"
            )
        if not published[event_id]:
            cases["audit_missing"].append(f"{event_id}: no event.published leaf")
        for subject, n in sorted(published[event_id].items()):
            if n > 1:
                cases["audit_repeated"].append(f"{event_id}: event.published {subject} {n}x")


def _audit_considerations(observed: Observed, cases: dict[str, list[str]]) -> None:
    """Each consideration on the JTAI queue has exactly one emission leaf."""
    emitted = Counter(
        leaf.subject for leaf in observed.leaves if leaf.action == "jtai.consideration_emitted"
    )
    for cid in sorted({c.id for c in observed.considerations}):
        if emitted[cid] == 0:
            cases["audit_missing"].append(f"consideration {cid}: no emission leaf")
        elif emitted[cid] > 1:
            cases["audit_repeated"].append(f"consideration {cid}: {emitted[cid]} emission leaves")


def _audit_log(observed: Observed, cases: dict[str, list[str]]) -> None:
    """Every committed audit record is exactly one leaf, and the leaves have no gap."""
    leaves = observed.leaves
    by_offset = Counter(leaf.offset for leaf in leaves)
    committed = set(observed.audit_offsets)
    for offset in sorted(committed - set(by_offset)):
        cases["audit_missing"].append(f"audit record at offset {offset} is no leaf")
    for offset, n in sorted(by_offset.items()):
        if n > 1:
            cases["audit_repeated"].append(f"audit record at offset {offset} is {n} leaves")
        if offset not in committed:
            cases["audit_foreign"].append(f"leaf for offset {offset}: no committed audit record")
    seqs = sorted(leaf.seq for leaf in leaves)
    if seqs != list(range(len(seqs))):
        cases["audit_missing"].append(f"leaf sequence is not 0..{len(seqs) - 1} without gaps")


# -- reading (I/O) ---------------------------------------------------------------------------


async def observe(settings: Settings, store: Path | None = None) -> Observed:
    """Read every destination topic and ``liaison.audit`` (read_committed, from the
    start) and the audit service's store (``store``, or where ``open_store`` puts it)."""
    topics = settings.topics
    destinations = sorted(
        {topics.programme(p) for p in Programme} | {topics.feed, topics.unrouted, topics.jtai}
    )
    trust = await load_trust(settings)
    now = dt.datetime.now(dt.UTC)
    deliveries: list[tuple[str, str]] = []
    considerations: list[Consideration] = []
    for raw in await read_committed(settings, destinations):
        record = inbound(raw)
        headers = header_map(record.headers)
        if headers.get(HEADER_TYPE) == JTAI_CONSIDERATION_REQUESTED.encode():
            try:
                opened = open_consideration(record, trust, now).event
            except EnvelopeError:  # not the bus's: judged as a consideration nobody expects
                cid = headers.get(HEADER_EVENT_ID, b"").decode(errors="replace")
                considerations.append(Consideration(cid, "unverifiable", ""))
                continue
            considerations.append(Consideration(str(opened.id), opened.area, opened.theme.value))
        elif HEADER_EVENT_ID in headers:
            deliveries.append((headers[HEADER_EVENT_ID].decode(), record.topic))
    audit_offsets = [raw.offset for raw in await read_committed(settings, [topics.audit])]
    with SqliteAuditStore(store or store_path(settings)) as audit:
        leaves = [
            leaf_of(leaf.seq, leaf.kafka_offset, unsealed(leaf.record)) for leaf in audit.leaves()
        ]
    return Observed(tuple(deliveries), tuple(considerations), tuple(audit_offsets), tuple(leaves))


def store_path(settings: Settings) -> Path:
    """Where ``services.audit_service.open_store`` keeps the store (without creating it)."""
    return settings.audit_store or settings.home / "audit" / f"{settings.topic_prefix}audit.sqlite3"


async def read_committed(settings: Settings, topics: Sequence[str]) -> list[Any]:
    """Every committed record of ``topics`` now, from the start."""
    out: list[Any] = []
    async with assigned(settings, topics) as consumer:
        async for batch in catch_up(consumer):
            out.extend(batch)
    return out
