"""JTAI triage: what the JTAI programme has to decide, from verified records.

Pure: no I/O, no clock. ``services.jtai_desk`` reads ``liaison.jtai`` (the bus's
considerations and the programme's decisions), ``liaison.feed.areas`` (findings) and
``liaison.outcomes`` (what programmes did with them), verifies every record, and hands the
verified events to ``triage``, which returns a ``TriageView``; ``decide`` builds a decision
and its audit record.

The rules
---------
Records may arrive in any order and more than once; the view depends only on the set of
verified events:

* Every kind of event is taken once per publisher and id. When one id comes from one
  publisher with different contents (a consideration raised again after a crash, say),
  the copy kept is chosen by a total order on the events themselves (the earliest
  ``occurred_at``, then the canonical bytes; for a decision the latest), never by arrival.
* Event ids are only unique per publisher as far as a reader can prove: one id used by
  two publishers is a *conflict*. Neither is shown as the other: a contributing finding
  or an outcome with a conflicting id is left out (the finding listed as not found) and
  its id counted in ``TriageView.conflicts``; a conflicting decision is ignored
  (``IgnoredReason.ID_CONFLICT``).
* A decision counts only for a consideration on the log whose area and theme it repeats;
  any other is ignored and counted (``IgnoredDecision``), never trusted.
* A consideration's current decision is its latest by ``occurred_at``, ties broken by the
  larger decision id. It is *open* while it has no decision or its current decision is in
  ``OPEN_DECISIONS`` (shortlist, defer); select and decline close it.
* An outcome counts for a contributing finding only when it names the finding and agrees
  with it (publisher, type, area, theme); for each receiving programme the latest (by
  ``occurred_at``, then id) stands, as ``schemas.outcomes`` says.
* A contributing finding not on the feed is still listed, by id, as not found.

Nothing here logs or audits: summaries and reasons are free text, shown to the JTAI team
only (``summary`` trimmed to ``SUMMARY_WIDTH``), never put in a log or an audit record.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

from pydantic import ValidationError

from schemas.audit import JtaiDecided
from schemas.errors import Problem, SchemaError
from schemas.events import (
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    InspectorateEvent,
    Progress,
    RecommendationMade,
    RecommendationReviewed,
    Theme,
)
from schemas.inspectorates import Inspectorate, Programme
from schemas.jtai import (
    OPEN_DECISIONS,
    JtaiConsiderationRequested,
    JtaiDecision,
    JtaiDecisionRecorded,
)
from schemas.minimisation import check_minimised
from schemas.outcomes import Outcome, OutcomeRecorded
from schemas.reference import local_authorities
from schemas.signed import SignedEvent, encode_signed

__all__ = [
    "SUMMARY_WIDTH",
    "Contributor",
    "Decided",
    "DecisionShown",
    "IgnoredDecision",
    "IgnoredReason",
    "ProgrammeOutcome",
    "TriageItem",
    "TriageView",
    "decide",
    "item_json",
    "select",
    "selected_areas",
    "selected_themes",
    "triage",
    "trim",
]

SUMMARY_WIDTH: Final = 160
"""Most characters of a contributing finding's summary the triage view shows."""

_ELLIPSIS: Final = "…"

E = TypeVar("E", bound=SignedEvent)


class IgnoredReason(StrEnum):
    """Why a verified decision does not count."""

    UNKNOWN_CONSIDERATION = "unknown_consideration"
    """No consideration with its ``consideration_id`` is on the log."""
    AREA_DISAGREES = "area_disagrees"
    """Its area is not its consideration's."""
    THEME_DISAGREES = "theme_disagrees"
    """Its theme is not its consideration's."""
    ID_CONFLICT = "id_conflict"
    """Another inspectorate published a decision with the same id."""


@dataclass(frozen=True, slots=True)
class IgnoredDecision:
    """A verified decision that does not count, and why."""

    decision_id: uuid.UUID
    consideration_id: uuid.UUID
    reason: IgnoredReason


@dataclass(frozen=True, slots=True)
class ProgrammeOutcome:
    """What one receiving programme did with a contributing finding (the outcome that
    stands: its latest)."""

    programme: Programme
    outcome: Outcome
    at: dt.datetime
    outcome_id: uuid.UUID
    source: Inspectorate


@dataclass(frozen=True, slots=True)
class Contributor:
    """A finding that counts towards a consideration, as the JTAI team sees it.

    ``found`` is False when the finding is not on the feed: then only ``id`` is known.
    """

    id: uuid.UUID
    found: bool
    publisher: Inspectorate | None = None
    type: str | None = None
    programme: Programme | None = None
    finding: Finding | None = None
    severity: int | None = None
    immediate_risk: bool | None = None
    progress: Progress | None = None
    occurred_at: dt.datetime | None = None
    summary: str | None = None
    outcomes: tuple[ProgrammeOutcome, ...] = ()


@dataclass(frozen=True, slots=True)
class DecisionShown:
    """One decision recorded on a consideration."""

    id: uuid.UUID
    source: Inspectorate
    at: dt.datetime
    decision: JtaiDecision
    reason: str


@dataclass(frozen=True, slots=True)
class TriageItem:
    """One consideration with what the JTAI team needs to decide on it."""

    consideration: JtaiConsiderationRequested
    area_name: str
    region: str
    contributors: tuple[Contributor, ...]
    decisions: tuple[DecisionShown, ...]
    """Every decision that counts, oldest first (by ``at``, then id)."""

    @property
    def current(self) -> DecisionShown | None:
        """The decision that stands (the latest), or None when there is none."""
        return self.decisions[-1] if self.decisions else None

    @property
    def is_open(self) -> bool:
        """Whether the consideration still waits for the JTAI programme."""
        current = self.current
        return current is None or current.decision in OPEN_DECISIONS

    @property
    def event_ids(self) -> tuple[uuid.UUID, ...]:
        """The consideration's id and its contributors'."""
        return (self.consideration.id, *(c.id for c in self.contributors))

    @property
    def shown_ids(self) -> tuple[uuid.UUID, ...]:
        """Every event showing it shows, once each: the consideration, its contributors,
        their outcomes and its decisions (what a read's receipt names)."""
        ids = [*self.event_ids]
        ids += [o.outcome_id for c in self.contributors for o in c.outcomes]
        ids += [d.id for d in self.decisions]
        return tuple(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True)
class TriageView:
    """Every consideration on the log (oldest first), the decisions ignored, and the ids
    two publishers used (findings and outcomes left out for it)."""

    items: tuple[TriageItem, ...]
    ignored: tuple[IgnoredDecision, ...] = ()
    conflicts: tuple[uuid.UUID, ...] = ()

    def find(self, consideration_id: uuid.UUID) -> TriageItem | None:
        """The consideration with this id, or None."""
        return next((i for i in self.items if i.consideration.id == consideration_id), None)


def trim(text: str, width: int = SUMMARY_WIDTH) -> str:
    """``text`` on one line, at most ``width`` characters (cut ones end with an ellipsis)."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    return flat[: max(width - 1, 0)].rstrip() + _ELLIPSIS


def _publisher(event: SignedEvent) -> str:
    return str(event.source)


def _one_per_key(events: Iterable[E], *, latest: bool = False) -> dict[tuple[str, uuid.UUID], E]:
    """One event per (publisher, id), the same whatever the order: the earliest (or
    ``latest``) by occurred_at, then by canonical bytes."""
    kept: dict[tuple[str, uuid.UUID], E] = {}
    for event in events:
        key = (_publisher(event), event.id)
        other = kept.get(key)
        if other is None:
            kept[key] = event
            continue
        mine = (event.occurred_at, encode_signed(event))
        theirs = (other.occurred_at, encode_signed(other))
        if (mine > theirs) if latest else (mine < theirs):
            kept[key] = event
    return kept


def _one_per_id(
    events: Iterable[E], *, latest: bool = False
) -> tuple[dict[uuid.UUID, E], set[uuid.UUID]]:
    """One event per id (as ``_one_per_key``), and the ids more than one publisher used:
    those are left out, never shown as each other."""
    by_id: dict[uuid.UUID, E] = {}
    conflicts: set[uuid.UUID] = set()
    for (_, event_id), event in _one_per_key(events, latest=latest).items():
        if event_id in by_id:
            conflicts.add(event_id)
        by_id[event_id] = event
    for event_id in conflicts:
        del by_id[event_id]
    return by_id, conflicts


def _agrees(outcome: OutcomeRecorded, finding: InspectorateEvent) -> bool:
    return (
        outcome.finding_source is finding.source
        and outcome.finding_type == finding.type
        and outcome.area == finding.area
        and outcome.theme is finding.theme
    )


def _outcomes_of(
    finding: InspectorateEvent, outcomes: Iterable[OutcomeRecorded]
) -> tuple[ProgrammeOutcome, ...]:
    standing: dict[Programme, OutcomeRecorded] = {}
    for outcome in outcomes:
        if not _agrees(outcome, finding):
            continue
        other = standing.get(outcome.programme)
        if other is None or (outcome.occurred_at, outcome.id) > (other.occurred_at, other.id):
            standing[outcome.programme] = outcome
    shown = (
        ProgrammeOutcome(o.programme, o.outcome, o.occurred_at, o.id, o.source)
        for o in standing.values()
    )
    return tuple(sorted(shown, key=lambda o: (o.at, o.programme.value)))


def _contributor(
    finding_id: uuid.UUID,
    findings: Mapping[uuid.UUID, InspectorateEvent],
    outcomes: Mapping[uuid.UUID, list[OutcomeRecorded]],
) -> Contributor:
    finding = findings.get(finding_id)
    if finding is None:
        return Contributor(id=finding_id, found=False)
    concern = finding if isinstance(finding, ConcernRaised) else None
    review = finding if isinstance(finding, RecommendationReviewed) else None
    return Contributor(
        id=finding_id,
        found=True,
        publisher=finding.source,
        type=finding.type,
        programme=finding.programme,
        finding=concern.finding if concern else None,
        severity=concern.severity if concern else None,
        immediate_risk=concern.immediate_risk if concern else None,
        progress=review.progress if review else None,
        occurred_at=finding.occurred_at,
        summary=trim(finding.summary),
        outcomes=_outcomes_of(finding, outcomes.get(finding_id, ())),
    )


def _ignored(
    decision: JtaiDecisionRecorded, considerations: Mapping[uuid.UUID, JtaiConsiderationRequested]
) -> IgnoredReason | None:
    consideration = considerations.get(decision.consideration_id)
    if consideration is None:
        return IgnoredReason.UNKNOWN_CONSIDERATION
    if decision.area != consideration.area:
        return IgnoredReason.AREA_DISAGREES
    if decision.theme is not consideration.theme:
        return IgnoredReason.THEME_DISAGREES
    return None


def _place(area: str) -> tuple[str, str]:
    authority = local_authorities().get(area)
    if authority is None:  # pragma: no cover - a verified consideration names a known area
        return "unknown area", "unknown region"
    return authority.name, authority.region.name


def _count(
    decisions_seen: Iterable[JtaiDecisionRecorded],
    considerations: Mapping[uuid.UUID, JtaiConsiderationRequested],
) -> tuple[dict[uuid.UUID, list[JtaiDecisionRecorded]], list[IgnoredDecision]]:
    """The decisions that count, by consideration, and those ignored (with why)."""
    counted: dict[uuid.UUID, list[JtaiDecisionRecorded]] = {}
    ignored: list[IgnoredDecision] = []
    kept = _one_per_key(decisions_seen, latest=True).values()
    publishers: dict[uuid.UUID, int] = {}
    for decision in kept:
        publishers[decision.id] = publishers.get(decision.id, 0) + 1
    why: IgnoredReason | None
    for decision in kept:
        if publishers[decision.id] > 1:
            why = IgnoredReason.ID_CONFLICT
        else:
            why = _ignored(decision, considerations)
        if why is None:
            counted.setdefault(decision.consideration_id, []).append(decision)
        else:
            ignored.append(IgnoredDecision(decision.id, decision.consideration_id, why))
    return counted, ignored


def triage(events: Iterable[SignedEvent]) -> TriageView:
    """The triage view of every verified event read (other types are left out)."""
    considerations_seen: list[JtaiConsiderationRequested] = []
    decisions_seen: list[JtaiDecisionRecorded] = []
    findings_seen: list[InspectorateEvent] = []
    outcomes_seen: list[OutcomeRecorded] = []
    for event in events:
        if isinstance(event, JtaiConsiderationRequested):
            considerations_seen.append(event)
        elif isinstance(event, JtaiDecisionRecorded):
            decisions_seen.append(event)
        elif isinstance(
            event,
            ConcernRaised
            | ExceptionalPracticeIdentified
            | RecommendationMade
            | RecommendationReviewed,
        ):
            findings_seen.append(event)
        elif isinstance(event, OutcomeRecorded):
            outcomes_seen.append(event)
    considerations, _ = _one_per_id(considerations_seen)  # all the bus's: never a conflict
    findings, conflicts = _one_per_id(findings_seen)
    unique_outcomes, outcome_conflicts = _one_per_id(outcomes_seen, latest=True)
    conflicts |= outcome_conflicts
    outcomes: dict[uuid.UUID, list[OutcomeRecorded]] = {}
    for outcome in unique_outcomes.values():
        outcomes.setdefault(outcome.finding_id, []).append(outcome)

    counted, ignored = _count(decisions_seen, considerations)
    items = []
    for consideration in sorted(considerations.values(), key=lambda c: (c.occurred_at, c.id)):
        decisions = sorted(counted.get(consideration.id, ()), key=lambda d: (d.occurred_at, d.id))
        name, region = _place(consideration.area)
        items.append(
            TriageItem(
                consideration=consideration,
                area_name=name,
                region=region,
                contributors=tuple(
                    _contributor(i, findings, outcomes)
                    for i in consideration.contributing_event_ids
                ),
                decisions=tuple(
                    DecisionShown(d.id, d.source, d.occurred_at, d.decision, d.reason)
                    for d in decisions
                ),
            )
        )
    return TriageView(
        tuple(items),
        tuple(sorted(ignored, key=lambda i: (i.decision_id, i.reason.value, i.consideration_id))),
        tuple(sorted(conflicts)),
    )


def select(
    view: TriageView,
    *,
    include_decided: bool = False,
    area: str | None = None,
    theme: Theme | None = None,
) -> tuple[TriageItem, ...]:
    """The considerations to show: the open ones (every one with ``include_decided``),
    in ``area`` and on ``theme`` when given."""
    return tuple(
        item
        for item in view.items
        if (include_decided or item.is_open)
        and (area is None or item.consideration.area == area)
        and (theme is None or item.consideration.theme is theme)
    )


def selected_areas(view: TriageView) -> dict[str, tuple[Theme, dt.datetime]]:
    """Areas selected for a JTAI: area -> (theme, when the selection was decided).

    An area selected on several themes shows its latest selection (ties: the first theme
    in alphabetical order).
    """
    found: dict[str, tuple[Theme, dt.datetime]] = {}
    for item in view.items:
        current = item.current
        if current is None or current.decision is not JtaiDecision.SELECT:
            continue
        area, theme = item.consideration.area, item.consideration.theme
        other = found.get(area)
        if other is None or (current.at, other[0].value) > (other[1], theme.value):
            found[area] = (theme, current.at)
    return found


def selected_themes(view: TriageView) -> dict[str, tuple[tuple[Theme, uuid.UUID], ...]]:
    """Areas selected for a JTAI: area -> (theme, id of the standing ``select``
    decision) for every theme on which the area is selected, by theme.

    The decision is a consideration's current one (``TriageItem.current``: counted only
    when tied to a verified consideration with the same area and theme, the latest by
    ``occurred_at`` standing, ties to the larger id), as ``liaison jtai list`` shows it.
    """
    found: dict[str, dict[Theme, DecisionShown]] = {}
    for item in view.items:
        current = item.current
        if current is None or current.decision is not JtaiDecision.SELECT:
            continue
        themes = found.setdefault(item.consideration.area, {})
        theme = item.consideration.theme
        # Two considerations on one area and theme (windows apart): the later decision.
        held = themes.get(theme)
        if held is None or (held.at, held.id) < (current.at, current.id):
            themes[theme] = current
    return {
        area: tuple((theme, themes[theme].id) for theme in sorted(themes, key=str))
        for area, themes in found.items()
    }


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision to publish and its audit record (published together, one transaction)."""

    event: JtaiDecisionRecorded
    audit: JtaiDecided


def _refusal(exc: ValidationError) -> SchemaError:
    problems = [
        Problem(
            ".".join(str(part) for part in error["loc"]),
            error["msg"].removeprefix("Value error, "),
        )
        for error in exc.errors(include_url=False, include_input=False)
    ]
    return SchemaError("invalid decision: " + "; ".join(str(p) for p in problems), problems)


def decide(
    consideration: JtaiConsiderationRequested,
    *,
    decision_id: uuid.UUID,
    source: Inspectorate,
    decision: JtaiDecision,
    reason: str,
    at: dt.datetime,
) -> Decided:
    """``source``'s decision on ``consideration`` and its ``jtai.decision_recorded``.

    Area and theme are the consideration's. ``SchemaError`` names what is wrong with the
    reason (the minimisation lint: a child's name, a date of birth...), never its text.
    """
    check_minimised(reason, "reason")
    try:
        event = JtaiDecisionRecorded(
            id=decision_id,
            source=source,
            occurred_at=at,
            consideration_id=consideration.id,
            area=consideration.area,
            theme=consideration.theme,
            decision=decision,
            reason=reason,
        )
    except ValidationError as exc:
        raise _refusal(exc) from None
    ids = dict.fromkeys((decision_id, consideration.id, *consideration.contributing_event_ids))
    audit = JtaiDecided(
        at=at,
        actor=f"inspectorate:{source.value}",
        event_ids=tuple(ids),
        decision_id=decision_id,
        consideration_id=consideration.id,
        area=consideration.area,
        theme=consideration.theme,
        decision=decision,
    )
    return Decided(event, audit)


def _time(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def _contributor_json(contributor: Contributor) -> dict[str, object]:
    document: dict[str, object] = {"id": str(contributor.id), "found": contributor.found}
    if not contributor.found:
        return document
    fields: dict[str, object] = {
        "publisher": contributor.publisher.value if contributor.publisher else None,
        "type": contributor.type,
        "programme": contributor.programme.value if contributor.programme else None,
        "finding": contributor.finding.value if contributor.finding else None,
        "severity": contributor.severity,
        "immediate_risk": contributor.immediate_risk,
        "progress": contributor.progress.value if contributor.progress else None,
        "occurred_at": _time(contributor.occurred_at),
        "summary": contributor.summary,
    }
    document.update({k: v for k, v in fields.items() if v is not None})
    document["outcomes"] = [
        {
            "programme": o.programme.value,
            "outcome": o.outcome.value,
            "at": _time(o.at),
            "by": o.source.value,
            "id": str(o.outcome_id),
        }
        for o in contributor.outcomes
    ]
    return document


def _decision_json(decision: DecisionShown) -> dict[str, object]:
    return {
        "id": str(decision.id),
        "by": decision.source.value,
        "at": _time(decision.at),
        "decision": decision.decision.value,
        "reason": decision.reason,
    }


def item_json(item: TriageItem) -> dict[str, object]:
    """One consideration as a JSON object (what ``liaison jtai list --json`` prints)."""
    c = item.consideration
    current = item.current
    return {
        "id": str(c.id),
        "area": c.area,
        "area_name": item.area_name,
        "region": item.region,
        "theme": c.theme.value,
        "trigger": c.trigger.value,
        "occurred_at": _time(c.occurred_at),
        "window_start": _time(c.window_start),
        "window_end": _time(c.window_end),
        "rationale": c.rationale,
        "contributing_inspectorates": [i.value for i in c.contributing_inspectorates],
        "contributors": [_contributor_json(x) for x in item.contributors],
        "open": item.is_open,
        "decision": None if current is None else _decision_json(current),
        "decisions": [_decision_json(d) for d in item.decisions],
    }
