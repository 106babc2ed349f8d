"""Spot areas to consider for a Joint Targeted Area Inspection (JTAI).

``JtaiWatch`` is a pure state machine: no I/O, no clock, no logging. The router's handler
feeds it each verified finding and publishes the ``JtaiConsiderationRequested`` it returns;
at start-up it rebuilds the watch from the findings and considerations already on the log.

What counts
-----------
Every ``ConcernRaised``, and every ``RecommendationReviewed`` whose progress is
``not_progressing`` ("not improving as quickly as we would like"): such a review counts as
a concern of the inspectorate that reviewed it, about its area and theme, at its
occurred_at, which is neither severity 4 nor an immediate risk. Nothing else counts (other
reviews, recommendations, exceptional practice): the watch ignores them and they change
nothing. Each counted finding is reduced to ``Evidence``, the few fields the rule reads;
below, "concern" means any counted finding.

The rule
--------
Concerns are kept per (area, theme); nothing combines across areas or themes. Time is
always ``occurred_at`` (event time), never arrival time. A window is half-open,
``[start, start + window)``: concerns *fit in one window* when the latest occurred less
than ``window`` after the earliest (two concerns exactly ``window`` apart do not).

Each consideration *claims* its window for its (area, theme). A concern whose occurred_at
falls in a claimed window is *covered*: it raises nothing and counts towards nothing new,
because that stretch of evidence is already before the inspectorates. Every other
retained concern is *open*. Observing a concern ``c`` at time ``t``:

1. An id already recorded for this (area, theme) is a duplicate: nothing changes, ``None``.
2. ``c`` is covered: it is recorded, ``None`` (even at severity 4: see "Notes").
3. ``c`` has severity 4 or reports immediate risk: the window ``[t, t + window)`` is
   claimed with trigger ``severity_4`` (which wins when ``c`` is both, being the
   inspectorate's own graded judgement of the gravest kind) or ``immediate_risk``.
4. Otherwise, of the windows ``[s, s + window)`` that contain ``t`` and start at an open
   concern's occurred_at ``s``, the earliest whose open concerns come from at least
   ``min_inspectorates`` different inspectorates is claimed (``several_inspectorates``).
5. Otherwise ``None``.

A consideration lists as contributors the open concerns in its window, sorted by
occurred_at then id; ``window_start`` is the earliest of them (``s``, or ``t``), in UTC;
``occurred_at`` is ``c``'s. Its id is ``uuid5(JTAI_NAMESPACE, "area|theme|window_start")``
(see ``consideration_id``), so a consideration raised again after a crash carries the same
id and downstream can drop the repeat. The rationale is built from the theme, area,
inspectorates and window only, never from any concern's text.

What arrival order cannot change
--------------------------------
Invariant: after every call, the open concerns of each (area, theme) hold no *trigger*
(no severe concern, and no concerns from ``min_inspectorates`` inspectorates fitting in
one window). Proof by induction: a covered ``c`` leaves the open set as it was. A severe
``c`` is covered by its own window, so the open set shrinks. Otherwise a trigger among
the open concerns plus ``c`` must include ``c`` (the open set held none), and moved to
start at its earliest member it is one of the windows step 4 examines, so step 4 claims a
window containing ``c`` and the open set becomes a subset of the old one; a subset of a
set without a trigger has none. Hence, for every arrival order of the same concerns:

* every consideration is justified: its contributors fit its window and form a trigger;
* no window is claimed twice (a new window starts at an open concern, which no claimed
  window contains), so no id repeats;
* nothing is left unraised: the concerns not covered by a consideration hold no trigger;
* so whether an (area, theme) gets any consideration is the same in every order: it does
  exactly when its concerns hold a trigger.

When concerns arrive in occurred_at order the claimed windows are also disjoint and
ascending. ``tests/unit/test_jtai.py`` checks all of this with hypothesis.

What arrival order can change, under any rule
---------------------------------------------
Neither the number of considerations nor their windows can be the same in every order for
*any* rule that (A) raises only justified considerations whose window starts at the
earliest contributor, (B) raises one as soon as the concerns seen hold a trigger none of
whose members is covered, (C) raises nothing for a covered concern (once per window), and
(D) raises at most one per concern observed. With a window of 10 days and two
inspectorates:

* Windows. Ofsted on day 0, CQC on day 9, HMICFRS on day 18. Arriving in that order, the
  second must claim day 0; arriving CQC, HMICFRS, Ofsted, the second must claim day 9;
  arriving Ofsted, HMICFRS, CQC, nothing triggers until the last, which may raise one.
* Number. HMICFRS on day 10 (X), HMI Prisons on day 19 (Y), Ofsted on day 3 (P), a CQC
  severity 4 on day 15 (S). Order P, X, S, Y raises exactly two (X claims day 3; S is
  outside it so must claim day 15; Y falls inside that). Order X, Y, P, S: Y claims
  day 10 and S falls inside it, so two would need P to claim day 3. A rule sees only the
  history, so it would then raise two for X, Y, P alone, whereas P, Y, X raises at most
  one (only X ever completes a trigger). Contradiction.

Both examples are pinned by tests, so a change of rule that alters them is noticed.

Retention
---------
Per (area, theme), concerns older than the newest occurred_at seen minus ``2 * window``
are forgotten, and so are claimed windows ending by then; memory is bounded by the areas,
themes and concerns within two windows. A concern arriving no more than ``window`` behind
the newest occurred_at already seen for its (area, theme) can only share a window with,
or fall in a window claimed for, concerns at or after that horizon, so forgetting changes
nothing for it and the guarantees above hold. A concern later than that is still assessed
against what is retained, so a late severe concern is never ignored, but an earlier
consideration covering it may have been forgotten and be raised again (with the same id
if its window is the same).

Replay
------
The watch's state is exactly its retained concerns and claimed windows.
``replay_finding`` records a concern and ``replay_emission`` claims a window; neither
emits, and they commute, so replaying a history's concerns and considerations in any
interleaving rebuilds the state the watch had. A concern that was routed but whose
consideration was never published (a crash in between) is not raised by replay: publish
the consideration before committing the concern, or replay such concerns with ``observe``
after the considerations (a covered concern raises nothing, a repeat has the same id).

Notes
-----
A concern inside a claimed window raises nothing even at severity 4 or with immediate
risk: the window is already before the inspectorates, and the concern itself is still
routed to them. A duplicate id counts once, as first seen, even if the copy differs.
"""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from schemas.errors import ConfigurationError
from schemas.events import ConcernRaised, InspectorateEvent, Progress, RecommendationReviewed, Theme
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiConsiderationRequested, JtaiTrigger

__all__ = [
    "JTAI_NAMESPACE",
    "Claimed",
    "Evidence",
    "Forgotten",
    "JtaiWatch",
    "Released",
    "WatchChange",
    "consideration_id",
    "evidence_of",
]

JTAI_NAMESPACE: Final = uuid.UUID("5f3c8c75-86de-48f9-ab8a-328aed934c39")
"""Namespace of consideration ids (fixed forever: changing it changes every id)."""

_SEVERITY_4: Final = 4  # the top of ConcernRaised.severity's 1-4 scale
_SEVERAL: Final = 2  # one inspectorate alone is its own view, not a joint signal

_Key: TypeAlias = tuple[str, Theme]


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the watch reads of a finding that counts towards JTAI consideration."""

    id: uuid.UUID
    source: Inspectorate
    """The inspectorate that raised the concern or reviewed the recommendation."""
    occurred_at: dt.datetime
    area: str
    theme: Theme
    alone: JtaiTrigger | None
    """``severity_4`` or ``immediate_risk`` when the finding is a trigger on its own."""
    review: bool
    """A recommendation reviewed as not progressing, not a concern."""


def evidence_of(finding: InspectorateEvent) -> Evidence | None:
    """What ``finding`` counts for in the watch, or ``None`` when it does not count."""
    alone: JtaiTrigger | None = None
    if isinstance(finding, ConcernRaised):
        # severity_4 wins when both hold: the inspectorate's own gravest graded judgement.
        if finding.severity == _SEVERITY_4:
            alone = JtaiTrigger.SEVERITY_4
        elif finding.immediate_risk:
            alone = JtaiTrigger.IMMEDIATE_RISK
        review = False
    elif isinstance(finding, RecommendationReviewed):
        if finding.progress is not Progress.NOT_PROGRESSING:
            return None
        review = True
    else:
        return None
    return Evidence(
        id=finding.id,
        source=finding.source,
        occurred_at=finding.occurred_at,
        area=finding.area,
        theme=finding.theme,
        alone=alone,
        review=review,
    )


def consideration_id(area: str, theme: Theme, window_start: dt.datetime) -> uuid.UUID:
    """The id of the consideration for ``area`` and ``theme`` whose window starts then."""
    # UTC first: one instant written with another offset must give the same id.
    start = window_start.astimezone(dt.UTC)
    return uuid.uuid5(JTAI_NAMESPACE, f"{area}|{theme}|{start.isoformat()}")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A window claimed for an area and theme (a consideration raised or replayed)."""

    area: str
    theme: Theme
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True, slots=True)
class Released:
    """A claimed window forgotten (it ended before the retention horizon)."""

    window: Claimed


@dataclass(frozen=True, slots=True)
class Forgotten:
    """A concern forgotten (it occurred before the retention horizon)."""

    id: uuid.UUID


WatchChange: TypeAlias = Evidence | Forgotten | Claimed | Released
"""One change to the watch's state, for a caller that keeps the state elsewhere too (the
router's compacted state topic): a concern recorded or forgotten, a window claimed or
released."""


_Place: TypeAlias = tuple[dt.datetime, uuid.UUID]
"""A concern's place in time: (occurred_at, id), the order contributors are listed in."""
_FIRST_ID: Final = uuid.UUID(int=0)
_LAST_ID: Final = uuid.UUID(int=(1 << 128) - 1)


@dataclass(slots=True)
class _Stream:
    """What the watch keeps for one (area, theme), indexed by time so that each concern
    costs O(log n) plus the open concerns near it, not a scan of everything retained."""

    area: str
    theme: Theme
    log: list[WatchChange] | None
    concerns: dict[uuid.UUID, Evidence] = field(default_factory=dict)
    # Every retained concern's place, sorted: forgetting takes a prefix.
    order: list[_Place] = field(default_factory=list)
    # The open concerns' places (no claimed window covers them), sorted, and per source.
    open: list[_Place] = field(default_factory=list)
    open_by_source: dict[Inspectorate, list[_Place]] = field(default_factory=dict)
    # Claimed windows as (start, end), sorted by start, so `covers` is a bisection:
    # out-of-order arrival (a backfill, say) can claim many windows in one stream.
    claimed: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    longest: dt.timedelta = dt.timedelta(0)
    newest: dt.datetime | None = None

    def claim(self, start: dt.datetime, end: dt.datetime, *, logged: bool = True) -> None:
        if (start, end) not in self.claimed:
            bisect.insort(self.claimed, (start, end))
            self.longest = max(self.longest, end - start)
            # The open concerns in [start, end) are covered from now on.
            _drop_range(self.open, start, end)
            for keys in self.open_by_source.values():
                _drop_range(keys, start, end)
            if logged and self.log is not None:
                self.log.append(Claimed(self.area, self.theme, start, end))

    def covers(self, when: dt.datetime) -> bool:
        # Only windows starting in (when - longest, when] can contain `when`.
        i = bisect.bisect_right(self.claimed, (when, _LATEST))
        while i > 0:
            i -= 1
            start, end = self.claimed[i]
            if start <= when - self.longest:
                return False
            if when < end:
                return True
        return False

    def record(self, concern: Evidence, *, logged: bool = True) -> None:
        self.concerns[concern.id] = concern
        key = (concern.occurred_at, concern.id)
        bisect.insort(self.order, key)
        if not self.covers(concern.occurred_at):
            bisect.insort(self.open, key)
            bisect.insort(self.open_by_source.setdefault(concern.source, []), key)
        if self.newest is None or concern.occurred_at > self.newest:
            self.newest = concern.occurred_at
        if logged and self.log is not None:
            self.log.append(concern)

    def open_near(self, after: dt.datetime, before: dt.datetime) -> list[Evidence]:
        """The open concerns that occurred strictly between ``after`` and ``before``, in
        (occurred_at, id) order."""
        lo = bisect.bisect_right(self.open, (after, _LAST_ID))
        hi = bisect.bisect_left(self.open, (before, _FIRST_ID), lo)
        return [self.concerns[i] for _, i in self.open[lo:hi]]

    def sources_near(self, after: dt.datetime, before: dt.datetime) -> int:
        """How many inspectorates have an open concern strictly between the two times."""
        count = 0
        for keys in self.open_by_source.values():
            i = bisect.bisect_right(keys, (after, _LAST_ID))
            if i < len(keys) and keys[i][0] < before:
                count += 1
        return count

    def forget_before(self, horizon: dt.datetime) -> None:
        cut = bisect.bisect_left(self.order, (horizon, _FIRST_ID))
        if cut:
            for _, stale in self.order[:cut]:
                del self.concerns[stale]
                if self.log is not None:
                    self.log.append(Forgotten(stale))
            del self.order[:cut]
            del self.open[: bisect.bisect_left(self.open, (horizon, _FIRST_ID))]
            for keys in self.open_by_source.values():
                del keys[: bisect.bisect_left(keys, (horizon, _FIRST_ID))]
        if self.claimed and self.claimed[0][0] < horizon:  # only these can end by then
            kept = []
            for start, end in self.claimed:
                if end > horizon:
                    kept.append((start, end))
                elif self.log is not None:
                    self.log.append(Released(Claimed(self.area, self.theme, start, end)))
            self.claimed = kept


def _drop_range(keys: list[_Place], start: dt.datetime, end: dt.datetime) -> None:
    """Remove the places in [start, end) from the sorted ``keys``."""
    lo = bisect.bisect_left(keys, (start, _FIRST_ID))
    hi = bisect.bisect_left(keys, (end, _FIRST_ID), lo)
    del keys[lo:hi]


_LATEST: Final = dt.datetime.max.replace(tzinfo=dt.UTC)


def _change_key(change: WatchChange) -> object:
    """What a change is to: one concern (by id) or one window."""
    if isinstance(change, Evidence | Forgotten):
        return ("concern", change.id)
    return ("window", change if isinstance(change, Claimed) else change.window)


def _removal(change: WatchChange) -> bool:
    return isinstance(change, Forgotten | Released)


class JtaiWatch:
    """Watches verified findings and says when an area and theme should be considered."""

    def __init__(
        self, window: dt.timedelta, min_inspectorates: int = 2, *, log_changes: bool = False
    ) -> None:
        """Combine concerns within ``window`` from ``min_inspectorates`` inspectorates;
        with ``log_changes``, keep every change of state for ``drain_changes``."""
        if window <= dt.timedelta(0):
            raise ConfigurationError(f"the JTAI window must be positive, not {window}")
        if not _SEVERAL <= min_inspectorates <= len(Inspectorate):
            msg = (
                f"min_inspectorates must be from {_SEVERAL} to {len(Inspectorate)},"
                f" not {min_inspectorates}"
            )
            raise ConfigurationError(msg)
        self._window = window
        self._min_inspectorates = min_inspectorates
        self._streams: dict[_Key, _Stream] = {}
        self._changes: list[WatchChange] = []
        self._log_changes = log_changes

    @property
    def window(self) -> dt.timedelta:
        """The length of one window of event time."""
        return self._window

    @property
    def min_inspectorates(self) -> int:
        """How many different inspectorates within one window raise a consideration."""
        return self._min_inspectorates

    @property
    def retained(self) -> int:
        """How many concerns the watch holds now, over every area and theme."""
        return sum(len(stream.concerns) for stream in self._streams.values())

    def held(self) -> tuple[frozenset[uuid.UUID], frozenset[Claimed]]:
        """The ids of the concerns and the windows claimed the watch holds now."""
        concerns = frozenset(i for stream in self._streams.values() for i in stream.concerns)
        windows = frozenset(
            Claimed(stream.area, stream.theme, start, end)
            for stream in self._streams.values()
            for start, end in stream.claimed
        )
        return concerns, windows

    def observe(self, finding: InspectorateEvent) -> JtaiConsiderationRequested | None:
        """Record a verified finding that counts; return the consideration it triggers, if
        any (``None`` for a finding that does not count, which changes nothing)."""
        concern = evidence_of(finding)
        if concern is None:
            return None
        stream = self._stream(concern.area, concern.theme)
        if concern.id in stream.concerns:
            return None
        covered = stream.covers(concern.occurred_at)
        stream.record(concern)
        raised = None if covered else self._assess(stream, concern)
        if raised is not None:
            stream.claim(raised.window_start, raised.window_end)
        self._forget(stream)
        return raised

    def replay_finding(self, finding: InspectorateEvent) -> None:
        """Rebuild state at start-up from a finding already routed (never emits; a finding
        that does not count changes nothing)."""
        concern = evidence_of(finding)
        if concern is None:
            return
        stream = self._stream(concern.area, concern.theme)
        if concern.id not in stream.concerns:
            stream.record(concern)
            self._forget(stream)

    def replay_emission(self, emitted: JtaiConsiderationRequested) -> None:
        """Rebuild state at start-up from a consideration already emitted."""
        stream = self._stream(emitted.area, emitted.theme)
        # The recorded end, not start + today's window: the setting may have changed since.
        stream.claim(emitted.window_start.astimezone(dt.UTC), emitted.window_end)
        self._forget(stream)

    def restore(self, concern: Evidence) -> None:
        """Load a concern the watch held before (from a store of its changes); nothing is
        logged. Call ``settle`` once everything is restored."""
        self._stream(concern.area, concern.theme).record(concern, logged=False)

    def restore_claim(self, window: Claimed) -> None:
        """Load a window the watch had claimed before; nothing is logged."""
        stream = self._stream(window.area, window.theme)
        stream.claim(window.start.astimezone(dt.UTC), window.end, logged=False)

    def settle(self) -> None:
        """After ``restore``: forget what is past every stream's horizon (logged)."""
        for stream in list(self._streams.values()):
            self._forget(stream)

    def drain_changes(self) -> list[WatchChange]:
        """The changes since the last call (and forget them), one per concern or window:
        its last. A concern recorded and then forgotten, or a window claimed and then
        released, since the last call is left out, as if it had never been (nothing before
        this call knew of it)."""
        changes = list(self._changes)
        self._changes.clear()  # streams append to this very list
        first: dict[object, WatchChange] = {}
        last: dict[object, WatchChange] = {}
        for change in changes:
            key = _change_key(change)
            first.setdefault(key, change)
            last.pop(key, None)  # re-inserted: the dict keeps the order of last changes
            last[key] = change
        return [
            change
            for key, change in last.items()
            if not (_removal(change) and not _removal(first[key]))
        ]

    def _stream(self, area: str, theme: Theme) -> _Stream:
        stream = self._streams.get((area, theme))
        if stream is None:
            log = self._changes if self._log_changes else None
            stream = self._streams[area, theme] = _Stream(area, theme, log)
        return stream

    def _forget(self, stream: _Stream) -> None:
        if stream.newest is not None:
            stream.forget_before(stream.newest - 2 * self._window)
        if not stream.concerns and not stream.claimed:
            del self._streams[stream.area, stream.theme]  # an empty stream holds nothing

    def _assess(self, stream: _Stream, concern: Evidence) -> JtaiConsiderationRequested | None:
        """The consideration an open ``concern`` raises, if any (steps 3 to 5)."""
        t, window = concern.occurred_at, self._window
        urgent = concern.alone is not None
        # Only open concerns within one window of t can share a window with it.
        if not urgent and stream.sources_near(t - window, t + window) < self._min_inspectorates:
            return None  # too few inspectorates near t for any window
        opened = stream.open_near(t - window, t + window)
        if concern.alone is not None:
            return self._raise(concern, concern.alone, self._within(opened, t))
        # The earliest window [s, s + window) with s in (t - window, t] (s an open concern's
        # time) holding enough inspectorates: a sliding window over the sorted concerns,
        # linear after the sort, however many concerns an area and theme accumulate.
        sources: Counter[Inspectorate] = Counter()
        end = 0
        for i, first in enumerate(opened):
            start = first.occurred_at
            if start > t:
                break
            while end < len(opened) and opened[end].occurred_at < start + window:
                sources[opened[end].source] += 1
                end += 1
            is_new_start = i == 0 or opened[i - 1].occurred_at != start
            if is_new_start and len(sources) >= self._min_inspectorates:
                return self._raise(concern, JtaiTrigger.SEVERAL_INSPECTORATES, opened[i:end])
            sources[first.source] -= 1
            if not sources[first.source]:
                del sources[first.source]
        return None

    def _within(self, opened: list[Evidence], start: dt.datetime) -> list[Evidence]:
        return [c for c in opened if start <= c.occurred_at < start + self._window]

    def _raise(
        self, concern: Evidence, trigger: JtaiTrigger, members: list[Evidence]
    ) -> JtaiConsiderationRequested:
        start = members[0].occurred_at.astimezone(dt.UTC)
        return JtaiConsiderationRequested(
            id=consideration_id(concern.area, concern.theme, start),
            occurred_at=concern.occurred_at,
            area=concern.area,
            theme=concern.theme,
            window_start=start,
            window_end=start + self._window,
            trigger=trigger,
            contributing_event_ids=tuple(c.id for c in members),
            contributing_inspectorates=tuple(sorted({c.source for c in members})),
            rationale=_rationale(concern, trigger, members, self._window),
        )


def _rationale(
    concern: Evidence,
    trigger: JtaiTrigger,
    members: list[Evidence],
    window: dt.timedelta,
) -> str:
    """Why, in plain English, from structured fields only (never a finding's own text)."""
    about = f"about {concern.theme.value.replace('_', ' ')} in {concern.area}"
    if trigger is JtaiTrigger.SEVERAL_INSPECTORATES:
        sources = _listed(c.source for c in members)
        return f"{_kinds(members)} {about} from {sources} within {_duration(window)}"
    kind = (
        "A severity 4 concern" if trigger is JtaiTrigger.SEVERITY_4 else "An immediate-risk concern"
    )
    text = f"{kind} {about} from {concern.source.value}"
    others = [c for c in members if c.id != concern.id]
    if others:
        noun = "concern" if all(not c.review for c in others) else "finding"
        noun += "" if len(others) == 1 else "s"
        text += (
            f"; {len(others)} other {noun} from {_listed(c.source for c in others)}"
            f" in the {_duration(window)} from it"
        )
    return text


def _kinds(members: list[Evidence]) -> str:
    """What the contributors are: concerns, reviews of recommendations, or both."""
    reviews = sum(c.review for c in members)
    if not reviews:
        return "Concerns"
    if reviews == len(members):
        return "Recommendations reviewed as not progressing"
    return "Concerns and recommendations reviewed as not progressing"


def _listed(sources: Iterable[Inspectorate]) -> str:
    names = sorted({s.value for s in sources})
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _duration(span: dt.timedelta) -> str:
    for unit, size in (
        ("day", dt.timedelta(days=1)),
        ("hour", dt.timedelta(hours=1)),
        ("minute", dt.timedelta(minutes=1)),
    ):
        if span % size == dt.timedelta(0):
            count = span // size
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{span.total_seconds():g} seconds"
