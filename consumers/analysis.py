"""What analysts see: verified events as rows, filters, the overview of England, an
area's timeline and counts over time.

Pure: no I/O, no clock. ``services.reader.hub`` reads ``liaison.feed.areas`` (findings and
outcomes) and ``liaison.jtai`` (considerations and decisions), verifies every record and
hands each verified event here (``project``); the terminal feed and the dashboard select,
count and group the ``Item`` values this module returns.

An ``Item`` holds only what analysts need: when it happened and when the broker took it,
where (area, its name and region), who published it, what it is (type, finding, theme,
severity, subject agencies) and its summary (minimised at publication; shown to the
analyst, never logged or audited). Raw envelopes and signatures stay in the hub, shown
only on an event's detail view.

Invariants pinned by hypothesis in ``tests/unit/test_analysis.py``:

- ``FeedQuery.admits`` is a conjunction: an item admitted by a query is admitted by every
  query with fewer conditions;
- ``overview`` counts every concern in the window in the areas asked, once, and nothing
  else;
- ``counts_over_time`` sums to the number of concerns in its range.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from consumers import jtai_desk
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    RECOMMENDATION_MADE,
    RECOMMENDATION_REVIEWED,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    RecommendationMade,
    RecommendationReviewed,
    Theme,
)
from schemas.jtai import (
    JTAI_CONSIDERATION_REQUESTED,
    JTAI_DECISION_RECORDED,
    JtaiConsiderationRequested,
    JtaiDecisionRecorded,
)
from schemas.outcomes import OUTCOME_RECORDED, OutcomeRecorded
from schemas.reference import local_authorities
from schemas.signed import SignedEvent

__all__ = [
    "KINDS",
    "SUMMARY_WIDTH",
    "AreaTotals",
    "FeedQuery",
    "Item",
    "Kind",
    "Series",
    "area_timeline",
    "counts_over_time",
    "kind_of",
    "overview",
    "project",
    "recommendations",
    "trim",
]

Kind = Literal[
    "concern",
    "exceptional_practice",
    "recommendation",
    "review",
    "outcome",
    "consideration",
    "decision",
]

KINDS: Final[Mapping[str, Kind]] = {
    CONCERN_RAISED: "concern",
    EXCEPTIONAL_PRACTICE_IDENTIFIED: "exceptional_practice",
    RECOMMENDATION_MADE: "recommendation",
    RECOMMENDATION_REVIEWED: "review",
    OUTCOME_RECORDED: "outcome",
    JTAI_CONSIDERATION_REQUESTED: "consideration",
    JTAI_DECISION_RECORDED: "decision",
}
"""Each type analysts see, by its short name (the ``--type`` values)."""

SUMMARY_WIDTH: Final = 120
"""Characters of a summary a table row shows (``trim``)."""


def trim(text: str, width: int = SUMMARY_WIDTH) -> str:
    """``text`` on one line, at most ``width`` characters (an ellipsis marks a cut): the
    JTAI desk's trimming, at the analysts' width."""
    return jtai_desk.trim(text, width)


def kind_of(event_type: str) -> Kind | None:
    """The short name of a wire type analysts see, or None for any other type."""
    return KINDS.get(event_type)


@dataclass(frozen=True, slots=True)
class Item:
    """One verified event as analysts see it (no signature, no evidence references)."""

    id: uuid.UUID
    type: str
    kind: Kind
    source: str
    """The publishing inspectorate's wire value, or ``liaison`` for the bus."""
    occurred_at: dt.datetime
    received_at: dt.datetime
    """The broker's append time of the record it was read from."""
    area: str
    area_name: str
    region: str
    theme: Theme
    summary: str
    """The event's summary (an outcome's note, a consideration's rationale, a decision's
    reason): minimised at publication, shown only to an analyst in scope."""
    severity: int | None = None
    finding: str | None = None
    immediate_risk: bool = False
    agencies: tuple[str, ...] = ()
    about: uuid.UUID | None = None
    """The finding an outcome is about, the recommendation a review is of, the
    consideration a decision is on."""
    status: str | None = None
    """An outcome's outcome, a review's progress, a decision's decision, a
    consideration's trigger, a recommendation's recipient."""
    programme: str | None = None
    related: tuple[uuid.UUID, ...] = ()
    """A consideration's contributing events."""

    def as_json(self) -> dict[str, object]:
        """The row as JSON (``liaison feed --json``, the dashboard's live feed)."""
        row: dict[str, object] = {
            "id": str(self.id),
            "type": self.type,
            "kind": self.kind,
            "source": self.source,
            "occurred_at": _iso(self.occurred_at),
            "received_at": _iso(self.received_at),
            "area": self.area,
            "area_name": self.area_name,
            "region": self.region,
            "theme": self.theme.value,
            "severity": self.severity,
            "finding": self.finding,
            "immediate_risk": self.immediate_risk,
            "subject_agencies": list(self.agencies),
            "summary": self.summary,
            "about": str(self.about) if self.about else None,
            "status": self.status,
            "programme": self.programme,
        }
        if self.related:
            row["related"] = [str(i) for i in self.related]
        return row


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _place(area: str) -> tuple[str, str]:
    authority = local_authorities().get(area)
    return (authority.name, authority.region.name) if authority else (area, "")


def _details(event: SignedEvent) -> dict[str, object] | None:  # noqa: PLR0911 - one per type
    """What each type adds to a row, or None for a type analysts do not see."""
    match event:
        case ConcernRaised():
            return {
                "summary": event.summary,
                "severity": event.severity,
                "finding": event.finding.value,
                "immediate_risk": event.immediate_risk,
                "agencies": tuple(a.value for a in event.subject_agencies),
                "programme": event.programme.value,
            }
        case ExceptionalPracticeIdentified():
            return {
                "summary": event.summary,
                "agencies": tuple(a.value for a in event.subject_agencies),
                "programme": event.programme.value,
            }
        case RecommendationReviewed():
            return {
                "summary": event.summary,
                "agencies": tuple(a.value for a in event.subject_agencies),
                "about": event.recommendation_id,
                "status": event.progress.value,
                "programme": event.programme.value,
            }
        case RecommendationMade():
            return {
                "summary": event.summary,
                "agencies": tuple(a.value for a in event.subject_agencies),
                "status": event.recipient.value,
                "programme": event.programme.value,
            }
        case OutcomeRecorded():
            return {
                "summary": event.note,
                "about": event.finding_id,
                "status": event.outcome.value,
                "programme": event.programme.value,
            }
        case JtaiConsiderationRequested():
            return {
                "summary": event.rationale,
                "status": event.trigger.value,
                "related": tuple(event.contributing_event_ids),
            }
        case JtaiDecisionRecorded():
            return {
                "summary": event.reason,
                "about": event.consideration_id,
                "status": event.decision.value,
            }
    return None


def project(event: SignedEvent, received_at: dt.datetime) -> Item | None:
    """The row for a verified event, or None for a type analysts do not see (reminders,
    delivery results)."""
    kind = kind_of(event.type)
    details = _details(event)
    if kind is None or details is None or not hasattr(event, "theme"):
        return None
    name, region = _place(event.area)
    return Item(
        id=event.id,
        type=event.type,
        kind=kind,
        source=str(event.source),
        occurred_at=event.occurred_at,
        received_at=received_at,
        area=event.area,
        area_name=name,
        region=region,
        theme=event.theme,
        **details,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """What an analyst asked for; an empty set or ``None`` selects everything.

    ``areas`` and ``regions`` together: an item matches when its area is one of ``areas``
    or lies in one of ``regions`` (either empty: that part is not asked). ``since`` and
    ``until`` are on when the event occurred; ``received_since`` on the broker's time.
    """

    areas: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    themes: frozenset[Theme] = frozenset()
    sources: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    min_severity: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    received_since: dt.datetime | None = None

    def admits(self, item: Item) -> bool:
        """Whether ``item`` matches every condition asked."""
        place = not (self.areas or self.regions) or (
            item.area in self.areas or item.region in self.regions
        )
        return (
            place
            and (not self.themes or item.theme in self.themes)
            and (not self.sources or item.source in self.sources)
            and (not self.kinds or item.kind in self.kinds)
            and (
                self.min_severity is None
                or (item.severity is not None and item.severity >= self.min_severity)
            )
            and (self.since is None or item.occurred_at >= self.since)
            and (self.until is None or item.occurred_at < self.until)
            and (self.received_since is None or item.received_at >= self.received_since)
        )

    def as_strings(self) -> dict[str, str]:
        """The conditions asked, as text (for the audit record: codes and names only)."""
        values = {
            "area": ",".join(sorted(self.areas)),
            "region": ",".join(sorted(self.regions)),
            "theme": ",".join(sorted(t.value for t in self.themes)),
            "source": ",".join(sorted(self.sources)),
            "type": ",".join(sorted(self.kinds)),
            "severity": "" if self.min_severity is None else f">={self.min_severity}",
            "since": _iso(self.since) if self.since else "",
            "until": _iso(self.until) if self.until else "",
            "received_since": _iso(self.received_since) if self.received_since else "",
        }
        return {k: v[:500] for k, v in values.items() if v}


@dataclass(frozen=True, slots=True)
class AreaTotals:
    """One authority on the overview: its concerns in the window, by theme."""

    code: str
    name: str
    region: str
    by_theme: Mapping[Theme, int]
    total: int
    max_severity: int
    """The gravest concern's severity (1 to 4), 0 when there is none."""
    severe: int
    """Concerns of severity 3 or 4."""
    jtai: Literal["", "considered", "selected"]
    event_ids: tuple[uuid.UUID, ...] = field(default=(), repr=False)

    def as_json(self) -> dict[str, object]:
        """The tile as JSON (the dashboard's overview updates)."""
        return {
            "code": self.code,
            "name": self.name,
            "region": self.region,
            "by_theme": {t.value: n for t, n in self.by_theme.items()},
            "total": self.total,
            "max_severity": self.max_severity,
            "severe": self.severe,
            "jtai": self.jtai,
        }


_SEVERE: Final = 3


def overview(
    items: Iterable[Item],
    areas: Iterable[str],
    since: dt.datetime,
    until: dt.datetime,
    *,
    themes: Collection[Theme] = (),
    considered: Collection[str] = (),
    selected: Collection[str] = (),
) -> tuple[AreaTotals, ...]:
    """Every area in ``areas`` (in the order given), with its concerns that occurred in
    ``[since, until)`` (on ``themes`` when given), and its JTAI mark: ``selected`` wins
    over ``considered`` (an open consideration)."""
    wanted = list(dict.fromkeys(areas))
    found: dict[str, list[Item]] = {code: [] for code in wanted}
    seen: set[uuid.UUID] = set()
    for item in items:
        if (
            item.kind == "concern"
            and item.area in found
            and since <= item.occurred_at < until
            and (not themes or item.theme in themes)
            and item.id not in seen
        ):
            seen.add(item.id)
            found[item.area].append(item)
    totals = []
    for code in wanted:
        concerns = found[code]
        by_theme: dict[Theme, int] = {}
        for item in concerns:
            by_theme[item.theme] = by_theme.get(item.theme, 0) + 1
        name, region = _place(code)
        mark: Literal["", "considered", "selected"] = (
            "selected" if code in selected else "considered" if code in considered else ""
        )
        totals.append(
            AreaTotals(
                code=code,
                name=name,
                region=region,
                by_theme=dict(sorted(by_theme.items(), key=lambda kv: (-kv[1], kv[0].value))),
                total=len(concerns),
                max_severity=max((i.severity or 0 for i in concerns), default=0),
                severe=sum(1 for i in concerns if (i.severity or 0) >= _SEVERE),
                jtai=mark,
                event_ids=tuple(i.id for i in concerns),
            )
        )
    return tuple(totals)


def area_timeline(items: Iterable[Item], area: str) -> tuple[Item, ...]:
    """Everything about ``area``, newest first (by when it occurred, then id), once each."""
    unique = {item.id: item for item in items if item.area == area}
    return tuple(sorted(unique.values(), key=lambda i: (i.occurred_at, str(i.id)), reverse=True))


def recommendations(items: Iterable[Item], area: str) -> tuple[tuple[Item, tuple[Item, ...]], ...]:
    """``area``'s recommendations, newest first, each with its reviews (oldest first).

    A review counts only when it is from the recommendation's publisher and about the
    same area (reviews of a recommendation not on the feed are left out).
    """
    about = [item for item in items if item.area == area]
    made = {i.id: i for i in about if i.kind == "recommendation"}
    reviews: dict[uuid.UUID, dict[uuid.UUID, Item]] = {rid: {} for rid in made}
    for item in about:
        if item.kind == "review" and item.about in made and made[item.about].source == item.source:
            reviews[item.about][item.id] = item  # a review read twice is listed once
    ordered = sorted(made.values(), key=lambda i: (i.occurred_at, str(i.id)), reverse=True)
    return tuple(
        (rec, tuple(sorted(reviews[rec.id].values(), key=lambda i: (i.occurred_at, str(i.id)))))
        for rec in ordered
    )


@dataclass(frozen=True, slots=True)
class Series:
    """Concerns per theme in consecutive buckets: ``starts[i]`` opens bucket ``i``."""

    starts: tuple[dt.date, ...]
    counts: Mapping[Theme, tuple[int, ...]]
    bucket_days: int

    @property
    def total(self) -> int:
        """Every concern counted."""
        return sum(sum(c) for c in self.counts.values())


def counts_over_time(
    items: Iterable[Item], start: dt.date, end: dt.date, *, bucket_days: int = 7
) -> Series:
    """Concerns that occurred on ``[start, end)`` (UTC dates), per theme, in buckets of
    ``bucket_days``; only themes with at least one concern are listed, busiest first."""
    if bucket_days < 1 or end <= start:
        return Series(starts=(), counts={}, bucket_days=max(bucket_days, 1))
    buckets = -(-(end - start).days // bucket_days)
    starts = tuple(start + dt.timedelta(days=i * bucket_days) for i in range(buckets))
    counts: dict[Theme, list[int]] = {}
    seen: set[uuid.UUID] = set()
    for item in items:
        day = item.occurred_at.astimezone(dt.UTC).date()
        if item.kind != "concern" or not start <= day < end or item.id in seen:
            continue
        seen.add(item.id)
        row = counts.setdefault(item.theme, [0] * buckets)
        row[(day - start).days // bucket_days] += 1
    ordered = sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0].value))
    return Series(starts=starts, counts={t: tuple(c) for t, c in ordered}, bucket_days=bucket_days)
